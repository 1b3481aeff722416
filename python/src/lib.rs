//! `lepton._native`: the Rust half of lepton's Python package.
//!
//! Three classes, each subclassed in Python (`python/lepton/`) to become what Python tools
//! expect:
//! - [`PyEnv`] (`lepton._native.Env`): one scenario or CartPole env; `lepton.LeptonEnv` adds
//!   Gymnasium's spaces and `reset` to it. `step` is this class's own, so one step costs one
//!   call into Rust.
//! - [`PyVecEnv`] (`lepton._native.VecEnv`): a [`lepton_env::VecEnv`] stepped with the GIL
//!   released, its results copied into numpy arrays (or written into the same ones each step
//!   with `copy=False`); `lepton.LeptonVectorEnv` makes it a `gymnasium.vector.VectorEnv`.
//! - [`PyScheduler`] (`lepton._native.Scheduler`): a heuristic from the registry.
//!
//! Errors become Python exceptions carrying lepton's own messages: [`ScenarioError`] for a
//! scenario that does not resolve, [`ActionError`] for a refused step, [`SchedulerError`] for
//! an unknown scheduler or a failed episode.

mod convert;
mod env;
mod scenarios;
mod scheduler;
mod vec_env;

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

create_exception!(
    _native,
    ScenarioError,
    PyValueError,
    "A scenario (name, file, TOML text or override) that does not resolve."
);
create_exception!(
    _native,
    ActionError,
    PyValueError,
    "A step refused: an action outside the space, masked out, or after the episode ended."
);
create_exception!(
    _native,
    SchedulerError,
    PyValueError,
    "An unknown scheduler name, or an episode a scheduler could not run."
);

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<env::PyEnv>()?;
    m.add_class::<vec_env::PyVecEnv>()?;
    m.add_class::<scheduler::PyScheduler>()?;
    m.add("ScenarioError", py.get_type::<ScenarioError>())?;
    m.add("ActionError", py.get_type::<ActionError>())?;
    m.add("SchedulerError", py.get_type::<SchedulerError>())?;
    m.add("SHIPPED", lepton_env::scenario::SHIPPED.to_vec())?;
    m.add("CARTPOLE", scenarios::CARTPOLE)?;
    m.add("SCHEDULERS", lepton_env::schedulers::NAMES.to_vec())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

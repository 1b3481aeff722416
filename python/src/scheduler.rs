//! `lepton._native.Scheduler`: one of lepton's heuristics, acting on a Python-side env.

use crate::SchedulerError;
use crate::convert::metrics_dict;
use crate::env::PyEnv;
use lepton_env::schedulers::{self, Scheduler};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::Mutex;

#[pyclass(module = "lepton._native", name = "Scheduler")]
pub struct PyScheduler {
    /// A `Mutex` only because Python objects must be `Sync`; every method holds `&mut self`,
    /// so it is never locked.
    inner: Mutex<Box<dyn Scheduler>>,
    /// The env (by address) and episode the scheduler last acted in: a new one resets it.
    acting_in: Option<(usize, u64)>,
}

#[pymethods]
impl PyScheduler {
    /// `name` is any name `lepton-eval --schedulers` takes: `tetris`, `sjf`, `sjf+easy`,
    /// `weighted:1:2`, ...
    #[new]
    fn new(name: &str) -> PyResult<Self> {
        let inner =
            schedulers::by_name(name).map_err(|e| SchedulerError::new_err(e.to_string()))?;
        Ok(Self {
            inner: Mutex::new(inner),
            acting_in: None,
        })
    }

    #[getter]
    fn name(&mut self) -> String {
        self.scheduler().name()
    }

    /// The action this heuristic takes in `env`'s current state (always legal in
    /// `env.action_masks()`). Reads only what a real scheduler could see.
    fn act(&mut self, env: &Bound<'_, PyEnv>) -> PyResult<usize> {
        let env_ref = env.borrow();
        if !env_ref.is_reset() || env_ref.over {
            return Err(SchedulerError::new_err(
                "the env has no running episode; call reset first",
            ));
        }
        let here = (env.as_ptr() as usize, env_ref.episode);
        if self.acting_in != Some(here) {
            self.scheduler().reset(env_ref.episode_seed.unwrap_or(0));
            self.acting_in = Some(here);
        }
        let scenario = env_ref.scenario_env()?;
        Ok(self.scheduler().act(scenario, &env_ref.obs, &env_ref.mask))
    }

    /// Runs a whole episode of `env` from `seed` with this heuristic (under its own
    /// discipline: `sjf+easy` backfills) and returns the episode's metrics. The env's episode
    /// is over afterwards; reset it to step it again.
    fn run_episode<'py>(
        &mut self,
        py: Python<'py>,
        env: &Bound<'py, PyEnv>,
        seed: u64,
    ) -> PyResult<Bound<'py, PyDict>> {
        let mut env_ref = env.borrow_mut();
        let scheduler = self.scheduler();
        let scenario = env_ref.scenario_env_mut()?;
        let metrics = py
            .detach(|| schedulers::run_episode(scheduler, scenario, seed))
            .map_err(|e| SchedulerError::new_err(e.to_string()))?;
        env_ref.over = true;
        self.acting_in = None;
        metrics_dict(py, &metrics)
    }
}

impl PyScheduler {
    fn scheduler(&mut self) -> &mut dyn Scheduler {
        let inner = self.inner.get_mut();
        // A panic inside a scheduler poisons the mutex; the scheduler itself is still whole.
        inner
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .as_mut()
    }
}

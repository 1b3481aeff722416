//! `lepton._native.Env`: one env, stepped Gymnasium-style from Python.

use crate::convert::metrics_dict;
use crate::scenarios::{Sim, resolve};
use crate::{ActionError, ScenarioError};
use lepton_env::{ActionBlock, Env};
use numpy::PyArray1;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::path::PathBuf;

/// What `step` returns: Gymnasium's `(observation, reward, terminated, truncated, info)`.
type StepResult<'py> = (
    Bound<'py, PyArray1<f32>>,
    f64,
    bool,
    bool,
    Bound<'py, PyDict>,
);

#[pyclass(subclass, module = "lepton._native", name = "Env")]
pub struct PyEnv {
    pub sim: Sim,
    pub obs: Vec<f32>,
    pub mask: Vec<bool>,
    /// Counts resets, so that a scheduler acting on this env knows a new episode began.
    pub episode: u64,
    /// The seed of the last reset, if it had one (a scheduler's episode seed).
    pub episode_seed: Option<u64>,
    /// Between an episode's last step and the next reset.
    pub over: bool,
    is_reset: bool,
}

#[pymethods]
impl PyEnv {
    #[new]
    #[pyo3(signature = (scenario, *, seed=None, scenario_dir=None, **overrides))]
    fn new(
        scenario: &str,
        seed: Option<u64>,
        scenario_dir: Option<PathBuf>,
        overrides: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let sim = resolve(scenario, seed, scenario_dir.as_deref(), overrides)?.build();
        let (dim, n) = (sim.observation_space().dim(), sim.action_space().n);
        Ok(Self {
            sim,
            obs: vec![0.0; dim],
            mask: vec![false; n],
            episode: 0,
            episode_seed: None,
            over: false,
            is_reset: false,
        })
    }

    /// Starts an episode: `(observation, {"action_mask": ...})`. `seed` reseeds every random
    /// stream of the env (same seed, same episode); `None` continues them.
    #[pyo3(signature = (seed=None))]
    fn _reset<'py>(
        &mut self,
        py: Python<'py>,
        seed: Option<u64>,
    ) -> PyResult<(Bound<'py, PyArray1<f32>>, Bound<'py, PyDict>)> {
        self.sim.reset(seed, &mut self.obs);
        self.sim.action_mask(&mut self.mask);
        self.episode += 1;
        self.episode_seed = seed;
        self.over = false;
        self.is_reset = true;
        let info = PyDict::new(py);
        info.set_item(
            intern!(py, "action_mask"),
            PyArray1::from_slice(py, &self.mask),
        )?;
        Ok((PyArray1::from_slice(py, &self.obs), info))
    }

    /// Gymnasium's step: `(observation, reward, terminated, truncated, info)`. `info` holds
    /// `action_mask` (the legal actions now) and, on the episode's last step, the episode's
    /// scheduling metrics as `episode_metrics`.
    fn step<'py>(&mut self, py: Python<'py>, action: i64) -> PyResult<StepResult<'py>> {
        if !self.is_reset {
            return Err(ActionError::new_err("step called before reset"));
        }
        let action = usize::try_from(action).map_err(|_| {
            ActionError::new_err(format!(
                "action {action} is outside the action space Discrete({})",
                self.mask.len()
            ))
        })?;
        let step = self
            .sim
            .step(action, &mut self.obs)
            .map_err(|e| ActionError::new_err(e.to_string()))?;
        self.sim.action_mask(&mut self.mask);
        let info = PyDict::new(py);
        info.set_item(
            intern!(py, "action_mask"),
            PyArray1::from_slice(py, &self.mask),
        )?;
        if step.episode_over() {
            self.over = true;
            if let Some(metrics) = self.sim.episode_metrics() {
                info.set_item(intern!(py, "episode_metrics"), metrics_dict(py, metrics)?)?;
            }
        }
        Ok((
            PyArray1::from_slice(py, &self.obs),
            f64::from(step.reward),
            step.terminated,
            step.truncated,
            info,
        ))
    }

    /// The legal actions now (sb3-contrib's `MaskablePPO` reads this).
    fn action_masks<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<bool>> {
        PyArray1::from_slice(py, &self.mask)
    }

    /// The metrics of the episode that just ended, else `None`.
    fn episode_metrics<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.sim
            .episode_metrics()
            .map(|m| metrics_dict(py, m))
            .transpose()
    }

    /// The simulated time now (seconds; DeepRM: time steps); `None` for CartPole.
    #[getter]
    fn clock(&self) -> Option<f64> {
        self.sim.clock()
    }

    #[getter]
    fn num_actions(&self) -> usize {
        self.mask.len()
    }

    #[getter]
    fn obs_low<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        PyArray1::from_slice(py, &self.sim.observation_space().low)
    }

    #[getter]
    fn obs_high<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        PyArray1::from_slice(py, &self.sim.observation_space().high)
    }

    /// How the flat observation is laid out: `global` features, then `server_rows ×
    /// server_features`, then `slot_rows × slot_features`, then `running_rows ×
    /// running_features` (running tasks, with `[preemption]`), row-major; `resources`: how
    /// many resources lead the server and slot rows' columns (0 when the rows have no such
    /// columns).
    #[getter]
    fn obs_layout<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let layout = self.sim.obs_layout();
        let dict = PyDict::new(py);
        dict.set_item("global", layout.global)?;
        dict.set_item("server_rows", layout.server_rows)?;
        dict.set_item("server_features", layout.server_features)?;
        dict.set_item("slot_rows", layout.slot_rows)?;
        dict.set_item("slot_features", layout.slot_features)?;
        dict.set_item("running_rows", layout.running_rows)?;
        dict.set_item("running_features", layout.running_features)?;
        dict.set_item("resources", layout.resources)?;
        Ok(dict)
    }

    /// What each action index means: blocks laid end to end, each a dict with `kind`
    /// (`placements`, `slots`, `preempt`, `migrate`, `wait`, `plain`, `rules`), `start`, `len`
    /// and its sizes.
    #[getter]
    fn action_layout<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let blocks = PyList::empty(py);
        for (start, block) in self.sim.action_layout().offsets() {
            let dict = PyDict::new(py);
            let kind = match block {
                ActionBlock::Placements { slots, servers } => {
                    dict.set_item("slots", slots)?;
                    dict.set_item("servers", servers)?;
                    "placements"
                }
                ActionBlock::Slots { slots } => {
                    dict.set_item("slots", slots)?;
                    "slots"
                }
                ActionBlock::Preempt { rows } => {
                    dict.set_item("rows", rows)?;
                    "preempt"
                }
                ActionBlock::Migrate { rows, servers } => {
                    dict.set_item("rows", rows)?;
                    dict.set_item("servers", servers)?;
                    "migrate"
                }
                ActionBlock::Wait => "wait",
                ActionBlock::Plain { .. } => "plain",
                ActionBlock::Rules { .. } => "rules",
            };
            dict.set_item("kind", kind)?;
            dict.set_item("start", start)?;
            dict.set_item("len", block.len())?;
            blocks.append(dict)?;
        }
        Ok(blocks)
    }

    /// True for scheduling scenarios (heuristics can act on them), false for CartPole.
    #[getter]
    fn is_scheduling(&self) -> bool {
        matches!(self.sim, Sim::Scenario(_))
    }
}

impl PyEnv {
    /// The scenario env inside, for schedulers; CartPole has none.
    pub fn scenario_env(&self) -> PyResult<&lepton_env::ScenarioEnv> {
        match &self.sim {
            Sim::Scenario(env) => Ok(env),
            Sim::CartPole(_) => Err(ScenarioError::new_err(
                "CartPole-v1 is not a scheduling env; heuristics need a scenario",
            )),
        }
    }

    pub fn scenario_env_mut(&mut self) -> PyResult<&mut lepton_env::ScenarioEnv> {
        match &mut self.sim {
            Sim::Scenario(env) => Ok(env),
            Sim::CartPole(_) => Err(ScenarioError::new_err(
                "CartPole-v1 is not a scheduling env; heuristics need a scenario",
            )),
        }
    }

    pub fn is_reset(&self) -> bool {
        self.is_reset
    }
}

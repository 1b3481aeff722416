//! `lepton._native.VecEnv`: N envs stepped in Rust, one Python call per batch.
//!
//! Autoreset is Gymnasium's `SAME_STEP` mode (what [`lepton_env::VecEnv`] does): a row whose
//! episode ended holds the next episode's first observation and mask, and the finished
//! episode's last observation and mask are in `infos["final_obs"]` and
//! `infos["final_info"]["action_mask"]`, with Gymnasium's `_key` masks beside every key.

use crate::ActionError;
use crate::ScenarioError;
use crate::scenarios::{Resolved, Sim, resolve};
use lepton_env::{CartPoleVec, VecEnv, VecEnvBuildError, VectorEnv};
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::IntoPyObjectExt;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[pyclass(subclass, module = "lepton._native", name = "VecEnv")]
pub struct PyVecEnv {
    /// CartPole on one thread: the structure-of-arrays `CartPoleVec`; anything else: a
    /// `VecEnv` (the same envs, step for step).
    venv: Box<dyn VectorEnv + Sync>,
    actions: Vec<usize>,
    /// The seed of the first reset when it is given none (env `i` gets `first_seed + i`), so
    /// that the envs of a vector never play the same episodes by accident; `None` after it.
    first_seed: Option<u64>,
    /// New arrays every step (true), or the same arrays overwritten (false; faster).
    copy: bool,
    buffers: Buffers,
    /// The arrays of `infos["final_obs"]` and `infos["final_info"]` when `copy` is false.
    finals: Option<FinalBuffers>,
}

/// The arrays returned when `copy` is false, overwritten by every step.
struct Buffers {
    obs: Py<PyArray2<f32>>,
    rewards: Py<PyArray1<f64>>,
    terminated: Py<PyArray1<bool>>,
    truncated: Py<PyArray1<bool>>,
    masks: Py<PyArray2<bool>>,
    all_true: Py<PyArray1<bool>>,
}

/// `infos["final_obs"]` and the arrays of `infos["final_info"]` (but `episode_metrics`) when
/// `copy` is false, overwritten on every step on which an episode ends, so that such a step
/// allocates no array: an episode ends on most steps of a large vector (256 CartPoles end
/// about a dozen episodes per step).
struct FinalBuffers {
    /// `final_obs`: an object array holding `rows[i]` where env `i`'s episode ended, else None.
    obs: Py<PyArray1<Py<PyAny>>>,
    /// Row `i` of `obs_rows`, a view made once.
    rows: Vec<Py<PyArray1<f32>>>,
    obs_rows: Py<PyArray2<f32>>,
    masks: Py<PyArray2<bool>>,
    returns: Py<PyArray1<f64>>,
    lengths: Py<PyArray1<i64>>,
    /// Which envs' episodes ended: the `_key` masks of `final_obs`, `final_info` and its keys
    /// `action_mask`, `episode`, `r`, `l`, one array each (as Gymnasium's vector envs give),
    /// each a row view of `ended_rows`, so that one write fills them all.
    ended: [Py<PyArray1<bool>>; 6],
    ended_rows: Py<PyArray2<bool>>,
}

impl FinalBuffers {
    fn new(py: Python<'_>, n: usize, d: usize, a: usize) -> PyResult<Self> {
        let obs_rows = PyArray2::<f32>::zeros(py, [n, d], false);
        let rows = (0..n)
            .map(|i| Ok(obs_rows.get_item(i)?.cast_into::<PyArray1<f32>>()?.unbind()))
            .collect::<PyResult<Vec<_>>>()?;
        let ended_rows = PyArray2::<bool>::zeros(py, [6, n], false);
        let ended = |i: usize| -> PyResult<Py<PyArray1<bool>>> {
            Ok(ended_rows
                .get_item(i)?
                .cast_into::<PyArray1<bool>>()?
                .unbind())
        };
        Ok(Self {
            obs: PyArray1::from_vec(py, (0..n).map(|_| py.None()).collect()).unbind(),
            rows,
            obs_rows: obs_rows.unbind(),
            masks: PyArray2::zeros(py, [n, a], false).unbind(),
            returns: PyArray1::zeros(py, n, false).unbind(),
            lengths: PyArray1::zeros(py, n, false).unbind(),
            ended: [
                ended(0)?,
                ended(1)?,
                ended(2)?,
                ended(3)?,
                ended(4)?,
                ended(5)?,
            ],
            ended_rows: ended_rows.unbind(),
        })
    }
}

type StepResult<'py> = (
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<bool>>,
    Bound<'py, PyArray1<bool>>,
    Bound<'py, PyDict>,
);

#[pymethods]
impl PyVecEnv {
    // The arguments are the Python constructor's keyword arguments, one for one.
    #[allow(clippy::too_many_arguments)]
    #[new]
    #[pyo3(signature = (scenario, num_envs, *, threads=1, seed=None, copy=true, scenario_dir=None, **overrides))]
    fn new(
        py: Python<'_>,
        scenario: &str,
        num_envs: usize,
        threads: usize,
        seed: Option<u64>,
        copy: bool,
        scenario_dir: Option<PathBuf>,
        overrides: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let resolved = resolve(scenario, seed, scenario_dir.as_deref(), overrides)?;
        let first_seed = Some(match &resolved {
            Resolved::Scenario(scenario) => scenario.seed(),
            Resolved::CartPole { seed } => *seed,
        });
        let venv: Box<dyn VectorEnv + Sync> = match &resolved {
            Resolved::CartPole { .. } if threads == 1 && num_envs > 0 => {
                Box::new(CartPoleVec::new(num_envs))
            }
            _ => {
                let envs: Vec<Sim> = (0..num_envs).map(|_| resolved.build()).collect();
                Box::new(
                    VecEnv::new(envs, threads)
                        .map_err(|e: VecEnvBuildError| ScenarioError::new_err(e.to_string()))?,
                )
            }
        };
        let (n, d, a) = (num_envs, venv.obs_dim(), venv.num_actions());
        let buffers = Buffers {
            obs: PyArray2::zeros(py, [n, d], false).unbind(),
            rewards: PyArray1::zeros(py, n, false).unbind(),
            terminated: PyArray1::from_vec(py, vec![false; n]).unbind(),
            truncated: PyArray1::from_vec(py, vec![false; n]).unbind(),
            masks: PyArray2::from_vec2(py, &vec![vec![false; a]; n])?.unbind(),
            all_true: PyArray1::from_vec(py, vec![true; n]).unbind(),
        };
        let finals = if copy {
            None
        } else {
            Some(FinalBuffers::new(py, n, d, a)?)
        };
        Ok(Self {
            venv,
            actions: vec![0; n],
            first_seed,
            copy,
            buffers,
            finals,
        })
    }

    /// Resets every env: `seed` an int (env `i` gets `seed + i`), a list (one per env), or
    /// `None` (continue each env's streams; the very first reset then uses the scenario's
    /// seed + i). Returns `(observations, {"action_mask": ..., "_action_mask": ...})`.
    #[pyo3(signature = (seed=None))]
    fn _reset<'py>(
        &mut self,
        py: Python<'py>,
        seed: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyArray2<f32>>, Bound<'py, PyDict>)> {
        match seed {
            Some(seed) => match seed.extract::<u64>() {
                Ok(seed) => self.venv.reset(Some(seed)),
                Err(_) => {
                    let seeds: Vec<u64> = seed.extract().map_err(|_| {
                        ScenarioError::new_err("seed must be None, an int ≥ 0 or a list of them")
                    })?;
                    if seeds.len() != self.venv.num_envs() {
                        return Err(ScenarioError::new_err(format!(
                            "{} seeds given for {} envs",
                            seeds.len(),
                            self.venv.num_envs()
                        )));
                    }
                    self.venv.reset_each(&seeds);
                }
            },
            None => self.venv.reset(self.first_seed),
        }
        self.first_seed = None;
        let (obs, _, _, _, masks) = self.write_outputs(py)?;
        let infos = PyDict::new(py);
        infos.set_item(intern!(py, "action_mask"), masks)?;
        infos.set_item(intern!(py, "_action_mask"), self.all_true(py))?;
        Ok((obs, infos))
    }

    /// Steps env `i` with `actions[i]` (an integer array or list), with the GIL released.
    /// Returns `(observations, rewards, terminations, truncations, infos)`.
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        actions: &Bound<'py, PyAny>,
    ) -> PyResult<StepResult<'py>> {
        self.read_actions(actions)?;
        let (venv, actions) = (&mut self.venv, &self.actions);
        py.detach(|| venv.step(actions))
            .map_err(|e| ActionError::new_err(e.to_string()))?;
        let (obs, rewards, terminated, truncated, masks) = self.write_outputs(py)?;
        let infos = PyDict::new(py);
        infos.set_item(intern!(py, "action_mask"), masks)?;
        infos.set_item(intern!(py, "_action_mask"), self.all_true(py))?;
        let n = self.venv.num_envs();
        if (0..n).any(|i| self.venv.finished_episode(i).is_some()) {
            match &self.finals {
                Some(finals) => self.write_final_infos(py, finals, &infos)?,
                None => self.add_final_infos(py, &infos)?,
            }
        }
        Ok((obs, rewards, terminated, truncated, infos))
    }

    #[getter]
    fn num_envs(&self) -> usize {
        self.venv.num_envs()
    }

    #[getter]
    fn num_threads(&self) -> usize {
        self.venv.num_threads()
    }

    #[getter]
    fn num_actions(&self) -> usize {
        self.venv.num_actions()
    }

    #[getter]
    fn obs_low<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        PyArray1::from_slice(py, &self.venv.observation_space().low)
    }

    #[getter]
    fn obs_high<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        PyArray1::from_slice(py, &self.venv.observation_space().high)
    }

    /// The legal actions of every env now, `(num_envs, num_actions)`.
    fn action_masks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<bool>>> {
        let (n, a) = (self.venv.num_envs(), self.venv.num_actions());
        PyArray1::from_slice(py, self.venv.action_masks()).reshape([n, a])
    }
}

impl PyVecEnv {
    fn read_actions(&mut self, actions: &Bound<'_, PyAny>) -> PyResult<()> {
        let n = self.actions.len();
        let bad = |i: usize, a: i64| {
            ActionError::new_err(format!(
                "env {i}: action {a} is outside the action space Discrete({})",
                self.venv.num_actions()
            ))
        };
        let wrong_len = |got: usize| {
            ActionError::new_err(format!("expected {n} actions (one per env), got {got}"))
        };
        if let Ok(array) = actions.extract::<PyReadonlyArray1<'_, i64>>() {
            if array.len() != n {
                return Err(wrong_len(array.len()));
            }
            for (i, (slot, &a)) in self
                .actions
                .iter_mut()
                .zip(array.as_array().iter())
                .enumerate()
            {
                *slot = usize::try_from(a).map_err(|_| bad(i, a))?;
            }
            return Ok(());
        }
        let list: Vec<i64> = actions.extract().map_err(|_| {
            ActionError::new_err("actions must be a 1-D integer array or a list of ints")
        })?;
        if list.len() != n {
            return Err(wrong_len(list.len()));
        }
        for (i, (slot, a)) in self.actions.iter_mut().zip(list).enumerate() {
            *slot = usize::try_from(a).map_err(|_| bad(i, a))?;
        }
        Ok(())
    }

    fn all_true<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<bool>> {
        if self.copy {
            PyArray1::from_vec(py, vec![true; self.venv.num_envs()])
        } else {
            self.buffers.all_true.bind(py).clone()
        }
    }

    /// The step outputs as arrays: fresh ones (`copy`) or the reused buffers.
    #[allow(clippy::type_complexity)]
    fn write_outputs<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(
        Bound<'py, PyArray2<f32>>,
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyArray1<bool>>,
        Bound<'py, PyArray1<bool>>,
        Bound<'py, PyArray2<bool>>,
    )> {
        let venv = &self.venv;
        let (n, d, a) = (venv.num_envs(), venv.obs_dim(), venv.num_actions());
        let rewards = venv.rewards().iter().map(|&r| f64::from(r));
        if self.copy {
            return Ok((
                PyArray1::from_slice(py, venv.observations()).reshape([n, d])?,
                PyArray1::from_iter(py, rewards),
                PyArray1::from_slice(py, venv.terminated()),
                PyArray1::from_slice(py, venv.truncated()),
                PyArray1::from_slice(py, venv.action_masks()).reshape([n, a])?,
            ));
        }
        let b = &self.buffers;
        let (obs, rew) = (b.obs.bind(py).clone(), b.rewards.bind(py).clone());
        let (term, trunc) = (b.terminated.bind(py).clone(), b.truncated.bind(py).clone());
        let masks = b.masks.bind(py).clone();
        obs.readwrite()
            .as_slice_mut()?
            .copy_from_slice(venv.observations());
        for (out, r) in rew.readwrite().as_slice_mut()?.iter_mut().zip(rewards) {
            *out = r;
        }
        term.readwrite()
            .as_slice_mut()?
            .copy_from_slice(venv.terminated());
        trunc
            .readwrite()
            .as_slice_mut()?
            .copy_from_slice(venv.truncated());
        masks
            .readwrite()
            .as_slice_mut()?
            .copy_from_slice(venv.action_masks());
        Ok((obs, rew, term, trunc, masks))
    }

    /// Gymnasium's `final_obs` / `final_info` for the envs whose episode ended on this step:
    /// `final_info` holds the final `action_mask`, `episode` (`r` return, `l` length) and, for
    /// scheduling envs, `episode_metrics`, each batched with its `_key` mask.
    fn add_final_infos(&self, py: Python<'_>, infos: &Bound<'_, PyDict>) -> PyResult<()> {
        let venv = &self.venv;
        let (n, a) = (venv.num_envs(), venv.num_actions());
        let ended: Vec<bool> = (0..n).map(|i| venv.finished_episode(i).is_some()).collect();
        let ended_array = || PyArray1::from_slice(py, &ended);

        let mut final_obs = Vec::with_capacity(n);
        let mut final_masks = vec![false; n * a];
        let (mut returns, mut lengths) = (vec![0.0f64; n], vec![0i64; n]);
        let mut any_metrics = false;
        for i in 0..n {
            match venv.final_observation(i) {
                Some(obs) => final_obs.push(PyArray1::from_slice(py, obs).into_py_any(py)?),
                None => final_obs.push(py.None()),
            }
            if let Some(mask) = venv.final_action_mask(i) {
                final_masks[i * a..(i + 1) * a].copy_from_slice(mask);
            }
            if let Some((stats, metrics)) = venv.finished_episode(i) {
                any_metrics |= metrics.is_some();
                returns[i] = stats.episode_return;
                lengths[i] = i64::try_from(stats.length).unwrap_or(i64::MAX);
            }
        }
        infos.set_item(intern!(py, "final_obs"), PyArray1::from_vec(py, final_obs))?;
        infos.set_item(intern!(py, "_final_obs"), ended_array())?;

        let final_info = PyDict::new(py);
        final_info.set_item(
            intern!(py, "action_mask"),
            PyArray1::from_vec(py, final_masks).reshape([n, a])?,
        )?;
        final_info.set_item(intern!(py, "_action_mask"), ended_array())?;
        let episode = PyDict::new(py);
        episode.set_item(intern!(py, "r"), PyArray1::from_vec(py, returns))?;
        episode.set_item(intern!(py, "_r"), ended_array())?;
        episode.set_item(intern!(py, "l"), PyArray1::from_vec(py, lengths))?;
        episode.set_item(intern!(py, "_l"), ended_array())?;
        final_info.set_item(intern!(py, "episode"), episode)?;
        final_info.set_item(intern!(py, "_episode"), ended_array())?;
        if any_metrics {
            self.add_final_metrics(py, &final_info)?;
        }
        infos.set_item(intern!(py, "final_info"), final_info)?;
        infos.set_item(intern!(py, "_final_info"), ended_array())?;
        Ok(())
    }

    /// [`PyVecEnv::add_final_infos`] with `copy` false: the same keys, holding the arrays of
    /// `finals` overwritten (`episode_metrics`, built from JSON, is new on every step).
    fn write_final_infos(
        &self,
        py: Python<'_>,
        finals: &FinalBuffers,
        infos: &Bound<'_, PyDict>,
    ) -> PyResult<()> {
        let venv = &self.venv;
        let (n, d, a) = (venv.num_envs(), venv.obs_dim(), venv.num_actions());
        let (obs, obs_rows) = (finals.obs.bind(py), finals.obs_rows.bind(py));
        let (masks, returns) = (finals.masks.bind(py), finals.returns.bind(py));
        let lengths = finals.lengths.bind(py);
        let mut any_metrics = false;
        {
            let mut ended = finals.ended_rows.bind(py).readwrite();
            let ended = ended.as_slice_mut()?;
            let (mut obs_rows, mut masks) = (obs_rows.readwrite(), masks.readwrite());
            let (obs_rows, masks) = (obs_rows.as_slice_mut()?, masks.as_slice_mut()?);
            let (mut returns, mut lengths) = (returns.readwrite(), lengths.readwrite());
            let (returns, lengths) = (returns.as_slice_mut()?, lengths.as_slice_mut()?);
            ended[..n].fill(false);
            masks.fill(false);
            returns.fill(0.0);
            lengths.fill(0);
            for i in 0..n {
                let Some((stats, metrics)) = venv.finished_episode(i) else {
                    continue;
                };
                any_metrics |= metrics.is_some();
                ended[i] = true;
                returns[i] = stats.episode_return;
                lengths[i] = i64::try_from(stats.length).unwrap_or(i64::MAX);
                if let (Some(last), Some(mask)) =
                    (venv.final_observation(i), venv.final_action_mask(i))
                {
                    obs_rows[i * d..(i + 1) * d].copy_from_slice(last);
                    masks[i * a..(i + 1) * a].copy_from_slice(mask);
                }
            }
            let mut obs = obs.readwrite();
            for ((entry, row), &ended) in obs
                .as_slice_mut()?
                .iter_mut()
                .zip(&finals.rows)
                .zip(&*ended)
            {
                if ended && entry.as_ptr() != row.as_ptr() {
                    *entry = row.clone_ref(py).into_any();
                } else if !ended && !entry.is_none(py) {
                    *entry = py.None();
                }
            }
            for k in 1..6 {
                ended.copy_within(..n, k * n);
            }
        }
        let ended = finals.ended.each_ref().map(|array| array.bind(py).clone());
        let [
            ended_obs,
            ended_info,
            ended_mask,
            ended_episode,
            ended_r,
            ended_l,
        ] = ended;
        infos.set_item(intern!(py, "final_obs"), obs)?;
        infos.set_item(intern!(py, "_final_obs"), ended_obs)?;
        let final_info = PyDict::new(py);
        final_info.set_item(intern!(py, "action_mask"), masks)?;
        final_info.set_item(intern!(py, "_action_mask"), ended_mask)?;
        let episode = PyDict::new(py);
        episode.set_item(intern!(py, "r"), returns)?;
        episode.set_item(intern!(py, "_r"), ended_r)?;
        episode.set_item(intern!(py, "l"), lengths)?;
        episode.set_item(intern!(py, "_l"), ended_l)?;
        final_info.set_item(intern!(py, "episode"), episode)?;
        final_info.set_item(intern!(py, "_episode"), ended_episode)?;
        if any_metrics {
            self.add_final_metrics(py, &final_info)?;
        }
        infos.set_item(intern!(py, "final_info"), final_info)?;
        infos.set_item(intern!(py, "_final_info"), ended_info)?;
        Ok(())
    }

    /// `final_info["episode_metrics"]` (with its `_key` mask), for a step on which an env that
    /// reports scheduling metrics ended its episode (CartPole reports none).
    fn add_final_metrics(&self, py: Python<'_>, final_info: &Bound<'_, PyDict>) -> PyResult<()> {
        let venv = &self.venv;
        let metrics: Vec<Option<serde_json::Map<String, serde_json::Value>>> = (0..venv.num_envs())
            .map(|i| {
                venv.finished_episode(i).and_then(|(_, m)| m).and_then(|m| {
                    match serde_json::to_value(m) {
                        Ok(serde_json::Value::Object(map)) => Some(map),
                        _ => None,
                    }
                })
            })
            .collect();
        let has: Vec<bool> = metrics.iter().map(Option::is_some).collect();
        final_info.set_item(intern!(py, "episode_metrics"), batch_metrics(py, &metrics)?)?;
        final_info.set_item(intern!(py, "_episode_metrics"), PyArray1::from_vec(py, has))?;
        Ok(())
    }
}

/// One array per metric over the envs (float64; a vector metric such as `utilization` a
/// `(num_envs, len)` array), beside its `_key` mask of the envs that have it.
fn batch_metrics<'py>(
    py: Python<'py>,
    metrics: &[Option<serde_json::Map<String, serde_json::Value>>],
) -> PyResult<Bound<'py, PyDict>> {
    let n = metrics.len();
    let mut keys: BTreeMap<&str, usize> = BTreeMap::new();
    for map in metrics.iter().flatten() {
        for (key, value) in map {
            let width = value.as_array().map_or(1, Vec::len);
            let w = keys.entry(key.as_str()).or_insert(width);
            *w = (*w).max(width);
        }
    }
    let dict = PyDict::new(py);
    for (key, width) in keys {
        let mut values = vec![0.0f64; n * width];
        let mut has = vec![false; n];
        for (i, map) in metrics.iter().enumerate() {
            let Some(value) = map.as_ref().and_then(|m| m.get(key)) else {
                continue;
            };
            let row = &mut values[i * width..(i + 1) * width];
            match value {
                serde_json::Value::Array(items) => {
                    for (out, item) in row.iter_mut().zip(items) {
                        *out = item.as_f64().unwrap_or(f64::NAN);
                    }
                    has[i] = true;
                }
                serde_json::Value::Null => {}
                other => {
                    row[0] = other.as_f64().unwrap_or(f64::NAN);
                    has[i] = true;
                }
            }
        }
        let array = PyArray1::from_vec(py, values);
        if metrics
            .iter()
            .flatten()
            .any(|m| m.get(key).is_some_and(serde_json::Value::is_array))
        {
            dict.set_item(key, array.reshape([n, width])?)?;
        } else {
            dict.set_item(key, array)?;
        }
        dict.set_item(format!("_{key}"), PyArray1::from_vec(py, has))?;
    }
    Ok(dict)
}

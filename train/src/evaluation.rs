//! Evaluation on held-out seeds, greedy or sampled (`eval.sampled`): [`evaluate`] (used by
//! both training loops and by the search's fitness), and the periodic evaluation's
//! TensorBoard points with the reference heuristics' scores beside them ([`Evaluator`]), also
//! appended to `evaluations.jsonl` in the run directory for programs that follow a run while
//! it trains (Ray Tune's trainable).
//!
//! Model selection (the `best` checkpoint) on a scheduling env uses the completion-aware mean
//! slowdown, which charges unfinished and dropped tasks, on the evaluation seeds: every
//! contender plays the same seeds, so the lowest mean is the best paired difference against
//! the best heuristic, which is logged beside it (`eval/vs_best_heuristic`). Where the
//! scenario's objective is another metric (bounded slowdown on HPC traces), `eval.select =
//! "return"` selects on the episode return, which is that objective.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use lepton_agent::checkpoint;
use lepton_agent::distributions::{MaskedCategorical, episode_sampler, sample_masked};
use lepton_agent::networks::Policy;
use lepton_agent::normalize::ObsNormalizer;
use lepton_env::scenario::EpisodeUse;
use lepton_env::{Env, VecEnv};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Tensor};

use crate::config::{Selection, TrainConfig};
use crate::envs::EnvSpec;
use crate::run::TrainError;
use crate::tensorboard::TbWriter;

/// Mean results of one evaluation.
#[derive(Clone, Debug)]
pub struct EvalResult {
    pub mean_return: f64,
    pub mean_length: f64,
    /// Finished tasks only (flatters a policy that leaves work unfinished).
    pub mean_slowdown: Option<f64>,
    /// Completion-aware: every arrived task counts (scheduling envs).
    pub completion_slowdown: Option<f64>,
    /// Mean per episode of the tasks left unfinished at the episode's end and of the tasks
    /// dropped (scheduling envs): what a policy that "wins" by not scheduling leaves behind.
    pub mean_unfinished: Option<f64>,
    pub mean_dropped: Option<f64>,
}

impl EvalResult {
    /// What model selection maximises (see [`Selection`]).
    pub fn selection_score(&self, select: Selection) -> f64 {
        match select {
            Selection::Slowdown => self.completion_slowdown.map_or(self.mean_return, |c| -c),
            Selection::Return => self.mean_return,
        }
    }
}

/// Plays one episode per held-out seed (`eval.seed + i`) with the current policy, greedy
/// ([`Policy::greedy`]) or sampled (`eval.sampled`). Uses none of the training RNG streams, so
/// evaluating never changes training.
pub fn evaluate(
    spec: &EnvSpec,
    policy: &Policy,
    normalizer: Option<&ObsNormalizer>,
    config: &TrainConfig,
    device: Device,
) -> Result<EvalResult, TrainError> {
    let seeds: Vec<u64> = (0..config.eval.num_episodes as u64)
        .map(|i| config.eval.seed.wrapping_add(i))
        .collect();
    let mut venv = episode_envs(spec, seeds.len(), config.run.env_threads)?;
    let actions = if config.eval.sampled {
        Actions::Sampled
    } else {
        Actions::Greedy
    };
    play(&mut venv, policy, normalizer, &seeds, device, actions).map_err(|e| match e {
        TrainError::EnvStep(e) => TrainError::EvalEnvStep(e),
        e => e,
    })
}

/// `n` envs of `spec` in one [`VecEnv`] on `env_threads` threads, for [`play`] (which
/// resets them: one set can play any number of rounds of episodes).
pub(crate) fn episode_envs(
    spec: &EnvSpec,
    n: usize,
    env_threads: usize,
) -> Result<VecEnv<Box<dyn Env>>, TrainError> {
    Ok(VecEnv::new(
        (0..n).map(|_| spec.make()).collect(),
        env_threads,
    )?)
}

/// How [`play`] chooses actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Actions {
    /// The most likely legal action.
    Greedy,
    /// A draw from the masked distribution, episode `seeds[i]`'s from
    /// [`episode_sampler`]`(seeds[i])`.
    Sampled,
}

/// Plays one episode per seed, env `i` of `venv` from `seeds[i]`, all at once, and returns
/// their means (`mean_length` × the number of seeds is the env steps taken). A failed env step
/// is [`TrainError::EnvStep`].
pub(crate) fn play(
    venv: &mut VecEnv<Box<dyn Env>>,
    policy: &Policy,
    normalizer: Option<&ObsNormalizer>,
    seeds: &[u64],
    device: Device,
    how: Actions,
) -> Result<EvalResult, TrainError> {
    let n = seeds.len();
    let mut samplers: Vec<ChaCha8Rng> = seeds.iter().map(|&s| episode_sampler(s)).collect();
    venv.reset_each(seeds);
    let (dim, num_actions) = (venv.obs_dim(), venv.num_actions());
    /// Return, length and, on scheduling envs, (mean slowdown, completion slowdown,
    /// unfinished, dropped).
    type Done = (f64, usize, Option<[f64; 4]>);
    let mut finished: Vec<Option<Done>> = vec![None; n];
    let mut obs = vec![0.0f32; n * dim];
    let mut actions = vec![0usize; n];
    while finished.iter().any(Option::is_none) {
        obs.copy_from_slice(venv.observations());
        if let Some(norm) = normalizer {
            norm.normalize(&mut obs);
        }
        // Greedy: the chosen actions `[n]`; sampled: the probabilities `[n × num_actions]`.
        let out = tch::no_grad(|| {
            let obs_t = Tensor::from_slice(&obs)
                .view([n as i64, dim as i64])
                .to_device(device);
            let mask_t = Tensor::from_slice(venv.action_masks())
                .view([n as i64, num_actions as i64])
                .to_device(device);
            match how {
                Actions::Greedy => policy.greedy(&obs_t, &mask_t),
                Actions::Sampled => MaskedCategorical::new(&policy.forward(&obs_t).0, &mask_t)
                    .probs()
                    .reshape([-1]),
            }
            .to_device(Device::Cpu)
        });
        match how {
            Actions::Greedy => {
                for (i, a) in actions.iter_mut().enumerate() {
                    *a = out.int64_value(&[i as i64]) as usize;
                }
            }
            Actions::Sampled => {
                let probs = Vec::<f32>::try_from(&out).expect("f32 probabilities");
                let masks = venv.action_masks();
                for i in 0..n {
                    let row = i * num_actions..(i + 1) * num_actions;
                    if finished[i].is_some() {
                        // Its episode is over: any legal action, and no draw, so that each
                        // episode's stream is the one lepton-eval's `--sampled` draws from.
                        actions[i] = masks[row].iter().position(|&legal| legal).unwrap_or(0);
                        continue;
                    }
                    sample_masked(
                        &probs[row.clone()],
                        &masks[row],
                        num_actions,
                        &mut samplers[i],
                        &mut actions[i..=i],
                    );
                }
            }
        }
        venv.step(&actions)?;
        for (i, slot) in finished.iter_mut().enumerate() {
            if slot.is_none()
                && let Some((stats, metrics)) = venv.finished_episode(i)
            {
                *slot = Some((
                    stats.episode_return,
                    stats.length,
                    metrics.map(|m| {
                        [
                            m.mean_slowdown,
                            m.completion_slowdown,
                            m.num_unfinished as f64,
                            m.num_dropped as f64,
                        ]
                    }),
                ));
            }
        }
    }
    let done: Vec<Done> = finished.into_iter().flatten().collect();
    let k = done.len() as f64;
    let metrics: Vec<[f64; 4]> = done.iter().filter_map(|d| d.2).collect();
    let mean_of = |i: usize| {
        (!metrics.is_empty())
            .then(|| metrics.iter().map(|m| m[i]).sum::<f64>() / metrics.len() as f64)
    };
    Ok(EvalResult {
        mean_return: done.iter().map(|d| d.0).sum::<f64>() / k,
        mean_length: done.iter().map(|d| d.1 as f64).sum::<f64>() / k,
        mean_slowdown: mean_of(0),
        completion_slowdown: mean_of(1),
        mean_unfinished: mean_of(2),
        mean_dropped: mean_of(3),
    })
}

/// Says on stderr, in one line, when the model-selection episodes cannot differ from the
/// training episodes (a replayed workload without windows), or train on a split's test part.
fn warn_if_not_held_out(spec: &EnvSpec, config: &TrainConfig) {
    let path = config
        .eval
        .scenario
        .as_ref()
        .or(config.env.scenario.as_ref());
    if let (Some(scenario), Some(path)) = (spec.scenario(), path) {
        let name = path.display().to_string();
        if let Some(warning) = scenario.held_out_warning(&name, EpisodeUse::ModelSelection) {
            eprintln!("warning: {warning}");
        }
    }
}

/// The name of a run's evaluation log in its run directory.
pub const EVALUATIONS_FILE: &str = "evaluations.jsonl";

/// `run_dir/evaluations.jsonl`: one JSON object per periodic evaluation, one line each,
/// holding `step` and the values of the evaluation's `eval/*` TensorBoard points under the
/// same names without the prefix (a value the env does not have, e.g. a slowdown on CartPole,
/// is absent). Each line is written whole with one `write`, so a reader that takes only
/// complete lines never sees half of one.
struct EvalLog {
    path: PathBuf,
}

impl EvalLog {
    /// The log of a session that starts at `global_step`: the lines of evaluations past it
    /// are dropped (a resumed run redoes them, with the same values on the CPU), so the log
    /// of an interrupted and resumed run is that of an uninterrupted one.
    fn open(run_dir: &Path, global_step: u64) -> Result<Self, TrainError> {
        let path = run_dir.join(EVALUATIONS_FILE);
        if let Ok(text) = fs::read_to_string(&path) {
            let kept: String = text
                .lines()
                .filter(|line| {
                    serde_json::from_str::<serde_json::Value>(line)
                        .ok()
                        .and_then(|v| v["step"].as_u64())
                        .is_some_and(|step| step <= global_step)
                })
                .map(|line| format!("{line}\n"))
                .collect();
            if kept != text {
                checkpoint::write_atomic(&path, kept.as_bytes())?;
            }
        }
        Ok(Self { path })
    }

    fn append(&self, entry: &serde_json::Value) -> Result<(), TrainError> {
        let line = format!("{entry}\n");
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .map_err(TrainError::io(&self.path))
    }
}

/// A run's periodic evaluation: the env spec, config and device to evaluate with, the
/// reference heuristics' completion-aware mean slowdowns on the evaluation seeds (computed once
/// per session), and the run's evaluation log.
pub(crate) struct Evaluator<'a> {
    spec: &'a EnvSpec,
    config: &'a TrainConfig,
    device: Device,
    heuristics: Vec<(String, f64)>,
    log: EvalLog,
}

impl<'a> Evaluator<'a> {
    /// Scores the reference heuristics (SJF, Packer, Tetris) when the run evaluates at all, and
    /// opens the evaluation log of a session starting at `global_step` in `run_dir`.
    pub fn new(
        spec: &'a EnvSpec,
        config: &'a TrainConfig,
        device: Device,
        run_dir: &Path,
        global_step: u64,
    ) -> Result<Self, TrainError> {
        if config.eval.every_steps > 0 {
            warn_if_not_held_out(spec, config);
        }
        let heuristics = if config.eval.every_steps > 0 {
            spec.heuristic_slowdowns(config.eval.seed, config.eval.num_episodes)
                .map_err(TrainError::Heuristics)?
        } else {
            Vec::new()
        };
        Ok(Self {
            spec,
            config,
            device,
            heuristics,
            log: EvalLog::open(run_dir, global_step)?,
        })
    }

    /// Evaluates `policy` greedily and logs the `eval/*` points at `step`, to TensorBoard and
    /// to the evaluation log.
    pub fn evaluate_and_log(
        &self,
        tb: &mut TbWriter,
        policy: &Policy,
        normalizer: Option<&ObsNormalizer>,
        step: u64,
    ) -> Result<EvalResult, TrainError> {
        let result = evaluate(self.spec, policy, normalizer, self.config, self.device)?;
        let mut points: Vec<(String, f64)> = vec![
            ("episodic_return".into(), result.mean_return),
            ("episodic_length".into(), result.mean_length),
        ];
        for (name, value) in [
            ("mean_slowdown", result.mean_slowdown),
            ("unfinished_tasks", result.mean_unfinished),
            ("dropped_tasks", result.mean_dropped),
        ] {
            points.extend(value.map(|v| (name.to_string(), v)));
        }
        for (name, slowdown) in &self.heuristics {
            points.push((format!("heuristic_{name}_completion_slowdown"), *slowdown));
        }
        if let Some(completion) = result.completion_slowdown {
            points.push(("completion_slowdown".into(), completion));
            if let Some(best) = self.heuristics.iter().map(|h| h.1).reduce(f64::min) {
                points.push(("best_heuristic_completion_slowdown".into(), best));
                // Same seeds for both: the relative paired difference of the means
                // (negative = the policy is better).
                points.push(("vs_best_heuristic".into(), completion / best - 1.0));
            }
        }
        let mut entry = serde_json::Map::new();
        entry.insert("step".into(), step.into());
        for (name, value) in &points {
            tb.scalar(&format!("eval/{name}"), *value, step);
            entry.insert(name.clone(), (*value).into());
        }
        self.log.append(&serde_json::Value::Object(entry))?;
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_scores_by_slowdown_or_by_return() {
        let scheduling = EvalResult {
            mean_return: -120.0,
            mean_length: 50.0,
            mean_slowdown: Some(2.0),
            completion_slowdown: Some(2.5),
            mean_unfinished: Some(0.0),
            mean_dropped: Some(0.0),
        };
        assert_eq!(scheduling.selection_score(Selection::Slowdown), -2.5);
        assert_eq!(scheduling.selection_score(Selection::Return), -120.0);
        let cartpole = EvalResult {
            completion_slowdown: None,
            mean_slowdown: None,
            mean_return: 500.0,
            ..scheduling
        };
        assert_eq!(cartpole.selection_score(Selection::Slowdown), 500.0);
    }
}

//! The PPO training loop (CleanRL's `ppo.py`, read top to bottom): collect `num_steps` from
//! every env with the current policy, compute GAE, update, log, evaluate, checkpoint; repeat
//! until `total_steps`.
//! The run bookkeeping it shares with the DQN loop lives in `crate::session`.
//!
//! Reproducibility: every random stream is seeded from `train.seed` — libtorch's RNG (weight
//! initialisation only), a ChaCha stream for action sampling, one for minibatch shuffling, and
//! one base seed per env from which each episode's seed is derived ([`crate::envs`]). All of
//! them, with the optimizer and the observation normaliser, go into every checkpoint, and
//! checkpoints are taken at rollout boundaries, so on the CPU a resumed run continues exactly
//! as if it had not stopped.
//!
//! Threads: libtorch gets `run.torch_threads` intra-op threads (1 by default, one inter-op
//! thread) and the envs `run.env_threads` rayon threads; on a 2-core machine 1 + 1 keeps both
//! cores busy without oversubscription (rollout inference and env stepping alternate, and the
//! networks here are too small for a second torch thread to pay off).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use lepton_agent::checkpoint::{self, SaveRequest};
use lepton_agent::distributions::{MaskedCategorical, sample_masked};
use lepton_agent::networks::{Policy, with_torch_rng};
use lepton_agent::normalize::ObsNormalizer;
use lepton_agent::ppo::{self, Adam, UpdateStats};
use lepton_agent::rollout::RolloutBuffer;
use lepton_env::{Env, VecEnv};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::config::{Algo, TrainConfig};
use crate::envs::{DynEnv, EnvSnapshot, EnvSpec, Replayable, mix64};
use crate::session::{
    EpisodeTracker, RunLogs, RunSetup, SessionClock, StopCheck, crossed, diverged, fmt_return,
    log_eval, make_progress, resume_checkpoint, save_periodic, write_summary,
};
use crate::tensorboard::TbWriter;

/// Episodes in the running mean shown by the progress bar and recorded in `summary.json`.
pub const RETURN_WINDOW: usize = 20;

/// How to run besides the config.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// `runs/<name>`: config, event files, `checkpoints/`, `summary.json`.
    pub run_dir: PathBuf,
    /// Continue from the newest periodic checkpoint in `run_dir/checkpoints`.
    pub resume: bool,
    /// Stop with a resumable checkpoint once this many env steps are done (as if interrupted).
    pub stop_at_step: Option<u64>,
    /// Show a progress bar (when stderr is a terminal); otherwise log lines.
    pub progress: bool,
    /// Set (e.g. by a Ctrl-C handler) to stop after the current iteration, with a checkpoint.
    pub interrupt: Arc<AtomicBool>,
}

/// How a run ended without error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    /// `stop_at_step` reached; resumable.
    Stopped,
    /// Interrupted (Ctrl-C); resumable.
    Interrupted,
}

/// What a run did.
#[derive(Debug)]
pub struct RunSummary {
    pub outcome: Outcome,
    pub global_step: u64,
    /// One entry per PPO update of this session, in order (empty for DQN runs, whose losses go
    /// to TensorBoard).
    pub updates: Vec<UpdateStats>,
    /// The metadata file of the last checkpoint written.
    pub last_checkpoint: PathBuf,
    pub mean_return: Option<f64>,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Bad config or incompatible resume (exit code 2).
    #[error("{0}")]
    Config(String),
    /// Non-finite loss (exit code 3).
    #[error("training diverged at env step {step}: {reason}\n  last good checkpoint: {}", last_checkpoint.as_ref().map_or("none yet".into(), |p| p.display().to_string()))]
    Diverged {
        step: u64,
        reason: String,
        last_checkpoint: Option<PathBuf>,
    },
    /// IO or anything else (exit code 1).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// A ChaCha stream's position, exactly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct RngState {
    seed: Vec<u8>,
    stream: u64,
    /// u128 as a decimal string (JSON numbers are not 128-bit).
    word_pos: String,
}

impl RngState {
    pub(crate) fn of(rng: &ChaCha8Rng) -> Self {
        Self {
            seed: rng.get_seed().to_vec(),
            stream: rng.get_stream(),
            word_pos: rng.get_word_pos().to_string(),
        }
    }

    pub(crate) fn restore(&self) -> Result<ChaCha8Rng, String> {
        let seed: [u8; 32] = self
            .seed
            .as_slice()
            .try_into()
            .map_err(|_| "RNG seed is not 32 bytes".to_string())?;
        let mut rng = ChaCha8Rng::from_seed(seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(
            self.word_pos
                .parse()
                .map_err(|_| "bad RNG word position".to_string())?,
        );
        Ok(rng)
    }
}

/// Everything the loop needs to continue exactly, saved as a checkpoint's `trainer_state`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct TrainerState {
    action_rng: RngState,
    minibatch_rng: RngState,
    envs: Vec<EnvSnapshot>,
    recent_returns: Vec<f64>,
    best_eval_return: Option<f64>,
    /// (env step, mean of the last 20 returns) each time that mean reached a new high.
    return_highs: Vec<(u64, f64)>,
    num_episodes: u64,
}

/// Stream tags mixed with the run seed so that the streams are independent.
const ENV_STREAM: u64 = 0x656e_7673;
const ACTION_STREAM: u64 = 0x6163_7473;
const MINIBATCH_STREAM: u64 = 0x6d62_7368;

pub(crate) static TORCH_THREADS: std::sync::Once = std::sync::Once::new();

/// Trains with `config` (already resolved and validated); `algo = "dqn"` runs the sibling loop
/// [`crate::dqn_loop::run`].
pub fn run(config: &TrainConfig, options: &RunOptions) -> Result<RunSummary, TrainError> {
    if config.algo == Algo::Dqn {
        return crate::dqn_loop::run(config, options);
    }
    let RunSetup {
        device,
        spec,
        ckpt_dir,
    } = RunSetup::open(config, options)?;

    let ppo_cfg = &config.ppo;
    let (num_envs, num_steps) = (ppo_cfg.num_envs, ppo_cfg.num_steps);
    let seed = config.train.seed;
    let envs: Vec<Replayable> = (0..num_envs)
        .map(|_| Replayable::new(spec.make()))
        .collect();
    let mut venv = VecEnv::new(envs, config.run.env_threads).map_err(|e| anyhow::anyhow!("{e}"))?;
    let layout = venv.env(0).obs_layout();
    let (obs_dim, num_actions) = (venv.obs_dim(), venv.num_actions());

    let policy = with_torch_rng(Some(seed as i64), || {
        Policy::new(&config.network, layout, num_actions, device)
    })
    .map_err(|e| TrainError::Config(e.to_string()))?;
    let mut adam = Adam::new(&policy, ppo_cfg.adam_eps);
    let mut normalizer = ppo_cfg
        .normalize_obs
        .then(|| ObsNormalizer::new(obs_dim, 10.0));
    let mut action_rng = ChaCha8Rng::seed_from_u64(mix64(seed ^ ACTION_STREAM));
    let mut minibatch_rng = ChaCha8Rng::seed_from_u64(mix64(seed ^ MINIBATCH_STREAM));
    let mut episodes = EpisodeTracker::new();
    let mut global_step = 0u64;
    let mut start_iteration = 1usize;
    let mut last_checkpoint: Option<PathBuf> = None;

    if options.resume {
        let (meta_path, meta) =
            resume_checkpoint(&ckpt_dir, &options.run_dir, config, obs_dim, num_actions)?;
        checkpoint::load_weights(&meta_path, &meta, &policy)
            .map_err(|e| TrainError::Config(e.to_string()))?;
        checkpoint::load_optimizer(&meta_path, &meta, &mut adam)
            .map_err(|e| TrainError::Config(e.to_string()))?;
        normalizer = meta.normalizer.clone();
        let state: TrainerState =
            serde_json::from_value(meta.trainer_state.clone()).map_err(|e| {
                TrainError::Config(format!("{}: bad trainer state: {e}", meta_path.display()))
            })?;
        let bad_rng = |e: String| TrainError::Config(format!("{}: {e}", meta_path.display()));
        action_rng = state.action_rng.restore().map_err(bad_rng)?;
        minibatch_rng = state.minibatch_rng.restore().map_err(bad_rng)?;
        if state.envs.len() != num_envs {
            return Err(TrainError::Config(format!(
                "{}: saved {} envs, config has {num_envs}",
                meta_path.display(),
                state.envs.len()
            )));
        }
        for (i, snap) in state.envs.into_iter().enumerate() {
            venv.env_mut(i).restore_on_next_reset(snap);
        }
        episodes = EpisodeTracker::restored(
            state.recent_returns,
            state.return_highs,
            state.num_episodes,
            state.best_eval_return,
        );
        global_step = meta.global_step;
        start_iteration = meta.iteration as usize + 1;
        last_checkpoint = Some(meta_path);
    }
    venv.reset(Some(mix64(seed ^ ENV_STREAM)));

    let RunLogs {
        config_toml,
        mut tb,
        heuristics,
    } = RunLogs::start(config, options, &spec, global_step)?;
    let num_iterations = config.num_iterations();
    let mut buffer = RolloutBuffer::new(num_steps, num_envs, obs_dim, num_actions, device);
    let mut obs_buf = vec![0.0f32; num_envs * obs_dim];
    let mut actions = vec![0usize; num_envs];
    let mut actions_i64 = vec![0i64; num_envs];
    let mut rewards = vec![0.0f32; num_envs];
    let mut over = vec![0.0f32; num_envs];
    let mut updates = Vec::new();

    let progress = make_progress(options.progress, config.train.total_steps, global_step);
    let clock = SessionClock::start(global_step);
    let (mut t_env, mut t_infer, mut t_update) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let eval_every = config.eval.every_steps;
    let ckpt_every = config.run.checkpoint_every_steps;
    let iteration_steps = (num_envs * num_steps) as u64;
    let mut outcome = Outcome::Finished;

    let save = |kind: &str,
                global_step: u64,
                iteration: usize,
                policy: &Policy,
                adam: &Adam,
                normalizer: Option<&ObsNormalizer>,
                state: TrainerState|
     -> Result<PathBuf, TrainError> {
        checkpoint::save(
            &ckpt_dir,
            SaveRequest {
                kind,
                global_step,
                iteration: iteration as u64,
                seed,
                config_toml: &config_toml,
                network: &config.network,
                policy,
                optimizer: adam,
                normalizer,
                trainer_state: serde_json::to_value(state).expect("trainer state serialises"),
            },
        )
        .map_err(|e| TrainError::Other(anyhow::anyhow!("{e}")))
    };

    let mut iteration = start_iteration;
    while iteration <= num_iterations {
        let lr = ppo::annealed_lr(ppo_cfg, iteration, num_iterations);
        for step in 0..num_steps {
            global_step += num_envs as u64;
            let t0 = Instant::now();
            obs_buf.copy_from_slice(venv.observations());
            if let Some(norm) = normalizer.as_mut() {
                norm.update(&obs_buf);
                norm.normalize(&mut obs_buf);
            }
            let obs_t = Tensor::from_slice(&obs_buf)
                .view([num_envs as i64, obs_dim as i64])
                .to_device(device);
            let mask_t = Tensor::from_slice(venv.action_masks())
                .view([num_envs as i64, num_actions as i64])
                .to_device(device);
            let (dist, values) = tch::no_grad(|| {
                let (logits, values) = policy.forward(&obs_t);
                (MaskedCategorical::new(&logits, &mask_t), values)
            });
            let probs = Vec::<f32>::try_from(dist.probs().to_device(Device::Cpu).reshape([-1]))
                .map_err(|e| anyhow::anyhow!("reading probabilities: {e}"))?;
            sample_masked(
                &probs,
                venv.action_masks(),
                num_actions,
                &mut action_rng,
                &mut actions,
            );
            for (dst, &a) in actions_i64.iter_mut().zip(&actions) {
                *dst = a as i64;
            }
            let actions_t = Tensor::from_slice(&actions_i64).to_device(device);
            let log_probs = dist.log_prob(&actions_t);
            buffer.record_decision(step, &obs_t, &mask_t, &actions_t, &log_probs, &values);
            let t1 = Instant::now();
            venv.step(&actions)
                .map_err(|e| anyhow::anyhow!("env step failed: {e}"))?;
            let t2 = Instant::now();
            for (r, &raw) in rewards.iter_mut().zip(venv.rewards()) {
                *r = raw * ppo_cfg.reward_scale as f32;
            }
            let (terminated, truncated) = (venv.terminated(), venv.truncated());
            for (o, (&term, &trunc)) in over.iter_mut().zip(terminated.iter().zip(truncated)) {
                *o = if term || trunc { 1.0 } else { 0.0 };
            }
            bootstrap_truncated(
                &venv,
                &policy,
                normalizer.as_ref(),
                ppo_cfg.gamma,
                device,
                &mut rewards,
            );
            buffer.record_outcome(step, &rewards, &over);
            for i in 0..num_envs {
                let Some((episode_return, length)) = venv.env(i).last_episode else {
                    continue;
                };
                let metrics = venv.finished_episode(i).and_then(|(_, m)| m);
                episodes.record(
                    &mut tb,
                    episode_return,
                    length,
                    metrics,
                    &spec.resource_names,
                    global_step,
                );
            }
            t_infer += t1 - t0;
            t_env += t2 - t1;
            t_infer += t2.elapsed();
        }

        let t0 = Instant::now();
        obs_buf.copy_from_slice(venv.observations());
        if let Some(norm) = normalizer.as_ref() {
            norm.normalize(&mut obs_buf);
        }
        let next_obs = Tensor::from_slice(&obs_buf)
            .view([num_envs as i64, obs_dim as i64])
            .to_device(device);
        let next_values = tch::no_grad(|| policy.forward(&next_obs).1);
        let batch = buffer.finish(&next_values, ppo_cfg.gamma, ppo_cfg.gae_lambda);
        let stats = ppo::update(ppo_cfg, &policy, &mut adam, &batch, lr, &mut minibatch_rng)
            .map_err(|e| {
                diverged(
                    &mut tb,
                    &progress,
                    global_step,
                    e.to_string(),
                    last_checkpoint.clone(),
                )
            })?;
        t_update += t0.elapsed();

        let sps = clock.sps(global_step);
        let total_time = (t_env + t_infer + t_update).as_secs_f64().max(1e-9);
        tb.scalar("charts/learning_rate", lr, global_step);
        tb.scalar("charts/sps", sps, global_step);
        tb.scalar(
            "perf/env_share",
            t_env.as_secs_f64() / total_time,
            global_step,
        );
        tb.scalar(
            "perf/inference_share",
            t_infer.as_secs_f64() / total_time,
            global_step,
        );
        tb.scalar(
            "perf/update_share",
            t_update.as_secs_f64() / total_time,
            global_step,
        );
        tb.scalar("losses/policy_loss", stats.policy_loss, global_step);
        tb.scalar("losses/value_loss", stats.value_loss, global_step);
        tb.scalar("losses/entropy", stats.entropy, global_step);
        tb.scalar("losses/old_approx_kl", stats.old_approx_kl, global_step);
        tb.scalar("losses/approx_kl", stats.approx_kl, global_step);
        tb.scalar("losses/clipfrac", stats.clipfrac, global_step);
        tb.scalar(
            "losses/explained_variance",
            stats.explained_variance,
            global_step,
        );
        updates.push(stats);

        let mean_return = episodes.mean_return();
        progress.set_position(global_step);
        progress.set_message(format!("sps {sps:.0} | return {}", fmt_return(mean_return)));
        if progress.is_hidden()
            && (iteration.is_multiple_of(config.run.log_every_iterations)
                || iteration == num_iterations)
        {
            eprintln!(
                "step {global_step}/{} | sps {sps:.0} | mean return ({RETURN_WINDOW} ep) {} | episodes {}",
                config.train.total_steps,
                fmt_return(mean_return),
                episodes.num_episodes
            );
        }

        let snapshot = |venv: &VecEnv<Replayable>,
                        action_rng: &ChaCha8Rng,
                        minibatch_rng: &ChaCha8Rng,
                        episodes: &EpisodeTracker| TrainerState {
            action_rng: RngState::of(action_rng),
            minibatch_rng: RngState::of(minibatch_rng),
            envs: (0..num_envs).map(|i| venv.env(i).snapshot()).collect(),
            recent_returns: episodes.recent_returns_vec(),
            best_eval_return: episodes.best_eval_return,
            return_highs: episodes.return_highs.clone(),
            num_episodes: episodes.num_episodes,
        };

        let crossed = |every: u64| crossed(every, global_step, iteration_steps);
        let last = iteration == num_iterations;
        if crossed(eval_every) || (last && eval_every > 0) {
            let result = evaluate(&spec, &policy, normalizer.as_ref(), config, device)?;
            log_eval(&mut tb, &heuristics, &result, global_step);
            if episodes.improves_eval(result.mean_return) {
                let state = snapshot(&venv, &action_rng, &minibatch_rng, &episodes);
                save(
                    "best",
                    global_step,
                    iteration,
                    &policy,
                    &adam,
                    normalizer.as_ref(),
                    state,
                )?;
            }
        }

        let stop = StopCheck::now(options, global_step, last);
        if crossed(ckpt_every) || last || stop.any() {
            let state = snapshot(&venv, &action_rng, &minibatch_rng, &episodes);
            last_checkpoint = Some(save_periodic(
                state,
                last,
                &ckpt_dir,
                config.run.keep_checkpoints,
                |kind, state| {
                    save(
                        kind,
                        global_step,
                        iteration,
                        &policy,
                        &adam,
                        normalizer.as_ref(),
                        state,
                    )
                },
                || Ok(()),
            )?);
            tb.flush();
        }
        if let Some(stopped) = stop.outcome() {
            outcome = stopped;
            break;
        }
        iteration += 1;
    }
    tb.flush();
    progress.finish();

    write_summary(
        &options.run_dir,
        outcome,
        global_step,
        &clock,
        &episodes,
        serde_json::json!({
            "time_share": {
                "env": t_env.as_secs_f64(),
                "inference": t_infer.as_secs_f64(),
                "update": t_update.as_secs_f64(),
            },
        }),
    )?;

    let last_checkpoint = match last_checkpoint {
        Some(p) => p,
        None => {
            return Err(TrainError::Other(anyhow::anyhow!(
                "no iteration ran, so no checkpoint was written"
            )));
        }
    };
    Ok(RunSummary {
        outcome,
        global_step,
        updates,
        last_checkpoint,
        mean_return: episodes.mean_return(),
    })
}

/// Adds γ·V(final observation) to the reward of every env whose episode was truncated (and
/// not terminated) on the last step: the time limit is not part of the MDP.
fn bootstrap_truncated(
    venv: &VecEnv<Replayable>,
    policy: &Policy,
    normalizer: Option<&ObsNormalizer>,
    gamma: f64,
    device: Device,
    rewards: &mut [f32],
) {
    let truncated: Vec<usize> = (0..venv.num_envs())
        .filter(|&i| venv.truncated()[i] && !venv.terminated()[i])
        .collect();
    if truncated.is_empty() {
        return;
    }
    let mut final_obs: Vec<f32> = Vec::with_capacity(truncated.len() * venv.obs_dim());
    for &i in &truncated {
        final_obs.extend_from_slice(
            venv.final_observation(i)
                .expect("a truncated env has a final observation"),
        );
    }
    if let Some(norm) = normalizer {
        norm.normalize(&mut final_obs);
    }
    let obs = Tensor::from_slice(&final_obs)
        .view([truncated.len() as i64, venv.obs_dim() as i64])
        .to_device(device);
    let values = tch::no_grad(|| policy.forward(&obs).1)
        .to_device(Device::Cpu)
        .to_kind(Kind::Float);
    for (k, &i) in truncated.iter().enumerate() {
        rewards[i] += (gamma * values.double_value(&[k as i64])) as f32;
    }
}

pub(crate) fn log_cluster_metrics(
    tb: &mut TbWriter,
    prefix: &str,
    m: &lepton_env::EpisodeMetrics,
    resources: &[String],
    step: u64,
) {
    tb.scalar(&format!("{prefix}/mean_slowdown"), m.mean_slowdown, step);
    tb.scalar(&format!("{prefix}/p95_slowdown"), m.p95_slowdown, step);
    tb.scalar(&format!("{prefix}/mean_wait"), m.mean_wait, step);
    tb.scalar(&format!("{prefix}/num_dropped"), m.num_dropped as f64, step);
    tb.scalar(
        &format!("{prefix}/num_unfinished"),
        m.num_unfinished as f64,
        step,
    );
    tb.scalar(
        &format!("{prefix}/deadline_miss_rate"),
        m.deadline_miss_rate,
        step,
    );
    for (r, u) in m.utilization.iter().enumerate() {
        let name = resources.get(r).cloned().unwrap_or_else(|| r.to_string());
        tb.scalar(&format!("{prefix}/utilization_{name}"), *u, step);
    }
}

/// Mean results of one greedy evaluation.
#[derive(Clone, Debug)]
pub struct EvalResult {
    pub mean_return: f64,
    pub mean_length: f64,
    pub mean_slowdown: Option<f64>,
}

/// Plays one greedy episode ([`Policy::greedy`]) per held-out seed (`eval.seed + i`) with the current policy.
/// Uses none of the training RNG streams, so evaluating never changes training.
pub fn evaluate(
    spec: &EnvSpec,
    policy: &Policy,
    normalizer: Option<&ObsNormalizer>,
    config: &TrainConfig,
    device: Device,
) -> Result<EvalResult, TrainError> {
    let n = config.eval.num_episodes;
    let envs: Vec<DynEnv> = (0..n).map(|_| spec.make()).collect();
    let mut venv = VecEnv::new(envs, config.run.env_threads).map_err(|e| anyhow::anyhow!("{e}"))?;
    venv.reset(Some(config.eval.seed));
    let (dim, num_actions) = (venv.obs_dim(), venv.num_actions());
    let mut finished: Vec<Option<(f64, usize, Option<f64>)>> = vec![None; n];
    let mut obs = vec![0.0f32; n * dim];
    let mut actions = vec![0usize; n];
    while finished.iter().any(Option::is_none) {
        obs.copy_from_slice(venv.observations());
        if let Some(norm) = normalizer {
            norm.normalize(&mut obs);
        }
        let greedy = tch::no_grad(|| {
            let obs_t = Tensor::from_slice(&obs)
                .view([n as i64, dim as i64])
                .to_device(device);
            let mask_t = Tensor::from_slice(venv.action_masks())
                .view([n as i64, num_actions as i64])
                .to_device(device);
            policy.greedy(&obs_t, &mask_t).to_device(Device::Cpu)
        });
        for (i, a) in actions.iter_mut().enumerate() {
            *a = greedy.int64_value(&[i as i64]) as usize;
        }
        venv.step(&actions)
            .map_err(|e| anyhow::anyhow!("eval env step failed: {e}"))?;
        for (i, slot) in finished.iter_mut().enumerate() {
            if slot.is_none()
                && let Some((stats, metrics)) = venv.finished_episode(i)
            {
                *slot = Some((
                    stats.episode_return,
                    stats.length,
                    metrics.map(|m| m.mean_slowdown),
                ));
            }
        }
    }
    let done: Vec<(f64, usize, Option<f64>)> = finished.into_iter().flatten().collect();
    let k = done.len() as f64;
    let slowdowns: Vec<f64> = done.iter().filter_map(|d| d.2).collect();
    Ok(EvalResult {
        mean_return: done.iter().map(|d| d.0).sum::<f64>() / k,
        mean_length: done.iter().map(|d| d.1 as f64).sum::<f64>() / k,
        mean_slowdown: (!slowdowns.is_empty())
            .then(|| slowdowns.iter().sum::<f64>() / slowdowns.len() as f64),
    })
}

/// The run directory for `name` under `runs_dir`.
pub fn run_dir(runs_dir: &Path, name: &str) -> PathBuf {
    runs_dir.join(name)
}

//! The DQN training loop (CleanRL's `dqn.py`, read top to bottom), a sibling of the PPO loop in
//! [`crate::trainer`]: same run directory, resolved `config.toml`, TensorBoard writer,
//! checkpoint format, evaluation, progress bar, `summary.json`, resume rules and exit paths.
//! What the two loops share around their algorithms lives in `crate::session`.
//!
//! Every env step: ε-greedy actions over legal actions (ε linear from `start_epsilon` to
//! `end_epsilon` over `exploration_fraction` of the run); step the envs; store each env's
//! transition (n-step windows per env, the final observation and mask at episode ends) in the
//! replay buffer. After `learning_starts` steps, every `train_frequency` steps: sample a batch
//! (prioritized with β linear from `beta_start` to `beta_end` over the run, or uniform), one
//! gradient step ([`lepton_agent::dqn::update`]), new priorities from the TD errors; every
//! `target_update_frequency` steps: update the target network (hard copy, or Polyak with
//! `tau < 1`).
//!
//! Checkpoints: the online network and Adam go into the PPO checkpoint format (the greedy
//! action of a Q-network is the arg-max of its policy head, so `LoadedPolicy` and lepton-eval
//! read DQN checkpoints unchanged). Periodic checkpoints add the target network
//! (`step_<n>.target.safetensors`) and, with `dqn.checkpoint_replay = true`, the replay buffer
//! (`step_<n>.replay.bin`); with both, a resumed CPU run continues exactly. Without the replay
//! buffer a resumed run refills it and learns again once it holds a batch.
//!
//! TensorBoard tags (besides the shared `charts/episodic_return`, `charts/episodic_length`,
//! `charts/sps`, `cluster/*`, `eval/*`): `losses/td_loss` (importance-weighted Huber loss),
//! `losses/q_values` (mean Q of the batch's actions), `losses/grad_norm`, `charts/epsilon`,
//! `replay/beta`, `replay/mean_priority`, `replay/size` — every [`LOG_EVERY_STEPS`] env steps
//! once learning has started.

use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use lepton_agent::checkpoint::{self, SaveRequest};
use lepton_agent::dqn::{self, QNetwork, epsilon_greedy};
use lepton_agent::networks::with_torch_rng;
use lepton_agent::ppo::Adam;
use lepton_agent::replay::{ReplayBuffer, SampleBatch, StepRecord};
use lepton_env::{Env, VecEnv};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use crate::config::TrainConfig;
use crate::envs::{EnvSnapshot, Replayable, mix64};
use crate::session::{
    EpisodeTracker, RunLogs, RunSetup, SessionClock, StopCheck, crossed, diverged, fmt_return,
    log_eval, make_progress, resume_checkpoint, save_periodic, write_summary,
};
use crate::trainer::{
    Outcome, RETURN_WINDOW, RngState, RunOptions, RunSummary, TrainError, evaluate,
};

/// Env steps between two TensorBoard points of the learning scalars (CleanRL logs every 100).
pub const LOG_EVERY_STEPS: u64 = 100;
/// Env steps between two log lines when no progress bar is shown.
const LOG_LINE_EVERY_STEPS: u64 = 10_000;

/// Stream tags mixed with the run seed so that the streams are independent.
const ENV_STREAM: u64 = 0x656e_7673;
const ACTION_STREAM: u64 = 0x6163_7473;
const REPLAY_STREAM: u64 = 0x7265_706c;

/// Everything the loop needs to continue exactly, saved as a checkpoint's `trainer_state`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct DqnTrainerState {
    action_rng: RngState,
    envs: Vec<EnvSnapshot>,
    recent_returns: Vec<f64>,
    best_eval_return: Option<f64>,
    /// (env step, mean of the last 20 returns) each time that mean reached a new high.
    return_highs: Vec<(u64, f64)>,
    num_episodes: u64,
    num_updates: u64,
    /// Target-network weights beside the metadata (periodic checkpoints only). Like the
    /// tensor files, the extras are written atomically before the metadata that names them.
    target_file: Option<String>,
    /// The replay buffer beside the metadata (periodic checkpoints with `dqn.checkpoint_replay`).
    replay_file: Option<String>,
}

fn other(e: impl std::fmt::Display) -> TrainError {
    TrainError::Other(anyhow::anyhow!("{e}"))
}

/// Q-values of a row-major batch of observations, on the CPU.
fn q_values_cpu(online: &QNetwork, obs: &[f32], rows: usize, device: Device) -> Vec<f32> {
    tch::no_grad(|| {
        let obs = Tensor::from_slice(obs)
            .view([rows as i64, -1])
            .to_device(device);
        let q = online.q_values(&obs).to_device(Device::Cpu).reshape([-1]);
        Vec::<f32>::try_from(q).expect("Q-values are float")
    })
}

/// The periodic-checkpoint extras (`step_<n>.target.safetensors`, `step_<n>.replay.bin`) whose
/// `step_<n>.json` is gone (pure).
fn orphaned_extras(files: &[String]) -> Vec<String> {
    files
        .iter()
        .filter(|name| {
            let stem = name
                .strip_suffix(".target.safetensors")
                .or_else(|| name.strip_suffix(".replay.bin"));
            stem.is_some_and(|stem| {
                stem.starts_with("step_") && !files.contains(&format!("{stem}.json"))
            })
        })
        .cloned()
        .collect()
}

fn prune_extras(dir: &Path) -> Result<(), TrainError> {
    let files: Vec<String> = fs::read_dir(dir)
        .map_err(other)?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().to_string()))
        .collect();
    for name in orphaned_extras(&files) {
        fs::remove_file(dir.join(&name)).map_err(other)?;
    }
    Ok(())
}

/// Trains with `config` (already resolved and validated, `algo = "dqn"`).
pub fn run(config: &TrainConfig, options: &RunOptions) -> Result<RunSummary, TrainError> {
    let dqn_cfg = &config.dqn;
    let replay_cfg = &config.replay;
    let RunSetup {
        device,
        spec,
        ckpt_dir,
    } = RunSetup::open(config, options)?;

    let num_envs = dqn_cfg.num_envs;
    let seed = config.train.seed;
    let total_steps = config.train.total_steps;
    let envs: Vec<Replayable> = (0..num_envs)
        .map(|_| Replayable::new(spec.make()))
        .collect();
    let mut venv = VecEnv::new(envs, config.run.env_threads).map_err(other)?;
    let layout = venv.env(0).obs_layout();
    let (obs_dim, num_actions) = (venv.obs_dim(), venv.num_actions());

    let (online, mut target) = with_torch_rng(Some(seed as i64), || {
        let network = || {
            QNetwork::new(
                &config.network,
                dqn_cfg.dueling,
                layout,
                num_actions,
                device,
            )
            .map_err(|e| TrainError::Config(e.to_string()))
        };
        Ok::<_, TrainError>((network()?, network()?))
    })?;
    target.update_from(&online, 1.0);
    let mut adam = Adam::new(online.policy(), dqn_cfg.adam_eps);
    let mut buffer = ReplayBuffer::new(
        replay_cfg,
        dqn_cfg.gamma,
        obs_dim,
        num_actions,
        num_envs,
        mix64(seed ^ REPLAY_STREAM),
    );
    let mut action_rng = ChaCha8Rng::seed_from_u64(mix64(seed ^ ACTION_STREAM));
    let mut episodes = EpisodeTracker::new();
    let mut num_updates = 0u64;
    let mut global_step = 0u64;
    let mut last_checkpoint: Option<PathBuf> = None;

    if options.resume {
        let (meta_path, meta) =
            resume_checkpoint(&ckpt_dir, &options.run_dir, config, obs_dim, num_actions)?;
        let bad = |e: String| TrainError::Config(format!("{}: {e}", meta_path.display()));
        checkpoint::load_weights(&meta_path, &meta, online.policy())
            .map_err(|e| bad(e.to_string()))?;
        checkpoint::load_optimizer(&meta_path, &meta, &mut adam).map_err(|e| bad(e.to_string()))?;
        let state: DqnTrainerState = serde_json::from_value(meta.trainer_state.clone())
            .map_err(|e| bad(format!("bad trainer state: {e}")))?;
        let Some(target_file) = &state.target_file else {
            return Err(bad(
                "a periodic DQN checkpoint without its target network".into()
            ));
        };
        let target_path = ckpt_dir.join(target_file);
        let tensors = Tensor::read_safetensors(&target_path)
            .map_err(|e| bad(format!("{}: {e}", target_path.display())))?;
        load_named(&target, &tensors).map_err(bad)?;
        if let Some(replay_file) = &state.replay_file {
            let replay_path = ckpt_dir.join(replay_file);
            let file = fs::File::open(&replay_path)
                .map_err(|e| bad(format!("{}: {e}", replay_path.display())))?;
            buffer
                .read_from(&mut BufReader::new(file))
                .map_err(|e| bad(format!("{}: {e}", replay_path.display())))?;
        }
        action_rng = state.action_rng.restore().map_err(bad)?;
        if state.envs.len() != num_envs {
            return Err(bad(format!(
                "saved {} envs, config has {num_envs}",
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
        num_updates = state.num_updates;
        global_step = meta.global_step;
        last_checkpoint = Some(meta_path);
    }
    venv.reset(Some(mix64(seed ^ ENV_STREAM)));

    // The resolved config, the event file and the reference heuristics on the evaluation
    // seeds, once (as the PPO loop does).
    let RunLogs {
        config_toml,
        mut tb,
        heuristics,
    } = RunLogs::start(config, options, &spec, global_step)?;
    let mut obs_buf = vec![0.0f32; num_envs * obs_dim];
    let mut actions = vec![0usize; num_envs];
    let mut batch = SampleBatch::default();
    let progress = make_progress(options.progress, total_steps, global_step);
    let clock = SessionClock::start(global_step);
    let step_size = num_envs as u64;
    let mut last_stats: Option<dqn::UpdateStats> = None;
    let mut outcome = Outcome::Finished;

    let save = |kind: &str,
                global_step: u64,
                online: &QNetwork,
                target: &QNetwork,
                adam: &Adam,
                buffer: &ReplayBuffer,
                mut state: DqnTrainerState|
     -> Result<PathBuf, TrainError> {
        if kind == "step" {
            let stem = checkpoint::stem(kind, global_step);
            let target_file = format!("{stem}.target.safetensors");
            let target_path = ckpt_dir.join(&target_file);
            let tmp = ckpt_dir.join(format!("{target_file}.tmp"));
            Tensor::write_safetensors(&target.policy().named_parameters(), &tmp).map_err(other)?;
            fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(other)?;
            fs::rename(&tmp, &target_path).map_err(other)?;
            state.target_file = Some(target_file);
            if dqn_cfg.checkpoint_replay {
                let replay_file = format!("{stem}.replay.bin");
                let mut bytes = Vec::new();
                buffer.write_to(&mut bytes).map_err(other)?;
                checkpoint::write_atomic(&ckpt_dir.join(&replay_file), &bytes).map_err(other)?;
                state.replay_file = Some(replay_file);
            }
        }
        checkpoint::save(
            &ckpt_dir,
            SaveRequest {
                kind,
                global_step,
                iteration: state.num_updates,
                seed,
                config_toml: &config_toml,
                network: &config.network,
                policy: online.policy(),
                optimizer: adam,
                normalizer: None,
                trainer_state: serde_json::to_value(state).expect("trainer state serialises"),
            },
        )
        .map_err(other)
    };
    while global_step < total_steps {
        // Act: ε-greedy over legal actions (the forward pass only when some env is greedy).
        let epsilon = dqn_cfg.epsilon(global_step, total_steps);
        obs_buf.copy_from_slice(venv.observations());
        epsilon_greedy(
            venv.action_masks(),
            num_actions,
            epsilon,
            &mut action_rng,
            &mut actions,
            || q_values_cpu(&online, &obs_buf, num_envs, device),
        );
        venv.step(&actions)
            .map_err(|e| anyhow::anyhow!("env step failed: {e}"))?;
        global_step += step_size;

        // Store: at an episode end the transition leads to the final observation and mask.
        for i in 0..num_envs {
            let (next_obs, next_mask) = match (venv.final_observation(i), venv.final_action_mask(i))
            {
                (Some(final_obs), Some(final_mask)) => (final_obs, final_mask),
                _ => (
                    venv.observation(i),
                    &venv.action_masks()[i * num_actions..(i + 1) * num_actions],
                ),
            };
            buffer.push(
                i,
                &StepRecord {
                    obs: &obs_buf[i * obs_dim..(i + 1) * obs_dim],
                    action: actions[i],
                    reward: venv.rewards()[i],
                    next_obs,
                    next_mask,
                    terminated: venv.terminated()[i],
                    truncated: venv.truncated()[i],
                },
            );
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

        // Learn.
        let crossed = |every: u64| crossed(every, global_step, step_size);
        let learning = global_step > dqn_cfg.learning_starts;
        if learning && buffer.len() >= dqn_cfg.batch_size && crossed(dqn_cfg.train_frequency) {
            let beta = replay_cfg.beta(global_step as f64 / total_steps as f64);
            buffer.sample(dqn_cfg.batch_size, beta, &mut batch);
            let stats = dqn::update(dqn_cfg, &online, &target, &mut adam, &batch);
            if !stats.td_loss.is_finite() {
                return Err(diverged(
                    &mut tb,
                    &progress,
                    global_step,
                    format!("TD loss is {}", stats.td_loss),
                    last_checkpoint,
                ));
            }
            buffer.update_priorities(&batch.indices, &stats.td_errors);
            num_updates += 1;
            last_stats = Some(stats);
        }
        if learning && crossed(dqn_cfg.target_update_frequency) {
            target.update_from(&online, dqn_cfg.tau);
        }

        // Log.
        let sps = clock.sps(global_step);
        if crossed(LOG_EVERY_STEPS)
            && let Some(stats) = &last_stats
        {
            tb.scalar("losses/td_loss", stats.td_loss, global_step);
            tb.scalar("losses/q_values", stats.q_values, global_step);
            tb.scalar("losses/grad_norm", stats.grad_norm, global_step);
            tb.scalar("charts/epsilon", epsilon, global_step);
            tb.scalar("charts/sps", sps, global_step);
            tb.scalar(
                "replay/beta",
                replay_cfg.beta(global_step as f64 / total_steps as f64),
                global_step,
            );
            tb.scalar("replay/mean_priority", buffer.mean_priority(), global_step);
            tb.scalar("replay/size", buffer.len() as f64, global_step);
        }
        let last = global_step >= total_steps;
        let mean_return = episodes.mean_return();
        if crossed(LOG_EVERY_STEPS) || last {
            progress.set_position(global_step);
            progress.set_message(format!(
                "sps {sps:.0} | ε {epsilon:.3} | return {}",
                fmt_return(mean_return)
            ));
        }
        if progress.is_hidden() && (crossed(LOG_LINE_EVERY_STEPS) || last) {
            eprintln!(
                "step {global_step}/{total_steps} | sps {sps:.0} | ε {epsilon:.3} | mean return ({RETURN_WINDOW} ep) {} | episodes {} | updates {num_updates}",
                fmt_return(mean_return),
                episodes.num_episodes
            );
        }

        // Evaluate and checkpoint.
        let snapshot =
            |venv: &VecEnv<Replayable>, action_rng: &ChaCha8Rng, episodes: &EpisodeTracker| {
                DqnTrainerState {
                    action_rng: RngState::of(action_rng),
                    envs: (0..num_envs).map(|i| venv.env(i).snapshot()).collect(),
                    recent_returns: episodes.recent_returns_vec(),
                    best_eval_return: episodes.best_eval_return,
                    return_highs: episodes.return_highs.clone(),
                    num_episodes: episodes.num_episodes,
                    num_updates,
                    target_file: None,
                    replay_file: None,
                }
            };
        let eval_every = config.eval.every_steps;
        if crossed(eval_every) || (last && eval_every > 0) {
            let result = evaluate(&spec, online.policy(), None, config, device)?;
            log_eval(&mut tb, &heuristics, &result, global_step);
            if episodes.improves_eval(result.mean_return) {
                let state = snapshot(&venv, &action_rng, &episodes);
                save("best", global_step, &online, &target, &adam, &buffer, state)?;
            }
        }
        let stop = StopCheck::now(options, global_step, last);
        if crossed(config.run.checkpoint_every_steps) || last || stop.any() {
            let state = snapshot(&venv, &action_rng, &episodes);
            last_checkpoint = Some(save_periodic(
                state,
                last,
                &ckpt_dir,
                config.run.keep_checkpoints,
                |kind, state| save(kind, global_step, &online, &target, &adam, &buffer, state),
                || prune_extras(&ckpt_dir),
            )?);
            tb.flush();
        }
        if let Some(stopped) = stop.outcome() {
            outcome = stopped;
            break;
        }
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
            "algo": "dqn",
            "num_updates": num_updates,
        }),
    )?;
    let last_checkpoint = last_checkpoint.ok_or_else(|| {
        TrainError::Other(anyhow::anyhow!("no step ran, so no checkpoint was written"))
    })?;
    Ok(RunSummary {
        outcome,
        global_step,
        updates: Vec::new(),
        last_checkpoint,
        mean_return: episodes.mean_return(),
    })
}

/// Copies saved tensors into `network`'s parameters by name (all must be present, same shapes).
fn load_named(network: &QNetwork, tensors: &[(String, Tensor)]) -> Result<(), String> {
    for (name, mut param) in network.policy().named_parameters() {
        let src = tensors.iter().find(|(n, _)| *n == name).map(|(_, t)| t);
        let src = src.ok_or_else(|| format!("target network file has no tensor '{name}'"))?;
        if src.size() != param.size() {
            return Err(format!(
                "target tensor '{name}' has shape {:?}, expected {:?}",
                src.size(),
                param.size()
            ));
        }
        tch::no_grad(|| param.copy_(src));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extras_are_kept_only_beside_their_checkpoint() {
        let files: Vec<String> = [
            "step_0000000100.json",
            "step_0000000100.target.safetensors",
            "step_0000000100.replay.bin",
            "step_0000000050.target.safetensors",
            "step_0000000050.replay.bin",
            "best.json",
            "best_0000000100.safetensors",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            orphaned_extras(&files),
            [
                "step_0000000050.target.safetensors",
                "step_0000000050.replay.bin"
            ]
        );
    }
}

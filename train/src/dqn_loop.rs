//! The DQN training loop (CleanRL's `dqn.py`, read top to bottom), a sibling of the PPO loop in
//! [`crate::ppo_loop`]: same run directory, resolved `config.toml`, TensorBoard writer,
//! checkpoint format, evaluation, progress bar, `summary.json`, resume rules and exit paths,
//! shared through `crate::session`, `crate::checkpointing` and [`crate::evaluation`].
//!
//! Every env step: ε-greedy actions over legal actions (ε linear from `start_epsilon` to
//! `end_epsilon` over `exploration_fraction` of the run); step the envs; store each env's
//! transition (n-step windows per env, the final observation and mask at episode ends) in the
//! replay buffer. After `learning_starts` steps, every `train_frequency` steps (as often as a
//! vector step crosses a multiple of it), `gradient_steps` times: sample a batch (prioritized
//! with β linear from `beta_start` to `beta_end` over the run, or uniform), one gradient step
//! ([`lepton_agent::dqn::update`]), new priorities from the TD errors; every
//! `target_update_frequency` steps: update the target network (hard copy, or Polyak with
//! `tau < 1`).
//!
//! With `prefill_teacher`, a heuristic's transitions (whole episodes on training seeds, at
//! least `prefill_steps` decisions) fill the replay buffer before the first env step; they are
//! not env steps, and a resumed run does not prefill again.
//!
//! Checkpoints: the online network (recorded as a `q` head, so `LoadedPolicy` and lepton-eval
//! decode it by the legal arg-max, as it was trained) and Adam go into the shared checkpoint
//! format. Periodic checkpoints add the named extra groups `target` (the target network) and,
//! with `dqn.checkpoint_replay = true`, `replay` (the replay buffer); with both, a resumed CPU
//! run continues exactly. Without the replay buffer a resumed run refills it and learns again
//! once it holds a batch.
//!
//! TensorBoard tags (besides the shared `charts/episodic_return`, `charts/episodic_length`,
//! `charts/SPS`, `cluster/*`, `eval/*`): `losses/td_loss` (importance-weighted Huber loss),
//! `losses/q_values` (mean Q of the batch's actions), `losses/grad_norm`, `charts/epsilon`,
//! `replay/beta`, `replay/mean_priority`, `replay/size` — every [`LOG_EVERY_STEPS`] env steps
//! once learning has started.

use lepton_agent::checkpoint::{self, Extra};
use lepton_agent::dqn::{self, QNetwork, epsilon_greedy};
use lepton_agent::networks::with_torch_rng;
use lepton_agent::optim::Adam;
use lepton_agent::replay::{ReplayBuffer, SampleBatch, StepRecord};
use lepton_env::Env;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use crate::checkpointing::{At, Checkpoints, Learner, Resumable, Resumed, Snapshot, warm_start};
use crate::config::TrainConfig;
use crate::evaluation::Evaluator;
use crate::imitation::play_teacher;
use crate::run::{Outcome, RETURN_WINDOW, RunOptions, RunSummary, TrainError};
use crate::session::{
    EpisodeTracker, RunLogs, RunSetup, crossed, diverged, fmt_return, times_crossed, write_summary,
};
use lepton_env::seeds::mix64;

/// Env steps between two TensorBoard points of the learning scalars (CleanRL logs every 100).
pub const LOG_EVERY_STEPS: u64 = 100;
/// Env steps between two log lines when no progress bar is shown.
const LOG_LINE_EVERY_STEPS: u64 = 10_000;

/// Stream tags mixed with the run seed so that the streams are independent.
const ENV_STREAM: u64 = 0x656e_7673;
const ACTION_STREAM: u64 = 0x6163_7473;
const REPLAY_STREAM: u64 = 0x7265_706c;
const PREFILL_STREAM: u64 = 0x7072_6566;

/// DQN's own part of a checkpoint's `trainer_state` (beside the shared one). The target
/// network and the replay buffer are the checkpoint's extra groups `target` and `replay`.
#[derive(Serialize, Deserialize)]
struct DqnState {
    num_updates: u64,
}

/// Trains with `config` (already resolved and validated, `algo = "dqn"`).
pub fn run(config: &TrainConfig, options: &RunOptions) -> Result<RunSummary, TrainError> {
    let RunSetup {
        device,
        spec,
        eval_spec,
    } = RunSetup::open(config)?;
    let dqn_cfg = &config.dqn;
    let replay_cfg = &config.replay;
    let num_envs = dqn_cfg.num_envs;
    let seed = config.train.seed;
    let total_steps = config.train.total_steps;
    let mut venv = spec.training_envs(num_envs, config.run.env_threads, false)?;
    let (layout, actions_layout) = (venv.env(0).obs_layout(), venv.env(0).action_layout());
    let (obs_dim, num_actions) = (venv.obs_dim(), venv.num_actions());

    let network = || {
        QNetwork::new(
            &config.network,
            dqn_cfg.dueling,
            layout,
            &actions_layout,
            device,
        )
    };
    let (online, mut target) = with_torch_rng(Some(seed as i64), || {
        Ok::<_, TrainError>((network()?, network()?))
    })?;
    let mut adam = Adam::new(online.policy().named_parameters(), dqn_cfg.adam_eps);
    if !options.resume {
        warm_start(config, online.policy(), &mut adam, Some(false))?;
    }
    // The run directory is created only once everything that can refuse the config has.
    let mut checkpoints = Checkpoints::open(config, &options.run_dir, &spec)?;
    target.update_from(&online, 1.0);
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
    if options.resume {
        let resumed: Resumed<DqnState> = checkpoints.resume(
            &options.run_dir,
            online.policy(),
            &mut adam,
            Resumable::Envs(&mut venv),
        )?;
        (action_rng, episodes) = (resumed.action_rng, resumed.episodes);
        let (path, meta) = (&resumed.checkpoint, &resumed.meta);
        let target_params = target.policy().named_parameters();
        checkpoint::load_extra_tensors(path, meta, "target", &target_params)
            .map_err(TrainError::ResumeCheckpoint)?;
        if let Some(bytes) = checkpoint::read_extra_bytes(path, meta, "replay")
            .map_err(TrainError::ResumeCheckpoint)?
        {
            buffer
                .read_from(&mut bytes.as_slice())
                .map_err(|source| TrainError::ReadReplay {
                    path: path.clone(),
                    source,
                })?;
        }
        num_updates = resumed.algo.num_updates;
        global_step = resumed.meta.global_step;
    } else if let Some(teacher) = &dqn_cfg.prefill_teacher {
        // The teacher's transitions go through env 0's n-step window; every teacher episode
        // ends terminated or truncated, which flushes the window before env 0 starts.
        play_teacher(
            &spec,
            teacher,
            dqn_cfg.prefill_steps,
            mix64(seed ^ PREFILL_STREAM),
            |step| buffer.push(0, &step.record),
        )?;
    }
    checkpoints.reset_envs(&mut venv, mix64(seed ^ ENV_STREAM), 1)?;

    let RunLogs {
        mut tb,
        progress,
        clock,
    } = RunLogs::start(&checkpoints.config_toml, options, total_steps, global_step)?;
    let evaluator = Evaluator::new(&eval_spec, config, device, &options.run_dir, global_step)?;
    let mut obs_buf = vec![0.0f32; num_envs * obs_dim];
    let mut actions = vec![0usize; num_envs];
    let mut batch = SampleBatch::default();
    let step_size = num_envs as u64;
    let mut last_stats: Option<dqn::UpdateStats> = None;
    let mut outcome = Outcome::Finished;

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
        venv.step(&actions)?;
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
        }
        episodes.record_finished(&mut tb, &venv, &spec.resource_names, global_step);

        // Learn.
        let crossed = |every: u64| crossed(every, global_step, step_size);
        let learning = global_step > dqn_cfg.learning_starts;
        let learning_steps = if learning && buffer.len() >= dqn_cfg.batch_size {
            times_crossed(dqn_cfg.train_frequency, global_step, step_size) * dqn_cfg.gradient_steps
        } else {
            0
        };
        for _ in 0..learning_steps {
            let beta = replay_cfg.beta(global_step as f64 / total_steps as f64);
            buffer.sample(dqn_cfg.batch_size, beta, &mut batch);
            let stats = dqn::update(dqn_cfg, &online, &target, &mut adam, &batch);
            if !stats.td_loss.is_finite() {
                let reason = format!("TD loss is {}", stats.td_loss);
                return Err(diverged(
                    &mut tb,
                    &progress,
                    global_step,
                    reason,
                    checkpoints.last,
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
            tb.scalar("charts/SPS", sps, global_step);
            let beta = replay_cfg.beta(global_step as f64 / total_steps as f64);
            tb.scalar("replay/beta", beta, global_step);
            tb.scalar("replay/mean_priority", buffer.mean_priority(), global_step);
            tb.scalar("replay/size", buffer.len() as f64, global_step);
        }
        let last = global_step >= total_steps;
        let mean_return = fmt_return(episodes.mean_return());
        if crossed(LOG_EVERY_STEPS) || last {
            progress.set_position(global_step);
            progress.set_message(format!(
                "sps {sps:.0} | ε {epsilon:.3} | return {mean_return}"
            ));
        }
        if progress.is_hidden() && (crossed(LOG_LINE_EVERY_STEPS) || last) {
            eprintln!(
                "step {global_step}/{total_steps} | sps {sps:.0} | ε {epsilon:.3} | mean return ({RETURN_WINDOW} ep) {mean_return} | episodes {} | updates {num_updates}",
                episodes.num_episodes
            );
        }

        // Evaluate and checkpoint; a periodic checkpoint keeps the target network and, with
        // `dqn.checkpoint_replay`, the replay buffer.
        let at = At::now(options, global_step, step_size, last);
        let learner = Learner {
            policy: online.policy(),
            optimizer: &adam,
            normalizer: None,
            iteration: num_updates,
        };
        let snapshot = Snapshot {
            venv: Some(&venv),
            action_rng: &action_rng,
            episodes: &mut episodes,
            algo: DqnState { num_updates },
            periodic_extras: || {
                let mut extras =
                    vec![("target", Extra::Tensors(target.policy().named_parameters()))];
                if dqn_cfg.checkpoint_replay {
                    let mut bytes = Vec::new();
                    buffer
                        .write_to(&mut bytes)
                        .expect("writing to memory cannot fail");
                    extras.push(("replay", Extra::Bytes(bytes)));
                }
                Ok(extras)
            },
        };
        if let Some(stopped) =
            checkpoints.evaluate_and_checkpoint(&evaluator, &mut tb, at, learner, snapshot)?
        {
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
        serde_json::json!({ "algo": "dqn", "num_updates": num_updates }),
    )?;
    Ok(RunSummary {
        outcome,
        global_step,
        updates: Vec::new(),
        last_checkpoint: checkpoints.last.ok_or(TrainError::NoCheckpointWritten)?,
        mean_return: episodes.mean_return(),
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpointing::TrainerState;

    /// A `trainer_state` as format-1 DQN checkpoints wrote it (with the names of the target
    /// and replay files, which format 2 keeps as the metadata's extra groups): it still
    /// reads, and writes back field for field but for those names.
    #[test]
    fn reads_a_format_1_trainer_state() {
        let saved = serde_json::json!({
            "action_rng": { "seed": vec![7u8; 32], "stream": 0, "word_pos": "1234" },
            "envs": [{ "base_seed": 3, "episodes_started": 1, "actions": [],
                       "episode_return": 0.0, "episode_length": 0 }],
            "recent_returns": [],
            "best_eval_score": 12.5,
            "return_highs": [],
            "num_episodes": 0,
            "num_updates": 40,
            "target_file": "step_0000001000.target.safetensors",
            "replay_file": null,
        });
        let state: TrainerState<DqnState> = serde_json::from_value(saved.clone()).unwrap();
        let mut expected = saved;
        let fields = expected.as_object_mut().unwrap();
        fields.remove("target_file");
        fields.remove("replay_file");
        assert_eq!(serde_json::to_value(&state).unwrap(), expected);
    }
}

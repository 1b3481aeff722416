//! The PPO training loop (CleanRL's `ppo.py`, read top to bottom): collect `num_steps` from
//! every env with the current policy, compute GAE, update, log, evaluate, checkpoint; repeat
//! until `total_steps`. Opening the run, resuming, evaluating and checkpointing are shared with
//! the DQN loop (`crate::session`, `crate::checkpointing`, [`crate::evaluation`]).
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
//!
//! TensorBoard tags (besides the shared `charts/episodic_return`, `charts/episodic_length`,
//! `cluster/*`, `eval/*`): `charts/learning_rate`, `charts/sps`, `perf/{env,inference,update}_share`
//! and one `losses/*` point per update (`losses/forced_fraction`: the share of the rollout's
//! decisions with a single legal action; with `ppo.skip_forced` the KL and clip fraction are
//! over the others).

use std::time::{Duration, Instant};

use lepton_agent::distributions::{MaskedCategorical, sample_masked};
use lepton_agent::networks::{Head, Policy, with_torch_rng};
use lepton_agent::normalize::{ObsNormalizer, ReturnNormalizer};
use lepton_agent::optim::Adam;
use lepton_agent::ppo;
use lepton_agent::rollout::{self, RolloutBuffer};
use lepton_env::{Env, VecEnv};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::checkpointing::{At, Checkpoints, Learner, Resumed, Snapshot, rng_state};
use crate::config::TrainConfig;
use crate::envs::{Replayable, mix64};
use crate::evaluation::Evaluator;
use crate::imitation::{self, Prior};
use crate::run::{Outcome, RETURN_WINDOW, RunOptions, RunSummary, TrainError};
use crate::session::{EpisodeTracker, RunLogs, RunSetup, diverged, fmt_return, write_summary};

/// PPO's own part of a checkpoint's `trainer_state` (beside the shared one).
#[derive(Serialize, Deserialize)]
struct PpoState {
    #[serde(with = "rng_state")]
    minibatch_rng: ChaCha8Rng,
    /// With `ppo.normalize_returns`: each env's running return and their statistics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    return_normalizer: Option<ReturnNormalizer>,
}

/// Stream tags mixed with the run seed so that the streams are independent.
const ENV_STREAM: u64 = 0x656e_7673;
const ACTION_STREAM: u64 = 0x6163_7473;
const MINIBATCH_STREAM: u64 = 0x6d62_7368;

/// Trains with `config` (already resolved and validated, `algo = "ppo"`).
pub fn run(config: &TrainConfig, options: &RunOptions) -> Result<RunSummary, TrainError> {
    let RunSetup { device, spec } = RunSetup::open(config)?;
    let mut checkpoints = Checkpoints::open(config, &options.run_dir, &spec)?;
    let ppo_cfg = &config.ppo;
    let (num_envs, num_steps) = (ppo_cfg.num_envs, ppo_cfg.num_steps);
    let seed = config.train.seed;
    let mut venv = spec.training_envs(num_envs, config.run.env_threads)?;
    let (layout, actions_layout) = (venv.env(0).obs_layout(), venv.env(0).action_layout());
    let (obs_dim, num_actions) = (venv.obs_dim(), venv.num_actions());

    let policy = with_torch_rng(Some(seed as i64), || {
        Policy::new(
            &config.network,
            layout,
            &actions_layout,
            Head::Logits,
            device,
        )
    })?;
    let mut adam = Adam::new(policy.named_parameters(), ppo_cfg.adam_eps);
    let mut normalizer = ppo_cfg
        .normalize_obs
        .then(|| ObsNormalizer::new(obs_dim, 10.0));
    let mut action_rng = ChaCha8Rng::seed_from_u64(mix64(seed ^ ACTION_STREAM));
    let mut minibatch_rng = ChaCha8Rng::seed_from_u64(mix64(seed ^ MINIBATCH_STREAM));
    let mut return_normalizer = ppo_cfg
        .normalize_returns
        .then(|| ReturnNormalizer::new(num_envs, ppo_cfg.gamma));
    let mut episodes = EpisodeTracker::new();
    let mut global_step = 0u64;
    let mut iteration = 1usize;
    if options.resume {
        let resumed: Resumed<PpoState> =
            checkpoints.resume(&options.run_dir, &policy, &mut adam, &mut venv)?;
        (action_rng, episodes) = (resumed.action_rng, resumed.episodes);
        minibatch_rng = resumed.algo.minibatch_rng;
        return_normalizer = resumed.algo.return_normalizer;
        normalizer = resumed.meta.normalizer;
        global_step = resumed.meta.global_step;
        iteration = resumed.meta.iteration as usize + 1;
    }
    checkpoints.reset_envs(&mut venv, mix64(seed ^ ENV_STREAM))?;

    let RunLogs {
        mut tb,
        progress,
        clock,
    } = RunLogs::start(
        &checkpoints.config_toml,
        options,
        config.train.total_steps,
        global_step,
    )?;
    let evaluator = Evaluator::new(&spec, config, device)?;
    // Imitation warm start (`[imitation]`): clone the teacher before the first rollout.
    let (prior, warm_start) = imitation::begin(
        config,
        options.resume,
        &spec,
        &policy,
        &adam,
        &mut normalizer,
        &mut tb,
        &checkpoints,
        &progress,
    )?;
    let num_iterations = config.num_iterations();
    let mut buffer = RolloutBuffer::new(num_steps, num_envs, obs_dim, num_actions, device);
    let mut obs_buf = vec![0.0f32; num_envs * obs_dim];
    let mut actions = vec![0usize; num_envs];
    let mut actions_i64 = vec![0i64; num_envs];
    let mut rewards = vec![0.0f32; num_envs];
    let mut over = vec![0.0f32; num_envs];
    let mut updates = Vec::new();
    let (mut t_env, mut t_infer, mut t_update) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut outcome = Outcome::Finished;

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
            let probs = Vec::<f32>::try_from(dist.probs().to_device(Device::Cpu).reshape([-1]))?;
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
            venv.step(&actions)?;
            let t2 = Instant::now();
            for (r, &raw) in rewards.iter_mut().zip(venv.rewards()) {
                *r = raw * ppo_cfg.reward_scale as f32;
            }
            let (terminated, truncated) = (venv.terminated(), venv.truncated());
            for (o, (&term, &trunc)) in over.iter_mut().zip(terminated.iter().zip(truncated)) {
                *o = if term || trunc { 1.0 } else { 0.0 };
            }
            if let Some(norm) = return_normalizer.as_mut() {
                norm.normalize(&mut rewards, &over);
            }
            rollout::bootstrap_truncated(
                &mut rewards,
                terminated,
                truncated,
                ppo_cfg.gamma,
                |envs| final_values(&venv, envs, &policy, normalizer.as_ref(), device),
            );
            buffer.record_outcome(step, &rewards, &over);
            episodes.record_finished(&mut tb, &venv, &spec.resource_names, global_step);
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
        let stats = match &prior {
            Some(prior) => prior.update(
                ppo_cfg,
                &policy,
                &mut adam,
                &batch,
                lr,
                &mut minibatch_rng,
                global_step,
                &mut tb,
            ),
            None => ppo::update(ppo_cfg, &policy, &mut adam, &batch, lr, &mut minibatch_rng),
        }
        .map_err(|e| {
            let last = checkpoints.last.clone();
            diverged(&mut tb, &progress, global_step, e.to_string(), last)
        })?;
        t_update += t0.elapsed();

        let sps = clock.sps(global_step);
        let total_time = (t_env + t_infer + t_update).as_secs_f64().max(1e-9);
        tb.scalar("charts/learning_rate", lr, global_step);
        tb.scalar("charts/sps", sps, global_step);
        for (tag, time) in [
            ("perf/env_share", t_env),
            ("perf/inference_share", t_infer),
            ("perf/update_share", t_update),
        ] {
            tb.scalar(tag, time.as_secs_f64() / total_time, global_step);
        }
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
        tb.scalar("losses/forced_fraction", stats.forced_fraction, global_step);
        updates.push(stats);

        let mean_return = fmt_return(episodes.mean_return());
        let last = iteration == num_iterations;
        progress.set_position(global_step);
        progress.set_message(format!("sps {sps:.0} | return {mean_return}"));
        if progress.is_hidden()
            && (iteration.is_multiple_of(config.run.log_every_iterations) || last)
        {
            eprintln!(
                "step {global_step}/{} | sps {sps:.0} | mean return ({RETURN_WINDOW} ep) {mean_return} | episodes {}",
                config.train.total_steps, episodes.num_episodes
            );
        }

        let at = At::now(options, global_step, (num_envs * num_steps) as u64, last);
        let learner = Learner {
            policy: &policy,
            optimizer: &adam,
            normalizer: normalizer.as_ref(),
            iteration: iteration as u64,
        };
        let snapshot = Snapshot {
            venv: &venv,
            action_rng: &action_rng,
            episodes: &mut episodes,
            algo: PpoState {
                minibatch_rng: minibatch_rng.clone(),
                return_normalizer: return_normalizer.clone(),
            },
            periodic_extras: || Prior::extras(prior.as_ref()),
        };
        if let Some(stopped) =
            checkpoints.evaluate_and_checkpoint(&evaluator, &mut tb, at, learner, snapshot)?
        {
            outcome = stopped;
            break;
        }
        iteration += 1;
    }
    tb.flush();
    progress.finish();

    let time_share = serde_json::json!({
        "env": t_env.as_secs_f64(),
        "inference": t_infer.as_secs_f64(),
        "update": t_update.as_secs_f64(),
    });
    write_summary(
        &options.run_dir,
        outcome,
        global_step,
        &clock,
        &episodes,
        serde_json::json!({ "time_share": time_share, "imitation": warm_start }),
    )?;
    Ok(RunSummary {
        outcome,
        global_step,
        updates,
        last_checkpoint: checkpoints.last.ok_or(TrainError::NoCheckpointWritten)?,
        mean_return: episodes.mean_return(),
    })
}

/// The values of the final observations of `envs` (whose episodes just ended), for the
/// truncation bootstrap.
fn final_values(
    venv: &VecEnv<Replayable>,
    envs: &[usize],
    policy: &Policy,
    normalizer: Option<&ObsNormalizer>,
    device: Device,
) -> Vec<f32> {
    let mut final_obs: Vec<f32> = Vec::with_capacity(envs.len() * venv.obs_dim());
    for &i in envs {
        final_obs.extend_from_slice(
            venv.final_observation(i)
                .expect("a truncated env has a final observation"),
        );
    }
    if let Some(norm) = normalizer {
        norm.normalize(&mut final_obs);
    }
    let obs = Tensor::from_slice(&final_obs)
        .view([envs.len() as i64, venv.obs_dim() as i64])
        .to_device(device);
    let values = tch::no_grad(|| policy.forward(&obs).1)
        .to_device(Device::Cpu)
        .to_kind(Kind::Float);
    Vec::<f32>::try_from(values).expect("values are float")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpointing::TrainerState;

    /// A `trainer_state` as PPO checkpoints wrote it before the shared part had its own
    /// struct: it still reads, and writes back field for field.
    #[test]
    fn reads_and_writes_the_saved_trainer_state_unchanged() {
        let rng = serde_json::json!({ "seed": vec![7u8; 32], "stream": 0, "word_pos": "1234" });
        let saved = serde_json::json!({
            "action_rng": rng,
            "minibatch_rng": rng,
            "envs": [{ "base_seed": 3, "episodes_started": 2, "actions": [0, 1],
                       "episode_return": 2.0, "episode_length": 2 }],
            "recent_returns": [9.0, 10.5],
            "best_eval_score": null,
            "return_highs": [[64, 9.75]],
            "num_episodes": 2,
        });
        let state: TrainerState<PpoState> = serde_json::from_value(saved.clone()).unwrap();
        assert_eq!(serde_json::to_value(&state).unwrap(), saved);
    }
}

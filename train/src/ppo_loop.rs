//! The PPO training loop (CleanRL's `ppo.py`, read top to bottom): collect `num_steps` from
//! every env with the current policy, compute GAE, update, log, evaluate, checkpoint; repeat
//! until `total_steps`. With `ppo.group_size` > 1 a rollout is instead one whole episode per
//! env, groups of envs sharing the workload, and the advantages compare each episode with its
//! group's ([`lepton_agent::episodes`]). Opening the run, resuming, evaluating and checkpointing are shared with
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
//! `cluster/*`, `eval/*`): `charts/learning_rate`, `charts/SPS`, `perf/{env,inference,update}_share`
//! and one `losses/*` point per update (`losses/grad_norm`: the last minibatch's gradient norm
//! before clipping; `losses/forced_fraction`: the share of the rollout's decisions with a
//! single legal action; with `ppo.skip_forced` the KL and clip fraction are
//! over the others).

use std::time::{Duration, Instant};

use lepton_agent::distributions::{MaskedCategorical, sample_masked};
use lepton_agent::episodes::EpisodeBuffer;
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

use crate::checkpointing::{
    At, Checkpoints, Learner, Resumable, Resumed, Snapshot, rng_state, warm_start,
};
use crate::config::TrainConfig;
use crate::envs::Replayable;
use crate::evaluation::Evaluator;
use crate::imitation::{self, Prior};
use crate::run::{Outcome, RETURN_WINDOW, RunOptions, RunSummary, TrainError};
use crate::session::{EpisodeTracker, RunLogs, RunSetup, diverged, fmt_return, write_summary};
use lepton_env::seeds::mix64;

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
    let RunSetup {
        device,
        spec,
        eval_spec,
    } = RunSetup::open(config)?;
    let ppo_cfg = &config.ppo;
    let (num_envs, num_steps) = (ppo_cfg.num_envs, ppo_cfg.num_steps);
    let seed = config.train.seed;
    let mut venv = spec.training_envs(num_envs, config.run.env_threads, ppo_cfg.skip_forced)?;
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
    if !options.resume
        && let Some(stats) = warm_start(config, &policy, &mut adam, Some(ppo_cfg.normalize_obs))?
    {
        normalizer = Some(stats);
    }
    // The run directory is created only once everything that can refuse the config has.
    let mut checkpoints = Checkpoints::open(config, &options.run_dir, &spec)?;
    let mut action_rng = ChaCha8Rng::seed_from_u64(mix64(seed ^ ACTION_STREAM));
    let mut minibatch_rng = ChaCha8Rng::seed_from_u64(mix64(seed ^ MINIBATCH_STREAM));
    let mut return_normalizer = ppo_cfg
        .normalize_returns
        .then(|| ReturnNormalizer::new(num_envs, ppo_cfg.gamma));
    let mut episodes = EpisodeTracker::new();
    let mut global_step = 0u64;
    let mut iteration = 1usize;
    if options.resume {
        let resumed: Resumed<PpoState> = checkpoints.resume(
            &options.run_dir,
            &policy,
            &mut adam,
            Resumable::Envs(&mut venv),
        )?;
        (action_rng, episodes) = (resumed.action_rng, resumed.episodes);
        minibatch_rng = resumed.algo.minibatch_rng;
        return_normalizer = resumed.algo.return_normalizer;
        normalizer = resumed.meta.normalizer;
        global_step = resumed.meta.global_step;
        iteration = resumed.meta.iteration as usize + 1;
    }
    checkpoints.reset_envs(&mut venv, mix64(seed ^ ENV_STREAM), ppo_cfg.group_size)?;

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
    let evaluator = Evaluator::new(&eval_spec, config, device, &options.run_dir, global_step)?;
    // Imitation warm start (`[imitation]`): clone the teacher before the first rollout.
    let (prior, warm_start) = imitation::begin(
        config,
        options.resume,
        &spec,
        &eval_spec,
        &mut episodes,
        &policy,
        &adam,
        &mut normalizer,
        &mut tb,
        &checkpoints,
        &progress,
    )?;
    let num_iterations = config.num_iterations();
    let whole_episodes = ppo_cfg.whole_episodes();
    // Rollouts of whole episodes, or of decisions that skip forced steps, take a varying
    // number of env steps: such runs end, and anneal, by env steps rather than iterations.
    let counted_by_steps = whole_episodes || ppo_cfg.skip_forced;
    let done_after = |iteration: usize, global_step: u64| {
        if counted_by_steps {
            global_step >= config.train.total_steps
        } else {
            iteration > num_iterations
        }
    };
    let mut buffer = RolloutBuffer::new(num_steps, num_envs, obs_dim, num_actions, device);
    let mut episode_buffer = EpisodeBuffer::new(num_envs, obs_dim, num_actions);
    let mut sampler = Sampler::new(num_envs, obs_dim, device);
    let mut rewards = vec![0.0f32; num_envs];
    let mut over = vec![0.0f32; num_envs];
    let mut updates = Vec::new();
    let (mut t_env, mut t_infer, mut t_update) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut outcome = Outcome::Finished;

    while !done_after(iteration, global_step) {
        let steps_before = global_step;
        let lr = if counted_by_steps {
            ppo::annealed_lr(
                ppo_cfg,
                global_step as f64 / config.train.total_steps as f64,
            )
        } else {
            ppo::annealed_lr(ppo_cfg, (iteration - 1) as f64 / num_iterations as f64)
        };
        let batch = if whole_episodes {
            // One whole episode per env: an env whose episode ended is parked (its next
            // episode, already reset, waits for the next rollout) until all have ended.
            let mut active = vec![true; num_envs];
            while active.contains(&true) {
                let t0 = Instant::now();
                global_step += active.iter().filter(|&&a| a).count() as u64;
                let decision = sampler.decide(
                    &venv,
                    &policy,
                    normalizer.as_mut(),
                    &active,
                    &mut action_rng,
                )?;
                let log_probs = Vec::<f32>::try_from(decision.log_probs.to_device(Device::Cpu))?;
                let values = Vec::<f32>::try_from(decision.values.to_device(Device::Cpu))?;
                for i in (0..num_envs).filter(|&i| active[i]) {
                    episode_buffer.record_decision(
                        i,
                        &sampler.obs_buf[i * obs_dim..(i + 1) * obs_dim],
                        &venv.action_masks()[i * num_actions..(i + 1) * num_actions],
                        sampler.actions[i],
                        log_probs[i],
                        values[i],
                        venv.env(i).clock(),
                    );
                }
                let t1 = Instant::now();
                venv.step_active(&sampler.actions, &active)?;
                global_step += take_forced_steps(&mut venv);
                let t2 = Instant::now();
                scaled_rewards(&venv, ppo_cfg.reward_scale, &mut rewards, &mut over);
                rollout::bootstrap_truncated(
                    &mut rewards,
                    venv.terminated(),
                    venv.truncated(),
                    ppo_cfg.gamma,
                    |envs| final_values(&venv, envs, &policy, normalizer.as_ref(), device),
                );
                for (i, still) in active.iter_mut().enumerate().filter(|(_, a)| **a) {
                    episode_buffer.record_reward(i, rewards[i]);
                    *still = over[i] == 0.0;
                }
                episodes.record_finished(&mut tb, &venv, &spec.resource_names, global_step);
                t_infer += t1 - t0;
                t_env += t2 - t1;
                t_infer += t2.elapsed();
            }
            let t0 = Instant::now();
            let batch = episode_buffer.finish(
                ppo_cfg.baseline,
                ppo_cfg.group_size,
                ppo_cfg.discount(),
                ppo_cfg.gae_lambda,
                device,
            );
            t_update += t0.elapsed();
            batch
        } else {
            let all = vec![true; num_envs];
            let discount = ppo_cfg.discount();
            let mut clocks = vec![None; num_envs];
            let mut discounts = vec![0.0f32; num_envs];
            for step in 0..num_steps {
                global_step += num_envs as u64;
                let t0 = Instant::now();
                let decision =
                    sampler.decide(&venv, &policy, normalizer.as_mut(), &all, &mut action_rng)?;
                buffer.record_decision(
                    step,
                    &decision.obs,
                    &decision.mask,
                    &decision.actions,
                    &decision.log_probs,
                    &decision.values,
                );
                if discount.by_clock {
                    for (c, i) in clocks.iter_mut().zip(0..num_envs) {
                        *c = venv.env(i).clock();
                    }
                }
                let t1 = Instant::now();
                venv.step(&sampler.actions)?;
                global_step += take_forced_steps(&mut venv);
                let t2 = Instant::now();
                scaled_rewards(&venv, ppo_cfg.reward_scale, &mut rewards, &mut over);
                if discount.by_clock {
                    // γ per unit of simulated time up to the env's next decision (an ended
                    // episode's discount multiplies nothing but a truncation's bootstrap).
                    for (i, d) in discounts.iter_mut().enumerate() {
                        let next = (over[i] == 0.0).then(|| venv.env(i).clock()).flatten();
                        *d = discount.between(clocks[i], next);
                    }
                    buffer.record_discounts(step, &discounts);
                }
                if let Some(norm) = return_normalizer.as_mut() {
                    norm.normalize(&mut rewards, &over);
                }
                rollout::bootstrap_truncated(
                    &mut rewards,
                    venv.terminated(),
                    venv.truncated(),
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
            let obs_buf = &mut sampler.obs_buf;
            obs_buf.copy_from_slice(venv.observations());
            if let Some(norm) = normalizer.as_ref() {
                norm.normalize(obs_buf);
            }
            let next_obs = Tensor::from_slice(obs_buf)
                .view([num_envs as i64, obs_dim as i64])
                .to_device(device);
            let next_values = tch::no_grad(|| policy.forward(&next_obs).1);
            let batch = buffer.finish(&next_values, ppo_cfg.gamma, ppo_cfg.gae_lambda);
            t_update += t0.elapsed();
            batch
        };

        let t0 = Instant::now();
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
        tb.scalar("charts/SPS", sps, global_step);
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
        tb.scalar("losses/grad_norm", stats.grad_norm, global_step);
        updates.push(stats);

        let mean_return = fmt_return(episodes.mean_return());
        let last = done_after(iteration + 1, global_step);
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

        let at = At::now(options, global_step, global_step - steps_before, last);
        let learner = Learner {
            policy: &policy,
            optimizer: &adam,
            normalizer: normalizer.as_ref(),
            iteration: iteration as u64,
        };
        let snapshot = Snapshot {
            venv: Some(&venv),
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

/// What the policy decided for every env at one step (tensors on the training device).
struct Decision {
    obs: Tensor,
    mask: Tensor,
    actions: Tensor,
    log_probs: Tensor,
    values: Tensor,
}

/// Samples one action per env from the policy: the step both kinds of rollout share. Keeps
/// the (normalised) observations it fed the policy and the sampled actions.
struct Sampler {
    obs_buf: Vec<f32>,
    actions: Vec<usize>,
    actions_i64: Vec<i64>,
    device: Device,
}

impl Sampler {
    fn new(num_envs: usize, obs_dim: usize, device: Device) -> Self {
        Self {
            obs_buf: vec![0.0; num_envs * obs_dim],
            actions: vec![0; num_envs],
            actions_i64: vec![0; num_envs],
            device,
        }
    }

    /// Normalises the observations (updating the running statistics with the `active` envs'
    /// rows only: a parked env's row would be counted again at every step), runs the policy
    /// and samples an action for every env.
    fn decide(
        &mut self,
        venv: &VecEnv<Replayable>,
        policy: &Policy,
        normalizer: Option<&mut ObsNormalizer>,
        active: &[bool],
        rng: &mut ChaCha8Rng,
    ) -> Result<Decision, tch::TchError> {
        let (num_envs, obs_dim, num_actions) =
            (venv.num_envs(), venv.obs_dim(), venv.num_actions());
        self.obs_buf.copy_from_slice(venv.observations());
        if let Some(norm) = normalizer {
            if active.iter().all(|&a| a) {
                norm.update(&self.obs_buf);
            } else {
                let rows: Vec<f32> = (0..num_envs)
                    .filter(|&i| active[i])
                    .flat_map(|i| self.obs_buf[i * obs_dim..(i + 1) * obs_dim].iter().copied())
                    .collect();
                norm.update(&rows);
            }
            norm.normalize(&mut self.obs_buf);
        }
        let obs = Tensor::from_slice(&self.obs_buf)
            .view([num_envs as i64, obs_dim as i64])
            .to_device(self.device);
        let mask = Tensor::from_slice(venv.action_masks())
            .view([num_envs as i64, num_actions as i64])
            .to_device(self.device);
        let (dist, values) = tch::no_grad(|| {
            let (logits, values) = policy.forward(&obs);
            (MaskedCategorical::new(&logits, &mask), values)
        });
        let probs = Vec::<f32>::try_from(dist.probs().to_device(Device::Cpu).reshape([-1]))?;
        sample_masked(
            &probs,
            venv.action_masks(),
            num_actions,
            rng,
            &mut self.actions,
        );
        for (dst, &a) in self.actions_i64.iter_mut().zip(&self.actions) {
            *dst = a as i64;
        }
        let actions = Tensor::from_slice(&self.actions_i64).to_device(self.device);
        let log_probs = dist.log_prob(&actions);
        Ok(Decision {
            obs,
            mask,
            actions,
            log_probs,
            values,
        })
    }
}

/// The forced steps the training envs took themselves since the last call
/// (`ppo.skip_forced`), which count as env steps as much as the decisions do.
fn take_forced_steps(venv: &mut VecEnv<Replayable>) -> u64 {
    (0..venv.num_envs())
        .map(|i| venv.env_mut(i).take_forced_steps())
        .sum()
}

/// The last step's rewards times `reward_scale`, and 1.0 in `over` for every env whose
/// episode ended on it.
fn scaled_rewards(
    venv: &VecEnv<Replayable>,
    reward_scale: f64,
    rewards: &mut [f32],
    over: &mut [f32],
) {
    for (r, &raw) in rewards.iter_mut().zip(venv.rewards()) {
        *r = raw * reward_scale as f32;
    }
    let (terminated, truncated) = (venv.terminated(), venv.truncated());
    for (o, (&term, &trunc)) in over.iter_mut().zip(terminated.iter().zip(truncated)) {
        *o = if term || trunc { 1.0 } else { 0.0 };
    }
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

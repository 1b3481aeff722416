//! The evolution-strategies loop (Salimans et al. 2017, [`lepton_agent::es`]), read top to
//! bottom: each generation draws `es.pairs` noise vectors ε, plays the greedy policies θ ± σε
//! on the same `es.episodes` training workloads, ranks the 2 × `es.pairs` fitnesses, steps θ
//! with Adam along the rank-weighted noise, logs, evaluates and checkpoints; until
//! `train.total_steps` env steps have been played. Every candidate plays every workload of
//! its generation, so candidates are compared on the same episodes (common random numbers).
//!
//! A candidate's fitness is the model-selection score (`eval.select`) on the generation's
//! workloads: by default minus the completion-aware mean slowdown, which charges unfinished
//! and dropped tasks. Only the actor's weights are perturbed (the critic does not act). A
//! warm start comes from `train.init_from` (an imitation clone, a PPO run); its observation
//! normaliser, if any, stays frozen.
//!
//! Reproducibility: the noise comes from a ChaCha stream seeded from `train.seed` and the
//! workloads' seeds from the generation's number, so a checkpoint (taken between generations,
//! when no episode is open) holds everything a resume needs: the weights, Adam, the noise
//! stream's position and the generation.
//!
//! TensorBoard tags (besides `charts/episodic_return` — the generation's mean over all
//! candidates — `charts/episodic_length` and `eval/*`): `charts/learning_rate`, `charts/SPS`,
//! `es/fitness_mean`, `es/fitness_max`, `es/fitness_min`, `es/update_norm`.

use lepton_agent::es;
use lepton_agent::networks::{Head, Policy, with_torch_rng};
use lepton_agent::optim::Adam;
use lepton_env::seeds::mix64;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::checkpointing::{
    At, Checkpoints, EnvShape, Learner, Resumable, Resumed, Snapshot, warm_start,
};
use crate::config::TrainConfig;
use crate::envs::episode_seed;
use crate::evaluation::{Actions, Evaluator, episode_envs, play};
use crate::run::{Outcome, RETURN_WINDOW, RunOptions, RunSummary, TrainError};
use crate::session::{EpisodeTracker, RunLogs, RunSetup, fmt_return, write_summary};

/// ES's own part of a checkpoint's `trainer_state` (its noise stream is the shared
/// `action_rng`).
#[derive(Serialize, Deserialize)]
struct EsState {
    generation: u64,
}

/// Stream tags mixed with the run seed so that the streams are independent.
const NOISE_STREAM: u64 = 0x6e6f_6973;
const WORKLOAD_STREAM: u64 = 0x776f_726b;

/// Trains with `config` (already resolved and validated, `algo = "es"`).
pub fn run(config: &TrainConfig, options: &RunOptions) -> Result<RunSummary, TrainError> {
    let RunSetup {
        device,
        spec,
        eval_spec,
    } = RunSetup::open(config)?;
    let es_cfg = &config.es;
    let seed = config.train.seed;
    let probe = spec.make();
    let shape = EnvShape::of(probe.as_ref());
    let policy = with_torch_rng(Some(seed as i64), || {
        Policy::new(
            &config.network,
            probe.obs_layout(),
            &shape.actions,
            Head::Logits,
            device,
        )
    })?;
    let actor = policy.actor_parameters();
    let params: Vec<Tensor> = actor.iter().map(|(_, p)| p.shallow_clone()).collect();
    let mut adam = Adam::new(actor, es_cfg.adam_eps);
    let mut normalizer = if options.resume {
        None
    } else {
        warm_start(config, &policy, &mut adam, None)?
    };
    // The run directory is created only once everything that can refuse the config has.
    let mut checkpoints = Checkpoints::open(config, &options.run_dir, &spec)?;
    let mut noise_rng = ChaCha8Rng::seed_from_u64(mix64(seed ^ NOISE_STREAM));
    let workload_base = mix64(seed ^ WORKLOAD_STREAM);
    let mut episodes = EpisodeTracker::new();
    let (mut global_step, mut generation) = (0u64, 0u64);
    if options.resume {
        let resumed: Resumed<EsState> = checkpoints.resume(
            &options.run_dir,
            &policy,
            &mut adam,
            Resumable::Shape(shape),
        )?;
        (noise_rng, episodes) = (resumed.action_rng, resumed.episodes);
        normalizer = resumed.meta.normalizer;
        global_step = resumed.meta.global_step;
        generation = resumed.algo.generation;
    }

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
    let total = config.train.total_steps;
    let num_workloads = es_cfg.episodes as u64;
    // One env per workload, reset by every candidate to the generation's seeds.
    let mut workload_envs = episode_envs(&spec, es_cfg.episodes, config.run.env_threads)?;
    let mut outcome = Outcome::Finished;

    while global_step < total {
        let steps_before = global_step;
        let lr = es_cfg.lr_at(global_step as f64 / total as f64);
        let seeds: Vec<u64> = (0..num_workloads)
            .map(|i| episode_seed(workload_base, generation * num_workloads + i))
            .collect();
        let center: Vec<Tensor> = params.iter().map(|p| p.detach().copy()).collect();
        let noise: Vec<Vec<Tensor>> = (0..es_cfg.pairs)
            .map(|_| es::sample_noise(&params, &mut noise_rng))
            .collect();
        // fitness[0][i] is θ + σεᵢ's, fitness[1][i] is θ − σεᵢ's.
        let mut fitness = [Vec::new(), Vec::new()];
        let (mut return_sum, mut length_sum) = (0.0, 0.0);
        for eps in &noise {
            for (side, sign) in [(0, 1.0), (1, -1.0)] {
                es::set_weights(&params, &center, eps, sign * es_cfg.sigma);
                let result = play(
                    &mut workload_envs,
                    &policy,
                    normalizer.as_ref(),
                    &seeds,
                    device,
                    Actions::Greedy,
                )?;
                global_step += (result.mean_length * seeds.len() as f64).round() as u64;
                fitness[side].push(result.selection_score(config.eval.select));
                return_sum += result.mean_return;
                length_sum += result.mean_length;
            }
        }
        es::restore_weights(&params, &center);
        let grad = es::gradient(&fitness[0], &fitness[1], &noise, es_cfg.sigma);
        es::ascend(&mut adam, &params, &grad, es_cfg.weight_decay, lr);
        generation += 1;

        let candidates = 2 * es_cfg.pairs;
        let all: Vec<f64> = fitness.concat();
        let update_norm = params
            .iter()
            .zip(&center)
            .map(|(p, c)| (p - c).square().sum(Kind::Double).double_value(&[]))
            .sum::<f64>()
            .sqrt();
        let sps = clock.sps(global_step);
        tb.scalar("charts/learning_rate", lr, global_step);
        tb.scalar("charts/SPS", sps, global_step);
        tb.scalar(
            "es/fitness_mean",
            all.iter().sum::<f64>() / all.len() as f64,
            global_step,
        );
        tb.scalar(
            "es/fitness_max",
            all.iter().copied().fold(f64::MIN, f64::max),
            global_step,
        );
        tb.scalar(
            "es/fitness_min",
            all.iter().copied().fold(f64::MAX, f64::min),
            global_step,
        );
        tb.scalar("es/update_norm", update_norm, global_step);
        episodes.record_population(
            &mut tb,
            return_sum / candidates as f64,
            length_sum / candidates as f64,
            candidates as u64 * num_workloads,
            global_step,
        );

        let mean_return = fmt_return(episodes.mean_return());
        let last = global_step >= total;
        progress.set_position(global_step.min(total));
        progress.set_message(format!("sps {sps:.0} | return {mean_return}"));
        if progress.is_hidden()
            && (generation.is_multiple_of(config.run.log_every_iterations as u64) || last)
        {
            eprintln!(
                "step {global_step}/{total} | generation {generation} | sps {sps:.0} | mean return ({RETURN_WINDOW} generations) {mean_return}",
            );
        }

        let at = At::now(options, global_step, global_step - steps_before, last);
        let learner = Learner {
            policy: &policy,
            optimizer: &adam,
            normalizer: normalizer.as_ref(),
            iteration: generation,
        };
        let snapshot = Snapshot {
            venv: None,
            action_rng: &noise_rng,
            episodes: &mut episodes,
            algo: EsState { generation },
            periodic_extras: || Ok(Vec::new()),
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
        serde_json::json!({ "es": { "generations": generation } }),
    )?;
    Ok(RunSummary {
        outcome,
        global_step,
        updates: Vec::new(),
        last_checkpoint: checkpoints.last.ok_or(TrainError::NoCheckpointWritten)?,
        mean_return: episodes.mean_return(),
    })
}

//! Population-based training: `population` members train side by side in rounds of
//! `interval_steps` env steps ([`crate::trainer::run`] with `stop_at_step`, then `resume`).
//! After each round every member is scored on the held-out fitness seeds; the bottom
//! `fraction` copies a top member's checkpoint — weights, optimizer state, observation
//! normaliser and trainer state — and hyperparameters (exploit), then perturbs the float genes
//! (explore). The decisions are [`super::operators::pbt_exploit`] and
//! [`super::operators::pbt_explore`]; this file only performs them.
//!
//! The copy is a checkpoint written with [`lepton_agent::checkpoint::save`] into the
//! recipient's `checkpoints/` carrying the recipient's new config, so the trainer's own resume
//! continues it. `pbt_state.json` records the finished rounds; `--resume` continues after the
//! last one (a member already past the round's end is scored, not retrained).
//!
//! Known limit: each round opens a new TensorBoard event file in the member's run directory,
//! named by the second it was opened (tensorboard-rs); a round shorter than one second
//! replaces the previous round's file, losing those curves (never the checkpoints or results).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use lepton_agent::checkpoint::{self, SaveRequest};
use lepton_agent::optim::Adam;
use lepton_env::Env;
use serde::{Deserialize, Serialize};

use super::ga::generation_rng;
use super::leaderboard::{Status, TrialRecord};
use super::operators::{pbt_exploit, pbt_explore};
use super::{Search, TrialResult, train_and_score, trial_seed};
use crate::config::TrainConfig;
use crate::envs::EnvSpec;
use crate::run::RunOptions;

/// What survives between rounds (and across `--resume`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct PbtState {
    rounds_done: usize,
    genomes: Vec<Vec<f64>>,
    fitness: Vec<Option<f64>>,
    /// A member that failed and has not been replaced by a copy since.
    failures: Vec<Option<(Status, String)>>,
    history: Vec<Vec<String>>,
    wall_s: Vec<f64>,
}

/// Runs (or resumes) PBT; one record per member.
pub fn run(search: &Search, interrupt: &Arc<AtomicBool>) -> anyhow::Result<Vec<TrialRecord>> {
    let pbt = search
        .config
        .pbt
        .as_ref()
        .expect("validated: mode = pbt has [pbt]");
    let n = pbt.population;
    let budget = search.config.steps_per_trial;
    let num_rounds = budget.div_ceil(pbt.interval_steps) as usize;
    let state_path = search.dir.join("pbt_state.json");
    let mut state: PbtState = match std::fs::read_to_string(&state_path) {
        Ok(text) => serde_json::from_str(&text)?,
        Err(_) => {
            let mut rng = generation_rng(search.config.seed, 0);
            PbtState {
                rounds_done: 0,
                genomes: (0..n)
                    .map(|_| {
                        search
                            .config
                            .gene
                            .iter()
                            .map(|g| g.sample(&mut rng))
                            .collect()
                    })
                    .collect(),
                fitness: vec![None; n],
                failures: vec![None; n],
                history: vec![Vec::new(); n],
                wall_s: vec![0.0; n],
            }
        }
    };
    for round in state.rounds_done + 1..=num_rounds {
        let stop = (round as u64 * pbt.interval_steps).min(budget);
        let results = super::parallel_map(n, search.config.parallel_trials, |i| {
            if let Some(failure) = &state.failures[i] {
                return (TrialResult::Failed(failure.0, failure.1.clone()), 0.0);
            }
            let start = Instant::now();
            let result = train_round(search, i, &state.genomes[i], stop, interrupt);
            (result, start.elapsed().as_secs_f64())
        });
        for (i, (result, wall_s)) in results.into_iter().enumerate() {
            state.wall_s[i] += wall_s;
            match result {
                TrialResult::Interrupted => anyhow::bail!("interrupted"),
                TrialResult::Scored(f) if f.is_finite() => state.fitness[i] = Some(f),
                TrialResult::Scored(f) => {
                    state.fitness[i] = None;
                    state.failures[i] = Some((Status::Nan, format!("fitness is {f}")));
                }
                TrialResult::Failed(status, reason) => {
                    state.fitness[i] = None;
                    state.failures[i] = Some((status, reason));
                }
            }
        }
        let shown: Vec<String> = state
            .fitness
            .iter()
            .map(|f| f.map_or("failed".into(), |f| format!("{f:.3}")))
            .collect();
        eprintln!(
            "pbt round {round}/{num_rounds} (env step {stop}): fitness [{}]",
            shown.join(", ")
        );
        if round < num_rounds {
            let mut rng = generation_rng(search.config.seed, round);
            for (recipient, donor) in pbt_exploit(&state.fitness, pbt.fraction, &mut rng) {
                let genome = pbt_explore(
                    &state.genomes[donor],
                    &search.config.gene,
                    &pbt.perturb_factors,
                    &mut rng,
                );
                copy_member(search, donor, recipient, &genome)?;
                state.history[recipient].push(format!(
                    "round {round}: copied member {donor} (fitness {}), then {}",
                    state.fitness[donor].map_or("-".into(), |f| format!("{f:.3}")),
                    super::genes::override_args(&search.config.gene, &genome).join(" ")
                ));
                state.genomes[recipient] = genome;
                state.failures[recipient] = None;
                state.fitness[recipient] = state.fitness[donor];
            }
        }
        state.rounds_done = round;
        checkpoint::write_atomic(
            &state_path,
            serde_json::to_string_pretty(&state)?.as_bytes(),
        )?;
    }
    let records: Vec<TrialRecord> = (0..n)
        .map(|i| {
            let mut r =
                search.base_record(i, 0, &state.genomes[i], trial_seed(search.config.seed, i));
            r.fitness = state.fitness[i];
            r.wall_s = state.wall_s[i];
            r.history = state.history[i].clone();
            match &state.failures[i] {
                Some((status, reason)) => {
                    r.status = *status;
                    r.reason = Some(super::one_line(reason));
                }
                None => r.status = Status::Finished,
            }
            r
        })
        .collect();
    for r in &records {
        search.finish_record(r)?;
    }
    Ok(records)
}

/// Trains member `i` up to env step `stop` (resuming its checkpoint if it has one) and scores
/// the checkpoint it ends on.
fn train_round(
    search: &Search,
    i: usize,
    genome: &[f64],
    stop: u64,
    interrupt: &Arc<AtomicBool>,
) -> TrialResult {
    let config = match search.trial_config(genome, trial_seed(search.config.seed, i)) {
        Ok(c) => c,
        Err(e) => return TrialResult::Failed(Status::Invalid, e.to_string()),
    };
    let dir = search.trial_dir(i);
    let latest = checkpoint::latest_periodic(&dir.join("checkpoints")).ok();
    let at_step = latest
        .as_ref()
        .and_then(|p| checkpoint::read_meta(p).ok())
        .map(|m| m.global_step);
    if let (Some(path), Some(step)) = (&latest, at_step)
        && step >= stop
    {
        // Resumed after this round's training had finished: score, do not train further.
        return match super::score_checkpoint(&config, path, &search.config.fitness) {
            Ok(f) => TrialResult::Scored(f),
            Err(e) => TrialResult::Failed(Status::Failed, format!("scoring: {e}")),
        };
    }
    let options = RunOptions {
        run_dir: dir,
        resume: latest.is_some(),
        stop_at_step: (stop < search.config.steps_per_trial).then_some(stop),
        progress: false,
        interrupt: interrupt.clone(),
    };
    train_and_score(&config, &options, &search.config.fitness)
}

/// Exploit: writes the donor's newest checkpoint, with the recipient's new config
/// (`genome`), as the recipient's only checkpoint.
fn copy_member(
    search: &Search,
    donor: usize,
    recipient: usize,
    genome: &[f64],
) -> anyhow::Result<()> {
    let seed = trial_seed(search.config.seed, recipient);
    let config: TrainConfig = search.trial_config(genome, seed)?;
    let src = checkpoint::latest_periodic(&search.trial_dir(donor).join("checkpoints"))?;
    let meta = checkpoint::read_meta(&src)?;
    let spec = EnvSpec::from_config(&config.env)?;
    let device = tch::Device::Cpu;
    let env = spec.make();
    let policy =
        checkpoint::load_policy(&src, &meta, env.obs_layout(), &env.action_layout(), device)?;
    let mut adam = Adam::new(policy.named_parameters(), config.ppo.adam_eps);
    checkpoint::load_optimizer(&src, &meta, &mut adam)?;
    let dst = search.trial_dir(recipient).join("checkpoints");
    if dst.exists() {
        std::fs::remove_dir_all(&dst)?;
    }
    checkpoint::save(
        &dst,
        SaveRequest {
            kind: "step",
            global_step: meta.global_step,
            iteration: meta.iteration,
            seed,
            config_toml: &config.to_toml(),
            network: &config.network,
            policy: &policy,
            optimizer: &adam,
            normalizer: meta.normalizer.as_ref(),
            extras: Vec::new(),
            sources: &meta.sources,
            obs_time_scale_s: meta.obs_time_scale_s,
            trainer_state: meta.trainer_state.clone(),
        },
    )?;
    Ok(())
}

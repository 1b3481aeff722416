//! One GA generation: every trial trained on `seeds_per_trial` seeds and scored by their mean
//! fitness, with successive halving when `[early_stop]` is set.
//!
//! Rungs: each trial's runs train to the first rung's step (`--stop-at-step`, which leaves a
//! resumable checkpoint) and are scored there; the best `keep` fraction of the trials resumes
//! to the next rung, the others are recorded as `stopped`. Resume is bit-exact, so a trial
//! that reaches the last rung (`steps_per_trial`) is exactly the run it would have been
//! without early stopping. Every decision depends only on the scores, never on which trial
//! finished first, so the search stays deterministic for any `parallel_trials`.
//!
//! A search resumed with `--resume` keeps every trial that wrote `trial.json` and retrains
//! the rest; their rung decisions see the kept trials' recorded rung scores, so they come out
//! as they did the first time.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use super::leaderboard::{Rung, Status, TrialRecord};
use super::{Search, TrialResult, one_line, parallel_map, train_and_score, trial_run_seed};
use crate::config::TrainConfig;
use crate::run::RunOptions;

/// How one trial's runs did at one rung.
enum RungResult {
    /// The fitness of each run (all finite).
    Scored(Vec<f64>),
    Interrupted,
    Failed(Status, String),
}

impl Search {
    /// The step of each rung, the last being `steps_per_trial`.
    fn rung_steps(&self) -> Vec<u64> {
        let total = self.config.steps_per_trial;
        let mut steps: Vec<u64> = self.config.early_stop.as_ref().map_or(Vec::new(), |stop| {
            stop.rungs
                .iter()
                .map(|f| ((total as f64 * f).round() as u64).clamp(1, total))
                .collect()
        });
        steps.push(total);
        steps.dedup();
        steps
    }

    /// Trains and scores the trials `first..first + genomes.len()` (see the module docs);
    /// `None` if interrupted (the unfinished trials are redone on resume).
    pub(super) fn run_generation(
        &self,
        generation: usize,
        first: usize,
        genomes: &[Vec<f64>],
        interrupt: &Arc<AtomicBool>,
    ) -> anyhow::Result<Option<Vec<TrialRecord>>> {
        let seeds_per_trial = self.config.seeds_per_trial;
        let mut records: Vec<TrialRecord> = Vec::new();
        // Trials still training, with their runs' configs.
        let mut training: Vec<(usize, Vec<TrainConfig>)> = Vec::new();
        for (i, genome) in genomes.iter().enumerate() {
            let index = first + i;
            if let Some(done) = self.finished_record(index) {
                if done.genome == *genome {
                    records.push(done);
                    continue;
                }
                eprintln!("trial {index}: genes differ from trial.json; retraining");
            }
            let seeds: Vec<u64> = (0..seeds_per_trial)
                .map(|k| trial_run_seed(self.config.seed, index, k))
                .collect();
            let mut record = self.base_record(index, generation, genome, seeds[0]);
            record.seeds = seeds.clone();
            let dir = self.trial_dir(index);
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
            }
            std::fs::create_dir_all(&dir)?;
            let configs: Result<Vec<TrainConfig>, _> = seeds
                .iter()
                .map(|&seed| self.trial_config(genome, seed))
                .collect();
            match configs {
                Ok(configs) => training.push((records.len(), configs)),
                Err(e) => {
                    record.status = Status::Invalid;
                    record.reason = Some(one_line(&e.to_string()));
                }
            }
            records.push(record);
        }
        let rungs = self.rung_steps();
        for (r, &steps) in rungs.iter().enumerate() {
            let last = r + 1 == rungs.len();
            let results = parallel_map(training.len(), self.config.parallel_trials, |j| {
                let (at, configs) = &training[j];
                let clock = Instant::now();
                let result =
                    self.train_to_rung(&records[*at], configs, steps, r > 0, last, interrupt);
                (result, clock.elapsed().as_secs_f64())
            });
            let mut scored: Vec<(usize, f64)> = Vec::new();
            for ((at, _), (result, wall_s)) in training.iter().zip(results) {
                let record = &mut records[*at];
                record.budget_steps = steps;
                record.wall_s += wall_s;
                match result {
                    RungResult::Interrupted => return Ok(None),
                    RungResult::Failed(status, reason) => {
                        record.status = status;
                        record.reason = Some(one_line(&reason));
                    }
                    RungResult::Scored(fitness) => {
                        let mean = fitness.iter().sum::<f64>() / fitness.len() as f64;
                        record.seed_fitness = fitness;
                        if last {
                            record.status = Status::Finished;
                            record.fitness = Some(mean);
                        } else {
                            record.rungs.push(Rung {
                                steps,
                                fitness: mean,
                            });
                            scored.push((*at, mean));
                        }
                    }
                }
            }
            if last {
                break;
            }
            // The kept trials that reached this rung compete too (a resumed search).
            let mut contenders: Vec<(usize, f64)> = scored.clone();
            for (at, record) in records.iter().enumerate() {
                let reached = record.rungs.iter().find(|g| g.steps == steps);
                if let (false, Some(rung)) = (training.iter().any(|(t, _)| *t == at), reached) {
                    contenders.push((at, rung.fitness));
                }
            }
            // Best first; ties go to the earlier trial.
            contenders.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let keep_fraction = self.config.early_stop.as_ref().map_or(1.0, |s| s.keep);
            let keep = ((contenders.len() as f64 * keep_fraction).ceil() as usize).max(1);
            let promoted: Vec<usize> = contenders[..keep.min(contenders.len())]
                .iter()
                .map(|c| c.0)
                .collect();
            for &(at, fitness) in &scored {
                if !promoted.contains(&at) {
                    let record = &mut records[at];
                    record.status = Status::Stopped;
                    record.reason = Some(format!(
                        "stopped at {steps} steps: fitness {fitness:.4} was not among the best {keep} of {}",
                        contenders.len()
                    ));
                }
            }
            training.retain(|(at, _)| promoted.contains(at) && records[*at].reason.is_none());
        }
        for record in &records {
            if !self.trial_dir(record.trial).join("trial.json").is_file() {
                self.finish_record(record)?;
            }
        }
        Ok(Some(records))
    }

    /// Trains each of a trial's runs to `steps` (resuming from the previous rung when
    /// `resume`; to the end when `last`) and scores its newest checkpoint.
    fn train_to_rung(
        &self,
        record: &TrialRecord,
        configs: &[TrainConfig],
        steps: u64,
        resume: bool,
        last: bool,
        interrupt: &Arc<AtomicBool>,
    ) -> RungResult {
        let mut fitness = Vec::new();
        for (k, config) in configs.iter().enumerate() {
            let options = RunOptions {
                run_dir: self.trial_dir(record.trial).join(format!("seed_{k}")),
                resume,
                stop_at_step: (!last).then_some(steps),
                progress: false,
                interrupt: interrupt.clone(),
            };
            match train_and_score(config, &options, &self.config.fitness) {
                TrialResult::Interrupted => return RungResult::Interrupted,
                TrialResult::Failed(status, reason) => {
                    return RungResult::Failed(
                        status,
                        format!("seed {}: {reason}", config.train.seed),
                    );
                }
                TrialResult::Scored(f) if !f.is_finite() => {
                    return RungResult::Failed(
                        Status::Nan,
                        format!("seed {}: fitness is {f}", config.train.seed),
                    );
                }
                TrialResult::Scored(f) => fitness.push(f),
            }
        }
        RungResult::Scored(fitness)
    }
}

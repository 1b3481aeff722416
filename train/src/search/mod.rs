//! Hyperparameter search: a genetic algorithm ([`ga`]) or population-based training ([`pbt`])
//! over genes ([`genes`]) that set keys of a base training config, every trial trained by
//! [`crate::trainer::run`] — the code path of `lepton-train` — and scored by a greedy
//! evaluation on held-out seeds ([`crate::evaluation::evaluate`]).
//!
//! `lepton-train search --config configs/search_ppo_cartpole.toml` writes to
//! `runs/<config stem>/` (or `--out DIR`):
//! * `search.toml` — the resolved search config (`--resume` refuses a different one);
//! * `trials/trial_NNNN/` — each trial's run directory (config.toml, TensorBoard events,
//!   checkpoints, summary.json) plus `trial.json` (its [`leaderboard::TrialRecord`]) and
//!   `hparams/` (its HParams session); `tensorboard --logdir <search dir>` shows them all;
//! * `leaderboard.csv`, `leaderboard.json` — every trial, best first;
//! * `best.toml` — the best trial's complete training config: base config + `set` + genes,
//!   with the trial's own budget and first seed, evaluation on the fitness episodes and
//!   checkpoints on, so that `lepton-train --config best.toml` reproduces the winner.
//!
//! Config resolution per trial: base TOML → the search's `set` overrides → the genes'
//! `--set` arguments → `train.total_steps = steps_per_trial`, `train.seed = <run seed>`,
//! `run.torch_threads = 1`, `run.env_threads = 1` → serde (unknown keys rejected) →
//! validation. A trial whose config does not validate is recorded as `invalid`.
//!
//! Threads: `parallel_trials` trials train at once, each on its own thread with one libtorch
//! intra-op thread (process-wide) and its envs stepped on that same thread, so the search uses
//! `parallel_trials` cores. Determinism: trial `i`'s seed is derived from the search seed and
//! `i`, its genes from the search seed and earlier generations' fitness — never from the
//! order in which trials finish — and weight initialisation, the only use of libtorch's
//! global RNG, is serialised ([`lepton_agent::networks::with_torch_rng`]). On the CPU a search therefore gives the
//! same leaderboard for any `parallel_trials`.
//!
//! Failures: a trial that does not validate, diverges, errors, panics or scores NaN is
//! recorded with its reason and the worst fitness; the search goes on. Ctrl-C stops the
//! running trials; `--resume` keeps every finished trial (`trial.json`) and redoes the rest.

pub mod ga;
pub mod genes;
mod halving;
pub mod leaderboard;
pub mod operators;
pub mod pbt;

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use lepton_agent::checkpoint;
use lepton_agent::device::set_torch_threads;
use lepton_env::Env;
use serde::{Deserialize, Serialize};

use crate::config::{self, ConfigError, TrainConfig};
use crate::envs::EnvSpec;
use crate::evaluation::evaluate;
use crate::run::{Outcome, RunOptions, TORCH_THREADS};
use crate::trainer;
use genes::GeneSpec;
use leaderboard::{Status, TrialRecord};
use lepton_env::seeds::mix64;

/// A search, as read from its TOML file (unknown keys are errors).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchConfig {
    /// The base training config (path relative to the search file).
    pub base: PathBuf,
    /// `--set`-style overrides applied to the base before the genes, e.g. `eval.every_steps=0`.
    #[serde(default)]
    pub set: Vec<String>,
    /// `ga` (default) or `pbt`.
    #[serde(default)]
    pub mode: Mode,
    /// Seed of the whole search: every trial's genes and `train.seed` derive from it.
    pub seed: u64,
    /// Trials trained at once (one core each).
    pub parallel_trials: usize,
    /// Env steps each trial trains (its `train.total_steps`).
    pub steps_per_trial: u64,
    /// GA: training runs per trial, each with its own `train.seed`; the trial's fitness is
    /// the mean of theirs, so one lucky seed does not win the search.
    #[serde(default = "default_seeds_per_trial")]
    pub seeds_per_trial: usize,
    /// GA: stop hopeless trials early (successive halving); off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stop: Option<EarlyStop>,
    pub fitness: FitnessConfig,
    /// Required for `mode = "ga"`.
    #[serde(default)]
    pub ga: Option<GaConfig>,
    /// Required for `mode = "pbt"`.
    #[serde(default)]
    pub pbt: Option<PbtConfig>,
    /// The search space, one `[[gene]]` table per hyperparameter.
    pub gene: Vec<GeneSpec>,
}

fn default_seeds_per_trial() -> usize {
    2
}

/// Successive halving within each GA generation (Jamieson & Talwalkar, AISTATS'16; the rungs
/// of ASHA, Li et al., MLSys'20, run synchronously so that the search stays deterministic):
/// every trial trains to the first rung, is scored there, and only the best `keep` fraction
/// resumes (bit-exactly) to the next rung; the last rung is `steps_per_trial`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStop {
    /// Rungs as fractions of `steps_per_trial`, increasing, in (0, 1).
    pub rungs: Vec<f64>,
    /// Fraction of the trials scored at a rung that go on (at least one does).
    pub keep: f64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Ga,
    Pbt,
}

/// How a trained trial is scored: greedy episodes on held-out seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitnessConfig {
    /// `mean_return`, `neg_completion_slowdown` or `neg_mean_slowdown` (scheduling envs);
    /// higher is better. `neg_completion_slowdown` charges every arrived task (unfinished ones
    /// as if they finished at the episode's end), as model selection and lepton-eval do;
    /// beware `neg_mean_slowdown`: it averages over finished jobs only, so a policy that
    /// leaves jobs unfinished can score well on it.
    pub metric: Metric,
    /// Evaluation episodes, episode `i` on seed `seed + i`.
    pub num_episodes: usize,
    /// Keep it away from the training seeds and from the eval seeds used to compare results.
    pub seed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    MeanReturn,
    NegCompletionSlowdown,
    NegMeanSlowdown,
}

/// The genetic algorithm's knobs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GaConfig {
    /// Members of each generation.
    pub population: usize,
    pub generations: usize,
    /// Contestants per tournament (1: random parents).
    pub tournament_size: usize,
    /// Probability that a child is a uniform crossover of two parents (otherwise a copy).
    pub crossover_rate: f64,
    /// Probability that each gene of a child mutates.
    pub mutation_rate: f64,
    /// Mutation noise's standard deviation as a fraction of the gene's (log) range.
    pub mutation_scale: f64,
    /// The best this many of a generation pass to the next unchanged, without retraining.
    pub elitism: usize,
}

/// Population-based training's knobs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PbtConfig {
    /// Members trained side by side.
    pub population: usize,
    /// Env steps between exploit/explore rounds.
    pub interval_steps: u64,
    /// The bottom `fraction` copies the top `fraction` (weights, optimizer, hyperparameters).
    pub fraction: f64,
    /// Explore multiplies every float gene by one of these, e.g. `[0.8, 1.25]`.
    pub perturb_factors: Vec<f64>,
}

/// A search config problem.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// A resolved search: the config, the base table (base + `set`) and where it writes.
#[derive(Debug)]
pub struct Search {
    pub config: SearchConfig,
    pub base_table: toml::Table,
    pub dir: PathBuf,
}

impl SearchConfig {
    /// Every problem of the search config itself, one message each, naming the key.
    fn validate(&self) -> Vec<String> {
        let mut errors: Vec<String> = self.gene.iter().flat_map(GeneSpec::validate).collect();
        if self.gene.is_empty() {
            errors.push("at least one [[gene]] is required".into());
        }
        let mut keys: Vec<&str> = self.gene.iter().map(GeneSpec::key).collect();
        keys.sort_unstable();
        if keys.windows(2).any(|w| w[0] == w[1]) {
            errors.push("two genes set the same key".into());
        }
        if self.parallel_trials == 0 {
            errors.push("parallel_trials must be at least 1".into());
        }
        if self.fitness.num_episodes == 0 {
            errors.push("fitness.num_episodes must be at least 1".into());
        }
        if !(1..=MAX_SEEDS_PER_TRIAL).contains(&self.seeds_per_trial) {
            errors.push(format!(
                "seeds_per_trial must be in 1..={MAX_SEEDS_PER_TRIAL}, got {}",
                self.seeds_per_trial
            ));
        }
        if let Some(stop) = &self.early_stop {
            if self.mode != Mode::Ga {
                errors.push("[early_stop] applies to mode = \"ga\"".into());
            }
            let increasing = stop.rungs.windows(2).all(|w| w[0] < w[1]);
            if stop.rungs.is_empty()
                || !increasing
                || stop.rungs.iter().any(|&r| !(r > 0.0 && r < 1.0))
            {
                errors.push(
                    "early_stop.rungs must be increasing fractions of steps_per_trial in (0, 1)"
                        .into(),
                );
            }
            if !(stop.keep > 0.0 && stop.keep < 1.0) {
                errors.push(format!(
                    "early_stop.keep must be in (0, 1), got {}",
                    stop.keep
                ));
            }
        }
        match (self.mode, &self.ga, &self.pbt) {
            (Mode::Ga, None, _) => errors.push("mode = \"ga\" needs a [ga] table".into()),
            (Mode::Pbt, _, None) => errors.push("mode = \"pbt\" needs a [pbt] table".into()),
            _ => {}
        }
        if let (Mode::Ga, Some(ga)) = (self.mode, &self.ga) {
            if ga.population < 2 || ga.generations == 0 {
                errors
                    .push("ga.population must be at least 2 and ga.generations at least 1".into());
            }
            if ga.elitism >= ga.population {
                errors.push("ga.elitism must be less than ga.population".into());
            }
            if ga.tournament_size == 0 {
                errors.push("ga.tournament_size must be at least 1".into());
            }
            for (name, p) in [
                ("crossover_rate", ga.crossover_rate),
                ("mutation_rate", ga.mutation_rate),
            ] {
                if !(0.0..=1.0).contains(&p) {
                    errors.push(format!("ga.{name} must be in [0, 1]"));
                }
            }
            if !(ga.mutation_scale > 0.0 && ga.mutation_scale.is_finite()) {
                errors.push("ga.mutation_scale must be positive".into());
            }
        }
        if let (Mode::Pbt, Some(pbt)) = (self.mode, &self.pbt) {
            if pbt.population < 2 {
                errors.push("pbt.population must be at least 2".into());
            }
            if pbt.interval_steps == 0 || pbt.interval_steps > self.steps_per_trial {
                errors.push("pbt.interval_steps must be in 1..=steps_per_trial".into());
            }
            if !(0.0..=0.5).contains(&pbt.fraction) {
                errors.push("pbt.fraction must be in [0, 0.5]".into());
            }
            if pbt.perturb_factors.is_empty() || pbt.perturb_factors.iter().any(|f| *f <= 0.0) {
                errors.push("pbt.perturb_factors must be positive numbers".into());
            }
        }
        errors
    }

    /// The trial count of the whole search.
    pub fn num_trials(&self) -> usize {
        match (self.mode, &self.ga, &self.pbt) {
            (Mode::Ga, Some(ga), _) => {
                ga.population + (ga.generations - 1) * (ga.population - ga.elitism)
            }
            (Mode::Pbt, _, Some(pbt)) => pbt.population,
            _ => 0,
        }
    }

    pub(crate) fn breeding(&self) -> operators::Breeding {
        let ga = self.ga.as_ref().expect("validated: mode = ga has [ga]");
        operators::Breeding {
            tournament_size: ga.tournament_size,
            crossover_rate: ga.crossover_rate,
            mutation_rate: ga.mutation_rate,
            mutation_scale: ga.mutation_scale,
            elitism: ga.elitism,
        }
    }
}

/// Runs per trial at most (each is a whole training run).
pub const MAX_SEEDS_PER_TRIAL: usize = 64;

const TRIAL_SEED_STREAM: u64 = 0x7472_6961;
const EXTRA_SEED_STREAM: u64 = 0x7365_6564;

/// `train.seed` of trial `index` (below 2⁶³: TOML integers are signed).
pub fn trial_seed(search_seed: u64, index: usize) -> u64 {
    mix64(search_seed ^ mix64(TRIAL_SEED_STREAM.wrapping_add(index as u64))) >> 1
}

/// `train.seed` of run `k` of trial `index` (run 0's is [`trial_seed`]).
pub fn trial_run_seed(search_seed: u64, index: usize, k: usize) -> u64 {
    match k {
        0 => trial_seed(search_seed, index),
        _ => mix64(trial_seed(search_seed, index) ^ mix64(EXTRA_SEED_STREAM + k as u64)) >> 1,
    }
}

/// A multi-line error message on one line (for the leaderboard).
fn one_line(reason: &str) -> String {
    reason
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Search {
    /// Resolves a search config: the base config with `set` applied must validate, and every
    /// gene must set a key the training config knows (checked at its lower bound).
    pub fn resolve(config: SearchConfig, source: &str, dir: PathBuf) -> Result<Self, SearchError> {
        let mut errors = config.validate();
        let mut base_table = config::read_table(&config.base)?;
        for arg in &config.set {
            config::apply_override(&mut base_table, arg)?;
        }
        let search = Self {
            config,
            base_table,
            dir,
        };
        if let Err(e) = search.trial_config(&[], 0) {
            errors.push(e.to_string());
        }
        for gene in &search.config.gene {
            let lowest = gene.clamp(f64::MIN);
            let checked = search.trial_table(&[], 0).and_then(|mut table| {
                config::apply_override(&mut table, &gene.override_arg(lowest))?;
                TrainConfig::from_table(table, "")
            });
            if let Err(e) = checked {
                errors.push(format!("gene {} (at its lower bound): {e}", gene.key()));
            }
        }
        if let Ok(base) = search.trial_config(&[], 0) {
            if base.algo == config::Algo::Dqn && search.config.mode == Mode::Pbt {
                errors.push("mode = \"pbt\" supports algo = \"ppo\" only".into());
            }
            let metric = search.config.fitness.metric;
            if metric != Metric::MeanReturn && base.env.kind == config::EnvKind::Cartpole {
                let name = match metric {
                    Metric::NegMeanSlowdown => "neg_mean_slowdown",
                    _ => "neg_completion_slowdown",
                };
                errors.push(format!(
                    "fitness.metric = \"{name}\" needs a scheduling env"
                ));
            }
        }
        errors.dedup();
        if errors.is_empty() {
            Ok(search)
        } else {
            Err(ConfigError::Invalid {
                source_name: source.to_string(),
                errors,
            }
            .into())
        }
    }

    /// The table of a trial: base + `set` + genes (a prefix of the genes when `genome` is
    /// shorter) + the search's fixed keys.
    fn trial_table(&self, genome: &[f64], seed: u64) -> Result<toml::Table, ConfigError> {
        let mut table = self.base_table.clone();
        for arg in genes::override_args(&self.config.gene[..genome.len()], genome) {
            config::apply_override(&mut table, &arg)?;
        }
        for arg in [
            format!("train.total_steps={}", self.config.steps_per_trial),
            format!("train.seed={seed}"),
            "run.torch_threads=1".into(),
            "run.env_threads=1".into(),
        ] {
            config::apply_override(&mut table, &arg)?;
        }
        Ok(table)
    }

    /// A trial's resolved config.
    pub fn trial_config(&self, genome: &[f64], seed: u64) -> Result<TrainConfig, ConfigError> {
        let table = self.trial_table(genome, seed)?;
        TrainConfig::from_table(table, &format!("{} + search", self.config.base.display()))
    }

    /// `best.toml`'s config: exactly the run of `best` on its first seed (its genes, budget
    /// and `train.seed`), evaluated on the fitness episodes during training (every tenth of
    /// the budget unless the base evaluates more often) and checkpointed as often, so that a
    /// run of it writes a `best` checkpoint and its final checkpoint scores what the search
    /// recorded for that seed.
    pub fn best_config(&self, best: &TrialRecord) -> Result<TrainConfig, ConfigError> {
        let mut table = self.trial_table(&best.genome, best.seed)?;
        let every = match self.base_config_value("eval", "every_steps") {
            Some(n) if n > 0 => n,
            _ => (self.config.steps_per_trial / 10).max(1),
        };
        let checkpoint_every = match self.base_config_value("run", "checkpoint_every_steps") {
            Some(n) if n > 0 => n,
            _ => every,
        };
        for arg in [
            format!("eval.every_steps={every}"),
            format!("eval.num_episodes={}", self.config.fitness.num_episodes),
            format!("eval.seed={}", self.config.fitness.seed),
            format!("run.checkpoint_every_steps={checkpoint_every}"),
        ] {
            config::apply_override(&mut table, &arg)?;
        }
        TrainConfig::from_table(table, &self.config.base.display().to_string())
    }

    /// An integer of the base config (with the search's `set`), if present.
    fn base_config_value(&self, section: &str, key: &str) -> Option<u64> {
        let value = self.base_table.get(section)?.get(key)?.as_integer()?;
        u64::try_from(value).ok()
    }

    pub fn trial_dir(&self, index: usize) -> PathBuf {
        self.dir.join("trials").join(format!("trial_{index:04}"))
    }

    /// The finished record of trial `index`, if `trial.json` exists (resume).
    pub fn finished_record(&self, index: usize) -> Option<TrialRecord> {
        let text = std::fs::read_to_string(self.trial_dir(index).join("trial.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn base_record(
        &self,
        index: usize,
        generation: usize,
        genome: &[f64],
        seed: u64,
    ) -> TrialRecord {
        TrialRecord {
            trial: index,
            generation,
            status: Status::Failed,
            reason: None,
            fitness: None,
            budget_steps: self.config.steps_per_trial,
            seed,
            seeds: Vec::new(),
            seed_fitness: Vec::new(),
            rungs: Vec::new(),
            genes: TrialRecord::genes_of(&self.config.gene, genome),
            overrides: genes::override_args(&self.config.gene, genome),
            genome: genome.to_vec(),
            run_dir: format!("trials/trial_{index:04}"),
            wall_s: 0.0,
            history: Vec::new(),
        }
    }

    /// Writes `trial.json` (last: its presence means "finished") and the HParams session.
    pub(crate) fn finish_record(&self, record: &TrialRecord) -> anyhow::Result<()> {
        let dir = self.trial_dir(record.trial);
        leaderboard::write_session(&dir, &self.config.gene, record);
        checkpoint::write_atomic(
            &dir.join("trial.json"),
            serde_json::to_string_pretty(record)?.as_bytes(),
        )?;
        Ok(())
    }

    /// Leaderboard files and `best.toml` from the records so far.
    pub fn write_outputs(&self, records: &[TrialRecord]) -> anyhow::Result<()> {
        leaderboard::write(&self.dir, &self.config.gene, records)?;
        let Some(best) = leaderboard::ranked(records)
            .into_iter()
            .find(|r| r.fitness.is_some())
        else {
            return Ok(());
        };
        let config = self.best_config(best)?;
        let per_seed: Vec<String> = best
            .seeds
            .iter()
            .zip(&best.seed_fitness)
            .map(|(seed, f)| format!("seed {seed}: {f}"))
            .collect();
        let reproduces = match self.config.mode {
            Mode::Ga => format!(
                "This is its run on train.seed {}, with evaluation and\n\
                 # checkpoints on: its final checkpoint scores that seed's fitness again.",
                best.seed
            ),
            // A PBT member's hyperparameters changed at every exploit/explore round and its
            // weights came from other members: no single config replays it.
            Mode::Pbt => format!(
                "PBT: these are its final hyperparameters on a fresh\n\
                 # run (train.seed {}), which does not replay the member (its hyperparameters\n\
                 # changed each round, see `history` in leaderboard.json, and its weights came from\n\
                 # other members). The member itself is {}/checkpoints/final.json; rerunning\n\
                 # this search reproduces it exactly.",
                best.seed, best.run_dir
            ),
        };
        let header = format!(
            "# best.toml: the best trial of the search in this directory, as a complete training\n\
             # config: {} + the search's `set` + genes {}.\n\
             # trial {} ({}): fitness {} ({:?} over {} held-out episodes, mean over its seeds:\n\
             # {}) after {} env steps. {reproduces}\n\
             # Run: lepton-train --config {}\n\n",
            self.config.base.display(),
            best.overrides.join(" "),
            best.trial,
            best.run_dir,
            best.fitness.unwrap_or(f64::NAN),
            self.config.fitness.metric,
            self.config.fitness.num_episodes,
            if per_seed.is_empty() {
                "one seed".to_string()
            } else {
                per_seed.join(", ")
            },
            best.budget_steps,
            self.dir.join("best.toml").display()
        );
        checkpoint::write_atomic(
            &self.dir.join("best.toml"),
            format!("{header}{}", config.to_toml()).as_bytes(),
        )?;
        Ok(())
    }

    /// Runs the GA; returns every trial's record (trial order).
    fn run_ga(&self, interrupt: &Arc<AtomicBool>) -> anyhow::Result<Vec<TrialRecord>> {
        let ga = self.config.ga.as_ref().expect("validated");
        let records: Mutex<Vec<TrialRecord>> = Mutex::new(Vec::new());
        let total = self.config.num_trials();
        ga::evolve(
            &self.config.gene,
            &self.config.breeding(),
            ga.population,
            ga.generations,
            self.config.seed,
            |generation, first, genomes| {
                let Some(trials) = self.run_generation(generation, first, genomes, interrupt)?
                else {
                    anyhow::bail!("interrupted");
                };
                for r in &trials {
                    eprintln!(
                        "trial {}/{total} (generation {generation}): {:?} fitness {} [{}]",
                        r.trial,
                        r.status,
                        r.fitness.map_or("-".into(), |f| format!("{f:.3}")),
                        r.overrides.join(" ")
                    );
                }
                let out = trials.iter().map(|r| r.fitness).collect();
                let mut all = records.lock().unwrap_or_else(|e| e.into_inner());
                all.extend(trials);
                self.write_outputs(&all)?;
                Ok(out)
            },
        )?;
        Ok(records.into_inner().unwrap_or_else(|e| e.into_inner()))
    }
}

/// How training and scoring a config went.
pub(crate) enum TrialResult {
    Scored(f64),
    Interrupted,
    Failed(Status, String),
}

/// Trains with [`trainer::run`] (panics caught) and scores the final checkpoint.
pub(crate) fn train_and_score(
    config: &TrainConfig,
    options: &RunOptions,
    fitness: &FitnessConfig,
) -> TrialResult {
    let run = std::panic::catch_unwind(AssertUnwindSafe(|| trainer::run(config, options)));
    let summary = match run {
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            return TrialResult::Failed(Status::Crashed, msg);
        }
        Ok(Err(e)) => {
            let status = match e.exit_code() {
                2 => Status::Invalid,
                3 => Status::Diverged,
                _ => Status::Failed,
            };
            return TrialResult::Failed(status, e.to_string());
        }
        Ok(Ok(s)) => s,
    };
    match summary.outcome {
        Outcome::Finished => {}
        Outcome::Interrupted => return TrialResult::Interrupted,
        Outcome::Stopped => {}
    }
    match score_checkpoint(config, &summary.last_checkpoint, fitness) {
        Ok(f) => TrialResult::Scored(f),
        Err(e) => TrialResult::Failed(Status::Failed, format!("scoring: {e}")),
    }
}

/// The fitness of a checkpoint: greedy episodes on the held-out `fitness` seeds, of
/// `eval.scenario` when the config names one (else of the training scenario).
pub fn score_checkpoint(
    config: &TrainConfig,
    meta_path: &Path,
    fitness: &FitnessConfig,
) -> anyhow::Result<f64> {
    let meta = checkpoint::read_meta(meta_path)?;
    // The trial is scored where its own model selection would have: `eval.scenario`, if set.
    let spec = EnvSpec::from_config(&config.env)?.for_evaluation(config)?;
    let env = spec.make();
    let device = tch::Device::Cpu;
    let policy = checkpoint::load_policy(
        meta_path,
        &meta,
        env.obs_layout(),
        &env.action_layout(),
        device,
    )?;
    let mut eval_config = config.clone();
    eval_config.eval.num_episodes = fitness.num_episodes;
    eval_config.eval.seed = fitness.seed;
    let result = evaluate(
        &spec,
        &policy,
        meta.normalizer.as_ref(),
        &eval_config,
        device,
    )?;
    Ok(match fitness.metric {
        Metric::MeanReturn => result.mean_return,
        Metric::NegCompletionSlowdown => -result
            .completion_slowdown
            .ok_or_else(|| anyhow::anyhow!("the env reports no slowdown"))?,
        Metric::NegMeanSlowdown => -result
            .mean_slowdown
            .ok_or_else(|| anyhow::anyhow!("the env reports no slowdown"))?,
    })
}

/// `f(0..n)` on `threads` worker threads; results in index order whatever the finishing order.
pub fn parallel_map<R: Send>(n: usize, threads: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<R>>> = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, n.max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= n {
                        break;
                    }
                    let r = f(i);
                    slots.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
                }
            });
        }
    });
    slots
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every index ran"))
        .collect()
}

/// `lepton-train search`: runs (or resumes) a hyperparameter search.
#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    /// Search config (TOML), e.g. configs/search_ppo_cartpole.toml.
    #[arg(long)]
    pub config: PathBuf,
    /// Search directory (default: <runs-dir>/<config stem>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where the default search directory is created.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Continue the search in the search directory: finished trials are kept, the rest redone.
    #[arg(long)]
    pub resume: bool,
    /// Override a search config key, e.g. --set parallel_trials=1 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

/// What a search did.
#[derive(Debug)]
pub struct SearchSummary {
    pub records: Vec<TrialRecord>,
    pub wall_s: f64,
    pub dir: PathBuf,
}

/// Resolves the arguments into a [`Search`] (config file → `--set` → serde → validation).
pub fn resolve_args(args: &SearchArgs) -> Result<Search, SearchError> {
    let mut table = config::read_table(&args.config)?;
    for arg in &args.overrides {
        config::apply_override(&mut table, arg)?;
    }
    let source = args.config.display().to_string();
    let text = toml::to_string(&table).expect("a table serialises");
    let mut config: SearchConfig = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
        source_name: source.clone(),
        errors: vec![e.message().trim().to_string()],
    })?;
    // Like every path in a file, `base` is relative to the search file.
    let dir = args.config.parent().unwrap_or(Path::new(""));
    config.base = std::path::absolute(dir.join(&config.base)).unwrap_or(config.base);
    let dir = args.out.clone().unwrap_or_else(|| {
        let stem = args
            .config
            .file_stem()
            .map_or("search".into(), |s| s.to_string_lossy().to_string());
        args.runs_dir.join(stem)
    });
    Search::resolve(config, &source, dir)
}

/// Whether a saved `search.toml` describes `config`, up to `parallel_trials` (which changes
/// how fast a search runs, not its results).
fn same_search(saved: &str, config: &SearchConfig) -> bool {
    toml::from_str::<SearchConfig>(saved).is_ok_and(|mut saved| {
        saved.parallel_trials = config.parallel_trials;
        &saved == config
    })
}

/// Runs a resolved search; with `resume`, continues the one in its directory.
pub fn run(
    search: &Search,
    resume: bool,
    interrupt: &Arc<AtomicBool>,
) -> Result<SearchSummary, SearchError> {
    let start = Instant::now();
    let saved_path = search.dir.join("search.toml");
    let resolved = toml::to_string(&search.config).expect("search config serialises");
    match (resume, std::fs::read_to_string(&saved_path)) {
        (false, Ok(_)) => {
            return Err(SearchError::Invalid(format!(
                "{} already holds a search; pass --resume to continue it, or another --out",
                search.dir.display()
            )));
        }
        (true, Ok(saved)) if !same_search(&saved, &search.config) => {
            return Err(SearchError::Invalid(format!(
                "cannot resume {}: its search.toml differs from this config (a search resumes with the config it started with)",
                search.dir.display()
            )));
        }
        (true, Err(_)) => {
            return Err(SearchError::Invalid(format!(
                "cannot resume: {} does not exist",
                saved_path.display()
            )));
        }
        _ => {}
    }
    std::fs::create_dir_all(&search.dir).map_err(anyhow::Error::from)?;
    checkpoint::write_atomic(&saved_path, resolved.as_bytes()).map_err(anyhow::Error::from)?;
    TORCH_THREADS.call_once(|| set_torch_threads(1));
    if !resume {
        leaderboard::write_experiment(
            &search.dir,
            &search.config.gene,
            &format!("{:?} on held-out seeds", search.config.fitness.metric),
        );
    }
    let records = match search.config.mode {
        Mode::Ga => search.run_ga(interrupt)?,
        Mode::Pbt => pbt::run(search, interrupt)?,
    };
    search.write_outputs(&records)?;
    Ok(SearchSummary {
        records,
        wall_s: start.elapsed().as_secs_f64(),
        dir: search.dir.clone(),
    })
}

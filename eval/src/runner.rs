//! Runs every (scenario, contender, training run, episode) of an evaluation in parallel; a
//! checkpoint group has one training run per member, every other contender one.
//!
//! Each episode is an independent job: a fresh env built from the scenario, reset with the
//! episode's seed, and a fresh scheduler reset with the same seed. Jobs share nothing, and
//! results are collected in job order, so the outcome is identical for any number of threads.

use crate::contenders::Contender;
use crate::suite::SuiteScenario;
use anyhow::{Result, anyhow};
use indicatif::ProgressBar;
use lepton_env::EpisodeMetrics;
use lepton_env::ScenarioEnv;
use lepton_env::cluster::Schedule;
use lepton_env::schedulers;
use rayon::prelude::*;

/// What one episode produced.
#[derive(Clone, Debug)]
pub struct EpisodeOutcome {
    pub seed: u64,
    pub metrics: EpisodeMetrics,
    /// Slowdown of every task that finished (for the CDF plots).
    pub slowdowns: Vec<f64>,
}

/// Outcomes indexed `[scenario][contender][training run][episode]`.
pub type Outcomes = Vec<Vec<Vec<Vec<EpisodeOutcome>>>>;

/// Runs `episodes` episodes of every scenario for every contender on the current rayon pool.
pub fn run(
    scenarios: &[SuiteScenario],
    contenders: &[Contender],
    episodes: usize,
    progress: &ProgressBar,
) -> Result<Outcomes> {
    let jobs: Vec<(usize, usize, usize, u64)> = scenarios
        .iter()
        .enumerate()
        .flat_map(|(s, sc)| {
            contenders
                .iter()
                .enumerate()
                .flat_map(move |(c, contender)| {
                    (0..contender.num_members()).flat_map(move |m| {
                        sc.seeds(episodes)
                            .into_iter()
                            .map(move |seed| (s, c, m, seed))
                    })
                })
        })
        .collect();
    progress.set_length(jobs.len() as u64);
    let results: Vec<EpisodeOutcome> = jobs
        .par_iter()
        .map(|&(s, c, m, seed)| {
            let outcome = run_one(&scenarios[s], &contenders[c], m, seed);
            progress.inc(1);
            outcome
        })
        .collect::<Result<_>>()?;
    let mut results = results.into_iter();
    Ok(scenarios
        .iter()
        .map(|_| {
            contenders
                .iter()
                .map(|contender| {
                    (0..contender.num_members())
                        .map(|_| results.by_ref().take(episodes).collect())
                        .collect()
                })
                .collect()
        })
        .collect())
}

/// Replays episode `seed` of `scenario` with `contender` (its first training run) and
/// returns its schedule.
pub fn record_schedule(
    scenario: &SuiteScenario,
    contender: &Contender,
    seed: u64,
) -> Result<Schedule> {
    let mut env = scenario.scenario.build();
    if let ScenarioEnv::Cluster(cluster) = &mut env {
        cluster.record_schedule(true);
    }
    let mut scheduler = contender.instantiate(0)?;
    schedulers::run_episode(scheduler.as_mut(), &mut env, seed)
        .map_err(|e| anyhow!("scenario `{}`, seed {seed}: {e}", scenario.name))?;
    Ok(match &env {
        ScenarioEnv::Cluster(cluster) => cluster
            .schedule()
            .expect("the recorder was switched on before the episode"),
        ScenarioEnv::DeepRm(deeprm) => deeprm.schedule(),
    })
}

fn run_one(
    scenario: &SuiteScenario,
    contender: &Contender,
    member: usize,
    seed: u64,
) -> Result<EpisodeOutcome> {
    let mut env = scenario.scenario.build();
    let mut scheduler = contender.instantiate(member)?;
    let metrics = schedulers::run_episode(scheduler.as_mut(), &mut env, seed)
        .map_err(|e| anyhow!("scenario `{}`, seed {seed}: {e}", scenario.name))?;
    let slowdowns = env.finished_slowdowns().collect();
    Ok(EpisodeOutcome {
        seed,
        metrics,
        slowdowns,
    })
}

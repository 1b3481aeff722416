//! Schedulers: the [`Scheduler`] trait that heuristics and learned policies share, the
//! heuristics themselves, and a registry from names to schedulers.
//!
//! A scheduler is asked for one action at every decision of a [`ScenarioEnv`] episode. It
//! gets the env (for its read-only state API), the observation and the action mask; a
//! learned policy uses the last two, a heuristic the first. Heuristics see only what a real
//! scheduler could see: queued tasks with runtime *estimates*, free capacity and running
//! tasks' *estimated* finish times — never true durations, never future arrivals (they read
//! the env through a [`Snapshot`], which holds nothing else; `snapshot.rs` is the one file
//! to audit for that).
//!
//! | name | rule |
//! |---|---|
//! | `random` | uniform over legal actions (wait included), seeded per episode |
//! | `deeprm_random` | DeepRM's random agent: uniform over every action index; an empty or infeasible pick waits |
//! | `fcfs` | [`Rule::Fcfs`] strict first come, first served, first-fit server |
//! | `sjf` | [`Rule::Sjf`] shortest estimated job first (DeepRM's SJF) |
//! | `packer` | [`Rule::Packer`] DeepRM's Packer |
//! | `tetris` | [`Rule::Tetris`] alignment + shortest remaining time (SIGCOMM'14) |
//! | `best_fit` | [`Rule::BestFit`] tightest server for the oldest fitting task |
//! | `worst_fit` | [`Rule::WorstFit`] least-loaded server for the oldest fitting task |
//! | `edf` | [`Rule::Edf`] earliest deadline first |
//! | `weighted` | [`Rule::Weighted`] P = α·estimate + β·slack; `weighted:ALPHA:BETA` sets α, β |
//! | `easy` | [`Rule::Easy`] EASY backfilling on FCFS |
//! | `wfp3`, `unicep`, `f1` | [`Rule::Wfp3`], [`Rule::Unicep`], [`Rule::F1`] (RLScheduler, SC'20) |
//! | `lookahead[:BASE[:HORIZON]]` | **not a real scheduler**: an upper-bound proxy that sees the future. [`Lookahead`] tries each candidate action on a clone of the env and rolls BASE (default `tetris`) out to the episode's end (or HORIZON decisions); slow, and not in [`NAMES`] |
//!
//! Every scheduler above except `lookahead` reads only what a real scheduler could see.
//!
//! ```
//! use lepton_env::{Env, scenario::load_named, schedulers};
//!
//! let mut env = load_named("tiny").unwrap().build();
//! let mut scheduler = schedulers::by_name("sjf").unwrap();
//! let metrics = schedulers::run_episode(scheduler.as_mut(), &mut env, 7).unwrap();
//! assert!(metrics.num_finished + metrics.num_dropped + metrics.num_unfinished == metrics.num_tasks);
//! ```

mod lookahead;
mod rules;
mod snapshot;

pub use lookahead::Lookahead;
pub use rules::{Rule, WeightedParams};
pub use snapshot::{Placement, QueuedTask, RunningTask, ServerInfo, Snapshot};

use crate::api::{Env, EnvError};
use crate::metrics::EpisodeMetrics;
use crate::scenario::ScenarioEnv;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Something that picks an action at each decision of an episode.
pub trait Scheduler: Send {
    /// The name reports print (a registry name, with its parameters where not the defaults).
    fn name(&self) -> String;

    /// Prepares for a new episode. `seed` is the episode's seed; only schedulers with their
    /// own randomness use it.
    fn reset(&mut self, seed: u64);

    /// The action to take now. `mask` is the env's action mask and the returned action must
    /// be legal in it.
    fn act(&mut self, env: &ScenarioEnv, obs: &[f32], mask: &[bool]) -> usize;
}

/// A deterministic heuristic: a [`Rule`] applied to a [`Snapshot`] of the env.
#[derive(Clone, Debug)]
pub struct Heuristic {
    name: String,
    rule: Rule,
    snapshot: Snapshot,
}

impl Heuristic {
    pub fn new(name: impl Into<String>, rule: Rule) -> Self {
        Self {
            name: name.into(),
            rule,
            snapshot: Snapshot::default(),
        }
    }

    pub fn rule(&self) -> Rule {
        self.rule
    }

    /// The action this heuristic takes in `snapshot`. A rule that would wait while the env
    /// forbids it (a hold limit) starts the placeable task that has waited longest instead:
    /// the limit is there to end starvation, so the starving task goes first.
    pub fn decide(&self, snapshot: &Snapshot) -> usize {
        match self.rule.choose(snapshot) {
            Some(i) => snapshot.placements[i].action,
            None if snapshot.wait_allowed => snapshot.wait_action,
            None => snapshot
                .placements
                .iter()
                .min_by(|a, b| snapshot.arrival_order(a.task, b.task))
                .map_or(snapshot.wait_action, |p| p.action),
        }
    }
}

impl Scheduler for Heuristic {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn reset(&mut self, _seed: u64) {}

    fn act(&mut self, env: &ScenarioEnv, _obs: &[f32], _mask: &[bool]) -> usize {
        self.snapshot.fill(env);
        self.decide(&self.snapshot)
    }
}

/// A random scheduler, from a ChaCha8 stream seeded with the episode seed at every reset.
#[derive(Clone, Debug)]
pub struct RandomScheduler {
    rng: ChaCha8Rng,
    draw: RandomDraw,
}

/// What a [`RandomScheduler`] draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RandomDraw {
    /// Uniform over the legal actions of the mask (wait included).
    Legal,
    /// DeepRM's random agent (Mao et al., HotNets'16): uniform over every action index, wait
    /// included; a pick that is illegal (an empty slot, a task that does not fit) waits. It
    /// waits far more often than `Legal`, and it is the policy behind DeepRM's published
    /// random baseline.
    DeepRm,
}

impl RandomScheduler {
    /// Salt mixed into the episode seed so that the scheduler's stream differs from the
    /// workload's stream of the same seed.
    const SALT: u64 = 0x5ced_u64 << 32;

    pub fn new(seed: u64, draw: RandomDraw) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed ^ Self::SALT),
            draw,
        }
    }
}

impl Scheduler for RandomScheduler {
    fn name(&self) -> String {
        match self.draw {
            RandomDraw::Legal => "random".into(),
            RandomDraw::DeepRm => "deeprm_random".into(),
        }
    }

    fn reset(&mut self, seed: u64) {
        *self = Self::new(seed, self.draw);
    }

    /// Wait is the last action index in every scheduling env.
    fn act(&mut self, _env: &ScenarioEnv, _obs: &[f32], mask: &[bool]) -> usize {
        let wait = mask.len() - 1;
        if self.draw == RandomDraw::DeepRm {
            let pick = self.rng.random_range(0..mask.len());
            if mask[pick] {
                return pick;
            }
            if mask[wait] {
                return wait;
            }
            // A hold limit forbids waiting: fall through to a legal draw.
        }
        let num_legal = mask.iter().filter(|&&m| m).count();
        let pick = self.rng.random_range(0..num_legal.max(1));
        mask.iter()
            .enumerate()
            .filter(|(_, m)| **m)
            .nth(pick)
            .map_or(wait, |(a, _)| a)
    }
}

/// Every registered heuristic name, in report order: what reports run by default. The
/// `lookahead` proxy is registered too (see [`by_name`]) but not listed: it sees the future
/// and is slow.
pub const NAMES: &[&str] = &[
    "random",
    "deeprm_random",
    "fcfs",
    "sjf",
    "packer",
    "tetris",
    "best_fit",
    "worst_fit",
    "edf",
    "weighted",
    "easy",
    "wfp3",
    "unicep",
    "f1",
];

/// A scheduler name that the registry does not know, or bad parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnknownScheduler {
    #[error("unknown scheduler `{name}`; valid names: {}, lookahead[:BASE[:HORIZON]]", NAMES.join(", "))]
    Name { name: String },
    #[error("scheduler `{spec}`: {reason}")]
    Params { spec: String, reason: String },
}

/// Builds a scheduler from its registry name (see [`NAMES`]). `weighted` also accepts
/// `weighted:ALPHA:BETA` (e.g. `weighted:1:0.25`); `lookahead` accepts
/// `lookahead:BASE:HORIZON` (e.g. `lookahead:sjf:0`; see [`Lookahead`]).
pub fn by_name(spec: &str) -> Result<Box<dyn Scheduler>, UnknownScheduler> {
    let spec = spec.trim();
    let (name, params) = spec
        .split_once(':')
        .map_or((spec, None), |(n, p)| (n, Some(p)));
    match (name, params) {
        ("lookahead", _) => Ok(Box::new(lookahead_by_name(spec, params)?)),
        ("random", None) => Ok(Box::new(RandomScheduler::new(0, RandomDraw::Legal))),
        ("deeprm_random", None) => Ok(Box::new(RandomScheduler::new(0, RandomDraw::DeepRm))),
        _ => Ok(Box::new(heuristic_by_name(spec)?)),
    }
}

/// A deterministic [`Heuristic`] from its registry name (every name of [`NAMES`] but the
/// random ones).
fn heuristic_by_name(spec: &str) -> Result<Heuristic, UnknownScheduler> {
    let (name, params) = spec
        .split_once(':')
        .map_or((spec, None), |(n, p)| (n, Some(p)));
    let rule = match name {
        "fcfs" => Rule::Fcfs,
        "sjf" => Rule::Sjf,
        "packer" => Rule::Packer,
        "tetris" => Rule::Tetris { srtf_weight: 1.0 },
        "best_fit" => Rule::BestFit,
        "worst_fit" => Rule::WorstFit,
        "edf" => Rule::Edf,
        "weighted" => Rule::Weighted(weighted_params(spec, params)?),
        "easy" => Rule::Easy,
        "wfp3" => Rule::Wfp3,
        "unicep" => Rule::Unicep,
        "f1" => Rule::F1,
        "random" | "deeprm_random" => {
            return Err(UnknownScheduler::Params {
                spec: spec.into(),
                reason: "takes no parameters".into(),
            });
        }
        _ => {
            return Err(UnknownScheduler::Name {
                name: spec.to_string(),
            });
        }
    };
    if params.is_some() && name != "weighted" {
        return Err(UnknownScheduler::Params {
            spec: spec.into(),
            reason: "takes no parameters".into(),
        });
    }
    Ok(Heuristic::new(spec, rule))
}

fn lookahead_by_name(spec: &str, params: Option<&str>) -> Result<Lookahead, UnknownScheduler> {
    let bad = |reason: String| UnknownScheduler::Params {
        spec: spec.into(),
        reason,
    };
    let (base, horizon) = match params.map(|p| p.rsplit_once(':').unwrap_or((p, "0"))) {
        None => ("tetris", "0"),
        Some((base, horizon)) => (base, horizon),
    };
    let horizon: u64 = horizon.parse().map_err(|_| {
        bad(format!(
            "HORIZON `{horizon}` is not a whole number of decisions"
        ))
    })?;
    let base = match base.split(':').next() {
        Some("random" | "deeprm_random" | "lookahead") => {
            return Err(bad(format!(
                "BASE `{base}` must be a deterministic heuristic"
            )));
        }
        _ => heuristic_by_name(base).map_err(|e| bad(format!("BASE: {e}")))?,
    };
    Ok(Lookahead::new(base, horizon))
}

fn weighted_params(spec: &str, params: Option<&str>) -> Result<WeightedParams, UnknownScheduler> {
    let mut out = WeightedParams::default();
    let Some(params) = params else { return Ok(out) };
    let bad = |reason: &str| UnknownScheduler::Params {
        spec: spec.into(),
        reason: reason.into(),
    };
    let values: Vec<&str> = params.split(':').collect();
    let [alpha, beta] = values.as_slice() else {
        return Err(bad("expected `weighted:ALPHA:BETA`, e.g. `weighted:1:0.5`"));
    };
    out.alpha = alpha.parse().map_err(|_| bad("ALPHA is not a number"))?;
    out.beta = beta.parse().map_err(|_| bad("BETA is not a number"))?;
    if !out.alpha.is_finite() || !out.beta.is_finite() {
        return Err(bad("ALPHA and BETA must be finite"));
    }
    Ok(out)
}

/// Why [`run_episode`] failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EpisodeError {
    #[error("scheduler `{scheduler}` took action {action}: {source}")]
    Step {
        scheduler: String,
        action: usize,
        source: EnvError,
    },
    #[error("the episode did not end within {0} steps")]
    TooLong(u64),
}

/// Safety net for [`run_episode`]: scenarios truncate long before this many steps.
pub const MAX_EPISODE_STEPS: u64 = 50_000_000;

/// Runs one episode of `env` from `seed` with `scheduler` and returns its metrics.
pub fn run_episode(
    scheduler: &mut dyn Scheduler,
    env: &mut ScenarioEnv,
    seed: u64,
) -> Result<EpisodeMetrics, EpisodeError> {
    run_episode_with(scheduler, env, seed, |_, _| {})
}

/// [`run_episode`] calling `on_action(env, action)` before each step (to record a schedule).
pub fn run_episode_with(
    scheduler: &mut dyn Scheduler,
    env: &mut ScenarioEnv,
    seed: u64,
    mut on_action: impl FnMut(&ScenarioEnv, usize),
) -> Result<EpisodeMetrics, EpisodeError> {
    let mut obs = vec![0.0; env.observation_space().dim()];
    let mut mask = vec![false; env.action_space().n];
    scheduler.reset(seed);
    env.reset(Some(seed), &mut obs);
    for _ in 0..MAX_EPISODE_STEPS {
        if let Some(metrics) = env.episode_metrics() {
            return Ok(metrics.clone());
        }
        env.action_mask(&mut mask);
        let action = scheduler.act(env, &obs, &mask);
        on_action(env, action);
        env.step(action, &mut obs)
            .map_err(|source| EpisodeError::Step {
                scheduler: scheduler.name(),
                action,
                source,
            })?;
    }
    env.episode_metrics()
        .cloned()
        .ok_or(EpisodeError::TooLong(MAX_EPISODE_STEPS))
}

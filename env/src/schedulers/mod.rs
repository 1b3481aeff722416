//! Schedulers: the [`Scheduler`] trait that heuristics and learned policies share, the
//! heuristics themselves, and the registry from names to schedulers ([`REGISTRY`] in
//! `registry.rs`: one entry per scheduler, read by every name lookup, list and message).
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
//! | `wait` | [`Rule::Wait`] waits whenever the env allows: a rule for rule selection (a policy's choice to hold tasks back), not a scheduler; by name only, not in [`NAMES`] |
//! | `smallest_demand` | [`SmallestDemand`] smallest total demand first: the README's worked example of adding a heuristic; by name only, not in [`NAMES`] |
//! | `safe[:BASE[:THRESHOLD]]` | BASE (default `tetris`) kept off servers whose health reading (`[failures] health`) is at or above THRESHOLD (default 0.5); not in [`NAMES`] |
//! | `fastest[:BASE]` | BASE (default `sjf`) choosing only among each task's fastest servers that fit it now (server types' `speed`); in [`NAMES`] as `fastest:sjf` |
//! | `reserve[:BASE[:RESOURCE:LONG:FREE]]` | BASE (default `sjf`) holding back tasks estimated over LONG s (default 30) that would leave under FREE (default 0.05) of resource RESOURCE (an index, default the last) free: a reserve for short tasks (Hawk, ATC'15); not in [`NAMES`] |
//! | `preempt[:BASE]` | [`Preemptive`]: strict priority classes; a blocked higher class preempts lower ones (`[preemption]` scenarios); not in [`NAMES`] |
//! | `defrag[:BASE]` | [`Preemptive`]: moves one small running task to make room for the oldest task (`[preemption]` scenarios); not in [`NAMES`] |
//! | `evacuate[:BASE[:THRESHOLD]]` | [`Preemptive`]: `safe`, and moves running tasks off servers whose health reading is at or above THRESHOLD (`[preemption]` scenarios); not in [`NAMES`] |
//! | `lookahead[:BASE[:HORIZON]]` | **not a real scheduler**: an upper-bound proxy that sees the future. [`Lookahead`] tries each candidate action on a clone of the env and rolls BASE (default `tetris`; a slot heuristic or a whole-queue `PRIORITY+DISCIPLINE`) out to the episode's end (or HORIZON decisions); slow, and not in [`NAMES`] |
//! | `rollout[:BASE[:SAMPLES[:ARRIVALS]]]` | [`Lookahead::rollout`]: the same one-step lookahead on SAMPLES (default 4) copies of the env with what no scheduler sees redrawn from the scenario's model ([`ScenarioEnv::redraw_hidden`](crate::scenario::ScenarioEnv::redraw_hidden)), each keeping the next ARRIVALS redrawn arrivals (default all); a real scheduler (Bertsekas's rollout algorithm); slow, and not in [`NAMES`] |
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

mod fastest;
mod lookahead;
mod preemptive;
mod priority;
mod registry;
mod reserve;
mod rule_selection;
mod rules;
mod safe;
mod smallest_demand;
mod snapshot;

pub use fastest::keep_on_fastest;
pub use lookahead::Lookahead;
pub use preemptive::Preemptive;
pub use priority::{Priority, PriorityScheduler};
pub use registry::{
    BATCH_NAMES, Build, NAMES, REGISTRY, Registered, UnknownScheduler, by_name, help_list,
    known_names,
};
pub use reserve::hold_back_long;
pub use rule_selection::{RuleChooser, RuleSelectionEnv, RuleSelectionError};
pub use rules::{Rule, WeightedParams};
pub use safe::keep_off_risky;
pub use smallest_demand::SmallestDemand;
pub use snapshot::{Move, Placement, QueuedTask, RunningTask, ServerInfo, Snapshot, WaitingTask};

use crate::api::{Env, EnvError};
use crate::cluster::Discipline;
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

    /// What to do now, when the scheduler may choose any queued task, not only a visible
    /// slot's (episodes ask this; by default it is [`act`](Self::act)'s action).
    fn decide(&mut self, env: &ScenarioEnv, obs: &[f32], mask: &[bool]) -> Decision {
        Decision::Action(self.act(env, obs, mask))
    }

    /// The discipline this scheduler's episodes run under (`None`: the scenario's own).
    fn discipline(&self) -> Option<Discipline> {
        None
    }
}

/// A scheduler's choice at one decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// An action of the env's action space ([`Env::step`]).
    Action(usize),
    /// A queued task by its index, visible or not ([`ScenarioEnv::step_task`]).
    Task(u32),
    /// Stop a running task by its index and requeue it ([`ScenarioEnv::step_preempt`]).
    Preempt(u32),
    /// Move a running task by its index to a server ([`ScenarioEnv::step_migrate`]).
    Migrate { task: u32, server: u32 },
}

/// A deterministic heuristic: a [`Rule`] applied to a [`Snapshot`] of the env, choosing among
/// the placements its [`Filter`]s keep (none: every feasible placement).
#[derive(Clone, Debug)]
pub struct Heuristic {
    name: String,
    rule: Rule,
    filters: Vec<Filter>,
    snapshot: Snapshot,
}

/// Which of the feasible placements a heuristic's rule may choose from; `fastest`, `safe` and
/// `reserve` are a rule with one of these (and each can be another's BASE, or a lookahead's).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Filter {
    /// Each task's fastest servers that fit it now ([`keep_on_fastest`]).
    Fastest,
    /// Off servers whose health reading is at or above `threshold`, unless that removes
    /// every placement ([`keep_off_risky`]).
    OffRisky { threshold: f64 },
    /// Where waiting is allowed, no task estimated over `long_s` that would leave under
    /// `min_free` of `resource` (`None`: the scenario's last) free ([`hold_back_long`]).
    Reserve {
        resource: Option<usize>,
        long_s: f64,
        min_free: f64,
    },
}

impl Filter {
    pub fn apply(&self, snapshot: &mut Snapshot) {
        match *self {
            Filter::Fastest => keep_on_fastest(snapshot),
            Filter::OffRisky { threshold } => keep_off_risky(snapshot, threshold),
            Filter::Reserve {
                resource,
                long_s,
                min_free,
            } => {
                if snapshot.wait_allowed {
                    let resource = resource.unwrap_or(snapshot.num_resources.saturating_sub(1));
                    hold_back_long(snapshot, resource, long_s, min_free);
                }
            }
        }
    }
}

impl Heuristic {
    pub fn new(name: impl Into<String>, rule: Rule) -> Self {
        Self {
            name: name.into(),
            rule,
            filters: Vec::new(),
            snapshot: Snapshot::default(),
        }
    }

    /// This heuristic under the name `name`, choosing only among the placements that `filter`
    /// keeps of those its own filters kept.
    pub fn with_filter(mut self, name: impl Into<String>, filter: Filter) -> Self {
        self.name = name.into();
        self.filters.push(filter);
        self
    }

    /// Fills `snapshot` from `env` as this heuristic sees it: the placements its filters keep.
    pub fn observe(&self, env: &ScenarioEnv, snapshot: &mut Snapshot) {
        snapshot.fill(env);
        for filter in &self.filters {
            filter.apply(snapshot);
        }
    }

    pub fn rule(&self) -> Rule {
        self.rule
    }

    /// The action this heuristic takes in `snapshot`. A rule that would wait while the env
    /// forbids it (a hold limit) starts the placeable task that has waited longest instead:
    /// the limit is there to end starvation, so the starving task goes first. Under a commit
    /// discipline with nothing that fits, it chooses the oldest visible task.
    pub fn action_in(&self, snapshot: &Snapshot) -> usize {
        match self.rule.choose(snapshot) {
            Some(i) => snapshot.placements[i].action,
            None if snapshot.wait_allowed => snapshot.wait_action,
            None => snapshot
                .placements
                .iter()
                .min_by(|a, b| snapshot.arrival_order(a.task, b.task))
                .map(|p| p.action)
                .or(snapshot.commit_fallback)
                .unwrap_or(snapshot.wait_action),
        }
    }
}

impl Scheduler for Heuristic {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn reset(&mut self, _seed: u64) {}

    fn act(&mut self, env: &ScenarioEnv, _obs: &[f32], _mask: &[bool]) -> usize {
        let mut snapshot = std::mem::take(&mut self.snapshot);
        self.observe(env, &mut snapshot);
        let action = self.action_in(&snapshot);
        self.snapshot = snapshot;
        action
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

/// Why [`run_episode`] failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EpisodeError {
    #[error("scheduler `{scheduler}` took {decision:?}: {source}")]
    Step {
        scheduler: String,
        decision: Decision,
        source: EnvError,
    },
    #[error("scheduler `{scheduler}` cannot run on this scenario: {reason}")]
    Discipline {
        scheduler: String,
        reason: &'static str,
    },
    #[error("the episode did not end within {0} steps")]
    TooLong(u64),
}

/// Carries out a scheduler's `decision` on `env`, as an episode does.
pub fn step_decision(
    env: &mut ScenarioEnv,
    decision: Decision,
    obs: &mut [f32],
) -> Result<crate::Transition, crate::EnvError> {
    match decision {
        Decision::Action(action) => env.step(action, obs),
        Decision::Task(index) => env.step_task(index, obs),
        Decision::Preempt(index) => env.step_preempt(index, obs),
        Decision::Migrate { task, server } => env.step_migrate(task, server as usize, obs),
    }
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

/// [`run_episode`] calling `on_decision(env, decision)` before each step (to record a
/// schedule). The episode runs under the scheduler's [`discipline`](Scheduler::discipline)
/// when it has one; the env's own is restored afterwards.
pub fn run_episode_with(
    scheduler: &mut dyn Scheduler,
    env: &mut ScenarioEnv,
    seed: u64,
    on_decision: impl FnMut(&ScenarioEnv, Decision),
) -> Result<EpisodeMetrics, EpisodeError> {
    let own = env.discipline();
    let wanted = scheduler.discipline().unwrap_or(own);
    env.set_discipline(wanted)
        .map_err(|reason| EpisodeError::Discipline {
            scheduler: scheduler.name(),
            reason,
        })?;
    let result = run_steps(scheduler, env, seed, on_decision);
    env.set_discipline(own)
        .expect("the env's own discipline is always valid");
    result
}

fn run_steps(
    scheduler: &mut dyn Scheduler,
    env: &mut ScenarioEnv,
    seed: u64,
    mut on_decision: impl FnMut(&ScenarioEnv, Decision),
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
        let decision = scheduler.decide(env, &obs, &mask);
        on_decision(env, decision);
        step_decision(env, decision, &mut obs).map_err(|source| EpisodeError::Step {
            scheduler: scheduler.name(),
            decision,
            source,
        })?;
    }
    env.episode_metrics()
        .cloned()
        .ok_or(EpisodeError::TooLong(MAX_EPISODE_STEPS))
}

//! [`Lookahead`]: one-step lookahead with base-heuristic rollouts on copies of the env, in
//! two kinds:
//!
//! - `lookahead` is **not a legal scheduler.** It is an *upper-bound proxy*: it clones the
//!   whole env, so its rollouts see the true durations, the future arrivals and the failure
//!   stream, which no real scheduler (and none of the heuristics, see `snapshot.rs`) can see.
//!   It answers "how much better than the heuristic could a scheduler be on this scenario?",
//!   i.e. how much headroom a learned policy has; it is not a baseline a learned policy is
//!   expected to match.
//! - `rollout` is a real scheduler: Bertsekas's rollout algorithm (Bertsekas & Castañon,
//!   "Rollout algorithms for stochastic scheduling problems", J. Heuristics 1999). Each copy
//!   has what no scheduler can see redrawn from the scenario's own model
//!   ([`ScenarioEnv::redraw_hidden`]: durations from the estimates, a fresh future, fresh
//!   failures), and a candidate's cost is its mean over `samples` such worlds. All candidates
//!   of a decision play the same worlds (common random numbers), drawn from the episode's
//!   seed and the decision's number, so the choice is a deterministic function of the env's
//!   observable state, the seed and the decision count. It measures the headroom a
//!   scheduler reaches by planning on what it observes: a lower bound, since a learned
//!   policy is not limited to one deviation from a heuristic (BENCHMARKS.md, "The headroom a
//!   scheduler can see"); `lookahead` minus `rollout` estimates the part only the future
//!   gives.
//!
//! Both are slow (a decision costs one rollout per candidate and world), so neither is in
//! [`super::NAMES`]; reports run them only when asked for by name.
//!
//! BASE is a slot heuristic (a [`Heuristic`]: `tetris`, `fastest:sjf`, …) or a whole-queue
//! batch scheduler (`sjf+easy`, …). With a batch BASE the candidates are the base's own
//! decision, each other queued task it may choose now in its own order (at most
//! [`QUEUE_CANDIDATES`]), and wait where the mask allows it; the episode runs under the
//! base's discipline.
//!
//! At each decision the candidates are, in this order: the base heuristic's own action; for
//! every queue slot with a feasible placement, the base heuristic's choice restricted to that
//! slot (its preferred server for the task); and wait. Each candidate is applied to a clone of
//! the env, the base heuristic plays the clone on to the end of the episode (or for `horizon`
//! decisions), and the candidate with the lowest cost wins:
//!
//! - `horizon = 0` (the default): the episode's completion-aware mean slowdown
//!   ([`EpisodeMetrics::completion_slowdown`](crate::EpisodeMetrics)). A `rollout` whose
//!   worlds keep only the next `arrivals` arrivals ends each world when its tasks are done,
//!   so the cost covers the tasks in the system and those few: one decision moves a whole
//!   episode's mean by little, and on heavy-tailed workloads the spread of whole redrawn
//!   futures buries it (BENCHMARKS.md "A rollout on a finite horizon").
//! - `horizon > 0`: minus the return of the rollout (the scenario's reward) over the first
//!   action and `horizon` further decisions; cheaper, but it no longer bounds anything.
//!
//! Another candidate replaces the base heuristic's action only when its cost is lower by more
//! than a relative 1e-9 (ties: the earlier candidate). The env is deterministic given its
//! state and rollouts start from exact clones, so with `horizon = 0` the lookahead's episode
//! is never worse than its base heuristic's from the same seed (the rollout-improvement
//! argument: each decision keeps the base's continuation cost or lowers it). The choice is a
//! deterministic function of the env state. `rollout` has no such guarantee: its worlds are
//! not the real one.

use super::priority::PriorityScheduler;
use super::{Decision, Heuristic, Scheduler, Snapshot, step_decision};
use crate::api::Env;
use crate::cluster::Discipline;
use crate::scenario::ScenarioEnv;
use crate::seeds::mix64;

/// The most queued tasks a batch BASE's lookahead tries besides the base's own choice.
pub const QUEUE_CANDIDATES: usize = 16;

/// What a lookahead rolls out (one per lookahead: the variants' sizes do not matter).
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Base {
    /// A heuristic over the visible slots.
    Slots(Heuristic),
    /// A whole-queue batch scheduler (`PRIORITY+DISCIPLINE`).
    Queue(PriorityScheduler),
}

impl Base {
    fn name(&self) -> String {
        match self {
            Base::Slots(h) => h.name(),
            Base::Queue(q) => q.name(),
        }
    }
}

/// One-step lookahead over a base scheduler's rollouts (see the module docs). Registry names
/// `lookahead[:BASE[:HORIZON]]` (by default `lookahead:tetris:0`) and
/// `rollout[:BASE[:SAMPLES[:ARRIVALS]]]` (by default `rollout:tetris:4`, every arrival).
#[derive(Clone, Debug)]
pub struct Lookahead {
    base: Base,
    /// Decisions each rollout plays after the candidate action; 0 = to the episode's end.
    horizon: u64,
    /// Redrawn worlds per candidate; 0 = the exact clone (the future-seeing `lookahead`).
    samples: u32,
    /// Arrivals each redrawn world keeps (`None`: all of the episode's).
    arrivals: Option<usize>,
    /// The episode's seed and the decisions taken since, which seed the worlds.
    episode_seed: u64,
    decisions: u64,
    snapshot: Snapshot,
    restricted: Snapshot,
    candidates: Vec<Decision>,
    obs: Vec<f32>,
    mask: Vec<bool>,
}

impl Lookahead {
    /// The future-seeing upper-bound proxy.
    pub fn new(base: Base, horizon: u64) -> Self {
        Self {
            base,
            horizon,
            samples: 0,
            arrivals: None,
            episode_seed: 0,
            decisions: 0,
            snapshot: Snapshot::default(),
            restricted: Snapshot::default(),
            candidates: Vec::new(),
            obs: Vec::new(),
            mask: Vec::new(),
        }
    }

    /// The real scheduler: `samples` (at least 1) redrawn worlds per candidate, rolled out to
    /// the world's end: the episode's, or where `arrivals` is set, when the tasks in the
    /// system and the next `arrivals` redrawn ones are done.
    pub fn rollout(base: Base, samples: u32, arrivals: Option<usize>) -> Self {
        Self {
            samples: samples.max(1),
            arrivals,
            ..Self::new(base, 0)
        }
    }

    /// The base's decision first, then the alternatives (its choice within each slot, or
    /// the other queued tasks it may choose), then wait; duplicates removed, order kept.
    fn fill_candidates(&mut self, env: &ScenarioEnv, obs: &[f32], mask: &[bool]) {
        self.candidates.clear();
        let wait = Decision::Action(mask.len() - 1);
        match &mut self.base {
            Base::Slots(base) => {
                base.observe(env, &mut self.snapshot);
                self.candidates
                    .push(Decision::Action(base.action_in(&self.snapshot)));
                for task in 0..self.snapshot.tasks.len() {
                    self.restricted.clone_from(&self.snapshot);
                    self.restricted.placements.retain(|p| p.task == task);
                    if self.restricted.placements.is_empty() {
                        continue;
                    }
                    let action = Decision::Action(base.action_in(&self.restricted));
                    if action != wait && !self.candidates.contains(&action) {
                        self.candidates.push(action);
                    }
                }
            }
            Base::Queue(base) => {
                self.candidates.push(base.decide(env, obs, mask));
                for index in base.ranked(env, QUEUE_CANDIDATES) {
                    let task = Decision::Task(index);
                    if !self.candidates.contains(&task) {
                        self.candidates.push(task);
                    }
                }
            }
        }
        if mask.last().copied().unwrap_or(false) && !self.candidates.contains(&wait) {
            self.candidates.push(wait);
        }
    }

    /// The cost of taking `first` now and following the base afterwards: on the env itself,
    /// or its mean over the decision's redrawn worlds.
    fn cost(&mut self, env: &ScenarioEnv, first: Decision) -> f64 {
        if self.samples == 0 {
            return self.play_out(env.clone(), first);
        }
        let mut total = 0.0;
        for world in 0..u64::from(self.samples) {
            let mut sim = env.clone();
            sim.redraw_hidden(
                mix64(self.episode_seed ^ mix64(self.decisions * u64::from(self.samples) + world)),
                self.arrivals,
            );
            total += self.play_out(sim, first);
        }
        total / f64::from(self.samples)
    }

    /// Takes `first` on `sim`, then lets the base play on.
    fn play_out(&mut self, mut sim: ScenarioEnv, first: Decision) -> f64 {
        self.obs.resize(sim.observation_space().dim(), 0.0);
        self.mask.resize(sim.action_space().n, false);
        let mut cost = 0.0;
        let mut decision = first;
        let mut decisions = 0;
        loop {
            match step_decision(&mut sim, decision, &mut self.obs) {
                Ok(t) => cost -= f64::from(t.reward),
                Err(_) => return f64::INFINITY,
            }
            if let Some(metrics) = sim.episode_metrics() {
                return if self.horizon == 0 {
                    metrics.completion_slowdown
                } else {
                    cost
                };
            }
            decisions += 1;
            if self.horizon > 0 && decisions > self.horizon {
                return cost;
            }
            decision = match &mut self.base {
                Base::Slots(base) => {
                    base.observe(&sim, &mut self.restricted);
                    Decision::Action(base.action_in(&self.restricted))
                }
                Base::Queue(base) => {
                    sim.action_mask(&mut self.mask);
                    base.decide(&sim, &self.obs, &self.mask)
                }
            };
        }
    }
}

/// `cost` is lower than `best` by more than a relative 1e-9 (any finite cost beats infinity).
fn lower(cost: f64, best: f64) -> bool {
    cost < best && (!best.is_finite() || best - cost > 1e-9 * cost.abs().max(best.abs()))
}

impl Scheduler for Lookahead {
    fn name(&self) -> String {
        match (self.samples, self.arrivals) {
            (0, _) => format!("lookahead:{}:{}", self.base.name(), self.horizon),
            (n, None) => format!("rollout:{}:{n}", self.base.name()),
            (n, Some(a)) => format!("rollout:{}:{n}:{a}", self.base.name()),
        }
    }

    fn reset(&mut self, seed: u64) {
        self.episode_seed = seed;
        self.decisions = 0;
    }

    /// A slot base's lookahead; with a batch base, restricted to the visible slots, the
    /// base's own choice (episodes use [`decide`](Scheduler::decide)).
    fn act(&mut self, env: &ScenarioEnv, obs: &[f32], mask: &[bool]) -> usize {
        if let Base::Queue(base) = &mut self.base {
            return base.act(env, obs, mask);
        }
        match self.decide(env, obs, mask) {
            Decision::Action(action) => action,
            other => unreachable!("a slot base decides by action, not {other:?}"),
        }
    }

    fn decide(&mut self, env: &ScenarioEnv, obs: &[f32], mask: &[bool]) -> Decision {
        self.fill_candidates(env, obs, mask);
        self.decisions += 1;
        if self.candidates.len() == 1 {
            return self.candidates[0];
        }
        let candidates = std::mem::take(&mut self.candidates);
        let mut best = (candidates[0], self.cost(env, candidates[0]));
        for &decision in &candidates[1..] {
            let cost = self.cost(env, decision);
            if lower(cost, best.1) {
                best = (decision, cost);
            }
        }
        self.candidates = candidates;
        best.0
    }

    fn discipline(&self) -> Option<Discipline> {
        match &self.base {
            Base::Slots(_) => None,
            Base::Queue(base) => base.discipline(),
        }
    }
}

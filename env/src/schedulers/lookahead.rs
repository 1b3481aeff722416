//! [`Lookahead`]: one-step lookahead with base-heuristic rollouts on clones of the env.
//!
//! **Not a legal scheduler.** It is an *upper-bound proxy*: it clones the whole env, so its
//! rollouts see the true durations, the future arrivals and the failure stream, which no real
//! scheduler (and none of the heuristics, see `snapshot.rs`) can see. It answers "how much
//! better than the heuristic could a scheduler be on this scenario?", i.e. how much headroom a
//! learned policy has; it is not a baseline a learned policy is expected to match. It is slow
//! (a decision costs one rollout per candidate), so it is not in [`super::NAMES`] and reports
//! only run it when asked for by name.
//!
//! At each decision the candidates are, in this order: the base heuristic's own action; for
//! every queue slot with a feasible placement, the base heuristic's choice restricted to that
//! slot (its preferred server for the task); and wait. Each candidate is applied to a clone of
//! the env, the base heuristic plays the clone on to the end of the episode (or for `horizon`
//! decisions), and the candidate with the lowest cost wins:
//!
//! - `horizon = 0` (the default): the episode's completion-aware mean slowdown
//!   ([`EpisodeMetrics::completion_slowdown`](crate::EpisodeMetrics)).
//! - `horizon > 0`: minus the return of the rollout (the scenario's reward) over the first
//!   action and `horizon` further decisions; cheaper, but it no longer bounds anything.
//!
//! Another candidate replaces the base heuristic's action only when its cost is lower by more
//! than a relative 1e-9 (ties: the earlier candidate). The env is deterministic given its
//! state and rollouts start from exact clones, so with `horizon = 0` the lookahead's episode
//! is never worse than its base heuristic's from the same seed (the rollout-improvement
//! argument: each decision keeps the base's continuation cost or lowers it). The choice is a
//! deterministic function of the env state.

use super::{Heuristic, Scheduler, Snapshot};
use crate::api::Env;
use crate::scenario::ScenarioEnv;

/// One-step lookahead over a base heuristic's rollouts (see the module docs). Registry name
/// `lookahead[:BASE[:HORIZON]]`, by default `lookahead:tetris:0`.
#[derive(Clone, Debug)]
pub struct Lookahead {
    base: Heuristic,
    /// Decisions each rollout plays after the candidate action; 0 = to the episode's end.
    horizon: u64,
    snapshot: Snapshot,
    restricted: Snapshot,
    candidates: Vec<usize>,
    obs: Vec<f32>,
}

impl Lookahead {
    pub fn new(base: Heuristic, horizon: u64) -> Self {
        Self {
            base,
            horizon,
            snapshot: Snapshot::default(),
            restricted: Snapshot::default(),
            candidates: Vec::new(),
            obs: Vec::new(),
        }
    }

    /// The base heuristic's action first, then its choice within each slot, then wait;
    /// duplicates removed, order kept.
    fn fill_candidates(&mut self, env: &ScenarioEnv, mask: &[bool]) {
        self.snapshot.fill(env);
        self.candidates.clear();
        self.candidates.push(self.base.action_in(&self.snapshot));
        for task in 0..self.snapshot.tasks.len() {
            self.restricted.clone_from(&self.snapshot);
            self.restricted.placements.retain(|p| p.task == task);
            if self.restricted.placements.is_empty() {
                continue;
            }
            let action = self.base.action_in(&self.restricted);
            if action != self.snapshot.wait_action && !self.candidates.contains(&action) {
                self.candidates.push(action);
            }
        }
        let wait = self.snapshot.wait_action;
        if mask.get(wait).copied().unwrap_or(false) && !self.candidates.contains(&wait) {
            self.candidates.push(wait);
        }
    }

    /// The cost of taking `first` now and following the base heuristic afterwards.
    fn rollout(&mut self, env: &ScenarioEnv, first: usize) -> f64 {
        let mut sim = env.clone();
        self.obs.resize(sim.observation_space().dim(), 0.0);
        let mut cost = 0.0;
        let mut action = first;
        let mut decisions = 0;
        loop {
            match sim.step(action, &mut self.obs) {
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
            self.restricted.fill(&sim);
            action = self.base.action_in(&self.restricted);
        }
    }
}

/// `cost` is lower than `best` by more than a relative 1e-9 (any finite cost beats infinity).
fn lower(cost: f64, best: f64) -> bool {
    cost < best && (!best.is_finite() || best - cost > 1e-9 * cost.abs().max(best.abs()))
}

impl Scheduler for Lookahead {
    fn name(&self) -> String {
        format!("lookahead:{}:{}", self.base.name(), self.horizon)
    }

    fn reset(&mut self, _seed: u64) {}

    fn act(&mut self, env: &ScenarioEnv, _obs: &[f32], mask: &[bool]) -> usize {
        self.fill_candidates(env, mask);
        if self.candidates.len() == 1 {
            return self.candidates[0];
        }
        let candidates = std::mem::take(&mut self.candidates);
        let mut best = (candidates[0], self.rollout(env, candidates[0]));
        for &action in &candidates[1..] {
            let cost = self.rollout(env, action);
            if lower(cost, best.1) {
                best = (action, cost);
            }
        }
        self.candidates = candidates;
        best.0
    }
}

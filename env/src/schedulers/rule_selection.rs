//! Rule selection: an action space whose actions are heuristics' decisions.
//!
//! Instead of choosing a task (and a server) itself, a policy chooses *which heuristic
//! decides now*: action `k` carries out what scheduler `k` of a list (`sjf`, `tetris`, …)
//! would do in the current state. The policy learns when to use which rule, and every
//! decision it can take is one a heuristic would take, so a poor policy cannot stray far from
//! the rules' quality, and a good one can beat each of them by switching.
//!
//! - **Actions:** one per rule ([`ActionBlock::Rules`](crate::ActionBlock)); the rules' names
//!   travel in [`ActionLayout::rules`], so a checkpoint can rebuild the same chooser.
//! - **Mask:** rule `k` is legal when its decision differs from every earlier rule's, so the
//!   policy's probability mass falls on distinct decisions (with one distinct decision, only
//!   rule 0 is legal). The rules' decisions are always legal in the scenario's own mask.
//! - **Observation:** the scenario's observation, then per rule a one-hot of the slot its
//!   decision starts (`slots + 1` entries, the last for wait), so the policy sees which rules
//!   agree and what each would start. A rule may be a whole-queue batch scheduler under the
//!   scenario's discipline (`sjf+greedy` on a greedy scenario): its decision then names any
//!   queued task, and each one-hot gets one more entry, for a task outside the visible slots.
//!
//! [`RuleChooser`] is the part a learned policy needs at evaluation time (it acts on the
//! scenario's env, as a [`Scheduler`]); [`RuleSelectionEnv`] wraps a scenario's env for
//! training.

use super::{Decision, Scheduler, by_name, step_decision};
use crate::api::{ActionBlock, ActionLayout, Env, EnvError, ObsLayout, Transition};
use crate::metrics::EpisodeMetrics;
use crate::scenario::ScenarioEnv;
use crate::spaces::{BoxSpace, Discrete};

/// Why a rule list cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleSelectionError {
    #[error("rule selection needs at least one rule")]
    Empty,
    #[error("rule `{name}`: {reason}")]
    Rule { name: String, reason: String },
    #[error("rule selection needs a scenario whose actions are slots or placements, then wait")]
    Actions,
}

/// The rules and their decisions in the current state of a scenario's env.
pub struct RuleChooser {
    names: Vec<String>,
    schedulers: Vec<Box<dyn Scheduler>>,
    /// Each rule's decision now, and the feature column it marks (see `write_features`).
    decisions: Vec<Decision>,
    columns: Vec<usize>,
    /// Whether a rule chooses from the whole queue (a batch scheduler): the one-hots then
    /// have a column for tasks outside the visible slots.
    whole_queue: bool,
    inner_mask: Vec<bool>,
    /// Visible slots, and the scenario action's block layout to find a decision's slot.
    slots: usize,
    servers_per_slot: usize,
}

impl RuleChooser {
    /// A chooser for `env` with the registered schedulers `names` (any name lepton-eval
    /// takes, except the `lookahead` proxy, which sees the future, and batch schedulers with
    /// a discipline other than the scenario's).
    pub fn new(names: &[String], env: &ScenarioEnv) -> Result<Self, RuleSelectionError> {
        if names.is_empty() {
            return Err(RuleSelectionError::Empty);
        }
        let (slots, servers_per_slot) = match env.action_layout().blocks.as_slice() {
            [
                ActionBlock::Placements { slots, servers },
                ActionBlock::Wait,
            ] => (*slots, *servers),
            [ActionBlock::Slots { slots }, ActionBlock::Wait] => (*slots, 1),
            _ => return Err(RuleSelectionError::Actions),
        };
        let bad = |name: &str, reason: String| RuleSelectionError::Rule {
            name: name.to_string(),
            reason,
        };
        let mut schedulers = Vec::with_capacity(names.len());
        for name in names {
            if name.trim().starts_with("lookahead") {
                return Err(bad(name, "the lookahead proxy sees the future".into()));
            }
            let scheduler = by_name(name).map_err(|e| bad(name, e.to_string()))?;
            if scheduler
                .discipline()
                .is_some_and(|d| d != env.discipline())
            {
                return Err(bad(name, "it runs under its own discipline".into()));
            }
            schedulers.push(scheduler);
        }
        let whole_queue = schedulers.iter().any(|s| s.discipline().is_some());
        Ok(Self {
            names: names.to_vec(),
            schedulers,
            decisions: vec![Decision::Action(0); names.len()],
            columns: vec![0; names.len()],
            whole_queue,
            inner_mask: vec![false; env.action_space().n],
            slots,
            servers_per_slot,
        })
    }

    pub fn num_rules(&self) -> usize {
        self.names.len()
    }

    /// The action layout a policy over these rules acts in.
    pub fn action_layout(&self) -> ActionLayout {
        ActionLayout {
            blocks: vec![ActionBlock::Rules {
                n: self.names.len(),
            }],
            rules: self.names.clone(),
        }
    }

    /// Observation entries the chooser appends to the scenario's.
    pub fn num_features(&self) -> usize {
        self.names.len() * self.width()
    }

    /// Entries per rule: the visible slots, wait, and with a whole-queue rule the backlog.
    fn width(&self) -> usize {
        self.slots + 1 + usize::from(self.whole_queue)
    }

    /// Prepares the rules for an episode from `seed` (only random rules use it).
    pub fn reset(&mut self, seed: u64) {
        for scheduler in &mut self.schedulers {
            scheduler.reset(seed);
        }
    }

    /// Asks every rule for its decision in `env` now (`obs` is the scenario's observation).
    /// Batch rules choose from the whole queue; every other rule acts through the scenario's
    /// actions (a preempting rule by its placements only).
    pub fn decide(&mut self, env: &ScenarioEnv, obs: &[f32]) {
        env.action_mask(&mut self.inner_mask);
        let (slots, per_slot, backlog) = (self.slots, self.servers_per_slot, self.width() - 1);
        for (k, scheduler) in self.schedulers.iter_mut().enumerate() {
            let decision = if scheduler.discipline().is_some() {
                scheduler.decide(env, obs, &self.inner_mask)
            } else {
                Decision::Action(scheduler.act(env, obs, &self.inner_mask))
            };
            self.decisions[k] = decision;
            self.columns[k] = match (decision, env) {
                (Decision::Action(action), _) => (action / per_slot).min(slots),
                // A queued task: its visible slot, else the backlog column.
                (Decision::Task(index), ScenarioEnv::Cluster(cluster)) => cluster
                    .queued()
                    .find(|t| t.index == index)
                    .and_then(|t| t.slot)
                    .unwrap_or(backlog),
                _ => backlog,
            };
        }
    }

    /// Asks the rules for their decisions in `env` and writes the policy's observation into
    /// `out`: the scenario's observation `obs`, then the per-rule features.
    pub fn observe(&mut self, env: &ScenarioEnv, obs: &[f32], out: &mut [f32]) {
        self.decide(env, obs);
        let (head, tail) = out.split_at_mut(obs.len());
        head.copy_from_slice(obs);
        self.write_features(true, tail);
    }

    /// Rule `k`'s decision: a scenario action, or a queued task for a whole-queue rule.
    pub fn decision(&self, k: usize) -> Decision {
        self.decisions[k]
    }

    /// Writes the per-rule one-hots of the decided slots ([`num_features`](Self::num_features)
    /// entries); zeros when `decided` is false (after the episode's end).
    pub fn write_features(&self, decided: bool, out: &mut [f32]) {
        out.fill(0.0);
        if !decided {
            return;
        }
        let width = self.width();
        for (k, &column) in self.columns.iter().enumerate() {
            out[k * width + column] = 1.0;
        }
    }

    /// Whether no rule before `k` decided what rule `k` did (the mask: see the module docs).
    pub fn is_first(&self, k: usize) -> bool {
        !self.decisions[..k].contains(&self.decisions[k])
    }

    pub fn write_mask(&self, mask: &mut [bool]) {
        for (k, legal) in mask.iter_mut().enumerate() {
            *legal = self.is_first(k);
        }
    }
}

/// A scenario's env whose actions are rules' decisions (see the module docs).
pub struct RuleSelectionEnv {
    inner: ScenarioEnv,
    chooser: RuleChooser,
    inner_obs: Vec<f32>,
    obs_space: BoxSpace,
    /// Whether the chooser holds decisions for the current state (false once the episode ended).
    decided: bool,
    /// The seed the rules were last reset with; `reset(None)` moves on from it.
    rule_seed: u64,
}

impl RuleSelectionEnv {
    pub fn new(inner: ScenarioEnv, names: &[String]) -> Result<Self, RuleSelectionError> {
        let chooser = RuleChooser::new(names, &inner)?;
        let inner_space = inner.observation_space();
        let mut low = inner_space.low.clone();
        let mut high = inner_space.high.clone();
        low.resize(low.len() + chooser.num_features(), 0.0);
        high.resize(high.len() + chooser.num_features(), 1.0);
        Ok(Self {
            inner_obs: vec![0.0; inner_space.dim()],
            obs_space: BoxSpace { low, high },
            inner,
            chooser,
            decided: false,
            rule_seed: 0,
        })
    }

    /// The scenario's env underneath.
    pub fn inner(&self) -> &ScenarioEnv {
        &self.inner
    }

    /// The observation the policy sees: the scenario's, then the rules' decisions (zeros once
    /// the episode has ended).
    fn write_obs(&mut self, obs: &mut [f32]) {
        if self.decided {
            self.chooser.observe(&self.inner, &self.inner_obs, obs);
        } else {
            let (head, tail) = obs.split_at_mut(self.inner_obs.len());
            head.copy_from_slice(&self.inner_obs);
            self.chooser.write_features(false, tail);
        }
    }
}

impl Env for RuleSelectionEnv {
    fn observation_space(&self) -> &BoxSpace {
        &self.obs_space
    }

    fn action_space(&self) -> Discrete {
        Discrete {
            n: self.chooser.num_rules(),
        }
    }

    fn obs_layout(&self) -> ObsLayout {
        ObsLayout::flat(self.obs_space.dim())
    }

    fn action_layout(&self) -> ActionLayout {
        self.chooser.action_layout()
    }

    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
        self.rule_seed = seed.unwrap_or_else(|| self.rule_seed.wrapping_add(1));
        self.chooser.reset(self.rule_seed);
        self.inner.reset(seed, &mut self.inner_obs);
        self.decided = true;
        self.write_obs(obs);
    }

    fn step(&mut self, action: usize, obs: &mut [f32]) -> Result<Transition, EnvError> {
        let n = self.chooser.num_rules();
        if action >= n {
            return Err(EnvError::OutOfRange { action, n });
        }
        if !self.decided {
            return Err(EnvError::EpisodeOver);
        }
        if !self.chooser.is_first(action) {
            return Err(EnvError::Illegal {
                action,
                reason: "an earlier rule makes the same decision",
            });
        }
        let transition = step_decision(
            &mut self.inner,
            self.chooser.decision(action),
            &mut self.inner_obs,
        )?;
        self.decided = !transition.episode_over();
        self.write_obs(obs);
        Ok(transition)
    }

    fn action_mask(&self, mask: &mut [bool]) {
        if self.decided {
            self.chooser.write_mask(mask);
        } else {
            mask.fill(false);
            mask[0] = true;
        }
    }

    fn episode_metrics(&self) -> Option<&EpisodeMetrics> {
        self.inner.episode_metrics()
    }

    fn clock(&self) -> Option<f64> {
        self.inner.clock()
    }
}

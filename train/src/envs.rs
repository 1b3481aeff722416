//! Building the training envs from the config, and making their state restorable.
//!
//! # Resuming without env snapshots
//! The envs cannot be serialised, so each training env is wrapped in a [`Replayable`] that
//! (1) starts every episode from a seed derived from its base seed and its episode counter,
//! and (2) records the actions of the episode in progress. Checkpoints are taken at rollout
//! boundaries; an env's state there is `(base seed, episode counter, actions so far)`, and
//! resuming rebuilds it exactly by resetting with that episode's seed and replaying the
//! actions (the env contract makes a trajectory a function of its seed and actions; the env
//! checker tests it). Replaying costs at most one episode of steps per env.
//!
//! # Forced steps
//! With `skip_forced` a [`Replayable`] takes every step whose state leaves a single legal
//! action itself, right after the step that led there, and adds its reward to that step's:
//! the learner sees only real decisions (the semi-MDP over decision points, as event-driven
//! cluster envs already are). On `deeprm` that is every wait while nothing fits, 64–73% of a
//! trained policy's steps. The skipped steps are counted ([`Replayable::take_forced_steps`]), so that
//! a run still counts every env step, and recorded with the others, so that a resume replays
//! them. An episode's first state is never skipped: a reset returns no reward to add the
//! skipped steps' to.

use std::path::{Path, PathBuf};

use lepton_env::scenario::{self, Scenario, ScenarioEnv};
use lepton_env::schedulers::{self, RuleSelectionEnv};
use lepton_env::seeds::mix64;
use lepton_env::{
    ActionLayout, BoxSpace, CartPole, Discrete, Env, EnvError, EpisodeMetrics, ObsLayout,
    TimeLimit, Transition, VecEnv, VecEnvBuildError,
};
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, EnvConfig, EnvKind, TrainConfig};

/// A resolved env config: what to build, ready to build many copies.
#[derive(Clone, Debug)]
pub struct EnvSpec {
    kind: EnvKind,
    scenario: Option<Scenario>,
    max_episode_steps: Option<usize>,
    /// Rule selection's schedulers (`env.rules`); empty: the scenario's own actions.
    rules: Vec<String>,
    /// Names of the scheduling resources (for `cluster/utilization_<name>`), empty for CartPole.
    pub resource_names: Vec<String>,
}

impl EnvSpec {
    pub fn from_config(config: &EnvConfig) -> Result<Self, ConfigError> {
        let (scenario, resource_names) = match (config.kind, &config.scenario) {
            (EnvKind::Scenario, Some(path)) => {
                let s = scenario::load_file(Path::new(path))?;
                let names = match &s {
                    Scenario::Cluster(c) => c.resources.clone(),
                    Scenario::DeepRm(c) => c.resources.clone(),
                };
                (Some(s), names)
            }
            (EnvKind::Scenario, None) => {
                return Err(ConfigError::Invalid {
                    source_name: "env".into(),
                    errors: vec!["env.scenario is required for env.kind = \"scenario\"".into()],
                });
            }
            (EnvKind::Cartpole, _) => (None, Vec::new()),
        };
        if let Some(s) = scenario.as_ref().filter(|_| !config.rules.is_empty()) {
            RuleSelectionEnv::new(s.build(), &config.rules).map_err(|e| ConfigError::Invalid {
                source_name: "env".into(),
                errors: vec![format!("env.rules: {e}")],
            })?;
        }
        Ok(Self {
            kind: config.kind,
            scenario,
            max_episode_steps: config.max_episode_steps,
            rules: config.rules.clone(),
            resource_names,
        })
    }

    /// The spec of the evaluation episodes: this one, or the same env on `eval.scenario`,
    /// which must give observations and actions of this one's shape.
    pub fn for_evaluation(&self, config: &TrainConfig) -> Result<Self, ConfigError> {
        let Some(path) = &config.eval.scenario else {
            return Ok(self.clone());
        };
        let spec = Self::from_config(&EnvConfig {
            scenario: Some(path.clone()),
            ..config.env.clone()
        })?;
        let (train, eval) = (self.make(), spec.make());
        if train.obs_layout() != eval.obs_layout() || train.action_layout() != eval.action_layout()
        {
            return Err(ConfigError::Invalid {
                source_name: "eval".into(),
                errors: vec![format!(
                    "eval.scenario: {} gives observations of {} values and {} actions, the \
                     training scenario {} and {}: a policy trained on one cannot play the other",
                    path.display(),
                    eval.observation_space().dim(),
                    eval.action_space().n,
                    train.observation_space().dim(),
                    train.action_space().n,
                )],
            });
        }
        Ok(spec)
    }

    /// Completion-aware mean slowdown of each reference heuristic (SJF, Packer, Tetris,
    /// `fastest:sjf` where servers differ in speed, and under rule selection every rule that is
    /// a scheduler on its own, i.e. all but `wait`) over one
    /// episode per seed `seed0 + i`, `i < num_episodes` — the seeds of the periodic
    /// evaluation. Empty for envs that are not schedulers.
    pub fn heuristic_slowdowns(
        &self,
        seed0: u64,
        num_episodes: usize,
    ) -> Result<Vec<(String, f64)>, String> {
        let Some(scenario) = &self.scenario else {
            return Ok(Vec::new());
        };
        let mut names = vec!["sjf", "packer", "tetris"];
        if let ScenarioEnv::Cluster(cluster) = scenario.build() {
            // The rules choose servers by fit alone; where servers differ in speed the
            // speed-aware SJF is the stronger reference.
            let speed = |n| cluster.server(n).speed;
            if (1..cluster.num_servers()).any(|n| speed(n) != speed(0)) {
                names.push("fastest:sjf");
            }
            // The rules see only the visible slots; the batch schedulers the whole queue.
            names.extend(schedulers::BATCH_NAMES);
        }
        for rule in self.rules.iter().map(|r| r.trim()) {
            if rule != "wait" && !names.contains(&rule) {
                names.push(rule);
            }
        }
        let mut out = Vec::new();
        for name in names {
            let mut scheduler = schedulers::by_name(name).map_err(|e| e.to_string())?;
            let mut env = scenario.build();
            let mut total = 0.0;
            for i in 0..num_episodes {
                let metrics = schedulers::run_episode(
                    scheduler.as_mut(),
                    &mut env,
                    seed0.wrapping_add(i as u64),
                )
                .map_err(|e| format!("heuristic {name}: {e}"))?;
                total += metrics.completion_slowdown;
            }
            out.push((name.to_string(), total / num_episodes.max(1) as f64));
        }
        Ok(out)
    }

    /// `num_envs` training envs whose episodes can be restored exactly ([`Replayable`]),
    /// stepped on `num_threads` threads (reset them before use).
    /// With `skip_forced` they take steps with a single legal action themselves (module docs).
    pub fn training_envs(
        &self,
        num_envs: usize,
        num_threads: usize,
        skip_forced: bool,
    ) -> Result<VecEnv<Replayable>, VecEnvBuildError> {
        let envs = (0..num_envs)
            .map(|_| Replayable::new(self.make()).skipping_forced(skip_forced))
            .collect();
        VecEnv::new(envs, num_threads)
    }

    /// The scenario file and the data files it names (empty for envs built in code), whose
    /// content hashes checkpoints keep so that a resume on changed data is refused.
    pub fn source_files(&self) -> Vec<PathBuf> {
        self.scenario
            .as_ref()
            .map_or_else(Vec::new, Scenario::source_files)
    }

    /// The scenario the envs are built from (`None` for CartPole).
    pub fn scenario(&self) -> Option<&Scenario> {
        self.scenario.as_ref()
    }

    /// The config's extra time limit (`env.max_episode_steps`).
    pub fn max_episode_steps(&self) -> Option<usize> {
        self.max_episode_steps
    }

    /// A fresh env (reset it before use).
    pub fn make(&self) -> Box<dyn Env> {
        let env: Box<dyn Env> = match (self.kind, &self.scenario) {
            (EnvKind::Scenario, Some(s)) if !self.rules.is_empty() => Box::new(
                RuleSelectionEnv::new(s.build(), &self.rules)
                    .expect("from_config built this rule list once"),
            ),
            (EnvKind::Scenario, Some(s)) => Box::new(s.build()),
            _ => Box::new(CartPole::v1(0)),
        };
        match self.max_episode_steps {
            Some(limit) => Box::new(TimeLimit::new(env, limit)),
            None => env,
        }
    }
}

/// The seed of episode `episode` of an env with base seed `base`.
pub fn episode_seed(base: u64, episode: u64) -> u64 {
    mix64(base ^ mix64(episode))
}

/// What is needed to rebuild a [`Replayable`] env's state exactly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnvSnapshot {
    pub base_seed: u64,
    /// Episodes started so far (the current one is `episodes_started − 1`).
    pub episodes_started: u64,
    /// Actions of the episode in progress.
    pub actions: Vec<u32>,
    pub episode_return: f64,
    pub episode_length: usize,
}

/// See the module docs. Also keeps the running return and length of the episode, so they
/// survive a resume, and those of the episode that just ended.
pub struct Replayable {
    inner: Box<dyn Env>,
    base_seed: u64,
    episodes_started: u64,
    actions: Vec<u32>,
    episode_return: f64,
    episode_length: usize,
    /// Return and length of the episode that ended on the last step (kept through the
    /// autoreset that follows it; cleared by the next step).
    pub last_episode: Option<(f64, usize)>,
    pending_restore: Option<EnvSnapshot>,
    /// Why the last restore could not replay the recorded actions (the env's data changed).
    restore_error: Option<String>,
    skip_forced: bool,
    /// Steps taken by this env itself because a single action was legal, since the last
    /// [`Replayable::take_forced_steps`].
    forced_steps: u64,
    mask: Vec<bool>,
}

impl Replayable {
    pub fn new(inner: Box<dyn Env>) -> Self {
        Self {
            inner,
            base_seed: 0,
            episodes_started: 0,
            actions: Vec::with_capacity(1024),
            episode_return: 0.0,
            episode_length: 0,
            last_episode: None,
            pending_restore: None,
            restore_error: None,
            skip_forced: false,
            forced_steps: 0,
            mask: Vec::new(),
        }
    }

    /// With `skip`, steps whose state leaves a single legal action are taken here (module
    /// docs).
    pub fn skipping_forced(mut self, skip: bool) -> Self {
        self.skip_forced = skip;
        self.mask = vec![false; self.inner.action_space().n];
        self
    }

    /// The steps this env took itself because a single action was legal, since the last call.
    pub fn take_forced_steps(&mut self) -> u64 {
        std::mem::take(&mut self.forced_steps)
    }

    /// The only legal action of the current state, if there is exactly one.
    fn forced_action(&mut self) -> Option<usize> {
        self.inner.action_mask(&mut self.mask);
        let mut legal = self.mask.iter().enumerate().filter(|(_, m)| **m);
        match (legal.next(), legal.next()) {
            (Some((a, _)), None) => Some(a),
            _ => None,
        }
    }

    /// Why the last restore failed, if it did: a recorded action was illegal on replay, or the
    /// episode ended before its recorded actions did. Either means the env is not the one the
    /// snapshot was taken from.
    pub fn take_restore_error(&mut self) -> Option<String> {
        self.restore_error.take()
    }

    /// The next `reset` rebuilds `snapshot`'s state instead of starting an episode.
    pub fn restore_on_next_reset(&mut self, snapshot: EnvSnapshot) {
        self.pending_restore = Some(snapshot);
    }

    pub fn snapshot(&self) -> EnvSnapshot {
        EnvSnapshot {
            base_seed: self.base_seed,
            episodes_started: self.episodes_started,
            actions: self.actions.clone(),
            episode_return: self.episode_return,
            episode_length: self.episode_length,
        }
    }

    fn start_episode(&mut self, obs: &mut [f32]) {
        self.inner.reset(
            Some(episode_seed(self.base_seed, self.episodes_started)),
            obs,
        );
        self.episodes_started += 1;
        self.actions.clear();
        self.episode_return = 0.0;
        self.episode_length = 0;
    }
}

impl Env for Replayable {
    fn observation_space(&self) -> &BoxSpace {
        self.inner.observation_space()
    }
    fn action_space(&self) -> Discrete {
        self.inner.action_space()
    }
    fn obs_layout(&self) -> ObsLayout {
        self.inner.obs_layout()
    }
    fn action_layout(&self) -> ActionLayout {
        self.inner.action_layout()
    }

    /// `Some(seed)` makes `seed` the base seed and restarts the episode counter; `None` (an
    /// autoreset) starts the next episode of the sequence.
    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
        if let Some(snap) = self.pending_restore.take() {
            self.base_seed = snap.base_seed;
            self.episodes_started = snap.episodes_started.saturating_sub(1);
            self.start_episode(obs);
            let n = snap.actions.len();
            for (k, &a) in snap.actions.iter().enumerate() {
                match self.inner.step(a as usize, obs) {
                    // A snapshot is taken mid-episode: its actions never end the episode.
                    Ok(t) if t.episode_over() => {
                        self.restore_error = Some(format!(
                            "the episode ended after {} of its {n} recorded actions",
                            k + 1
                        ));
                        break;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.restore_error =
                            Some(format!("recorded action {k} of {n} ({a}) failed: {e}"));
                        break;
                    }
                }
            }
            self.actions = snap.actions;
            self.episode_return = snap.episode_return;
            self.episode_length = snap.episode_length;
            return;
        }
        if let Some(seed) = seed {
            self.base_seed = seed;
            self.episodes_started = 0;
        }
        self.start_episode(obs);
    }

    fn step(&mut self, action: usize, obs: &mut [f32]) -> Result<Transition, EnvError> {
        self.last_episode = None;
        let mut t = self.inner.step(action, obs)?;
        self.actions.push(action as u32);
        while self.skip_forced
            && !t.episode_over()
            && let Some(only) = self.forced_action()
        {
            let forced = self.inner.step(only, obs)?;
            self.actions.push(only as u32);
            self.forced_steps += 1;
            t = Transition {
                reward: t.reward + forced.reward,
                ..forced
            };
        }
        self.episode_return += f64::from(t.reward);
        self.episode_length += 1;
        self.last_episode = t
            .episode_over()
            .then_some((self.episode_return, self.episode_length));
        Ok(t)
    }

    fn action_mask(&self, mask: &mut [bool]) {
        self.inner.action_mask(mask)
    }

    fn episode_metrics(&self) -> Option<&EpisodeMetrics> {
        self.inner.episode_metrics()
    }

    fn clock(&self) -> Option<f64> {
        self.inner.clock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lepton_env::VecEnv;

    fn cartpole_spec() -> EnvSpec {
        EnvSpec::from_config(&EnvConfig {
            kind: EnvKind::Cartpole,
            scenario: None,
            max_episode_steps: None,
            rules: Vec::new(),
        })
        .unwrap()
    }

    /// Snapshot mid-episode, rebuild in a fresh VecEnv, and the two continue identically.
    #[test]
    fn replay_restores_the_exact_state() {
        let spec = cartpole_spec();
        let make =
            || VecEnv::new((0..3).map(|_| Replayable::new(spec.make())).collect(), 1).unwrap();
        let mut a = make();
        a.reset(Some(11));
        let policy = |obs: &[f32], i: usize, t: usize| {
            usize::from(obs[i * 4 + 2] > 0.0) ^ usize::from((t * 7 + i).is_multiple_of(5))
        };
        for t in 0..137 {
            let actions: Vec<usize> = (0..3).map(|i| policy(a.observations(), i, t)).collect();
            a.step(&actions).unwrap();
        }
        let mut b = make();
        for i in 0..3 {
            b.env_mut(i).restore_on_next_reset(a.env(i).snapshot());
        }
        b.reset(Some(999));
        assert_eq!(a.observations(), b.observations());
        assert_eq!(a.action_masks(), b.action_masks());
        for t in 137..400 {
            let actions: Vec<usize> = (0..3).map(|i| policy(a.observations(), i, t)).collect();
            a.step(&actions).unwrap();
            b.step(&actions).unwrap();
            assert_eq!(a.observations(), b.observations());
            assert_eq!(a.rewards(), b.rewards());
            for i in 0..3 {
                assert_eq!(a.env(i).last_episode, b.env(i).last_episode);
            }
        }
    }

    /// A snapshot whose actions no longer fit the env (here: more actions than a CartPole
    /// episode of all-left pushes lasts) is reported, not a panic.
    #[test]
    fn a_restore_that_cannot_replay_reports_why() {
        let spec = cartpole_spec();
        let mut env = Replayable::new(spec.make());
        env.restore_on_next_reset(EnvSnapshot {
            base_seed: 1,
            episodes_started: 1,
            actions: vec![0; 600],
            episode_return: 0.0,
            episode_length: 600,
        });
        let mut obs = vec![0.0; 4];
        env.reset(Some(5), &mut obs);
        let err = env.take_restore_error().unwrap();
        assert!(err.contains("of its 600 recorded actions"), "{err}");
        assert_eq!(env.take_restore_error(), None);
    }

    /// States 0..=5, the state as its observation; action 1 is legal only in even states
    /// (odd states are forced: only 0); every step moves to the next state and earns the
    /// state it left, times 10 when the action was 1; state 5 ends the episode.
    struct Ladder {
        state: u32,
        space: BoxSpace,
    }

    impl Env for Ladder {
        fn observation_space(&self) -> &BoxSpace {
            &self.space
        }
        fn action_space(&self) -> Discrete {
            Discrete { n: 2 }
        }
        fn obs_layout(&self) -> ObsLayout {
            ObsLayout::flat(1)
        }
        fn reset(&mut self, _seed: Option<u64>, obs: &mut [f32]) {
            self.state = 0;
            obs[0] = 0.0;
        }
        fn step(&mut self, action: usize, obs: &mut [f32]) -> Result<Transition, EnvError> {
            let reward = (self.state * if action == 1 { 10 } else { 1 }) as f32;
            self.state += 1;
            obs[0] = self.state as f32;
            Ok(Transition {
                reward,
                terminated: self.state == 5,
                truncated: false,
            })
        }
        fn action_mask(&self, mask: &mut [bool]) {
            mask[0] = true;
            mask[1] = self.state.is_multiple_of(2);
        }
    }

    /// With `skip_forced` the learner sees states 0, 2, 4 only; each step's reward includes
    /// the forced step after it: 0·10 + 1 = 1, 2·10 + 3 = 23, then 4·10 = 40 ends the episode.
    /// Every forced step is counted and recorded, so a restore replays it.
    #[test]
    fn forced_steps_are_taken_by_the_env_and_counted() {
        let ladder = || {
            Box::new(Ladder {
                state: 0,
                space: BoxSpace::uniform(1, 0.0, 5.0),
            }) as Box<dyn Env>
        };
        let mut env = Replayable::new(ladder()).skipping_forced(true);
        let mut obs = [0.0f32];
        env.reset(Some(3), &mut obs);
        let mut seen = vec![obs[0]];
        let mut rewards = Vec::new();
        for step in 0..3 {
            let t = env.step(1, &mut obs).unwrap();
            rewards.push(t.reward);
            assert_eq!(t.terminated, step == 2);
            seen.push(obs[0]);
            if step == 1 {
                let snapshot = env.snapshot();
                assert_eq!(snapshot.actions, [1, 0, 1, 0], "forced steps are recorded");
                let mut copy = Replayable::new(ladder()).skipping_forced(true);
                copy.restore_on_next_reset(snapshot);
                let mut copy_obs = [0.0f32];
                copy.reset(None, &mut copy_obs);
                assert_eq!(copy_obs, [4.0]);
            }
        }
        assert_eq!(seen, [0.0, 2.0, 4.0, 5.0]);
        assert_eq!(rewards, [1.0, 23.0, 40.0]);
        assert_eq!(env.take_forced_steps(), 2);
        assert_eq!(env.take_forced_steps(), 0, "counted since the last call");
        assert_eq!(env.last_episode, Some((64.0, 3)));
        // Without it every state is the learner's.
        let mut plain = Replayable::new(ladder());
        plain.reset(Some(3), &mut obs);
        let t = plain.step(1, &mut obs).unwrap();
        assert_eq!((t.reward, obs[0], plain.take_forced_steps()), (0.0, 1.0, 0));
    }

    #[test]
    fn episodes_get_distinct_seeds() {
        assert_ne!(episode_seed(1, 0), episode_seed(1, 1));
        assert_ne!(episode_seed(1, 0), episode_seed(2, 0));
    }
}

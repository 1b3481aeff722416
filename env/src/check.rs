//! `check_env`: the environment checker, after Gymnasium's and EnvPool's.
//!
//! It drives an env with random legal actions and asserts, at every step: observations
//! inside the space; a non-empty mask that agrees with feasibility (masked-in actions
//! succeed, masked-out ones are refused with the state unchanged, or are really infeasible
//! where illegal actions act as waits); conservation of tasks; no resource over capacity or
//! negative; time never decreasing within an episode; final metrics that add up. Then it
//! replays the same seed and actions and asserts an identical trajectory, and runs another
//! seed and asserts a different one.

use crate::api::{Env, EnvError};
use crate::cluster::{Census, ClusterEnv, IllegalAction};
use crate::deeprm::DeepRmEnv;
use crate::scenario::ScenarioEnv;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What the checker needs to see inside a scheduling env beyond the [`Env`] trait.
pub trait Inspect: Env + Clone {
    fn census(&self) -> Census;
    /// Simulated time.
    fn now(&self) -> f64;
    /// Recounts the state from scratch and compares it with the running totals and the
    /// resource accounting; `Err` says what disagrees.
    fn check_invariants(&self) -> Result<(), String>;
    /// True when the (non-wait) action would be carried out now (a placement, or a
    /// preemption or migration).
    fn is_feasible_placement(&self, action: usize) -> bool;
    /// True when masked-out actions return an error (false: they act as wait).
    fn illegal_action_errors(&self) -> bool;
    /// A count that every carried-out action raises (by one; a commit discipline may start
    /// more tasks meanwhile) and no clock advance lowers: running + finished + killed runs (a
    /// placement adds a running task; a completion or kill moves one to another term).
    fn moves(&self) -> usize {
        let c = self.census();
        c.num_running + c.num_finished
    }
}

impl Inspect for ClusterEnv {
    fn census(&self) -> Census {
        ClusterEnv::census(self)
    }
    fn now(&self) -> f64 {
        self.now_s()
    }
    fn check_invariants(&self) -> Result<(), String> {
        ClusterEnv::check_invariants(self)
    }
    fn is_feasible_placement(&self, action: usize) -> bool {
        ClusterEnv::is_feasible_placement(self, action)
    }
    fn illegal_action_errors(&self) -> bool {
        self.config().illegal_action == IllegalAction::Error
    }
    /// Besides placements: a preemption removes a running task and counts twice; a migration
    /// counts once.
    fn moves(&self) -> usize {
        let c = self.census();
        let (preempted, migrated) = self.num_preempted_migrated();
        c.num_running + c.num_finished + self.num_killed() + 2 * preempted + migrated
    }
}

impl Inspect for DeepRmEnv {
    fn census(&self) -> Census {
        DeepRmEnv::census(self)
    }
    fn now(&self) -> f64 {
        f64::from(self.now_steps())
    }
    fn check_invariants(&self) -> Result<(), String> {
        DeepRmEnv::check_invariants(self)
    }
    fn is_feasible_placement(&self, action: usize) -> bool {
        self.fits(action)
    }
    fn illegal_action_errors(&self) -> bool {
        false
    }
}

impl Inspect for ScenarioEnv {
    fn census(&self) -> Census {
        match self {
            ScenarioEnv::Cluster(e) => Inspect::census(e),
            ScenarioEnv::DeepRm(e) => Inspect::census(e),
        }
    }
    fn now(&self) -> f64 {
        match self {
            ScenarioEnv::Cluster(e) => Inspect::now(e),
            ScenarioEnv::DeepRm(e) => Inspect::now(e),
        }
    }
    fn check_invariants(&self) -> Result<(), String> {
        match self {
            ScenarioEnv::Cluster(e) => Inspect::check_invariants(e),
            ScenarioEnv::DeepRm(e) => Inspect::check_invariants(e),
        }
    }
    fn is_feasible_placement(&self, action: usize) -> bool {
        match self {
            ScenarioEnv::Cluster(e) => Inspect::is_feasible_placement(e, action),
            ScenarioEnv::DeepRm(e) => Inspect::is_feasible_placement(e, action),
        }
    }
    fn illegal_action_errors(&self) -> bool {
        match self {
            ScenarioEnv::Cluster(e) => Inspect::illegal_action_errors(e),
            ScenarioEnv::DeepRm(e) => Inspect::illegal_action_errors(e),
        }
    }
    fn moves(&self) -> usize {
        match self {
            ScenarioEnv::Cluster(e) => Inspect::moves(e),
            ScenarioEnv::DeepRm(e) => Inspect::moves(e),
        }
    }
}

/// What a successful check covered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckReport {
    pub steps: usize,
    pub episodes_finished: usize,
    pub placements: usize,
}

/// Masked-in actions per step re-run on a clone to prove they succeed (all of them when
/// there are fewer); the chosen action is always among them implicitly, as it is stepped.
const MAX_CLONE_CHECKS_PER_STEP: usize = 8;

/// Checks `env` over `steps` steps from `seed`; see the module docs for what is asserted.
pub fn check_env<E: Inspect>(env: &E, seed: u64, steps: usize) -> Result<CheckReport, String> {
    let (report, trajectory) = run(env.clone(), seed, steps, true)?;
    let (_, replay) = run(env.clone(), seed, steps, false)?;
    if trajectory != replay {
        let at = trajectory
            .iter()
            .zip(&replay)
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        return Err(format!(
            "not deterministic: same seed {seed} and actions diverge at step {at}"
        ));
    }
    let (_, other) = run(env.clone(), seed.wrapping_add(1), steps, false)?;
    if other == trajectory {
        return Err(format!(
            "seeds {seed} and {} gave identical trajectories",
            seed.wrapping_add(1)
        ));
    }
    Ok(report)
}

/// One digest per step of everything observable: the action, the observation, the reward
/// and the end flags.
fn digest(action: usize, obs: &[f32], reward: f32, terminated: bool, truncated: bool) -> u64 {
    // FNV-1a over the bit patterns: cheap, deterministic, no dependency.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |x: u64| {
        h ^= x;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    eat(action as u64);
    obs.iter().for_each(|v| eat(u64::from(v.to_bits())));
    eat(u64::from(reward.to_bits()));
    eat(u64::from(terminated) | (u64::from(truncated) << 1));
    h
}

fn run<E: Inspect>(
    mut env: E,
    seed: u64,
    steps: usize,
    thorough: bool,
) -> Result<(CheckReport, Vec<u64>), String> {
    let space = env.observation_space().clone();
    let n = env.action_space().n;
    let layout = env.action_layout();
    if layout.num_actions() != n {
        return Err(format!(
            "action layout {layout:?} spans {} actions, the action space has {n}",
            layout.num_actions()
        ));
    }
    let wait = n - 1;
    let mut obs = vec![0.0; space.dim()];
    let mut next_obs = vec![0.0; space.dim()];
    let mut mask = vec![false; n];
    let mut legal = Vec::with_capacity(n);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_c4ec);
    // Separate from `rng` so that the thorough run and the replay pick the same actions.
    let mut probe_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0b5e_55ed);
    let mut trajectory = Vec::with_capacity(steps + 1);
    let mut report = CheckReport {
        steps,
        episodes_finished: 0,
        placements: 0,
    };

    env.reset(Some(seed), &mut obs);
    let mut reset_again = vec![0.0; space.dim()];
    env.clone().reset(Some(seed), &mut reset_again);
    if obs != reset_again {
        return Err("reset with the same seed gave different first observations".into());
    }
    trajectory.push(digest(usize::MAX, &obs, 0.0, false, false));
    let mut last_time = env.now();

    for step in 0..steps {
        let ctx = |what: String| format!("step {step}: {what}");
        if !space.contains(&obs) {
            let bad = obs
                .iter()
                .zip(space.low.iter().zip(&space.high))
                .position(|(v, (lo, hi))| !(*v >= *lo && *v <= *hi));
            return Err(ctx(format!(
                "observation outside the space at index {bad:?}"
            )));
        }
        env.check_invariants().map_err(ctx)?;
        let census = env.census();
        let accounted =
            census.num_queued + census.num_running + census.num_finished + census.num_dropped;
        if accounted != census.num_arrived {
            return Err(ctx(format!("conservation: {census:?}")));
        }
        env.action_mask(&mut mask);
        if !mask.iter().any(|&m| m) {
            return Err(ctx("no action is legal".into()));
        }
        legal.clear();
        legal.extend((0..n).filter(|&a| mask[a]));

        if thorough {
            for (a, &allowed) in mask[..wait].iter().enumerate() {
                if allowed != env.is_feasible_placement(a) {
                    return Err(ctx(format!(
                        "mask[{a}] = {allowed} disagrees with feasibility"
                    )));
                }
                if !allowed && env.illegal_action_errors() {
                    let before = (env.census(), env.now());
                    match env.step(a, &mut next_obs) {
                        Err(EnvError::Illegal { .. }) => {}
                        other => return Err(ctx(format!("masked-out action {a} gave {other:?}"))),
                    }
                    if (env.census(), env.now()) != before {
                        return Err(ctx(format!("refused action {a} changed the state")));
                    }
                }
            }
            if !mask[wait] {
                let before = (env.census(), env.now());
                match env.step(wait, &mut next_obs) {
                    Err(EnvError::Illegal { .. }) => {}
                    other => return Err(ctx(format!("masked-out wait gave {other:?}"))),
                }
                if (env.census(), env.now()) != before {
                    return Err(ctx("refused wait changed the state".into()));
                }
            }
            let num_checks = legal.len().min(MAX_CLONE_CHECKS_PER_STEP);
            for _ in 0..num_checks {
                let a = legal[probe_rng.random_range(0..legal.len())];
                let mut probe = env.clone();
                probe
                    .step(a, &mut next_obs)
                    .map_err(|e| ctx(format!("masked-in action {a} failed: {e}")))?;
                if a != wait && probe.moves() <= env.moves() {
                    return Err(ctx(format!("masked-in action {a} did nothing")));
                }
            }
        }

        let action = legal[rng.random_range(0..legal.len())];
        if action != wait {
            report.placements += 1;
        }
        let t = env
            .step(action, &mut obs)
            .map_err(|e| ctx(format!("legal action {action} failed: {e}")))?;
        if !t.reward.is_finite() {
            return Err(ctx(format!("reward {} is not finite", t.reward)));
        }
        if env.now() < last_time {
            return Err(ctx(format!(
                "time went back from {last_time} to {}",
                env.now()
            )));
        }
        last_time = env.now();
        trajectory.push(digest(action, &obs, t.reward, t.terminated, t.truncated));
        if t.episode_over() {
            let m = env
                .episode_metrics()
                .ok_or_else(|| ctx("episode over without metrics".into()))?;
            if m.num_finished + m.num_dropped + m.num_unfinished != m.num_tasks {
                return Err(ctx(format!("metrics do not add up: {m:?}")));
            }
            if t.terminated && m.num_unfinished != 0 {
                return Err(ctx(format!("terminated with unfinished tasks: {m:?}")));
            }
            if env.step(wait, &mut next_obs) != Err(EnvError::EpisodeOver) {
                return Err(ctx("step after the end was not refused".into()));
            }
            report.episodes_finished += 1;
            env.reset(None, &mut obs);
            last_time = env.now();
        } else if env.episode_metrics().is_some() {
            return Err(ctx("metrics reported while the episode runs".into()));
        }
    }
    Ok((report, trajectory))
}

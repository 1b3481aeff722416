//! DeepRM's environment (Mao et al., "Resource Management with Deep Reinforcement
//! Learning", HotNets'16), reproduced step for step.

use crate::api::{ActionLayout, Env, EnvError, ObsLayout, Transition};
use crate::cluster::state::{Admission, SlotOrder, TaskIndex, TaskPhase, TaskQueue, TaskRecord};
use crate::cluster::stats;
use crate::cluster::{Census, RewardWeights, RunningView, SlotView};
use crate::metrics::EpisodeMetrics;
use crate::spaces::{BoxSpace, Discrete};
use crate::workload::{MAX_RESOURCES, TaskSource, TaskSpec};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

mod schedule;

/// Steps after which "time since the last arrival" saturates in the observation (DeepRM's
/// `max_track_since_new`).
const MAX_TRACK_SINCE_ARRIVAL: u32 = 10;

/// A resolved, validated DeepRM scenario.
#[derive(Clone, Debug)]
pub struct DeepRmConfig {
    pub resources: Vec<String>,
    /// Units per resource of the single machine (10 and 10 in DeepRM).
    pub capacity: [u32; MAX_RESOURCES],
    /// Look-ahead `T` of the reservation grid, in steps (20 in DeepRM).
    pub horizon: usize,
    pub num_slots: usize,
    pub backlog_cap: usize,
    /// Truncation: the episode is cut off when the clock reaches this step.
    pub max_steps: u32,
    /// Truncation: the episode is cut off after this many actions.
    pub max_decisions: u64,
    /// How long a job may wait while it could start: with `Some(h)`, waiting is illegal while
    /// a visible job that fits now has waited `h` steps or more (`Some(0)`: work-conserving,
    /// wait only when nothing fits now). `None` (DeepRM): waiting is always legal.
    pub hold_limit: Option<u32>,
    /// Which backlog job fills a freed slot (DeepRM: FIFO).
    pub slot_order: SlotOrder,
    /// Only `slowdown`, `wait` and `dropped` apply (DeepRM tasks have no deadline).
    pub reward: RewardWeights,
    pub seed: u64,
    /// Must produce integer arrival steps and integer lengths `1..horizon`.
    pub workload: Arc<dyn TaskSource>,
    /// The files this config was resolved from: the scenario file (when loaded from one),
    /// then the data files it names; empty for a config built in code. The env never reads
    /// them.
    pub source_files: Vec<std::path::PathBuf>,
}

/// DeepRM's cluster: one machine, a reservation grid of `horizon` future steps, visible job
/// slots and a backlog.
///
/// # Action Space
/// `Discrete(num_slots + 1)`. Action `k < num_slots` allocates the job in slot `k` at the
/// earliest start offset `s ∈ 0..=T−len−1` (`T` = horizon) at which it fits for its whole
/// length, possibly reserving a future start; it does not advance time, and the slot is
/// refilled from the backlog head. An empty slot, a job that fits at no offset, or the void
/// action `num_slots` advances the clock by one step instead (DeepRM's "MoveOn"), so
/// masked-out actions are waits, never errors. The mask marks exactly the slots whose job
/// fits at some offset, plus the void action. With a `hold_limit` the void action is masked
/// out while a visible job that fits now has waited that long, and a wait then (the void
/// action or a masked-out slot) is an [`EnvError::Illegal`] that changes nothing: the policy
/// may hold a job back, but not forever.
///
/// # Observation
/// A flat `f32` vector in `[0, 1]` (see [`Env::obs_layout`]), the same information as
/// DeepRM's image in compact form:
/// - global (2): backlog length / backlog cap; steps since the last arrival / 10, capped at 1;
/// - one server row (`T × R`): free / capacity of resource `r` at offset `t`, at index
///   `t × R + r`;
/// - one row per slot (`R + 3`): 1 if occupied; demand / capacity per resource;
///   length / T; waiting steps / T, capped at 1 (all zero when empty).
///
/// # Rewards
/// After every clock advance: −Σ over jobs in the system (running or reserved, in a slot, in
/// the backlog) of `1/len` (DeepRM's `delay`, `hold` and `dismiss` penalties, all −1);
/// allocations earn 0. An episode's return is −Σ over jobs of (finish − arrival)/len.
/// Optional `wait` (per queued job per step) and `dropped` terms from [`RewardWeights`].
///
/// # Starting State
/// Time 0, an empty grid, no jobs; jobs arrive only when the clock advances, at most one per
/// step with DeepRM's generator, into the lowest empty slot, else the backlog tail, else
/// dropped (counted).
///
/// # Episode End
/// Terminated when every job of the workload has arrived and has finished or been dropped
/// (DeepRM's `all_done`; DeepRM may keep stepping an empty system until `simu_len`, with zero
/// reward, so returns agree). Truncated when the clock reaches `max_steps` (DeepRM's
/// `episode_max_length`) or after `max_decisions` actions.
///
/// # Arguments
/// See [`DeepRmConfig`] and `configs/scenarios/deeprm.toml`.
///
/// # State API for schedulers
/// [`now_steps`](Self::now_steps), [`slot`](Self::slot), [`backlog_len`](Self::backlog_len),
/// [`capacity`](Self::capacity), [`free_at`](Self::free_at),
/// [`earliest_start_offset`](Self::earliest_start_offset), [`fits`](Self::fits),
/// [`fits_now`](Self::fits_now), [`running`](Self::running),
/// [`action_index`](Self::action_index) and [`wait_action`](Self::wait_action). Lengths are
/// reported as the tasks' estimates; future arrivals are never visible. Heuristics read them
/// only through `schedulers/snapshot.rs`, the audited surface.
#[derive(Clone, Debug)]
pub struct DeepRmEnv {
    config: DeepRmConfig,
    obs_space: BoxSpace,
    layout: ObsLayout,
    num_resources: usize,
    rng: ChaCha8Rng,

    tasks: Vec<TaskSpec>,
    records: Vec<TaskRecord>,
    /// Free units, `horizon × num_resources`, row `t` = offset `t` from now.
    free: Vec<u32>,
    queue: TaskQueue,
    /// Allocated jobs not yet finished (running or reserved).
    running: Vec<TaskIndex>,

    now: u32,
    last_arrival: u32,
    next_arrival: usize,
    census: Census,
    num_decisions: u64,
    inv_len_sum: f64,
    used_integral: [f64; MAX_RESOURCES],
    pending_cost: f64,
    terminated: bool,
    truncated: bool,
    metrics: EpisodeMetrics,
    metrics_ready: bool,
    scratch: Vec<f64>,
}

impl DeepRmEnv {
    pub fn new(config: DeepRmConfig) -> Self {
        let num_resources = config.resources.len();
        let layout = ObsLayout {
            global: 2,
            server_rows: 1,
            server_features: config.horizon * num_resources,
            slot_rows: config.num_slots,
            slot_features: num_resources + 3,
            ..ObsLayout::default()
        };
        let mut env = Self {
            obs_space: BoxSpace::uniform(layout.dim(), 0.0, 1.0),
            layout,
            num_resources,
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            tasks: Vec::new(),
            records: Vec::new(),
            free: vec![0; config.horizon * num_resources],
            queue: TaskQueue::new(config.num_slots, config.backlog_cap, config.slot_order),
            running: Vec::new(),
            now: 0,
            last_arrival: 0,
            next_arrival: 0,
            census: Census::default(),
            num_decisions: 0,
            inv_len_sum: 0.0,
            used_integral: [0.0; MAX_RESOURCES],
            pending_cost: 0.0,
            terminated: false,
            truncated: false,
            metrics: EpisodeMetrics::default(),
            metrics_ready: false,
            scratch: Vec::new(),
            config,
        };
        let mut obs = vec![0.0; layout.dim()];
        env.reset(None, &mut obs);
        env
    }

    pub fn config(&self) -> &DeepRmConfig {
        &self.config
    }

    // ----- State API for schedulers -----

    /// Current time step.
    pub fn now_steps(&self) -> u32 {
        self.now
    }

    pub fn num_slots(&self) -> usize {
        self.config.num_slots
    }

    pub fn num_resources(&self) -> usize {
        self.num_resources
    }

    pub fn horizon(&self) -> usize {
        self.config.horizon
    }

    pub fn capacity(&self) -> &[u32] {
        &self.config.capacity[..self.num_resources]
    }

    /// Free units per resource at `offset` steps from now (`offset < horizon`).
    pub fn free_at(&self, offset: usize) -> &[u32] {
        &self.free[offset * self.num_resources..(offset + 1) * self.num_resources]
    }

    /// The job in slot `k` (its `estimate_s` is its length in steps).
    pub fn slot(&self, k: usize) -> Option<SlotView<'_>> {
        let index = (*self.queue.slots.get(k)?)?;
        let spec = &self.tasks[index as usize];
        Some(SlotView::of(
            k,
            spec,
            self.num_resources,
            f64::from(self.now),
        ))
    }

    pub fn backlog_len(&self) -> usize {
        self.queue.backlog.len()
    }

    /// The earliest offset at which slot `k`'s job fits for its whole length, as an
    /// allocation would choose it; `None` for an empty slot or a job that fits nowhere.
    pub fn earliest_start_offset(&self, k: usize) -> Option<usize> {
        let index = (*self.queue.slots.get(k)?)?;
        self.earliest_offset_for(&self.tasks[index as usize])
    }

    /// False while the hold limit forbids waiting: some visible job that fits now has waited
    /// `hold_limit` steps or more.
    pub fn wait_allowed(&self) -> bool {
        let Some(limit) = self.config.hold_limit else {
            return true;
        };
        !self.queue.slots.iter().enumerate().any(|(k, slot)| {
            slot.is_some_and(|i| {
                let waited = f64::from(self.now) - self.tasks[i as usize].arrival_s;
                waited >= f64::from(limit) && self.fits_now(k)
            })
        })
    }

    /// True when action `k` would allocate (rather than advance time).
    pub fn fits(&self, k: usize) -> bool {
        self.earliest_start_offset(k).is_some()
    }

    /// True when slot `k`'s job can start right now (offset 0) for its whole length.
    pub fn fits_now(&self, k: usize) -> bool {
        self.earliest_start_offset(k) == Some(0)
    }

    /// Allocated jobs (running now or reserved to start later) with their finish times.
    pub fn running(&self) -> impl Iterator<Item = RunningView<'_>> + '_ {
        self.running.iter().map(move |&i| {
            let spec = &self.tasks[i as usize];
            let rec = &self.records[i as usize];
            RunningView {
                index: i,
                task_id: spec.id,
                server: 0,
                demand: &spec.demand[..self.num_resources],
                start_s: rec.start_s,
                estimated_finish_s: rec.start_s + spec.estimate_s,
                priority: spec.priority,
                work_at_risk_s: 0.0,
            }
        })
    }

    /// The action that allocates slot `k` (`None` if out of range).
    pub fn action_index(&self, k: usize) -> Option<usize> {
        (k < self.config.num_slots).then_some(k)
    }

    pub fn wait_action(&self) -> usize {
        self.config.num_slots
    }

    /// Replaces the jobs yet to arrive by a fresh draw of the workload, seeded by `seed`
    /// ([`redraw_future`](crate::workload::redraw_future)): one possible world consistent
    /// with what a scheduler has seen. Job lengths are known to schedulers in DeepRM's model,
    /// so nothing else is hidden.
    pub fn redraw_hidden(&mut self, seed: u64, arrivals: Option<usize>) {
        let workload = self.config.workload.clone();
        crate::workload::redraw_future(
            workload.as_ref(),
            seed,
            &mut self.tasks,
            self.next_arrival,
            f64::from(self.now),
        );
        if let Some(n) = arrivals {
            self.tasks.truncate(self.next_arrival + n);
        }
        self.records.resize(self.tasks.len(), TaskRecord::NEW);
    }

    // ----- Introspection for checks and tests -----

    pub fn census(&self) -> Census {
        self.census
    }

    /// Recounts task phases and the reservation grid from scratch: conservation, and a grid
    /// equal to capacity minus the allocated jobs, never negative.
    pub fn check_invariants(&self) -> Result<(), String> {
        let recount = Census::recount(&self.records);
        if recount != self.census || self.queue.len() != self.census.num_queued {
            return Err(format!("census {:?} != recount {recount:?}", self.census));
        }
        let nr = self.num_resources;
        let mut expected: Vec<i64> = (0..self.config.horizon)
            .flat_map(|_| self.config.capacity[..nr].iter().map(|&c| i64::from(c)))
            .collect();
        for &i in &self.running {
            let rec = &self.records[i as usize];
            let spec = &self.tasks[i as usize];
            let now = f64::from(self.now);
            let first = (rec.start_s - now).max(0.0) as usize;
            let last = (rec.finish_s - now) as usize;
            for t in first..last.min(self.config.horizon) {
                for r in 0..nr {
                    expected[t * nr + r] -= i64::from(spec.demand[r]);
                }
            }
        }
        for (idx, (&e, &f)) in expected.iter().zip(&self.free).enumerate() {
            if e < 0 || e != i64::from(f) {
                return Err(format!("grid cell {idx}: free {f}, expected {e}"));
            }
        }
        Ok(())
    }

    // ----- Dynamics -----

    /// DeepRM's `Machine.allocate_job` search: the first `s` in `0..T−len` whose rows
    /// `s..s+len` all have room for the demand, by one scan with a run counter.
    fn earliest_offset_for(&self, spec: &TaskSpec) -> Option<usize> {
        let nr = self.num_resources;
        let len = spec.duration_s as usize;
        let horizon = self.config.horizon;
        if len == 0 || len >= horizon {
            return None;
        }
        let mut run = 0;
        for (t, row) in self.free.chunks_exact(nr).enumerate() {
            if row.iter().zip(&spec.demand).all(|(&f, &d)| d <= f) {
                run += 1;
                if run == len {
                    return Some(t + 1 - len);
                }
            } else {
                run = 0;
            }
            // Starts must satisfy s < T − len, i.e. the run must end before row T − 1.
            if t + 1 >= horizon - 1 {
                break;
            }
        }
        None
    }

    fn allocate(&mut self, k: usize, offset: usize) {
        let Some(i) = self.queue.take(k, &self.tasks) else {
            return;
        };
        let spec = &self.tasks[i as usize];
        let nr = self.num_resources;
        let len = spec.duration_s as usize;
        for row in self.free[offset * nr..(offset + len) * nr].chunks_exact_mut(nr) {
            for (f, &d) in row.iter_mut().zip(&spec.demand) {
                *f -= d;
            }
        }
        let rec = &mut self.records[i as usize];
        rec.phase = TaskPhase::Running;
        rec.start_s = f64::from(self.now) + offset as f64;
        rec.finish_s = rec.start_s + len as f64;
        rec.server = 0;
        self.running.push(i);
        self.census.num_queued -= 1;
        self.census.num_running += 1;
    }

    /// DeepRM's "MoveOn": one step of time, completions, then arrivals, then the reward.
    fn move_on(&mut self) {
        let nr = self.num_resources;
        // Utilisation over the step that is ending: offset 0 of the grid.
        for r in 0..nr {
            self.used_integral[r] += f64::from(self.config.capacity[r] - self.free[r]);
        }
        self.now += 1;
        self.free.copy_within(nr.., 0);
        let tail = self.free.len() - nr;
        self.free[tail..].copy_from_slice(&self.config.capacity[..nr]);

        let now = f64::from(self.now);
        let mut j = 0;
        while j < self.running.len() {
            let i = self.running[j] as usize;
            if self.records[i].finish_s <= now {
                self.running.swap_remove(j);
                self.records[i].phase = TaskPhase::Finished;
                self.census.num_running -= 1;
                self.census.num_finished += 1;
                self.inv_len_sum -= 1.0 / self.tasks[i].duration_s;
            } else {
                j += 1;
            }
        }
        while self.next_arrival < self.tasks.len() && self.tasks[self.next_arrival].arrival_s <= now
        {
            self.arrive(self.next_arrival as TaskIndex);
            self.next_arrival += 1;
        }
        if self.census.num_queued + self.census.num_running == 0 {
            self.inv_len_sum = 0.0;
        }
        let cost_rate = self
            .config
            .reward
            .cost_rate(self.inv_len_sum, self.census.num_queued);
        self.pending_cost += cost_rate;
    }

    fn arrive(&mut self, i: TaskIndex) {
        let spec = self.tasks[i as usize];
        self.census.num_arrived += 1;
        self.last_arrival = self.now;
        let len = spec.duration_s as usize;
        let fits_empty = len >= 1
            && len < self.config.horizon
            && (0..self.num_resources).all(|r| spec.demand[r] <= self.config.capacity[r]);
        let admission = if fits_empty {
            self.queue.admit(i, &spec)
        } else {
            Admission::Dropped
        };
        if admission == Admission::Dropped {
            self.records[i as usize].phase = TaskPhase::Dropped;
            self.census.num_dropped += 1;
            self.pending_cost += self.config.reward.dropped;
        } else {
            self.records[i as usize].phase = TaskPhase::Queued;
            self.census.num_queued += 1;
            self.inv_len_sum += 1.0 / spec.duration_s;
        }
    }

    fn update_episode_end(&mut self) {
        let all_done = self.next_arrival == self.tasks.len()
            && self.census.num_queued + self.census.num_running == 0;
        self.terminated = all_done;
        self.truncated = !all_done
            && (self.now >= self.config.max_steps
                || self.num_decisions >= self.config.max_decisions);
        if self.terminated || self.truncated {
            let capacity_total: [f64; MAX_RESOURCES] =
                std::array::from_fn(|r| f64::from(self.config.capacity[r]));
            let totals = stats::EpisodeTotals {
                num_arrived: self.census.num_arrived,
                end_s: f64::from(self.now),
                used_integral: &self.used_integral[..self.num_resources],
                capacity_total: &capacity_total[..self.num_resources],
            };
            stats::fill_metrics(
                &self.tasks,
                &self.records,
                &totals,
                &mut self.scratch,
                &mut self.metrics,
            );
            self.metrics_ready = true;
        }
    }

    pub fn write_observation(&self, obs: &mut [f32]) {
        let nr = self.num_resources;
        let horizon = self.config.horizon as f32;
        let cap = &self.config.capacity;
        obs[0] = if self.config.backlog_cap == 0 {
            0.0
        } else {
            self.queue.backlog.len() as f32 / self.config.backlog_cap as f32
        };
        obs[1] = (self.now - self.last_arrival).min(MAX_TRACK_SINCE_ARRIVAL) as f32
            / MAX_TRACK_SINCE_ARRIVAL as f32;
        let grid_end = 2 + self.free.len();
        for (o, (idx, &f)) in obs[2..grid_end]
            .iter_mut()
            .zip(self.free.iter().enumerate())
        {
            *o = f as f32 / cap[idx % nr] as f32;
        }
        let kf = self.layout.slot_features;
        for (row, slot) in obs[grid_end..].chunks_exact_mut(kf).zip(&self.queue.slots) {
            let Some(i) = *slot else {
                row.fill(0.0);
                continue;
            };
            let spec = &self.tasks[i as usize];
            row[0] = 1.0;
            for r in 0..nr {
                row[1 + r] = spec.demand[r] as f32 / cap[r] as f32;
            }
            row[1 + nr] = spec.estimate_s as f32 / horizon;
            row[2 + nr] = ((f64::from(self.now) - spec.arrival_s) as f32 / horizon).min(1.0);
        }
    }
}

impl Env for DeepRmEnv {
    fn observation_space(&self) -> &BoxSpace {
        &self.obs_space
    }

    fn action_space(&self) -> Discrete {
        Discrete {
            n: self.config.num_slots + 1,
        }
    }

    fn obs_layout(&self) -> ObsLayout {
        self.layout
    }

    fn action_layout(&self) -> ActionLayout {
        ActionLayout::slots_then_wait(self.config.num_slots)
    }

    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
        if let Some(seed) = seed {
            self.rng = ChaCha8Rng::seed_from_u64(seed);
        }
        // Listed windows follow the seed; the start clock does not apply (DeepRM scenarios
        // refuse absolute times: an episode starts at step 0).
        self.config
            .workload
            .fill_episode(seed, &mut self.rng, &mut self.tasks);
        self.records.clear();
        self.records.resize(self.tasks.len(), TaskRecord::NEW);
        let nr = self.num_resources;
        for row in self.free.chunks_exact_mut(nr) {
            row.copy_from_slice(&self.config.capacity[..nr]);
        }
        self.queue.clear();
        self.running.clear();
        self.now = 0;
        self.last_arrival = 0;
        self.next_arrival = 0;
        self.census = Census::default();
        self.num_decisions = 0;
        self.inv_len_sum = 0.0;
        self.used_integral = [0.0; MAX_RESOURCES];
        self.pending_cost = 0.0;
        self.metrics_ready = false;
        while self.next_arrival < self.tasks.len() && self.tasks[self.next_arrival].arrival_s <= 0.0
        {
            self.arrive(self.next_arrival as TaskIndex);
            self.next_arrival += 1;
        }
        // An episode always has a first decision, even when the sequence drew no job at all
        // (a low arrival rate on a short sequence): that step then ends it.
        self.terminated = false;
        self.truncated = false;
        self.write_observation(obs);
    }

    fn step(&mut self, action: usize, obs: &mut [f32]) -> Result<Transition, EnvError> {
        if self.terminated || self.truncated {
            return Err(EnvError::EpisodeOver);
        }
        let n = self.config.num_slots + 1;
        if action >= n {
            return Err(EnvError::OutOfRange { action, n });
        }
        match self.earliest_start_offset(action) {
            Some(offset) => self.allocate(action, offset),
            None if self.wait_allowed() => self.move_on(),
            None => {
                return Err(EnvError::Illegal {
                    action,
                    reason: "a job that fits now has waited the hold limit: waiting is not allowed",
                });
            }
        }
        self.num_decisions += 1;
        self.update_episode_end();
        self.write_observation(obs);
        let reward = -std::mem::take(&mut self.pending_cost) as f32;
        Ok(Transition {
            reward,
            terminated: self.terminated,
            truncated: self.truncated,
        })
    }

    fn action_mask(&self, mask: &mut [bool]) {
        for (k, m) in mask[..self.config.num_slots].iter_mut().enumerate() {
            *m = self.earliest_start_offset(k).is_some();
        }
        mask[self.config.num_slots] = self.wait_allowed();
    }

    fn episode_metrics(&self) -> Option<&EpisodeMetrics> {
        self.metrics_ready.then_some(&self.metrics)
    }

    fn clock(&self) -> Option<f64> {
        Some(f64::from(self.now_steps()))
    }
}

// Per-task outcomes for evaluation reports (slowdown CDFs); schedulers never read them.
impl DeepRmEnv {
    /// Slowdown (finish − arrival) / length of every job that has finished this episode, in
    /// arrival order (for reports such as slowdown CDFs, never for a scheduler's decisions).
    pub fn finished_slowdowns(&self) -> impl Iterator<Item = f64> + '_ {
        stats::finished_slowdowns(&self.tasks, &self.records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::TaskList;

    /// A DeepRM config of two 10-unit resources replaying `tasks` (also the base of the
    /// schedule tests' machine).
    pub(super) fn config(
        tasks: Vec<TaskSpec>,
        num_slots: usize,
        backlog_cap: usize,
    ) -> DeepRmConfig {
        DeepRmConfig {
            resources: vec!["r0".into(), "r1".into()],
            capacity: [10, 10, 0, 0, 0, 0, 0, 0],
            horizon: 20,
            num_slots,
            backlog_cap,
            max_steps: 200,
            max_decisions: u64::MAX,
            hold_limit: None,
            slot_order: SlotOrder::Fifo,
            reward: RewardWeights::default(),
            seed: 0,
            workload: Arc::new(TaskList::new(tasks)),
            source_files: Vec::new(),
        }
    }

    fn run(env: &mut DeepRmEnv, action: usize) -> Transition {
        let mut obs = vec![0.0; env.obs_layout().dim()];
        env.step(action, &mut obs).unwrap()
    }

    #[test]
    fn reservation_and_reward_match_a_hand_computed_deeprm_episode() {
        // A: arrives at step 1, length 2, demand (6, 1). B: step 2, length 3, demand (6, 1).
        let tasks = vec![
            TaskSpec::new(0, 1.0, 2.0, &[6, 1]),
            TaskSpec::new(1, 2.0, 3.0, &[6, 1]),
        ];
        let mut env = DeepRmEnv::new(config(tasks, 10, 60));
        let wait = env.wait_action();
        let mut mask = vec![false; 11];
        env.action_mask(&mut mask);
        assert_eq!(
            mask.iter().filter(|&&m| m).count(),
            1,
            "only the void action at t=0"
        );

        let mut rewards = vec![run(&mut env, wait).reward]; // t=1, A arrives: −1/2
        assert_eq!(env.slot(0).map(|s| s.task_id), Some(0));
        assert!(env.fits_now(0));
        rewards.push(run(&mut env, 0).reward); // allocate A at offset 0: no time, reward 0
        assert_eq!(env.now_steps(), 1);
        assert_eq!(env.free_at(0), &[4, 9]);
        assert_eq!(env.free_at(2), &[10, 10]);
        rewards.push(run(&mut env, wait).reward); // t=2, B arrives: −(1/2 + 1/3)
        assert_eq!(
            env.earliest_start_offset(0),
            Some(1),
            "B must wait for A's last step"
        );
        assert!(env.fits(0) && !env.fits_now(0));
        rewards.push(run(&mut env, 0).reward); // reserve B at t=3..6
        let b = env.running().find(|r| r.task_id == 1).unwrap();
        assert_eq!((b.start_s, b.estimated_finish_s), (3.0, 6.0));
        // An empty slot is an implicit void action: time advances.
        rewards.push(run(&mut env, 5).reward); // t=3, A done: −1/3
        assert_eq!(env.now_steps(), 3);
        rewards.push(run(&mut env, wait).reward); // t=4: −1/3
        rewards.push(run(&mut env, wait).reward); // t=5: −1/3
        let last = run(&mut env, wait); // t=6: B done, all done
        assert!(last.terminated && last.reward == 0.0);

        let expected = [
            -0.5,
            0.0,
            -(0.5 + 1.0 / 3.0),
            0.0,
            -1.0 / 3.0,
            -1.0 / 3.0,
            -1.0 / 3.0,
        ];
        for (r, e) in rewards.iter().zip(expected) {
            assert!((f64::from(*r) - e).abs() < 1e-6, "{rewards:?}");
        }
        // Return = −Σ slowdown = −(2/2 + 4/3).
        let total: f64 = rewards.iter().map(|&r| f64::from(r)).sum();
        assert!((total + 1.0 + 4.0 / 3.0).abs() < 1e-6);
        let m = env.episode_metrics().unwrap();
        assert!((m.mean_slowdown - (1.0 + 4.0 / 3.0) / 2.0).abs() < 1e-9);
        assert_eq!((m.num_finished, m.num_dropped), (2, 0));
    }

    #[test]
    fn hold_limit_masks_wait_once_a_fitting_job_has_waited_that_long() {
        // A arrives at step 1 (length 2, fits now); with hold_limit 2 the policy may hold it
        // at steps 1 and 2, not at step 3.
        let tasks = vec![TaskSpec::new(0, 1.0, 2.0, &[6, 1])];
        let mut cfg = config(tasks, 2, 2);
        cfg.hold_limit = Some(2);
        let mut env = DeepRmEnv::new(cfg);
        let wait = env.wait_action();
        let mut mask = vec![false; 3];
        run(&mut env, wait); // t=1: A arrives, has waited 0
        run(&mut env, wait); // t=2: waited 1
        env.action_mask(&mut mask);
        assert_eq!(mask, [true, false, true]);
        run(&mut env, wait); // t=3: waited 2 = the limit
        env.action_mask(&mut mask);
        assert_eq!(mask, [true, false, false]);
        assert!(!env.wait_allowed());
        // Waiting now is refused and changes nothing, whether asked for by the void action
        // or by the empty slot (which would otherwise act as a wait).
        let mut obs = vec![0.0; env.obs_layout().dim()];
        for action in [wait, 1] {
            assert!(matches!(
                env.step(action, &mut obs),
                Err(EnvError::Illegal { .. })
            ));
            assert_eq!((env.now_steps(), env.census().num_queued), (3, 1));
        }
        run(&mut env, 0); // A starts at t=3
        assert!(env.wait_allowed());
        run(&mut env, wait);
        assert!(run(&mut env, wait).terminated); // t=5: A finished, slowdown (5-1)/2
        assert!((env.episode_metrics().unwrap().mean_slowdown - 2.0).abs() < 1e-12);
    }

    #[test]
    fn hold_limit_zero_is_work_conserving_but_lets_a_job_wait_for_room() {
        // A (9 units, length 3) runs; B (9 units) fits only at offset 3: waiting is legal.
        let tasks = vec![
            TaskSpec::new(0, 1.0, 3.0, &[9, 1]),
            TaskSpec::new(1, 1.0, 1.0, &[9, 1]),
        ];
        let mut cfg = config(tasks, 2, 2);
        cfg.hold_limit = Some(0);
        let mut env = DeepRmEnv::new(cfg);
        let wait = env.wait_action();
        run(&mut env, wait); // t=1: both arrive and fit now
        assert!(!env.wait_allowed());
        run(&mut env, 0); // A starts; B (slot 1) now fits only at offset 3
        assert_eq!(env.earliest_start_offset(1), Some(3));
        assert!(env.wait_allowed());
    }

    #[test]
    fn arrivals_fill_lowest_slot_then_backlog_then_drop() {
        let tasks: Vec<_> = (0..4)
            .map(|i| TaskSpec::new(i, 1.0 + i as f64, 1.0, &[9, 9]))
            .collect();
        let mut env = DeepRmEnv::new(config(tasks, 1, 1));
        let wait = env.wait_action();
        for _ in 0..3 {
            run(&mut env, wait);
        }
        // Step 1 → slot 0, step 2 → backlog, step 3 → dropped.
        assert_eq!(env.slot(0).map(|s| s.task_id), Some(0));
        assert_eq!(env.backlog_len(), 1);
        assert_eq!(env.census().num_dropped, 1);
        run(&mut env, 0); // allocate job 0; slot refilled from backlog
        assert_eq!(env.slot(0).map(|s| s.task_id), Some(1));
        assert_eq!(env.backlog_len(), 0);
        // Job 1 (9 units) does not fit beside job 0 at offset 0 but does at offset 1.
        assert_eq!(env.earliest_start_offset(0), Some(1));
    }

    #[test]
    fn a_job_as_long_as_the_horizon_never_fits_and_is_dropped() {
        let tasks = vec![TaskSpec::new(0, 1.0, 20.0, &[1, 1])];
        let mut env = DeepRmEnv::new(config(tasks, 2, 2));
        let t = run(&mut env, 2);
        assert!(t.terminated);
        assert_eq!(env.episode_metrics().unwrap().num_dropped, 1);
    }

    #[test]
    fn longest_job_fits_only_at_offsets_below_t_minus_len() {
        // Length 19 with T = 20: only s = 0 is allowed (s < T − len = 1).
        let tasks = vec![
            TaskSpec::new(0, 1.0, 1.0, &[10, 10]),
            TaskSpec::new(1, 1.0, 19.0, &[1, 1]),
        ];
        let mut env = DeepRmEnv::new(config(tasks, 2, 2));
        run(&mut env, 2);
        run(&mut env, 0); // the full-machine job takes offset 0
        assert_eq!(env.earliest_start_offset(1), None);
        let mut mask = vec![false; 3];
        env.action_mask(&mut mask);
        assert_eq!(mask, vec![false, false, true]);
    }

    #[test]
    fn generator_follows_deeprm_distribution() {
        use crate::workload::DeepRmGenerator;
        let g = DeepRmGenerator {
            arrival_prob: 0.5,
            num_steps: 20_001,
            num_resources: 2,
            max_demand: 10,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut out = Vec::new();
        g.fill(&mut rng, &mut out);
        assert!((out.len() as f64 / 20_000.0 - 0.5).abs() < 0.02);
        let small = out.iter().filter(|t| t.duration_s <= 3.0).count() as f64 / out.len() as f64;
        assert!((small - 0.8).abs() < 0.02);
        for t in &out {
            let len = t.duration_s as u32;
            assert!((1..=3).contains(&len) || (10..=15).contains(&len));
            let (hi, lo) = (t.demand[0].max(t.demand[1]), t.demand[0].min(t.demand[1]));
            assert!(
                (5..=10).contains(&hi) && (1..=2).contains(&lo),
                "{:?}",
                &t.demand[..2]
            );
            assert!(t.arrival_s >= 1.0 && t.arrival_s.fract() == 0.0);
        }
    }
}

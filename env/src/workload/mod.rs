//! Workloads: where an episode's tasks come from.
//!
//! A [`TaskSource`] fills a caller-owned `Vec<TaskSpec>` with the whole job sequence of one
//! episode, sorted by arrival time, at every reset. The env keeps that list private: it
//! reveals a task to the agent and to schedulers only once the task has arrived, so nothing
//! downstream can see future arrivals.
//!
//! Shipped sources:
//! - [`Synthetic`]: an arrival process ([`ArrivalProcess`]: Poisson, bursty two-state MMPP,
//!   diurnal) combined with a mixture of [`TaskClass`]es (demand, duration distribution,
//!   estimate noise, priority, deadline).
//! - [`DeepRmGenerator`]: the job generator of DeepRM (Mao et al., HotNets'16).
//! - [`TaskList`]: an explicit task list, built in code or read from a CSV file
//!   ([`TaskList::from_csv`]), replayed exactly at every reset.
//!
//! - `trace::Trace` (in the `trace` module, which builds on this one): replay of a production
//!   trace (SWF, Alibaba GPU v2023, Tiresias) or of a task list, whole or as seeded windows,
//!   with a load factor, a train/test split and optional perturbation.

mod arrivals;
mod classes;
pub mod csv;
mod deeprm;

use arrivals::ArrivalClock;
pub use arrivals::ArrivalProcess;
pub use classes::{DurationDist, TaskClass};
pub use csv::CsvError;
pub use deeprm::DeepRmGenerator;

use rand_chacha::ChaCha8Rng;

/// The most resources (cpu, memory, gpu, ...) a scenario may declare. Demands and capacities
/// are fixed-size arrays of this length so that tasks are `Copy` and a reset never allocates.
pub const MAX_RESOURCES: usize = 8;

/// One task of a workload, as the simulator knows it (including the truth).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TaskSpec {
    /// The user-facing id (the CSV/list id, or the generation index); used in error messages.
    pub id: u64,
    pub arrival_s: f64,
    /// True work: the runtime on a server of speed 1 (runtime on server n = work / speed_n).
    /// Hidden from the agent and schedulers.
    pub duration_s: f64,
    /// The runtime estimate that the agent and schedulers see (work at speed 1).
    pub estimate_s: f64,
    /// Integer units per resource; entries past the scenario's resource count are 0.
    pub demand: [u32; MAX_RESOURCES],
    /// Priority class, 0 = lowest.
    pub priority: u8,
    /// Absolute deadline, if any.
    pub deadline_s: Option<f64>,
    /// GPU models the task may run on, as a bit set over the scenario's GPU model list
    /// (bit `m` = model `m`); 0 = any server. Set by trace loaders (Alibaba's `gpu_spec`).
    pub gpu_models: u32,
    /// How far the estimate may be off, as the workload model says: estimate = duration ×
    /// (1 + U[−noise, noise]) (synthetic classes' `estimate_noise`). Part of the model that
    /// schedulers may know, like the class mixture; 0 where estimates are exact or their
    /// error model is unknown (lists, CSVs, traces).
    pub estimate_noise: f32,
}

impl TaskSpec {
    /// A task with no estimate error, priority 0 and no deadline.
    pub fn new(id: u64, arrival_s: f64, duration_s: f64, demand: &[u32]) -> Self {
        let mut padded = [0; MAX_RESOURCES];
        padded[..demand.len()].copy_from_slice(demand);
        Self {
            id,
            arrival_s,
            duration_s,
            estimate_s: duration_s,
            demand: padded,
            priority: 0,
            deadline_s: None,
            gpu_models: 0,
            estimate_noise: 0.0,
        }
    }
}

/// Produces the job sequence of one episode.
///
/// `fill` must clear `out` and push every task of the episode sorted by `arrival_s`, using only
/// `rng` for randomness (so a reset seed reproduces the episode). It should not allocate once
/// `out` has grown to its steady size, because vector envs reset inside `step`.
pub trait TaskSource: Send + Sync + std::fmt::Debug {
    fn fill(&self, rng: &mut ChaCha8Rng, out: &mut Vec<TaskSpec>);

    /// `fill` for the episode reset with `seed` (`None`: a reset that continues `rng`, as
    /// vector envs' automatic resets do), saying where the episode starts. The cluster env
    /// calls this; sources whose episodes depend on the seed only through `rng` and start at
    /// 0 keep the default.
    fn fill_episode(
        &self,
        seed: Option<u64>,
        rng: &mut ChaCha8Rng,
        out: &mut Vec<TaskSpec>,
    ) -> EpisodeStart {
        let _ = seed;
        self.fill(rng, out);
        EpisodeStart::default()
    }

    /// How this source's episodes differ from one another; generated sources vary with the
    /// seed (the default).
    fn variety(&self) -> EpisodeVariety {
        EpisodeVariety::Generated
    }

    /// The rest of an episode, consistent with what has arrived: fills `out` with the tasks
    /// after the first `arrived.len()`, whose arrival times (from the episode's start) are
    /// `arrived`, drawn with `rng` from the model's law given those arrivals and none since,
    /// up to `now_s`. Returns false for sources that cannot condition on them (the default);
    /// [`redraw_future`] then counts a fresh episode's gaps from the present.
    fn continue_episode(
        &self,
        arrived: &[f64],
        now_s: f64,
        rng: &mut ChaCha8Rng,
        out: &mut Vec<TaskSpec>,
    ) -> bool {
        let _ = (arrived, now_s, rng, out);
        false
    }
}

/// Replaces the tasks of `tasks` that have not arrived yet (those from `first` on) with a
/// draw from the workload's own model, seeded by `seed`: the source's own continuation of the
/// episode where it has one ([`TaskSource::continue_episode`]: synthetic workloads, whose
/// MMPP state is drawn from its posterior given the arrivals so far); otherwise the tasks
/// from position `first` on of a fresh episode of `source`, keeping their gaps to the fresh
/// episode's task `first - 1`, counted from `now_s`. Nothing has arrived since the last real
/// arrival, so the next gap is the time still to wait from now, which for a
/// memoryless arrival process (Poisson, the phases of an MMPP, DeepRM's Bernoulli slots) has
/// the law of a whole fresh gap. Counting from the last arrival instead would put every fresh
/// gap shorter than the silence since then at `now_s`: a burst in every world, which made
/// waiting look good to a planner. A scheduler may do this: it knows the scenario's workload
/// model and what has arrived, not what will. Deadlines move with their tasks. The result can
/// be shorter than `tasks` when the fresh episode has fewer tasks.
pub fn redraw_future(
    source: &dyn TaskSource,
    seed: u64,
    tasks: &mut Vec<TaskSpec>,
    first: usize,
    now_s: f64,
) {
    let mut rng = <ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seed);
    let mut fresh = Vec::with_capacity(tasks.len());
    tasks.truncate(first);
    let arrived: Vec<f64> = tasks.iter().map(|t| t.arrival_s).collect();
    if source.continue_episode(&arrived, now_s, &mut rng, &mut fresh) {
        tasks.extend(fresh);
        return;
    }
    source.fill_episode(Some(seed), &mut rng, &mut fresh);
    let Some(origin) = first.checked_sub(1).map_or(fresh.first(), |k| fresh.get(k)) else {
        return;
    };
    let origin_s = if first == 0 { 0.0 } else { origin.arrival_s };
    for task in fresh.iter().skip(first) {
        let arrival_s = now_s + task.arrival_s - origin_s;
        let shift_s = arrival_s - task.arrival_s;
        tasks.push(TaskSpec {
            arrival_s,
            deadline_s: task.deadline_s.map(|d| d + shift_s),
            ..*task
        });
    }
}

/// Where an episode starts, as its [`TaskSource`] tells the env at reset.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EpisodeStart {
    /// The clock at reset (s): 0, or the first arrival of a window replayed at its trace's
    /// own times, so that an episode's utilisation and energy do not count the time before.
    pub clock_s: f64,
    /// The index (in the trace's arrival order) of the replayed window's first task; `None`
    /// for generated workloads and replays of a whole trace or part.
    pub window_start: Option<usize>,
}

/// How the episodes of a workload relate to each other, so that a tool can warn when test
/// episodes are not held out from training ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpisodeVariety {
    /// Drawn from the episode seed (synthetic generators, a whole trace replayed with
    /// perturbation).
    Generated,
    /// Every episode replays the same `num_tasks` tasks, whatever the seed.
    Identical { num_tasks: usize },
    /// Seeded windows of a replayed trace (perturbed or not), or the whole of one part of a
    /// train/test split replayed with perturbation: from that `part`, or from the whole trace
    /// (`None`).
    Windows { part: Option<Part> },
}

/// The two parts of a replayed workload's train/test split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Train,
    Test,
}

impl Part {
    pub fn name(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Test => "test",
        }
    }
}

/// A synthetic workload: `num_tasks` tasks whose arrival times follow `arrivals` and whose
/// shapes are drawn from the `classes` mixture.
#[derive(Clone, Debug)]
pub struct Synthetic {
    pub num_tasks: usize,
    pub arrivals: ArrivalProcess,
    pub classes: Vec<TaskClass>,
    /// Cumulative class weights normalised to end at 1, for sampling without allocation.
    cumulative_weights: Vec<f64>,
}

impl Synthetic {
    /// `classes` must be non-empty with non-negative weights summing to more than 0
    /// (the scenario loader validates this and names the offending key).
    pub fn new(num_tasks: usize, arrivals: ArrivalProcess, classes: Vec<TaskClass>) -> Self {
        let total: f64 = classes.iter().map(|c| c.weight).sum();
        let mut running = 0.0;
        let cumulative_weights = classes
            .iter()
            .map(|c| {
                running += c.weight / total;
                running
            })
            .collect();
        Self {
            num_tasks,
            arrivals,
            classes,
            cumulative_weights,
        }
    }

    fn pick_class(&self, u: f64) -> &TaskClass {
        let index = self.cumulative_weights.partition_point(|&c| c <= u);
        &self.classes[index.min(self.classes.len() - 1)]
    }

    /// Expected work-weighted demand per unit time of one task, per resource:
    /// E[demand_r × duration]. Offered load = rate × this / Σ_servers capacity_r × speed.
    pub fn mean_demand_times_duration(classes: &[TaskClass]) -> [f64; MAX_RESOURCES] {
        let total: f64 = classes.iter().map(|c| c.weight).sum();
        let mut out = [0.0; MAX_RESOURCES];
        for class in classes {
            let mean_duration_s = class.duration_s.mean_s();
            for (o, &d) in out.iter_mut().zip(&class.demand) {
                *o += class.weight / total * f64::from(d) * mean_duration_s;
            }
        }
        out
    }

    /// Clears `out` and pushes the tasks from `first_id` on, arriving from `clock`.
    fn fill_from(
        &self,
        mut clock: ArrivalClock,
        first_id: usize,
        rng: &mut ChaCha8Rng,
        out: &mut Vec<TaskSpec>,
    ) {
        use rand::Rng;
        out.clear();
        for id in first_id..self.num_tasks {
            let arrival_s = self.arrivals.next_arrival_s(&mut clock, rng);
            let class = self.pick_class(rng.random::<f64>());
            out.push(class.sample(id as u64, arrival_s, rng));
        }
    }
}

impl TaskSource for Synthetic {
    fn fill(&self, rng: &mut ChaCha8Rng, out: &mut Vec<TaskSpec>) {
        let clock = self.arrivals.start(rng);
        self.fill_from(clock, 0, rng, out);
    }

    fn continue_episode(
        &self,
        arrived: &[f64],
        now_s: f64,
        rng: &mut ChaCha8Rng,
        out: &mut Vec<TaskSpec>,
    ) -> bool {
        let clock = self.arrivals.resume(arrived, now_s, rng);
        self.fill_from(clock, arrived.len(), rng, out);
        true
    }
}

/// An explicit task list replayed exactly at every reset (the seed does not matter).
#[derive(Clone, Debug, Default)]
pub struct TaskList {
    tasks: Vec<TaskSpec>,
}

impl TaskList {
    /// Sorts `tasks` by arrival time (stable, so equal arrivals keep their order).
    pub fn new(mut tasks: Vec<TaskSpec>) -> Self {
        tasks.sort_by(|a, b| a.arrival_s.total_cmp(&b.arrival_s));
        Self { tasks }
    }

    pub fn tasks(&self) -> &[TaskSpec] {
        &self.tasks
    }

    /// Reads a CSV task list; see [`csv`] for the format.
    pub fn from_csv(path: &std::path::Path, resources: &[String]) -> Result<Self, CsvError> {
        csv::read_task_csv(path, resources).map(Self::new)
    }
}

impl TaskSource for TaskList {
    fn fill(&self, _rng: &mut ChaCha8Rng, out: &mut Vec<TaskSpec>) {
        out.clear();
        out.extend_from_slice(&self.tasks);
    }

    fn variety(&self) -> EpisodeVariety {
        EpisodeVariety::Identical {
            num_tasks: self.tasks.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redraw_future_keeps_the_fresh_gaps_counted_from_now_by_hand() {
        // The model's episode arrives at 0, 5, 7 and 20 (deadline 30 on the third). Two real
        // tasks have arrived, the last at 3; it is 4 now. The fresh tasks 3 and 4 keep their
        // gaps to the fresh task 2 (2 s and 15 s) from now: at 6 and 19, the deadline 1 s
        // earlier. At 6 instead, they arrive at 8 and 21: nothing lands on the present.
        let mut model: Vec<TaskSpec> = [0.0, 5.0, 7.0, 20.0]
            .iter()
            .enumerate()
            .map(|(k, &a)| TaskSpec::new(10 + k as u64, a, 1.0, &[1]))
            .collect();
        model[2].deadline_s = Some(30.0);
        let source = TaskList::new(model);
        let real: Vec<TaskSpec> = [0.0, 3.0, 50.0, 60.0, 70.0]
            .iter()
            .enumerate()
            .map(|(k, &a)| TaskSpec::new(k as u64, a, 2.0, &[1]))
            .collect();

        let mut tasks = real.clone();
        redraw_future(&source, 1, &mut tasks, 2, 4.0);
        let arrivals: Vec<f64> = tasks.iter().map(|t| t.arrival_s).collect();
        assert_eq!(arrivals, [0.0, 3.0, 6.0, 19.0]);
        assert_eq!(&tasks[..2], &real[..2]);
        assert_eq!((tasks[2].id, tasks[2].deadline_s), (12, Some(29.0)));
        assert_eq!((tasks[3].id, tasks[3].deadline_s), (13, None));

        let mut tasks = real.clone();
        redraw_future(&source, 1, &mut tasks, 2, 6.0);
        let arrivals: Vec<f64> = tasks.iter().map(|t| t.arrival_s).collect();
        assert_eq!(arrivals, [0.0, 3.0, 8.0, 21.0]);

        // Nothing left to arrive in the model: the real list ends where the past does.
        let mut tasks = real.clone();
        redraw_future(&source, 1, &mut tasks, 4, 61.0);
        assert_eq!(&tasks[..], &real[..4]);
    }
}

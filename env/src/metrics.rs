//! Per-episode scheduling metrics, reported in the final info of an episode.

use serde::{Deserialize, Serialize};

/// Lower bound on the runtime in the bounded-slowdown denominator (seconds, or steps).
pub const BOUNDED_SLOWDOWN_MIN_RUN_S: f64 = 10.0;

/// One task's bounded slowdown: max(1, completion / max(run, 10)), completion = wait + run
/// (Feitelson et al.'s definition, as RLScheduler reports it).
pub fn bounded_slowdown(completion_s: f64, run_s: f64) -> f64 {
    (completion_s / run_s.max(BOUNDED_SLOWDOWN_MIN_RUN_S)).max(1.0)
}

/// Metrics of one finished (terminated or truncated) scheduling episode. Times are in the
/// scenario's time unit (seconds for real clusters, steps for DeepRM). Slowdown-like metrics
/// are over tasks that finished; `num_unfinished` counts tasks still queued or running when
/// the episode was truncated, `num_dropped` those refused by the backlog cap or dropped.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpisodeMetrics {
    pub num_tasks: usize,
    pub num_finished: usize,
    pub num_dropped: usize,
    pub num_unfinished: usize,
    /// Mean of (finish − arrival) / duration over finished tasks only: a policy that leaves
    /// work unfinished or drops it looks better than it is. Prefer `completion_slowdown`.
    pub mean_slowdown: f64,
    /// Completion-aware mean slowdown over **every task that arrived**: finished tasks count
    /// their slowdown; a task running at the episode's end counts as if it finished then
    /// (`max(1, (end − arrival) / duration)`); a task still queued at the end, or dropped,
    /// counts as if it started at the end and ran its whole duration
    /// (`(end − arrival + duration) / duration`). Lower is better.
    #[serde(default)]
    pub completion_slowdown: f64,
    pub p50_slowdown: f64,
    pub p95_slowdown: f64,
    /// Mean of max(1, (wait + run) / max(run, 10 s)).
    pub mean_bounded_slowdown: f64,
    pub mean_wait: f64,
    /// Mean of finish − arrival.
    pub mean_completion_time: f64,
    /// Time from the first arrival to the last finish.
    pub makespan: f64,
    /// Used / available capacity integrated over the makespan, one entry per resource.
    pub utilization: Vec<f64>,
    /// Fraction of tasks with a deadline that finished after it (or never finished).
    pub deadline_miss_rate: f64,
    /// Energy in kWh (0 while no power model is configured).
    pub energy_kwh: f64,
    /// Server failures during the episode.
    #[serde(default)]
    pub num_failures: usize,
    /// Task runs killed by failures (a requeued task killed twice counts twice).
    #[serde(default)]
    pub num_killed: usize,
    /// Work lost to failures and preemptions: Σ over killed and preempted runs of the work
    /// done since their last checkpoint (time run × server speed, s of work; all of a run's
    /// work without `[preemption] checkpoint_s`).
    #[serde(default)]
    pub lost_work_s: f64,
    /// Runs stopped by a preemption (`[preemption]`; left out of the JSON when 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_preempted: usize,
    /// Running tasks moved to another server (`[preemption]`; left out of the JSON when 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_migrated: usize,
    /// The index (in the trace's arrival order) of the first task of the replayed window;
    /// `None` for generated workloads and whole-trace replays (left out of the JSON then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_start: Option<usize>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

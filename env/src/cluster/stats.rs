//! Episode metrics from per-task records, shared by the cluster and DeepRM envs.

use super::state::{TaskPhase, TaskRecord};
use crate::metrics::{EpisodeMetrics, bounded_slowdown};
use crate::workload::TaskSpec;

/// Everything the metrics need besides the task records.
pub(crate) struct EpisodeTotals<'a> {
    pub num_arrived: usize,
    pub end_s: f64,
    /// ∫ used capacity dt per resource.
    pub used_integral: &'a [f64],
    /// Σ capacity over servers per resource.
    pub capacity_total: &'a [f64],
}

/// Fills `out` from the first `totals.num_arrived` tasks. `scratch` is reused for the
/// percentiles so that a finished episode does not allocate once warmed up.
pub(crate) fn fill_metrics(
    tasks: &[TaskSpec],
    records: &[TaskRecord],
    totals: &EpisodeTotals<'_>,
    scratch: &mut Vec<f64>,
    out: &mut EpisodeMetrics,
) {
    let arrived = &records[..totals.num_arrived];
    let specs = &tasks[..totals.num_arrived];
    scratch.clear();
    let (mut sum_bounded, mut sum_completion) = (0.0, 0.0);
    let (mut sum_wait, mut num_started) = (0.0, 0usize);
    let (mut num_with_deadline, mut num_missed) = (0usize, 0usize);
    let (mut num_dropped, mut num_unfinished) = (0usize, 0usize);
    let mut last_finish_s = f64::NEG_INFINITY;
    let mut sum_charged = 0.0;
    for (spec, rec) in specs.iter().zip(arrived) {
        sum_charged += charged_slowdown(spec, rec, totals.end_s);
        if rec.phase == TaskPhase::Running || rec.phase == TaskPhase::Finished {
            sum_wait += rec.start_s - spec.arrival_s;
            num_started += 1;
        }
        match rec.phase {
            TaskPhase::Finished => {
                let completion_s = rec.finish_s - spec.arrival_s;
                let run_s = rec.finish_s - rec.start_s;
                scratch.push(completion_s / spec.duration_s);
                sum_bounded += bounded_slowdown(completion_s, run_s);
                sum_completion += completion_s;
                last_finish_s = last_finish_s.max(rec.finish_s);
            }
            TaskPhase::Dropped => num_dropped += 1,
            _ => num_unfinished += 1,
        }
        if let Some(deadline_s) = spec.deadline_s {
            num_with_deadline += 1;
            if rec.phase != TaskPhase::Finished || rec.finish_s > deadline_s {
                num_missed += 1;
            }
        }
    }
    let num_finished = scratch.len();
    let mean = |sum: f64, n: usize| if n == 0 { 0.0 } else { sum / n as f64 };
    scratch.sort_by(f64::total_cmp);
    let first_arrival_s = specs.first().map_or(0.0, |s| s.arrival_s);
    let span_s = (totals.end_s - first_arrival_s).max(0.0);

    out.num_tasks = totals.num_arrived;
    out.num_finished = num_finished;
    out.num_dropped = num_dropped;
    out.num_unfinished = num_unfinished;
    out.mean_slowdown = mean(scratch.iter().sum(), num_finished);
    out.completion_slowdown = mean(sum_charged, totals.num_arrived);
    out.p50_slowdown = percentile(scratch, 0.50);
    out.p95_slowdown = percentile(scratch, 0.95);
    out.mean_bounded_slowdown = mean(sum_bounded, num_finished);
    out.mean_wait = mean(sum_wait, num_started);
    out.mean_completion_time = mean(sum_completion, num_finished);
    out.makespan = if num_finished == 0 {
        0.0
    } else {
        last_finish_s - first_arrival_s
    };
    out.utilization.clear();
    out.utilization
        .extend(
            totals
                .used_integral
                .iter()
                .zip(totals.capacity_total)
                .map(|(&used, &cap)| {
                    if cap > 0.0 && span_s > 0.0 {
                        used / (cap * span_s)
                    } else {
                        0.0
                    }
                }),
        );
    out.deadline_miss_rate = mean(num_missed as f64, num_with_deadline);
    out.energy_kwh = 0.0;
}

/// The slowdown a task is charged by the completion-aware mean ([`EpisodeMetrics::
/// completion_slowdown`]): its slowdown if it finished; as if it finished at the episode's end
/// `end_s` if it was running then (at least 1); as if it started at the end and ran its whole
/// duration if it was still queued or was dropped. So leaving work unfinished or dropping it
/// is never free, and a dropped task costs at least what a queued one does.
fn charged_slowdown(spec: &TaskSpec, rec: &TaskRecord, end_s: f64) -> f64 {
    let waited_s = (end_s - spec.arrival_s).max(0.0);
    match rec.phase {
        TaskPhase::Finished => (rec.finish_s - spec.arrival_s) / spec.duration_s,
        TaskPhase::Running => (waited_s / spec.duration_s).max(1.0),
        TaskPhase::Queued | TaskPhase::Dropped | TaskPhase::NotArrived => {
            (waited_s + spec.duration_s) / spec.duration_s
        }
    }
}

/// Nearest-rank percentile of sorted `xs` (0 when empty).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Slowdown (finish − arrival) / work of every finished task, in arrival order. It uses true
/// durations, so it is for reports (slowdown CDFs), never for a scheduler's decisions.
pub(crate) fn finished_slowdowns<'a>(
    tasks: &'a [TaskSpec],
    records: &'a [TaskRecord],
) -> impl Iterator<Item = f64> + 'a {
    tasks
        .iter()
        .zip(records)
        .filter(|(_, rec)| rec.phase == TaskPhase::Finished)
        .map(|(spec, rec)| (rec.finish_s - spec.arrival_s) / spec.duration_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let xs: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&xs, 0.5), 10.0);
        assert_eq!(percentile(&xs, 0.95), 19.0);
        assert_eq!(percentile(&[3.0], 0.95), 3.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    fn record(phase: TaskPhase, start_s: f64, finish_s: f64) -> TaskRecord {
        TaskRecord {
            phase,
            start_s,
            finish_s,
            ..TaskRecord::NEW
        }
    }

    fn metrics_of(tasks: &[TaskSpec], records: &[TaskRecord], end_s: f64) -> EpisodeMetrics {
        let mut out = EpisodeMetrics::default();
        let totals = EpisodeTotals {
            num_arrived: tasks.len(),
            end_s,
            used_integral: &[0.0],
            capacity_total: &[1.0],
        };
        fill_metrics(tasks, records, &totals, &mut Vec::new(), &mut out);
        out
    }

    /// Episode ends at 6. A finished (slowdown 4/4 = 1); B runs since 5 (as if finished at 6:
    /// (6 − 1)/2 = 2.5); C is queued ((6 − 2 + 4)/4 = 2); D was dropped ((6 − 3 + 1)/1 = 4).
    /// Completion-aware mean (1 + 2.5 + 2 + 4)/4 = 2.375; the finished-only mean is 1.
    #[test]
    fn completion_slowdown_charges_unfinished_and_dropped_tasks() {
        let tasks = [
            TaskSpec::new(1, 0.0, 4.0, &[1]),
            TaskSpec::new(2, 1.0, 2.0, &[1]),
            TaskSpec::new(3, 2.0, 4.0, &[1]),
            TaskSpec::new(4, 3.0, 1.0, &[1]),
        ];
        let records = [
            record(TaskPhase::Finished, 0.0, 4.0),
            record(TaskPhase::Running, 5.0, f64::NAN),
            record(TaskPhase::Queued, f64::NAN, f64::NAN),
            record(TaskPhase::Dropped, f64::NAN, f64::NAN),
        ];
        let m = metrics_of(&tasks, &records, 6.0);
        assert_eq!(m.mean_slowdown, 1.0);
        assert_eq!(m.completion_slowdown, 2.375);
        assert_eq!((m.num_finished, m.num_unfinished, m.num_dropped), (1, 2, 1));
    }

    /// Two policies with the same finished-task slowdown (1): the one that leaves task B
    /// queued scores worse on the completion-aware mean than the one that finishes it.
    #[test]
    fn leaving_work_unfinished_is_never_free() {
        let tasks = [
            TaskSpec::new(1, 0.0, 2.0, &[1]),
            TaskSpec::new(2, 1.0, 2.0, &[1]),
        ];
        let finishes_both = [
            record(TaskPhase::Finished, 0.0, 2.0),
            record(TaskPhase::Finished, 1.0, 3.0),
        ];
        let leaves_one = [
            record(TaskPhase::Finished, 0.0, 2.0),
            record(TaskPhase::Queued, f64::NAN, f64::NAN),
        ];
        let done = metrics_of(&tasks, &finishes_both, 3.0);
        let lazy = metrics_of(&tasks, &leaves_one, 3.0);
        assert_eq!((done.mean_slowdown, lazy.mean_slowdown), (1.0, 1.0));
        assert_eq!(done.completion_slowdown, 1.0);
        // B: (3 − 1 + 2)/2 = 2 → (1 + 2)/2 = 1.5.
        assert_eq!(lazy.completion_slowdown, 1.5);
    }
}

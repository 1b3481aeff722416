//! Ranking a real queue with a lepton policy.
//!
//! A [`QueuedJob`] is what lepton's HPC scenarios show a whole-queue priority policy about a
//! waiting job (`lepton_env::schedulers::WaitingTask`): its arrival, its runtime *estimate*
//! (Slurm's time limit) and its size (CPUs requested). [`Ranker`] orders the queue with one of
//! lepton's priority functions (`fcfs`, `sjf`, `wfp3`, `unicep`, `f1`: the same
//! [`Priority::key`] the simulator's `PRIORITY+DISCIPLINE` heuristics use, lowest key first,
//! ties to the earlier arrival, then the lower id). The discipline (strict order, backfilling)
//! is the real scheduler's own: Slurm's `SchedulerType`.

use lepton_env::schedulers::Priority;

/// A waiting job as a priority policy sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QueuedJob {
    /// The scheduler's job id.
    pub id: u64,
    /// Submission time (any fixed origin; F1 reads it as absolute time, as in RLScheduler).
    pub arrival_s: f64,
    /// Runtime estimate: Slurm's time limit (infinite for an unlimited job).
    pub estimate_s: f64,
    /// Processors requested.
    pub procs: u32,
}

/// A name that is not a whole-queue priority policy.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "unknown policy `{0}`: lepton-serve ranks a queue with one of fcfs, sjf, wfp3, unicep, f1 (the backfilling discipline is the scheduler's own, e.g. Slurm's SchedulerType)"
)]
pub struct UnknownPolicy(pub String);

/// A policy that orders a queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ranker {
    priority: Priority,
}

impl Ranker {
    /// A priority function by its lepton name.
    pub fn by_name(name: &str) -> Result<Self, UnknownPolicy> {
        Priority::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|&(priority, _)| Self { priority })
            .ok_or_else(|| UnknownPolicy(name.to_owned()))
    }

    pub fn name(&self) -> &'static str {
        self.priority.name()
    }

    /// The jobs' ids, first to start first. Deterministic: NaN keys go last, ties go to the
    /// earlier arrival, then the lower id.
    pub fn rank(&self, jobs: &[QueuedJob], now_s: f64) -> Vec<u64> {
        let mut keyed: Vec<(f64, &QueuedJob)> = jobs
            .iter()
            .map(|j| {
                let size = f64::from(j.procs.max(1));
                (self.priority.key(j.arrival_s, j.estimate_s, size, now_s), j)
            })
            .collect();
        keyed.sort_by(|(ka, a), (kb, b)| {
            ka.is_nan()
                .cmp(&kb.is_nan())
                .then(ka.total_cmp(kb))
                .then(a.arrival_s.total_cmp(&b.arrival_s))
                .then(a.id.cmp(&b.id))
        });
        keyed.into_iter().map(|(_, j)| j.id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: u64, arrival_s: f64, estimate_s: f64, procs: u32) -> QueuedJob {
        QueuedJob {
            id,
            arrival_s,
            estimate_s,
            procs,
        }
    }

    #[test]
    fn sjf_orders_by_estimate_then_arrival() {
        let jobs = [
            job(1, 0.0, 300.0, 4),
            job(2, 1.0, 60.0, 1),
            job(3, 2.0, 300.0, 2),
            job(4, 3.0, f64::INFINITY, 1),
        ];
        let sjf = Ranker::by_name("sjf").unwrap();
        assert_eq!(sjf.rank(&jobs, 10.0), vec![2, 1, 3, 4]);
        let fcfs = Ranker::by_name("fcfs").unwrap();
        assert_eq!(fcfs.rank(&jobs, 10.0), vec![1, 2, 3, 4]);
    }

    #[test]
    fn wfp3_favours_long_waits_relative_to_estimate() {
        // At t = 100: job 1 waited 100 s on a 100 s estimate (key −1·1), job 2 waited 50 s
        // on a 10 s estimate with 2 processors (key −125·2).
        let jobs = [job(1, 0.0, 100.0, 1), job(2, 50.0, 10.0, 2)];
        let wfp3 = Ranker::by_name("wfp3").unwrap();
        assert_eq!(wfp3.rank(&jobs, 100.0), vec![2, 1]);
    }

    #[test]
    fn placement_heuristics_are_refused_with_the_list() {
        let err = Ranker::by_name("tetris").unwrap_err().to_string();
        assert!(
            err.contains("`tetris`") && err.contains("fcfs, sjf"),
            "{err}"
        );
        assert!(Ranker::by_name("sjf+easy").is_err());
    }
}

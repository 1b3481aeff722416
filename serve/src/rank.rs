//! Ranking a real queue with a lepton policy.
//!
//! A [`QueueState`] is what lepton-serve reads of a real scheduler: the waiting jobs with what
//! lepton's HPC scenarios show a policy about each (`lepton_env::schedulers::WaitingTask`: its
//! arrival, its runtime *estimate* (Slurm's time limit) and its size (CPUs requested)), and
//! the running jobs with their starts. A [`Ranker`] orders the waiting jobs:
//!
//! - one of lepton's priority functions (`fcfs`, `sjf`, `wfp3`, `unicep`, `f1`: the same
//!   [`Priority::key`] the simulator's `PRIORITY+DISCIPLINE` heuristics use, lowest key first,
//!   ties to the earlier arrival, then the lower id), which reads only the waiting jobs;
//! - or a trained checkpoint ([`LearnedRanker`]), which reads the whole state through its
//!   scenario's observation.
//!
//! The discipline (strict order, backfilling) is the real scheduler's own: Slurm's
//! `SchedulerType`.

use crate::learned::LearnedRanker;
use lepton_env::cluster::LiveError;
use lepton_env::schedulers::Priority;

/// A waiting job as a policy sees it.
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

/// A running job: a waiting job that started at `start_s`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunningJob {
    pub job: QueuedJob,
    pub start_s: f64,
}

/// What a policy ranks: the waiting jobs at `now_s`, and the running ones (same clock).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueState {
    pub now_s: f64,
    pub waiting: Vec<QueuedJob>,
    pub running: Vec<RunningJob>,
}

/// A name that is not a whole-queue priority policy.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "unknown policy `{0}`: lepton-serve ranks a queue with one of fcfs, sjf, wfp3, unicep, f1 or a trained checkpoint (--checkpoint); the backfilling discipline is the scheduler's own, e.g. Slurm's SchedulerType"
)]
pub struct UnknownPolicy(pub String);

/// A policy that orders a queue.
#[derive(Debug)]
pub enum Ranker {
    Priority(Priority),
    Learned(Box<LearnedRanker>),
}

impl Ranker {
    /// A priority function by its lepton name.
    pub fn by_name(name: &str) -> Result<Self, UnknownPolicy> {
        Priority::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|&(priority, _)| Self::Priority(priority))
            .ok_or_else(|| UnknownPolicy(name.to_owned()))
    }

    pub fn name(&self) -> &str {
        match self {
            Self::Priority(p) => p.name(),
            Self::Learned(l) => l.name(),
        }
    }

    /// The waiting jobs' ids, first to start first. Deterministic. A learned ranker fails
    /// when the state does not fit its scenario.
    pub fn rank(&mut self, queue: &QueueState) -> Result<Vec<u64>, LiveError> {
        match self {
            Self::Priority(p) => Ok(rank_by_priority(*p, &queue.waiting, queue.now_s)),
            Self::Learned(l) => l.rank(queue),
        }
    }
}

/// Lowest key first; NaN keys go last, ties go to the earlier arrival, then the lower id.
pub fn rank_by_priority(priority: Priority, jobs: &[QueuedJob], now_s: f64) -> Vec<u64> {
    let mut keyed: Vec<(f64, &QueuedJob)> = jobs
        .iter()
        .map(|j| {
            let size = f64::from(j.procs.max(1));
            (priority.key(j.arrival_s, j.estimate_s, size, now_s), j)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rank(ranker: Result<Ranker, UnknownPolicy>, jobs: &[QueuedJob], now_s: f64) -> Vec<u64> {
        let queue = QueueState {
            now_s,
            waiting: jobs.to_vec(),
            running: Vec::new(),
        };
        ranker.unwrap().rank(&queue).unwrap()
    }

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
        assert_eq!(rank(Ranker::by_name("sjf"), &jobs, 10.0), vec![2, 1, 3, 4]);
        assert_eq!(rank(Ranker::by_name("fcfs"), &jobs, 10.0), vec![1, 2, 3, 4]);
    }

    #[test]
    fn wfp3_favours_long_waits_relative_to_estimate() {
        // At t = 100: job 1 waited 100 s on a 100 s estimate (key −1·1), job 2 waited 50 s
        // on a 10 s estimate with 2 processors (key −125·2).
        let jobs = [job(1, 0.0, 100.0, 1), job(2, 50.0, 10.0, 2)];
        assert_eq!(rank(Ranker::by_name("wfp3"), &jobs, 100.0), vec![2, 1]);
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

//! The loop that puts a lepton policy in front of Slurm.
//!
//! Every pass: read the queue (`squeue --json`), keep the pending jobs that are not held (and
//! in the chosen partition), rank them with the policy, and give the k-th job of the ranking
//! the priority [`TOP_PRIORITY`]` − k` with `scontrol update` (only where it differs from what
//! Slurm already has). Slurm's scheduler then starts jobs in that order under its own
//! discipline (`sched/builtin`: strictly; `sched/backfill`: later jobs may backfill).
//!
//! What it never does: cancel, requeue, hold or release a job, or touch a held job (setting a
//! held job's priority would release it). If a pass fails (Slurm unreachable, malformed
//! output), it logs one line and changes nothing: jobs keep the priorities they have.
//!
//! Priorities set with `scontrol` are fixed (Slurm stops recomputing them) and stay after
//! lepton-serve stops. They sit above every priority `priority/basic` gives a new job
//! (0xFFFF0000 and below) and any usual multifactor value, so a job submitted between two
//! passes waits for the next pass instead of jumping the ranking.

use super::cli::{Slurm, SlurmError, SlurmJob};
use crate::rank::{QueueState, QueuedJob, Ranker, RunningJob};
use lepton_env::cluster::LiveError;
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The priority of the first job of a ranking.
pub const TOP_PRIORITY: u64 = 4_294_967_000;
/// Jobs ranked per pass at most (the rest keep Slurm's priorities, all lower): keeps every
/// ranked priority above `priority/basic`'s range.
pub const MAX_RANKED: usize = 60_000;

/// How the loop runs.
#[derive(Debug)]
pub struct DriverOptions {
    pub ranker: Ranker,
    /// Only jobs of this partition (a job listing several partitions matches any of them).
    pub partition: Option<String>,
    /// Time between passes.
    pub interval: Duration,
    /// Print the updates instead of applying them.
    pub dry_run: bool,
}

/// The Slurm configuration cannot obey a ranking.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "Slurm runs SchedulerType=sched/builtin with PriorityType=priority/basic, which starts jobs in submission order and ignores priorities set by scontrol (measured on Slurm 22.05); use PriorityType=priority/multifactor or SchedulerType=sched/backfill"
    )]
    BuiltinIgnoresPriorities,
    #[error(transparent)]
    Slurm(#[from] SlurmError),
}

/// One priority change of a pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Update {
    pub job_id: u64,
    pub from: u64,
    pub to: u64,
    /// 1-based position in the ranking.
    pub rank: usize,
}

/// What a pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    /// The ranked job ids, first first.
    pub ranking: Vec<u64>,
    /// The changes it made (or, dry, would make).
    pub updates: Vec<Update>,
    /// Updates Slurm refused (typically: the job started in between).
    pub refused: usize,
}

/// What a policy ranks at `now_s`: the pending jobs that are not held, and the running jobs
/// (in `partition` if given; a job listing several partitions matches any of them).
pub fn observe(jobs: &[SlurmJob], partition: Option<&str>, now_s: f64) -> QueueState {
    let in_partition =
        |j: &&SlurmJob| partition.is_none_or(|p| j.partition.split(',').any(|q| q == p));
    let queued = |j: &SlurmJob| QueuedJob {
        id: j.job_id,
        arrival_s: j.submit_time as f64,
        estimate_s: j.time_limit_min.map_or(f64::INFINITY, |m| m as f64 * 60.0),
        procs: j.cpus,
    };
    QueueState {
        now_s,
        waiting: jobs
            .iter()
            .filter(|j| j.is_pending() && !j.is_held())
            .filter(in_partition)
            .map(queued)
            .collect(),
        running: jobs
            .iter()
            .filter(|j| j.state == "RUNNING" && j.start_time > 0)
            .filter(in_partition)
            .map(|j| RunningJob {
                job: queued(j),
                start_s: j.start_time as f64,
            })
            .collect(),
    }
}

/// Why a pass changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error(transparent)]
    Slurm(#[from] SlurmError),
    #[error("the policy cannot rank this queue: {0}")]
    Policy(#[from] LiveError),
}

/// The highest priority `priority/basic` gives a job; ranked jobs stay above it.
pub const BASIC_MAX: u64 = 0xFFFF_0000;

/// The priority changes that make Slurm's order the ranking's (a pure function of the
/// ranking and the jobs' current priorities). None when the ranked jobs' priorities already
/// decrease strictly along the ranking and stay above [`BASIC_MAX`] (a job leaving the queue
/// does not renumber the rest); otherwise job k of the ranking gets `TOP_PRIORITY − k`.
pub fn plan(ranking: &[u64], jobs: &[SlurmJob]) -> Vec<Update> {
    // One lookup table, not a scan of the queue per ranked job (queues of 10⁴–10⁵ jobs).
    let priority: HashMap<u64, u64> = jobs.iter().map(|j| (j.job_id, j.priority)).collect();
    let current: Vec<(u64, u64)> = ranking
        .iter()
        .take(MAX_RANKED)
        .filter_map(|&id| Some((id, *priority.get(&id)?)))
        .collect();
    let in_order = current.windows(2).all(|w| w[0].1 > w[1].1)
        && current.last().is_none_or(|&(_, p)| p > BASIC_MAX);
    if in_order {
        return Vec::new();
    }
    current
        .iter()
        .enumerate()
        .filter_map(|(k, &(id, from))| {
            let to = TOP_PRIORITY - k as u64;
            (from != to).then_some(Update {
                job_id: id,
                from,
                to,
                rank: k + 1,
            })
        })
        .collect()
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Refuses a configuration that ignores priorities set by `scontrol`.
pub fn check_config(slurm: &Slurm) -> Result<(), ConfigError> {
    let config = slurm.config()?;
    let get = |k: &str| config.get(k).map(String::as_str).unwrap_or("");
    if get("SchedulerType") == "sched/builtin" && get("PriorityType") == "priority/basic" {
        return Err(ConfigError::BuiltinIgnoresPriorities);
    }
    Ok(())
}

/// One pass (see the module docs). Dry-run passes print their updates to `out`.
pub fn pass(
    slurm: &Slurm,
    options: &mut DriverOptions,
    out: &mut dyn Write,
) -> Result<PassReport, PassError> {
    let jobs = slurm.jobs(false)?;
    let queue = observe(&jobs, options.partition.as_deref(), now_s());
    let ranking = options.ranker.rank(&queue)?;
    let updates = plan(&ranking, &jobs);
    let mut refused = 0;
    for u in &updates {
        if options.dry_run {
            let _ = writeln!(
                out,
                "dry run: would set JobId={} Priority={} (rank {} of {}, now {})",
                u.job_id,
                u.to,
                u.rank,
                ranking.len(),
                u.from
            );
        } else if let Err(e) = slurm.set_priority(u.job_id, u.to) {
            // The job most likely started or ended since squeue ran; the next pass sees it.
            eprintln!("lepton-serve: JobId={}: {e}", u.job_id);
            refused += 1;
        }
    }
    Ok(PassReport {
        ranking,
        updates,
        refused,
    })
}

/// Runs passes every `options.interval` until `stop` is set. A failed pass is logged and
/// changes nothing.
pub fn run(slurm: &Slurm, options: &mut DriverOptions, stop: &AtomicBool, out: &mut dyn Write) {
    let mut last_error = None;
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        match pass(slurm, options, out) {
            Ok(report) => {
                last_error = None;
                if !report.updates.is_empty() && !options.dry_run {
                    eprintln!(
                        "lepton-serve: {} ranked {} pending jobs, {} priorities changed",
                        options.ranker.name(),
                        report.ranking.len(),
                        report.updates.len() - report.refused
                    );
                }
            }
            Err(e) => {
                // One line per distinct failure, not one per pass.
                let line = e.to_string();
                if last_error.as_ref() != Some(&line) {
                    eprintln!("lepton-serve: pass failed, priorities left as they are: {line}");
                }
                last_error = Some(line);
            }
        }
        let _ = out.flush();
        while !stop.load(Ordering::Relaxed) && started.elapsed() < options.interval {
            std::thread::sleep(Duration::from_millis(20).min(options.interval));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: u64, state: &str, priority: u64, partition: &str) -> SlurmJob {
        SlurmJob {
            job_id: id,
            name: String::new(),
            partition: partition.into(),
            state: state.into(),
            reason: String::new(),
            priority,
            submit_time: id as i64,
            start_time: if state == "RUNNING" { 100 } else { 0 },
            end_time: 0,
            time_limit_min: Some(id),
            cpus: 1,
        }
    }

    #[test]
    fn observe_splits_waiting_from_running_and_skips_held_jobs_and_other_partitions() {
        let jobs = [
            job(1, "PENDING", 10, "main"),
            job(2, "RUNNING", 10, "main"),
            job(3, "PENDING", 0, "main"),
            job(4, "PENDING", 10, "gpu"),
            job(5, "PENDING", 10, "gpu,main"),
        ];
        let ids = |q: QueueState| q.waiting.iter().map(|j| j.id).collect::<Vec<_>>();
        assert_eq!(ids(observe(&jobs, None, 0.0)), vec![1, 4, 5]);
        assert_eq!(ids(observe(&jobs, Some("main"), 0.0)), vec![1, 5]);
        assert_eq!(observe(&jobs, None, 0.0).waiting[0].estimate_s, 60.0);
        let running = observe(&jobs, Some("main"), 0.0).running;
        assert_eq!(running.len(), 1);
        assert_eq!((running[0].job.id, running[0].start_s), (2, 100.0));
        assert_eq!(observe(&jobs, Some("gpu"), 0.0).running, vec![]);
    }

    #[test]
    fn recorded_queue_ranked_by_sjf() {
        let jobs =
            super::super::cli::parse_jobs(include_str!("../../tests/data/squeue.json")).unwrap();
        // Pending and not held: 2 (1 min), 4 (1 min), 5 (unlimited); the held job 3 and
        // the running job 1 are left alone. 2 and 4 tie on estimate and submit time: id.
        let queue = observe(&jobs, None, 0.0);
        let ranking = Ranker::by_name("sjf").unwrap().rank(&queue).unwrap();
        assert_eq!(ranking, vec![2, 4, 5]);
        let to: Vec<(u64, u64)> = plan(&ranking, &jobs)
            .iter()
            .map(|u| (u.job_id, u.to))
            .collect();
        assert_eq!(
            to,
            vec![
                (2, TOP_PRIORITY),
                (4, TOP_PRIORITY - 1),
                (5, TOP_PRIORITY - 2)
            ]
        );
    }

    #[test]
    fn plan_changes_only_what_differs() {
        let jobs = [
            job(1, "PENDING", TOP_PRIORITY - 1, "main"),
            job(2, "PENDING", 5, "main"),
        ];
        // Ranking 2, 1: job 2 → TOP, job 1 → TOP − 1 (already).
        assert_eq!(
            plan(&[2, 1], &jobs),
            vec![Update {
                job_id: 2,
                from: 5,
                to: TOP_PRIORITY,
                rank: 1
            }]
        );
        assert!(plan(&[], &jobs).is_empty());
        // Already in order and above priority/basic's range: nothing to change, even though
        // the first-ranked job left (no renumbering).
        let ranked = [
            job(3, "PENDING", TOP_PRIORITY - 1, "main"),
            job(4, "PENDING", TOP_PRIORITY - 2, "main"),
        ];
        assert!(plan(&[3, 4], &ranked).is_empty());
        // Reversed: job 4 moves to the top; job 3 already has TOP − 1.
        assert_eq!(
            plan(&[4, 3], &ranked),
            vec![Update {
                job_id: 4,
                from: TOP_PRIORITY - 2,
                to: TOP_PRIORITY,
                rank: 1
            }]
        );
    }
}

//! The job list a replay submits: a window of a trace, and its time scaling for real Slurm.
//!
//! A trace is an SWF file (lepton's SWF loader: requested processors, run time, requested
//! time as the estimate) or a lepton CSV task list with a `procs` column (docs/workloads.md).
//! A window is `count` consecutive jobs in arrival order from index `start`, arrivals shifted
//! so that its first job arrives at 0.
//!
//! **Time scaling.** One trace second is `time_scale` real seconds. A job sleeps its scaled
//! run time; its Slurm time limit is its scaled estimate (at least its scaled run time, plus
//! one second so Slurm never kills it at the boundary) rounded **up to whole minutes**, since
//! Slurm's limits are minutes. At a scale of 1/100 every job shorter than about 100 trace
//! minutes gets the same 1-minute limit: backfilling decisions, which read limits, see much
//! coarser estimates than the trace has. [`ScaledJob::estimate_s`] is that coarse limit back
//! in trace seconds, so the simulator can be given exactly what Slurm knew.

use lepton_env::workload::{TaskSpec, csv::parse_task_csv};
use std::path::Path;

/// A job of the trace (trace seconds).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TraceJob {
    pub id: u64,
    pub arrival_s: f64,
    pub runtime_s: f64,
    /// The trace's runtime estimate (SWF requested time, or the run time when absent).
    pub estimate_s: f64,
    pub procs: u32,
}

/// A job as submitted to Slurm.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScaledJob {
    pub job: TraceJob,
    /// Real seconds it sleeps.
    pub sleep_s: f64,
    /// Its Slurm time limit.
    pub limit_min: u64,
    /// The limit in trace seconds (what Slurm's scheduler knows of its length).
    pub estimate_s: f64,
}

/// A trace that cannot be read or windowed.
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    #[error("{0}")]
    Load(String),
    #[error(
        "{path}: window of {count} jobs from job index {start} does not fit in the trace's {total} jobs"
    )]
    Window {
        path: String,
        start: usize,
        count: usize,
        total: usize,
    },
    #[error("{0}")]
    Scale(String),
}

fn from_spec(t: &TaskSpec) -> TraceJob {
    TraceJob {
        id: t.id,
        arrival_s: t.arrival_s,
        runtime_s: t.duration_s,
        estimate_s: t.estimate_s,
        procs: t.demand[0],
    }
}

/// Every replayable job of a trace file, in arrival order (`.swf`, or `.csv` with a `procs`
/// column).
pub fn load_trace(path: &Path) -> Result<Vec<TraceJob>, JobsError> {
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let tasks = if is_csv {
        let text = std::fs::read_to_string(path)
            .map_err(|e| JobsError::Load(format!("{}: cannot read: {e}", path.display())))?;
        parse_task_csv(&text, &["procs".to_owned()]).map_err(|(line, message)| {
            JobsError::Load(format!("{}:{line}: {message}", path.display()))
        })?
    } else {
        lepton_env::trace::swf::load(path, false)
            .map_err(|e| JobsError::Load(e.to_string()))?
            .tasks
    };
    let mut jobs: Vec<TraceJob> = tasks.iter().map(from_spec).collect();
    jobs.sort_by(|a, b| a.arrival_s.total_cmp(&b.arrival_s));
    Ok(jobs)
}

/// Jobs `start .. start + count` of `jobs`, arrivals shifted to start at 0.
pub fn window(
    jobs: &[TraceJob],
    start: usize,
    count: usize,
    path: &Path,
) -> Result<Vec<TraceJob>, JobsError> {
    let end = start
        .checked_add(count)
        .filter(|&e| count > 0 && e <= jobs.len());
    let Some(end) = end else {
        return Err(JobsError::Window {
            path: path.display().to_string(),
            start,
            count,
            total: jobs.len(),
        });
    };
    let t0 = jobs[start].arrival_s;
    Ok(jobs[start..end]
        .iter()
        .map(|j| TraceJob {
            arrival_s: j.arrival_s - t0,
            ..*j
        })
        .collect())
}

/// Scales `jobs` for Slurm (see the module docs). Refuses a job wider than `total_cpus`.
pub fn scale(
    jobs: &[TraceJob],
    time_scale: f64,
    total_cpus: Option<u32>,
) -> Result<Vec<ScaledJob>, JobsError> {
    if !(time_scale.is_finite() && time_scale > 0.0) {
        return Err(JobsError::Scale(format!(
            "--time-scale must be a positive number of real seconds per trace second, got {time_scale}"
        )));
    }
    jobs.iter()
        .map(|&job| {
            if let Some(total) = total_cpus
                && job.procs > total
            {
                return Err(JobsError::Scale(format!(
                    "job {} asks for {} processors, the cluster has {total}",
                    job.id, job.procs
                )));
            }
            let sleep_s = job.runtime_s * time_scale;
            let limit_s = job.estimate_s.max(job.runtime_s) * time_scale + 1.0;
            let limit_min = (limit_s / 60.0).ceil().max(1.0) as u64;
            Ok(ScaledJob {
                job,
                sleep_s,
                limit_min,
                estimate_s: limit_min as f64 * 60.0 / time_scale,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: u64, arrival_s: f64, runtime_s: f64, estimate_s: f64, procs: u32) -> TraceJob {
        TraceJob {
            id,
            arrival_s,
            runtime_s,
            estimate_s,
            procs,
        }
    }

    #[test]
    fn limits_round_up_to_minutes_with_a_second_of_margin() {
        // Scale 0.01: 5000 s sleeps 50 s, limit ceil(51/60) = 1 min = 6000 trace s; an
        // estimate of 12000 s is 120 + 1 s → 3 min; a 5940 s job (59.4 + 1 s) → 2 min.
        let jobs = [
            job(1, 0.0, 5000.0, 5000.0, 4),
            job(2, 0.0, 100.0, 12000.0, 1),
            job(3, 0.0, 5940.0, 10.0, 1),
        ];
        let s = scale(&jobs, 0.01, Some(8)).unwrap();
        assert_eq!(s[0].limit_min, 1);
        assert!((s[0].sleep_s - 50.0).abs() < 1e-9);
        assert_eq!(s[0].estimate_s, 6000.0);
        assert_eq!(s[1].limit_min, 3);
        assert_eq!(s[2].limit_min, 2);
    }

    #[test]
    fn too_wide_jobs_and_bad_scales_are_refused() {
        let jobs = [job(9, 0.0, 10.0, 10.0, 16)];
        let e = scale(&jobs, 0.1, Some(8)).unwrap_err().to_string();
        assert!(e.contains("job 9 asks for 16 processors"), "{e}");
        assert!(scale(&jobs, 0.0, None).is_err());
        assert!(scale(&jobs, f64::NAN, None).is_err());
    }

    #[test]
    fn window_shifts_arrivals_and_checks_bounds() {
        let jobs = [
            job(1, 10.0, 1.0, 1.0, 1),
            job(2, 15.0, 1.0, 1.0, 1),
            job(3, 30.0, 1.0, 1.0, 1),
        ];
        let w = window(&jobs, 1, 2, Path::new("t.swf")).unwrap();
        assert_eq!((w[0].id, w[0].arrival_s, w[1].arrival_s), (2, 0.0, 15.0));
        let e = window(&jobs, 2, 2, Path::new("t.swf")).unwrap_err();
        assert!(e.to_string().contains("3 jobs"), "{e}");
    }
}

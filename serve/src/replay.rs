//! Replaying a job list on a real Slurm cluster and reading back what happened.
//!
//! Each job is submitted at its scaled arrival as `sbatch --wrap 'date +%s.%N; sleep S; date
//! +%s.%N'` (named `lepton-<trace id>`, its CPUs with `-n`, its limit in minutes with `-t`,
//! never requeued). The job prints its own start and end with sub-second precision: Slurm's
//! `StartTime` has whole seconds, too coarse at the scales a replay runs at. Slurm's start
//! second is kept too, for comparing start order. The replay then waits until Slurm reports
//! every job finished and converts the times back to trace seconds.
//!
//! A job that ends in any state but `COMPLETED` (killed at its limit, failed) or never
//! finishes before the timeout is an error naming it; nothing is cancelled.

use crate::jobs::ScaledJob;
use crate::slurm::cli::{Slurm, SlurmError};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How a replay runs.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// Real seconds per trace second.
    pub time_scale: f64,
    pub partition: Option<String>,
    /// Where jobs write their output (must be visible to the compute nodes).
    pub job_out_dir: PathBuf,
    /// Give up waiting this long after the last submission.
    pub timeout: Duration,
}

/// One replayed job, times in trace seconds from the replay's start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JobOutcome {
    pub trace_id: u64,
    pub slurm_id: u64,
    pub procs: u32,
    pub arrival_s: f64,
    pub runtime_s: f64,
    /// The estimate Slurm knew (its limit, in trace seconds).
    pub estimate_s: f64,
    pub limit_min: u64,
    /// When `sbatch` was called.
    pub submitted_s: f64,
    /// When the job's script started and ended (its own clock readings).
    pub start_s: f64,
    pub end_s: f64,
    /// Slurm's `StartTime` (epoch seconds, whole).
    pub slurm_start_epoch: i64,
}

impl JobOutcome {
    pub fn wait_s(&self) -> f64 {
        self.start_s - self.arrival_s
    }

    /// max(1, (wait + run) / max(run, 10 s)) with the trace's run time (the metric of
    /// lepton's HPC scenarios).
    pub fn bounded_slowdown(&self) -> f64 {
        bounded_slowdown(self.wait_s(), self.runtime_s)
    }
}

/// max(1, (wait + run) / max(run, 10 s)): lepton's definition, from a wait.
pub fn bounded_slowdown(wait_s: f64, runtime_s: f64) -> f64 {
    lepton_env::metrics::bounded_slowdown(wait_s + runtime_s, runtime_s)
}

/// Why a replay failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Slurm(#[from] SlurmError),
    #[error("{0}")]
    Io(String),
    #[error("timed out after {seconds} s waiting for Slurm jobs {jobs} (left as they are)")]
    Timeout { seconds: u64, jobs: String },
    #[error("Slurm job {slurm_id} (trace job {trace_id}) ended {state}, not COMPLETED{hint}")]
    JobFailed {
        slurm_id: u64,
        trace_id: u64,
        state: String,
        hint: String,
    },
    #[error("{path}: {reason}")]
    Output { path: String, reason: String },
}

fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn sleep_until(epoch: f64) {
    let left = epoch - epoch_now();
    if left > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(left));
    }
}

/// The `sbatch` arguments of one job.
pub fn sbatch_args(job: &ScaledJob, options: &ReplayOptions) -> Vec<String> {
    let out = options.job_out_dir.join("lepton-%j.out");
    let mut args = vec![
        format!("--job-name=lepton-{}", job.job.id),
        format!("--ntasks={}", job.job.procs.max(1)),
        format!("--time={}", job.limit_min),
        "--no-requeue".to_owned(),
        format!("--output={}", out.display()),
        format!("--wrap=date +%s.%N; sleep {:.3}; date +%s.%N", job.sleep_s),
    ];
    if let Some(p) = &options.partition {
        args.push(format!("--partition={p}"));
    }
    args
}

/// Submits `jobs` at their scaled arrivals, waits for all of them and returns what happened,
/// in the order of `jobs`.
pub fn replay(
    slurm: &Slurm,
    jobs: &[ScaledJob],
    options: &ReplayOptions,
) -> Result<Vec<JobOutcome>, ReplayError> {
    std::fs::create_dir_all(&options.job_out_dir).map_err(|e| {
        ReplayError::Io(format!(
            "{}: cannot create: {e}",
            options.job_out_dir.display()
        ))
    })?;
    // Half a second to spare before the first submission.
    let t0 = epoch_now() + 0.5;
    let mut submitted = Vec::with_capacity(jobs.len());
    for job in jobs {
        sleep_until(t0 + job.job.arrival_s * options.time_scale);
        let at = epoch_now();
        let id = slurm.sbatch(&sbatch_args(job, options))?;
        submitted.push((id, at));
    }
    let finals = wait_all(slurm, &submitted, options.timeout)?;
    let mut outcomes = Vec::with_capacity(jobs.len());
    for (job, &(slurm_id, at)) in jobs.iter().zip(&submitted) {
        let (state, slurm_start) = finals[&slurm_id].clone();
        if state != "COMPLETED" {
            let hint = if state == "TIMEOUT" {
                ": its time limit was too short for its scaled run time".to_owned()
            } else {
                String::new()
            };
            return Err(ReplayError::JobFailed {
                slurm_id,
                trace_id: job.job.id,
                state,
                hint,
            });
        }
        let path = options.job_out_dir.join(format!("lepton-{slurm_id}.out"));
        let (start, end) = read_stamps(&path)?;
        let trace = |epoch: f64| (epoch - t0) / options.time_scale;
        outcomes.push(JobOutcome {
            trace_id: job.job.id,
            slurm_id,
            procs: job.job.procs,
            arrival_s: job.job.arrival_s,
            runtime_s: job.job.runtime_s,
            estimate_s: job.estimate_s,
            limit_min: job.limit_min,
            submitted_s: trace(at),
            start_s: trace(start),
            end_s: trace(end),
            slurm_start_epoch: slurm_start,
        });
    }
    Ok(outcomes)
}

const FINAL_STATES: [&str; 8] = [
    "COMPLETED",
    "FAILED",
    "TIMEOUT",
    "CANCELLED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "BOOT_FAIL",
    "DEADLINE",
];

/// Polls Slurm until every submitted job is in a final state: id → (state, start epoch).
fn wait_all(
    slurm: &Slurm,
    submitted: &[(u64, f64)],
    timeout: Duration,
) -> Result<BTreeMap<u64, (String, i64)>, ReplayError> {
    let started = Instant::now();
    loop {
        let jobs = slurm.jobs(true)?;
        let mut finals = BTreeMap::new();
        for j in &jobs {
            if FINAL_STATES.contains(&j.state.as_str()) {
                finals.insert(j.job_id, (j.state.clone(), j.start_time));
            }
        }
        let missing: Vec<u64> = submitted
            .iter()
            .map(|&(id, _)| id)
            .filter(|id| !finals.contains_key(id))
            .collect();
        if missing.is_empty() {
            return Ok(finals);
        }
        if started.elapsed() > timeout {
            let mut list = String::new();
            for id in &missing {
                let _ = write!(list, "{}{id}", if list.is_empty() { "" } else { "," });
            }
            return Err(ReplayError::Timeout {
                seconds: timeout.as_secs(),
                jobs: list,
            });
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The first and last lines of a job's output: its start and end epochs.
fn read_stamps(path: &Path) -> Result<(f64, f64), ReplayError> {
    let bad = |reason: String| ReplayError::Output {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let stamps: Vec<f64> = text
        .lines()
        .map(|l| l.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad(format!("expected two `date +%s.%N` lines, got {text:?}")))?;
    match stamps[..] {
        [start, end] if end >= start => Ok((start, end)),
        _ => Err(bad(format!(
            "expected two increasing `date +%s.%N` lines, got {text:?}"
        ))),
    }
}

/// Groups jobs that Slurm started in the same scheduling pass: sorted by start, a new group
/// begins where the gap to the previous start exceeds `gap_s` (trace seconds). Returns trace
/// ids, groups in start order, each group sorted by id.
pub fn start_groups(starts: &[(u64, f64)], gap_s: f64) -> Vec<Vec<u64>> {
    let mut sorted = starts.to_vec();
    sorted.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    let mut groups: Vec<Vec<u64>> = Vec::new();
    let mut last = f64::NEG_INFINITY;
    for (id, t) in sorted {
        match groups.last_mut() {
            Some(g) if t - last <= gap_s => g.push(id),
            _ => groups.push(vec![id]),
        }
        last = t;
    }
    for g in &mut groups {
        g.sort_unstable();
    }
    groups
}

/// Writes outcomes as CSV (the columns of [`JobOutcome`]).
pub fn write_csv(path: &Path, outcomes: &[JobOutcome]) -> std::io::Result<()> {
    let mut text = String::from(
        "trace_id,slurm_id,procs,arrival_s,runtime_s,estimate_s,limit_min,submitted_s,start_s,end_s,slurm_start_epoch\n",
    );
    for o in outcomes {
        let _ = writeln!(
            text,
            "{},{},{},{},{},{},{},{:.3},{:.3},{:.3},{}",
            o.trace_id,
            o.slurm_id,
            o.procs,
            o.arrival_s,
            o.runtime_s,
            o.estimate_s,
            o.limit_min,
            o.submitted_s,
            o.start_s,
            o.end_s,
            o.slurm_start_epoch
        );
    }
    crate::write_atomic(path, &text)
}

/// Reads [`write_csv`]'s output.
pub fn read_csv(path: &Path) -> Result<Vec<JobOutcome>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let mut lines = text.lines().enumerate();
    let header = lines.next().map(|(_, h)| h).unwrap_or("");
    if !header.starts_with("trace_id,slurm_id,procs,") {
        return Err(format!(
            "{}: line 1: not a lepton-serve replay jobs.csv (header `{header}`)",
            path.display()
        ));
    }
    let mut out = Vec::new();
    for (i, line) in lines.filter(|(_, l)| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        let bad = |what: &str| format!("{}:{}: {what}", path.display(), i + 1);
        if f.len() != 11 {
            return Err(bad(&format!("{} fields, expected 11", f.len())));
        }
        let num = |k: usize| -> Result<f64, String> {
            f[k].parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| bad(&format!("field {} `{}` is not a number", k + 1, f[k])))
        };
        out.push(JobOutcome {
            trace_id: num(0)? as u64,
            slurm_id: num(1)? as u64,
            procs: num(2)? as u32,
            arrival_s: num(3)?,
            runtime_s: num(4)?,
            estimate_s: num(5)?,
            limit_min: num(6)? as u64,
            submitted_s: num(7)?,
            start_s: num(8)?,
            end_s: num(9)?,
            slurm_start_epoch: num(10)? as i64,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_split_at_gaps() {
        let starts = [(3, 10.2), (1, 0.0), (2, 0.3), (4, 10.0), (5, 25.0)];
        assert_eq!(
            start_groups(&starts, 1.0),
            vec![vec![1, 2], vec![3, 4], vec![5]]
        );
    }

    #[test]
    fn bounded_slowdown_uses_ten_seconds_floor() {
        assert_eq!(bounded_slowdown(0.0, 5.0), 1.0);
        assert_eq!(bounded_slowdown(15.0, 5.0), 2.0);
        assert_eq!(bounded_slowdown(100.0, 100.0), 2.0);
    }

    #[test]
    fn csv_round_trip() {
        let o = JobOutcome {
            trace_id: 7,
            slurm_id: 12,
            procs: 3,
            arrival_s: 1.5,
            runtime_s: 100.0,
            estimate_s: 600.0,
            limit_min: 1,
            submitted_s: 1.625,
            start_s: 2.25,
            end_s: 102.5,
            slurm_start_epoch: 1_700_000_000,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.csv");
        write_csv(&path, &[o]).unwrap();
        assert_eq!(read_csv(&path).unwrap(), vec![o]);
        std::fs::write(&path, "x,y\n").unwrap();
        assert!(read_csv(&path).unwrap_err().contains("line 1"));
    }
}

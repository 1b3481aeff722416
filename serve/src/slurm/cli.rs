//! Slurm's command-line tools, run as child processes: `squeue --json` and `sinfo --json` to
//! observe, `scontrol update JobId=… Priority=…` to apply a ranking, `sbatch` to submit
//! replayed jobs, `scontrol show config` to check the scheduler obeys priorities.
//!
//! Slurm 22.05's `--json` output (OpenAPI data parser v0.0.38) is read with only the fields
//! lepton needs, every other field ignored; a field that is missing or of the wrong type is an
//! error naming the command and the field, never a guess. The tools find the cluster the usual
//! way (`SLURM_CONF`, or the system's slurm.conf); [`Slurm::with_conf`] points one handle at a
//! particular cluster without touching the process environment (the tests run several).

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A Slurm command that could not run, failed, or printed something unreadable.
#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    #[error(
        "cannot run `{command}`: {source} (is Slurm installed? Debian: apt-get install slurm-client)"
    )]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("`{command}` printed malformed output: {reason}")]
    Malformed { command: String, reason: String },
}

/// A job as `squeue --json` shows it (the fields lepton reads).
#[derive(Clone, Debug, PartialEq)]
pub struct SlurmJob {
    pub job_id: u64,
    pub name: String,
    pub partition: String,
    /// `PENDING`, `RUNNING`, `COMPLETED`, ….
    pub state: String,
    /// Why a pending job waits (`Priority`, `Resources`, `JobHeldUser`, …).
    pub reason: String,
    /// 0 for a held job.
    pub priority: u64,
    /// Epoch seconds; 0 where Slurm has none yet.
    pub submit_time: i64,
    pub start_time: i64,
    pub end_time: i64,
    /// Minutes; `None` for an unlimited job.
    pub time_limit_min: Option<u64>,
    /// CPUs requested (processors: the size lepton's HPC priorities read).
    pub cpus: u32,
}

impl SlurmJob {
    pub fn is_pending(&self) -> bool {
        self.state == "PENDING"
    }

    /// A held job has priority 0; setting a priority would release it, so lepton never
    /// ranks one.
    pub fn is_held(&self) -> bool {
        self.priority == 0 || self.reason.starts_with("JobHeld")
    }
}

/// A node as `sinfo --json` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct SlurmNode {
    pub name: String,
    pub state: String,
    pub cpus: u32,
    pub alloc_cpus: u32,
    pub partitions: Vec<String>,
}

impl SlurmNode {
    /// Whether jobs can start on it (not down, drained, failing or powered off).
    pub fn is_usable(&self) -> bool {
        let state = self.state.to_ascii_lowercase();
        !["down", "drain", "fail", "future", "power", "unknown"]
            .iter()
            .any(|bad| state.contains(bad))
    }
}

/// Runs Slurm's tools against one cluster.
#[derive(Clone, Debug, Default)]
pub struct Slurm {
    conf: Option<PathBuf>,
}

impl Slurm {
    /// The cluster the environment names (`SLURM_CONF` or the system's slurm.conf).
    pub fn from_env() -> Self {
        Self { conf: None }
    }

    /// The cluster of this slurm.conf.
    pub fn with_conf(conf: &Path) -> Self {
        Self {
            conf: Some(conf.to_owned()),
        }
    }

    pub fn conf(&self) -> Option<&Path> {
        self.conf.as_deref()
    }

    /// A `Command` for `program` that talks to this handle's cluster.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        if let Some(conf) = &self.conf {
            command.env("SLURM_CONF", conf);
        }
        command
    }

    /// Runs `program args` and returns its stdout.
    pub fn run(&self, program: &str, args: &[&str]) -> Result<String, SlurmError> {
        let name = format!("{program} {}", args.join(" "));
        let output = self
            .command(program)
            .args(args)
            .output()
            .map_err(|source| SlurmError::Spawn {
                command: name.clone(),
                source,
            })?;
        if !output.status.success() {
            return Err(SlurmError::Failed {
                command: name,
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        String::from_utf8(output.stdout).map_err(|_| SlurmError::Malformed {
            command: name,
            reason: "not UTF-8".into(),
        })
    }

    /// Every job Slurm lists (`squeue --json`; with `all_states`, finished jobs that Slurm
    /// still remembers too, for `MinJobAge` seconds after they end).
    pub fn jobs(&self, all_states: bool) -> Result<Vec<SlurmJob>, SlurmError> {
        let args: &[&str] = if all_states {
            &["--json", "--states=all"]
        } else {
            &["--json"]
        };
        let text = self.run("squeue", args)?;
        parse_jobs(&text).map_err(|reason| SlurmError::Malformed {
            command: format!("squeue {}", args.join(" ")),
            reason,
        })
    }

    /// Every node (`sinfo --json`).
    pub fn nodes(&self) -> Result<Vec<SlurmNode>, SlurmError> {
        let text = self.run("sinfo", &["--json"])?;
        parse_nodes(&text).map_err(|reason| SlurmError::Malformed {
            command: "sinfo --json".into(),
            reason,
        })
    }

    /// `scontrol show config` as key → value.
    pub fn config(&self) -> Result<BTreeMap<String, String>, SlurmError> {
        let text = self.run("scontrol", &["show", "config"])?;
        Ok(parse_config(&text))
    }

    /// Sets a pending job's priority (an administrator's fixed priority: Slurm no longer
    /// recomputes it).
    pub fn set_priority(&self, job_id: u64, priority: u64) -> Result<(), SlurmError> {
        self.run(
            "scontrol",
            &[
                "update",
                &format!("JobId={job_id}"),
                &format!("Priority={priority}"),
            ],
        )
        .map(drop)
    }

    /// Submits a batch job and returns its id (`sbatch --parsable`).
    pub fn sbatch(&self, args: &[String]) -> Result<u64, SlurmError> {
        let mut all: Vec<&str> = vec!["--parsable"];
        all.extend(args.iter().map(String::as_str));
        let out = self.run("sbatch", &all)?;
        // `--parsable` prints `id` or `id;cluster`.
        let id = out.trim().split(';').next().unwrap_or("");
        id.parse().map_err(|_| SlurmError::Malformed {
            command: format!("sbatch {}", all.join(" ")),
            reason: format!("expected a job id, got `{}`", out.trim()),
        })
    }
}

/// Parses `scontrol show config`'s `Key = value` lines.
pub fn parse_config(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once(" = "))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

#[derive(Deserialize)]
struct JobsDoc {
    #[serde(default)]
    errors: Vec<serde_json::Value>,
    jobs: Vec<RawJob>,
}

#[derive(Deserialize)]
struct RawJob {
    job_id: u64,
    #[serde(default)]
    name: String,
    #[serde(default)]
    partition: String,
    job_state: String,
    #[serde(default)]
    state_reason: String,
    priority: u64,
    submit_time: i64,
    #[serde(default)]
    start_time: i64,
    #[serde(default)]
    end_time: i64,
    /// Minutes; null or Slurm's INFINITE (0xFFFFFFFF) or NO_VAL (0xFFFFFFFE) for no limit.
    time_limit: Option<u64>,
    cpus: u32,
}

/// Parses `squeue --json` output.
pub fn parse_jobs(text: &str) -> Result<Vec<SlurmJob>, String> {
    let doc: JobsDoc = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if let Some(first) = doc.errors.first() {
        return Err(format!("Slurm reported an error: {first}"));
    }
    Ok(doc
        .jobs
        .into_iter()
        .map(|j| SlurmJob {
            job_id: j.job_id,
            name: j.name,
            partition: j.partition,
            state: j.job_state,
            reason: j.state_reason,
            priority: j.priority,
            submit_time: j.submit_time,
            start_time: j.start_time,
            end_time: j.end_time,
            time_limit_min: j.time_limit.filter(|&m| m < 0xFFFF_FFFE),
            cpus: j.cpus,
        })
        .collect())
}

#[derive(Deserialize)]
struct NodesDoc {
    #[serde(default)]
    errors: Vec<serde_json::Value>,
    nodes: Vec<RawNode>,
}

#[derive(Deserialize)]
struct RawNode {
    name: String,
    state: String,
    cpus: u32,
    #[serde(default)]
    alloc_cpus: u32,
    #[serde(default)]
    partitions: Vec<String>,
}

/// Parses `sinfo --json` output.
pub fn parse_nodes(text: &str) -> Result<Vec<SlurmNode>, String> {
    let doc: NodesDoc = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if let Some(first) = doc.errors.first() {
        return Err(format!("Slurm reported an error: {first}"));
    }
    Ok(doc
        .nodes
        .into_iter()
        .map(|n| SlurmNode {
            name: n.name,
            state: n.state,
            cpus: n.cpus,
            alloc_cpus: n.alloc_cpus,
            partitions: n.partitions,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_json_fields_and_unlimited_time() {
        let text = r#"{"meta": {}, "errors": [], "jobs": [
            {"job_id": 7, "name": "a", "partition": "main", "job_state": "PENDING",
             "state_reason": "Priority", "priority": 4294901757, "submit_time": 100,
             "start_time": 0, "end_time": 0, "time_limit": 3, "cpus": 4, "other": [1]},
            {"job_id": 8, "job_state": "PENDING", "state_reason": "JobHeldUser", "priority": 0,
             "submit_time": 101, "time_limit": 4294967295, "cpus": 1}]}"#;
        let jobs = parse_jobs(text).unwrap();
        assert_eq!(jobs.len(), 2);
        assert_eq!(
            (jobs[0].job_id, jobs[0].cpus, jobs[0].time_limit_min),
            (7, 4, Some(3))
        );
        assert!(jobs[0].is_pending() && !jobs[0].is_held());
        assert_eq!(jobs[1].time_limit_min, None);
        assert!(jobs[1].is_held());
    }

    #[test]
    fn malformed_squeue_output_names_the_field() {
        let err = parse_jobs(r#"{"jobs": [{"job_id": "x"}]}"#).unwrap_err();
        assert!(
            err.contains("job_id") || err.contains("invalid type"),
            "{err}"
        );
        let err = parse_jobs(r#"{"errors": [{"error": "boom"}], "jobs": []}"#).unwrap_err();
        assert!(err.contains("boom"), "{err}");
    }

    /// `squeue --json --states=all` and `sinfo --json` recorded from Slurm 22.05.8 (a local
    /// cluster of 2 nodes × 4 CPUs: one 8-CPU job running, one held, one unlimited).
    #[test]
    fn recorded_slurm_22_05_output() {
        let jobs = parse_jobs(include_str!("../../tests/data/squeue.json")).unwrap();
        // id, state, reason, priority, limit (minutes), CPUs.
        type Row<'a> = (u64, &'a str, &'a str, u64, Option<u64>, u32);
        let summary: Vec<Row> = jobs
            .iter()
            .map(|j| {
                (
                    j.job_id,
                    j.state.as_str(),
                    j.reason.as_str(),
                    j.priority,
                    j.time_limit_min,
                    j.cpus,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (1, "RUNNING", "None", 1, Some(2), 8),
                (2, "PENDING", "Resources", 1, Some(1), 2),
                (3, "PENDING", "JobHeldUser", 0, Some(5), 1),
                (4, "PENDING", "Priority", 1, Some(1), 1),
                (5, "PENDING", "None", 1, None, 4),
            ]
        );
        assert!(jobs[2].is_held() && !jobs[1].is_held());
        assert_eq!(
            (jobs[0].submit_time, jobs[0].start_time),
            (1796134018, 1796134018)
        );
        let nodes = parse_nodes(include_str!("../../tests/data/sinfo.json")).unwrap();
        let summary: Vec<(&str, &str, u32, u32, bool)> = nodes
            .iter()
            .map(|n| {
                (
                    n.name.as_str(),
                    n.state.as_str(),
                    n.cpus,
                    n.alloc_cpus,
                    n.is_usable(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("n1", "allocated", 4, 4, true),
                ("n2", "allocated", 4, 4, true)
            ]
        );
    }

    #[test]
    fn config_lines() {
        let c = parse_config(
            "Configuration data as of x\nSchedulerType           = sched/backfill\nPriorityType = priority/basic\n",
        );
        assert_eq!(c["SchedulerType"], "sched/backfill");
        assert_eq!(c["PriorityType"], "priority/basic");
    }
}

//! The same job list in lepton's simulator, to hold it against what real Slurm did.
//!
//! The cluster is one machine with the Slurm cluster's total CPUs (lepton's HPC model:
//! processors are a pooled resource, as Slurm's `select/cons_tres` with `CR_CPU` spreads a
//! job's tasks over nodes). Each job arrives at its trace arrival, runs its trace run time and
//! shows the estimate Slurm knew (its time limit, whole minutes scaled back). Any lepton
//! heuristic name runs on it (`fcfs+strict` is Slurm's `sched/builtin`; `fcfs+easy` and
//! `fcfs+conservative` bracket `sched/backfill`).

use crate::jobs::ScaledJob;
use lepton_env::schedulers;
use lepton_env::{Scenario, ScenarioEnv};
use std::fmt::Write as _;
use std::path::Path;

/// A simulated job: its trace id and start and end (trace seconds).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimStart {
    pub trace_id: u64,
    pub start_s: f64,
    pub end_s: f64,
}

/// The scenario file text for `jobs` on one machine of `total_cpus` processors.
pub fn scenario_toml(jobs: &[ScaledJob], total_cpus: u32) -> String {
    let mut text = format!(
        "name = \"slurm-replay\"\n\
         description = \"a job list replayed on real Slurm, in lepton's simulator\"\n\
         seed = 0\n\
         resources = [\"procs\"]\n\n\
         [[server_types]]\nname = \"machine\"\ncount = 1\ncapacity = [{total_cpus}]\nspeed = 1.0\n\n\
         [queue]\nnum_slots = {slots}\nbacklog_cap = {backlog}\n\n\
         [time]\nmode = \"event\"\nmax_time_s = 1e12\nmax_decisions = 10000000\n\n\
         [actions]\nmode = \"slot\"\nplacement_rule = \"first_fit\"\nillegal = \"error\"\ndiscipline = \"strict\"\n\n\
         [workload]\nkind = \"list\"\ntasks = [\n",
        slots = jobs.len().clamp(1, 128),
        backlog = jobs.len().max(1),
    );
    for j in jobs {
        // `{:?}` prints f64 exactly (shortest round-trip form).
        let _ = writeln!(
            text,
            "  {{ id = {}, arrival_s = {:?}, duration_s = {:?}, demand = [{}], estimate_s = {:?} }},",
            j.job.id, j.job.arrival_s, j.job.runtime_s, j.job.procs, j.estimate_s
        );
    }
    text.push_str("]\n");
    text
}

/// Runs heuristic `scheduler` (any lepton-eval name) on `jobs`; starts in the order of `jobs`.
pub fn simulate(
    jobs: &[ScaledJob],
    total_cpus: u32,
    scheduler: &str,
) -> Result<Vec<SimStart>, String> {
    let text = scenario_toml(jobs, total_cpus);
    let scenario = Scenario::from_toml_str(&text, Path::new("slurm-replay.toml"))
        .map_err(|e| format!("the replay's job list as a lepton scenario: {e}"))?;
    let mut env = scenario.build();
    let ScenarioEnv::Cluster(cluster) = &mut env else {
        return Err("the replay scenario is not a cluster scenario".into());
    };
    cluster.record_schedule(true);
    let mut heuristic = schedulers::by_name(scheduler).map_err(|e| e.to_string())?;
    schedulers::run_episode(heuristic.as_mut(), &mut env, 0)
        .map_err(|e| format!("{scheduler}: {e}"))?;
    let schedule = match &env {
        ScenarioEnv::Cluster(cluster) => cluster.schedule(),
        ScenarioEnv::DeepRm(_) => None,
    }
    .ok_or("the replay scenario recorded no schedule")?;
    jobs.iter()
        .map(|j| {
            schedule
                .runs
                .iter()
                .find(|r| r.task_id == j.job.id)
                .map(|r| SimStart {
                    trace_id: j.job.id,
                    start_s: r.start_s,
                    end_s: r.end_s,
                })
                .ok_or_else(|| format!("{scheduler}: job {} never started", j.job.id))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{TraceJob, scale};

    #[test]
    fn fcfs_strict_by_hand() {
        // 4 processors. Job 1 (4 procs, 10 s) runs 0–10; job 2 (3 procs) waits for it,
        // 10–30; job 3 (1 proc, arriving at 1) may not overtake job 2 under strict order,
        // so it starts with it at 10.
        let jobs = [
            TraceJob {
                id: 1,
                arrival_s: 0.0,
                runtime_s: 10.0,
                estimate_s: 10.0,
                procs: 4,
            },
            TraceJob {
                id: 2,
                arrival_s: 0.5,
                runtime_s: 20.0,
                estimate_s: 20.0,
                procs: 3,
            },
            TraceJob {
                id: 3,
                arrival_s: 1.0,
                runtime_s: 5.0,
                estimate_s: 5.0,
                procs: 1,
            },
        ];
        let scaled = scale(&jobs, 1.0, Some(4)).unwrap();
        let starts = simulate(&scaled, 4, "fcfs+strict").unwrap();
        let s: Vec<(u64, f64)> = starts.iter().map(|s| (s.trace_id, s.start_s)).collect();
        assert_eq!(s, vec![(1, 0.0), (2, 10.0), (3, 10.0)]);
        assert_eq!(starts[2].end_s, 15.0);
    }
}

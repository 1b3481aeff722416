//! Batch disciplines by hand: FCFS and EASY on the 9 jobs of `cqsim-test-9jobs.swf` (CQSim's test workload, KTH SP2
//! header, MaxNodes 100), replayed as an explicit task list on one 100-node server until SWF
//! replay lands. Every job's start time is checked against the hand computation below.
//!
//! The jobs (submit, run time, processors, requested time = the estimate):
//!
//! | job | submit | run  | procs | requested |
//! |-----|--------|------|-------|-----------|
//! | 1   | 0      | 4000 | 40    | 4000      |
//! | 2   | 1000   | 2000 | 80    | 2000      |
//! | 3   | 2000   | 1000 | 90    | 1000      |
//! | 4   | 3000   | 5000 | 20    | 5000      |
//! | 5   | 4000   | 3000 | 60    | 3000      |
//! | 6   | 5000   | 3000 | 50    | 3000      |
//! | 7   | 6000   | 2000 | 50    | 3000      |
//! | 8   | 8000   | 1000 | 50    | 5000      |
//! | 9   | 8000   | 5000 | 10    | 5000      |
//!
//! Completions at an instant are processed before arrivals at the same instant.

use lepton_env::scenario::{Scenario, ScenarioEnv};
use lepton_env::schedulers;
use std::collections::BTreeMap;
use std::path::Path;

const SWF: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/swf/cqsim-test-9jobs.swf"
);

/// One SWF job: (id, submit, run time, requested processors, requested time), with SWF's
/// fallbacks (requested processors → allocated, requested time → run time when -1).
fn parse_swf(text: &str) -> Vec<(u64, f64, f64, u32, f64)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(';'))
        .map(|line| {
            let f: Vec<f64> = line
                .split_whitespace()
                .map(|x| x.parse().unwrap())
                .collect();
            assert_eq!(f.len(), 18, "SWF lines have 18 fields: {line}");
            let procs = if f[7] > 0.0 { f[7] } else { f[4] };
            let requested = if f[8] > 0.0 { f[8] } else { f[3] };
            (f[0] as u64, f[1], f[3], procs as u32, requested)
        })
        .collect()
}

fn nine_job_env() -> ScenarioEnv {
    let text = std::fs::read_to_string(SWF).expect("../shared/data/swf/cqsim-test-9jobs.swf");
    let jobs = parse_swf(&text);
    assert_eq!(jobs.len(), 9);
    let tasks: Vec<String> = jobs
        .iter()
        .map(|(id, submit, run, procs, req)| {
            format!("{{ id = {id}, arrival_s = {submit:?}, duration_s = {run:?}, demand = [{procs}], estimate_s = {req:?} }}")
        })
        .collect();
    let toml = format!(
        r#"
name = "cqsim-9"
resources = ["procs"]
[[server_types]]
name = "sp2"
count = 1
capacity = [100]
[queue]
num_slots = 9
backlog_cap = 9
[workload]
kind = "list"
tasks = [{}]
"#,
        tasks.join(", ")
    );
    Scenario::from_toml_str(&toml, Path::new("cqsim-9.toml"))
        .unwrap()
        .build()
}

/// Start time of every task (by id) of `env` under `scheduler`, from the schedule recorder.
fn starts_of(mut env: ScenarioEnv, scheduler: &str) -> BTreeMap<u64, f64> {
    let ScenarioEnv::Cluster(c) = &mut env else {
        unreachable!()
    };
    c.record_schedule(true);
    let mut s = schedulers::by_name(scheduler).unwrap();
    let metrics = schedulers::run_episode(s.as_mut(), &mut env, 0).unwrap();
    assert_eq!(metrics.num_finished, metrics.num_tasks, "{scheduler}");
    let ScenarioEnv::Cluster(c) = &env else {
        unreachable!()
    };
    c.schedule()
        .unwrap()
        .runs
        .iter()
        .map(|r| (r.task_id, r.start_s))
        .collect()
}

/// Start time of every job of the CQSim trace under `scheduler`.
fn schedule(scheduler: &str) -> BTreeMap<u64, f64> {
    starts_of(nine_job_env(), scheduler)
}

#[test]
fn fcfs_schedule_matches_the_hand_computation() {
    // t=0     job 1 starts (40 used).
    // t=1000  job 2 (80) does not fit (60 free): it blocks the queue.
    // t=4000  job 1 ends: job 2 starts (80 used); job 3 (90) waits, job 5 arrives behind it.
    // t=6000  job 2 ends: job 3 starts (90); job 4 (20) does not fit (10 free).
    // t=7000  job 3 ends: job 4 starts (20), job 5 starts (60); job 6 (50) does not fit.
    // t=10000 job 5 ends: job 6 starts (70 used); job 7 (50) does not fit.
    // t=12000 job 4 ends: job 7 starts (100 used).
    // t=13000 job 6 ends: job 8 starts.
    // t=14000 jobs 7 and 8 end: job 9 starts; it ends at 19000.
    let expected = [
        (1, 0),
        (2, 4000),
        (3, 6000),
        (4, 7000),
        (5, 7000),
        (6, 10000),
        (7, 12000),
        (8, 13000),
        (9, 14000),
    ];
    // The whole-queue FCFS under the three commit disciplines gives the same schedule: on
    // this trace no job could start early without delaying an earlier one's reservation
    // (jobs 4 and 9 could run beside the head only in the capacity its reservation leaves
    // spare, the "extra nodes" rule of textbook EASY below, which RLScheduler's EASY lacks).
    for name in ["fcfs", "fcfs+strict", "fcfs+easy", "fcfs+conservative"] {
        let starts = schedule(name);
        for (job, start) in expected {
            assert_eq!(
                starts[&job],
                f64::from(start),
                "{name}, job {job}: {starts:?}"
            );
        }
    }
}

#[test]
fn easy_schedule_matches_the_hand_computation() {
    // Estimates are the requested times; "extra" = capacity the reservation leaves spare.
    // t=0     job 1 starts (est. end 4000).
    // t=1000  head job 2 (80) waits: 60 free. Reservation: job 1 ends at 4000 → 100 free;
    //         shadow 4000, extra 100 − 80 = 20.
    // t=3000  job 4 (20, est. 5000 → ends 8000 > shadow) fits in the extra 20: backfilled.
    // t=4000  job 1 ends: job 2 starts (100 used). Head job 3 (90): running jobs 2 (est. end
    //         6000) and 4 (8000) → 80 free at 6000, 100 at 8000: shadow 8000, extra 10.
    // t=6000  job 2 ends (80 free). Jobs 5, 6, 7 fit now but each would end at 9000 > 8000
    //         and needs more than 10: no backfill.
    // t=8000  job 4 ends: job 3 starts (est. end 9000, 10 free). Head job 5 (60): shadow 9000,
    //         extra 40. Job 9 (10, ends 13000) fits in the extra: backfilled. Jobs 6-8 do not fit.
    // t=9000  job 3 ends: job 5 starts (30 free). Head job 6 (50): shadow 12000 (job 5's end).
    //         Jobs 7 and 8 (50) do not fit.
    // t=12000 job 5 ends: job 6 starts (40 free). Head job 7 (50): shadow 13000 (job 9).
    // t=13000 job 9 ends: job 7 starts (est. end 16000, really 15000).
    // t=15000 jobs 6 and 7 end: job 8 starts.
    let expected = [
        (1, 0),
        (2, 4000),
        (3, 8000),
        (4, 3000),
        (5, 9000),
        (6, 12000),
        (7, 13000),
        (8, 15000),
        (9, 8000),
    ];
    let starts = schedule("easy");
    for (job, start) in expected {
        assert_eq!(starts[&job], f64::from(start), "job {job}: {starts:?}");
    }
}

/// One 10-unit server and four tasks (arrival, units, true run, estimate):
/// A (0, 6, 10, 10), B (1, 8, 5, 5), C (2, 4, 5, `c_estimate`), D (3, 2, 20, 20).
fn four_task_env(c_estimate: f64) -> ScenarioEnv {
    let toml = format!(
        r#"
name = "four"
resources = ["nodes"]
[[server_types]]
name = "m"
count = 1
capacity = [10]
[queue]
num_slots = 2
backlog_cap = 10
[actions]
mode = "slot"
[workload]
kind = "list"
tasks = [
  {{ id = 1, arrival_s = 0.0, duration_s = 10.0, demand = [6] }},
  {{ id = 2, arrival_s = 1.0, duration_s = 5.0, demand = [8] }},
  {{ id = 3, arrival_s = 2.0, duration_s = 5.0, demand = [4], estimate_s = {c_estimate:?} }},
  {{ id = 4, arrival_s = 3.0, duration_s = 20.0, demand = [2] }},
]
"#
    );
    Scenario::from_toml_str(&toml, Path::new("four.toml"))
        .unwrap()
        .build()
}

#[test]
fn each_discipline_backfills_as_defined() {
    // A starts at 0 (4 free). B (8) is the FCFS head from 1; it can start when A ends at 10.
    // strict:       nothing overtakes B: C and D wait for it; B runs 10-15, then C and D.
    // easy:         C (ends 2 + 5 = 7 < 10, the shadow time) backfills at 2. D would end at
    //               23 > 10: it waits, and starts at 10 beside B (2 free).
    // conservative: B is reserved at 10, C at 2 (it fits until 7), D at 7: from 7 on, 4 units
    //               are free until 10 and 2 beside B's reservation, so D starts at 7.
    // greedy:       the oldest task that fits now: C at 2, D at 7 (C's end), B at 10.
    // Only 2 slots are visible (B and C; D waits in the backlog): the schedulers read the
    // whole queue.
    let expected = [
        ("fcfs+strict", [0.0, 10.0, 15.0, 15.0]),
        ("fcfs+easy", [0.0, 10.0, 2.0, 10.0]),
        ("fcfs+conservative", [0.0, 10.0, 2.0, 7.0]),
        ("fcfs+greedy", [0.0, 10.0, 2.0, 7.0]),
    ];
    for (name, starts) in expected {
        let got: Vec<f64> = starts_of(four_task_env(5.0), name).into_values().collect();
        assert_eq!(got, starts, "{name}");
    }
}

#[test]
fn backfilling_decides_on_estimates_not_true_run_times() {
    // C really runs 5 s but is estimated at 12: by its estimate it would end at 14 > 10, so
    // EASY does not backfill it. At 10 B starts (2 free) and C becomes the head, reserved at
    // 15 (B's end); D fits beside B but would end at 30 > 15: both start at 15.
    let got: Vec<f64> = starts_of(four_task_env(12.0), "fcfs+easy")
        .into_values()
        .collect();
    assert_eq!(got, [0.0, 10.0, 15.0, 15.0]);
}

#[test]
fn under_a_commit_discipline_waiting_needs_a_running_task() {
    use lepton_env::{Env, EnvError};
    let mut env = four_task_env(5.0);
    let ScenarioEnv::Cluster(c) = &mut env else {
        unreachable!()
    };
    c.set_discipline(lepton_env::cluster::Discipline::Strict);
    let mut obs = vec![0.0; env.observation_space().dim()];
    let mut mask = vec![false; env.action_space().n];
    let wait = mask.len() - 1;
    env.reset(Some(0), &mut obs);
    // t = 0: A is queued and nothing runs: A must be chosen.
    env.action_mask(&mut mask);
    assert_eq!(mask, [true, false, false]);
    assert!(matches!(
        env.step(wait, &mut obs),
        Err(EnvError::Illegal { .. })
    ));
    env.step(0, &mut obs).unwrap();
    // t = 1: B is queued and A runs: B may be chosen, or the env may wait for A.
    assert_eq!(env.clock(), Some(1.0));
    env.action_mask(&mut mask);
    assert_eq!(mask, [true, false, true]);
    env.step(wait, &mut obs).unwrap();
    assert_eq!(env.clock(), Some(2.0), "the next event: C arrives");
}

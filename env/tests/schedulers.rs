//! Each heuristic's choice pinned on small hand-built states, the registry, and DeepRM's
//! SJF/Packer semantics on the real DeepRM env.

use lepton_env::scenario::{Scenario, ScenarioEnv};
use lepton_env::schedulers::{
    self, Heuristic, QueuedTask, Rule, RunningTask, Scheduler, ServerInfo, Snapshot, WeightedParams,
};
use lepton_env::workload::MAX_RESOURCES;
use lepton_env::{Env, EpisodeMetrics};
use std::path::Path;

fn arr(values: &[u32]) -> [u32; MAX_RESOURCES] {
    let mut out = [0; MAX_RESOURCES];
    out[..values.len()].copy_from_slice(values);
    out
}

fn task(slot: usize, task_id: u64, arrival_s: f64, demand: &[u32], estimate_s: f64) -> QueuedTask {
    QueuedTask {
        slot,
        task_id,
        arrival_s,
        demand: arr(demand),
        estimate_s,
        priority: 0,
        deadline_s: None,
    }
}

fn server(capacity: &[u32], free: &[u32]) -> ServerInfo {
    ServerInfo {
        capacity: arr(capacity),
        free: arr(free),
        speed: 1.0,
        health: 0.0,
    }
}

fn running(server: usize, demand: &[u32], estimated_finish_s: f64) -> RunningTask {
    RunningTask::new(0, server, demand, estimated_finish_s)
}

/// The action `rule` takes; placement-mode actions are `slot × num_servers + server`.
fn decide(rule: Rule, s: &Snapshot) -> usize {
    Heuristic::new("test", rule).action_in(s)
}

/// One single-resource server with 10 units of which `free` are free; 4 slots.
fn one_server(now_s: f64, free: u32, tasks: Vec<QueuedTask>, run: Vec<RunningTask>) -> Snapshot {
    Snapshot::by_hand(now_s, 1, 4, tasks, vec![server(&[10], &[free])], run)
}

const WAIT_4X1: usize = 4; // 4 slots × 1 server

#[test]
fn fcfs_starts_the_oldest_task_or_waits_for_it() {
    // Slot 0 arrived at t=3, slot 1 at t=1: slot 1 is the head and fits (2 <= 3 free).
    let s = one_server(
        5.0,
        3,
        vec![task(0, 5, 3.0, &[1], 1.0), task(1, 2, 1.0, &[2], 9.0)],
        vec![],
    );
    assert_eq!(decide(Rule::Fcfs, &s), 1);
    // The head (slot 1, demand 4) does not fit in 3 free units: FCFS waits although slot 0 fits.
    let s = one_server(
        5.0,
        3,
        vec![task(0, 5, 3.0, &[1], 1.0), task(1, 2, 1.0, &[4], 9.0)],
        vec![],
    );
    assert_eq!(decide(Rule::Fcfs, &s), WAIT_4X1);
    // Equal arrivals: the lower task id is first.
    let s = one_server(
        5.0,
        9,
        vec![task(0, 8, 1.0, &[1], 1.0), task(2, 3, 1.0, &[1], 1.0)],
        vec![],
    );
    assert_eq!(decide(Rule::Fcfs, &s), 2);
}

#[test]
fn fcfs_uses_the_first_server_that_fits() {
    let servers = vec![server(&[4], &[1]), server(&[4], &[3]), server(&[4], &[4])];
    let s = Snapshot::by_hand(0.0, 1, 2, vec![task(1, 0, 0.0, &[2], 1.0)], servers, vec![]);
    // slot 1 × 3 servers + server 1
    assert_eq!(decide(Rule::Fcfs, &s), 4);
}

#[test]
fn sjf_takes_the_shortest_fitting_task_ties_to_the_lowest_slot() {
    let tasks = vec![
        task(0, 0, 0.0, &[2], 5.0),
        task(1, 1, 0.0, &[9], 1.0), // shortest but does not fit in 4 free units
        task(2, 2, 0.0, &[1], 3.0),
        task(3, 3, 0.0, &[1], 3.0), // same estimate as slot 2: slot 2 wins
    ];
    assert_eq!(decide(Rule::Sjf, &one_server(0.0, 4, tasks, vec![])), 2);
    // Nothing fits: wait.
    let s = one_server(0.0, 0, vec![task(0, 0, 0.0, &[2], 5.0)], vec![]);
    assert_eq!(decide(Rule::Sjf, &s), WAIT_4X1);
}

#[test]
fn packer_maximises_free_dot_demand() {
    // Free (6, 2) of (10, 10). Dot products (raw units): slot 0: 6·1 + 2·2 = 10;
    // slot 1: 6·5 + 2·1 = 32; slot 2: 6·3 + 2·2 = 22; slot 3 demands 3 of resource 1: no fit.
    let tasks = vec![
        task(0, 0, 0.0, &[1, 2], 1.0),
        task(1, 1, 0.0, &[5, 1], 1.0),
        task(2, 2, 0.0, &[3, 2], 1.0),
        task(3, 3, 0.0, &[6, 3], 1.0),
    ];
    let s = Snapshot::by_hand(0.0, 2, 4, tasks, vec![server(&[10, 10], &[6, 2])], vec![]);
    assert_eq!(decide(Rule::Packer, &s), 1);
    // Ties (6·2 + 2·0 = 12 = 6·1 + 2·3) go to the lowest slot.
    let tasks = vec![
        task(0, 0, 0.0, &[1, 3], 1.0),
        task(1, 1, 0.0, &[2, 0], 1.0),
        task(2, 2, 0.0, &[2, 0], 1.0),
    ];
    let s = Snapshot::by_hand(0.0, 2, 4, tasks, vec![server(&[10, 10], &[6, 4])], vec![]);
    // slot 0: 6·1 + 4·3 = 18 beats 12.
    assert_eq!(decide(Rule::Packer, &s), 0);
    let tasks = vec![
        task(0, 0, 0.0, &[1, 1], 1.0),
        task(1, 1, 0.0, &[2, 0], 1.0),
        task(2, 2, 0.0, &[2, 0], 1.0),
    ];
    let s = Snapshot::by_hand(0.0, 2, 4, tasks, vec![server(&[10, 10], &[6, 6])], vec![]);
    // slot 0: 6 + 6 = 12; slots 1 and 2: 12 too: all tie, the lowest slot wins.
    assert_eq!(decide(Rule::Packer, &s), 0);
}

#[test]
fn tetris_combines_alignment_with_shortest_remaining_work() {
    // One server (10, 10) with free (10, 2). Fractions of capacity:
    //   slot 0: demand (5, 1), estimate 10: a = 1.0·0.5 + 0.2·0.1 = 0.52, w = 10·0.6 = 6
    //   slot 1: demand (1, 1), estimate 1:  a = 1.0·0.1 + 0.2·0.1 = 0.12, w = 1·0.2 = 0.2
    // mean a = 0.32, mean w = 3.1, ε = 0.32 / 3.1 = 0.10323
    //   score 0 = 0.52 − 0.10323·6 = −0.0994;  score 1 = 0.12 − 0.10323·0.2 = 0.0994
    // Pure alignment (Packer) would take slot 0; the SRTF term makes Tetris take slot 1.
    let tasks = vec![
        task(0, 0, 0.0, &[5, 1], 10.0),
        task(1, 1, 0.0, &[1, 1], 1.0),
    ];
    let s = Snapshot::by_hand(0.0, 2, 4, tasks, vec![server(&[10, 10], &[10, 2])], vec![]);
    assert_eq!(decide(Rule::Packer, &s), 0);
    assert_eq!(decide(Rule::Tetris { srtf_weight: 1.0 }, &s), 1);
    // With the SRTF term switched off Tetris is alignment only.
    assert_eq!(decide(Rule::Tetris { srtf_weight: 0.0 }, &s), 0);
}

#[test]
fn best_fit_and_worst_fit_place_the_oldest_fitting_task() {
    // Head (slot 0, demand 6) fits nowhere; the next oldest (slot 2, arrival 1, demand 2)
    // fits on all three servers: leftovers 3−2 = 1/8, 5−2 = 3/8, 2−2 = 0/8.
    // Loads: server 0 (8−3)/8, server 1 (8−5)/8, server 2 (8−2)/8.
    let tasks = vec![
        task(0, 0, 0.0, &[6], 1.0),
        task(1, 1, 2.0, &[1], 1.0),
        task(2, 2, 1.0, &[2], 1.0),
    ];
    let servers = vec![server(&[8], &[3]), server(&[8], &[5]), server(&[8], &[2])];
    let s = Snapshot::by_hand(5.0, 1, 3, tasks, servers, vec![]);
    assert_eq!(decide(Rule::BestFit, &s), 2 * 3 + 2);
    assert_eq!(decide(Rule::WorstFit, &s), 2 * 3 + 1);
}

#[test]
fn edf_prefers_the_earliest_deadline_and_deadlines_over_none() {
    let mut tasks = vec![
        task(0, 0, 0.0, &[1], 1.0),
        task(1, 1, 0.0, &[1], 1.0),
        task(2, 2, 0.0, &[1], 1.0),
        task(3, 3, 0.0, &[9], 1.0),
    ];
    tasks[1].deadline_s = Some(50.0);
    tasks[2].deadline_s = Some(20.0);
    tasks[3].deadline_s = Some(5.0); // earliest, but does not fit
    assert_eq!(
        decide(Rule::Edf, &one_server(0.0, 4, tasks.clone(), vec![])),
        2
    );
    // No deadlines at all: the earliest arrival.
    let plain = vec![task(0, 0, 4.0, &[1], 1.0), task(1, 1, 2.0, &[1], 1.0)];
    assert_eq!(decide(Rule::Edf, &one_server(9.0, 4, plain, vec![])), 1);
}

#[test]
fn weighted_priority_trades_runtime_against_slack() {
    // now = 10. slot 0: estimate 20, deadline 40 → slack 10; slot 1: estimate 5, no deadline
    // → slack 100 (configured). α=1, β=0.5: P0 = 20 + 5 = 25, P1 = 5 + 50 = 55 → slot 0.
    let mut tasks = vec![task(0, 0, 0.0, &[1], 20.0), task(1, 1, 0.0, &[1], 5.0)];
    tasks[0].deadline_s = Some(40.0);
    let s = one_server(10.0, 4, tasks, vec![]);
    let params = WeightedParams {
        alpha: 1.0,
        beta: 0.5,
        no_deadline_slack_s: 100.0,
    };
    assert_eq!(decide(Rule::Weighted(params), &s), 0);
    // α=4, β=0.1: P0 = 80 + 1 = 81, P1 = 20 + 10 = 30 → slot 1.
    let params = WeightedParams {
        alpha: 4.0,
        beta: 0.1,
        no_deadline_slack_s: 100.0,
    };
    assert_eq!(decide(Rule::Weighted(params), &s), 1);
    // Equal P: the higher priority class wins over the lower slot.
    let mut tasks = vec![task(0, 0, 0.0, &[1], 5.0), task(1, 1, 0.0, &[1], 5.0)];
    tasks[1].priority = 2;
    let params = WeightedParams {
        alpha: 1.0,
        beta: 0.0,
        no_deadline_slack_s: 0.0,
    };
    assert_eq!(
        decide(Rule::Weighted(params), &one_server(0.0, 4, tasks, vec![])),
        1
    );
}

#[test]
fn easy_backfills_only_what_cannot_delay_the_head() {
    // 10 units, 4 free; running: 3 units until t=20, 3 units until t=50. now = 10.
    // Head (slot 0, arrival 0) needs 7: at t=20 free = 7 → shadow 20, extra = 7 − 7 = 0.
    let run = vec![running(0, &[3], 20.0), running(0, &[3], 50.0)];
    // slot 1: 2 units for 15 s → ends 25 > 20 and 2 > extra 0: refused.
    // slot 2: 4 units for 10 s → ends exactly at the shadow time: allowed.
    let tasks = vec![
        task(0, 0, 0.0, &[7], 5.0),
        task(1, 1, 1.0, &[2], 15.0),
        task(2, 2, 2.0, &[4], 10.0),
    ];
    assert_eq!(
        decide(Rule::Easy, &one_server(10.0, 4, tasks, run.clone())),
        2
    );
    // Only the long task: wait.
    let tasks = vec![task(0, 0, 0.0, &[7], 5.0), task(1, 1, 1.0, &[2], 15.0)];
    assert_eq!(
        decide(Rule::Easy, &one_server(10.0, 4, tasks, run.clone())),
        WAIT_4X1
    );
    // Head needs 6: shadow 20 with 7 free → extra 1; a long 1-unit task uses the extra nodes.
    let tasks = vec![
        task(0, 0, 0.0, &[6], 5.0),
        task(1, 1, 1.0, &[2], 99.0),
        task(2, 2, 2.0, &[1], 99.0),
    ];
    assert_eq!(decide(Rule::Easy, &one_server(10.0, 4, tasks, run)), 2);
    // The head fits: it starts (FCFS).
    let tasks = vec![task(0, 0, 0.0, &[3], 5.0), task(1, 1, 1.0, &[1], 1.0)];
    assert_eq!(decide(Rule::Easy, &one_server(10.0, 4, tasks, vec![])), 0);
}

#[test]
fn easy_backfills_freely_on_servers_other_than_the_reserved_one() {
    // Server 0 (cap 8, 0 free) frees 8 at t=30; server 1 (cap 4, 2 free) can never hold the
    // head (needs 6). Reservation: server 0 at t=30. A long 2-unit task may run on server 1.
    let run = vec![running(0, &[8], 30.0), running(1, &[2], 100.0)];
    let tasks = vec![task(0, 0, 0.0, &[6], 5.0), task(1, 1, 1.0, &[2], 500.0)];
    let s = Snapshot::by_hand(
        0.0,
        1,
        2,
        tasks,
        vec![server(&[8], &[0]), server(&[4], &[2])],
        run,
    );
    assert_eq!(decide(Rule::Easy, &s), 2 + 1);
}

#[test]
fn hpc_priority_functions_follow_rlscheduler() {
    // now = 100. slot 0: arrival 0 (wait 100), estimate 50, 2 procs;
    //            slot 1: arrival 90 (wait 10), estimate 1, 8 procs.
    // WFP3: −(100/50)³·2 = −16 vs −(10/1)³·8 = −8000 → slot 1.
    // UNICEP: −100/(log2 2 · 50) = −2 vs −10/(log2 8 · 1) = −3.33 → slot 1.
    // F1: log10(50)·2 + 870·log10(0.1) = 3.40 − 870 vs log10(1)·8 + 870·log10(90) = 1700 → slot 0.
    let tasks = vec![task(0, 0, 0.0, &[2], 50.0), task(1, 1, 90.0, &[8], 1.0)];
    let s = Snapshot::by_hand(100.0, 1, 2, tasks, vec![server(&[16], &[16])], vec![]);
    assert_eq!(decide(Rule::Wfp3, &s), 1);
    assert_eq!(decide(Rule::Unicep, &s), 1);
    assert_eq!(decide(Rule::F1, &s), 0);
    // UNICEP with a long wait on a 4-proc job: −400/(2·100) = −2 vs −10/(3·1) = −3.33 → 1 still;
    // with wait 1000: −1000/(2·100) = −5 → slot 0.
    let tasks = vec![task(0, 0, 0.0, &[4], 100.0), task(1, 1, 990.0, &[8], 1.0)];
    let s = Snapshot::by_hand(1000.0, 1, 2, tasks, vec![server(&[16], &[16])], vec![]);
    assert_eq!(decide(Rule::Unicep, &s), 0);
}

#[test]
fn every_rule_waits_when_nothing_fits() {
    let s = one_server(
        0.0,
        1,
        vec![task(0, 0, 0.0, &[3], 1.0), task(1, 1, 0.0, &[2], 1.0)],
        vec![],
    );
    let rules = [
        Rule::Fcfs,
        Rule::Sjf,
        Rule::Packer,
        Rule::Tetris { srtf_weight: 1.0 },
        Rule::BestFit,
        Rule::WorstFit,
        Rule::Edf,
        Rule::Weighted(WeightedParams::default()),
        Rule::Easy,
        Rule::Wfp3,
        Rule::Unicep,
        Rule::F1,
    ];
    for rule in rules {
        assert_eq!(decide(rule, &s), WAIT_4X1, "{rule:?}");
    }
}

#[test]
fn registry_knows_every_name_and_rejects_unknown_ones() {
    // Each default name reports as itself, or with its default parameters spelled out.
    for name in schedulers::NAMES {
        let built = schedulers::by_name(name).unwrap().name();
        assert!(
            built == *name || built.starts_with(&format!("{name}:")),
            "{name} reports as {built}"
        );
    }
    assert_eq!(
        schedulers::by_name("fastest").unwrap().name(),
        "fastest:sjf"
    );
    let err = schedulers::by_name("shortest").err().unwrap().to_string();
    assert!(
        err.contains("unknown scheduler `shortest`") && err.contains("packer, tetris"),
        "{err}"
    );
    assert_eq!(
        schedulers::by_name("weighted:2:0.25").unwrap().name(),
        "weighted:2:0.25"
    );
    let err = schedulers::by_name("weighted:2").err().unwrap().to_string();
    assert!(err.contains("weighted:ALPHA:BETA"), "{err}");
    assert!(schedulers::by_name("sjf:3").is_err());
}

fn scenario(text: &str) -> Scenario {
    Scenario::from_toml_str(text, Path::new("inline.toml")).unwrap()
}

fn run(name: &str, env: &mut ScenarioEnv, seed: u64) -> EpisodeMetrics {
    let mut s = schedulers::by_name(name).unwrap();
    schedulers::run_episode(s.as_mut(), env, seed).unwrap()
}

#[test]
fn random_is_legal_seeded_and_spread_over_legal_actions() {
    let mut env = lepton_env::scenario::load_named("tiny").unwrap().build();
    let a = run("random", &mut env, 3);
    let b = run("random", &mut env, 3);
    assert_eq!(a, b, "same seed, same episode");
    let c = run("random", &mut env, 4);
    assert_ne!(a, c);
    // Uniform over legal entries.
    let mut random = schedulers::RandomScheduler::new(1, schedulers::RandomDraw::Legal);
    let mask = [false, true, false, true, true];
    let mut counts = [0usize; 5];
    for _ in 0..3000 {
        counts[random.act(&env, &[], &mask)] += 1;
    }
    assert_eq!(counts[0] + counts[2], 0);
    for &c in &[counts[1], counts[3], counts[4]] {
        assert!((900..1100).contains(&c), "{counts:?}");
    }
}

/// DeepRM's random agent draws over all 5 indices; the illegal ones (0, 2) wait (index 4): wait
/// gets 3/5 of the picks, each legal placement 1/5.
#[test]
fn deeprm_random_waits_on_illegal_picks() {
    let env = lepton_env::scenario::load_named("deeprm").unwrap().build();
    let mut random = schedulers::RandomScheduler::new(1, schedulers::RandomDraw::DeepRm);
    let mask = [false, true, false, true, true];
    let mut counts = [0usize; 5];
    for _ in 0..5000 {
        counts[random.act(&env, &[], &mask)] += 1;
    }
    assert_eq!(counts[0] + counts[2], 0);
    assert!((900..1100).contains(&counts[1]), "{counts:?}");
    assert!((900..1100).contains(&counts[3]), "{counts:?}");
    assert!((2850..3150).contains(&counts[4]), "{counts:?}");
    let mut env = env;
    assert_eq!(
        run("deeprm_random", &mut env, 3),
        run("deeprm_random", &mut env, 3)
    );
}

#[test]
fn every_heuristic_finishes_every_shipped_scenario_legally() {
    for scenario_name in lepton_env::scenario::SHIPPED {
        let mut env = lepton_env::scenario::load_named(scenario_name)
            .unwrap()
            .build();
        for name in schedulers::NAMES {
            let m = run(name, &mut env, 11);
            assert_eq!(
                m.num_finished + m.num_dropped + m.num_unfinished,
                m.num_tasks,
                "{scenario_name}/{name}"
            );
            let again = run(name, &mut env, 11);
            assert_eq!(m, again, "{scenario_name}/{name} is not deterministic");
        }
    }
}

/// DeepRM machine (10, 10), horizon 20, with one job already allocated; see the test.
const DEEPRM_LIST: &str = r#"
model = "deeprm"
name = "deeprm-list"
resources = ["res0", "res1"]
capacity = [10, 10]
horizon = 20
num_slots = 4
backlog_cap = 10
max_steps = 100
[workload]
kind = "list"
tasks = [
  { id = 0, arrival_s = 0, duration_s = 3, demand = [8, 1] },
  { id = 1, arrival_s = 0, duration_s = 1, demand = [5, 1] },
  { id = 2, arrival_s = 0, duration_s = 2, demand = [2, 2] },
  { id = 3, arrival_s = 0, duration_s = 2, demand = [1, 1] },
]
"#;

#[test]
fn deeprm_sjf_and_packer_consider_only_jobs_that_fit_now_for_their_whole_length() {
    let mut env = scenario(DEEPRM_LIST).build();
    let mut obs = vec![0.0; env.observation_space().dim()];
    env.reset(Some(0), &mut obs);
    // Allocate job 0 (slot 0: 8 units of res0 for 3 steps): offsets 0..3 have 2 free.
    env.step(0, &mut obs).unwrap();
    let ScenarioEnv::DeepRm(deeprm) = &env else {
        unreachable!()
    };
    // Job 1 (5 units, len 1) no longer fits now but would fit at offset 3 (a reservation);
    // jobs 2 and 3 fit now.
    assert!(!deeprm.fits_now(1) && deeprm.fits(1));
    assert!(deeprm.fits_now(2) && deeprm.fits_now(3));
    let mut mask = vec![false; env.action_space().n];
    env.action_mask(&mut mask);
    // SJF: job 1 is the shortest (len 1) but does not fit now; jobs 2 and 3 tie at len 2 →
    // the lowest slot, 2.
    let mut sjf = schedulers::by_name("sjf").unwrap();
    assert_eq!(sjf.act(&env, &obs, &mask), 2);
    // Packer: free now (2, 9): job 2: 2·2 + 9·2 = 22; job 3: 2·1 + 9·1 = 11 → slot 2.
    let mut packer = schedulers::by_name("packer").unwrap();
    assert_eq!(packer.act(&env, &obs, &mask), 2);
    // After job 2 and job 3 start, only job 1 is left and it does not fit now: both wait
    // (void action 4), although DeepRM's env would let an agent reserve it at offset 3.
    env.step(2, &mut obs).unwrap();
    env.step(3, &mut obs).unwrap();
    env.action_mask(&mut mask);
    assert!(
        mask[1],
        "job 1 is legal for an agent (a future reservation)"
    );
    assert_eq!(sjf.act(&env, &obs, &mask), 4);
    assert_eq!(packer.act(&env, &obs, &mask), 4);
}

/// DeepRM's own definitions, written against the env's grid API: among slots whose job fits
/// in rows `0..len` of the free grid, SJF takes the largest 1/len and Packer the largest
/// free(offset 0) · demand, each strictly greater (so ties go to the lowest slot); nothing
/// fits → the void action.
fn deeprm_reference(env: &lepton_env::DeepRmEnv, packer: bool) -> usize {
    let mut best: Option<(f64, usize)> = None;
    for k in 0..env.num_slots() {
        let Some(job) = env.slot(k) else { continue };
        let len = job.estimate_s as usize;
        let fits = (0..len).all(|t| env.free_at(t).iter().zip(job.demand).all(|(&f, &d)| d <= f));
        if !fits {
            continue;
        }
        let score = if packer {
            env.free_at(0)
                .iter()
                .zip(job.demand)
                .map(|(&f, &d)| f64::from(f) * f64::from(d))
                .sum()
        } else {
            1.0 / len as f64
        };
        if best.is_none_or(|(b, _)| score > b) {
            best = Some((score, k));
        }
    }
    best.map_or(env.wait_action(), |(_, k)| k)
}

#[test]
fn deeprm_sjf_and_packer_agree_with_deeprms_definitions_at_every_decision() {
    let scenario = lepton_env::scenario::load_named("deeprm").unwrap();
    for name in ["sjf", "packer"] {
        let mut decisions = 0;
        for seed in 0..20 {
            let mut env = scenario.build();
            let mut scheduler = schedulers::by_name(name).unwrap();
            schedulers::run_episode_with(scheduler.as_mut(), &mut env, seed, |env, action| {
                let ScenarioEnv::DeepRm(deeprm) = env else {
                    unreachable!()
                };
                assert_eq!(
                    action,
                    schedulers::Decision::Action(deeprm_reference(deeprm, name == "packer")),
                    "{name}, seed {seed}"
                );
                decisions += 1;
            })
            .unwrap();
        }
        assert!(
            decisions > 1000,
            "{name}: only {decisions} decisions checked"
        );
    }
}

/// One 1-cpu server; at t=0, X (true 10 s, estimated 1 s) and Y (true 2 s, estimated 5 s).
/// SJF trusts the estimates and runs X first: X finishes at 10 (slowdown 1), Y at 12
/// (slowdown 6), mean 3.5. Rolling SJF out after each candidate shows that Y first is better:
/// Y at 2 (slowdown 1), X at 12 (slowdown 1.2), mean 1.1.
const MISLEADING_ESTIMATES: &str = r#"
name = "misleading-estimates"
resources = ["cpu"]
[[server_types]]
name = "s"
count = 1
capacity = [1]
[queue]
num_slots = 2
backlog_cap = 4
[workload]
kind = "list"
tasks = [
  { id = 0, arrival_s = 0.0, duration_s = 10.0, estimate_s = 1.0, demand = [1] },
  { id = 1, arrival_s = 0.0, duration_s = 2.0, estimate_s = 5.0, demand = [1] },
]
"#;

#[test]
fn lookahead_sees_through_misleading_estimates_by_hand() {
    let mut env = scenario(MISLEADING_ESTIMATES).build();
    let sjf = run("sjf", &mut env, 0);
    assert!((sjf.completion_slowdown - 3.5).abs() < 1e-9, "{sjf:?}");
    let lookahead = run("lookahead:sjf:0", &mut env, 0);
    assert!(
        (lookahead.completion_slowdown - 1.1).abs() < 1e-9,
        "{lookahead:?}"
    );
}

#[test]
fn rollout_plans_on_the_estimates_by_hand() {
    // The rollout's worlds give X and Y their estimates (1 s and 5 s), so X first looks best
    // there (mean 1.1) and Y first worse (mean 3.5): it does what SJF does and scores SJF's
    // 3.5 on the true durations, where the future-seeing lookahead scores 1.1.
    let mut env = scenario(MISLEADING_ESTIMATES).build();
    for samples in [1, 3] {
        let rollout = run(&format!("rollout:sjf:{samples}"), &mut env, 0);
        assert!(
            (rollout.completion_slowdown - 3.5).abs() < 1e-9,
            "{rollout:?}"
        );
    }
}

/// Plays the lowest-numbered legal action (a task if one can start, else wait) to the end.
fn play_first_legal(env: &mut ScenarioEnv) -> EpisodeMetrics {
    let mut obs = vec![0.0; env.observation_space().dim()];
    let mut mask = vec![false; env.action_space().n];
    loop {
        if let Some(m) = env.episode_metrics() {
            return m.clone();
        }
        env.action_mask(&mut mask);
        let action = mask.iter().position(|&legal| legal).unwrap();
        env.step(action, &mut obs).unwrap();
    }
}

#[test]
fn a_redrawn_world_runs_on_the_estimates_by_hand() {
    // One 2-cpu server. At t=0: A (true 10 s, estimated 4 s, 1 cpu), B (true 3, est 6, 2 cpus)
    // and E (1 s, 1 cpu); C (10 s, 1 cpu) at t=100. A starts; at the next decision (t=0, E
    // can start, B cannot) the world is redrawn. Then E runs 0-1; B waits for A.
    // - True world: A ends at 10, B runs 10-13 (slowdown 13/3); mean (1 + 13/3 + 1 + 1)/4.
    // - Redrawn: A is taken to end at its estimate 4, B runs 4-10 on its estimate 6 (10/6);
    //   the list workload redraws C as itself, 100 s after the last arrival: mean
    //   (1 + 10/6 + 1 + 1)/4.
    // - Redrawn keeping no arrivals: C is gone, mean (1 + 10/6 + 1)/3.
    let text = r#"
name = "redraw-by-hand"
resources = ["cpu"]
[[server_types]]
name = "s"
count = 1
capacity = [2]
[queue]
num_slots = 4
backlog_cap = 4
[actions]
mode = "slot"
[workload]
kind = "list"
tasks = [
  { id = 0, arrival_s = 0.0, duration_s = 10.0, estimate_s = 4.0, demand = [1] },
  { id = 1, arrival_s = 0.0, duration_s = 3.0, estimate_s = 6.0, demand = [2] },
  { id = 2, arrival_s = 0.0, duration_s = 1.0, demand = [1] },
  { id = 3, arrival_s = 100.0, duration_s = 10.0, demand = [1] },
]
"#;
    let mut env = scenario(text).build();
    let mut obs = vec![0.0; env.observation_space().dim()];
    env.reset(Some(0), &mut obs);
    env.step(0, &mut obs).unwrap();
    let mut world = env.clone();
    let (env_before_truth, env_before_truth_again) = (env.clone(), env.clone());
    world.redraw_hidden(5, None);
    let redrawn = play_first_legal(&mut world);
    let truth = play_first_legal(&mut env);
    let mean = |xs: [f64; 4]| xs.iter().sum::<f64>() / 4.0;
    assert!(
        (truth.completion_slowdown - mean([1.0, 13.0 / 3.0, 1.0, 1.0])).abs() < 1e-9,
        "{truth:?}"
    );
    assert!(
        (redrawn.completion_slowdown - mean([1.0, 10.0 / 6.0, 1.0, 1.0])).abs() < 1e-9,
        "{redrawn:?}"
    );
    // The same world keeping no arrival ends when A, B and E are done: C never comes.
    let mut world = env_before_truth;
    world.redraw_hidden(5, Some(0));
    let short = play_first_legal(&mut world);
    assert_eq!(short.num_tasks, 3, "{short:?}");
    assert!(
        (short.completion_slowdown - (1.0 + 10.0 / 6.0 + 1.0) / 3.0).abs() < 1e-9,
        "{short:?}"
    );
    // Keeping one arrival keeps C (and more than there are keeps them all).
    for arrivals in [1, 5] {
        let mut world = env_before_truth_again.clone();
        world.redraw_hidden(5, Some(arrivals));
        assert_eq!(play_first_legal(&mut world), redrawn, "{arrivals} arrivals");
    }
}

#[test]
fn a_redrawn_world_looks_the_same_and_follows_its_seed() {
    // Redrawing changes only what no scheduler sees: the observation and the mask stay, and
    // the same seed gives the same world, another seed another one.
    for name in ["cloud-sorted", "deeprm"] {
        let mut env = lepton_env::scenario::load_named(name).unwrap().build();
        let dim = env.observation_space().dim();
        let (mut obs, mut after) = (vec![0.0; dim], vec![0.0; dim]);
        let mut mask = vec![false; env.action_space().n];
        env.reset(Some(11), &mut obs);
        let mut tetris = schedulers::by_name("tetris").unwrap();
        for _ in 0..60 {
            env.action_mask(&mut mask);
            let action = tetris.act(&env, &obs, &mask);
            env.step(action, &mut obs).unwrap();
        }
        env.write_observation(&mut after);
        assert_eq!(obs, after, "{name}");
        env.action_mask(&mut mask);
        let mut play = |seed: u64| {
            let mut world = env.clone();
            world.redraw_hidden(seed, None);
            let mut seen = (vec![0.0; dim], vec![false; mask.len()]);
            world.write_observation(&mut seen.0);
            world.action_mask(&mut seen.1);
            let (mut scratch, mut m) = (vec![0.0; dim], vec![false; mask.len()]);
            while world.episode_metrics().is_none() {
                world.action_mask(&mut m);
                let action = tetris.act(&world, &scratch, &m);
                world.step(action, &mut scratch).unwrap();
            }
            (seen, world.episode_metrics().unwrap().clone())
        };
        let (seen, a) = play(7);
        assert_eq!(seen, (obs.clone(), mask.clone()), "{name}");
        assert_eq!(a, play(7).1, "{name}");
        assert_ne!(a, play(8).1, "{name}");
    }
}

#[test]
fn rollout_is_seeded_and_legal_on_both_env_kinds() {
    for name in ["tiny", "deeprm"] {
        let mut env = lepton_env::scenario::load_named(name).unwrap().build();
        let a = run("rollout:sjf:2", &mut env, 3);
        assert_eq!(
            a,
            run("rollout:sjf:2", &mut env, 3),
            "{name}: same seed, same episode"
        );
        assert_eq!(
            a.num_finished + a.num_dropped + a.num_unfinished,
            a.num_tasks,
            "{name}"
        );
    }
    // A whole-queue base: the episode runs under its discipline and chooses by task index.
    let mut env = lepton_env::scenario::load_named("tiny").unwrap().build();
    let mut rollout = schedulers::by_name("rollout:sjf+easy:2:3").unwrap();
    assert_eq!(rollout.name(), "rollout:sjf+easy:2:3");
    assert_eq!(
        rollout.discipline(),
        Some(lepton_env::cluster::Discipline::Easy)
    );
    let a = schedulers::run_episode(rollout.as_mut(), &mut env, 3).unwrap();
    assert_eq!(a, run("rollout:sjf+easy:2:3", &mut env, 3));
    assert_eq!(a.num_finished, a.num_tasks);
}

#[test]
fn lookahead_is_deterministic_and_never_worse_than_its_base() {
    let mut env = lepton_env::scenario::load_named("tiny").unwrap().build();
    let mut strictly_better = 0;
    for seed in 0..6 {
        // Slot heuristics, and whole-queue batch schedulers under their own disciplines.
        for base in [
            "tetris",
            "sjf",
            "fcfs",
            "sjf+greedy",
            "sjf+easy",
            "fcfs+conservative",
        ] {
            let b = run(base, &mut env, seed);
            let spec = format!("lookahead:{base}:0");
            let l = run(&spec, &mut env, seed);
            assert!(
                l.completion_slowdown <= b.completion_slowdown + 1e-9,
                "seed {seed}: {spec} {} > {base} {}",
                l.completion_slowdown,
                b.completion_slowdown
            );
            strictly_better += usize::from(l.completion_slowdown < b.completion_slowdown - 1e-9);
            assert_eq!(l, run(&spec, &mut env, seed), "{spec} is not deterministic");
        }
    }
    assert!(
        strictly_better > 0,
        "the lookahead never improved on its base"
    );
    // A finite horizon still finishes the episode legally.
    let m = run("lookahead:tetris:5", &mut env, 1);
    assert_eq!(
        m.num_finished + m.num_dropped + m.num_unfinished,
        m.num_tasks
    );
}

#[test]
fn lookahead_names_parse_and_stay_out_of_the_default_list() {
    assert!(!schedulers::NAMES.iter().any(|n| n.starts_with("lookahead")));
    assert_eq!(
        schedulers::by_name("lookahead").unwrap().name(),
        "lookahead:tetris:0"
    );
    assert_eq!(
        schedulers::by_name("lookahead:sjf").unwrap().name(),
        "lookahead:sjf:0"
    );
    assert_eq!(
        schedulers::by_name("lookahead:weighted:1:0.5:20")
            .unwrap()
            .name(),
        "lookahead:weighted:1:0.5:20"
    );
    for bad in [
        "lookahead:random:0",
        "lookahead:lookahead:0",
        "lookahead:nope:0",
        "lookahead:sjf:x",
    ] {
        assert!(schedulers::by_name(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_rule_that_would_wait_starts_the_longest_waiting_placeable_task_when_waiting_is_forbidden() {
    // The FCFS head (slot 0, arrived t=0, 8 units) does not fit in 3 free units, so FCFS
    // waits; slots 1 (t=2) and 2 (t=1) fit. With waiting forbidden, slot 2 (waited longer) goes.
    let tasks = vec![
        task(0, 10, 0.0, &[8], 1.0),
        task(1, 11, 2.0, &[2], 1.0),
        task(2, 12, 1.0, &[3], 5.0),
    ];
    // `wait` holds every task back whenever it may, so it falls back the same way.
    let mut s = one_server(4.0, 3, tasks, vec![]);
    for rule in [Rule::Fcfs, Rule::Wait] {
        assert_eq!(decide(rule, &s), WAIT_4X1, "{rule:?}");
    }
    s.wait_allowed = false;
    for rule in [Rule::Fcfs, Rule::Wait] {
        assert_eq!(decide(rule, &s), 2, "{rule:?}");
    }
    // A rule that starts something anyway is unaffected.
    assert_eq!(decide(Rule::Sjf, &s), 1);
}

#[test]
fn wait_is_a_rule_by_name_only() {
    assert_eq!(schedulers::by_name("wait").unwrap().name(), "wait");
    assert!(
        !schedulers::NAMES.contains(&"wait"),
        "no scheduler to compare with"
    );
}

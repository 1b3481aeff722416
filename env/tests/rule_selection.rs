//! Rule selection: hand-checked decisions, masks and observations on a tiny list workload,
//! refusals, and determinism on a shipped scenario.

use lepton_env::scenario::{Scenario, load_named};
use lepton_env::schedulers::{RuleSelectionEnv, RuleSelectionError, by_name, run_episode};
use lepton_env::{ActionBlock, Env, EnvError};
use std::path::Path;

/// One 1-cpu server; at t = 0 a long task (4 s, slot 0) and a short one (1 s, slot 1).
const TWO_TASKS: &str = r#"
name = "two-tasks"
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
  { id = 0, arrival_s = 0.0, duration_s = 4.0, estimate_s = 4.0, demand = [1] },
  { id = 1, arrival_s = 0.0, duration_s = 1.0, estimate_s = 1.0, demand = [1] },
]
"#;

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn two_tasks() -> RuleSelectionEnv {
    let scenario = Scenario::from_toml_str(TWO_TASKS, Path::new("inline.toml")).unwrap();
    RuleSelectionEnv::new(scenario.build(), &names(&["fcfs", "sjf"])).unwrap()
}

#[test]
fn each_action_carries_out_its_rules_decision_by_hand() {
    let mut env = two_tasks();
    let layout = env.action_layout();
    assert_eq!(layout.blocks, vec![ActionBlock::Rules { n: 2 }]);
    assert_eq!(layout.rules, names(&["fcfs", "sjf"]));
    let inner_dim = env.inner().observation_space().dim();
    // Two rules × (2 slots + wait).
    assert_eq!(env.observation_space().dim(), inner_dim + 6);
    let mut obs = vec![0.0; env.observation_space().dim()];
    let mut mask = vec![false; 2];

    env.reset(Some(0), &mut obs);
    env.action_mask(&mut mask);
    // FCFS starts the oldest task (slot 0), SJF the short one (slot 1): both legal.
    assert_eq!(&obs[inner_dim..], &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
    assert_eq!(mask, [true, true]);
    let t = env.step(1, &mut obs).unwrap();
    assert!(!t.episode_over());

    // Only the long task is left: both rules start it, so only rule 0 is legal and rule 1
    // is refused without changing anything.
    env.action_mask(&mut mask);
    assert_eq!(mask, [true, false]);
    assert_eq!(&obs[inner_dim..], &[1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
    assert!(matches!(
        env.step(1, &mut obs),
        Err(EnvError::Illegal { .. })
    ));
    assert!(matches!(
        env.step(2, &mut obs),
        Err(EnvError::OutOfRange { .. })
    ));
    let t = env.step(0, &mut obs).unwrap();
    assert!(t.episode_over());
    assert!(obs[inner_dim..].iter().all(|&x| x == 0.0));
    // Short task 0→1 (slowdown 1), long task 1→5 (slowdown 5/4): mean 1.125, where FCFS
    // alone scores (1 + 5) / 2 = 3.
    let m = env.episode_metrics().unwrap();
    assert_eq!(m.num_finished, 2);
    assert!((m.completion_slowdown - 1.125).abs() < 1e-12, "{m:?}");
    assert!(matches!(env.step(0, &mut obs), Err(EnvError::EpisodeOver)));

    let scenario = Scenario::from_toml_str(TWO_TASKS, Path::new("inline.toml")).unwrap();
    let fcfs = run_episode(by_name("fcfs").unwrap().as_mut(), &mut scenario.build(), 0).unwrap();
    assert!((fcfs.completion_slowdown - 3.0).abs() < 1e-12);
}

#[test]
fn rule_lists_that_cannot_work_are_refused_by_name() {
    let env = || load_named("cloud-slot").unwrap().build();
    let err = |list: &[&str]| RuleSelectionEnv::new(env(), &names(list)).err().unwrap();
    assert_eq!(err(&[]), RuleSelectionError::Empty);
    let unknown = err(&["sjf", "nope"]).to_string();
    assert!(unknown.starts_with("rule `nope`: "), "{unknown}");
    let lookahead = err(&["lookahead:sjf:0"]).to_string();
    assert!(lookahead.contains("sees the future"), "{lookahead}");
    let easy = err(&["sjf+easy"]).to_string();
    assert!(easy.contains("its own discipline"), "{easy}");
    let greedy_batch = RuleSelectionEnv::new(
        load_named("cloud-slot").unwrap().build(),
        &names(&["sjf", "sjf+greedy"]),
    );
    assert!(
        greedy_batch.is_ok(),
        "a greedy batch rule fits a greedy scenario"
    );
}

/// Plays `seed` choosing the highest legal rule at every step; returns the observations.
fn play(env: &mut RuleSelectionEnv, seed: u64) -> (Vec<f32>, f64) {
    let n = env.action_space().n;
    let mut obs = vec![0.0; env.observation_space().dim()];
    let mut mask = vec![false; n];
    let mut trace = Vec::new();
    env.reset(Some(seed), &mut obs);
    loop {
        trace.extend_from_slice(&obs);
        env.action_mask(&mut mask);
        assert!(mask[0], "rule 0 is always legal");
        let action = (0..n).rev().find(|&k| mask[k]).unwrap();
        if env.step(action, &mut obs).unwrap().episode_over() {
            let m = env.episode_metrics().unwrap();
            assert_eq!(
                m.num_finished + m.num_dropped + m.num_unfinished,
                m.num_tasks
            );
            return (trace, m.completion_slowdown);
        }
    }
}

#[test]
fn rule_selection_is_deterministic_and_a_single_rule_plays_that_rule() {
    let rules = names(&["sjf", "tetris", "best_fit", "random"]);
    let mut a = RuleSelectionEnv::new(load_named("cloud-slot").unwrap().build(), &rules).unwrap();
    let mut b = RuleSelectionEnv::new(load_named("cloud-slot").unwrap().build(), &rules).unwrap();
    assert_eq!(play(&mut a, 5), play(&mut b, 5));
    // With one rule the env plays exactly that heuristic's episode.
    let mut sjf_only =
        RuleSelectionEnv::new(load_named("cloud-slot").unwrap().build(), &names(&["sjf"])).unwrap();
    let (_, slowdown) = play(&mut sjf_only, 5);
    let mut plain = load_named("cloud-slot").unwrap().build();
    let sjf = run_episode(by_name("sjf").unwrap().as_mut(), &mut plain, 5).unwrap();
    assert_eq!(slowdown, sjf.completion_slowdown);
}

#[test]
fn a_whole_queue_rule_chooses_from_the_backlog() {
    // `sjf+greedy` alone plays exactly its own episode, which starts tasks that wait outside
    // the ten visible slots: each rule's one-hot gets a backlog column (10 slots, wait,
    // backlog), and some observations mark it.
    let cloud_slot = || load_named("cloud-slot").unwrap().build();
    let inner_dim = cloud_slot().observation_space().dim();
    let mut only = RuleSelectionEnv::new(cloud_slot(), &names(&["sjf+greedy"])).unwrap();
    assert_eq!(only.observation_space().dim(), inner_dim + 12);
    let (trace, slowdown) = play(&mut only, 5);
    let batch = run_episode(
        by_name("sjf+greedy").unwrap().as_mut(),
        &mut cloud_slot(),
        5,
    )
    .unwrap();
    assert_eq!(slowdown, batch.completion_slowdown);
    let width = inner_dim + 12;
    let backlog = trace
        .chunks(width)
        .filter(|obs| obs[inner_dim + 11] == 1.0)
        .count();
    assert!(backlog > 0, "no decision started a task from the backlog");
    // Beside a slot rule: two one-hots of 12.
    let mixed = RuleSelectionEnv::new(cloud_slot(), &names(&["sjf", "sjf+greedy"])).unwrap();
    assert_eq!(mixed.observation_space().dim(), inner_dim + 24);
    // Slot rules alone keep the layout of checkpoints trained before (slots + wait).
    let slots = RuleSelectionEnv::new(cloud_slot(), &names(&["sjf", "tetris"])).unwrap();
    assert_eq!(slots.observation_space().dim(), inner_dim + 22);
}

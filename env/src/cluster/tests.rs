//! Hand-checked cluster dynamics on tiny inputs.

use super::*;
use crate::api::{ActionBlock, Env, EnvError};
use crate::workload::TaskList;
use std::sync::Arc;

const EPS: f64 = 1e-9;

fn one_server_two_tasks() -> ClusterConfig {
    // One server with 2 units; A (work 4, 2 units) at t=0, B (work 2, 1 unit) at t=1.
    let tasks = vec![
        TaskSpec::new(1, 0.0, 4.0, &[2]),
        TaskSpec::new(2, 1.0, 2.0, &[1]),
    ];
    let mut config = ClusterConfig::new(
        vec!["cpu".into()],
        vec![ServerType::new("s", 1, &[2], 1.0)],
        Arc::new(TaskList::new(tasks)),
    );
    config.num_slots = 2;
    config
}

fn obs_for(env: &ClusterEnv) -> Vec<f32> {
    vec![0.0; env.obs_layout().dim()]
}

#[test]
fn return_is_minus_total_slowdown_on_a_hand_computed_case() {
    let mut env = ClusterEnv::new(one_server_two_tasks());
    let mut obs = obs_for(&env);
    env.reset(Some(0), &mut obs);
    assert_eq!(env.now_s(), 0.0);
    assert_eq!(env.action_space().n, 3);
    // One server: placements and slots have the same count; the layout tells them apart.
    assert_eq!(
        env.action_layout().blocks,
        [
            ActionBlock::Placements {
                slots: 2,
                servers: 1
            },
            ActionBlock::Wait
        ]
    );
    assert_eq!(env.slot(0).map(|s| s.task_id), Some(1));

    // t=0: place A. Nothing else fits until A completes at 4, so the env skips there:
    // cost = 1·(1/4) over [0,1] + 3·(1/4 + 1/2) over [1,4] = 2.5.
    let t = env.step(env.action_index(0, 0).unwrap(), &mut obs).unwrap();
    assert!((f64::from(t.reward) + 2.5).abs() < 1e-6, "{t:?}");
    assert_eq!(env.now_s(), 4.0);
    assert!(!t.episode_over());

    // t=4: B waited 3; mask: slot 0 on server 0 and wait only.
    let b = env.slot(0).unwrap();
    assert_eq!((b.task_id, b.waiting_s), (2, 3.0));
    let mut mask = vec![false; 3];
    env.action_mask(&mut mask);
    assert_eq!(mask, vec![true, false, true]);

    // Place B; it completes at 6: cost 2·(1/2) = 1; terminated.
    let t = env.step(0, &mut obs).unwrap();
    assert!((f64::from(t.reward) + 1.0).abs() < 1e-6, "{t:?}");
    assert!(t.terminated && !t.truncated);

    // Slowdowns: A = 4/4 = 1, B = (6−1)/2 = 2.5; return −3.5 = −Σ slowdown.
    let m = env.episode_metrics().unwrap();
    assert_eq!(
        (m.num_tasks, m.num_finished, m.num_dropped, m.num_unfinished),
        (2, 2, 0, 0)
    );
    assert!((m.mean_slowdown - 1.75).abs() < EPS);
    assert!(
        (m.completion_slowdown - 1.75).abs() < EPS,
        "all finished: the same mean"
    );
    assert!((m.p50_slowdown - 1.0).abs() < EPS);
    assert!((m.p95_slowdown - 2.5).abs() < EPS);
    assert!((m.mean_bounded_slowdown - 1.0).abs() < EPS);
    assert!((m.mean_wait - 1.5).abs() < EPS);
    assert!((m.mean_completion_time - 4.5).abs() < EPS);
    assert!((m.makespan - 6.0).abs() < EPS);
    // 2 units busy over [0,4], 1 over [4,6], of 2 units × 6 s.
    assert!((m.utilization[0] - 10.0 / 12.0).abs() < EPS);
    assert_eq!(m.deadline_miss_rate, 0.0);
}

#[test]
fn bounded_slowdown_reward_divides_by_at_least_ten_seconds() {
    // A (work 4, 2 units) runs 0-4; B (work 2) arrives at 1 and runs 4-6. Bounded-slowdown
    // weight only: A costs 4/10, B (6 − 1)/10: the return is −0.9.
    let mut config = one_server_two_tasks();
    config.reward.slowdown = 0.0;
    config.reward.bounded_slowdown = 1.0;
    let mut env = ClusterEnv::new(config);
    let mut obs = obs_for(&env);
    env.reset(Some(0), &mut obs);
    let mut total = 0.0;
    loop {
        let mut mask = vec![false; 3];
        env.action_mask(&mut mask);
        let action = if mask[0] { 0 } else { 2 };
        let t = env.step(action, &mut obs).unwrap();
        total += f64::from(t.reward);
        if t.episode_over() {
            break;
        }
    }
    assert!((total + 0.9).abs() < 1e-6, "{total}");
}

#[test]
fn illegal_action_is_an_error_and_changes_nothing() {
    let mut env = ClusterEnv::new(one_server_two_tasks());
    let mut obs = obs_for(&env);
    env.reset(Some(0), &mut obs);
    let before = obs.clone();
    // Slot 1 is empty.
    assert!(matches!(
        env.step(1, &mut obs),
        Err(EnvError::Illegal { action: 1, .. })
    ));
    assert!(matches!(
        env.step(3, &mut obs),
        Err(EnvError::OutOfRange { action: 3, n: 3 })
    ));
    assert_eq!(obs, before);
    assert_eq!(env.census().num_queued, 1);
    assert_eq!(env.now_s(), 0.0);
}

#[test]
fn illegal_action_acts_as_wait_when_configured() {
    let mut config = one_server_two_tasks();
    config.illegal_action = IllegalAction::Wait;
    let mut env = ClusterEnv::new(config);
    let mut obs = obs_for(&env);
    env.reset(Some(0), &mut obs);
    // A wait jumps to B's arrival at 1; A is still queued and fits, so no further skip.
    let t = env.step(1, &mut obs).unwrap();
    assert_eq!(env.now_s(), 1.0);
    assert!((f64::from(t.reward) + 0.25).abs() < 1e-6);
}

#[test]
fn stepped_mode_advances_one_step_per_wait() {
    let mut config = one_server_two_tasks();
    config.time_mode = TimeMode::Stepped;
    config.step_s = 0.5;
    let mut env = ClusterEnv::new(config);
    let mut obs = obs_for(&env);
    env.reset(Some(0), &mut obs);
    env.step(0, &mut obs).unwrap(); // place A, clock stays
    assert_eq!(env.now_s(), 0.0);
    let mut rewards = 0.0;
    while !env.slot(0).is_some_and(|_| env.fits(0, 0)) {
        rewards += f64::from(env.step(env.wait_action(), &mut obs).unwrap().reward);
    }
    assert_eq!(env.now_s(), 4.0);
    assert!((rewards + 2.5).abs() < 1e-6);
}

#[test]
fn slot_mode_uses_the_placement_rule() {
    let tasks = vec![TaskSpec::new(1, 0.0, 1.0, &[2])];
    let types = vec![
        ServerType::new("big", 1, &[4], 1.0),
        ServerType::new("small", 1, &[2], 1.0),
    ];
    let mut config = ClusterConfig::new(vec!["cpu".into()], types, Arc::new(TaskList::new(tasks)));
    config.action_mode = ActionMode::Slot;
    let env = ClusterEnv::new(config.clone());
    assert_eq!(env.action_space().n, 11);
    assert_eq!(
        env.action_layout().blocks,
        [ActionBlock::Slots { slots: 10 }, ActionBlock::Wait]
    );
    assert_eq!(env.chosen_server(0), Some(0));
    assert_eq!(env.action_index(0, 0), Some(0));
    assert_eq!(env.action_index(0, 1), None);
    config.placement_rule = PlacementRule::BestFit;
    let mut env = ClusterEnv::new(config);
    assert_eq!(env.chosen_server(0), Some(1));
    assert_eq!(env.slot_action_index(0), Some(0));
    let mut obs = obs_for(&env);
    env.step(0, &mut obs).unwrap();
    let running: Vec<_> = env.running().collect();
    assert!(running.is_empty(), "the task finished during the skip");
    assert!(env.episode_metrics().is_some());
}

#[test]
fn fastest_fit_takes_the_first_fitting_server_of_the_fastest_type_that_has_one() {
    // Servers 0-1 "slow" (4 cpus, speed 1), 2 "fast" (2 cpus, speed 1.5), 3 "fast-too"
    // (4 cpus, speed 1.5). A 2-cpu task goes to server 2 (fast, lowest index); a 3-cpu task
    // fits no 2-cpu server, so to server 3, the other speed-1.5 type. With server 3 taken, a
    // 3-cpu task falls back to server 0, the first slow one.
    let types = vec![
        ServerType::new("slow", 2, &[4], 1.0),
        ServerType::new("fast", 1, &[2], 1.5),
        ServerType::new("fast-too", 1, &[4], 1.5),
    ];
    let tasks = vec![
        TaskSpec::new(1, 0.0, 10.0, &[2]),
        TaskSpec::new(2, 0.0, 10.0, &[3]),
        TaskSpec::new(3, 0.0, 10.0, &[3]),
    ];
    let mut config = ClusterConfig::new(vec!["cpu".into()], types, Arc::new(TaskList::new(tasks)));
    config.action_mode = ActionMode::Slot;
    config.placement_rule = PlacementRule::FastestFit;
    let mut env = ClusterEnv::new(config);
    assert_eq!(env.chosen_server(0), Some(2));
    assert_eq!(env.chosen_server(1), Some(3));
    let mut obs = obs_for(&env);
    env.step(1, &mut obs).unwrap(); // the 3-cpu task onto server 3
    assert_eq!(env.chosen_server(0), Some(2));
    assert_eq!(env.chosen_server(2), Some(0));
}

#[test]
fn running_tasks_expose_estimated_not_true_finish() {
    let mut task = TaskSpec::new(1, 0.0, 10.0, &[1]);
    task.estimate_s = 4.0;
    let tasks = vec![task, TaskSpec::new(2, 0.0, 1.0, &[1])];
    let config = ClusterConfig::new(
        vec!["cpu".into()],
        vec![ServerType::new("fast", 1, &[2], 2.0)],
        Arc::new(TaskList::new(tasks)),
    );
    let mut env = ClusterEnv::new(config);
    let mut obs = obs_for(&env);
    env.step(0, &mut obs).unwrap();
    let r: Vec<_> = env.running().collect();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].estimated_finish_s, 2.0); // 4 / speed 2, not 10 / 2
    assert_eq!(env.slot(1).unwrap().estimate_s, 1.0);
}

#[test]
fn oversize_task_is_dropped_and_counted_under_the_drop_policy() {
    let tasks = vec![
        TaskSpec::new(7, 0.0, 1.0, &[5]),
        TaskSpec::new(8, 1.0, 1.0, &[1]),
    ];
    let mut config = ClusterConfig::new(
        vec!["cpu".into()],
        vec![ServerType::new("s", 2, &[4], 1.0)],
        Arc::new(TaskList::new(tasks)),
    );
    config.reward.dropped = 3.0;
    let mut env = ClusterEnv::new(config);
    let mut obs = obs_for(&env);
    assert_eq!(env.census().num_dropped, 1);
    // The drop penalty accrued during reset is paid with the first step.
    let t = env.step(0, &mut obs).unwrap();
    assert!((f64::from(t.reward) + 3.0 + 1.0).abs() < 1e-6, "{t:?}");
    assert!(t.terminated);
    let m = env.episode_metrics().unwrap();
    assert_eq!((m.num_tasks, m.num_finished, m.num_dropped), (2, 1, 1));
}

#[test]
fn backlog_overflow_is_dropped_and_deadline_misses_are_counted() {
    // Capacity 1, one slot, backlog 1: of three simultaneous tasks one is dropped.
    let mut tasks: Vec<_> = (0..3).map(|i| TaskSpec::new(i, 0.0, 2.0, &[1])).collect();
    tasks[1].deadline_s = Some(3.0); // runs [2,4]: missed
    let mut config = ClusterConfig::new(
        vec!["cpu".into()],
        vec![ServerType::new("s", 1, &[1], 1.0)],
        Arc::new(TaskList::new(tasks)),
    );
    config.num_slots = 1;
    config.backlog_cap = 1;
    config.reward = RewardWeights {
        slowdown: 0.0,
        bounded_slowdown: 0.0,
        wait: 0.0,
        deadline_miss: 1.0,
        dropped: 10.0,
        energy_kwh: 0.0,
    };
    let mut env = ClusterEnv::new(config);
    let mut obs = obs_for(&env);
    assert_eq!(env.census().num_dropped, 1);
    assert_eq!(env.backlog_len(), 1);
    let mut total = 0.0;
    loop {
        let t = env.step(0, &mut obs).unwrap();
        total += f64::from(t.reward);
        if t.episode_over() {
            break;
        }
    }
    assert!((total + 11.0).abs() < 1e-6);
    let m = env.episode_metrics().unwrap();
    assert_eq!(m.deadline_miss_rate, 1.0);
    assert_eq!(m.num_dropped, 1);
}

#[test]
fn truncation_at_the_time_limit_counts_unfinished_tasks() {
    let mut config = one_server_two_tasks();
    config.max_time_s = 2.0;
    let mut env = ClusterEnv::new(config);
    let mut obs = obs_for(&env);
    let t = env.step(0, &mut obs).unwrap();
    assert!(t.truncated && !t.terminated);
    assert_eq!(env.now_s(), 2.0);
    let m = env.episode_metrics().unwrap();
    assert_eq!((m.num_tasks, m.num_finished, m.num_unfinished), (2, 0, 2));
    assert_eq!(env.step(0, &mut obs), Err(EnvError::EpisodeOver));
}

#[test]
fn extended_features_on_a_hand_computed_state() {
    // One server of 2 units. A (work 4, 1 unit) at t=0, B (work 2, 1 unit) at t=1.
    let tasks = vec![
        TaskSpec::new(1, 0.0, 4.0, &[1]),
        TaskSpec::new(2, 1.0, 2.0, &[1]),
    ];
    let mut config = ClusterConfig::new(
        vec!["cpu".into()],
        vec![ServerType::new("s", 1, &[2], 1.0)],
        Arc::new(TaskList::new(tasks)),
    );
    config.num_slots = 2;
    config.extended_features = true;
    let mut env = ClusterEnv::new(config);
    let layout = env.obs_layout();
    // G = 2R + 4, S = 2R + T + 3 + 1, K = R + 7 + 3 with R = T = 1.
    assert_eq!(
        (layout.global, layout.server_features, layout.slot_features),
        (6, 7, 11)
    );
    let mut obs = obs_for(&env);
    env.reset(Some(0), &mut obs);
    env.step(0, &mut obs).unwrap(); // A starts at t=0; the next decision is B's arrival
    assert_eq!(env.now_s(), 1.0);
    let server = &obs[6..13];
    // A's remaining work: 3 s to go × 1/2 of the server = 1.5 → 1.5 / 2.5.
    assert!((f64::from(server[6]) - 0.6).abs() < 1e-6, "{server:?}");
    let slot0 = &obs[13..24];
    // B: 1/estimate = 1/2; waited 0 of its 2 s; work 2 s × 1/2 of the largest server = 1.
    assert_eq!(slot0[0], 1.0);
    assert!((f64::from(slot0[8]) - 0.5).abs() < 1e-6, "{slot0:?}");
    assert_eq!(slot0[9], 0.0);
    assert!((f64::from(slot0[10]) - 0.5).abs() < 1e-6, "{slot0:?}");
}

/// Starts the queued task with id `task_id` on `server`.
fn place(env: &mut ClusterEnv, task_id: u64, server: usize) {
    let slot = (0..env.num_slots())
        .find(|&k| env.slot(k).is_some_and(|s| s.task_id == task_id))
        .unwrap();
    let mut obs = obs_for(env);
    env.step(env.action_index(slot, server).unwrap(), &mut obs)
        .unwrap();
}

#[test]
fn the_schedule_recorder_logs_runs_kills_and_down_time_exactly() {
    // Two 2-unit servers. A (id 1, work 5, 2 units) at 0; B (id 2, work 2, 1 unit) and C
    // (id 3, work 2, 2 units, priority 1) at 1. Server 1 fails at 4 and is repaired at 6.
    let mut c = TaskSpec::new(3, 1.0, 2.0, &[2]);
    c.priority = 1;
    let tasks = vec![
        TaskSpec::new(1, 0.0, 5.0, &[2]),
        TaskSpec::new(2, 1.0, 2.0, &[1]),
        c,
    ];
    let mut config = ClusterConfig::new(
        vec!["cpu".into()],
        vec![ServerType::new("s", 2, &[2], 1.0)],
        Arc::new(TaskList::new(tasks)),
    );
    config.num_slots = 3;
    let mut env = ClusterEnv::new(config);
    let mut obs = obs_for(&env);
    env.reset(Some(0), &mut obs);
    assert_eq!(env.schedule(), None, "off by default");

    let play = |env: &mut ClusterEnv| {
        let mut obs = obs_for(env);
        env.reset(Some(0), &mut obs);
        env.events.push(4.0, EventKind::Failure { server: 1 });
        env.events.push(6.0, EventKind::Repair { server: 1 });
        place(env, 1, 0); // A on 0 at t=0: runs 0..5; the env skips to the arrivals at 1
        place(env, 3, 1); // C on 1 at t=1: runs 1..3; nothing fits until C ends at 3
        assert_eq!(env.now_s(), 3.0);
        place(env, 2, 1); // B on 1 at t=3; killed at 4 and requeued; server 0 frees at 5
        assert_eq!(env.now_s(), 5.0);
        place(env, 2, 0); // B on 0 at t=5: runs 5..7, the episode's end
        assert!(env.episode_metrics().is_some());
    };
    env.record_schedule(true);
    play(&mut env);
    // Task `i`'s demand: A and C 2 units, B 1.
    let units = |task: usize| {
        let mut demand = [0; crate::workload::MAX_RESOURCES];
        demand[0] = if task == 1 { 1 } else { 2 };
        demand
    };
    let run = |task, task_id, priority, server, queued_s, start_s, end_s, end| TaskRun {
        task,
        task_id,
        priority,
        server,
        gpus: 0,
        demand: units(task),
        queued_s,
        start_s,
        end_s,
        end,
    };
    let expected = Schedule {
        num_servers: 2,
        gpus_per_server: vec![],
        now_s: 7.0,
        runs: vec![
            run(2, 3, 1, 1, 1.0, 1.0, 3.0, RunEnd::Finished),
            run(1, 2, 0, 1, 1.0, 3.0, 4.0, RunEnd::Killed),
            run(0, 1, 0, 0, 0.0, 0.0, 5.0, RunEnd::Finished),
            run(1, 2, 0, 0, 4.0, 5.0, 7.0, RunEnd::Finished),
        ],
        downs: vec![DownInterval {
            server: 1,
            start_s: 4.0,
            end_s: 6.0,
        }],
        machine_units: vec![],
    };
    assert_eq!(env.schedule().as_ref(), Some(&expected));
    assert_eq!(env.episode_metrics().unwrap().num_killed, 1);
    // A reset clears the episode and keeps recording; the same play records the same.
    play(&mut env);
    assert_eq!(env.schedule(), Some(expected));
    env.record_schedule(false);
    assert_eq!(env.schedule(), None);
}

#[test]
fn a_run_still_going_at_truncation_is_cut_at_the_clock() {
    let mut config = one_server_two_tasks();
    config.max_time_s = 3.0;
    let mut env = ClusterEnv::new(config);
    env.record_schedule(true);
    let mut obs = obs_for(&env);
    env.reset(Some(0), &mut obs);
    place(&mut env, 1, 0); // A (work 4) on 0 at t=0: truncated at 3 with B still queued
    let schedule = env.schedule().unwrap();
    assert_eq!(schedule.now_s, 3.0);
    assert_eq!(
        schedule.runs,
        vec![TaskRun {
            task: 0,
            task_id: 1,
            priority: 0,
            server: 0,
            gpus: 0,
            demand: [2, 0, 0, 0, 0, 0, 0, 0],
            queued_s: 0.0,
            start_s: 0.0,
            end_s: 3.0,
            end: RunEnd::Unfinished,
        }]
    );
}

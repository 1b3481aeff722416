//! Hand-checked preemption, migration and checkpoint-restart, and the heuristics that use
//! them, on tiny inputs.

use super::*;
use crate::api::{ActionBlock, Env, EnvError};
use crate::scenario::ScenarioEnv;
use crate::schedulers::{self, Decision, Scheduler};
use crate::workload::TaskList;
use std::sync::Arc;

const EPS: f64 = 1e-9;

fn obs_for(env: &ClusterEnv) -> Vec<f32> {
    vec![0.0; env.obs_layout().dim()]
}

fn preemption(checkpoint_s: f64, restart_s: f64) -> Preemption {
    Preemption {
        running_rows: 2,
        preempt: true,
        migrate: true,
        checkpoint_s,
        restart_s,
        migration_s: 0.0,
        gpu_migration_s: 0.0,
        decide_every_s: None,
    }
}

fn config(servers: usize, capacity: &[u32], speed: f64, tasks: Vec<TaskSpec>) -> ClusterConfig {
    let resources = (0..capacity.len()).map(|r| format!("r{r}")).collect();
    let mut config = ClusterConfig::new(
        resources,
        vec![ServerType::new("s", servers, capacity, speed)],
        Arc::new(TaskList::new(tasks)),
    );
    config.num_slots = 2;
    config
}

fn task(id: u64, arrival_s: f64, work_s: f64, demand: &[u32], priority: u8) -> TaskSpec {
    let mut t = TaskSpec::new(id, arrival_s, work_s, demand);
    t.priority = priority;
    t
}

fn finish_of(env: &ClusterEnv, id: u64) -> f64 {
    let i = env.tasks.iter().position(|t| t.id == id).unwrap();
    env.records[i].finish_s
}

/// One 2-unit server of speed 2, checkpoints every 3 s, restart 1 s. A (work 20) runs from 0;
/// B (priority 1, work 2) arrives at 7 and A is preempted: it ran 7 s = 14 work, its last
/// checkpoint (at 6 s) keeps 12, so 2 are lost. B runs 7..8; A restarts at 8, reads its
/// checkpoint until 9 and does its last 8 work by 13.
#[test]
fn a_preempted_task_loses_the_work_since_its_last_checkpoint() {
    let mut c = config(
        1,
        &[2],
        2.0,
        vec![task(1, 0.0, 20.0, &[2], 0), task(2, 7.0, 2.0, &[2], 1)],
    );
    c.max_priority = 1;
    c.preemption = Some(Preemption {
        migrate: false,
        ..preemption(3.0, 1.0)
    });
    let mut env = ClusterEnv::new(c);
    env.record_schedule(true);
    let mut obs = obs_for(&env);
    env.reset(Some(0), &mut obs);
    assert_eq!(
        env.action_layout().blocks,
        [
            ActionBlock::Placements {
                slots: 2,
                servers: 1
            },
            ActionBlock::Preempt { rows: 2 },
            ActionBlock::Wait
        ]
    );
    assert_eq!(env.action_space().n, 5);
    let layout = env.obs_layout();
    assert_eq!((layout.running_rows, layout.running_features), (2, 9));
    // A on the server at 0. A run that starts now cannot be stopped now, so nothing is left
    // to decide until B arrives at 7.
    env.step(0, &mut obs).unwrap();
    assert_eq!(env.now_s(), 7.0);
    let mut mask = vec![false; 5];
    env.action_mask(&mut mask);
    assert_eq!(
        mask,
        [false, false, true, false, true],
        "B fits nowhere; A may stop"
    );
    // A's running row: demand 2/2, sq(3 s to its estimated finish), sq(7 s run),
    // sq(2 s of work at risk), priority 0, health 0, server 0 of 1, no GPUs.
    let row = &obs[layout.dim() - 18..layout.dim() - 9];
    let sq = |x: f32| x / (1.0 + x);
    assert_eq!(
        row,
        [1.0, 1.0, sq(3.0), sq(7.0), sq(2.0), 0.0, 0.0, 0.0, 0.0]
    );
    assert!(obs[layout.dim() - 9..].iter().all(|&x| x == 0.0));
    assert_eq!(env.work_at_risk_s(0), 2.0);

    env.step(2, &mut obs).unwrap(); // preempt A (row 0)
    assert_eq!(env.records[0].phase, TaskPhase::Queued);
    assert_eq!(env.records[0].work_done_s, 12.0);
    // B arrived into slot 0; A went back to the queue's lowest empty slot, 1.
    assert_eq!(env.slot(1).map(|s| s.task_id), Some(1));
    env.step(0, &mut obs).unwrap(); // B on the server: 7..8
    assert_eq!(env.now_s(), 8.0);
    assert_eq!(
        env.step_preempt(1, &mut obs),
        Err(EnvError::IllegalTask {
            index: 1,
            reason: "it is not running"
        })
    );
    env.step(1, &mut obs).unwrap(); // A again: checkpoint read 8..9, then 8 work at speed 2
    while env.episode_metrics().is_none() {
        env.step(env.wait_action(), &mut obs).unwrap();
    }
    let m = env.episode_metrics().unwrap().clone();
    assert_eq!((finish_of(&env, 1), finish_of(&env, 2)), (13.0, 8.0));
    assert_eq!((m.num_preempted, m.num_killed, m.lost_work_s), (1, 0, 2.0));
    // Waits: A left the queue last at 8 (arrived 0), B at 7 (arrived 7).
    assert!((m.mean_wait - 4.0).abs() < EPS);
    let runs: Vec<_> = env
        .schedule()
        .unwrap()
        .runs
        .iter()
        .map(|r| (r.task_id, r.queued_s, r.start_s, r.end_s, r.end))
        .collect();
    assert_eq!(
        runs,
        [
            (1, 0.0, 0.0, 7.0, RunEnd::Preempted),
            (2, 7.0, 7.0, 8.0, RunEnd::Finished),
            (1, 7.0, 8.0, 13.0, RunEnd::Finished),
        ]
    );
}

/// Two servers with 2 CPUs and 1 GPU each; migration takes 2 s, 3 s more with a GPU; a tick
/// every 4 s. A (1 CPU + 1 GPU, work 10) and B (1 CPU, work 10) start on server 0 at 0. At
/// the tick at 4 both move to server 1 with all their work (4 done, 6 left): A pauses 5 s and
/// ends at 15, B pauses 2 s and ends at 12.
#[test]
fn a_migration_keeps_the_work_and_costs_its_pause() {
    let mut c = config(
        2,
        &[2, 1],
        1.0,
        vec![
            task(1, 0.0, 10.0, &[1, 1], 0),
            task(2, 0.0, 10.0, &[1, 0], 0),
        ],
    );
    c.gpu = Some(GpuConfig {
        resource: 1,
        units_per_gpu: 1,
        models: Vec::new(),
    });
    c.preemption = Some(Preemption {
        preempt: false,
        migration_s: 2.0,
        gpu_migration_s: 3.0,
        decide_every_s: Some(4.0),
        ..preemption(f64::INFINITY, 0.0)
    });
    let mut env = ClusterEnv::new(c);
    let mut obs = obs_for(&env);
    env.reset(Some(0), &mut obs);
    // Placements 0..4, migrations 4..8 (row × server), wait 8.
    assert_eq!(env.action_space().n, 9);
    env.step(env.action_index(0, 0).unwrap(), &mut obs).unwrap(); // A on 0
    assert_eq!(env.now_s(), 0.0, "B still fits");
    let mut mask = vec![false; 9];
    env.action_mask(&mut mask);
    // A's run started at this instant: it may not move yet.
    assert_eq!(&mask[4..8], [false, false, false, false]);
    env.step(env.action_index(1, 0).unwrap(), &mut obs).unwrap(); // B (slot 1) on 0
    // Nothing to decide until the tick at 4.
    assert_eq!((env.census().num_running, env.now_s()), (2, 4.0));
    env.action_mask(&mut mask);
    // Rows: A then B (same start; lower index first). Each may move to server 1 only.
    assert_eq!(&mask[4..8], [false, true, false, true]);
    assert_eq!(
        env.step(4, &mut obs),
        Err(EnvError::Illegal {
            action: 4,
            reason: "the task already runs on this server"
        })
    );
    env.step(5, &mut obs).unwrap(); // A to server 1
    assert_eq!(env.records[0].server, 1);
    // A's run restarted last, so it is row 0 now and B row 1.
    assert_eq!(env.running_rows(), [0, 1]);
    env.step(7, &mut obs).unwrap(); // B to server 1
    while env.episode_metrics().is_none() {
        env.step(env.wait_action(), &mut obs).unwrap();
    }
    let m = env.episode_metrics().unwrap().clone();
    assert_eq!((finish_of(&env, 1), finish_of(&env, 2)), (15.0, 12.0));
    assert_eq!((m.num_migrated, m.lost_work_s, m.mean_wait), (2, 0.0, 0.0));
}

/// Plays `scheduler` on `env` from a reset, after `inject` changes the state at the first
/// decision (a failure scheduled by hand).
fn play(
    env: &mut ScenarioEnv,
    scheduler: &mut dyn Scheduler,
    inject: impl FnOnce(&mut ClusterEnv),
) -> crate::EpisodeMetrics {
    let mut obs = vec![0.0; env.observation_space().dim()];
    let mut mask = vec![false; env.action_space().n];
    scheduler.reset(0);
    env.reset(Some(0), &mut obs);
    let ScenarioEnv::Cluster(cluster) = env else {
        unreachable!()
    };
    inject(cluster);
    while env.episode_metrics().is_none() {
        env.action_mask(&mut mask);
        match scheduler.decide(env, &obs, &mask) {
            Decision::Action(a) => env.step(a, &mut obs),
            Decision::Task(i) => env.step_task(i, &mut obs),
            Decision::Preempt(i) => env.step_preempt(i, &mut obs),
            Decision::Migrate { task, server } => env.step_migrate(task, server as usize, &mut obs),
        }
        .unwrap();
    }
    env.episode_metrics().unwrap().clone()
}

/// Plays the registered scheduler `name` on a fresh env of `config`, from a reset.
fn play_named(config: ClusterConfig, name: &str) -> (ClusterEnv, crate::EpisodeMetrics) {
    let mut env = ScenarioEnv::Cluster(ClusterEnv::new(config));
    let m = play(
        &mut env,
        schedulers::by_name(name).unwrap().as_mut(),
        |_| {},
    );
    let ScenarioEnv::Cluster(cluster) = env else {
        unreachable!()
    };
    (cluster, m)
}

/// Two 1-unit servers; a noiseless health signal with a 10 s lead; a tick every second; A
/// (work 20) starts on server 0 at 0, which fails at 15 (announced). `evacuate` reads 0.5 at
/// 10 and moves A to server 1 (1 s pause): it ends at 21 and nothing is killed. `tetris`
/// loses A's 15 s at the failure and restarts it on server 1: it ends at 35; with checkpoints
/// every 4 s (restart 2 s) it keeps 12, loses 3 and ends at 15 + 2 + 8 = 25.
#[test]
fn a_predicted_failure_triggers_a_migration_that_saves_the_task() {
    let build = |checkpoint_s: f64, restart_s: f64| {
        let mut c = config(2, &[1], 1.0, vec![task(1, 0.0, 20.0, &[1], 0)]);
        c.health = Some(HealthModel {
            lead_s: 10.0,
            announced: 1.0,
            noise: 0.0,
            sample_s: 1.0,
        });
        c.preemption = Some(Preemption {
            migration_s: 1.0,
            decide_every_s: Some(1.0),
            ..preemption(checkpoint_s, restart_s)
        });
        ScenarioEnv::Cluster(ClusterEnv::new(c))
    };
    let fail_server_0_at_15 = |env: &mut ClusterEnv| {
        env.events.push(15.0, EventKind::Failure { server: 0 });
        env.next_failure_s[0] = 15.0;
        env.announced[0] = true;
    };
    let run = |scheduler: &str, checkpoint_s: f64, restart_s: f64| {
        let mut env = build(checkpoint_s, restart_s);
        let mut scheduler = schedulers::by_name(scheduler).unwrap();
        let m = play(&mut env, scheduler.as_mut(), fail_server_0_at_15);
        let ScenarioEnv::Cluster(cluster) = &env else {
            unreachable!()
        };
        (
            finish_of(cluster, 1),
            m.num_killed,
            m.num_migrated,
            m.lost_work_s,
        )
    };
    assert_eq!(
        run("evacuate:tetris:0.5", f64::INFINITY, 0.0),
        (21.0, 0, 1, 0.0)
    );
    assert_eq!(run("tetris", f64::INFINITY, 0.0), (35.0, 1, 0, 15.0));
    assert_eq!(run("tetris", 4.0, 2.0), (25.0, 1, 0, 3.0));
}

/// One 2-unit server. L (priority 0, work 10) runs from 0; H (priority 1, work 1) arrives at
/// 3. `preempt` stops L (no checkpoints: 3 lost), runs H 3..4 and L again 4..14; `tetris`
/// makes H wait until 10.
#[test]
fn priority_preemption_stops_the_lower_class() {
    let run = |scheduler: &str| {
        let mut c = config(
            1,
            &[2],
            1.0,
            vec![task(1, 0.0, 10.0, &[2], 0), task(2, 3.0, 1.0, &[2], 1)],
        );
        c.max_priority = 1;
        c.preemption = Some(preemption(f64::INFINITY, 0.0));
        let (env, m) = play_named(c, scheduler);
        let f = |id| finish_of(&env, id);
        (f(1), f(2), m.num_preempted, m.lost_work_s)
    };
    assert_eq!(run("preempt:tetris"), (14.0, 4.0, 1, 3.0));
    assert_eq!(run("tetris"), (10.0, 11.0, 0, 0.0));
}

/// Two 2-unit servers, migration 1 s. `worst_fit` puts X (1 unit, work 10) on server 0 and Y
/// (1 unit, work 10) on server 1 at 0; W (2 units, work 1) arrives at 2 and fits nowhere.
/// `defrag` moves X to server 1 (it ends at 2 + 1 + 8 = 11) and starts W on server 0 at 2
/// (ends 3); `worst_fit` alone starts W when Y ends at 10 (ends 11).
#[test]
fn defrag_moves_a_small_task_to_make_room_for_a_wide_one() {
    let run = |scheduler: &str| {
        let mut c = config(
            2,
            &[2],
            1.0,
            vec![
                task(1, 0.0, 10.0, &[1], 0),
                task(2, 0.0, 10.0, &[1], 0),
                task(3, 2.0, 1.0, &[2], 0),
            ],
        );
        c.num_slots = 3;
        c.preemption = Some(Preemption {
            migration_s: 1.0,
            ..preemption(f64::INFINITY, 0.0)
        });
        let (env, m) = play_named(c, scheduler);
        let f = |id| finish_of(&env, id);
        ((f(1), f(2), f(3)), m.num_migrated)
    };
    assert_eq!(run("defrag:worst_fit"), ((11.0, 10.0, 3.0), 1));
    assert_eq!(run("worst_fit"), ((10.0, 10.0, 11.0), 0));
}

/// Without `[preemption]` the heuristics that preempt or migrate play their base exactly,
/// and nothing is checkpointed.
#[test]
fn without_preemption_the_new_heuristics_are_their_base() {
    for (name, base) in [
        ("preempt:tetris", "tetris"),
        ("defrag:worst_fit", "worst_fit"),
        ("evacuate:sjf:0.5", "sjf"),
    ] {
        let tasks = vec![
            task(1, 0.0, 10.0, &[1], 0),
            task(2, 0.0, 10.0, &[1], 1),
            task(3, 2.0, 1.0, &[2], 1),
        ];
        let metrics = |scheduler: &str| {
            let mut c = config(2, &[2], 1.0, tasks.clone());
            c.max_priority = 1;
            play_named(c, scheduler).1
        };
        assert_eq!(metrics(name), metrics(base), "{name}");
    }
}

/// `[preemption]` with no actions keeps checkpoint-restart only: a running task that could
/// move is no reason to stop the clock. Two 1-unit servers, a tick every second; after A
/// starts at 0 the next decision is B's arrival at 5.
#[test]
fn without_preempt_or_migrate_actions_the_env_stops_only_for_placements() {
    let mut c = config(
        2,
        &[1],
        1.0,
        vec![task(1, 0.0, 10.0, &[1], 0), task(2, 5.0, 1.0, &[1], 0)],
    );
    c.preemption = Some(Preemption {
        preempt: false,
        migrate: false,
        decide_every_s: Some(1.0),
        ..preemption(2.0, 0.0)
    });
    let mut env = ClusterEnv::new(c);
    let mut obs = obs_for(&env);
    env.reset(Some(0), &mut obs);
    assert_eq!(env.action_space().n, 2 * 2 + 1);
    env.step(env.action_index(0, 0).unwrap(), &mut obs).unwrap();
    assert_eq!(env.now_s(), 5.0);
}

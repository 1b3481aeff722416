//! Trace replay (SWF, Alibaba GPU v2023, Tiresias) on the shipped data, and the cluster
//! features that large traces need (GPU sharing and models, reservations, failures, energy)
//! on tiny hand-checked cases.

use lepton_env::cluster::{
    ActionMode, ClusterConfig, ClusterEnv, FailureModel, GpuConfig, KillPolicy, PowerModel,
    Reservation, ServerType,
};
use lepton_env::scenario::{self, Scenario};
use lepton_env::trace::{alibaba, swf, tiresias};
use lepton_env::workload::{TaskList, TaskSpec};
use lepton_env::{Env, check_env};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(rel)
}

#[test]
fn swf_nine_jobs_every_field_by_hand() {
    let t = swf::load(&data("swf/cqsim-test-9jobs.swf"), false).unwrap();
    // (id, submit, run, procs, requested time) straight from the file.
    let expected = [
        (1, 0.0, 4000.0, 40, 4000.0),
        (2, 1000.0, 2000.0, 80, 2000.0),
        (3, 2000.0, 1000.0, 90, 1000.0),
        (4, 3000.0, 5000.0, 20, 5000.0),
        (5, 4000.0, 3000.0, 60, 3000.0),
        (6, 5000.0, 3000.0, 50, 3000.0),
        (7, 6000.0, 2000.0, 50, 3000.0),
        (8, 8000.0, 1000.0, 50, 5000.0),
        (9, 8000.0, 5000.0, 10, 5000.0),
    ];
    assert_eq!(t.tasks.len(), 9);
    for (task, &(id, submit, run, procs, req)) in t.tasks.iter().zip(&expected) {
        assert_eq!(task.id, id);
        assert_eq!(task.arrival_s, submit, "job {id}");
        assert_eq!(task.duration_s, run, "job {id}");
        assert_eq!(task.demand[0], procs, "job {id}");
        assert_eq!(task.estimate_s, req, "job {id}");
        assert_eq!((task.priority, task.deadline_s), (0, None));
    }
    assert_eq!(t.report.num_skipped, 0);
    let cluster = t.cluster.unwrap();
    assert_eq!(cluster.server_types.len(), 1);
    assert_eq!(cluster.server_types[0].count, 1);
    assert_eq!(cluster.server_types[0].capacity[0], 100, "MaxNodes: 100");
}

#[test]
fn swf_lublin_loads_fast_and_replays_windows_of_1024() {
    let start = Instant::now();
    let t = swf::load(&data("swf/lublin_256_new2.swf"), false).unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!("lublin_256_new2.swf: {} jobs in {secs:.4} s", t.tasks.len());
    assert_eq!(t.tasks.len() + t.report.num_skipped, 10_000);
    assert_eq!(t.cluster.unwrap().server_types[0].capacity[0], 256);
    let sc = scenario::load_named("hpc-lublin").unwrap();
    let mut env = sc.build();
    let mut obs = vec![0.0; env.obs_layout().dim()];
    env.reset(Some(3), &mut obs);
    let report = check_env(&env, 5, 3000).unwrap();
    assert!(report.placements > 0);
}

/// RLScheduler's seed-1 test windows of Lublin-256 (all 10,000 jobs are kept, in file order),
/// replayed at their own submit times: the episode with seed k starts at the k-th window's
/// first submit time.
#[test]
fn lublin_replays_rlschedulers_test_windows_at_their_own_times() {
    let jobs = swf::load(&data("swf/lublin_256_new2.swf"), false)
        .unwrap()
        .tasks;
    assert_eq!(jobs.len(), 10_000);
    let path = scenario::scenarios_dir().join("hpc-lublin.toml");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "window_jobs = 1024",
        "window_jobs = 1024\nwindow_sampler = { kind = \"rlscheduler\", seed = 1, episodes = \
         10 }\ntimes = \"absolute\"",
    );
    let mut env = Scenario::from_toml_str(&text, &path).unwrap().build();
    let mut obs = vec![0.0; env.obs_layout().dim()];
    for (seed, start) in [(0, 1981), (3, 8850), (9, 7085), (10, 1981)] {
        env.reset(Some(seed), &mut obs);
        assert_eq!(env.clock(), Some(jobs[start].arrival_s), "seed {seed}");
        assert!(jobs[start].arrival_s > 0.0);
    }
}

#[test]
fn alibaba_default_loads_fast_with_its_1523_nodes() {
    let start = Instant::now();
    let t = alibaba::load(
        &data("alibaba-gpu-v2023/openb_node_list_all_node.csv"),
        &data("alibaba-gpu-v2023/openb_pod_list_default.csv"),
        false,
    )
    .unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!("alibaba default: {} pods in {secs:.4} s", t.tasks.len());
    let cluster = t.cluster.unwrap();
    let nodes: usize = cluster.server_types.iter().map(|t| t.count).sum();
    assert_eq!(nodes, 1523);
    assert_eq!(cluster.server_types.len(), 27);
    assert_eq!(t.report.num_records, 8152);
    assert_eq!(t.report.num_skipped, 897, "pods never scheduled");
    assert_eq!(t.tasks.len(), 8152 - 897);
    // The multi-GPU variant has no time columns: a clear error.
    let err = alibaba::load(
        &data("alibaba-gpu-v2023/openb_node_list_all_node.csv"),
        &data("alibaba-gpu-v2023/openb_pod_list_multigpu50.csv"),
        false,
    )
    .unwrap_err();
    assert!(err.to_string().contains("no column `gpu_spec`"), "{err}");
}

#[test]
fn tiresias_sixty_jobs_on_n32g4() {
    let t = tiresias::load(
        &data("tiresias/60_job.csv"),
        &data("tiresias/n32g4.csv"),
        false,
    )
    .unwrap();
    assert_eq!(t.tasks.len(), 60);
    assert_eq!(t.cluster.unwrap().server_types[0].capacity[0], 128);
    let first = &t.tasks[0];
    assert_eq!((first.id, first.demand[0], first.duration_s), (0, 1, 164.0));
}

#[test]
fn trace_scenarios_reject_bad_input_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let swf_path = dir.path().join("bad.swf");
    std::fs::write(
        &swf_path,
        "; MaxNodes: 4\n1 0 -1 10 2 -1 -1 2 -1 -1 1 -1 -1 -1 -1 -1 -1 -1\n2 0 -1 10\n",
    )
    .unwrap();
    let toml = |extra: &str| {
        format!(
            "name = \"t\"\n[queue]\nnum_slots = 2\nbacklog_cap = 10\n[workload]\nkind = \"swf\"\npath = \"bad.swf\"\n{extra}"
        )
    };
    let scenario_path = dir.path().join("t.toml");
    let err = Scenario::from_toml_str(&toml(""), &scenario_path).unwrap_err();
    assert!(
        err.to_string()
            .contains("bad.swf:3: expected 18 fields, got 4"),
        "{err}"
    );
    assert!(Scenario::from_toml_str(&toml("lenient = true"), &scenario_path).is_ok());
    // A job wider than the machine: rejected with its id.
    std::fs::write(
        &swf_path,
        "; MaxNodes: 4\n7 0 -1 10 8 -1 -1 8 -1 -1 1 -1 -1 -1 -1 -1 -1 -1\n",
    )
    .unwrap();
    let err = Scenario::from_toml_str(&toml(""), &scenario_path).unwrap_err();
    assert!(err.to_string().contains("task 7"), "{err}");
    let err = Scenario::from_toml_str(&toml("oversize = \"drop\""), &scenario_path).unwrap_err();
    assert!(
        err.to_string().contains("no task of the trace fits"),
        "{err}"
    );
}

// ----- Cluster features on hand-checked cases -----

fn gpu_config(tasks: Vec<TaskSpec>) -> ClusterConfig {
    // Resources: cpu, gpu_milli. Server 0: 2 × T4 (model 0); server 1: 1 × V100 (model 1).
    let mut t4 = ServerType::new("t4", 1, &[8, 2000], 1.0);
    t4.gpu_model = Some(0);
    let mut v100 = ServerType::new("v100", 1, &[8, 1000], 1.0);
    v100.gpu_model = Some(1);
    let mut config = ClusterConfig::new(
        vec!["cpu".into(), "gpu_milli".into()],
        vec![t4, v100],
        Arc::new(TaskList::new(tasks)),
    );
    config.gpu = Some(GpuConfig {
        resource: 1,
        units_per_gpu: 1000,
        models: vec!["T4".into(), "V100".into()],
    });
    config.num_slots = 4;
    config
}

#[test]
fn gpu_shares_and_models_are_enforced_by_mask_and_placement() {
    let mut share_a = TaskSpec::new(0, 0.0, 10.0, &[1, 600]);
    share_a.gpu_models = 0b01; // T4 only
    let share_b = TaskSpec::new(1, 0.0, 10.0, &[1, 600]);
    let mut whole = TaskSpec::new(2, 0.0, 10.0, &[1, 1000]);
    whole.gpu_models = 0b01;
    let mut env = ClusterEnv::new(gpu_config(vec![share_a, share_b, whole]));
    let mut obs = vec![0.0; env.obs_layout().dim()];
    env.reset(Some(0), &mut obs);
    // Slot 0 (T4 only) may go on server 0, not on the V100 server.
    assert!(env.fits(0, 0) && !env.fits(0, 1));
    env.step(env.action_index(0, 0).unwrap(), &mut obs).unwrap();
    assert_eq!(env.server_gpu_free(0), [400, 1000]);
    // The whole-GPU T4 task could take GPU 1 of server 0 now, never the V100.
    assert!(env.fits(2, 0) && !env.fits(2, 1));
    // share_b (600) goes on GPU 1 (GPU 0 has only 400 left), never beside share_a.
    assert!(env.fits(1, 0) && env.fits(1, 1));
    env.step(env.action_index(1, 0).unwrap(), &mut obs).unwrap();
    // 800 milli-GPU are free on server 0, but no whole GPU, and the V100 is the wrong
    // model: only wait is legal, so the env skipped to the completions at t = 10.
    assert_eq!(env.now_s(), 10.0);
    assert_eq!(env.server_gpu_free(0), [1000, 1000]);
    let mut mask = vec![false; env.action_space().n];
    env.action_mask(&mut mask);
    assert!(
        mask[env.action_index(2, 0).unwrap()],
        "the whole-GPU task fits now"
    );
    env.check_invariants().unwrap();
    check_env(&env, 0, 200).unwrap();
}

#[test]
fn reserved_servers_only_take_critical_work() {
    let low = TaskSpec::new(0, 0.0, 10.0, &[1]);
    let mut high = TaskSpec::new(1, 0.0, 10.0, &[1]);
    high.priority = 2;
    let mut config = ClusterConfig::new(
        vec!["cpu".into()],
        vec![ServerType::new("s", 2, &[1], 1.0)],
        Arc::new(TaskList::new(vec![low, high])),
    );
    config.reservations = vec![Reservation {
        priority: 2,
        fraction: 0.5,
    }];
    let env = ClusterEnv::new(config);
    assert_eq!(
        (env.server_min_priority(0), env.server_min_priority(1)),
        (0, 2)
    );
    assert!(
        env.fits(0, 0) && !env.fits(0, 1),
        "low priority: server 0 only"
    );
    assert!(env.fits(1, 0) && env.fits(1, 1));
    check_env(&env, 0, 100).unwrap();
}

#[test]
fn energy_of_one_busy_server_by_hand() {
    // One server of 2 cpu, idle 100 W, peak 300 W. A task of 1 cpu for 10 s at t = 0:
    // 200 W (half of the dominant resource) for 10 s = 2000 J.
    let mut ty = ServerType::new("s", 1, &[2], 1.0);
    ty.power = Some(PowerModel {
        idle_w: 100.0,
        peak_w: 300.0,
    });
    let mut config = ClusterConfig::new(
        vec!["cpu".into()],
        vec![ty],
        Arc::new(TaskList::new(vec![TaskSpec::new(0, 0.0, 10.0, &[1])])),
    );
    config.reward.slowdown = 0.0;
    config.reward.energy_kwh = 3600.0; // 1 per kJ
    let mut env = ClusterEnv::new(config);
    let mut obs = vec![0.0; env.obs_layout().dim()];
    env.reset(Some(0), &mut obs);
    let t = env.step(env.action_index(0, 0).unwrap(), &mut obs).unwrap();
    assert!(t.terminated);
    assert!((f64::from(t.reward) + 2.0).abs() < 1e-5, "{t:?}");
    let m = env.episode_metrics().unwrap();
    assert!(
        (m.energy_kwh - 2000.0 / 3.6e6).abs() < 1e-12,
        "{}",
        m.energy_kwh
    );
}

#[test]
fn idle_servers_power_down_and_boot_before_running() {
    // Idle timeout 5 s, boot 3 s; the task arrives at 10: the server is off since 5, the task
    // starts at 13 and ends at 15. Energy: 100 W × 5 s + 0 + 300 W × 5 s (full) = 2000 J.
    let mut ty = ServerType::new("s", 1, &[1], 1.0);
    ty.power = Some(PowerModel {
        idle_w: 100.0,
        peak_w: 300.0,
    });
    let mut config = ClusterConfig::new(
        vec!["cpu".into()],
        vec![ty],
        Arc::new(TaskList::new(vec![TaskSpec::new(0, 10.0, 2.0, &[1])])),
    );
    config.idle_timeout_s = Some(5.0);
    config.boot_s = 3.0;
    let mut env = ClusterEnv::new(config);
    let mut obs = vec![0.0; env.obs_layout().dim()];
    env.reset(Some(0), &mut obs);
    assert_eq!(env.now_s(), 10.0);
    assert!(env.server_is_off(0));
    let t = env.step(env.action_index(0, 0).unwrap(), &mut obs).unwrap();
    assert!(t.terminated);
    let m = env.episode_metrics().unwrap();
    assert_eq!(env.now_s(), 15.0);
    assert!((m.mean_wait - 3.0).abs() < 1e-9, "waited for the boot");
    assert!(
        (m.energy_kwh * 3.6e6 - 2000.0).abs() < 1e-6,
        "{}",
        m.energy_kwh * 3.6e6
    );
}

fn failing_config(on_kill: KillPolicy) -> ClusterConfig {
    let mut ty = ServerType::new("s", 3, &[2], 1.0);
    ty.failure = Some(FailureModel {
        mttf_s: 30.0,
        mttr_s: 5.0,
    });
    let tasks = (0..40)
        .map(|i| TaskSpec::new(i, i as f64 * 2.0, 10.0, &[1]))
        .collect();
    let mut config =
        ClusterConfig::new(vec!["cpu".into()], vec![ty], Arc::new(TaskList::new(tasks)));
    config.on_kill = on_kill;
    config.action_mode = ActionMode::Slot;
    config
}

fn run_first_fit(env: &mut ClusterEnv, seed: u64) -> lepton_env::EpisodeMetrics {
    let mut obs = vec![0.0; env.obs_layout().dim()];
    env.reset(Some(seed), &mut obs);
    loop {
        let action = (0..env.num_slots())
            .find_map(|k| env.slot_action_index(k))
            .unwrap_or(env.wait_action());
        if env.step(action, &mut obs).unwrap().episode_over() {
            return env.episode_metrics().unwrap().clone();
        }
        env.check_invariants().unwrap();
    }
}

#[test]
fn failures_kill_and_requeue_or_drop_and_are_counted() {
    let mut env = ClusterEnv::new(failing_config(KillPolicy::Requeue));
    let m = run_first_fit(&mut env, 1);
    assert!(m.num_failures > 0 && m.num_killed > 0, "{m:?}");
    assert!(m.lost_work_s > 0.0 && m.lost_work_s <= 10.0 * m.num_killed as f64);
    assert_eq!(m.num_finished + m.num_dropped, 40);
    assert_eq!(m.num_dropped, 0, "requeued, never dropped");
    assert_eq!(run_first_fit(&mut env, 1), m, "seeded");
    check_env(&env, 2, 500).unwrap();

    let mut env = ClusterEnv::new(failing_config(KillPolicy::Drop));
    let m = run_first_fit(&mut env, 1);
    assert!(m.num_killed > 0);
    assert_eq!(m.num_dropped, m.num_killed);
    assert_eq!(m.num_finished + m.num_dropped, 40);
    check_env(&env, 2, 500).unwrap();
}

#[test]
fn alibaba_scenario_has_per_type_rows_and_slot_actions() {
    let env = scenario::load_named("alibaba-gpu").unwrap().build();
    let layout = env.obs_layout();
    assert_eq!(layout.server_rows, 27, "one row per server type, not 1,523");
    assert_eq!(env.action_space().n, 16 + 1);
}

/// `path` with `..` resolved, for comparing paths written relative to different folders.
fn canonical(path: &Path) -> PathBuf {
    path.canonicalize()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn source_files_name_the_scenario_then_its_data_files() {
    let dir = scenario::scenarios_dir();
    let lublin = scenario::load_named("hpc-lublin").unwrap().source_files();
    assert_eq!(lublin.len(), 2, "{lublin:?}");
    assert_eq!(lublin[0], dir.join("hpc-lublin.toml"));
    assert_eq!(
        canonical(&lublin[1]),
        canonical(&data("swf/lublin_256_new2.swf"))
    );
    let tiresias = scenario::load_named("tiresias").unwrap().source_files();
    let tiresias: Vec<PathBuf> = tiresias.iter().map(|p| canonical(p)).collect();
    assert_eq!(
        tiresias,
        [
            canonical(&dir.join("tiresias.toml")),
            canonical(&data("tiresias/60_job.csv")),
            canonical(&data("tiresias/n32g4.csv")),
        ]
    );
}

/// A pod asking for more GPUs than 2³² milli-GPUs hold is a bad line (named), not an
/// arithmetic overflow (found by the fuzzer in a build with overflow checks).
#[test]
fn an_alibaba_pod_with_absurd_gpus_is_a_bad_line() {
    use lepton_env::trace::alibaba;
    let nodes = "sn,cpu_milli,memory_mib,gpu,model\nn0,96000,786432,8,V100M32\n";
    let cluster = alibaba::parse_nodes(nodes, Path::new("nodes.csv"), false).unwrap();
    let pods = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n\
                p0,1000,1024,4294967295,1000,,LS,Running,0,100,0\n";
    let err = alibaba::parse_pods(pods, Path::new("pods.csv"), cluster, false).unwrap_err();
    assert!(
        err.to_string().contains("pods.csv:2") && err.to_string().contains("num_gpu 4294967295"),
        "{err}"
    );
}

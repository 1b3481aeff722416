//! Every shipped scenario loads, validates, and passes the env checker; bad scenario files
//! fail with messages that name the file, the key and the reason.

use lepton_env::scenario::{self, SHIPPED, Scenario, ScenarioEnv, ScenarioError};
use lepton_env::{Env, check_env};
use std::path::Path;

fn shipped_text(name: &str) -> String {
    std::fs::read_to_string(scenario::scenarios_dir().join(format!("{name}.toml"))).unwrap()
}

#[test]
fn every_shipped_scenario_passes_check_env() {
    for name in SHIPPED {
        let env = scenario::load_named(name)
            .unwrap_or_else(|e| panic!("{e}"))
            .build();
        let report = check_env(&env, 0, 1500).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(report.placements > 0, "{name}: {report:?}");
    }
}

#[test]
fn shipped_scenarios_in_other_modes_pass_check_env() {
    let variants = [
        (
            "tiny",
            r#"mode = "placement""#,
            "mode = \"slot\"\nplacement_rule = \"best_fit\"",
        ),
        (
            "tiny",
            r#"mode = "placement""#,
            "mode = \"slot\"\ndiscipline = \"strict\"",
        ),
        (
            "tiny",
            r#"mode = "placement""#,
            "mode = \"slot\"\ndiscipline = \"easy\"",
        ),
        (
            "cloud",
            r#"mode = "placement""#,
            "mode = \"slot\"\ndiscipline = \"conservative\"",
        ),
        ("tiny", r#"mode = "event""#, r#"mode = "stepped""#),
        ("tiny", r#"illegal = "error""#, r#"illegal = "wait""#),
        ("cloud", r#"mode = "placement""#, r#"mode = "slot""#),
        (
            "tiny",
            "backlog_cap = 20",
            "backlog_cap = 20\nhold_limit_s = 0",
        ),
        (
            "cloud",
            "backlog_cap = 200",
            "backlog_cap = 200\nhold_limit_s = 30",
        ),
        (
            "cloud",
            "backlog_cap = 200",
            "backlog_cap = 200\nslot_order = \"shortest\"",
        ),
        (
            "cloud",
            "[queue]",
            "[observation]\nextended = true\n[queue]",
        ),
        // Preemption only, in slot mode, with an illegal action that waits.
        (
            "tiny",
            "[actions]\nmode = \"placement\"\nillegal = \"error\"",
            "[actions]\nmode = \"slot\"\nillegal = \"wait\"\n[preemption]\nactions = [\"preempt\"]\n\
             running_rows = 3\ncheckpoint_s = 2.0\nrestart_s = 1.0",
        ),
        // Both actions, with ticks, on tiny's placement mode.
        (
            "tiny",
            "[actions]",
            "[preemption]\nrunning_rows = 4\nmigration_s = 1.0\ndecide_every_s = 3.0\n[actions]",
        ),
    ];
    for (name, from, to) in variants {
        let text = shipped_text(name).replace(from, to);
        assert!(text.contains(to), "{name}: `{from}` not found");
        let env = Scenario::from_toml_str(&text, Path::new(name))
            .unwrap()
            .build();
        check_env(&env, 11, 800).unwrap_or_else(|e| panic!("{name} with {to}: {e}"));
    }
}

#[test]
fn cloud_and_deeprm_have_the_documented_shapes() {
    let cloud = scenario::load_named("cloud").unwrap().build();
    let layout = cloud.obs_layout();
    assert_eq!(layout.server_rows, 24);
    assert_eq!(layout.slot_rows, 10);
    assert_eq!(cloud.action_space().n, 10 * 24 + 1);
    let deeprm = scenario::load_named("deeprm").unwrap().build();
    assert_eq!(deeprm.action_space().n, 11);
    assert_eq!(deeprm.obs_layout().server_features, 20 * 2);
}

fn error_of(text: &str) -> String {
    match Scenario::from_toml_str(text, Path::new("configs/scenarios/broken.toml")) {
        Ok(_) => panic!("accepted a broken scenario"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unknown_key_is_rejected_naming_file_and_key() {
    let text =
        shipped_text("tiny").replace("backlog_cap = 20", "backlog_cap = 20\nbacklog_size = 3");
    let msg = error_of(&text);
    assert!(
        msg.contains("broken.toml") && msg.contains("backlog_size"),
        "{msg}"
    );
    let msg =
        error_of(&shipped_text("deeprm").replace("horizon = 20", "horizon = 20\nhorizont = 3"));
    assert!(msg.contains("horizont"), "{msg}");
}

#[test]
fn bad_values_name_the_key_and_the_reason() {
    let cases = [
        (
            shipped_text("tiny").replace("num_slots = 4", "num_slots = 0"),
            "queue.num_slots",
        ),
        (
            shipped_text("tiny").replace(
                r#"mode = "placement""#,
                "mode = \"slot\"\ndiscipline = \"lazy\"",
            ),
            "actions.discipline",
        ),
        (
            shipped_text("tiny").replace(
                r#"mode = "placement""#,
                "mode = \"placement\"\ndiscipline = \"easy\"",
            ),
            "actions.discipline",
        ),
        (
            shipped_text("tiny").replace("capacity = [4, 16]", "capacity = [4]"),
            "server_types[0].capacity",
        ),
        (
            shipped_text("tiny").replace("speed = 2.0", "speed = -1.0"),
            "server_types[1].speed",
        ),
        (
            shipped_text("tiny")
                .replace("offered_load = 0.8", "offered_load = 0.8, rate_per_s = 1.0"),
            "workload.arrivals",
        ),
        (
            shipped_text("tiny").replace("min_s = 10.0, max_s = 30.0", "min_s = 10.0, max_s = 3.0"),
            "workload.classes[1].duration.max_s",
        ),
        (
            shipped_text("tiny").replace("demand = [4, 8]", "demand = [40, 8]"),
            "workload.classes[1].demand",
        ),
        (
            shipped_text("deeprm").replace("arrival_prob = 0.7", "arrival_prob = 1.5"),
            "workload.arrival_prob",
        ),
        (
            shipped_text("deeprm").replace("horizon = 20", "horizon = 12"),
            "horizon",
        ),
        (
            shipped_text("tiny").replace("name = \"tiny\"", "name = \"tiny\"\nmodel = \"k8s\""),
            "model",
        ),
        (
            shipped_text("tiny").replace("[actions]", "[preemption]\nrunning_rows = 0\n[actions]"),
            "preemption.running_rows",
        ),
        (
            shipped_text("tiny")
                .replace("[actions]", "[preemption]\nactions = [\"kill\"]\n[actions]"),
            "preemption.actions",
        ),
        (
            shipped_text("tiny")
                .replace("[actions]", "[preemption]\ncheckpoint_s = -5.0\n[actions]"),
            "preemption.checkpoint_s",
        ),
        (
            shipped_text("tiny")
                .replace(
                    "mode = \"placement\"",
                    "mode = \"slot\"\ndiscipline = \"easy\"",
                )
                .replace("[actions]", "[preemption]\n[actions]"),
            "preemption",
        ),
        (
            shipped_text("cloud").replace(
                "[queue]",
                "[observation]\nservers = \"per_type\"\n[preemption]\n[queue]",
            ),
            "preemption.actions",
        ),
    ];
    for (text, key) in cases {
        let msg = error_of(&text);
        assert!(
            msg.contains("broken.toml") && msg.contains(&format!("`{key}`")),
            "expected key {key}: {msg}"
        );
    }
    // A type error comes from the TOML parser, which names the key too.
    let msg = error_of(&shipped_text("tiny").replace("num_slots = 4", "num_slots = \"four\""));
    assert!(
        msg.contains("broken.toml") && msg.contains("num_slots"),
        "{msg}"
    );
}

const LIST_SCENARIO: &str = r#"
name = "list"
resources = ["cpu"]
[[server_types]]
name = "s"
count = 2
capacity = [4]
[queue]
num_slots = 2
backlog_cap = 4
[workload]
kind = "list"
tasks = [
  { id = 10, arrival_s = 0.0, duration_s = 2.0, demand = [2] },
  { id = 11, arrival_s = 1.0, duration_s = 1.0, demand = [9] },
]
"#;

#[test]
fn a_task_larger_than_every_server_is_rejected_with_its_id() {
    let msg = error_of(LIST_SCENARIO);
    assert!(
        msg.contains("task 11") && msg.contains("larger than every server"),
        "{msg}"
    );
    let text = LIST_SCENARIO.replace("kind = \"list\"", "kind = \"list\"\noversize = \"drop\"");
    let mut env = Scenario::from_toml_str(&text, Path::new("list.toml"))
        .unwrap()
        .build();
    let mut obs = vec![0.0; env.obs_layout().dim()];
    env.reset(Some(0), &mut obs);
    let t = env.step(0, &mut obs).unwrap();
    assert!(t.terminated);
    let m = env.episode_metrics().unwrap();
    assert_eq!((m.num_finished, m.num_dropped), (1, 1));
}

#[test]
fn csv_workload_loads_relative_to_the_scenario_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tasks.csv"),
        "id,arrival_s,duration_s,cpu\n1,0,2,1\n2,0.5,1,3\n",
    )
    .unwrap();
    let text = LIST_SCENARIO
        .split("kind = \"list\"")
        .next()
        .unwrap()
        .to_owned()
        + "kind = \"csv\"\npath = \"tasks.csv\"\n";
    let path = dir.path().join("s.toml");
    std::fs::write(&path, &text).unwrap();
    let loaded = scenario::load_file(&path).unwrap();
    assert_eq!(
        loaded.source_files(),
        [path.clone(), dir.path().join("tasks.csv")]
    );
    let env = loaded.build();
    check_env(&env, 0, 50).unwrap();

    std::fs::write(
        dir.path().join("tasks.csv"),
        "id,arrival_s,duration_s,cpu\n1,0,oops,1\n",
    )
    .unwrap();
    let msg = scenario::load_file(&path).unwrap_err().to_string();
    assert!(
        msg.contains("tasks.csv:2") && msg.contains("duration_s"),
        "{msg}"
    );
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let err = scenario::load_named("no-such-scenario").unwrap_err();
    assert!(matches!(err, ScenarioError::Io { .. }));
    assert!(err.to_string().contains("no-such-scenario.toml"));
}

#[test]
fn cloud_episode_is_a_sensible_training_size() {
    // Random legal actions finish an episode of a few hundred tasks in a few thousand steps.
    use rand::{Rng, SeedableRng};
    let mut env = scenario::load_named("cloud").unwrap().build();
    let mut obs = vec![0.0; env.obs_layout().dim()];
    let n = env.action_space().n;
    let mut mask = vec![false; n];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    env.reset(Some(0), &mut obs);
    let mut steps = 0;
    loop {
        env.action_mask(&mut mask);
        let legal: Vec<usize> = (0..n).filter(|&a| mask[a]).collect();
        steps += 1;
        if env
            .step(legal[rng.random_range(0..legal.len())], &mut obs)
            .unwrap()
            .episode_over()
        {
            break;
        }
    }
    let m = env.episode_metrics().unwrap();
    assert_eq!(m.num_tasks, 400);
    assert_eq!(m.num_finished + m.num_dropped, 400, "{m:?}");
    assert!((400..5000).contains(&steps), "{steps} steps");
    assert!(
        m.utilization.iter().all(|u| (0.0..=1.0).contains(u)),
        "{m:?}"
    );
}

#[test]
fn shipped_names_are_exactly_the_toml_files_of_configs_scenarios() {
    let mut on_disk: Vec<String> = std::fs::read_dir(scenario::scenarios_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut shipped: Vec<String> = SHIPPED.iter().map(|s| s.to_string()).collect();
    shipped.sort();
    assert_eq!(shipped, on_disk);
}

#[test]
fn source_files_of_tiny_is_just_the_scenario_file() {
    let tiny = scenario::load_named("tiny").unwrap();
    assert_eq!(
        tiny.source_files(),
        [scenario::scenarios_dir().join("tiny.toml")]
    );
    // Parsed from text, there is no scenario file to name.
    let text = shipped_text("tiny");
    let parsed = Scenario::from_toml_str(&text, Path::new("tiny.toml")).unwrap();
    assert!(parsed.source_files().is_empty());
}

#[test]
fn deeprm_with_a_hold_limit_passes_check_env_and_every_heuristic_finishes_every_job() {
    use lepton_env::schedulers;
    for limit in [0, 5] {
        let text = shipped_text("deeprm").replace(
            "max_steps = 200",
            &format!("max_steps = 200\nhold_limit = {limit}\nslot_order = \"shortest\""),
        );
        let scenario = Scenario::from_toml_str(&text, Path::new("deeprm")).unwrap();
        let Scenario::DeepRm(config) = &scenario else {
            panic!("not a DeepRM scenario")
        };
        assert_eq!(
            (config.hold_limit, config.slot_order),
            (Some(limit), lepton_env::cluster::SlotOrder::Shortest)
        );
        let env = scenario.build();
        check_env(&env, 5, 1500).unwrap_or_else(|e| panic!("hold_limit {limit}: {e}"));
        for name in schedulers::NAMES {
            let mut env = env.clone();
            let mut s = schedulers::by_name(name).unwrap();
            for seed in 0..3 {
                let m = schedulers::run_episode(s.as_mut(), &mut env, seed)
                    .unwrap_or_else(|e| panic!("{name}, hold_limit {limit}: {e}"));
                assert_eq!(
                    m.num_unfinished, 0,
                    "{name}, hold_limit {limit}, seed {seed}"
                );
            }
        }
    }
}

#[test]
fn the_hold_limit_changes_no_heuristic_decision_on_deeprm() {
    // The heuristics start a job whenever one fits now, so deeprm-hold scores them exactly
    // as deeprm does: the two scenarios compare one-to-one.
    use lepton_env::schedulers;
    let plain = scenario::load_named("deeprm").unwrap().build();
    let hold = scenario::load_named("deeprm-hold").unwrap().build();
    for name in ["sjf", "packer", "tetris", "best_fit"] {
        for seed in [1_u64, 2, 3] {
            let mut a = schedulers::by_name(name).unwrap();
            let mut b = schedulers::by_name(name).unwrap();
            let ma = schedulers::run_episode(a.as_mut(), &mut plain.clone(), seed).unwrap();
            let mb = schedulers::run_episode(b.as_mut(), &mut hold.clone(), seed).unwrap();
            assert_eq!(ma, mb, "{name}, seed {seed}");
        }
    }
}

#[test]
fn a_cluster_hold_limit_masks_wait_and_every_heuristic_still_finishes() {
    use lepton_env::schedulers;
    // Work-conserving tiny: whenever a visible task fits, wait is masked out and refused.
    let text =
        shipped_text("tiny").replace("backlog_cap = 20", "backlog_cap = 20\nhold_limit_s = 0");
    let mut env = Scenario::from_toml_str(&text, Path::new("tiny"))
        .unwrap()
        .build();
    let mut obs = vec![0.0; env.obs_layout().dim()];
    let mut mask = vec![false; env.action_space().n];
    env.reset(Some(3), &mut obs);
    env.action_mask(&mut mask);
    let wait = mask.len() - 1;
    // The env skips decisions where nothing fits, so at a decision something fits.
    assert!(mask[..wait].iter().any(|&m| m) && !mask[wait]);
    assert!(matches!(
        env.step(wait, &mut obs),
        Err(lepton_env::EnvError::Illegal { .. })
    ));
    for name in ["sjf", "tetris", "fcfs", "easy", "random", "deeprm_random"] {
        let mut s = schedulers::by_name(name).unwrap();
        let m = schedulers::run_episode(s.as_mut(), &mut env.clone(), 5)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(m.num_unfinished, 0, "{name}");
    }
}

/// Sizes a careless or hostile file can set: each is refused at load, naming the key, the
/// limit and what the value would cost, before anything is allocated. (They used to panic
/// with `capacity overflow`, abort in the allocator, wrap the observation size or hang.)
#[test]
fn oversized_scenarios_are_refused_naming_the_key_and_the_cost() {
    let huge = "9223372036854775807";
    let cases = [
        (
            shipped_text("tiny").replace("num_slots = 4", "num_slots = 2147483648"),
            "queue.num_slots",
            "more than the limit 4096",
        ),
        (
            shipped_text("tiny").replace("backlog_cap = 20", &format!("backlog_cap = {huge}")),
            "queue.backlog_cap",
            "GiB per env",
        ),
        (
            shipped_text("tiny").replacen("count = 2", &format!("count = {huge}"), 1),
            "server_types[0].count",
            "more than the limit 100000",
        ),
        (
            shipped_text("tiny").replacen("count = 2", "count = 60000", 2),
            "all types",
            "more than the limit 100000",
        ),
        (
            shipped_text("tiny")
                .replace("num_slots = 4", "num_slots = 4000")
                .replacen("count = 2", "count = 300", 1),
            "queue.num_slots",
            "actions",
        ),
        (
            shipped_text("tiny").replace("num_tasks = 40", &format!("num_tasks = {huge}")),
            "workload.num_tasks",
            "of task records",
        ),
        (
            shipped_text("deeprm").replace("horizon = 20", &format!("horizon = {huge}")),
            "horizon",
            "more than the limit 100000",
        ),
        (
            shipped_text("deeprm").replace("num_slots = 10", "num_slots = 100000"),
            "num_slots",
            "more than the limit 4096",
        ),
        (
            shipped_text("deeprm").replace("backlog_cap = 60", &format!("backlog_cap = {huge}")),
            "backlog_cap",
            "GiB",
        ),
        (
            shipped_text("cloud").replace("mttf_s = 40000.0", "mttf_s = 1e-9"),
            "failures.mttf_s",
            "event storm",
        ),
    ];
    for (text, key, reason) in cases {
        let msg = error_of(&text);
        assert!(msg.contains(key) && msg.contains(reason), "{key}: {msg}");
    }
    // At the limits the shipped scenarios' neighbours still load.
    let at_limit = shipped_text("tiny").replace("num_slots = 4", "num_slots = 4096");
    Scenario::from_toml_str(&at_limit, Path::new("tiny.toml")).unwrap();
}

/// Values the fuzzer (`fuzz/`) found stalling the clock in an event storm, each now refused
/// at load naming the key.
#[test]
fn values_that_stall_the_clock_are_refused() {
    let cases = [
        (
            shipped_text("tiny").replace("speed = 1.0", "speed = 1.1e-9"),
            "server_types[0].speed",
            "must be in [0.001, 1000]",
        ),
        (
            shipped_text("tiny").replace("offered_load = 0.8", "offered_load = 1e-10"),
            "workload.arrivals.offered_load",
            "arrivals per second",
        ),
        (
            shipped_text("tiny").replace("offered_load = 0.8", "rate_per_s = 1e-9"),
            "workload.arrivals.rate_per_s",
            "must be in",
        ),
        (
            shipped_text("tiny").replace("max_s = 8.0", "max_s = 1.8e19"),
            "max_s",
            "about 115 days",
        ),
        (
            shipped_text("cloud").replace("sigma = 0.5", "sigma = 50.0"),
            "sigma",
            "must be in",
        ),
        (
            shipped_text("deeprm").replace("num_steps = 50", "num_steps = 0"),
            "workload.num_steps",
            ">= 1",
        ),
        (
            shipped_text("deeprm").replace("num_steps = 50", "num_steps = 2147483648"),
            "workload.num_steps",
            "more than the limit",
        ),
    ];
    for (text, key, reason) in cases {
        let msg = error_of(&text);
        assert!(msg.contains(key) && msg.contains(reason), "{key}: {msg}");
    }
}

/// An episode whose end comes before its first decision (the time limit before the first
/// arrival; a DeepRM sequence that drew no job) still has that decision, and it ends the
/// episode with metrics, instead of every step being refused as "after the episode ended".
#[test]
fn an_episode_over_before_its_first_decision_ends_on_that_decision() {
    let texts = [
        shipped_text("tiny").replace("max_time_s = 100000.0", "max_time_s = 0.001"),
        shipped_text("deeprm").replace("arrival_prob = 0.7", "arrival_prob = 0.0"),
    ];
    for text in texts {
        let scenario = Scenario::from_toml_str(&text, Path::new("edge.toml")).unwrap();
        let mut env = scenario.build();
        let mut obs = vec![0.0; env.observation_space().dim()];
        let mut mask = vec![false; env.action_space().n];
        env.reset(Some(3), &mut obs);
        env.action_mask(&mut mask);
        let action = mask.iter().position(|&m| m).expect("a legal first action");
        let t = env.step(action, &mut obs).unwrap();
        assert!(t.episode_over(), "{t:?}");
        assert!(env.episode_metrics().is_some());
        assert!(env.step(action, &mut obs).is_err(), "and then it is over");
    }
}

/// The hold limit binds under a commit discipline too. One 10-unit server, EASY, slot
/// actions: A (100 s, 5 units) and B (50 s, 5 units) arrive at 0, C (10 s, 1 unit) at 20.
/// Commit to A (it starts), wait: the clock runs to C's arrival at 20, where B, which fits
/// and has waited 20 s, forbids waiting under a 10 s limit; without a limit waiting stays
/// legal while A runs.
#[test]
fn a_hold_limit_binds_under_a_commit_discipline() {
    let toml = |hold: &str| {
        format!(
            r#"
name = "hold-easy"
resources = ["cpu"]
[[server_types]]
name = "s"
count = 1
capacity = [10]
[queue]
num_slots = 3
backlog_cap = 3
{hold}
[actions]
mode = "slot"
discipline = "easy"
[workload]
kind = "list"
tasks = [
  {{ id = 1, arrival_s = 0.0, duration_s = 100.0, demand = [5] }},
  {{ id = 2, arrival_s = 0.0, duration_s = 50.0, demand = [5] }},
  {{ id = 3, arrival_s = 20.0, duration_s = 10.0, demand = [1] }},
]
"#
        )
    };
    for (hold, wait_legal_at_20) in [("hold_limit_s = 10", false), ("", true)] {
        let mut env = Scenario::from_toml_str(&toml(hold), Path::new("hold-easy.toml"))
            .unwrap()
            .build();
        let mut obs = vec![0.0; env.obs_layout().dim()];
        let mut mask = vec![false; env.action_space().n];
        let wait = mask.len() - 1;
        env.reset(Some(0), &mut obs);
        env.action_mask(&mut mask);
        // Nothing runs yet: a task must be chosen.
        assert!(!mask[wait], "{hold}");
        env.step(0, &mut obs).unwrap();
        env.action_mask(&mut mask);
        // A runs, B has waited 0 s: waiting is legal either way.
        assert!(mask[wait], "{hold}");
        env.step(wait, &mut obs).unwrap();
        let ScenarioEnv::Cluster(cluster) = &env else {
            panic!()
        };
        assert_eq!(cluster.now_s(), 20.0, "{hold}");
        env.action_mask(&mut mask);
        assert_eq!(mask[wait], wait_legal_at_20, "{hold}");
        if !wait_legal_at_20 {
            assert!(matches!(
                env.step(wait, &mut obs),
                Err(lepton_env::EnvError::Illegal { .. })
            ));
        }
    }
}

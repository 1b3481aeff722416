//! Replay keys on CSV workloads, checked by hand on a 10-task CSV: windows, the train/test
//! split (which tasks land in which part), perturbation, the held-out warning and bad values.

use lepton_env::scenario::{self, EpisodeUse, Scenario};
use lepton_env::trace::TimeWindows;
use lepton_env::workload::{EpisodeVariety, Part, TaskSpec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Tasks 1..=10 arriving at 100, 110, ..., 190 s, each 5 s long with a 6 s estimate.
fn csv_text() -> String {
    let mut text = String::from("id,arrival_s,duration_s,cpu,estimate_s\n");
    for i in 0..10 {
        text += &format!("{},{},5,1,6\n", i + 1, 100 + 10 * i);
    }
    text
}

const HEAD: &str = r#"
name = "replay"
resources = ["cpu"]
[[server_types]]
name = "s"
count = 2
capacity = [4]
[queue]
num_slots = 2
backlog_cap = 20
[workload]
kind = "csv"
path = "tasks.csv"
"#;

/// Writes the CSV and a scenario with `keys` appended to `[workload]`, and loads it.
fn load(
    keys: &str,
) -> (
    tempfile::TempDir,
    PathBuf,
    Result<Scenario, scenario::ScenarioError>,
) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tasks.csv"), csv_text()).unwrap();
    let path = dir.path().join("replay.toml");
    std::fs::write(&path, format!("{HEAD}{keys}\n")).unwrap();
    let loaded = scenario::load_file(&path);
    (dir, path, loaded)
}

fn scenario(keys: &str) -> Scenario {
    let (_dir, _path, loaded) = load(keys);
    loaded.unwrap_or_else(|e| panic!("{e}"))
}

fn episode(s: &Scenario, seed: u64) -> Vec<TaskSpec> {
    let Scenario::Cluster(c) = s else {
        panic!("a cluster scenario")
    };
    let mut out = Vec::new();
    c.workload
        .fill(&mut ChaCha8Rng::seed_from_u64(seed), &mut out);
    out
}

fn ids(tasks: &[TaskSpec]) -> Vec<u64> {
    tasks.iter().map(|t| t.id).collect()
}

/// Every task id any of 200 episodes replays.
fn replayed(s: &Scenario) -> BTreeSet<u64> {
    (0..200).flat_map(|seed| ids(&episode(s, seed))).collect()
}

#[test]
fn a_csv_without_replay_keys_replays_exactly_at_its_own_times() {
    let s = scenario("");
    let tasks = episode(&s, 3);
    assert_eq!(ids(&tasks), (1..=10).collect::<Vec<_>>());
    assert_eq!(tasks[0].arrival_s, 100.0);
    assert_eq!(episode(&s, 4), tasks);
    assert_eq!(s.variety(), EpisodeVariety::Identical { num_tasks: 10 });
}

#[test]
fn csv_windows_are_contiguous_start_at_zero_and_follow_the_seed() {
    let s = scenario("window_jobs = 3\nload_factor = 2.0");
    let mut firsts = BTreeSet::new();
    for seed in 0..200 {
        let tasks = episode(&s, seed);
        let first = tasks[0].id;
        assert_eq!(ids(&tasks), vec![first, first + 1, first + 2]);
        // 10 s apart in the CSV, halved by the load factor.
        let arrivals: Vec<f64> = tasks.iter().map(|t| t.arrival_s).collect();
        assert_eq!(arrivals, vec![0.0, 5.0, 10.0]);
        assert_eq!(tasks[0].estimate_s, 6.0);
        firsts.insert(first);
        assert_eq!(episode(&s, seed), tasks, "same seed, same window");
    }
    assert_eq!(firsts, (1..=8).collect());
}

/// Windows of 25 s over arrivals 100, 110, ..., 190: task j is in the window (s, s + 25]
/// when s ∈ [a_j − 25, a_j), so the starts are [75, 190), 115 s, and the episode's first draw
/// u ∈ [0, 1) starts the window at 75 + 115·u.
#[test]
fn csv_windows_by_time_hold_the_tasks_of_a_seeded_span() {
    let arrivals: Vec<f64> = (0..10).map(|i| 100.0 + 10.0 * i as f64).collect();
    let windows = TimeWindows::new(arrivals, 25.0);
    assert_eq!(windows.total_s(), 115.0);
    assert_eq!(windows.start_s(0.0), 75.0);
    assert_eq!(windows.window(75.0), 0..1); // (75, 100]: task 1
    assert_eq!(windows.start_s(0.5), 132.5);
    assert_eq!(windows.window(132.5), 4..6); // (132.5, 157.5]: tasks 5, 6
    assert_eq!(windows.window(98.0), 0..3); // (98, 123]: tasks 1, 2, 3
    assert_eq!(windows.window(189.0), 9..10); // (189, 214]: task 10
    let s = scenario("window_s = 25.0\nload_factor = 2.0");
    let mut sizes = BTreeSet::new();
    for seed in 0..200 {
        let tasks = episode(&s, seed);
        let u = ChaCha8Rng::seed_from_u64(seed).random::<f64>();
        let expected = windows.window(windows.start_s(u));
        assert_eq!(
            ids(&tasks),
            expected.map(|i| i as u64 + 1).collect::<Vec<_>>(),
            "seed {seed}"
        );
        // 10 s apart in the CSV, halved by the load factor; the first task arrives at 0.
        let arrivals: Vec<f64> = tasks.iter().map(|t| t.arrival_s).collect();
        assert_eq!(arrivals, [0.0, 5.0, 10.0][..tasks.len()]);
        assert_eq!(episode(&s, seed), tasks, "same seed, same window");
        sizes.insert(tasks.len());
    }
    assert_eq!(sizes, (1..=3).collect());
    assert_eq!(replayed(&s), (1..=10).collect());
    assert_eq!(s.variety(), EpisodeVariety::Windows { part: None });
    assert_eq!(s.held_out_warning("x", EpisodeUse::Test), None);
}

/// The cut at 172 s: training arrivals 100..=170 (span 70 s), test 180 and 190 (span 10 s).
#[test]
fn windows_by_time_are_drawn_inside_their_split_part() {
    let split = "split = { by = \"time\", test_fraction = 0.2 }";
    let train = scenario(&format!("window_s = 30.0\n{split}"));
    assert_eq!(replayed(&train), (1..=8).collect());
    let test = scenario(&format!("window_s = 10.0\n{split}\npart = \"test\""));
    let episodes: BTreeSet<Vec<u64>> = (0..100).map(|seed| ids(&episode(&test, seed))).collect();
    // Starts [170, 190): (s, s + 10] holds task 9 (180 s) or task 10 (190 s), never both.
    assert_eq!(episodes, [vec![9], vec![10]].into_iter().collect());
    assert_eq!(episode(&test, 0)[0].arrival_s, 0.0);
    // The train windows are drawn over the part's arrivals only: seed → offset as above.
    let arrivals: Vec<f64> = (0..8).map(|i| 100.0 + 10.0 * i as f64).collect();
    let windows = TimeWindows::new(arrivals, 30.0);
    for seed in 0..50 {
        let u = ChaCha8Rng::seed_from_u64(seed).random::<f64>();
        let expected = windows.window(windows.start_s(u));
        let expected: Vec<u64> = expected.map(|i| i as u64 + 1).collect();
        assert_eq!(ids(&episode(&train, seed)), expected);
    }
}

/// The span 100..190 s cut at 100 + 0.8 × 90 = 172 s: tasks 1..=8 train, 9 and 10 test.
#[test]
fn a_time_split_puts_each_task_in_exactly_one_part() {
    let split = "split = { by = \"time\", test_fraction = 0.2 }";
    let train = scenario(&format!("window_jobs = 3\n{split}"));
    let test = scenario(&format!("{split}\npart = \"test\""));
    assert_eq!(replayed(&train), (1..=8).collect());
    assert_eq!(replayed(&test), [9, 10].into_iter().collect());
    assert_eq!(episode(&test, 0)[1].arrival_s, 10.0);
    let explicit = scenario(&format!("window_jobs = 3\n{split}\npart = \"train\""));
    assert_eq!(episode(&explicit, 5), episode(&train, 5));
}

/// Blocks of 2 tasks: {1,2} {3,4} {5,6} {7,8} {9,10}; round(5 × 0.4) = 2 test blocks at
/// k = 2 and k = 4 (⌊(k+1)·2/5⌋ > ⌊k·2/5⌋).
#[test]
fn a_window_split_holds_out_whole_blocks_spread_over_the_csv() {
    let keys = "window_jobs = 2\nsplit = { by = \"window\", test_fraction = 0.4 }";
    let train = scenario(keys);
    let test = scenario(&format!("{keys}\npart = \"test\""));
    assert_eq!(replayed(&train), [1, 2, 3, 4, 7, 8].into_iter().collect());
    assert_eq!(replayed(&test), [5, 6, 9, 10].into_iter().collect());
    for seed in 0..50 {
        let tasks = ids(&episode(&test, seed));
        assert!(tasks == [5, 6] || tasks == [9, 10], "{tasks:?}");
    }
}

#[test]
fn perturbation_is_seeded_and_stays_within_its_bounds() {
    let s = scenario("window_jobs = 4\nperturb = { arrival_jitter_s = 3.0, estimate_noise = 0.5 }");
    let plain = scenario("window_jobs = 4");
    for seed in 0..100 {
        let tasks = episode(&s, seed);
        assert_eq!(episode(&s, seed), tasks);
        let exact = episode(&plain, seed);
        // 3 s of jitter on 10 s gaps cannot reorder: the same window, task by task.
        assert_eq!(ids(&tasks), ids(&exact));
        for (t, e) in tasks.iter().zip(&exact) {
            assert!(t.arrival_s >= 0.0 && (t.arrival_s - e.arrival_s).abs() <= 3.0);
            assert!((3.0..=9.0).contains(&t.estimate_s), "{}", t.estimate_s);
            assert_eq!(t.duration_s, 5.0);
        }
    }
    assert_ne!(episode(&s, 1), episode(&s, 2));
    assert_eq!(s.variety(), EpisodeVariety::Windows { part: None });
}

#[test]
fn the_held_out_warning_names_the_scenario_and_what_to_set() {
    let whole = scenario("");
    assert_eq!(
        whole
            .held_out_warning("replay.toml", EpisodeUse::Test)
            .unwrap(),
        "replay.toml: every episode replays the same 10 tasks whatever the seed, so the test \
         episodes are the training trace itself and intervals collapse to a point; set \
         workload.window_jobs and workload.split (part = \"test\" to evaluate held-out tasks)"
    );
    assert!(
        whole
            .held_out_warning("replay.toml", EpisodeUse::ModelSelection)
            .unwrap()
            .contains("the model-selection episodes are the training trace itself")
    );
    let windows = scenario("window_jobs = 3");
    assert_eq!(windows.held_out_warning("x", EpisodeUse::Test), None);
    let split = "window_jobs = 2\nsplit = { by = \"time\", test_fraction = 0.5 }";
    let train = scenario(split);
    assert_eq!(
        train.variety(),
        EpisodeVariety::Windows {
            part: Some(Part::Train)
        }
    );
    assert_eq!(
        train.held_out_warning("x", EpisodeUse::Test).unwrap(),
        "x: the test episodes replay the training part of workload.split; set workload.part = \
         \"test\" to evaluate held-out tasks"
    );
    assert_eq!(
        train.held_out_warning("x", EpisodeUse::ModelSelection),
        None
    );
    let test = scenario(&format!("{split}\npart = \"test\""));
    assert_eq!(test.held_out_warning("x", EpisodeUse::Test), None);
    assert!(
        test.held_out_warning("x", EpisodeUse::ModelSelection)
            .unwrap()
            .contains("training replays the test part")
    );
    let perturbed = scenario("perturb = { estimate_noise = 0.1 }");
    assert_eq!(perturbed.variety(), EpisodeVariety::Generated);
    assert_eq!(perturbed.held_out_warning("x", EpisodeUse::Test), None);
    // Noise does not hold out a split's training part.
    let noisy_train = scenario(&format!(
        "{split}
perturb = {{ estimate_noise = 0.1 }}"
    ));
    assert!(
        noisy_train
            .held_out_warning("x", EpisodeUse::Test)
            .is_some()
    );
    let synthetic = scenario::load_named("tiny").unwrap();
    assert_eq!(synthetic.held_out_warning("x", EpisodeUse::Test), None);
}

#[test]
fn bad_replay_values_name_the_key() {
    let cases = [
        (
            "split = { by = \"time\", test_fraction = 0.0 }",
            "`workload.split.test_fraction`: must be in (0, 1), got 0",
        ),
        (
            "split = { by = \"time\", test_fraction = 1.0 }",
            "`workload.split.test_fraction`: must be in (0, 1), got 1",
        ),
        (
            "split = { by = \"window\", test_fraction = -0.5 }",
            "`workload.split.test_fraction`: must be in (0, 1), got -0.5",
        ),
        (
            "window_jobs = 3\nsplit = { by = \"time\", test_fraction = 0.2 }\npart = \"test\"",
            "`workload.window_jobs`: 3 is more than the test part's 2 tasks",
        ),
        (
            "split = { by = \"window\", test_fraction = 0.2 }",
            "`workload.split`: by = \"window\" needs workload.window_jobs",
        ),
        ("part = \"test\"", "`workload.part`: needs workload.split"),
        (
            "perturb = { arrival_jitter_s = -1.0 }",
            "`workload.perturb.arrival_jitter_s`: must be a finite number >= 0, got -1",
        ),
        (
            "perturb = { estimate_noise = 1.0 }",
            "`workload.perturb.estimate_noise`: must be < 1, got 1",
        ),
        (
            "perturb = { load_noise = 1.5 }",
            "`workload.perturb.load_noise`: must be < 1, got 1.5",
        ),
        ("window_jobs = 0", "`workload.window_jobs`: must be >= 1"),
        (
            "window_s = 0.0",
            "`workload.window_s`: must be a finite number > 0, got 0",
        ),
        (
            "window_s = -5.0",
            "`workload.window_s`: must be a finite number > 0, got -5",
        ),
        (
            "window_s = inf",
            "`workload.window_s`: must be a finite number > 0, got inf",
        ),
        (
            "window_s = nan",
            "`workload.window_s`: must be a finite number > 0, got NaN",
        ),
        (
            "window_s = 90.5",
            "`workload.window_s`: 90.5 s is longer than the trace's span of 90 s (arrivals \
             from 100 s to 190 s)",
        ),
        (
            "window_s = 10.5\nsplit = { by = \"time\", test_fraction = 0.2 }\npart = \"test\"",
            "`workload.window_s`: 10.5 s is longer than the test part's span of 10 s (arrivals \
             from 180 s to 190 s)",
        ),
        (
            "window_s = 20.0\nwindow_jobs = 2",
            "`workload.window_s`: cannot be set together with workload.window_jobs",
        ),
        (
            "window_s = 20.0\nsplit = { by = \"window\", test_fraction = 0.4 }",
            "`workload.split`: by = \"window\" cuts blocks of workload.window_jobs tasks and \
             does not take workload.window_s",
        ),
        (
            "lenient = true",
            "`workload.lenient`: is not used when workload.kind = \"csv\"",
        ),
    ];
    for (keys, expected) in cases {
        let (_dir, path, loaded) = load(keys);
        let msg = loaded.unwrap_err().to_string();
        assert!(
            msg.starts_with(&format!("{}: ", path.display())) && msg.contains(expected),
            "{keys}: {msg}"
        );
    }
    let tiny = std::fs::read_to_string(scenario::scenarios_dir().join("tiny.toml")).unwrap();
    let text = tiny.replace("num_tasks = 40", "num_tasks = 40\nwindow_jobs = 5");
    let msg = Scenario::from_toml_str(&text, Path::new("tiny.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("`workload.window_jobs`: is not used when workload.kind = \"synthetic\""),
        "{msg}"
    );
    let text = tiny.replace("num_tasks = 40", "num_tasks = 40\nwindow_s = 5.0");
    let msg = Scenario::from_toml_str(&text, Path::new("tiny.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("`workload.window_s`: is not used when workload.kind = \"synthetic\""),
        "{msg}"
    );
}

#[test]
fn a_deeprm_list_takes_windows_but_not_rescaled_time() {
    let text = |keys: &str| {
        format!(
            "model = \"deeprm\"\nname = \"d\"\nresources = [\"r\"]\ncapacity = [10]\nhorizon = \
             20\nnum_slots = 2\nbacklog_cap = 10\nmax_steps = 100\n[workload]\nkind = \
             \"list\"\n{keys}\ntasks = [\n{{ id = 0, arrival_s = 0, duration_s = 2, demand = \
             [1] }},\n{{ id = 1, arrival_s = 3, duration_s = 2, demand = [1] }},\n{{ id = 2, \
             arrival_s = 5, duration_s = 2, demand = [1] }},\n]\n"
        )
    };
    let s = Scenario::from_toml_str(&text("window_jobs = 2"), Path::new("d.toml")).unwrap();
    assert_eq!(s.variety(), EpisodeVariety::Windows { part: None });
    // A window by time is shifted by its first, whole, arrival too: (s, s + 3] over 0, 3, 5.
    let s = Scenario::from_toml_str(&text("window_s = 3.0"), Path::new("d.toml")).unwrap();
    assert_eq!(s.variety(), EpisodeVariety::Windows { part: None });
    let msg = Scenario::from_toml_str(&text("load_factor = 2.0"), Path::new("d.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("`workload.load_factor`: is not used in this DeepRM"),
        "{msg}"
    );
    // Listed windows keep whole steps; absolute times would not start at step 0.
    let s = Scenario::from_toml_str(
        &text("window_jobs = 2\nwindow_offsets = [1]"),
        Path::new("d.toml"),
    )
    .unwrap();
    assert_eq!(s.variety(), EpisodeVariety::Identical { num_tasks: 2 });
    let msg = Scenario::from_toml_str(&text("times = \"absolute\""), Path::new("d.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("`workload.times`: is not used in this DeepRM"),
        "{msg}"
    );
}

/// Plays an episode reset with `seed`, always taking the first legal action; returns the
/// clock right after the reset and the episode's metrics.
fn play_first_legal(s: &Scenario, seed: u64) -> (f64, lepton_env::EpisodeMetrics) {
    use lepton_env::Env;
    let mut env = s.build();
    let mut obs = vec![0.0; env.obs_layout().dim()];
    let mut mask = vec![false; env.action_space().n];
    env.reset(Some(seed), &mut obs);
    let clock_s = env.clock().unwrap();
    loop {
        env.action_mask(&mut mask);
        let action = mask.iter().position(|&m| m).unwrap();
        if env.step(action, &mut obs).unwrap().episode_over() {
            return (clock_s, env.episode_metrics().unwrap().clone());
        }
    }
}

/// Window offsets 4 and 0 of 3 tasks: seed 1 replays tasks 1..=3 (index 0), arriving at
/// 100, 110, 120 s, each 5 s on its own cpu; the last finishes at 125 s.
#[test]
fn listed_windows_at_absolute_times_start_the_clock_at_their_first_arrival() {
    let absolute = scenario("window_jobs = 3\nwindow_offsets = [4, 0]\ntimes = \"absolute\"");
    let (clock_s, m) = play_first_legal(&absolute, 1);
    assert_eq!(clock_s, 100.0);
    assert_eq!(m.window_start, Some(0));
    assert_eq!(m.num_finished, 3);
    assert_eq!(m.makespan, 25.0);
    // 15 cpu-seconds used of 8 cpus over the 25 s from the first arrival.
    assert_eq!(m.utilization, vec![15.0 / (8.0 * 25.0)]);
    let (clock_s, m) = play_first_legal(&absolute, 2);
    assert_eq!((clock_s, m.window_start), (140.0, Some(4)));
    let shifted = scenario("window_jobs = 3\nwindow_offsets = [4, 0]");
    let (clock_s, m) = play_first_legal(&shifted, 1);
    assert_eq!((clock_s, m.window_start, m.makespan), (0.0, Some(0), 25.0));
    // A whole-list replay has no window start.
    let (_, m) = play_first_legal(&scenario(""), 1);
    assert_eq!(m.window_start, None);
}

/// Training windows of 3 avoid RLScheduler's first two seed-1 windows of 3 tasks of 10.
#[test]
fn excluded_rlscheduler_windows_are_never_replayed() {
    let test = lepton_env::trace::rlscheduler::rlscheduler_starts(1, 3, 10, 2).unwrap();
    let s = scenario(
        "window_jobs = 3\nexclude_windows = { kind = \"rlscheduler\", seed = 1, episodes = 2 }",
    );
    let held_out: BTreeSet<u64> = test
        .iter()
        .flat_map(|&e| (e..e + 3).map(|i| i as u64 + 1))
        .collect();
    assert!(!held_out.is_empty());
    for seed in 0..200 {
        let tasks = episode(&s, seed);
        assert_eq!(tasks.len(), 3);
        assert!(
            ids(&tasks).iter().all(|id| !held_out.contains(id)),
            "seed {seed}: {:?} overlaps {held_out:?}",
            ids(&tasks)
        );
    }
    let sampled =
        scenario("window_jobs = 3\nwindow_sampler = { kind = \"rlscheduler\", seed = 1 }");
    let (_, m) = play_first_legal(&sampled, 1);
    assert_eq!(m.window_start, Some(test[1]));
}

#[test]
fn bad_window_and_estimate_keys_name_the_key() {
    let estimates =
        |fields: &str| format!("perturb = {{ estimates = {{ model = \"tsafrir\", {fields} }} }}");
    let cases = [
        (
            "window_offsets = [1]".to_string(),
            "`workload.window_offsets`: needs workload.window_jobs",
        ),
        (
            "window_jobs = 3\nwindow_offsets = []".into(),
            "`workload.window_offsets`: needs at least one offset",
        ),
        (
            "window_jobs = 3\nwindow_offsets = [8]".into(),
            "`workload.window_offsets`: the window at offset 8 (3 tasks) runs past the end of \
             the trace's 10 tasks",
        ),
        (
            "window_s = 20.0\nwindow_offsets = [1]".into(),
            "`workload.window_offsets`: needs workload.window_jobs",
        ),
        (
            "window_jobs = 3\nwindow_offsets = [1]\nwindow_sampler = { kind = \"rlscheduler\", \
             seed = 1 }"
                .into(),
            "`workload.window_sampler`: cannot be set together with workload.window_offsets",
        ),
        (
            "window_jobs = 5\nwindow_sampler = { kind = \"rlscheduler\", seed = 1 }".into(),
            "`workload.window_sampler`: RLScheduler draws a window of 5 jobs from [5, 10 − 5 − \
             1), which needs at least 2 × 5 + 2 = 12 jobs; the trace has 10",
        ),
        (
            "window_jobs = 3\nwindow_sampler = { kind = \"rlscheduler\", seed = 1, episodes = 0 }"
                .into(),
            "`workload.window_sampler`: episodes must be in 1..=1000000",
        ),
        (
            "window_jobs = 3\nexclude_windows = { offsets = [0], seed = 1 }".into(),
            "`workload.exclude_windows`: `seed` and `episodes` belong to a sampler",
        ),
        (
            "window_jobs = 3\nexclude_windows = { kind = \"rlscheduler\", seed = 1 }".into(),
            "`workload.exclude_windows`: kind = \"rlscheduler\" needs `seed` and `episodes`",
        ),
        (
            "window_jobs = 3\nexclude_windows = { jobs = 2 }".into(),
            "`workload.exclude_windows`: give exactly one of `offsets` and `kind`",
        ),
        (
            "exclude_windows = { offsets = [0] }".into(),
            "`workload.exclude_windows`: needs workload.window_jobs",
        ),
        (
            "window_jobs = 3\nexclude_windows = { offsets = [0], jobs = 0 }".into(),
            "`workload.exclude_windows.jobs`: must be >= 1",
        ),
        (
            "window_jobs = 3\nexclude_windows = { offsets = [0, 5], jobs = 5 }".into(),
            "`workload.exclude_windows`: leaves no window of 3 tasks that overlaps none of the 2 \
             excluded windows of 5 tasks",
        ),
        (
            "window_jobs = 3\nwindow_offsets = [0]\nexclude_windows = { offsets = [5] }".into(),
            "`workload.exclude_windows`: cannot be set together with listed windows",
        ),
        (
            "perturb = { estimate_noise = 0.1, estimates = { model = \"tsafrir\", max_s = \
             3600.0, p_max = 0.2 } }"
                .into(),
            "`workload.perturb.estimates`: cannot be set together with \
             workload.perturb.estimate_noise",
        ),
        (
            estimates("max_s = 3600.0, p_max = 1.5"),
            "`workload.perturb.estimates.p_max`: must be in [0, 1], got 1.5",
        ),
        (
            estimates("max_s = 0.0, p_max = 0.5"),
            "`workload.perturb.estimates.max_s`: must be a finite number > 0, got 0",
        ),
    ];
    for (keys, expected) in cases {
        let (_dir, path, loaded) = load(&keys);
        let msg = loaded.unwrap_err().to_string();
        assert!(
            msg.starts_with(&format!("{}: ", path.display())) && msg.contains(expected),
            "{keys}: {msg}"
        );
    }
    let (_dir, _path, loaded) = load("times = \"later\"");
    let msg = loaded.unwrap_err().to_string();
    assert!(msg.contains("times") && msg.contains("absolute"), "{msg}");
    let tiny = std::fs::read_to_string(scenario::scenarios_dir().join("tiny.toml")).unwrap();
    for key in ["window_offsets = [0]", "times = \"absolute\""] {
        let text = tiny.replace("num_tasks = 40", &format!("num_tasks = 40\n{key}"));
        let msg = Scenario::from_toml_str(&text, Path::new("tiny.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("is not used when workload.kind = \"synthetic\""),
            "{msg}"
        );
    }
}

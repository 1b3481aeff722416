//! Health signals before failures (`[failures] health`), the `safe` heuristic that reads them,
//! and the invariant that health changes no failure time.

use lepton_env::scenario::{Scenario, ScenarioEnv, load_file};
use lepton_env::schedulers::{
    Heuristic, QueuedTask, Rule, ServerInfo, Snapshot, by_name, keep_off_risky, run_episode,
    run_episode_with,
};
use lepton_env::workload::MAX_RESOURCES;
use lepton_env::{Env, EpisodeMetrics};
use std::path::Path;

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// `cloud.toml`'s text with `health` added to its `[failures]` section.
fn cloud_with(health: &str) -> Scenario {
    let text = std::fs::read_to_string(repo("configs/scenarios/cloud.toml")).unwrap();
    let text = text.replace("[failures]\n", &format!("[failures]\nhealth = {health}\n"));
    Scenario::from_toml_str(&text, &repo("configs/scenarios/cloud.toml")).unwrap()
}

fn metrics(scenario: &Scenario, scheduler: &str, seed: u64) -> EpisodeMetrics {
    let mut env = scenario.build();
    run_episode(by_name(scheduler).unwrap().as_mut(), &mut env, seed).unwrap()
}

/// Every (now, server, reading, next failure, up) at every decision of tetris's episode.
fn readings(scenario: &Scenario, seed: u64) -> Vec<(f64, f64, f64, bool)> {
    let mut env = scenario.build();
    let mut out = Vec::new();
    run_episode_with(
        by_name("tetris").unwrap().as_mut(),
        &mut env,
        seed,
        |env, _| {
            let ScenarioEnv::Cluster(c) = env else {
                panic!()
            };
            for n in 0..c.num_servers() {
                let up = c.server_is_up(n);
                out.push((c.now_s(), c.health(n), c.next_failure_for_labels(n), up));
            }
        },
    )
    .unwrap();
    out
}

#[test]
fn health_changes_no_failure_time_and_no_heuristic_that_ignores_it() {
    let plain = load_file(&repo("configs/scenarios/cloud.toml")).unwrap();
    let with = cloud_with("{ lead_s = 600.0, announced = 0.8, noise = 0.1 }");
    for seed in [1, 2] {
        assert_eq!(
            metrics(&plain, "tetris", seed),
            metrics(&with, "tetris", seed)
        );
        // Without health, `safe` plays its base exactly.
        assert_eq!(
            metrics(&plain, "safe:tetris:0.5", seed),
            metrics(&plain, "tetris", seed)
        );
    }
    // cloud-ops fails (a quarter of cloud's MTTF) and announces failures.
    let ops = load_file(&repo("configs/scenarios/cloud-ops.toml")).unwrap();
    assert!(metrics(&ops, "tetris", 1).num_failures > 0);
}

/// Without noise, an announced failure's reading is its degradation: (lead − time to the
/// failure) / lead, clamped to [0, 1]; a down server reads 0.
#[test]
fn without_noise_the_reading_is_the_degradation_ramp() {
    let scenario = cloud_with("{ lead_s = 600.0, announced = 1.0, noise = 0.0 }");
    let (mut ramping, mut down) = (0, 0);
    for seed in 0..4 {
        for (now, reading, failure_s, up) in readings(&scenario, seed) {
            if !up {
                assert_eq!(reading, 0.0);
                down += 1;
                continue;
            }
            let expected = ((600.0 - (failure_s - now)) / 600.0).clamp(0.0, 1.0);
            assert_eq!(reading, expected, "at {now} s, failure at {failure_s} s");
            ramping += usize::from(reading > 0.0 && reading < 1.0);
        }
    }
    assert!(
        ramping > 10 && down > 0,
        "{ramping} readings on a ramp, {down} down"
    );
    // With nothing announced and no noise every reading is 0.
    let silent = cloud_with("{ announced = 0.0, noise = 0.0 }");
    assert!(readings(&silent, 0).iter().all(|r| r.1 == 0.0));
}

#[test]
fn the_noise_is_exponential_with_the_configured_mean_and_reproducible() {
    let scenario = cloud_with("{ announced = 0.0, noise = 0.1, sample_s = 60.0 }");
    let samples = readings(&scenario, 3);
    let up: Vec<f64> = samples.iter().filter(|r| r.3).map(|r| r.1).collect();
    let mean = up.iter().sum::<f64>() / up.len() as f64;
    // Readings within one 60 s sample repeat, so the effective sample is smaller than the
    // count; 0.1 ± 15% holds for this seed.
    assert!(
        (mean - 0.1).abs() < 0.015,
        "mean reading {mean} over {} samples",
        up.len()
    );
    assert!(up.iter().all(|&r| (0.0..=1.0).contains(&r)));
    assert!(
        up.iter().any(|&r| r > 0.4),
        "an exponential tail reaches past 0.4"
    );
    assert_eq!(samples, readings(&scenario, 3));
    assert_ne!(samples, readings(&scenario, 4));
}

fn server(free: u32, health: f64) -> ServerInfo {
    let mut s = ServerInfo {
        capacity: [0; MAX_RESOURCES],
        free: [0; MAX_RESOURCES],
        speed: 1.0,
        health,
    };
    s.capacity[0] = 8;
    s.free[0] = free;
    s
}

/// One 2-unit task; server 0 would be best-fit (2 units free, reading 0.9), server 1 has 8
/// free (reading 0.1). Kept off the risky server, best-fit places it on server 1.
#[test]
fn safe_keeps_new_tasks_off_risky_servers_unless_all_are_risky() {
    let task = QueuedTask {
        slot: 0,
        task_id: 0,
        arrival_s: 0.0,
        demand: {
            let mut d = [0; MAX_RESOURCES];
            d[0] = 2;
            d
        },
        estimate_s: 10.0,
        priority: 0,
        deadline_s: None,
    };
    let best_fit = Heuristic::new("best_fit", Rule::BestFit);
    let snapshot = |h0: f64, h1: f64| {
        Snapshot::by_hand(
            0.0,
            1,
            1,
            vec![task],
            vec![server(2, h0), server(8, h1)],
            vec![],
        )
    };
    let mut s = snapshot(0.9, 0.1);
    assert_eq!(best_fit.action_in(&s), 0, "best-fit alone takes server 0");
    keep_off_risky(&mut s, 0.5);
    assert_eq!(best_fit.action_in(&s), 1);
    // A reading equal to the threshold is risky too.
    let mut s = snapshot(0.5, 0.1);
    keep_off_risky(&mut s, 0.5);
    assert_eq!(best_fit.action_in(&s), 1);
    // When every server is risky, the base chooses as usual.
    let mut s = snapshot(0.9, 0.8);
    keep_off_risky(&mut s, 0.5);
    assert_eq!(best_fit.action_in(&s), 0);
}

#[test]
fn bad_health_keys_are_refused_by_name() {
    let err = |health: &str, failures: &str| {
        let text = format!(
            "name = \"x\"\nresources = [\"cpu\"]\n[[server_types]]\nname = \"s\"\ncount = 1\n\
             capacity = [4]\n[queue]\nnum_slots = 2\nbacklog_cap = 10\n[failures]\n{failures}\
             health = {health}\n[workload]\nkind = \"list\"\n\
             tasks = [{{ id = 0, arrival_s = 0.0, duration_s = 1.0, demand = [1] }}]\n"
        );
        Scenario::from_toml_str(&text, Path::new("x.toml"))
            .err()
            .unwrap()
            .to_string()
    };
    let fails = "mttf_s = 1000.0\nmttr_s = 10.0\n";
    let e = err("{}", "");
    assert!(
        e.contains("failures.health") && e.contains("no server type can fail"),
        "{e}"
    );
    let e = err("{ announced = 1.5 }", fails);
    assert!(e.contains("failures.health.announced"), "{e}");
    let e = err("{ lead_s = 0.0 }", fails);
    assert!(e.contains("failures.health.lead_s"), "{e}");
    let e = err("{ warning_s = 5.0 }", fails);
    assert!(e.contains("warning_s"), "{e}");
    // The observation's server rows gain the reading as their last feature.
    let ok = |health: &str| {
        let text = format!(
            "name = \"x\"\nresources = [\"cpu\"]\n[[server_types]]\nname = \"s\"\ncount = 1\n\
             capacity = [4]\n[queue]\nnum_slots = 2\nbacklog_cap = 10\n[failures]\n{fails}{health}\n\
             [workload]\nkind = \"list\"\n\
             tasks = [{{ id = 0, arrival_s = 0.0, duration_s = 1.0, demand = [1] }}]\n"
        );
        Scenario::from_toml_str(&text, Path::new("x.toml"))
            .unwrap()
            .build()
            .obs_layout()
    };
    let (without, with) = (ok(""), ok("health = {}"));
    assert_eq!(with.server_features, without.server_features + 1);
}

//! The arrival-rate forecast (`[observation] forecast`), hand-checked on a list workload.

use lepton_env::scenario::{Scenario, ScenarioEnv};
use lepton_env::{Env, ObsLayout};
use std::path::Path;

/// One big server; a task every 5 s over [0, 100], then every second up to 200; forecast
/// windows of 10 s and a period of 100 s; time scale 10 s.
fn scenario(forecast: &str) -> Scenario {
    let mut tasks: Vec<String> = (0..=20)
        .map(|k| 5 * k)
        .chain(101..=200)
        .map(|t| format!("{{ id = {t}, arrival_s = {t}.0, duration_s = 1.0, demand = [1] }}"))
        .collect();
    tasks.dedup();
    let text = format!(
        "name = \"forecast\"\nresources = [\"cpu\"]\n[[server_types]]\nname = \"s\"\ncount = 1\n\
         capacity = [1000]\n[queue]\nnum_slots = 2\nbacklog_cap = 10\n[actions]\nmode = \"slot\"\n\
         [observation]\ntime_scale_s = 10.0\n{forecast}\n[workload]\nkind = \"list\"\ntasks = [{}]\n",
        tasks.join(", ")
    );
    Scenario::from_toml_str(&text, Path::new("inline.toml")).unwrap()
}

/// Steps (starting every task) until the clock reaches `t`; returns the observation there.
fn run_to(env: &mut ScenarioEnv, t: f64) -> Vec<f32> {
    let mut obs = vec![0.0; env.observation_space().dim()];
    let mut mask = vec![false; env.action_space().n];
    env.reset(Some(0), &mut obs);
    while clock(env) < t {
        env.action_mask(&mut mask);
        let action = if mask[0] { 0 } else { mask.len() - 1 };
        env.step(action, &mut obs).unwrap();
    }
    assert_eq!(clock(env), t);
    obs
}

fn clock(env: &ScenarioEnv) -> f64 {
    env.clock().unwrap()
}

#[test]
fn the_forecast_counts_past_arrivals_by_hand() {
    let mut env = scenario("forecast = { window_s = 10.0, period_s = 100.0 }").build();
    let rates = |env: &ScenarioEnv| match env {
        ScenarioEnv::Cluster(c) => c.arrival_forecast().unwrap(),
        _ => unreachable!(),
    };

    // t = 30: (20, 30] holds 25 and 30; the longer window is clipped to (0, 30]: 5 … 30, six
    // tasks in 30 s; no period has passed, so the seasonal rate is the longer one.
    run_to(&mut env, 30.0);
    let r = rates(&env);
    assert_eq!((r.recent, r.longer, r.seasonal), (0.2, 0.2, 0.2));

    // t = 150: (140, 150] holds ten tasks; (50, 150] holds 55 … 100 (ten) and 101 … 150
    // (fifty); one period ago, (50, 60] held 55 and 60.
    let obs = run_to(&mut env, 150.0);
    let r = rates(&env);
    assert_eq!((r.recent, r.longer, r.seasonal), (1.0, 0.6, 0.2));
    // In the observation: arrivals per time scale (10 s), squashed x / (1 + x), after the
    // 2R + 4 = 6 features of the global block.
    let ObsLayout { global, .. } = env.obs_layout();
    assert_eq!(global, 9);
    let expected = [10.0 / 11.0, 6.0 / 7.0, 2.0 / 3.0];
    for (k, e) in expected.iter().enumerate() {
        assert!(
            (obs[6 + k] - e).abs() < 1e-6,
            "feature {k}: {} vs {e}",
            obs[6 + k]
        );
    }
}

#[test]
fn without_the_key_there_is_no_forecast_and_bad_windows_are_refused() {
    let env = scenario("").build();
    assert_eq!(env.obs_layout().global, 6);
    let ScenarioEnv::Cluster(c) = &env else {
        panic!("a cluster scenario")
    };
    assert_eq!(c.arrival_forecast(), None);
    // Defaults: a 600 s window and a day's period.
    let ScenarioEnv::Cluster(c) = scenario("forecast = {}").build() else {
        panic!()
    };
    let f = c.config().forecast.unwrap();
    assert_eq!((f.window_s, f.period_s), (600.0, 86_400.0));

    let err = |forecast: &str| {
        let text = format!(
            "name = \"x\"\nresources = [\"cpu\"]\n[[server_types]]\nname = \"s\"\ncount = 1\n\
             capacity = [4]\n[queue]\nnum_slots = 2\nbacklog_cap = 10\n[observation]\n{forecast}\n\
             [workload]\nkind = \"list\"\ntasks = [{{ id = 0, arrival_s = 0.0, duration_s = 1.0, demand = [1] }}]\n"
        );
        Scenario::from_toml_str(&text, Path::new("x.toml"))
            .err()
            .unwrap()
            .to_string()
    };
    let e = err("forecast = { window_s = 0.0 }");
    assert!(e.contains("observation.forecast.window_s"), "{e}");
    let e = err("forecast = { window_s = 100.0, period_s = 50.0 }");
    assert!(
        e.contains("observation.forecast.period_s") && e.contains("shorter than window_s"),
        "{e}"
    );
    let e = err("forecast = { horizon_s = 5.0 }");
    assert!(e.contains("horizon_s"), "{e}");
}

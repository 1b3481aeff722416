//! Ranking with a trained checkpoint (the shipped Lublin-1 policy), without Slurm: the
//! ranking agrees with what the policy does in lepton's simulator, and checkpoints or
//! scenarios that cannot rank a Slurm queue are refused with the reason.

use lepton_agent::checkpoint::LoadedPolicy;
use lepton_env::api::Env;
use lepton_env::cluster::ClusterEnv;
use lepton_env::scenario::{self, ScenarioEnv};
use lepton_serve::learned::{LearnedError, LearnedRanker};
use lepton_serve::rank::{QueueState, QueuedJob, Ranker, RunningJob};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn checkpoint() -> PathBuf {
    root().join("checkpoints/lublin_1_ppo/seed1")
}

fn lublin_1() -> PathBuf {
    root().join("configs/scenarios/lublin-1.toml")
}

/// Real seconds per trace second in these tests: Slurm would see a replay at this scale.
const SCALE: f64 = 0.01;

/// The queue a Slurm cluster replaying this moment of the simulator at `SCALE` would show.
fn as_slurm_sees_it(env: &ClusterEnv) -> QueueState {
    let queued = |id, arrival_s: f64, estimate_s: f64, procs| QueuedJob {
        id,
        arrival_s: arrival_s * SCALE,
        estimate_s: estimate_s * SCALE,
        procs,
    };
    QueueState {
        now_s: env.now_s() * SCALE,
        waiting: env
            .queued()
            .map(|q| queued(q.task_id, q.arrival_s, q.estimate_s, q.demand[0]))
            .collect(),
        // The arrival of a running job does not enter the observation; its start does.
        running: env
            .running()
            .map(|r| RunningJob {
                job: queued(
                    r.task_id,
                    r.start_s,
                    r.estimated_finish_s - r.start_s,
                    r.demand[0],
                ),
                start_s: r.start_s * SCALE,
            })
            .collect(),
    }
}

/// At every decision of a simulated Lublin-1 window where the policy starts a job, the job
/// it picks is the first of lepton-serve's ranking of the same moment, read as Slurm shows
/// it (scaled times, CPUs).
#[test]
fn the_ranking_starts_with_the_job_the_policy_picks_in_the_simulator() {
    let ScenarioEnv::Cluster(mut env) = scenario::load_file(&lublin_1()).unwrap().build() else {
        unreachable!()
    };
    let mut policy = LoadedPolicy::load(checkpoint(), tch::Device::Cpu).unwrap();
    let mut ranker = LearnedRanker::load(&checkpoint(), &lublin_1(), SCALE).unwrap();
    let wait = env.action_space().n - 1;
    let mut obs = vec![0.0; env.obs_layout().dim()];
    let mut mask = vec![false; wait + 1];
    env.reset(Some(0), &mut obs);
    let (mut compared, mut queued_max) = (0, 0);
    for _ in 0..400 {
        env.action_mask(&mut mask);
        let action = policy.act(&obs, &mask);
        if action != wait && env.queued().count() > 1 {
            let picked = env.slot(action).unwrap().task_id;
            let queue = as_slurm_sees_it(&env);
            let ranking = ranker.rank(&queue).unwrap();
            assert_eq!(ranking[0], picked, "at {} s", env.now_s());
            let mut ids: Vec<u64> = queue.waiting.iter().map(|j| j.id).collect();
            let mut ranked = ranking.clone();
            ids.sort_unstable();
            ranked.sort_unstable();
            assert_eq!(
                ranked, ids,
                "the ranking is a permutation of the waiting jobs"
            );
            compared += 1;
            queued_max = queued_max.max(ids.len());
        }
        if env.step(action, &mut obs).unwrap().terminated {
            break;
        }
    }
    assert!(
        compared > 50 && queued_max > 20,
        "{compared} decisions, {queued_max} queued"
    );
}

#[test]
fn the_ranking_does_not_depend_on_the_order_slurm_lists_jobs() {
    let mut ranker = Ranker::Learned(Box::new(
        LearnedRanker::load(&checkpoint(), &lublin_1(), 1.0).unwrap(),
    ));
    let job = |id, arrival_s, estimate_s, procs| QueuedJob {
        id,
        arrival_s,
        estimate_s,
        procs,
    };
    let mut queue = QueueState {
        now_s: 10_000.0,
        waiting: vec![
            job(1, 100.0, 36_000.0, 128),
            job(2, 2_000.0, 600.0, 8),
            job(3, 5_000.0, 7_200.0, 64),
            job(4, 9_000.0, 60.0, 1),
            // No time limit: taken as a year.
            job(5, 9_500.0, f64::INFINITY, 2),
        ],
        running: vec![RunningJob {
            job: job(9, 0.0, 20_000.0, 200),
            start_s: 50.0,
        }],
    };
    let ranking = ranker.rank(&queue).unwrap();
    queue.waiting.reverse();
    assert_eq!(ranker.rank(&queue).unwrap(), ranking);
    assert_eq!(ranking.len(), 5);
}

#[test]
fn scenarios_and_clusters_that_cannot_be_ranked_are_refused_with_the_reason() {
    let load = |scenario: &str| {
        LearnedRanker::load(
            &checkpoint(),
            &root().join("configs/scenarios").join(scenario),
            1.0,
        )
        .unwrap_err()
        .to_string()
    };
    let deeprm = load("deeprm-hold.toml");
    assert!(
        deeprm.contains("DeepRM scenario has no job queue"),
        "{deeprm}"
    );
    let cloud = load("cloud.toml");
    assert!(
        cloud.contains("cloud.toml") && cloud.contains("resources (cpu, mem_gib, gpu)"),
        "{cloud}"
    );
    let other_slots = load("hpc-lublin.toml");
    assert!(
        other_slots.contains("was trained on observation layout"),
        "{other_slots}"
    );
    let ranker = LearnedRanker::load(&checkpoint(), &lublin_1(), 1.0).unwrap();
    ranker.check_cluster(256).unwrap();
    match ranker.check_cluster(16) {
        Err(e @ LearnedError::Cluster { .. }) => assert!(
            e.to_string()
                .contains("has 256 processors but the Slurm cluster has 16 CPUs"),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
    // A checkpoint that records its time unit must get a scenario with the same.
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(checkpoint()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let meta_path = dir.path().join("best.json");
    let mut meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&meta_path).unwrap()).unwrap();
    meta["obs_time_scale_s"] = serde_json::json!(100.0);
    std::fs::write(&meta_path, meta.to_string()).unwrap();
    let other_unit = LearnedRanker::load(dir.path(), &lublin_1(), 1.0).unwrap_err();
    assert!(
        other_unit
            .to_string()
            .contains("time features in units of 100 s, the scenario gives 4862.7667 s"),
        "{other_unit}"
    );
    meta["obs_time_scale_s"] = serde_json::json!(4862.7667);
    std::fs::write(&meta_path, meta.to_string()).unwrap();
    LearnedRanker::load(dir.path(), &lublin_1(), 1.0).unwrap();
    let scale = LearnedRanker::load(&checkpoint(), &lublin_1(), 0.0).unwrap_err();
    assert!(scale.to_string().contains("time scale 0"), "{scale}");
}

/// The command line: a checkpoint needs its scenario (exit 2), and a bad checkpoint path is
/// named.
#[test]
fn the_cli_names_what_is_missing() {
    let serve = || Command::new(env!("CARGO_BIN_EXE_lepton-serve"));
    let out = serve()
        .args(["slurm", "--checkpoint", "checkpoints/lublin_1_ppo/seed1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--scenario"), "{stderr}");
    let out = serve()
        .args(["slurm", "--checkpoint", "nope/best.json", "--scenario"])
        .arg(lublin_1())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nope/best.json"), "{stderr}");
}

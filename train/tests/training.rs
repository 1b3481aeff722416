//! End-to-end tests of the trainer on CartPole: reproducibility, bit-exact resume, the
//! TensorBoard tags (read back by TensorBoard's own reader), learning, and the CLI's errors.

mod common;

use std::path::Path;
use std::process::Command;

use common::{
    SERIAL, bin, config_with, config_with_defaults, joined_updates, options, repo_root,
    tensorboard_tags, tiny_config, train,
};
use lepton_agent::checkpoint;
use lepton_train::config::TrainConfig;
use lepton_train::run::Outcome;
use lepton_train::trainer;

/// A small CartPole run: 2 envs × 32 steps, 4 minibatches, 2 epochs.
fn small_config(total_steps: u64, overrides: &[&str]) -> TrainConfig {
    let base = [
        format!("train.total_steps={total_steps}"),
        "ppo.num_envs=2".into(),
        "ppo.num_steps=32".into(),
        "ppo.update_epochs=2".into(),
        "run.device=cpu".into(),
        "run.checkpoint_every_steps=0".into(),
        "eval.every_steps=0".into(),
    ];
    config_with_defaults("ppo_cartpole.toml", &base, overrides)
}

fn weights_hash(meta: &Path) -> String {
    checkpoint::read_meta(meta).unwrap().weights.sha256
}

#[test]
fn same_seed_gives_identical_losses_and_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let config = small_config(1024, &[]);
    let a = train(&config, &options(&tmp.path().join("a"), false, None));
    let b = train(&config, &options(&tmp.path().join("b"), false, None));
    assert_eq!(a.updates.len(), 16);
    assert_eq!(a.updates, b.updates, "same seed, same losses");
    assert_eq!(
        weights_hash(&a.last_checkpoint),
        weights_hash(&b.last_checkpoint)
    );
    let other = small_config(1024, &["train.seed=2"]);
    let c = train(&other, &options(&tmp.path().join("c"), false, None));
    assert_ne!(
        a.updates, c.updates,
        "a different seed gives a different run"
    );
}

/// N steps + checkpoint + N steps == 2N steps straight: weights, optimizer and every loss.
/// Normalisation is on so that its state is exercised too.
#[test]
fn resume_is_bit_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let config = small_config(
        2048,
        &["ppo.normalize_obs=true", "ppo.normalize_returns=true"],
    );
    let straight = train(&config, &options(&tmp.path().join("straight"), false, None));

    let dir = tmp.path().join("resumed");
    let first = train(&config, &options(&dir, false, Some(1024)));
    assert_eq!(first.outcome, Outcome::Stopped);
    assert_eq!(first.global_step, 1024);
    let second = train(&config, &options(&dir, true, None));
    assert_eq!(second.outcome, Outcome::Finished);
    assert_eq!(second.global_step, 2048);

    assert_eq!(
        joined_updates(&first, &second),
        straight.updates,
        "the losses continue exactly"
    );
    let (a, b) = (
        checkpoint::read_meta(&straight.last_checkpoint).unwrap(),
        checkpoint::read_meta(&second.last_checkpoint).unwrap(),
    );
    assert_eq!(a.weights.sha256, b.weights.sha256, "identical weights");
    assert_eq!(
        a.optimizer.sha256, b.optimizer.sha256,
        "identical optimizer state"
    );
    assert_eq!(a.normalizer, b.normalizer);
    assert_eq!(
        a.trainer_state, b.trainer_state,
        "identical RNG and env states"
    );
    assert!(
        a.trainer_state["return_normalizer"]["returns"].is_array(),
        "the return normaliser's state is checkpointed"
    );
}

#[test]
fn incompatible_resume_is_refused_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let config = small_config(1024, &[]);
    train(&config, &options(&dir, false, Some(512)));
    let changed = small_config(1024, &["ppo.lr=1e-3"]);
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let err = trainer::run(&changed, &options(&dir, true, None))
        .unwrap_err()
        .to_string();
    assert!(err.contains("ppo.lr"), "{err}");
    let err = trainer::run(&config, &options(&tmp.path().join("empty"), true, None))
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot resume"), "{err}");
}

/// Editing the scenario between a stop and `--resume` would replay the recorded actions on
/// other data: the resume is refused with exit code 2, naming the file that changed.
#[test]
fn resume_after_the_scenario_changed_exits_2_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("tiny.toml");
    std::fs::copy(repo_root().join("configs/scenarios/tiny.toml"), &scenario).unwrap();
    let config = config_with(
        "ppo_cloud.toml",
        &[
            format!("env.scenario=\"{}\"", scenario.display()),
            "train.total_steps=512".into(),
            "ppo.num_envs=2".into(),
            "ppo.num_steps=64".into(),
            "run.device=cpu".into(),
            "eval.every_steps=0".into(),
        ],
    );
    let run = tmp.path().join("run");
    train(&config, &options(&run, false, Some(256)));
    let text = std::fs::read_to_string(&scenario).unwrap();
    std::fs::write(&scenario, text.replace("count = 2", "count = 3")).unwrap();
    let out = bin()
        .arg("--resume")
        .arg(&run)
        .arg("--no-progress")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} changed since the checkpoint",
            scenario.display()
        )),
        "{stderr}"
    );
    // Restored, the resume goes through.
    std::fs::write(&scenario, text).unwrap();
    let out = bin()
        .arg("--resume")
        .arg(&run)
        .arg("--no-progress")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Return clearly above random (about 22) within a budget that takes seconds.
#[test]
fn learns_cartpole_quickly() {
    let tmp = tempfile::tempdir().unwrap();
    let config = config_with(
        "ppo_cartpole.toml",
        &[
            "train.total_steps=40960",
            "run.device=cpu",
            "eval.every_steps=0",
            "run.checkpoint_every_steps=0",
        ],
    );
    let summary = train(&config, &options(tmp.path(), false, None));
    let ret = summary.mean_return.unwrap();
    assert!(
        ret > 100.0,
        "mean return of the last 20 episodes after 40k steps: {ret}"
    );
}

/// The event files are read back by TensorBoard's own reader and hold the documented tags.
#[test]
fn tensorboard_tags_read_back_with_event_accumulator() {
    let tmp = tempfile::tempdir().unwrap();
    let config = small_config(1024, &["eval.every_steps=512", "eval.num_episodes=2"]);
    train(&config, &options(tmp.path(), false, None));
    let stdout = tensorboard_tags(tmp.path());
    for tag in [
        "charts/episodic_return",
        "charts/episodic_length",
        "charts/SPS",
        "charts/learning_rate",
        "losses/policy_loss",
        "losses/value_loss",
        "losses/entropy",
        "losses/approx_kl",
        "losses/clipfrac",
        "losses/explained_variance",
        "eval/episodic_return",
    ] {
        assert!(
            stdout.contains(&format!("scalar {tag} ")),
            "missing {tag} in:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("scalar losses/policy_loss 16"),
        "one loss per update:\n{stdout}"
    );
    assert!(
        stdout.contains("tensor config"),
        "config text summary missing:\n{stdout}"
    );
}

/// On a scheduling env the periodic evaluation also logs what a policy leaves behind: the
/// mean unfinished and dropped tasks per episode, next to the completion-aware slowdown.
#[test]
fn scheduling_evaluations_log_unfinished_and_dropped_tasks() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(&[
        "train.total_steps=256",
        "ppo.num_envs=2",
        "ppo.num_steps=64",
        "eval.every_steps=128",
        "eval.num_episodes=2",
        "run.device=\"cpu\"",
    ]);
    train(&config, &options(tmp.path(), false, None));
    let stdout = tensorboard_tags(tmp.path());
    for tag in [
        "eval/completion_slowdown",
        "eval/unfinished_tasks",
        "eval/dropped_tasks",
        "eval/vs_best_heuristic",
    ] {
        assert!(
            stdout.contains(&format!("scalar {tag} 2")),
            "{tag} not logged at both evaluations in:\n{stdout}"
        );
    }
}

/// `eval.sampled` scores the policy that samples its actions, episode `i`'s from
/// `episode_sampler(eval.seed + i)`: the episodes lepton-eval's `--sampled` plays (replayed
/// here one action at a time with `LoadedPolicy::sample`), which are not the greedy ones.
#[test]
fn sampled_evaluation_plays_each_episode_from_its_seeds_stream() {
    use lepton_agent::distributions::episode_sampler;
    use lepton_env::Env;

    let completion = |dir: &Path| -> f64 {
        let log = std::fs::read_to_string(dir.join("evaluations.jsonl")).unwrap();
        let last: serde_json::Value =
            serde_json::from_str(log.lines().last().expect("an evaluation")).unwrap();
        last["completion_slowdown"].as_f64().unwrap()
    };
    let run = |sampled: bool| {
        let tmp = tempfile::tempdir().unwrap();
        let config = tiny_config(&[
            "train.total_steps=128".to_string(),
            "ppo.num_envs=2".into(),
            "ppo.num_steps=64".into(),
            "eval.every_steps=128".into(),
            "eval.num_episodes=3".into(),
            format!("eval.sampled={sampled}"),
            "run.device=\"cpu\"".into(),
        ]);
        train(&config, &options(tmp.path(), false, None));
        (tmp, config)
    };
    let (sampled_dir, config) = run(true);
    let (greedy_dir, _) = run(false);
    let sampled = completion(sampled_dir.path());
    assert_ne!(
        sampled,
        completion(greedy_dir.path()),
        "sampling changed nothing"
    );

    let mut policy = checkpoint::LoadedPolicy::load(
        sampled_dir.path().join("checkpoints/final.json"),
        tch::Device::Cpu,
    )
    .unwrap();
    let scenario =
        lepton_env::scenario::load_file(&repo_root().join("configs/scenarios/tiny.toml")).unwrap();
    let mut total = 0.0;
    for i in 0..3 {
        let seed = config.eval.seed + i;
        let mut env = scenario.build();
        let mut rng = episode_sampler(seed);
        let mut obs = vec![0.0; env.observation_space().dim()];
        let mut mask = vec![false; env.action_space().n];
        env.reset(Some(seed), &mut obs);
        loop {
            env.action_mask(&mut mask);
            let action = policy.sample(&obs, &mask, &mut rng).unwrap();
            if env.step(action, &mut obs).unwrap().episode_over() {
                break;
            }
        }
        total += env.episode_metrics().unwrap().completion_slowdown;
    }
    assert_eq!(sampled, total / 3.0);
}

/// `evaluations.jsonl` holds one line per periodic evaluation with the values of its `eval/*`
/// points; a resumed session drops the lines a killed one wrote past its checkpoint and
/// redoes them, so the file of a stopped and resumed run is that of an uninterrupted one.
#[test]
fn evaluations_jsonl_follows_the_run_and_its_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let config = config_with(
        "ppo_quick.toml",
        &[
            "train.total_steps=256",
            "eval.every_steps=128",
            "eval.num_episodes=2",
            "run.checkpoint_every_steps=0",
        ],
    );
    let straight_dir = tmp.path().join("straight");
    train(&config, &options(&straight_dir, false, None));
    let straight = std::fs::read_to_string(straight_dir.join("evaluations.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = straight
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let steps: Vec<u64> = lines.iter().map(|l| l["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, [128, 256]);
    let heuristics = lepton_train::envs::EnvSpec::from_config(&config.env)
        .unwrap()
        .heuristic_slowdowns(config.eval.seed, 2)
        .unwrap();
    let best = heuristics.iter().map(|h| h.1).reduce(f64::min).unwrap();
    for line in &lines {
        let mut keys: Vec<&str> = line
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "best_heuristic_completion_slowdown",
                "completion_slowdown",
                "dropped_tasks",
                "episodic_length",
                "episodic_return",
                "heuristic_packer_completion_slowdown",
                "heuristic_sjf_completion_slowdown",
                "heuristic_tetris_completion_slowdown",
                "mean_slowdown",
                "step",
                "unfinished_tasks",
                "vs_best_heuristic",
            ]
        );
        for (name, value) in &heuristics {
            assert_eq!(
                line[format!("heuristic_{name}_completion_slowdown")],
                *value
            );
        }
        assert_eq!(line["best_heuristic_completion_slowdown"], best);
        let completion = line["completion_slowdown"].as_f64().unwrap();
        assert_eq!(line["vs_best_heuristic"], completion / best - 1.0);
    }

    let dir = tmp.path().join("resumed");
    train(&config, &options(&dir, false, Some(128)));
    let log = dir.join("evaluations.jsonl");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        straight.lines().next().unwrap().to_string() + "\n"
    );
    // What a session killed after an evaluation past its last checkpoint leaves behind.
    let mut killed = std::fs::read_to_string(&log).unwrap();
    killed.push_str("{\"episodic_return\":-1.0,\"step\":192}\n");
    std::fs::write(&log, killed).unwrap();
    train(&config, &options(&dir, true, None));
    assert_eq!(std::fs::read_to_string(&log).unwrap(), straight);
}

#[test]
fn cli_config_errors_exit_2_naming_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().to_str().unwrap();
    let out = bin()
        .args([
            "--config",
            "configs/ppo_cartpole.toml",
            "--set",
            "ppo.lrr=1",
            "--runs-dir",
            runs,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("lrr") && err.contains("ppo_cartpole.toml"),
        "{err}"
    );

    let out = bin()
        .args([
            "--config",
            "configs/ppo_cartpole.toml",
            "--set",
            "ppo.clip_coef=-1",
            "--runs-dir",
            runs,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ppo.clip_coef"));

    let out = bin()
        .args(["--config", "configs/nope.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.toml"));
}

/// An absurd learning rate blows the weights up: training stops with exit code 3 and names
/// the last good checkpoint.
#[test]
fn divergence_stops_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().to_str().unwrap();
    let out = bin()
        .args([
            "--config",
            "configs/ppo_cartpole.toml",
            "--runs-dir",
            runs,
            "--run-name",
            "nan",
            "--no-progress",
        ])
        .args([
            "--set",
            "ppo.lr=1e30",
            "--set",
            "ppo.max_grad_norm=1e30",
            "--set",
            "run.checkpoint_every_steps=512",
        ])
        .args([
            "--set",
            "eval.every_steps=0",
            "--total-steps",
            "20480",
            "--device",
            "cpu",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("diverged") && err.contains("non-finite"),
        "{err}"
    );
    assert!(err.contains("last good checkpoint"), "{err}");
}

/// Starts `lepton-train` on CartPole (no evaluation) into `<runs>/<name>`, sends `signal` once
/// training is under way, and returns the exit code and stderr.
fn train_then_signal(
    runs: &Path,
    name: &str,
    total_steps: &str,
    signal: &str,
) -> (Option<i32>, String) {
    let child = bin()
        .args(["--config", "configs/ppo_cartpole.toml", "--runs-dir"])
        .arg(runs)
        .args([
            "--run-name",
            name,
            "--no-progress",
            "--total-steps",
            total_steps,
        ])
        .args(["--set", "eval.every_steps=0", "--device", "cpu"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until training is under way (the config is written before the first iteration).
    let start = std::time::Instant::now();
    while !runs.join(name).join("config.toml").exists() && start.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Ctrl-C: the run finishes its iteration, saves, exits 130, and can be resumed.
#[test]
fn ctrl_c_saves_a_resumable_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, err) = train_then_signal(tmp.path(), "int", "10000000", "-INT");
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("--resume"), "{err}");
    let meta = checkpoint::latest_periodic(&tmp.path().join("int/checkpoints")).unwrap();
    assert!(checkpoint::read_meta(&meta).unwrap().global_step > 0);
}

/// SIGTERM (what Slurm, Kubernetes, systemd and `timeout` send) saves like Ctrl-C, and the
/// resumed run ends bit-exactly where an uninterrupted one does.
#[test]
fn sigterm_saves_and_the_resumed_run_is_bit_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let total = "65536";
    let (code, err) = train_then_signal(tmp.path(), "term", total, "-TERM");
    assert_eq!(code, Some(130), "the signal arrived before the end: {err}");
    assert!(err.contains("signal received"), "{err}");
    let run_dir = tmp.path().join("term");
    let stopped = checkpoint::latest_periodic(&run_dir.join("checkpoints")).unwrap();
    let stopped_at = checkpoint::read_meta(&stopped).unwrap().global_step;
    assert!(stopped_at > 0 && stopped_at < 65536, "{stopped_at}");
    // What a write killed half-way leaves; the resumed session removes it.
    let leftovers = [
        run_dir.join("config.toml.tmp999999"),
        run_dir.join("checkpoints/final_0000000512.safetensors.tmp999999"),
    ];
    for path in &leftovers {
        std::fs::write(path, "half").unwrap();
    }
    let out = bin()
        .arg("--resume")
        .arg(&run_dir)
        .args(["--no-progress"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = config_with_defaults(
        "ppo_cartpole.toml",
        &[
            "train.total_steps=65536".into(),
            "eval.every_steps=0".into(),
            "run.device=\"cpu\"".into(),
        ],
        &[],
    );
    let straight = train(&config, &options(&tmp.path().join("straight"), false, None));
    assert_eq!(
        weights_hash(&run_dir.join("checkpoints/final.json")),
        weights_hash(&straight.last_checkpoint),
        "interrupted at step {stopped_at} and resumed = straight"
    );
    for path in &leftovers {
        assert!(!path.exists(), "{} was left", path.display());
    }
}

/// The scheduling path end to end: a cluster scenario, masked placement actions, the
/// set-structured network, evaluation with the heuristics' reference scores, and a
/// checkpoint that `LoadedPolicy` (what `lepton-eval --checkpoint` uses) can act with.
#[test]
fn trains_the_set_network_on_the_tiny_scenario() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(&[
        "train.total_steps=1024",
        "ppo.num_envs=2",
        "ppo.num_steps=64",
        "run.device=cpu",
        "eval.every_steps=512",
        "eval.num_episodes=2",
    ]);
    let summary = train(&config, &options(tmp.path(), false, None));
    assert_eq!(summary.outcome, Outcome::Finished);
    assert!(
        summary
            .updates
            .iter()
            .all(|u| u.first_ratio_deviation < 1e-5)
    );
    let best = tmp.path().join("checkpoints/best");
    let mut policy = checkpoint::LoadedPolicy::load(&best, tch::Device::Cpu).unwrap();
    let mut mask = vec![false; policy.num_actions()];
    *mask.last_mut().unwrap() = true;
    let obs = vec![0.0; policy.obs_dim()];
    assert_eq!(
        policy.act(&obs, &mask),
        policy.num_actions() - 1,
        "only wait is legal"
    );
}

/// Same-workload groups: whole-episode rollouts on `tiny`, groups of 2 envs sharing every
/// episode's seed, the group+critic baseline. The rollout stores exactly what the policy was
/// asked about (on the first minibatch the ratio is 1), a group's members share their base
/// seed while groups differ, and a stop and resume continues bit-exactly.
#[test]
fn same_workload_groups_train_and_resume_bit_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(&[
        "train.total_steps=600",
        "ppo.num_envs=4",
        "ppo.group_size=2",
        "ppo.baseline=\"group+critic\"",
        "ppo.gamma=1.0",
        "ppo.normalize_obs=true",
        "run.device=cpu",
        "run.checkpoint_every_steps=0",
        "eval.every_steps=0",
    ]);
    let straight = train(&config, &options(&tmp.path().join("straight"), false, None));
    assert_eq!(straight.outcome, Outcome::Finished);
    assert!(straight.global_step >= 600);
    assert!(
        straight.updates.len() >= 3,
        "{} updates",
        straight.updates.len()
    );
    for u in &straight.updates {
        assert!(
            u.first_ratio_deviation < 1e-5,
            "{}",
            u.first_ratio_deviation
        );
    }
    let meta = checkpoint::read_meta(&straight.last_checkpoint).unwrap();
    let envs = meta.trainer_state["envs"].as_array().unwrap();
    let base = |i: usize| envs[i]["base_seed"].as_u64().unwrap();
    assert_eq!(base(0), base(1));
    assert_eq!(base(2), base(3));
    assert_ne!(base(0), base(2));
    for env in envs {
        assert_eq!(
            env["actions"].as_array().unwrap().len(),
            0,
            "rollouts end at episode starts"
        );
    }

    let dir = tmp.path().join("resumed");
    let first = train(&config, &options(&dir, false, Some(300)));
    assert_eq!(first.outcome, Outcome::Stopped);
    let second = train(&config, &options(&dir, true, None));
    assert_eq!(
        joined_updates(&first, &second),
        straight.updates,
        "the losses continue exactly"
    );
    assert_eq!(second.global_step, straight.global_step);
    assert_eq!(
        weights_hash(&second.last_checkpoint),
        weights_hash(&straight.last_checkpoint)
    );
}

/// `ppo.skip_forced` on `deeprm`: the envs take the forced waits themselves, so almost no
/// decision the learner sees is forced (only episodes' first states), while without it most
/// are; every env step still counts, so the run ends at the same step budget after fewer
/// updates, and a stop and resume continues bit-exactly.
#[test]
fn skipped_forced_steps_count_and_resume_bit_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let config = |skip: bool| {
        config_with(
            "ppo_deeprm.toml",
            &[
                "train.total_steps=3000".to_string(),
                "ppo.num_envs=2".into(),
                "ppo.num_steps=64".into(),
                "network.hidden=[16]".into(),
                format!("ppo.skip_forced={skip}"),
                "run.device=cpu".into(),
                "run.checkpoint_every_steps=0".into(),
                "eval.every_steps=0".into(),
            ],
        )
    };
    let plain = train(
        &config(false),
        &options(&tmp.path().join("plain"), false, None),
    );
    let straight = train(
        &config(true),
        &options(&tmp.path().join("straight"), false, None),
    );
    let forced = |run: &lepton_train::run::RunSummary| {
        run.updates.iter().map(|u| u.forced_fraction).sum::<f64>() / run.updates.len() as f64
    };
    assert!(forced(&plain) > 0.3, "{}", forced(&plain));
    assert!(forced(&straight) < 0.1, "{}", forced(&straight));
    assert!(straight.global_step >= 3000 && straight.global_step < 3000 + 2 * 64 * 200);
    assert!(
        straight.updates.len() < plain.updates.len(),
        "{} updates skipping, {} not",
        straight.updates.len(),
        plain.updates.len()
    );

    let dir = tmp.path().join("resumed");
    let first = train(&config(true), &options(&dir, false, Some(1500)));
    assert_eq!(first.outcome, Outcome::Stopped);
    let second = train(&config(true), &options(&dir, true, None));
    assert_eq!(joined_updates(&first, &second), straight.updates);
    assert_eq!(second.global_step, straight.global_step);
    assert_eq!(
        weights_hash(&second.last_checkpoint),
        weights_hash(&straight.last_checkpoint)
    );
}

/// The fast deeprm recipe (kernel network, Tetris clone with a KL term to it, skipped forced
/// steps, one epoch), shrunk: it trains, the KL term is logged, and a stop and resume while
/// the KL term is on gives the same updates and weights as a straight run.
#[test]
fn the_fast_deeprm_recipe_trains_and_resumes_bit_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let config = config_with(
        "ppo_deeprm_fast.toml",
        &[
            "train.total_steps=2400".to_string(),
            "ppo.num_envs=4".into(),
            "ppo.num_steps=32".into(),
            "imitation.steps=400".into(),
            "imitation.epochs=2".into(),
            "imitation.kl_anneal_steps=2400".into(),
            "run.device=cpu".into(),
            "run.checkpoint_every_steps=0".into(),
            "eval.every_steps=0".into(),
        ],
    );
    assert_eq!(config.network.arch, lepton_agent::networks::Arch::Kernel);
    assert!(config.ppo.skip_forced && config.ppo.update_epochs == 1);
    let straight = train(&config, &options(&tmp.path().join("straight"), false, None));
    assert_eq!(straight.outcome, Outcome::Finished);
    assert!(straight.global_step >= 2400);
    assert!(straight.updates.iter().all(|u| u.num_minibatches == 2));

    let dir = tmp.path().join("resumed");
    let first = train(&config, &options(&dir, false, Some(1200)));
    assert_eq!(first.outcome, Outcome::Stopped);
    let second = train(&config, &options(&dir, true, None));
    assert_eq!(joined_updates(&first, &second), straight.updates);
    assert_eq!(second.global_step, straight.global_step);
    assert_eq!(
        weights_hash(&second.last_checkpoint),
        weights_hash(&straight.last_checkpoint)
    );
    let tags = tensorboard_tags(&dir);
    assert!(tags.contains("losses/kl_prior"), "{tags:?}");
}

/// `ppo.discount_by = "clock"` discounts by simulated seconds on `tiny`, in fixed-length and in
/// whole-episode rollouts: the runs train and their updates differ from per-decision
/// discounting (with γ = 0.99 per second the horizon is far longer than 100 decisions).
#[test]
fn discounting_by_the_clock_changes_the_updates() {
    let tmp = tempfile::tempdir().unwrap();
    for rollouts in [["ppo.group_size=1"], ["ppo.group_size=2"]] {
        let run = |discount: &str, name: &str| {
            let mut keys = vec![
                "train.total_steps=256".to_string(),
                "ppo.num_envs=2".into(),
                "ppo.num_steps=64".into(),
                format!("ppo.discount_by=\"{discount}\""),
                "run.device=cpu".into(),
                "eval.every_steps=0".into(),
            ];
            keys.extend(rollouts.iter().map(|s| s.to_string()));
            train(
                &tiny_config(&keys),
                &options(&tmp.path().join(name), false, None),
            )
        };
        let tag = rollouts[0].replace(['.', '='], "_");
        let by_decision = run("decision", &format!("decision_{tag}"));
        let by_clock = run("clock", &format!("clock_{tag}"));
        assert_eq!(by_clock.outcome, Outcome::Finished);
        assert_eq!(
            by_clock.global_step, by_decision.global_step,
            "same rollouts"
        );
        assert_ne!(by_clock.updates, by_decision.updates, "{tag}");
    }
}

/// Run names stay inside `--runs-dir` (`/` trained into the filesystem root, `../../x` wrote
/// outside it), and a config refused by the network builder leaves no run directory behind.
#[test]
fn bad_run_names_and_late_refusals_create_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    for name in ["/", "../../x", "", ".", "a/b", "x/"] {
        let out = bin()
            .args(["--config", "configs/ppo_cartpole.toml", "--runs-dir"])
            .arg(&runs)
            .args(["--run-name", name, "--total-steps", "512", "--no-progress"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name:?}: {err}");
        assert!(
            err.contains("--run-name") && err.contains("one directory name"),
            "{err}"
        );
        assert!(!runs.exists(), "{name:?} created {}", runs.display());
    }
    // The set network needs slot and server rows; CartPole's observation is flat.
    let out = bin()
        .args(["--config", "configs/ppo_cartpole.toml", "--runs-dir"])
        .arg(&runs)
        .args([
            "--run-name",
            "net",
            "--set",
            "network.arch=\"set\"",
            "--no-progress",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("network.arch"), "{err}");
    assert!(
        !runs.join("net").exists(),
        "the refused run left its directory"
    );
    // A device that does not parse, or that this machine lacks, is found before the run
    // directory exists too.
    for device in ["\"tpu\"", "\"cuda:99\""] {
        let out = bin()
            .args(["--config", "configs/ppo_cartpole.toml", "--runs-dir"])
            .arg(&runs)
            .args(["--run-name", "dev", "--no-progress", "--set"])
            .arg(format!("run.device={device}"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{device}: {err}");
        assert!(err.contains("run.device"), "{err}");
        assert!(!runs.exists(), "{device} created {}", runs.display());
    }
}

/// Sizes in a training config are bounded in validation (exit 2, naming the key) instead of
/// panicking, aborting in the allocator or starting 100,000 threads.
#[test]
fn oversized_training_configs_are_refused_naming_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str], &str); 5] = [
        (
            "configs/ppo_cartpole.toml",
            &["ppo.num_envs=9223372036854775807"],
            "ppo.num_envs must be in 1..=4096",
        ),
        (
            "configs/ppo_cartpole.toml",
            &["network.hidden=[100000000]"],
            "network.hidden",
        ),
        (
            "configs/ppo_cartpole.toml",
            &["run.torch_threads=100000"],
            "run.torch_threads must be in 1..=1024",
        ),
        (
            "configs/ppo_cartpole.toml",
            &["run.env_threads=100000"],
            "run.env_threads must be in 1..=1024",
        ),
        (
            "configs/dqn_cartpole.toml",
            &["replay.capacity=1000000000000"],
            "replay.capacity must be in",
        ),
    ];
    for (config, sets, expected) in cases {
        let mut cmd = bin();
        cmd.args(["--config", config, "--runs-dir"]).arg(tmp.path());
        for set in sets {
            cmd.args(["--set", set]);
        }
        let out = cmd
            .args(["--run-name", "x", "--no-progress"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{sets:?}: {err}");
        assert!(
            err.contains(expected) && !err.contains("panicked"),
            "{sets:?}: {err}"
        );
        assert!(!tmp.path().join("x").exists());
    }
}

/// A finished run extends with a larger `train.total_steps`: without learning-rate annealing
/// the schedule does not depend on the total, so 1,024 steps + an extension to 2,048 equal
/// 2,048 straight, loss for loss. The change is logged in the run's `history.log`; resuming a
/// finished run without more steps is refused, saying what to pass.
#[test]
fn a_finished_run_extends_with_more_total_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let flat = ["ppo.anneal_lr=false"];
    let straight = train(
        &small_config(2048, &flat),
        &options(&tmp.path().join("straight"), false, None),
    );
    let dir = tmp.path().join("extended");
    let first = train(&small_config(1024, &flat), &options(&dir, false, None));
    assert_eq!(first.outcome, Outcome::Finished);
    {
        let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let err = trainer::run(&small_config(1024, &flat), &options(&dir, true, None)).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.to_string()
                .contains("train.total_steps = 1024 is not beyond the checkpoint's step 1024"),
            "{err}"
        );
    }
    let second = train(&small_config(2048, &flat), &options(&dir, true, None));
    assert_eq!(
        (second.outcome, second.global_step),
        (Outcome::Finished, 2048)
    );
    assert_eq!(joined_updates(&first, &second), straight.updates);
    assert_eq!(
        weights_hash(&second.last_checkpoint),
        weights_hash(&straight.last_checkpoint)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("history.log")).unwrap(),
        "env step 1024: train.total_steps 1024 -> 2048 (learning-rate and exploration schedules re-derived for 2048 steps)\n"
    );
}

/// `train.init_from` starts a new run from a checkpoint's weights and observation statistics:
/// with a learning rate too small to move a float32 weight, the new run ends with exactly the
/// weights it started from, and its normaliser continued the checkpoint's count.
#[test]
fn init_from_starts_a_new_run_from_a_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let source = train(
        &small_config(1024, &["ppo.normalize_obs=true"]),
        &options(&tmp.path().join("source"), false, None),
    );
    let from = format!("train.init_from=\"{}\"", source.last_checkpoint.display());
    let tuned = train(
        &small_config(
            512,
            &[
                "ppo.normalize_obs=true",
                "ppo.lr=1e-30",
                "train.seed=9",
                &from,
                "train.init_optimizer=true",
            ],
        ),
        &options(&tmp.path().join("tuned"), false, None),
    );
    assert_eq!(
        weights_hash(&tuned.last_checkpoint),
        weights_hash(&source.last_checkpoint)
    );
    let (a, b) = (
        checkpoint::read_meta(&source.last_checkpoint).unwrap(),
        checkpoint::read_meta(&tuned.last_checkpoint).unwrap(),
    );
    let (na, nb) = (a.normalizer.unwrap(), b.normalizer.unwrap());
    assert_eq!(nb.count - na.count, 512.0, "{} then {}", na.count, nb.count);
    // The optimizer state came along: Adam's step count continues (8 iterations × 2 epochs ×
    // 4 minibatches).
    assert_eq!(b.optimizer_step - a.optimizer_step, 64);
}

/// A warm start that cannot work is refused before the run directory exists (exit 2, naming
/// `train.init_from` and the reason): no checkpoint there, another network, other
/// normalisation.
#[test]
fn a_warm_start_that_does_not_fit_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let source = train(
        &small_config(512, &[]),
        &options(&tmp.path().join("source"), false, None),
    );
    let runs = tmp.path().join("runs");
    let cases: [(&str, &str, &[&str], &str); 5] = [
        ("missing", "ppo_cartpole", &[], "no such file"),
        ("weights", "ppo_cartpole", &[], "this is a weights file"),
        (
            "net",
            "ppo_cartpole",
            &["--set", "network.hidden=[8]"],
            "its network is",
        ),
        (
            "norm",
            "ppo_cartpole",
            &["--set", "ppo.normalize_obs=true"],
            "expect raw observations",
        ),
        ("dqn", "dqn_cartpole", &[], "it has a Logits head"),
    ];
    for (name, config, extra, expected) in cases {
        let checkpoint = match name {
            "missing" => tmp.path().join("nothing.json"),
            "weights" => checkpoint::resolve(&source.last_checkpoint)
                .unwrap()
                .with_file_name(
                    checkpoint::read_meta(&source.last_checkpoint)
                        .unwrap()
                        .weights
                        .file,
                ),
            _ => source.last_checkpoint.clone(),
        };
        let out = bin()
            .arg("--config")
            .arg(format!("configs/{config}.toml"))
            .arg("--runs-dir")
            .arg(&runs)
            .args(["--run-name", name, "--no-progress", "--init-from"])
            .arg(&checkpoint)
            .args(extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains("train.init_from") && err.contains(expected),
            "{name}: {err}"
        );
        assert!(!runs.join(name).exists(), "{name} left its run directory");
    }
}

/// Paths in a config file are relative to that file, so a run starts from any working
/// directory with `--config /abs/path`, resumes from any with `--resume /abs/run`, and keeps
/// working after its directory moved.
#[test]
fn configs_and_runs_work_from_any_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let config = repo_root().join("configs/ppo_deeprm_hold.toml");
    let run = |cwd: &Path, args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_lepton-train"))
            .current_dir(cwd)
            .args(args)
            .args([
                "--no-progress",
                "--set",
                "ppo.num_envs=2",
                "--set",
                "ppo.num_steps=64",
            ])
            .args(["--set", "eval.every_steps=0", "--set", "imitation.epochs=1"])
            .args([
                "--set",
                "imitation.steps=256",
                "--set",
                "imitation.batch_size=64",
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    };
    let runs = tmp.path().join("runs");
    // A new 128-step run `name` from the config by its absolute path, started elsewhere.
    let new_run = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "--config",
            config.to_str().unwrap(),
            "--runs-dir",
            runs.to_str().unwrap(),
            "--run-name",
            name,
            "--total-steps",
            "128",
        ];
        args.extend(extra);
        run(&elsewhere, &args);
    };
    new_run("r", &[]);
    let moved = tmp.path().join("moved");
    std::fs::rename(runs.join("r"), &moved).unwrap();
    run(
        tmp.path(),
        &["--resume", moved.to_str().unwrap(), "--total-steps", "256"],
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(moved.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["global_step"], 256, "{summary}");
    // A warm start from it skips the config's [imitation] (no clone is trained or written)
    // and, with a learning rate too small to move a float32, ends on the very same weights.
    new_run(
        "tuned",
        &[
            "--init-from",
            moved.to_str().unwrap(),
            "--set",
            "ppo.lr=1e-30",
        ],
    );
    let tuned = runs.join("tuned/checkpoints");
    assert!(!tuned.join("clone.json").exists());
    assert_eq!(
        weights_hash(&tuned.join("final.json")),
        weights_hash(&moved.join("checkpoints/final.json"))
    );
}

/// `lepton-train` with no arguments prints its usage (exit 2), not an error about --config.
#[test]
fn no_arguments_print_the_usage() {
    let out = bin().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Usage: lepton-train") && stdout.contains("--init-from"),
        "{stdout}"
    );
}

/// Rule selection (`env.rules`): the run's actions are the rules, its checkpoints name them,
/// and rule lists that cannot work are refused before the run directory exists.
#[test]
fn rule_selection_trains_and_refuses_bad_rule_lists() {
    let tmp = tempfile::tempdir().unwrap();
    let config = config_with(
        "ppo_cloud_rules.toml",
        &[
            "train.total_steps=512",
            "ppo.num_envs=2",
            "ppo.num_steps=128",
            "eval.every_steps=512",
            "eval.num_episodes=1",
            "run.checkpoint_every_steps=0",
        ],
    );
    let dir = tmp.path().join("rules");
    let summary = train(&config, &options(&dir, false, None));
    assert_eq!(summary.global_step, 512);
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("checkpoints/final.json")).unwrap())
            .unwrap();
    assert_eq!(
        meta["action_layout"]["blocks"],
        serde_json::json!([{ "kind": "rules", "n": 5 }])
    );
    assert_eq!(
        meta["action_layout"]["rules"],
        serde_json::json!(["sjf", "tetris", "best_fit", "edf", "weighted"])
    );
    // The rules that are schedulers on their own join SJF, Packer, Tetris and (cloud-slot's
    // servers differ in speed) the speed-aware SJF as the evaluation's reference heuristics,
    // once each.
    let evaluation: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(dir.join("evaluations.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let mut references: Vec<&str> = evaluation
        .as_object()
        .unwrap()
        .keys()
        .filter_map(|k| {
            k.strip_prefix("heuristic_")?
                .strip_suffix("_completion_slowdown")
        })
        .collect();
    references.sort_unstable();
    assert_eq!(
        references,
        [
            "best_fit",
            "edf",
            "fastest:sjf",
            "packer",
            "sjf",
            "sjf+easy",
            "sjf+greedy",
            "tetris",
            "weighted"
        ]
    );

    let runs = tmp.path().join("runs");
    let refused = |sets: &[&str], expected: &str| {
        let mut cmd = bin();
        cmd.args(["--config", "configs/ppo_cloud_rules.toml", "--runs-dir"])
            .arg(&runs)
            .args(["--run-name", "bad", "--no-progress"]);
        for set in sets {
            cmd.args(["--set", set]);
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{sets:?}: {err}");
        assert!(err.contains(expected), "{sets:?}: {err}");
        assert!(
            !runs.join("bad").exists(),
            "{sets:?} left its run directory"
        );
    };
    refused(&["env.rules=[\"sjf\", \"nope\"]"], "env.rules: rule `nope`");
    refused(&["env.rules=[\"lookahead:sjf:0\"]"], "sees the future");
    refused(
        &["env.kind=\"cartpole\""],
        "env.rules needs env.kind = \"scenario\"",
    );
    refused(
        &["imitation.teacher=\"sjf\""],
        "env.rules: a heuristic teacher",
    );
}

//! End-to-end tests of the DQN loop (`algo = "dqn"`) on CartPole: bit-exact resume (target
//! network and replay buffer included), config sections, the TensorBoard tags read back by
//! TensorBoard's own reader, and a DQN checkpoint evaluated by `LoadedPolicy`.

mod common;

use std::path::Path;

use common::{config_with_defaults, options, tensorboard_tags, train};
use lepton_agent::checkpoint::{self, LoadedPolicy};
use lepton_train::config::{TrainConfig, apply_override, read_table};
use lepton_train::run::Outcome;

/// A small CartPole DQN run: learning from step 300, a gradient step every 4 env steps.
fn small_config(total_steps: u64, overrides: &[&str]) -> TrainConfig {
    let base = [
        format!("train.total_steps={total_steps}"),
        "dqn.num_envs=2".into(),
        "dqn.learning_starts=300".into(),
        "dqn.train_frequency=4".into(),
        "dqn.batch_size=32".into(),
        "dqn.target_update_frequency=100".into(),
        "replay.capacity=1000".into(),
        "replay.n_step=3".into(),
        "network.hidden=[32]".into(),
        "run.device=cpu".into(),
        "run.checkpoint_every_steps=0".into(),
        "eval.every_steps=0".into(),
    ];
    config_with_defaults("dqn_cartpole.toml", &base, overrides)
}

fn extra(meta: &Path, suffix: &str) -> Vec<u8> {
    let stem = meta
        .file_name()
        .unwrap()
        .to_string_lossy()
        .strip_suffix(".json")
        .unwrap()
        .to_string();
    std::fs::read(meta.with_file_name(format!("{stem}{suffix}"))).unwrap()
}

/// Stopping at step 1000 and resuming gives the same weights, optimizer, target network,
/// replay buffer (contents, priorities, n-step windows, RNG) and trainer state as a straight
/// run, for Polyak targets and a dueling head with prioritized replay.
#[test]
fn dqn_resume_is_bit_exact() {
    for extra_overrides in [
        &["dqn.tau=0.5", "dqn.dueling=true"][..],
        &["replay.prioritized=false"][..],
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let config = small_config(2000, extra_overrides);
        let straight = train(&config, &options(&tmp.path().join("straight"), false, None));
        assert_eq!(
            (straight.outcome, straight.global_step),
            (Outcome::Finished, 2000)
        );
        let dir = tmp.path().join("resumed");
        let first = train(&config, &options(&dir, false, Some(1000)));
        assert_eq!((first.outcome, first.global_step), (Outcome::Stopped, 1000));
        let second = train(&config, &options(&dir, true, None));
        assert_eq!(
            (second.outcome, second.global_step),
            (Outcome::Finished, 2000)
        );

        let step_meta = |dir: &Path| dir.join("checkpoints").join("step_0000002000.json");
        let (a, b) = (step_meta(&tmp.path().join("straight")), step_meta(&dir));
        let (ma, mb) = (
            checkpoint::read_meta(&a).unwrap(),
            checkpoint::read_meta(&b).unwrap(),
        );
        assert_eq!(
            ma.weights.sha256, mb.weights.sha256,
            "identical weights ({extra_overrides:?})"
        );
        assert_eq!(
            ma.optimizer.sha256, mb.optimizer.sha256,
            "identical optimizer state"
        );
        assert_eq!(
            ma.trainer_state, mb.trainer_state,
            "identical RNG, env and counter states"
        );
        assert!(ma.trainer_state["num_updates"].as_u64().unwrap() > 300);
        assert_eq!(
            extra(&a, ".target.safetensors"),
            extra(&b, ".target.safetensors"),
            "identical target network"
        );
        assert_eq!(
            extra(&a, ".replay.bin"),
            extra(&b, ".replay.bin"),
            "identical replay buffer"
        );
        // Only the extras of the surviving periodic checkpoints remain.
        let names: Vec<String> = std::fs::read_dir(dir.join("checkpoints"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert!(
            names.iter().any(|n| n == "step_0000001000.replay.bin"),
            "{names:?}"
        );
    }
}

#[test]
fn sections_of_the_other_algorithm_are_rejected() {
    let mut table = read_table(&common::repo_root().join("configs/ppo_cartpole.toml")).unwrap();
    apply_override(&mut table, "dqn.lr=1e-3").unwrap();
    let err = TrainConfig::from_table(table, "ppo.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("[dqn] applies to algo = \"dqn\""), "{err}");
    let mut table = read_table(&common::repo_root().join("configs/dqn_cartpole.toml")).unwrap();
    apply_override(&mut table, "ppo.lr=1e-3").unwrap();
    apply_override(&mut table, "replay.capacity=16").unwrap();
    let err = TrainConfig::from_table(table, "dqn.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("[ppo] applies to algo = \"ppo\""), "{err}");
    assert!(
        err.contains("dqn.batch_size (128) is larger than replay.capacity (16)"),
        "{err}"
    );
    // The resolved config of a DQN run has no [ppo] section, and reads back equal.
    let config = small_config(1000, &[]);
    let text = config.to_toml();
    assert!(
        text.starts_with("algo = \"dqn\"") && !text.contains("[ppo]") && text.contains("[replay]"),
        "{text}"
    );
    assert_eq!(
        TrainConfig::from_table(text.parse().unwrap(), "resolved").unwrap(),
        config
    );
}

/// The event files hold the DQN tags (read by TensorBoard's own reader), and the final
/// checkpoint is a policy that `LoadedPolicy` (lepton-eval's loader) runs greedily.
#[test]
fn dqn_tensorboard_tags_and_checkpoint_for_eval() {
    let tmp = tempfile::tempdir().unwrap();
    let config = small_config(1000, &["eval.every_steps=500", "eval.num_episodes=2"]);
    let summary = train(&config, &options(tmp.path(), false, None));
    let mut policy = LoadedPolicy::load(&summary.last_checkpoint, tch::Device::Cpu).unwrap();
    let action = policy.act(&[0.0, 0.0, 0.05, 0.0], &[true, false]);
    assert_eq!(action, 0, "the greedy action respects the mask");

    let stdout = tensorboard_tags(tmp.path());
    for tag in [
        "charts/episodic_return",
        "charts/epsilon",
        "charts/SPS",
        "losses/td_loss",
        "losses/q_values",
        "replay/beta",
        "replay/mean_priority",
        "eval/episodic_return",
    ] {
        assert!(
            stdout.contains(&format!("scalar {tag} ")),
            "missing {tag} in:\n{stdout}"
        );
    }
    // Learning starts after step 300; one point every 100 env steps from then on: 7.
    assert!(stdout.contains("scalar losses/td_loss 7"), "{stdout}");
}

/// `dqn.prefill_teacher` fills the replay buffer with a heuristic's whole episodes before the
/// first env step: the saved buffer holds at least `prefill_steps` more transitions than a run
/// without it, and at most one teacher episode more.
#[test]
fn dqn_replay_is_prefilled_by_a_teacher() {
    use lepton_agent::replay::ReplayBuffer;
    let tmp = tempfile::tempdir().unwrap();
    let scenario = common::repo_root().join("configs/scenarios/deeprm.toml");
    let base = [
        "train.total_steps=200".to_string(),
        format!("env.scenario=\"{}\"", scenario.display()),
        "dqn.num_envs=2".into(),
        "dqn.learning_starts=1000".into(),
        "replay.capacity=5000".into(),
        "network.hidden=[16]".into(),
        "run.device=cpu".into(),
        "run.checkpoint_every_steps=200".into(),
        "eval.every_steps=0".into(),
    ];
    let stored = |name: &str, overrides: &[&str]| -> usize {
        let config = config_with_defaults("dqn_deeprm.toml", &base, overrides);
        let dir = tmp.path().join(name);
        train(&config, &options(&dir, false, None));
        let meta_path = dir.join("checkpoints").join("step_0000000200.json");
        let meta = checkpoint::read_meta(&meta_path).unwrap();
        let bytes = checkpoint::read_extra_bytes(&meta_path, &meta, "replay")
            .unwrap()
            .unwrap();
        let mut buffer = ReplayBuffer::new(
            &config.replay,
            config.dqn.gamma,
            meta.obs_dim,
            meta.num_actions,
            2,
            0,
        );
        buffer.read_from(&mut bytes.as_slice()).unwrap();
        buffer.len()
    };
    let plain = stored("plain", &[]);
    let prefilled = stored(
        "prefilled",
        &["dqn.prefill_teacher=\"tetris\"", "dqn.prefill_steps=300"],
    );
    // DeepRM episodes under tetris last well under 400 decisions.
    assert!(
        prefilled >= plain + 300 && prefilled < plain + 700,
        "{plain} → {prefilled}"
    );

    let mut table = read_table(&common::repo_root().join("configs/dqn_deeprm.toml")).unwrap();
    apply_override(&mut table, &base[1]).unwrap();
    apply_override(&mut table, "dqn.prefill_teacher=\"shortest\"").unwrap();
    let err = TrainConfig::from_table(table, "x.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("dqn.prefill_teacher: unknown scheduler `shortest`"),
        "{err}"
    );
}

/// A vector step of 8 env steps crosses two multiples of `train_frequency = 4`, so it makes
/// two learning steps of `gradient_steps` updates each: learning runs on the 88 vector steps
/// after step 300 (304, 312, …, 1000), 88 × 2 × 3 = 528 updates (176 with one gradient step).
#[test]
fn learning_steps_follow_env_steps_whatever_the_number_of_envs() {
    let tmp = tempfile::tempdir().unwrap();
    for (gradient_steps, expected) in [(3, 528), (1, 176)] {
        let config = small_config(
            1000,
            &[
                "dqn.num_envs=8",
                &format!("dqn.gradient_steps={gradient_steps}"),
            ],
        );
        let dir = tmp.path().join(format!("g{gradient_steps}"));
        train(&config, &options(&dir, false, None));
        let meta = checkpoint::read_meta(&dir.join("checkpoints/final.json")).unwrap();
        assert_eq!(
            meta.trainer_state["num_updates"].as_u64(),
            Some(expected),
            "gradient_steps = {gradient_steps}"
        );
    }
}

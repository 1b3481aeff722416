//! End-to-end tests of the evolution-strategies loop (`algo = "es"`) on the `tiny` scenario:
//! bit-exact resume, what it perturbs (the actor, never the critic), the warm start, its
//! TensorBoard tags and checkpoints that `LoadedPolicy` (lepton-eval's loader) runs, and its
//! config errors.

mod common;

use std::path::Path;

use common::{options, repo_root, tensorboard_tags, train};
use lepton_agent::checkpoint::{self, LoadedPolicy};
use lepton_train::config::{TrainConfig, apply_override};
use lepton_train::run::Outcome;
use tch::Tensor;

/// ES on `tiny`: 3 pairs × 2 workloads per generation, episodes cut at 100 decisions (an
/// untrained greedy policy may wait forever), so a generation is at most 1,200 env steps.
fn es_config(total_steps: u64, overrides: &[&str]) -> TrainConfig {
    let scenario = repo_root().join("configs/scenarios/tiny.toml");
    let mut table: toml::Table = format!(
        r#"
algo = "es"
[train]
seed = 3
total_steps = {total_steps}
[env]
kind = "scenario"
scenario = "{}"
max_episode_steps = 100
[es]
pairs = 3
episodes = 2
sigma = 0.05
lr = 0.02
weight_decay = 0.005
[network]
arch = "kernel"
hidden = [8]
[eval]
every_steps = 0
[run]
device = "cpu"
checkpoint_every_steps = 0
"#,
        scenario.display()
    )
    .parse()
    .unwrap();
    for o in overrides {
        apply_override(&mut table, o).unwrap();
    }
    TrainConfig::from_table(table, "es.toml").unwrap()
}

fn weights(meta: &Path) -> Vec<(String, Tensor)> {
    let meta_json = checkpoint::read_meta(meta).unwrap();
    let path = meta.with_file_name(&meta_json.weights.file);
    Tensor::read_safetensors(path).unwrap()
}

fn named<'a>(tensors: &'a [(String, Tensor)], name: &str) -> &'a Tensor {
    &tensors.iter().find(|(n, _)| n == name).unwrap().1
}

/// Stopping after the first generation past step 1500 and resuming gives the same weights,
/// optimizer and trainer state (noise stream, generation, episode bookkeeping) as a straight
/// run.
#[test]
fn es_resume_is_bit_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let config = es_config(4000, &[]);
    let straight = train(&config, &options(&tmp.path().join("straight"), false, None));
    assert_eq!(straight.outcome, Outcome::Finished);
    assert!(straight.global_step >= 4000);
    let dir = tmp.path().join("resumed");
    let first = train(&config, &options(&dir, false, Some(1500)));
    assert_eq!(first.outcome, Outcome::Stopped);
    assert!((1500..4000).contains(&first.global_step));
    let second = train(&config, &options(&dir, true, None));
    assert_eq!(
        (second.outcome, second.global_step),
        (Outcome::Finished, straight.global_step)
    );
    let final_meta =
        |dir: &Path| checkpoint::read_meta(&dir.join("checkpoints").join("final.json")).unwrap();
    let (a, b) = (final_meta(&tmp.path().join("straight")), final_meta(&dir));
    assert_eq!(a.weights.sha256, b.weights.sha256, "identical weights");
    assert_eq!(
        a.optimizer.sha256, b.optimizer.sha256,
        "identical optimizer"
    );
    assert_eq!(
        a.trainer_state, b.trainer_state,
        "identical noise stream and counters"
    );
    assert!(a.trainer_state["generation"].as_u64().unwrap() >= 4);
    assert_eq!(a.trainer_state["envs"], serde_json::json!([]));
}

/// ES moves the actor's weights and leaves the critic's where the warm start put them; the
/// warm start's weights are the starting point (a run of one generation with a tiny σ and
/// learning rate stays within a hair of them).
#[test]
fn es_moves_the_actor_only_from_the_warm_start() {
    let tmp = tempfile::tempdir().unwrap();
    let base = train(
        &es_config(500, &[]),
        &options(&tmp.path().join("base"), false, None),
    );
    let from = base.last_checkpoint.display().to_string();
    let config = es_config(2000, &[&format!("train.init_from=\"{from}\"")]);
    let run = train(&config, &options(&tmp.path().join("warm"), false, None));
    let (before, after) = (
        weights(&base.last_checkpoint),
        weights(&run.last_checkpoint),
    );
    for name in ["critic.0.weight", "value_head.weight", "value_head.bias"] {
        assert!(
            named(&before, name).equal(named(&after, name)),
            "{name} changed"
        );
    }
    for name in ["kernel.0.weight", "kernel_head.weight", "wait_head.weight"] {
        let moved = (named(&before, name) - named(&after, name))
            .abs()
            .max()
            .double_value(&[]);
        assert!(moved > 1e-4, "{name} did not move ({moved})");
    }
    // A generation with σ and the learning rate near 0 keeps the warm start's weights.
    let still = es_config(
        400,
        &[
            "es.sigma=1e-9",
            "es.lr=1e-9",
            &format!("train.init_from=\"{from}\""),
        ],
    );
    let run = train(&still, &options(&tmp.path().join("still"), false, None));
    let after = weights(&run.last_checkpoint);
    for (name, w) in &before {
        let moved = (w - named(&after, name)).abs().max().double_value(&[]);
        assert!(moved < 1e-6, "{name} moved by {moved}");
    }
}

/// The event files hold ES's tags (read by TensorBoard's own reader), model selection writes
/// `best`, and the final checkpoint is a policy `LoadedPolicy` runs greedily on the env's
/// observation.
#[test]
fn es_tags_and_checkpoints_for_eval() {
    let tmp = tempfile::tempdir().unwrap();
    let config = es_config(
        1500,
        &[
            "eval.every_steps=500",
            "eval.num_episodes=2",
            "eval.seed=900",
        ],
    );
    let summary = train(&config, &options(tmp.path(), false, None));
    assert!(tmp.path().join("checkpoints/best.json").is_file());
    let mut policy = LoadedPolicy::load(&summary.last_checkpoint, tch::Device::Cpu).unwrap();
    let mut mask = vec![false; policy.num_actions()];
    *mask.last_mut().unwrap() = true;
    let obs = vec![0.0f32; policy.obs_dim()];
    assert_eq!(policy.act(&obs, &mask), policy.num_actions() - 1);

    let stdout = tensorboard_tags(tmp.path());
    for tag in [
        "charts/episodic_return",
        "charts/SPS",
        "charts/learning_rate",
        "es/fitness_mean",
        "es/fitness_max",
        "es/fitness_min",
        "es/update_norm",
        "eval/completion_slowdown",
    ] {
        assert!(
            stdout.contains(&format!("scalar {tag} ")),
            "missing {tag} in:\n{stdout}"
        );
    }
    // One fitness point per generation: as many as the checkpoint's generations.
    let generations = checkpoint::read_meta(&summary.last_checkpoint)
        .unwrap()
        .trainer_state["generation"]
        .as_u64()
        .unwrap();
    assert!(
        stdout.contains(&format!("scalar es/fitness_mean {generations}\n")),
        "{generations} generations:\n{stdout}"
    );
}

#[test]
fn es_config_errors_name_their_keys() {
    let scenario = repo_root().join("configs/scenarios/tiny.toml");
    let parse = |extra: &str| {
        let text = format!(
            "algo = \"es\"\n[train]\nseed = 1\ntotal_steps = 100\n{extra}\n[env]\nkind = \"scenario\"\nscenario = \"{}\"\n",
            scenario.display()
        );
        TrainConfig::from_table(text.parse().unwrap(), "es.toml")
            .unwrap_err()
            .to_string()
    };
    let err = parse("init_from = \"x.json\"\ninit_optimizer = true");
    assert!(
        err.contains("train.init_optimizer does not apply to algo = \"es\""),
        "{err}"
    );
    let err = parse("[es]\npairs = 0\nsigma = 0");
    assert!(err.contains("es.pairs must be in 1..=4096, got 0"), "{err}");
    assert!(err.contains("es.sigma must be positive, got 0"), "{err}");
    let err = parse("[ppo]\nlr = 1e-3");
    assert!(err.contains("[ppo] applies to algo = \"ppo\""), "{err}");
    // The resolved config of an ES run reads back equal, without the other algorithms'
    // sections.
    let config = es_config(1000, &[]);
    let text = config.to_toml();
    assert!(text.contains("[es]") && !text.contains("[ppo]") && !text.contains("[dqn]"));
    assert_eq!(
        TrainConfig::from_table(text.parse().unwrap(), "resolved").unwrap(),
        config
    );
}

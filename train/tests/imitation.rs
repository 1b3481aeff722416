//! The imitation warm start end to end on `deeprm`: cloning a deterministic teacher reaches
//! high agreement in a small budget; a run writes the `clone` checkpoint and its summary; a
//! resumed run does not clone again and continues bit-exactly (the KL prior comes back from
//! the checkpoint); the same seed gives the same demonstrations.

mod common;

use common::{SERIAL, config_with, joined_updates, options, repo_root, train};
use lepton_agent::checkpoint;
use lepton_agent::imitation::{self, Demonstrations, ImitationConfig};
use lepton_agent::networks::{Head, NetworkConfig, Policy, with_torch_rng};
use lepton_agent::optim::Adam;
use lepton_env::Env;
use lepton_train::config::EnvConfig;
use lepton_train::envs::EnvSpec;
use lepton_train::imitation::collect;
use lepton_train::run::Outcome;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::Device;

fn deeprm_spec() -> EnvSpec {
    let config: EnvConfig = toml::from_str(&format!(
        "kind = \"scenario\"\nscenario = \"{}\"",
        repo_root().join("configs/scenarios/deeprm.toml").display()
    ))
    .unwrap();
    EnvSpec::from_config(&config).unwrap()
}

/// SJF is a deterministic function of what the observation shows (job lengths and demands
/// in the slots), so a small MLP imitates it closely from a few thousand decisions (0.79 on
/// the decisions with a choice after 15 epochs over 4,000, from 0.12 untrained).
#[test]
fn cloning_sjf_on_deeprm_reaches_high_agreement() {
    let spec = deeprm_spec();
    let rows = collect(&spec, "sjf", 4000, 0.99, 0.1, 7).unwrap();
    assert!(rows.actions.len() >= 4000);
    assert_eq!(
        rows,
        collect(&spec, "sjf", 4000, 0.99, 0.1, 7).unwrap(),
        "seeded"
    );
    let demos = Demonstrations::from_rows(
        &rows.obs,
        &rows.masks,
        &rows.actions,
        &rows.returns,
        Device::Cpu,
    );
    let env = spec.make();
    let network = NetworkConfig {
        hidden: vec![128, 128],
        ..NetworkConfig::default()
    };
    let policy = {
        let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        with_torch_rng(Some(3), || {
            Policy::new(
                &network,
                env.obs_layout(),
                &env.action_layout(),
                Head::Logits,
                Device::Cpu,
            )
        })
        .unwrap()
    };
    let before = imitation::agreement(&policy, &demos, 1024);
    let config = ImitationConfig {
        epochs: 15,
        batch_size: 128,
        ..ImitationConfig::default()
    };
    let mut adam = Adam::new(policy.named_parameters(), 1e-5);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let stats = imitation::fit(&config, &policy, &mut adam, &demos, 0.5, &mut rng, |_| {}).unwrap();
    let last = stats.last().unwrap();
    assert!(
        stats[0].cross_entropy > last.cross_entropy,
        "the loss falls: {stats:?}"
    );
    assert!(
        last.agreement.free > 0.75 && last.agreement.free > before.free + 0.5,
        "agreement on decisions with a choice {:.3} (before {:.3})",
        last.agreement.free,
        before.free
    );
}

fn small_run(total_steps: u64, kl_coef: f64) -> lepton_train::config::TrainConfig {
    let scenario = repo_root().join("configs/scenarios/deeprm.toml");
    config_with(
        "ppo_deeprm.toml",
        &[
            format!("env.scenario=\"{}\"", scenario.display()),
            format!("train.total_steps={total_steps}"),
            "ppo.num_envs=2".into(),
            "ppo.num_steps=64".into(),
            "ppo.update_epochs=2".into(),
            "network.hidden=[32, 32]".into(),
            "run.device=cpu".into(),
            "run.checkpoint_every_steps=0".into(),
            "eval.every_steps=0".into(),
            "eval.num_episodes=2".into(),
            "imitation.teacher=\"tetris\"".into(),
            "imitation.steps=600".into(),
            "imitation.epochs=2".into(),
            format!("imitation.kl_coef={kl_coef}"),
            "imitation.kl_anneal_steps=1024".into(),
        ],
    )
}

/// Stop after N steps and resume: the cloning is not redone (no `imitation` in the resumed
/// summary, the `clone` checkpoint untouched) and the run continues exactly as a straight one,
/// which needs the KL prior restored from the checkpoint.
#[test]
fn resume_does_not_clone_again_and_is_bit_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let config = small_run(1024, 0.5);
    let straight = train(&config, &options(&tmp.path().join("straight"), false, None));
    let dir = tmp.path().join("resumed");
    let first = train(&config, &options(&dir, false, Some(512)));
    assert_eq!(first.outcome, Outcome::Stopped);
    let clone = dir.join("checkpoints/clone.json");
    let clone_meta = checkpoint::read_meta(&clone).unwrap();
    assert_eq!(clone_meta.global_step, 0);
    let summary = |d: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(d.join("summary.json")).unwrap()).unwrap()
    };
    assert!(
        summary(&dir)["imitation"]["num_decisions"]
            .as_u64()
            .unwrap()
            >= 600
    );

    let second = train(&config, &options(&dir, true, None));
    assert_eq!(second.outcome, Outcome::Finished);
    assert!(summary(&dir)["imitation"].is_null(), "no cloning on resume");
    assert_eq!(
        checkpoint::read_meta(&clone).unwrap().weights.sha256,
        clone_meta.weights.sha256
    );
    assert_eq!(
        joined_updates(&first, &second),
        straight.updates,
        "the losses continue exactly"
    );
    assert_eq!(
        checkpoint::read_meta(&straight.last_checkpoint)
            .unwrap()
            .weights
            .sha256,
        checkpoint::read_meta(&second.last_checkpoint)
            .unwrap()
            .weights
            .sha256,
    );
    // The clone is the straight run's starting point: same seed, same clone.
    assert_eq!(
        checkpoint::read_meta(&tmp.path().join("straight/checkpoints/clone.json"))
            .unwrap()
            .weights
            .sha256,
        clone_meta.weights.sha256
    );
}

/// With evaluations on, the clone is the first candidate for `best`: PPO at a learning rate
/// too small to change a greedy action ties with it, and a tie does not replace it.
#[test]
fn the_clone_stays_best_until_ppo_beats_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = small_run(512, 0.0);
    config.eval.every_steps = 256;
    config.ppo.lr = 1e-12;
    config.ppo.anneal_lr = false;
    let dir = tmp.path().join("run");
    train(&config, &options(&dir, false, None));
    let best = checkpoint::read_meta(&dir.join("checkpoints/best.json")).unwrap();
    let clone = checkpoint::read_meta(&dir.join("checkpoints/clone.json")).unwrap();
    assert_eq!(best.global_step, 0);
    assert_eq!(best.weights.sha256, clone.weights.sha256);
    let log = std::fs::read_to_string(dir.join("evaluations.jsonl")).unwrap();
    let returns: Vec<f64> = log
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["episodic_return"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert_eq!(returns.len(), 2, "evaluations at 256 and 512");
    assert!(returns.windows(2).all(|w| w[0] == w[1]), "{returns:?}");
}

//! Taking a policy out of lepton: `python/lepton_policy.py` (the loader that
//! docs/checkpoint-format.md describes) and `lepton-train export` must decide exactly as lepton
//! does, on observations and masks recorded from real episodes, for every network family and
//! head a checkpoint can hold; bad input is a clear error with exit code 2.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{bin, config_with, options, repo_root, tiny_config, train};
use lepton_agent::checkpoint::{self, LoadedPolicy};
use lepton_env::{CartPole, Env, scenario};
use lepton_train::export::{module_greedy, probes};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{CModule, Device, IValue, Tensor};

/// Observations and masks, row-major, with the checkpoint that should decide them.
struct Case {
    name: &'static str,
    checkpoint: PathBuf,
    obs: Vec<f32>,
    mask: Vec<bool>,
    obs_dim: usize,
    num_actions: usize,
}

impl Case {
    fn rows(&self) -> usize {
        self.obs.len() / self.obs_dim
    }
}

/// Decisions along episodes of `env` in which the checkpoint's greedy action and a uniformly
/// random legal action take turns at random (so the states are not only the greedy policy's).
fn record(name: &'static str, checkpoint: PathBuf, env: &mut dyn Env, decisions: usize) -> Case {
    let mut policy = LoadedPolicy::load(&checkpoint, Device::Cpu).unwrap();
    let (obs_dim, num_actions) = (policy.obs_dim(), policy.num_actions());
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (mut o, mut m) = (vec![0.0f32; obs_dim], vec![false; num_actions]);
    let (mut obs, mut mask) = (Vec::new(), Vec::new());
    let mut episode = 0;
    env.reset(Some(episode), &mut o);
    while obs.len() < decisions * obs_dim {
        env.action_mask(&mut m);
        obs.extend_from_slice(&o);
        mask.extend_from_slice(&m);
        let action = if rng.random_bool(0.5) {
            policy.act(&o, &m)
        } else {
            let legal: Vec<usize> = (0..num_actions).filter(|&a| m[a]).collect();
            legal[rng.random_range(0..legal.len())]
        };
        if env.step(action, &mut o).unwrap().episode_over() {
            episode += 1;
            env.reset(Some(episode), &mut o);
        }
    }
    Case {
        name,
        checkpoint,
        obs,
        mask,
        obs_dim,
        num_actions,
    }
}

fn scenario_env(file: &str) -> Box<dyn Env> {
    Box::new(
        scenario::load_file(&repo_root().join("configs/scenarios").join(file))
            .unwrap()
            .build(),
    )
}

/// A few training iterations on `config`'s env, and the final checkpoint's metadata.
fn tiny_checkpoint(dir: &Path, name: &str, config: &lepton_train::config::TrainConfig) -> PathBuf {
    train(config, &options(&dir.join(name), false, None)).last_checkpoint
}

const PPO_TINY: [&str; 6] = [
    "train.total_steps=256",
    "ppo.num_envs=2",
    "ppo.num_steps=64",
    "run.device=cpu",
    "eval.every_steps=0",
    "run.checkpoint_every_steps=0",
];

/// The shipped deeprm-hold checkpoint (kernel network, slot actions), freshly trained ones of
/// every other network family, head and option, and the format-1 fixtures (read by the
/// per-slot rule of older checkpoints), each with its recorded decisions.
fn cases() -> &'static [Case] {
    static CASES: OnceLock<Vec<Case>> = OnceLock::new();
    CASES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let ppo = |extra: &[&str]| {
            let all: Vec<&str> = PPO_TINY.iter().chain(extra).copied().collect();
            tiny_config(&all)
        };
        let deeprm = repo_root().join("configs/scenarios/deeprm.toml");
        let deeprm_set: Vec<String> = PPO_TINY
            .iter()
            .map(|s| s.to_string())
            .chain([
                format!("env.scenario=\"{}\"", deeprm.display()),
                "network.arch=\"set\"".into(),
            ])
            .collect();
        let dqn = config_with(
            "dqn_cartpole.toml",
            &[
                "train.total_steps=400",
                "dqn.learning_starts=100",
                "dqn.dueling=true",
                "network.hidden=[16]",
                "run.device=cpu",
                "eval.every_steps=0",
                "run.checkpoint_every_steps=0",
            ],
        );
        let shipped = repo_root().join("checkpoints/deeprm_hold_ppo/seed1/best.json");
        let fixtures = repo_root().join("agent/tests/fixtures/format1");
        let mut cases = vec![
            record(
                "shipped kernel, slots",
                shipped,
                &mut *scenario_env("deeprm-hold.toml"),
                300,
            ),
            record(
                "mlp relu, normalised obs",
                tiny_checkpoint(
                    &dir,
                    "mlp",
                    &ppo(&[
                        "network.arch=\"mlp\"",
                        "network.activation=\"relu\"",
                        "ppo.normalize_obs=true",
                    ]),
                ),
                &mut *scenario_env("tiny.toml"),
                200,
            ),
            record(
                "set, placements",
                tiny_checkpoint(&dir, "set", &ppo(&["network.arch=\"set\""])),
                &mut *scenario_env("tiny.toml"),
                200,
            ),
            record(
                "kernel, placements",
                tiny_checkpoint(&dir, "kernel", &ppo(&["network.arch=\"kernel\""])),
                &mut *scenario_env("tiny.toml"),
                200,
            ),
            record(
                "set, placements, pair features and Tetris prior",
                tiny_checkpoint(
                    &dir,
                    "set_pairs",
                    &ppo(&[
                        "network.arch=\"set\"",
                        "network.pair_features=true",
                        "network.tetris_prior=2.0",
                    ]),
                ),
                &mut *scenario_env("tiny.toml"),
                200,
            ),
            record(
                "kernel, placements, pair features and Tetris prior",
                tiny_checkpoint(
                    &dir,
                    "kernel_pairs",
                    &ppo(&[
                        "network.arch=\"kernel\"",
                        "network.pair_features=true",
                        "network.tetris_prior=2.0",
                    ]),
                ),
                &mut *scenario_env("tiny.toml"),
                200,
            ),
            record(
                "set, slots",
                tiny_checkpoint(
                    &dir,
                    "set_slots",
                    &config_with("ppo_deeprm.toml", &deeprm_set),
                ),
                &mut *scenario_env("deeprm.toml"),
                200,
            ),
            record(
                "dueling dqn, shared trunk",
                tiny_checkpoint(&dir, "dqn", &dqn),
                &mut CartPole::new(0),
                200,
            ),
        ];
        // No env matches the fixtures' layout: seeded probes instead.
        for (name, file) in [
            ("format 1 set ppo", "set_ppo"),
            ("format 1 mlp dqn", "mlp_dqn"),
        ] {
            let checkpoint = fixtures.join(file).join("final.json");
            let policy = LoadedPolicy::load(&checkpoint, Device::Cpu).unwrap();
            let (obs_dim, num_actions) = (policy.obs_dim(), policy.num_actions());
            let (obs, mask) = probes(obs_dim, num_actions, 200, 9);
            cases.push(Case {
                name,
                checkpoint,
                obs,
                mask,
                obs_dim,
                num_actions,
            });
        }
        cases
    })
}

/// A checkpoint trained on a cluster scenario records the time unit of its features (what
/// lepton-serve checks a live scenario against); one trained on CartPole records none.
#[test]
fn cluster_checkpoints_record_their_time_unit() {
    let scenario::Scenario::Cluster(config) = scenario::load_named("tiny").unwrap() else {
        unreachable!()
    };
    let unit = |name: &str| {
        let case = cases().iter().find(|c| c.name == name).unwrap();
        checkpoint::read_meta(&case.checkpoint)
            .unwrap()
            .obs_time_scale_s
    };
    assert_eq!(unit("kernel, placements"), Some(config.time_scale_s));
    assert_eq!(unit("dueling dqn, shared trunk"), None);
}

/// lepton's greedy actions and unmasked head outputs (after its normaliser) for a case.
fn lepton_decisions(case: &Case) -> (Vec<usize>, Vec<f32>) {
    let mut loaded = LoadedPolicy::load(&case.checkpoint, Device::Cpu).unwrap();
    let mut greedy = vec![0usize; case.rows()];
    loaded.act_batch(&case.obs, &case.mask, &mut greedy);
    let meta = checkpoint::read_meta(&case.checkpoint).unwrap();
    let policy = checkpoint::load_policy(
        &case.checkpoint,
        &meta,
        meta.obs_layout.into(),
        &meta.action_layout,
        Device::Cpu,
    )
    .unwrap();
    let mut obs = case.obs.clone();
    if let Some(norm) = &meta.normalizer {
        norm.normalize(&mut obs);
    }
    let obs = Tensor::from_slice(&obs).view([case.rows() as i64, case.obs_dim as i64]);
    let head = tch::no_grad(|| policy.forward(&obs).0);
    (greedy, Vec::<f32>::try_from(head.reshape([-1])).unwrap())
}

fn assert_close(case: &str, got: &[f32], expected: &[f32]) {
    assert_eq!(got.len(), expected.len(), "{case}");
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert!(
            (g - e).abs() <= 1e-5 * (1.0 + e.abs()),
            "{case}: head output {i} is {g}, lepton's {e}"
        );
    }
}

/// Every decision of every case must be lepton's (and the shipped policy's decisions must
/// vary, so agreement means something).
fn assert_same_greedy(case: &Case, got: &[usize], expected: &[usize]) {
    assert_eq!(got.len(), case.rows(), "{}", case.name);
    let differ = got.iter().zip(expected).filter(|(a, b)| a != b).count();
    assert_eq!(
        differ,
        0,
        "{}: {differ} of {} greedy actions differ",
        case.name,
        case.rows()
    );
}

#[test]
fn python_loader_decides_like_lepton_on_recorded_decisions() {
    let cases = cases();
    let dir = tempfile::tempdir().unwrap();
    // One Python run for all cases: each case's observations and masks as JSON.
    let mut inputs = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let file = dir.path().join(format!("case{i}.json"));
        let rows = case.rows();
        let json = serde_json::json!({
            "checkpoint": case.checkpoint,
            "obs": case.obs.chunks(case.obs_dim).collect::<Vec<_>>(),
            "mask": case.mask.chunks(case.num_actions).collect::<Vec<_>>(),
        });
        assert_eq!(json["obs"].as_array().unwrap().len(), rows);
        std::fs::write(&file, json.to_string()).unwrap();
        inputs.push(file);
    }
    let script = r#"
import json, sys, torch
sys.path.insert(0, sys.argv[1])
from lepton_policy import load_policy
out = []
for path in sys.argv[2:]:
    case = json.load(open(path))
    policy = load_policy(case["checkpoint"])
    obs = torch.tensor(case["obs"], dtype=torch.float32)
    mask = torch.tensor(case["mask"], dtype=torch.bool)
    with torch.no_grad():
        out.append({"greedy": policy.greedy_action(obs, mask).tolist(),
                    "head": policy.head(obs).reshape(-1).tolist()})
# The loader refuses a weights file named instead of the metadata, naming it.
try:
    load_policy(sys.argv[2].replace("case0.json", "weights.safetensors"))
except ValueError as e:
    out.append(str(e))
print(json.dumps(out))
"#;
    let python_dir = repo_root().join("python");
    let args: Vec<&Path> = std::iter::once(python_dir.as_path())
        .chain(inputs.iter().map(PathBuf::as_path))
        .collect();
    let out: Vec<serde_json::Value> = serde_json::from_str(&common::python(script, &args)).unwrap();
    for (case, answer) in cases.iter().zip(&out) {
        let (greedy, head) = lepton_decisions(case);
        let py_greedy: Vec<usize> = serde_json::from_value(answer["greedy"].clone()).unwrap();
        let py_head: Vec<f32> = serde_json::from_value(answer["head"].clone()).unwrap();
        assert_same_greedy(case, &py_greedy, &greedy);
        assert_close(case.name, &py_head, &head);
    }
    // The shipped policy's recorded decisions are not all one action.
    assert_eq!(
        out[cases.len()].as_str().unwrap(),
        format!(
            "{}: pass the checkpoint's metadata .json, not its .safetensors",
            dir.path().join("weights.safetensors").display()
        )
    );
    let (shipped, _) = lepton_decisions(&cases[0]);
    let distinct: std::collections::BTreeSet<usize> = shipped.iter().copied().collect();
    assert!(
        distinct.len() >= 3,
        "the shipped policy chose only {distinct:?}"
    );
}

#[test]
fn exported_torchscript_decides_like_lepton_on_recorded_decisions() {
    let dir = tempfile::tempdir().unwrap();
    for (i, case) in cases().iter().enumerate() {
        let out = dir.path().join(format!("policy{i}.pt"));
        let run = bin()
            .args(["export", "--checkpoint"])
            .arg(&case.checkpoint)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}: {}",
            case.name,
            String::from_utf8_lossy(&run.stderr)
        );
        let module = CModule::load(&out).unwrap();
        let (greedy, head) = lepton_decisions(case);
        let got = module_greedy(
            &module,
            &case.obs,
            &case.mask,
            case.obs_dim,
            case.num_actions,
        )
        .unwrap();
        let got: Vec<usize> = got.into_iter().map(|a| a as usize).collect();
        assert_same_greedy(case, &got, &greedy);
        let obs = Tensor::from_slice(&case.obs).view([case.rows() as i64, case.obs_dim as i64]);
        let IValue::Tensor(module_head) = module.method_is("head", &[IValue::Tensor(obs)]).unwrap()
        else {
            panic!("{}: head returned no tensor", case.name);
        };
        let module_head = Vec::<f32>::try_from(module_head.reshape([-1])).unwrap();
        assert_close(case.name, &module_head, &head);
        // No temporary file is left beside the output.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

/// `lepton-train export` with `args`: its exit code and stderr.
fn export_with(args: &[&str]) -> (i32, String) {
    let out = bin().arg("export").args(args).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_export_input_is_exit_2_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("policy.pt");
    let out = out.to_str().unwrap();
    let shipped = "checkpoints/deeprm_hold_ppo/seed1/best.json";
    let weights = "checkpoints/deeprm_hold_ppo/seed1/best_0000614400.safetensors";
    let missing_dir = dir.path().join("no/such/dir/policy.pt");
    let cases: [(&[&str], &str); 4] = [
        (
            &["--checkpoint", "checkpoints/none/best.json", "--out", out],
            "checkpoint checkpoints/none/best.json: no such file or directory",
        ),
        (
            &["--checkpoint", weights, "--out", out],
            "this is a weights file; pass the .json metadata file beside it (checkpoints/deeprm_hold_ppo/seed1/best.json)",
        ),
        (
            &[
                "--checkpoint",
                shipped,
                "--out",
                missing_dir.to_str().unwrap(),
            ],
            "does not exist",
        ),
        (
            &[
                "--checkpoint",
                shipped,
                "--out",
                dir.path().to_str().unwrap(),
            ],
            "is a directory; name the file to write",
        ),
    ];
    for (args, message) in cases {
        let (code, stderr) = export_with(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    }
    // A checkpoint whose weights changed after it was written.
    let copy = dir.path().join("corrupt");
    std::fs::create_dir(&copy).unwrap();
    for file in [
        "best.json",
        "best_0000614400.safetensors",
        "best_0000614400.optim.safetensors",
    ] {
        let src = repo_root()
            .join("checkpoints/deeprm_hold_ppo/seed1")
            .join(file);
        std::fs::copy(src, copy.join(file)).unwrap();
    }
    let mut weights = std::fs::read(copy.join("best_0000614400.safetensors")).unwrap();
    *weights.last_mut().unwrap() ^= 1;
    std::fs::write(copy.join("best_0000614400.safetensors"), weights).unwrap();
    let (code, stderr) = export_with(&["--checkpoint", copy.to_str().unwrap(), "--out", out]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("best_0000614400.safetensors does not match the hash"),
        "{stderr}"
    );
    // Nothing was written.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["corrupt"]);
}

#[test]
fn a_python_without_torch_is_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("policy.pt");
    let (code, stderr) = export_with(&[
        "--checkpoint",
        "checkpoints/deeprm_hold_ppo/seed1/best.json",
        "--out",
        out.to_str().unwrap(),
        "--python",
        "/nonexistent/python",
    ]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("cannot run Python /nonexistent/python"),
        "{stderr}"
    );
    assert!(!out.exists());
}

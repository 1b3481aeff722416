//! lepton gates itself the way users gate their changes: every trained policy shipped in
//! `checkpoints/<name>/` has a `gate.toml` naming a short paired suite, a baseline heuristic,
//! a metric and the margin the policy held when it was recorded, or the rule that it must stay
//! better than the baseline. A change to the simulator, the networks, decoding or checkpoint
//! loading that makes a shipped policy worse than that (the whole paired 95% interval beyond
//! the margin; for `rule = "better"`, an interval that reaches 0) fails `make test` here.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

/// `checkpoints/<name>/gate.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Gate {
    /// The suite, relative to the checkpoint's folder.
    suite: String,
    /// The heuristic the policy is compared with, episode by episode.
    baseline: String,
    metric: String,
    /// `not_worse` (default): fail when the policy is worse than the baseline by more than
    /// `margin`, with 95% confidence. `better`: fail unless it is better with 95% confidence.
    #[serde(default)]
    rule: Rule,
    #[serde(default)]
    margin: f64,
    /// A glob of the folder's training runs (`seed*`), scored as one checkpoint group;
    /// absent: the folder is one checkpoint.
    runs: Option<String>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Rule {
    #[default]
    NotWorse,
    Better,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn every_shipped_checkpoint_holds_its_recorded_margin() {
    let root = workspace().join("checkpoints");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("gate.toml").is_file())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no checkpoints/*/gate.toml");
    for dir in dirs {
        let gate_file = dir.join("gate.toml");
        let gate: Gate = toml::from_str(&std::fs::read_to_string(&gate_file).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", gate_file.display()));
        let out_dir = tempfile::tempdir().unwrap();
        let checkpoint = match &gate.runs {
            None => dir.display().to_string(),
            Some(glob) => format!("policy={}", dir.join(glob).display()),
        };
        let rule = match gate.rule {
            Rule::NotWorse => vec![
                "--fail-if-worse-than".to_string(),
                gate.baseline.clone(),
                "--margin".to_string(),
                gate.margin.to_string(),
            ],
            Rule::Better => vec!["--require-better".to_string(), gate.baseline.clone()],
        };
        let out = Command::new(env!("CARGO_BIN_EXE_lepton-eval"))
            .current_dir(workspace())
            .arg("--suite")
            .arg(dir.join(&gate.suite))
            .args(["--checkpoint", &checkpoint])
            .args(["--schedulers", &gate.baseline, "--metric", &gate.metric])
            .args(&rule)
            .arg("--out")
            .arg(out_dir.path())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{} regressed past its recorded gate ({:?}, margin {:.0}% vs {} on {}):\n{}\n{}",
            dir.display(),
            gate.rule,
            100.0 * gate.margin,
            gate.baseline,
            gate.metric,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

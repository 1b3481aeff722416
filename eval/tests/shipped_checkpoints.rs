//! lepton gates itself the way users gate their changes: every trained policy shipped in
//! `checkpoints/<name>/` has a `gate.toml` naming a short paired suite, a baseline heuristic,
//! a metric and the margin the policy held when it was recorded. A change to the simulator,
//! the networks, decoding or checkpoint loading that makes a shipped policy worse than that
//! (the whole paired 95% interval beyond the margin) fails `make test` here.

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
    /// Fail when the policy is worse than the baseline by more than this fraction, with 95%
    /// confidence.
    margin: f64,
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
        let out = Command::new(env!("CARGO_BIN_EXE_lepton-eval"))
            .current_dir(workspace())
            .arg("--suite")
            .arg(dir.join(&gate.suite))
            .arg("--checkpoint")
            .arg(&dir)
            .args(["--schedulers", &gate.baseline, "--metric", &gate.metric])
            .args(["--fail-if-worse-than", &gate.baseline])
            .args(["--margin", &gate.margin.to_string()])
            .arg("--out")
            .arg(out_dir.path())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{} regressed past its recorded margin ({:.0}% vs {} on {}):\n{}\n{}",
            dir.display(),
            100.0 * gate.margin,
            gate.baseline,
            gate.metric,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

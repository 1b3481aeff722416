//! The short fuzzing campaign `make test` runs: a few thousand mutants of every shipped file
//! kind through its loader, and not one panic. (`make fuzz` runs the long one.)

use std::path::Path;

#[test]
fn a_short_campaign_finds_no_panic() {
    tch::set_num_threads(1);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let targets = lepton_fuzz::targets(&root, &root.join("../shared"));
    let findings = lepton_fuzz::campaign(&targets, 1, 0, 4_000, |_| {});
    let report: Vec<String> = findings
        .iter()
        .take(5)
        .map(|f| {
            format!(
                "input {} ({}): {}\n{}",
                f.index, f.target, f.message, f.input
            )
        })
        .collect();
    assert!(
        findings.is_empty(),
        "{} panics:\n{}",
        findings.len(),
        report.join("\n---\n")
    );
}

/// Mutants are a pure function of (seed, index): a finding can be replayed alone.
#[test]
fn inputs_replay_by_index() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let targets = lepton_fuzz::targets(&root, &root.join("../shared"));
    let a = lepton_fuzz::input(&targets, 7, 123);
    let b = lepton_fuzz::input(&targets, 7, 123);
    assert_eq!(a, b);
    assert_ne!(a, lepton_fuzz::input(&targets, 7, 124));
}

/// Each input is bounded in memory: one that grows the Rust heap past `--memory-mib` ends the
/// campaign with exit 4, naming the input to replay (here every input does: the limit is 0).
#[test]
fn an_input_past_the_memory_limit_is_named() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lepton-fuzz"))
        .args([
            "--inputs",
            "5",
            "--seed",
            "3",
            "--start",
            "7",
            "--memory-mib",
            "0",
        ])
        .current_dir(&root)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.starts_with("memory: input 7 grew the heap past the limit")
            && stderr.contains("(replay: --seed 3 --start 7 --inputs 1)"),
        "{stderr}"
    );
    // With the default limit the same inputs pass.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lepton-fuzz"))
        .args(["--inputs", "5", "--seed", "3", "--start", "7"])
        .current_dir(&root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("5 inputs (seed 3, from 7): 0 panics"));
}

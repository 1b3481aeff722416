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

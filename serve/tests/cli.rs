//! `lepton-serve`'s answers to bad input: one line naming the problem, exit code 2 for input
//! and 3 for Slurm, never a panic.

use std::process::Command;

fn serve(args: &[&str]) -> (i32, String) {
    // An empty slurm.conf: Slurm's tools refuse it at once (a missing file makes them retry
    // for a minute).
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("slurm.conf");
    std::fs::write(&conf, "").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lepton-serve"))
        .args(args)
        .env("SLURM_CONF", &conf)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.code().unwrap_or(-1), stderr)
}

fn swf() -> String {
    format!(
        "{}/../../shared/data/swf/lublin_256.swf",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn unknown_policy_is_exit_2_with_the_list() {
    let (code, err) = serve(&["slurm", "--policy", "tetris", "--once"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("unknown policy `tetris`") && err.contains("fcfs, sjf, wfp3, unicep, f1"),
        "{err}"
    );
}

#[test]
fn unreachable_slurm_is_exit_3() {
    let (code, err) = serve(&["slurm", "--policy", "sjf", "--once", "--dry-run"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("scontrol show config"), "{err}");
}

#[test]
fn replay_input_errors_name_the_flag_or_file() {
    let base = [
        "replay",
        "--jobs",
        "10",
        "--out",
        "/tmp/lepton-serve-cli-test",
    ];
    let (code, err) = serve(
        &[
            &base[..],
            &["--trace", "/nonexistent.swf", "--time-scale", "0.01"],
        ]
        .concat(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/nonexistent.swf"), "{err}");
    let trace = swf();
    let (code, err) = serve(&[&base[..], &["--trace", &trace, "--time-scale=-1"]].concat());
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--time-scale must be a positive number"),
        "{err}"
    );
    let (code, err) = serve(
        &[
            &base[..],
            &["--trace", &trace, "--time-scale", "0.01", "--start", "9995"],
        ]
        .concat(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("does not fit in the trace's"), "{err}");
    let (code, err) = serve(
        &[
            &base[..],
            &[
                "--trace",
                &trace,
                "--time-scale",
                "0.01",
                "--local-cluster",
                "4",
            ],
        ]
        .concat(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("expected NODESxCPUS"), "{err}");
    let (code, err) = serve(
        &[
            &base[..],
            &[
                "--trace",
                &trace,
                "--time-scale",
                "0.01",
                "--local-cluster",
                "1x8",
            ],
        ]
        .concat(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("processors, the cluster has 8"), "{err}");
}

#[test]
fn compare_refuses_a_file_that_is_not_a_replay() {
    let (code, err) = serve(&["compare", "--run", &format!("x={}", swf())]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a lepton-serve replay jobs.csv"), "{err}");
    let (code, err) = serve(&["k8s-extender", "--policy", "random"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown extender policy `random`"), "{err}");
}

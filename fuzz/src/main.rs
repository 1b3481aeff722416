//! `lepton-fuzz [--inputs N] [--seed S] [--start K] [--timeout-s T]`: runs a mutation-fuzzing
//! campaign over lepton's loaders from the repository root (seeds are read from the shipped
//! files and `../shared/data`). Exit codes: 0 no finding, 1 panics found (each printed with
//! its index, target and input), 2 bad arguments, 3 an input ran past the time limit.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn arg(args: &[String], name: &str, default: u64) -> Result<u64, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a non-negative integer")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = (|| {
        Ok::<_, String>((
            arg(&args, "--inputs", 100_000)?,
            arg(&args, "--seed", 0)?,
            arg(&args, "--start", 0)?,
            arg(&args, "--timeout-s", 30)?,
        ))
    })();
    let (inputs, seed, start, timeout_s) = match parsed {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    tch::set_num_threads(1);
    let targets = lepton_fuzz::targets(Path::new("."), Path::new("../shared"));
    if args.iter().any(|a| a == "--print") {
        let (t, text) = lepton_fuzz::input(&targets, seed, start);
        println!("target {}\n{text}", targets[t].name);
        return ExitCode::SUCCESS;
    }
    // A watchdog for hangs: the campaign reports each input it starts; an input that runs
    // past the limit ends the process (exit 3) naming it, so it can be replayed.
    let current = Arc::new(AtomicU64::new(start));
    let beat = Arc::new(AtomicU64::new(0));
    let clock = Instant::now();
    {
        let (current, beat) = (current.clone(), beat.clone());
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(1));
                let last = beat.load(Ordering::SeqCst);
                if clock.elapsed().as_secs().saturating_sub(last) > timeout_s {
                    eprintln!(
                        "hang: input {} ran more than {timeout_s} s (replay: --seed {seed} --start {} --inputs 1)",
                        current.load(Ordering::SeqCst),
                        current.load(Ordering::SeqCst)
                    );
                    std::process::exit(3);
                }
            }
        });
    }
    let mut findings = Vec::new();
    // Batches of 1,000 between heartbeats: a beat per input would cost more than an input.
    let mut index = start;
    while index < start + inputs {
        let n = 1_000.min(start + inputs - index);
        for i in index..index + n {
            current.store(i, Ordering::SeqCst);
            beat.store(clock.elapsed().as_secs(), Ordering::SeqCst);
            findings.extend(lepton_fuzz::campaign(&targets, seed, i, 1, |_| {}));
        }
        index += n;
        if index.is_multiple_of(50_000) || index == start + inputs {
            eprintln!(
                "{index} inputs, {} findings, {:.0} s",
                findings.len(),
                clock.elapsed().as_secs_f64()
            );
        }
    }
    for f in &findings {
        println!(
            "--- input {} ({}): {}\n{}",
            f.index, f.target, f.message, f.input
        );
    }
    println!(
        "{inputs} inputs (seed {seed}, from {start}): {} panics, 0 hangs, {:.0} s",
        findings.len(),
        clock.elapsed().as_secs_f64()
    );
    if findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

//! Paired comparison of runs of the same job list: real-Slurm replays and lepton's simulator.
//!
//! Every run of a comparison has the same jobs, so each job is a pair: the report gives each
//! run's mean wait, mean bounded slowdown and makespan (trace seconds), and for every run
//! against the reference (the first) the paired comparison of per-job bounded slowdown with
//! lepton-eval's own statistics (`lepton_eval::stats::paired`: the relative difference of the
//! means with a paired percentile-bootstrap interval over jobs, wins, the signed-rank test).
//! The pairs are jobs of one window, not independent episodes: the interval says how much the
//! result depends on which jobs the window holds, not how another window would go.

use crate::replay::bounded_slowdown;
use lepton_eval::stats::{self, BootstrapConfig};
use std::fmt::Write as _;

/// One run: per-job (trace id, arrival, runtime, start, end) in trace seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    pub name: String,
    pub jobs: Vec<RunJob>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunJob {
    pub trace_id: u64,
    pub arrival_s: f64,
    pub runtime_s: f64,
    pub start_s: f64,
    pub end_s: f64,
}

/// A run's summary.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub mean_wait_s: f64,
    pub mean_bounded_slowdown: f64,
    /// First arrival to last end.
    pub makespan_s: f64,
}

impl Run {
    /// Per-job bounded slowdown, in trace-id order.
    pub fn bounded_slowdowns(&self) -> Vec<f64> {
        let mut jobs = self.jobs.clone();
        jobs.sort_by_key(|j| j.trace_id);
        jobs.iter()
            .map(|j| bounded_slowdown(j.start_s - j.arrival_s, j.runtime_s))
            .collect()
    }

    pub fn summary(&self) -> Summary {
        let waits: Vec<f64> = self.jobs.iter().map(|j| j.start_s - j.arrival_s).collect();
        let first = self
            .jobs
            .iter()
            .map(|j| j.arrival_s)
            .fold(f64::INFINITY, f64::min);
        let last = self
            .jobs
            .iter()
            .map(|j| j.end_s)
            .fold(f64::NEG_INFINITY, f64::max);
        Summary {
            mean_wait_s: stats::mean(&waits),
            mean_bounded_slowdown: stats::mean(&self.bounded_slowdowns()),
            makespan_s: last - first,
        }
    }
}

/// Runs that are not over the same jobs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("runs `{0}` and `{1}` are not over the same jobs (trace ids differ)")]
pub struct NotPaired(pub String, pub String);

/// The markdown report: a table of every run, then every run paired against `runs[0]`.
pub fn report(runs: &[Run], bootstrap: &BootstrapConfig) -> Result<String, NotPaired> {
    let ids = |r: &Run| {
        let mut v: Vec<u64> = r.jobs.iter().map(|j| j.trace_id).collect();
        v.sort_unstable();
        v
    };
    let mut out = String::new();
    let Some(reference) = runs.first() else {
        return Ok(out);
    };
    for r in &runs[1..] {
        if ids(r) != ids(reference) {
            return Err(NotPaired(r.name.clone(), reference.name.clone()));
        }
    }
    let _ = writeln!(
        out,
        "| run | jobs | mean wait (s) | mean bounded slowdown | makespan (s) |\n|---|---:|---:|---:|---:|"
    );
    for r in runs {
        let s = r.summary();
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.2} | {:.0} |",
            r.name,
            r.jobs.len(),
            s.mean_wait_s,
            s.mean_bounded_slowdown,
            s.makespan_s
        );
    }
    let _ = writeln!(
        out,
        "\nPaired with `{}` on per-job bounded slowdown (lower is better; 95% paired bootstrap \
         interval over jobs, {} resamples, seed {}):\n\n\
         | run | relative difference | 95% CI | better / worse / equal jobs | signed-rank p |\n\
         |---|---:|---:|---:|---:|",
        reference.name, bootstrap.resamples, bootstrap.seed
    );
    let reference_values = vec![reference.bounded_slowdowns()];
    for r in &runs[1..] {
        let p = stats::paired(
            &[r.bounded_slowdowns()],
            &reference_values,
            false,
            bootstrap,
            stats::stream_id(&[&reference.name, &r.name]),
        );
        let _ = writeln!(
            out,
            "| {} | {:+.1}% | {:+.1}% to {:+.1}% | {} / {} / {} | {:.3} |",
            r.name,
            100.0 * p.relative_diff,
            100.0 * p.ci_low,
            100.0 * p.ci_high,
            p.wins,
            p.losses,
            p.ties,
            p.signed_rank.p_value
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, starts: &[f64]) -> Run {
        Run {
            name: name.into(),
            jobs: starts
                .iter()
                .enumerate()
                .map(|(i, &s)| RunJob {
                    trace_id: i as u64,
                    arrival_s: 0.0,
                    runtime_s: 100.0,
                    start_s: s,
                    end_s: s + 100.0,
                })
                .collect(),
        }
    }

    #[test]
    fn summaries_and_pairing() {
        // Bounded slowdowns: reference 1, 2, 3 (waits 0, 100, 200); candidate 1, 1, 2.
        let reference = run("slurm", &[0.0, 100.0, 200.0]);
        let candidate = run("lepton", &[0.0, 0.0, 100.0]);
        let s = reference.summary();
        assert_eq!(
            (s.mean_wait_s, s.mean_bounded_slowdown, s.makespan_s),
            (100.0, 2.0, 300.0)
        );
        let text = report(&[reference, candidate], &BootstrapConfig::default()).unwrap();
        // (4/3) / 2 − 1 = −33.3%; better on 2 jobs, equal on 1.
        assert!(text.contains("| lepton | -33.3% |"), "{text}");
        assert!(text.contains("| 2 / 0 / 1 |"), "{text}");
    }

    #[test]
    fn different_jobs_are_not_paired() {
        let a = run("a", &[0.0, 1.0]);
        let b = run("b", &[0.0]);
        assert_eq!(
            report(&[a, b], &BootstrapConfig::default()).unwrap_err(),
            NotPaired("b".into(), "a".into())
        );
    }
}

//! Trace replay: production workloads as [`TaskSource`]s.
//!
//! Three loaders turn a trace file into tasks (and, where the trace describes one, a
//! cluster): [`swf`] (Standard Workload Format, HPC batch jobs), [`alibaba`] (Alibaba GPU
//! cluster trace v2023) and [`tiresias`] (the Tiresias deep-learning job list). Each documents
//! how it maps fields and what it does with records it cannot replay.
//!
//! A [`Trace`] replays the loaded tasks either whole or as a contiguous window of
//! `window_jobs` tasks starting at an offset drawn from the episode's RNG (RLScheduler's
//! protocol: windows of 1024 jobs), with arrival times shifted so that the window's first
//! task arrives at 0 and inter-arrival times divided by `load_factor` (2 = twice as dense).
//!
//! Malformed lines are errors naming the file and the line; with `lenient` they are skipped
//! and counted in [`LoadReport::num_malformed`] instead. Loading the largest shipped file
//! takes a few milliseconds (see BENCHMARKS.md).

pub mod alibaba;
pub mod swf;
pub mod tiresias;

use crate::cluster::{GpuConfig, ServerType};
use crate::workload::{TaskSource, TaskSpec};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

/// Why a trace could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {reason}", path.display())]
    Line {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
}

/// What a loader read, besides the tasks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Data records read (comments and headers excluded).
    pub num_records: usize,
    /// Malformed records skipped because the load was lenient.
    pub num_malformed: usize,
    /// Well-formed records the loader's documented policy does not replay (e.g. SWF jobs
    /// with run time <= 0, Alibaba pods that were never scheduled).
    pub num_skipped: usize,
}

/// A cluster described by a trace.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceCluster {
    pub server_types: Vec<ServerType>,
    pub gpu: Option<GpuConfig>,
}

/// A loaded trace: its resource list, the cluster it describes (if any), and its tasks
/// sorted by arrival.
#[derive(Clone, Debug)]
pub struct LoadedTrace {
    pub resources: Vec<String>,
    pub cluster: Option<TraceCluster>,
    pub tasks: Vec<TaskSpec>,
    pub report: LoadReport,
}

/// Replays a loaded trace, whole or as a seeded window (see the module docs).
#[derive(Clone, Debug)]
pub struct Trace {
    tasks: Vec<TaskSpec>,
    window_jobs: Option<usize>,
    load_factor: f64,
}

impl Trace {
    /// `tasks` must be non-empty; they are sorted by arrival (stable). `window_jobs` larger
    /// than the trace replays the whole trace. `load_factor` must be > 0.
    pub fn new(mut tasks: Vec<TaskSpec>, window_jobs: Option<usize>, load_factor: f64) -> Self {
        tasks.sort_by(|a, b| a.arrival_s.total_cmp(&b.arrival_s));
        Self {
            tasks,
            window_jobs,
            load_factor,
        }
    }

    pub fn tasks(&self) -> &[TaskSpec] {
        &self.tasks
    }

    /// Tasks per episode.
    pub fn episode_len(&self) -> usize {
        self.window_jobs
            .map_or(self.tasks.len(), |w| w.min(self.tasks.len()))
    }
}

impl TaskSource for Trace {
    fn fill(&self, rng: &mut ChaCha8Rng, out: &mut Vec<TaskSpec>) {
        out.clear();
        let len = self.episode_len();
        let offset = if len < self.tasks.len() {
            rng.random_range(0..=self.tasks.len() - len)
        } else {
            0
        };
        let window = &self.tasks[offset..offset + len];
        let Some(first) = window.first() else { return };
        let t0 = first.arrival_s;
        out.extend(window.iter().map(|t| {
            let arrival_s = (t.arrival_s - t0) / self.load_factor;
            TaskSpec {
                arrival_s,
                deadline_s: t.deadline_s.map(|d| d - t.arrival_s + arrival_s),
                ..*t
            }
        }));
    }
}

/// Data lines of a text file with their 1-based line numbers.
pub(crate) fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
}

pub(crate) fn read(path: &Path) -> Result<String, TraceError> {
    std::fs::read_to_string(path).map_err(|source| TraceError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Collects per-line errors: strict loads fail on the first, lenient ones count them.
pub(crate) struct LineErrors<'a> {
    pub path: &'a Path,
    pub lenient: bool,
    pub report: LoadReport,
}

impl LineErrors<'_> {
    /// `Ok(())` when the bad line is skipped (lenient), the error otherwise.
    pub fn bad(&mut self, line: usize, reason: String) -> Result<(), TraceError> {
        if self.lenient {
            self.report.num_malformed += 1;
            Ok(())
        } else {
            Err(TraceError::Line {
                path: self.path.to_owned(),
                line,
                reason,
            })
        }
    }

    pub fn invalid(&self, reason: impl Into<String>) -> TraceError {
        TraceError::Invalid {
            path: self.path.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Splits a CSV header into its column names and finds each of `wanted`.
pub(crate) fn columns<const N: usize>(
    header: &str,
    wanted: [&str; N],
    errors: &LineErrors<'_>,
) -> Result<[usize; N], TraceError> {
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let mut out = [0; N];
    for (o, w) in out.iter_mut().zip(wanted) {
        *o = names
            .iter()
            .position(|&n| n == w)
            .ok_or_else(|| errors.invalid(format!("the header has no column `{w}`")))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn tasks() -> Vec<TaskSpec> {
        (0..10)
            .map(|i| TaskSpec::new(i, 100.0 + 10.0 * i as f64, 5.0, &[1]))
            .collect()
    }

    #[test]
    fn whole_trace_is_shifted_to_start_at_zero_and_rescaled() {
        let trace = Trace::new(tasks(), None, 2.0);
        let mut out = Vec::new();
        trace.fill(&mut ChaCha8Rng::seed_from_u64(0), &mut out);
        assert_eq!(out.len(), 10);
        assert_eq!(out[0].arrival_s, 0.0);
        assert_eq!(out[1].arrival_s, 5.0); // 10 s apart, load factor 2
        assert_eq!(out[9].arrival_s, 45.0);
        assert_eq!(out[9].duration_s, 5.0);
    }

    #[test]
    fn windows_are_contiguous_seeded_and_cover_every_offset() {
        let trace = Trace::new(tasks(), Some(4), 1.0);
        let mut seen = [false; 7];
        let mut out = Vec::new();
        for seed in 0..200 {
            trace.fill(&mut ChaCha8Rng::seed_from_u64(seed), &mut out);
            assert_eq!(out.len(), 4);
            let first = out[0].id as usize;
            assert!(
                out.iter()
                    .enumerate()
                    .all(|(i, t)| t.id as usize == first + i)
            );
            assert_eq!(out[0].arrival_s, 0.0);
            assert_eq!(out[3].arrival_s, 30.0);
            seen[first] = true;
        }
        assert!(seen.iter().all(|&s| s), "offsets 0..=6 all drawn: {seen:?}");
        let mut again = Vec::new();
        trace.fill(&mut ChaCha8Rng::seed_from_u64(7), &mut out);
        trace.fill(&mut ChaCha8Rng::seed_from_u64(7), &mut again);
        assert_eq!(out, again);
    }
}

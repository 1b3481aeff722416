//! Trace replay: production workloads as [`TaskSource`](crate::workload::TaskSource)s.
//!
//! Three loaders turn a trace file into tasks (and, where the trace describes one, a
//! cluster): [`swf`] (Standard Workload Format, HPC batch jobs), [`alibaba`] (Alibaba GPU
//! cluster trace v2023) and [`tiresias`] (the Tiresias deep-learning job list). Each documents
//! how it maps fields and what it does with records it cannot replay.
//!
//! A [`Trace`] (in `replay.rs`) replays the loaded tasks, or those of a CSV or list workload,
//! either whole or as a contiguous window of `window_jobs` tasks starting at an offset drawn
//! from the episode's RNG (RLScheduler's protocol: windows of 1024 jobs), at listed offsets
//! (the episode's seed picks one; [`rlscheduler`] draws RLScheduler's own test windows), or of
//! the tasks arriving within `window_s` seconds from a seeded start; random windows can avoid
//! excluded (test) windows. Arrival times are shifted so that the window's first task arrives
//! at 0, or kept at the trace's own times; inter-arrival times are divided by `load_factor`
//! (2 = twice as dense); optionally from one part of a train/test split and with arrival
//! jitter and estimate noise or modelled user estimates ([`estimates`]).
//!
//! Malformed lines are errors naming the file and the line; with `lenient` they are skipped
//! and counted in [`LoadReport::num_malformed`] instead. Loading the largest shipped file
//! takes a few milliseconds (see BENCHMARKS.md).

pub mod alibaba;
pub mod estimates;
mod replay;
pub mod rlscheduler;
pub mod swf;
pub mod tiresias;

pub use estimates::TsafrirEstimates;
pub use replay::{
    Exclusion, Perturb, ReplayError, ReplayOptions, Split, SplitBy, TimeWindows, Times, Trace,
    WindowList,
};

use crate::cluster::{GpuConfig, ServerType};
use crate::workload::TaskSpec;
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

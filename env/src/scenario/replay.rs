//! The replay keys every replayed workload shares (traces, lists and CSVs): `window_jobs`,
//! `window_s`, `load_factor`, `split`, `part` and `perturb`, checked into [`ReplayOptions`].

use super::file::{PartFile, SplitByFile, WorkloadFile};
use super::validate::{Check, ScenarioError};
use crate::trace::{Perturb, ReplayOptions, Split, SplitBy, Trace};
use crate::workload::{Part, TaskSpec};

/// The replay keys of a replayed workload (`window_jobs`, `window_s`, `load_factor`, `split`,
/// `part`, `perturb`), checked; defaults where absent.
pub(super) fn replay_options(
    w: &WorkloadFile,
    c: &Check<'_>,
) -> Result<ReplayOptions, ScenarioError> {
    let window_jobs = match w.window_jobs {
        Some(0) => return Err(c.err("workload.window_jobs", "must be >= 1")),
        other => other,
    };
    let window_s = match w.window_s {
        Some(_) if window_jobs.is_some() => {
            return Err(c.err(
                "workload.window_s",
                "cannot be set together with workload.window_jobs (a window is either by time \
                 or by task count)",
            ));
        }
        Some(t) => Some(c.time_s("workload.window_s", t, false)?),
        None => None,
    };
    let load_factor = c.positive("workload.load_factor", w.load_factor.unwrap_or(1.0))?;
    let part = match w.part {
        Some(PartFile::Train) | None => Part::Train,
        Some(PartFile::Test) => Part::Test,
    };
    let split = match &w.split {
        Some(s) => {
            let f = s.test_fraction;
            if !(f > 0.0 && f < 1.0) {
                return Err(c.err(
                    "workload.split.test_fraction",
                    format!("must be in (0, 1), got {f}"),
                ));
            }
            Some(Split {
                by: match s.by {
                    SplitByFile::Time => SplitBy::Time,
                    SplitByFile::Window => SplitBy::Window,
                },
                test_fraction: f,
                part,
            })
        }
        None if w.part.is_some() => {
            return Err(c.err(
                "workload.part",
                "needs workload.split (which tasks are held out for test)",
            ));
        }
        None => None,
    };
    let perturb = match &w.perturb {
        Some(p) => {
            let estimate_noise =
                c.non_negative("workload.perturb.estimate_noise", p.estimate_noise)?;
            if estimate_noise >= 1.0 {
                return Err(c.err(
                    "workload.perturb.estimate_noise",
                    format!("must be < 1, got {estimate_noise}"),
                ));
            }
            Perturb {
                arrival_jitter_s: c.time_s(
                    "workload.perturb.arrival_jitter_s",
                    p.arrival_jitter_s,
                    true,
                )?,
                estimate_noise,
            }
        }
        None => Perturb::default(),
    };
    Ok(ReplayOptions {
        window_jobs,
        window_s,
        load_factor,
        split,
        perturb,
    })
}

/// Whether the workload sets any replay key (a list or CSV without one replays exactly).
pub(super) fn has_replay_keys(w: &WorkloadFile) -> bool {
    w.window_jobs.is_some()
        || w.window_s.is_some()
        || w.load_factor.is_some()
        || w.split.is_some()
        || w.part.is_some()
        || w.perturb.is_some()
}

/// `tasks` (non-empty) replayed with `options`; errors name the key at fault.
pub(super) fn replay(
    tasks: Vec<TaskSpec>,
    options: &ReplayOptions,
    c: &Check<'_>,
) -> Result<Trace, ScenarioError> {
    Trace::with_options(tasks, options).map_err(|e| c.err(e.key, e.reason))
}

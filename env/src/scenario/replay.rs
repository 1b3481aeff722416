//! The replay keys every replayed workload shares (traces, lists and CSVs): `window_jobs`,
//! `window_s`, `window_offsets`, `window_sampler`, `exclude_windows`, `times`,
//! `load_factor`, `split`, `part` and `perturb`, checked into [`ReplayOptions`].

use super::file::{
    EstimateModelFile, ExcludeFile, PartFile, SamplerFile, SamplerKindFile, SplitByFile, TimesFile,
    WorkloadFile,
};
use super::validate::{Check, ScenarioError};
use crate::trace::{
    Exclusion, Perturb, ReplayOptions, Split, SplitBy, Times, Trace, TsafrirEstimates, WindowList,
};
use crate::workload::{Part, TaskSpec};

/// RLScheduler windows a `window_sampler` draws when it does not say how many: seeds from
/// this on wrap around.
pub(super) const DEFAULT_SAMPLER_EPISODES: usize = 10_000;

/// The replay keys of a replayed workload, checked; defaults where absent.
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
            let estimates = match &p.estimates {
                Some(_) if estimate_noise > 0.0 => {
                    return Err(c.err(
                        "workload.perturb.estimates",
                        "cannot be set together with workload.perturb.estimate_noise (modelled \
                         estimates replace the trace's, noise scales them)",
                    ));
                }
                Some(e) => Some(match e.model {
                    EstimateModelFile::Tsafrir => TsafrirEstimates {
                        max_s: c.time_s("workload.perturb.estimates.max_s", e.max_s, false)?,
                        p_max: c.within("workload.perturb.estimates.p_max", e.p_max, 0.0..=1.0)?,
                    },
                }),
                None => None,
            };
            let load_noise = c.non_negative("workload.perturb.load_noise", p.load_noise)?;
            if load_noise >= 1.0 {
                return Err(c.err(
                    "workload.perturb.load_noise",
                    format!("must be < 1, got {load_noise}"),
                ));
            }
            Perturb {
                load_noise,
                estimates,
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
    let windows = match (&w.window_offsets, &w.window_sampler) {
        (Some(_), Some(_)) => {
            return Err(c.err(
                "workload.window_sampler",
                "cannot be set together with workload.window_offsets (both list the windows)",
            ));
        }
        (Some(offsets), None) => Some(WindowList::Offsets(offsets.clone())),
        (None, Some(sampler)) => Some(sampler_windows(sampler)),
        (None, None) => None,
    };
    let exclude = w
        .exclude_windows
        .as_ref()
        .map(|e| exclusion(e, window_jobs, c))
        .transpose()?;
    let times = match w.times {
        Some(TimesFile::Absolute) => Times::Absolute,
        Some(TimesFile::Shifted) | None => Times::Shifted,
    };
    Ok(ReplayOptions {
        window_jobs,
        window_s,
        load_factor,
        split,
        perturb,
        windows,
        exclude,
        times,
    })
}

fn sampler_windows(sampler: &SamplerFile) -> WindowList {
    match sampler.kind {
        SamplerKindFile::Rlscheduler => WindowList::RlScheduler {
            seed: sampler.seed,
            episodes: sampler.episodes.unwrap_or(DEFAULT_SAMPLER_EPISODES),
        },
    }
}

/// `exclude_windows`: either `offsets` or a sampler (`kind`, `seed`, `episodes`), with
/// windows of `jobs` tasks (default `window_jobs`).
fn exclusion(
    e: &ExcludeFile,
    window_jobs: Option<usize>,
    c: &Check<'_>,
) -> Result<Exclusion, ScenarioError> {
    const KEY: &str = "workload.exclude_windows";
    let windows = match (&e.offsets, e.kind) {
        (Some(offsets), None) => {
            if e.seed.is_some() || e.episodes.is_some() {
                return Err(c.err(
                    KEY,
                    "`seed` and `episodes` belong to a sampler (`kind`), not to `offsets`",
                ));
            }
            WindowList::Offsets(offsets.clone())
        }
        (None, Some(SamplerKindFile::Rlscheduler)) => {
            let (Some(seed), Some(episodes)) = (e.seed, e.episodes) else {
                return Err(c.err(
                    KEY,
                    "kind = \"rlscheduler\" needs `seed` and `episodes` (the test windows \
                     RLScheduler draws with that seed)",
                ));
            };
            WindowList::RlScheduler { seed, episodes }
        }
        _ => {
            return Err(c.err(
                KEY,
                "give exactly one of `offsets` and `kind` (with `seed` and `episodes`)",
            ));
        }
    };
    let jobs = match e.jobs.or(window_jobs) {
        Some(0) => return Err(c.err(&format!("{KEY}.jobs"), "must be >= 1")),
        Some(jobs) => jobs,
        None => {
            return Err(c.err(
                KEY,
                "needs workload.window_jobs (windows are excluded by task index)",
            ));
        }
    };
    Ok(Exclusion { windows, jobs })
}

/// Every replay key, by its name in errors, and whether the workload sets it: the one list
/// the resolvers check unused keys against.
pub(super) fn replay_keys(w: &WorkloadFile) -> [(&'static str, bool); 10] {
    [
        ("workload.window_jobs", w.window_jobs.is_some()),
        ("workload.window_s", w.window_s.is_some()),
        ("workload.load_factor", w.load_factor.is_some()),
        ("workload.split", w.split.is_some()),
        ("workload.part", w.part.is_some()),
        ("workload.perturb", w.perturb.is_some()),
        ("workload.window_offsets", w.window_offsets.is_some()),
        ("workload.window_sampler", w.window_sampler.is_some()),
        ("workload.exclude_windows", w.exclude_windows.is_some()),
        ("workload.times", w.times.is_some()),
    ]
}

/// Whether the workload sets any replay key (a list or CSV without one replays exactly).
pub(super) fn has_replay_keys(w: &WorkloadFile) -> bool {
    replay_keys(w).iter().any(|(_, set)| *set)
}

/// `tasks` (non-empty) replayed with `options`; errors name the key at fault.
pub(super) fn replay(
    tasks: Vec<TaskSpec>,
    options: &ReplayOptions,
    c: &Check<'_>,
) -> Result<Trace, ScenarioError> {
    Trace::with_options(tasks, options).map_err(|e| c.err(e.key, e.reason))
}

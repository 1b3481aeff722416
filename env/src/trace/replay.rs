//! Replaying a fixed task sequence (a trace, a CSV or an explicit list) episode by episode:
//! which tasks an episode gets (windows, a train/test split), how their times are rescaled
//! (load factor) and how they are perturbed for training variety.
//!
//! - **Window**: `window_jobs` consecutive tasks (in arrival order) at an offset drawn from
//!   the episode's RNG, RLScheduler-style; without it an episode replays the whole trace (or
//!   the whole part).
//! - **Listed windows** ([`WindowList`], with `window_jobs`): the episode reset with seed `s`
//!   replays the window at the `s mod n`-th of `n` offsets (task indices in the trace's
//!   arrival order), given explicitly or drawn as RLScheduler's comparison script draws its
//!   test windows; a reset without a seed picks one from the episode's RNG.
//! - **Excluded windows** ([`Exclusion`]): random windows (by task count) are drawn only among
//!   the starts whose window overlaps none of the excluded ones, so that training never sees a
//!   task of the test windows.
//! - **Window by time** (`window_s`, instead of `window_jobs`): the tasks arriving in
//!   `(s, s + window_s]` (trace seconds, before the load factor), with `s` drawn uniformly from
//!   the starts whose window holds at least one task of the part (see [`TimeWindows`]): every
//!   task of the part is in a window with the same probability and no window is empty. A
//!   window longer than the part's span (its first to its last arrival) is an error.
//! - **Times** ([`Times`]): shifted (the default) so that the window's first task arrives at
//!   0, or absolute: it arrives at its trace time `t0` and the episode's clock starts there
//!   ([`EpisodeStart::clock_s`]). Either way a task arriving at trace time `t` arrives
//!   `(t − t0) / load_factor` after the window's first.
//! - **Split**: the tasks are cut into a training and a test part, so that training and test
//!   episodes never share a task. `by = time`: the first `1 − test_fraction` of the trace's
//!   time span (from the first to the last arrival) is the training part, the rest the test
//!   part; windows are drawn inside a part. `by = window`: the trace is cut into consecutive
//!   blocks of `window_jobs` tasks (a tail shorter than a block is not replayed), and
//!   `round(test_fraction × blocks)` of them, spread evenly over the trace (block `k` is a
//!   test block when `⌊(k+1)·t/b⌋ > ⌊k·t/b⌋`, so the last block always is), form the test
//!   part; an episode replays one block of its part. Blocks are by task count only: time
//!   blocks could be empty, so `by = window` with `window_s` is an error.
//! - **Perturbation** (off by default, drawn after the window from the same RNG): load noise
//!   multiplies the episode's load factor by one draw of `U[1 − l, 1 + l]` (the same window
//!   replayed busier or quieter, so that a policy meets the loads of other parts of the
//!   trace); arrival jitter adds `U[−j, +j]` seconds of replayed time (after the load factor)
//!   to each arrival, clamped at 0, and re-sorts the window by arrival; a deadline moves with
//!   its arrival.
//!   Estimate noise multiplies each runtime estimate by `U[1 − e, 1 + e]`; modelled user
//!   estimates ([`TsafrirEstimates`]) replace it from one uniform draw per task; true
//!   durations are kept.

use super::estimates::TsafrirEstimates;
use super::rlscheduler::{MAX_EPISODES, rlscheduler_starts};
use crate::workload::{EpisodeStart, EpisodeVariety, Part, TaskSource, TaskSpec};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::ops::Range;

/// How a replay cuts its trace into a training and a test part.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Split {
    pub by: SplitBy,
    /// In (0, 1).
    pub test_fraction: f64,
    /// The part this replay draws its episodes from.
    pub part: Part,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitBy {
    Time,
    Window,
}

/// Per-episode perturbation of a replayed window; all zero (the default) replays it exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Perturb {
    /// The episode's load factor is multiplied by `U[1 − l, 1 + l]` (in [0, 1)).
    pub load_noise: f64,
    /// Each arrival moves by `U[−j, +j]` seconds (>= 0).
    pub arrival_jitter_s: f64,
    /// Each estimate is multiplied by `U[1 − e, 1 + e]` (in [0, 1)).
    pub estimate_noise: f64,
    /// Each estimate is replaced by a modelled user estimate (not with `estimate_noise`).
    pub estimates: Option<TsafrirEstimates>,
}

/// Where a replayed episode's clock starts; see the module docs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Times {
    /// The window's first task arrives at 0.
    #[default]
    Shifted,
    /// The window's first task arrives at its trace time, where the episode's clock starts.
    Absolute,
}

/// Windows given by their first task's index in the trace (arrival order).
#[derive(Clone, Debug, PartialEq)]
pub enum WindowList {
    /// These offsets (`workload.window_offsets`).
    Offsets(Vec<usize>),
    /// The first `episodes` windows RLScheduler's comparison script draws with `--seed seed`
    /// (see [`super::rlscheduler`]).
    RlScheduler { seed: u64, episodes: usize },
}

impl WindowList {
    /// The starts of windows of `len` tasks in a trace of `n`, each checked to fit in it.
    fn starts(&self, len: usize, n: usize) -> Result<Vec<usize>, String> {
        let starts = match self {
            Self::Offsets(offsets) if offsets.is_empty() => {
                return Err("needs at least one offset".into());
            }
            Self::Offsets(offsets) => offsets.clone(),
            Self::RlScheduler { episodes, .. } if !(1..=MAX_EPISODES).contains(episodes) => {
                return Err(format!(
                    "episodes must be in 1..={MAX_EPISODES} (each is drawn when the scenario \
                     loads), got {episodes}"
                ));
            }
            Self::RlScheduler { seed, episodes } => rlscheduler_starts(*seed, len, n, *episodes)?,
        };
        match starts
            .iter()
            .find(|&&s| s.checked_add(len).is_none_or(|end| end > n))
        {
            Some(s) => Err(format!(
                "the window at offset {s} ({len} tasks) runs past the end of the trace's {n} \
                 tasks (the last offset that fits is {})",
                n.saturating_sub(len)
            )),
            None => Ok(starts),
        }
    }
}

/// Windows of `jobs` tasks that no episode's window may overlap (`workload.exclude_windows`).
#[derive(Clone, Debug, PartialEq)]
pub struct Exclusion {
    pub windows: WindowList,
    /// Tasks per excluded window (>= 1).
    pub jobs: usize,
}

/// What a [`Trace`] replays; see the module docs.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayOptions {
    pub window_jobs: Option<usize>,
    /// A window by time (> 0, finite); not together with `window_jobs`.
    pub window_s: Option<f64>,
    /// > 0: inter-arrival times are divided by it.
    pub load_factor: f64,
    pub split: Option<Split>,
    pub perturb: Perturb,
    /// Listed windows (with `window_jobs`, not with a split by window or an exclusion).
    pub windows: Option<WindowList>,
    /// Windows random windows avoid (with `window_jobs`).
    pub exclude: Option<Exclusion>,
    pub times: Times,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        Self {
            window_jobs: None,
            window_s: None,
            load_factor: 1.0,
            split: None,
            perturb: Perturb::default(),
            windows: None,
            exclude: None,
            times: Times::Shifted,
        }
    }
}

/// Why a replay cannot be built: the scenario key at fault and the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayError {
    pub key: &'static str,
    pub reason: String,
}

/// Where an episode's window may start.
#[derive(Clone, Debug, PartialEq)]
enum Starts {
    /// Any index in one of these disjoint `first..=last` ranges (in order), uniformly.
    Ranges(Vec<(usize, usize)>),
    /// One of these block starts.
    Blocks(Vec<usize>),
    /// The `s mod n`-th of these for the episode with seed `s`.
    Listed(Vec<usize>),
    /// A window by time over the tasks `part`.
    Time {
        part: Range<usize>,
        windows: TimeWindows,
    },
}

/// The windows of `window_s` seconds over sorted arrivals, and how a uniform draw picks one.
///
/// A window starting at `s` holds the tasks arriving in `(s, s + window_s]`; it holds task `j`
/// exactly when `s ∈ [a_j − window_s, a_j)`. The starts are drawn uniformly from the union of
/// these intervals (the starts whose window is not empty): each task is in the window with
/// the same probability, `window_s / total_s`. A draw `u ∈ [0, 1)` is mapped to the start
/// `u × total_s` seconds into that union, walking its runs (maximal intervals) in time order.
/// What remains uneven is the window's content, not its coverage: windows near the ends of
/// the span, or next to a gap, reach past the tasks and hold fewer of them.
#[derive(Clone, Debug, PartialEq)]
pub struct TimeWindows {
    window_s: f64,
    arrivals: Vec<f64>,
    /// `(first start, length, length of the runs before it)`, in time order.
    runs: Vec<(f64, f64, f64)>,
    total_s: f64,
}

impl TimeWindows {
    /// `arrivals` sorted and non-empty, `window_s` > 0.
    pub fn new(arrivals: Vec<f64>, window_s: f64) -> Self {
        let mut runs: Vec<(f64, f64, f64)> = Vec::new();
        let mut total_s = 0.0;
        for &a in &arrivals {
            let (lo, hi) = (a - window_s, a);
            match runs.last_mut() {
                Some((first, len, _)) if lo <= *first + *len => {
                    total_s += hi - (*first + *len);
                    *len = hi - *first;
                }
                _ => {
                    runs.push((lo, window_s, total_s));
                    total_s += window_s;
                }
            }
        }
        Self {
            window_s,
            arrivals,
            runs,
            total_s,
        }
    }

    /// The total length of the starts a window may take (seconds).
    pub fn total_s(&self) -> f64 {
        self.total_s
    }

    /// The start `u ∈ [0, 1)` picks: `u × total_s` seconds into the union of the starts.
    pub fn start_s(&self, u: f64) -> f64 {
        let x = u * self.total_s;
        let k = self
            .runs
            .partition_point(|&(_, len, before)| before + len <= x)
            .min(self.runs.len() - 1);
        let (first, _, before) = self.runs[k];
        first + (x - before)
    }

    /// The indices (into the arrivals) of the window starting at `start_s`, never empty.
    pub fn window(&self, start_s: f64) -> Range<usize> {
        let first = self.arrivals.partition_point(|&a| a <= start_s);
        let end = self
            .arrivals
            .partition_point(|&a| a <= start_s + self.window_s);
        // A start drawn by `start_s` always holds a task; the clamps only guard an ulp of
        // rounding at the edge of a run.
        let first = first.min(self.arrivals.len() - 1);
        first..end.max(first + 1)
    }
}

/// Replays a task sequence as seeded windows (see the module docs).
#[derive(Clone, Debug)]
pub struct Trace {
    tasks: Vec<TaskSpec>,
    episode_len: usize,
    starts: Starts,
    load_factor: f64,
    perturb: Perturb,
    part: Option<Part>,
    times: Times,
    /// Whether episodes replay windows (`window_jobs` or `window_s`), not the whole trace or
    /// part: only then do they report their window's start.
    windowed: bool,
}

impl Trace {
    /// A replay with no split and no perturbation. `tasks` must be non-empty; they are sorted
    /// by arrival (stable). `window_jobs` larger than the trace replays the whole trace.
    /// `load_factor` must be > 0.
    pub fn new(tasks: Vec<TaskSpec>, window_jobs: Option<usize>, load_factor: f64) -> Self {
        let options = ReplayOptions {
            window_jobs,
            load_factor,
            ..ReplayOptions::default()
        };
        Self::with_options(tasks, &options).expect("a replay without a split always builds")
    }

    /// `tasks` must be non-empty and the option values in range (the scenario loader checks
    /// them); the error is what depends on the tasks or on how the keys combine: a part that
    /// is empty or shorter than a window, a split by window with too few windows, a listed
    /// window past the end of the trace, exclusions that leave no window.
    pub fn with_options(
        mut tasks: Vec<TaskSpec>,
        options: &ReplayOptions,
    ) -> Result<Self, ReplayError> {
        tasks.sort_by(|a, b| a.arrival_s.total_cmp(&b.arrival_s));
        check_window_keys(options)?;
        if let Some(window_s) = options.window_s {
            return Self::by_time(tasks, window_s, options);
        }
        let n = tasks.len();
        let (episode_len, mut starts) = match options.split {
            None => {
                let len = options.window_jobs.map_or(n, |w| w.min(n));
                (len, Starts::Ranges(vec![(0, n - len)]))
            }
            Some(split) => match split.by {
                SplitBy::Time => {
                    let part = time_part(&tasks, split)?;
                    let size = part.end - part.start;
                    let len = options.window_jobs.unwrap_or(size);
                    if len > size {
                        return Err(ReplayError {
                            key: "workload.window_jobs",
                            reason: format!(
                                "{len} is more than the {} part's {size} tasks",
                                split.part.name()
                            ),
                        });
                    }
                    (len, Starts::Ranges(vec![(part.start, part.end - len)]))
                }
                SplitBy::Window => {
                    let Some(w) = options.window_jobs else {
                        return Err(ReplayError {
                            key: "workload.split",
                            reason: "by = \"window\" needs workload.window_jobs".into(),
                        });
                    };
                    (w, Starts::Blocks(window_part(n, w, split)?))
                }
            },
        };
        if let Some(list) = &options.windows {
            starts = listed_starts(list, episode_len, n, &starts, options.split)?;
        }
        if let Some(exclusion) = &options.exclude {
            starts = exclude(starts, episode_len, exclusion, n)?;
        }
        Ok(Self {
            tasks,
            episode_len,
            starts,
            load_factor: options.load_factor,
            perturb: options.perturb,
            part: options.split.map(|s| s.part),
            times: options.times,
            windowed: options.window_jobs.is_some(),
        })
    }

    /// A replay of windows of `window_s` seconds (tasks sorted by arrival).
    fn by_time(
        tasks: Vec<TaskSpec>,
        window_s: f64,
        options: &ReplayOptions,
    ) -> Result<Self, ReplayError> {
        let (part, what) = match options.split {
            None => (0..tasks.len(), "trace".to_string()),
            Some(split) if split.by == SplitBy::Time => (
                time_part(&tasks, split)?,
                format!("{} part", split.part.name()),
            ),
            Some(_) => {
                return Err(ReplayError {
                    key: "workload.split",
                    reason: "by = \"window\" cuts blocks of workload.window_jobs tasks and does \
                             not take workload.window_s (time blocks could be empty); use by = \
                             \"time\", whose windows are drawn inside the part"
                        .into(),
                });
            }
        };
        let arrivals: Vec<f64> = tasks[part.clone()].iter().map(|t| t.arrival_s).collect();
        let (first, last) = (arrivals[0], arrivals[arrivals.len() - 1]);
        if window_s > last - first {
            return Err(ReplayError {
                key: "workload.window_s",
                reason: format!(
                    "{window_s} s is longer than the {what}'s span of {} s (arrivals from \
                     {first} s to {last} s)",
                    last - first
                ),
            });
        }
        Ok(Self {
            tasks,
            episode_len: 0,
            starts: Starts::Time {
                part,
                windows: TimeWindows::new(arrivals, window_s),
            },
            load_factor: options.load_factor,
            perturb: options.perturb,
            part: options.split.map(|s| s.part),
            times: options.times,
            windowed: true,
        })
    }

    pub fn tasks(&self) -> &[TaskSpec] {
        &self.tasks
    }

    /// Tasks per episode; `None` for windows by time, whose task count varies.
    pub fn episode_len(&self) -> Option<usize> {
        match self.starts {
            Starts::Time { .. } => None,
            _ => Some(self.episode_len),
        }
    }

    /// The indices (into [`Self::tasks`], in arrival order) an episode may replay: the union
    /// of every window of this replay's part, in order.
    pub fn replayed_indices(&self) -> Vec<usize> {
        let len = self.episode_len;
        let mut indices: Vec<usize> = match &self.starts {
            Starts::Time { part, .. } => return part.clone().collect(),
            Starts::Ranges(ranges) => ranges
                .iter()
                .flat_map(|&(first, last)| first..last + len)
                .collect(),
            Starts::Blocks(starts) | Starts::Listed(starts) => {
                starts.iter().flat_map(|&s| s..s + len).collect()
            }
        };
        indices.sort_unstable();
        indices.dedup();
        indices
    }

    /// The indices (into [`Self::tasks`]) of the window the episode reset with `seed` and
    /// this RNG replays, before perturbation. Listed windows are picked by the seed (by the
    /// first draw from `rng` without one); the others by the first draw from `rng`.
    pub fn draw_window(&self, seed: Option<u64>, rng: &mut ChaCha8Rng) -> Range<usize> {
        let start = match &self.starts {
            Starts::Ranges(ranges) => {
                let total: usize = ranges.iter().map(|&(first, last)| last - first + 1).sum();
                let mut k = if total > 1 {
                    rng.random_range(0..=total - 1)
                } else {
                    0
                };
                let mut start = ranges[0].0;
                for &(first, last) in ranges {
                    if k <= last - first {
                        start = first + k;
                        break;
                    }
                    k -= last - first + 1;
                }
                start
            }
            Starts::Blocks(starts) if starts.len() > 1 => starts[rng.random_range(0..starts.len())],
            Starts::Blocks(starts) => starts[0],
            Starts::Listed(starts) => match seed {
                Some(s) => starts[(s % starts.len() as u64) as usize],
                None if starts.len() > 1 => starts[rng.random_range(0..starts.len())],
                None => starts[0],
            },
            Starts::Time { part, windows } => {
                let w = windows.window(windows.start_s(rng.random::<f64>()));
                return part.start + w.start..part.start + w.end;
            }
        };
        start..start + self.episode_len
    }

    fn one_window(&self) -> bool {
        match &self.starts {
            Starts::Ranges(ranges) => ranges.len() == 1 && ranges[0].0 == ranges[0].1,
            Starts::Blocks(starts) | Starts::Listed(starts) => {
                starts.iter().all(|&s| s == starts[0])
            }
            // A window is at most the part's span, which then holds two arrival times, and
            // the windows holding only the first or only the last differ.
            Starts::Time { .. } => false,
        }
    }
}

/// How the window keys combine; what needs the tasks is checked where the starts are built.
fn check_window_keys(options: &ReplayOptions) -> Result<(), ReplayError> {
    let err = |key, reason: &str| {
        Err(ReplayError {
            key,
            reason: reason.into(),
        })
    };
    if options.window_s.is_some() && options.window_jobs.is_some() {
        return err(
            "workload.window_s",
            "cannot be set together with workload.window_jobs (a window is either by time or \
             by task count)",
        );
    }
    if let Some(list) = &options.windows {
        let key = list.key();
        if options.window_jobs.is_none() {
            return err(
                key,
                "needs workload.window_jobs (the tasks per window; windows by time have no \
                 task offsets)",
            );
        }
        if options.split.is_some_and(|s| s.by == SplitBy::Window) {
            return err(
                key,
                "cannot be used with split by = \"window\", whose blocks are the windows",
            );
        }
        if options.exclude.is_some() {
            return err(
                "workload.exclude_windows",
                "cannot be set together with listed windows (workload.window_offsets or \
                 workload.window_sampler): those are fixed, there is nothing to exclude from",
            );
        }
    }
    if options.exclude.is_some() && options.window_jobs.is_none() {
        return err(
            "workload.exclude_windows",
            "needs workload.window_jobs (windows are excluded by task index)",
        );
    }
    Ok(())
}

impl WindowList {
    /// The scenario key that sets this list.
    fn key(&self) -> &'static str {
        match self {
            Self::Offsets(_) => "workload.window_offsets",
            Self::RlScheduler { .. } => "workload.window_sampler",
        }
    }
}

/// The listed windows of `len` tasks, each checked to lie inside the replay's part
/// (`starts`, by task count: the whole trace or a time split's part).
fn listed_starts(
    list: &WindowList,
    len: usize,
    n: usize,
    starts: &Starts,
    split: Option<Split>,
) -> Result<Starts, ReplayError> {
    let err = |reason| ReplayError {
        key: list.key(),
        reason,
    };
    let listed = list.starts(len, n).map_err(err)?;
    if let (Starts::Ranges(ranges), Some(split)) = (starts, split) {
        let (first, last) = ranges[0];
        if let Some(s) = listed.iter().find(|&&s| s < first || s > last) {
            return Err(err(format!(
                "the window at offset {s} ({len} tasks) is not inside the {} part (tasks \
                 {first} to {}), the part this scenario replays",
                split.part.name(),
                last + len - 1
            )));
        }
    }
    Ok(Starts::Listed(listed))
}

/// `starts` less every start whose window of `len` tasks overlaps an excluded window.
fn exclude(
    starts: Starts,
    len: usize,
    exclusion: &Exclusion,
    n: usize,
) -> Result<Starts, ReplayError> {
    let err = |reason| ReplayError {
        key: "workload.exclude_windows",
        reason,
    };
    let excluded = exclusion.windows.starts(exclusion.jobs, n).map_err(err)?;
    // The window at `s` overlaps the excluded one at `e` exactly when
    // s ∈ [e + 1 − len, e + jobs − 1]: the forbidden starts, merged into disjoint runs.
    let mut forbidden: Vec<(usize, usize)> = excluded
        .iter()
        .map(|&e| ((e + 1).saturating_sub(len), e + exclusion.jobs - 1))
        .collect();
    forbidden.sort_unstable();
    let overlaps = |s: usize| {
        let k = forbidden.partition_point(|&(lo, _)| lo <= s);
        forbidden[..k].iter().any(|&(_, hi)| s <= hi)
    };
    let left = match starts {
        Starts::Ranges(ranges) => {
            let mut left = Vec::new();
            for (first, last) in ranges {
                let mut from = first;
                for &(lo, hi) in &forbidden {
                    if hi < from || lo > last {
                        continue;
                    }
                    if lo > from {
                        left.push((from, lo - 1));
                    }
                    from = from.max(hi + 1);
                }
                if from <= last {
                    left.push((from, last));
                }
            }
            if left.is_empty() {
                None
            } else {
                Some(Starts::Ranges(left))
            }
        }
        Starts::Blocks(blocks) => {
            let left: Vec<usize> = blocks.into_iter().filter(|&s| !overlaps(s)).collect();
            (!left.is_empty()).then_some(Starts::Blocks(left))
        }
        Starts::Listed(_) | Starts::Time { .. } => {
            unreachable!("check_window_keys refuses exclusions of these")
        }
    };
    left.ok_or_else(|| {
        err(format!(
            "leaves no window of {len} tasks that overlaps none of the {} excluded windows of \
             {} tasks",
            excluded.len(),
            exclusion.jobs
        ))
    })
}

/// The index range of `split.part` when the trace is cut at a time.
fn time_part(tasks: &[TaskSpec], split: Split) -> Result<std::ops::Range<usize>, ReplayError> {
    let (first, last) = (tasks[0].arrival_s, tasks[tasks.len() - 1].arrival_s);
    let cut_s = first + (1.0 - split.test_fraction) * (last - first);
    let num_train = tasks.partition_point(|t| t.arrival_s < cut_s);
    let part = match split.part {
        Part::Train => 0..num_train,
        Part::Test => num_train..tasks.len(),
    };
    if part.is_empty() {
        return Err(ReplayError {
            key: "workload.split",
            reason: format!(
                "the {} part is empty: the cut at {cut_s} s (arrivals span {first} s to \
                 {last} s) leaves no task in it; change test_fraction",
                split.part.name()
            ),
        });
    }
    Ok(part)
}

/// The block starts of `split.part` when `n` tasks are cut into blocks of `w`.
fn window_part(n: usize, w: usize, split: Split) -> Result<Vec<usize>, ReplayError> {
    let blocks = n / w;
    let num_test = (blocks as f64 * split.test_fraction).round() as usize;
    if blocks < 2 || num_test == 0 || num_test == blocks {
        return Err(ReplayError {
            key: "workload.split",
            reason: format!(
                "{n} tasks make {blocks} windows of workload.window_jobs = {w}, and \
                 test_fraction = {} of them leaves {num_test} for test and {} for training; \
                 both need at least one (lower window_jobs or change test_fraction)",
                split.test_fraction,
                blocks - num_test.min(blocks)
            ),
        });
    }
    let is_test = |k: usize| (k + 1) * num_test / blocks > k * num_test / blocks;
    Ok((0..blocks)
        .filter(|&k| is_test(k) == (split.part == Part::Test))
        .map(|k| k * w)
        .collect())
}

impl TaskSource for Trace {
    fn fill(&self, rng: &mut ChaCha8Rng, out: &mut Vec<TaskSpec>) {
        self.fill_episode(None, rng, out);
    }

    fn fill_episode(
        &self,
        seed: Option<u64>,
        rng: &mut ChaCha8Rng,
        out: &mut Vec<TaskSpec>,
    ) -> EpisodeStart {
        out.clear();
        let indices = self.draw_window(seed, rng);
        let window_start = self.windowed.then_some(indices.start);
        let window = &self.tasks[indices];
        let Some(first) = window.first() else {
            return EpisodeStart::default();
        };
        let t0 = first.arrival_s;
        let clock_s = match self.times {
            Times::Shifted => 0.0,
            Times::Absolute => t0,
        };
        let Perturb {
            load_noise,
            arrival_jitter_s: jitter,
            estimate_noise: noise,
            estimates,
        } = self.perturb;
        let load_factor = if load_noise > 0.0 {
            self.load_factor * rng.random_range(1.0 - load_noise..=1.0 + load_noise)
        } else {
            self.load_factor
        };
        out.extend(window.iter().map(|t| {
            let mut arrival_s = clock_s + (t.arrival_s - t0) / load_factor;
            if jitter > 0.0 {
                arrival_s = (arrival_s + rng.random_range(-jitter..=jitter)).max(clock_s);
            }
            let mut estimate_s = t.estimate_s;
            if noise > 0.0 {
                estimate_s *= rng.random_range(1.0 - noise..=1.0 + noise);
            }
            if let Some(model) = estimates {
                estimate_s = model.estimate_s(t.duration_s, rng.random::<f64>());
            }
            TaskSpec {
                arrival_s,
                estimate_s,
                deadline_s: t.deadline_s.map(|d| d - t.arrival_s + arrival_s),
                ..*t
            }
        }));
        if jitter > 0.0 {
            // Unstable sort: it does not allocate, and (arrival, id) fixes the order of all
            // but identical tasks, whose order does not matter.
            out.sort_unstable_by(|a, b| a.arrival_s.total_cmp(&b.arrival_s).then(a.id.cmp(&b.id)));
        }
        EpisodeStart {
            clock_s,
            window_start,
        }
    }

    fn variety(&self) -> EpisodeVariety {
        let perturbed = self.perturb != Perturb::default();
        match (self.one_window(), perturbed, self.part) {
            (true, false, _) => EpisodeVariety::Identical {
                num_tasks: self.episode_len,
            },
            // Noise does not make a split's training part held out.
            (_, _, Some(part)) => EpisodeVariety::Windows { part: Some(part) },
            (true, true, None) => EpisodeVariety::Generated,
            (false, _, None) => EpisodeVariety::Windows { part: None },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::TsafrirEstimates;
    use rand::SeedableRng;

    fn tasks() -> Vec<TaskSpec> {
        (0..10)
            .map(|i| TaskSpec::new(i, 100.0 + 10.0 * i as f64, 5.0, &[1]))
            .collect()
    }

    fn ids(out: &[TaskSpec]) -> Vec<u64> {
        out.iter().map(|t| t.id).collect()
    }

    fn split(by: SplitBy, test_fraction: f64, part: Part) -> Option<Split> {
        Some(Split {
            by,
            test_fraction,
            part,
        })
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
        assert_eq!(trace.variety(), EpisodeVariety::Identical { num_tasks: 10 });
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
        assert_eq!(trace.variety(), EpisodeVariety::Windows { part: None });
    }

    /// Arrivals 100, 110, ..., 190: the span is 90 s, so test_fraction 0.2 cuts at
    /// 100 + 0.8 × 90 = 172 s: tasks 0..=7 train, 8 and 9 test.
    #[test]
    fn a_time_split_cuts_the_span_and_windows_stay_inside_their_part() {
        let options = |part, window_jobs| ReplayOptions {
            window_jobs,
            split: split(SplitBy::Time, 0.2, part),
            ..ReplayOptions::default()
        };
        let train = Trace::with_options(tasks(), &options(Part::Train, Some(3))).unwrap();
        let test = Trace::with_options(tasks(), &options(Part::Test, None)).unwrap();
        assert_eq!(train.replayed_indices(), (0..8).collect::<Vec<_>>());
        assert_eq!(test.replayed_indices(), vec![8, 9]);
        let mut out = Vec::new();
        let mut first_ids = std::collections::BTreeSet::new();
        for seed in 0..200 {
            train.fill(&mut ChaCha8Rng::seed_from_u64(seed), &mut out);
            assert_eq!(out.len(), 3);
            assert!(out.iter().all(|t| t.id <= 7), "{:?}", ids(&out));
            first_ids.insert(out[0].id);
        }
        assert_eq!(first_ids, (0..=5).collect());
        test.fill(&mut ChaCha8Rng::seed_from_u64(3), &mut out);
        assert_eq!(ids(&out), vec![8, 9]);
        assert_eq!(out[1].arrival_s, 10.0);
        assert_eq!(test.variety(), EpisodeVariety::Identical { num_tasks: 2 });
        assert_eq!(
            train.variety(),
            EpisodeVariety::Windows {
                part: Some(Part::Train)
            }
        );
    }

    #[test]
    fn a_window_larger_than_its_part_or_an_empty_part_is_an_error() {
        let options = ReplayOptions {
            window_jobs: Some(3),
            split: split(SplitBy::Time, 0.2, Part::Test),
            ..ReplayOptions::default()
        };
        let err = Trace::with_options(tasks(), &options).unwrap_err();
        assert_eq!(err.key, "workload.window_jobs");
        assert_eq!(err.reason, "3 is more than the test part's 2 tasks");
        let same_time: Vec<TaskSpec> = (0..4).map(|i| TaskSpec::new(i, 5.0, 1.0, &[1])).collect();
        let options = ReplayOptions {
            split: split(SplitBy::Time, 0.5, Part::Train),
            ..ReplayOptions::default()
        };
        let err = Trace::with_options(same_time, &options).unwrap_err();
        assert_eq!(err.key, "workload.split");
        assert!(err.reason.contains("train part is empty"), "{}", err.reason);
    }

    /// 10 tasks in blocks of 2 make 5 blocks; test_fraction 0.4 gives round(2.0) = 2 test
    /// blocks: k = 2 (⌊3·2/5⌋ = 1 > ⌊2·2/5⌋ = 0) and k = 4 (2 > 1), i.e. tasks 4, 5, 8, 9.
    #[test]
    fn a_window_split_spreads_whole_blocks_over_the_trace() {
        let options = |part| ReplayOptions {
            window_jobs: Some(2),
            split: split(SplitBy::Window, 0.4, part),
            ..ReplayOptions::default()
        };
        let train = Trace::with_options(tasks(), &options(Part::Train)).unwrap();
        let test = Trace::with_options(tasks(), &options(Part::Test)).unwrap();
        assert_eq!(train.replayed_indices(), vec![0, 1, 2, 3, 6, 7]);
        assert_eq!(test.replayed_indices(), vec![4, 5, 8, 9]);
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..100 {
            test.fill(&mut ChaCha8Rng::seed_from_u64(seed), &mut out);
            seen.insert(ids(&out));
        }
        assert_eq!(seen, [vec![4, 5], vec![8, 9]].into_iter().collect());
        let no_test = ReplayOptions {
            window_jobs: Some(4),
            split: split(SplitBy::Window, 0.2, Part::Train),
            ..ReplayOptions::default()
        };
        // 2 blocks × 0.2 rounds to 0 test blocks.
        let err = Trace::with_options(tasks(), &no_test).unwrap_err();
        assert_eq!(err.key, "workload.split");
        let no_window = ReplayOptions {
            window_jobs: None,
            ..no_test
        };
        let err = Trace::with_options(tasks(), &no_window).unwrap_err();
        assert_eq!(err.reason, "by = \"window\" needs workload.window_jobs");
    }

    #[test]
    fn perturbation_is_seeded_bounded_and_keeps_the_window_sorted() {
        let options = ReplayOptions {
            window_jobs: Some(6),
            perturb: Perturb {
                arrival_jitter_s: 15.0,
                estimate_noise: 0.2,
                ..Perturb::default()
            },
            ..ReplayOptions::default()
        };
        let mut with_deadlines = tasks();
        for t in &mut with_deadlines {
            t.deadline_s = Some(t.arrival_s + 50.0);
        }
        let trace = Trace::with_options(with_deadlines, &options).unwrap();
        let plain = Trace::new(tasks(), Some(6), 1.0);
        let (mut out, mut again, mut exact) = (Vec::new(), Vec::new(), Vec::new());
        let mut reordered = false;
        for seed in 0..100 {
            trace.fill(&mut ChaCha8Rng::seed_from_u64(seed), &mut out);
            trace.fill(&mut ChaCha8Rng::seed_from_u64(seed), &mut again);
            assert_eq!(out, again, "seed {seed}");
            // The same window as the unperturbed replay: the offset is drawn first.
            plain.fill(&mut ChaCha8Rng::seed_from_u64(seed), &mut exact);
            let mut sorted_ids = ids(&out);
            sorted_ids.sort();
            assert_eq!(sorted_ids, ids(&exact));
            reordered |= ids(&out) != ids(&exact);
            assert!(out.windows(2).all(|p| p[0].arrival_s <= p[1].arrival_s));
            for t in &out {
                let e = exact.iter().find(|x| x.id == t.id).unwrap();
                assert!(t.arrival_s >= 0.0);
                assert!((t.arrival_s - e.arrival_s).abs() <= 15.0);
                assert!(
                    t.estimate_s >= 4.0 && t.estimate_s <= 6.0,
                    "{}",
                    t.estimate_s
                );
                assert_eq!(t.duration_s, 5.0);
                assert_eq!(t.deadline_s, Some(t.arrival_s + 50.0));
            }
        }
        assert!(
            reordered,
            "15 s of jitter on 10 s gaps reorders some window"
        );
        assert_eq!(trace.variety(), EpisodeVariety::Windows { part: None });
        let one_window = Trace::with_options(
            tasks(),
            &ReplayOptions {
                window_jobs: None,
                ..options
            },
        );
        assert_eq!(one_window.unwrap().variety(), EpisodeVariety::Generated);
    }

    /// Arrivals 0, 10, 50, 55 with windows of 20 s: task j is in the window starting at s
    /// when s ∈ [a_j − 20, a_j), so the starts are [−20, 10) ∪ [30, 55), 30 + 25 = 55 s.
    #[test]
    fn a_time_window_start_is_drawn_from_the_starts_that_hold_a_task() {
        let w = TimeWindows::new(vec![0.0, 10.0, 50.0, 55.0], 20.0);
        assert_eq!(w.total_s(), 55.0);
        // u × 55 seconds into the union: 0 → −20, 27.5 → 7.5, 33 → 30 + 3, 49.5 → 30 + 19.5.
        assert_eq!(w.start_s(0.0), -20.0);
        assert_eq!(w.start_s(0.5), 7.5);
        assert_eq!(w.start_s(0.6), 33.0);
        assert_eq!(w.start_s(0.9), 49.5);
        assert_eq!(w.window(-20.0), 0..1); // (−20, 0]
        assert_eq!(w.window(-9.0), 0..2); // (−9, 11]
        assert_eq!(w.window(7.5), 1..2); // (7.5, 27.5]
        assert_eq!(w.window(33.0), 2..3); // (33, 53]
        assert_eq!(w.window(49.5), 2..4); // (49.5, 69.5]
        // Every task is covered by 20 of the 55 seconds of starts: 400 of 1100 evenly spaced
        // draws (none falls on a run's edge).
        let mut covered = [0; 4];
        for k in 0..1100 {
            for j in w.window(w.start_s((k as f64 + 0.5) / 1100.0)) {
                covered[j] += 1;
            }
        }
        assert_eq!(covered, [400; 4]);
    }

    fn time_options(window_s: f64, split: Option<Split>) -> ReplayOptions {
        ReplayOptions {
            window_s: Some(window_s),
            split,
            ..ReplayOptions::default()
        }
    }

    /// Arrivals 100, 110, ..., 190 with windows of 25 s: the starts are [75, 190) (115 s), and
    /// a window holds 1 to 3 consecutive tasks.
    #[test]
    fn time_windows_are_seeded_shifted_to_zero_and_never_empty() {
        let trace = Trace::with_options(tasks(), &time_options(25.0, None)).unwrap();
        assert_eq!(trace.episode_len(), None);
        assert_eq!(trace.variety(), EpisodeVariety::Windows { part: None });
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..300 {
            let window = trace.draw_window(None, &mut ChaCha8Rng::seed_from_u64(seed));
            trace.fill(&mut ChaCha8Rng::seed_from_u64(seed), &mut out);
            assert_eq!(
                ids(&out),
                window.clone().map(|i| i as u64).collect::<Vec<_>>()
            );
            assert!((1..=3).contains(&out.len()), "{:?}", ids(&out));
            assert_eq!(out[0].arrival_s, 0.0);
            assert_eq!(out.last().unwrap().arrival_s, 10.0 * (out.len() - 1) as f64);
            seen.insert(window.start);
        }
        assert_eq!(seen, (0..10).collect(), "every task starts some window");
        let mut again = Vec::new();
        trace.fill(&mut ChaCha8Rng::seed_from_u64(11), &mut out);
        trace.fill(&mut ChaCha8Rng::seed_from_u64(11), &mut again);
        assert_eq!(out, again);
        // The window is the first draw: the perturbed replay keeps it.
        let perturbed = ReplayOptions {
            load_factor: 2.0,
            perturb: Perturb {
                estimate_noise: 0.5,
                ..Perturb::default()
            },
            ..time_options(25.0, None)
        };
        let perturbed = Trace::with_options(tasks(), &perturbed).unwrap();
        for seed in 0..50 {
            trace.fill(&mut ChaCha8Rng::seed_from_u64(seed), &mut out);
            perturbed.fill(&mut ChaCha8Rng::seed_from_u64(seed), &mut again);
            assert_eq!(ids(&out), ids(&again));
            for (t, p) in out.iter().zip(&again) {
                assert_eq!(p.arrival_s, t.arrival_s / 2.0);
            }
        }
    }

    /// The cut at 172 s leaves arrivals 100..=170 (span 70 s) for training, 180 and 190 for
    /// test (span 10 s).
    #[test]
    fn time_windows_stay_inside_a_time_split_part() {
        let train = split(SplitBy::Time, 0.2, Part::Train);
        let trace = Trace::with_options(tasks(), &time_options(70.0, train)).unwrap();
        assert_eq!(trace.replayed_indices(), (0..8).collect::<Vec<_>>());
        for seed in 0..200 {
            let window = trace.draw_window(None, &mut ChaCha8Rng::seed_from_u64(seed));
            assert!(window.end <= 8 && !window.is_empty(), "{window:?}");
        }
        let test = split(SplitBy::Time, 0.2, Part::Test);
        let trace = Trace::with_options(tasks(), &time_options(10.0, test)).unwrap();
        let mut windows = std::collections::BTreeSet::new();
        for seed in 0..100 {
            let w = trace.draw_window(None, &mut ChaCha8Rng::seed_from_u64(seed));
            windows.insert((w.start, w.end));
        }
        // Starts [170, 190): (s, s + 10] holds 180 for s < 180 and 190 from s = 180 on, never
        // both (a window is half-open and they are exactly 10 s apart).
        assert_eq!(windows, [(8, 9), (9, 10)].into_iter().collect());
        let err = Trace::with_options(tasks(), &time_options(10.5, test)).unwrap_err();
        assert_eq!(err.key, "workload.window_s");
        assert_eq!(
            err.reason,
            "10.5 s is longer than the test part's span of 10 s (arrivals from 180 s to 190 s)"
        );
        let err = Trace::with_options(tasks(), &time_options(91.0, None)).unwrap_err();
        assert!(
            err.reason.contains("the trace's span of 90 s"),
            "{}",
            err.reason
        );
        let by_window = split(SplitBy::Window, 0.2, Part::Train);
        let err = Trace::with_options(tasks(), &time_options(20.0, by_window)).unwrap_err();
        assert_eq!(err.key, "workload.split");
        let both = ReplayOptions {
            window_jobs: Some(2),
            ..time_options(20.0, None)
        };
        let err = Trace::with_options(tasks(), &both).unwrap_err();
        assert_eq!(err.key, "workload.window_s");
        assert!(
            err.reason.contains("workload.window_jobs"),
            "{}",
            err.reason
        );
    }

    fn offsets(list: &[usize], window_jobs: usize) -> ReplayOptions {
        ReplayOptions {
            window_jobs: Some(window_jobs),
            windows: Some(WindowList::Offsets(list.to_vec())),
            ..ReplayOptions::default()
        }
    }

    #[test]
    fn listed_windows_follow_the_seed_and_report_their_start() {
        let trace = Trace::with_options(tasks(), &offsets(&[4, 0, 7], 3)).unwrap();
        let mut out = Vec::new();
        // Seed s replays offset s mod 3, whatever the RNG.
        for (seed, first) in [(0, 4), (1, 0), (2, 7), (3, 4), (5, 7)] {
            let start =
                trace.fill_episode(Some(seed), &mut ChaCha8Rng::seed_from_u64(99), &mut out);
            assert_eq!(ids(&out), vec![first, first + 1, first + 2], "seed {seed}");
            assert_eq!(out[0].arrival_s, 0.0);
            assert_eq!(
                start,
                EpisodeStart {
                    clock_s: 0.0,
                    window_start: Some(first as usize)
                }
            );
        }
        // A reset without a seed draws one of the listed windows from the RNG.
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..50 {
            trace.fill(&mut ChaCha8Rng::seed_from_u64(seed), &mut out);
            seen.insert(out[0].id);
        }
        assert_eq!(seen, [0, 4, 7].into_iter().collect());
        assert_eq!(trace.replayed_indices(), vec![0, 1, 2, 4, 5, 6, 7, 8, 9]);
        assert_eq!(trace.variety(), EpisodeVariety::Windows { part: None });
        let same = Trace::with_options(tasks(), &offsets(&[2, 2], 3)).unwrap();
        assert_eq!(same.variety(), EpisodeVariety::Identical { num_tasks: 3 });
    }

    #[test]
    fn listed_windows_must_fit_and_need_window_jobs() {
        let err = |options: &ReplayOptions| Trace::with_options(tasks(), options).unwrap_err();
        let e = err(&offsets(&[0, 8], 3));
        assert_eq!(e.key, "workload.window_offsets");
        assert_eq!(
            e.reason,
            "the window at offset 8 (3 tasks) runs past the end of the trace's 10 tasks (the \
             last offset that fits is 7)"
        );
        assert_eq!(err(&offsets(&[], 3)).reason, "needs at least one offset");
        let e = err(&ReplayOptions {
            window_jobs: None,
            window_s: Some(20.0),
            ..offsets(&[1], 3)
        });
        assert_eq!(e.key, "workload.window_offsets");
        assert!(
            e.reason.starts_with("needs workload.window_jobs"),
            "{}",
            e.reason
        );
        // Inside a time split's train part (tasks 0..=7) only.
        let e = err(&ReplayOptions {
            split: split(SplitBy::Time, 0.2, Part::Train),
            ..offsets(&[0, 6], 3)
        });
        assert_eq!(
            e.reason,
            "the window at offset 6 (3 tasks) is not inside the train part (tasks 0 to 7), the \
             part this scenario replays"
        );
        let e = err(&ReplayOptions {
            split: split(SplitBy::Window, 0.4, Part::Train),
            ..offsets(&[0], 2)
        });
        assert_eq!(e.key, "workload.window_offsets");
        let sampler = ReplayOptions {
            windows: Some(WindowList::RlScheduler {
                seed: 1,
                episodes: 0,
            }),
            ..offsets(&[], 3)
        };
        let e = err(&sampler);
        assert_eq!(e.key, "workload.window_sampler");
        assert!(
            e.reason.starts_with("episodes must be in 1..=1000000"),
            "{}",
            e.reason
        );
    }

    /// A 10,000-task trace with 1024-task windows: RLScheduler's seed-1 draws, by episode seed.
    #[test]
    fn the_rlscheduler_sampler_replays_its_draws_by_episode_seed() {
        let many: Vec<TaskSpec> = (0..10_000)
            .map(|i| TaskSpec::new(i, i as f64, 5.0, &[1]))
            .collect();
        let options = ReplayOptions {
            windows: Some(WindowList::RlScheduler {
                seed: 1,
                episodes: 3,
            }),
            ..offsets(&[], 1024)
        };
        let trace = Trace::with_options(many, &options).unwrap();
        let mut out = Vec::new();
        for (seed, first) in [(0, 1981), (1, 2756), (2, 4299), (3, 1981)] {
            let start = trace.fill_episode(Some(seed), &mut ChaCha8Rng::seed_from_u64(0), &mut out);
            assert_eq!(start.window_start, Some(first));
            assert_eq!((out[0].id, out.len()), (first as u64, 1024));
        }
    }

    /// Windows of 3 among tasks 0..=9 avoid the excluded window of tasks 4 and 5: a start s
    /// overlaps it when s ∈ [4 + 1 − 3, 4 + 2 − 1] = [2, 5], which leaves 0, 1, 6 and 7.
    #[test]
    fn random_windows_never_overlap_an_excluded_window() {
        let options = ReplayOptions {
            window_jobs: Some(3),
            exclude: Some(Exclusion {
                windows: WindowList::Offsets(vec![4]),
                jobs: 2,
            }),
            ..ReplayOptions::default()
        };
        let trace = Trace::with_options(tasks(), &options).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for seed in 0..200 {
            let start = trace.fill_episode(None, &mut ChaCha8Rng::seed_from_u64(seed), &mut out);
            seen.insert(start.window_start.unwrap());
        }
        assert_eq!(seen, [0, 1, 6, 7].into_iter().collect());
        assert_eq!(trace.replayed_indices(), vec![0, 1, 2, 3, 6, 7, 8, 9]);
        // Blocks of 2 of a window split's train part (0, 2, 6; see the split test): one
        // excluded task 3 drops block 2.
        let blocks = ReplayOptions {
            window_jobs: Some(2),
            split: split(SplitBy::Window, 0.4, Part::Train),
            exclude: Some(Exclusion {
                windows: WindowList::Offsets(vec![3]),
                jobs: 1,
            }),
            ..ReplayOptions::default()
        };
        let trace = Trace::with_options(tasks(), &blocks).unwrap();
        assert_eq!(trace.replayed_indices(), vec![0, 1, 6, 7]);
        // Two excluded windows of 5 cover the trace: nothing is left.
        let all = ReplayOptions {
            exclude: Some(Exclusion {
                windows: WindowList::Offsets(vec![0, 5]),
                jobs: 5,
            }),
            ..options.clone()
        };
        let e = Trace::with_options(tasks(), &all).unwrap_err();
        assert_eq!(e.key, "workload.exclude_windows");
        assert_eq!(
            e.reason,
            "leaves no window of 3 tasks that overlaps none of the 2 excluded windows of 5 tasks"
        );
        let past_end = ReplayOptions {
            exclude: Some(Exclusion {
                windows: WindowList::Offsets(vec![9]),
                jobs: 2,
            }),
            ..options.clone()
        };
        let e = Trace::with_options(tasks(), &past_end).unwrap_err();
        assert_eq!(e.key, "workload.exclude_windows");
        assert!(e.reason.contains("runs past the end"), "{}", e.reason);
        let with_listed = ReplayOptions {
            windows: Some(WindowList::Offsets(vec![0])),
            ..options
        };
        let e = Trace::with_options(tasks(), &with_listed).unwrap_err();
        assert_eq!(e.key, "workload.exclude_windows");
    }

    /// Tasks 2, 3, 4 (arrivals 120, 130, 140) at load factor 2: 120, 125, 130.
    #[test]
    fn absolute_times_keep_the_first_arrival_and_start_the_clock_there() {
        let options = ReplayOptions {
            load_factor: 2.0,
            times: Times::Absolute,
            ..offsets(&[2], 3)
        };
        let trace = Trace::with_options(tasks(), &options).unwrap();
        let mut out = Vec::new();
        let start = trace.fill_episode(Some(0), &mut ChaCha8Rng::seed_from_u64(0), &mut out);
        assert_eq!(
            out.iter().map(|t| t.arrival_s).collect::<Vec<_>>(),
            vec![120.0, 125.0, 130.0]
        );
        assert_eq!(
            start,
            EpisodeStart {
                clock_s: 120.0,
                window_start: Some(2)
            }
        );
        // Jitter is clamped at the window's start, not at 0.
        let jittered = ReplayOptions {
            perturb: Perturb {
                arrival_jitter_s: 30.0,
                ..Perturb::default()
            },
            ..options
        };
        let trace = Trace::with_options(tasks(), &jittered).unwrap();
        for seed in 0..50 {
            trace.fill_episode(Some(seed), &mut ChaCha8Rng::seed_from_u64(seed), &mut out);
            assert!(out.iter().all(|t| (120.0..=160.0).contains(&t.arrival_s)));
        }
        // A whole-trace replay reports no window start.
        let whole = Trace::new(tasks(), None, 1.0);
        let start = whole.fill_episode(Some(0), &mut ChaCha8Rng::seed_from_u64(0), &mut out);
        assert_eq!(start, EpisodeStart::default());
    }

    /// Arrivals 10 s apart at load factor 2 are 5 s apart; a load noise of 0.5 makes the
    /// episode's factor 1–3, so its gaps are 10/3–10 s, all equal within an episode.
    #[test]
    fn load_noise_rescales_each_episode_as_a_whole() {
        let options = ReplayOptions {
            window_jobs: Some(6),
            load_factor: 2.0,
            perturb: Perturb {
                load_noise: 0.5,
                ..Perturb::default()
            },
            ..ReplayOptions::default()
        };
        let trace = Trace::with_options(tasks(), &options).unwrap();
        let plain = Trace::new(tasks(), Some(6), 2.0);
        let (mut out, mut again, mut exact) = (Vec::new(), Vec::new(), Vec::new());
        let (mut busier, mut quieter) = (false, false);
        for seed in 0..50 {
            trace.fill(&mut ChaCha8Rng::seed_from_u64(seed), &mut out);
            trace.fill(&mut ChaCha8Rng::seed_from_u64(seed), &mut again);
            assert_eq!(out, again, "seed {seed}");
            plain.fill(&mut ChaCha8Rng::seed_from_u64(seed), &mut exact);
            assert_eq!(ids(&out), ids(&exact), "the window is drawn first");
            let gap = out[1].arrival_s - out[0].arrival_s;
            assert!((10.0 / 3.0..=10.0).contains(&gap), "{gap}");
            for p in out.windows(2) {
                assert!((p[1].arrival_s - p[0].arrival_s - gap).abs() < 1e-9);
            }
            assert!(
                out.iter()
                    .zip(&exact)
                    .all(|(a, b)| a.estimate_s == b.estimate_s)
            );
            busier |= gap < 5.0;
            quieter |= gap > 5.0;
        }
        assert!(busier && quieter);
    }

    /// Runtimes of 5 s: a popular estimate is 60 s, the maximum 3600 s.
    #[test]
    fn modelled_estimates_replace_the_trace_estimates_from_the_seed() {
        let with = |p_max| ReplayOptions {
            window_jobs: Some(10),
            perturb: Perturb {
                estimates: Some(TsafrirEstimates {
                    max_s: 3600.0,
                    p_max,
                }),
                ..Perturb::default()
            },
            ..ReplayOptions::default()
        };
        let mut out = Vec::new();
        let estimates = |p_max, seed, out: &mut Vec<TaskSpec>| {
            let trace = Trace::with_options(tasks(), &with(p_max)).unwrap();
            trace.fill(&mut ChaCha8Rng::seed_from_u64(seed), out);
            out.iter().map(|t| t.estimate_s).collect::<Vec<_>>()
        };
        assert_eq!(estimates(0.0, 1, &mut out), vec![60.0; 10]);
        assert_eq!(estimates(1.0, 1, &mut out), vec![3600.0; 10]);
        let mixed = estimates(0.5, 4, &mut out);
        assert!(mixed.iter().all(|&e| e == 60.0 || e == 3600.0));
        assert!(
            mixed.contains(&60.0) && mixed.contains(&3600.0),
            "{mixed:?}"
        );
        assert_eq!(mixed, estimates(0.5, 4, &mut out));
        assert!(out.iter().all(|t| t.duration_s == 5.0));
    }
}

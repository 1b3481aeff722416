//! The decision rules of the deterministic heuristics: pure functions from a [`Snapshot`] to
//! the placement to carry out now (`None` = wait).
//!
//! Two families:
//! - **Queue order** — [`Rule::Fcfs`] and [`Rule::Easy`] serve tasks strictly in arrival
//!   order: when the oldest task cannot start, FCFS waits for it, and EASY waits for it but
//!   backfills later tasks that cannot delay it.
//! - **Greedy list rules** — every other rule is work-conserving: it scores each feasible
//!   placement and takes the best, waiting only when nothing fits. (RLScheduler ran WFP3,
//!   UNICEP and F1 in strict order; here they get the same greedy treatment as SJF, which
//!   makes them stronger baselines, not weaker ones.)
//!
//! Ties: scores within a relative 1e-9 of each other are equal, and equal scores go to the
//! first placement in (slot, server) order, i.e. the lowest slot, then the lowest server.
//! The tolerance makes ties of integer quantities (DeepRM's dot products) exact ties even
//! after normalisation by capacity.
//!
//! Every rule reads only estimates and the present: queued tasks, free capacity, running
//! tasks' estimated finish times.

use super::snapshot::{Placement, ServerInfo, Snapshot, fits};
use crate::workload::MAX_RESOURCES;

/// Parameters of [`Rule::Weighted`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WeightedParams {
    /// Weight of the estimated runtime (seconds).
    pub alpha: f64,
    /// Weight of the deadline slack (seconds).
    pub beta: f64,
    /// Slack assumed for tasks without a deadline (seconds).
    pub no_deadline_slack_s: f64,
}

impl Default for WeightedParams {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            beta: 0.5,
            no_deadline_slack_s: 3600.0,
        }
    }
}

/// A deterministic heuristic's decision rule. See each variant for its definition.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// First come, first served: the oldest queued task (arrival, then task id) starts on
    /// the first server where it fits (first-fit); if it fits nowhere, wait.
    Fcfs,
    /// Shortest estimated job first among tasks that fit now (DeepRM's SJF: the largest
    /// 1/len, ties to the lowest slot), on the first server where it fits.
    Sjf,
    /// DeepRM's Packer: the placement with the largest dot product of the server's free
    /// capacity and the task's demand among tasks that fit now; ties to the lowest slot. On
    /// DeepRM in raw units, as DeepRM computes it; on clusters as fractions of the server's
    /// capacity, so that cores and GiB weigh alike.
    Packer,
    /// Tetris (Grandl et al., "Multi-Resource Packing for Cluster Schedulers", SIGCOMM'14,
    /// §3.2–3.3): alignment score `a` = dot product of demand and free capacity (fractions of
    /// the server's capacity) combined with a shortest-remaining-time term: score = a − ε·w,
    /// with `w` = estimated work (estimate × Σ demand fractions) and ε = `srtf_weight` ·
    /// mean(a) / mean(w) over the candidate placements, so that both terms have the same
    /// scale. The largest score wins.
    Tetris { srtf_weight: f64 },
    /// The oldest task that fits somewhere (arrival order), on the server it leaves with the
    /// least free capacity (Σ over resources of leftover / capacity).
    BestFit,
    /// Worst-fit / least-loaded: the oldest task that fits somewhere, on the server with the
    /// lowest load (max over resources of used / capacity), balancing load.
    WorstFit,
    /// Earliest deadline first among tasks that fit now (no deadline = last; ties by
    /// arrival), on the first server where it fits.
    Edf,
    /// The weighted priority rule: the task that fits now with the lowest
    /// P = α · estimate_s + β · slack_s, slack_s = deadline − now − estimate (how long it may
    /// still wait and meet its deadline; `no_deadline_slack_s` without a deadline). Ties go
    /// to the higher priority class, then the lowest slot. First-fit server.
    Weighted(WeightedParams),
    /// Never chooses a task: waits whenever the env allows it, and where a hold limit forbids
    /// waiting starts the longest-waiting placeable task (as every rule does then). Alone it
    /// is no scheduler; as a rule of rule selection (`env.rules`) it is the choice to hold
    /// every task back now, so a policy can learn when holding pays.
    Wait,
    /// EASY backfilling on FCFS (Lifka, 1995; Mu'alem & Feitelson, TPDS 2001). The oldest
    /// task starts if it fits (first-fit). Otherwise it gets a reservation: on each server,
    /// the earliest time its demand fits once running tasks release their resources at their
    /// *estimated* finish times; the shadow time is the earliest over servers (ties: lowest
    /// server). A later task (arrival order) may start now if it does not delay that
    /// reservation: it runs on another server, or its estimated end is no later than the
    /// shadow time, or it fits in the capacity the reservation leaves spare at the shadow
    /// time (the "extra nodes"). Otherwise wait.
    Easy,
    /// WFP3 (Tang et al., 2009; as compared in RLScheduler, Zhang et al., SC'20): the task
    /// with the largest (wait / estimate)³ · n, n = demand of the first resource (processors).
    Wfp3,
    /// UNICEP (Tang et al., 2009; RLScheduler, SC'20): the largest
    /// wait / (log2(n) · estimate), with RLScheduler's 1e-15 guards against log2(1) = 0.
    Unicep,
    /// F1 (Carastan-Santos & de Camargo, SC'17; RLScheduler, SC'20): the smallest
    /// log10(estimate) · n + 870 · log10(arrival), non-positive values replaced by 0.1 as in
    /// RLScheduler.
    F1,
}

const TIE_RELATIVE: f64 = 1e-9;

/// `candidate < best` by more than the tie tolerance.
fn lower(candidate: f64, best: f64) -> bool {
    if candidate.is_nan() || candidate >= best {
        return false;
    }
    if !candidate.is_finite() || !best.is_finite() {
        return true;
    }
    best - candidate > TIE_RELATIVE * candidate.abs().max(best.abs())
}

/// The first placement with the lowest key (NaN keys never win).
fn argmin(placements: &[Placement], mut key: impl FnMut(&Placement) -> f64) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, p) in placements.iter().enumerate() {
        let k = key(p);
        if k.is_nan() {
            continue;
        }
        if best.is_none_or(|(_, b)| lower(k, b)) {
            best = Some((i, k));
        }
    }
    best.map(|(i, _)| i)
}

/// Σ over resources of (a_r / cap_r) · (b_r / cap_r), skipping resources the server lacks;
/// with `raw`, Σ a_r · b_r in raw units (DeepRM's definition).
fn alignment(
    a: &[u32; MAX_RESOURCES],
    b: &[u32; MAX_RESOURCES],
    server: &ServerInfo,
    nr: usize,
    raw: bool,
) -> f64 {
    (0..nr)
        .filter(|&r| server.capacity[r] > 0)
        .map(|r| {
            let cap = if raw {
                1.0
            } else {
                f64::from(server.capacity[r])
            };
            f64::from(a[r]) / cap * f64::from(b[r]) / cap
        })
        .sum()
}

/// Processors-like size of a task for the HPC formulas: its demand of the first resource,
/// at least 1.
fn hpc_size(demand: &[u32; MAX_RESOURCES]) -> f64 {
    f64::from(demand[0].max(1))
}

impl Rule {
    /// The placement to carry out now (an index into `snapshot.placements`), or `None` to wait.
    pub fn choose(&self, s: &Snapshot) -> Option<usize> {
        if s.placements.is_empty() {
            return None;
        }
        let nr = s.num_resources;
        match *self {
            Rule::Fcfs => s.first_placement_of(s.oldest_task()?),
            Rule::Sjf => argmin(&s.placements, |p| s.tasks[p.task].estimate_s),
            Rule::Packer => argmin(&s.placements, |p| {
                let server = &s.servers[p.server];
                -alignment(
                    &server.free,
                    &s.tasks[p.task].demand,
                    server,
                    nr,
                    s.raw_units,
                )
            }),
            Rule::Tetris { srtf_weight } => tetris(s, srtf_weight),
            Rule::BestFit | Rule::WorstFit => {
                let task = s
                    .fcfs_order()
                    .into_iter()
                    .find(|&t| s.first_placement_of(t).is_some())?;
                let candidates = s
                    .placements
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.task == task);
                let score = |p: &Placement| -> f64 {
                    let server = &s.servers[p.server];
                    let caps = (0..nr).filter(|&r| server.capacity[r] > 0);
                    if *self == Rule::BestFit {
                        s.leftover_after(p.server, &s.tasks[p.task].demand)
                    } else {
                        caps.map(|r| {
                            f64::from(server.capacity[r] - server.free[r])
                                / f64::from(server.capacity[r])
                        })
                        .fold(0.0, f64::max)
                    }
                };
                let mut best: Option<(usize, f64)> = None;
                for (i, p) in candidates {
                    let k = score(p);
                    if best.is_none_or(|(_, b)| lower(k, b)) {
                        best = Some((i, k));
                    }
                }
                best.map(|(i, _)| i)
            }
            Rule::Edf => {
                // Lexicographic (deadline, arrival): a deadline-less task sorts after all others.
                let mut best: Option<(usize, f64, f64)> = None;
                for (i, p) in s.placements.iter().enumerate() {
                    let task = &s.tasks[p.task];
                    let deadline = task.deadline_s.unwrap_or(f64::INFINITY);
                    let better = match best {
                        None => true,
                        Some((_, bd, ba)) => {
                            lower(deadline, bd)
                                || (!lower(bd, deadline) && lower(task.arrival_s, ba))
                        }
                    };
                    if better {
                        best = Some((i, deadline, task.arrival_s));
                    }
                }
                best.map(|(i, _, _)| i)
            }
            Rule::Weighted(w) => {
                let mut best: Option<(usize, f64, u8)> = None;
                for (i, p) in s.placements.iter().enumerate() {
                    let task = &s.tasks[p.task];
                    let slack_s = task
                        .deadline_s
                        .map_or(w.no_deadline_slack_s, |d| d - s.now_s - task.estimate_s);
                    let score = w.alpha * task.estimate_s + w.beta * slack_s;
                    let better = match best {
                        None => true,
                        Some((_, b, bp)) => {
                            lower(score, b) || (!lower(b, score) && task.priority > bp)
                        }
                    };
                    if better {
                        best = Some((i, score, task.priority));
                    }
                }
                best.map(|(i, _, _)| i)
            }
            Rule::Wait => None,
            Rule::Easy => easy(s),
            Rule::Wfp3 => argmin(&s.placements, |p| {
                let task = &s.tasks[p.task];
                -(s.waiting_s(p.task) / task.estimate_s).powi(3) * hpc_size(&task.demand)
            }),
            Rule::Unicep => argmin(&s.placements, |p| {
                let task = &s.tasks[p.task];
                -(s.waiting_s(p.task) + 1e-15)
                    / ((hpc_size(&task.demand) + 1e-15).log2() * task.estimate_s)
            }),
            Rule::F1 => argmin(&s.placements, |p| {
                let task = &s.tasks[p.task];
                let r = if task.estimate_s > 0.0 {
                    task.estimate_s
                } else {
                    0.1
                };
                let submit = if task.arrival_s > 0.0 {
                    task.arrival_s
                } else {
                    0.1
                };
                r.log10() * hpc_size(&task.demand) + 870.0 * submit.log10()
            }),
        }
    }
}

fn tetris(s: &Snapshot, srtf_weight: f64) -> Option<usize> {
    let nr = s.num_resources;
    let alignment = |p: &Placement| {
        let server = &s.servers[p.server];
        alignment(
            &s.tasks[p.task].demand,
            &server.free,
            server,
            nr,
            s.raw_units,
        )
    };
    let work = |p: &Placement| {
        let server = &s.servers[p.server];
        let task = &s.tasks[p.task];
        let share: f64 = (0..nr)
            .filter(|&r| server.capacity[r] > 0)
            .map(|r| f64::from(task.demand[r]) / f64::from(server.capacity[r]))
            .sum();
        task.estimate_s * share
    };
    let n = s.placements.len() as f64;
    let mean_a = s.placements.iter().map(alignment).sum::<f64>() / n;
    let mean_w = s.placements.iter().map(work).sum::<f64>() / n;
    let epsilon = if mean_w > 0.0 {
        srtf_weight * mean_a / mean_w
    } else {
        0.0
    };
    argmin(&s.placements, |p| -(alignment(p) - epsilon * work(p)))
}

/// EASY's reservation for `task` (which fits nowhere now): the shadow time, the reserved
/// server and the capacity left spare on it at the shadow time. `None` when no server can
/// ever hold the task.
fn reservation(s: &Snapshot, task: usize) -> Option<(f64, usize, [u32; MAX_RESOURCES])> {
    let nr = s.num_resources;
    let demand = &s.tasks[task].demand;
    let mut best: Option<(f64, usize, [u32; MAX_RESOURCES])> = None;
    for (n, server) in s.servers.iter().enumerate() {
        if !fits(demand, &server.capacity, nr) {
            continue;
        }
        // Releases on this server in estimated-finish order; an overdue task (estimate
        // exceeded) is assumed to end now.
        let mut releases: Vec<(f64, &[u32; MAX_RESOURCES])> = s
            .running
            .iter()
            .filter(|r| r.server == n)
            .map(|r| (r.estimated_finish_s.max(s.now_s), &r.demand))
            .collect();
        releases.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut free = server.free;
        let mut shadow = if fits(demand, &free, nr) {
            Some(s.now_s)
        } else {
            None
        };
        for &(t, released) in &releases {
            match shadow {
                Some(at) if t > at => break,
                _ => {}
            }
            for r in 0..nr {
                free[r] += released[r];
            }
            if shadow.is_none() && fits(demand, &free, nr) {
                shadow = Some(t);
            }
        }
        let Some(at) = shadow else { continue };
        if best.is_none_or(|(b, _, _)| at < b) {
            let mut extra = [0; MAX_RESOURCES];
            for r in 0..nr {
                extra[r] = free[r] - demand[r];
            }
            best = Some((at, n, extra));
        }
    }
    best
}

fn easy(s: &Snapshot) -> Option<usize> {
    let head = s.oldest_task()?;
    if let Some(p) = s.first_placement_of(head) {
        return Some(p);
    }
    let reserved = reservation(s, head);
    for task in s.fcfs_order().into_iter().filter(|&t| t != head) {
        for (i, p) in s
            .placements
            .iter()
            .enumerate()
            .filter(|(_, p)| p.task == task)
        {
            let allowed = match reserved {
                None => true,
                Some((shadow_s, server, extra)) => {
                    let candidate = &s.tasks[task];
                    let end_s = s.now_s + candidate.estimate_s / s.servers[p.server].speed;
                    p.server != server
                        || end_s <= shadow_s
                        || fits(&candidate.demand, &extra, s.num_resources)
                }
            };
            if allowed {
                return Some(i);
            }
        }
    }
    None
}

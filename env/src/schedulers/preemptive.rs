//! Heuristics that stop and move running tasks (scenarios with `[preemption]`; elsewhere each
//! plays its BASE exactly):
//!
//! - `preempt[:BASE]`: strict priority classes. The highest class
//!   with a task that can start goes first; a visible task of a higher class that fits
//!   nowhere preempts, one per decision, the lower-class tasks of the server where the
//!   fewest of them make room (lowest class first, then the least work at risk).
//! - `defrag[:BASE]`: when the oldest visible task fits nowhere but would fit
//!   on a server once one task there moves elsewhere, it moves the smallest such task (to
//!   the server it fits tightest), then starts the oldest task in the room made.
//! - `evacuate[:BASE[:THRESHOLD]]`: failure prediction in action. A task
//!   running on a server whose health reading is at or above THRESHOLD moves to the tightest
//!   server below it (the task with the most work done first), unless it is estimated to end
//!   within the move's pause; placements are `safe`'s.
//!
//! Each decides with a [`Decision`] (the task by its index, so any running task may be
//! chosen); `act` returns the action of that decision when the task has a running row, else
//! BASE's action.

use super::keep_off_risky;
use super::snapshot::{Move, fits};
use super::{Decision, Heuristic, Scheduler, Snapshot};
use crate::scenario::ScenarioEnv;
use crate::workload::MAX_RESOURCES;

/// Which rule a [`Preemptive`] scheduler plays (see the module docs).
#[derive(Clone, Debug)]
enum Rule {
    Preempt,
    Defrag {
        /// The task a migration made room for: it starts at the next decision if it can.
        making_room_for: Option<u64>,
    },
    Evacuate {
        threshold: f64,
    },
}

/// A heuristic that may stop or move running tasks: `preempt`, `defrag` or `evacuate` over a
/// BASE heuristic (see the module docs).
#[derive(Clone, Debug)]
pub struct Preemptive {
    rule: Rule,
    base: Heuristic,
    snapshot: Snapshot,
}

impl Preemptive {
    /// `preempt:BASE`.
    pub fn preempt(base: Heuristic) -> Self {
        Self::new(Rule::Preempt, base)
    }

    /// `defrag:BASE`.
    pub fn defrag(base: Heuristic) -> Self {
        Self::new(
            Rule::Defrag {
                making_room_for: None,
            },
            base,
        )
    }

    /// `evacuate:BASE:THRESHOLD`.
    pub fn evacuate(base: Heuristic, threshold: f64) -> Self {
        Self::new(Rule::Evacuate { threshold }, base)
    }

    fn new(rule: Rule, base: Heuristic) -> Self {
        Self {
            rule,
            base,
            snapshot: Snapshot::default(),
        }
    }

    /// The decision in `s` (see the module docs).
    pub fn choose(&mut self, s: &mut Snapshot) -> Decision {
        let base = &self.base;
        match &mut self.rule {
            Rule::Preempt => priority_preemption(base, s),
            Rule::Defrag { making_room_for } => defrag(base, making_room_for, s),
            Rule::Evacuate { threshold } => evacuate(base, *threshold, s),
        }
    }
}

impl Scheduler for Preemptive {
    fn name(&self) -> String {
        let base = self.base.name();
        match self.rule {
            Rule::Preempt => format!("preempt:{base}"),
            Rule::Defrag { .. } => format!("defrag:{base}"),
            Rule::Evacuate { threshold } => format!("evacuate:{base}:{threshold}"),
        }
    }

    fn reset(&mut self, _seed: u64) {
        if let Rule::Defrag { making_room_for } = &mut self.rule {
            *making_room_for = None;
        }
    }

    fn act(&mut self, env: &ScenarioEnv, obs: &[f32], mask: &[bool]) -> usize {
        let decision = self.decide(env, obs, mask);
        action_of(&self.snapshot, decision, |s| self.base.action_in(s))
    }

    fn decide(&mut self, env: &ScenarioEnv, _obs: &[f32], _mask: &[bool]) -> Decision {
        let mut snapshot = std::mem::take(&mut self.snapshot);
        snapshot.fill(env);
        let decision = self.choose(&mut snapshot);
        self.snapshot = snapshot;
        decision
    }
}

/// Strict priority classes: a blocked higher-class task preempts, else BASE over the highest
/// class that can start.
fn priority_preemption(base: &Heuristic, s: &mut Snapshot) -> Decision {
    if !s.can_preempt {
        return Decision::Action(base.action_in(s));
    }
    let placeable = |s: &Snapshot, t: usize| s.placements.iter().any(|p| p.task == t);
    let top_placeable = (0..s.tasks.len())
        .filter(|&t| placeable(s, t))
        .map(|t| s.tasks[t].priority)
        .max();
    let mut blocked: Vec<usize> = (0..s.tasks.len())
        .filter(|&t| !placeable(s, t) && top_placeable.is_none_or(|p| s.tasks[t].priority > p))
        .collect();
    blocked.sort_by(|&a, &b| {
        s.tasks[b]
            .priority
            .cmp(&s.tasks[a].priority)
            .then(s.arrival_order(a, b))
    });
    if let Some(victim) = blocked.iter().find_map(|&t| victim_for(s, t)) {
        return Decision::Preempt(s.running[victim].index);
    }
    if let Some(top) = top_placeable {
        let tasks = &s.tasks;
        s.placements.retain(|p| tasks[p.task].priority == top);
    }
    Decision::Action(base.action_in(s))
}

/// The first running task to preempt so that visible task `t` fits: on the server where the
/// fewest lower-class tasks make room (then the least work at risk, then the lowest
/// server), the lowest class, then the least work at risk, then the latest start.
fn victim_for(s: &Snapshot, t: usize) -> Option<usize> {
    let task = &s.tasks[t];
    let nr = s.num_resources;
    let mut best: Option<(usize, f64, usize, usize)> = None;
    for (n, server) in s.servers.iter().enumerate() {
        let mut lower: Vec<usize> = (0..s.running.len())
            .filter(|&j| {
                let r = &s.running[j];
                r.server == n && r.priority < task.priority && r.can_stop
            })
            .collect();
        lower.sort_by(|&a, &b| {
            let (ra, rb) = (&s.running[a], &s.running[b]);
            ra.priority
                .cmp(&rb.priority)
                .then(ra.at_risk_s.total_cmp(&rb.at_risk_s))
                .then(rb.started_s.total_cmp(&ra.started_s))
                .then(ra.index.cmp(&rb.index))
        });
        let mut free = server.free;
        let mut at_risk = 0.0;
        for (count, &j) in lower.iter().enumerate() {
            add(&mut free, &s.running[j].demand, nr);
            at_risk += s.running[j].at_risk_s;
            if fits(&task.demand, &free, nr) {
                let key = (count + 1, at_risk, n, lower[0]);
                if best.is_none_or(|b| (key.0, key.1, key.2) < (b.0, b.1, b.2)) {
                    best = Some(key);
                }
                break;
            }
        }
    }
    best.map(|(_, _, _, victim)| victim)
}

fn add(free: &mut [u32; MAX_RESOURCES], demand: &[u32; MAX_RESOURCES], nr: usize) {
    for r in 0..nr {
        free[r] += demand[r];
    }
}

/// The oldest visible task first where a migration made room for it; else a room-making
/// move when it fits nowhere; else BASE.
fn defrag(base: &Heuristic, making_room_for: &mut Option<u64>, s: &mut Snapshot) -> Decision {
    if let Some(id) = making_room_for.take() {
        let tasks = &s.tasks;
        if s.placements.iter().any(|p| tasks[p.task].task_id == id) {
            s.placements.retain(|p| tasks[p.task].task_id == id);
            return Decision::Action(base.action_in(s));
        }
    }
    if !s.can_migrate {
        return Decision::Action(base.action_in(s));
    }
    let head = s.oldest_task();
    if let Some(t) = head.filter(|&t| !s.placements.iter().any(|p| p.task == t))
        && let Some(m) = room_making_move(s, t)
    {
        *making_room_for = Some(s.tasks[t].task_id);
        let r = &s.running[m.running];
        return Decision::Migrate {
            task: r.index,
            server: m.server as u32,
        };
    }
    Decision::Action(base.action_in(s))
}

/// The move after which visible task `t` fits on the server the moved task leaves: the
/// smallest task (sum of demand shares of its server), to the server it fits tightest.
fn room_making_move(s: &Snapshot, t: usize) -> Option<Move> {
    let nr = s.num_resources;
    let mut best: Option<(f64, f64, Move)> = None;
    for m in &s.moves {
        let r = &s.running[m.running];
        let from = &s.servers[r.server];
        let mut free = from.free;
        add(&mut free, &r.demand, nr);
        if !fits(&s.tasks[t].demand, &free, nr) {
            continue;
        }
        let key = (
            share(&r.demand, &from.capacity, nr),
            s.leftover_after(m.server, &r.demand),
        );
        if best.is_none_or(|(a, b, _)| key.0 < a || (key.0 == a && key.1 < b)) {
            best = Some((key.0, key.1, *m));
        }
    }
    best.map(|(_, _, m)| m)
}

/// Σ over resources of demand / capacity (resources the server has).
fn share(demand: &[u32; MAX_RESOURCES], capacity: &[u32; MAX_RESOURCES], nr: usize) -> f64 {
    (0..nr)
        .filter(|&r| capacity[r] > 0)
        .map(|r| f64::from(demand[r]) / f64::from(capacity[r]))
        .sum()
}

/// A move off a risky server, else `safe`'s placement.
fn evacuate(base: &Heuristic, threshold: f64, s: &mut Snapshot) -> Decision {
    let risky = |s: &Snapshot, n: usize| s.servers[n].health >= threshold;
    let mut best: Option<(f64, u32, f64, Move)> = None;
    for m in &s.moves {
        let r = &s.running[m.running];
        // A task estimated to end within the pause gains nothing from the move.
        let ends_soon = r.estimated_finish_s - s.now_s <= m.pause_s;
        if !risky(s, r.server) || risky(s, m.server) || ends_soon {
            continue;
        }
        // The most work done first (the earliest start), then the tightest destination.
        let key = (r.started_s, r.index, s.leftover_after(m.server, &r.demand));
        if best.is_none_or(|(a, b, c, _)| (key.0, key.1, key.2) < (a, b, c)) {
            best = Some((key.0, key.1, key.2, *m));
        }
    }
    if let Some((_, task, _, m)) = best {
        return Decision::Migrate {
            task,
            server: m.server as u32,
        };
    }
    keep_off_risky(s, threshold);
    Decision::Action(base.action_in(s))
}

/// The action of `decision` in `s` (the task's running-row action), else `fallback`.
fn action_of(s: &Snapshot, decision: Decision, fallback: impl Fn(&Snapshot) -> usize) -> usize {
    let row_action = match decision {
        Decision::Action(a) => return a,
        Decision::Preempt(i) => s
            .running
            .iter()
            .find(|r| r.index == i)
            .and_then(|r| r.preempt_action),
        Decision::Migrate { task, server } => s
            .moves
            .iter()
            .find(|m| s.running[m.running].index == task && m.server == server as usize)
            .and_then(|m| m.action),
        Decision::Task(_) => None,
    };
    row_action.unwrap_or_else(|| fallback(s))
}

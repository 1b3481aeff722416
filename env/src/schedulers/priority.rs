//! The batch-scheduling family: a priority function over the **whole queue** (visible slots
//! and backlog, as a real batch scheduler sees it) × a [`Discipline`] (greedy, strict, EASY
//! or conservative backfilling), named `PRIORITY+DISCIPLINE`: `sjf+easy`, `f1+strict`, ….
//!
//! Each decision chooses the queued task with the best priority (the lowest key; ties go to
//! the earlier arrival): under `greedy` among the tasks that fit now, under a commit
//! discipline among all of them, and the env's discipline does the rest (waiting, EASY or
//! conservative backfilling, all on estimates). This is RLScheduler's evaluation protocol
//! (Zhang et al., SC'20: every priority function "without backfilling" = strict and "with
//! backfilling" = EASY). The discipline is the scheduler's: evaluation switches the env to it
//! for this scheduler's episodes, so `sjf+easy` and `f1+strict` run side by side on the same
//! scenario and seeds.

use super::snapshot::WaitingTask;
use super::{Decision, Scheduler};
use crate::cluster::Discipline;
use crate::scenario::ScenarioEnv;

/// A batch scheduler's priority function; the task with the lowest key goes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// Arrival time.
    Fcfs,
    /// Runtime estimate (shortest job first).
    Sjf,
    /// WFP3 (Tang et al., "Fault-aware, utility-based job scheduling on Blue Gene/P
    /// systems", CLUSTER 2009): favours the largest (wait / estimate)³ · size.
    Wfp3,
    /// UNICEP (Tang et al., 2009): favours the largest wait / (log2(size) · estimate).
    Unicep,
    /// F1 (Carastan-Santos & de Camargo, "Obtaining dynamic scheduling policies with
    /// simulation and machine learning", SC'17): log10(estimate) · size + 870 · log10(arrival).
    F1,
}

impl Priority {
    /// Every priority function with its name.
    pub const ALL: [(Priority, &'static str); 5] = [
        (Priority::Fcfs, "fcfs"),
        (Priority::Sjf, "sjf"),
        (Priority::Wfp3, "wfp3"),
        (Priority::Unicep, "unicep"),
        (Priority::F1, "f1"),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(p, _)| *p == self)
            .map_or("fcfs", |(_, n)| n)
    }

    /// The key of a task that arrived at `arrival_s` with runtime estimate `estimate_s` and
    /// size (processors: its demand of the first resource, at least 1) `size`, at time
    /// `now_s`; lower goes first.
    ///
    /// WFP3 and UNICEP use the published formulas with the task's real wait (now − arrival).
    /// RLScheduler's code computes that wait from a start-time field that is still unset
    /// (−1) for a queued job, so its published WFP3 and UNICEP columns rank by
    /// −(1 + arrival) instead and are not comparable with these. UNICEP keeps RLScheduler's
    /// 1e-15 guards (log2(1) = 0). F1 replaces a non-positive estimate or arrival by 0.1, as
    /// RLScheduler does, and needs absolute trace times (`workload.times = "absolute"`) to
    /// rank as published.
    pub fn key(self, arrival_s: f64, estimate_s: f64, size: f64, now_s: f64) -> f64 {
        let wait_s = now_s - arrival_s;
        match self {
            Priority::Fcfs => arrival_s,
            Priority::Sjf => estimate_s,
            Priority::Wfp3 => -(wait_s / estimate_s).powi(3) * size,
            Priority::Unicep => -(wait_s + 1e-15) / ((size + 1e-15).log2() * estimate_s),
            Priority::F1 => {
                let positive = |x: f64| if x > 0.0 { x } else { 0.1 };
                positive(estimate_s).log10() * size + 870.0 * positive(arrival_s).log10()
            }
        }
    }

    fn task_key(self, task: &WaitingTask, now_s: f64) -> f64 {
        self.key(task.arrival_s, task.estimate_s, task.size(), now_s)
    }

    /// The best of `tasks` (lowest key, then earliest arrival, then lowest index; NaN keys
    /// last).
    pub fn best<'a>(
        self,
        tasks: impl Iterator<Item = &'a WaitingTask>,
        now_s: f64,
    ) -> Option<&'a WaitingTask> {
        tasks.min_by(|a, b| self.compare(a, b, now_s))
    }

    /// The order of [`best`](Self::best): `Less` when `a` goes before `b`.
    fn compare(self, a: &WaitingTask, b: &WaitingTask, now_s: f64) -> std::cmp::Ordering {
        let order = |t: &WaitingTask| {
            let k = self.task_key(t, now_s);
            (
                k.is_nan(),
                if k.is_nan() { 0.0 } else { k },
                t.arrival_s,
                t.index,
            )
        };
        let (ka, kb) = (order(a), order(b));
        ka.0.cmp(&kb.0)
            .then(ka.1.total_cmp(&kb.1))
            .then(ka.2.total_cmp(&kb.2))
            .then(ka.3.cmp(&kb.3))
    }
}

/// `PRIORITY+DISCIPLINE` (see the module docs).
#[derive(Clone, Debug)]
pub struct PriorityScheduler {
    priority: Priority,
    discipline: Discipline,
    queue: Vec<WaitingTask>,
}

impl PriorityScheduler {
    pub fn new(priority: Priority, discipline: Discipline) -> Self {
        Self {
            priority,
            discipline,
            queue: Vec::new(),
        }
    }

    /// The queued tasks this scheduler may choose now (those that fit, or every one under a
    /// commit discipline), best first, at most `limit`: a lookahead's alternatives to its
    /// choice.
    pub fn ranked(&mut self, env: &ScenarioEnv, limit: usize) -> Vec<u32> {
        let now_s = WaitingTask::fill_queue(&mut self.queue, env);
        let commits = self.discipline.commits();
        let mut tasks: Vec<&WaitingTask> = self
            .queue
            .iter()
            .filter(|t| commits || t.fits_now)
            .collect();
        tasks.sort_by(|a, b| self.priority.compare(a, b, now_s));
        tasks.iter().take(limit).map(|t| t.index).collect()
    }

    /// The task to choose among `queue` at `now_s`: the best one that may be chosen.
    fn choose<'a>(
        &self,
        queue: impl Iterator<Item = &'a WaitingTask>,
        now_s: f64,
    ) -> Option<&'a WaitingTask> {
        let commits = self.discipline.commits();
        self.priority
            .best(queue.filter(|t| commits || t.fits_now), now_s)
    }
}

impl Scheduler for PriorityScheduler {
    fn name(&self) -> String {
        format!("{}+{}", self.priority.name(), self.discipline.name())
    }

    fn reset(&mut self, _seed: u64) {}

    /// Restricted to the visible slots (what a policy could be taught to pick): the best
    /// visible task, or wait. Episodes use [`decide`](Scheduler::decide), which reads the
    /// whole queue.
    fn act(&mut self, env: &ScenarioEnv, _obs: &[f32], mask: &[bool]) -> usize {
        let now_s = WaitingTask::fill_queue(&mut self.queue, env);
        let wait = mask.len() - 1;
        let legal = |a: usize| mask.get(a).copied().unwrap_or(false);
        let visible = self.queue.iter().filter(|t| t.action.is_some_and(legal));
        let chosen = self.choose(visible.clone(), now_s).and_then(|t| t.action);
        match chosen {
            Some(action) => action,
            // Nothing this scheduler would start now, and the env forbids waiting (a commit
            // discipline): name the visible task it ranks first.
            None if !mask[wait] => self
                .priority
                .best(visible, now_s)
                .and_then(|t| t.action)
                .unwrap_or(wait),
            None => wait,
        }
    }

    fn decide(&mut self, env: &ScenarioEnv, obs: &[f32], mask: &[bool]) -> Decision {
        if !matches!(env, ScenarioEnv::Cluster(_)) {
            return Decision::Action(self.act(env, obs, mask));
        }
        let now_s = WaitingTask::fill_queue(&mut self.queue, env);
        match self.choose(self.queue.iter(), now_s) {
            Some(task) => Decision::Task(task.index),
            None => Decision::Action(mask.len() - 1),
        }
    }

    fn discipline(&self) -> Option<Discipline> {
        Some(self.discipline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_published_formulas() {
        // now = 100; a task that arrived at 0 (wait 100) with estimate 50 on 2 processors.
        let key = |p: Priority| p.key(0.0, 50.0, 2.0, 100.0);
        assert_eq!(key(Priority::Fcfs), 0.0);
        assert_eq!(key(Priority::Sjf), 50.0);
        // −(100/50)³ · 2 = −16.
        assert_eq!(key(Priority::Wfp3), -16.0);
        // −100/(log2(2) · 50) = −2.
        assert!((key(Priority::Unicep) + 2.0).abs() < 1e-12);
        // log10(50) · 2 + 870 · log10(0.1) = 3.39794 − 870.
        assert!((key(Priority::F1) - (2.0 * 50f64.log10() - 870.0)).abs() < 1e-12);
    }
}

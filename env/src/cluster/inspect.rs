//! Introspection for the env checker, tests and reports; never for a scheduler's decisions.

use super::ClusterEnv;
use super::state::TaskPhase;
use super::stats;
use super::views::Census;
use crate::workload::MAX_RESOURCES;

impl ClusterEnv {
    /// Head counts of arrived tasks.
    pub fn census(&self) -> Census {
        self.census
    }

    /// Task runs killed by server failures so far this episode.
    pub fn num_killed(&self) -> usize {
        self.num_killed
    }

    /// Runs stopped by preemption, and migrations, this episode.
    pub fn num_preempted_migrated(&self) -> (usize, usize) {
        (self.num_preempted, self.num_migrated)
    }

    /// Recounts task phases and resource use from scratch and compares them with the
    /// running totals: conservation, no server over capacity or negative.
    pub fn check_invariants(&self) -> Result<(), String> {
        let recount = Census::recount(&self.records);
        if recount != self.census {
            return Err(format!("census {:?} != recount {recount:?}", self.census));
        }
        if self.queue.len() != self.census.num_queued
            || self.running.len() != self.census.num_running
        {
            return Err("queue or running list disagrees with the census".into());
        }
        let mut used = [0u64; MAX_RESOURCES];
        for &i in &self.running {
            if self.records[i as usize].phase != TaskPhase::Running {
                return Err(format!("task {i} is in the running list but not running"));
            }
            for (u, &d) in used.iter_mut().zip(&self.tasks[i as usize].demand) {
                *u += u64::from(d);
            }
        }
        let mut free_total = [0u64; MAX_RESOURCES];
        for (n, s) in self.servers.iter().enumerate() {
            let resources = s.free.iter().zip(&s.capacity).zip(&mut free_total);
            for (r, ((&free, &capacity), total)) in resources.enumerate().take(self.num_resources) {
                if free > capacity {
                    return Err(format!(
                        "server {n} resource {r}: free {free} > capacity {capacity}"
                    ));
                }
                *total += u64::from(free);
            }
        }
        if let Some(g) = &self.config.gpu {
            for (n, s) in self.servers.iter().enumerate() {
                let gpus = &s.gpu_free[..usize::from(s.num_gpus)];
                let sum: u32 = gpus.iter().map(|&x| u32::from(x)).sum();
                if s.num_gpus > 0 && sum != s.free[g.resource] {
                    return Err(format!(
                        "server {n}: GPU free units {gpus:?} do not add up to {}",
                        s.free[g.resource]
                    ));
                }
                if gpus.iter().any(|&x| u32::from(x) > g.units_per_gpu) {
                    return Err(format!("server {n}: a GPU has more than a whole GPU free"));
                }
            }
        }
        for &i in &self.running {
            let rec = &self.records[i as usize];
            if !self.servers[rec.server as usize].up {
                return Err(format!("task {i} runs on failed server {}", rec.server));
            }
        }
        for r in 0..self.num_resources {
            let capacity = self.capacity_total[r] as u64;
            if free_total[r] + used[r] != capacity || used[r] != self.used[r] {
                return Err(format!(
                    "resource {r}: free {} + used {} != capacity {capacity}",
                    free_total[r], used[r]
                ));
            }
        }
        Ok(())
    }

    /// Slowdown (finish − arrival) / work of every task that has finished this episode, in
    /// arrival order. It uses true durations, so it is for reports (slowdown CDFs), never for
    /// a scheduler's decisions.
    pub fn finished_slowdowns(&self) -> impl Iterator<Item = f64> + '_ {
        stats::finished_slowdowns(&self.tasks, &self.records)
    }
}

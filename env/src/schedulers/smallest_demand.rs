//! [`SmallestDemand`]: smallest demand first, the README's worked example of a heuristic
//! added through the registry ("Add your own heuristic"): a [`Scheduler`] that reads the env
//! through a [`Snapshot`], plus one entry in `registry.rs`.

use super::{Scheduler, Snapshot};
use crate::scenario::ScenarioEnv;
use crate::workload::MAX_RESOURCES;

/// Smallest demand first: among the placements feasible now, the task that asks for the
/// least — Σ over resources of demand / the largest capacity of that resource on any server,
/// so that cores and GiB weigh alike — on the first server where it fits; equal sizes go to
/// the task that arrived first. It waits only when nothing fits, so a hold limit never
/// forbids its wait. Registry name `smallest_demand`.
#[derive(Clone, Debug, Default)]
pub struct SmallestDemand {
    /// Reused at every decision, so that deciding allocates nothing after warm-up.
    snapshot: Snapshot,
}

impl SmallestDemand {
    /// The action for `snapshot` (a pure function, so tests can build snapshots by hand).
    pub fn decide(snapshot: &Snapshot) -> usize {
        let nr = snapshot.num_resources;
        let mut largest = [0u32; MAX_RESOURCES];
        for server in &snapshot.servers {
            for (most, &cap) in largest.iter_mut().zip(&server.capacity[..nr]) {
                *most = (*most).max(cap);
            }
        }
        let size = |task: usize| -> f64 {
            (0..nr)
                .filter(|&r| largest[r] > 0)
                .map(|r| f64::from(snapshot.tasks[task].demand[r]) / f64::from(largest[r]))
                .sum()
        };
        // `min_by` keeps the first of equal placements: the lowest slot, then server.
        snapshot
            .placements
            .iter()
            .min_by(|a, b| {
                size(a.task)
                    .total_cmp(&size(b.task))
                    .then_with(|| snapshot.arrival_order(a.task, b.task))
            })
            .map_or(snapshot.wait_action, |p| p.action)
    }
}

impl Scheduler for SmallestDemand {
    fn name(&self) -> String {
        "smallest_demand".into()
    }

    fn reset(&mut self, _seed: u64) {}

    fn act(&mut self, env: &ScenarioEnv, _obs: &[f32], _mask: &[bool]) -> usize {
        self.snapshot.fill(env);
        Self::decide(&self.snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedulers::{QueuedTask, ServerInfo};

    fn task(slot: usize, arrival_s: f64, demand: [u32; 2]) -> QueuedTask {
        let mut padded = [0; MAX_RESOURCES];
        padded[..2].copy_from_slice(&demand);
        QueuedTask {
            slot,
            task_id: slot as u64,
            arrival_s,
            demand: padded,
            estimate_s: 10.0,
            priority: 0,
            deadline_s: None,
        }
    }

    fn server(capacity: [u32; 2], free: [u32; 2]) -> ServerInfo {
        let mut info = ServerInfo {
            capacity: [0; MAX_RESOURCES],
            free: [0; MAX_RESOURCES],
            speed: 1.0,
            health: 0.0,
        };
        info.capacity[..2].copy_from_slice(&capacity);
        info.free[..2].copy_from_slice(&free);
        info
    }

    /// Largest capacities (8 cores, 32 GiB). Sizes: slot 0 = 4/8 + 4/32 = 0.625, slot 1 =
    /// 1/8 + 16/32 = 0.625 (equal, but it arrived earlier), slot 2 = 2/8 + 8/32 = 0.5 but fits
    /// nowhere, slot 3 = 1/8 + 12/32 = 0.5 fits only on server 1. Actions are slot × 2 +
    /// server, wait = 8.
    #[test]
    fn takes_the_smallest_task_that_fits_on_its_first_server() {
        let servers = vec![server([8, 16], [4, 10]), server([4, 32], [4, 16])];
        let tasks = vec![
            task(0, 5.0, [4, 4]),
            task(1, 3.0, [1, 16]),
            task(2, 0.0, [5, 8]),
            task(3, 9.0, [1, 12]),
        ];
        let s = Snapshot::by_hand(10.0, 2, 4, tasks.clone(), servers.clone(), vec![]);
        assert_eq!(SmallestDemand::decide(&s), 3 * 2 + 1);
        // Without slot 3, the tie of slots 0 and 1 goes to slot 1 (arrived at 3 s, before 5 s),
        // whose 16 GiB fit only on server 1.
        let s = Snapshot::by_hand(10.0, 2, 4, tasks[..3].to_vec(), servers, vec![]);
        assert_eq!(SmallestDemand::decide(&s), 2 + 1);
        let full = vec![server([8, 16], [0, 0])];
        let s = Snapshot::by_hand(10.0, 2, 4, tasks, full, vec![]);
        assert_eq!(SmallestDemand::decide(&s), 4);
    }
}

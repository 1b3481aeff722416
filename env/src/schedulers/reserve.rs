//! `reserve[:BASE[:RESOURCE:LONG:FREE]]`: BASE keeping the last share of a scarce resource
//! for short tasks ([`Filter::Reserve`](super::Filter::Reserve); registry default
//! `reserve:sjf:last:30:0.05`).
//!
//! Hawk (Delgado et al., "Hawk: Hybrid Datacenter Scheduling", USENIX ATC'15) reserves a small
//! part of a cluster for short jobs so that they never queue behind long ones; DeepRM's
//! learned policy found the same move on its own (Mao et al., HotNets'16: it holds large
//! jobs back so that small ones can go). Here the reservation is a share of one resource
//! rather than a set of servers: a task estimated to run longer than `long_s` that demands the
//! resource may not start when it would leave less than `min_free` of the cluster's capacity
//! of it free. The base heuristic chooses among the other placements; when every placement is
//! held back the scheduler waits, where the env allows waiting (a hold limit that forbids it
//! makes the base choose among all of them, so `reserve` never breaks a hold limit).
//!
//! On `cloud-inference` (GPU inference tasks of seconds behind 4- and 8-GPU training tasks of
//! minutes) it is the strongest heuristic; `examples/holding.rs` sweeps its two thresholds.

use super::Snapshot;

/// Removes the placements of tasks estimated to run longer than `long_s` that would leave
/// less than the share `min_free` of the cluster's capacity of `resource` free. A resource
/// the scenario does not have (no capacity) reserves nothing.
pub fn hold_back_long(snapshot: &mut Snapshot, resource: usize, long_s: f64, min_free: f64) {
    let Snapshot {
        tasks,
        servers,
        placements,
        ..
    } = snapshot;
    let units = |values: &[u32; crate::workload::MAX_RESOURCES]| {
        values.get(resource).map_or(0.0, |&v| f64::from(v))
    };
    let capacity: f64 = servers.iter().map(|s| units(&s.capacity)).sum();
    if capacity <= 0.0 {
        return;
    }
    let free: f64 = servers.iter().map(|s| units(&s.free)).sum();
    placements.retain(|p| {
        let task = &tasks[p.task];
        let demand = units(&task.demand);
        task.estimate_s <= long_s || demand == 0.0 || (free - demand) / capacity >= min_free
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedulers::snapshot::padded as units;
    use crate::schedulers::{Heuristic, Placement, QueuedTask, Rule, ServerInfo};

    /// Two servers of 4 GPUs (8 in all, 3 free) and three tasks: a 60 s task on 2 GPUs, a
    /// 5 s task on 1 GPU, a 100 s CPU-only task.
    fn snapshot() -> Snapshot {
        let task = |slot, estimate_s, demand: &[u32]| QueuedTask {
            slot,
            task_id: slot as u64,
            arrival_s: slot as f64,
            demand: units(demand),
            estimate_s,
            priority: 0,
            deadline_s: None,
        };
        let server = |free_gpus| ServerInfo {
            capacity: units(&[8, 64, 4]),
            free: units(&[8, 64, free_gpus]),
            speed: 1.0,
            health: 0.0,
        };
        Snapshot {
            num_resources: 3,
            tasks: vec![
                task(0, 60.0, &[1, 1, 2]),
                task(1, 5.0, &[1, 1, 1]),
                task(2, 100.0, &[1, 1, 0]),
            ],
            servers: vec![server(1), server(2)],
            placements: (0..3)
                .map(|t| Placement {
                    task: t,
                    server: 1,
                    action: t,
                })
                .collect(),
            wait_action: 3,
            wait_allowed: true,
            ..Snapshot::default()
        }
    }

    fn kept(resource: usize, long_s: f64, min_free: f64) -> Vec<usize> {
        let mut s = snapshot();
        hold_back_long(&mut s, resource, long_s, min_free);
        s.placements.iter().map(|p| p.task).collect()
    }

    #[test]
    fn only_long_tasks_that_dig_into_the_reserve_are_held_back() {
        // The 60 s task would leave 1 of 8 GPUs free: 0.125 ≥ 0.1 keeps it, < 0.2 holds it.
        assert_eq!(kept(2, 30.0, 0.1), [0, 1, 2]);
        assert_eq!(kept(2, 30.0, 0.2), [1, 2]);
        // Not long enough to be held.
        assert_eq!(kept(2, 60.0, 0.2), [0, 1, 2]);
        // The short task is never held, even when it leaves 2/8 < 0.5 free; the CPU-only task
        // demands no GPU.
        assert_eq!(kept(2, 1.0, 0.5), [2]);
        // A resource the scenario does not have reserves nothing.
        assert_eq!(kept(5, 1.0, 0.5), [0, 1, 2]);
    }

    #[test]
    fn it_waits_when_every_placement_is_held_back_and_the_env_allows_it() {
        let mut s = snapshot();
        s.placements.truncate(1);
        let sjf = Heuristic::new("sjf", Rule::Sjf);
        hold_back_long(&mut s, 2, 30.0, 0.2);
        assert_eq!(sjf.action_in(&s), 3);
        // SJF among what is left: the 5 s task.
        let mut s = snapshot();
        hold_back_long(&mut s, 2, 1.0, 0.2);
        assert_eq!(sjf.action_in(&s), 1);
    }
}

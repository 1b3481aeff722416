//! `fastest[:BASE]`: BASE starting each task on the fastest servers it fits on now
//! ([`Filter::Fastest`](super::Filter::Fastest); registry default `fastest:sjf`).
//!
//! Servers of one cluster can differ in speed (a server type's `speed`: a task's work runs
//! that many times faster there). The rules choose a server by fit alone, so on a cluster of
//! old and new GPUs they fill slow servers while fast ones stand free. `fastest` removes each
//! task's placements on servers slower than the fastest server that task fits on now, then
//! lets the base choose among the rest. It never waits for a busy fast server, so it waits
//! no more than its base; on a cluster of one speed it plays exactly its base. In slot mode
//! the env picks the server, so there is nothing to remove.

use super::Snapshot;

/// Removes every placement on a server slower than the fastest server its task fits on now.
pub fn keep_on_fastest(snapshot: &mut Snapshot) {
    let Snapshot {
        tasks,
        servers,
        placements,
        ..
    } = snapshot;
    let mut fastest = vec![0.0_f64; tasks.len()];
    for p in placements.iter() {
        fastest[p.task] = fastest[p.task].max(servers[p.server].speed);
    }
    placements.retain(|p| servers[p.server].speed >= fastest[p.task]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedulers::snapshot::padded as units;
    use crate::schedulers::{Heuristic, Placement, QueuedTask, Rule, ServerInfo};

    /// Three servers of 8 GPUs: an old one with 4 free, a new one (speed 3) with 1 free, an
    /// old one with 8 free. Task 0 (60 s estimate, 1 GPU) fits all three; task 1 (10 s, 2
    /// GPUs) fits only the two old ones.
    fn snapshot() -> Snapshot {
        let task = |slot, estimate_s, gpus| QueuedTask {
            slot,
            task_id: slot as u64,
            arrival_s: 0.0,
            demand: units(&[1, 1, gpus]),
            estimate_s,
            priority: 0,
            deadline_s: None,
        };
        let server = |free_gpus, speed| ServerInfo {
            capacity: units(&[32, 256, 8]),
            free: units(&[32, 256, free_gpus]),
            speed,
            health: 0.0,
        };
        let placements = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2)]
            .iter()
            .enumerate()
            .map(|(action, &(task, server))| Placement {
                task,
                server,
                action,
            })
            .collect();
        Snapshot {
            num_resources: 3,
            tasks: vec![task(0, 60.0, 1), task(1, 10.0, 2)],
            servers: vec![server(4, 1.0), server(1, 3.0), server(8, 1.0)],
            placements,
            wait_action: 5,
            wait_allowed: true,
            ..Snapshot::default()
        }
    }

    #[test]
    fn each_task_keeps_only_its_fastest_servers_by_hand() {
        let mut s = snapshot();
        keep_on_fastest(&mut s);
        // Task 0 keeps only the new server; task 1 fits no fast server, so keeps both old ones.
        let kept: Vec<(usize, usize)> = s.placements.iter().map(|p| (p.task, p.server)).collect();
        assert_eq!(kept, vec![(0, 1), (1, 0), (1, 2)]);
    }

    #[test]
    fn the_base_chooses_among_the_fast_placements_by_hand() {
        // FCFS takes the oldest task (task 0, by slot on equal arrivals) to the first server
        // it fits on: server 0 (old) unfiltered, server 1 (new) filtered.
        let fcfs = Heuristic::new("fcfs", Rule::Fcfs);
        assert_eq!(fcfs.action_in(&snapshot()), 0);
        let mut s = snapshot();
        keep_on_fastest(&mut s);
        assert_eq!(fcfs.action_in(&s), 1);
        // SJF picks task 1 (10 s) on its first server either way: no fast server fits it.
        let sjf = Heuristic::new("sjf", Rule::Sjf);
        assert_eq!(sjf.action_in(&snapshot()), 3);
        assert_eq!(sjf.action_in(&s), 3);
    }

    #[test]
    fn one_speed_removes_nothing() {
        let mut s = snapshot();
        s.servers[1].speed = 1.0;
        let before = s.clone();
        keep_on_fastest(&mut s);
        assert_eq!(s, before);
    }
}

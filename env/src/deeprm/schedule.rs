//! The schedule of a DeepRM episode, for Gantt charts, in the cluster recorder's types.
//!
//! DeepRM needs no recorder: a job runs at most once (no failures, no preemption), and the
//! env keeps every job's arrival, start and finish for the whole episode anyway, so the
//! schedule is read off that state on demand and stepping pays nothing for it.

use super::DeepRmEnv;
use crate::cluster::state::TaskPhase;
use crate::cluster::{RunEnd, Schedule, TaskRun};

impl DeepRmEnv {
    /// The episode so far, times in steps: finished jobs in the order they finished, then
    /// jobs running now (cut at the clock) by start, then jobs still waiting (queued, or
    /// reserved to start later) by arrival. Dropped jobs never ran and are left out.
    pub fn schedule(&self) -> Schedule {
        let now = f64::from(self.now);
        let mut runs: Vec<TaskRun> = Vec::new();
        for (task, (spec, rec)) in self.tasks.iter().zip(&self.records).enumerate() {
            let (start_s, end_s, end) = match rec.phase {
                TaskPhase::Finished => (rec.start_s, rec.finish_s, RunEnd::Finished),
                TaskPhase::Running if rec.start_s < now => (rec.start_s, now, RunEnd::Unfinished),
                TaskPhase::Running | TaskPhase::Queued => (now, now, RunEnd::NotStarted),
                TaskPhase::NotArrived | TaskPhase::Dropped => continue,
            };
            runs.push(TaskRun {
                task,
                task_id: spec.id,
                priority: spec.priority,
                server: 0,
                gpus: 0,
                demand: spec.demand,
                queued_s: spec.arrival_s,
                start_s,
                end_s,
                end,
            });
        }
        let class = |end: RunEnd| match end {
            RunEnd::Finished | RunEnd::Killed | RunEnd::Preempted | RunEnd::Migrated => 0,
            RunEnd::Unfinished => 1,
            RunEnd::NotStarted => 2,
        };
        // Stable, so jobs that tie keep arrival order.
        runs.sort_by(|a, b| {
            let key = |r: &TaskRun| match r.end {
                RunEnd::Finished | RunEnd::Killed | RunEnd::Preempted | RunEnd::Migrated => r.end_s,
                RunEnd::Unfinished => r.start_s,
                RunEnd::NotStarted => 0.0,
            };
            class(a.end)
                .cmp(&class(b.end))
                .then(key(a).total_cmp(&key(b)))
        });
        Schedule {
            num_servers: 1,
            gpus_per_server: Vec::new(),
            now_s: now,
            runs,
            downs: Vec::new(),
            machine_units: self
                .config
                .resources
                .iter()
                .zip(self.capacity())
                .map(|(name, &units)| (name.clone(), units))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Env;
    use crate::deeprm::DeepRmConfig;
    use crate::workload::{MAX_RESOURCES, TaskSpec};

    fn run(task: usize, units: u32, times: [f64; 3], end: RunEnd) -> TaskRun {
        let mut demand = [0; MAX_RESOURCES];
        demand[0] = units;
        TaskRun {
            task,
            task_id: task as u64,
            priority: 0,
            server: 0,
            gpus: 0,
            demand,
            queued_s: times[0],
            start_s: times[1],
            end_s: times[2],
            end,
        }
    }

    /// One resource of 2 units. A (2 units, 3 steps) and B (1 unit, 2 steps) arrive at 1, C
    /// (1 unit, 1 step) at 2. A starts at 1 and holds the machine until 4; B is reserved at 4
    /// (earliest room), C then at 4 beside it.
    #[test]
    fn schedule_gives_each_jobs_arrival_start_and_finish_exactly() {
        let tasks = vec![
            TaskSpec::new(0, 1.0, 3.0, &[2]),
            TaskSpec::new(1, 1.0, 2.0, &[1]),
            TaskSpec::new(2, 2.0, 1.0, &[1]),
        ];
        let mut env = DeepRmEnv::new(DeepRmConfig {
            resources: vec!["cpu".into()],
            capacity: [2, 0, 0, 0, 0, 0, 0, 0],
            max_steps: 100,
            ..crate::deeprm::tests::config(tasks, 2, 2)
        });
        let mut obs = vec![0.0; env.obs_layout().dim()];
        let wait = env.wait_action();
        let mut step = |env: &mut DeepRmEnv, action| env.step(action, &mut obs).unwrap();
        step(&mut env, wait); // t=1: A in slot 0, B in slot 1
        step(&mut env, 0); // A at offset 0: 1..4
        step(&mut env, 1); // B at offset 3: 4..6
        step(&mut env, wait); // t=2: C in slot 0
        step(&mut env, 0); // C at offset 2: 4..5
        step(&mut env, wait); // t=3

        let mid = env.schedule();
        assert_eq!(mid.now_s, 3.0);
        assert_eq!(mid.machine_units, vec![("cpu".to_string(), 2)]);
        assert_eq!(
            mid.runs,
            vec![
                run(0, 2, [1.0, 1.0, 3.0], RunEnd::Unfinished),
                run(1, 1, [1.0, 3.0, 3.0], RunEnd::NotStarted),
                run(2, 1, [2.0, 3.0, 3.0], RunEnd::NotStarted),
            ]
        );

        for _ in 0..2 {
            step(&mut env, wait); // t=4, 5
        }
        assert!(step(&mut env, wait).terminated); // t=6: B, the last job, finishes
        assert_eq!(
            env.schedule().runs,
            vec![
                run(0, 2, [1.0, 1.0, 4.0], RunEnd::Finished),
                run(2, 1, [2.0, 4.0, 5.0], RunEnd::Finished),
                run(1, 1, [1.0, 4.0, 6.0], RunEnd::Finished),
            ]
        );
    }
}

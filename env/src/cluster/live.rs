//! A real cluster's present moment as an env state.
//!
//! A trained policy only knows how to read the observation of its scenario. To put it in front
//! of a real scheduler (`lepton-serve`), the jobs the scheduler reports, running and waiting,
//! are loaded into a [`ClusterEnv`] of that scenario in place of an episode's start; the
//! observation written then is exactly the one the scenario would give at such a moment, and a
//! step from it acts as from any other decision.

use super::ClusterEnv;
use super::state::{TaskIndex, TaskPhase};
use crate::workload::TaskSpec;

/// One moment of a real cluster, in the scenario's units: seconds on one clock, demand in the
/// scenario's resource units.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LiveState {
    /// The time now.
    pub now_s: f64,
    /// The jobs running now, each with the time it started.
    pub running: Vec<(TaskSpec, f64)>,
    /// The jobs waiting to start.
    pub waiting: Vec<TaskSpec>,
}

/// A live state the scenario cannot hold.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum LiveError {
    #[error("job {id}: {what} {time_s} s is not a finite time at or before now ({now_s} s)")]
    BadTime {
        id: u64,
        what: &'static str,
        time_s: f64,
        now_s: f64,
    },
    #[error("job {id}: its runtime estimate {estimate_s} s is not a positive finite number")]
    BadEstimate { id: u64, estimate_s: f64 },
    #[error(
        "running job {id} does not fit on the scenario's cluster next to the jobs that started before it: the scenario must describe the real cluster"
    )]
    DoesNotFit { id: u64 },
}

impl ClusterEnv {
    /// Puts the env in `state` instead of an episode's start and writes the observation a
    /// policy sees there.
    ///
    /// - Running jobs start in order of their start times, each on the server the scenario's
    ///   placement rule picks then. A real job's run time is unknown, so each is taken to end
    ///   at its estimate, or now if it has already outlived it.
    /// - Waiting jobs then arrive in arrival order (ties by id), now. The scenario's slot order
    ///   picks the visible ones, and a job that fits no server type is dropped, as in an
    ///   episode.
    /// - Nothing else is scheduled: no future arrival, server failure or monitoring tick.
    ///
    /// The clock stays at `state.now_s`. On an error the env holds no usable state until the
    /// next `reset` or `load_live`.
    pub fn load_live(&mut self, state: &LiveState, obs: &mut [f32]) -> Result<(), LiveError> {
        let now_s = state.now_s;
        let bad_time = |id, what, time_s| LiveError::BadTime {
            id,
            what,
            time_s,
            now_s,
        };
        if !now_s.is_finite() {
            return Err(bad_time(0, "now", now_s));
        }
        for spec in state
            .waiting
            .iter()
            .chain(state.running.iter().map(|(s, _)| s))
        {
            if !(spec.arrival_s.is_finite() && spec.arrival_s <= now_s) {
                return Err(bad_time(spec.id, "arrival", spec.arrival_s));
            }
            if !(spec.estimate_s.is_finite() && spec.estimate_s > 0.0) {
                return Err(LiveError::BadEstimate {
                    id: spec.id,
                    estimate_s: spec.estimate_s,
                });
            }
        }
        for (spec, start_s) in &state.running {
            if !(start_s.is_finite() && *start_s <= now_s) {
                return Err(bad_time(spec.id, "start", *start_s));
            }
        }

        let mut running: Vec<(TaskSpec, f64)> = state.running.clone();
        running.sort_by(|(a, sa), (b, sb)| sa.total_cmp(sb).then(a.id.cmp(&b.id)));
        let mut waiting = state.waiting.clone();
        waiting.sort_by(|a, b| a.arrival_s.total_cmp(&b.arrival_s).then(a.id.cmp(&b.id)));
        self.tasks.clear();
        self.tasks
            .extend(running.iter().map(|&(spec, start_s)| TaskSpec {
                duration_s: spec.estimate_s.max(now_s - start_s),
                ..spec
            }));
        self.tasks.extend(waiting);
        let first_s = running.first().map_or(now_s, |&(_, s)| s);
        self.clear_episode(first_s);

        for (i, &(spec, start_s)) in running.iter().enumerate() {
            let i = i as TaskIndex;
            self.now_s = start_s;
            self.arrive(i);
            let server = (self.records[i as usize].phase == TaskPhase::Queued)
                .then(|| self.rule_server(&self.need(i)))
                .flatten();
            let Some(n) = server else {
                return Err(LiveError::DoesNotFit { id: spec.id });
            };
            self.start_queued(i, n);
        }
        self.now_s = now_s;
        for i in running.len()..self.tasks.len() {
            self.arrive(i as TaskIndex);
        }
        self.next_arrival = self.tasks.len();
        self.update_episode_end();
        self.refresh_running_rows();
        self.write_observation(obs);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Env;
    use crate::scenario::{Scenario, ScenarioEnv};
    use std::path::Path;

    /// One server of 8 processors, 2 visible slots, strict order, the extended features.
    const SCENARIO: &str = r#"
        name = "live"
        resources = ["nodes"]
        [[server_types]]
        name = "machine"
        count = 1
        capacity = [8]
        [queue]
        num_slots = 2
        backlog_cap = 10
        [time]
        mode = "event"
        [actions]
        mode = "slot"
        illegal = "error"
        discipline = "strict"
        [observation]
        extended = true
        time_scale_s = 100.0
        [workload]
        kind = "list"
        tasks = [{ id = 1, arrival_s = 0, duration_s = 1, demand = [1] }]
    "#;

    fn env() -> ClusterEnv {
        let scenario = Scenario::from_toml_str(SCENARIO, Path::new("live.toml")).unwrap();
        match scenario.build() {
            ScenarioEnv::Cluster(env) => env,
            ScenarioEnv::DeepRm(_) => unreachable!(),
        }
    }

    fn job(id: u64, arrival_s: f64, estimate_s: f64, procs: u32) -> TaskSpec {
        TaskSpec::new(id, arrival_s, estimate_s, &[procs])
    }

    /// Hand-checked: at t = 1000, job 7 (4 of 8 processors, estimate 300 s) has run since
    /// 900; jobs 3 (arrived 400, 2 procs, estimate 100 s), 9 (arrived 950, 6 procs, 200 s) and
    /// 5 (arrived 400, 1 proc, 50 s) wait. Slots fill in arrival order, ties by id: 3, 5; 9
    /// is in the backlog.
    #[test]
    fn a_live_state_gives_the_scenarios_observation_by_hand() {
        let mut env = env();
        let layout = env.obs_layout();
        let mut obs = vec![0.0; layout.dim()];
        let state = LiveState {
            now_s: 1000.0,
            running: vec![(job(7, 800.0, 300.0, 4), 900.0)],
            waiting: vec![
                job(3, 400.0, 100.0, 2),
                job(9, 950.0, 200.0, 6),
                job(5, 400.0, 50.0, 1),
            ],
        };
        env.load_live(&state, &mut obs).unwrap();
        assert_eq!(layout.resources, 1, "rows lead with one resource column");
        assert_eq!(env.now_s(), 1000.0);
        assert_eq!(env.slot(0).unwrap().task_id, 3);
        assert_eq!(env.slot(1).unwrap().task_id, 5);
        assert_eq!(env.backlog_len(), 1);
        // Global: backlog 1/10; oldest backlog wait 50 s → squash(0.5) = 1/3; mean backlog
        // estimate 200 s → squash(2) = 2/3; mean backlog demand 6/8; used 4/8; slots full 2/2.
        let g = &obs[..layout.global];
        let expect = [0.1, 1.0 / 3.0, 2.0 / 3.0, 0.75, 0.5, 1.0];
        for (k, (&got, want)) in g.iter().zip(expect).enumerate() {
            assert!(
                (got - want).abs() < 1e-6,
                "global[{k}] = {got}, want {want}"
            );
        }
        // Slot 0 (job 3): present, 2/8 procs, estimate squash(1) = 1/2, waited 600 s →
        // squash(6) = 6/7, priority 0, no deadline (0, 0), fits now (4 free) → 1; extended:
        // min(1, 100/100) = 1, slowdown so far squash(600/100) = 6/7, work squash(100·2/8/100).
        let slots = layout.global + layout.server_rows * layout.server_features;
        let row = &obs[slots..slots + layout.slot_features];
        let expect = [
            1.0,
            0.25,
            0.5,
            6.0 / 7.0,
            0.0,
            0.0,
            0.0,
            1.0,
            1.0,
            6.0 / 7.0,
            0.25 / 1.25,
        ];
        for (k, (&got, want)) in row.iter().zip(expect).enumerate() {
            assert!(
                (got - want).abs() < 1e-6,
                "slot 0 [{k}] = {got}, want {want}"
            );
        }
        // The server row: 4/8 free, busy, next estimated completion in 200 s → squash(2).
        let server = &obs[layout.global..layout.global + layout.server_features];
        assert!((server[0] - 0.5).abs() < 1e-6, "{server:?}");
        let nr = 1;
        let next = 2 * nr + 1 + 2;
        assert!((server[next] - 2.0 / 3.0).abs() < 1e-6, "{server:?}");
        // Strict order: both visible jobs may be chosen, and so may waiting (a job runs).
        let mut mask = vec![false; env.action_space().n];
        env.action_mask(&mut mask);
        assert_eq!(mask, vec![true, true, true]);
        env.check_invariants().unwrap();
    }

    /// From a live state the env steps on: choosing job 9 (6 procs) under strict order
    /// waits for job 7's estimated end at 1200 and starts it then.
    #[test]
    fn the_env_steps_on_from_a_live_state() {
        let mut env = env();
        let mut obs = vec![0.0; env.obs_layout().dim()];
        let state = LiveState {
            now_s: 1000.0,
            running: vec![(job(7, 800.0, 300.0, 4), 900.0)],
            waiting: vec![job(9, 950.0, 200.0, 6)],
        };
        env.load_live(&state, &mut obs).unwrap();
        let end = env.step(0, &mut obs).unwrap();
        assert!(end.terminated);
        // Job 7 ends at 1200: (1200 − 800) / 300; job 9 runs 1200–1400: (1400 − 950) / 200.
        let slowdowns: Vec<f64> = env.finished_slowdowns().collect();
        assert_eq!(slowdowns, vec![4.0 / 3.0, 2.25]);
        env.check_invariants().unwrap();
    }

    /// A moment of a simulated Lublin-1 episode, read back as a live state (the running
    /// tasks with their starts, the queued ones), gives the same observation up to the order
    /// of the visible slots (the simulator refills freed slots where they are; a live state
    /// fills them in arrival order).
    #[test]
    fn a_simulated_moment_reloads_to_the_same_observation() {
        let path = crate::scenario::scenarios_dir().join("lublin-1.toml");
        let ScenarioEnv::Cluster(mut sim) = crate::scenario::load_file(&path).unwrap().build()
        else {
            unreachable!()
        };
        let layout = sim.obs_layout();
        let mut obs = vec![0.0; layout.dim()];
        let mut mask = vec![false; sim.action_space().n];
        sim.reset(Some(3), &mut obs);
        for _ in 0..300 {
            sim.action_mask(&mut mask);
            let first = mask.iter().position(|&m| m).unwrap();
            sim.step(first, &mut obs).unwrap();
        }
        assert!(
            sim.running.len() > 1 && sim.queue.len() > 10,
            "a busy moment"
        );
        let state = LiveState {
            now_s: sim.now_s,
            running: sim
                .running
                .iter()
                .map(|&i| (sim.tasks[i as usize], sim.records[i as usize].run_start_s))
                .collect(),
            waiting: sim
                .queue
                .iter()
                .map(|(i, _)| sim.tasks[i as usize])
                .collect(),
        };
        let mut live = sim.clone();
        let mut reloaded = vec![0.0; layout.dim()];
        live.load_live(&state, &mut reloaded).unwrap();
        live.check_invariants().unwrap();
        let slots_at = layout.global + layout.server_rows * layout.server_features;
        assert_eq!(
            obs[..slots_at],
            reloaded[..slots_at],
            "global and server features"
        );
        let sorted_rows = |o: &[f32]| {
            let mut rows: Vec<Vec<f32>> = o[slots_at..]
                .chunks(layout.slot_features)
                .map(<[f32]>::to_vec)
                .collect();
            rows.sort_by(|a, b| a.partial_cmp(b).unwrap());
            rows
        };
        assert_eq!(sorted_rows(&obs), sorted_rows(&reloaded), "slot rows");
    }

    #[test]
    fn a_job_that_outlived_its_estimate_ends_now_and_bad_states_are_named() {
        let mut env = env();
        let mut obs = vec![0.0; env.obs_layout().dim()];
        let late = LiveState {
            now_s: 1000.0,
            running: vec![(job(7, 0.0, 100.0, 8), 500.0)],
            waiting: vec![job(9, 950.0, 200.0, 1)],
        };
        env.load_live(&late, &mut obs).unwrap();
        env.step(0, &mut obs).unwrap();
        // Job 7 is taken to end now (work 500 s): (1000 − 0) / 500; job 9 then runs
        // 1000–1200: (1200 − 950) / 200.
        let slowdowns: Vec<f64> = env.finished_slowdowns().collect();
        assert_eq!(slowdowns, vec![2.0, 1.25]);

        let too_big = LiveState {
            now_s: 10.0,
            running: vec![(job(1, 0.0, 100.0, 6), 1.0), (job(2, 0.0, 100.0, 6), 2.0)],
            waiting: vec![],
        };
        assert_eq!(
            env.load_live(&too_big, &mut obs),
            Err(LiveError::DoesNotFit { id: 2 })
        );
        let future = LiveState {
            now_s: 10.0,
            running: vec![],
            waiting: vec![job(4, 11.0, 100.0, 1)],
        };
        let err = env.load_live(&future, &mut obs).unwrap_err();
        assert_eq!(
            err.to_string(),
            "job 4: arrival 11 s is not a finite time at or before now (10 s)"
        );
        let unlimited = LiveState {
            now_s: 10.0,
            running: vec![],
            waiting: vec![job(4, 1.0, f64::INFINITY, 1)],
        };
        assert!(matches!(
            env.load_live(&unlimited, &mut obs),
            Err(LiveError::BadEstimate { id: 4, .. })
        ));
        // After an error, a good state loads again.
        env.load_live(&late, &mut obs).unwrap();
        env.check_invariants().unwrap();
    }
}

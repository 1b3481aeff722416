//! [`ClusterEnv`] behind the [`Env`] trait.

use super::ClusterEnv;
use super::config::{ActionMode, IllegalAction};
use super::index;
use super::state::TaskRecord;
use super::views::Census;
use crate::api::{ActionBlock, ActionLayout, Env, EnvError, ObsLayout, Transition};
use crate::metrics::EpisodeMetrics;
use crate::spaces::{BoxSpace, Discrete};
use crate::workload::MAX_RESOURCES;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

impl Env for ClusterEnv {
    fn observation_space(&self) -> &BoxSpace {
        &self.obs_space
    }

    fn action_space(&self) -> Discrete {
        let (_, _, wait_at) = self.running_action_offsets();
        Discrete { n: wait_at + 1 }
    }

    fn obs_layout(&self) -> ObsLayout {
        self.layout
    }

    fn action_layout(&self) -> ActionLayout {
        let (slots, servers) = (self.config.num_slots, self.servers.len());
        let mut layout = match self.config.action_mode {
            ActionMode::Placement => ActionLayout::placements_then_wait(slots, servers),
            ActionMode::Slot => ActionLayout::slots_then_wait(slots),
        };
        if let Some(p) = self.config.preemption {
            let wait = layout.blocks.pop();
            if p.preempt {
                layout.blocks.push(ActionBlock::Preempt {
                    rows: p.running_rows,
                });
            }
            if p.migrate {
                layout.blocks.push(ActionBlock::Migrate {
                    rows: p.running_rows,
                    servers,
                });
            }
            layout.blocks.extend(wait);
        }
        layout
    }

    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
        if let Some(seed) = seed {
            self.rng = ChaCha8Rng::seed_from_u64(seed);
        }
        let start = self
            .config
            .workload
            .fill_episode(seed, &mut self.rng, &mut self.tasks);
        self.clear_episode(start.clock_s);
        self.metrics.window_start = start.window_start;
        self.schedule_server_events();
        self.arm_tick();
        self.run_until(start.clock_s);
        self.skip_to_decision();
        // An episode always has a first decision, even one whose time limit comes before any
        // task: that decision then ends it.
        self.end_pending = self.terminated || self.truncated;
        self.write_observation(obs);
    }

    fn step(&mut self, action: usize, obs: &mut [f32]) -> Result<Transition, EnvError> {
        let n = self.action_space().n;
        if self.end_pending {
            if action >= n {
                return Err(EnvError::OutOfRange { action, n });
            }
            self.end_pending = false;
            self.num_decisions += 1;
            return Ok(self.finish_step(obs));
        }
        if self.terminated || self.truncated {
            return Err(EnvError::EpisodeOver);
        }
        if action >= n {
            return Err(EnvError::OutOfRange { action, n });
        }
        if action == n - 1 {
            if !self.wait_allowed() {
                let reason = if self.config.discipline.commits() {
                    "nothing runs, so a queued task must be chosen: waiting is not allowed"
                } else {
                    HELD_TOO_LONG
                };
                return Err(EnvError::Illegal { action, reason });
            }
            self.wait();
        } else if self.is_running_action(action) {
            match self.feasible_running_action(action) {
                Ok(running_action) => self.apply_running_action(running_action),
                Err(reason) => self.refuse_or_wait(action, reason)?,
            }
        } else if self.config.discipline.commits() {
            let k = match self.config.action_mode {
                ActionMode::Placement => action / self.servers.len(),
                ActionMode::Slot => action,
            };
            match self.queue.slots[k] {
                Some(i) => self.commit(i),
                None => {
                    let reason = "the slot is empty";
                    match self.config.illegal_action {
                        IllegalAction::Error => return Err(EnvError::Illegal { action, reason }),
                        IllegalAction::Wait => self.wait(),
                    }
                }
            }
        } else {
            match self.feasible_placement(action) {
                Ok((k, server)) => self.place(k, server),
                Err(reason) => self.refuse_or_wait(action, reason)?,
            }
        }
        self.num_decisions += 1;
        Ok(self.finish_step(obs))
    }

    fn action_mask(&self, mask: &mut [bool]) {
        let nr = self.num_resources;
        let num_servers = self.servers.len();
        match self.config.action_mode {
            ActionMode::Placement => {
                for (k, slot) in self.queue.slots.iter().enumerate() {
                    let row = &mut mask[k * num_servers..(k + 1) * num_servers];
                    match slot {
                        Some(i) => {
                            let need = self.need(*i);
                            for (m, s) in row.iter_mut().zip(&self.servers) {
                                *m = index::server_admits(s, &need, nr);
                            }
                        }
                        None => row.fill(false),
                    }
                }
            }
            ActionMode::Slot if self.config.discipline.commits() => {
                for (m, slot) in mask.iter_mut().zip(&self.queue.slots) {
                    *m = slot.is_some();
                }
            }
            ActionMode::Slot => {
                for (m, slot) in mask.iter_mut().zip(&self.queue.slots) {
                    *m = slot.is_some_and(|i| self.fits_somewhere_now(i));
                }
            }
        }
        self.running_action_mask(mask);
        mask[self.wait_action()] = self.wait_allowed();
    }

    fn episode_metrics(&self) -> Option<&EpisodeMetrics> {
        self.metrics_ready.then_some(&self.metrics)
    }

    fn clock(&self) -> Option<f64> {
        Some(self.now_s())
    }
}

/// Why waiting is refused under a hold limit.
const HELD_TOO_LONG: &str =
    "a task that fits has waited the queue's hold limit: waiting is not allowed";

impl ClusterEnv {
    /// Empty servers, queue, records (one per task of `self.tasks`) and statistics, with the
    /// clock at `clock_s`: an episode before anything has happened.
    pub(super) fn clear_episode(&mut self, clock_s: f64) {
        self.records.clear();
        self.records.resize(self.tasks.len(), TaskRecord::NEW);
        self.reset_servers();
        self.clear_schedule();
        self.events.clear();
        self.queue.clear();
        self.running.clear();
        self.now_s = clock_s;
        self.episode_start_s = clock_s;
        self.next_arrival = 0;
        self.census = Census::default();
        self.num_decisions = 0;
        self.presence_sum = 0.0;
        self.used = [0; MAX_RESOURCES];
        self.used_integral = [0.0; MAX_RESOURCES];
        self.pending_cost = 0.0;
        self.metrics_ready = false;
        self.metrics.window_start = None;
        self.terminated = false;
        self.truncated = false;
        self.end_pending = false;
    }

    /// An illegal (greedy) action: an error, or a wait where the scenario says so and waiting
    /// is allowed now.
    fn refuse_or_wait(&mut self, action: usize, reason: &'static str) -> Result<(), EnvError> {
        match self.config.illegal_action {
            IllegalAction::Error => Err(EnvError::Illegal { action, reason }),
            IllegalAction::Wait if self.wait_allowed() => {
                self.wait();
                Ok(())
            }
            IllegalAction::Wait => Err(EnvError::Illegal {
                action,
                reason: HELD_TOO_LONG,
            }),
        }
    }

    /// Chooses queued task `index` (a [`QueuedView::index`](super::QueuedView::index): a
    /// task in a visible slot or in the backlog) as a slot action chooses its slot's task:
    /// under [`Discipline::Greedy`](super::Discipline::Greedy) it must fit now and starts
    /// now; under a commit discipline it is the next task to start. This is how heuristics
    /// that read the whole queue act; a policy acts through [`Env::step`].
    pub fn step_task(&mut self, index: u32, obs: &mut [f32]) -> Result<Transition, EnvError> {
        if self.terminated || self.truncated || self.end_pending {
            return self.step(self.wait_action(), obs);
        }
        let queued = self.queue.iter().any(|(i, _)| i == index);
        if !queued {
            return Err(EnvError::IllegalTask {
                index,
                reason: "it is not in the queue",
            });
        }
        if self.config.discipline.commits() {
            self.commit(index);
        } else {
            let Some(n) = self.rule_server(&self.need(index)) else {
                return Err(EnvError::IllegalTask {
                    index,
                    reason: "it fits on no server now",
                });
            };
            self.start_queued(index, n);
        }
        self.num_decisions += 1;
        Ok(self.finish_step(obs))
    }
}

//! Placement: which server a task can start on now (the mask, the placement rule), and
//! starting and releasing a task; also whether a task fits some server type at all.

use super::ClusterEnv;
use super::config::{ActionMode, GpuConfig, PlacementRule, Reservation, ServerType};
use super::index::{self, Need};
use super::state::{EventKind, TaskIndex, TaskPhase};
use crate::workload::{MAX_RESOURCES, TaskSpec};

impl ClusterEnv {
    pub(super) fn gpu_key(&self) -> Option<(usize, u32)> {
        self.config
            .gpu
            .as_ref()
            .map(|g| (g.resource, g.units_per_gpu))
    }

    pub(super) fn need(&self, i: TaskIndex) -> Need {
        Need::of(&self.tasks[i as usize], self.gpu_key())
    }

    pub(super) fn rule_server(&self, need: &Need) -> Option<usize> {
        let nr = self.num_resources;
        match self.config.placement_rule {
            PlacementRule::FirstFit => self.index.first_fit(need),
            PlacementRule::BestFit => {
                let mut best: Option<(f64, usize)> = None;
                for (t, &(lo, hi)) in self.type_ranges.iter().enumerate() {
                    if !self.index.range_summary(lo, hi).admits(need, nr) {
                        continue;
                    }
                    let capacity = &self.config.server_types[t].capacity;
                    let found = self.index.best_of_type(t, capacity, need, |n| {
                        index::server_admits(&self.servers[n], need, nr)
                    });
                    let Some(n) = found else { continue };
                    let s = &self.servers[n];
                    let leftover: f64 = (0..nr)
                        .filter(|&r| s.capacity[r] > 0)
                        .map(|r| f64::from(s.free[r] - need.demand[r]) / f64::from(s.capacity[r]))
                        .sum();
                    if best.is_none_or(|(b, bn)| leftover < b || (leftover == b && n < bn)) {
                        best = Some((leftover, n));
                    }
                }
                best.map(|(_, n)| n)
            }
            PlacementRule::FastestFit => {
                let mut best: Option<(f64, usize)> = None;
                for (t, &(lo, hi)) in self.type_ranges.iter().enumerate() {
                    let speed = self.config.server_types[t].speed;
                    let beaten = best.is_some_and(|(s, n)| s > speed || (s == speed && n < lo));
                    if beaten || !self.index.range_summary(lo, hi).admits(need, nr) {
                        continue;
                    }
                    let found =
                        (lo..hi).find(|&n| index::server_admits(&self.servers[n], need, nr));
                    if let Some(n) = found
                        && best.is_none_or(|(s, bn)| speed > s || n < bn)
                    {
                        best = Some((speed, n));
                    }
                }
                best.map(|(_, n)| n)
            }
        }
    }

    /// Decodes a non-wait action into a feasible (slot, server), or says why it is illegal.
    pub(super) fn feasible_placement(&self, action: usize) -> Result<(usize, usize), &'static str> {
        let (k, n) = match self.config.action_mode {
            ActionMode::Placement => (action / self.servers.len(), action % self.servers.len()),
            ActionMode::Slot => {
                let k = action;
                if self.queue.slots[k].is_none() {
                    return Err("the slot is empty");
                }
                (
                    k,
                    self.chosen_server(k)
                        .ok_or("the task fits on no server now")?,
                )
            }
        };
        match self.queue.slots[k] {
            None => Err("the slot is empty"),
            Some(i)
                if !index::server_admits(&self.servers[n], &self.need(i), self.num_resources) =>
            {
                Err(
                    "the task cannot start on this server now (capacity, GPUs, failure or reservation)",
                )
            }
            Some(_) => Ok((k, n)),
        }
    }

    /// True when `action` would be carried out as a placement (wait is not a placement), or
    /// as a preemption or migration; under a commit discipline, when it chooses a queued
    /// task (which then starts as soon as the discipline lets it).
    pub fn is_feasible_placement(&self, action: usize) -> bool {
        if action >= self.wait_action() {
            return false;
        }
        if self.is_running_action(action) {
            return self.feasible_running_action(action).is_ok();
        }
        if self.config.discipline.commits() {
            let k = match self.config.action_mode {
                ActionMode::Placement => action / self.servers.len(),
                ActionMode::Slot => action,
            };
            return self.queue.slots[k].is_some();
        }
        self.feasible_placement(action).is_ok()
    }

    pub(super) fn fits_somewhere_now(&self, i: TaskIndex) -> bool {
        self.index.first_fit(&self.need(i)).is_some()
    }

    /// True when the agent has a real choice: a visible task fits now (greedy), or any task
    /// is queued (a commit discipline, under which a task that does not fit may be chosen),
    /// or a running task may be preempted or moved (`[preemption]`).
    pub(super) fn any_feasible_placement(&self) -> bool {
        if self.config.discipline.commits() {
            return !self.queue.is_empty();
        }
        self.queue
            .slots
            .iter()
            .flatten()
            .any(|&i| self.fits_somewhere_now(i))
            || self.any_running_action()
    }

    /// True when the task could run on some server once it is empty, up and powered on.
    pub(super) fn fits_some_type(&self, spec: &TaskSpec) -> bool {
        let gpu = self.config.gpu.as_ref();
        self.config
            .server_types
            .iter()
            .zip(&self.type_min_gate)
            .any(|(ty, &gate)| fits_type(spec, ty, gpu, gate))
    }

    pub(super) fn place(&mut self, k: usize, n: usize) {
        if let Some(i) = self.queue.slots[k] {
            self.start_queued(i, n);
        }
    }

    /// Starts queued task `i` (in a slot or the backlog) on server `n`, where it must fit. A
    /// task with checkpointed work first reads its checkpoint (`[preemption] restart_s`).
    pub(super) fn start_queued(&mut self, i: TaskIndex, n: usize) {
        if !self.queue.remove(i, &self.tasks) {
            return;
        }
        let pause_s = match self.config.preemption {
            Some(p) if self.records[i as usize].work_done_s > 0.0 => p.restart_s,
            _ => 0.0,
        };
        self.run_on(i, n, pause_s);
        self.records[i as usize].start_s = self.records[i as usize].run_start_s;
        self.census.num_queued -= 1;
        self.census.num_running += 1;
    }

    /// Holds task `i`'s demand on server `n` (where it must fit) and schedules its
    /// completion: the run starts when the server is ready (now, or at the end of its boot),
    /// works from `pause_s` later, and does the work the task has left.
    pub(super) fn run_on(&mut self, i: TaskIndex, n: usize, pause_s: f64) {
        let spec = self.tasks[i as usize];
        let need = Need::of(&spec, self.gpu_key());
        let unit = self.gpu_key().map_or(0, |(_, u)| u as u16);
        let gpu_resource = self.gpu_key().map(|(g, _)| g);
        let (now_s, boot_s, nr) = (self.now_s, self.config.boot_s, self.num_resources);
        let mut gpus = 0u16;
        self.modify_server(n, |server| {
            if server.off {
                server.off = false;
                server.ready_at_s = now_s + boot_s;
            }
            server.power_down_at_s = f64::NAN;
            for r in 0..nr {
                server.free[r] -= spec.demand[r];
            }
            let g = &mut server.gpu_free[..usize::from(server.num_gpus)];
            if gpu_resource.is_some() && need.gpu_share > 0 {
                // The GPU with the least room that holds the share.
                let j = (0..g.len())
                    .filter(|&j| g[j] >= need.gpu_share)
                    .min_by_key(|&j| (g[j], j));
                if let Some(j) = j {
                    g[j] -= need.gpu_share;
                    gpus = 1 << j;
                }
            } else if need.gpu_whole > 0 {
                let mut left = need.gpu_whole;
                for (j, free) in g.iter_mut().enumerate() {
                    if left > 0 && *free == unit {
                        *free = 0;
                        gpus |= 1 << j;
                        left -= 1;
                    }
                }
            }
            server.num_running += 1;
        });
        for r in 0..nr {
            self.used[r] += u64::from(spec.demand[r]);
        }
        let server = &self.servers[n];
        let run_start_s = now_s.max(server.ready_at_s);
        let works_from_s = run_start_s + pause_s;
        let rec = &mut self.records[i as usize];
        let finish_s = works_from_s + (spec.duration_s - rec.work_done_s) / server.speed;
        rec.phase = TaskPhase::Running;
        rec.run_start_s = run_start_s;
        rec.works_from_s = works_from_s;
        rec.server = n as u32;
        rec.running_pos = self.running.len() as u32;
        rec.due_s = finish_s;
        rec.gpus = gpus;
        self.running.push(i);
        self.events.push(
            finish_s,
            EventKind::Completion {
                task: i,
                server: n as u32,
            },
        );
    }

    /// When running task `i` will finish by its *estimate* (what schedulers and the
    /// observation may know): the estimated work it has left, from when it works.
    pub(super) fn estimated_finish_s(&self, i: TaskIndex) -> f64 {
        let rec = &self.records[i as usize];
        let left = (self.tasks[i as usize].estimate_s - rec.work_done_s).max(0.0);
        rec.works_from_s + left / self.servers[rec.server as usize].speed
    }

    /// Gives a running task's resources back and takes it off the running list.
    pub(super) fn release(&mut self, i: TaskIndex) {
        let spec = self.tasks[i as usize];
        let rec = self.records[i as usize];
        let n = rec.server as usize;
        let unit = self.gpu_key().map_or(0, |(_, u)| u as u16);
        let gpu_resource = self.gpu_key().map(|(g, _)| g);
        let nr = self.num_resources;
        self.modify_server(n, |server| {
            for r in 0..nr {
                server.free[r] += spec.demand[r];
            }
            if let Some(g) = gpu_resource {
                let d = spec.demand[g];
                for j in 0..server.num_gpus as usize {
                    if rec.gpus & (1 << j) != 0 {
                        server.gpu_free[j] += if d < u32::from(unit) { d as u16 } else { unit };
                    }
                }
            }
            server.num_running -= 1;
        });
        for r in 0..nr {
            self.used[r] -= u64::from(spec.demand[r]);
        }
        let pos = rec.running_pos as usize;
        self.running.swap_remove(pos);
        if let Some(&moved) = self.running.get(pos) {
            self.records[moved as usize].running_pos = pos as u32;
        }
        let rec = &mut self.records[i as usize];
        rec.running_pos = u32::MAX;
        rec.due_s = f64::NAN;
        rec.gpus = 0;
        self.census.num_running -= 1;
        self.arm_power_down(n);
    }
}

/// Reservation gate of each server of a type of `count` servers (see [`Reservation`]).
pub(super) fn reservation_gates(
    count: usize,
    reservations: &[Reservation],
) -> impl Iterator<Item = u8> {
    let mut sorted = reservations.to_vec();
    sorted.sort_by_key(|r| std::cmp::Reverse(r.priority));
    let mut gates = vec![0u8; count];
    let mut end = count;
    for r in &sorted {
        let n = ((r.fraction * count as f64).round() as usize).min(end);
        gates[end - n..end].fill(r.priority);
        end -= n;
    }
    gates.into_iter()
}

/// True when `spec` could run on some server of `server_types` once that server is empty,
/// up and powered on: capacity, whole GPUs or a GPU share, GPU model and reservations.
/// Tasks for which this is false never start: they are rejected at load or dropped.
pub fn fits_some_server_type(
    spec: &TaskSpec,
    server_types: &[ServerType],
    gpu: Option<&GpuConfig>,
    reservations: &[Reservation],
) -> bool {
    server_types.iter().any(|ty| {
        let min_gate = reservation_gates(ty.count, reservations).min().unwrap_or(0);
        fits_type(spec, ty, gpu, min_gate)
    })
}

/// [`fits_some_server_type`] for one type whose lowest reservation gate is `min_gate`.
pub(super) fn fits_type(
    spec: &TaskSpec,
    ty: &ServerType,
    gpu: Option<&GpuConfig>,
    min_gate: u8,
) -> bool {
    let need = Need::of(spec, gpu.map(|g| (g.resource, g.units_per_gpu)));
    {
        let (num_gpus, model_bit, unit) = match gpu {
            Some(g) => (
                ty.capacity[g.resource] / g.units_per_gpu.max(1),
                ty.gpu_model.map_or(0, |m| 1u32 << m),
                g.units_per_gpu,
            ),
            None => (0, 0, 0),
        };
        (0..MAX_RESOURCES).all(|r| need.demand[r] <= ty.capacity[r])
            && min_gate <= need.priority
            && (need.models == 0 || model_bit & need.models != 0)
            && (need.gpu_share == 0 || (num_gpus > 0 && u32::from(need.gpu_share) <= unit))
            && u32::from(need.gpu_whole) <= num_gpus
    }
}

//! The commit disciplines of batch scheduling (see [`Discipline`]): a chosen task that does not
//! fit now waits for room, the env runs the clock until it starts, and meanwhile starts other
//! queued tasks only as strict order, EASY or conservative backfilling allows.
//!
//! Every decision here reads what a real batch scheduler reads: the whole queue in arrival
//! order (task index order: tasks are sorted by arrival) and running tasks' *estimated*
//! finish times (start + estimate / speed; an overdue task is assumed to end now).

use super::ClusterEnv;
use super::config::Discipline;
use super::index;
use super::state::TaskIndex;
use crate::workload::MAX_RESOURCES;

type Units = [u32; MAX_RESOURCES];

/// Free capacity of one server over time, by estimates: `(from time, free units)` steps in
/// time order, the last one lasting forever.
#[derive(Clone, Debug)]
struct Profile {
    steps: Vec<(f64, Units)>,
}

impl ClusterEnv {
    /// Commits to queued task `i`: it starts now if it fits; otherwise the clock runs, other
    /// tasks starting only as the discipline allows, until it fits and starts (or the
    /// episode is cut off, or nothing is left to happen).
    pub(super) fn commit(&mut self, i: TaskIndex) {
        loop {
            if let Some(n) = self.rule_server(&self.need(i)) {
                self.start_queued(i, n);
                return;
            }
            match self.config.discipline {
                Discipline::Greedy | Discipline::Strict => {}
                Discipline::Easy => self.backfill_easy(i),
                Discipline::Conservative => self.backfill_conservative(i),
            }
            if self.next_event_s().is_none() {
                return;
            }
            self.wait();
            self.update_episode_end();
            if self.truncated {
                return;
            }
        }
    }

    /// Queued tasks other than `head`, in arrival order.
    fn others_in_arrival_order(&self, head: TaskIndex) -> Vec<TaskIndex> {
        let mut others: Vec<TaskIndex> = self
            .queue
            .iter()
            .map(|(i, _)| i)
            .filter(|&i| i != head)
            .collect();
        others.sort_unstable();
        others
    }

    /// The estimated end of task `i` if it started now on server `n`.
    fn estimated_end_s(&self, i: TaskIndex, n: usize) -> f64 {
        self.now_s + self.tasks[i as usize].estimate_s / self.servers[n].speed
    }

    /// EASY's reservation for `head`: the earliest shadow time over the servers that can
    /// hold it, and that server (ties: the lowest index). `None` if no server up can.
    fn shadow(&self, head: TaskIndex) -> Option<(f64, usize)> {
        let demand = self.tasks[head as usize].demand;
        let nr = self.num_resources;
        let fits = |free: &Units| (0..nr).all(|r| demand[r] <= free[r]);
        let mut best: Option<(f64, usize)> = None;
        for (n, server) in self.servers.iter().enumerate() {
            if !server.up || !server.fits_when_empty(&demand, nr) {
                continue;
            }
            let mut releases = self.estimated_releases(n);
            releases.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut free = server.free;
            let mut at = fits(&free).then_some(self.now_s);
            for (t, released) in releases {
                if at.is_some() {
                    break;
                }
                for r in 0..nr {
                    free[r] += released[r];
                }
                if fits(&free) {
                    at = Some(t);
                }
            }
            if let Some(t) = at
                && best.is_none_or(|(b, _)| t < b)
            {
                best = Some((t, n));
            }
        }
        best
    }

    /// `(estimated finish, demand)` of every task running on server `n`.
    fn estimated_releases(&self, n: usize) -> Vec<(f64, Units)> {
        self.running
            .iter()
            .filter(|&&j| self.records[j as usize].server as usize == n)
            .map(|&j| {
                let finish = self.estimated_finish_s(j);
                (finish.max(self.now_s), self.tasks[j as usize].demand)
            })
            .collect()
    }

    /// EASY backfilling while `head` waits: later tasks (arrival order) start now if they
    /// fit and cannot delay the head's reservation.
    fn backfill_easy(&mut self, head: TaskIndex) {
        let Some((shadow_s, reserved)) = self.shadow(head) else {
            return;
        };
        for j in self.others_in_arrival_order(head) {
            let Some(n) = self.rule_server(&self.need(j)) else {
                continue;
            };
            if n != reserved || self.estimated_end_s(j, n) < shadow_s {
                self.start_queued(j, n);
            }
        }
    }

    /// Conservative backfilling while `head` waits: reservations for the head, then for
    /// every later task in arrival order; the tasks whose reservation is now start now.
    fn backfill_conservative(&mut self, head: TaskIndex) {
        let nr = self.num_resources;
        let mut profiles: Vec<Option<Profile>> = (0..self.servers.len())
            .map(|n| self.servers[n].up.then(|| self.profile(n)))
            .collect();
        let mut order = vec![head];
        order.extend(self.others_in_arrival_order(head));
        for j in order {
            let spec = self.tasks[j as usize];
            let mut best: Option<(f64, usize)> = None;
            for (n, profile) in profiles.iter().enumerate() {
                let Some(profile) = profile else { continue };
                if !self.servers[n].fits_when_empty(&spec.demand, nr) {
                    continue;
                }
                let length_s = spec.estimate_s / self.servers[n].speed;
                let t = profile.earliest(&spec.demand, length_s, nr);
                if best.is_none_or(|(b, _)| t < b) {
                    best = Some((t, n));
                }
            }
            let Some((t, n)) = best else { continue };
            let length_s = spec.estimate_s / self.servers[n].speed;
            if let Some(profile) = profiles[n].as_mut() {
                profile.reserve(t, length_s, &spec.demand, nr);
            }
            let admits = index::server_admits(&self.servers[n], &self.need(j), nr);
            if j != head && t <= self.now_s && admits {
                self.start_queued(j, n);
            }
        }
    }

    /// Server `n`'s estimated availability from now on, given its running tasks.
    fn profile(&self, n: usize) -> Profile {
        let nr = self.num_resources;
        let mut releases = self.estimated_releases(n);
        releases.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut free = self.servers[n].free;
        let mut steps = vec![(self.now_s, free)];
        for (t, released) in releases {
            for r in 0..nr {
                free[r] += released[r];
            }
            match steps.last_mut() {
                Some(last) if last.0 == t => last.1 = free,
                _ => steps.push((t, free)),
            }
        }
        Profile { steps }
    }
}

impl Profile {
    /// The earliest step time from which `demand` fits for `length_s` (the last step lasts
    /// forever and, once every running task has ended, holds at least the demand of a task
    /// that fits the empty server, so there always is one).
    fn earliest(&self, demand: &Units, length_s: f64, nr: usize) -> f64 {
        let fits = |free: &Units| (0..nr).all(|r| demand[r] <= free[r]);
        let mut start = 0;
        'candidates: while start < self.steps.len() {
            let t0 = self.steps[start].0;
            let mut k = start;
            while k < self.steps.len() && (k == start || self.steps[k].0 < t0 + length_s) {
                if !fits(&self.steps[k].1) {
                    // Every start up to step k overlaps step k: try the one after it.
                    start = k + 1;
                    continue 'candidates;
                }
                k += 1;
            }
            return t0;
        }
        f64::INFINITY
    }

    /// Takes `demand` out of the profile over `[t0, t0 + length_s)`.
    fn reserve(&mut self, t0: f64, length_s: f64, demand: &Units, nr: usize) {
        if !t0.is_finite() {
            return;
        }
        let end = t0 + length_s;
        self.split_at(t0);
        self.split_at(end);
        for (t, free) in &mut self.steps {
            if *t >= t0 && *t < end {
                for r in 0..nr {
                    free[r] -= demand[r];
                }
            }
        }
    }

    /// Makes `t` the start of a step (copying the free units of the step it falls in).
    fn split_at(&mut self, t: f64) {
        let pos = self.steps.partition_point(|s| s.0 <= t);
        if pos == 0 || self.steps[pos - 1].0 == t {
            return;
        }
        let free = self.steps[pos - 1].1;
        self.steps.insert(pos, (t, free));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(x: u32) -> Units {
        let mut u = [0; MAX_RESOURCES];
        u[0] = x;
        u
    }

    /// 10 units free now, 30 from t = 5, 100 from t = 20.
    fn profile() -> Profile {
        Profile {
            steps: vec![(0.0, units(10)), (5.0, units(30)), (20.0, units(100))],
        }
    }

    #[test]
    fn the_earliest_start_needs_room_for_the_whole_run() {
        let p = profile();
        assert_eq!(p.earliest(&units(10), 100.0, 1), 0.0);
        assert_eq!(p.earliest(&units(20), 100.0, 1), 5.0);
        assert_eq!(p.earliest(&units(20), 3.0, 1), 5.0);
        assert_eq!(p.earliest(&units(50), 1.0, 1), 20.0);
        assert_eq!(p.earliest(&units(101), 1.0, 1), f64::INFINITY);
    }

    #[test]
    fn a_reservation_takes_its_units_over_its_interval_only() {
        let mut p = profile();
        p.reserve(5.0, 10.0, &units(25), 1);
        let steps: Vec<(f64, u32)> = p.steps.iter().map(|(t, f)| (*t, f[0])).collect();
        assert_eq!(steps, [(0.0, 10), (5.0, 5), (15.0, 30), (20.0, 100)]);
        // A task of 20 units now has to wait for the reservation to end.
        assert_eq!(p.earliest(&units(20), 1.0, 1), 15.0);
        // One of 5 units fits now and through the reservation.
        assert_eq!(p.earliest(&units(5), 30.0, 1), 0.0);
    }
}

//! Server bookkeeping: every change to a server goes through [`ClusterEnv::modify_server`],
//! which keeps the free-capacity index, the per-type aggregates and the power draw in step.

use super::ClusterEnv;
use super::power::power_draw;
use super::state::ServerState;
use crate::workload::MAX_RESOURCES;

impl ClusterEnv {
    /// Applies `f` to server `n`, then refreshes the index, the per-type aggregates and the
    /// power draw: every change to a server goes through here.
    pub(super) fn modify_server(&mut self, n: usize, f: impl FnOnce(&mut ServerState)) {
        let before = self.servers[n];
        f(&mut self.servers[n]);
        let unit = self.gpu_key().map_or(0, |(_, u)| u as u16);
        let nr = self.num_resources;
        let s = &mut self.servers[n];
        if s.num_gpus > 0 {
            s.refresh_gpu_summary(unit);
        }
        let power = self.config.server_types[s.type_index].power;
        s.power_w = power_draw(s, power, nr);
        let after = *s;
        self.power_w_total += after.power_w - before.power_w;
        let t = after.type_index;
        for r in 0..nr {
            let sum = &mut self.type_free_sum[t][r];
            *sum =
                *sum + if after.up {
                    u64::from(after.free[r])
                } else {
                    0
                } - if before.up {
                    u64::from(before.free[r])
                } else {
                    0
                };
        }
        let delta = |a: bool, b: bool| i64::from(a) - i64::from(b);
        let add = |x: &mut u32, d: i64| *x = (i64::from(*x) + d) as u32;
        add(&mut self.type_num_up[t], delta(after.up, before.up));
        add(
            &mut self.type_num_busy[t],
            delta(after.num_running > 0, before.num_running > 0),
        );
        add(&mut self.type_num_off[t], delta(after.off, before.off));
        self.index.update(n, &self.servers[n]);
    }

    /// Back to an empty cluster at time 0 (servers, index, aggregates, power, failures).
    pub(super) fn reset_servers(&mut self) {
        let unit = self.gpu_key().map_or(0, |(_, u)| u as u16);
        let nr = self.num_resources;
        self.power_w_total = 0.0;
        for t in 0..self.type_ranges.len() {
            self.type_free_sum[t] = [0; MAX_RESOURCES];
            self.type_num_up[t] = 0;
            self.type_num_busy[t] = 0;
            self.type_num_off[t] = 0;
        }
        for s in &mut self.servers {
            s.clear(unit);
            s.power_w = power_draw(s, self.config.server_types[s.type_index].power, nr);
            self.power_w_total += s.power_w;
            let t = s.type_index;
            for r in 0..nr {
                self.type_free_sum[t][r] += u64::from(s.free[r]);
            }
            self.type_num_up[t] += 1;
        }
        self.index.rebuild(&self.servers);
        self.energy_j = 0.0;
        self.num_failures = 0;
        self.num_killed = 0;
        self.lost_work_s = 0.0;
        self.num_preempted = 0;
        self.num_migrated = 0;
    }
}

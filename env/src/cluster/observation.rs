//! The flat observation of [`ClusterEnv`]; the feature list is documented on the env.

use super::ClusterEnv;
use super::config::{ClusterConfig, ServerObs};
use crate::api::ObsLayout;
use crate::spaces::BoxSpace;

/// Global features the arrival-rate forecast adds.
const FORECAST_FEATURES: usize = 3;

/// Features of a running row besides its demand (one per resource).
const RUNNING_FEATURES: usize = 8;

/// `x / max` (0 when `max` is 0: a resource the cluster does not have).
#[inline]
fn frac(x: f64, max: u32) -> f32 {
    if max == 0 {
        0.0
    } else {
        (x / f64::from(max)) as f32
    }
}

/// A task's priority class / the largest in the workload (0 when every class is 0).
fn priority_feature(env: &ClusterEnv, priority: u8) -> f32 {
    if env.config.max_priority == 0 {
        0.0
    } else {
        f32::from(priority) / f32::from(env.config.max_priority)
    }
}

/// `x / (1 + x)`: maps `[0, ∞)` onto `[0, 1)` while staying linear near 0.
#[inline]
fn squash(x: f64) -> f32 {
    let x = x.max(0.0);
    (x / (1.0 + x)) as f32
}

impl ClusterConfig {
    /// The observation layout an env of this config has (`None` if the server counts
    /// overflow; its size is [`ObsLayout::checked_dim`]).
    pub fn obs_layout(&self) -> Option<ObsLayout> {
        Some(layout(self, self.num_servers()?))
    }
}

/// The layout of `config`'s observation on a cluster of `num_servers` servers.
pub(super) fn layout(config: &ClusterConfig, num_servers: usize) -> ObsLayout {
    let (num_resources, num_types) = (config.resources.len(), config.server_types.len());
    let extra = usize::from(config.extended_features);
    let health = config.health.is_some();
    let forecast = config.forecast.is_some();
    let num_slots = config.num_slots;
    let (server_rows, server_features) = match config.server_obs {
        ServerObs::PerServer => (
            num_servers,
            2 * num_resources + num_types + 3 + extra + usize::from(health),
        ),
        ServerObs::PerType => (num_types, 3 * num_resources + 7),
    };
    let running_rows = config.preemption.map_or(0, |p| p.running_rows);
    ObsLayout {
        global: 2 * num_resources + 4 + FORECAST_FEATURES * usize::from(forecast),
        server_rows,
        server_features,
        slot_rows: num_slots,
        slot_features: num_resources + 7 + 3 * extra,
        running_rows,
        running_features: if running_rows > 0 {
            num_resources + RUNNING_FEATURES
        } else {
            0
        },
        resources: match config.server_obs {
            ServerObs::PerServer => num_resources,
            ServerObs::PerType => 0,
        },
    }
}

pub(super) fn space(layout: &ObsLayout, num_resources: usize) -> BoxSpace {
    let mut space = BoxSpace::uniform(layout.dim(), 0.0, 1.0);
    let slack = num_resources + 5;
    let slots_start = layout.global + layout.server_rows * layout.server_features;
    for k in 0..layout.slot_rows {
        space.low[slots_start + k * layout.slot_features + slack] = -1.0;
    }
    space
}

pub(super) fn write(env: &ClusterEnv, obs: &mut [f32]) {
    let nr = env.num_resources;
    let scale = env.config.time_scale_s;
    let layout = env.layout;
    let (global, rest) = obs.split_at_mut(layout.global);
    let (server_block, rest) = rest.split_at_mut(layout.server_rows * layout.server_features);
    let (slot_block, running_block) = rest.split_at_mut(layout.slot_rows * layout.slot_features);

    // Global block.
    let queue = &env.queue;
    let backlog_len = queue.backlog.len();
    global[0] = if queue.backlog_cap == 0 {
        0.0
    } else {
        backlog_len as f32 / queue.backlog_cap as f32
    };
    let oldest_wait_s = queue
        .backlog
        .front()
        .map_or(0.0, |&i| env.now_s - env.tasks[i as usize].arrival_s);
    global[1] = squash(oldest_wait_s / scale);
    let per_task = if backlog_len == 0 {
        0.0
    } else {
        1.0 / backlog_len as f64
    };
    global[2] = squash(queue.backlog_estimate_sum_s * per_task / scale);
    for r in 0..nr {
        global[3 + r] = frac(
            queue.backlog_demand_sum[r] as f64 * per_task,
            env.max_capacity[r],
        )
        .min(1.0);
        let cap = env.capacity_total[r];
        global[3 + nr + r] = if cap > 0.0 {
            (env.used[r] as f64 / cap) as f32
        } else {
            0.0
        };
    }
    let num_full = queue.slots.iter().filter(|s| s.is_some()).count();
    global[3 + 2 * nr] = num_full as f32 / queue.slots.len() as f32;
    if let Some(rates) = env.arrival_forecast() {
        // Arrivals per time scale, squashed.
        for (k, rate) in [rates.recent, rates.longer, rates.seasonal]
            .into_iter()
            .enumerate()
        {
            global[4 + 2 * nr + k] = squash(rate * scale);
        }
    }

    if env.config.server_obs == ServerObs::PerType {
        write_type_rows(env, server_block);
    } else {
        write_server_rows(env, server_block);
    }
    write_slot_rows(env, slot_block);
    if layout.running_rows > 0 {
        write_running_rows(env, running_block);
    }
}

/// One row per running row (see the env's docs), all zeros when the row is empty.
fn write_running_rows(env: &ClusterEnv, block: &mut [f32]) {
    let nr = env.num_resources;
    let scale = env.config.time_scale_s;
    let last_server = env.servers.len().saturating_sub(1).max(1) as f32;
    block.fill(0.0);
    let rows = env.running_rows();
    for (row, &i) in block
        .chunks_exact_mut(env.layout.running_features)
        .zip(rows)
    {
        let spec = &env.tasks[i as usize];
        let rec = &env.records[i as usize];
        let n = rec.server as usize;
        row[0] = 1.0;
        for r in 0..nr {
            row[1 + r] = frac(f64::from(spec.demand[r]), env.max_capacity[r]);
        }
        row[1 + nr] = squash((env.estimated_finish_s(i) - env.now_s) / scale);
        row[2 + nr] = squash((env.now_s - rec.run_start_s) / scale);
        row[3 + nr] = squash(env.work_at_risk_s(i) / scale);
        row[4 + nr] = priority_feature(env, spec.priority);
        row[5 + nr] = env.health(n) as f32;
        row[6 + nr] = n as f32 / last_server;
        row[7 + nr] = if env.holds_gpus(i) { 1.0 } else { 0.0 };
    }
}

/// One row per server type (see the env's docs).
fn write_type_rows(env: &ClusterEnv, server_block: &mut [f32]) {
    let nr = env.num_resources;
    let sf = env.layout.server_features;
    let unit = env.config.gpu.as_ref().map_or(0, |g| g.units_per_gpu);
    let max_count = env
        .config
        .server_types
        .iter()
        .map(|t| t.count)
        .max()
        .unwrap_or(1) as f32;
    for (t, row) in server_block.chunks_exact_mut(sf).enumerate() {
        let ty = &env.config.server_types[t];
        let (lo, hi) = env.type_ranges[t];
        let summary = env.index.range_summary(lo, hi);
        let count = ty.count as f32;
        for r in 0..nr {
            let cap = f64::from(ty.capacity[r]);
            let (mean, max) = if cap > 0.0 {
                (
                    env.type_free_sum[t][r] as f64 / (cap * ty.count as f64),
                    f64::from(summary.free[r]) / cap,
                )
            } else {
                (0.0, 0.0)
            };
            row[r] = mean as f32;
            row[nr + r] = max as f32;
            row[2 * nr + r] = if env.max_capacity[r] == 0 {
                0.0
            } else {
                (cap / f64::from(env.max_capacity[r])) as f32
            };
        }
        row[3 * nr] = (ty.speed / env.max_speed) as f32;
        row[3 * nr + 1] = env.type_num_up[t] as f32 / count;
        row[3 * nr + 2] = env.type_num_busy[t] as f32 / count;
        row[3 * nr + 3] = env.type_num_off[t] as f32 / count;
        row[3 * nr + 4] = count / max_count;
        let num_gpus = env.servers.get(lo).map_or(0, |s| s.num_gpus);
        row[3 * nr + 5] = if unit > 0 && num_gpus > 0 {
            (f64::from(summary.gpu_free) / f64::from(unit)) as f32
        } else {
            0.0
        };
        row[3 * nr + 6] = if num_gpus > 0 {
            f32::from(summary.full_gpus) / f32::from(num_gpus)
        } else {
            0.0
        };
    }
}

fn write_server_rows(env: &ClusterEnv, server_block: &mut [f32]) {
    let nr = env.num_resources;
    let scale = env.config.time_scale_s;
    let layout = env.layout;
    // Server rows. The next estimated completion per server needs one pass over the running
    // tasks; the row's last feature doubles as its accumulator (time to go, unsquashed).
    let sf = layout.server_features;
    let num_types = env.config.server_types.len();
    let next_col = 2 * nr + num_types + 2;
    for (row, s) in server_block.chunks_exact_mut(sf).zip(&env.servers) {
        for r in 0..nr {
            // A failed server offers nothing.
            row[r] = if s.up {
                frac(f64::from(s.free[r]), s.capacity[r])
            } else {
                0.0
            };
            row[nr + r] = frac(f64::from(s.capacity[r]), env.max_capacity[r]);
        }
        row[2 * nr] = (s.speed / env.max_speed) as f32;
        row[2 * nr + 1..2 * nr + 1 + num_types].fill(0.0);
        row[2 * nr + 1 + s.type_index] = 1.0;
        row[2 * nr + 1 + num_types] = if s.num_running > 0 { 1.0 } else { 0.0 };
        row[next_col] = f32::INFINITY;
        if env.config.extended_features {
            row[next_col + 1] = 0.0;
        }
    }
    for &i in &env.running {
        let rec = &env.records[i as usize];
        let n = rec.server as usize;
        let spec = &env.tasks[i as usize];
        let to_go_s = (env.estimated_finish_s(i) - env.now_s).max(0.0);
        let cell = &mut server_block[n * sf + next_col];
        *cell = cell.min(to_go_s as f32);
        if env.config.extended_features {
            // Remaining estimated work in server-seconds: time to go × the share of the
            // server the task holds (mean over the resources the server has).
            let share = mean_share(&spec.demand[..nr], &env.servers[n].capacity[..nr]);
            server_block[n * sf + next_col + 1] += (to_go_s * share) as f32;
        }
    }
    for row in server_block.chunks_exact_mut(sf) {
        let to_go_s = row[next_col];
        row[next_col] = if to_go_s.is_finite() {
            squash(f64::from(to_go_s) / scale)
        } else {
            0.0
        };
        if env.config.extended_features {
            row[next_col + 1] = squash(f64::from(row[next_col + 1]) / scale);
        }
    }
    if env.config.health.is_some() {
        for (n, row) in server_block.chunks_exact_mut(sf).enumerate() {
            row[sf - 1] = env.health(n) as f32;
        }
    }
}

/// The mean over resources with capacity of demand / capacity.
fn mean_share(demand: &[u32], capacity: &[u32]) -> f64 {
    let (sum, n) = demand
        .iter()
        .zip(capacity)
        .filter(|(_, c)| **c > 0)
        .fold((0.0, 0usize), |(s, n), (&d, &c)| {
            (s + f64::from(d) / f64::from(c), n + 1)
        });
    if n == 0 { 0.0 } else { sum / n as f64 }
}

fn write_slot_rows(env: &ClusterEnv, slot_block: &mut [f32]) {
    let nr = env.num_resources;
    let scale = env.config.time_scale_s;
    let queue = &env.queue;
    let kf = env.layout.slot_features;
    for (row, slot) in slot_block.chunks_exact_mut(kf).zip(&queue.slots) {
        let Some(i) = *slot else {
            row.fill(0.0);
            continue;
        };
        let spec = &env.tasks[i as usize];
        row[0] = 1.0;
        for r in 0..nr {
            row[1 + r] = frac(f64::from(spec.demand[r]), env.max_capacity[r]);
        }
        row[1 + nr] = squash(spec.estimate_s / scale);
        row[2 + nr] = squash((env.now_s - spec.arrival_s) / scale);
        row[3 + nr] = priority_feature(env, spec.priority);
        match spec.deadline_s {
            Some(deadline_s) => {
                row[4 + nr] = 1.0;
                row[5 + nr] = ((deadline_s - env.now_s - spec.estimate_s) / scale).tanh() as f32;
            }
            None => {
                row[4 + nr] = 0.0;
                row[5 + nr] = 0.0;
            }
        }
        let fits = env.fits_somewhere_now(i);
        row[6 + nr] = if fits { 1.0 } else { 0.0 };
        if env.config.extended_features {
            let estimate_s = spec.estimate_s.max(1e-9);
            let wait_s = (env.now_s - spec.arrival_s).max(0.0);
            row[7 + nr] = (scale / estimate_s).min(1.0) as f32;
            row[8 + nr] = squash(wait_s / estimate_s);
            row[9 + nr] = squash(
                spec.estimate_s * mean_share(&spec.demand[..nr], &env.max_capacity[..nr]) / scale,
            );
        }
    }
}

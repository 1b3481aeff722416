//! Building a [`ClusterEnv`] from its config: servers, reservation gates, observation
//! layout, the free-capacity index and the per-type aggregates.

use super::ClusterEnv;
use super::config::ClusterConfig;
use super::index::ServerIndex;
use super::observation;
use super::placement::reservation_gates;
use super::state::{self, EventQueue, ServerState, TaskQueue};
use super::views::Census;
use crate::api::Env;
use crate::metrics::EpisodeMetrics;
use crate::workload::MAX_RESOURCES;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

impl ClusterEnv {
    /// Builds the env and starts a first episode from `config.seed`.
    pub fn new(config: ClusterConfig) -> Self {
        let num_resources = config.resources.len();
        let mut servers = Vec::new();
        let mut max_capacity = [0u32; MAX_RESOURCES];
        let mut capacity_total = [0f64; MAX_RESOURCES];
        let mut type_ranges = Vec::new();
        for (t, ty) in config.server_types.iter().enumerate() {
            let lo = servers.len();
            for _ in 0..ty.count {
                let mut s = ServerState::new(t, ty.speed, ty.capacity);
                if let Some(g) = &config.gpu {
                    s.num_gpus = (ty.capacity[g.resource] / g.units_per_gpu.max(1))
                        .min(state::MAX_GPUS as u32) as u8;
                    s.model_bit = ty.gpu_model.map_or(0, |m| 1u32 << m);
                }
                servers.push(s);
            }
            // Reserved servers are taken from the end of the type, highest class first.
            let gates = reservation_gates(ty.count, &config.reservations);
            for (s, gate) in servers[lo..].iter_mut().zip(gates) {
                s.min_priority = gate;
            }
            type_ranges.push((lo, servers.len()));
            for r in 0..num_resources {
                max_capacity[r] = max_capacity[r].max(ty.capacity[r]);
                capacity_total[r] += ty.count as f64 * f64::from(ty.capacity[r]);
            }
        }
        let max_speed = config
            .server_types
            .iter()
            .map(|t| t.speed)
            .fold(0.0, f64::max);
        let layout = observation::layout(&config, servers.len());
        let obs_space = observation::space(&layout, num_resources);
        let num_types = config.server_types.len();
        let index = ServerIndex::new(&servers, num_types, num_resources);
        let any_failures = config.server_types.iter().any(|t| t.failure.is_some());
        let type_min_gate = type_ranges
            .iter()
            .map(|&(lo, hi)| {
                servers[lo..hi]
                    .iter()
                    .map(|s| s.min_priority)
                    .min()
                    .unwrap_or(0)
            })
            .collect();
        let mut env = Self {
            index,
            type_min_gate,
            type_ranges,
            type_free_sum: vec![[0; MAX_RESOURCES]; num_types],
            type_num_up: vec![0; num_types],
            type_num_busy: vec![0; num_types],
            type_num_off: vec![0; num_types],
            any_failures,
            fail_rng: ChaCha8Rng::seed_from_u64(0),
            health_rng: ChaCha8Rng::seed_from_u64(0),
            health_salt: 0,
            next_failure_s: vec![f64::INFINITY; servers.len()],
            announced: vec![false; servers.len()],
            power_w_total: 0.0,
            energy_j: 0.0,
            num_failures: 0,
            num_killed: 0,
            lost_work_s: 0.0,
            num_preempted: 0,
            num_migrated: 0,
            rows: Vec::new(),
            schedule: None,
            obs_space,
            layout,
            num_resources,
            max_capacity,
            capacity_total,
            max_speed,
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            tasks: Vec::new(),
            records: Vec::new(),
            events: EventQueue::default(),
            queue: TaskQueue::new(config.num_slots, config.backlog_cap, config.slot_order),
            running: Vec::new(),
            servers,
            now_s: 0.0,
            episode_start_s: 0.0,
            next_arrival: 0,
            census: Census::default(),
            num_decisions: 0,
            presence_sum: 0.0,
            used: [0; MAX_RESOURCES],
            used_integral: [0.0; MAX_RESOURCES],
            pending_cost: 0.0,
            terminated: false,
            end_pending: false,
            truncated: false,
            metrics: EpisodeMetrics::default(),
            metrics_ready: false,
            scratch: Vec::new(),
            config,
        };
        let mut obs = vec![0.0; env.layout.dim()];
        env.reset(None, &mut obs);
        env
    }
}

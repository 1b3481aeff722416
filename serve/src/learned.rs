//! Ranking a real queue with a trained checkpoint.
//!
//! A policy reads only its scenario's observation, so the queue is first made a state of that
//! scenario: [`LearnedRanker`] loads the jobs the scheduler reports (running, with their
//! starts, and waiting) into a [`ClusterEnv`] with [`ClusterEnv::load_live`], in the
//! scenario's seconds (real seconds / `time_scale`) and with each job's CPUs as its demand of
//! the scenario's one resource. The policy then scores every visible slot with its head
//! (logits, or Q-values), as if every visible job could be chosen now, and the ranking is:
//!
//! 1. the visible jobs, highest score first (ties: slot order);
//! 2. the jobs the scenario keeps in its backlog, in the order they would fill slots;
//! 3. jobs the scenario would not admit (larger than its cluster, or beyond its backlog), by
//!    arrival.
//!
//! For RLScheduler's kernel network (one MLP scores each job from its own row and the shared
//! cluster features) the first part is exactly the policy's priority function. The scheduler
//! keeps its own discipline: under Slurm's backfill a top job that does not fit gets a
//! reservation and smaller jobs backfill around it.
//!
//! The scenario must describe the real cluster: one resource (processors) whose total
//! capacity is the cluster's CPU count ([`LearnedRanker::check_cluster`]). Its observation
//! must be the checkpoint's: the same layout and actions, and the same time unit where the
//! checkpoint records the one it was trained with.

use crate::rank::{QueueState, QueuedJob};
use lepton_agent::checkpoint::LoadedPolicy;
use lepton_env::api::{ActionBlock, Env};
use lepton_env::cluster::{ClusterEnv, LiveError, LiveState};
use lepton_env::scenario::{self, Scenario};
use lepton_env::workload::TaskSpec;
use std::collections::HashSet;
use std::path::Path;
use tch::Device;

/// The estimate given a job without a time limit (a year): only finite estimates enter an
/// observation, and a year saturates every time feature.
pub const UNLIMITED_ESTIMATE_S: f64 = 365.0 * 86_400.0;

/// A checkpoint and scenario that cannot rank a real queue.
#[derive(Debug, thiserror::Error)]
pub enum LearnedError {
    #[error("{0}")]
    Scenario(String),
    #[error("{0}")]
    Checkpoint(String),
    #[error(
        "checkpoint {checkpoint} does not fit scenario {scenario}: it was trained on {trained}, the scenario gives {given}"
    )]
    Mismatch {
        checkpoint: String,
        scenario: String,
        trained: String,
        given: String,
    },
    #[error(
        "scenario {scenario} has {capacity} processors but the Slurm cluster has {cpus} CPUs: the scenario must describe the real cluster"
    )]
    Cluster {
        scenario: String,
        capacity: u64,
        cpus: u64,
    },
}

/// A trained policy and the scenario env it observes through.
#[derive(Debug)]
pub struct LearnedRanker {
    name: String,
    scenario: String,
    policy: LoadedPolicy,
    env: ClusterEnv,
    time_scale: f64,
    obs: Vec<f32>,
    mask: Vec<bool>,
    slots: usize,
}

impl LearnedRanker {
    /// Loads `checkpoint` (a `best.json`, a run or checkpoint folder: see
    /// `lepton_agent::checkpoint::resolve`) to observe through `scenario_path`, on the CPU.
    /// `time_scale` is real seconds per scenario second (a replay's scale; 1 on a real
    /// cluster).
    pub fn load(
        checkpoint: &Path,
        scenario_path: &Path,
        time_scale: f64,
    ) -> Result<Self, LearnedError> {
        let scenario_name = scenario_path.display().to_string();
        let bad_scenario = |reason: &str| {
            LearnedError::Scenario(format!(
                "{scenario_name}: {reason} (lepton-serve gives a policy each Slurm job's CPUs as its demand of the scenario's one resource)"
            ))
        };
        let env = match scenario::load_file(scenario_path)
            .map_err(|e| LearnedError::Scenario(e.to_string()))?
        {
            Scenario::Cluster(config) => ClusterEnv::new(config),
            Scenario::DeepRm(_) => return Err(bad_scenario("a DeepRM scenario has no job queue")),
        };
        if env.num_resources() != 1 {
            return Err(bad_scenario(&format!(
                "it has {} resources ({})",
                env.num_resources(),
                env.resource_names().join(", ")
            )));
        }
        let policy = LoadedPolicy::load(checkpoint, Device::Cpu)
            .map_err(|e| LearnedError::Checkpoint(e.to_string()))?;
        let checkpoint_name = checkpoint.display().to_string();
        let mismatch = |trained: String, given: String| LearnedError::Mismatch {
            checkpoint: checkpoint_name.clone(),
            scenario: scenario_name.clone(),
            trained,
            given,
        };
        let trained_layout = lepton_env::api::ObsLayout::from(policy.meta().obs_layout);
        if !env.obs_layout().reads_as(&trained_layout) {
            return Err(mismatch(
                format!("observation layout {trained_layout:?}"),
                format!("{:?}", env.obs_layout()),
            ));
        }
        let time_scale_s = env.config().time_scale_s;
        if let Some(trained_s) = policy.meta().obs_time_scale_s
            && (trained_s - time_scale_s).abs() > 1e-9 * trained_s.abs()
        {
            return Err(mismatch(
                format!("time features in units of {trained_s} s"),
                format!("{time_scale_s} s (`[observation] time_scale_s`)"),
            ));
        }
        let actions = env.action_layout();
        if policy.meta().action_layout != actions {
            return Err(mismatch(
                format!("actions {:?}", policy.meta().action_layout.blocks),
                format!("{:?}", actions.blocks),
            ));
        }
        let slots = match actions.blocks.as_slice() {
            [ActionBlock::Slots { slots }, ActionBlock::Wait] => *slots,
            other => {
                return Err(bad_scenario(&format!(
                    "its actions are {other:?}; ranking needs one action per visible job and wait (`[actions] mode = \"slot\"`)"
                )));
            }
        };
        if !(time_scale.is_finite() && time_scale > 0.0) {
            return Err(LearnedError::Scenario(format!(
                "time scale {time_scale}: must be a positive number of real seconds per scenario second"
            )));
        }
        let obs = vec![0.0; env.obs_layout().dim()];
        let mask = vec![false; slots + 1];
        Ok(Self {
            name: format!("checkpoint {checkpoint_name}"),
            scenario: scenario_name,
            policy,
            env,
            time_scale,
            obs,
            mask,
            slots,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Refuses a real cluster whose CPU count is not the scenario's processor count.
    pub fn check_cluster(&self, cpus: u64) -> Result<(), LearnedError> {
        let capacity: u64 = self
            .env
            .server_types()
            .iter()
            .map(|t| t.count as u64 * u64::from(t.capacity[0]))
            .sum();
        if capacity == cpus {
            Ok(())
        } else {
            Err(LearnedError::Cluster {
                scenario: self.scenario.clone(),
                capacity,
                cpus,
            })
        }
    }

    /// The queue's job ids, first to start first (see the module docs).
    pub fn rank(&mut self, queue: &QueueState) -> Result<Vec<u64>, LiveError> {
        let scale = self.time_scale;
        let spec = |j: &QueuedJob| {
            let estimate_s = if j.estimate_s.is_finite() {
                j.estimate_s / scale
            } else {
                UNLIMITED_ESTIMATE_S
            };
            // The true run time is unknown: the estimate stands in for it.
            TaskSpec::new(j.id, j.arrival_s / scale, estimate_s, &[j.procs.max(1)])
        };
        let state = LiveState {
            now_s: queue.now_s / scale,
            running: queue
                .running
                .iter()
                .map(|r| (spec(&r.job), r.start_s / scale))
                .collect(),
            waiting: queue.waiting.iter().map(spec).collect(),
        };
        self.env.load_live(&state, &mut self.obs)?;
        // Every visible job may be ranked, whether or not it fits now; wait keeps the mask
        // non-empty.
        for (k, m) in self.mask[..self.slots].iter_mut().enumerate() {
            *m = self.env.slot(k).is_some();
        }
        self.mask[self.slots] = true;
        let scores = self.policy.scores(&self.obs, &self.mask);
        let mut visible: Vec<(usize, u64)> = (0..self.slots)
            .filter_map(|k| self.env.slot(k).map(|s| (k, s.task_id)))
            .collect();
        visible.sort_by(|&(a, _), &(b, _)| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        let backlog = self
            .env
            .queued()
            .filter(|q| q.slot.is_none())
            .map(|q| q.task_id);
        let mut by_arrival: Vec<&QueuedJob> = queue.waiting.iter().collect();
        by_arrival.sort_by(|a, b| a.arrival_s.total_cmp(&b.arrival_s).then(a.id.cmp(&b.id)));
        // Each id once (Slurm's ids are unique; a repeated one is ranked where it comes first).
        let mut seen = HashSet::new();
        let ranking: Vec<u64> = visible
            .into_iter()
            .map(|(_, id)| id)
            .chain(backlog)
            .chain(by_arrival.into_iter().map(|j| j.id))
            .filter(|&id| seen.insert(id))
            .collect();
        Ok(ranking)
    }
}

//! # lepton-env
//!
//! An event-driven simulator of a compute cluster behind a Gymnasium-style API: heterogeneous
//! servers, task queues with priorities and deadlines, action masks, a parallel vector env,
//! synthetic workloads and heuristic schedulers. This crate never depends on libtorch.

pub mod api;
pub mod cartpole;
pub mod check;
pub mod cluster;
pub mod deeprm;
pub mod metrics;
pub mod scenario;
pub mod schedulers;
pub mod spaces;
pub mod trace;
pub mod vec_env;
pub mod workload;
pub mod wrappers;

pub use api::{Env, EnvError, ObsLayout, Transition};
pub use cartpole::{CartPole, CartPoleV1};
pub use check::{CheckReport, Inspect, check_env};
pub use cluster::ClusterEnv;
pub use deeprm::DeepRmEnv;
pub use metrics::EpisodeMetrics;
pub use scenario::{Scenario, ScenarioEnv, ScenarioError};
pub use spaces::{BoxSpace, Discrete};
pub use vec_env::{VecEnv, VecEnvBuildError, VecEnvError};
pub use wrappers::{EpisodeStatistics, EpisodeStats, TimeLimit};

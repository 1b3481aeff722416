//! # lepton-env
//!
//! An event-driven simulator of a compute cluster behind a Gymnasium-style API: heterogeneous
//! servers, task queues with priorities and deadlines, action masks, a parallel vector env,
//! synthetic workloads, real traces (SWF, Alibaba GPU v2023, Tiresias), failures, energy and
//! heuristic schedulers. This crate never depends on libtorch.
//!
//! Load a shipped scenario, step it Gymnasium-style with an action mask, and score a heuristic:
//!
//! ```
//! use lepton_env::{Env, scenario, schedulers};
//!
//! let scenario = scenario::load_named("tiny").unwrap();
//! let mut env = scenario.build();
//! let mut obs = vec![0.0; env.observation_space().dim()];
//! let mut mask = vec![false; env.action_space().n];
//! env.reset(Some(7), &mut obs);
//! env.action_mask(&mut mask);
//! let wait = env.action_space().n - 1;
//! assert!(mask[wait], "waiting is legal (tiny has no hold limit)");
//! let step = env.step(wait, &mut obs).unwrap();
//! assert!(env.observation_space().contains(&obs));
//! assert!(step.reward <= 0.0, "the default reward is minus the slowdown accrued");
//!
//! let mut sjf = schedulers::by_name("sjf").unwrap();
//! let metrics = schedulers::run_episode(sjf.as_mut(), &mut env, 7).unwrap();
//! assert_eq!(metrics.num_finished + metrics.num_dropped + metrics.num_unfinished, metrics.num_tasks);
//! ```
//!
//! Map of the crate: [`api`] (the `Env` contract), [`cluster`] and [`deeprm`] (the two state
//! models), [`workload`] and [`trace`] (where tasks come from), [`scenario`] (TOML → env),
//! [`schedulers`] (heuristics), [`check`] (the env checker), [`vec_env`], [`wrappers`],
//! [`cartpole`] (for validating learners on a task with known learning curves).

pub mod api;
pub mod cartpole;
pub mod cartpole_vec;
pub mod check;
pub mod cluster;
pub mod deeprm;
pub mod metrics;
pub mod scenario;
pub mod schedulers;
pub mod seeds;
pub mod spaces;
pub mod trace;
pub mod vec_env;
pub mod workload;
pub mod wrappers;

pub use api::{ActionBlock, ActionLayout, Env, EnvError, ObsLayout, Transition};
pub use cartpole::{CartPole, CartPoleV1};
pub use cartpole_vec::CartPoleVec;
pub use check::{CheckReport, Inspect, check_env};
pub use cluster::ClusterEnv;
pub use deeprm::DeepRmEnv;
pub use metrics::EpisodeMetrics;
pub use scenario::{Scenario, ScenarioEnv, ScenarioError};
pub use spaces::{BoxSpace, Discrete};
pub use vec_env::{VecEnv, VecEnvBuildError, VecEnvError, VectorEnv};
pub use wrappers::{EpisodeStatistics, EpisodeStats, TimeLimit};

//! # lepton-agent
//!
//! libtorch (tch) networks and the learning algorithms of lepton: a masked categorical
//! distribution ([`distributions`]), actor-critic networks behind one [`networks::Policy`]
//! type (a flat MLP and a set-structured network over servers and slots), on-device rollout
//! storage with GAE ([`rollout`]), whole-episode rollouts of same-workload groups with their
//! group baselines ([`episodes`]), the PPO update of CleanRL's `ppo.py` ([`ppo`]), running
//! observation normalisation ([`normalize`]) and the checkpoint format ([`checkpoint`]),
//! including [`checkpoint::LoadedPolicy`] for evaluation; and DQN ([`dqn`]: Double DQN, dueling
//! heads, masked ε-greedy) over uniform or prioritized replay with n-step returns ([`replay`],
//! on an f64 sum tree); the imitation warm start's losses and cloning ([`imitation`]); and
//! evolution strategies over the same policies ([`es`]).
//!
//! ```no_run
//! use lepton_agent::checkpoint::LoadedPolicy;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut policy = LoadedPolicy::load("runs/demo/checkpoints/best.json", tch::Device::Cpu)?;
//! let obs = vec![0.0f32; policy.obs_dim()];
//! let mask = vec![true; policy.num_actions()];
//! let action = policy.act(&obs, &mask);
//! # let _ = action; Ok(()) }
//! ```

pub mod checkpoint;
pub mod device;
pub mod distributions;
pub mod dqn;
pub mod episodes;
pub mod es;
pub mod imitation;
pub mod named;
pub mod networks;
pub mod normalize;
pub mod optim;
pub mod ppo;
pub mod replay;
pub mod rollout;

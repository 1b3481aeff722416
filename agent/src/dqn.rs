//! DQN (Mnih et al. 2015) with the usual refinements, following CleanRL's `dqn.py`:
//! Double-DQN targets (van Hasselt et al. 2016), an optional dueling head (Wang et al. 2016),
//! n-step returns and prioritized replay ([`crate::replay`]), a Huber loss weighted by the
//! importance weights, gradient-norm clipping, a target network updated by hard copy or Polyak
//! averaging, and ε-greedy exploration with a linear schedule.
//!
//! ## Q-networks
//! A [`QNetwork`] wraps the actor-critic [`Policy`] of [`crate::networks`], so both
//! architectures (flat MLP and the set network) serve as Q-networks and DQN checkpoints use the
//! PPO checkpoint format unchanged:
//! * plain: `Q(s, ·)` = the policy head's outputs (the value head is unused; choose
//!   `shared_trunk = true` so no second trunk is carried);
//! * dueling: `Q(s, a) = V(s) + A(s, a) − mean_a A(s, a)` with `V` the value head and `A` the
//!   policy head (the mean runs over all actions, legal or not: it only fixes the split between
//!   `V` and `A`, never the arg-max).
//!
//! Either way the greedy action is the arg-max of the policy head over legal actions, which is
//! exactly what [`crate::checkpoint::LoadedPolicy`] computes, so evaluation needs nothing new.
//!
//! ## Masking
//! Exploration draws only legal actions; the greedy action and the Double-DQN arg-max over the
//! next state use that state's mask (stored with each transition by the replay buffer). The
//! bootstrap value is the *target* network's value of that legal arg-max, which is always finite.
//!
//! ## One learning step ([`update`])
//! `y = R + d · Q_target(s', argmax_{a' legal} Q_online(s', a'))` (plain DQN: the arg-max of
//! `Q_target`), where `R` is the n-step return and `d` is `γ^k` or 0 after a termination;
//! `loss = mean_i w_i · huber(Q_online(s, a) − y)`; gradients clipped to `max_grad_norm`; one
//! Adam step. The TD errors `Q_online(s, a) − y` come back for the priority update.

use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::distributions::{masked_argmax, masked_argmax_row};
use crate::networks::{Head, NetworkConfig, NetworkError, Policy};
use crate::optim::Adam;
use crate::replay::SampleBatch;

/// The `[dqn]` section of a training config.
///
/// The schedule is CleanRL's `dqn.py` for CartPole (lr 2.5e-4, batch 128, learning starts at
/// 10,000 steps, a learning step every 10, a hard target copy every 500, ε 1 → 0.05 over half
/// the run). The learning rule is not that script's: by default **Double-DQN targets**
/// (`double_q`), a **Huber loss** with δ = 1 (`huber_delta`; CleanRL uses the squared error)
/// and **gradient-norm clipping** at 10 (`max_grad_norm`; CleanRL has none) are on, and the
/// `[replay]` section defaults to **prioritized replay** (α 0.6, β 0.4 → 1). Set
/// `double_q = false`, a large `huber_delta`, a large `max_grad_norm` and
/// `replay.prioritized = false` for CleanRL's algorithm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DqnConfig {
    /// Parallel envs (each env step counts once towards every `*_steps` setting below).
    pub num_envs: usize,
    /// Adam learning rate (constant).
    pub lr: f64,
    /// Adam epsilon.
    pub adam_eps: f64,
    /// Discount factor.
    pub gamma: f64,
    /// Transitions per learning step.
    pub batch_size: usize,
    /// Env steps of pure ε-greedy collection before the first learning step.
    pub learning_starts: u64,
    /// Env steps between learning steps. A vector step of `num_envs` env steps that crosses
    /// k multiples of it makes k learning steps, so the ratio of updates to env steps does not
    /// depend on `num_envs`.
    pub train_frequency: u64,
    /// Gradient steps per learning step (SB3's `gradient_steps`): updates per env step are
    /// `gradient_steps / train_frequency`.
    pub gradient_steps: u64,
    /// Env steps between target-network updates.
    pub target_update_frequency: u64,
    /// Target update `θ⁻ ← τ·θ + (1 − τ)·θ⁻`; 1 is a hard copy.
    pub tau: f64,
    /// ε at the start of training.
    pub start_epsilon: f64,
    /// ε after the schedule.
    pub end_epsilon: f64,
    /// Fraction of `total_steps` over which ε decays linearly.
    pub exploration_fraction: f64,
    /// Double-DQN targets (the online network picks the next action, the target network
    /// values it); `false` is the original max over the target network.
    pub double_q: bool,
    /// Dueling head `Q = V + A − mean(A)`.
    pub dueling: bool,
    /// Huber loss threshold (the loss is quadratic below it, linear above).
    pub huber_delta: f64,
    /// Global gradient-norm clip.
    pub max_grad_norm: f64,
    /// Save the replay buffer with each periodic checkpoint (exact resume; costs a file the
    /// size of the buffer). Without it a resumed run starts from an empty buffer.
    pub checkpoint_replay: bool,
    /// A heuristic whose transitions fill the replay buffer before the first env step
    /// (whole episodes on training seeds, `prefill_steps` decisions at least), so learning
    /// starts from a good scheduler's experience; `None`: no prefill.
    pub prefill_teacher: Option<String>,
    /// Teacher decisions to prefill (with `prefill_teacher`); they do not count as env steps.
    pub prefill_steps: u64,
}

/// Bound on [`DqnConfig::gradient_steps`]: more per learning step would stall a run between
/// env steps for minutes.
pub const MAX_GRADIENT_STEPS: u64 = 10_000;

impl Default for DqnConfig {
    fn default() -> Self {
        Self {
            num_envs: 1,
            lr: 2.5e-4,
            adam_eps: 1e-8,
            gamma: 0.99,
            batch_size: 128,
            learning_starts: 10_000,
            train_frequency: 10,
            gradient_steps: 1,
            target_update_frequency: 500,
            tau: 1.0,
            start_epsilon: 1.0,
            end_epsilon: 0.05,
            exploration_fraction: 0.5,
            double_q: true,
            dueling: false,
            huber_delta: 1.0,
            max_grad_norm: 10.0,
            checkpoint_replay: true,
            prefill_teacher: None,
            prefill_steps: 10_000,
        }
    }
}

impl DqnConfig {
    /// Every problem with the values, as messages naming the `dqn.*` key.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        let positive = [
            ("lr", self.lr),
            ("adam_eps", self.adam_eps),
            ("huber_delta", self.huber_delta),
            ("max_grad_norm", self.max_grad_norm),
        ];
        for (key, value) in positive {
            if !(value > 0.0 && value.is_finite()) {
                errors.push(format!("dqn.{key} must be > 0, got {value}"));
            }
        }
        let unit = [
            ("gamma", self.gamma),
            ("start_epsilon", self.start_epsilon),
            ("end_epsilon", self.end_epsilon),
            ("exploration_fraction", self.exploration_fraction),
        ];
        for (key, value) in unit {
            if !(0.0..=1.0).contains(&value) {
                errors.push(format!("dqn.{key} must be in [0, 1], got {value}"));
            }
        }
        if !(self.tau > 0.0 && self.tau <= 1.0) {
            errors.push(format!("dqn.tau must be in (0, 1], got {}", self.tau));
        }
        let counts = [
            ("num_envs", self.num_envs as u64),
            ("batch_size", self.batch_size as u64),
            ("train_frequency", self.train_frequency),
            ("gradient_steps", self.gradient_steps),
            ("target_update_frequency", self.target_update_frequency),
        ];
        for (key, value) in counts {
            if value == 0 {
                errors.push(format!("dqn.{key} must be at least 1"));
            }
        }
        if self.gradient_steps > MAX_GRADIENT_STEPS {
            errors.push(format!(
                "dqn.gradient_steps must be at most {MAX_GRADIENT_STEPS}, got {}",
                self.gradient_steps
            ));
        }
        if self.num_envs > crate::ppo::MAX_ENVS {
            errors.push(format!(
                "dqn.num_envs must be at most {}, got {}",
                crate::ppo::MAX_ENVS,
                self.num_envs
            ));
        }
        if self.batch_size > crate::ppo::MAX_BATCH {
            errors.push(format!(
                "dqn.batch_size must be at most {}, got {}",
                crate::ppo::MAX_BATCH,
                self.batch_size
            ));
        }
        if let Some(teacher) = &self.prefill_teacher {
            if let Err(e) = lepton_env::schedulers::by_name(teacher) {
                errors.push(format!("dqn.prefill_teacher: {e}"));
            }
            if self.prefill_steps == 0 {
                errors.push("dqn.prefill_steps must be at least 1".into());
            }
        }
        errors
    }

    /// ε after `step` of `total_steps` env steps.
    pub fn epsilon(&self, step: u64, total_steps: u64) -> f64 {
        let duration = self.exploration_fraction * total_steps as f64;
        linear_schedule(self.start_epsilon, self.end_epsilon, duration, step as f64)
    }
}

/// CleanRL's `linear_schedule`: from `start` at `t = 0` to `end` at `t = duration`, then flat.
pub fn linear_schedule(start: f64, end: f64, duration: f64, t: f64) -> f64 {
    if duration <= 0.0 || t >= duration {
        return end;
    }
    start + (end - start) * (t / duration)
}

/// A Q-network: a [`Policy`] read as Q-values (see the module docs).
#[derive(Debug)]
pub struct QNetwork {
    policy: Policy,
    dueling: bool,
}

impl QNetwork {
    /// A freshly initialised Q-network (draws from libtorch's global RNG).
    pub fn new(
        network: &NetworkConfig,
        dueling: bool,
        layout: lepton_env::ObsLayout,
        actions: &lepton_env::ActionLayout,
        device: Device,
    ) -> Result<Self, NetworkError> {
        Ok(Self::from_policy(
            Policy::new(network, layout, actions, Head::Q, device)?,
            dueling,
        ))
    }

    /// Reads an existing policy network as a Q-network.
    pub fn from_policy(policy: Policy, dueling: bool) -> Self {
        Self { policy, dueling }
    }

    /// Q-values `[B, num_actions]` for observations `[B, obs_dim]` (unmasked).
    pub fn q_values(&self, obs: &Tensor) -> Tensor {
        let (advantages, value) = self.policy.forward(obs);
        if self.dueling {
            value.unsqueeze(-1) + &advantages - advantages.mean_dim(-1, true, Kind::Float)
        } else {
            advantages
        }
    }

    /// The underlying network (for the optimizer and checkpoints).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn dueling(&self) -> bool {
        self.dueling
    }

    pub fn device(&self) -> Device {
        self.policy.device()
    }

    /// `θ ← τ·θ_source + (1 − τ)·θ`; `τ = 1` copies exactly.
    ///
    /// # Panics
    /// When the two networks do not have the same parameters.
    pub fn update_from(&mut self, source: &QNetwork, tau: f64) {
        let mine = self.policy.named_parameters();
        let theirs = source.policy.named_parameters();
        assert_eq!(
            mine.len(),
            theirs.len(),
            "target and online networks differ"
        );
        tch::no_grad(|| {
            for ((name, mut target), (source_name, online)) in mine.into_iter().zip(theirs) {
                assert_eq!(name, source_name, "target and online networks differ");
                if tau >= 1.0 {
                    target.copy_(&online);
                } else {
                    target.copy_(&(&online * tau + &target * (1.0 - tau)));
                }
            }
        });
    }
}

/// ε-greedy over legal actions for a row-major batch of masks (`[rows, num_actions]`): each
/// row explores with probability `epsilon` (a uniform legal action) and otherwise takes the
/// masked arg-max of the Q-values. `q_values` (row-major `[rows, num_actions]`) is called at
/// most once, and only when some row is greedy, so exploring steps skip the forward pass. The
/// RNG draws one coin per row, then one index per exploring row.
///
/// # Panics
/// When a mask row has no legal action.
pub fn epsilon_greedy<R: Rng>(
    mask: &[bool],
    num_actions: usize,
    epsilon: f64,
    rng: &mut R,
    out: &mut [usize],
    q_values: impl FnOnce() -> Vec<f32>,
) {
    const GREEDY: usize = usize::MAX;
    for action in out.iter_mut() {
        *action = if rng.random::<f64>() < epsilon {
            0
        } else {
            GREEDY
        };
    }
    for (row, action) in out.iter_mut().enumerate() {
        if *action == GREEDY {
            continue;
        }
        let m = &mask[row * num_actions..(row + 1) * num_actions];
        let num_legal = m.iter().filter(|&&b| b).count();
        assert!(num_legal > 0, "an action mask with no legal action");
        let k = rng.random_range(0..num_legal);
        *action = m
            .iter()
            .enumerate()
            .filter(|(_, b)| **b)
            .nth(k)
            .map(|(a, _)| a)
            .expect("k < num_legal");
    }
    if out.contains(&GREEDY) {
        let q = q_values();
        for (row, action) in out.iter_mut().enumerate() {
            if *action == GREEDY {
                let range = row * num_actions..(row + 1) * num_actions;
                *action = masked_argmax_row(&q[range.clone()], &mask[range]);
            }
        }
    }
}

/// Bootstrapped targets `y = R + d · Q_target(s', a*)` with `a*` the legal arg-max of
/// `q_next_select` (the online network's next Q-values for Double DQN, the target network's
/// for plain DQN). All inputs `[B]` or `[B, A]`; no gradient flows.
pub fn td_targets(
    q_next_select: &Tensor,
    q_next_target: &Tensor,
    next_mask: &Tensor,
    returns: &Tensor,
    discounts: &Tensor,
) -> Tensor {
    let next_action = masked_argmax(q_next_select, next_mask);
    let next_value = q_next_target
        .gather(-1, &next_action.unsqueeze(-1), false)
        .squeeze_dim(-1);
    (returns + discounts * next_value).detach()
}

/// Elementwise Huber loss with threshold `delta`: `x²/2` for `|x| ≤ δ`, `δ(|x| − δ/2)` above.
pub fn huber(x: &Tensor, delta: f64) -> Tensor {
    let abs = x.abs();
    let quadratic = abs.clamp_max(delta);
    let linear = &abs - &quadratic;
    &quadratic * &quadratic * 0.5 + linear * delta
}

/// What one learning step measured.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateStats {
    /// The importance-weighted Huber loss.
    pub td_loss: f64,
    /// Mean `Q_online(s, a)` of the batch's actions.
    pub q_values: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// `Q_online(s, a) − y` per row, for [`crate::replay::ReplayBuffer::update_priorities`].
    pub td_errors: Vec<f32>,
}

/// One gradient step of `online` on `batch` (see the module docs).
pub fn update(
    config: &DqnConfig,
    online: &QNetwork,
    target: &QNetwork,
    adam: &mut Adam,
    batch: &SampleBatch,
) -> UpdateStats {
    let device = online.device();
    let b = batch.len() as i64;
    let d = batch.obs.len() as i64 / b;
    let to = |t: Tensor| t.to_device(device);
    let obs = to(Tensor::from_slice(&batch.obs).view([b, d]));
    let next_obs = to(Tensor::from_slice(&batch.next_obs).view([b, d]));
    let next_mask = to(Tensor::from_slice(&batch.next_masks).view([b, -1]));
    let actions = to(Tensor::from_slice(&batch.actions));
    let returns = to(Tensor::from_slice(&batch.returns));
    let discounts = to(Tensor::from_slice(&batch.discounts));
    let weights = to(Tensor::from_slice(&batch.weights));

    let y = tch::no_grad(|| {
        let q_next_target = target.q_values(&next_obs);
        let q_next_select = if config.double_q {
            online.q_values(&next_obs)
        } else {
            q_next_target.shallow_clone()
        };
        td_targets(
            &q_next_select,
            &q_next_target,
            &next_mask,
            &returns,
            &discounts,
        )
    });
    let q = online
        .q_values(&obs)
        .gather(-1, &actions.unsqueeze(-1), false)
        .squeeze_dim(-1);
    let td = &q - &y;
    let loss = (huber(&td, config.huber_delta) * &weights).mean(Kind::Float);
    adam.zero_grad();
    loss.backward();
    let grad_norm = adam.clip_grad_norm(config.max_grad_norm);
    adam.step(config.lr);
    let td_errors = Vec::<f32>::try_from(td.detach().to_device(Device::Cpu).to_kind(Kind::Float))
        .expect("a 1-D float tensor converts to Vec<f32>");
    UpdateStats {
        td_loss: loss.double_value(&[]),
        q_values: q.mean(Kind::Float).double_value(&[]),
        grad_norm,
        td_errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::networks::{Activation, Arch};
    use lepton_env::{ActionLayout, ObsLayout};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn t2(rows: &[&[f32]]) -> Tensor {
        let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_slice(&flat).view([rows.len() as i64, -1])
    }

    fn mask2(rows: &[&[bool]]) -> Tensor {
        let flat: Vec<bool> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_slice(&flat).view([rows.len() as i64, -1])
    }

    fn values(t: &Tensor) -> Vec<f64> {
        Vec::<f64>::try_from(t.to_kind(Kind::Double)).unwrap()
    }

    fn relu_mlp() -> NetworkConfig {
        NetworkConfig {
            arch: Arch::Mlp,
            hidden: vec![16],
            activation: Activation::Relu,
            shared_trunk: true,
            ..NetworkConfig::default()
        }
    }

    /// Online next Q (4, 5, 3) and (2, 0, 9); target next Q (10, 20, 30) and (40, 50, 60);
    /// masks (T, F, T) and (T, T, F); returns (1, 2); discounts (0.5, 0).
    /// Double DQN, row 0: the online arg-max over legal {0: 4, 2: 3} is 0 (not the illegal 1),
    /// valued 10 by the target → 1 + 0.5·10 = 6. Row 1: terminated → 2.
    /// Plain DQN, row 0: the target's legal max is 30 → 1 + 0.5·30 = 16.
    #[test]
    fn double_dqn_target_on_a_hand_computed_case() {
        let online = t2(&[&[4.0, 5.0, 3.0], &[2.0, 0.0, 9.0]]);
        let target = t2(&[&[10.0, 20.0, 30.0], &[40.0, 50.0, 60.0]]);
        let mask = mask2(&[&[true, false, true], &[true, true, false]]);
        let returns = Tensor::from_slice(&[1.0f32, 2.0]);
        let discounts = Tensor::from_slice(&[0.5f32, 0.0]);
        assert_eq!(
            values(&td_targets(&online, &target, &mask, &returns, &discounts)),
            [6.0, 2.0]
        );
        assert_eq!(
            values(&td_targets(&target, &target, &mask, &returns, &discounts)),
            [16.0, 2.0]
        );
    }

    #[test]
    fn masked_argmax_never_picks_an_illegal_action() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let (rows, n) = (2000, 7);
        let mut q = vec![0f32; rows * n];
        let mut mask = vec![false; rows * n];
        for r in 0..rows {
            let legal = rng.random_range(0..n); // at least one legal action per row
            for a in 0..n {
                mask[r * n + a] = a == legal || rng.random_bool(0.3);
                // Illegal actions get the largest values, legal ones may be hugely negative.
                q[r * n + a] = if mask[r * n + a] {
                    rng.random_range(-1e30..1.0)
                } else {
                    1e30 + a as f32
                };
            }
        }
        let greedy = masked_argmax(
            &Tensor::from_slice(&q).view([rows as i64, n as i64]),
            &Tensor::from_slice(&mask).view([rows as i64, n as i64]),
        );
        let mut out = vec![0usize; rows];
        for epsilon in [0.0, 0.5, 1.0] {
            epsilon_greedy(&mask, n, epsilon, &mut rng, &mut out, || q.clone());
            for (r, &a) in out.iter().enumerate() {
                assert!(
                    mask[r * n + a],
                    "row {r}: ε = {epsilon} picked illegal action {a}"
                );
                if epsilon == 0.0 {
                    assert_eq!(a, greedy.int64_value(&[r as i64]) as usize, "row {r}");
                    assert_eq!(
                        a,
                        masked_argmax_row(&q[r * n..(r + 1) * n], &mask[r * n..(r + 1) * n])
                    );
                }
            }
        }
        // NaN Q-values never win and never make an illegal action win.
        assert_eq!(
            masked_argmax_row(&[f32::NAN, 1.0, 9.0], &[true, true, false]),
            1
        );
        assert_eq!(
            masked_argmax_row(&[f32::NAN, f32::NAN, 9.0], &[true, true, false]),
            0
        );
    }

    #[test]
    fn exploration_is_uniform_over_legal_actions() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mask = [false, true, false, true, true];
        let mut counts = [0usize; 5];
        let mut out = [0usize];
        for _ in 0..30_000 {
            epsilon_greedy(&mask, 5, 1.0, &mut rng, &mut out, || {
                unreachable!("ε = 1 never asks for Q-values")
            });
            counts[out[0]] += 1;
        }
        assert_eq!((counts[0], counts[2]), (0, 0));
        for a in [1, 3, 4] {
            assert!((counts[a] as f64 - 10_000.0).abs() < 400.0, "{counts:?}");
        }
    }

    /// δ = (0.5, −2), w = (1, 0.5), threshold 1: huber = (0.125, 1.5), weighted mean
    /// (0.125 + 0.75) / 2 = 0.4375.
    #[test]
    fn huber_loss_by_hand() {
        let td = Tensor::from_slice(&[0.5f32, -2.0]);
        let w = Tensor::from_slice(&[1.0f32, 0.5]);
        assert_eq!(values(&huber(&td, 1.0)), [0.125, 1.5]);
        assert!(((huber(&td, 1.0) * w).mean(Kind::Float).double_value(&[]) - 0.4375).abs() < 1e-7);
        // Threshold 3: both quadratic.
        assert_eq!(values(&huber(&td, 3.0)), [0.125, 2.0]);
    }

    #[test]
    fn linear_schedule_matches_cleanrl() {
        assert_eq!(linear_schedule(1.0, 0.05, 100.0, 0.0), 1.0);
        assert!((linear_schedule(1.0, 0.05, 100.0, 50.0) - 0.525).abs() < 1e-12);
        assert_eq!(linear_schedule(1.0, 0.05, 100.0, 200.0), 0.05);
        let config = DqnConfig::default();
        assert_eq!(config.epsilon(250_000, 500_000), 0.05);
        assert!((config.epsilon(125_000, 500_000) - 0.525).abs() < 1e-12);
    }

    #[test]
    fn dueling_head_is_value_plus_centred_advantage() {
        tch::manual_seed(0);
        let q = QNetwork::new(
            &relu_mlp(),
            true,
            ObsLayout::flat(3),
            &ActionLayout::plain(4),
            Device::Cpu,
        )
        .unwrap();
        let obs = Tensor::randn([5, 3], (Kind::Float, Device::Cpu));
        let (adv, value) = q.policy().forward(&obs);
        let qv = q.q_values(&obs);
        // mean_a Q = V, and Q − A is constant across actions.
        let diff = (qv.mean_dim(-1, false, Kind::Float) - value)
            .abs()
            .max()
            .double_value(&[]);
        assert!(diff < 1e-6);
        let spread = (&qv - &adv)
            .std_dim(-1, false, false)
            .max()
            .double_value(&[]);
        assert!(spread < 1e-6);
    }

    /// The set network serves as a (dueling) Q-network too: one Q-value per (slot, server) pair
    /// plus the wait action, and a masked update never bootstraps from an illegal action.
    #[test]
    fn the_set_network_is_a_q_network() {
        tch::manual_seed(4);
        let layout = ObsLayout {
            global: 1,
            server_rows: 2,
            server_features: 2,
            slot_rows: 3,
            slot_features: 1,
            ..ObsLayout::default()
        };
        let network = NetworkConfig {
            arch: Arch::Set,
            embed_dim: 8,
            ..relu_mlp()
        };
        let num_actions = 3 * 2 + 1;
        let actions = ActionLayout::placements_then_wait(3, 2);
        let online = QNetwork::new(&network, true, layout, &actions, Device::Cpu).unwrap();
        let target = QNetwork::new(&network, true, layout, &actions, Device::Cpu).unwrap();
        let obs = Tensor::randn([4, layout.dim() as i64], (Kind::Float, Device::Cpu));
        assert_eq!(online.q_values(&obs).size(), [4, num_actions as i64]);
        let mut adam = Adam::new(online.policy().named_parameters(), 1e-8);
        let mut next_masks = vec![false; 2 * num_actions];
        next_masks[6] = true; // only "wait" is legal in the first next state
        next_masks[num_actions + 2] = true;
        let batch = SampleBatch {
            indices: vec![0, 1],
            weights: vec![1.0, 0.5],
            obs: Vec::<f32>::try_from(obs.narrow(0, 0, 2).reshape([-1])).unwrap(),
            actions: vec![3, 6],
            returns: vec![1.0, 0.0],
            discounts: vec![0.99, 0.99],
            next_obs: Vec::<f32>::try_from(obs.narrow(0, 2, 2).reshape([-1])).unwrap(),
            next_masks,
        };
        let stats = update(&DqnConfig::default(), &online, &target, &mut adam, &batch);
        assert!(stats.td_loss.is_finite() && stats.td_errors.iter().all(|e| e.is_finite()));
    }

    #[test]
    fn target_updates_copy_or_average() {
        tch::manual_seed(1);
        let online = QNetwork::new(
            &relu_mlp(),
            false,
            ObsLayout::flat(2),
            &ActionLayout::plain(2),
            Device::Cpu,
        )
        .unwrap();
        let mut target = QNetwork::new(
            &relu_mlp(),
            false,
            ObsLayout::flat(2),
            &ActionLayout::plain(2),
            Device::Cpu,
        )
        .unwrap();
        let first = |n: &QNetwork| n.policy().named_parameters()[0].1.copy();
        let (o, t) = (first(&online), first(&target));
        target.update_from(&online, 0.25);
        let expected = &o * 0.25 + &t * 0.75;
        assert!((first(&target) - expected).abs().max().double_value(&[]) < 1e-6);
        target.update_from(&online, 1.0);
        assert!(first(&target).equal(&o));
    }

    /// With discount 0 the target is the return: repeated steps on one fixed batch drive the
    /// TD errors towards 0, and the returned errors are `Q − y` of the batch's rows.
    #[test]
    fn updates_fit_fixed_returns() {
        tch::manual_seed(2);
        let online = QNetwork::new(
            &relu_mlp(),
            false,
            ObsLayout::flat(2),
            &ActionLayout::plain(2),
            Device::Cpu,
        )
        .unwrap();
        let target = QNetwork::new(
            &relu_mlp(),
            false,
            ObsLayout::flat(2),
            &ActionLayout::plain(2),
            Device::Cpu,
        )
        .unwrap();
        let config = DqnConfig {
            lr: 1e-2,
            ..DqnConfig::default()
        };
        let mut adam = Adam::new(online.policy().named_parameters(), config.adam_eps);
        let batch = SampleBatch {
            indices: vec![0, 1],
            weights: vec![1.0, 1.0],
            obs: vec![1.0, 0.0, 0.0, 1.0],
            actions: vec![0, 1],
            returns: vec![1.0, -1.0],
            discounts: vec![0.0, 0.0],
            next_obs: vec![0.0; 4],
            next_masks: vec![true; 4],
        };
        let first = update(&config, &online, &target, &mut adam, &batch);
        assert_eq!(first.td_errors.len(), 2);
        // Initial Q ≈ 0 (policy-head gain 0.01), so the errors are ≈ −1 and +1.
        assert!((first.td_errors[0] + 1.0).abs() < 0.1 && (first.td_errors[1] - 1.0).abs() < 0.1);
        let mut last = first;
        for _ in 0..300 {
            last = update(&config, &online, &target, &mut adam, &batch);
        }
        assert!(
            last.td_errors.iter().all(|e| e.abs() < 1e-2),
            "{:?}",
            last.td_errors
        );
        assert!(last.td_loss < 1e-4);
    }

    #[test]
    fn config_validation_names_the_keys() {
        assert!(DqnConfig::default().validate().is_empty());
        let bad = DqnConfig {
            lr: 0.0,
            gamma: 1.5,
            tau: 0.0,
            batch_size: 0,
            ..DqnConfig::default()
        };
        let errors = bad.validate().join("\n");
        for key in ["dqn.lr", "dqn.gamma", "dqn.tau", "dqn.batch_size"] {
            assert!(errors.contains(key), "{errors}");
        }
    }
}

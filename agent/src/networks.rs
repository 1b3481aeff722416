//! Actor-critic networks behind one [`Policy`] type.
//!
//! * [`Arch::Mlp`]: CleanRL's flat actor-critic MLP over the whole observation vector, with
//!   separate actor and critic trunks (CleanRL's default) or one shared trunk.
//! * [`Arch::Set`]: a set-structured network that reads the observation as the env lays it out
//!   ([`ObsLayout`]): every server row and every slot row is embedded by a shared-weight MLP
//!   (together with the global features), rows are mean-pooled into a context, and each action
//!   is scored from the embeddings it involves, as the env's [`ActionLayout`] describes the
//!   actions: a (slot, server) pair for a placements block (action `k * num_servers + n` places
//!   slot `k` on server `n`), a slot for a slots block, and the wait action (the last block)
//!   from the context. Its weight count does not depend on the number
//!   of servers or slots, so a policy trained on 32 servers runs on 64. This is the idea of
//!   RLScheduler's per-job kernel network and Decima's graph embeddings.
//! * [`Arch::Kernel`]: RLScheduler's kernel network (Zhang et al., SC'20): one small MLP (the
//!   `hidden` widths) scores every action from that action's own features alone: for a slot
//!   action, the slot's row, the global features and the mean server row; for a (slot, server)
//!   placement, the slot's row, the server's row and the global features, so the MLP can form
//!   demand·free products that a sum of slot and server terms cannot. The wait logit reads the
//!   mean of the per-action hidden features, the critic is a separate MLP over the whole
//!   observation. Permutation-equivariant, and a few hundred to a few thousand weights.
//!
//! Initialisation follows the 37 PPO details: orthogonal weights with gain √2 on hidden layers,
//! 0.01 on the policy head and 1 on the value head, zero biases.

use lepton_env::scenario::limits;
use lepton_env::{ActionBlock, ActionLayout, ObsLayout};

use crate::distributions::masked_argmax;
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

/// What the outputs of a network's action head mean (recorded in checkpoints; either is
/// decoded greedily by its legal arg-max, [`Policy::greedy`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Head {
    /// Logits of a categorical policy (PPO).
    Logits,
    /// Action values, or a dueling network's advantages, whose arg-max is the same (DQN).
    Q,
}

/// Which network family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Mlp,
    Set,
    Kernel,
}

/// Hidden-layer non-linearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Tanh,
    Relu,
}

impl Activation {
    fn apply(self, x: &Tensor) -> Tensor {
        match self {
            Self::Tanh => x.tanh(),
            Self::Relu => x.relu(),
        }
    }

    /// In place, on a tensor that nothing else reads (a layer's fresh output): saves an
    /// allocation and a pass over memory per layer, which is most of a small network's cost.
    fn apply_(self, x: &mut Tensor) {
        match self {
            Self::Tanh => _ = x.tanh_(),
            Self::Relu => _ = x.relu_(),
        }
    }
}

/// The `[network]` section of a training config (missing keys take CleanRL's defaults:
/// separate 64-64 tanh trunks).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// `mlp` (flat), `set` (shared-weight server and slot embeddings) or `kernel` (one MLP
    /// per action, RLScheduler-style).
    pub arch: Arch,
    /// Widths of the hidden layers of the MLP trunk(s) (for `kernel`: of the per-action MLP
    /// and of the critic), e.g. `[64, 64]`.
    pub hidden: Vec<i64>,
    /// `tanh` (CleanRL's default) or `relu`.
    pub activation: Activation,
    /// MLP only: one trunk shared by actor and critic instead of two separate ones.
    #[serde(default)]
    pub shared_trunk: bool,
    /// Set network only: width of the row embeddings.
    pub embed_dim: i64,
    /// Set network only: width of the per-action scoring layer (evaluated for every
    /// (slot, server) pair, so it dominates the cost on large clusters).
    pub pair_dim: i64,
    /// Set and kernel networks on placement actions: give each (slot, server) pair's scorer
    /// the pair's own features ([`pair_features`]: Tetris's alignment, the free fraction
    /// left per resource, the fit margin), which sums of slot and server terms cannot form.
    /// The kernel network on slot actions: give each slot's scorer those of the server a
    /// best-fit placement would pick ([`best_fit_pair_features`]).
    pub pair_features: bool,
    /// Set and kernel networks on placement actions: β ≥ 0 in `logit += β · alignment`, a
    /// prior on each placement's logit from Tetris's alignment score (the pair features'
    /// first), so a fresh policy already prefers well-aligned placements. 0: off.
    pub tetris_prior: f64,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            arch: Arch::Mlp,
            hidden: vec![64, 64],
            activation: Activation::Tanh,
            shared_trunk: false,
            embed_dim: 64,
            pair_dim: 16,
            pair_features: false,
            tetris_prior: 0.0,
        }
    }
}

/// The widest layer a config may ask for (a 16,384 × 16,384 layer is 1 GiB of f32 weights).
pub const MAX_WIDTH: i64 = 16_384;

/// The most weights a flat MLP may have (400 MB of f32, three times that with Adam's moments).
pub const MAX_WEIGHTS: u128 = 100_000_000;

impl NetworkConfig {
    /// Whether the network computes the (slot, server) pair features: as inputs, for the
    /// Tetris prior, or both.
    pub fn reads_pairs(&self) -> bool {
        self.pair_features || self.tetris_prior > 0.0
    }

    /// Every problem with the sizes, one message each, naming the key.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.hidden.is_empty() || self.hidden.iter().any(|&w| w <= 0 || w > MAX_WIDTH) {
            errors.push(format!(
                "network.hidden must list at least one width in 1..={MAX_WIDTH}, got {:?}",
                self.hidden
            ));
        }
        if !(self.tetris_prior.is_finite() && (0.0..=1e3).contains(&self.tetris_prior)) {
            errors.push(format!(
                "network.tetris_prior must be in 0..=1000, got {}",
                self.tetris_prior
            ));
        }
        for (key, value) in [("embed_dim", self.embed_dim), ("pair_dim", self.pair_dim)] {
            if !(1..=MAX_WIDTH).contains(&value) {
                errors.push(format!(
                    "network.{key} must be in 1..={MAX_WIDTH}, got {value}"
                ));
            }
        }
        errors
    }

    /// Weights of a flat MLP with these hidden widths from `obs_dim` inputs to `num_actions`
    /// logits and a value (both trunks unless shared), without overflow.
    pub fn mlp_weights(&self, obs_dim: usize, num_actions: usize) -> u128 {
        let widths: Vec<u128> = std::iter::once(obs_dim as u128)
            .chain(self.hidden.iter().map(|&w| w.max(0) as u128))
            .collect();
        let trunk: u128 = widths.windows(2).map(|w| (w[0] + 1) * w[1]).sum();
        let last = *widths.last().unwrap_or(&0);
        let trunks = if self.shared_trunk { 1 } else { 2 };
        trunks * trunk + (last + 1) * (num_actions as u128 + 1)
    }
}

/// Why a network cannot be built for an env.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NetworkError {
    #[error("{}", .0.join("; "))]
    BadSizes(Vec<String>),
    #[error(
        "network.hidden = {hidden:?} on {obs_dim} inputs and {num_actions} actions makes a flat MLP of {weights} weights, more than the limit {MAX_WEIGHTS} (use network.arch = \"set\" or \"kernel\", or narrower layers)"
    )]
    TooManyWeights {
        hidden: Vec<i64>,
        obs_dim: usize,
        num_actions: usize,
        weights: u128,
    },
    #[error(
        "network.arch = \"set\" and \"kernel\" need an env whose observation has server and slot rows (this one is flat: {0:?})"
    )]
    NoSetStructure(ObsLayout),
    #[error(
        "network.arch = \"set\" and \"kernel\" score placements or slots followed by wait \
         (\"kernel\" also preempt and migrate actions on running rows), for the observation's \
         {slots} slot rows and {servers} server rows; the env's actions are {actions:?}"
    )]
    UnsupportedActions {
        actions: ActionLayout,
        slots: usize,
        servers: usize,
    },
    #[error("the env has no actions")]
    NoActions,
    #[error(
        "network.pair_features and network.tetris_prior need network.arch = \"set\" or \"kernel\", placement actions (pair_features also slot actions, with \"kernel\") and an observation whose rows carry resource columns (a cluster scenario with per-server rows); this env's layout is {0:?}"
    )]
    NoPairColumns(ObsLayout),
}

/// How the set network maps action indices to slots and servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ActionMode {
    Pair,
    Slot,
}

/// The preempt and migrate blocks between the placements and wait (`[preemption]`), over the
/// observation's running rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct RunningBlocks {
    preempt: bool,
    migrate: bool,
}

fn linear(path: nn::Path, inputs: i64, outputs: i64, gain: f64) -> nn::Linear {
    nn::linear(
        path,
        inputs,
        outputs,
        nn::LinearConfig {
            ws_init: nn::Init::Orthogonal { gain },
            bs_init: Some(nn::Init::Const(0.0)),
            bias: true,
        },
    )
}

/// Hidden layers with a non-linearity after each.
#[derive(Debug)]
struct Trunk {
    layers: Vec<nn::Linear>,
    activation: Activation,
}

impl Trunk {
    fn new(path: &nn::Path, inputs: i64, widths: &[i64], activation: Activation) -> Self {
        let mut layers = Vec::with_capacity(widths.len());
        let mut fan_in = inputs;
        for (i, &w) in widths.iter().enumerate() {
            layers.push(linear(path / i, fan_in, w, 2f64.sqrt()));
            fan_in = w;
        }
        Self { layers, activation }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = x.shallow_clone();
        for layer in &self.layers {
            h = layer.forward(&h);
            self.activation.apply_(&mut h);
        }
        h
    }

    /// The same as `forward` on the concatenation of `parts` along the last dimension, with
    /// the parts broadcast against each other (e.g. one slot row `[B, K, 1, f]` and one server
    /// row `[B, 1, S, f']`). The first layer multiplies each part by its own columns of the
    /// weight and adds the products, so a row shared by many actions goes through it once
    /// instead of once per action.
    fn forward_parts(&self, parts: &[Tensor]) -> Tensor {
        let (first, rest) = self.layers.split_first().expect("validated non-empty");
        let mut offset = 0;
        let mut products: Vec<Tensor> = parts
            .iter()
            .map(|part| {
                let width = *part.size().last().expect("parts have a feature dimension");
                offset += width;
                part.matmul(&first.ws.narrow(1, offset - width, width).tr())
            })
            .collect();
        // Add the small products first, so that only the last addition is full size.
        products.sort_by_key(Tensor::numel);
        let mut h = products.pop().expect("at least one part");
        let bias = first.bs.as_ref().expect("layers have a bias");
        let small = products.iter().fold(bias.shallow_clone(), |sum, p| sum + p);
        if broadcasts_into(&small.size(), &h.size()) {
            h += small;
        } else {
            h = &small + &h; // e.g. a slot's [B, K, 1, H] and a server's [B, 1, S, H]
        }
        self.activation.apply_(&mut h);
        for layer in rest {
            h = layer.forward(&h);
            self.activation.apply_(&mut h);
        }
        h
    }
}

/// Whether a tensor of shape `small` broadcasts to `big` without growing it.
fn broadcasts_into(small: &[i64], big: &[i64]) -> bool {
    small.len() <= big.len()
        && small
            .iter()
            .rev()
            .zip(big.iter().rev())
            .all(|(&s, &b)| s == b || s == 1)
}

#[derive(Debug)]
struct Mlp {
    actor: Trunk,
    /// `None` when the trunk is shared.
    critic: Option<Trunk>,
    policy_head: nn::Linear,
    value_head: nn::Linear,
}

impl Mlp {
    fn new(root: &nn::Path, config: &NetworkConfig, obs_dim: i64, num_actions: i64) -> Self {
        let last = *config.hidden.last().expect("validated non-empty");
        let (actor, critic) = if config.shared_trunk {
            (
                Trunk::new(
                    &(root / "trunk"),
                    obs_dim,
                    &config.hidden,
                    config.activation,
                ),
                None,
            )
        } else {
            (
                Trunk::new(
                    &(root / "actor"),
                    obs_dim,
                    &config.hidden,
                    config.activation,
                ),
                Some(Trunk::new(
                    &(root / "critic"),
                    obs_dim,
                    &config.hidden,
                    config.activation,
                )),
            )
        };
        Self {
            actor,
            critic,
            policy_head: linear(root / "policy_head", last, num_actions, 0.01),
            value_head: linear(root / "value_head", last, 1, 1.0),
        }
    }

    fn forward(&self, obs: &Tensor) -> (Tensor, Tensor) {
        let h_actor = self.actor.forward(obs);
        let h_critic = match &self.critic {
            Some(critic) => critic.forward(obs),
            None => h_actor.shallow_clone(),
        };
        (
            self.policy_head.forward(&h_actor),
            self.value_head.forward(&h_critic).squeeze_dim(-1),
        )
    }
}

/// The running rows `[B, R, fr]` that follow the slot rows (`[preemption]`).
fn running_rows(l: ObsLayout, obs: &Tensor) -> Tensor {
    let b = obs.size()[0];
    let start = l.global + l.server_rows * l.server_features + l.slot_rows * l.slot_features;
    obs.narrow(
        1,
        start as i64,
        (l.running_rows * l.running_features) as i64,
    )
    .reshape([b, l.running_rows as i64, l.running_features as i64])
}

/// Splits `[B, dim]` into global `[B, g]`, servers `[B, S, fs]` and slots `[B, K, fk]`.
fn split_rows(l: ObsLayout, obs: &Tensor) -> (Tensor, Tensor, Tensor) {
    let b = obs.size()[0];
    let server_len = (l.server_rows * l.server_features) as i64;
    let slot_len = (l.slot_rows * l.slot_features) as i64;
    let global = obs.narrow(1, 0, l.global as i64);
    let servers = obs.narrow(1, l.global as i64, server_len).reshape([
        b,
        l.server_rows as i64,
        l.server_features as i64,
    ]);
    let slots = obs
        .narrow(1, l.global as i64 + server_len, slot_len)
        .reshape([b, l.slot_rows as i64, l.slot_features as i64]);
    (global, servers, slots)
}

/// Features of every (slot, server) pair, `[B, K, S, R + 2]`, from the rows' resource
/// columns ([`ObsLayout::resources`]), in fractions of the server's own capacity as lepton's
/// Tetris computes them: with `d_r` the slot's demand over the server's capacity (capped at
/// 2: more cannot fit anyway) and `f_r` the server's free fraction,
/// 1. Tetris's alignment `Σ_r d_r · f_r` (Grandl et al., SIGCOMM'14);
/// 2. the fraction left free after placing, `f_r − d_r`, per resource (negative: no fit);
/// 3. the fit margin, `min_r (f_r − d_r)`.
///
/// An empty slot (all zeros) gets the server's free fractions and no alignment.
pub fn pair_features(l: ObsLayout, slots: &Tensor, servers: &Tensor) -> Tensor {
    let r = l.resources as i64;
    let demand_of_max = slots.narrow(2, 1, r).unsqueeze(2); // [B, K, 1, R]
    let free = servers.narrow(2, 0, r).unsqueeze(1); // [B, 1, S, R]
    let capacity_of_max = servers.narrow(2, r, r).unsqueeze(1); // [B, 1, S, R]
    let demand = (demand_of_max / capacity_of_max.clamp_min(1e-6)).clamp_max(2.0);
    let alignment = (&demand * &free).sum_dim_intlist(-1, true, Kind::Float);
    let left = &free - &demand;
    let margin = left.amin(-1, true);
    Tensor::cat(&[alignment, left, margin], 3)
}

/// Each slot's pair features ([`pair_features`]) with the server a best-fit placement would
/// pick, `[B, K, R + 2]`: among the servers it fits (margin ≥ 0), the one it leaves with the
/// least free capacity (the smallest Σ_r (f_r − d_r)), as the env's `best_fit` rule places a
/// slot action's task. A slot that fits nowhere gets its least-bad server's (a negative
/// margin says so). This is what the kernel network's slot scorer reads with
/// `network.pair_features` on slot actions.
pub fn best_fit_pair_features(l: ObsLayout, slots: &Tensor, servers: &Tensor) -> Tensor {
    let pairs = pair_features(l, slots, servers); // [B, K, S, R + 2]
    let r = l.resources as i64;
    let leftover = pairs
        .narrow(3, 1, r)
        .sum_dim_intlist(-1, false, Kind::Float); // [B, K, S]
    let misfit = pairs
        .narrow(3, r + 1, 1)
        .squeeze_dim(-1)
        .lt(0.0)
        .to_kind(Kind::Float);
    // A fitting server always ranks before one that does not (leftovers are ≥ −2R).
    let rank = leftover + misfit * (4.0 * r as f64 + 1.0);
    let best = rank.argmin(-1, true); // [B, K, 1]
    let index = best.unsqueeze(-1).expand([-1, -1, 1, r + 2], false);
    pairs.gather(2, &index, false).squeeze_dim(2)
}

/// Every (row, server) pair's inputs, broadcastable to `[B, K, S, ·]`: the row (a slot or a
/// running task) `[B, K, 1, ·]`, the server row `[B, 1, S, ·]` and the global features
/// `[B, 1, 1, ·]`.
fn pair_grid(rows: &Tensor, servers: &Tensor, global: &Tensor) -> Vec<Tensor> {
    vec![
        rows.unsqueeze(2),
        servers.unsqueeze(1),
        global.unsqueeze(1).unsqueeze(1),
    ]
}

/// `scores` `[B, K·S]` plus β times the alignment of each pair (`pairs`' first feature).
fn with_tetris_prior(scores: Tensor, pairs: Option<&Tensor>, beta: f64) -> Tensor {
    match pairs {
        Some(pairs) if beta > 0.0 => {
            let b = scores.size()[0];
            scores + pairs.narrow(3, 0, 1).reshape([b, -1]) * beta
        }
        _ => scores,
    }
}

#[derive(Debug)]
struct SetNet {
    layout: ObsLayout,
    mode: ActionMode,
    activation: Activation,
    server_encoder: Trunk,
    slot_encoder: Trunk,
    context: Trunk,
    score_slot: nn::Linear,
    score_server: nn::Linear,
    score_context: nn::Linear,
    /// The pair features' term of a placement's score (`network.pair_features`).
    score_pair: Option<nn::Linear>,
    tetris_prior: f64,
    score_head: nn::Linear,
    wait_head: nn::Linear,
    value_trunk: Trunk,
    value_head: nn::Linear,
}

impl ActionMode {
    /// How the set and kernel networks score `actions` for observations laid out as
    /// `layout`: placements or slots, then the running rows' blocks if any, then wait.
    fn of(
        layout: ObsLayout,
        actions: &ActionLayout,
    ) -> Result<(Self, RunningBlocks), NetworkError> {
        let (slot_rows, server_rows) = (layout.slot_rows, layout.server_rows);
        let unsupported = || NetworkError::UnsupportedActions {
            actions: actions.clone(),
            slots: slot_rows,
            servers: server_rows,
        };
        let [first, middle @ .., ActionBlock::Wait] = actions.blocks.as_slice() else {
            return Err(unsupported());
        };
        let mode = match *first {
            ActionBlock::Placements { slots, servers }
                if slots == slot_rows && servers == server_rows =>
            {
                Self::Pair
            }
            ActionBlock::Slots { slots } if slots == slot_rows => Self::Slot,
            _ => return Err(unsupported()),
        };
        let rows = layout.running_rows;
        let running = match middle {
            [] => RunningBlocks::default(),
            [ActionBlock::Preempt { rows: r }] if *r == rows => RunningBlocks {
                preempt: true,
                migrate: false,
            },
            [ActionBlock::Migrate { rows: r, servers }]
                if *r == rows && *servers == server_rows =>
            {
                RunningBlocks {
                    preempt: false,
                    migrate: true,
                }
            }
            [
                ActionBlock::Preempt { rows: r },
                ActionBlock::Migrate { rows: r2, servers },
            ] if *r == rows && *r2 == rows && *servers == server_rows => RunningBlocks {
                preempt: true,
                migrate: true,
            },
            _ => return Err(unsupported()),
        };
        Ok((mode, running))
    }
}

impl SetNet {
    fn new(root: &nn::Path, config: &NetworkConfig, layout: ObsLayout, mode: ActionMode) -> Self {
        let e = config.embed_dim;
        let p = config.pair_dim;
        let g = layout.global as i64;
        let act = config.activation;
        Self {
            layout,
            mode,
            activation: act,
            server_encoder: Trunk::new(
                &(root / "server_encoder"),
                layout.server_features as i64 + g,
                &[e, e],
                act,
            ),
            slot_encoder: Trunk::new(
                &(root / "slot_encoder"),
                layout.slot_features as i64 + g,
                &[e, e],
                act,
            ),
            context: Trunk::new(&(root / "context"), 2 * e + g, &[e], act),
            score_slot: linear(root / "score_slot", e, p, 2f64.sqrt()),
            score_server: linear(root / "score_server", e, p, 2f64.sqrt()),
            score_context: linear(root / "score_context", e, p, 2f64.sqrt()),
            score_pair: config.pair_features.then(|| {
                let inputs = layout.resources as i64 + 2;
                linear(root / "score_pair", inputs, p, 2f64.sqrt())
            }),
            tetris_prior: config.tetris_prior,
            score_head: linear(root / "score_head", p, 1, 0.01),
            wait_head: linear(root / "wait_head", e, 1, 0.01),
            value_trunk: Trunk::new(&(root / "value_trunk"), e, &[e], act),
            value_head: linear(root / "value_head", e, 1, 1.0),
        }
    }

    fn forward(&self, obs: &Tensor) -> (Tensor, Tensor) {
        let (global, servers, slots) = split_rows(self.layout, obs);
        let e_server = self
            .server_encoder
            .forward_parts(&[servers.shallow_clone(), global.unsqueeze(1)]); // [B,S,E]
        let e_slot = self
            .slot_encoder
            .forward_parts(&[slots.shallow_clone(), global.unsqueeze(1)]); // [B,K,E]
        let pooled = Tensor::cat(
            &[
                e_server.mean_dim(1, false, Kind::Float),
                e_slot.mean_dim(1, false, Kind::Float),
                global,
            ],
            1,
        );
        let ctx = self.context.forward(&pooled); // [B,E]
        let a_slot = self.score_slot.forward(&e_slot); // [B,K,E]
        let c = self.score_context.forward(&ctx); // [B,E]
        let b = obs.size()[0];
        let scores = match self.mode {
            ActionMode::Pair => {
                let a_server = self.score_server.forward(&e_server); // [B,S,E]
                let mut z =
                    a_slot.unsqueeze(2) + a_server.unsqueeze(1) + c.unsqueeze(1).unsqueeze(1);
                let pairs = (self.score_pair.is_some() || self.tetris_prior > 0.0)
                    .then(|| pair_features(self.layout, &slots, &servers));
                if let (Some(score_pair), Some(pairs)) = (&self.score_pair, &pairs) {
                    z += score_pair.forward(pairs);
                }
                let scores = self
                    .score_head
                    .forward(&self.activation.apply(&z))
                    .reshape([b, -1]); // [B, K*S]
                with_tetris_prior(scores, pairs.as_ref(), self.tetris_prior)
            }
            ActionMode::Slot => {
                let z = a_slot + c.unsqueeze(1);
                self.score_head
                    .forward(&self.activation.apply(&z))
                    .reshape([b, -1]) // [B, K]
            }
        };
        let logits = Tensor::cat(&[scores, self.wait_head.forward(&ctx)], 1);
        let value = self
            .value_head
            .forward(&self.value_trunk.forward(&ctx))
            .squeeze_dim(-1);
        (logits, value)
    }
}

/// RLScheduler's kernel network: one MLP applied to every action's own features. With
/// running rows, a second kernel scores each preempt action on (running row, global) and a
/// third each migration on (running row, destination server, global).
#[derive(Debug)]
struct KernelNet {
    layout: ObsLayout,
    mode: ActionMode,
    /// Append the pair features to each placement's inputs (`network.pair_features`).
    pair_features: bool,
    tetris_prior: f64,
    kernel: Trunk,
    kernel_head: nn::Linear,
    preempt_kernel: Option<(Trunk, nn::Linear)>,
    migrate_kernel: Option<(Trunk, nn::Linear)>,
    wait_head: nn::Linear,
    critic: Trunk,
    value_head: nn::Linear,
}

impl KernelNet {
    fn new(
        root: &nn::Path,
        config: &NetworkConfig,
        layout: ObsLayout,
        mode: ActionMode,
        running: RunningBlocks,
    ) -> Self {
        let (g, fs, fk, fr) = (
            layout.global as i64,
            layout.server_features as i64,
            layout.slot_features as i64,
            layout.running_features as i64,
        );
        let last = *config.hidden.last().expect("validated non-empty");
        let scorer = |name: &str, inputs: i64| {
            (
                Trunk::new(&(root / name), inputs, &config.hidden, config.activation),
                linear(root / format!("{name}_head"), last, 1, 0.01),
            )
        };
        let pair = if config.pair_features {
            layout.resources as i64 + 2
        } else {
            0
        };
        Self {
            layout,
            mode,
            pair_features: config.pair_features,
            tetris_prior: config.tetris_prior,
            kernel: Trunk::new(
                &(root / "kernel"),
                fk + fs + g + pair,
                &config.hidden,
                config.activation,
            ),
            kernel_head: linear(root / "kernel_head", last, 1, 0.01),
            preempt_kernel: running.preempt.then(|| scorer("preempt_kernel", fr + g)),
            migrate_kernel: running
                .migrate
                .then(|| scorer("migrate_kernel", fr + fs + g)),
            wait_head: linear(root / "wait_head", last, 1, 0.01),
            critic: Trunk::new(
                &(root / "critic"),
                layout.dim() as i64,
                &config.hidden,
                config.activation,
            ),
            value_head: linear(root / "value_head", last, 1, 1.0),
        }
    }

    fn forward(&self, obs: &Tensor) -> (Tensor, Tensor) {
        let (global, servers, slots) = split_rows(self.layout, obs);
        let b = obs.size()[0];
        let pairs = (self.mode == ActionMode::Pair
            && (self.pair_features || self.tetris_prior > 0.0))
            .then(|| pair_features(self.layout, &slots, &servers));
        // Each action's input row is [its row, server, global (, pair features)]; the parts
        // shared between actions enter the kernel once (`forward_parts`).
        let hidden = match self.mode {
            ActionMode::Pair => {
                let mut parts = pair_grid(&slots, &servers, &global);
                if self.pair_features
                    && let Some(pairs) = &pairs
                {
                    parts.push(pairs.shallow_clone());
                }
                let hidden = self.kernel.forward_parts(&parts); // [B, K, S, H]
                hidden.reshape([b, -1, *hidden.size().last().expect("hidden width")])
            }
            ActionMode::Slot => {
                let mut parts = vec![
                    slots.shallow_clone(),
                    servers.mean_dim(1, true, Kind::Float),
                    global.unsqueeze(1),
                ];
                if self.pair_features {
                    parts.push(best_fit_pair_features(self.layout, &slots, &servers));
                }
                self.kernel.forward_parts(&parts) // [B, K, H]
            }
        };
        let mut scores = vec![with_tetris_prior(
            self.kernel_head.forward(&hidden).squeeze_dim(-1), // [B, A]
            pairs.as_ref(),
            self.tetris_prior,
        )];
        if self.preempt_kernel.is_some() || self.migrate_kernel.is_some() {
            let running = running_rows(self.layout, obs); // [B, R, fr]
            if let Some((trunk, head)) = &self.preempt_kernel {
                let hidden = trunk.forward_parts(&[running.shallow_clone(), global.unsqueeze(1)]);
                scores.push(head.forward(&hidden).squeeze_dim(-1)); // [B, R]
            }
            if let Some((trunk, head)) = &self.migrate_kernel {
                let hidden = trunk.forward_parts(&pair_grid(&running, &servers, &global));
                scores.push(head.forward(&hidden).squeeze_dim(-1).reshape([b, -1])); // [B, R*S]
            }
        }
        scores.push(
            self.wait_head
                .forward(&hidden.mean_dim(1, false, Kind::Float)), // [B, 1]
        );
        let value = self
            .value_head
            .forward(&self.critic.forward(obs))
            .squeeze_dim(-1);
        (Tensor::cat(&scores, 1), value)
    }
}

#[derive(Debug)]
enum Net {
    Mlp(Mlp),
    Set(Box<SetNet>),
    Kernel(Box<KernelNet>),
}

/// An actor-critic policy: a [`nn::VarStore`] of weights plus the network that reads them.
#[derive(Debug)]
pub struct Policy {
    vs: nn::VarStore,
    net: Net,
    layout: ObsLayout,
    actions: ActionLayout,
    head: Head,
}

/// Held while libtorch's process-global RNG is seeded and weights are drawn from it.
static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `build` (which creates networks) holding the lock on libtorch's process-global RNG,
/// after `tch::manual_seed(seed)` when a seed is given. Every network creation goes through
/// here, so runs training side by side in one process (a hyperparameter search, parallel
/// tests) draw initial weights that are a function of their own seed only.
pub fn with_torch_rng<T>(seed: Option<i64>, build: impl FnOnce() -> T) -> T {
    let _guard = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(seed) = seed {
        tch::manual_seed(seed);
    }
    build()
}

impl Policy {
    /// Builds a freshly initialised policy on `device`. Initialisation draws from libtorch's
    /// global RNG: call it inside [`with_torch_rng`] for reproducible weights.
    pub fn new(
        config: &NetworkConfig,
        layout: ObsLayout,
        actions: &ActionLayout,
        head: Head,
        device: Device,
    ) -> Result<Self, NetworkError> {
        let (obs_dim, num_actions) =
            limits::policy_sizes(&layout, actions).map_err(|e| NetworkError::BadSizes(vec![e]))?;
        if num_actions == 0 {
            return Err(NetworkError::NoActions);
        }
        let errors = config.validate();
        if !errors.is_empty() {
            return Err(NetworkError::BadSizes(errors));
        }
        let weights = config.mlp_weights(obs_dim, num_actions);
        if config.arch == Arch::Mlp && weights > MAX_WEIGHTS {
            return Err(NetworkError::TooManyWeights {
                hidden: config.hidden.clone(),
                obs_dim,
                num_actions,
                weights,
            });
        }
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let net = match config.arch {
            Arch::Mlp if config.reads_pairs() => {
                return Err(NetworkError::NoPairColumns(layout));
            }
            Arch::Mlp => Net::Mlp(Mlp::new(
                &root,
                config,
                layout.dim() as i64,
                num_actions as i64,
            )),
            Arch::Set | Arch::Kernel => {
                if layout.server_rows == 0 || layout.slot_rows == 0 {
                    return Err(NetworkError::NoSetStructure(layout));
                }
                let (mode, running) = ActionMode::of(layout, actions)?;
                let resource_columns = layout.resources > 0
                    && layout.server_features >= 2 * layout.resources
                    && layout.slot_features > layout.resources;
                // Slot actions: only the kernel network reads pair features there (each
                // slot's best-fit server's), and no prior applies (no server is chosen).
                let pairs_apply = match mode {
                    ActionMode::Pair => true,
                    ActionMode::Slot => config.arch == Arch::Kernel && config.tetris_prior == 0.0,
                };
                if config.reads_pairs() && !(resource_columns && pairs_apply) {
                    return Err(NetworkError::NoPairColumns(layout));
                }
                match config.arch {
                    Arch::Set if running != RunningBlocks::default() => {
                        return Err(NetworkError::UnsupportedActions {
                            actions: actions.clone(),
                            slots: layout.slot_rows,
                            servers: layout.server_rows,
                        });
                    }
                    Arch::Set => Net::Set(Box::new(SetNet::new(&root, config, layout, mode))),
                    _ => Net::Kernel(Box::new(KernelNet::new(
                        &root, config, layout, mode, running,
                    ))),
                }
            }
        };
        Ok(Self {
            vs,
            net,
            layout,
            actions: actions.clone(),
            head,
        })
    }

    /// Greedy actions `[B]` for observations `[B, obs_dim]` and masks `[B, num_actions]`: the
    /// legal action with the largest head output. For a Q head that is the rule DQN trained
    /// with; for a logits head it is the policy's most likely action (the joint arg-max over
    /// every placement and wait, never a per-slot marginal), so greedy evaluation scores the
    /// mode of the distribution PPO learned.
    pub fn greedy(&self, obs: &Tensor, mask: &Tensor) -> Tensor {
        masked_argmax(&self.forward(obs).0, mask)
    }

    /// Logits `[B, num_actions]` (unmasked) and values `[B]` for observations `[B, obs_dim]`.
    pub fn forward(&self, obs: &Tensor) -> (Tensor, Tensor) {
        match &self.net {
            Net::Mlp(net) => net.forward(obs),
            Net::Set(net) => net.forward(obs),
            Net::Kernel(net) => net.forward(obs),
        }
    }

    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    pub fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    pub fn obs_layout(&self) -> ObsLayout {
        self.layout
    }

    pub fn num_actions(&self) -> usize {
        self.actions.num_actions()
    }

    /// What each action index means (the env's layout this network was built for).
    pub fn action_layout(&self) -> &ActionLayout {
        &self.actions
    }

    /// What the action head's outputs mean.
    pub fn head(&self) -> Head {
        self.head
    }

    /// Number of scalar weights.
    pub fn num_parameters(&self) -> i64 {
        self.vs
            .trainable_variables()
            .iter()
            .map(Tensor::numel)
            .sum::<usize>() as i64
    }

    /// Trainable tensors with their names, sorted by name (a stable order for the optimizer
    /// and for checkpoints).
    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut named: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        named
    }

    /// The parameters the action head depends on (every one but the critic's own layers),
    /// in [`Self::named_parameters`]' order: what evolution strategies perturb.
    pub fn actor_parameters(&self) -> Vec<(String, Tensor)> {
        const CRITIC_ONLY: [&str; 3] = ["critic", "value_trunk", "value_head"];
        self.named_parameters()
            .into_iter()
            .filter(|(name, _)| {
                let first = name.split('.').next().unwrap_or(name);
                !CRITIC_ONLY.contains(&first)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloud_like(servers: usize) -> ObsLayout {
        ObsLayout {
            global: 3,
            server_rows: servers,
            server_features: 4,
            slot_rows: 5,
            slot_features: 6,
            ..ObsLayout::default()
        }
    }

    /// One ReLU unit on 3 inputs, w = (1, 2, 3), b = 0.5, fed a row part `[2, 1]` and a shared
    /// part `[1, 2]` = (1, 1): rows (1, 1, 1) → 6.5, (−2, 1, 1) → 3.5, (−9, 1, 1) → −3.5 → 0.
    #[test]
    fn forward_parts_by_hand() {
        let vs = nn::VarStore::new(Device::Cpu);
        let mut trunk = Trunk::new(&vs.root(), 3, &[1], Activation::Relu);
        tch::no_grad(|| {
            trunk.layers[0]
                .ws
                .copy_(&Tensor::from_slice(&[1.0f32, 2.0, 3.0]).view([1, 3]));
            _ = trunk.layers[0].bs.as_mut().unwrap().fill_(0.5);
        });
        let rows = Tensor::from_slice(&[1.0f32, -2.0, -9.0]).view([3, 1]);
        let shared = Tensor::from_slice(&[1.0f32, 1.0]).view([1, 2]);
        let out = trunk.forward_parts(&[rows, shared]);
        assert_eq!(
            Vec::<f32>::try_from(out.view([-1])).unwrap(),
            [6.5, 3.5, 0.0]
        );
    }

    /// Slot-like (`[B, K, ·]` with `[B, 1, ·]`) and pair-like (`[B, K, 1, ·]` with
    /// `[B, 1, S, ·]`) parts give what the trunk gives on the expanded concatenation, and so
    /// do their gradients.
    #[test]
    fn forward_parts_matches_the_concatenated_input() {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let trunk = Trunk::new(&vs.root(), 9, &[8, 4], Activation::Tanh);
        let opts = (Kind::Float, Device::Cpu);
        for shapes in [
            vec![vec![2, 5, 4], vec![2, 1, 3], vec![2, 1, 2]],
            vec![vec![2, 5, 1, 4], vec![2, 1, 3, 3], vec![2, 1, 1, 2]],
        ] {
            let parts: Vec<Tensor> = shapes
                .iter()
                .map(|s| Tensor::randn(s.as_slice(), opts))
                .collect();
            let full: Vec<i64> = (0..shapes[0].len() - 1)
                .map(|d| shapes.iter().map(|s| s[d]).max().unwrap())
                .collect();
            let expanded: Vec<Tensor> = parts
                .iter()
                .map(|p| p.expand([full.as_slice(), &[-1]].concat(), false))
                .collect();
            let by_parts = trunk.forward_parts(&parts);
            let reference = trunk.forward(&Tensor::cat(&expanded, -1));
            assert_eq!(by_parts.size(), reference.size());
            assert!(by_parts.allclose(&reference, 1e-5, 1e-6, false));
            let grads = |out: Tensor| {
                for v in vs.trainable_variables() {
                    let mut grad = v.grad();
                    if grad.defined() {
                        _ = grad.zero_();
                    }
                }
                out.sum(Kind::Float).backward();
                vs.trainable_variables()
                    .iter()
                    .map(|v| v.grad().copy())
                    .collect::<Vec<_>>()
            };
            for (a, b) in grads(by_parts).iter().zip(&grads(reference)) {
                assert!(a.allclose(b, 1e-4, 1e-5, false));
            }
        }
    }

    #[test]
    fn broadcast_shapes() {
        assert!(broadcasts_into(&[8], &[2, 5, 8]));
        assert!(broadcasts_into(&[2, 1, 8], &[2, 5, 8]));
        assert!(!broadcasts_into(&[2, 1, 3, 8], &[2, 5, 1, 8]));
        assert!(!broadcasts_into(&[1, 2, 5, 8], &[2, 5, 8]));
    }

    #[test]
    fn mlp_shapes_and_init_gains() {
        tch::manual_seed(0);
        let config = NetworkConfig::default();
        let policy = Policy::new(
            &config,
            ObsLayout::flat(4),
            &ActionLayout::plain(2),
            Head::Logits,
            Device::Cpu,
        )
        .unwrap();
        let (logits, value) = policy.forward(&Tensor::zeros([7, 4], (Kind::Float, Device::Cpu)));
        assert_eq!(logits.size(), [7, 2]);
        assert_eq!(value.size(), [7]);
        // 4·64+64 + 64·64+64 per trunk, two trunks, + heads 64·2+2 and 64+1.
        assert_eq!(policy.num_parameters(), 2 * (320 + 4160) + 130 + 65);
        // Orthogonal rows with gain g have norm g: the policy head's rows have norm 0.01.
        let head = &policy.vs.variables()["policy_head.weight"];
        let row_norm = head.get(0).norm().double_value(&[]);
        assert!((row_norm - 0.01).abs() < 1e-6, "{row_norm}");
        let bias = &policy.vs.variables()["actor.0.bias"];
        assert_eq!(bias.abs().sum(Kind::Float).double_value(&[]), 0.0);
    }

    #[test]
    fn shared_trunk_has_fewer_weights() {
        let config = NetworkConfig {
            shared_trunk: true,
            ..NetworkConfig::default()
        };
        let policy = Policy::new(
            &config,
            ObsLayout::flat(4),
            &ActionLayout::plain(2),
            Head::Logits,
            Device::Cpu,
        )
        .unwrap();
        assert_eq!(policy.num_parameters(), 320 + 4160 + 130 + 65);
    }

    #[test]
    fn set_network_weight_count_is_independent_of_cluster_size() {
        let config = NetworkConfig {
            arch: Arch::Set,
            embed_dim: 16,
            ..NetworkConfig::default()
        };
        let small = Policy::new(
            &config,
            cloud_like(32),
            &ActionLayout::placements_then_wait(5, 32),
            Head::Logits,
            Device::Cpu,
        )
        .unwrap();
        let large = Policy::new(
            &config,
            cloud_like(64),
            &ActionLayout::placements_then_wait(5, 64),
            Head::Logits,
            Device::Cpu,
        )
        .unwrap();
        assert_eq!(small.num_parameters(), large.num_parameters());
        let obs = Tensor::randn([3, cloud_like(64).dim() as i64], (Kind::Float, Device::Cpu));
        let (logits, value) = large.forward(&obs);
        assert_eq!(logits.size(), [3, 5 * 64 + 1]);
        assert_eq!(value.size(), [3]);
        // Slot mode: slots + wait.
        let slot = Policy::new(
            &config,
            cloud_like(64),
            &ActionLayout::slots_then_wait(5),
            Head::Logits,
            Device::Cpu,
        )
        .unwrap();
        assert_eq!(slot.forward(&obs).0.size(), [3, 6]);
    }

    /// `actor_parameters` holds every weight the logits have a gradient for, on every
    /// architecture (with a shared MLP trunk, the trunk is the actor's too), and leaves the
    /// critic's own layers out.
    #[test]
    fn actor_parameters_are_those_the_logits_depend_on() {
        tch::manual_seed(5);
        let layout = cloud_like(4);
        let obs = Tensor::randn([3, layout.dim() as i64], (Kind::Float, Device::Cpu));
        for (arch, shared_trunk) in [
            (Arch::Mlp, false),
            (Arch::Mlp, true),
            (Arch::Set, false),
            (Arch::Kernel, false),
        ] {
            let config = NetworkConfig {
                arch,
                shared_trunk,
                hidden: vec![8, 4],
                embed_dim: 8,
                pair_dim: 4,
                ..NetworkConfig::default()
            };
            let policy = Policy::new(
                &config,
                layout,
                &ActionLayout::slots_then_wait(5),
                Head::Logits,
                Device::Cpu,
            )
            .unwrap();
            policy.forward(&obs).0.sum(Kind::Float).backward();
            let with_grad: Vec<String> = policy
                .named_parameters()
                .into_iter()
                .filter(|(_, p)| {
                    p.grad().defined() && p.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0
                })
                .map(|(name, _)| name)
                .collect();
            let actor: Vec<String> = policy
                .actor_parameters()
                .into_iter()
                .map(|(name, _)| name)
                .collect();
            // Every weight the logits read is the actor's (the set network's server scorer
            // is unused on slot actions, so the converse does not hold there).
            for name in &with_grad {
                assert!(
                    actor.contains(name),
                    "{arch:?}: {name} is not an actor parameter"
                );
            }
            if arch == Arch::Kernel {
                assert_eq!(actor, with_grad);
            }
            assert!(actor.len() < policy.named_parameters().len());
        }
    }

    /// Pair mode is permutation-equivariant: swapping two server rows swaps their scores.
    #[test]
    fn set_network_scores_follow_the_servers() {
        tch::manual_seed(3);
        let layout = ObsLayout {
            global: 1,
            server_rows: 2,
            server_features: 2,
            slot_rows: 1,
            slot_features: 1,
            ..ObsLayout::default()
        };
        let config = NetworkConfig {
            arch: Arch::Set,
            embed_dim: 8,
            ..NetworkConfig::default()
        };
        let policy = Policy::new(
            &config,
            layout,
            &ActionLayout::placements_then_wait(1, 2),
            Head::Logits,
            Device::Cpu,
        )
        .unwrap();
        let a = Tensor::from_slice(&[0.5f32, 1.0, 0.0, 0.2, 0.9, 0.3]).view([1, 6]);
        let b = Tensor::from_slice(&[0.5f32, 0.2, 0.9, 1.0, 0.0, 0.3]).view([1, 6]);
        let (la, va) = policy.forward(&a);
        let (lb, vb) = policy.forward(&b);
        assert!((la.double_value(&[0, 0]) - lb.double_value(&[0, 1])).abs() < 1e-6);
        assert!((la.double_value(&[0, 1]) - lb.double_value(&[0, 0])).abs() < 1e-6);
        assert!((la.double_value(&[0, 2]) - lb.double_value(&[0, 2])).abs() < 1e-6);
        assert!((va.double_value(&[0]) - vb.double_value(&[0])).abs() < 1e-6);
    }

    /// Two resources. Server 0: free fractions (0.5, 1), capacity (1, 0.5) of the largest;
    /// server 1: free (0.25, 0), capacity (0.5, 0), so it lacks resource 1. One slot with
    /// demand (0.5, 0.25) of the largest server.
    fn two_resource_obs() -> (ObsLayout, Tensor) {
        let layout = ObsLayout {
            global: 1,
            server_rows: 2,
            server_features: 4,
            slot_rows: 1,
            slot_features: 3,
            resources: 2,
            ..ObsLayout::default()
        };
        let obs = Tensor::from_slice(&[
            0.0f32, // global
            0.5, 1.0, 1.0, 0.5, // server 0
            0.25, 0.0, 0.5, 0.0, // server 1
            1.0, 0.5, 0.25, // slot 0
        ])
        .view([1, 12]);
        (layout, obs)
    }

    /// By hand. Server 0: demand in its own units (0.5/1, 0.25/0.5) = (0.5, 0.5); alignment
    /// 0.5·0.5 + 0.5·1 = 0.75; left (0, 0.5); margin 0. Server 1: (0.5/0.5, 0.25/0 capped
    /// at 2) = (1, 2); alignment 1·0.25 + 2·0 = 0.25; left (−0.75, −2); margin −2.
    #[test]
    fn pair_features_by_hand() {
        let (layout, obs) = two_resource_obs();
        let (_, servers, slots) = split_rows(layout, &obs);
        let f = pair_features(layout, &slots, &servers);
        assert_eq!(f.size(), [1, 1, 2, 4]);
        let got: Vec<f32> = Vec::try_from(f.reshape([-1])).unwrap();
        let want = [0.75, 0.0, 0.5, 0.0, 0.25, -0.75, -2.0, -2.0];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?}");
        }
    }

    /// By hand, two servers with free fractions (1, 1) and (0.5, 0.5) of equal capacities.
    /// Slot 0 (0.25, 0.25) fits both; best fit is server 1 (leftover 0.5 against 1.5):
    /// alignment 0.25, left (0.25, 0.25), margin 0.25. Slot 1 (0.75, 0.25) fits only server 0
    /// (server 1 would leave −0.25): alignment 1.0, left (0.25, 0.75), margin 0.25.
    #[test]
    fn best_fit_pair_features_by_hand() {
        let layout = ObsLayout {
            global: 1,
            server_rows: 2,
            server_features: 4,
            slot_rows: 2,
            slot_features: 3,
            resources: 2,
            ..ObsLayout::default()
        };
        let obs = Tensor::from_slice(&[
            0.0f32, // global
            1.0, 1.0, 1.0, 1.0, // server 0: free, capacity
            0.5, 0.5, 1.0, 1.0, // server 1
            1.0, 0.25, 0.25, // slot 0: present, demand
            1.0, 0.75, 0.25, // slot 1
        ])
        .view([1, 15]);
        let (_, servers, slots) = split_rows(layout, &obs);
        let f = best_fit_pair_features(layout, &slots, &servers);
        assert_eq!(f.size(), [1, 2, 4]);
        let got: Vec<f32> = Vec::try_from(f.reshape([-1])).unwrap();
        let want = [0.25, 0.25, 0.25, 0.25, 1.0, 0.25, 0.75, 0.25];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?}");
        }
    }

    /// With a large Tetris prior a fresh policy's logits are β · alignment plus its small
    /// initial scores: it places the slot on server 0 (alignment 0.75 against 0.125), and
    /// the logit gap is β · 0.625 to within them. Both networks; pair features change the
    /// kernel's input width.
    #[test]
    fn the_tetris_prior_makes_a_fresh_policy_prefer_aligned_placements() {
        let (layout, obs) = two_resource_obs();
        let actions = ActionLayout::placements_then_wait(1, 2);
        for arch in [Arch::Kernel, Arch::Set] {
            tch::manual_seed(3);
            let config = NetworkConfig {
                arch,
                hidden: vec![8],
                embed_dim: 8,
                pair_dim: 4,
                pair_features: true,
                tetris_prior: 100.0,
                ..NetworkConfig::default()
            };
            let policy = Policy::new(&config, layout, &actions, Head::Logits, Device::Cpu).unwrap();
            let logits = policy.forward(&obs).0;
            let gap = logits.double_value(&[0, 0]) - logits.double_value(&[0, 1]);
            assert!((gap - 50.0).abs() < 1.0, "{arch:?}: gap {gap}");
            let mask = Tensor::from_slice(&[true, true, true]).view([1, 3]);
            assert_eq!(policy.greedy(&obs, &mask).int64_value(&[0]), 0);
        }
        // The kernel's input grows by R + 2 = 4 with pair features: (3 + 4 + 1 + 4)·8 + 8.
        tch::manual_seed(3);
        let config = |pair_features| NetworkConfig {
            arch: Arch::Kernel,
            hidden: vec![8],
            pair_features,
            ..NetworkConfig::default()
        };
        let with = Policy::new(&config(true), layout, &actions, Head::Logits, Device::Cpu);
        let without = Policy::new(&config(false), layout, &actions, Head::Logits, Device::Cpu);
        assert_eq!(
            with.unwrap().num_parameters() - without.unwrap().num_parameters(),
            4 * 8
        );
    }

    #[test]
    fn pair_features_need_placements_and_resource_columns() {
        let (layout, _) = two_resource_obs();
        let on = NetworkConfig {
            arch: Arch::Kernel,
            pair_features: true,
            ..NetworkConfig::default()
        };
        let build = |config: &NetworkConfig, layout, actions: &ActionLayout| {
            Policy::new(config, layout, actions, Head::Logits, Device::Cpu)
        };
        let placements = ActionLayout::placements_then_wait(1, 2);
        assert!(build(&on, layout, &placements).is_ok());
        // Slot actions: the kernel network reads each slot's best-fit pair; the set network
        // and the Tetris prior do not apply there.
        let slots = ActionLayout::slots_then_wait(1);
        let policy = build(&on, layout, &slots).unwrap();
        assert_eq!(
            policy.num_parameters()
                - build(
                    &NetworkConfig {
                        pair_features: false,
                        ..on.clone()
                    },
                    layout,
                    &slots
                )
                .unwrap()
                .num_parameters(),
            4 * 64
        );
        for refused in [
            NetworkConfig {
                arch: Arch::Set,
                ..on.clone()
            },
            NetworkConfig {
                tetris_prior: 1.0,
                ..on.clone()
            },
        ] {
            assert!(matches!(
                build(&refused, layout, &slots),
                Err(NetworkError::NoPairColumns(_))
            ));
        }
        let no_columns = ObsLayout {
            resources: 0,
            ..layout
        };
        assert!(matches!(
            build(&on, no_columns, &placements),
            Err(NetworkError::NoPairColumns(_))
        ));
        let mlp = NetworkConfig {
            arch: Arch::Mlp,
            tetris_prior: 1.0,
            ..NetworkConfig::default()
        };
        let err = build(&mlp, layout, &placements).unwrap_err().to_string();
        assert!(err.contains("network.tetris_prior"), "{err}");
        let negative = NetworkConfig {
            tetris_prior: -1.0,
            ..on
        };
        let err = build(&negative, layout, &placements)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("network.tetris_prior must be in 0..=1000, got -1"),
            "{err}"
        );
    }

    /// The kernel network scores each action from its own features: permuting slots (slot
    /// mode) or servers (pair mode) permutes the scores, and the weight count is that of one
    /// small MLP (independent of how many slots and servers there are).
    #[test]
    fn kernel_network_is_one_mlp_per_action() {
        tch::manual_seed(5);
        let config = NetworkConfig {
            arch: Arch::Kernel,
            hidden: vec![8, 4],
            ..NetworkConfig::default()
        };
        let layout = ObsLayout {
            global: 1,
            server_rows: 2,
            server_features: 2,
            slot_rows: 2,
            slot_features: 1,
            ..ObsLayout::default()
        };
        let pair = Policy::new(
            &config,
            layout,
            &ActionLayout::placements_then_wait(2, 2),
            Head::Logits,
            Device::Cpu,
        )
        .unwrap();
        // kernel (1+2+1)·8+8 + 8·4+4, kernel and wait heads 4+1 each, critic 7·8+8 + 8·4+4,
        // value head 4+1.
        assert_eq!(pair.num_parameters(), 40 + 36 + 5 + 5 + 64 + 36 + 5);
        // [global | server0 | server1 | slot0 | slot1]; swap the servers.
        let a = Tensor::from_slice(&[0.5f32, 1.0, 0.0, 0.2, 0.9, 0.3, 0.7]).view([1, 7]);
        let b = Tensor::from_slice(&[0.5f32, 0.2, 0.9, 1.0, 0.0, 0.3, 0.7]).view([1, 7]);
        let (la, lb) = (pair.forward(&a).0, pair.forward(&b).0);
        // Action k·2 + n: (slot k, server n).
        for (x, y) in [(0, 1), (1, 0), (2, 3), (3, 2), (4, 4)] {
            assert!((la.double_value(&[0, x]) - lb.double_value(&[0, y])).abs() < 1e-6);
        }
        let slot = Policy::new(
            &config,
            layout,
            &ActionLayout::slots_then_wait(2),
            Head::Logits,
            Device::Cpu,
        )
        .unwrap();
        let c = Tensor::from_slice(&[0.5f32, 1.0, 0.0, 0.2, 0.9, 0.7, 0.3]).view([1, 7]);
        let (la, lc) = (slot.forward(&a).0, slot.forward(&c).0);
        assert_eq!(la.size(), [1, 3]);
        assert!((la.double_value(&[0, 0]) - lc.double_value(&[0, 1])).abs() < 1e-6);
        assert!((la.double_value(&[0, 1]) - lc.double_value(&[0, 0])).abs() < 1e-6);
        assert!((la.double_value(&[0, 2]) - lc.double_value(&[0, 2])).abs() < 1e-6);
        assert!(matches!(
            Policy::new(
                &config,
                ObsLayout::flat(7),
                &ActionLayout::slots_then_wait(2),
                Head::Logits,
                Device::Cpu
            ),
            Err(NetworkError::NoSetStructure(_))
        ));
    }

    #[test]
    fn set_network_errors_are_explicit() {
        let config = NetworkConfig {
            arch: Arch::Set,
            ..NetworkConfig::default()
        };
        assert!(matches!(
            Policy::new(
                &config,
                ObsLayout::flat(4),
                &ActionLayout::plain(2),
                Head::Logits,
                Device::Cpu
            ),
            Err(NetworkError::NoSetStructure(_))
        ));
        // Placements over 3 servers for an observation of 4 server rows.
        let wrong = ActionLayout::placements_then_wait(5, 3);
        assert!(matches!(
            Policy::new(&config, cloud_like(4), &wrong, Head::Logits, Device::Cpu),
            Err(NetworkError::UnsupportedActions {
                slots: 5,
                servers: 4,
                ..
            })
        ));
        assert!(matches!(
            Policy::new(
                &config,
                cloud_like(4),
                &ActionLayout::plain(21),
                Head::Logits,
                Device::Cpu
            ),
            Err(NetworkError::UnsupportedActions { .. })
        ));
        let bad = NetworkConfig {
            hidden: vec![],
            ..NetworkConfig::default()
        };
        assert!(
            Policy::new(
                &bad,
                ObsLayout::flat(4),
                &ActionLayout::plain(2),
                Head::Logits,
                Device::Cpu
            )
            .is_err()
        );
    }

    /// One server: placements and slots have the same count (DeepRM's 10 slots + wait = 11),
    /// and the layout, not the size, decides how the set network scores them.
    #[test]
    fn one_server_is_not_ambiguous() {
        let layout = ObsLayout {
            global: 2,
            server_rows: 1,
            server_features: 3,
            slot_rows: 10,
            slot_features: 4,
            ..ObsLayout::default()
        };
        let config = NetworkConfig {
            arch: Arch::Set,
            embed_dim: 8,
            ..NetworkConfig::default()
        };
        let slots = Policy::new(
            &config,
            layout,
            &ActionLayout::slots_then_wait(10),
            Head::Logits,
            Device::Cpu,
        )
        .unwrap();
        let pairs = Policy::new(
            &config,
            layout,
            &ActionLayout::placements_then_wait(10, 1),
            Head::Logits,
            Device::Cpu,
        )
        .unwrap();
        assert_eq!(slots.num_actions(), 11);
        assert_eq!(pairs.num_actions(), 11);
        assert_eq!(
            ActionMode::of(layout, &ActionLayout::slots_then_wait(10))
                .unwrap()
                .0,
            ActionMode::Slot
        );
        assert_eq!(
            ActionMode::of(layout, &ActionLayout::placements_then_wait(10, 1))
                .unwrap()
                .0,
            ActionMode::Pair
        );
        assert!(
            slots
                .forward(&Tensor::zeros(
                    [1, layout.dim() as i64],
                    (Kind::Float, Device::Cpu)
                ))
                .0
                .size()
                == [1, 11]
        );
    }

    /// With running rows, the kernel network scores placements, then one preempt action per
    /// row from that row alone, then one migration per (row, server): swapping two running
    /// rows swaps their scores. The set network refuses those blocks.
    #[test]
    fn the_kernel_network_scores_preempt_and_migrate_actions_per_row() {
        let layout = ObsLayout {
            global: 2,
            server_rows: 3,
            server_features: 2,
            slot_rows: 2,
            slot_features: 2,
            running_rows: 2,
            running_features: 3,
            ..ObsLayout::default()
        };
        let actions = ActionLayout {
            blocks: vec![
                ActionBlock::Placements {
                    slots: 2,
                    servers: 3,
                },
                ActionBlock::Preempt { rows: 2 },
                ActionBlock::Migrate {
                    rows: 2,
                    servers: 3,
                },
                ActionBlock::Wait,
            ],
            rules: Vec::new(),
        };
        let config = NetworkConfig {
            arch: Arch::Kernel,
            hidden: vec![8],
            ..NetworkConfig::default()
        };
        let policy = with_torch_rng(Some(0), || {
            Policy::new(&config, layout, &actions, Head::Logits, Device::Cpu).unwrap()
        });
        assert_eq!(policy.num_actions(), 6 + 2 + 6 + 1);
        let mut obs: Vec<f32> = (0..layout.dim()).map(|i| (i as f32 * 0.37).sin()).collect();
        let logits = |obs: &[f32]| -> Vec<f32> {
            let t = Tensor::from_slice(obs).reshape([1, -1]);
            Vec::<f32>::try_from(policy.forward(&t).0.reshape([-1])).unwrap()
        };
        let before = logits(&obs);
        let running_start = layout.dim() - 6;
        let (row0, row1) = obs[running_start..].split_at_mut(3);
        row0.swap_with_slice(row1);
        let after = logits(&obs);
        // Equal up to float summation order within a batch.
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
        assert!(
            close(&before[..6], &after[..6]),
            "placements read no running row"
        );
        assert!(close(&before[6..8], &[after[7], after[6]]));
        assert!(close(&before[8..11], &after[11..14]));
        assert!(close(&before[11..14], &after[8..11]));
        assert!(
            !close(&before[6..8], &before[8..10]),
            "rows differ, so do scores"
        );
        let set = NetworkConfig {
            arch: Arch::Set,
            ..config
        };
        assert!(matches!(
            Policy::new(&set, layout, &actions, Head::Logits, Device::Cpu),
            Err(NetworkError::UnsupportedActions { .. })
        ));
    }
}

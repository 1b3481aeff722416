//! Experience replay for DQN: uniform, or proportional prioritized replay (Schaul et al.,
//! "Prioritized Experience Replay", ICLR 2016), with n-step returns.
//!
//! ## Storage
//! A fixed-capacity ring (the oldest transition is overwritten first) of contiguous arrays, one
//! row per transition: observation, action, n-step return, bootstrap discount, next
//! observation, the next state's legal-action mask, and whether the window ended on a
//! termination or a truncation. Everything is allocated in [`ReplayBuffer::new`]; pushing and
//! sampling allocate nothing (sampling writes into a caller-owned [`SampleBatch`]).
//!
//! ## n-step returns
//! Each env has a window of its last `n` (obs, action, reward) triples. A transition leaves
//! the window as `(s_t, a_t, R, s_{t+k}, mask_{t+k}, d)` with
//! `R = Σ_{j<k} γ^j r_{t+j}` and the bootstrap discount `d = γ^k`, so the learner's target is
//! `R + d · Q(s_{t+k}, ·)`:
//! * while the episode runs, the oldest triple leaves when the window holds `n` (`k = n`);
//! * when the episode ends, every triple in the window leaves (`k` = the steps left), and the
//!   window is emptied, so no return crosses an episode boundary. On **termination** `d = 0`
//!   (no bootstrap); on **truncation** `d = γ^k` and `s_{t+k}` is the final observation
//!   (bootstrap from it, as Gymnasium's `terminated`/`truncated` split intends).
//!
//! ## Prioritized replay
//! Priorities are `p_i = (|δ_i| + ε)^α` in a [`SumTree`] (f64 sums, plus a min tree). A batch
//! of `B` is drawn stratified: the total mass is cut into `B` equal segments and one index is
//! drawn uniformly by mass inside each, so `P(i) = p_i / Σ_j p_j`. The importance weights
//! `w_i = (N·P(i))^−β / max_j (N·P(j))^−β = (p_i / p_min)^−β` are ≤ 1, with `β` annealed from
//! `beta_start` to `beta_end` by the caller ([`ReplayConfig::beta`]). A new transition gets the
//! largest priority seen so far (1 at first), so it is replayed at least once soon; the learner
//! calls [`ReplayBuffer::update_priorities`] with the TD errors of every batch it learns from.
//! With `prioritized = false` the same buffer samples indices uniformly and every weight is 1.
//!
//! Sampling and priority updates assume no push in between (true of a synchronous loop), so the
//! indices of a batch still name the transitions that were sampled.
//!
//! ## Checkpoints
//! [`ReplayBuffer::write_to`] / [`ReplayBuffer::read_from`] serialise everything (contents,
//! priorities, n-step windows, the sampling RNG's exact position) to any `Write`/`Read`, in a
//! little-endian binary format; the caller owns the file.

pub mod sum_tree;

use std::io::{self, Read, Write};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use sum_tree::SumTree;

/// The `[replay]` section of a DQN config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplayConfig {
    /// Transitions kept; the oldest is overwritten first.
    pub capacity: usize,
    /// Proportional prioritized replay; `false` samples uniformly.
    pub prioritized: bool,
    /// Priority exponent: `p = (|δ| + ε)^α` (0 = uniform, 1 = fully proportional).
    pub alpha: f64,
    /// Importance-sampling exponent at the start of training.
    pub beta_start: f64,
    /// Importance-sampling exponent at the end of training (1 = full correction).
    pub beta_end: f64,
    /// `ε` added to `|δ|` so that no transition's priority is 0.
    pub priority_eps: f64,
    /// Steps summed into each return (1 = one-step TD).
    pub n_step: usize,
}

impl Default for ReplayConfig {
    /// Schaul et al.'s proportional variant: α = 0.6, β 0.4 → 1.
    fn default() -> Self {
        Self {
            capacity: 10_000,
            prioritized: true,
            alpha: 0.6,
            beta_start: 0.4,
            beta_end: 1.0,
            priority_eps: 1e-6,
            n_step: 1,
        }
    }
}

/// The largest replay buffer a config may ask for (see [`ReplayConfig::validate`]).
pub const MAX_CAPACITY: usize = 10_000_000;

impl ReplayConfig {
    /// Every problem with the values, as messages naming the `replay.*` key.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if !(1..=MAX_CAPACITY).contains(&self.capacity) {
            errors.push(format!(
                "replay.capacity must be in 1..={MAX_CAPACITY}, got {} (a transition holds two \
                 observations: at 100 floats each, {MAX_CAPACITY} of them take 8 GB)",
                self.capacity
            ));
        }
        if !(self.alpha >= 0.0 && self.alpha.is_finite()) {
            errors.push(format!("replay.alpha must be ≥ 0, got {}", self.alpha));
        }
        for (key, beta) in [("beta_start", self.beta_start), ("beta_end", self.beta_end)] {
            if !(0.0..=1.0).contains(&beta) {
                errors.push(format!("replay.{key} must be in [0, 1], got {beta}"));
            }
        }
        if !(self.priority_eps > 0.0 && self.priority_eps.is_finite()) {
            errors.push(format!(
                "replay.priority_eps must be > 0, got {}",
                self.priority_eps
            ));
        }
        if self.n_step == 0 || self.n_step > 255 {
            errors.push(format!(
                "replay.n_step must be in 1..=255, got {}",
                self.n_step
            ));
        }
        errors
    }

    /// `β` at `progress ∈ [0, 1]` of training: linear from `beta_start` to `beta_end`.
    pub fn beta(&self, progress: f64) -> f64 {
        self.beta_start + (self.beta_end - self.beta_start) * progress.clamp(0.0, 1.0)
    }
}

/// One env step, as the training loop sees it. At an episode end, `next_obs` is the finished
/// episode's last observation and `next_mask` its mask (not those of the reset state).
#[derive(Clone, Copy, Debug)]
pub struct StepRecord<'a> {
    pub obs: &'a [f32],
    pub action: usize,
    pub reward: f32,
    pub next_obs: &'a [f32],
    pub next_mask: &'a [bool],
    pub terminated: bool,
    pub truncated: bool,
}

/// A stored transition, borrowed from the buffer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StoredTransition<'a> {
    pub obs: &'a [f32],
    pub action: usize,
    /// `Σ_{j<k} γ^j r_{t+j}`.
    pub n_step_return: f32,
    /// `γ^k`, or 0 when the window ended on a termination.
    pub discount: f32,
    pub next_obs: &'a [f32],
    pub next_mask: &'a [bool],
    /// The window ended on a termination.
    pub terminated: bool,
    /// The window ended on a truncation.
    pub truncated: bool,
}

/// A sampled batch in row-major arrays, reused from one sample to the next.
#[derive(Clone, Debug, Default)]
pub struct SampleBatch {
    /// Buffer slots of the rows, for [`ReplayBuffer::update_priorities`].
    pub indices: Vec<usize>,
    /// Importance-sampling weights (all 1 with uniform replay).
    pub weights: Vec<f32>,
    pub obs: Vec<f32>,
    pub actions: Vec<i64>,
    pub returns: Vec<f32>,
    pub discounts: Vec<f32>,
    pub next_obs: Vec<f32>,
    pub next_masks: Vec<bool>,
}

impl SampleBatch {
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

/// Why a saved buffer could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("replay buffer I/O: {0}")]
    Io(#[from] io::Error),
    #[error("not a lepton replay buffer (bad magic bytes or version)")]
    BadFormat,
    #[error("saved replay buffer does not fit this one: {0}")]
    Mismatch(String),
}

/// The per-env n-step window: a ring of the last `n` (obs, action, reward).
#[derive(Clone, Debug)]
struct Window {
    obs: Vec<f32>,
    actions: Vec<i64>,
    rewards: Vec<f32>,
    /// Ring position of the oldest entry.
    start: usize,
    len: usize,
}

/// Replay memory; see the module docs.
#[derive(Debug)]
pub struct ReplayBuffer {
    config: ReplayConfig,
    gamma: f64,
    obs_dim: usize,
    num_actions: usize,
    obs: Vec<f32>,
    next_obs: Vec<f32>,
    actions: Vec<i64>,
    returns: Vec<f32>,
    discounts: Vec<f32>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
    next_masks: Vec<bool>,
    /// Rows filled so far (≤ capacity).
    len: usize,
    /// Row the next transition is written to.
    next_row: usize,
    /// Transitions ever stored.
    num_added: u64,
    /// `Some` when prioritized.
    tree: Option<SumTree>,
    /// Largest priority `(|δ| + ε)^α` ever set (1 before any update).
    max_priority: f64,
    windows: Vec<Window>,
    rng: ChaCha8Rng,
}

const MAGIC: &[u8; 8] = b"LEPTONRB";
const FORMAT_VERSION: u32 = 1;

impl ReplayBuffer {
    /// An empty buffer for `num_envs` envs with `obs_dim`-long observations and `num_actions`
    /// actions; `gamma` discounts the n-step returns; `seed` seeds the sampling stream.
    ///
    /// # Panics
    /// When the config does not validate, or a size is 0.
    pub fn new(
        config: &ReplayConfig,
        gamma: f64,
        obs_dim: usize,
        num_actions: usize,
        num_envs: usize,
        seed: u64,
    ) -> Self {
        let errors = config.validate();
        assert!(
            errors.is_empty(),
            "invalid replay config: {}",
            errors.join("; ")
        );
        assert!(
            obs_dim > 0 && num_actions > 0 && num_envs > 0,
            "replay buffer sizes must be positive"
        );
        let cap = config.capacity;
        let n = config.n_step;
        let window = Window {
            obs: vec![0.0; n * obs_dim],
            actions: vec![0; n],
            rewards: vec![0.0; n],
            start: 0,
            len: 0,
        };
        Self {
            config: config.clone(),
            gamma,
            obs_dim,
            num_actions,
            obs: vec![0.0; cap * obs_dim],
            next_obs: vec![0.0; cap * obs_dim],
            actions: vec![0; cap],
            returns: vec![0.0; cap],
            discounts: vec![0.0; cap],
            terminated: vec![false; cap],
            truncated: vec![false; cap],
            next_masks: vec![false; cap * num_actions],
            len: 0,
            next_row: 0,
            num_added: 0,
            tree: config.prioritized.then(|| SumTree::new(cap)),
            max_priority: 1.0,
            windows: vec![window; num_envs],
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    pub fn config(&self) -> &ReplayConfig {
        &self.config
    }

    /// Transitions currently stored.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Transitions ever stored (including overwritten ones).
    pub fn num_added(&self) -> u64 {
        self.num_added
    }

    pub fn is_prioritized(&self) -> bool {
        self.tree.is_some()
    }

    /// Mean priority `(|δ| + ε)^α` of the stored transitions (1 with uniform replay).
    pub fn mean_priority(&self) -> f64 {
        match &self.tree {
            Some(tree) if self.len > 0 => tree.total() / self.len as f64,
            _ => 1.0,
        }
    }

    /// Priority of row `index` (1 with uniform replay).
    pub fn priority(&self, index: usize) -> f64 {
        self.tree.as_ref().map_or(1.0, |tree| tree.get(index))
    }

    /// The transition stored in row `index < len()`.
    pub fn transition(&self, index: usize) -> StoredTransition<'_> {
        assert!(
            index < self.len,
            "row {index} is not filled (len {})",
            self.len
        );
        let (d, a) = (self.obs_dim, self.num_actions);
        StoredTransition {
            obs: &self.obs[index * d..(index + 1) * d],
            action: self.actions[index] as usize,
            n_step_return: self.returns[index],
            discount: self.discounts[index],
            next_obs: &self.next_obs[index * d..(index + 1) * d],
            next_mask: &self.next_masks[index * a..(index + 1) * a],
            terminated: self.terminated[index],
            truncated: self.truncated[index],
        }
    }

    /// Records env `env`'s step; stores every transition whose n-step window it completes.
    ///
    /// # Panics
    /// When a slice has the wrong length or the action is out of range.
    pub fn push(&mut self, env: usize, step: &StepRecord<'_>) {
        let (d, n) = (self.obs_dim, self.config.n_step);
        assert_eq!(step.obs.len(), d, "obs length");
        assert_eq!(step.next_obs.len(), d, "next_obs length");
        assert_eq!(step.next_mask.len(), self.num_actions, "next_mask length");
        assert!(
            step.action < self.num_actions,
            "action {} out of range",
            step.action
        );
        let window = &mut self.windows[env];
        let slot = (window.start + window.len) % n;
        window.obs[slot * d..(slot + 1) * d].copy_from_slice(step.obs);
        window.actions[slot] = step.action as i64;
        window.rewards[slot] = step.reward;
        window.len += 1;
        if step.terminated || step.truncated {
            while self.windows[env].len > 0 {
                self.emit_oldest(env, step);
            }
        } else if window.len == n {
            self.emit_oldest(env, step);
        }
    }

    /// Stores env `env`'s oldest window entry with the rest of the window as its return, and
    /// drops it from the window.
    fn emit_oldest(&mut self, env: usize, step: &StepRecord<'_>) {
        let (d, a, n) = (self.obs_dim, self.num_actions, self.config.n_step);
        let window = &mut self.windows[env];
        let k = window.len;
        let mut n_step_return = 0.0f64;
        let mut discount = 1.0f64;
        for j in 0..k {
            n_step_return += discount * f64::from(window.rewards[(window.start + j) % n]);
            discount *= self.gamma;
        }
        let row = self.next_row;
        let first = window.start;
        self.obs[row * d..(row + 1) * d].copy_from_slice(&window.obs[first * d..(first + 1) * d]);
        self.actions[row] = window.actions[first];
        window.start = (window.start + 1) % n;
        window.len -= 1;
        self.returns[row] = n_step_return as f32;
        self.discounts[row] = if step.terminated {
            0.0
        } else {
            discount as f32
        };
        self.terminated[row] = step.terminated;
        self.truncated[row] = step.truncated && !step.terminated;
        self.next_obs[row * d..(row + 1) * d].copy_from_slice(step.next_obs);
        self.next_masks[row * a..(row + 1) * a].copy_from_slice(step.next_mask);
        if let Some(tree) = &mut self.tree {
            tree.set(row, self.max_priority);
        }
        self.next_row = (row + 1) % self.config.capacity;
        self.len = (self.len + 1).min(self.config.capacity);
        self.num_added += 1;
    }

    /// Draws `batch_size` rows (with replacement) into `batch`, with importance weights for
    /// exponent `beta`.
    ///
    /// # Panics
    /// When the buffer is empty.
    pub fn sample(&mut self, batch_size: usize, beta: f64, batch: &mut SampleBatch) {
        assert!(self.len > 0, "cannot sample from an empty replay buffer");
        batch.indices.clear();
        batch.weights.clear();
        match &self.tree {
            Some(tree) => {
                let segment = tree.total() / batch_size as f64;
                let p_min = tree.min();
                for i in 0..batch_size {
                    let mass = (i as f64 + self.rng.random::<f64>()) * segment;
                    let index = tree.find_prefix_sum(mass);
                    batch.indices.push(index);
                    batch
                        .weights
                        .push((tree.get(index) / p_min).powf(-beta) as f32);
                }
            }
            None => {
                for _ in 0..batch_size {
                    batch.indices.push(self.rng.random_range(0..self.len));
                    batch.weights.push(1.0);
                }
            }
        }
        self.gather(batch);
    }

    /// Copies the rows named by `batch.indices` into the batch's arrays.
    fn gather(&self, batch: &mut SampleBatch) {
        let (d, a) = (self.obs_dim, self.num_actions);
        batch.obs.clear();
        batch.next_obs.clear();
        batch.next_masks.clear();
        batch.actions.clear();
        batch.returns.clear();
        batch.discounts.clear();
        for &i in &batch.indices {
            batch.obs.extend_from_slice(&self.obs[i * d..(i + 1) * d]);
            batch
                .next_obs
                .extend_from_slice(&self.next_obs[i * d..(i + 1) * d]);
            batch
                .next_masks
                .extend_from_slice(&self.next_masks[i * a..(i + 1) * a]);
            batch.actions.push(self.actions[i]);
            batch.returns.push(self.returns[i]);
            batch.discounts.push(self.discounts[i]);
        }
    }

    /// Sets the priorities of `indices` to `(|δ| + ε)^α` from their TD errors (no-op with
    /// uniform replay). A row sampled twice in a batch keeps its last error.
    pub fn update_priorities(&mut self, indices: &[usize], td_errors: &[f32]) {
        assert_eq!(indices.len(), td_errors.len(), "one TD error per index");
        let Some(tree) = &mut self.tree else { return };
        for (&i, &delta) in indices.iter().zip(td_errors) {
            assert!(i < self.len, "row {i} is not filled");
            let delta = f64::from(delta).abs();
            let delta = if delta.is_finite() {
                delta
            } else {
                f64::MAX.sqrt()
            };
            let p = (delta + self.config.priority_eps).powf(self.config.alpha);
            tree.set(i, p);
            self.max_priority = self.max_priority.max(p);
        }
    }

    /// Writes the whole buffer (see the module docs); buffers the writes itself.
    pub fn write_to<W: Write>(&self, w: &mut W) -> io::Result<()> {
        let w = &mut io::BufWriter::with_capacity(1 << 16, w);
        w.write_all(MAGIC)?;
        w.write_all(&FORMAT_VERSION.to_le_bytes())?;
        for v in [
            self.config.capacity as u64,
            self.obs_dim as u64,
            self.num_actions as u64,
            self.windows.len() as u64,
            self.config.n_step as u64,
            u64::from(self.tree.is_some()),
            self.len as u64,
            self.next_row as u64,
            self.num_added,
        ] {
            w.write_all(&v.to_le_bytes())?;
        }
        w.write_all(&self.max_priority.to_le_bytes())?;
        w.write_all(&self.rng.get_seed())?;
        w.write_all(&self.rng.get_stream().to_le_bytes())?;
        w.write_all(&self.rng.get_word_pos().to_le_bytes())?;
        let (rows, d, a) = (self.len, self.obs_dim, self.num_actions);
        write_f32s(w, &self.obs[..rows * d])?;
        write_f32s(w, &self.next_obs[..rows * d])?;
        write_i64s(w, &self.actions[..rows])?;
        write_f32s(w, &self.returns[..rows])?;
        write_f32s(w, &self.discounts[..rows])?;
        write_bools(w, &self.terminated[..rows])?;
        write_bools(w, &self.truncated[..rows])?;
        write_bools(w, &self.next_masks[..rows * a])?;
        if let Some(tree) = &self.tree {
            for i in 0..rows {
                w.write_all(&tree.get(i).to_le_bytes())?;
            }
        }
        for window in &self.windows {
            w.write_all(&(window.start as u64).to_le_bytes())?;
            w.write_all(&(window.len as u64).to_le_bytes())?;
            write_f32s(w, &window.obs)?;
            write_i64s(w, &window.actions)?;
            write_f32s(w, &window.rewards)?;
        }
        w.flush()
    }

    /// Replaces this buffer's state by one written by [`ReplayBuffer::write_to`] from a buffer
    /// of the same shape (capacity, dimensions, envs, n, prioritization). Reads field by
    /// field: pass a `BufReader`. On error the buffer's contents are unspecified.
    pub fn read_from<R: Read>(&mut self, r: &mut R) -> Result<(), ReplayError> {
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic)?;
        if &magic != MAGIC || read_u32(r)? != FORMAT_VERSION {
            return Err(ReplayError::BadFormat);
        }
        let expected = [
            ("capacity", self.config.capacity as u64),
            ("obs_dim", self.obs_dim as u64),
            ("num_actions", self.num_actions as u64),
            ("num_envs", self.windows.len() as u64),
            ("n_step", self.config.n_step as u64),
            ("prioritized", u64::from(self.tree.is_some())),
        ];
        for (name, want) in expected {
            let found = read_u64(r)?;
            if found != want {
                return Err(ReplayError::Mismatch(format!(
                    "{name} is {found} in the file, {want} here"
                )));
            }
        }
        let len = read_u64(r)? as usize;
        let next_row = read_u64(r)? as usize;
        if len > self.config.capacity || next_row >= self.config.capacity {
            return Err(ReplayError::BadFormat);
        }
        self.len = len;
        self.next_row = next_row;
        self.num_added = read_u64(r)?;
        self.max_priority = f64::from_le_bytes(read_array(r)?);
        let seed: [u8; 32] = read_array(r)?;
        let stream = u64::from_le_bytes(read_array(r)?);
        let word_pos = u128::from_le_bytes(read_array(r)?);
        self.rng = ChaCha8Rng::from_seed(seed);
        self.rng.set_stream(stream);
        self.rng.set_word_pos(word_pos);
        let (d, a) = (self.obs_dim, self.num_actions);
        read_f32s(r, &mut self.obs[..len * d])?;
        read_f32s(r, &mut self.next_obs[..len * d])?;
        read_i64s(r, &mut self.actions[..len])?;
        read_f32s(r, &mut self.returns[..len])?;
        read_f32s(r, &mut self.discounts[..len])?;
        read_bools(r, &mut self.terminated[..len])?;
        read_bools(r, &mut self.truncated[..len])?;
        read_bools(r, &mut self.next_masks[..len * a])?;
        if let Some(tree) = &mut self.tree {
            *tree = SumTree::new(self.config.capacity);
            for i in 0..len {
                let p = f64::from_le_bytes(read_array(r)?);
                if !(p.is_finite() && p >= 0.0) {
                    return Err(ReplayError::BadFormat);
                }
                tree.set(i, p);
            }
        }
        let n = self.config.n_step;
        for window in &mut self.windows {
            window.start = read_u64(r)? as usize;
            window.len = read_u64(r)? as usize;
            if window.start >= n || window.len >= n {
                return Err(ReplayError::BadFormat);
            }
            read_f32s(r, &mut window.obs)?;
            read_i64s(r, &mut window.actions)?;
            read_f32s(r, &mut window.rewards)?;
        }
        Ok(())
    }
}

fn write_f32s<W: Write>(w: &mut W, values: &[f32]) -> io::Result<()> {
    values
        .iter()
        .try_for_each(|v| w.write_all(&v.to_le_bytes()))
}

fn write_i64s<W: Write>(w: &mut W, values: &[i64]) -> io::Result<()> {
    values
        .iter()
        .try_for_each(|v| w.write_all(&v.to_le_bytes()))
}

fn write_bools<W: Write>(w: &mut W, values: &[bool]) -> io::Result<()> {
    values.iter().try_for_each(|&v| w.write_all(&[u8::from(v)]))
}

fn read_array<R: Read, const N: usize>(r: &mut R) -> io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    r.read_exact(&mut bytes)?;
    Ok(bytes)
}

fn read_u32<R: Read>(r: &mut R) -> io::Result<u32> {
    Ok(u32::from_le_bytes(read_array(r)?))
}

fn read_u64<R: Read>(r: &mut R) -> io::Result<u64> {
    Ok(u64::from_le_bytes(read_array(r)?))
}

fn read_f32s<R: Read>(r: &mut R, out: &mut [f32]) -> io::Result<()> {
    out.iter_mut()
        .try_for_each(|v| read_array(r).map(|b| *v = f32::from_le_bytes(b)))
}

fn read_i64s<R: Read>(r: &mut R, out: &mut [i64]) -> io::Result<()> {
    out.iter_mut()
        .try_for_each(|v| read_array(r).map(|b| *v = i64::from_le_bytes(b)))
}

fn read_bools<R: Read>(r: &mut R, out: &mut [bool]) -> io::Result<()> {
    out.iter_mut()
        .try_for_each(|v| read_array::<R, 1>(r).map(|b| *v = b[0] != 0))
}

#[cfg(test)]
mod tests;

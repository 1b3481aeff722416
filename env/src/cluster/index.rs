//! Indexes over the servers by free capacity, so that the slot action mode, its mask and
//! the "fits somewhere" features cost O(log N) per query instead of a scan of N servers.
//!
//! - A segment tree over the server list (types are contiguous ranges of it) whose nodes
//!   hold the componentwise maximum of free capacity, the largest number of whole free GPUs
//!   and the largest free share of one GPU, the union of GPU models, the lowest
//!   reservation gate and whether any server is up. These maxima are a necessary condition
//!   for a task to fit somewhere below a node, so a first-fit query descends only into
//!   subtrees that may hold a fit; a leaf's summary is exact. First fit (lowest index) is
//!   one leftmost descent; "fits somewhere" is the same query.
//! - Per server type, the servers sorted by the sum over resources of free / capacity (a
//!   `Vec` kept sorted, preallocated, so updates never allocate). Within a type every server
//!   has the same capacity, so best fit (least leftover) is the first server in this order,
//!   from the task's own sum up, that fits.

use super::state::ServerState;
use crate::workload::{MAX_RESOURCES, TaskSpec};

/// What a task needs from one server, derived once per query.
#[derive(Clone, Copy, Debug)]
pub struct Need {
    pub demand: [u32; MAX_RESOURCES],
    /// Share of one GPU (GPU units below a whole GPU), 0 if none.
    pub gpu_share: u16,
    /// Whole GPUs.
    pub gpu_whole: u8,
    pub models: u32,
    pub priority: u8,
}

impl Need {
    /// `gpu`: the GPU resource and its units per GPU, when GPUs are tracked one by one.
    pub fn of(spec: &TaskSpec, gpu: Option<(usize, u32)>) -> Self {
        let (mut gpu_share, mut gpu_whole) = (0, 0);
        if let Some((g, unit)) = gpu {
            let d = spec.demand[g];
            if d < unit {
                gpu_share = d as u16;
            } else {
                gpu_whole = (d / unit).min(u32::from(u8::MAX)) as u8;
            }
        }
        Self {
            demand: spec.demand,
            gpu_share,
            gpu_whole,
            models: spec.gpu_models,
            priority: spec.priority,
        }
    }
}

/// The maxima of a set of servers (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub free: [u32; MAX_RESOURCES],
    pub full_gpus: u8,
    pub gpu_free: u16,
    pub models: u32,
    pub min_gate: u8,
    pub any_up: bool,
}

impl Summary {
    const EMPTY: Self = Self {
        free: [0; MAX_RESOURCES],
        full_gpus: 0,
        gpu_free: 0,
        models: 0,
        min_gate: u8::MAX,
        any_up: false,
    };

    pub fn of(s: &ServerState) -> Self {
        if !s.up {
            return Self::EMPTY;
        }
        Self {
            free: s.free,
            full_gpus: s.full_gpus,
            gpu_free: s.max_gpu_free,
            models: s.model_bit,
            min_gate: s.min_priority,
            any_up: true,
        }
    }

    fn merge(a: &Self, b: &Self) -> Self {
        let mut free = a.free;
        for (f, &x) in free.iter_mut().zip(&b.free) {
            *f = (*f).max(x);
        }
        Self {
            free,
            full_gpus: a.full_gpus.max(b.full_gpus),
            gpu_free: a.gpu_free.max(b.gpu_free),
            models: a.models | b.models,
            min_gate: a.min_gate.min(b.min_gate),
            any_up: a.any_up || b.any_up,
        }
    }

    /// Necessary condition for `need` to fit on some server of the set; exact for one server.
    #[inline]
    pub fn admits(&self, need: &Need, num_resources: usize) -> bool {
        self.any_up
            && self.min_gate <= need.priority
            && (need.models == 0 || self.models & need.models != 0)
            && self.gpu_free >= need.gpu_share
            && self.full_gpus >= need.gpu_whole
            && (0..num_resources).all(|r| self.free[r] >= need.demand[r])
    }
}

#[derive(Clone, Debug)]
pub struct ServerIndex {
    leaves: usize,
    tree: Vec<Summary>,
    /// Per type: `(key, server)` sorted ascending.
    by_free: Vec<Vec<(u64, u32)>>,
    /// Current key of each server.
    keys: Vec<u64>,
    num_resources: usize,
}

/// Σ over resources with capacity of free / capacity, as order-preserving bits.
fn free_key(s: &ServerState, num_resources: usize) -> u64 {
    let sum: f64 = (0..num_resources)
        .filter(|&r| s.capacity[r] > 0)
        .map(|r| f64::from(s.free[r]) / f64::from(s.capacity[r]))
        .sum();
    sum.to_bits()
}

impl ServerIndex {
    pub fn new(servers: &[ServerState], num_types: usize, num_resources: usize) -> Self {
        let leaves = servers.len().next_power_of_two().max(1);
        let mut by_free = vec![Vec::new(); num_types];
        for s in servers {
            by_free[s.type_index].push((0, 0));
        }
        let mut index = Self {
            leaves,
            tree: vec![Summary::EMPTY; 2 * leaves],
            by_free,
            keys: vec![0; servers.len()],
            num_resources,
        };
        index.rebuild(servers);
        index
    }

    /// Recomputes everything from the servers (at reset).
    pub fn rebuild(&mut self, servers: &[ServerState]) {
        for (n, s) in servers.iter().enumerate() {
            self.tree[self.leaves + n] = Summary::of(s);
        }
        for n in servers.len()..self.leaves {
            self.tree[self.leaves + n] = Summary::EMPTY;
        }
        for i in (1..self.leaves).rev() {
            self.tree[i] = Summary::merge(&self.tree[2 * i], &self.tree[2 * i + 1]);
        }
        for list in &mut self.by_free {
            list.clear();
        }
        for (n, s) in servers.iter().enumerate() {
            let key = free_key(s, self.num_resources);
            self.keys[n] = key;
            self.by_free[s.type_index].push((key, n as u32));
        }
        for list in &mut self.by_free {
            list.sort_unstable();
        }
    }

    /// Refreshes server `n` after its state changed.
    pub fn update(&mut self, n: usize, s: &ServerState) {
        let mut i = self.leaves + n;
        self.tree[i] = Summary::of(s);
        while i > 1 {
            i /= 2;
            self.tree[i] = Summary::merge(&self.tree[2 * i], &self.tree[2 * i + 1]);
        }
        let key = free_key(s, self.num_resources);
        let old = self.keys[n];
        if key != old {
            let list = &mut self.by_free[s.type_index];
            if let Ok(pos) = list.binary_search(&(old, n as u32)) {
                list.remove(pos);
            }
            let pos = list.partition_point(|&e| e < (key, n as u32));
            list.insert(pos, (key, n as u32));
            self.keys[n] = key;
        }
    }

    /// The lowest-index server where `need` fits now.
    pub fn first_fit(&self, need: &Need) -> Option<usize> {
        if !self.tree[1].admits(need, self.num_resources) {
            return None;
        }
        let mut i = 1;
        self.descend(&mut i, need).then(|| i - self.leaves)
    }

    /// Leftmost admitting leaf under node `*i` (which admits `need`).
    fn descend(&self, i: &mut usize, need: &Need) -> bool {
        if *i >= self.leaves {
            return true;
        }
        for child in [2 * *i, 2 * *i + 1] {
            if self.tree[child].admits(need, self.num_resources) {
                let mut c = child;
                if self.descend(&mut c, need) {
                    *i = c;
                    return true;
                }
            }
        }
        false
    }

    /// The server of type `t` (whose capacity is `capacity`) with the least free capacity
    /// (sum of fractions) where `need` fits, ties to the lowest index. `fits` is the exact
    /// per-server check.
    pub fn best_of_type(
        &self,
        t: usize,
        capacity: &[u32; MAX_RESOURCES],
        need: &Need,
        fits: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        // A server with room for the demand has a key at least the demand's own (the sums
        // add terms in the same order, and rounding is monotone).
        let lower: f64 = (0..self.num_resources)
            .filter(|&r| capacity[r] > 0)
            .map(|r| f64::from(need.demand[r]) / f64::from(capacity[r]))
            .sum();
        let list = &self.by_free[t];
        let start = list.partition_point(|&(k, _)| f64::from_bits(k) < lower);
        list[start..]
            .iter()
            .map(|&(_, n)| n as usize)
            .find(|&n| fits(n))
    }

    /// Componentwise maxima over servers `lo..hi` (a server type's range).
    pub fn range_summary(&self, lo: usize, hi: usize) -> Summary {
        let (mut l, mut r) = (lo + self.leaves, hi + self.leaves);
        let mut acc = Summary::EMPTY;
        while l < r {
            if l & 1 == 1 {
                acc = Summary::merge(&acc, &self.tree[l]);
                l += 1;
            }
            if r & 1 == 1 {
                r -= 1;
                acc = Summary::merge(&acc, &self.tree[r]);
            }
            l /= 2;
            r /= 2;
        }
        acc
    }
}

/// Exact check that `need` can start on server `s` now.
#[inline]
pub fn server_admits(s: &ServerState, need: &Need, num_resources: usize) -> bool {
    s.up && s.min_priority <= need.priority
        && (need.models == 0 || s.model_bit & need.models != 0)
        && s.max_gpu_free >= need.gpu_share
        && s.full_gpus >= need.gpu_whole
        && (0..num_resources).all(|r| s.free[r] >= need.demand[r])
}

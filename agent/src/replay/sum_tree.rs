//! A sum tree and a min tree over the same leaves, for proportional prioritized replay.
//!
//! The leaves are the priorities `p_i ≥ 0` of the buffer slots. [`SumTree::find_prefix_sum`]
//! descends from the root to the leaf whose cumulative range `[Σ_{j<i} p_j, Σ_{j≤i} p_j)`
//! contains a given mass, in O(log n); [`SumTree::set`] rewrites one leaf and its ancestors, in
//! O(log n); [`SumTree::total`] and [`SumTree::min`] read the roots.
//!
//! Layout: a complete binary tree over `2^⌈log₂ n⌉` leaves stored in one array (node `k` has
//! children `2k` and `2k + 1`, the root is node 1, leaf `i` is node `leaves + i`). Any capacity
//! works: the padding leaves past `n` hold priority 0 in the sum tree and +∞ in the min tree,
//! so they are never drawn and never the minimum.
//!
//! Two choices make a zero-priority draw impossible rather than unlikely:
//! * sums are `f64` and every ancestor is **recomputed from its two children** on update (no
//!   running `+= delta`), so the stored sums never drift from the leaves;
//! * the descent only enters a child whose sum is positive. A node's sum is positive exactly
//!   when one of its children's is (a sum of non-negative floats is 0 only if both are 0), so
//!   starting from a positive root the walk always ends on a positive leaf, whatever rounding
//!   does to the mass on the way down.

/// Sum and min trees over `capacity` non-negative priorities (all 0 at first).
#[derive(Clone, Debug)]
pub struct SumTree {
    capacity: usize,
    /// Number of leaves of the complete tree (a power of two, ≥ capacity).
    leaves: usize,
    /// `sums[1]` is the root; `sums[leaves + i]` is priority `i`; `sums[0]` is unused.
    sums: Vec<f64>,
    /// Same layout; leaves at priority 0 hold +∞ so they never count as the minimum.
    mins: Vec<f64>,
}

impl SumTree {
    /// # Panics
    /// When `capacity` is 0.
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "a sum tree needs at least one leaf");
        let leaves = capacity.next_power_of_two();
        Self {
            capacity,
            leaves,
            sums: vec![0.0; 2 * leaves],
            mins: vec![f64::INFINITY; 2 * leaves],
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Σ p_i over all leaves.
    pub fn total(&self) -> f64 {
        self.sums[1]
    }

    /// The smallest positive priority (+∞ when every priority is 0).
    pub fn min(&self) -> f64 {
        self.mins[1]
    }

    /// Priority of leaf `index`.
    pub fn get(&self, index: usize) -> f64 {
        self.sums[self.leaves + index]
    }

    /// Sets the priority of leaf `index` and recomputes its ancestors.
    ///
    /// # Panics
    /// When `index ≥ capacity` or `priority` is negative, infinite or NaN.
    pub fn set(&mut self, index: usize, priority: f64) {
        assert!(
            index < self.capacity,
            "leaf {index} out of range (capacity {})",
            self.capacity
        );
        assert!(
            priority.is_finite() && priority >= 0.0,
            "priority must be finite and ≥ 0, got {priority}"
        );
        let mut node = self.leaves + index;
        self.sums[node] = priority;
        self.mins[node] = if priority > 0.0 {
            priority
        } else {
            f64::INFINITY
        };
        while node > 1 {
            node /= 2;
            let (left, right) = (2 * node, 2 * node + 1);
            self.sums[node] = self.sums[left] + self.sums[right];
            self.mins[node] = self.mins[left].min(self.mins[right]);
        }
    }

    /// The leaf whose cumulative range contains `mass` (clamped into `[0, total)`): leaf `i`
    /// is returned for `Σ_{j<i} p_j ≤ mass < Σ_{j≤i} p_j`. Always a leaf with a positive
    /// priority (see the module docs).
    ///
    /// # Panics
    /// When every priority is 0.
    pub fn find_prefix_sum(&self, mass: f64) -> usize {
        assert!(
            self.total() > 0.0,
            "cannot sample from a sum tree whose priorities are all 0"
        );
        let mut mass = mass.max(0.0);
        let mut node = 1;
        while node < self.leaves {
            let (left, right) = (2 * node, 2 * node + 1);
            let left_sum = self.sums[left];
            if (mass < left_sum && left_sum > 0.0) || self.sums[right] <= 0.0 {
                node = left;
            } else {
                mass -= left_sum;
                node = right;
            }
        }
        node - self.leaves
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Every internal node equals the sum (min) of its children, exactly, and the root equals
    /// the sum (min) of the leaves.
    fn assert_invariants(tree: &SumTree, leaves: &[f64]) {
        for node in 1..tree.leaves {
            assert_eq!(
                tree.sums[node],
                tree.sums[2 * node] + tree.sums[2 * node + 1],
                "sum at node {node}"
            );
            assert_eq!(
                tree.mins[node],
                tree.mins[2 * node].min(tree.mins[2 * node + 1]),
                "min at node {node}"
            );
        }
        for (i, &p) in leaves.iter().enumerate() {
            assert_eq!(tree.get(i), p);
        }
        for pad in tree.capacity..tree.leaves {
            assert_eq!(tree.sums[tree.leaves + pad], 0.0);
        }
        let naive_sum: f64 = leaves.iter().sum();
        assert!(
            (tree.total() - naive_sum).abs() <= 1e-12 * naive_sum.max(1.0),
            "{} vs {naive_sum}",
            tree.total()
        );
        let naive_min = leaves
            .iter()
            .copied()
            .filter(|&p| p > 0.0)
            .fold(f64::INFINITY, f64::min);
        assert_eq!(tree.min(), naive_min);
    }

    #[test]
    fn prefix_sums_on_a_hand_example_with_padding() {
        // Capacity 5 → 8 leaves, 3 of them padding.
        let mut tree = SumTree::new(5);
        for (i, p) in [1.0, 0.0, 2.0, 3.0, 4.0].into_iter().enumerate() {
            tree.set(i, p);
        }
        assert_eq!(tree.total(), 10.0);
        assert_eq!(tree.min(), 1.0);
        // Cumulative ranges: leaf 0 [0,1), leaf 1 empty, leaf 2 [1,3), leaf 3 [3,6), leaf 4 [6,10).
        let expected = [
            (0.0, 0),
            (0.999, 0),
            (1.0, 2),
            (2.5, 2),
            (3.0, 3),
            (5.99, 3),
            (6.0, 4),
            (9.99, 4),
        ];
        for (mass, leaf) in expected {
            assert_eq!(tree.find_prefix_sum(mass), leaf, "mass {mass}");
        }
        // Masses at or past the total, or negative, still land on a positive leaf.
        assert_eq!(tree.find_prefix_sum(10.0), 4);
        assert_eq!(tree.find_prefix_sum(1e9), 4);
        assert_eq!(tree.find_prefix_sum(-1.0), 0);
    }

    #[test]
    fn invariants_hold_after_random_updates_for_many_capacities() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for capacity in [1, 2, 3, 5, 7, 8, 9, 100, 1000, 1023, 1025] {
            let mut tree = SumTree::new(capacity);
            let mut leaves = vec![0.0; capacity];
            for step in 0..5000 {
                let i = rng.random_range(0..capacity);
                // Priorities over 12 orders of magnitude, with some exact zeros.
                let p = if step % 17 == 0 {
                    0.0
                } else {
                    10f64.powf(rng.random_range(-6.0..6.0))
                };
                tree.set(i, p);
                leaves[i] = p;
                if step % 97 == 0 {
                    assert_invariants(&tree, &leaves);
                }
            }
            assert_invariants(&tree, &leaves);
        }
    }

    /// The classic PER bug: float32 sums updated by deltas drift above the true total, and a
    /// mass near the top lands on an empty leaf. Ten million updates over priorities spanning
    /// 18 orders of magnitude (and zeros), each followed by draws at a random mass and at the
    /// adversarial masses `total` and just below it, never return a zero-priority leaf.
    #[test]
    fn ten_million_updates_without_a_zero_priority_draw() {
        let capacity = 10_007; // prime, so 6,377 padding leaves
        let mut tree = SumTree::new(capacity);
        let mut rng = ChaCha8Rng::seed_from_u64(2016);
        for step in 0..10_000_000u64 {
            let i = rng.random_range(0..capacity);
            let p = if step % 5 == 0 {
                0.0
            } else {
                10f64.powi(rng.random_range(-12..6)) * rng.random::<f64>()
            };
            tree.set(i, p);
            if tree.total() <= 0.0 {
                continue;
            }
            let total = tree.total();
            for mass in [
                rng.random::<f64>() * total,
                total,
                total * (1.0 - f64::EPSILON),
            ] {
                let leaf = tree.find_prefix_sum(mass);
                assert!(
                    leaf < capacity && tree.get(leaf) > 0.0,
                    "step {step}: mass {mass} drew leaf {leaf}"
                );
            }
        }
        // And the sums did not drift.
        let naive: f64 = (0..capacity).map(|i| tree.get(i)).sum();
        assert!((tree.total() - naive).abs() <= 1e-12 * naive);
    }

    #[test]
    #[should_panic(expected = "all 0")]
    fn sampling_an_empty_tree_panics() {
        SumTree::new(3).find_prefix_sum(0.5);
    }
}

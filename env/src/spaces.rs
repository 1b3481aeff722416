//! Gymnasium's `Discrete` and `Box` spaces, the two this project needs.

/// `Discrete(n)`: actions `0..n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Discrete {
    pub n: usize,
}

impl Discrete {
    pub fn contains(&self, action: usize) -> bool {
        action < self.n
    }
}

/// `Box(low, high, shape=(dim,))` over `f32`, with per-element bounds (may be infinite).
#[derive(Clone, Debug, PartialEq)]
pub struct BoxSpace {
    pub low: Vec<f32>,
    pub high: Vec<f32>,
}

impl BoxSpace {
    /// A box whose every element lies in `[low, high]`.
    pub fn uniform(dim: usize, low: f32, high: f32) -> Self {
        Self {
            low: vec![low; dim],
            high: vec![high; dim],
        }
    }

    pub fn dim(&self) -> usize {
        self.low.len()
    }

    /// True when `x` has the right length, no NaN, and every element is inside its bounds.
    pub fn contains(&self, x: &[f32]) -> bool {
        x.len() == self.dim()
            && x.iter()
                .zip(self.low.iter().zip(&self.high))
                .all(|(v, (lo, hi))| *v >= *lo && *v <= *hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_contains_checks_length_bounds_and_nan() {
        let space = BoxSpace {
            low: vec![0.0, -1.0],
            high: vec![1.0, f32::INFINITY],
        };
        assert!(space.contains(&[0.0, 1e9]));
        assert!(!space.contains(&[1.5, 0.0]));
        assert!(!space.contains(&[f32::NAN, 0.0]));
        assert!(!space.contains(&[0.5]));
    }

    #[test]
    fn discrete_contains() {
        let d = Discrete { n: 3 };
        assert!(d.contains(2));
        assert!(!d.contains(3));
    }
}

//! A model of user runtime estimates after Tsafrir, Etsion and Feitelson, "Modeling User
//! Runtime Estimates" (JSSPP 2005): users do not guess a job's runtime, they pick a round,
//! "popular" limit above it (the scheduler kills a job at its limit, so an estimate is an
//! upper bound), and a sizeable share of jobs simply ask for the queue's maximum.
//!
//! lepton's version is deliberately small and documented in `docs/workloads.md`: with
//! probability `p_max` a job's estimate is `max_s`; otherwise it is the smallest value of
//! [`POPULAR_S`] (or `max_s`) that is at least the job's runtime. A job that ran longer than
//! `max_s` keeps its runtime as its estimate: an estimate is never below the runtime.

/// Round limits users pick (s): 1, 2, 5, 10, 15, 20, 30 and 45 minutes; 1, 1.5, 2, 3, 4, 5,
/// 6, 8, 10, 12, 16, 18, 24, 36, 48 and 72 hours.
pub const POPULAR_S: [f64; 24] = [
    60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0, 5400.0, 7200.0, 10800.0,
    14400.0, 18000.0, 21600.0, 28800.0, 36000.0, 43200.0, 57600.0, 64800.0, 86400.0, 129600.0,
    172800.0, 259200.0,
];

/// The estimate model's parameters (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TsafrirEstimates {
    /// The largest limit users may ask for (s, > 0).
    pub max_s: f64,
    /// The share of jobs that ask for `max_s` (in [0, 1]).
    pub p_max: f64,
}

impl TsafrirEstimates {
    /// The estimate of a job that runs `run_s`, given a uniform draw `u` in [0, 1).
    pub fn estimate_s(&self, run_s: f64, u: f64) -> f64 {
        if run_s >= self.max_s {
            return run_s;
        }
        if u < self.p_max {
            return self.max_s;
        }
        POPULAR_S
            .iter()
            .copied()
            .find(|&v| v >= run_s && v < self.max_s)
            .unwrap_or(self.max_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_round_up_to_a_popular_value_or_the_maximum_and_never_below_the_run() {
        let m = TsafrirEstimates {
            max_s: 4000.0,
            p_max: 0.25,
        };
        // u = 0.3 ≥ p_max: the smallest popular value ≥ the runtime.
        assert_eq!(m.estimate_s(1.0, 0.3), 60.0);
        assert_eq!(m.estimate_s(60.0, 0.3), 60.0);
        assert_eq!(m.estimate_s(61.0, 0.3), 120.0);
        assert_eq!(m.estimate_s(3000.0, 0.3), 3600.0);
        // No popular value in [3601, 4000): the maximum.
        assert_eq!(m.estimate_s(3601.0, 0.3), 4000.0);
        // u = 0.2 < p_max: the maximum, whatever the runtime.
        assert_eq!(m.estimate_s(1.0, 0.2), 4000.0);
        // A job that ran past the maximum keeps its runtime.
        assert_eq!(m.estimate_s(5000.0, 0.2), 5000.0);
        assert_eq!(m.estimate_s(4000.0, 0.9), 4000.0);
        assert!(POPULAR_S.windows(2).all(|p| p[0] < p[1]));
    }
}

//! The reward: a configurable weighted sum of costs, negated.

/// Weights of the cost terms; the reward of a step is minus their weighted sum over the
/// simulated interval the step covered.
///
/// - `slowdown` (default 1): Σ over tasks in the system (queued or running) of `1/duration_s`
///   per unit time, integrated between decisions. A task that arrives at `a` and finishes at
///   `f` contributes `(f − a)/duration_s`, its slowdown, so with this term alone an episode's
///   return is exactly −Σ slowdown (DeepRM's objective).
/// - `bounded_slowdown`: Σ over tasks in the system of `1/max(duration_s, 10 s)` per unit
///   time: a task contributes `(f − a)/max(duration_s, 10 s)`, its bounded slowdown (the HPC
///   metric of Feitelson et al.) except that tasks shorter than 10 s that leave within 10 s
///   contribute less than the metric's floor of 1.
/// - `wait`: number of queued tasks per unit time (return = −total waiting time).
/// - `deadline_miss`: per task that finishes after its deadline or is dropped with one.
/// - `dropped`: per task refused by the backlog cap (or oversize, under the drop policy),
///   or killed by a failure under `on_kill = "drop"`.
/// - `energy_kwh`: per kWh the cluster draws (servers with a power model).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RewardWeights {
    pub slowdown: f64,
    pub bounded_slowdown: f64,
    pub wait: f64,
    pub deadline_miss: f64,
    pub dropped: f64,
    pub energy_kwh: f64,
}

impl Default for RewardWeights {
    fn default() -> Self {
        Self {
            slowdown: 1.0,
            bounded_slowdown: 0.0,
            wait: 0.0,
            deadline_miss: 0.0,
            dropped: 0.0,
            energy_kwh: 0.0,
        }
    }
}

impl RewardWeights {
    /// Cost per unit time of one task of `duration_s` while it is in the system.
    #[inline]
    pub fn presence_rate(&self, duration_s: f64) -> f64 {
        self.slowdown / duration_s
            + self.bounded_slowdown / duration_s.max(crate::metrics::BOUNDED_SLOWDOWN_MIN_RUN_S)
    }

    /// Cost per unit time while `presence_sum` = Σ [`presence_rate`](Self::presence_rate)
    /// over tasks in the system and `num_queued` tasks wait.
    #[inline]
    pub fn cost_rate(&self, presence_sum: f64, num_queued: usize) -> f64 {
        presence_sum + self.wait * num_queued as f64
    }
}

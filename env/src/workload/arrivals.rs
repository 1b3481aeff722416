//! Arrival processes: when tasks arrive.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp};

/// When tasks arrive. Every process is parameterised by its long-run mean rate, so that a
/// scenario can ask for a target offered load and get the same mean load from each shape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ArrivalProcess {
    /// Exponential inter-arrival times at `rate_per_s`.
    Poisson { rate_per_s: f64 },
    /// Bursty two-state Markov-modulated Poisson process: a calm state and a burst state whose
    /// rate is `burst_ratio` times the calm one, with exponential sojourns of the given means.
    /// The calm rate is chosen so that the long-run mean rate is `mean_rate_per_s`.
    Mmpp {
        mean_rate_per_s: f64,
        burst_ratio: f64,
        mean_calm_s: f64,
        mean_burst_s: f64,
    },
    /// Non-homogeneous Poisson with rate `mean_rate_per_s × (1 + amplitude × sin(2πt/period_s))`,
    /// sampled by thinning. `amplitude` is in [0, 1].
    Diurnal {
        mean_rate_per_s: f64,
        amplitude: f64,
        period_s: f64,
    },
}

/// The per-episode state of an arrival process (the clock and, for MMPP, the current state).
#[derive(Clone, Copy, Debug)]
pub struct ArrivalClock {
    time_s: f64,
    bursting: bool,
}

impl ArrivalProcess {
    pub fn mean_rate_per_s(&self) -> f64 {
        match *self {
            Self::Poisson { rate_per_s } => rate_per_s,
            Self::Mmpp {
                mean_rate_per_s, ..
            }
            | Self::Diurnal {
                mean_rate_per_s, ..
            } => mean_rate_per_s,
        }
    }

    /// The same shape with a different long-run mean rate.
    pub fn with_mean_rate(self, rate: f64) -> Self {
        match self {
            Self::Poisson { .. } => Self::Poisson { rate_per_s: rate },
            Self::Mmpp {
                burst_ratio,
                mean_calm_s,
                mean_burst_s,
                ..
            } => Self::Mmpp {
                mean_rate_per_s: rate,
                burst_ratio,
                mean_calm_s,
                mean_burst_s,
            },
            Self::Diurnal {
                amplitude,
                period_s,
                ..
            } => Self::Diurnal {
                mean_rate_per_s: rate,
                amplitude,
                period_s,
            },
        }
    }

    /// A fresh clock at time 0; MMPP starts in its stationary distribution.
    pub fn start(&self, rng: &mut ChaCha8Rng) -> ArrivalClock {
        let bursting = match *self {
            Self::Mmpp {
                mean_calm_s,
                mean_burst_s,
                ..
            } => rng.random::<f64>() < mean_burst_s / (mean_calm_s + mean_burst_s),
            _ => false,
        };
        ArrivalClock {
            time_s: 0.0,
            bursting,
        }
    }

    /// Advances `clock` to the next arrival and returns its time.
    pub fn next_arrival_s(&self, clock: &mut ArrivalClock, rng: &mut ChaCha8Rng) -> f64 {
        match *self {
            Self::Poisson { rate_per_s } => {
                clock.time_s += exp_sample(rate_per_s, rng);
            }
            Self::Mmpp {
                mean_rate_per_s,
                burst_ratio,
                mean_calm_s,
                mean_burst_s,
            } => {
                // Stationary weights of the two states; calm rate solves
                // π_calm·λ + π_burst·ratio·λ = mean rate.
                let p_burst = mean_burst_s / (mean_calm_s + mean_burst_s);
                let calm_rate = mean_rate_per_s / (1.0 - p_burst + p_burst * burst_ratio);
                // Race the next arrival against the next state switch; both are memoryless,
                // so losing the race costs nothing but a redraw.
                loop {
                    let (rate, mean_sojourn_s) = if clock.bursting {
                        (calm_rate * burst_ratio, mean_burst_s)
                    } else {
                        (calm_rate, mean_calm_s)
                    };
                    let to_arrival = exp_sample(rate, rng);
                    let to_switch = exp_sample(1.0 / mean_sojourn_s, rng);
                    if to_arrival <= to_switch {
                        clock.time_s += to_arrival;
                        break;
                    }
                    clock.time_s += to_switch;
                    clock.bursting = !clock.bursting;
                }
            }
            Self::Diurnal {
                mean_rate_per_s,
                amplitude,
                period_s,
            } => {
                // Lewis–Shedler thinning against the peak rate.
                let peak = mean_rate_per_s * (1.0 + amplitude);
                loop {
                    clock.time_s += exp_sample(peak, rng);
                    let phase = std::f64::consts::TAU * clock.time_s / period_s;
                    let rate = mean_rate_per_s * (1.0 + amplitude * phase.sin());
                    if rng.random::<f64>() * peak <= rate {
                        break;
                    }
                }
            }
        }
        clock.time_s
    }
}

fn exp_sample(rate: f64, rng: &mut ChaCha8Rng) -> f64 {
    // Rates are validated positive and finite at load, so `Exp::new` cannot fail here.
    Exp::new(rate).map_or(f64::INFINITY, |d| d.sample(rng))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn mean_rate(process: ArrivalProcess, n: usize) -> f64 {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut clock = process.start(&mut rng);
        let mut last = 0.0;
        for _ in 0..n {
            last = process.next_arrival_s(&mut clock, &mut rng);
        }
        n as f64 / last
    }

    #[test]
    fn every_process_hits_its_mean_rate() {
        let processes = [
            ArrivalProcess::Poisson { rate_per_s: 2.0 },
            ArrivalProcess::Mmpp {
                mean_rate_per_s: 2.0,
                burst_ratio: 10.0,
                mean_calm_s: 50.0,
                mean_burst_s: 10.0,
            },
            ArrivalProcess::Diurnal {
                mean_rate_per_s: 2.0,
                amplitude: 0.8,
                period_s: 100.0,
            },
        ];
        for p in processes {
            let rate = mean_rate(p, 200_000);
            assert!((rate - 2.0).abs() < 0.08, "{p:?}: measured {rate}");
        }
    }
}

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

    /// A clock at `now_s` in the state this process is in, given that its arrivals so far
    /// came at `arrived` (times from the episode's start, in order) and none since: the
    /// conditional law of the future, from which [`next_arrival_s`](Self::next_arrival_s)
    /// goes on. Poisson and diurnal processes have independent increments, so only the clock
    /// moves. An MMPP's state is drawn from its posterior ([`Self::burst_posterior`]).
    pub fn resume(&self, arrived: &[f64], now_s: f64, rng: &mut ChaCha8Rng) -> ArrivalClock {
        ArrivalClock {
            time_s: now_s,
            bursting: rng.random::<f64>() < self.burst_posterior(arrived, now_s),
        }
    }

    /// The probability that an MMPP is bursting at `now_s`, given arrivals at `arrived` and
    /// none since (0 for the other processes): the forward filter of the two-state hidden
    /// Markov chain, from the stationary law at time 0. Between arrivals the state law `p`
    /// evolves by `p·exp((Q − Λ)Δ)` (Q the switching generator, Λ the diagonal of rates: no
    /// arrival meanwhile); an arrival multiplies it by Λ. `p` is renormalised at every step,
    /// so long silences cannot underflow.
    pub fn burst_posterior(&self, arrived: &[f64], now_s: f64) -> f64 {
        let Self::Mmpp {
            mean_rate_per_s,
            burst_ratio,
            mean_calm_s,
            mean_burst_s,
        } = *self
        else {
            return 0.0;
        };
        let p_burst = mean_burst_s / (mean_calm_s + mean_burst_s);
        let calm_rate = mean_rate_per_s / (1.0 - p_burst + p_burst * burst_ratio);
        let rates = [calm_rate, calm_rate * burst_ratio];
        // M = Q − Λ over the states (calm, burst).
        let m = [
            [-1.0 / mean_calm_s - rates[0], 1.0 / mean_calm_s],
            [1.0 / mean_burst_s, -1.0 / mean_burst_s - rates[1]],
        ];
        let mut p = [1.0 - p_burst, p_burst];
        let mut last_s = 0.0;
        for &t in arrived {
            p = silent_for(p, &m, (t - last_s).max(0.0));
            p = normalised([p[0] * rates[0], p[1] * rates[1]]);
            last_s = t.max(last_s);
        }
        silent_for(p, &m, (now_s - last_s).max(0.0))[1]
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

/// `p·exp(M·dt)` for a 2×2 `m` whose off-diagonal entries are positive, renormalised to sum
/// to 1. With s = tr(M)/2 and q² = ((m₀₀ − m₁₁)/2)² + m₀₁m₁₀,
/// exp(M·dt) = e^{(s+q)dt}·[c·I + h·(M − s·I)/q] with c = (1 + e^{−2q·dt})/2 and
/// h = (1 − e^{−2q·dt})/2; the scalar factor goes with the renormalisation.
fn silent_for(p: [f64; 2], m: &[[f64; 2]; 2], dt: f64) -> [f64; 2] {
    let s = 0.5 * (m[0][0] + m[1][1]);
    let d = 0.5 * (m[0][0] - m[1][1]);
    let q = (d * d + m[0][1] * m[1][0]).sqrt();
    let decay = (-2.0 * q * dt).exp();
    let (c, h) = (0.5 * (1.0 + decay), 0.5 * (1.0 - decay) / q);
    let e = [
        [c + h * (m[0][0] - s), h * m[0][1]],
        [h * m[1][0], c + h * (m[1][1] - s)],
    ];
    normalised([
        p[0] * e[0][0] + p[1] * e[1][0],
        p[0] * e[0][1] + p[1] * e[1][1],
    ])
}

fn normalised(p: [f64; 2]) -> [f64; 2] {
    let total = p[0] + p[1];
    [p[0] / total, p[1] / total]
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

    /// Equal sojourns (stationary law ½, ½), calm rate 1 and burst rate 3 (mean rate 2).
    fn two_rate_mmpp(mean_sojourn_s: f64) -> ArrivalProcess {
        ArrivalProcess::Mmpp {
            mean_rate_per_s: 2.0,
            burst_ratio: 3.0,
            mean_calm_s: mean_sojourn_s,
            mean_burst_s: mean_sojourn_s,
        }
    }

    #[test]
    fn the_burst_posterior_follows_the_arrivals_by_hand() {
        let mmpp = two_rate_mmpp(1e12);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        // Nothing seen at time 0: the stationary law.
        assert!(close(mmpp.burst_posterior(&[], 0.0), 0.5));
        // One arrival at 0: Bayes with likelihoods 1 and 3, (½·3) / (½·1 + ½·3).
        assert!(close(mmpp.burst_posterior(&[0.0], 0.0), 0.75));
        // Two arrivals at 0: 9 / (1 + 9).
        assert!(close(mmpp.burst_posterior(&[0.0, 0.0], 0.0), 0.9));
        // Silence for t with (almost) no switching: e^{−3t} against e^{−t}; at t = ln(3)/2,
        // e^{−2t} = 1/3, so the burst weight is (1/3) / (1 + 1/3) = 1/4.
        let t = 3f64.ln() / 2.0;
        assert!(close(mmpp.burst_posterior(&[], t), 0.25));
        // An arrival at 0 and then that silence: 3·(1/3) / (1 + 3·(1/3)) = 1/2.
        assert!(close(mmpp.burst_posterior(&[0.0], t), 0.5));
        // With fast switching the chain forgets: the law stays near the stationary ½ for a
        // moment of silence, whatever came before.
        let fast = two_rate_mmpp(1e-6);
        assert!((fast.burst_posterior(&[0.0; 20], 1e-3) - 0.5).abs() < 1e-2);
        // A long silence cannot underflow: the calm state wins.
        assert!(mmpp.burst_posterior(&[0.0; 20], 1e6) < 1e-12);
        // Other processes have no state.
        let poisson = ArrivalProcess::Poisson { rate_per_s: 2.0 };
        assert_eq!(poisson.burst_posterior(&[0.0], 1.0), 0.0);
    }

    #[test]
    fn a_resumed_clock_starts_now_in_the_posterior_state() {
        // One arrival at 2 s and none since, with (almost) no switching: the burst weight
        // is 3e^{−3·2}·e^{−3·1} against e^{−2}·e^{−1} at 3 s, i.e. 3e^{−6} / (1 + 3e^{−6}).
        let mmpp = two_rate_mmpp(1e12);
        let expected = 3.0 * (-6f64).exp() / (1.0 + 3.0 * (-6f64).exp());
        assert!((mmpp.burst_posterior(&[2.0], 3.0) - expected).abs() < 1e-12);
        // Resumed right at an arrival at 0 (posterior 3/4), the clock reads now and bursts
        // three times in four: 20,000 draws put the share within 0.01 (4 sd).
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let n = 20_000;
        let bursting = (0..n)
            .filter(|_| {
                let clock = mmpp.resume(&[0.0], 0.0, &mut rng);
                assert_eq!(clock.time_s, 0.0);
                clock.bursting
            })
            .count();
        let share = bursting as f64 / f64::from(n);
        assert!((share - 0.75).abs() < 0.01, "{share}");
        let mut clock = mmpp.resume(&[0.0], 7.0, &mut rng);
        assert!(mmpp.next_arrival_s(&mut clock, &mut rng) > 7.0);
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

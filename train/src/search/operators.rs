//! The genetic operators and PBT's decisions, as pure functions of their inputs and an RNG.
//!
//! Fitness is "higher is better"; a failed trial's fitness is `None`, which ranks below every
//! number (the worst fitness). Ties go to the lower index, so every decision is a function of
//! the inputs and the RNG alone.

use std::cmp::Ordering;

use rand::Rng;

use super::genes::GeneSpec;

/// `a` better than `b` (`None` — a failed trial — is worst).
fn better(a: Option<f64>, b: Option<f64>) -> bool {
    compare(a, b) == Ordering::Greater
}

fn compare(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => Ordering::Equal,
    }
}

/// Indices of `fitness`, best first (ties: lower index first).
pub fn rank(fitness: &[Option<f64>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..fitness.len()).collect();
    order.sort_by(|&a, &b| compare(fitness[b], fitness[a]).then(a.cmp(&b)));
    order
}

/// Tournament selection: `size` contestants drawn uniformly with replacement; the fittest wins
/// (ties: the one drawn first).
pub fn tournament(fitness: &[Option<f64>], size: usize, rng: &mut impl Rng) -> usize {
    let mut winner = rng.random_range(0..fitness.len());
    for _ in 1..size {
        let contestant = rng.random_range(0..fitness.len());
        if better(fitness[contestant], fitness[winner]) {
            winner = contestant;
        }
    }
    winner
}

/// Uniform crossover: each gene from `a` or `b` with probability ½.
pub fn uniform_crossover(a: &[f64], b: &[f64], rng: &mut impl Rng) -> Vec<f64> {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| if rng.random_bool(0.5) { x } else { y })
        .collect()
}

/// Mutates each gene with probability `rate` ([`GeneSpec::mutate`] with `scale`).
pub fn mutate(
    genome: &[f64],
    specs: &[GeneSpec],
    rate: f64,
    scale: f64,
    rng: &mut impl Rng,
) -> Vec<f64> {
    genome
        .iter()
        .zip(specs)
        .map(|(&v, spec)| {
            if rng.random_bool(rate) {
                spec.mutate(v, scale, rng)
            } else {
                v
            }
        })
        .collect()
}

/// The GA's knobs, as the operators need them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Breeding {
    pub tournament_size: usize,
    /// Probability that a child is a crossover of two parents (otherwise a copy of one).
    pub crossover_rate: f64,
    pub mutation_rate: f64,
    pub mutation_scale: f64,
    /// The best this many of a generation pass to the next unchanged (and are not retrained).
    pub elitism: usize,
}

/// `num_children` new genomes bred from a scored population (tournament → uniform crossover
/// → mutation). The elites are not among them: the caller carries them over.
pub fn breed(
    population: &[(Vec<f64>, Option<f64>)],
    specs: &[GeneSpec],
    knobs: &Breeding,
    num_children: usize,
    rng: &mut impl Rng,
) -> Vec<Vec<f64>> {
    let fitness: Vec<Option<f64>> = population.iter().map(|p| p.1).collect();
    (0..num_children)
        .map(|_| {
            let a = tournament(&fitness, knobs.tournament_size, rng);
            let child = if rng.random_bool(knobs.crossover_rate) {
                let b = tournament(&fitness, knobs.tournament_size, rng);
                uniform_crossover(&population[a].0, &population[b].0, rng)
            } else {
                population[a].0.clone()
            };
            mutate(
                &child,
                specs,
                knobs.mutation_rate,
                knobs.mutation_scale,
                rng,
            )
        })
        .collect()
}

/// PBT's exploit decision: each of the bottom `fraction` of members (at least one when
/// `fraction > 0` and there are two members) copies a member drawn uniformly from the top
/// `fraction`. Returns `(recipient, donor)` pairs, recipients in rank order (worst last).
pub fn pbt_exploit(
    fitness: &[Option<f64>],
    fraction: f64,
    rng: &mut impl Rng,
) -> Vec<(usize, usize)> {
    let n = fitness.len();
    let k = ((n as f64 * fraction).round() as usize)
        .clamp(usize::from(fraction > 0.0 && n >= 2), n / 2);
    let order = rank(fitness);
    let (top, bottom) = (&order[..k], &order[n - k..]);
    bottom
        .iter()
        .map(|&r| (r, top[rng.random_range(0..k)]))
        .collect()
}

/// PBT's explore step: every perturbable gene of the donor's genome is multiplied by one of
/// `factors` (drawn uniformly) and clamped into its range; other genes are copied.
pub fn pbt_explore(
    genome: &[f64],
    specs: &[GeneSpec],
    factors: &[f64],
    rng: &mut impl Rng,
) -> Vec<f64> {
    genome
        .iter()
        .zip(specs)
        .map(|(&v, spec)| {
            if spec.perturbable() {
                spec.clamp(v * factors[rng.random_range(0..factors.len())])
            } else {
                v
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn rank_puts_failed_trials_last_and_breaks_ties_by_index() {
        let f = [Some(1.0), None, Some(3.0), Some(1.0), Some(-2.0)];
        assert_eq!(rank(&f), vec![2, 0, 3, 4, 1]);
    }

    #[test]
    fn tournament_of_the_whole_population_tends_to_the_best() {
        // Size 1 is uniform random selection; a large tournament almost always finds the best.
        let f = [Some(0.0), Some(5.0), None, Some(1.0)];
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let wins = (0..1000)
            .filter(|_| tournament(&f, 16, &mut rng) == 1)
            .count();
        // P(best never drawn in 16 draws from 4) = 0.75^16 ≈ 1%.
        assert!(wins > 970, "{wins}");
        let picks: Vec<usize> = (0..1000).map(|_| tournament(&f, 1, &mut rng)).collect();
        for i in 0..4 {
            let c = picks.iter().filter(|&&p| p == i).count();
            assert!((200..300).contains(&c), "index {i}: {c}");
        }
    }

    #[test]
    fn tournament_picks_the_fittest_contestant() {
        // A tournament of 64 from 2 all but surely (1 − 2⁻⁶³) sees both; the scored one wins.
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        assert_eq!(tournament(&[Some(1.0), Some(9.0)], 64, &mut rng), 1);
        assert_eq!(tournament(&[None, Some(-1e9)], 64, &mut rng), 1);
        assert_eq!(tournament(&[Some(4.0)], 3, &mut rng), 0);
    }

    #[test]
    fn uniform_crossover_takes_each_gene_from_a_parent() {
        let a = [1.0, 2.0, 3.0, 4.0];
        let b = [-1.0, -2.0, -3.0, -4.0];
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut from_a = 0;
        for _ in 0..250 {
            let c = uniform_crossover(&a, &b, &mut rng);
            for i in 0..4 {
                assert!(c[i] == a[i] || c[i] == b[i]);
                from_a += usize::from(c[i] == a[i]);
            }
        }
        assert!(
            (450..550).contains(&from_a),
            "{from_a} of 1000 genes from a"
        );
        assert_eq!(uniform_crossover(&a, &a, &mut rng), a.to_vec());
    }

    #[test]
    fn mutation_rate_zero_and_one() {
        let specs = vec![
            GeneSpec::Uniform {
                key: "a".into(),
                min: 0.0,
                max: 1.0,
            };
            3
        ];
        let g = [0.5, 0.5, 0.5];
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        assert_eq!(mutate(&g, &specs, 0.0, 0.5, &mut rng), g.to_vec());
        let m = mutate(&g, &specs, 1.0, 0.1, &mut rng);
        assert!(
            m.iter().all(|&x| x != 0.5 && (0.0..=1.0).contains(&x)),
            "{m:?}"
        );
    }

    #[test]
    fn pbt_bottom_quarter_copies_from_top_quarter() {
        // 8 members, fitness = index except member 5 crashed: ranks 7 6 4 3 2 1 0 5.
        let f: Vec<Option<f64>> = (0..8).map(|i| (i != 5).then_some(i as f64)).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let plan = pbt_exploit(&f, 0.25, &mut rng);
        assert_eq!(plan.len(), 2);
        assert_eq!((plan[0].0, plan[1].0), (0, 5));
        assert!(plan.iter().all(|&(_, d)| d == 7 || d == 6), "{plan:?}");
        // Never more than half: recipients and donors do not overlap.
        assert_eq!(pbt_exploit(&f, 0.9, &mut rng).len(), 4);
        assert!(pbt_exploit(&f, 0.0, &mut rng).is_empty());
        assert!(pbt_exploit(&[Some(1.0)], 0.5, &mut rng).is_empty());
    }

    #[test]
    fn pbt_explore_scales_floats_only_and_clamps() {
        let specs = vec![
            GeneSpec::LogUniform {
                key: "ppo.lr".into(),
                min: 1e-4,
                max: 1e-2,
            },
            GeneSpec::Uniform {
                key: "ppo.ent_coef".into(),
                min: 0.0,
                max: 0.05,
            },
            GeneSpec::Int {
                key: "ppo.update_epochs".into(),
                min: 1,
                max: 10,
            },
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for _ in 0..100 {
            let g = pbt_explore(&[1e-3, 0.045, 4.0], &specs, &[0.8, 1.25], &mut rng);
            assert!(
                (g[0] - 8e-4).abs() < 1e-12 || (g[0] - 1.25e-3).abs() < 1e-12,
                "{g:?}"
            );
            assert!((g[1] - 0.036).abs() < 1e-12 || g[1] == 0.05, "{g:?}");
            assert_eq!(g[2], 4.0);
        }
    }
}

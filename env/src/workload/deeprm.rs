//! DeepRM's job generator (Mao et al., HotNets'16, `job_distribution.py::bi_model_dist`).

use super::{MAX_RESOURCES, TaskSource, TaskSpec};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// One Bernoulli(`arrival_prob`) arrival per time step at steps `1..num_steps` (DeepRM's
/// `simu_len`; step 0 never has a job, as in DeepRM's env). A job is short with probability
/// 0.8 (length U{1..3}) and long otherwise (U{10..15}); one dominant resource, drawn
/// uniformly, demands U{max/2..max} units, every other one U{1..max/5}, with
/// `max = max_demand` (10 in DeepRM).
#[derive(Clone, Debug, PartialEq)]
pub struct DeepRmGenerator {
    pub arrival_prob: f64,
    pub num_steps: u32,
    pub num_resources: usize,
    pub max_demand: u32,
}

impl DeepRmGenerator {
    pub const SMALL_JOB_PROB: f64 = 0.8;
    pub const SMALL_LEN: (u32, u32) = (1, 3);
    pub const LARGE_LEN: (u32, u32) = (10, 15);
}

impl TaskSource for DeepRmGenerator {
    fn fill(&self, rng: &mut ChaCha8Rng, out: &mut Vec<TaskSpec>) {
        out.clear();
        for step in 1..self.num_steps {
            if rng.random::<f64>() >= self.arrival_prob {
                continue;
            }
            let (lo, hi) = if rng.random::<f64>() < Self::SMALL_JOB_PROB {
                Self::SMALL_LEN
            } else {
                Self::LARGE_LEN
            };
            let len = rng.random_range(lo..=hi);
            let dominant = rng.random_range(0..self.num_resources);
            let mut demand = [0; MAX_RESOURCES];
            for (r, d) in demand.iter_mut().enumerate().take(self.num_resources) {
                *d = if r == dominant {
                    rng.random_range(self.max_demand / 2..=self.max_demand)
                } else {
                    rng.random_range(1..=(self.max_demand / 5).max(1))
                };
            }
            let mut task = TaskSpec::new(out.len() as u64, f64::from(step), f64::from(len), &[]);
            task.demand = demand;
            out.push(task);
        }
    }
}

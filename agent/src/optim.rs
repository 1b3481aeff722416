//! Adam with a state that can be saved and restored exactly, over any group of named
//! parameters (a policy, a Q-network, later an imitation prior or a second critic).

use tch::Tensor;

use crate::named::NamedTensors;
#[cfg(doc)]
use crate::networks::Policy;

/// Adam (Kingma & Ba) written out so its state can be saved and restored exactly; PyTorch's
/// update rule and defaults β = (0.9, 0.999).
#[derive(Debug)]
pub struct Adam {
    pub eps: f64,
    pub beta1: f64,
    pub beta2: f64,
    /// Steps taken so far.
    pub step: i64,
    params: Vec<(String, Tensor)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
}

impl Adam {
    /// An optimizer over `params` (a network's [`Policy::named_parameters`], or any group of
    /// trainable tensors; their names key the saved moments).
    pub fn new(params: NamedTensors, eps: f64) -> Self {
        let m = params.iter().map(|(_, p)| p.zeros_like()).collect();
        let v = params.iter().map(|(_, p)| p.zeros_like()).collect();
        Self {
            eps,
            beta1: 0.9,
            beta2: 0.999,
            step: 0,
            params,
            m,
            v,
        }
    }

    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.detach_();
                let _ = g.zero_();
            }
        }
    }

    /// Scales gradients so their global L2 norm is at most `max_norm` (PyTorch's
    /// `clip_grad_norm_`); returns the norm before clipping.
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> f64 {
        let grads: Vec<Tensor> = self
            .params
            .iter()
            .map(|(_, p)| p.grad())
            .filter(Tensor::defined)
            .collect();
        if grads.is_empty() {
            return 0.0;
        }
        let total = Tensor::stack(&grads.iter().map(|g| g.norm()).collect::<Vec<_>>(), 0).norm();
        let coef = (max_norm / (&total + 1e-6)).clamp_max(1.0);
        tch::no_grad(|| {
            for mut g in grads {
                let _ = g.g_mul_(&coef);
            }
        });
        total.double_value(&[])
    }

    pub fn step(&mut self, lr: f64) {
        self.step += 1;
        let bias1 = 1.0 - self.beta1.powi(self.step as i32);
        let bias2 = 1.0 - self.beta2.powi(self.step as i32);
        let (b1, b2, eps) = (self.beta1, self.beta2, self.eps);
        tch::no_grad(|| {
            for (((_, p), m), v) in self.params.iter_mut().zip(&mut self.m).zip(&mut self.v) {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                m.copy_(&(&*m * b1 + &g * (1.0 - b1)));
                v.copy_(&(&*v * b2 + &g * &g * (1.0 - b2)));
                let denom = v.sqrt() / bias2.sqrt() + eps;
                let _ = p.g_sub_(&(&*m / denom * (lr / bias1)));
            }
        });
    }

    /// Moment tensors named `m.<param>` and `v.<param>`, for checkpoints.
    pub fn named_state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.params.len());
        for ((name, _), (m, v)) in self.params.iter().zip(self.m.iter().zip(&self.v)) {
            out.push((format!("m.{name}"), m.shallow_clone()));
            out.push((format!("v.{name}"), v.shallow_clone()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    /// Adam's first step moves every weight by about lr · sign(grad) (bias-corrected m/√v = ±1).
    #[test]
    fn adam_first_step_by_hand() {
        // Any group of parameters: here two bare tensors, not a network.
        let w = Tensor::from_slice(&[1.0f32, -2.0]).set_requires_grad(true);
        let b = Tensor::from_slice(&[0.5f32]).set_requires_grad(true);
        let mut adam = Adam::new(
            vec![
                ("w".into(), w.shallow_clone()),
                ("b".into(), b.shallow_clone()),
            ],
            1e-8,
        );
        let before = b.double_value(&[0]);
        adam.zero_grad();
        ((&w * &w).sum(Kind::Float) + b.sum(Kind::Float)).backward();
        adam.step(0.1);
        let after = b.double_value(&[0]);
        // d/dw (w²) = 2w: w moves against its sign, by lr.
        assert!((w.double_value(&[0]) - 0.9).abs() < 1e-6);
        assert!((w.double_value(&[1]) + 1.9).abs() < 1e-6);
        assert_eq!(adam.named_state().len(), 4);
        // d value / d bias = 1 > 0 → bias decreases by lr.
        assert!((before - after - 0.1).abs() < 1e-6, "{before} → {after}");
    }
}

//! Device selection and libtorch thread settings.

use std::str::FromStr;

/// Where tensors live: `auto` picks CUDA when libtorch sees a GPU, else the CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    Auto,
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| {
                    format!("unknown device '{s}' (expected auto, cpu, cuda or cuda:N)")
                }),
        }
    }
}

impl DeviceChoice {
    /// Resolves the choice against what libtorch sees on this machine.
    pub fn resolve(self) -> Result<tch::Device, String> {
        match self {
            Self::Auto => Ok(tch::Device::cuda_if_available()),
            Self::Cpu => Ok(tch::Device::Cpu),
            Self::Cuda(n) => {
                let count = tch::Cuda::device_count() as usize;
                if n < count {
                    Ok(tch::Device::Cuda(n))
                } else {
                    Err(format!(
                        "device cuda:{n} requested but libtorch sees {count} CUDA device(s)"
                    ))
                }
            }
        }
    }
}

/// Sets libtorch's intra-op and inter-op thread pools. On small machines the env is stepped
/// by rayon while libtorch runs the network, so libtorch gets few threads on purpose (see
/// BENCHMARKS.md for the measurement behind the default).
pub fn set_torch_threads(intra_op: usize) {
    tch::set_num_threads(intra_op.max(1) as i32);
    tch::set_num_interop_threads(1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor, nn, nn::Module, nn::OptimizerConfig};

    #[test]
    fn parses_device_names() {
        assert_eq!("auto".parse::<DeviceChoice>().unwrap(), DeviceChoice::Auto);
        assert_eq!("cpu".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cpu);
        assert_eq!(
            "cuda:1".parse::<DeviceChoice>().unwrap(),
            DeviceChoice::Cuda(1)
        );
        assert!("gpu".parse::<DeviceChoice>().is_err());
    }

    /// A real libtorch forward and backward pass: one SGD step on y = 2x must reduce the
    /// loss by the amount computed by hand.
    #[test]
    fn libtorch_forward_backward_step() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let mut linear = nn::linear(
            vs.root(),
            1,
            1,
            nn::LinearConfig {
                bias: false,
                ..Default::default()
            },
        );
        let _ = tch::no_grad(|| linear.ws.fill_(0.5));
        let x = Tensor::from_slice(&[1.0f32, 2.0]).view([2, 1]);
        let y = &x * 2.0;
        let loss = (linear.forward(&x) - &y)
            .pow_tensor_scalar(2)
            .mean(Kind::Float);
        // w = 0.5: residuals (-1.5, -3.0) → loss = (2.25 + 9) / 2 = 5.625.
        assert!((loss.double_value(&[]) - 5.625).abs() < 1e-6);
        let mut opt = nn::Sgd::default().build(&vs, 0.1).unwrap();
        opt.backward_step(&loss);
        // dL/dw = mean(2 (w x − y) x) = (2·(−1.5)·1 + 2·(−3)·2) / 2 = −7.5 → w = 0.5 + 0.75.
        let w = linear.ws.double_value(&[0, 0]);
        assert!((w - 1.25).abs() < 1e-6, "w = {w}");
    }

    /// The linker's as-needed default drops libtorch_cuda.so (nothing of ours names its
    /// symbols); then a GPU machine silently trains on the CPU. build-support/torch_link.rs
    /// keeps it: wherever the libtorch in use ships it, it must be mapped into this process.
    #[test]
    fn libtorch_cuda_stays_linked_where_it_exists() {
        let libtorch = std::path::PathBuf::from(env!("LIBTORCH"));
        if !libtorch.join("lib/libtorch_cuda.so").exists() {
            return; // a CPU-only libtorch: nothing to keep linked
        }
        let _ = tch::Tensor::zeros([1], (Kind::Float, tch::Device::Cpu)); // libtorch is loaded
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        assert!(
            maps.contains("libtorch_cuda.so"),
            "libtorch_cuda.so is not loaded: the --no-as-needed link arg was lost"
        );
    }
}

//! Groups of named tensors (a network's weights, an optimizer's moments, a target network) and
//! the one checked copy between two groups that every restore goes through.

use tch::Tensor;

/// Tensors with their names, sorted by name when they come from a network.
pub type NamedTensors = Vec<(String, Tensor)>;

/// Copies `src` into `dst` tensor by tensor, matched by name: `dst` must find every one of its
/// names in `src` with the same shape, and `src` may hold nothing else. `what` names the group
/// in the error ("weights", "optimizer state", "target network").
pub fn copy_named(
    dst: &[(String, Tensor)],
    src: &[(String, Tensor)],
    what: &str,
) -> Result<(), String> {
    if src.len() != dst.len() {
        return Err(format!(
            "{what}: {} tensors, the network has {}",
            src.len(),
            dst.len()
        ));
    }
    for (name, param) in dst {
        let tensor = src
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
            .ok_or_else(|| format!("{what}: no tensor '{name}'"))?;
        if tensor.size() != param.size() {
            return Err(format!(
                "{what}: tensor '{name}' has shape {:?}, the network expects {:?}",
                tensor.size(),
                param.size()
            ));
        }
    }
    tch::no_grad(|| {
        for (name, param) in dst {
            let (_, tensor) = src.iter().find(|(n, _)| n == name).expect("checked above");
            param.shallow_clone().copy_(tensor);
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_by_name_and_refuses_mismatches_before_writing() {
        let dst = vec![
            ("a".to_string(), Tensor::zeros([2], tch::kind::FLOAT_CPU)),
            ("b".to_string(), Tensor::zeros([1], tch::kind::FLOAT_CPU)),
        ];
        let src = vec![
            ("b".to_string(), Tensor::from_slice(&[3.0f32])),
            ("a".to_string(), Tensor::from_slice(&[1.0f32, 2.0])),
        ];
        copy_named(&dst, &src, "weights").unwrap();
        assert_eq!(Vec::<f32>::try_from(&dst[0].1).unwrap(), [1.0, 2.0]);
        assert_eq!(Vec::<f32>::try_from(&dst[1].1).unwrap(), [3.0]);

        let fresh = vec![
            ("a".to_string(), Tensor::zeros([2], tch::kind::FLOAT_CPU)),
            ("b".to_string(), Tensor::zeros([1], tch::kind::FLOAT_CPU)),
        ];
        let wrong_shape = vec![
            ("a".to_string(), Tensor::from_slice(&[1.0f32, 2.0])),
            ("b".to_string(), Tensor::from_slice(&[3.0f32, 4.0])),
        ];
        let err = copy_named(&fresh, &wrong_shape, "target network").unwrap_err();
        assert_eq!(
            err,
            "target network: tensor 'b' has shape [2], the network expects [1]"
        );
        // Nothing was written: `a` is still zero although it came first.
        assert_eq!(Vec::<f32>::try_from(&fresh[0].1).unwrap(), [0.0, 0.0]);
        let err = copy_named(&fresh, &wrong_shape[..1], "weights").unwrap_err();
        assert_eq!(err, "weights: 1 tensors, the network has 2");
        let renamed = vec![
            ("a".to_string(), Tensor::from_slice(&[1.0f32, 2.0])),
            ("c".to_string(), Tensor::from_slice(&[3.0f32])),
        ];
        let err = copy_named(&fresh, &renamed, "weights").unwrap_err();
        assert_eq!(err, "weights: no tensor 'b'");
    }
}

use super::*;

const ALL_LEGAL: [bool; 2] = [true, true];

fn config(capacity: usize, prioritized: bool, n_step: usize) -> ReplayConfig {
    ReplayConfig {
        capacity,
        prioritized,
        n_step,
        ..ReplayConfig::default()
    }
}

/// Pushes a one-step transition whose observation is `[x]` and whose episode does not end.
fn push_plain(buffer: &mut ReplayBuffer, x: f32) {
    buffer.push(
        0,
        &StepRecord {
            obs: &[x],
            action: 0,
            reward: 0.0,
            next_obs: &[x + 1.0],
            next_mask: &ALL_LEGAL,
            terminated: false,
            truncated: false,
        },
    );
}

fn assert_close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-6, "{a} vs {b}");
}

/// γ = 0.5, n = 3. Env 0 runs a 4-step episode that is truncated, then a 2-step episode that
/// terminates; env 1 interleaves a 1-step terminated episode, which must not leak into env
/// 0's windows. Expected returns by hand:
/// * o0: 1 + 0.5·2 + 0.25·3 = 2.75, next o3, discount 0.5³ = 0.125 (window full);
/// * o1: 2 + 0.5·3 + 0.25·4 = 4.5, next o4 (the final obs), 0.125 (truncation bootstraps);
/// * o2: 3 + 0.5·4 = 5, next o4, 0.25;  o3: 4, next o4, 0.5;
/// * o5: 10 + 0.5·20 = 20, next o7, discount 0 (termination);  o6: 20, next o7, 0.
#[test]
fn n_step_returns_on_a_hand_computed_episode_with_a_truncation() {
    let mut buffer = ReplayBuffer::new(&config(16, false, 3), 0.5, 1, 2, 2, 0);
    let mask_a = [true, false];
    let mask_b = [false, true];
    let step = |buffer: &mut ReplayBuffer, env, o: f32, action, reward, terminated, truncated| {
        let next_mask = if o == 3.0 { &mask_a } else { &mask_b };
        buffer.push(
            env,
            &StepRecord {
                obs: &[o],
                action,
                reward,
                next_obs: &[o + 1.0],
                next_mask,
                terminated,
                truncated,
            },
        );
    };
    step(&mut buffer, 0, 0.0, 1, 1.0, false, false);
    step(&mut buffer, 0, 1.0, 0, 2.0, false, false);
    step(&mut buffer, 1, 100.0, 1, -7.0, true, false);
    step(&mut buffer, 0, 2.0, 1, 3.0, false, false);
    step(&mut buffer, 0, 3.0, 0, 4.0, false, true);
    step(&mut buffer, 0, 5.0, 1, 10.0, false, false);
    step(&mut buffer, 0, 6.0, 0, 20.0, true, false);
    assert_eq!(buffer.len(), 7);
    // (obs, action, return, discount, next_obs, terminated, truncated), in storage order.
    let expected: [(f32, usize, f32, f32, f32, bool, bool); 7] = [
        (100.0, 1, -7.0, 0.0, 101.0, true, false),
        (0.0, 1, 2.75, 0.125, 3.0, false, false),
        (1.0, 0, 4.5, 0.125, 4.0, false, true),
        (2.0, 1, 5.0, 0.25, 4.0, false, true),
        (3.0, 0, 4.0, 0.5, 4.0, false, true),
        (5.0, 1, 20.0, 0.0, 7.0, true, false),
        (6.0, 0, 20.0, 0.0, 7.0, true, false),
    ];
    for (row, &(obs, action, ret, discount, next_obs, terminated, truncated)) in
        expected.iter().enumerate()
    {
        let t = buffer.transition(row);
        assert_eq!(t.obs, &[obs], "row {row}");
        assert_eq!(t.action, action, "row {row}");
        assert_close(f64::from(t.n_step_return), f64::from(ret));
        assert_close(f64::from(t.discount), f64::from(discount));
        assert_eq!(t.next_obs, &[next_obs], "row {row}");
        assert_eq!(
            (t.terminated, t.truncated),
            (terminated, truncated),
            "row {row}"
        );
    }
    // The truncated window bootstraps from the final state's mask (o3 → o4 was given mask_a).
    assert_eq!(buffer.transition(2).next_mask, &mask_a);
    assert_eq!(buffer.transition(1).next_mask, &mask_b);
}

#[test]
fn one_step_returns_store_each_step_at_once() {
    let mut buffer = ReplayBuffer::new(&config(4, false, 1), 0.99, 1, 2, 1, 0);
    push_plain(&mut buffer, 0.0);
    assert_eq!(buffer.len(), 1);
    let t = buffer.transition(0);
    assert_eq!((t.n_step_return, t.next_obs), (0.0, &[1.0][..]));
    assert_close(f64::from(t.discount), 0.99);
}

#[test]
fn the_ring_overwrites_the_oldest_row() {
    let mut buffer = ReplayBuffer::new(&config(3, true, 1), 0.99, 1, 2, 1, 0);
    for x in 0..5 {
        push_plain(&mut buffer, x as f32);
    }
    assert_eq!((buffer.len(), buffer.num_added()), (3, 5));
    let stored: Vec<f32> = (0..3).map(|i| buffer.transition(i).obs[0]).collect();
    assert_eq!(stored, [3.0, 4.0, 2.0]);
}

#[test]
fn new_transitions_get_the_largest_priority_seen() {
    let cfg = ReplayConfig {
        alpha: 1.0,
        priority_eps: 0.5,
        ..config(8, true, 1)
    };
    let mut buffer = ReplayBuffer::new(&cfg, 0.99, 1, 2, 1, 0);
    push_plain(&mut buffer, 0.0);
    push_plain(&mut buffer, 1.0);
    assert_eq!((buffer.priority(0), buffer.priority(1)), (1.0, 1.0));
    buffer.update_priorities(&[0, 1], &[-3.5, 0.0]);
    assert_eq!((buffer.priority(0), buffer.priority(1)), (4.0, 0.5));
    push_plain(&mut buffer, 2.0);
    assert_eq!(buffer.priority(2), 4.0);
    assert_close(buffer.mean_priority(), 8.5 / 3.0);
}

/// α = 0.5, ε = 1, |δ| = (3, 0, 8) → p = (2, 1, 3); with β = 0.5 and N = 3:
/// P = (1/3, 1/6, 1/2), N·P = (1, 0.5, 1.5), (N·P)^−β = (1, √2, √(2/3)), divided by the max √2:
/// w = (1/√2, 1, 1/√3).
#[test]
fn importance_weights_are_exact_on_a_hand_computed_example() {
    let cfg = ReplayConfig {
        alpha: 0.5,
        priority_eps: 1.0,
        ..config(5, true, 1)
    };
    let mut buffer = ReplayBuffer::new(&cfg, 0.99, 1, 2, 1, 3);
    for x in 0..3 {
        push_plain(&mut buffer, x as f32);
    }
    buffer.update_priorities(&[0, 1, 2], &[3.0, 0.0, -8.0]);
    let expected = [1.0 / 2f64.sqrt(), 1.0, 1.0 / 3f64.sqrt()];
    let mut batch = SampleBatch::default();
    let mut seen = [false; 3];
    for _ in 0..20 {
        buffer.sample(6, 0.5, &mut batch);
        for (&i, &w) in batch.indices.iter().zip(&batch.weights) {
            assert!(w <= 1.0);
            assert_close(f64::from(w), expected[i]);
            seen[i] = true;
            assert_eq!(
                batch.obs[batch.indices.iter().position(|&j| j == i).unwrap()],
                i as f32
            );
        }
    }
    assert_eq!(seen, [true; 3]);
    // β = 0: no correction.
    buffer.sample(6, 0.0, &mut batch);
    assert!(batch.weights.iter().all(|&w| w == 1.0));
}

/// 200,000 stratified draws over 10 rows (a capacity that is not a power of two) with
/// priorities 1..=10 (and one row never updated, at the initial max priority): the counts
/// match p_i / Σp. χ² with 9 degrees of freedom; the 0.999 quantile is 27.88.
#[test]
fn sampling_frequencies_match_priorities_chi_square() {
    let cfg = ReplayConfig {
        alpha: 1.0,
        priority_eps: 1e-9,
        ..config(10, true, 1)
    };
    let mut buffer = ReplayBuffer::new(&cfg, 0.99, 1, 2, 1, 12345);
    for x in 0..10 {
        push_plain(&mut buffer, x as f32);
    }
    let indices: Vec<usize> = (0..9).collect();
    let errors: Vec<f32> = (0..9).map(|i| (i + 1) as f32 * 0.1).collect(); // p = 0.1 .. 0.9
    buffer.update_priorities(&indices, &errors);
    // Row 9 still has the initial max priority 1.0. Σp = 4.5 + 1.0.
    let priorities: Vec<f64> = (0..10).map(|i| buffer.priority(i)).collect();
    let total: f64 = priorities.iter().sum();
    assert_close(total, 5.5);
    let mut counts = [0u64; 10];
    let mut batch = SampleBatch::default();
    let (num_batches, batch_size) = (2000, 100);
    for _ in 0..num_batches {
        buffer.sample(batch_size, 0.4, &mut batch);
        for &i in &batch.indices {
            counts[i] += 1;
        }
    }
    let n = (num_batches * batch_size) as f64;
    let chi2: f64 = counts
        .iter()
        .zip(&priorities)
        .map(|(&c, &p)| {
            let e = n * p / total;
            (c as f64 - e).powi(2) / e
        })
        .sum();
    assert!(chi2 < 27.88, "chi² = {chi2}, counts {counts:?}");
}

#[test]
fn uniform_replay_is_the_same_buffer_without_priorities() {
    let mut buffer = ReplayBuffer::new(&config(7, false, 1), 0.99, 1, 2, 1, 5);
    for x in 0..7 {
        push_plain(&mut buffer, x as f32);
    }
    buffer.update_priorities(&[0], &[100.0]); // ignored
    let mut counts = [0u64; 7];
    let mut batch = SampleBatch::default();
    for _ in 0..1000 {
        buffer.sample(70, 1.0, &mut batch);
        assert!(batch.weights.iter().all(|&w| w == 1.0));
        for &i in &batch.indices {
            counts[i] += 1;
        }
    }
    let e = 70_000.0 / 7.0;
    let chi2: f64 = counts.iter().map(|&c| (c as f64 - e).powi(2) / e).sum();
    assert!(chi2 < 22.46, "chi² = {chi2} (6 dof, 0.999 quantile 22.46)");
    assert_eq!(buffer.mean_priority(), 1.0);
}

#[test]
fn a_saved_buffer_resumes_the_same_samples() {
    let cfg = config(50, true, 3);
    let mut buffer = ReplayBuffer::new(&cfg, 0.9, 1, 2, 2, 77);
    for t in 0..70 {
        let env = t % 2;
        buffer.push(
            env,
            &StepRecord {
                obs: &[t as f32],
                action: t % 2,
                reward: t as f32,
                next_obs: &[t as f32 + 1.0],
                next_mask: &ALL_LEGAL,
                terminated: t % 11 == 0,
                truncated: t % 13 == 0,
            },
        );
    }
    let mut batch = SampleBatch::default();
    buffer.sample(8, 0.5, &mut batch);
    let errors: Vec<f32> = (0..8).map(|i| i as f32).collect();
    buffer.update_priorities(&batch.indices.clone(), &errors);
    let mut bytes = Vec::new();
    buffer.write_to(&mut bytes).unwrap();
    let mut restored = ReplayBuffer::new(&cfg, 0.9, 1, 2, 2, 0);
    restored.read_from(&mut bytes.as_slice()).unwrap();
    // The n-step windows survive too: the same next push stores the same transitions.
    for b in [&mut buffer, &mut restored] {
        let step = StepRecord {
            obs: &[0.5],
            action: 1,
            reward: 1.0,
            next_obs: &[0.5],
            next_mask: &ALL_LEGAL,
            terminated: true,
            truncated: false,
        };
        b.push(1, &step);
    }
    assert_eq!(
        (buffer.len(), buffer.num_added()),
        (restored.len(), restored.num_added())
    );
    for i in 0..buffer.len() {
        assert_eq!(buffer.transition(i), restored.transition(i));
        assert_eq!(buffer.priority(i), restored.priority(i));
    }
    let mut again = SampleBatch::default();
    buffer.sample(16, 0.7, &mut batch);
    restored.sample(16, 0.7, &mut again);
    assert_eq!(
        (batch.indices, batch.weights),
        (again.indices, again.weights)
    );
    // A buffer of another shape refuses the file.
    let mut other = ReplayBuffer::new(&config(50, false, 3), 0.9, 1, 2, 2, 0);
    assert!(matches!(
        other.read_from(&mut bytes.as_slice()),
        Err(ReplayError::Mismatch(_))
    ));
    assert!(matches!(
        other.read_from(&mut &b"garbage!garbage!"[..]),
        Err(ReplayError::BadFormat)
    ));
}

#[test]
fn config_validation_names_the_keys() {
    let bad = ReplayConfig {
        capacity: 0,
        beta_start: 1.5,
        priority_eps: 0.0,
        n_step: 0,
        ..ReplayConfig::default()
    };
    let errors = bad.validate().join("\n");
    for key in [
        "replay.capacity",
        "replay.beta_start",
        "replay.priority_eps",
        "replay.n_step",
    ] {
        assert!(errors.contains(key), "{errors}");
    }
    let cfg = ReplayConfig::default();
    assert_close(cfg.beta(0.0), 0.4);
    assert_close(cfg.beta(0.5), 0.7);
    assert_close(cfg.beta(2.0), 1.0);
}

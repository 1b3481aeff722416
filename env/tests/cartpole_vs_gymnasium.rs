//! Our CartPole against Gymnasium's own `CartPole-v1`, run by the project's Python
//! (`LEPTON_PYTHON`, set by `.cargo/config.toml` to the virtualenv's interpreter).
//!
//! Both start from the same `f64` states and receive the same actions; every step's
//! observation, reward, terminated and truncated must agree. The actions come from a balancing
//! controller (episodes that reach the 500-step truncation) and from a random policy (episodes
//! that terminate), and are replayed open loop on the Gymnasium side.
//!
//! Without a working `LEPTON_PYTHON` with gymnasium this test fails: it is the reference check
//! of the dynamics, not an optional one.

use std::io::Write;
use std::process::{Command, Stdio};

use lepton_env::{CartPole, Env, Transition};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Reads episodes from stdin, one per line: `x x_dot theta theta_dot a0 a1 ...`; prints one line
/// per step: the f32 observation, reward, terminated, truncated and the f64 state, then `end`.
const GYMNASIUM_SCRIPT: &str = r#"
import sys
import numpy as np
import gymnasium as gym

for line in sys.stdin.read().strip().splitlines():
    fields = line.split()
    state = np.array([float(v) for v in fields[:4]], dtype=np.float64)
    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    env.unwrapped.state = state
    for action in fields[4:]:
        obs, reward, terminated, truncated, _ = env.step(int(action))
        values = [repr(float(v)) for v in obs] + [repr(float(reward)), str(int(terminated)), str(int(truncated))]
        values += [repr(float(v)) for v in env.unwrapped.state]
        print(" ".join(values))
    print("end")
"#;

#[derive(Debug)]
struct Step {
    obs: [f64; 4],
    transition: Transition,
    state: [f64; 4],
}

struct Episode {
    start: [f64; 4],
    actions: Vec<usize>,
    steps: Vec<Step>,
}

/// Plays one `CartPole-v1` episode from `start`, choosing each action with `policy`.
fn play(start: [f64; 4], mut policy: impl FnMut(&[f32; 4]) -> usize) -> Episode {
    let mut env = CartPole::v1(0);
    let mut obs = [0.0_f32; 4];
    env.reset(Some(0), &mut obs);
    env.inner_mut().set_state(start);
    obs = start.map(|s| s as f32);
    let mut episode = Episode {
        start,
        actions: vec![],
        steps: vec![],
    };
    loop {
        let action = policy(&obs);
        let transition = env.step(action, &mut obs).unwrap();
        episode.actions.push(action);
        episode.steps.push(Step {
            obs: obs.map(f64::from),
            transition,
            state: env.inner().state(),
        });
        if transition.episode_over() {
            return episode;
        }
    }
}

fn balance(obs: &[f32; 4]) -> usize {
    let u = 0.05 * obs[0] + 0.5 * obs[1] + 10.0 * obs[2] + 1.5 * obs[3];
    usize::from(u > 0.0)
}

fn run_gymnasium(episodes: &[Episode]) -> Vec<Vec<Step>> {
    let python = std::env::var("LEPTON_PYTHON").unwrap_or_else(|_| {
        panic!(
            "LEPTON_PYTHON is not set: it must name a Python with gymnasium installed \
             (.cargo/config.toml sets it to .venv/bin/python; run scripts/bootstrap.sh)"
        )
    });
    let mut input = String::new();
    for e in episodes {
        let fields: Vec<String> = e
            .start
            .iter()
            .map(f64::to_string)
            .chain(e.actions.iter().map(usize::to_string))
            .collect();
        input.push_str(&fields.join(" "));
        input.push('\n');
    }
    let mut child = Command::new(&python)
        .arg("-c")
        .arg(GYMNASIUM_SCRIPT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run LEPTON_PYTHON={python}: {e}"));
    // The script reads all of stdin before printing, so writing first cannot deadlock.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "Gymnasium's CartPole failed under LEPTON_PYTHON={python} (is gymnasium installed? \
         run scripts/bootstrap.sh):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let mut result = vec![vec![]];
    for line in stdout.lines() {
        if line == "end" {
            result.push(vec![]);
            continue;
        }
        let v: Vec<f64> = line
            .split_whitespace()
            .map(|f| f.parse().unwrap())
            .collect();
        assert_eq!(v.len(), 11, "unexpected line from the script: {line}");
        result.last_mut().unwrap().push(Step {
            obs: [v[0], v[1], v[2], v[3]],
            transition: Transition {
                reward: v[4] as f32,
                terminated: v[5] == 1.0,
                truncated: v[6] == 1.0,
            },
            state: [v[7], v[8], v[9], v[10]],
        });
    }
    result.pop();
    result
}

#[test]
fn cartpole_matches_gymnasium_step_for_step() {
    let mut episodes = vec![];
    // Starting states drawn by our own reset, balanced until the 500-step truncation.
    for seed in 0..4 {
        let mut env = CartPole::new(seed);
        env.reset(Some(seed), &mut [0.0; 4]);
        episodes.push(play(env.state(), balance));
    }
    // Random actions until termination, from random and from near-threshold states.
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for _ in 0..20 {
        let start = [(); 4].map(|_| rng.random_range(-0.05..0.05));
        episodes.push(play(start, |_| rng.random_range(0..2)));
    }
    for start in [
        [2.3, 1.0, 0.0, 0.0],
        [-2.3, -1.0, 0.05, 0.0],
        [0.0, 0.0, 0.2, 0.3],
        [0.1, -0.2, -0.2, -0.5],
    ] {
        episodes.push(play(start, |_| 0));
    }
    let num_truncated = episodes
        .iter()
        .filter(|e| e.steps.last().unwrap().transition.truncated)
        .count();
    let num_terminated = episodes
        .iter()
        .filter(|e| e.steps.last().unwrap().transition.terminated)
        .count();
    assert_eq!(
        num_truncated, 4,
        "the balancing controller reaches the time limit"
    );
    assert_eq!(num_terminated, episodes.len() - 4);

    let reference = run_gymnasium(&episodes);
    assert_eq!(
        reference.len(),
        episodes.len(),
        "one trajectory per episode from the script"
    );
    let mut max_obs_error = 0.0_f64;
    let mut max_state_error = 0.0_f64;
    for (k, (ours, theirs)) in episodes.iter().zip(&reference).enumerate() {
        assert_eq!(
            ours.steps.len(),
            theirs.len(),
            "episode {k}: lengths differ"
        );
        for (t, (a, b)) in ours.steps.iter().zip(theirs).enumerate() {
            for i in 0..4 {
                max_obs_error = max_obs_error.max((a.obs[i] - b.obs[i]).abs());
                max_state_error = max_state_error.max((a.state[i] - b.state[i]).abs());
            }
            assert!(
                a.obs.iter().zip(&b.obs).all(|(x, y)| (x - y).abs() <= 1e-6),
                "episode {k} step {t}: obs {:?} vs Gymnasium {:?}",
                a.obs,
                b.obs
            );
            assert_eq!(a.transition, b.transition, "episode {k} step {t}");
        }
    }
    let num_steps: usize = episodes.iter().map(|e| e.steps.len()).sum();
    println!(
        "{} episodes, {num_steps} steps: max |obs - gymnasium| = {max_obs_error:e}, \
         max |f64 state - gymnasium| = {max_state_error:e}",
        episodes.len()
    );
}

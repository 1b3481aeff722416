//! An in-tree mutation fuzzer of lepton's loaders, on stable Rust (no nightly toolchain, so no
//! cargo-fuzz): it mutates the files lepton ships and reads (scenarios, training configs, SWF,
//! Alibaba and Tiresias traces, task CSVs, evaluation suites, checkpoint metadata, and what
//! lepton-serve reads from Slurm and Kubernetes: `squeue`/`sinfo --json` output and extender
//! request bodies) and feeds
//! each mutant to the loader that reads it, then, for a scenario that loads, builds the env
//! and steps it. Every input must end in `Ok` or a clean error: a panic is a finding.
//!
//! Inputs are a pure function of `(seed, index)`, so `--start N --inputs 1` replays input N.
//! `make fuzz` runs a long campaign; `make test` a short one (`tests/short.rs`).

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use lepton_env::Env;
use lepton_env::scenario::Scenario;
use lepton_env::trace::{alibaba, swf, tiresias};
use lepton_env::workload::csv::parse_task_csv;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One loader under test, with the shipped files its mutants start from.
pub struct Target {
    pub name: &'static str,
    seeds: Vec<String>,
    run: Box<dyn Fn(&str) + Send + Sync>,
}

/// Values that break sizes and arithmetic: zero, negatives, powers of two around the integer
/// widths, the largest integers, tiny and huge floats, NaN and infinities.
const INTERESTING: &[&str] = &[
    "0",
    "-1",
    "1",
    "255",
    "65536",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "-9223372036854775808",
    "1e-9",
    "1e308",
    "-1e308",
    "nan",
    "inf",
    "-inf",
    "NaN",
    "0.0",
    "-0.0",
    "1e9",
    "\"\"",
    "[]",
    "{}",
];

/// The `index`-th mutant of `seed_text` (1 to 4 stacked mutations).
pub fn mutate(seed_text: &str, rng: &mut ChaCha8Rng) -> String {
    let mut text = seed_text.as_bytes().to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let len = text.len().max(1);
        match rng.random_range(0..8) {
            // Replace a number with an interesting value.
            0..=2 => {
                let starts: Vec<usize> = (0..text.len())
                    .filter(|&i| {
                        text[i].is_ascii_digit() && (i == 0 || !text[i - 1].is_ascii_alphanumeric())
                    })
                    .collect();
                if let Some(&start) = starts.get(rng.random_range(0..starts.len().max(1))) {
                    let end = (start..text.len())
                        .find(|&i| {
                            !(text[i].is_ascii_digit() || text[i] == b'.' || text[i] == b'e')
                        })
                        .unwrap_or(text.len());
                    let value = INTERESTING[rng.random_range(0..INTERESTING.len())];
                    text.splice(start..end, value.bytes());
                }
            }
            // Flip, insert or delete bytes.
            3 => {
                let i = rng.random_range(0..len);
                if i < text.len() {
                    text[i] ^= 1 << rng.random_range(0..8);
                }
            }
            4 => {
                let i = rng.random_range(0..=text.len());
                let byte = *b"0123456789.,-=[]{}\"\n #e"
                    .get(rng.random_range(0..24))
                    .unwrap_or(&b'0');
                text.insert(i, byte);
            }
            5 => {
                let i = rng.random_range(0..len);
                let n = rng.random_range(1..=16).min(text.len().saturating_sub(i));
                text.drain(i..i + n);
            }
            // Duplicate or drop a whole line.
            _ => {
                let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
                let k = rng.random_range(0..lines.len().max(1));
                let mut out: Vec<u8> = Vec::with_capacity(text.len() + 64);
                for (j, line) in lines.iter().enumerate() {
                    let copies = match (j == k, rng.random_bool(0.5)) {
                        (true, true) => 2,
                        (true, false) => 0,
                        _ => 1,
                    };
                    for _ in 0..copies {
                        out.extend_from_slice(line);
                        out.push(b'\n');
                    }
                }
                text = out;
            }
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// The first `n` lines of a file (traces are large; their structure is in any excerpt).
fn head(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().take(n).collect::<Vec<_>>().join("\n") + "\n"
}

/// Loads a mutated scenario and, if it loads, builds the env and plays up to 300 decisions
/// with the first legal action.
fn run_scenario(text: &str, path: &Path) {
    let Ok(scenario) = Scenario::from_toml_str(text, path) else {
        return;
    };
    let mut env = scenario.build();
    let mut obs = vec![0.0; env.observation_space().dim()];
    let mut mask = vec![false; env.action_space().n];
    env.reset(Some(1), &mut obs);
    for _ in 0..300 {
        env.action_mask(&mut mask);
        let Some(action) = mask.iter().position(|&m| m) else {
            panic!("no legal action");
        };
        match env.step(action, &mut obs) {
            Ok(t) if t.episode_over() => break,
            Ok(_) => {}
            Err(e) => panic!("a legal action failed: {e}"),
        }
    }
}

/// Every target, its seeds read from `root` (the repository) and `shared` (`../shared`).
pub fn targets(root: &Path, shared: &Path) -> Vec<Target> {
    let read =
        |p: PathBuf| std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut scenarios: Vec<String> = [
        "tiny",
        "deeprm",
        "deeprm-hold",
        "cloud",
        "cloud-hold",
        "cloud-slot",
        "csv-example",
        "cloud-ops",
    ]
    .iter()
    .map(|n| read(root.join(format!("configs/scenarios/{n}.toml"))))
    .collect();
    // Replay keys that no shipped scenario sets, on the CSV example.
    let csv_example = scenarios[6].clone();
    scenarios.push(csv_example.replace(
        "window_jobs = 40",
        "exclude_windows = { offsets = [10] }\ntimes = \"absolute\"\nwindow_jobs = 40",
    ));
    scenarios.push(csv_example.replace(
        "perturb = { arrival_jitter_s = 10.0, estimate_noise = 0.1 }",
        "perturb = { estimates = { model = \"tsafrir\", max_s = 7200.0, p_max = 0.2 } }\n\
         window_offsets = [0, 100]",
    ));
    let configs: Vec<String> = [
        "ppo_cartpole",
        "ppo_deeprm_hold",
        "ppo_cloud_slot",
        "ppo_cloud_rules",
        "dqn_deeprm",
    ]
    .iter()
    .map(|n| read(root.join(format!("configs/{n}.toml"))))
    .collect();
    let data = shared.join("data");
    let swf = vec![
        read(data.join("swf/cqsim-test-9jobs.swf")),
        head(&data.join("swf/lublin_256.swf"), 80),
    ];
    let nodes_text = head(
        &data.join("alibaba-gpu-v2023/openb_node_list_all_node.csv"),
        60,
    );
    let pods = vec![head(
        &data.join("alibaba-gpu-v2023/openb_pod_list_default.csv"),
        60,
    )];
    let nodes = alibaba::parse_nodes(&nodes_text, Path::new("nodes.csv"), false)
        .expect("shipped nodes parse");
    let clusters: Vec<String> = ["cluster_spec", "n1g4", "n32g4", "n160g8"]
        .iter()
        .map(|n| read(data.join(format!("tiresias/{n}.csv"))))
        .collect();
    let jobs = vec![read(data.join("tiresias/60_job.csv"))];
    let cluster = tiresias::parse_cluster(&clusters[0], Path::new("cluster.csv"))
        .expect("shipped cluster parses");
    let csv = vec![
        "id,arrival_s,duration_s,cpu,mem_gib,estimate_s,deadline_s\n1,0.0,10.0,2,4,12.0,\n2,1.5,3.0,1,1,3.0,20\n3,2,7,4,2,,\n"
            .to_string(),
    ];
    // Mutated suites are read as if they were in configs/eval, so the scenario paths they name
    // resolve to the shipped scenarios.
    let suites: Vec<String> = [
        "smoke",
        "demo",
        "deeprm_load_sweep",
        "cloud_hold_test",
        "cloud_ops_test",
    ]
    .iter()
    .map(|n| read(root.join(format!("configs/eval/{n}.toml"))))
    .collect();
    let suite_path = root.join("configs/eval/fuzz.toml");
    let scenario_path = root.join("configs/scenarios/fuzz.toml");
    let checkpoint_dir = root.join("checkpoints/deeprm_hold_ppo/seed1");
    let checkpoint = vec![read(checkpoint_dir.join("best.json"))];
    let scratch = tempfile::tempdir().expect("a temporary directory");
    for entry in std::fs::read_dir(&checkpoint_dir).expect("the shipped checkpoint") {
        let entry = entry.expect("a directory entry");
        std::fs::copy(entry.path(), scratch.path().join(entry.file_name())).expect("copy");
    }
    // The directory lives as long as the target (the closure owns it).
    let scratch = std::sync::Arc::new(scratch);
    let resources = vec!["cpu".to_string(), "mem_gib".to_string()];
    let serve_data = root.join("serve/tests/data");
    let slurm_json = vec![
        read(serve_data.join("squeue.json")),
        read(serve_data.join("sinfo.json")),
    ];
    let extender_bodies: Vec<String> = ["gpu_pod.json", "cpu_pod.json", "node_names_only.json"]
        .iter()
        .map(|n| read(serve_data.join(n)))
        .collect();
    // The shipped Lublin-1 policy ranks every queue that parses, through load_live.
    let learned = std::sync::Mutex::new(
        lepton_serve::learned::LearnedRanker::load(
            &root.join("checkpoints/lublin_1_ppo/seed1"),
            &root.join("configs/scenarios/lublin-1.toml"),
            1.0,
        )
        .expect("the shipped Lublin-1 checkpoint loads"),
    );
    vec![
        Target {
            name: "slurm_json",
            seeds: slurm_json,
            run: Box::new(move |text| {
                use lepton_serve::rank::Ranker;
                use lepton_serve::slurm::{cli, driver};
                let _ = cli::parse_nodes(text);
                if let Ok(jobs) = cli::parse_jobs(text) {
                    let queue = driver::observe(&jobs, None, 1.8e9);
                    for (_, name) in lepton_env::schedulers::Priority::ALL {
                        let mut ranker = Ranker::by_name(name).expect("a priority");
                        let ranking = ranker.rank(&queue).expect("priorities always rank");
                        let _ = driver::plan(&ranking, &jobs);
                    }
                    let mut learned = learned.lock().unwrap_or_else(|e| e.into_inner());
                    if let Ok(ranking) = learned.rank(&queue) {
                        let ids: std::collections::HashSet<u64> =
                            queue.waiting.iter().map(|j| j.id).collect();
                        assert_eq!(ranking.len(), ids.len(), "every job ranked once");
                        let _ = driver::plan(&ranking, &jobs);
                    }
                }
            }),
        },
        Target {
            name: "k8s_extender",
            seeds: extender_bodies,
            run: Box::new(|text| {
                use lepton_serve::extender::{self, NodePolicy};
                let _ = extender::filter(text);
                for policy in [NodePolicy::BestFit, NodePolicy::Tetris] {
                    let _ = extender::prioritize(text, policy);
                }
            }),
        },
        Target {
            name: "scenario",
            seeds: scenarios,
            // Read as if beside the shipped scenarios, so the data files they name resolve.
            run: Box::new(move |text| run_scenario(text, &scenario_path)),
        },
        Target {
            name: "train_config",
            seeds: configs,
            run: Box::new(|text| {
                if let Ok(table) = text.parse::<toml::Table>() {
                    let _ = lepton_train::config::TrainConfig::from_table(table, "fuzz.toml");
                }
            }),
        },
        Target {
            name: "swf",
            seeds: swf,
            run: Box::new(|text| {
                for lenient in [false, true] {
                    let _ = swf::parse(text, Path::new("fuzz.swf"), lenient);
                }
            }),
        },
        Target {
            name: "alibaba_nodes",
            seeds: vec![nodes_text.clone()],
            run: Box::new(|text| {
                let _ = alibaba::parse_nodes(text, Path::new("nodes.csv"), true);
            }),
        },
        Target {
            name: "alibaba_pods",
            seeds: pods,
            run: Box::new(move |text| {
                for lenient in [false, true] {
                    let _ =
                        alibaba::parse_pods(text, Path::new("pods.csv"), nodes.clone(), lenient);
                }
            }),
        },
        Target {
            name: "tiresias_cluster",
            seeds: clusters,
            run: Box::new(|text| {
                let _ = tiresias::parse_cluster(text, Path::new("cluster.csv"));
            }),
        },
        Target {
            name: "tiresias_jobs",
            seeds: jobs,
            run: Box::new(move |text| {
                for lenient in [false, true] {
                    let _ =
                        tiresias::parse_jobs(text, Path::new("jobs.csv"), cluster.clone(), lenient);
                }
            }),
        },
        Target {
            name: "task_csv",
            seeds: csv,
            run: Box::new(move |text| {
                let _ = parse_task_csv(text, &resources);
            }),
        },
        Target {
            name: "suite",
            seeds: suites,
            run: Box::new(move |text| {
                let _ = lepton_eval::suite::parse(text.to_string(), &suite_path);
            }),
        },
        Target {
            name: "checkpoint",
            seeds: checkpoint,
            run: Box::new(move |text| {
                let path = scratch.path().join("fuzz.json");
                std::fs::write(&path, text).expect("write the mutant");
                let _ = lepton_agent::checkpoint::LoadedPolicy::load(&path, tch::Device::Cpu);
            }),
        },
    ]
}

/// A panic found on one input.
#[derive(Debug)]
pub struct Finding {
    pub index: u64,
    pub target: &'static str,
    pub message: String,
    pub input: String,
}

/// Input `index` of a campaign: which target, and the mutant. Targets take turns; the
/// checkpoint reader (file IO and libtorch) gets one turn in ten.
pub fn input(targets: &[Target], seed: u64, index: u64) -> (usize, String) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let last = targets.len() - 1;
    let t = if rng.random_range(0..10) == 0 {
        last
    } else {
        rng.random_range(0..last)
    };
    let seeds = &targets[t].seeds;
    let seed_text = &seeds[rng.random_range(0..seeds.len())];
    (t, mutate(seed_text, &mut rng))
}

/// Runs inputs `start .. start + count`; returns the panics found. `progress` is called
/// every 10,000 inputs with the index reached.
pub fn campaign(
    targets: &[Target],
    seed: u64,
    start: u64,
    count: u64,
    mut progress: impl FnMut(u64),
) -> Vec<Finding> {
    let message = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let slot = message.clone();
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = info.to_string();
    }));
    let mut findings = Vec::new();
    for index in start..start + count {
        let (t, text) = input(targets, seed, index);
        if panic::catch_unwind(AssertUnwindSafe(|| (targets[t].run)(&text))).is_err() {
            findings.push(Finding {
                index,
                target: targets[t].name,
                message: message.lock().unwrap_or_else(|e| e.into_inner()).clone(),
                input: text,
            });
        }
        if (index + 1).is_multiple_of(10_000) {
            progress(index + 1);
        }
    }
    panic::set_hook(previous);
    findings
}

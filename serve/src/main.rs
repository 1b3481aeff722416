//! `lepton-serve`: puts a lepton policy in front of a real scheduler. See `lepton-serve --help`
//! and the README's "Drive a real Slurm cluster".
//!
//! Exit codes: 0 success; 2 bad input (flags, files, a policy name, a Slurm configuration that
//! cannot obey priorities); 3 Slurm failed (a command, the local cluster, a replayed job).

use clap::{Args, Parser, Subcommand};
use lepton_eval::stats::BootstrapConfig;
use lepton_serve::compare::{self, Run, RunJob};
use lepton_serve::extender::{self, NodePolicy};
use lepton_serve::jobs::{self, ScaledJob, TraceJob};
use lepton_serve::learned::LearnedRanker;
use lepton_serve::rank::Ranker;
use lepton_serve::replay::{self, JobOutcome, ReplayOptions};
use lepton_serve::simulate;
use lepton_serve::slurm::cli::Slurm;
use lepton_serve::slurm::cluster::{ClusterSpec, LocalCluster, PriorityType, SchedulerType};
use lepton_serve::slurm::driver::{self, DriverOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "lepton-serve",
    version,
    about = "Puts lepton's policies in front of real schedulers (Slurm, Kubernetes)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Rank a Slurm cluster's pending jobs with a lepton policy and apply the ranking as job
    /// priorities, every --interval seconds. Never cancels, holds or releases a job.
    Slurm(SlurmArgs),
    /// Submit a trace window to Slurm as time-scaled sleep jobs, wait for them, and write
    /// when each started and ended (trace seconds) to OUT/jobs.csv.
    Replay(ReplayArgs),
    /// A paired report of replays of the same jobs (the first is the reference), with
    /// lepton's simulator on the same job list.
    Compare {
        /// NAME=PATH of a replay's jobs.csv; the first is the reference.
        #[arg(long = "run", required = true)]
        runs: Vec<String>,
        /// lepton heuristics to simulate on the same jobs (e.g. fcfs+easy,sjf+easy).
        #[arg(long, value_delimiter = ',')]
        simulate: Vec<String>,
        /// The cluster's total CPUs (needed with --simulate).
        #[arg(long)]
        cpus: Option<u32>,
        /// Write the report here too.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Bootstrap resamples.
        #[arg(long, default_value_t = 2000)]
        resamples: usize,
    },
    /// Start a throwaway Slurm cluster in a temporary folder and keep it until Ctrl-C.
    LocalCluster {
        #[arg(long, default_value_t = 4)]
        nodes: u32,
        #[arg(long, default_value_t = 4)]
        cpus: u32,
        /// backfill or builtin.
        #[arg(long, default_value = "backfill")]
        scheduler: String,
    },
    /// Serve the Kubernetes scheduler-extender contract (POST /filter, /prioritize).
    K8sExtender {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8888")]
        listen: String,
        /// best_fit or tetris.
        #[arg(long, default_value = "tetris")]
        policy: String,
    },
}

/// The policy that ranks the queue: a priority function or a trained checkpoint.
#[derive(Args, Clone, Debug)]
struct PolicyArgs {
    /// fcfs, sjf, wfp3, unicep or f1 (lepton's whole-queue priorities).
    #[arg(long, conflicts_with = "checkpoint")]
    policy: Option<String>,
    /// A trained checkpoint (its best.json, or its run or checkpoint folder), e.g.
    /// checkpoints/lublin_1_ppo/seed1. It ranks the queue through --scenario's observation.
    #[arg(long, requires = "scenario")]
    checkpoint: Option<PathBuf>,
    /// The scenario a --checkpoint observes through (e.g. the one it was trained on): a
    /// "slot" scenario of one resource whose total capacity is the cluster's CPU count.
    #[arg(long, requires = "checkpoint")]
    scenario: Option<PathBuf>,
}

#[derive(Args)]
struct SlurmArgs {
    #[command(flatten)]
    ranking: PolicyArgs,
    /// Real seconds per scenario second, for a --checkpoint (a replay's --time-scale).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Only rank jobs of this partition.
    #[arg(long)]
    partition: Option<String>,
    /// Seconds between passes.
    #[arg(long, default_value_t = 2.0)]
    interval: f64,
    /// Print the priority changes instead of making them.
    #[arg(long)]
    dry_run: bool,
    /// One pass, then exit.
    #[arg(long)]
    once: bool,
}

#[derive(Args)]
struct ReplayArgs {
    /// An SWF trace, or a lepton CSV task list with a `procs` column.
    #[arg(long)]
    trace: PathBuf,
    /// Index (arrival order) of the window's first job.
    #[arg(long, default_value_t = 0)]
    start: usize,
    /// Jobs in the window.
    #[arg(long)]
    jobs: usize,
    /// Real seconds per trace second (0.01: an hour of trace in 36 s).
    #[arg(long)]
    time_scale: f64,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Run the `slurm` loop with this --policy or --checkpoint during the replay (default:
    /// Slurm's own order).
    #[command(flatten)]
    ranking: PolicyArgs,
    /// Seconds between the loop's passes.
    #[arg(long, default_value_t = 0.5)]
    interval: f64,
    /// Start a throwaway cluster of NODESxCPUS (e.g. 16x16) for the replay instead of
    /// using the one SLURM_CONF names.
    #[arg(long)]
    local_cluster: Option<String>,
    /// The local cluster's scheduler: backfill or builtin.
    #[arg(long, default_value = "backfill")]
    scheduler: String,
    #[arg(long)]
    partition: Option<String>,
    /// Seconds to wait after the last submission (default: the jobs' total scaled run
    /// time plus 120 s).
    #[arg(long)]
    timeout: Option<f64>,
}

/// An error with its exit code.
struct Failure {
    code: u8,
    message: String,
}

fn input(message: impl std::fmt::Display) -> Failure {
    Failure {
        code: 2,
        message: message.to_string(),
    }
}

fn slurm_failed(message: impl std::fmt::Display) -> Failure {
    Failure {
        code: 3,
        message: message.to_string(),
    }
}

fn seconds(flag: &str, value: f64) -> Result<Duration, Failure> {
    if value.is_finite() && value > 0.0 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(input(format!(
            "--{flag} must be a positive number of seconds, got {value}"
        )))
    }
}

fn scheduler_type(name: &str) -> Result<SchedulerType, Failure> {
    SchedulerType::parse(name).ok_or_else(|| {
        input(format!(
            "--scheduler `{name}`: expected backfill or builtin"
        ))
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Slurm(args) => run_slurm(args),
        Command::Replay(args) => run_replay(args),
        Command::Compare {
            runs,
            simulate,
            cpus,
            out,
            resamples,
        } => run_compare(&runs, &simulate, cpus, out.as_deref(), resamples),
        Command::LocalCluster {
            nodes,
            cpus,
            scheduler,
        } => run_local_cluster(nodes, cpus, &scheduler),
        Command::K8sExtender { listen, policy } => run_extender(&listen, &policy),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("lepton-serve: error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// The ranker `args` names, if any. A checkpoint is checked against the cluster's CPU count
/// when it is known.
fn load_ranker(
    args: &PolicyArgs,
    time_scale: f64,
    cpus: Option<u64>,
) -> Result<Option<Ranker>, Failure> {
    match (&args.policy, &args.checkpoint, &args.scenario) {
        (Some(name), _, _) => Ok(Some(Ranker::by_name(name).map_err(input)?)),
        (None, Some(checkpoint), Some(scenario)) => {
            let learned = LearnedRanker::load(checkpoint, scenario, time_scale).map_err(input)?;
            if let Some(cpus) = cpus {
                learned.check_cluster(cpus).map_err(input)?;
            }
            Ok(Some(Ranker::Learned(Box::new(learned))))
        }
        _ => Ok(None),
    }
}

/// A checkpoint's scenario must have the cluster's CPU count (every node, usable or not).
fn check_cluster(ranker: &Ranker, slurm: &Slurm) -> Result<(), Failure> {
    if let Ranker::Learned(learned) = ranker {
        let nodes = slurm.nodes().map_err(slurm_failed)?;
        let cpus = nodes.iter().map(|n| u64::from(n.cpus)).sum();
        learned.check_cluster(cpus).map_err(input)?;
    }
    Ok(())
}

fn run_slurm(args: SlurmArgs) -> Result<(), Failure> {
    let ranker = load_ranker(&args.ranking, args.time_scale, None)?
        .ok_or_else(|| input("give --policy NAME or --checkpoint PATH --scenario FILE"))?;
    let slurm = Slurm::from_env();
    check_cluster(&ranker, &slurm)?;
    let mut options = DriverOptions {
        ranker,
        partition: args.partition,
        interval: seconds("interval", args.interval)?,
        dry_run: args.dry_run,
    };
    check_config(&slurm)?;
    let mut stdout = std::io::stdout();
    let dry_run = args.dry_run;
    if args.once {
        let report = driver::pass(&slurm, &mut options, &mut stdout).map_err(slurm_failed)?;
        println!(
            "{} ranked {} pending jobs; {} priority changes{}",
            options.ranker.name(),
            report.ranking.len(),
            report.updates.len(),
            if dry_run { " (dry run: none made)" } else { "" }
        );
        return Ok(());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
        .map_err(|e| slurm_failed(format!("cannot install the signal handler: {e}")))?;
    // Priority functions read only the queue, a checkpoint the running jobs too; the nodes
    // are logged so the operator sees which cluster is being driven.
    let nodes = slurm.nodes().map_err(slurm_failed)?;
    let usable: Vec<_> = nodes.iter().filter(|n| n.is_usable()).collect();
    eprintln!(
        "lepton-serve: ranking the queue of {} usable nodes ({} CPUs) with {} every {} s{}",
        usable.len(),
        usable.iter().map(|n| u64::from(n.cpus)).sum::<u64>(),
        options.ranker.name(),
        args.interval,
        if dry_run { " (dry run)" } else { "" }
    );
    driver::run(&slurm, &mut options, &stop, &mut stdout);
    Ok(())
}

fn check_config(slurm: &Slurm) -> Result<(), Failure> {
    driver::check_config(slurm).map_err(|e| match e {
        driver::ConfigError::BuiltinIgnoresPriorities => input(e),
        driver::ConfigError::Slurm(e) => slurm_failed(e),
    })
}

fn parse_shape(text: &str) -> Result<(u32, u32), Failure> {
    let bad = || {
        input(format!(
            "--local-cluster `{text}`: expected NODESxCPUS, e.g. 16x16"
        ))
    };
    let (n, c) = text.split_once('x').ok_or_else(bad)?;
    let (n, c) = (
        n.parse::<u32>().map_err(|_| bad())?,
        c.parse::<u32>().map_err(|_| bad())?,
    );
    if n == 0 || c == 0 || n > 64 {
        return Err(input(format!(
            "--local-cluster `{text}`: 1 to 64 nodes of at least one CPU"
        )));
    }
    Ok((n, c))
}

fn run_replay(a: ReplayArgs) -> Result<(), Failure> {
    let interval = seconds("interval", a.interval)?;
    let shape = a.local_cluster.as_deref().map(parse_shape).transpose()?;
    let ranker = load_ranker(
        &a.ranking,
        a.time_scale,
        shape.map(|(n, c)| u64::from(n) * u64::from(c)),
    )?;
    let scheduler = scheduler_type(&a.scheduler)?;
    let all = jobs::load_trace(&a.trace).map_err(input)?;
    let window = jobs::window(&all, a.start, a.jobs, &a.trace).map_err(input)?;
    let total_cpus = shape.map(|(n, c)| n * c);
    let scaled = jobs::scale(&window, a.time_scale, total_cpus).map_err(input)?;
    std::fs::create_dir_all(&a.out)
        .map_err(|e| input(format!("{}: cannot create: {e}", a.out.display())))?;
    let cluster = match shape {
        Some((nodes, cpus)) => Some(
            LocalCluster::start(ClusterSpec {
                nodes,
                cpus_per_node: cpus,
                scheduler,
                // sched/builtin obeys scontrol priorities only with multifactor.
                priority: if ranker.is_some() && scheduler == SchedulerType::Builtin {
                    PriorityType::Multifactor
                } else {
                    PriorityType::Basic
                },
            })
            .map_err(slurm_failed)?,
        ),
        None => None,
    };
    let slurm = cluster
        .as_ref()
        .map_or_else(Slurm::from_env, |c| c.slurm().clone());
    if ranker.is_some() {
        check_config(&slurm)?;
    }
    if let (Some(ranker), None) = (&ranker, shape) {
        check_cluster(ranker, &slurm)?;
    }
    let job_out_dir = cluster
        .as_ref()
        .map_or_else(|| a.out.join("slurm-out"), LocalCluster::out_dir);
    let total_sleep: f64 = scaled.iter().map(|j| j.sleep_s).sum();
    let timeout = match a.timeout {
        Some(t) => seconds("timeout", t)?,
        None => Duration::from_secs_f64(total_sleep + 120.0),
    };
    let options = ReplayOptions {
        time_scale: a.time_scale,
        partition: a.partition.clone(),
        job_out_dir,
        timeout,
    };
    let last = window.last().map_or(0.0, |j| j.arrival_s) * a.time_scale;
    eprintln!(
        "lepton-serve: replaying {} jobs of {} (from index {}) over about {last:.0} s of submissions, {}",
        scaled.len(),
        a.trace.display(),
        a.start,
        ranker
            .as_ref()
            .map_or("in Slurm's own order".to_owned(), |r| format!(
                "ranked by {}",
                r.name()
            ))
    );
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = std::thread::scope(|scope| {
        if let Some(ranker) = ranker {
            let (slurm, stop) = (slurm.clone(), stop.clone());
            let mut driver_options = DriverOptions {
                ranker,
                partition: a.partition.clone(),
                interval,
                dry_run: false,
            };
            scope.spawn(move || {
                driver::run(&slurm, &mut driver_options, &stop, &mut std::io::sink())
            });
        }
        let result = replay::replay(&slurm, &scaled, &options);
        stop.store(true, Ordering::Relaxed);
        result
    })
    .map_err(slurm_failed)?;
    let csv = a.out.join("jobs.csv");
    replay::write_csv(&csv, &outcomes)
        .map_err(|e| slurm_failed(format!("{}: cannot write: {e}", csv.display())))?;
    let run = to_run("replay", &outcomes);
    let s = run.summary();
    println!(
        "{} jobs: mean wait {:.0} s, mean bounded slowdown {:.2}, makespan {:.0} s (trace seconds); {}",
        outcomes.len(),
        s.mean_wait_s,
        s.mean_bounded_slowdown,
        s.makespan_s,
        csv.display()
    );
    Ok(())
}

fn to_run(name: &str, outcomes: &[JobOutcome]) -> Run {
    Run {
        name: name.to_owned(),
        jobs: outcomes
            .iter()
            .map(|o| RunJob {
                trace_id: o.trace_id,
                arrival_s: o.arrival_s,
                runtime_s: o.runtime_s,
                start_s: o.start_s,
                end_s: o.end_s,
            })
            .collect(),
    }
}

/// The job list a replay ran, rebuilt from its jobs.csv (what the simulator is given).
fn scaled_jobs(outcomes: &[JobOutcome]) -> Vec<ScaledJob> {
    outcomes
        .iter()
        .map(|o| ScaledJob {
            job: TraceJob {
                id: o.trace_id,
                arrival_s: o.arrival_s,
                runtime_s: o.runtime_s,
                estimate_s: o.estimate_s,
                procs: o.procs,
            },
            sleep_s: 0.0,
            limit_min: o.limit_min,
            estimate_s: o.estimate_s,
        })
        .collect()
}

fn run_compare(
    runs: &[String],
    simulate: &[String],
    cpus: Option<u32>,
    out: Option<&Path>,
    resamples: usize,
) -> Result<(), Failure> {
    let mut all = Vec::new();
    let mut first_outcomes = None;
    for spec in runs {
        let (name, path) = spec
            .split_once('=')
            .ok_or_else(|| input(format!("--run `{spec}`: expected NAME=PATH/jobs.csv")))?;
        let outcomes = replay::read_csv(Path::new(path)).map_err(input)?;
        all.push(to_run(name, &outcomes));
        first_outcomes.get_or_insert(outcomes);
    }
    if !simulate.is_empty() {
        let cpus =
            cpus.ok_or_else(|| input("--simulate needs --cpus (the cluster's total CPUs)"))?;
        let jobs = scaled_jobs(first_outcomes.as_deref().unwrap_or_default());
        for name in simulate {
            let starts = simulate::simulate(&jobs, cpus, name).map_err(input)?;
            all.push(Run {
                name: format!("simulator {name}"),
                jobs: jobs
                    .iter()
                    .zip(&starts)
                    .map(|(j, s)| RunJob {
                        trace_id: j.job.id,
                        arrival_s: j.job.arrival_s,
                        runtime_s: j.job.runtime_s,
                        start_s: s.start_s,
                        end_s: s.end_s,
                    })
                    .collect(),
            });
        }
    }
    let bootstrap = BootstrapConfig {
        resamples,
        ..BootstrapConfig::default()
    };
    let text = compare::report(&all, &bootstrap).map_err(input)?;
    print!("{text}");
    if let Some(out) = out {
        lepton_serve::write_atomic(out, &text)
            .map_err(|e| input(format!("{}: cannot write: {e}", out.display())))?;
    }
    Ok(())
}

fn run_local_cluster(nodes: u32, cpus: u32, scheduler: &str) -> Result<(), Failure> {
    let spec = ClusterSpec {
        nodes,
        cpus_per_node: cpus,
        scheduler: scheduler_type(scheduler)?,
        priority: PriorityType::Multifactor,
    };
    if nodes == 0 || cpus == 0 || nodes > 64 {
        return Err(input("--nodes 1 to 64 and --cpus at least 1"));
    }
    let cluster = LocalCluster::start(spec).map_err(slurm_failed)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
        .map_err(|e| slurm_failed(format!("cannot install the signal handler: {e}")))?;
    println!("export SLURM_CONF={}", cluster.conf().display());
    eprintln!(
        "lepton-serve: {nodes} nodes x {cpus} CPUs under {}; Ctrl-C stops it and removes it",
        spec.scheduler.plugin()
    );
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(cluster);
    Ok(())
}

fn run_extender(listen: &str, policy: &str) -> Result<(), Failure> {
    let policy = NodePolicy::by_name(policy).map_err(input)?;
    let server = extender::Server::bind(listen, policy).map_err(input)?;
    eprintln!(
        "lepton-serve: Kubernetes scheduler extender on http://{} ({})",
        server.local_addr(),
        policy.name()
    );
    server.serve_forever();
    Ok(())
}

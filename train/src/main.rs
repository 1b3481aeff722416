//! `lepton-train`: trains a PPO scheduler (or a CartPole policy) from a config file.

use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;
use lepton_train::config::{self, ConfigError, TrainConfig};
use lepton_train::export::{self, ExportArgs};
use lepton_train::run::{Outcome, RETURN_WINDOW, RunOptions, TrainError};
use lepton_train::search::{self, SearchError};
use lepton_train::trainer;

/// The exit codes of `lepton_train::run` (`Outcome::exit_code`, `TrainError::exit_code`).
const EXIT_CODES: &str = "\
Exit codes:
  0    training finished, or stopped at --stop-at-step (resumable)
  1    runtime error (IO, env failure)
  2    bad command line or config, or a refused --resume (the message names the key)
  3    training diverged (non-finite loss); the last good checkpoint is kept and named
  130  interrupted by Ctrl-C, SIGTERM or SIGHUP after saving a resumable checkpoint at the
       end of the current iteration; a second signal aborts at once without saving

Outputs go to runs/<name>/: config.toml (the resolved config), TensorBoard event files,
evaluations.jsonl (one JSON line per periodic evaluation), checkpoints/ (step_*, best, final;
*.safetensors weights + *.json metadata), summary.json.";

/// Train a PPO, DQN (`algo = "dqn"`) or evolution-strategies (`algo = "es"`) policy with
/// invalid-action masking.
#[derive(Debug, Parser)]
#[command(version, after_help = EXIT_CODES, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Training config (TOML), e.g. configs/ppo_cloud.toml. With --resume, defaults to the
    /// run's own config.toml.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override a config key, e.g. --set ppo.lr=1e-4 (repeatable; applied in order).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Shorthand for --set train.seed=N.
    #[arg(long)]
    seed: Option<u64>,
    /// Shorthand for --set run.device=DEVICE (auto, cpu, cuda, cuda:N).
    #[arg(long)]
    device: Option<String>,
    /// Shorthand for --set train.total_steps=N.
    #[arg(long)]
    total_steps: Option<u64>,
    /// Run name: outputs go to <runs-dir>/<name> (default: <config stem>__<seed>__<unix time>).
    #[arg(long)]
    run_name: Option<String>,
    /// Where run directories are created.
    #[arg(long, default_value = "runs")]
    runs_dir: PathBuf,
    /// Continue the run in this directory from its newest checkpoint (e.g. runs/demo). With
    /// --total-steps, extend (or shorten) it: the schedules are re-derived for the new total.
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "run_name")]
    resume: Option<PathBuf>,
    /// Start a new run from this checkpoint's weights (a .json metadata file, or a run
    /// directory: its best, else final, else newest checkpoint). Shorthand for
    /// --set train.init_from=PATH.
    #[arg(long, value_name = "CHECKPOINT", conflicts_with = "resume")]
    init_from: Option<PathBuf>,
    /// With --init-from: also take the checkpoint's optimizer state (Adam's moments).
    #[arg(long, requires = "init_from")]
    init_optimizer: bool,
    /// Stop with a resumable checkpoint once this many env steps are done.
    #[arg(long)]
    stop_at_step: Option<u64>,
    /// No progress bar (log lines instead).
    #[arg(long)]
    no_progress: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Hyperparameter search (genetic algorithm or PBT) over many short training runs.
    Search(search::SearchArgs),
    /// Write a checkpoint as a TorchScript file whose greedy action is lepton's.
    Export(ExportArgs),
}

/// Makes glibc's malloc keep freed memory for reuse. libtorch allocates and frees every
/// intermediate tensor of every op; a minibatch's tensors of a few hundred KiB are above
/// glibc's mmap threshold, so by default each one is a fresh `mmap`, page faults on first
/// touch and an `munmap`. Serving them from the heap instead made CartPole PPO at large batch
/// 28% faster (BENCHMARKS.md "PPO at large batch"), at the cost of the process
/// keeping its peak heap. Other allocators (musl, macOS) are left alone.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before any thread starts.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}

fn main() -> ExitCode {
    keep_freed_memory();
    if std::env::args_os().len() == 1 {
        // No arguments: the usage, not an error about a missing --config.
        let _ = <Cli as clap::CommandFactory>::command().print_help();
        return ExitCode::from(2);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match &cli.command {
        Some(Command::Search(args)) => return run_search(args),
        Some(Command::Export(args)) => return run_export(args),
        None => {}
    }
    let (config, run_dir) = match resolve(&cli) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let interrupt = stop_on_signal("finishing this iteration, then saving a checkpoint");

    let options = RunOptions {
        run_dir: run_dir.clone(),
        resume: cli.resume.is_some(),
        stop_at_step: cli.stop_at_step,
        progress: !cli.no_progress,
        interrupt,
    };
    eprintln!("run directory: {}", run_dir.display());
    match trainer::run(&config, &options) {
        Ok(summary) => {
            let ret = summary
                .mean_return
                .map_or("-".to_string(), |r| format!("{r:.3}"));
            eprintln!(
                "{:?} at env step {} (mean return of the last {RETURN_WINDOW} episodes: {ret}); checkpoint {}",
                summary.outcome,
                summary.global_step,
                summary.last_checkpoint.display()
            );
            if summary.outcome == Outcome::Interrupted {
                eprintln!("resume with: lepton-train --resume {}", run_dir.display());
            }
            ExitCode::from(summary.outcome.exit_code())
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// The flag the first SIGINT, SIGTERM or SIGHUP raises (Ctrl-C, and what Slurm, Kubernetes,
/// systemd and `timeout` send): the run stops at its next safe point and saves. A second
/// signal ends the process at once with exit code 130, through `_exit`: `exit` would run
/// libtorch's static destructors while the training thread is still using libtorch (which
/// then panics).
fn stop_on_signal(what: &'static str) -> Arc<AtomicBool> {
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    if let Err(e) = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            eprintln!("\nsecond signal: aborting without saving");
            // SAFETY: `_exit` only ends the process; it touches no Rust state.
            #[allow(unsafe_code)]
            unsafe {
                libc::_exit(130)
            };
        }
        eprintln!("\nsignal received: {what} (send it again to abort at once)");
    }) {
        eprintln!("warning: cannot install the signal handler: {e}");
    }
    interrupt
}

/// Config file (or the run's own) → overrides → typed, validated config; and the run directory
/// (refused when it already holds a run and this is not a resume).
fn resolve(cli: &Cli) -> Result<(TrainConfig, PathBuf), TrainError> {
    let path = match (&cli.config, &cli.resume) {
        (Some(path), _) => path.clone(),
        (None, Some(run)) => run.join("config.toml"),
        (None, None) => {
            return Err(ConfigError::Override {
                arg: "--config".into(),
                reason: "a config file is required (e.g. --config configs/ppo_cartpole.toml)"
                    .into(),
            }
            .into());
        }
    };
    let mut table = config::read_table(&path)?;
    let mut overrides = cli.overrides.clone();
    if let Some(seed) = cli.seed {
        overrides.push(format!("train.seed={seed}"));
    }
    if let Some(device) = &cli.device {
        overrides.push(format!("run.device=\"{device}\""));
    }
    if let Some(steps) = cli.total_steps {
        overrides.push(format!("train.total_steps={steps}"));
    }
    if let Some(checkpoint) = &cli.init_from {
        let quoted = toml::Value::String(checkpoint.to_string_lossy().into_owned());
        overrides.push(format!("train.init_from={quoted}"));
    }
    if cli.init_optimizer {
        overrides.push("train.init_optimizer=true".into());
    }
    for arg in &overrides {
        config::apply_override(&mut table, arg)?;
    }
    // What is still relative came from the command line: relative to the working directory.
    let cwd = std::env::current_dir().map_err(|source| TrainError::Io {
        path: ".".into(),
        source,
    })?;
    config::absolute_paths(&mut table, &cwd);
    let config = TrainConfig::from_table(table, &path.display().to_string())
        .map_err(|e| e.blaming(&overrides))?;
    let run_dir = match (&cli.resume, &cli.run_name) {
        (Some(dir), _) => dir.clone(),
        (None, Some(name)) => cli.runs_dir.join(single_component(name)?),
        (None, None) => {
            let stem = path
                .file_stem()
                .map_or("run".into(), |s| s.to_string_lossy().to_string());
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            cli.runs_dir
                .join(format!("{stem}__{}__{now}", config.train.seed))
        }
    };
    if cli.resume.is_none() && run_dir.join("checkpoints").is_dir() {
        return Err(TrainError::RunExists(run_dir));
    }
    Ok((config, run_dir))
}

/// `name` if it is one plain path component, so that the run stays inside `--runs-dir`: not
/// empty, no separator, not `.` or `..`.
fn single_component(name: &str) -> Result<&str, TrainError> {
    let mut parts = Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(part)), None) if part == name && !name.contains('/') => Ok(name),
        _ => Err(TrainError::RunName(name.to_string())),
    }
}

/// `lepton-train export`: exit codes in `export::EXIT_CODES`.
fn run_export(args: &ExportArgs) -> ExitCode {
    match export::export(args) {
        Ok(done) => {
            eprintln!(
                "wrote {} from {}: greedy actions equal lepton's on {} probe observations",
                done.out.display(),
                done.checkpoint.display(),
                done.num_probes
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// `lepton-train search`: exit 0 when the search finished, 2 for a bad config or a refused
/// --resume, 130 when interrupted (resume with --resume), 1 otherwise.
fn run_search(args: &search::SearchArgs) -> ExitCode {
    let search = match search::resolve_args(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let interrupt = stop_on_signal("stopping the running trials");
    eprintln!(
        "search directory: {} ({} trials, {} at a time)",
        search.dir.display(),
        search.config.num_trials(),
        search.config.parallel_trials
    );
    match search::run(&search, args.resume, &interrupt) {
        Ok(summary) => {
            let best = search::leaderboard::ranked(&summary.records)
                .into_iter()
                .find(|r| r.fitness.is_some());
            match best {
                Some(b) => eprintln!(
                    "best: trial {} fitness {:.3} [{}] after {:.0} s; config {}",
                    b.trial,
                    b.fitness.unwrap_or(f64::NAN),
                    b.overrides.join(" "),
                    summary.wall_s,
                    summary.dir.join("best.toml").display()
                ),
                None => eprintln!(
                    "no trial finished; see {}",
                    summary.dir.join("leaderboard.csv").display()
                ),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            if interrupt.load(Ordering::SeqCst) {
                eprintln!(
                    "resume with: lepton-train search --config {} --out {} --resume",
                    args.config.display(),
                    search.dir.display()
                );
                return ExitCode::from(130);
            }
            ExitCode::from(match e {
                SearchError::Config(_) | SearchError::Invalid(_) => 2,
                SearchError::Other(_) => 1,
            })
        }
    }
}

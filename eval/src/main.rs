//! `lepton-eval`: scores checkpoints against the heuristic schedulers on an evaluation suite
//! and writes reports that can gate CI. See `lepton-eval --help`.

mod contenders;
mod plots;
mod report;
mod runner;
mod stats;
mod suite;

use anyhow::{Context, Result, bail};
use clap::Parser;
use contenders::Contender;
use indicatif::{ProgressBar, ProgressStyle};
use report::{MetricDef, Report};
use stats::BootstrapConfig;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const AFTER_HELP: &str = "\
Exit codes:
  0  evaluation done (and the gate, if any, passed)
  1  the gate failed: a candidate is worse than the --fail-if-worse-than baseline by more than --margin
  2  usage or input error (bad flags, unreadable or invalid suite, unknown scheduler, missing or corrupt
     checkpoint, checkpoint whose observation/action sizes do not fit a scenario): one message on stderr,
     and no report: report.md/report.json of an earlier run in --out are removed

Outputs in --out: report.md (CI job summary), report.json (exact configs, seeds, versions, checkpoint
hashes, per-episode metrics), <scenario>_metrics.svg and <scenario>_slowdown_cdf.svg. report.json is
written last: a directory without it holds no complete report. Same inputs give byte-identical reports,
whatever the thread count.

Example:
  lepton-eval --suite configs/eval/demo.toml --checkpoint runs/demo/checkpoints/best \\
      --fail-if-worse-than sjf --metric mean_slowdown --margin 0.05 --out runs/demo/eval";

/// Scores checkpoints and heuristic schedulers on an evaluation suite (held-out seeds, the
/// same workloads for every contender) and writes report.md, report.json and SVG plots.
#[derive(Debug, Parser)]
#[command(name = "lepton-eval", version, after_help = AFTER_HELP)]
struct Args {
    /// Suite file (configs/eval/<suite>.toml): scenarios, held-out seeds, episodes.
    #[arg(long)]
    suite: PathBuf,
    /// Trained checkpoint to score: a metadata .json, a checkpoints/ or run directory, or
    /// checkpoints/best (repeatable).
    #[arg(long)]
    checkpoint: Vec<PathBuf>,
    /// Heuristics to compare, comma-separated (default: the suite's list, else all).
    #[arg(long, value_delimiter = ',')]
    schedulers: Option<Vec<String>>,
    /// Episodes per scenario (default: the suite's); episode k uses seed first_seed + k.
    #[arg(long)]
    episodes: Option<usize>,
    /// Output directory.
    #[arg(long, default_value = "reports/eval")]
    out: PathBuf,
    /// Gate: exit 1 when a candidate is worse than this scheduler by more than --margin in any
    /// scenario. Candidates are the checkpoints, or --candidate.
    #[arg(long, value_name = "SCHEDULER")]
    fail_if_worse_than: Option<String>,
    /// The contender the gate checks instead of the checkpoints (e.g. a new heuristic).
    #[arg(long, requires = "fail_if_worse_than")]
    candidate: Option<String>,
    /// Metric of the gate, of the comparison with the best heuristic and of --compare.
    #[arg(long, default_value = "mean_slowdown")]
    metric: String,
    /// Relative tolerance of the gate and of --compare (0.05 = 5% worse still passes).
    #[arg(long, default_value_t = 0.05)]
    margin: f64,
    /// An older report.json: regressions beyond --margin are listed (they do not change the exit code).
    #[arg(long, value_name = "REPORT_JSON")]
    compare: Option<PathBuf>,
    /// Worker threads for episodes (default: all cores). Results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
}

/// The evaluation, resolved from the flags and the suite once, before anything runs.
struct Plan {
    suite: suite::Suite,
    suite_path: String,
    contenders: Vec<Contender>,
    episodes: usize,
    bootstrap: BootstrapConfig,
    metric: &'static MetricDef,
    gate: Option<(Vec<String>, String)>,
    compare: Option<(String, Report)>,
    out: PathBuf,
    margin: f64,
}

fn resolve(args: Args) -> Result<Plan> {
    let metric = report::metric(&args.metric).with_context(|| {
        format!(
            "unknown --metric `{}`; valid metrics: {}",
            args.metric,
            report::metric_keys()
        )
    })?;
    if !(args.margin.is_finite() && args.margin >= 0.0) {
        bail!("--margin must be a finite number >= 0, got {}", args.margin);
    }
    if args.episodes == Some(0) {
        bail!("--episodes must be at least 1");
    }
    let suite = suite::load(&args.suite)?;
    let episodes = args.episodes.unwrap_or(suite.episodes);
    let mut names: Vec<String> = match (&args.schedulers, &suite.schedulers) {
        (Some(list), _) | (None, Some(list)) => list.iter().map(|s| s.trim().to_string()).collect(),
        (None, None) => lepton_env::schedulers::NAMES
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    let checkpoint_names = contenders::checkpoint_names(&args.checkpoint);
    // The gate's baseline (and a heuristic candidate) always take part.
    for extra in [&args.fail_if_worse_than, &args.candidate]
        .into_iter()
        .flatten()
    {
        let is_checkpoint =
            checkpoint_names.contains(extra) || checkpoint_names.contains(&format!("ckpt:{extra}"));
        if !names.contains(extra) && !is_checkpoint {
            names.push(extra.clone());
        }
    }
    let mut contenders = Vec::new();
    for name in &names {
        let contender = Contender::heuristic(name)?;
        if contenders
            .iter()
            .any(|c: &Contender| c.name == contender.name)
        {
            bail!("scheduler `{name}` is listed twice");
        }
        contenders.push(contender);
    }
    for (path, name) in args.checkpoint.iter().zip(checkpoint_names) {
        let contender = Contender::checkpoint(path, name)?;
        for scenario in &suite.scenarios {
            contender.check_fits(&scenario.name, &scenario.scenario)?;
        }
        contenders.push(contender);
    }
    let gate = match &args.fail_if_worse_than {
        None => None,
        Some(baseline) => {
            let candidates: Vec<String> = match &args.candidate {
                Some(c) => vec![
                    contenders
                        .iter()
                        .find(|x| &x.name == c || x.name == format!("ckpt:{c}"))
                        .map_or(c.clone(), |x| x.name.clone()),
                ],
                None => contenders
                    .iter()
                    .filter(|c| c.is_learned())
                    .map(|c| c.name.clone())
                    .collect(),
            };
            if candidates.is_empty() {
                bail!(
                    "--fail-if-worse-than needs a candidate: pass --checkpoint, or --candidate <scheduler>"
                );
            }
            Some((candidates, baseline.clone()))
        }
    };
    let compare = match &args.compare {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --compare report {}", path.display()))?;
            let old: Report = serde_json::from_str(&text).with_context(|| {
                format!(
                    "--compare {} is not a lepton-eval report.json",
                    path.display()
                )
            })?;
            if old.format != report::FORMAT {
                bail!(
                    "--compare {}: report format `{}`, expected `{}`",
                    path.display(),
                    old.format,
                    report::FORMAT
                );
            }
            Some((path.to_string_lossy().into_owned(), old))
        }
    };
    Ok(Plan {
        bootstrap: BootstrapConfig {
            resamples: suite.bootstrap_resamples,
            confidence: 0.95,
            seed: suite.bootstrap_seed,
        },
        suite_path: args.suite.to_string_lossy().into_owned(),
        suite,
        contenders,
        episodes,
        metric,
        gate,
        compare,
        out: args.out,
        margin: args.margin,
    })
}

/// Files this tool writes into --out, report.json last.
const REPORT_FILES: [&str; 2] = ["report.md", "report.json"];

/// Writes every output into a staging directory inside `out`, then moves the files into
/// place with report.json last, so that a complete-looking report is a complete one.
fn write_outputs(plan: &Plan, report: &Report, outcomes: &runner::Outcomes) -> Result<()> {
    let out = &plan.out;
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create --out {}", out.display()))?;
    for name in REPORT_FILES.iter().rev() {
        let path = out.join(name);
        if path.exists() {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot replace {}", path.display()))?;
        }
    }
    let staging = out.join(format!(".lepton-eval-partial-{}", std::process::id()));
    std::fs::create_dir_all(&staging)
        .with_context(|| format!("cannot create {}", staging.display()))?;
    let mut plot_files = Vec::new();
    for (scenario, per_contender) in report.scenarios.iter().zip(outcomes) {
        let bars = plots::metric_bars(&staging, scenario)?;
        let cdf = plots::slowdown_cdf(&staging, scenario, per_contender)?;
        plot_files.push((scenario.name.clone(), vec![bars, cdf]));
    }
    let json = serde_json::to_string_pretty(report)? + "\n";
    std::fs::write(
        staging.join("report.md"),
        report::markdown(report, &plot_files),
    )?;
    std::fs::write(staging.join("report.json"), json)?;
    let mut names: Vec<String> = plot_files
        .into_iter()
        .flat_map(|(_, files)| files)
        .collect();
    names.extend(REPORT_FILES.iter().map(|s| s.to_string()));
    for name in names {
        std::fs::rename(staging.join(&name), out.join(&name))
            .with_context(|| format!("cannot move {name} into {}", out.display()))?;
    }
    std::fs::remove_dir(&staging)
        .with_context(|| format!("cannot remove {}", staging.display()))?;
    Ok(())
}

fn execute(plan: &Plan) -> Result<Report> {
    let progress = if std::io::stderr().is_terminal() {
        ProgressBar::new(0)
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} episodes {pos}/{len} [{bar:40}] {elapsed_precise} eta {eta}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    let outcomes = runner::run(
        &plan.suite.scenarios,
        &plan.contenders,
        plan.episodes,
        &progress,
    )?;
    progress.finish_and_clear();
    let mut report = report::build(
        &plan.suite,
        &plan.suite_path,
        &plan.contenders,
        plan.episodes,
        plan.bootstrap,
        &outcomes,
        plan.metric,
    );
    if let Some((candidates, baseline)) = &plan.gate {
        report.gate = Some(report::gate(
            &report,
            candidates,
            baseline,
            plan.metric,
            plan.margin,
        ));
    }
    if let Some((path, old)) = &plan.compare {
        report.comparison = Some(report::compare(&report, old, path, plan.margin));
    }
    write_outputs(plan, &report, &outcomes)?;
    Ok(report)
}

/// After a failed run, a report left in `out` by an earlier run would look like this run's:
/// remove it (report.json first, so a half-removed directory never looks complete).
fn remove_stale_report(out: &Path) {
    for name in REPORT_FILES.iter().rev() {
        let _ = std::fs::remove_file(out.join(name));
    }
}

fn print_summary(report: &Report, out: &Path) {
    print!("{}", report::terminal_table(report));
    if let Some(cmp) = &report.comparison {
        println!(
            "compared with {}: {} regression(s) beyond {:.1}% in {} means",
            cmp.against,
            cmp.regressions.len(),
            100.0 * cmp.margin,
            cmp.num_compared
        );
        for r in &cmp.regressions {
            println!(
                "  regression: {} / {} / {}: {} -> {}",
                r.scenario,
                r.contender,
                r.metric,
                report::fmt_num(r.old_mean),
                report::fmt_num(r.new_mean)
            );
        }
    }
    if let Some(gate) = &report.gate {
        for c in gate.checks.iter().filter(|c| !c.passed) {
            println!(
                "gate: {} on {}: {} {} vs {} {} (worse by {:.1}%, margin {:.1}%)",
                c.candidate,
                c.scenario,
                gate.metric,
                report::fmt_num(c.candidate_mean),
                gate.baseline,
                report::fmt_num(c.baseline_mean),
                100.0 * c.relative_worse,
                100.0 * gate.margin
            );
        }
        println!("gate {}", if gate.passed { "PASSED" } else { "FAILED" });
    }
    println!("report: {}", out.join("report.md").display());
}

fn main() -> ExitCode {
    let args = Args::parse();
    // One libtorch thread per worker: episodes are the parallel unit, and inference results
    // must not depend on libtorch's intra-op thread count.
    tch::set_num_threads(1);
    let threads = args.threads;
    let out = args.out.clone();
    let outcome = resolve(args).and_then(|plan| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.unwrap_or(0))
            .build()?;
        let report = pool.install(|| execute(&plan))?;
        Ok((plan, report))
    });
    match outcome {
        Ok((plan, report)) => {
            print_summary(&report, &plan.out);
            if report.gate.as_ref().is_some_and(|g| !g.passed) {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            remove_stale_report(&out);
            ExitCode::from(2)
        }
    }
}

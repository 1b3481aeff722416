//! `lepton-eval`: scores checkpoints against the heuristic schedulers on an evaluation suite
//! and writes reports that can gate CI. See `lepton-eval --help`.

mod contenders;
mod gantt;
mod held_out;
mod plots;
mod report;
mod runner;
use lepton_eval::stats;

use anyhow::{Context, Result, bail};
use clap::Parser;
use contenders::Contender;
use indicatif::{ProgressBar, ProgressStyle};
use lepton_env::cluster::Schedule;
use lepton_eval::suite;
use report::{GateRule, MetricDef, Report};
use stats::BootstrapConfig;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const AFTER_HELP: &str = "\
Comparisons are paired: every contender plays the same seeds, so each contender is compared with a
reference (--reference, default: the best heuristic on --metric) episode by episode: the relative
difference of the means with a paired 95% bootstrap CI, the episodes won, and a Wilcoxon signed-rank
p-value. The gate uses the same paired intervals.

Exit codes:
  0  evaluation done (and the gate, if any, passed)
  1  the gate failed: a candidate is worse than the --fail-if-worse-than baseline by more than --margin
     with 95% confidence (the whole paired CI lies beyond the margin), or is not better than the
     --require-better baseline with 95% confidence (the paired CI reaches 0), in some scenario
  2  usage or input error (bad flags, unreadable or invalid suite, unknown scheduler, missing or corrupt
     checkpoint, checkpoint whose observation/action sizes do not fit a scenario, a group glob that
     matches nothing): one message on stderr, and no report. report.md/report.json of an earlier run
     in --out are removed when a run starts, so no failure (even a crash or a kill) leaves them
     looking like its result

Outputs in --out: report.md (CI job summary), report.json (exact configs, seeds, versions, checkpoint
hashes, per-episode metrics, paired statistics), <scenario>_metrics.svg and <scenario>_slowdown_cdf.svg
(and <scenario>_energy_pareto.svg where contenders used energy),
report.junit.xml with --format junit, and gantt_<scenario>_<contender>.svg with --gantt. report.json
is written last: a directory without it holds no complete report. Same inputs give byte-identical reports, whatever the thread count.

Examples:
  lepton-eval --suite configs/eval/demo.toml --checkpoint runs/demo/checkpoints/best \\
      --fail-if-worse-than sjf --metric mean_slowdown --margin 0.05 --out runs/demo/eval
  lepton-eval --suite configs/eval/demo.toml --checkpoint 'ppo=runs/ppo_seed*' \\
      --require-better tetris --format junit --out reports/ppo";

/// Extra output formats (report.md, report.json and the plots are always written).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// report.junit.xml: one test case per gate check (scenario × candidate × rule).
    Junit,
}

/// Scores checkpoints and heuristic schedulers on an evaluation suite (held-out seeds, the
/// same workloads for every contender) and writes report.md, report.json and SVG plots.
#[derive(Debug, Parser)]
#[command(name = "lepton-eval", version, after_help = AFTER_HELP)]
struct Args {
    /// Suite file (configs/eval/<suite>.toml): scenarios, held-out seeds, episodes.
    #[arg(long)]
    suite: PathBuf,
    /// Trained checkpoint to score: a metadata .json, a checkpoints/ or run directory, or
    /// checkpoints/best (repeatable). `NAME=A,B,C` scores checkpoints of several training
    /// seeds as one contender NAME (every checkpoint plays every episode; its intervals
    /// resample training runs, then episodes); an item may be a glob (`ppo=runs/ppo_seed*`,
    /// quoted), expanded in sorted order.
    #[arg(long, value_name = "PATH|NAME=PATHS")]
    checkpoint: Vec<String>,
    /// Heuristics to compare, comma-separated (default: the suite's list, else all).
    #[arg(long, value_delimiter = ',', long_help = schedulers_help())]
    schedulers: Option<Vec<String>>,
    /// Episodes per scenario (default: the suite's); episode k uses seed first_seed + k.
    #[arg(long)]
    episodes: Option<usize>,
    /// Output directory.
    #[arg(long, default_value = "reports/eval")]
    out: PathBuf,
    /// The contender every other one is compared with, paired, in the reports' "vs" column
    /// (default: the best heuristic on --metric in each scenario).
    #[arg(long, value_name = "CONTENDER")]
    reference: Option<String>,
    /// Gate: exit 1 when a candidate is worse than this contender by more than --margin with
    /// 95% confidence (the whole paired CI beyond the margin) in any scenario. Candidates are
    /// the checkpoints, or --candidate.
    #[arg(long, value_name = "BASELINE")]
    fail_if_worse_than: Option<String>,
    /// Gate: exit 1 unless every candidate is better than this contender with 95% confidence
    /// (the whole paired CI on the better side of 0) in every scenario.
    #[arg(long, value_name = "BASELINE")]
    require_better: Option<String>,
    /// The contender the gate checks instead of the checkpoints (e.g. a new heuristic).
    #[arg(long)]
    candidate: Option<String>,
    /// Metric of the gate, of the paired comparisons, of the best heuristic and of --compare's
    /// summary [default: the suite's `metric`, else completion_slowdown].
    #[arg(long)]
    metric: Option<String>,
    /// Relative tolerance of --fail-if-worse-than and of --compare (0.05 = 5% worse still passes).
    #[arg(long, default_value_t = 0.05)]
    margin: f64,
    /// Extra outputs, comma-separated: `junit` writes report.junit.xml.
    #[arg(long, value_enum, value_delimiter = ',')]
    format: Vec<Format>,
    /// An older report.json: regressions beyond --margin are listed (they do not change the exit code).
    #[arg(long, value_name = "REPORT_JSON")]
    compare: Option<PathBuf>,
    /// Also score every checkpoint as `<name>@sampled`: actions sampled from its masked
    /// softmax (PPO's training-time behaviour) instead of the greedy arg-max, from a stream
    /// seeded by each episode's seed.
    #[arg(long)]
    sampled: bool,

    /// Also draw a Gantt chart of episode EPISODE (0-based, below the number of episodes) for
    /// every contender on every scenario, all on that episode's seed:
    /// gantt_<scenario>_<contender>.svg in --out, linked from report.md. Clusters: one lane
    /// per server (concurrent tasks stacked), simulated time across, bars coloured by
    /// priority, the wait before each run as a thin line, runs killed by a failure outlined
    /// in red with a cross, server down time in red. DeepRM: one lane per resource of the
    /// machine, one row per unit, each job's units as bars in its own colour, and a queue
    /// lane with each job's wait (arrival → start).
    #[arg(long, value_name = "EPISODE")]
    gantt: Option<usize>,

    /// Worker threads for episodes (default: all cores). Results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
}

/// The CI gate, resolved: the contenders it checks and each rule with its baseline.
struct Gate {
    candidates: Vec<String>,
    rules: Vec<(GateRule, String)>,
}

/// The evaluation, resolved from the flags and the suite once, before anything runs.
struct Plan {
    suite: suite::Suite,
    suite_path: String,
    contenders: Vec<Contender>,
    episodes: usize,
    bootstrap: BootstrapConfig,
    metric: &'static MetricDef,
    reference: Option<String>,
    gate: Option<Gate>,
    compare: Option<(String, Report)>,
    junit: bool,
    out: PathBuf,
    margin: f64,
    /// The episode index of `--gantt`.
    gantt: Option<usize>,
}

/// `--schedulers`' long help: the registry's list.
fn schedulers_help() -> String {
    format!(
        "Heuristics to compare, comma-separated (default: the suite's list, else all not \
         marked [by name only]). Known schedulers:\n{}",
        lepton_env::schedulers::help_list()
    )
}

/// The contender `name` refers to: its exact name, or `ckpt:<name>` for a checkpoint.
fn find_contender<'a>(contenders: &'a [Contender], name: &str) -> Option<&'a str> {
    // A heuristic also answers to its name with default parameters left out (`fastest` for
    // `fastest:sjf`, `reserve` for `reserve:sjf:last:30:0.05`).
    let full_name = lepton_env::schedulers::by_name(name).ok().map(|s| s.name());
    contenders
        .iter()
        .find(|c| c.name == name)
        .or_else(|| contenders.iter().find(|c| c.name == format!("ckpt:{name}")))
        .or_else(|| {
            contenders
                .iter()
                .find(|c| Some(&c.name) == full_name.as_ref())
        })
        .map(|c| c.name.as_str())
}

fn resolve(args: Args) -> Result<Plan> {
    if let Some(name) = &args.metric {
        report::metric(name).with_context(|| {
            format!(
                "unknown --metric `{name}`; valid metrics: {}",
                report::metric_keys()
            )
        })?;
    }
    if !(args.margin.is_finite() && args.margin >= 0.0) {
        bail!("--margin must be a finite number >= 0, got {}", args.margin);
    }
    if let Some(n) = args
        .episodes
        .filter(|n| !(1..=suite::MAX_EPISODES).contains(n))
    {
        bail!("--episodes must be in 1..={}, got {n}", suite::MAX_EPISODES);
    }
    if let Some(n) = args.threads.filter(|&n| n > MAX_THREADS) {
        bail!("--threads must be at most {MAX_THREADS} (0 or absent: one per core), got {n}");
    }
    if args.candidate.is_some()
        && args.fail_if_worse_than.is_none()
        && args.require_better.is_none()
    {
        bail!("--candidate needs a gate: --fail-if-worse-than or --require-better");
    }
    let suite = suite::load(&args.suite)?;
    let metric = match (&args.metric, &suite.metric) {
        (Some(name), _) => report::metric(name),
        (None, Some(name)) => Some(report::metric(name).with_context(|| {
            format!(
                "suite {}: unknown `metric` `{name}`; valid metrics: {}",
                args.suite.display(),
                report::metric_keys()
            )
        })?),
        (None, None) => report::metric(report::DEFAULT_METRIC),
    }
    .expect("checked above");
    let episodes = args.episodes.unwrap_or(suite.episodes);
    if let Some(k) = args.gantt
        && k >= episodes
    {
        bail!(
            "--gantt {k}: episodes are numbered from 0, and this run has {episodes} per scenario, so the index must be at most {}",
            episodes - 1
        );
    }
    let mut names: Vec<String> = match (&args.schedulers, &suite.schedulers) {
        (Some(list), _) | (None, Some(list)) => list.iter().map(|s| s.trim().to_string()).collect(),
        (None, None) => {
            // The whole-queue batch schedulers need a cluster env (commit disciplines).
            let clusters = suite
                .scenarios
                .iter()
                .all(|s| matches!(s.scenario, lepton_env::Scenario::Cluster(_)));
            let batch = clusters.then_some(lepton_env::schedulers::BATCH_NAMES);
            lepton_env::schedulers::NAMES
                .iter()
                .chain(batch.into_iter().flatten())
                .map(|s| s.to_string())
                .collect()
        }
    };
    let specs = args
        .checkpoint
        .iter()
        .map(|value| contenders::CheckpointSpec::parse(value))
        .collect::<Result<Vec<_>>>()?;
    let singles: Vec<PathBuf> = specs
        .iter()
        .filter_map(|spec| match spec {
            contenders::CheckpointSpec::Single(path) => Some(path.clone()),
            contenders::CheckpointSpec::Group { .. } => None,
        })
        .collect();
    let mut single_names = contenders::checkpoint_names(&singles).into_iter();
    let learned_names: Vec<String> = specs
        .iter()
        .map(|spec| match spec {
            contenders::CheckpointSpec::Single(_) => single_names.next().unwrap_or_default(),
            contenders::CheckpointSpec::Group { name, .. } => name.clone(),
        })
        .collect();
    // The gate's baselines, the reference (and a heuristic candidate) always take part.
    for extra in [
        &args.fail_if_worse_than,
        &args.require_better,
        &args.reference,
        &args.candidate,
    ]
    .into_iter()
    .flatten()
    {
        let is_learned =
            learned_names.contains(extra) || learned_names.contains(&format!("ckpt:{extra}"));
        if !names.contains(extra) && !is_learned {
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
    for (spec, name) in specs.iter().zip(learned_names) {
        if contenders.iter().any(|c| c.name == name) {
            bail!("--checkpoint: the name `{name}` is used twice");
        }
        let contender = match spec {
            contenders::CheckpointSpec::Single(path) => Contender::checkpoint(path, name)?,
            contenders::CheckpointSpec::Group { paths, .. } => {
                Contender::checkpoint_group(paths, name)?
            }
        };
        for scenario in &suite.scenarios {
            contender.check_fits(&scenario.name, &scenario.scenario)?;
        }
        let twin = args.sampled.then(|| contender.sampled_twin()).transpose()?;
        contenders.push(contender);
        contenders.extend(twin);
    }
    let resolve_name = |flag: &str, name: &String| -> Result<String> {
        find_contender(&contenders, name)
            .map(str::to_string)
            .with_context(|| format!("{flag} `{name}` is not a contender"))
    };
    let reference = args
        .reference
        .as_ref()
        .map(|r| resolve_name("--reference", r))
        .transpose()?;
    let mut rules = Vec::new();
    if let Some(baseline) = &args.fail_if_worse_than {
        rules.push((
            GateRule::NotWorse,
            resolve_name("--fail-if-worse-than", baseline)?,
        ));
    }
    if let Some(baseline) = &args.require_better {
        rules.push((
            GateRule::Better,
            resolve_name("--require-better", baseline)?,
        ));
    }
    let gate = if rules.is_empty() {
        None
    } else {
        let candidates: Vec<String> = match &args.candidate {
            Some(c) => vec![resolve_name("--candidate", c)?],
            None => contenders
                .iter()
                .filter(|c| c.is_learned())
                .map(|c| c.name.clone())
                .collect(),
        };
        if candidates.is_empty() {
            bail!("the gate needs a candidate: pass --checkpoint, or --candidate <scheduler>");
        }
        Some(Gate { candidates, rules })
    };
    let compare = match &args.compare {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --compare report {}", path.display()))?;
            let not_a_report = || {
                format!(
                    "--compare {} is not a lepton-eval report.json",
                    path.display()
                )
            };
            let mut value: serde_json::Value =
                serde_json::from_str(&text).with_context(not_a_report)?;
            let format = value["format"].as_str().unwrap_or_default().to_string();
            if !report::COMPATIBLE_FORMATS.contains(&format.as_str()) {
                bail!(
                    "--compare {}: report format `{format}`, expected `{}`",
                    path.display(),
                    report::FORMAT
                );
            }
            // Only the means are compared: the gate (whose layout changed between formats) and
            // the paired statistics (which may hold nulls for NaN) are not read.
            value["gate"] = serde_json::Value::Null;
            if let Some(scenarios) = value["scenarios"].as_array_mut() {
                for scenario in scenarios {
                    if let Some(fields) = scenario.as_object_mut() {
                        fields.remove("paired");
                    }
                }
            }
            let old: Report = serde_json::from_value(value).with_context(not_a_report)?;
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
        reference,
        gate,
        compare,
        junit: args.format.contains(&Format::Junit),
        out: args.out,
        margin: args.margin,
        gantt: args.gantt,
    })
}

/// `--gantt`'s schedules, `[scenario][contender]`: the episode index, its seed and the
/// schedule; every list empty without `--gantt`.
type Schedules = Vec<Vec<(usize, u64, Schedule)>>;

/// Replays `--gantt`'s episode of every scenario for every contender, recording schedules.
fn record_schedules(plan: &Plan) -> Result<Schedules> {
    use rayon::prelude::*;
    let Some(episode) = plan.gantt else {
        return Ok(vec![Vec::new(); plan.suite.scenarios.len()]);
    };
    plan.suite
        .scenarios
        .iter()
        .map(|scenario| {
            let seed = scenario.seeds(episode + 1)[episode];
            plan.contenders
                .par_iter()
                .map(|contender| {
                    let schedule = runner::record_schedule(scenario, contender, seed)?;
                    Ok((episode, seed, schedule))
                })
                .collect()
        })
        .collect()
}

/// More worker threads than any machine has cores (each holds a stack and an env).
const MAX_THREADS: usize = 1_024;

/// Files this tool writes into --out, report.json last.
const REPORT_FILES: [&str; 3] = ["report.junit.xml", "report.md", "report.json"];

/// Writes every output into a staging directory inside `out`, then moves the files into
/// place with report.json last, so that a complete-looking report is a complete one.
fn write_outputs(
    plan: &Plan,
    report: &Report,
    outcomes: &runner::Outcomes,
    schedules: &Schedules,
) -> Result<()> {
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
    for (s, (scenario, per_contender)) in report.scenarios.iter().zip(outcomes).enumerate() {
        let bars = plots::metric_bars(&staging, scenario)?;
        let cdf = plots::slowdown_cdf(&staging, scenario, per_contender)?;
        let mut files = vec![bars, cdf];
        files.extend(plots::energy_pareto(
            &staging,
            scenario,
            report::report_metric(report),
        )?);
        for (contender, (episode, seed, schedule)) in plan.contenders.iter().zip(&schedules[s]) {
            let label = gantt::EpisodeLabel {
                scenario: &scenario.name,
                contender: &contender.name,
                episode: *episode,
                seed: *seed,
            };
            files.push(gantt::draw(&staging, &label, schedule)?);
        }
        plot_files.push((scenario.name.clone(), files));
    }
    if let Some(axis) = &report.sweep {
        let def = report::report_metric(report);
        plot_files.push((
            String::new(),
            vec![plots::sweep(&staging, report, axis, def)?],
        ));
    }
    let json = serde_json::to_string_pretty(report)? + "\n";
    let warnings = held_out::warnings(&plan.suite);
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    std::fs::write(
        staging.join("report.md"),
        held_out::mark_report(report::markdown(report, &plot_files), &warnings),
    )?;
    std::fs::write(staging.join("report.json"), json)?;
    let mut names: Vec<String> = plot_files
        .into_iter()
        .flat_map(|(_, files)| files)
        .collect();
    if plan.junit {
        std::fs::write(staging.join("report.junit.xml"), report::junit(report))?;
    }
    names.extend(
        REPORT_FILES
            .iter()
            .filter(|name| plan.junit || **name != "report.junit.xml")
            .map(|s| s.to_string()),
    );
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
        plan.reference.as_deref(),
    );
    if let Some(gate) = &plan.gate {
        report.gate = Some(report::gate(
            &report,
            &gate.candidates,
            &gate.rules,
            plan.metric,
            plan.margin,
        ));
    }
    if let Some((path, old)) = &plan.compare {
        report.comparison = Some(report::compare(&report, old, path, plan.margin));
    }
    let schedules = record_schedules(plan)?;
    write_outputs(plan, &report, &outcomes, &schedules)?;
    Ok(report)
}

/// A report left in `out` by an earlier run would look like this run's if this one failed:
/// remove it first (report.json first, so a half-removed directory never looks complete).
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
        for c in &gate.checks {
            println!(
                "gate {}: {}",
                if c.passed { "pass" } else { "FAIL" },
                report::fmt_gate_check(c, gate)
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
    // Before anything can fail: however this run ends (an error, a panic, a kill), an earlier
    // run's report in --out must not pass for its result.
    remove_stale_report(&out);
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

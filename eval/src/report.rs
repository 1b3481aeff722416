//! The evaluation report: built from episode outcomes (pure), rendered as JSON, Markdown and
//! a terminal table, compared with an older report, and checked against a CI gate.
//!
//! Nothing in a report depends on the machine, the thread count or the clock, so the same
//! inputs give byte-identical `report.json` and `report.md`.

use crate::contenders::Contender;
use crate::runner::Outcomes;
use crate::stats::{self, BootstrapConfig, Estimate};
use crate::suite::Suite;
use lepton_env::EpisodeMetrics;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Identifies the report layout; bumped on incompatible changes.
pub const FORMAT: &str = "lepton-eval-report/1";

/// A metric reported per episode.
#[derive(Clone, Copy, Debug)]
pub struct MetricDef {
    /// The key in report.json and the value of `--metric`.
    pub key: &'static str,
    /// Column title.
    pub label: &'static str,
    pub higher_is_better: bool,
    pub extract: fn(&EpisodeMetrics) -> f64,
}

/// Every reported metric, in table order.
pub const METRICS: &[MetricDef] = &[
    MetricDef {
        key: "mean_slowdown",
        label: "slowdown",
        higher_is_better: false,
        extract: |m| m.mean_slowdown,
    },
    MetricDef {
        key: "mean_bounded_slowdown",
        label: "bounded slowdown",
        higher_is_better: false,
        extract: |m| m.mean_bounded_slowdown,
    },
    MetricDef {
        key: "mean_wait",
        label: "wait",
        higher_is_better: false,
        extract: |m| m.mean_wait,
    },
    MetricDef {
        key: "mean_completion_time",
        label: "completion time",
        higher_is_better: false,
        extract: |m| m.mean_completion_time,
    },
    MetricDef {
        key: "makespan",
        label: "makespan",
        higher_is_better: false,
        extract: |m| m.makespan,
    },
    MetricDef {
        key: "utilization",
        label: "utilization",
        higher_is_better: true,
        extract: mean_utilization,
    },
    MetricDef {
        key: "deadline_miss_rate",
        label: "deadline misses",
        higher_is_better: false,
        extract: |m| m.deadline_miss_rate,
    },
    MetricDef {
        key: "energy_kwh",
        label: "energy (kWh)",
        higher_is_better: false,
        extract: |m| m.energy_kwh,
    },
    MetricDef {
        key: "num_dropped",
        label: "dropped",
        higher_is_better: false,
        extract: |m| m.num_dropped as f64,
    },
    MetricDef {
        key: "num_unfinished",
        label: "unfinished",
        higher_is_better: false,
        extract: |m| m.num_unfinished as f64,
    },
];

fn mean_utilization(m: &EpisodeMetrics) -> f64 {
    if m.utilization.is_empty() {
        0.0
    } else {
        m.utilization.iter().sum::<f64>() / m.utilization.len() as f64
    }
}

/// The metric named `key`.
pub fn metric(key: &str) -> Option<&'static MetricDef> {
    METRICS.iter().find(|m| m.key == key)
}

pub fn metric_keys() -> String {
    METRICS.iter().map(|m| m.key).collect::<Vec<_>>().join(", ")
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Versions {
    /// The workspace version (lepton-eval, lepton-env and lepton-agent share it).
    pub lepton: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SuiteInfo {
    pub name: String,
    pub description: String,
    /// The suite path as given on the command line.
    pub path: String,
    pub toml: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpisodeRecord {
    pub seed: u64,
    pub metrics: EpisodeMetrics,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContenderResult {
    pub contender: String,
    /// Mean and bootstrap CI over episodes, per metric key.
    pub metrics: BTreeMap<String, Estimate>,
    pub episodes: Vec<EpisodeRecord>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Best {
    pub contender: String,
    pub metric: String,
    pub mean: f64,
}

/// A learned policy against the best heuristic: positive = the policy is better, as a
/// fraction of the heuristic's mean.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gain {
    pub contender: String,
    pub versus: String,
    pub metric: String,
    pub relative_gain: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioReport {
    pub name: String,
    pub path: String,
    pub config_toml: String,
    pub seeds: Vec<u64>,
    pub results: Vec<ContenderResult>,
    pub best_heuristic: Option<Best>,
    pub learned_gains: Vec<Gain>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateCheck {
    pub scenario: String,
    pub candidate: String,
    pub candidate_mean: f64,
    pub baseline_mean: f64,
    /// How much worse the candidate is, relative to the baseline (negative = better).
    pub relative_worse: f64,
    pub passed: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateReport {
    pub baseline: String,
    pub metric: String,
    pub margin: f64,
    pub passed: bool,
    pub checks: Vec<GateCheck>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Regression {
    pub scenario: String,
    pub contender: String,
    pub metric: String,
    pub old_mean: f64,
    pub new_mean: f64,
    pub relative_worse: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The old report's path as given on the command line.
    pub against: String,
    pub margin: f64,
    /// Number of (scenario, contender, metric) means present in both reports.
    pub num_compared: usize,
    pub regressions: Vec<Regression>,
}

/// Everything `report.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub format: String,
    pub versions: Versions,
    pub suite: SuiteInfo,
    pub episodes: usize,
    pub bootstrap: BootstrapConfig,
    pub contenders: Vec<Contender>,
    pub scenarios: Vec<ScenarioReport>,
    pub gate: Option<GateReport>,
    pub comparison: Option<Comparison>,
}

/// How much worse `candidate` is than `baseline`, relative to |baseline| (negative = better).
/// A zero baseline makes any worse candidate infinitely worse.
pub fn relative_worse(candidate: f64, baseline: f64, higher_is_better: bool) -> f64 {
    let worse_by = if higher_is_better {
        baseline - candidate
    } else {
        candidate - baseline
    };
    if worse_by == 0.0 {
        0.0
    } else if baseline == 0.0 {
        worse_by.signum() * f64::INFINITY
    } else {
        worse_by / baseline.abs()
    }
}

/// Builds the report from the outcomes (`[scenario][contender][episode]`).
pub fn build(
    suite: &Suite,
    suite_path: &str,
    contenders: &[Contender],
    episodes: usize,
    bootstrap: BootstrapConfig,
    outcomes: &Outcomes,
    gain_metric: &MetricDef,
) -> Report {
    let scenarios = suite
        .scenarios
        .iter()
        .zip(outcomes)
        .map(|(scenario, per_contender)| {
            let results: Vec<ContenderResult> = contenders
                .iter()
                .zip(per_contender)
                .map(|(contender, runs)| {
                    let metrics = METRICS
                        .iter()
                        .map(|def| {
                            let values: Vec<f64> =
                                runs.iter().map(|o| (def.extract)(&o.metrics)).collect();
                            // One RNG stream per (scenario, contender, metric), named rather than
                            // numbered so that an interval does not depend on the other contenders.
                            let stream =
                                stats::stream_id(&[&scenario.name, &contender.name, def.key]);
                            (
                                def.key.to_string(),
                                stats::bootstrap_mean(&values, &bootstrap, stream),
                            )
                        })
                        .collect();
                    let episodes = runs
                        .iter()
                        .map(|o| EpisodeRecord {
                            seed: o.seed,
                            metrics: o.metrics.clone(),
                        })
                        .collect();
                    ContenderResult {
                        contender: contender.name.clone(),
                        metrics,
                        episodes,
                    }
                })
                .collect();
            let mean_of = |r: &ContenderResult| r.metrics[gain_metric.key].mean;
            let best_heuristic = contenders
                .iter()
                .zip(&results)
                .filter(|(c, r)| !c.is_learned() && mean_of(r).is_finite())
                .fold(None::<&ContenderResult>, |best, (_, r)| match best {
                    Some(b)
                        if relative_worse(mean_of(r), mean_of(b), gain_metric.higher_is_better)
                            >= 0.0 =>
                    {
                        Some(b)
                    }
                    _ => Some(r),
                })
                .map(|r| Best {
                    contender: r.contender.clone(),
                    metric: gain_metric.key.into(),
                    mean: mean_of(r),
                });
            let learned_gains = match &best_heuristic {
                None => Vec::new(),
                Some(best) => contenders
                    .iter()
                    .zip(&results)
                    .filter(|(c, _)| c.is_learned())
                    .map(|(_, r)| Gain {
                        contender: r.contender.clone(),
                        versus: best.contender.clone(),
                        metric: gain_metric.key.into(),
                        relative_gain: -relative_worse(
                            mean_of(r),
                            best.mean,
                            gain_metric.higher_is_better,
                        ),
                    })
                    .collect(),
            };
            ScenarioReport {
                name: scenario.name.clone(),
                path: scenario.path.clone(),
                config_toml: scenario.toml.clone(),
                seeds: scenario.seeds(episodes),
                results,
                best_heuristic,
                learned_gains,
            }
        })
        .collect();
    Report {
        format: FORMAT.into(),
        versions: Versions {
            lepton: env!("CARGO_PKG_VERSION").into(),
        },
        suite: SuiteInfo {
            name: suite.name.clone(),
            description: suite.description.clone(),
            path: suite_path.into(),
            toml: suite.toml.clone(),
        },
        episodes,
        bootstrap,
        contenders: contenders.to_vec(),
        scenarios,
        gate: None,
        comparison: None,
    }
}

/// The CI gate: every `candidate` must be no worse than `baseline` by more than `margin` on
/// `metric`, in every scenario.
pub fn gate(
    report: &Report,
    candidates: &[String],
    baseline: &str,
    metric: &MetricDef,
    margin: f64,
) -> GateReport {
    let mut checks = Vec::new();
    for scenario in &report.scenarios {
        let mean = |name: &str| {
            scenario
                .results
                .iter()
                .find(|r| r.contender == name)
                .map(|r| r.metrics[metric.key].mean)
        };
        let Some(baseline_mean) = mean(baseline) else {
            continue;
        };
        for candidate in candidates {
            let Some(candidate_mean) = mean(candidate) else {
                continue;
            };
            let worse = relative_worse(candidate_mean, baseline_mean, metric.higher_is_better);
            // NaN (no finished task) never passes.
            let passed = worse <= margin;
            checks.push(GateCheck {
                scenario: scenario.name.clone(),
                candidate: candidate.clone(),
                candidate_mean,
                baseline_mean,
                relative_worse: worse,
                passed,
            });
        }
    }
    let passed = !checks.is_empty() && checks.iter().all(|c| c.passed);
    GateReport {
        baseline: baseline.into(),
        metric: metric.key.into(),
        margin,
        passed,
        checks,
    }
}

/// Means of `new` that are worse than in `old` by more than `margin` (same scenario,
/// contender and metric; entries in only one report are skipped).
pub fn compare(new: &Report, old: &Report, against: &str, margin: f64) -> Comparison {
    let mut regressions = Vec::new();
    let mut num_compared = 0;
    for scenario in &new.scenarios {
        let Some(old_scenario) = old.scenarios.iter().find(|s| s.name == scenario.name) else {
            continue;
        };
        for result in &scenario.results {
            let Some(old_result) = old_scenario
                .results
                .iter()
                .find(|r| r.contender == result.contender)
            else {
                continue;
            };
            for def in METRICS {
                let (Some(new_e), Some(old_e)) =
                    (result.metrics.get(def.key), old_result.metrics.get(def.key))
                else {
                    continue;
                };
                num_compared += 1;
                let worse = relative_worse(new_e.mean, old_e.mean, def.higher_is_better);
                if worse > margin {
                    regressions.push(Regression {
                        scenario: scenario.name.clone(),
                        contender: result.contender.clone(),
                        metric: def.key.into(),
                        old_mean: old_e.mean,
                        new_mean: new_e.mean,
                        relative_worse: worse,
                    });
                }
            }
        }
    }
    Comparison {
        against: against.into(),
        margin,
        num_compared,
        regressions,
    }
}

/// A number for tables: 4 significant digits, no exponent for ordinary magnitudes.
pub fn fmt_num(x: f64) -> String {
    if x.is_nan() {
        return "n/a".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "∞".into() } else { "-∞".into() };
    }
    let a = x.abs();
    if a != 0.0 && !(1e-3..1e6).contains(&a) {
        format!("{x:.3e}")
    } else if a >= 1000.0 || x.fract() == 0.0 {
        format!("{x:.0}")
    } else if a >= 100.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.3}")
    } else {
        format!("{x:.4}")
    }
}

fn fmt_pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:+.1}%", 100.0 * x)
    } else {
        fmt_num(x)
    }
}

fn fmt_estimate(e: &Estimate) -> String {
    if e.ci_low == e.ci_high || e.mean.is_nan() {
        fmt_num(e.mean)
    } else {
        format!(
            "{} [{}, {}]",
            fmt_num(e.mean),
            fmt_num(e.ci_low),
            fmt_num(e.ci_high)
        )
    }
}

/// The Markdown report (fit for a CI job summary). Plots are linked by relative file name.
pub fn markdown(report: &Report, plot_files: &[(String, Vec<String>)]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# lepton-eval: suite `{}`\n", report.suite.name);
    if !report.suite.description.is_empty() {
        let _ = writeln!(md, "{}\n", report.suite.description);
    }
    let _ = writeln!(
        md,
        "{} episodes per scenario and contender, identical seeds for every contender. Cells: mean \
         [{:.0}% bootstrap CI over episodes, {} resamples, seed {}]. Utilization is higher-is-better; \
         every other metric is lower-is-better. Times are in the scenario's unit (seconds; steps for DeepRM).\n",
        report.episodes,
        100.0 * report.bootstrap.confidence,
        report.bootstrap.resamples,
        report.bootstrap.seed
    );
    if let Some(gate) = &report.gate {
        let verdict = if gate.passed { "PASS" } else { "FAIL" };
        let _ = writeln!(
            md,
            "**Gate: {verdict}** — candidates must be no more than {:.1}% worse than `{}` on `{}`.\n",
            100.0 * gate.margin,
            gate.baseline,
            gate.metric
        );
        let _ = writeln!(
            md,
            "| scenario | candidate | candidate | `{}` | worse by | result |",
            gate.baseline
        );
        let _ = writeln!(md, "|---|---|---:|---:|---:|---|");
        for c in &gate.checks {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                c.scenario,
                c.candidate,
                fmt_num(c.candidate_mean),
                fmt_num(c.baseline_mean),
                fmt_pct(c.relative_worse),
                if c.passed { "pass" } else { "**FAIL**" }
            );
        }
        md.push('\n');
    }
    for scenario in &report.scenarios {
        let _ = writeln!(md, "## Scenario `{}` ({})\n", scenario.name, scenario.path);
        let first = scenario.seeds.first().copied().unwrap_or(0);
        let last = scenario.seeds.last().copied().unwrap_or(0);
        let _ = writeln!(md, "Seeds {first}..={last}.\n");
        md.push_str("| contender |");
        for def in METRICS {
            let _ = write!(md, " {} |", def.label);
        }
        md.push_str("\n|---|");
        for _ in METRICS {
            md.push_str("---:|");
        }
        md.push('\n');
        for result in &scenario.results {
            let _ = write!(md, "| {} |", result.contender);
            for def in METRICS {
                let _ = write!(md, " {} |", fmt_estimate(&result.metrics[def.key]));
            }
            md.push('\n');
        }
        md.push('\n');
        if let Some(best) = &scenario.best_heuristic {
            let _ = writeln!(
                md,
                "Best heuristic by `{}`: **{}** ({}).\n",
                best.metric,
                best.contender,
                fmt_num(best.mean)
            );
        }
        for gain in &scenario.learned_gains {
            let _ = writeln!(
                md,
                "Learned policy **{}** vs `{}` on `{}`: {} ({}).\n",
                gain.contender,
                gain.versus,
                gain.metric,
                fmt_pct(gain.relative_gain),
                if gain.relative_gain > 0.0 {
                    "better"
                } else {
                    "not better"
                }
            );
        }
        if let Some((_, files)) = plot_files.iter().find(|(name, _)| name == &scenario.name) {
            for file in files {
                let _ = writeln!(md, "![{file}]({file})");
            }
            md.push('\n');
        }
    }
    if let Some(cmp) = &report.comparison {
        let _ = writeln!(md, "## Compared with `{}`\n", cmp.against);
        if cmp.regressions.is_empty() {
            let _ = writeln!(
                md,
                "No regressions beyond {:.1}% in {} compared means.\n",
                100.0 * cmp.margin,
                cmp.num_compared
            );
        } else {
            let _ = writeln!(
                md,
                "{} regression(s) beyond {:.1}% in {} compared means:\n",
                cmp.regressions.len(),
                100.0 * cmp.margin,
                cmp.num_compared
            );
            let _ = writeln!(
                md,
                "| scenario | contender | metric | old | new | worse by |"
            );
            let _ = writeln!(md, "|---|---|---|---:|---:|---:|");
            for r in &cmp.regressions {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} |",
                    r.scenario,
                    r.contender,
                    r.metric,
                    fmt_num(r.old_mean),
                    fmt_num(r.new_mean),
                    fmt_pct(r.relative_worse)
                );
            }
            md.push('\n');
        }
    }
    let _ = writeln!(
        md,
        "<sub>lepton {} · exact configs, seeds and per-episode metrics in report.json</sub>",
        report.versions.lepton
    );
    md
}

/// The compact terminal table: slowdown with its CI, wait, utilization, dropped + unfinished.
pub fn terminal_table(report: &Report) -> String {
    let mut out = String::new();
    let width = report
        .scenarios
        .iter()
        .flat_map(|s| s.results.iter().map(|r| r.contender.len()))
        .max()
        .unwrap_or(8)
        .max(9);
    for scenario in &report.scenarios {
        let _ = writeln!(
            out,
            "scenario {} ({} episodes)",
            scenario.name,
            scenario.seeds.len()
        );
        let _ = writeln!(
            out,
            "  {:<width$}  {:>26}  {:>10}  {:>11}  {:>9}",
            "contender", "slowdown [95% CI]", "wait", "utilization", "lost"
        );
        for r in &scenario.results {
            let m = |k: &str| r.metrics[k].mean;
            let slowdown = &r.metrics["mean_slowdown"];
            let ci = format!(
                "{} [{}, {}]",
                fmt_num(slowdown.mean),
                fmt_num(slowdown.ci_low),
                fmt_num(slowdown.ci_high)
            );
            let marker = if scenario
                .best_heuristic
                .as_ref()
                .is_some_and(|b| b.contender == r.contender)
            {
                " *"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  {:<width$}  {:>26}  {:>10}  {:>11}  {:>9}{marker}",
                r.contender,
                ci,
                fmt_num(m("mean_wait")),
                fmt_num(m("utilization")),
                fmt_num(m("num_dropped") + m("num_unfinished")),
            );
        }
        for gain in &scenario.learned_gains {
            let _ = writeln!(
                out,
                "  {} vs best heuristic {} on {}: {}",
                gain.contender,
                gain.versus,
                gain.metric,
                fmt_pct(gain.relative_gain)
            );
        }
    }
    out.push_str("  (* best heuristic; lost = dropped + unfinished tasks per episode)\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_worse_respects_direction_and_zero_baselines() {
        assert!((relative_worse(1.1, 1.0, false) - 0.1).abs() < 1e-12);
        assert!((relative_worse(0.9, 1.0, true) - 0.1).abs() < 1e-12);
        assert!(relative_worse(0.9, 1.0, false) < 0.0);
        assert_eq!(relative_worse(0.0, 0.0, false), 0.0);
        assert_eq!(relative_worse(1.0, 0.0, false), f64::INFINITY);
        assert_eq!(relative_worse(-1.0, 0.0, false), f64::NEG_INFINITY);
    }

    #[test]
    fn numbers_format_compactly() {
        assert_eq!(fmt_num(2.0), "2");
        assert_eq!(fmt_num(1.23456), "1.235");
        assert_eq!(fmt_num(123.456), "123.5");
        assert_eq!(fmt_num(12345.6), "12346");
        assert_eq!(fmt_num(0.012345), "0.0123");
        assert_eq!(fmt_num(f64::NAN), "n/a");
        assert_eq!(fmt_pct(0.1234), "+12.3%");
    }
}

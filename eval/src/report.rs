//! The evaluation report: built from episode outcomes (pure), rendered as JSON, Markdown,
//! JUnit XML and a terminal table, compared with an older report, and checked against a CI
//! gate that uses paired statistics (every contender plays the same seeds, so the difference
//! on each episode is what a comparison should rest on).
//!
//! Nothing in a report depends on the machine, the thread count or the clock, so the same
//! inputs give byte-identical `report.json` and `report.md`.

use crate::contenders::{Contender, ContenderKind};
use crate::runner::{EpisodeOutcome, Outcomes};
use crate::stats::{self, BootstrapConfig, Estimate, Paired};
use crate::suite::Suite;
use lepton_env::EpisodeMetrics;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Identifies the report layout; bumped on incompatible changes.
pub const FORMAT: &str = "lepton-eval-report/2";

/// Older layouts `--compare` still reads (it needs only the per-contender means).
pub const COMPATIBLE_FORMATS: &[&str] = &["lepton-eval-report/1", FORMAT];

/// The metric of the gate, of the paired "vs" column and of the best heuristic when `--metric`
/// is not given: the completion-aware slowdown, which a policy cannot improve by leaving work
/// unfinished or dropping it (the finished-only `mean_slowdown` can be gamed that way).
pub const DEFAULT_METRIC: &str = "completion_slowdown";

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

impl MetricDef {
    /// `"higher"` or `"lower"`: which way is better, for "(… is better)" in reports and plots.
    pub fn better(&self) -> &'static str {
        if self.higher_is_better {
            "higher"
        } else {
            "lower"
        }
    }
}

/// Every reported metric, in table order.
pub const METRICS: &[MetricDef] = &[
    MetricDef {
        key: "completion_slowdown",
        label: "slowdown",
        higher_is_better: false,
        extract: |m| m.completion_slowdown,
    },
    MetricDef {
        key: "mean_slowdown",
        label: "finished-only slowdown",
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
    /// Mean and bootstrap CI over episodes, per metric key (for a checkpoint group: over
    /// training runs and episodes, a two-level bootstrap).
    pub metrics: BTreeMap<String, Estimate>,
    /// Per-episode metrics (empty for a checkpoint group, whose members hold them).
    pub episodes: Vec<EpisodeRecord>,
    /// A checkpoint group's per-member, per-episode metrics, members in command-line order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberResult>,
}

/// One training run of a checkpoint group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberResult {
    /// The checkpoint path as given (or as a glob expanded it).
    pub checkpoint: String,
    pub episodes: Vec<EpisodeRecord>,
}

impl ContenderResult {
    /// The `training runs × episodes` values of `def` (one row unless a checkpoint group).
    pub fn values(&self, def: &MetricDef) -> Vec<Vec<f64>> {
        let row = |episodes: &[EpisodeRecord]| -> Vec<f64> {
            episodes.iter().map(|e| (def.extract)(&e.metrics)).collect()
        };
        if self.members.is_empty() {
            vec![row(&self.episodes)]
        } else {
            self.members.iter().map(|m| row(&m.episodes)).collect()
        }
    }
}

/// A contender against the scenario's reference on the same episodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairedResult {
    pub contender: String,
    pub reference: String,
    pub metric: String,
    #[serde(flatten)]
    pub stats: Paired,
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
    /// The contender every other one is compared with (paired, on the report's metric):
    /// `--reference`, else the best heuristic.
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default)]
    pub paired: Vec<PairedResult>,
    /// The scenario's point on the suite's sweep axis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<f64>,
    /// The contenders on the energy–metric Pareto front ([`energy_front`]), in report order;
    /// empty when no contender used energy (no power model).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub energy_front: Vec<String>,
}

/// A gate rule: the candidate must not be worse than the baseline by more than the margin
/// with 95% confidence, or must be better with 95% confidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateRule {
    /// `--fail-if-worse-than`: fails when the whole paired interval of how much worse the
    /// candidate is lies beyond the margin.
    NotWorse,
    /// `--require-better`: fails unless the whole paired interval lies on the better side of 0.
    Better,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateCheck {
    pub rule: GateRule,
    pub scenario: String,
    pub candidate: String,
    pub baseline: String,
    pub candidate_mean: f64,
    pub baseline_mean: f64,
    /// How much worse the candidate is, relative to the baseline's mean (negative = better),
    /// and the paired bootstrap interval of it.
    pub relative_worse: f64,
    pub worse_ci_low: f64,
    pub worse_ci_high: f64,
    /// Episodes the candidate won against the baseline, of `num_episodes`.
    pub wins: usize,
    pub num_episodes: usize,
    /// Wilcoxon signed-rank p-value (two-sided).
    pub p_value: f64,
    pub passed: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateReport {
    pub metric: String,
    pub margin: f64,
    /// Confidence of the paired intervals the rules use.
    pub confidence: f64,
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
    /// The metric of the paired comparisons, the best heuristic and the gate (`--metric`).
    #[serde(default)]
    pub metric: String,
    pub contenders: Vec<Contender>,
    /// The sweep's axis label when the suite's scenarios are points of a sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<String>,
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

/// How much better a candidate is (positive) as a fraction of the reference, from a signed
/// relative difference (candidate − reference) / |reference|.
fn improvement(relative_diff: f64, higher_is_better: bool) -> f64 {
    if higher_is_better {
        relative_diff
    } else {
        -relative_diff
    }
}

/// The paired comparison of `candidate` with `reference` on `def`, from the per-episode values
/// in the report. The RNG stream is named by scenario, both contenders and the metric, so the
/// same pair gives the same interval in the table and in the gate.
pub fn paired_stats(
    scenario: &str,
    candidate: &ContenderResult,
    reference: &ContenderResult,
    def: &MetricDef,
    bootstrap: &BootstrapConfig,
) -> Paired {
    let stream = stats::stream_id(&[
        scenario,
        &candidate.contender,
        &reference.contender,
        def.key,
        "paired",
    ]);
    stats::paired(
        &candidate.values(def),
        &reference.values(def),
        def.higher_is_better,
        bootstrap,
        stream,
    )
}

fn episode_records(runs: &[EpisodeOutcome]) -> Vec<EpisodeRecord> {
    runs.iter()
        .map(|o| EpisodeRecord {
            seed: o.seed,
            metrics: o.metrics.clone(),
        })
        .collect()
}

/// Builds the report from the outcomes (`[scenario][contender][training run][episode]`).
/// `metric` picks the best heuristic and is the metric of the paired comparisons with
/// `reference` (default: the best heuristic of each scenario).
#[allow(clippy::too_many_arguments)]
pub fn build(
    suite: &Suite,
    suite_path: &str,
    contenders: &[Contender],
    episodes: usize,
    bootstrap: BootstrapConfig,
    outcomes: &Outcomes,
    metric: &MetricDef,
    reference: Option<&str>,
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
                    let mut result = ContenderResult {
                        contender: contender.name.clone(),
                        metrics: BTreeMap::new(),
                        episodes: Vec::new(),
                        members: Vec::new(),
                    };
                    if let ContenderKind::CheckpointGroup { members } = &contender.kind {
                        result.members = members
                            .iter()
                            .zip(runs)
                            .map(|(info, episodes)| MemberResult {
                                checkpoint: info.path.clone(),
                                episodes: episode_records(episodes),
                            })
                            .collect();
                    } else if let Some(only) = runs.first() {
                        result.episodes = episode_records(only);
                    }
                    result.metrics = METRICS
                        .iter()
                        .map(|def| {
                            // One RNG stream per (scenario, contender, metric), named rather than
                            // numbered so that an interval does not depend on the other contenders.
                            let stream =
                                stats::stream_id(&[&scenario.name, &contender.name, def.key]);
                            (
                                def.key.to_string(),
                                stats::bootstrap_runs_mean(&result.values(def), &bootstrap, stream),
                            )
                        })
                        .collect();
                    result
                })
                .collect();
            let mean_of = |r: &ContenderResult| r.metrics[metric.key].mean;
            let best_heuristic = contenders
                .iter()
                .zip(&results)
                .filter(|(c, r)| !c.is_learned() && mean_of(r).is_finite())
                .fold(None::<&ContenderResult>, |best, (_, r)| match best {
                    Some(b)
                        if relative_worse(mean_of(r), mean_of(b), metric.higher_is_better)
                            >= 0.0 =>
                    {
                        Some(b)
                    }
                    _ => Some(r),
                })
                .map(|r| Best {
                    contender: r.contender.clone(),
                    metric: metric.key.into(),
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
                        metric: metric.key.into(),
                        relative_gain: -relative_worse(
                            mean_of(r),
                            best.mean,
                            metric.higher_is_better,
                        ),
                    })
                    .collect(),
            };
            let reference = reference
                .map(str::to_string)
                .or_else(|| best_heuristic.as_ref().map(|b| b.contender.clone()));
            let reference_result = reference
                .as_ref()
                .and_then(|name| results.iter().find(|r| &r.contender == name));
            let paired = match reference_result {
                None => Vec::new(),
                Some(base) => results
                    .iter()
                    .filter(|r| r.contender != base.contender)
                    .map(|r| PairedResult {
                        contender: r.contender.clone(),
                        reference: base.contender.clone(),
                        metric: metric.key.into(),
                        stats: paired_stats(&scenario.name, r, base, metric, &bootstrap),
                    })
                    .collect(),
            };
            let reference_name = reference_result.map(|r| r.contender.clone());
            let energy_front = energy_front(&results, metric);
            ScenarioReport {
                name: scenario.name.clone(),
                path: scenario.path.clone(),
                config_toml: scenario.toml.clone(),
                seeds: scenario.seeds(episodes),
                results,
                best_heuristic,
                learned_gains,
                reference: reference_name,
                paired,
                x: scenario.x,
                energy_front,
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
        metric: metric.key.into(),
        contenders: contenders.to_vec(),
        sweep: suite.sweep.clone(),
        scenarios,
        gate: None,
        comparison: None,
    }
}

/// Whether a gate check passes, from the paired interval of how much worse the candidate is
/// (relative to the baseline; negative = better). A NaN interval never passes.
pub fn gate_passes(rule: GateRule, worse_ci_low: f64, worse_ci_high: f64, margin: f64) -> bool {
    match rule {
        // Fail only when the candidate is worse beyond the margin with 95% confidence:
        // the whole interval lies above the margin.
        GateRule::NotWorse => worse_ci_low <= margin,
        // Pass only when the candidate is better with 95% confidence.
        GateRule::Better => worse_ci_high < 0.0,
    }
}

/// The CI gate: for each rule `(rule, baseline)`, every candidate in every scenario, on the
/// paired interval of `metric` (see [`gate_passes`]). A scenario without the candidate or the
/// baseline is skipped; a gate with no check fails.
pub fn gate(
    report: &Report,
    candidates: &[String],
    rules: &[(GateRule, String)],
    metric: &MetricDef,
    margin: f64,
) -> GateReport {
    let mut checks = Vec::new();
    for (rule, baseline) in rules {
        for scenario in &report.scenarios {
            let find = |name: &str| scenario.results.iter().find(|r| r.contender == name);
            let Some(base) = find(baseline) else {
                continue;
            };
            for candidate in candidates {
                let Some(cand) = find(candidate) else {
                    continue;
                };
                let p = paired_stats(&scenario.name, cand, base, metric, &report.bootstrap);
                let worse = -improvement(p.relative_diff, metric.higher_is_better);
                let (low, high) = if metric.higher_is_better {
                    (-p.ci_high, -p.ci_low)
                } else {
                    (p.ci_low, p.ci_high)
                };
                checks.push(GateCheck {
                    rule: *rule,
                    scenario: scenario.name.clone(),
                    candidate: candidate.clone(),
                    baseline: baseline.clone(),
                    candidate_mean: p.candidate_mean,
                    baseline_mean: p.reference_mean,
                    relative_worse: worse,
                    worse_ci_low: low,
                    worse_ci_high: high,
                    wins: p.wins,
                    num_episodes: p.n,
                    p_value: p.signed_rank.p_value,
                    passed: gate_passes(*rule, low, high, margin),
                });
            }
        }
    }
    let passed = !checks.is_empty() && checks.iter().all(|c| c.passed);
    GateReport {
        metric: metric.key.into(),
        margin,
        confidence: report.bootstrap.confidence,
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

/// "12.0% better" / "41.3% worse" for an improvement fraction (positive = better); never a
/// bare signed percentage, which readers take either way.
pub fn fmt_better(improvement: f64) -> String {
    if improvement.is_nan() {
        return "n/a".into();
    }
    let size = if improvement.is_infinite() {
        "∞".to_string()
    } else {
        format!("{:.1}%", 100.0 * improvement.abs())
    };
    if improvement == 0.0 {
        "no different".into()
    } else if improvement > 0.0 {
        format!("{size} better")
    } else {
        format!("{size} worse")
    }
}

/// `fmt_better` of "how much worse" fractions (positive = worse), as the gate states them.
fn fmt_worse(relative_worse: f64) -> String {
    fmt_better(-relative_worse)
}

fn fmt_p(p: f64) -> String {
    if p.is_nan() {
        "p n/a".into()
    } else if p < 0.001 {
        "p<0.001".into()
    } else {
        format!("p={p:.3}")
    }
}

/// A paired comparison in words: "12.3% better [15.1% better, 9.4% better] (wins 171/200,
/// p<0.001)". The interval runs from its better end to its worse end, as the gate's does (for
/// a lower-is-better metric that is the numeric order of the relative difference).
pub fn fmt_paired(p: &Paired, higher_is_better: bool) -> String {
    let (better_end, worse_end) = if higher_is_better {
        (p.ci_high, p.ci_low)
    } else {
        (-p.ci_low, -p.ci_high)
    };
    let point = fmt_better(improvement(p.relative_diff, higher_is_better));
    let interval = if p.ci_low == p.ci_high {
        String::new()
    } else {
        format!(" [{}, {}]", fmt_better(better_end), fmt_better(worse_end))
    };
    format!(
        "{point}{interval} (wins {}/{}, {})",
        p.wins,
        p.n,
        fmt_p(p.signed_rank.p_value)
    )
}

/// One gate check in words, for the console, the Markdown table and JUnit messages.
pub fn fmt_gate_check(c: &GateCheck, gate: &GateReport) -> String {
    let interval = format!(
        "{:.0}% CI [{}, {}]",
        100.0 * gate.confidence,
        fmt_worse(c.worse_ci_low),
        fmt_worse(c.worse_ci_high)
    );
    let verdict = match (c.rule, c.passed) {
        (GateRule::NotWorse, true) => format!(
            "not shown worse than {} by more than {:.1}%",
            c.baseline,
            100.0 * gate.margin
        ),
        (GateRule::NotWorse, false) => format!(
            "worse than {} by more than {:.1}% with {:.0}% confidence",
            c.baseline,
            100.0 * gate.margin,
            100.0 * gate.confidence
        ),
        (GateRule::Better, true) => format!(
            "better than {} with {:.0}% confidence",
            c.baseline,
            100.0 * gate.confidence
        ),
        (GateRule::Better, false) => format!(
            "not shown better than {} with {:.0}% confidence",
            c.baseline,
            100.0 * gate.confidence
        ),
    };
    format!(
        "{} on {}: {} {} vs {} {}: {} than {}, {interval}, wins {}/{}, {}: {verdict}",
        c.candidate,
        c.scenario,
        gate.metric,
        fmt_num(c.candidate_mean),
        c.baseline,
        fmt_num(c.baseline_mean),
        fmt_worse(c.relative_worse),
        c.baseline,
        c.wins,
        c.num_episodes,
        fmt_p(c.p_value)
    )
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

/// The contenders no other beats on both energy and the metric: none uses at most as much
/// energy (mean kWh) and scores at least as well (mean of `def`), one of the two strictly.
/// Empty when every contender's mean energy is zero (no power model): there is no trade-off.
pub fn energy_front(results: &[ContenderResult], def: &MetricDef) -> Vec<String> {
    let points: Vec<(f64, f64)> = results
        .iter()
        .map(|r| {
            let score = r.metrics[def.key].mean;
            let cost = if def.higher_is_better { -score } else { score };
            (r.metrics["energy_kwh"].mean, cost)
        })
        .collect();
    if points.iter().all(|(kwh, _)| *kwh == 0.0) {
        return Vec::new();
    }
    pareto_front(&points)
        .into_iter()
        .zip(results)
        .filter(|(on_front, _)| *on_front)
        .map(|(_, r)| r.contender.clone())
        .collect()
}

/// Which points `(a, b)` no other point dominates when both coordinates are costs (lower is
/// better). A point with a non-finite coordinate is never on the front and dominates nothing.
pub fn pareto_front(points: &[(f64, f64)]) -> Vec<bool> {
    let finite = |(a, b): (f64, f64)| a.is_finite() && b.is_finite();
    let dominates =
        |p: (f64, f64), q: (f64, f64)| p.0 <= q.0 && p.1 <= q.1 && (p.0 < q.0 || p.1 < q.1);
    points
        .iter()
        .map(|&q| finite(q) && !points.iter().any(|&p| finite(p) && dominates(p, q)))
        .collect()
}

/// The metric definition of a report's comparison metric (today's default for old reports).
pub fn report_metric(report: &Report) -> &'static MetricDef {
    metric(&report.metric)
        .or_else(|| metric(DEFAULT_METRIC))
        .expect("the default metric exists")
}

/// The name a table shows for a contender: a checkpoint group says how many runs it holds.
fn display_name(result: &ContenderResult) -> String {
    if result.members.is_empty() {
        result.contender.clone()
    } else {
        let n = result.members.len();
        format!(
            "{} ({n} run{})",
            result.contender,
            if n == 1 { "" } else { "s" }
        )
    }
}

/// The paired cell of `result` in its scenario: the comparison in words, "reference" for the
/// reference itself, empty without one.
fn paired_cell(scenario: &ScenarioReport, result: &ContenderResult, def: &MetricDef) -> String {
    if scenario.reference.as_deref() == Some(result.contender.as_str()) {
        return "reference".into();
    }
    scenario
        .paired
        .iter()
        .find(|p| p.contender == result.contender)
        .map(|p| fmt_paired(&p.stats, def.higher_is_better))
        .unwrap_or_default()
}

/// A sweep's summary: one row per point, each contender's mean of the report's metric, and
/// each contender against the point's reference (paired), so a reader sees at which points a
/// policy holds its ground.
fn sweep_table(md: &mut String, report: &Report, axis: &str, def: &MetricDef) {
    let names: Vec<&str> = report.contenders.iter().map(|c| c.name.as_str()).collect();
    let _ = writeln!(md, "## Sweep over {axis}\n");
    let _ = writeln!(
        md,
        "Mean `{}` per point; **vs** columns: each learned policy paired against the point's \
         reference (the best heuristic there unless `--reference` names one).\n",
        def.key
    );
    let mut header = format!("| {axis} | scenario | reference |");
    let mut rule = String::from("|---:|---|---|");
    for name in &names {
        let _ = write!(header, " {name} |");
        rule.push_str("---:|");
    }
    let learned: Vec<bool> = report.contenders.iter().map(|c| c.is_learned()).collect();
    for (name, _) in names.iter().zip(&learned).filter(|(_, l)| **l) {
        let _ = write!(header, " {name} vs reference |");
        rule.push_str("---|");
    }
    let _ = writeln!(md, "{header}\n{rule}");
    for scenario in &report.scenarios {
        let mut row = format!(
            "| {} | {} | {} |",
            scenario.x.map_or_else(String::new, |x| x.to_string()),
            scenario.name,
            scenario.reference.as_deref().unwrap_or("")
        );
        for result in &scenario.results {
            let _ = write!(row, " {} |", fmt_num(result.metrics[def.key].mean));
        }
        for (result, _) in scenario.results.iter().zip(&learned).filter(|(_, l)| **l) {
            let _ = write!(row, " {} |", paired_cell(scenario, result, def));
        }
        let _ = writeln!(md, "{row}");
    }
    let _ = writeln!(md, "\n![sweep](sweep.svg)\n");
}

/// The Markdown report (fit for a CI job summary). Plots are linked by relative file name.
pub fn markdown(report: &Report, plot_files: &[(String, Vec<String>)]) -> String {
    let compared = report_metric(report);
    let direction = compared.better();
    let mut md = String::new();
    let _ = writeln!(md, "# lepton-eval: suite `{}`\n", report.suite.name);
    if !report.suite.description.is_empty() {
        let _ = writeln!(md, "{}\n", report.suite.description);
    }
    let _ = writeln!(
        md,
        "{} episodes per scenario and contender, identical seeds for every contender. Cells: mean \
         [{:.0}% bootstrap CI over episodes, {} resamples, seed {}]; a checkpoint group's interval \
         resamples its training runs, then episodes. Utilization is higher-is-better; every other \
         metric is lower-is-better. Times are in the scenario's unit (seconds; steps for DeepRM).\n",
        report.episodes,
        100.0 * report.bootstrap.confidence,
        report.bootstrap.resamples,
        report.bootstrap.seed
    );
    let _ = writeln!(
        md,
        "The **vs** column compares each contender with the scenario's reference on `{}` ({direction} \
         is better), episode by episode on the same seeds: the difference of the means relative to \
         the reference, its paired {:.0}% bootstrap CI, the episodes won, and the two-sided Wilcoxon \
         signed-rank p-value.\n",
        compared.key,
        100.0 * report.bootstrap.confidence,
    );
    if let Some(gate) = &report.gate {
        let verdict = if gate.passed { "PASS" } else { "FAIL" };
        let _ = writeln!(
            md,
            "**Gate: {verdict}** on `{}`, paired {:.0}% CIs: a candidate fails `not worse` when it is \
             worse than the baseline by more than {:.1}% with {:.0}% confidence, and `better` unless \
             it is better with {:.0}% confidence.\n",
            gate.metric,
            100.0 * gate.confidence,
            100.0 * gate.margin,
            100.0 * gate.confidence,
            100.0 * gate.confidence
        );
        let _ = writeln!(
            md,
            "| scenario | candidate | rule | baseline | candidate mean | baseline mean | difference [{:.0}% CI] | wins | p | result |",
            100.0 * gate.confidence
        );
        let _ = writeln!(md, "|---|---|---|---|---:|---:|---|---:|---:|---|");
        for c in &gate.checks {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} [{}, {}] | {}/{} | {} | {} |",
                c.scenario,
                c.candidate,
                match c.rule {
                    GateRule::NotWorse => "not worse",
                    GateRule::Better => "better",
                },
                c.baseline,
                fmt_num(c.candidate_mean),
                fmt_num(c.baseline_mean),
                fmt_worse(c.relative_worse),
                fmt_worse(c.worse_ci_low),
                fmt_worse(c.worse_ci_high),
                c.wins,
                c.num_episodes,
                fmt_p(c.p_value).trim_start_matches("p="),
                if c.passed { "pass" } else { "**FAIL**" }
            );
        }
        md.push('\n');
    }
    if let Some(axis) = &report.sweep {
        sweep_table(&mut md, report, axis, compared);
    }
    for scenario in &report.scenarios {
        let _ = writeln!(md, "## Scenario `{}` ({})\n", scenario.name, scenario.path);
        let first = scenario.seeds.first().copied().unwrap_or(0);
        let last = scenario.seeds.last().copied().unwrap_or(0);
        let _ = writeln!(md, "Seeds {first}..={last}.\n");
        // The paired column comes first: it is the comparison the report is for.
        md.push_str("| contender |");
        if let Some(reference) = &scenario.reference {
            let _ = write!(md, " vs {reference} ({}) |", compared.label);
        }
        for def in METRICS {
            let _ = write!(md, " {} |", def.label);
        }
        md.push_str("\n|---|");
        if scenario.reference.is_some() {
            md.push_str("---|");
        }
        for _ in METRICS {
            md.push_str("---:|");
        }
        md.push('\n');
        for result in &scenario.results {
            let _ = write!(md, "| {} |", display_name(result));
            if scenario.reference.is_some() {
                let _ = write!(md, " {} |", paired_cell(scenario, result, compared));
            }
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
                "Learned policy **{}** is {} than `{}` on `{}` (means).\n",
                gain.contender,
                fmt_better(gain.relative_gain),
                gain.versus,
                gain.metric,
            );
        }
        if !scenario.energy_front.is_empty() {
            let _ = writeln!(
                md,
                "Energy–{} trade-off: the Pareto front (no contender uses less energy and \
                 scores better) is {}.\n",
                compared.label,
                scenario
                    .energy_front
                    .iter()
                    .map(|c| format!("**{c}**"))
                    .collect::<Vec<_>>()
                    .join(", ")
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
            let _ = writeln!(md, "| scenario | contender | metric | old | new | change |");
            let _ = writeln!(md, "|---|---|---|---:|---:|---|");
            for r in &cmp.regressions {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} |",
                    r.scenario,
                    r.contender,
                    r.metric,
                    fmt_num(r.old_mean),
                    fmt_num(r.new_mean),
                    fmt_worse(r.relative_worse)
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

/// Pads the cells of `rows` into columns (the first left-aligned, the others right-aligned).
fn columns(rows: &[Vec<String>]) -> Vec<String> {
    let num_cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..num_cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(c, cell)| {
                    let pad = " ".repeat(widths[c] - cell.chars().count());
                    if c == 0 {
                        format!("{cell}{pad}")
                    } else {
                        format!("{pad}{cell}")
                    }
                })
                .collect();
            format!("  {}", cells.join("  ").trim_end())
        })
        .collect()
}

/// The compact terminal table: the report's metric with its CI (`*` on the best mean in the
/// metric's direction), the paired comparison with the reference, wait, utilization, and
/// dropped + unfinished tasks.
pub fn terminal_table(report: &Report) -> String {
    let def = report_metric(report);
    let mut out = String::new();
    for scenario in &report.scenarios {
        let _ = writeln!(
            out,
            "scenario {} ({} episodes)",
            scenario.name,
            scenario.seeds.len()
        );
        let best = scenario
            .results
            .iter()
            .map(|r| r.metrics[def.key].mean)
            .filter(|m| m.is_finite())
            .fold(None::<f64>, |best, m| match best {
                Some(b) if relative_worse(m, b, def.higher_is_better) >= 0.0 => Some(b),
                _ => Some(m),
            });
        let mut rows = vec![vec![
            "contender".to_string(),
            format!("{} [95% CI]", def.label),
            scenario
                .reference
                .as_ref()
                .map(|r| format!("vs {r} (paired)"))
                .unwrap_or_default(),
            "wait".into(),
            "utilization".into(),
            "lost".into(),
        ]];
        for r in &scenario.results {
            let m = |k: &str| r.metrics[k].mean;
            let e = &r.metrics[def.key];
            let marker = if Some(e.mean) == best { " *" } else { "  " };
            rows.push(vec![
                display_name(r),
                format!(
                    "{} [{}, {}]{marker}",
                    fmt_num(e.mean),
                    fmt_num(e.ci_low),
                    fmt_num(e.ci_high)
                ),
                paired_cell(scenario, r, def),
                fmt_num(m("mean_wait")),
                fmt_num(m("utilization")),
                fmt_num(m("num_dropped") + m("num_unfinished")),
            ]);
        }
        for line in columns(&rows) {
            let _ = writeln!(out, "{line}");
        }
        for gain in &scenario.learned_gains {
            let _ = writeln!(
                out,
                "  {} is {} than the best heuristic {} on {} (means)",
                gain.contender,
                fmt_better(gain.relative_gain),
                gain.versus,
                gain.metric,
            );
        }
    }
    let _ = writeln!(
        out,
        "  (* best {} ({} is better); vs: paired difference with the reference, 95% CI, episodes won, \
         Wilcoxon p; lost = dropped + unfinished tasks per episode)",
        def.key,
        def.better()
    );
    out
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// The gate as JUnit XML: one test case per check (scenario × candidate × rule), failing with
/// the numbers in its message. Without a gate, an empty test suite.
pub fn junit(report: &Report) -> String {
    let checks: &[GateCheck] = report.gate.as_ref().map_or(&[], |g| &g.checks);
    let failures = checks.iter().filter(|c| !c.passed).count();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let suite_name = xml_escape(&format!("lepton-eval gate ({})", report.suite.name));
    let _ = writeln!(
        xml,
        "<testsuites name=\"{suite_name}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\">",
        checks.len()
    );
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{suite_name}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">",
        checks.len()
    );
    if let Some(gate) = &report.gate {
        for c in checks {
            let rule = match c.rule {
                GateRule::NotWorse => format!(
                    "{} not worse than {} by more than {:.1}%",
                    c.candidate,
                    c.baseline,
                    100.0 * gate.margin
                ),
                GateRule::Better => format!("{} better than {}", c.candidate, c.baseline),
            };
            let _ = write!(
                xml,
                "    <testcase classname=\"lepton-eval.{}\" name=\"{} on {}\">",
                xml_escape(&c.scenario),
                xml_escape(&rule),
                xml_escape(&gate.metric)
            );
            let message = xml_escape(&fmt_gate_check(c, gate));
            if c.passed {
                let _ = writeln!(xml, "<system-out>{message}</system-out></testcase>");
            } else {
                let _ = writeln!(
                    xml,
                    "<failure message=\"{message}\" type=\"gate\">{message}</failure></testcase>"
                );
            }
        }
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A contender whose episodes have these slowdowns (and nothing else).
    fn result(name: &str, slowdowns: &[f64]) -> ContenderResult {
        ContenderResult {
            contender: name.into(),
            metrics: BTreeMap::new(),
            episodes: slowdowns
                .iter()
                .enumerate()
                .map(|(i, v)| EpisodeRecord {
                    seed: i as u64,
                    metrics: EpisodeMetrics {
                        mean_slowdown: *v,
                        ..Default::default()
                    },
                })
                .collect(),
            members: Vec::new(),
        }
    }

    #[test]
    fn a_checkpoint_group_names_its_run_count_in_the_singular_or_plural() {
        let mut group = result("ppo", &[]);
        assert_eq!(display_name(&group), "ppo");
        let member = |path: &str| MemberResult {
            checkpoint: path.into(),
            episodes: Vec::new(),
        };
        group.members.push(member("a"));
        assert_eq!(display_name(&group), "ppo (1 run)");
        group.members.push(member("b"));
        assert_eq!(display_name(&group), "ppo (2 runs)");
    }

    /// A one-scenario report holding `results`.
    fn report_of(results: Vec<ContenderResult>) -> Report {
        Report {
            format: FORMAT.into(),
            versions: Versions { lepton: "0".into() },
            suite: SuiteInfo {
                name: "unit".into(),
                description: String::new(),
                path: String::new(),
                toml: String::new(),
            },
            episodes: results[0].episodes.len(),
            bootstrap: BootstrapConfig::default(),
            metric: "mean_slowdown".into(),
            contenders: Vec::new(),
            sweep: None,
            scenarios: vec![ScenarioReport {
                name: "cloud".into(),
                path: String::new(),
                config_toml: String::new(),
                seeds: Vec::new(),
                results,
                best_heuristic: None,
                learned_gains: Vec::new(),
                reference: None,
                paired: Vec::new(),
                x: None,
                energy_front: Vec::new(),
            }],
            gate: None,
            comparison: None,
        }
    }

    #[test]
    fn pareto_front_keeps_the_points_nothing_beats_on_both_costs() {
        // (kWh, slowdown): b uses less energy than a at the same slowdown, so a is dominated;
        // c is slower but the most frugal; d is dominated by b; e ties b exactly (neither
        // dominates the other); f has no finite energy.
        let points = [
            (5.0, 2.0),
            (4.0, 2.0),
            (1.0, 9.0),
            (4.5, 3.0),
            (4.0, 2.0),
            (f64::NAN, 0.5),
        ];
        assert_eq!(
            pareto_front(&points),
            [false, true, true, false, true, false]
        );
    }

    #[test]
    fn energy_front_reads_the_metric_direction_and_needs_energy() {
        let with = |name: &str, kwh: f64, slowdown: f64, utilization: f64| {
            let mut r = result(name, &[]);
            let estimate = |mean| stats::Estimate {
                mean,
                ci_low: mean,
                ci_high: mean,
            };
            for def in METRICS {
                r.metrics.insert(def.key.to_string(), estimate(0.0));
            }
            r.metrics.insert("energy_kwh".into(), estimate(kwh));
            r.metrics.insert("mean_slowdown".into(), estimate(slowdown));
            r.metrics
                .insert("utilization".into(), estimate(utilization));
            r
        };
        let results = [
            with("lazy", 1.0, 3.0, 0.2),
            with("busy", 2.0, 2.0, 0.9),
            with("worse", 2.5, 2.5, 0.1),
        ];
        assert_eq!(energy_front(&results, slowdown()), ["lazy", "busy"]);
        // Higher utilization is better: "worse" is then beaten by "busy" on both, as before.
        let utilization = metric("utilization").unwrap();
        assert_eq!(energy_front(&results, utilization), ["lazy", "busy"]);
        let no_energy = [with("a", 0.0, 3.0, 0.5), with("b", 0.0, 2.0, 0.5)];
        assert!(energy_front(&no_energy, slowdown()).is_empty());
    }

    /// 20 episodes whose workloads differ up to 5× (the spread pairing removes).
    fn workload() -> Vec<f64> {
        (0..20).map(|i| 10.0 + 10.0 * f64::from(i % 5)).collect()
    }

    fn slowdown() -> &'static MetricDef {
        metric("mean_slowdown").unwrap()
    }

    fn check(report: &Report, rule: GateRule) -> GateCheck {
        let gate = gate(
            report,
            &["cand".into()],
            &[(rule, "base".into())],
            slowdown(),
            0.05,
        );
        assert_eq!(gate.checks.len(), 1);
        assert_eq!(gate.passed, gate.checks[0].passed);
        gate.checks[0].clone()
    }

    #[test]
    fn gate_fails_a_clearly_worse_candidate() {
        let base = workload();
        // 30% worse on every episode, give or take 3%.
        let cand: Vec<f64> = base
            .iter()
            .enumerate()
            .map(|(i, b)| b * if i % 2 == 0 { 1.27 } else { 1.33 })
            .collect();
        let report = report_of(vec![result("base", &base), result("cand", &cand)]);
        let c = check(&report, GateRule::NotWorse);
        assert!(
            !c.passed && c.worse_ci_low > 0.25 && c.worse_ci_high < 0.35,
            "{c:?}"
        );
        assert_eq!((c.wins, c.num_episodes), (0, 20));
        assert!(!check(&report, GateRule::Better).passed);
        // The other way round the candidate is better with confidence.
        let swapped = report_of(vec![result("base", &cand), result("cand", &base)]);
        assert!(check(&swapped, GateRule::Better).passed);
        assert!(check(&swapped, GateRule::NotWorse).passed);
    }

    #[test]
    fn gate_passes_a_noisy_candidate_the_point_rule_would_fail() {
        let base = workload();
        // ±40% noise per episode around an 8% deficit: worse than the 5% margin on the means
        // (the old rule failed it), but nowhere near 95% confidence of being worse beyond it.
        let cand: Vec<f64> = base
            .iter()
            .enumerate()
            .map(|(i, b)| b * if (i / 5) % 2 == 0 { 1.48 } else { 0.68 })
            .collect();
        let report = report_of(vec![result("base", &base), result("cand", &cand)]);
        let c = check(&report, GateRule::NotWorse);
        assert!(c.relative_worse > 0.05, "{c:?}");
        assert!(c.worse_ci_low < 0.05 && c.worse_ci_high > 0.05, "{c:?}");
        assert!(c.passed, "{c:?}");
        // Neither is it better with confidence.
        assert!(!check(&report, GateRule::Better).passed);
    }

    #[test]
    fn gate_never_passes_on_nan() {
        let report = report_of(vec![
            result("base", &[1.0, 2.0]),
            result("cand", &[f64::NAN, 2.0]),
        ]);
        assert!(!check(&report, GateRule::NotWorse).passed);
        assert!(!check(&report, GateRule::Better).passed);
        assert!(!gate_passes(GateRule::NotWorse, f64::NAN, f64::NAN, 0.05));
    }

    #[test]
    fn a_higher_is_better_metric_flips_the_worse_side() {
        let def = metric("utilization").unwrap();
        let paired = Paired {
            relative_diff: -0.1,
            ci_low: -0.15,
            ci_high: -0.05,
            ..stats::paired(
                &[vec![1.0]],
                &[vec![1.0]],
                true,
                &BootstrapConfig::default(),
                0,
            )
        };
        assert!(
            fmt_paired(&paired, def.higher_is_better)
                .starts_with("10.0% worse [5.0% worse, 15.0% worse]"),
            "{}",
            fmt_paired(&paired, def.higher_is_better)
        );
        assert!(fmt_paired(&paired, false).starts_with("10.0% better [15.0% better, 5.0% better]"));
    }

    /// Counts `needle` in `text`.
    fn count(text: &str, needle: &str) -> usize {
        text.matches(needle).count()
    }

    #[test]
    fn junit_has_one_test_case_per_check_with_the_numbers() {
        let base = workload();
        let worse: Vec<f64> = base.iter().map(|b| b * 1.3).collect();
        let mut report = report_of(vec![
            result("base", &base),
            result("good<&>", &base),
            result("bad", &worse),
        ]);
        report.gate = Some(gate(
            &report,
            &["good<&>".into(), "bad".into()],
            &[(GateRule::NotWorse, "base".into())],
            slowdown(),
            0.05,
        ));
        let xml = junit(&report);
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites "));
        assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
        assert_eq!(count(&xml, "<testcase "), 2);
        assert_eq!(count(&xml, "</testcase>"), 2);
        assert_eq!(count(&xml, "<failure "), 1);
        assert_eq!(count(&xml, "</failure>"), 1);
        assert!(
            xml.contains("good&lt;&amp;&gt; not worse than base"),
            "{xml}"
        );
        assert!(!xml.contains("good<&>"), "unescaped: {xml}");
        let failure = &xml[xml.find("<failure ").unwrap()..];
        assert!(
            failure.contains("bad on cloud: mean_slowdown")
                && failure.contains("30.0% worse than base")
                && failure.contains("wins 0/20"),
            "{failure}"
        );
        // Every opened element is closed, in order.
        let mut open: Vec<String> = Vec::new();
        let mut rest = xml.split_once("?>").unwrap().1;
        while let Some(at) = rest.find('<') {
            let end = rest[at..].find('>').unwrap() + at;
            let tag = &rest[at + 1..end];
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(open.pop().as_deref(), Some(name), "{xml}");
            } else if !tag.ends_with('/') {
                open.push(tag.split_whitespace().next().unwrap().to_string());
            }
            rest = &rest[end + 1..];
        }
        assert!(open.is_empty(), "{open:?}");
        // No gate: an empty suite.
        report.gate = None;
        assert!(junit(&report).contains("tests=\"0\" failures=\"0\""));
    }

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
        assert_eq!(fmt_better(0.1234), "12.3% better");
        assert_eq!(fmt_better(-0.413), "41.3% worse");
        assert_eq!(fmt_worse(0.413), "41.3% worse");
    }
}

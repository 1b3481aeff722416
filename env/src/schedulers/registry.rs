//! The registry: every scheduler name in one table, [`REGISTRY`]. Every name lookup
//! ([`by_name`]: lepton-eval's `--schedulers` and suites, lepton-train's imitation teacher and
//! DQN prefill, the lookahead's BASE), the default report list ([`NAMES`]), the `--help`
//! list ([`help_list`]) and the "unknown scheduler" message read it, so adding a scheduler is
//! its code plus one entry here.

use super::lookahead::{Base, Lookahead};
use super::preemptive::Preemptive;
use super::priority::{Priority, PriorityScheduler};
use super::rules::{Rule, WeightedParams};
use super::smallest_demand::SmallestDemand;
use super::{Filter, Heuristic, RandomDraw, RandomScheduler, Scheduler};
use crate::cluster::Discipline;

/// How a registered scheduler is built from the parameters after its name (the text after
/// the first `:`, `None` without one); an `Err` is the reason the parameters are bad.
#[derive(Clone, Copy)]
pub enum Build {
    /// A deterministic [`Rule`] run by [`Heuristic`]; such a scheduler can also be the BASE of
    /// a `lookahead`.
    Rule(fn(Option<&str>) -> Result<Rule, String>),
    /// A [`Heuristic`] whose rule chooses among filtered placements (`fastest`, `safe`,
    /// `reserve`); it can be a BASE too.
    Heuristic(fn(Option<&str>) -> Result<Heuristic, String>),
    /// Any other [`Scheduler`].
    Scheduler(BuildScheduler),
}

/// The builder of a [`Build::Scheduler`] entry.
pub type BuildScheduler = fn(Option<&str>) -> Result<Box<dyn Scheduler>, String>;

/// One registered scheduler.
#[derive(Clone, Copy)]
pub struct Registered {
    /// What `--schedulers`, suites and `imitation.teacher` write.
    pub name: &'static str,
    /// Optional parameters after the name, as lists show them (`""` when it takes none).
    pub params: &'static str,
    /// One line for `--help` and the docs.
    pub summary: &'static str,
    /// Whether reports run it when no list is given (see [`NAMES`]).
    pub in_default_list: bool,
    pub build: Build,
    /// The whole-queue priority function this rule shares its name with, if any: then
    /// `NAME+DISCIPLINE` (`sjf+easy`) is a [`PriorityScheduler`] under that discipline.
    pub family: Option<Priority>,
}

const fn entry(
    name: &'static str,
    params: &'static str,
    in_default_list: bool,
    build: Build,
    summary: &'static str,
) -> Registered {
    Registered {
        name,
        params,
        summary,
        in_default_list,
        build,
        family: None,
    }
}

/// A parameterless rule that also heads a `NAME+DISCIPLINE` family.
const fn with_family(mut entry: Registered, priority: Priority) -> Registered {
    entry.family = Some(priority);
    entry.params = "[+DISCIPLINE]";
    entry
}

/// A parameterless rule.
macro_rules! rule {
    ($name:literal, $rule:expr, $summary:literal) => {
        entry(
            $name,
            "",
            true,
            Build::Rule(|p| no_params(p).map(|()| $rule)),
            $summary,
        )
    };
}

/// Every scheduler, in report order.
pub const REGISTRY: &[Registered] = &[
    entry(
        "random",
        "",
        true,
        Build::Scheduler(|p| {
            no_params(p)?;
            Ok(Box::new(RandomScheduler::new(0, RandomDraw::Legal)))
        }),
        "uniform over legal actions (wait included), seeded per episode",
    ),
    entry(
        "deeprm_random",
        "",
        true,
        Build::Scheduler(|p| {
            no_params(p)?;
            Ok(Box::new(RandomScheduler::new(0, RandomDraw::DeepRm)))
        }),
        "DeepRM's random agent: uniform over every action index; an illegal pick waits",
    ),
    with_family(
        rule!(
            "fcfs",
            Rule::Fcfs,
            "strict first come, first served, first-fit server"
        ),
        Priority::Fcfs,
    ),
    with_family(
        rule!(
            "sjf",
            Rule::Sjf,
            "shortest estimated job first (DeepRM's SJF)"
        ),
        Priority::Sjf,
    ),
    rule!(
        "packer",
        Rule::Packer,
        "DeepRM's Packer (largest demand · free capacity)"
    ),
    rule!(
        "tetris",
        Rule::Tetris { srtf_weight: 1.0 },
        "alignment + shortest remaining time (Tetris, SIGCOMM'14)"
    ),
    rule!(
        "best_fit",
        Rule::BestFit,
        "tightest server for the oldest fitting task"
    ),
    rule!(
        "worst_fit",
        Rule::WorstFit,
        "least-loaded server for the oldest fitting task"
    ),
    rule!("edf", Rule::Edf, "earliest deadline first"),
    entry(
        "weighted",
        "[:ALPHA:BETA]",
        true,
        Build::Rule(|p| weighted_params(p).map(Rule::Weighted)),
        "lowest α·estimate + β·slack (default α = 1, β = 0.5)",
    ),
    rule!("easy", Rule::Easy, "EASY backfilling on FCFS"),
    with_family(
        rule!("wfp3", Rule::Wfp3, "WFP3 (RLScheduler, SC'20)"),
        Priority::Wfp3,
    ),
    with_family(
        rule!("unicep", Rule::Unicep, "UNICEP (RLScheduler, SC'20)"),
        Priority::Unicep,
    ),
    with_family(
        rule!("f1", Rule::F1, "F1 (RLScheduler, SC'20)"),
        Priority::F1,
    ),
    entry(
        "smallest_demand",
        "",
        false,
        Build::Scheduler(|p| {
            no_params(p)?;
            Ok(Box::new(SmallestDemand::default()))
        }),
        "smallest total demand first (the README's worked example)",
    ),
    entry(
        "wait",
        "",
        false,
        Build::Rule(|p| no_params(p).map(|()| Rule::Wait)),
        "waits whenever the env allows (where a hold limit forbids it, starts the longest-waiting task): a rule for rule selection, not a scheduler",
    ),
    entry(
        "lookahead",
        "[:BASE[:HORIZON]]",
        false,
        Build::Scheduler(|p| Ok(Box::new(lookahead(p)?))),
        "NOT a real scheduler: an upper bound that rolls BASE (default tetris) out on env clones, seeing the future; slow",
    ),
    entry(
        "rollout",
        "[:BASE[:SAMPLES[:ARRIVALS]]]",
        false,
        Build::Scheduler(|p| Ok(Box::new(rollout(p)?))),
        "rolls BASE (default tetris) out on SAMPLES (default 4) worlds redrawn from the scenario's model, without the future; each world keeps the next ARRIVALS arrivals (default all); slow",
    ),
    entry(
        "safe",
        "[:BASE[:THRESHOLD]]",
        false,
        Build::Heuristic(|p| {
            let (base, threshold) = base_and_threshold(p)?;
            let name = format!("safe:{}:{threshold}", base.name());
            Ok(base.with_filter(name, Filter::OffRisky { threshold }))
        }),
        "BASE (default tetris) kept off servers whose health reading is at or above THRESHOLD (default 0.5)",
    ),
    entry(
        "fastest",
        "[:BASE]",
        true,
        Build::Heuristic(|p| {
            let base = base_heuristic(p.unwrap_or("sjf"))?;
            let name = format!("fastest:{}", base.name());
            Ok(base.with_filter(name, Filter::Fastest))
        }),
        "BASE (default sjf) choosing only among each task's fastest servers that fit it now (servers' `speed`)",
    ),
    entry(
        "reserve",
        "[:BASE[:RESOURCE:LONG:FREE]]",
        false,
        Build::Heuristic(reserve),
        "BASE (default sjf) holding back tasks estimated over LONG s (default 30) that would leave under FREE (default 0.05) of RESOURCE (an index, default the last) free: a reserve for short tasks (Hawk, ATC'15)",
    ),
    entry(
        "preempt",
        "[:BASE]",
        false,
        Build::Scheduler(|p| {
            Ok(Box::new(Preemptive::preempt(base_heuristic(
                p.unwrap_or("tetris"),
            )?)))
        }),
        "strict priority classes; a blocked higher-class task preempts lower-class tasks ([preemption] scenarios; BASE default tetris)",
    ),
    entry(
        "defrag",
        "[:BASE]",
        false,
        Build::Scheduler(|p| {
            Ok(Box::new(Preemptive::defrag(base_heuristic(
                p.unwrap_or("tetris"),
            )?)))
        }),
        "moves one small running task to make room for the oldest task when it fits nowhere ([preemption] scenarios; BASE default tetris)",
    ),
    entry(
        "evacuate",
        "[:BASE[:THRESHOLD]]",
        false,
        Build::Scheduler(|p| {
            let (base, threshold) = base_and_threshold(p)?;
            Ok(Box::new(Preemptive::evacuate(base, threshold)))
        }),
        "safe, and moves running tasks off servers whose health reading is at or above THRESHOLD ([preemption] scenarios)",
    ),
];

const NUM_DEFAULT: usize = {
    let mut n = 0;
    let mut i = 0;
    while i < REGISTRY.len() {
        if REGISTRY[i].in_default_list {
            n += 1;
        }
        i += 1;
    }
    n
};

/// The names reports run when no list is given: the entries of [`REGISTRY`] marked
/// `in_default_list`, in registry order. (`lookahead` is left out: it sees the future and is
/// slow.)
pub const NAMES: &[&str] = &{
    let mut names = [""; NUM_DEFAULT];
    let (mut i, mut n) = (0, 0);
    while i < REGISTRY.len() {
        if REGISTRY[i].in_default_list {
            names[n] = REGISTRY[i].name;
            n += 1;
        }
        i += 1;
    }
    names
};

/// The whole-queue batch schedulers that reports and the trainer add to [`NAMES`] on cluster
/// scenarios (DeepRM's env has no commit disciplines). They choose from the whole queue, not
/// only the visible slots, which the other heuristics and slot- or placement-action policies
/// are limited to; on the cloud scenarios that makes them the strongest heuristics
/// (BENCHMARKS.md "The whole queue").
pub const BATCH_NAMES: &[&str] = &["sjf+greedy", "sjf+easy"];

/// Every registered name with its parameter syntax, comma-separated (error messages).
pub fn known_names() -> String {
    REGISTRY
        .iter()
        .map(|r| format!("{}{}", r.name, r.params))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line per registered scheduler: name, parameters and summary (`--help`).
pub fn help_list() -> String {
    let width = REGISTRY
        .iter()
        .map(|r| r.name.len() + r.params.len())
        .max()
        .unwrap_or(0);
    REGISTRY
        .iter()
        .map(|r| {
            let name = format!("{}{}", r.name, r.params);
            let default = if r.in_default_list {
                ""
            } else {
                " [by name only]"
            };
            format!("  {name:<width$}  {}{default}", r.summary)
        })
        .chain(std::iter::once(format!(
            "  NAME+DISCIPLINE for NAME in {}: that priority over the whole queue (not only the \
             visible slots) under DISCIPLINE = greedy | strict | easy | conservative \
             (e.g. sjf+easy: EASY backfilling) [by name only]",
            family_names().join(", ")
        )))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A scheduler name that the registry does not know, or bad parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnknownScheduler {
    #[error("unknown scheduler `{name}`; valid names: {}", known_names())]
    Name { name: String },
    #[error("scheduler `{spec}`: {reason}")]
    Params { spec: String, reason: String },
}

/// `spec` split into its registry entry and its parameters.
fn lookup(spec: &str) -> Result<(&'static Registered, Option<&str>), UnknownScheduler> {
    let (name, params) = spec
        .split_once(':')
        .map_or((spec, None), |(n, p)| (n, Some(p)));
    REGISTRY
        .iter()
        .find(|r| r.name == name)
        .map(|r| (r, params))
        .ok_or_else(|| UnknownScheduler::Name {
            name: spec.to_string(),
        })
}

/// Builds a scheduler from its registry name and parameters, e.g. `sjf`, `weighted:1:0.25`,
/// `lookahead:sjf:0` or `f1+easy`. Unknown names fail with the list of known ones.
pub fn by_name(spec: &str) -> Result<Box<dyn Scheduler>, UnknownScheduler> {
    let spec = spec.trim();
    // `sjf+easy`, but not `lookahead:sjf+easy:0` (a family member as a parameter).
    if let Some((name, discipline)) = spec.split_once('+')
        && !name.contains(':')
    {
        return family_member(spec, name, discipline).map(|s| Box::new(s) as Box<dyn Scheduler>);
    }
    let (entry, params) = lookup(spec)?;
    let bad = |reason| UnknownScheduler::Params {
        spec: spec.into(),
        reason,
    };
    match entry.build {
        Build::Rule(rule) => Ok(Box::new(Heuristic::new(spec, rule(params).map_err(bad)?))),
        Build::Heuristic(build) => Ok(Box::new(build(params).map_err(bad)?)),
        Build::Scheduler(build) => build(params).map_err(bad),
    }
}

/// `NAME+DISCIPLINE`: a [`PriorityScheduler`] if NAME heads a family.
fn family_member(
    spec: &str,
    name: &str,
    discipline: &str,
) -> Result<PriorityScheduler, UnknownScheduler> {
    let (entry, _) = lookup(name).map_err(|_| UnknownScheduler::Name {
        name: spec.to_string(),
    })?;
    let bad = |reason: String| UnknownScheduler::Params {
        spec: spec.into(),
        reason,
    };
    let Some(priority) = entry.family else {
        return Err(bad(format!(
            "`{name}` has no +DISCIPLINE form (only: {})",
            family_names().join(", ")
        )));
    };
    let Some(discipline) = Discipline::from_name(discipline) else {
        let names: Vec<&str> = Discipline::ALL.iter().map(|(_, n)| *n).collect();
        return Err(bad(format!(
            "unknown discipline `{discipline}` (one of: {})",
            names.join(", ")
        )));
    };
    Ok(PriorityScheduler::new(priority, discipline))
}

/// The names that take `+DISCIPLINE`.
fn family_names() -> Vec<&'static str> {
    REGISTRY
        .iter()
        .filter(|r| r.family.is_some())
        .map(|r| r.name)
        .collect()
}

fn no_params(params: Option<&str>) -> Result<(), String> {
    match params {
        None => Ok(()),
        Some(_) => Err("takes no parameters".into()),
    }
}

/// `[:BASE[:COUNT]]` of `lookahead` and `rollout` as (BASE, COUNT): BASE `tetris` and COUNT
/// `default` when left out. BASE may carry its own parameters (`weighted:1:0.5:0`), COUNT is
/// then needed.
fn base_and_count<'a>(params: Option<&'a str>, default: &'a str) -> (&'a str, &'a str) {
    match params {
        None => ("tetris", default),
        Some(p) => p.rsplit_once(':').unwrap_or((p, default)),
    }
}

/// `lookahead[:BASE[:HORIZON]]`.
fn lookahead(params: Option<&str>) -> Result<Lookahead, String> {
    let (base, horizon) = base_and_count(params, "0");
    let horizon: u64 = horizon
        .parse()
        .map_err(|_| format!("HORIZON `{horizon}` is not a whole number of decisions"))?;
    Ok(Lookahead::new(lookahead_base(base)?, horizon))
}

/// `rollout[:BASE[:SAMPLES[:ARRIVALS]]]`. BASE may carry its own parameters, so the last two
/// fields are read as SAMPLES and ARRIVALS when both are whole numbers and what comes before
/// them is a BASE; otherwise the last field is SAMPLES.
fn rollout(params: Option<&str>) -> Result<Lookahead, String> {
    if let Some((rest, arrivals)) = params.and_then(|p| p.rsplit_once(':'))
        && let Some((base, samples)) = rest.rsplit_once(':')
        && samples.parse::<u32>().is_ok()
        && let Ok(arrivals) = arrivals.parse::<usize>()
        && let Ok(base) = lookahead_base(base)
    {
        return Ok(Lookahead::rollout(base, worlds(samples)?, Some(arrivals)));
    }
    let (base, samples) = base_and_count(params, "4");
    let samples = worlds(samples)?;
    Ok(Lookahead::rollout(lookahead_base(base)?, samples, None))
}

/// `rollout`'s SAMPLES: a whole number of redrawn worlds above 0.
fn worlds(samples: &str) -> Result<u32, String> {
    match samples.parse() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "SAMPLES `{samples}` is not a whole number of worlds above 0"
        )),
    }
}

/// The BASE of `lookahead` and `rollout`: a whole-queue batch scheduler (`sjf+easy`) or a
/// slot heuristic ([`base_heuristic`]).
fn lookahead_base(base: &str) -> Result<Base, String> {
    match base.split_once('+') {
        Some((name, discipline)) => family_member(base, name, discipline)
            .map(Base::Queue)
            .map_err(|e| format!("BASE: {e}")),
        None => base_heuristic(base).map(Base::Slots),
    }
}

/// The BASE of a wrapper scheduler (`lookahead`, `rollout`, `safe`, …): a registered
/// deterministic rule, or a filtered one (`fastest:sjf`), with its own parameters.
fn base_heuristic(base: &str) -> Result<Heuristic, String> {
    let (entry, base_params) = lookup(base).map_err(|e| format!("BASE: {e}"))?;
    let reason = |reason| format!("BASE `{base}`: {reason}");
    match entry.build {
        Build::Rule(rule) => Ok(Heuristic::new(base, rule(base_params).map_err(reason)?)),
        Build::Heuristic(build) => build(base_params).map_err(reason),
        Build::Scheduler(_) => Err(format!("BASE `{base}` must be a deterministic heuristic")),
    }
}

/// `[:BASE[:THRESHOLD]]` of `safe` and `evacuate`; BASE may carry its own parameters
/// (`weighted:1:0.5:0.6`).
fn base_and_threshold(params: Option<&str>) -> Result<(Heuristic, f64), String> {
    let (base, threshold) = match params {
        None => ("tetris", "0.5"),
        Some(p) => match p.rsplit_once(':') {
            Some((base, t)) if t.parse::<f64>().is_ok() => (base, t),
            _ => (p, "0.5"),
        },
    };
    let threshold: f64 = threshold
        .parse()
        .map_err(|_| format!("THRESHOLD `{threshold}` is not a number"))?;
    if !(0.0..=1.0).contains(&threshold) {
        return Err(format!("THRESHOLD {threshold} is outside [0, 1]"));
    }
    Ok((base_heuristic(base)?, threshold))
}

/// `[:BASE[:RESOURCE:LONG:FREE]]` of `reserve`; BASE may carry its own parameters
/// (`weighted:1:0.5:2:30:0.05`).
fn reserve(params: Option<&str>) -> Result<Heuristic, String> {
    let params = params.unwrap_or("sjf");
    let fields: Vec<&str> = params.rsplitn(4, ':').collect();
    let (base, resource, long_s, min_free) = match fields[..] {
        [free, long_s, resource, base] => (base, parse_resource(resource)?, long_s, free),
        _ => (params, None, "30", "0.05"),
    };
    let long_s: f64 = long_s
        .parse()
        .ok()
        .filter(|l: &f64| *l >= 0.0)
        .ok_or_else(|| format!("LONG `{long_s}` is not a number of seconds ≥ 0"))?;
    let min_free: f64 = min_free
        .parse()
        .ok()
        .filter(|f| (0.0..=1.0).contains(f))
        .ok_or_else(|| format!("FREE `{min_free}` is not a share in [0, 1]"))?;
    let base = base_heuristic(base)?;
    let name = format!(
        "reserve:{}:{}:{long_s}:{min_free}",
        base.name(),
        resource.map_or_else(|| "last".to_string(), |r: usize| r.to_string())
    );
    let filter = Filter::Reserve {
        resource,
        long_s,
        min_free,
    };
    Ok(base.with_filter(name, filter))
}

/// RESOURCE of `reserve`: an index, or `last` (`None`).
fn parse_resource(resource: &str) -> Result<Option<usize>, String> {
    match resource {
        "last" => Ok(None),
        r => r
            .parse::<usize>()
            .map(Some)
            .map_err(|_| format!("RESOURCE `{r}` is not a resource index (0, 1, …) or `last`")),
    }
}

fn weighted_params(params: Option<&str>) -> Result<WeightedParams, String> {
    let mut out = WeightedParams::default();
    let Some(params) = params else { return Ok(out) };
    let values: Vec<&str> = params.split(':').collect();
    let [alpha, beta] = values.as_slice() else {
        return Err("expected `weighted:ALPHA:BETA`, e.g. `weighted:1:0.5`".into());
    };
    out.alpha = alpha.parse().map_err(|_| "ALPHA is not a number")?;
    out.beta = beta.parse().map_err(|_| "BETA is not a number")?;
    if !out.alpha.is_finite() || !out.beta.is_finite() {
        return Err("ALPHA and BETA must be finite".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_registered_once_and_builds_under_its_own_name() {
        for (i, r) in REGISTRY.iter().enumerate() {
            assert!(
                REGISTRY[i + 1..].iter().all(|o| o.name != r.name),
                "`{}` is registered twice",
                r.name
            );
            assert!(!r.name.contains(':') && !r.name.is_empty());
            let expected = match r.name {
                "lookahead" => "lookahead:tetris:0",
                "rollout" => "rollout:tetris:4",
                "safe" => "safe:tetris:0.5",
                "evacuate" => "evacuate:tetris:0.5",
                "preempt" => "preempt:tetris",
                "defrag" => "defrag:tetris",
                "reserve" => "reserve:sjf:last:30:0.05",
                "fastest" => "fastest:sjf",
                name => name,
            };
            assert_eq!(by_name(r.name).unwrap().name(), expected);
        }
        let default: Vec<&str> = REGISTRY
            .iter()
            .filter(|r| r.in_default_list)
            .map(|r| r.name)
            .collect();
        assert_eq!(NAMES, default.as_slice());
        assert_eq!(NAMES.len(), 15);
        assert!(!NAMES.contains(&"lookahead") && !NAMES.contains(&"smallest_demand"));
        // One line per entry, and one for the NAME+DISCIPLINE family.
        assert_eq!(help_list().lines().count(), REGISTRY.len() + 1);
    }

    #[test]
    fn an_unknown_name_gets_the_whole_list() {
        let err = by_name("longest").err().unwrap().to_string();
        let list = REGISTRY
            .iter()
            .map(|r| format!("{}{}", r.name, r.params))
            .collect::<Vec<_>>()
            .join(", ");
        assert_eq!(
            err,
            format!("unknown scheduler `longest`; valid names: {list}")
        );
        assert!(err.contains("weighted[:ALPHA:BETA], easy"), "{err}");
        assert!(
            err.contains("smallest_demand, wait, lookahead[:BASE[:HORIZON]]"),
            "{err}"
        );
    }

    #[test]
    fn parameters_are_checked_per_entry() {
        let reason = |spec: &str| by_name(spec).err().unwrap().to_string();
        assert_eq!(reason("sjf:3"), "scheduler `sjf:3`: takes no parameters");
        assert_eq!(
            reason("smallest_demand:1"),
            "scheduler `smallest_demand:1`: takes no parameters"
        );
        assert_eq!(
            reason("lookahead:random:0"),
            "scheduler `lookahead:random:0`: BASE `random` must be a deterministic heuristic"
        );
        assert_eq!(
            reason("lookahead:smallest_demand"),
            "scheduler `lookahead:smallest_demand`: BASE `smallest_demand` must be a deterministic heuristic"
        );
        assert_eq!(
            by_name("lookahead:weighted:1:0.5:3").unwrap().name(),
            "lookahead:weighted:1:0.5:3"
        );
        assert_eq!(
            reason("rollout:sjf:0"),
            "scheduler `rollout:sjf:0`: SAMPLES `0` is not a whole number of worlds above 0"
        );
        assert_eq!(by_name("rollout:sjf").unwrap().name(), "rollout:sjf:4");
        assert_eq!(
            by_name("rollout:weighted:1:0.5:2").unwrap().name(),
            "rollout:weighted:1:0.5:2"
        );
        // ARRIVALS after SAMPLES, also behind a BASE with parameters of its own.
        for name in [
            "rollout:sjf:4:0",
            "rollout:fastest:sjf:16",
            "rollout:fastest:sjf:16:10",
            "rollout:weighted:1:0.5:8:5",
        ] {
            assert_eq!(by_name(name).unwrap().name(), name);
        }
        // A whole-queue BASE, and a bad one.
        assert_eq!(
            by_name("lookahead:sjf+easy:0").unwrap().name(),
            "lookahead:sjf+easy:0"
        );
        assert_eq!(
            reason("lookahead:sjf+nope:0"),
            "scheduler `lookahead:sjf+nope:0`: BASE: scheduler `sjf+nope`: unknown discipline `nope` (one of: greedy, strict, easy, conservative)"
        );
        assert_eq!(
            reason("rollout:sjf:0:5"),
            "scheduler `rollout:sjf:0:5`: SAMPLES `0` is not a whole number of worlds above 0"
        );
        assert_eq!(
            by_name("reserve:tetris").unwrap().name(),
            "reserve:tetris:last:30:0.05"
        );
        assert_eq!(
            by_name("reserve:weighted:1:0.5:2:10:0.2").unwrap().name(),
            "reserve:weighted:1:0.5:2:10:0.2"
        );
        assert_eq!(
            reason("reserve:sjf:gpu:30:0.05"),
            "scheduler `reserve:sjf:gpu:30:0.05`: RESOURCE `gpu` is not a resource index (0, 1, …) or `last`"
        );
        assert_eq!(
            reason("reserve:sjf:2:30:1.5"),
            "scheduler `reserve:sjf:2:30:1.5`: FREE `1.5` is not a share in [0, 1]"
        );
        assert_eq!(
            reason("reserve:sjf:2:-1:0.1"),
            "scheduler `reserve:sjf:2:-1:0.1`: LONG `-1` is not a number of seconds ≥ 0"
        );
        assert_eq!(
            reason("reserve:random"),
            "scheduler `reserve:random`: BASE `random` must be a deterministic heuristic"
        );
        assert_eq!(by_name("fastest:sjf").unwrap().name(), "fastest:sjf");
        // A filtered heuristic is a BASE like a rule: filters stack, and a lookahead or a
        // rollout plays it.
        assert_eq!(
            by_name("reserve:fastest:sjf:2:3:0.05").unwrap().name(),
            "reserve:fastest:sjf:2:3:0.05"
        );
        assert_eq!(
            by_name("rollout:fastest:sjf:16").unwrap().name(),
            "rollout:fastest:sjf:16"
        );
        assert_eq!(
            by_name("lookahead:safe:tetris:0.45:0").unwrap().name(),
            "lookahead:safe:tetris:0.45:0"
        );
        assert_eq!(
            reason("fastest:random"),
            "scheduler `fastest:random`: BASE `random` must be a deterministic heuristic"
        );
    }

    #[test]
    fn every_priority_runs_under_every_discipline() {
        for (_, priority) in Priority::ALL {
            for (discipline, name) in Discipline::ALL {
                let spec = format!("{priority}+{name}");
                let scheduler = by_name(&spec).unwrap();
                assert_eq!(scheduler.name(), spec);
                assert_eq!(scheduler.discipline(), Some(discipline));
            }
        }
        let reason = |spec: &str| by_name(spec).err().unwrap().to_string();
        assert_eq!(
            reason("sjf+lazy"),
            "scheduler `sjf+lazy`: unknown discipline `lazy` (one of: greedy, strict, easy, conservative)"
        );
        assert_eq!(
            reason("tetris+easy"),
            "scheduler `tetris+easy`: `tetris` has no +DISCIPLINE form (only: fcfs, sjf, wfp3, unicep, f1)"
        );
        assert!(reason("shortest+easy").starts_with("unknown scheduler `shortest+easy`"));
    }
}

//! Resolving a scenario's `[workload]` table into a [`TaskSource`] (synthetic classes,
//! explicit lists, CSV task lists, DeepRM's generator), and the data files it names.

use super::file::{ArrivalsFile, DistFile, DurationFile, ProcessFile, WorkloadFile, WorkloadKind};
use super::replay::{has_replay_keys, replay, replay_options};
use super::validate::{Check, ScenarioError, human_bytes, limits};
use crate::workload::{
    ArrivalProcess, DeepRmGenerator, DurationDist, MAX_RESOURCES, Synthetic, TaskClass, TaskList,
    TaskSource, TaskSpec,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `rel` as named in the scenario file at `scenario_path`: relative to that file's folder.
pub(super) fn relative_to(scenario_path: &Path, rel: &str) -> PathBuf {
    scenario_path.parent().unwrap_or(Path::new(".")).join(rel)
}

/// Every data file the workload names, relative to the scenario file, in a fixed order:
/// `path` (CSV or trace), then `nodes` (Alibaba), then `cluster` (Tiresias).
pub(super) fn data_files(w: &WorkloadFile, scenario_path: &Path) -> Vec<PathBuf> {
    [&w.path, &w.nodes, &w.cluster]
        .into_iter()
        .flatten()
        .map(|rel| relative_to(scenario_path, rel))
        .collect()
}

/// A workload section, resolved except for what needs the cluster (offered load).
pub(super) struct ResolvedWorkload {
    pub(super) source: Arc<dyn TaskSource>,
    /// Synthetic workloads with their pending offered-load target, if any.
    pub(super) synthetic: Option<(Synthetic, Option<f64>)>,
    pub(super) list: Option<TaskList>,
    pub(super) deeprm: Option<DeepRmGenerator>,
    pub(super) max_priority: u8,
    pub(super) mean_duration_s: f64,
}

pub(super) fn resolve_workload(
    w: &WorkloadFile,
    resources: &[String],
    c: &Check<'_>,
    path: &Path,
    fits: impl Fn(&[u32; MAX_RESOURCES], &str) -> Result<(), String>,
) -> Result<ResolvedWorkload, ScenarioError> {
    let nr = resources.len();
    let why = format!(
        "when workload.kind = \"{}\"",
        format!("{:?}", w.kind).to_lowercase()
    );
    let synthetic_only = [
        ("workload.num_tasks", w.num_tasks.is_some()),
        ("workload.arrivals", w.arrivals.is_some()),
        ("workload.classes", w.classes.is_some()),
    ];
    let others = [
        ("workload.tasks", w.tasks.is_some(), WorkloadKind::List),
        ("workload.path", w.path.is_some(), WorkloadKind::Csv),
        (
            "workload.arrival_prob",
            w.arrival_prob.is_some(),
            WorkloadKind::Deeprm,
        ),
        (
            "workload.num_steps",
            w.num_steps.is_some(),
            WorkloadKind::Deeprm,
        ),
        (
            "workload.max_demand",
            w.max_demand.is_some(),
            WorkloadKind::Deeprm,
        ),
    ];
    for (key, present) in synthetic_only {
        if present && w.kind != WorkloadKind::Synthetic {
            return Err(c.err(key, format!("is not used {why}")));
        }
    }
    for (key, present, kind) in others {
        if present && w.kind != kind {
            return Err(c.err(key, format!("is not used {why}")));
        }
    }
    match w.kind {
        WorkloadKind::Synthetic => {
            let num_tasks = c.required("workload.num_tasks", w.num_tasks, &why)?;
            if num_tasks == 0 {
                return Err(c.err("workload.num_tasks", "must be >= 1"));
            }
            c.at_most("workload.num_tasks", num_tasks, limits::MAX_TASKS, |n| {
                format!("{} of task records per env", human_bytes(100.0 * n as f64))
            })?;
            let arrivals = c.required("workload.arrivals", w.arrivals.as_ref(), &why)?;
            let file_classes = c.required("workload.classes", w.classes.as_ref(), &why)?;
            if file_classes.is_empty() {
                return Err(c.err("workload.classes", "needs at least one class"));
            }
            let mut classes = Vec::with_capacity(file_classes.len());
            for (i, cf) in file_classes.iter().enumerate() {
                let key = |k: &str| format!("workload.classes[{i}].{k}");
                let demand = c.per_resource(&key("demand"), &cf.demand, nr)?;
                fits(&demand, &format!("class `{}`", cf.name))
                    .map_err(|reason| c.err(&key("demand"), reason))?;
                let noise = c.non_negative(&key("estimate_noise"), cf.estimate_noise)?;
                if noise >= 1.0 {
                    return Err(c.err(&key("estimate_noise"), "must be < 1"));
                }
                classes.push(TaskClass {
                    name: cf.name.clone(),
                    weight: c.non_negative(&key("weight"), cf.weight)?,
                    demand,
                    duration_s: resolve_duration(&cf.duration, &key("duration"), c)?,
                    estimate_noise: noise,
                    priority: cf.priority,
                    deadline_factor: cf
                        .deadline_factor
                        .map(|f| c.positive(&key("deadline_factor"), f))
                        .transpose()?,
                });
            }
            if classes.iter().map(|cl| cl.weight).sum::<f64>() <= 0.0 {
                return Err(c.err("workload.classes", "the class weights sum to 0"));
            }
            let (process, load) = resolve_arrivals(arrivals, c)?;
            let total_weight: f64 = classes.iter().map(|cl| cl.weight).sum();
            let mean_duration_s = classes
                .iter()
                .map(|cl| cl.weight / total_weight * cl.duration_s.mean_s())
                .sum();
            let max_priority = classes.iter().map(|cl| cl.priority).max().unwrap_or(0);
            let synthetic = Synthetic::new(num_tasks, process, classes);
            Ok(ResolvedWorkload {
                source: Arc::new(synthetic.clone()),
                synthetic: Some((synthetic, load)),
                list: None,
                deeprm: None,
                max_priority,
                mean_duration_s,
            })
        }
        WorkloadKind::List | WorkloadKind::Csv => {
            let tasks = if w.kind == WorkloadKind::List {
                let file_tasks = c.required("workload.tasks", w.tasks.as_ref(), &why)?;
                let mut tasks = Vec::with_capacity(file_tasks.len());
                for (i, t) in file_tasks.iter().enumerate() {
                    let key = |k: &str| format!("workload.tasks[{i}].{k}");
                    let estimate_s = t.estimate_s.unwrap_or(t.duration_s);
                    tasks.push(TaskSpec {
                        id: t.id,
                        arrival_s: c.non_negative(&key("arrival_s"), t.arrival_s)?,
                        duration_s: c.positive(&key("duration_s"), t.duration_s)?,
                        estimate_s: c.positive(&key("estimate_s"), estimate_s)?,
                        demand: c.per_resource(&key("demand"), &t.demand, nr)?,
                        priority: t.priority,
                        deadline_s: t
                            .deadline_s
                            .map(|d| c.non_negative(&key("deadline_s"), d))
                            .transpose()?,
                        gpu_models: 0,
                        estimate_noise: 0.0,
                    });
                }
                tasks
            } else {
                let rel = c.required("workload.path", w.path.as_ref(), &why)?;
                let csv_path = relative_to(path, rel);
                TaskList::from_csv(&csv_path, resources)
                    .map_err(|e| c.err("workload.path", e.to_string()))?
                    .tasks()
                    .to_vec()
            };
            if tasks.is_empty() {
                return Err(c.err("workload", "the task list is empty"));
            }
            for t in &tasks {
                fits(&t.demand, &format!("task {}", t.id))
                    .map_err(|reason| c.err("workload", reason))?;
            }
            let mean_duration_s =
                tasks.iter().map(|t| t.estimate_s).sum::<f64>() / tasks.len() as f64;
            let max_priority = tasks.iter().map(|t| t.priority).max().unwrap_or(0);
            let list = TaskList::new(tasks);
            // Without replay keys a list replays exactly, at its own times, as it always has.
            let source: Arc<dyn TaskSource> = if has_replay_keys(w) {
                let options = replay_options(w, c)?;
                Arc::new(replay(list.tasks().to_vec(), &options, c)?)
            } else {
                Arc::new(list.clone())
            };
            Ok(ResolvedWorkload {
                source,
                synthetic: None,
                list: Some(list),
                deeprm: None,
                max_priority,
                mean_duration_s,
            })
        }
        WorkloadKind::Swf | WorkloadKind::Alibaba | WorkloadKind::Tiresias => Err(c.err(
            "workload.kind",
            "trace workloads are only for cluster scenarios",
        )),
        WorkloadKind::Deeprm => {
            let p = c.required("workload.arrival_prob", w.arrival_prob, &why)?;
            if !(0.0..=1.0).contains(&p) {
                return Err(c.err(
                    "workload.arrival_prob",
                    format!("must be in [0, 1], got {p}"),
                ));
            }
            let max_demand = w.max_demand.unwrap_or(10);
            if max_demand < 2 {
                return Err(c.err("workload.max_demand", "must be >= 2"));
            }
            let generator = DeepRmGenerator {
                arrival_prob: p,
                num_steps: c.at_most(
                    "workload.num_steps",
                    match c.required("workload.num_steps", w.num_steps, &why)? {
                        0 => return Err(c.err("workload.num_steps", "must be >= 1")),
                        n => n as usize,
                    },
                    limits::MAX_TASKS,
                    |n| {
                        format!(
                            "up to {n} jobs, {} of task records per env",
                            human_bytes(100.0 * n as f64)
                        )
                    },
                )? as u32,
                num_resources: nr,
                max_demand,
            };
            Ok(ResolvedWorkload {
                source: Arc::new(generator.clone()),
                synthetic: None,
                list: None,
                deeprm: Some(generator),
                max_priority: 0,
                mean_duration_s: 4.1,
            })
        }
    }
}

fn resolve_arrivals(
    a: &ArrivalsFile,
    c: &Check<'_>,
) -> Result<(ArrivalProcess, Option<f64>), ScenarioError> {
    // The rate is either given or derived later from the offered load; a placeholder of 1
    // is replaced by `with_mean_rate` in that case.
    let (rate, load) = match (a.rate_per_s, a.offered_load) {
        (Some(r), None) => (
            c.within("workload.arrivals.rate_per_s", r, limits::RATE_PER_S)?,
            None,
        ),
        (None, Some(l)) => (1.0, Some(c.positive("workload.arrivals.offered_load", l)?)),
        _ => {
            return Err(c.err(
                "workload.arrivals",
                "give exactly one of `rate_per_s` and `offered_load`",
            ));
        }
    };
    let why = format!(
        "for process = \"{}\"",
        format!("{:?}", a.process).to_lowercase()
    );
    let process = match a.process {
        ProcessFile::Poisson => {
            for (k, v) in [
                ("burst_ratio", a.burst_ratio),
                ("mean_calm_s", a.mean_calm_s),
                ("mean_burst_s", a.mean_burst_s),
                ("amplitude", a.amplitude),
                ("period_s", a.period_s),
            ] {
                c.unused(&format!("workload.arrivals.{k}"), &v, &why)?;
            }
            ArrivalProcess::Poisson { rate_per_s: rate }
        }
        ProcessFile::Mmpp => {
            for (k, v) in [("amplitude", a.amplitude), ("period_s", a.period_s)] {
                c.unused(&format!("workload.arrivals.{k}"), &v, &why)?;
            }
            let burst_ratio = c.positive(
                "workload.arrivals.burst_ratio",
                c.required("workload.arrivals.burst_ratio", a.burst_ratio, &why)?,
            )?;
            ArrivalProcess::Mmpp {
                mean_rate_per_s: rate,
                burst_ratio,
                mean_calm_s: c.time_s(
                    "workload.arrivals.mean_calm_s",
                    c.required("workload.arrivals.mean_calm_s", a.mean_calm_s, &why)?,
                    false,
                )?,
                mean_burst_s: c.time_s(
                    "workload.arrivals.mean_burst_s",
                    c.required("workload.arrivals.mean_burst_s", a.mean_burst_s, &why)?,
                    false,
                )?,
            }
        }
        ProcessFile::Diurnal => {
            for (k, v) in [
                ("burst_ratio", a.burst_ratio),
                ("mean_calm_s", a.mean_calm_s),
                ("mean_burst_s", a.mean_burst_s),
            ] {
                c.unused(&format!("workload.arrivals.{k}"), &v, &why)?;
            }
            let amplitude = c.non_negative(
                "workload.arrivals.amplitude",
                c.required("workload.arrivals.amplitude", a.amplitude, &why)?,
            )?;
            if amplitude > 1.0 {
                return Err(c.err("workload.arrivals.amplitude", "must be in [0, 1]"));
            }
            ArrivalProcess::Diurnal {
                mean_rate_per_s: rate,
                amplitude,
                period_s: c.time_s(
                    "workload.arrivals.period_s",
                    c.required("workload.arrivals.period_s", a.period_s, &why)?,
                    false,
                )?,
            }
        }
    };
    Ok((process, load))
}

fn resolve_duration(
    d: &DurationFile,
    key: &str,
    c: &Check<'_>,
) -> Result<DurationDist, ScenarioError> {
    let k = |name: &str| format!("{key}.{name}");
    let why = format!("for dist = \"{}\"", format!("{:?}", d.dist).to_lowercase());
    let need = |name: &str, v: Option<f64>| c.required(&k(name), v, &why);
    let allowed: &[&str] = match d.dist {
        DistFile::Fixed => &["value_s"],
        DistFile::Uniform => &["min_s", "max_s"],
        DistFile::Exponential => &["mean_s", "min_s"],
        DistFile::Lognormal => &["mean_s", "sigma"],
    };
    for (name, v) in [
        ("value_s", d.value_s),
        ("min_s", d.min_s),
        ("max_s", d.max_s),
        ("mean_s", d.mean_s),
        ("sigma", d.sigma),
    ] {
        if !allowed.contains(&name) {
            c.unused(&k(name), &v, &why)?;
        }
    }
    Ok(match d.dist {
        DistFile::Fixed => DurationDist::Fixed {
            value_s: c.time_s(&k("value_s"), need("value_s", d.value_s)?, false)?,
        },
        DistFile::Uniform => {
            let min_s = c.time_s(&k("min_s"), need("min_s", d.min_s)?, false)?;
            let max_s = c.time_s(&k("max_s"), need("max_s", d.max_s)?, false)?;
            if max_s < min_s {
                return Err(c.err(
                    &k("max_s"),
                    format!("must be >= min_s ({min_s}), got {max_s}"),
                ));
            }
            DurationDist::Uniform { min_s, max_s }
        }
        DistFile::Exponential => DurationDist::Exponential {
            min_s: c.time_s(&k("min_s"), d.min_s.unwrap_or(0.0), true)?,
            mean_s: c.time_s(&k("mean_s"), need("mean_s", d.mean_s)?, false)?,
        },
        DistFile::Lognormal => DurationDist::LogNormal {
            mean_s: c.time_s(&k("mean_s"), need("mean_s", d.mean_s)?, false)?,
            sigma: c.within(
                &k("sigma"),
                need("sigma", d.sigma)?,
                f64::MIN_POSITIVE..=limits::MAX_SIGMA,
            )?,
        },
    })
}

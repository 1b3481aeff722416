//! Trace workloads (SWF, Alibaba GPU v2023, Tiresias): loading the files a scenario names
//! and turning a loaded trace into the scenario's workload (tasks that fit the cluster); and
//! the replay keys every replayed kind shares (window, load factor, split, perturbation).

use super::file::{WorkloadFile, WorkloadKind};
use super::replay::{replay, replay_keys, replay_options};
use super::validate::{Check, ScenarioError};
use super::workload::{ResolvedWorkload, relative_to};
use crate::cluster::OversizePolicy;
use crate::trace::{self, LoadedTrace};
use crate::workload::TaskSpec;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Loads the trace a trace workload names (paths relative to the scenario file).
pub(super) fn load_trace(
    w: &WorkloadFile,
    path: &Path,
    c: &Check<'_>,
) -> Result<Option<LoadedTrace>, ScenarioError> {
    let why = format!(
        "when workload.kind = \"{}\"",
        format!("{:?}", w.kind).to_lowercase()
    );
    let is_trace = w.kind.is_trace();
    for (key, present, kind) in [
        ("workload.nodes", w.nodes.is_some(), WorkloadKind::Alibaba),
        (
            "workload.cluster",
            w.cluster.is_some(),
            WorkloadKind::Tiresias,
        ),
    ] {
        if present && w.kind != kind {
            return Err(c.err(key, format!("is not used {why}")));
        }
    }
    for (key, present) in replay_keys(w) {
        if present && !w.kind.is_replay() {
            return Err(c.err(key, format!("is not used {why}")));
        }
    }
    if w.lenient.is_some() && !is_trace {
        return Err(c.err("workload.lenient", format!("is not used {why}")));
    }
    if !is_trace {
        return Ok(None);
    }
    for (key, present) in [
        ("workload.num_tasks", w.num_tasks.is_some()),
        ("workload.arrivals", w.arrivals.is_some()),
        ("workload.classes", w.classes.is_some()),
        ("workload.tasks", w.tasks.is_some()),
        ("workload.arrival_prob", w.arrival_prob.is_some()),
        ("workload.num_steps", w.num_steps.is_some()),
        ("workload.max_demand", w.max_demand.is_some()),
    ] {
        if present {
            return Err(c.err(key, format!("is not used {why}")));
        }
    }
    let file = |key: &str, rel: &Option<String>| -> Result<PathBuf, ScenarioError> {
        Ok(relative_to(path, c.required(key, rel.as_ref(), &why)?))
    };
    let lenient = w.lenient.unwrap_or(false);
    let main = file("workload.path", &w.path)?;
    // Every kind has its own arm, so that a new kind cannot fall through to another parser.
    let loaded = match w.kind {
        WorkloadKind::Swf => trace::swf::load(&main, lenient),
        WorkloadKind::Alibaba => {
            trace::alibaba::load(&file("workload.nodes", &w.nodes)?, &main, lenient)
        }
        WorkloadKind::Tiresias => {
            trace::tiresias::load(&main, &file("workload.cluster", &w.cluster)?, lenient)
        }
        WorkloadKind::Synthetic | WorkloadKind::List | WorkloadKind::Csv | WorkloadKind::Deeprm => {
            return Ok(None);
        }
    };
    loaded
        .map(Some)
        .map_err(|e| c.err("workload.path", e.to_string()))
}

/// A loaded trace as the scenario's workload: window, load factor, and tasks that fit.
pub(super) fn resolve_trace(
    t: LoadedTrace,
    w: &WorkloadFile,
    c: &Check<'_>,
    fits: impl Fn(&TaskSpec) -> bool,
    oversize: OversizePolicy,
) -> Result<ResolvedWorkload, ScenarioError> {
    let options = replay_options(w, c)?;
    let mut num_fitting = 0;
    for task in &t.tasks {
        if fits(task) {
            num_fitting += 1;
        } else if oversize == OversizePolicy::Reject {
            return Err(c.err(
                "workload",
                format!(
                    "task {}: demand {:?} fits no server of the cluster (size, GPUs, GPU model \
                     or reservation); set workload.oversize = \"drop\" to drop such tasks",
                    task.id,
                    &task.demand[..t.resources.len()]
                ),
            ));
        }
    }
    if num_fitting == 0 {
        return Err(c.err("workload", "no task of the trace fits any server"));
    }
    let mean_duration_s = t.tasks.iter().map(|t| t.estimate_s).sum::<f64>() / t.tasks.len() as f64;
    let max_priority = t.tasks.iter().map(|t| t.priority).max().unwrap_or(0);
    Ok(ResolvedWorkload {
        source: Arc::new(replay(t.tasks, &options, c)?),
        synthetic: None,
        list: None,
        deeprm: None,
        max_priority,
        mean_duration_s,
    })
}

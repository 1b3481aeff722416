//! Resolving a DeepRM scenario (`model = "deeprm"`) into a [`DeepRmConfig`].

use super::file::{DeepRmFile, OversizeFile};
use super::replay::replay_keys;
use super::validate::{Check, ScenarioError, human_bytes, limits};
use super::workload::{data_files, resolve_workload};
use crate::deeprm::DeepRmConfig;
use crate::workload::DeepRmGenerator;
use std::path::Path;

pub(super) fn resolve_deeprm(file: DeepRmFile, path: &Path) -> Result<DeepRmConfig, ScenarioError> {
    let c = Check(path);
    c.resources(&file.resources)?;
    let nr = file.resources.len();
    let capacity = c.per_resource("capacity", &file.capacity, nr)?;
    if capacity[..nr].contains(&0) {
        return Err(c.err("capacity", "every resource needs at least 1 unit"));
    }
    if file.horizon < 2 {
        return Err(c.err("horizon", "must be >= 2"));
    }
    if file.num_slots == 0 {
        return Err(c.err("num_slots", "must be >= 1"));
    }
    if file.max_steps == 0 {
        return Err(c.err("max_steps", "must be >= 1"));
    }
    let floats = |n: usize| format!("{} per env", human_bytes(4.0 * n as f64));
    c.at_most("horizon", file.horizon, limits::MAX_HORIZON, |h| {
        format!(
            "an image of {h} × {nr} floats, {}",
            floats(h.saturating_mul(nr))
        )
    })?;
    c.at_most("num_slots", file.num_slots, limits::MAX_SLOTS, floats)?;
    c.at_most("backlog_cap", file.backlog_cap, limits::MAX_BACKLOG, floats)?;
    if file.workload.kind.is_trace() {
        return Err(c.err(
            "workload.kind",
            "DeepRM scenarios take kind = \"deeprm\", \"list\" or \"csv\"",
        ));
    }
    let w = &file.workload;
    // Time is in whole steps, which rescaled or jittered arrivals or absolute trace times
    // would break; windows and a split of a list keep whole steps (a window is shifted by
    // its first, whole, arrival).
    let breaks_steps = ["workload.load_factor", "workload.perturb", "workload.times"];
    let unused = replay_keys(w)
        .into_iter()
        .find(|&(key, present)| present && (!w.kind.is_replay() || breaks_steps.contains(&key)))
        .map(|(key, _)| key)
        .or(w.lenient.is_some().then_some("workload.lenient"));
    if let Some(key) = unused {
        return Err(c.err(
            key,
            "is not used in this DeepRM scenario (time is in whole steps; windows and \
             a split apply to kind = \"list\" or \"csv\")",
        ));
    }
    let reject = matches!(file.workload.oversize, OversizeFile::Reject);
    let horizon = file.horizon;
    let resolved = resolve_workload(&file.workload, &file.resources, &c, path, |demand, what| {
        if reject && (0..nr).any(|r| demand[r] > capacity[r]) {
            Err(format!(
                "{what}: demand {:?} exceeds the machine's capacity",
                &demand[..nr]
            ))
        } else {
            Ok(())
        }
    })?;
    let source = match resolved.synthetic {
        Some(_) => {
            return Err(c.err(
                "workload.kind",
                "DeepRM scenarios take kind = \"deeprm\", \"list\" or \"csv\"",
            ));
        }
        None => resolved.source,
    };
    // DeepRM time is in whole steps: check explicit lists here, with task ids.
    if let Some(list) = resolved.list {
        for t in list.tasks() {
            let whole = |x: f64| x.fract() == 0.0;
            if !whole(t.arrival_s) || !whole(t.duration_s) {
                return Err(c.err(
                    "workload",
                    format!(
                        "task {}: arrival_s and duration_s must be whole steps",
                        t.id
                    ),
                ));
            }
            if reject && t.duration_s as usize >= horizon {
                return Err(c.err(
                    "workload",
                    format!(
                        "task {}: length {} does not fit the horizon {horizon}",
                        t.id, t.duration_s
                    ),
                ));
            }
        }
    }
    if let Some(g) = &resolved.deeprm {
        if DeepRmGenerator::LARGE_LEN.1 as usize >= horizon {
            return Err(c.err(
                "horizon",
                format!(
                    "must exceed the generator's longest job ({})",
                    DeepRmGenerator::LARGE_LEN.1
                ),
            ));
        }
        if capacity[..nr].iter().any(|&cap| cap < g.max_demand) {
            return Err(c.err("workload.max_demand", "exceeds the machine's capacity"));
        }
    }
    Ok(DeepRmConfig {
        resources: file.resources,
        capacity,
        horizon,
        num_slots: file.num_slots,
        backlog_cap: file.backlog_cap,
        max_steps: file.max_steps,
        max_decisions: file.max_decisions,
        hold_limit: file.hold_limit,
        slot_order: file.slot_order.into(),
        reward: c.reward(&file.reward)?,
        seed: file.seed,
        workload: source,
        source_files: data_files(&file.workload, path),
    })
}

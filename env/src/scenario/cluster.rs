//! Resolving a cluster scenario (`model = "cluster"`) into a [`ClusterConfig`]: one small
//! function per section, called in the order the checks have always run (so the first error
//! a broken file reports does not depend on this file's layout).

use super::file::{
    ActionModeFile, ActionsFile, ClusterFile, FailureModelFile, FailuresFile, ForecastFile,
    GpuFile, HealthFile, IllegalFile, KillFile, OversizeFile, PlacementRuleFile, PowerFile,
    PowerModelFile, PreemptionFile, ReservationFile, ServerObsFile, ServerTypeFile, TimeFile,
    TimeModeFile,
};
use super::trace::{load_trace, resolve_trace};
use super::validate::{Check, ScenarioError, human_bytes, limits};
use super::workload::{ResolvedWorkload, data_files, resolve_workload};
use crate::cluster::{
    ActionMode, ClusterConfig, Discipline, Forecast, GpuConfig, HealthModel, IllegalAction,
    KillPolicy, MAX_GPUS, OversizePolicy, PlacementRule, Preemption, Reservation, ServerObs,
    ServerType, TimeMode, fits_some_server_type,
};
use crate::trace::LoadedTrace;
use crate::workload::{MAX_RESOURCES, Synthetic, TaskSource};
use std::path::Path;
use std::sync::Arc;

pub(super) fn resolve_cluster(
    file: ClusterFile,
    path: &Path,
) -> Result<ClusterConfig, ScenarioError> {
    let c = Check(path);
    if file.name.trim().is_empty() {
        return Err(c.err("name", "must not be empty"));
    }
    let loaded = load_trace(&file.workload, path, &c)?;
    let resources = resolve_resources(file.resources, loaded.as_ref(), &c)?;
    let nr = resources.len();
    let mut gpu = file
        .gpu
        .as_ref()
        .map(|g| resolve_gpu(g, &resources, &c))
        .transpose()?;
    let mut server_types = if file.server_types.is_empty() {
        match loaded.as_ref().and_then(|t| t.cluster.clone()) {
            Some(cluster) => {
                if gpu.is_none() {
                    gpu = cluster.gpu;
                }
                cluster.server_types
            }
            None => return Err(c.err("server_types", "needs at least one server type")),
        }
    } else {
        resolve_server_types(&file.server_types, nr, &mut gpu, &c)?
    };
    if let Some(g) = &gpu {
        check_whole_gpus(g, &server_types, &c)?;
    }
    let on_kill = match &file.failures {
        Some(f) => apply_failures(f, &mut server_types, &c)?,
        None => KillPolicy::Requeue,
    };
    let (idle_timeout_s, boot_s) = match &file.power {
        Some(p) => apply_power(p, &mut server_types, &c)?,
        None => (None, 0.0),
    };
    let reservations = resolve_reservations(&file.reservations, &c)?;
    if file.queue.num_slots == 0 {
        return Err(c.err("queue.num_slots", "must be >= 1"));
    }
    let (step_s, max_time_s) = resolve_time(&file.time, &c)?;
    let oversize = match file.workload.oversize {
        OversizeFile::Reject => OversizePolicy::Reject,
        OversizeFile::Drop => OversizePolicy::Drop,
    };
    let resolved = match loaded {
        Some(t) => resolve_trace(
            t,
            &file.workload,
            &c,
            |spec| fits_some_server_type(spec, &server_types, gpu.as_ref(), &reservations),
            oversize,
        )?,
        None => resolve_workload(&file.workload, &resources, &c, path, |demand, what| {
            if oversize == OversizePolicy::Reject && !fits_empty_server(demand, &server_types, nr) {
                Err(format!(
                    "{what}: demand {:?} is larger than every server",
                    &demand[..nr]
                ))
            } else {
                Ok(())
            }
        })?,
    };
    let max_priority = resolved.max_priority;
    let mean_duration_s = resolved.mean_duration_s;
    let workload = apply_offered_load(resolved, &server_types, nr, &c)?;
    let time_scale_s = match file.observation.time_scale_s {
        Some(s) => c.positive("observation.time_scale_s", s)?,
        None => mean_duration_s,
    };
    let (action_mode, placement_rule, illegal_action) = actions(&file.actions);
    let discipline = match file.actions.discipline.as_deref() {
        None => Discipline::Greedy,
        Some(name) => Discipline::from_name(name).ok_or_else(|| {
            let names: Vec<&str> = Discipline::ALL.iter().map(|(_, n)| *n).collect();
            c.err(
                "actions.discipline",
                format!("unknown discipline `{name}` (one of: {})", names.join(", ")),
            )
        })?,
    };
    if discipline.commits() && action_mode != ActionMode::Slot {
        return Err(c.err(
            "actions.discipline",
            format!(
                "`{}` needs actions.mode = \"slot\" (an action chooses a task; the placement \
                 rule picks its server when it starts)",
                discipline.name()
            ),
        ));
    }
    let health = health(
        file.failures.as_ref().and_then(|f| f.health.as_ref()),
        &server_types,
        &c,
    )?;
    let preemption = match &file.preemption {
        Some(p) => Some(preemption(p, discipline, file.observation.servers, &c)?),
        None => None,
    };
    let config = ClusterConfig {
        resources,
        server_types,
        num_slots: file.queue.num_slots,
        backlog_cap: file.queue.backlog_cap,
        slot_order: file.queue.slot_order.into(),
        hold_limit_s: match file.queue.hold_limit_s {
            Some(h) => Some(c.non_negative("queue.hold_limit_s", h)?),
            None => None,
        },
        time_mode: match file.time.mode {
            TimeModeFile::Event => TimeMode::EventDriven,
            TimeModeFile::Stepped => TimeMode::Stepped,
        },
        step_s,
        max_time_s,
        max_decisions: file.time.max_decisions,
        action_mode,
        placement_rule,
        discipline,
        illegal_action,
        oversize,
        reward: c.reward(&file.reward)?,
        time_scale_s,
        max_priority,
        seed: file.seed,
        workload,
        gpu,
        on_kill,
        idle_timeout_s,
        boot_s,
        reservations,
        server_obs: match file.observation.servers {
            ServerObsFile::PerServer => ServerObs::PerServer,
            ServerObsFile::PerType => ServerObs::PerType,
        },
        extended_features: file.observation.extended,
        forecast: forecast(file.observation.forecast.as_ref(), &c)?,
        health,
        preemption,
        source_files: data_files(&file.workload, path),
    };
    check_sizes(&config, &c)?;
    Ok(config)
}

/// The resource names: the file's, or the trace's when the file gives none.
fn resolve_resources(
    named: Vec<String>,
    trace: Option<&LoadedTrace>,
    c: &Check<'_>,
) -> Result<Vec<String>, ScenarioError> {
    let resources = match trace {
        Some(t) if named.is_empty() => t.resources.clone(),
        Some(t) if named.len() != t.resources.len() => {
            return Err(c.err(
                "resources",
                format!(
                    "this trace has {} resources ({}); give as many names or none",
                    t.resources.len(),
                    t.resources.join(", ")
                ),
            ));
        }
        _ => named,
    };
    c.resources(&resources)?;
    Ok(resources)
}

fn resolve_gpu(
    g: &GpuFile,
    resources: &[String],
    c: &Check<'_>,
) -> Result<GpuConfig, ScenarioError> {
    let resource = resources
        .iter()
        .position(|r| *r == g.resource)
        .ok_or_else(|| {
            c.err(
                "gpu.resource",
                format!("`{}` is not a resource", g.resource),
            )
        })?;
    if g.units_per_gpu == 0 || g.units_per_gpu > u32::from(u16::MAX) {
        return Err(c.err("gpu.units_per_gpu", "must be in 1..=65535"));
    }
    Ok(GpuConfig {
        resource,
        units_per_gpu: g.units_per_gpu,
        models: g.models.clone(),
    })
}

/// `[failures] health = { lead_s, announced, noise, sample_s }` (all optional).
fn health(
    file: Option<&HealthFile>,
    server_types: &[ServerType],
    c: &Check<'_>,
) -> Result<Option<HealthModel>, ScenarioError> {
    let Some(file) = file else {
        return Ok(None);
    };
    if server_types.iter().all(|t| t.failure.is_none()) {
        return Err(c.err(
            "failures.health",
            "no server type can fail (give mttf_s and mttr_s)",
        ));
    }
    let unit = |key: &str, value: f64| c.within(key, value, 0.0..=1.0);
    Ok(Some(HealthModel {
        lead_s: c.time_s(
            "failures.health.lead_s",
            file.lead_s.unwrap_or(1800.0),
            false,
        )?,
        announced: unit("failures.health.announced", file.announced.unwrap_or(0.8))?,
        noise: unit("failures.health.noise", file.noise.unwrap_or(0.1))?,
        sample_s: c.time_s(
            "failures.health.sample_s",
            file.sample_s.unwrap_or(60.0),
            false,
        )?,
    }))
}

/// `[preemption]`: `actions` (default both `"preempt"` and `"migrate"`), `running_rows`
/// (default 8), `checkpoint_s` (default: no checkpoints), `restart_s`, `migration_s`,
/// `gpu_migration_s` (default 0), `decide_every_s` (default: decisions at events only).
fn preemption(
    file: &PreemptionFile,
    discipline: Discipline,
    servers: ServerObsFile,
    c: &Check<'_>,
) -> Result<Preemption, ScenarioError> {
    if discipline.commits() {
        return Err(c.err(
            "preemption",
            format!(
                "needs actions.discipline = \"greedy\" (under `{}` the env runs the clock \
                 itself until a chosen task starts, so no decision could preempt)",
                discipline.name()
            ),
        ));
    }
    let (mut preempt, mut migrate) = (false, false);
    for name in file
        .actions
        .as_deref()
        .unwrap_or(&["preempt".into(), "migrate".into()])
    {
        match name.as_str() {
            "preempt" => preempt = true,
            "migrate" => migrate = true,
            other => {
                return Err(c.err(
                    "preemption.actions",
                    format!("unknown action `{other}` (one of: preempt, migrate)"),
                ));
            }
        }
    }
    if migrate && matches!(servers, ServerObsFile::PerType) {
        return Err(c.err(
            "preemption.actions",
            "`migrate` names a destination server, so it needs observation.servers = \
             \"per_server\"",
        ));
    }
    let running_rows = file.running_rows.unwrap_or(8);
    if running_rows == 0 {
        return Err(c.err("preemption.running_rows", "must be >= 1"));
    }
    c.at_most(
        "preemption.running_rows",
        running_rows,
        limits::MAX_SLOTS,
        |n| format!("{n} rows of features per observation"),
    )?;
    let delay = |key: &str, value: Option<f64>| c.time_s(key, value.unwrap_or(0.0), true);
    Ok(Preemption {
        running_rows,
        preempt,
        migrate,
        checkpoint_s: match file.checkpoint_s {
            Some(s) => c.time_s("preemption.checkpoint_s", s, false)?,
            None => f64::INFINITY,
        },
        restart_s: delay("preemption.restart_s", file.restart_s)?,
        migration_s: delay("preemption.migration_s", file.migration_s)?,
        gpu_migration_s: delay("preemption.gpu_migration_s", file.gpu_migration_s)?,
        decide_every_s: match file.decide_every_s {
            Some(s) => Some(c.time_s("preemption.decide_every_s", s, false)?),
            None => None,
        },
    })
}

/// `[observation] forecast = { window_s = 600, period_s = 86400 }` (both optional).
fn forecast(file: Option<&ForecastFile>, c: &Check<'_>) -> Result<Option<Forecast>, ScenarioError> {
    let Some(file) = file else {
        return Ok(None);
    };
    let window_s = c.time_s(
        "observation.forecast.window_s",
        file.window_s.unwrap_or(600.0),
        false,
    )?;
    let period_s = c.time_s(
        "observation.forecast.period_s",
        file.period_s.unwrap_or(86_400.0),
        false,
    )?;
    if period_s < window_s {
        return Err(c.err(
            "observation.forecast.period_s",
            format!("{period_s} s is shorter than window_s ({window_s} s)"),
        ));
    }
    Ok(Some(Forecast { window_s, period_s }))
}

/// Every size of the resolved config within [`limits`], before any env allocates for it.
fn check_sizes(config: &ClusterConfig, c: &Check<'_>) -> Result<(), ScenarioError> {
    let floats = |n: usize| format!("{} per env", human_bytes(4.0 * n as f64));
    c.at_most(
        "queue.num_slots",
        config.num_slots,
        limits::MAX_SLOTS,
        floats,
    )?;
    c.at_most(
        "queue.backlog_cap",
        config.backlog_cap,
        limits::MAX_BACKLOG,
        floats,
    )?;
    let servers = config.num_servers().unwrap_or(usize::MAX);
    c.at_most(
        "server_types[].count (all types)",
        servers,
        limits::MAX_SERVERS,
        |n| format!("{} of server state per env", human_bytes(200.0 * n as f64)),
    )?;
    let actions = config.num_actions().unwrap_or(usize::MAX);
    c.at_most(
        "queue.num_slots",
        actions,
        limits::MAX_ACTIONS,
        |n| format!("{n} actions = slots × {servers} servers + wait: a mask and logits of {} per decision; use actions.mode = \"slot\"", floats(n)),
    )?;
    let obs = config
        .obs_layout()
        .and_then(|l| l.checked_dim())
        .unwrap_or(usize::MAX);
    c.at_most("observation.servers", obs, limits::MAX_OBS, |n| {
        format!(
            "an observation of {n} floats, {}; use observation.servers = \"per_type\"",
            floats(n)
        )
    })?;
    Ok(())
}

/// The file's server types. A `gpu_model` the `[gpu]` section does not list is appended to
/// its models.
fn resolve_server_types(
    types: &[ServerTypeFile],
    nr: usize,
    gpu: &mut Option<GpuConfig>,
    c: &Check<'_>,
) -> Result<Vec<ServerType>, ScenarioError> {
    let mut server_types = Vec::with_capacity(types.len());
    for (t, st) in types.iter().enumerate() {
        let key = |k: &str| format!("server_types[{t}].{k}");
        if st.count == 0 {
            return Err(c.err(&key("count"), "must be >= 1"));
        }
        c.at_most(&key("count"), st.count, limits::MAX_SERVERS, |n| {
            format!("{} of server state per env", human_bytes(200.0 * n as f64))
        })?;
        let gpu_model = match (&st.gpu_model, &mut *gpu) {
            (None, _) => None,
            (Some(_), None) => return Err(c.err(&key("gpu_model"), "needs a [gpu] section")),
            (Some(m), Some(g)) => Some(g.models.iter().position(|x| x == m).unwrap_or_else(|| {
                g.models.push(m.clone());
                g.models.len() - 1
            })),
        };
        let mut ty = ServerType::new(
            &st.name,
            st.count,
            &c.per_resource(&key("capacity"), &st.capacity, nr)?[..nr],
            c.within(&key("speed"), st.speed, limits::SPEED)?,
        );
        ty.gpu_model = gpu_model;
        ty.failure = st
            .failure
            .map(|f| c.failure_model(&key("failure"), f))
            .transpose()?;
        ty.power = st
            .power
            .map(|p| c.power_model(&key("power"), p))
            .transpose()?;
        server_types.push(ty);
    }
    Ok(server_types)
}

/// With per-GPU tracking, every type's GPU capacity is a whole number of GPUs (at most
/// [`MAX_GPUS`]), and there are at most 31 models.
fn check_whole_gpus(
    g: &GpuConfig,
    server_types: &[ServerType],
    c: &Check<'_>,
) -> Result<(), ScenarioError> {
    if g.models.len() > 31 {
        return Err(c.err("gpu.models", "at most 31 GPU models"));
    }
    for (t, ty) in server_types.iter().enumerate() {
        if ty.capacity[g.resource] % g.units_per_gpu != 0
            || ty.capacity[g.resource] / g.units_per_gpu > MAX_GPUS as u32
        {
            return Err(c.err(
                &format!("server_types[{t}].capacity"),
                format!(
                    "GPU capacity must be whole GPUs of {} units, at most {MAX_GPUS}",
                    g.units_per_gpu,
                ),
            ));
        }
    }
    Ok(())
}

/// `[failures]`: the kill policy, and the default failure model of types without one.
fn apply_failures(
    f: &FailuresFile,
    server_types: &mut [ServerType],
    c: &Check<'_>,
) -> Result<KillPolicy, ScenarioError> {
    let on_kill = match f.on_kill {
        KillFile::Requeue => KillPolicy::Requeue,
        KillFile::Drop => KillPolicy::Drop,
    };
    match (f.mttf_s, f.mttr_s) {
        (Some(mttf_s), Some(mttr_s)) => {
            let model = c.failure_model("failures", FailureModelFile { mttf_s, mttr_s })?;
            for ty in server_types {
                ty.failure.get_or_insert(model);
            }
        }
        (None, None) => {}
        _ => return Err(c.err("failures", "give both `mttf_s` and `mttr_s`, or neither")),
    }
    Ok(on_kill)
}

/// `[power]`: the idle timeout and boot time, and the default power model of types without
/// one.
fn apply_power(
    p: &PowerFile,
    server_types: &mut [ServerType],
    c: &Check<'_>,
) -> Result<(Option<f64>, f64), ScenarioError> {
    let idle_timeout_s = p
        .idle_timeout_s
        .map(|t| c.positive("power.idle_timeout_s", t))
        .transpose()?;
    let boot_s = c.non_negative("power.boot_s", p.boot_s)?;
    match (p.idle_w, p.peak_w) {
        (Some(idle_w), Some(peak_w)) => {
            let model = c.power_model("power", PowerModelFile { idle_w, peak_w })?;
            for ty in server_types {
                ty.power.get_or_insert(model);
            }
        }
        (None, None) => {}
        _ => return Err(c.err("power", "give both `idle_w` and `peak_w`, or neither")),
    }
    Ok((idle_timeout_s, boot_s))
}

fn resolve_reservations(
    file: &[ReservationFile],
    c: &Check<'_>,
) -> Result<Vec<Reservation>, ScenarioError> {
    let mut reservations = Vec::with_capacity(file.len());
    for (i, r) in file.iter().enumerate() {
        let key = format!("reservations[{i}].fraction");
        let fraction = c.non_negative(&key, r.fraction)?;
        if fraction > 1.0 {
            return Err(c.err(&key, "must be in [0, 1]"));
        }
        if file[..i].iter().any(|o| o.priority == r.priority) {
            return Err(c.err(
                &format!("reservations[{i}].priority"),
                format!("class {} is reserved twice", r.priority),
            ));
        }
        reservations.push(Reservation {
            priority: r.priority,
            fraction,
        });
    }
    if reservations.iter().map(|r| r.fraction).sum::<f64>() > 1.0 {
        return Err(c.err("reservations", "the fractions add up to more than 1"));
    }
    Ok(reservations)
}

/// `[time]`: `(step_s, max_time_s)`, after checking `max_decisions`.
fn resolve_time(t: &TimeFile, c: &Check<'_>) -> Result<(f64, f64), ScenarioError> {
    let step_s = c.positive("time.step_s", t.step_s)?;
    let max_time_s = c.positive("time.max_time_s", t.max_time_s)?;
    if t.max_decisions == 0 {
        return Err(c.err("time.max_decisions", "must be >= 1"));
    }
    Ok((step_s, max_time_s))
}

fn actions(a: &ActionsFile) -> (ActionMode, PlacementRule, IllegalAction) {
    let mode = match a.mode {
        ActionModeFile::Placement => ActionMode::Placement,
        ActionModeFile::Slot => ActionMode::Slot,
    };
    let rule = match a.placement_rule {
        PlacementRuleFile::FirstFit => PlacementRule::FirstFit,
        PlacementRuleFile::BestFit => PlacementRule::BestFit,
        PlacementRuleFile::FastestFit => PlacementRule::FastestFit,
    };
    let illegal = match a.illegal {
        IllegalFile::Error => IllegalAction::Error,
        IllegalFile::Wait => IllegalAction::Wait,
    };
    (mode, rule, illegal)
}

/// True when `demand` fits on an empty server of some type (capacity only).
fn fits_empty_server(
    demand: &[u32; MAX_RESOURCES],
    server_types: &[ServerType],
    nr: usize,
) -> bool {
    server_types
        .iter()
        .any(|t| (0..nr).all(|r| demand[r] <= t.capacity[r]))
}

/// The workload, with a synthetic `offered_load` turned into an arrival rate: it needs the
/// cluster's capacity, so it is resolved last. The rate makes the bottleneck resource `r`
/// receive `rate × E[demand_r × work] = load × Σ_servers capacity_r × speed`.
fn apply_offered_load(
    resolved: ResolvedWorkload,
    server_types: &[ServerType],
    nr: usize,
    c: &Check<'_>,
) -> Result<Arc<dyn TaskSource>, ScenarioError> {
    let (mut synthetic, load) = match resolved.synthetic {
        Some((synthetic, Some(load))) => (synthetic, load),
        Some((synthetic, None)) => return Ok(Arc::new(synthetic)),
        None => return Ok(resolved.source),
    };
    let need = Synthetic::mean_demand_times_duration(&synthetic.classes);
    let rate = (0..nr)
        .filter(|&r| need[r] > 0.0)
        .map(|r| {
            let supply: f64 = server_types
                .iter()
                .map(|t| t.count as f64 * f64::from(t.capacity[r]) * t.speed)
                .sum();
            load * supply / need[r]
        })
        .fold(f64::INFINITY, f64::min);
    if !rate.is_finite() || rate <= 0.0 {
        return Err(c.err(
            "workload.arrivals.offered_load",
            "no resource is both demanded and supplied; cannot derive a rate",
        ));
    }
    if !limits::RATE_PER_S.contains(&rate) {
        return Err(c.err(
            "workload.arrivals.offered_load",
            format!(
                "{load} gives {rate:e} arrivals per second on this cluster, outside [{:e}, {:e}]",
                limits::RATE_PER_S.start(),
                limits::RATE_PER_S.end()
            ),
        ));
    }
    synthetic.arrivals = synthetic.arrivals.with_mean_rate(rate);
    Ok(Arc::new(Synthetic::new(
        synthetic.num_tasks,
        synthetic.arrivals,
        synthetic.classes,
    )))
}

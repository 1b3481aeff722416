//! Alibaba GPU cluster trace v2023 (Weng et al., "Beware of Fragmentation", ATC'23).
//!
//! Resources: `cpu_milli` (thousandths of a core), `memory_mib`, `gpu_milli` (1000 per
//! whole GPU). GPUs are tracked one by one (see [`GpuConfig`]).
//!
//! **Nodes** (`openb_node_list_all_node.csv`: `sn,cpu_milli,memory_mib,gpu,model`): nodes
//! with the same (cpu, memory, GPUs, model) form one server type, in order of first
//! appearance; a node's GPU model becomes its type's `gpu_model`.
//!
//! **Pods** (`openb_pod_list_*.csv`), per pod:
//! - demand: `cpu_milli`, `memory_mib`, and `gpu_milli` = `num_gpu × 1000`, except a pod
//!   with `num_gpu = 1` and `0 < gpu_milli < 1000`, which asks for that share of one GPU;
//! - allowed GPU models: `gpu_spec` (`|`-separated; empty = any); a list naming no model
//!   of the node list can never be placed (the scenario rejects it as fitting no server);
//! - priority from `qos`: BE 0, Burstable 1, LS 2, Guaranteed 3 (other values: an error);
//! - arrival = `creation_time`; work = `deletion_time − scheduled_time`; the estimate is the
//!   work (the trace has no user estimate);
//! - the id is the pod's line number in the file (names are `openb-pod-NNNN`).
//!
//! Tasks without an end: pods still `Running` when the trace was taken carry the trace's
//! end as their deletion time, so they replay as running until then (censored durations).
//! Pods never scheduled (`Pending` at deletion, no `scheduled_time`) and pods with work
//! <= 0 have no run to replay: they are skipped and counted in
//! [`LoadReport::num_skipped`]. A file without the time columns (`multigpu50` in the
//! shipped data) is an error naming the missing column.

use super::{LineErrors, LoadReport, LoadedTrace, TraceCluster, TraceError, columns};
use crate::cluster::{GpuConfig, ServerType};
use crate::workload::TaskSpec;
use std::path::Path;

/// The resource list of this trace.
pub const RESOURCES: [&str; 3] = ["cpu_milli", "memory_mib", "gpu_milli"];
/// `gpu_milli` units per whole GPU.
pub const MILLI_PER_GPU: u32 = 1000;
/// Model bit of a `gpu_spec` that names no model of the node list: no server has it.
const UNKNOWN_MODEL_BIT: u32 = 1 << 31;

/// Reads the node list and a pod list (see the module docs).
pub fn load(nodes: &Path, pods: &Path, lenient: bool) -> Result<LoadedTrace, TraceError> {
    let cluster = parse_nodes(&super::read(nodes)?, nodes, lenient)?;
    parse_pods(&super::read(pods)?, pods, cluster, lenient)
}

/// Parses the node list into server types grouped by shape.
pub fn parse_nodes(text: &str, path: &Path, lenient: bool) -> Result<TraceCluster, TraceError> {
    let mut errors = LineErrors {
        path,
        lenient,
        report: LoadReport::default(),
    };
    let mut lines = super::numbered_lines(text);
    let (_, header) = lines
        .next()
        .ok_or_else(|| errors.invalid("the node list is empty"))?;
    let [c_cpu, c_mem, c_gpu, c_model] =
        columns(header, ["cpu_milli", "memory_mib", "gpu", "model"], &errors)?;
    let mut models: Vec<String> = Vec::new();
    let mut shapes: Vec<([u32; 3], Option<usize>)> = Vec::new();
    let mut counts: Vec<usize> = Vec::new();
    for (line_no, line) in lines {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let get = |c: usize| f.get(c).copied().unwrap_or("");
        let parsed = (
            get(c_cpu).parse::<u32>(),
            get(c_mem).parse::<u32>(),
            get(c_gpu).parse::<u32>(),
        );
        let (Ok(cpu), Ok(mem), Ok(gpus)) = parsed else {
            errors.bad(
                line_no,
                "cpu_milli, memory_mib and gpu must be non-negative integers".into(),
            )?;
            continue;
        };
        if gpus > crate::cluster::MAX_GPUS as u32 {
            errors.bad(
                line_no,
                format!("{gpus} GPUs; at most {} per node", crate::cluster::MAX_GPUS),
            )?;
            continue;
        }
        let model = get(c_model);
        let model = (gpus > 0 && !model.is_empty()).then(|| {
            models.iter().position(|m| m == model).unwrap_or_else(|| {
                models.push(model.to_owned());
                models.len() - 1
            })
        });
        let shape = ([cpu, mem, gpus * MILLI_PER_GPU], model);
        match shapes.iter().position(|s| *s == shape) {
            Some(t) => counts[t] += 1,
            None => {
                shapes.push(shape);
                counts.push(1);
            }
        }
    }
    if shapes.is_empty() {
        return Err(errors.invalid("the node list has no node"));
    }
    let server_types = shapes
        .iter()
        .zip(&counts)
        .map(|(&(cap, model), &count)| {
            let mut name = format!("c{}-m{}g", cap[0] / 1000, cap[1] / 1024);
            if let Some(m) = model {
                name += &format!("-{}x{}", cap[2] / MILLI_PER_GPU, models[m]);
            }
            let mut ty = ServerType::new(&name, count, &cap, 1.0);
            ty.gpu_model = model;
            ty
        })
        .collect();
    Ok(TraceCluster {
        server_types,
        gpu: Some(GpuConfig {
            resource: 2,
            units_per_gpu: MILLI_PER_GPU,
            models,
        }),
    })
}

/// Parses a pod list against `cluster` (for the GPU model names).
pub fn parse_pods(
    text: &str,
    path: &Path,
    cluster: TraceCluster,
    lenient: bool,
) -> Result<LoadedTrace, TraceError> {
    let mut errors = LineErrors {
        path,
        lenient,
        report: LoadReport::default(),
    };
    let models = cluster.gpu.as_ref().map_or(&[][..], |g| &g.models[..]);
    let mut lines = super::numbered_lines(text);
    let (_, header) = lines
        .next()
        .ok_or_else(|| errors.invalid("the pod list is empty"))?;
    let cols = columns(
        header,
        [
            "cpu_milli",
            "memory_mib",
            "num_gpu",
            "gpu_milli",
            "gpu_spec",
            "qos",
            "creation_time",
            "deletion_time",
            "scheduled_time",
        ],
        &errors,
    )?;
    let [
        c_cpu,
        c_mem,
        c_ngpu,
        c_milli,
        c_spec,
        c_qos,
        c_create,
        c_delete,
        c_sched,
    ] = cols;
    let mut tasks = Vec::new();
    for (line_no, line) in lines {
        errors.report.num_records += 1;
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let get = |c: usize| f.get(c).copied().unwrap_or("");
        let int = |c: usize| get(c).parse::<u32>();
        let time = |c: usize| -> Result<Option<f64>, String> {
            match get(c) {
                "" => Ok(None),
                s => s
                    .parse::<f64>()
                    .ok()
                    .filter(|t| t.is_finite() && *t >= 0.0)
                    .map(Some)
                    .ok_or_else(|| format!("column {c}: `{s}` is not a time in seconds")),
            }
        };
        let (Ok(cpu), Ok(mem), Ok(num_gpu), Ok(milli)) =
            (int(c_cpu), int(c_mem), int(c_ngpu), int(c_milli))
        else {
            errors.bad(
                line_no,
                "cpu_milli, memory_mib, num_gpu and gpu_milli must be non-negative integers".into(),
            )?;
            continue;
        };
        let priority = match get(c_qos) {
            "BE" => 0,
            "Burstable" => 1,
            "LS" => 2,
            "Guaranteed" => 3,
            other => {
                errors.bad(line_no, format!("unknown qos `{other}`"))?;
                continue;
            }
        };
        let times = (time(c_create), time(c_delete), time(c_sched));
        let (created, deleted, scheduled) = match times {
            (Ok(Some(c)), Ok(d), Ok(s)) => (c, d, s),
            (Ok(None), _, _) => {
                errors.bad(line_no, "creation_time is empty".into())?;
                continue;
            }
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                errors.bad(line_no, e)?;
                continue;
            }
        };
        let (Some(deleted), Some(scheduled)) = (deleted, scheduled) else {
            errors.report.num_skipped += 1;
            continue;
        };
        let work_s = deleted - scheduled;
        if work_s <= 0.0 {
            errors.report.num_skipped += 1;
            continue;
        }
        let gpu = if num_gpu == 1 && milli > 0 && milli < MILLI_PER_GPU {
            milli
        } else if let Some(gpu) = num_gpu.checked_mul(MILLI_PER_GPU) {
            gpu
        } else {
            errors.bad(
                line_no,
                format!("num_gpu {num_gpu} is more GPUs than any node has"),
            )?;
            continue;
        };
        let mut gpu_models = 0u32;
        for name in get(c_spec).split('|').filter(|s| !s.is_empty()) {
            gpu_models |= models
                .iter()
                .position(|m| m == name)
                .map_or(UNKNOWN_MODEL_BIT, |m| 1 << m);
        }
        let mut task = TaskSpec::new(line_no as u64, created, work_s, &[cpu, mem, gpu]);
        task.priority = priority;
        task.gpu_models = gpu_models;
        tasks.push(task);
    }
    if tasks.is_empty() {
        return Err(errors.invalid("the trace has no replayable pod"));
    }
    tasks.sort_by(|a, b| a.arrival_s.total_cmp(&b.arrival_s));
    Ok(LoadedTrace {
        resources: RESOURCES.iter().map(|&r| r.to_owned()).collect(),
        cluster: Some(cluster),
        tasks,
        report: errors.report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &str = "sn,cpu_milli,memory_mib,gpu,model\n\
                         n0,32000,262144,0,\n\
                         n1,96000,786432,8,G2\n\
                         n2,32000,262144,0,\n\
                         n3,64000,262144,2,T4\n";

    #[test]
    fn nodes_group_into_types_with_models() {
        let c = parse_nodes(NODES, Path::new("n.csv"), false).unwrap();
        let names: Vec<_> = c.server_types.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["c32-m256g", "c96-m768g-8xG2", "c64-m256g-2xT4"]);
        assert_eq!(c.server_types[0].count, 2);
        assert_eq!(c.server_types[1].capacity[..3], [96000, 786432, 8000]);
        assert_eq!(c.server_types[1].gpu_model, Some(0));
        assert_eq!(c.server_types[2].gpu_model, Some(1));
        assert_eq!(c.gpu.unwrap().models, ["G2", "T4"]);
    }

    #[test]
    fn pods_map_every_field_by_hand() {
        let pods = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n\
                    p0,12000,16384,1,1000,,LS,Running,0,100,10\n\
                    p1,6000,12288,1,460,T4,BE,Succeeded,5,50,5\n\
                    p2,8000,1024,2,1000,G2|T4|H100,Burstable,Failed,7,20,8\n\
                    p3,1000,1024,0,0,,Guaranteed,Running,9,30,9\n\
                    p4,1000,1024,1,1000,,BE,Pending,11,12,\n\
                    p5,1000,1024,1,1000,H100,BE,Running,12,40,12\n";
        let c = parse_nodes(NODES, Path::new("n.csv"), false).unwrap();
        let t = parse_pods(pods, Path::new("p.csv"), c, false).unwrap();
        assert_eq!(t.report.num_records, 6);
        assert_eq!(t.report.num_skipped, 1, "p4 was never scheduled");
        let ids: Vec<_> = t.tasks.iter().map(|t| t.id).collect();
        assert_eq!(ids, [2, 3, 4, 5, 7]);
        let [p0, p1, p2, p3, p5] = &t.tasks[..] else {
            panic!()
        };
        assert_eq!((p0.arrival_s, p0.duration_s, p0.priority), (0.0, 90.0, 2));
        assert_eq!(p0.demand[..3], [12000, 16384, 1000]);
        assert_eq!((p1.demand[2], p1.gpu_models, p1.priority), (460, 0b10, 0));
        assert_eq!((p1.duration_s, p1.estimate_s), (45.0, 45.0));
        assert_eq!(
            (p2.demand[2], p2.gpu_models),
            (2000, 0b11 | UNKNOWN_MODEL_BIT)
        );
        assert_eq!((p2.priority, p2.duration_s), (1, 12.0));
        assert_eq!((p3.demand[2], p3.priority, p3.gpu_models), (0, 3, 0));
        assert_eq!(p5.gpu_models, UNKNOWN_MODEL_BIT);
    }

    #[test]
    fn bad_lines_and_missing_columns() {
        let c = parse_nodes(NODES, Path::new("n.csv"), false).unwrap();
        let pods = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n\
                    p0,12000,16384,1,1000,,XX,Running,0,100,10\n\
                    p1,12000,16384,1,1000,,LS,Running,0,100,10\n";
        let err = parse_pods(pods, Path::new("p.csv"), c.clone(), false).unwrap_err();
        assert_eq!(err.to_string(), "p.csv:2: unknown qos `XX`");
        let t = parse_pods(pods, Path::new("p.csv"), c.clone(), true).unwrap();
        assert_eq!((t.report.num_malformed, t.tasks.len()), (1, 1));
        let err = parse_pods("name,cpu_milli\np,1\n", Path::new("p.csv"), c, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "p.csv: the header has no column `memory_mib`"
        );
    }
}

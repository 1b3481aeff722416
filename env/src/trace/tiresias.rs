//! Tiresias (Gu et al., NSDI'19) deep-learning jobs and cluster shapes.
//!
//! Jobs (`60_job.csv`: `job_id,num_gpu,submit_time,iterations,model_name,duration,interval`):
//! arrival = `submit_time`, work = `duration` (s), demand = `num_gpu` units of the single
//! resource `gpu`, estimate = the work (Tiresias itself schedules without estimates; a
//! scheduler that wants to be estimate-free simply ignores it).
//!
//! Cluster shapes (`n32g4.csv` etc.: `num_switch,num_node_p_switch,num_gpu_p_node,...`):
//! Tiresias's simulator places a job's GPUs anywhere under one switch (consolidating on few
//! nodes when it can), and a third of the 60 jobs ask for more GPUs than one node has. The
//! cluster is therefore one server per switch holding all of its GPUs
//! (`num_node_p_switch × num_gpu_p_node`); node-level fragmentation is not modelled.

use super::{LineErrors, LoadReport, LoadedTrace, TraceCluster, TraceError, columns};
use crate::cluster::ServerType;
use crate::workload::TaskSpec;
use std::path::Path;

/// Reads a job list and a cluster shape.
pub fn load(jobs: &Path, cluster: &Path, lenient: bool) -> Result<LoadedTrace, TraceError> {
    let cluster = parse_cluster(&super::read(cluster)?, cluster)?;
    parse_jobs(&super::read(jobs)?, jobs, cluster, lenient)
}

pub fn parse_cluster(text: &str, path: &Path) -> Result<TraceCluster, TraceError> {
    let errors = LineErrors {
        path,
        lenient: false,
        report: LoadReport::default(),
    };
    let mut lines = super::numbered_lines(text);
    let (_, header) = lines
        .next()
        .ok_or_else(|| errors.invalid("the cluster file is empty"))?;
    let [c_switch, c_nodes, c_gpus] = columns(
        header,
        ["num_switch", "num_node_p_switch", "num_gpu_p_node"],
        &errors,
    )?;
    let (line_no, line) = lines
        .next()
        .ok_or_else(|| errors.invalid("the cluster file has no data line"))?;
    let f: Vec<&str> = line.split(',').map(str::trim).collect();
    let num = |c: usize| {
        f.get(c)
            .and_then(|s| s.parse::<u32>().ok())
            .filter(|&v| v > 0)
            .ok_or_else(|| TraceError::Line {
                path: path.to_owned(),
                line: line_no,
                reason: format!("column {c} must be an integer > 0"),
            })
    };
    let (switches, nodes, gpus) = (num(c_switch)?, num(c_nodes)?, num(c_gpus)?);
    let gpus_per_switch = nodes.checked_mul(gpus).ok_or_else(|| TraceError::Line {
        path: path.to_owned(),
        line: line_no,
        reason: format!("{nodes} nodes × {gpus} GPUs per switch is too many GPUs"),
    })?;
    Ok(TraceCluster {
        server_types: vec![ServerType::new(
            "switch",
            switches as usize,
            &[gpus_per_switch],
            1.0,
        )],
        gpu: None,
    })
}

pub fn parse_jobs(
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
    let mut lines = super::numbered_lines(text);
    let (_, header) = lines
        .next()
        .ok_or_else(|| errors.invalid("the job list is empty"))?;
    let [c_id, c_gpu, c_submit, c_duration] = columns(
        header,
        ["job_id", "num_gpu", "submit_time", "duration"],
        &errors,
    )?;
    let mut tasks = Vec::new();
    for (line_no, line) in lines {
        errors.report.num_records += 1;
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let get = |c: usize| f.get(c).copied().unwrap_or("");
        let parsed = (
            get(c_id).parse::<u64>(),
            get(c_gpu).parse::<u32>(),
            get(c_submit).parse::<f64>(),
            get(c_duration).parse::<f64>(),
        );
        match parsed {
            (Ok(id), Ok(gpus), Ok(submit), Ok(duration))
                if submit >= 0.0 && submit.is_finite() && duration.is_finite() =>
            {
                if duration <= 0.0 {
                    errors.report.num_skipped += 1;
                    continue;
                }
                tasks.push(TaskSpec::new(id, submit, duration, &[gpus]));
            }
            _ => errors.bad(
                line_no,
                "job_id, num_gpu, submit_time and duration must be non-negative numbers".into(),
            )?,
        }
    }
    if tasks.is_empty() {
        return Err(errors.invalid("the trace has no replayable job"));
    }
    tasks.sort_by(|a, b| a.arrival_s.total_cmp(&b.arrival_s));
    Ok(LoadedTrace {
        resources: vec!["gpu".into()],
        cluster: Some(cluster),
        tasks,
        report: errors.report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_and_cluster_by_hand() {
        let cluster = parse_cluster(
            "num_switch,num_node_p_switch,num_gpu_p_node,num_cpu_p_node,mem_p_node\n2,32,4,40,256",
            Path::new("c.csv"),
        )
        .unwrap();
        assert_eq!(cluster.server_types[0].count, 2);
        assert_eq!(cluster.server_types[0].capacity[0], 128);
        let jobs = "job_id,num_gpu,submit_time,iterations,model_name,duration,interval\n\
                    0,1,0,606,vgg19,164,30\n1,8,30,133,vgg11,147,23\n";
        let t = parse_jobs(jobs, Path::new("j.csv"), cluster.clone(), false).unwrap();
        assert_eq!(t.tasks.len(), 2);
        assert_eq!((t.tasks[1].id, t.tasks[1].demand[0]), (1, 8));
        assert_eq!((t.tasks[1].arrival_s, t.tasks[1].duration_s), (30.0, 147.0));
        let err = parse_jobs(
            "job_id,num_gpu,submit_time,duration\n0,x,0,1\n",
            Path::new("j.csv"),
            cluster,
            false,
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("j.csv:2: "), "{err}");
    }

    /// 65,536 nodes of 65,536 GPUs is 2^32 GPUs per switch: one more than a u32 holds, so it
    /// is refused instead of wrapping to a switch of 0 GPUs that "fits no job".
    #[test]
    fn a_switch_with_more_gpus_than_a_u32_is_refused() {
        let err = parse_cluster(
            "num_switch,num_node_p_switch,num_gpu_p_node\n1,65536,65536",
            Path::new("c.csv"),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "c.csv:2: 65536 nodes × 65536 GPUs per switch is too many GPUs"
        );
        let ok = parse_cluster(
            "num_switch,num_node_p_switch,num_gpu_p_node\n1,65535,65537",
            Path::new("c.csv"),
        )
        .unwrap();
        assert_eq!(ok.server_types[0].capacity[0], 4_294_967_295);
    }
}

//! Standard Workload Format (Parallel Workloads Archive): HPC batch jobs.
//!
//! One job per line, 18 whitespace-separated fields; `;` lines are header comments.
//! Mapping, per job:
//! - arrival = field 2 (submit time, s); work = field 4 (run time, s);
//! - demand = processors: field 8 (requested) or, when it is −1, field 5 (allocated); each
//!   processor is one unit of the single resource `nodes` (processors → nodes);
//! - estimate = field 9 (requested time), or the run time when it is −1 (perfect estimates);
//! - priority 0, no deadline; the job id (field 1) is the task id.
//!
//! Skipped and counted in [`LoadReport::num_skipped`] (never an error): jobs with run time
//! <= 0 (they did not run: most are cancelled before start) and jobs with no processor
//! count (both fields −1). Cancelled jobs (status 5) that did run are kept with the run time
//! they had, as RLScheduler does: they occupied the machine.
//!
//! The cluster: one server with `MaxNodes` units of `nodes` (`MaxProcs` when the header has
//! no `MaxNodes`), used when the scenario does not declare server types.

use super::{LineErrors, LoadReport, LoadedTrace, TraceCluster, TraceError, numbered_lines};
use crate::cluster::ServerType;
use crate::workload::TaskSpec;
use std::path::Path;

/// Reads an SWF file (see the module docs).
pub fn load(path: &Path, lenient: bool) -> Result<LoadedTrace, TraceError> {
    parse(&super::read(path)?, path, lenient)
}

/// Parses SWF text; `path` names the file in errors.
pub fn parse(text: &str, path: &Path, lenient: bool) -> Result<LoadedTrace, TraceError> {
    let mut errors = LineErrors {
        path,
        lenient,
        report: LoadReport::default(),
    };
    let (mut max_nodes, mut max_procs) = (None, None);
    let mut tasks = Vec::new();
    for (line_no, line) in numbered_lines(text) {
        if let Some(comment) = line.strip_prefix(';') {
            if let Some((key, value)) = comment.split_once(':') {
                let value = value.trim().parse::<u32>().ok();
                match key.trim() {
                    "MaxNodes" => max_nodes = value,
                    "MaxProcs" => max_procs = value,
                    _ => {}
                }
            }
            continue;
        }
        errors.report.num_records += 1;
        let mut fields = [0f64; 18];
        let mut n = 0;
        let mut bad = None;
        for word in line.split_whitespace() {
            if n == 18 {
                n += 1;
                break;
            }
            match word.parse::<f64>() {
                Ok(v) if v.is_finite() => fields[n] = v,
                _ => {
                    bad = Some(format!("field {} `{word}` is not a number", n + 1));
                    break;
                }
            }
            n += 1;
        }
        if bad.is_none() && n != 18 {
            bad = Some(format!("expected 18 fields, got {n}"));
        }
        if let Some(reason) = bad {
            errors.bad(line_no, reason)?;
            continue;
        }
        let [
            id,
            submit,
            _wait,
            run,
            allocated,
            _,
            _,
            requested,
            requested_s,
            ..,
        ] = fields;
        if submit < 0.0 {
            errors.bad(line_no, format!("job {id}: negative submit time {submit}"))?;
            continue;
        }
        let procs = if requested > 0.0 {
            requested
        } else {
            allocated
        };
        if run <= 0.0 || procs <= 0.0 {
            errors.report.num_skipped += 1;
            continue;
        }
        let mut task = TaskSpec::new(id as u64, submit, run, &[procs as u32]);
        task.estimate_s = if requested_s > 0.0 { requested_s } else { run };
        tasks.push(task);
    }
    if tasks.is_empty() {
        return Err(errors.invalid("the trace has no replayable job"));
    }
    tasks.sort_by(|a, b| a.arrival_s.total_cmp(&b.arrival_s));
    let cluster = max_nodes.or(max_procs).map(|nodes| TraceCluster {
        server_types: vec![ServerType::new("machine", 1, &[nodes], 1.0)],
        gpu: None,
    });
    Ok(LoadedTrace {
        resources: vec!["nodes".into()],
        cluster,
        tasks,
        report: errors.report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "; MaxNodes: 8\n; MaxProcs: 16\n";

    #[test]
    fn fields_fallbacks_and_skips() {
        let text = format!(
            "{HEADER}\
             1 0 5 100 4 -1 -1 -1 -1 -1 1 1 1 -1 -1 -1 -1 -1\n\
             2 10 5 50 4 -1 -1 2 80 -1 5 1 1 -1 -1 -1 -1 -1\n\
             3 20 5 0 4 -1 -1 2 80 -1 5 1 1 -1 -1 -1 -1 -1\n"
        );
        let t = parse(&text, Path::new("x.swf"), false).unwrap();
        assert_eq!(t.report.num_records, 3);
        assert_eq!(t.report.num_skipped, 1);
        assert_eq!(t.tasks.len(), 2);
        // Job 1: requested procs -1 → allocated 4; requested time -1 → run time.
        assert_eq!((t.tasks[0].demand[0], t.tasks[0].estimate_s), (4, 100.0));
        // Job 2 (cancelled but ran): requested 2 procs, estimate 80.
        assert_eq!(t.tasks[1].demand[0], 2);
        assert_eq!((t.tasks[1].duration_s, t.tasks[1].estimate_s), (50.0, 80.0));
        let cluster = t.cluster.unwrap();
        assert_eq!(cluster.server_types[0].capacity[0], 8, "MaxNodes wins");
    }

    #[test]
    fn malformed_lines_name_file_and_line_unless_lenient() {
        let text = format!("{HEADER}1 0 5 100 4\n2 1 5 10 1 -1 -1 1 -1 -1 1 1 1 -1 -1 -1 -1 -1\n");
        let err = parse(&text, Path::new("x.swf"), false).unwrap_err();
        assert_eq!(err.to_string(), "x.swf:3: expected 18 fields, got 5");
        let t = parse(&text, Path::new("x.swf"), true).unwrap();
        assert_eq!((t.report.num_malformed, t.tasks.len()), (1, 1));
        let text = "1 0 5 abc 4 -1 -1 1 -1 -1 1 1 1 -1 -1 -1 -1 -1\n";
        let err = parse(text, Path::new("y.swf"), false).unwrap_err();
        assert_eq!(err.to_string(), "y.swf:1: field 4 `abc` is not a number");
    }

    #[test]
    fn empty_trace_is_a_clear_error() {
        let err = parse(HEADER, Path::new("e.swf"), false).unwrap_err();
        assert_eq!(err.to_string(), "e.swf: the trace has no replayable job");
    }
}

//! A simple CSV task list, so that any job sequence can be replayed exactly.
//!
//! The first line is a header. Required columns: `id`, `arrival_s`, `duration_s` and one
//! column per scenario resource, named as in the scenario's `resources` list. Optional
//! columns: `estimate_s` (defaults to `duration_s`), `priority` (0), `deadline_s` (empty or
//! absent = no deadline). Columns may come in any order; blank lines and lines starting with
//! `#` are skipped. No quoting: fields are plain numbers. The user documentation, with units
//! and the replay keys (windows, split, perturbation): `docs/workloads.md`.
//!
//! ```text
//! id,arrival_s,duration_s,cpu,mem_gib,estimate_s,deadline_s
//! 1,0.0,10.0,2,4,12.0,
//! 2,1.5,3.0,1,1,3.0,20
//! ```

use super::{MAX_RESOURCES, TaskSpec};
use std::path::{Path, PathBuf};

/// A CSV error naming the file, the line (1-based) and the column.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}:{line}: {message}", path.display())]
pub struct CsvError {
    pub path: PathBuf,
    pub line: usize,
    pub message: String,
}

pub(super) fn read_task_csv(path: &Path, resources: &[String]) -> Result<Vec<TaskSpec>, CsvError> {
    let text = std::fs::read_to_string(path).map_err(|e| CsvError {
        path: path.to_owned(),
        line: 0,
        message: format!("cannot read: {e}"),
    })?;
    parse_task_csv(&text, resources).map_err(|(line, message)| CsvError {
        path: path.to_owned(),
        line,
        message,
    })
}

/// Parses CSV text; errors are `(line, message)`.
pub fn parse_task_csv(text: &str, resources: &[String]) -> Result<Vec<TaskSpec>, (usize, String)> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    let (header_line, header) = lines
        .next()
        .ok_or((1, "empty file: no header".to_owned()))?;
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    let find = |name: &str| columns.iter().position(|c| *c == name);
    let require = |name: &str| {
        find(name).ok_or_else(|| (header_line, format!("missing required column `{name}`")))
    };
    let id_col = require("id")?;
    let arrival_col = require("arrival_s")?;
    let duration_col = require("duration_s")?;
    let resource_cols = resources
        .iter()
        .map(|r| require(r))
        .collect::<Result<Vec<_>, _>>()?;
    let (estimate_col, priority_col, deadline_col) =
        (find("estimate_s"), find("priority"), find("deadline_s"));

    let mut tasks = Vec::new();
    for (line, row) in lines {
        let fields: Vec<&str> = row.split(',').map(str::trim).collect();
        if fields.len() != columns.len() {
            return Err((
                line,
                format!("{} fields, header has {}", fields.len(), columns.len()),
            ));
        }
        let parse = |col: usize| -> Result<f64, (usize, String)> {
            fields[col]
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    (
                        line,
                        format!(
                            "column `{}`: `{}` is not a finite number",
                            columns[col], fields[col]
                        ),
                    )
                })
        };
        let id = fields[id_col].parse::<u64>().map_err(|_| {
            (
                line,
                format!("column `id`: `{}` is not an integer", fields[id_col]),
            )
        })?;
        let mut demand = [0u32; MAX_RESOURCES];
        for (d, &col) in demand.iter_mut().zip(&resource_cols) {
            *d = fields[col].parse().map_err(|_| {
                (
                    line,
                    format!(
                        "column `{}`: `{}` is not a non-negative integer",
                        columns[col], fields[col]
                    ),
                )
            })?;
        }
        let duration_s = parse(duration_col)?;
        if duration_s <= 0.0 {
            return Err((line, format!("task {id}: duration_s must be > 0")));
        }
        let estimate_s = match estimate_col {
            Some(c) if !fields[c].is_empty() => parse(c)?,
            _ => duration_s,
        };
        if estimate_s <= 0.0 {
            return Err((line, format!("task {id}: estimate_s must be > 0")));
        }
        let priority = match priority_col {
            Some(c) if !fields[c].is_empty() => fields[c].parse::<u8>().map_err(|_| {
                (
                    line,
                    format!(
                        "column `priority`: `{}` is not an integer in 0..=255",
                        fields[c]
                    ),
                )
            })?,
            _ => 0,
        };
        let deadline_s = match deadline_col {
            Some(c) if !fields[c].is_empty() => Some(parse(c)?),
            _ => None,
        };
        let arrival_s = parse(arrival_col)?;
        if arrival_s < 0.0 {
            return Err((line, format!("task {id}: arrival_s must be >= 0")));
        }
        tasks.push(TaskSpec {
            id,
            arrival_s,
            duration_s,
            estimate_s,
            demand,
            priority,
            deadline_s,
            gpu_models: 0,
            estimate_noise: 0.0,
        });
    }
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res() -> Vec<String> {
        vec!["cpu".into(), "mem".into()]
    }

    #[test]
    fn parses_columns_in_any_order_with_optional_fields() {
        let text =
            "# comment\narrival_s,id,duration_s,mem,cpu,deadline_s\n0,7,10,4,2,\n1.5,8,3,1,1,20\n";
        let tasks = parse_task_csv(text, &res()).unwrap();
        assert_eq!(tasks.len(), 2);
        assert_eq!(tasks[0].id, 7);
        assert_eq!(&tasks[0].demand[..2], &[2, 4]);
        assert_eq!(tasks[0].estimate_s, 10.0);
        assert_eq!(tasks[0].deadline_s, None);
        assert_eq!(tasks[1].deadline_s, Some(20.0));
    }

    /// The example of docs/workloads.md.
    #[test]
    fn the_documented_example_parses_as_described() {
        let text = "# Columns in any order; blank lines and #-comments are skipped.\n\
            id,arrival_s,duration_s,cpu,mem_gib,estimate_s,priority,deadline_s\n\
            1,0.0,120.0,2,8,180.0,0,\n\
            2,4.5,30.0,1,2,,1,400\n\
            3,9.0,900.0,16,48,1200.0,0,\n";
        let tasks = parse_task_csv(text, &["cpu".into(), "mem_gib".into()]).unwrap();
        assert_eq!(tasks.len(), 3);
        assert_eq!((tasks[0].estimate_s, tasks[0].deadline_s), (180.0, None));
        assert_eq!(tasks[1].estimate_s, 30.0);
        assert_eq!((tasks[1].priority, tasks[1].deadline_s), (1, Some(400.0)));
        assert_eq!(&tasks[2].demand[..2], &[16, 48]);
    }

    #[test]
    fn errors_name_line_and_column() {
        let err =
            parse_task_csv("id,arrival_s,duration_s,cpu,mem\n1,0,x,1,1\n", &res()).unwrap_err();
        assert_eq!(err.0, 2);
        assert!(err.1.contains("duration_s"), "{}", err.1);
        let err = parse_task_csv("id,arrival_s,duration_s,cpu\n", &res()).unwrap_err();
        assert!(err.1.contains("`mem`"), "{}", err.1);
    }
}

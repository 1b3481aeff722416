//! The Gantt chart of a DeepRM episode: one machine whose resources come in units, so the
//! lanes are its resources rather than servers. Each resource lane has one row per unit (a
//! taller resource is scaled to `MAX_UNIT_ROWS`), and a job's bar covers the units it
//! holds, in the job's own colour in every lane, so its footprint on each resource reads
//! across lanes. Jobs wait in a queue lane above: a line from arrival to start in the job's
//! colour, grey for jobs still waiting at the end.
//!
//! Units are numbered: each job takes the lowest units free for its whole run (jobs in
//! start order), so a job whose units are not contiguous is drawn as several blocks.

use crate::plots::{PALETTE, color, plot_err};
use anyhow::Result;
use lepton_env::cluster::{RunEnd, Schedule, TaskRun};
use plotters::prelude::*;
use std::path::Path;

use super::{EpisodeLabel, LEGEND_PX, ROW_PX};

/// Rows of a resource lane at most: units beyond it are scaled down.
const MAX_UNIT_ROWS: usize = 20;
/// Rows of the queue lane at most; a wait that finds them all busy shares the row that
/// frees first.
const MAX_QUEUE_ROWS: usize = 20;
const WAITING_GREY: RGBAColor = RGBAColor(0, 0, 0, 0.45);

/// A block of one job on one resource: units `first..first + count`.
#[derive(Debug, PartialEq)]
struct Block {
    run: usize,
    resource: usize,
    first: u32,
    count: u32,
}

/// The unit blocks every run holds on every resource.
fn unit_blocks(schedule: &Schedule) -> Vec<Block> {
    let mut order: Vec<usize> = (0..schedule.runs.len())
        .filter(|&i| schedule.runs[i].start_s < schedule.runs[i].end_s)
        .collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (&schedule.runs[a], &schedule.runs[b]);
        ra.start_s
            .total_cmp(&rb.start_s)
            .then(ra.task.cmp(&rb.task))
    });
    let mut blocks = Vec::new();
    for (resource, (_, capacity)) in schedule.machine_units.iter().enumerate() {
        // When each unit frees up.
        let mut free_at = vec![f64::NEG_INFINITY; *capacity as usize];
        for &i in &order {
            let run = &schedule.runs[i];
            let want = run.demand.get(resource).copied().unwrap_or(0) as usize;
            let mut units: Vec<usize> = (0..free_at.len())
                .filter(|&u| free_at[u] <= run.start_s)
                .take(want)
                .collect();
            // Not reachable in a valid schedule (the env never overcommits a unit); if it
            // were, the units that free first are shared rather than the job left out.
            if units.len() < want {
                let mut rest: Vec<usize> =
                    (0..free_at.len()).filter(|u| !units.contains(u)).collect();
                rest.sort_by(|&a, &b| free_at[a].total_cmp(&free_at[b]));
                units.extend(rest.into_iter().take(want - units.len()));
                units.sort_unstable();
            }
            for &u in &units {
                free_at[u] = run.end_s;
            }
            for chunk in units.chunk_by(|a, b| a + 1 == *b) {
                blocks.push(Block {
                    run: i,
                    resource,
                    first: chunk[0] as u32,
                    count: chunk.len() as u32,
                });
            }
        }
    }
    blocks
}

/// The queue-lane row of every run that waited (`None` for one that started on arrival),
/// and the number of rows.
fn queue_rows(schedule: &Schedule) -> (Vec<Option<usize>>, usize) {
    let mut order: Vec<usize> = (0..schedule.runs.len())
        .filter(|&i| schedule.runs[i].queued_s < schedule.runs[i].start_s)
        .collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (&schedule.runs[a], &schedule.runs[b]);
        ra.queued_s
            .total_cmp(&rb.queued_s)
            .then(ra.task.cmp(&rb.task))
    });
    let mut row_of = vec![None; schedule.runs.len()];
    let mut row_ends: Vec<f64> = Vec::new();
    for i in order {
        let run = &schedule.runs[i];
        let row = match row_ends.iter().position(|&end| end <= run.queued_s) {
            Some(row) => row,
            None if row_ends.len() < MAX_QUEUE_ROWS => {
                row_ends.push(f64::NEG_INFINITY);
                row_ends.len() - 1
            }
            None => (0..row_ends.len())
                .min_by(|&a, &b| row_ends[a].total_cmp(&row_ends[b]))
                .unwrap_or(0),
        };
        row_ends[row] = row_ends[row].max(run.start_s);
        row_of[i] = Some(row);
    }
    (row_of, row_ends.len().max(1))
}

/// Writes `file` into `dir` for a DeepRM schedule (`schedule.machine_units` not empty).
pub(super) fn draw(
    dir: &Path,
    file: &str,
    label: &EpisodeLabel<'_>,
    schedule: &Schedule,
) -> Result<()> {
    let (wait_row, num_queue_rows) = queue_rows(schedule);
    let blocks = unit_blocks(schedule);
    // Resource lane `r` spans rows `lane_top[r] .. lane_top[r] + lane_rows[r]` (from the top).
    let lane_rows: Vec<usize> = schedule
        .machine_units
        .iter()
        .map(|(_, units)| (*units as usize).clamp(1, MAX_UNIT_ROWS))
        .collect();
    let lane_top: Vec<usize> = lane_rows
        .iter()
        .scan(num_queue_rows, |top, rows| {
            let this = *top;
            *top += rows;
            Some(this)
        })
        .collect();
    let num_rows = num_queue_rows + lane_rows.iter().sum::<usize>();
    // Row coordinates count from the top; plotters' y axis counts up.
    let y = |row: f64| num_rows as f64 - row;
    let unit_y = |resource: usize, unit: u32| {
        let units = f64::from(schedule.machine_units[resource].1.max(1));
        y(lane_top[resource] as f64 + f64::from(unit) * lane_rows[resource] as f64 / units)
    };

    let height = 190 + ROW_PX * num_rows as u32;
    let path = dir.join(file);
    let root = SVGBackend::new(&path, (1200 + LEGEND_PX, height)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let (plot, legend) = root.split_horizontally(1200);
    let end = schedule.now_s.max(1e-9);
    let count = |e: RunEnd| schedule.runs.iter().filter(|r| r.end == e).count();
    let mut chart = ChartBuilder::on(&plot)
        .caption(
            format!(
                "{}: {}, episode {} (seed {}): {} jobs finished; at step {}, {} running and {} waiting",
                label.scenario,
                label.contender,
                label.episode,
                label.seed,
                count(RunEnd::Finished),
                schedule.now_s,
                count(RunEnd::Unfinished),
                count(RunEnd::NotStarted),
            ),
            ("sans-serif", 16),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(130)
        .build_cartesian_2d(0.0..end, 0.0..num_rows as f64)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc("time step")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .light_line_style(WHITE)
        .label_style(("sans-serif", 11))
        .draw()
        .map_err(plot_err)?;

    // Lane names left of the axis, at each lane's middle; separators between lanes.
    let mut lanes = vec![("queue".to_string(), 0, num_queue_rows)];
    for (r, (name, units)) in schedule.machine_units.iter().enumerate() {
        lanes.push((format!("{name} ({units} units)"), lane_top[r], lane_rows[r]));
    }
    let font = ("sans-serif", 11).into_font().color(&BLACK);
    for (name, top, rows) in &lanes {
        let (_, py) = chart.backend_coord(&(0.0, y(*top as f64 + *rows as f64 / 2.0)));
        root.draw(&Text::new(name.clone(), (16, py - 6), font.clone()))
            .map_err(plot_err)?;
    }
    chart
        .draw_series(lanes.iter().skip(1).map(|(_, top, _)| {
            PathElement::new(
                vec![(0.0, y(*top as f64)), (end, y(*top as f64))],
                BLACK.mix(0.3),
            )
        }))
        .map_err(plot_err)?;

    let runs = &schedule.runs;
    chart
        .draw_series(runs.iter().zip(&wait_row).filter_map(|(r, row)| {
            let mid = y((*row)? as f64 + 0.5);
            let style = if r.end == RunEnd::NotStarted {
                ShapeStyle::from(WAITING_GREY).stroke_width(2)
            } else {
                job_color(r).stroke_width(2)
            };
            Some(PathElement::new(
                vec![(r.queued_s, mid), (r.start_s, mid)],
                style,
            ))
        }))
        .map_err(plot_err)?;
    for b in &blocks {
        let r = &runs[b.run];
        let alpha = if r.end == RunEnd::Unfinished {
            0.4
        } else {
            0.85
        };
        let corners = [
            (r.start_s, unit_y(b.resource, b.first)),
            (r.end_s, unit_y(b.resource, b.first + b.count)),
        ];
        chart
            .draw_series([
                Rectangle::new(corners, job_color(r).mix(alpha).filled()),
                Rectangle::new(corners, WHITE.stroke_width(1)),
            ])
            .map_err(plot_err)?;
    }

    draw_legend(&legend)?;
    root.present().map_err(plot_err)?;
    Ok(())
}

/// A job's colour: the palette by arrival index, so neighbouring jobs differ, without its
/// greys, which mark jobs still waiting.
fn job_color(run: &TaskRun) -> RGBColor {
    let colors: Vec<RGBColor> = PALETTE
        .into_iter()
        .filter(|c| !(c.0 == c.1 && c.1 == c.2))
        .collect();
    colors[run.task % colors.len()]
}

fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, plotters::coord::Shift>) -> Result<()> {
    // (label, style, drawn as a line rather than a box)
    let entries: [(&str, ShapeStyle, bool); 4] = [
        (
            "units a job holds (a colour per job)",
            color(0).mix(0.85).filled(),
            false,
        ),
        ("wait, arrival → start", color(0).stroke_width(2), true),
        (
            "still waiting at the end",
            ShapeStyle::from(WAITING_GREY).stroke_width(2),
            true,
        ),
        (
            "still running at the end",
            color(0).mix(0.4).filled(),
            false,
        ),
    ];
    super::draw_legend_rows(area, entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(task: usize, demand: [u32; 2], times: [f64; 3]) -> TaskRun {
        let mut units = [0; lepton_env::workload::MAX_RESOURCES];
        units[..2].copy_from_slice(&demand);
        TaskRun {
            task,
            task_id: task as u64,
            priority: 0,
            server: 0,
            gpus: 0,
            demand: units,
            queued_s: times[0],
            start_s: times[1],
            end_s: times[2],
            end: RunEnd::Finished,
        }
    }

    /// Two resources of 3 units; jobs in start order take the lowest units free for their
    /// whole run: job 2 (start 3) gets unit 2 of cpu and unit 1 of mem, freed by job 1 at 3,
    /// and job 3 (start 5) every unit.
    #[test]
    fn jobs_take_the_lowest_units_free_for_their_whole_run() {
        let schedule = Schedule {
            num_servers: 1,
            now_s: 6.0,
            runs: vec![
                run(0, [2, 1], [0.0, 0.0, 4.0]),
                run(1, [1, 2], [0.0, 1.0, 3.0]),
                run(2, [1, 1], [2.0, 3.0, 5.0]),
                run(3, [3, 3], [1.0, 5.0, 6.0]),
            ],
            machine_units: vec![("cpu".into(), 3), ("mem".into(), 3)],
            ..Schedule::default()
        };
        let block = |run, resource, first, count| Block {
            run,
            resource,
            first,
            count,
        };
        assert_eq!(
            unit_blocks(&schedule),
            vec![
                block(0, 0, 0, 2),
                block(1, 0, 2, 1),
                block(2, 0, 2, 1),
                block(3, 0, 0, 3),
                block(0, 1, 0, 1),
                block(1, 1, 1, 2),
                block(2, 1, 1, 1),
                block(3, 1, 0, 3),
            ]
        );
        // Waits by arrival: job 1 over 0..1 (row 0), job 3 over 1..5 (row 0, free from 1),
        // job 2 over 2..3 (row 0 is busy: row 1); job 0 never waited.
        let (rows, n) = queue_rows(&schedule);
        assert_eq!((rows, n), (vec![None, Some(0), Some(1), Some(0)], 2));
    }

    /// Jobs 0 and 2 free units 0 and 2 at 2 while job 1 keeps unit 1: job 3 (2 units at 2)
    /// holds units 0 and 2, drawn as two blocks.
    #[test]
    fn a_job_on_units_that_are_not_contiguous_is_drawn_as_several_blocks() {
        let schedule = Schedule {
            num_servers: 1,
            now_s: 4.0,
            runs: vec![
                run(0, [1, 0], [0.0, 0.0, 2.0]),
                run(1, [1, 0], [0.0, 0.0, 4.0]),
                run(2, [1, 0], [0.0, 0.0, 2.0]),
                run(3, [2, 0], [0.0, 2.0, 3.0]),
            ],
            machine_units: vec![("cpu".into(), 3)],
            ..Schedule::default()
        };
        let firsts: Vec<(usize, u32, u32)> = unit_blocks(&schedule)
            .iter()
            .map(|b| (b.run, b.first, b.count))
            .collect();
        assert_eq!(
            firsts,
            vec![(0, 0, 1), (1, 1, 1), (2, 2, 1), (3, 0, 1), (3, 2, 1)]
        );
    }
}

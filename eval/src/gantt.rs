//! Gantt charts of one episode (`--gantt EPISODE`): servers × simulated time, one bar per
//! task run coloured by priority, the wait before each run as a thin line, runs killed by a
//! failure outlined in red with a cross at the kill, and server down time as red bands.
//!
//! Each server has a lane; tasks that run on a server at the same time (a server holds as
//! many as fit) are stacked in rows of that lane, each run in the first row free at its
//! start. DeepRM's single machine is drawn by resource instead (`machine.rs`). Like the
//! other plots, the output is a pure function of its inputs.

use crate::plots::{color, plot_err};
use anyhow::Result;
use lepton_env::cluster::{RunEnd, Schedule, TaskRun};
use plotters::prelude::*;
use std::path::Path;

mod machine;

/// Lanes drawn at most: a trace cluster of 1,523 servers is cut to the first servers that
/// ran something or failed (the caption says how many).
pub const MAX_SERVERS: usize = 48;
/// Rows of one lane at most; a run that finds them all busy shares the row that frees first.
const MAX_ROWS_PER_SERVER: usize = 8;
const ROW_PX: u32 = 16;
/// Failures: down time, and the outline and cross of a killed run.
const FAILURE_RED: RGBColor = RGBColor(214, 39, 40);
/// Edges of runs a scheduler stopped (preempted) or moved (migrated).
const PREEMPTED_ORANGE: RGBColor = RGBColor(255, 127, 14);
const MIGRATED_BLUE: RGBColor = RGBColor(31, 119, 180);
/// Width of the legend panel right of the chart, so that it never hides a bar.
const LEGEND_PX: u32 = 230;

/// The file name of a chart: `gantt_<scenario>_<contender>.svg`, with every character other
/// than letters, digits, `-`, `_` and `.` replaced by `_` (`ckpt:best` → `ckpt_best`).
pub fn file_name(scenario: &str, contender: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!("gantt_{}_{}.svg", clean(scenario), clean(contender))
}

/// The colour of a priority class: the plots' palette without its red, which marks failures.
fn priority_color(priority: u8) -> RGBColor {
    const RED: usize = 3;
    let i = usize::from(priority);
    color(if i >= RED { i + 1 } else { i })
}

/// A drawn lane: the server, its first row (counted from the top) and its row count.
struct Lane {
    server: usize,
    first_row: usize,
    rows: usize,
}

/// Lanes for the servers shown, and the row of every run (`None` when its server is not
/// shown).
fn layout(schedule: &Schedule) -> (Vec<Lane>, Vec<Option<usize>>) {
    let active = |n: usize| {
        schedule.runs.iter().any(|r| r.server == n) || schedule.downs.iter().any(|d| d.server == n)
    };
    let shown: Vec<usize> = if schedule.num_servers <= MAX_SERVERS {
        (0..schedule.num_servers).collect()
    } else {
        (0..schedule.num_servers)
            .filter(|&n| active(n))
            .take(MAX_SERVERS)
            .collect()
    };
    let mut order: Vec<usize> = (0..schedule.runs.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (&schedule.runs[a], &schedule.runs[b]);
        ra.start_s
            .total_cmp(&rb.start_s)
            .then(ra.task.cmp(&rb.task))
    });
    let mut row_of = vec![None; schedule.runs.len()];
    let mut lanes = Vec::new();
    let mut next_row = 0;
    for &server in &shown {
        // The end of the last run placed in each row of this lane.
        let mut row_ends: Vec<f64> = Vec::new();
        for &i in order.iter().filter(|&&i| schedule.runs[i].server == server) {
            let run = &schedule.runs[i];
            let row = match row_ends.iter().position(|&end| end <= run.start_s) {
                Some(row) => row,
                None if row_ends.len() < MAX_ROWS_PER_SERVER => {
                    row_ends.push(f64::NEG_INFINITY);
                    row_ends.len() - 1
                }
                None => (0..row_ends.len())
                    .min_by(|&a, &b| row_ends[a].total_cmp(&row_ends[b]))
                    .unwrap_or(0),
            };
            row_ends[row] = row_ends[row].max(run.end_s);
            row_of[i] = Some(next_row + row);
        }
        let rows = row_ends.len().max(1);
        lanes.push(Lane {
            server,
            first_row: next_row,
            rows,
        });
        next_row += rows;
    }
    (lanes, row_of)
}

/// What the caption says about the episode besides its names.
pub struct EpisodeLabel<'a> {
    pub scenario: &'a str,
    pub contender: &'a str,
    pub episode: usize,
    pub seed: u64,
}

/// Writes `<dir>/gantt_<scenario>_<contender>.svg` for `schedule`; returns the file name.
pub fn draw(dir: &Path, label: &EpisodeLabel<'_>, schedule: &Schedule) -> Result<String> {
    let file = file_name(label.scenario, label.contender);
    if !schedule.machine_units.is_empty() {
        machine::draw(dir, &file, label, schedule)?;
        return Ok(file);
    }
    let (lanes, row_of) = layout(schedule);
    let num_rows: usize = lanes.iter().map(|l| l.rows).sum::<usize>().max(1);
    // Row `r` from the top is segment `num_rows - 1 - r` of plotters' bottom-up axis.
    let y = |row: usize| num_rows - 1 - row;
    let height = 190 + ROW_PX * num_rows as u32;
    let path = dir.join(&file);
    let root = SVGBackend::new(&path, (1200 + LEGEND_PX, height)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let (plot, legend) = root.split_horizontally(1200);
    let end_s = schedule.now_s.max(1e-9);
    let shown = if lanes.len() < schedule.num_servers {
        format!(
            ", {} of {} servers (those with activity)",
            lanes.len(),
            schedule.num_servers
        )
    } else {
        String::new()
    };
    let killed = schedule
        .runs
        .iter()
        .filter(|r| r.end == RunEnd::Killed)
        .count();
    let mut chart = ChartBuilder::on(&plot)
        .caption(
            format!(
                "{}: {}, episode {} (seed {}): {} runs, {} killed; server failures: {}{shown}",
                label.scenario,
                label.contender,
                label.episode,
                label.seed,
                schedule.runs.len(),
                killed,
                schedule.downs.len()
            ),
            ("sans-serif", 16),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(130)
        .build_cartesian_2d(0.0..end_s, (0..num_rows).into_segmented())
        .map_err(plot_err)?;
    let lane_name = |row: usize| -> String {
        lanes
            .iter()
            .find(|l| l.first_row == row)
            .map(|l| match schedule.gpus_per_server.get(l.server) {
                Some(&g) if g > 0 => format!("server {} ({g} GPUs)", l.server),
                _ => format!("server {}", l.server),
            })
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(num_rows)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(s) if *s < num_rows => lane_name(num_rows - 1 - *s),
            _ => String::new(),
        })
        .x_desc("simulated time (s)")
        .light_line_style(WHITE)
        .label_style(("sans-serif", 11))
        .draw()
        .map_err(plot_err)?;

    // Lane separators, then down time under the bars.
    let top = |row: usize| SegmentValue::Exact(y(row) + 1);
    let bottom = |row: usize| SegmentValue::Exact(y(row));
    chart
        .draw_series(lanes.iter().skip(1).map(|l| {
            PathElement::new(
                vec![(0.0, top(l.first_row)), (end_s, top(l.first_row))],
                BLACK.mix(0.3),
            )
        }))
        .map_err(plot_err)?;
    let down_fill = FAILURE_RED.mix(0.18).filled();
    let down_edge = FAILURE_RED.stroke_width(1);
    for d in &schedule.downs {
        let Some(lane) = lanes.iter().find(|l| l.server == d.server) else {
            continue;
        };
        let corners = [
            (d.start_s, top(lane.first_row)),
            (d.end_s, bottom(lane.first_row + lane.rows - 1)),
        ];
        chart
            .draw_series([
                Rectangle::new(corners.clone(), down_fill),
                Rectangle::new(corners, down_edge),
            ])
            .map_err(plot_err)?;
    }

    let runs: Vec<(&TaskRun, usize)> = schedule
        .runs
        .iter()
        .zip(&row_of)
        .filter_map(|(run, row)| Some((run, (*row)?)))
        .collect();
    chart
        .draw_series(
            runs.iter()
                .filter(|(r, _)| r.queued_s < r.start_s)
                .map(|(r, row)| {
                    PathElement::new(
                        vec![
                            (r.queued_s, SegmentValue::CenterOf(y(*row))),
                            (r.start_s, SegmentValue::CenterOf(y(*row))),
                        ],
                        BLACK.mix(0.45).stroke_width(1),
                    )
                }),
        )
        .map_err(plot_err)?;
    for (r, row) in &runs {
        let fill = priority_color(r.priority);
        let alpha = if r.end == RunEnd::Unfinished {
            0.4
        } else {
            0.85
        };
        let corners = [(r.start_s, top(*row)), (r.end_s, bottom(*row))];
        let edge = match r.end {
            RunEnd::Killed => FAILURE_RED.stroke_width(2),
            RunEnd::Preempted => PREEMPTED_ORANGE.stroke_width(2),
            RunEnd::Migrated => MIGRATED_BLUE.stroke_width(2),
            _ => WHITE.stroke_width(1),
        };
        chart
            .draw_series([
                Rectangle::new(corners.clone(), fill.mix(alpha).filled()),
                Rectangle::new(corners, edge),
            ])
            .map_err(plot_err)?;
    }
    chart
        .draw_series(
            runs.iter()
                .filter(|(r, _)| r.end == RunEnd::Killed)
                .map(|(r, row)| {
                    Cross::new(
                        (r.end_s, SegmentValue::CenterOf(y(*row))),
                        5,
                        FAILURE_RED.stroke_width(2),
                    )
                }),
        )
        .map_err(plot_err)?;

    draw_legend(&legend, schedule, down_fill)?;
    root.present().map_err(plot_err)?;
    Ok(file)
}

/// The legend panel: one entry per priority present, then the marks.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    schedule: &Schedule,
    down_fill: ShapeStyle,
) -> Result<()> {
    let mut priorities: Vec<u8> = schedule.runs.iter().map(|r| r.priority).collect();
    priorities.sort_unstable();
    priorities.dedup();
    // (label, style, drawn as a line rather than a box)
    let mut entries: Vec<(String, ShapeStyle, bool)> = priorities
        .iter()
        .map(|&p| {
            let fill = priority_color(p).mix(0.85).filled();
            (format!("priority {p}"), fill, false)
        })
        .collect();
    entries.extend([
        (
            "wait (arrival or kill → start)".into(),
            BLACK.mix(0.45).stroke_width(1),
            true,
        ),
        (
            "killed by a server failure".into(),
            FAILURE_RED.stroke_width(2),
            false,
        ),
        ("server down".into(), down_fill, false),
        (
            "still running at the end".into(),
            color(0).mix(0.4).filled(),
            false,
        ),
    ]);
    // Only in schedules that have them ([preemption] scenarios).
    let has = |end: RunEnd| schedule.runs.iter().any(|r| r.end == end);
    if has(RunEnd::Preempted) {
        let style = PREEMPTED_ORANGE.stroke_width(2);
        entries.push(("preempted (requeued)".into(), style, false));
    }
    if has(RunEnd::Migrated) {
        let style = MIGRATED_BLUE.stroke_width(2);
        entries.push(("migrated (continues elsewhere)".into(), style, false));
    }
    draw_legend_rows(area, entries)
}

/// One legend row per entry (label, style, drawn as a line rather than a box), top down.
fn draw_legend_rows<DB: DrawingBackend, S: Into<String>>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    entries: impl IntoIterator<Item = (S, ShapeStyle, bool)>,
) -> Result<()> {
    let font = ("sans-serif", 12).into_font().color(&BLACK);
    for (k, (text, style, line)) in entries.into_iter().enumerate() {
        let y = 50 + 20 * k as i32;
        if line {
            area.draw(&PathElement::new(vec![(10, y), (28, y)], style))
        } else {
            area.draw(&Rectangle::new([(10, y - 5), (28, y + 6)], style))
        }
        .map_err(plot_err)?;
        area.draw(&Text::new(text.into(), (36, y - 6), font.clone()))
            .map_err(plot_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(task: usize, server: usize, start_s: f64, end_s: f64) -> TaskRun {
        TaskRun {
            task,
            task_id: task as u64,
            priority: 0,
            server,
            gpus: 0,
            demand: [0; lepton_env::workload::MAX_RESOURCES],
            queued_s: start_s,
            start_s,
            end_s,
            end: RunEnd::Finished,
        }
    }

    /// Server 0: runs 0..4 and 1..3 overlap (two rows), 4..6 reuses row 0; server 1 holds
    /// one run; server 2 is idle but still gets a lane.
    #[test]
    fn concurrent_runs_stack_in_rows_of_their_server_lane() {
        let schedule = Schedule {
            num_servers: 3,
            now_s: 6.0,
            runs: vec![
                run(0, 0, 0.0, 4.0),
                run(1, 0, 1.0, 3.0),
                run(2, 1, 1.0, 2.0),
                run(3, 0, 4.0, 6.0),
            ],
            ..Schedule::default()
        };
        let (lanes, rows) = layout(&schedule);
        let lanes: Vec<(usize, usize, usize)> = lanes
            .iter()
            .map(|l| (l.server, l.first_row, l.rows))
            .collect();
        assert_eq!(lanes, vec![(0, 0, 2), (1, 2, 1), (2, 3, 1)]);
        assert_eq!(rows, vec![Some(0), Some(1), Some(2), Some(0)]);
    }

    #[test]
    fn file_names_keep_only_safe_characters() {
        assert_eq!(
            file_name("cloud-hold", "ckpt:best@sampled"),
            "gantt_cloud-hold_ckpt_best_sampled.svg"
        );
        assert_eq!(
            file_name("l0.2", "weighted:1:0.5"),
            "gantt_l0.2_weighted_1_0.5.svg"
        );
    }
}

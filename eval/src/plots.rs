//! SVG plots with plotters: per scenario, one bar chart per metric (mean with bootstrap-CI
//! whiskers) on a grid, the empirical CDF of task slowdowns per contender and, where energy
//! was used, the energy–metric trade-off with its Pareto front.
//!
//! The output is a pure function of its inputs (no clock, no randomness), so plots are as
//! reproducible as the report.

use crate::report::{METRICS, MetricDef, Report, ScenarioReport};
use crate::runner::EpisodeOutcome;
use crate::stats;
use anyhow::{Result, anyhow};
use plotters::prelude::*;
use std::path::Path;

/// Tableau's 20 colours, dark shades first, so that up to 20 contenders stay distinct.
pub(crate) const PALETTE: [RGBColor; 20] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(174, 199, 232),
    RGBColor(255, 187, 120),
    RGBColor(152, 223, 138),
    RGBColor(255, 152, 150),
    RGBColor(197, 176, 213),
    RGBColor(196, 156, 148),
    RGBColor(247, 182, 210),
    RGBColor(199, 199, 199),
    RGBColor(219, 219, 141),
    RGBColor(158, 218, 229),
];

pub(crate) fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

pub(crate) fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plotting failed: {e:?}")
}

/// `<dir>/<scenario>_metrics.svg`: a grid of horizontal bar charts, one per metric, one bar
/// per contender (mean, with a whisker spanning the bootstrap CI).
pub fn metric_bars(dir: &Path, scenario: &ScenarioReport) -> Result<String> {
    let file = format!("{}_metrics.svg", scenario.name);
    let n = scenario.results.len();
    let cols = 2;
    let rows = METRICS.len().div_ceil(cols);
    let panel_h = 60 + 20 * n as u32;
    let path = dir.join(&file);
    let root = SVGBackend::new(&path, (1000, panel_h * rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let panels = root.split_evenly((rows, cols));
    let names: Vec<String> = scenario
        .results
        .iter()
        .map(|r| r.contender.clone())
        .collect();
    for (def, panel) in METRICS.iter().zip(panels.iter()) {
        let estimates: Vec<_> = scenario
            .results
            .iter()
            .map(|r| r.metrics[def.key])
            .collect();
        let top = estimates
            .iter()
            .flat_map(|e| [e.mean, e.ci_high])
            .filter(|v| v.is_finite())
            .fold(0.0_f64, f64::max);
        let top = if top > 0.0 { top * 1.08 } else { 1.0 };
        let direction = format!("{} is better", def.better());
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!("{}: {} ({direction})", scenario.name, def.label),
                ("sans-serif", 14),
            )
            .margin(6)
            .x_label_area_size(24)
            .y_label_area_size(90)
            .build_cartesian_2d(0.0..top, (0..n).into_segmented())
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&|y| match y {
                // Row 0 is at the bottom: list contenders top-down in report order.
                SegmentValue::CenterOf(i) if *i < n => names[n - 1 - *i].clone(),
                _ => String::new(),
            })
            .x_labels(6)
            .label_style(("sans-serif", 11))
            .draw()
            .map_err(plot_err)?;
        for (c, e) in estimates.iter().enumerate() {
            if !e.mean.is_finite() {
                continue;
            }
            let row = n - 1 - c;
            let bar = Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(row)),
                    (e.mean, SegmentValue::Exact(row + 1)),
                ],
                color(c).mix(0.8).filled(),
            );
            let whisker = PathElement::new(
                vec![
                    (e.ci_low, SegmentValue::CenterOf(row)),
                    (e.ci_high, SegmentValue::CenterOf(row)),
                ],
                BLACK.stroke_width(2),
            );
            chart.draw_series(std::iter::once(bar)).map_err(plot_err)?;
            chart
                .draw_series(std::iter::once(whisker))
                .map_err(plot_err)?;
        }
    }
    root.present().map_err(plot_err)?;
    Ok(file)
}

/// `<dir>/<scenario>_slowdown_cdf.svg`: the CDF of task slowdowns (every finished task of
/// every episode, of every training run) per contender, on a log x axis.
pub fn slowdown_cdf(
    dir: &Path,
    scenario: &ScenarioReport,
    outcomes: &[Vec<Vec<EpisodeOutcome>>],
) -> Result<String> {
    let file = format!("{}_slowdown_cdf.svg", scenario.name);
    let curves: Vec<Vec<(f64, f64)>> = outcomes
        .iter()
        .map(|members| {
            let all: Vec<f64> = members
                .iter()
                .flatten()
                .flat_map(|o| o.slowdowns.iter().copied())
                .collect();
            stats::ecdf(&all, 400)
        })
        .collect();
    let max_x = curves.iter().flatten().map(|p| p.0).fold(1.0_f64, f64::max);
    let min_x = curves
        .iter()
        .flatten()
        .map(|p| p.0)
        .filter(|x| *x > 0.0)
        .fold(1.0_f64, f64::min);
    let path = dir.join(&file);
    let root = SVGBackend::new(&path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{}: task slowdown CDF", scenario.name),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((min_x.min(1.0)..max_x * 1.05).log_scale(), 0.0..1.0)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("slowdown = (finish − arrival) / work (log scale)")
        .y_desc("fraction of finished tasks")
        .draw()
        .map_err(plot_err)?;
    for (i, (curve, result)) in curves.iter().zip(&scenario.results).enumerate() {
        // Steps: hold F(x) until the next point.
        let mut points = Vec::with_capacity(2 * curve.len());
        let mut previous = 0.0;
        for &(x, f) in curve {
            points.push((x, previous));
            points.push((x, f));
            previous = f;
        }
        let style = color(i).stroke_width(2);
        chart
            .draw_series(LineSeries::new(points, style))
            .map_err(plot_err)?
            .label(result.contender.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)?;
    Ok(file)
}

/// `<dir>/sweep.svg` for a sweep suite: the report's metric (mean, bootstrap-CI whiskers) of
/// every contender against the sweep's axis, one line per contender.
pub fn sweep(dir: &Path, report: &Report, axis: &str, def: &MetricDef) -> Result<String> {
    let file = "sweep.svg".to_string();
    let points = |c: usize| -> Vec<(f64, f64, f64, f64)> {
        report
            .scenarios
            .iter()
            .filter_map(|s| {
                let e = s.results.get(c)?.metrics[def.key];
                Some((s.x?, e.mean, e.ci_low, e.ci_high))
            })
            .filter(|p| p.1.is_finite())
            .collect()
    };
    let all: Vec<(f64, f64, f64, f64)> = (0..report.contenders.len()).flat_map(points).collect();
    let (x_lo, x_hi) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.0), hi.max(p.0))
        });
    let y_hi = all
        .iter()
        .map(|p| p.3.max(p.1))
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let (x_lo, x_hi) = if x_lo < x_hi {
        (x_lo, x_hi)
    } else {
        (x_lo - 1.0, x_lo + 1.0)
    };
    let pad = 0.04 * (x_hi - x_lo);
    let path = dir.join(&file);
    let root = SVGBackend::new(&path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let direction = def.better();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{}: {} vs {axis}", report.suite.name, def.label),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x_lo - pad..x_hi + pad, 0.0..(y_hi * 1.08).max(1e-9))
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc(axis)
        .y_desc(format!("{} ({direction} is better)", def.label))
        .draw()
        .map_err(plot_err)?;
    for (i, contender) in report.contenders.iter().enumerate() {
        let line = points(i);
        let style = color(i).stroke_width(2);
        chart
            .draw_series(LineSeries::new(line.iter().map(|p| (p.0, p.1)), style))
            .map_err(plot_err)?
            .label(contender.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        chart
            .draw_series(
                line.iter().map(|p| {
                    PathElement::new(vec![(p.0, p.2), (p.0, p.3)], color(i).stroke_width(1))
                }),
            )
            .map_err(plot_err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)?;
    Ok(file)
}

/// `<dir>/<scenario>_energy_pareto.svg` when the scenario's contenders used energy: each
/// contender's mean energy (kWh) against its mean of the report's metric, the Pareto front
/// ([`ScenarioReport::energy_front`]) joined by a line. `None` without energy (no power model).
pub fn energy_pareto(
    dir: &Path,
    scenario: &ScenarioReport,
    def: &MetricDef,
) -> Result<Option<String>> {
    if scenario.energy_front.is_empty() {
        return Ok(None);
    }
    let file = format!("{}_energy_pareto.svg", scenario.name);
    let points: Vec<(usize, f64, f64)> = scenario
        .results
        .iter()
        .enumerate()
        .map(|(i, r)| (i, r.metrics["energy_kwh"].mean, r.metrics[def.key].mean))
        .filter(|(_, x, y)| x.is_finite() && y.is_finite())
        .collect();
    let range = |values: Vec<f64>| {
        let (lo, hi) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(*v), hi.max(*v))
            });
        let pad = if hi > lo {
            0.08 * (hi - lo)
        } else {
            0.5 * hi.abs().max(1.0)
        };
        (lo - pad)..(hi + pad)
    };
    let xs = range(points.iter().map(|p| p.1).collect());
    let ys = range(points.iter().map(|p| p.2).collect());
    let path = dir.join(&file);
    let root = SVGBackend::new(&path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let direction = def.better();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{}: {} vs energy (Pareto front joined)",
                scenario.name, def.label
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(xs, ys)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("energy per episode (kWh, lower is better)")
        .y_desc(format!("{} ({direction} is better)", def.label))
        .draw()
        .map_err(plot_err)?;
    let mut front: Vec<(f64, f64)> = points
        .iter()
        .filter(|(i, _, _)| {
            scenario
                .energy_front
                .contains(&scenario.results[*i].contender)
        })
        .map(|(_, x, y)| (*x, *y))
        .collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0));
    chart
        .draw_series(LineSeries::new(front, BLACK.stroke_width(1)))
        .map_err(plot_err)?;
    for (i, x, y) in &points {
        let name = scenario.results[*i].contender.clone();
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((*x, *y))
                    + Circle::new((0, 0), 5, color(*i).filled())
                    + Text::new(name, (8, -8), ("sans-serif", 12)),
            ))
            .map_err(plot_err)?;
    }
    root.present().map_err(plot_err)?;
    Ok(Some(file))
}

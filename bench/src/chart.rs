//! `results.svg`: one panel per metric, one bar per server (ruche in its own colour),
//! the bar at the median and a whisker from min to max. The machine's limits are drawn
//! as vertical lines on the W1 and W2 panels, so a reader sees both comparisons at once.

use std::path::Path;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use crate::limits::Limit;
use crate::peers::Peer;
use crate::report::{Better, MetricResult, Report};
use crate::table::format_value;

const PANEL_WIDTH: u32 = 620;
const PANEL_HEIGHT: u32 = 230;
const COLUMNS: usize = 2;
const TITLE_HEIGHT: u32 = 60;
const RUCHE_COLOUR: RGBColor = RGBColor(214, 96, 32);
const PEER_COLOUR: RGBColor = RGBColor(96, 128, 170);
const LIMIT_COLOUR: RGBColor = RGBColor(40, 150, 70);

/// A vertical line at a machine limit.
struct LimitLine {
    label: &'static str,
    value: f64,
}

/// Draws the report's metrics into an SVG file at `path`.
pub fn draw(report: &Report, path: &Path) -> anyhow::Result<()> {
    let rows = report.metrics.len().div_ceil(COLUMNS).max(1);
    let size = (
        PANEL_WIDTH * COLUMNS as u32,
        PANEL_HEIGHT * rows as u32 + TITLE_HEIGHT,
    );
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;

    let (title, body) = root.split_vertically(TITLE_HEIGHT);
    let heading = "WebDAV: ruche beside its peers (median, whisker min–max)";
    title
        .draw_text(heading, &("sans-serif", 20).into_font().into(), (12, 8))
        .map_err(plot_error)?;
    title
        .draw_text(
            &report.heading(),
            &("sans-serif", 13).into_font().into(),
            (12, 36),
        )
        .map_err(plot_error)?;

    let panels = body.split_evenly((rows, COLUMNS));
    for (result, panel) in report.metrics.iter().zip(&panels) {
        let limits = limit_lines(report, result.metric.id);
        draw_panel(panel, &report.servers, result, &limits)?;
    }
    root.present().map_err(plot_error)
}

fn limit_lines(report: &Report, metric: &str) -> Vec<LimitLine> {
    let wanted: &[(Limit, &'static str)] = match metric {
        "w1_put" => &[(Limit::DiskFsync, "disk+fsync"), (Limit::Sha256, "SHA-256")],
        "w2_get" => &[(Limit::Loopback, "loopback")],
        _ => &[],
    };
    wanted
        .iter()
        .filter_map(|&(limit, label)| {
            let value = report.limit_median(limit)?;
            Some(LimitLine { label, value })
        })
        .collect()
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    servers: &[Peer],
    result: &MetricResult,
    limits: &[LimitLine],
) -> anyhow::Result<()> {
    let count = servers.len();
    let largest = result
        .series
        .iter()
        .filter_map(|series| series.summary().map(|s| s.max))
        .chain(limits.iter().map(|line| line.value))
        .fold(0.0_f64, f64::max);
    let x_end = if largest > 0.0 { largest * 1.3 } else { 1.0 };
    let direction = match result.metric.better {
        Better::Higher => "higher is better",
        Better::Lower => "lower is better",
    };
    let caption = format!(
        "{} — {}, {direction}",
        result.metric.title, result.metric.unit
    );

    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 14))
        .margin(10)
        .x_label_area_size(22)
        .y_label_area_size(60)
        // A discrete range includes its end: `0..count - 1` holds `count` rows.
        .build_cartesian_2d(0.0..x_end, (0..count - 1).into_segmented())
        .map_err(plot_error)?;
    // Server 0 (ruche) is drawn at the top: row `count - 1 - i`.
    let row = |i: usize| count - 1 - i;
    let name_of = |value: &SegmentValue<usize>| match value {
        SegmentValue::CenterOf(r) if *r < count => servers[count - 1 - r].name().to_owned(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_labels(6)
        .x_label_formatter(&|value| format_value(*value))
        .y_label_formatter(&name_of)
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(plot_error)?;

    let font = ("sans-serif", 11).into_font();
    for (i, series) in result.series.iter().enumerate() {
        let (bottom, centre) = (SegmentValue::Exact(row(i)), SegmentValue::CenterOf(row(i)));
        let Some(summary) = series.summary() else {
            let text = if series.failure.is_some() {
                "failed"
            } else {
                "no data"
            };
            chart
                .draw_series([Text::new(text, (0.0, centre), font.clone())])
                .map_err(plot_error)?;
            continue;
        };
        let colour = if servers[i] == Peer::Ruche {
            RUCHE_COLOUR
        } else {
            PEER_COLOUR
        };
        let top = SegmentValue::Exact(row(i) + 1);
        let mut bar = Rectangle::new([(0.0, top), (summary.median, bottom)], colour.filled());
        bar.set_margin(4, 4, 0, 0);
        let whisker = PathElement::new(
            vec![(summary.min, centre.clone()), (summary.max, centre.clone())],
            BLACK.stroke_width(2),
        );
        let label = format!("  {}", format_value(summary.median));
        let value = Text::new(label, (summary.max, centre), font.clone());
        chart.draw_series([bar]).map_err(plot_error)?;
        chart.draw_series([whisker]).map_err(plot_error)?;
        chart.draw_series([value]).map_err(plot_error)?;
    }

    for line in limits {
        let path = PathElement::new(
            vec![
                (line.value, SegmentValue::Exact(0)),
                (line.value, SegmentValue::Last),
            ],
            LIMIT_COLOUR.stroke_width(2),
        );
        let label = format!(" {} {}", line.label, format_value(line.value));
        let text = Text::new(label, (line.value, SegmentValue::Last), font.clone());
        chart.draw_series([path]).map_err(plot_error)?;
        chart.draw_series([text]).map_err(plot_error)?;
    }
    Ok(())
}

/// plotters' errors borrow the backend's error type; keep only their message.
fn plot_error<E: std::error::Error + Send + Sync>(error: DrawingAreaErrorKind<E>) -> anyhow::Error {
    anyhow::anyhow!("{error}")
}

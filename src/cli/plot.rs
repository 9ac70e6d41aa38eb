//! `tapejit bench --scaling --plot FILE.svg`: the scaling study as a picture.

use super::scaling::{ScalingReport, FAMILIES, METHODS};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// One color per method, in [`METHODS`] order.
const COLORS: [RGBColor; 5] = [
    RGBColor(214, 39, 40),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
];

/// Draws the study as an SVG: one log-log panel per family, one line per
/// method (gradient time / native primal time against `m`), the 4x
/// cheap-gradient bound as a horizontal line, and each line's fitted slope
/// in the legend.
pub fn plot_scaling(report: &ScalingReport, path: &Path) -> Result<(), String> {
    let families: Vec<_> = FAMILIES
        .iter()
        .filter(|f| report.points.iter().any(|p| p.family == f.name()))
        .collect();
    let width = 620 * families.len().max(1) as u32;
    let root = SVGBackend::new(path, (width, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (title, body) = root.split_vertically(36);
    title
        .titled(
            &format!(
                "Gradient cost / primal cost vs number of variables m (tapejit {}, {})",
                report.tapejit, report.machine.cpu
            ),
            ("sans-serif", 18),
        )
        .map_err(|e| e.to_string())?;
    let panels = body.split_evenly((1, families.len().max(1)));
    for (panel, family) in panels.iter().zip(families) {
        draw_family(report, family.name(), &family.describe(), panel)?;
    }
    root.present().map_err(|e| e.to_string())
}

fn draw_family(
    report: &ScalingReport,
    family: &str,
    caption: &str,
    area: &DrawingArea<SVGBackend, Shift>,
) -> Result<(), String> {
    let points: Vec<_> = report
        .points
        .iter()
        .filter(|p| p.family == family)
        .collect();
    let ms = points.iter().map(|p| p.m as f64);
    let (mut xmin, mut xmax) = (f64::INFINITY, 0.0f64);
    for m in ms {
        xmin = xmin.min(m);
        xmax = xmax.max(m);
    }
    let (mut ymin, mut ymax) = (4.0f64, 4.0f64);
    for p in &points {
        for r in p.methods.iter().filter_map(|m| m.ratio) {
            ymin = ymin.min(r);
            ymax = ymax.max(r);
        }
    }
    let (xmin, xmax) = (xmin / 1.3, xmax * 1.3);
    let (ymin, ymax) = (ymin / 2.0, ymax * 3.0);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 15))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(62)
        .build_cartesian_2d((xmin..xmax).log_scale(), (ymin..ymax).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("m (number of variables)")
        .y_desc("gradient time / native f64 primal time")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| {
            if *v >= 1.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        })
        .draw()
        .map_err(|e| e.to_string())?;
    let bound = [(xmin, 4.0), (xmax, 4.0)];
    chart
        .draw_series(DashedLineSeries::new(bound, 6, 4, BLACK.stroke_width(2)))
        .map_err(|e| e.to_string())?
        .label("4x cheap-gradient bound")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
    for (k, method) in METHODS.iter().enumerate() {
        let line: Vec<(f64, f64)> = points
            .iter()
            .filter_map(|p| p.methods[k].ratio.map(|r| (p.m as f64, r)))
            .collect();
        if line.is_empty() {
            continue;
        }
        let slope = report
            .slopes
            .iter()
            .find(|s| s.family == family && s.method == method.key)
            .and_then(|s| s.slope);
        let label = match slope {
            Some(s) => format!("{} (slope {s:.2})", method.label),
            None => method.label.to_string(),
        };
        let color = COLORS[k];
        chart
            .draw_series(LineSeries::new(line.iter().copied(), color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                line.iter()
                    .map(|&(x, y)| Circle::new((x, y), 3, color.filled())),
            )
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(|e| e.to_string())
}

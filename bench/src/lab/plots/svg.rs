//! Drawing a [`Plot`] as an SVG document (plotters' SVG backend).

use plotters::prelude::*;

use super::super::markdown::format_number;
use super::{saturation_point, Bar, Plot, PlotBody};

/// Why a plot could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("plot {id}: {what}")]
pub struct PlotError {
    /// The plot.
    pub id: String,
    /// What failed.
    pub what: String,
}

fn span(lo: f64, hi: f64) -> (f64, f64) {
    if hi > lo {
        (lo, hi)
    } else {
        (lo - 1.0, hi + 1.0)
    }
}

/// Draws a plot as an SVG document; `None` when it has nothing to draw (e.g. only
/// non-positive values on a log axis).
pub fn render_svg(plot: &Plot) -> Result<Option<String>, PlotError> {
    let err = |e: &dyn std::fmt::Display| PlotError {
        id: plot.id.clone(),
        what: e.to_string(),
    };
    // A log axis is drawn as log10 of the values on a linear axis, labelled with the values.
    let ty = |v: f64| if plot.log_y { v.log10() } else { v };
    let keep = |v: f64| v.is_finite() && (!plot.log_y || v > 0.0);
    let tx = |v: f64| if plot.log_x { v.log10() } else { v };
    let keep_x = |v: f64| v.is_finite() && (!plot.log_x || v > 0.0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let y_fmt = |v: &f64| format_number(if plot.log_y { 10f64.powf(*v) } else { *v });
        match &plot.body {
            PlotBody::Lines(lines) => {
                let pts: Vec<Vec<(f64, f64)>> = lines
                    .iter()
                    .map(|l| {
                        l.points
                            .iter()
                            .filter(|p| keep_x(p.0) && keep(p.1))
                            .map(|p| (tx(p.0), ty(p.1)))
                            .collect()
                    })
                    .collect();
                let bars_of: Vec<Vec<(f64, f64, f64)>> = lines
                    .iter()
                    .map(|l| {
                        l.ranges
                            .iter()
                            .filter(|r| keep_x(r.0) && keep(r.1) && keep(r.2))
                            .map(|r| (tx(r.0), ty(r.1), ty(r.2)))
                            .collect()
                    })
                    .collect();
                let mut all: Vec<(f64, f64)> = pts.iter().flatten().copied().collect();
                if all.is_empty() {
                    return Ok(None);
                }
                // The axes fit the data, error bars included.
                all.extend(
                    bars_of
                        .iter()
                        .flatten()
                        .flat_map(|r| [(r.0, r.1), (r.0, r.2)]),
                );
                let (x0, x1) = span(
                    all.iter().map(|p| p.0).fold(f64::INFINITY, f64::min),
                    all.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max),
                );
                // A little room on both sides so that end points are not on the frame.
                let pad = (x1 - x0) * 0.03;
                let (x0, x1) = (x0 - pad, x1 + pad);
                let ymin = all.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
                let ymax = all.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
                let (y0, y1) = if plot.log_y {
                    // Headroom above the data for the legend (upper left).
                    span(ymin.floor(), ymax.ceil() + 1.0)
                } else {
                    // From 0 when the data starts near it, else from just below the data;
                    // headroom above for the legend.
                    let lo = if ymin >= 0.0 && ymin < 0.5 * ymax {
                        0.0
                    } else {
                        ymin - (ymax - ymin) * 0.05
                    };
                    span(lo, ymax + (ymax - lo) * 0.25)
                };
                let mut chart = ChartBuilder::on(&root)
                    .caption(&plot.title, ("sans-serif", 20))
                    .margin(12)
                    .x_label_area_size(45)
                    .y_label_area_size(80)
                    .build_cartesian_2d(x0..x1, y0..y1)
                    .map_err(|e| err(&e))?;
                chart
                    .configure_mesh()
                    .x_desc(plot.x_label.as_str())
                    .y_desc(plot.y_label.as_str())
                    .x_label_formatter(&|v| {
                        format_number(if plot.log_x { 10f64.powf(*v) } else { *v })
                    })
                    .y_label_formatter(&y_fmt)
                    .draw()
                    .map_err(|e| err(&e))?;
                for (i, (line, points)) in lines.iter().zip(pts).enumerate() {
                    let color = Palette99::pick(i).to_rgba();
                    // The first line is drawn wider so that a line drawn over it (sent over
                    // scheduled) leaves it visible.
                    let width = if i == 0 && lines.len() > 1 { 5 } else { 2 };
                    chart
                        .draw_series(LineSeries::new(points.clone(), color.stroke_width(width)))
                        .map_err(|e| err(&e))?
                        .label(line.name.as_str())
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(width))
                        });
                    chart
                        .draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))
                        .map_err(|e| err(&e))?;
                    // Error bars: the repeats' lowest to highest, with caps.
                    let cap = (x1 - x0) * 0.006;
                    for &(x, lo, hi) in &bars_of[i] {
                        chart
                            .draw_series([
                                PathElement::new(vec![(x, lo), (x, hi)], color.stroke_width(1)),
                                PathElement::new(
                                    vec![(x - cap, lo), (x + cap, lo)],
                                    color.stroke_width(1),
                                ),
                                PathElement::new(
                                    vec![(x - cap, hi), (x + cap, hi)],
                                    color.stroke_width(1),
                                ),
                            ])
                            .map_err(|e| err(&e))?;
                    }
                    // The saturation point: where the line stops rising.
                    if let Some((sx, sy)) = saturation_point(&points) {
                        chart
                            .draw_series([PathElement::new(
                                vec![(sx, y0), (sx, y1)],
                                color.mix(0.6).stroke_width(1),
                            )])
                            .map_err(|e| err(&e))?;
                        chart
                            .draw_series([Text::new(
                                format!(
                                    "saturation ≈ {}",
                                    format_number(if plot.log_x { 10f64.powf(sx) } else { sx })
                                ),
                                (sx, sy),
                                ("sans-serif", 13).into_font().color(&color),
                            )])
                            .map_err(|e| err(&e))?;
                    }
                }
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .position(SeriesLabelPosition::UpperLeft)
                    .draw()
                    .map_err(|e| err(&e))?;
            }
            PlotBody::Bars(bars) => {
                let bars: Vec<&Bar> = bars.iter().filter(|b| keep(b.value)).collect();
                if bars.is_empty() {
                    return Ok(None);
                }
                let mut tools: Vec<&str> = Vec::new();
                for b in &bars {
                    if !tools.contains(&b.tool.as_str()) {
                        tools.push(&b.tool);
                    }
                }
                // The axis fits the bars and their error bars.
                let ymax = bars
                    .iter()
                    .map(|b| ty(b.range.map_or(b.value, |r| r.1.max(b.value))))
                    .fold(f64::NEG_INFINITY, f64::max);
                let ymin = bars
                    .iter()
                    .map(|b| ty(b.value))
                    .fold(f64::INFINITY, f64::min);
                let (y0, y1) = if plot.log_y {
                    span(ymin.floor(), ymax.ceil())
                } else {
                    span(0.0, ymax * 1.1)
                };
                let n = bars.len();
                let mut chart = ChartBuilder::on(&root)
                    .caption(&plot.title, ("sans-serif", 20))
                    .margin(12)
                    .x_label_area_size(45)
                    .y_label_area_size(80)
                    .build_cartesian_2d(0f64..n as f64, y0..y1)
                    .map_err(|e| err(&e))?;
                let x_fmt = |v: &f64| {
                    let i = v.floor() as usize;
                    bars.get(i)
                        .map_or(String::new(), |b| format!("{} {}", b.category, b.tool))
                };
                chart
                    .configure_mesh()
                    .disable_x_mesh()
                    .x_labels(n * 2 + 1)
                    .x_label_formatter(&|v| {
                        if (v.fract() - 0.5).abs() < 1e-6 {
                            x_fmt(v)
                        } else {
                            String::new()
                        }
                    })
                    .x_desc(plot.x_label.as_str())
                    .y_desc(plot.y_label.as_str())
                    .y_label_formatter(&y_fmt)
                    .draw()
                    .map_err(|e| err(&e))?;
                for (t, tool) in tools.iter().enumerate() {
                    let color = Palette99::pick(t).to_rgba();
                    let rects: Vec<Rectangle<(f64, f64)>> = bars
                        .iter()
                        .enumerate()
                        .filter(|(_, b)| b.tool == *tool)
                        .map(|(i, b)| {
                            Rectangle::new(
                                [(i as f64 + 0.1, y0), (i as f64 + 0.9, ty(b.value))],
                                color.filled(),
                            )
                        })
                        .collect();
                    chart
                        .draw_series(rects)
                        .map_err(|e| err(&e))?
                        .label(*tool)
                        .legend(move |(x, y)| {
                            Rectangle::new([(x, y - 5), (x + 15, y + 5)], color.filled())
                        });
                }
                // Error bars: the repeats' lowest to highest.
                for (i, b) in bars.iter().enumerate() {
                    let Some((lo, hi)) = b.range.filter(|r| keep(r.0) && keep(r.1)) else {
                        continue;
                    };
                    let x = i as f64 + 0.5;
                    chart
                        .draw_series([
                            PathElement::new(vec![(x, ty(lo)), (x, ty(hi))], BLACK.stroke_width(1)),
                            PathElement::new(
                                vec![(x - 0.08, ty(lo)), (x + 0.08, ty(lo))],
                                BLACK.stroke_width(1),
                            ),
                            PathElement::new(
                                vec![(x - 0.08, ty(hi)), (x + 0.08, ty(hi))],
                                BLACK.stroke_width(1),
                            ),
                        ])
                        .map_err(|e| err(&e))?;
                }
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .position(SeriesLabelPosition::UpperRight)
                    .draw()
                    .map_err(|e| err(&e))?;
            }
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(Some(svg))
}

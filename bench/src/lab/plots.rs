//! SVG plots (plotters, SVG backend): lines per tool and series, or bars per category and tool.

use plotters::prelude::*;

use super::markdown::format_number;
use super::record::{PlotX, Record};
use super::stats::median;

/// One line of a line plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Legend entry: tool and series.
    pub name: String,
    /// Points, sorted by x.
    pub points: Vec<(f64, f64)>,
    /// The repeats' spread at each x that had several: (x, lowest, highest).
    pub ranges: Vec<(f64, f64, f64)>,
}

/// One bar: category, tool, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Category on the x axis.
    pub category: String,
    /// Tool (colour and legend).
    pub tool: String,
    /// Height.
    pub value: f64,
    /// The repeats' spread (lowest, highest), when there were several.
    pub range: Option<(f64, f64)>,
}

/// What a plot draws.
#[derive(Debug, Clone, PartialEq)]
pub enum PlotBody {
    /// Lines over a numeric x.
    Lines(Vec<Line>),
    /// Bars over categories.
    Bars(Vec<Bar>),
}

/// A plot to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct Plot {
    /// Plot id (file `<stamp>-<id>.svg`).
    pub id: String,
    /// Caption.
    pub title: String,
    /// x axis label.
    pub x_label: String,
    /// y axis label.
    pub y_label: String,
    /// Logarithmic y axis.
    pub log_y: bool,
    /// Logarithmic x axis (line plots).
    pub log_x: bool,
    /// Lines or bars.
    pub body: PlotBody,
}

fn line_name(tool: &str, series: &str) -> String {
    if series.is_empty() {
        tool.to_string()
    } else {
        format!("{tool} {series}")
    }
}

fn caption(title: &str, scenario_title: &str) -> String {
    if title.is_empty() {
        scenario_title.to_string()
    } else {
        title.to_string()
    }
}

fn plot_entry<'a>(plots: &'a mut Vec<Plot>, id: &str, make: impl FnOnce() -> Plot) -> &'a mut Plot {
    let i = match plots.iter().position(|p| p.id == id) {
        Some(i) => i,
        None => {
            plots.push(make());
            plots.len() - 1
        }
    };
    &mut plots[i]
}

fn push_point(lines: &mut Vec<Line>, name: String, point: (f64, f64), range: Option<(f64, f64)>) {
    let i = match lines.iter().position(|l| l.name == name) {
        Some(i) => i,
        None => {
            lines.push(Line {
                name,
                points: Vec::new(),
                ranges: Vec::new(),
            });
            lines.len() - 1
        }
    };
    lines[i].points.push(point);
    if let Some((lo, hi)) = range {
        lines[i].ranges.push((point.0, lo, hi));
    }
}

/// The lowest and highest of several repeats (`None` for one value: no spread to show).
fn spread(values: &[f64]) -> Option<(f64, f64)> {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.len() < 2 {
        return None;
    }
    Some((
        finite.iter().copied().fold(f64::INFINITY, f64::min),
        finite.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    ))
}

/// Where a rising line stops rising: the first point reaching 95 % of the line's highest
/// value, when later points exist (the curve has flattened: more load, no more throughput).
/// `None` for lines that rise to their last point, fall from the start, or have < 3 points.
pub fn saturation_point(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    if points.len() < 3 {
        return None;
    }
    let max = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    if !(max.is_finite() && max > points[0].1) {
        return None;
    }
    let knee = points.iter().position(|p| p.1 >= 0.95 * max)?;
    (knee > 0 && knee < points.len() - 1).then(|| points[knee])
}

/// Builds the plots the records ask for, in order of first appearance. A figure whose x kind
/// (number or category) differs from its plot's first figure is left out of that plot.
pub fn plots(records: &[Record]) -> Vec<Plot> {
    let mut out: Vec<Plot> = Vec::new();
    for r in records {
        match r {
            Record::Figure(f) => {
                let (Some(p), Some(m)) = (&f.plot, median(&f.values)) else {
                    continue;
                };
                let plot = plot_entry(&mut out, &p.id, || Plot {
                    id: p.id.clone(),
                    title: caption(&p.title, &f.scenario_title),
                    x_label: p.x_label.clone(),
                    y_label: f.unit.clone(),
                    log_y: p.log_y,
                    log_x: p.log_x,
                    body: match p.x {
                        PlotX::Number(_) => PlotBody::Lines(Vec::new()),
                        PlotX::Category(_) => PlotBody::Bars(Vec::new()),
                    },
                });
                match (&mut plot.body, &p.x) {
                    (PlotBody::Lines(lines), PlotX::Number(x)) => push_point(
                        lines,
                        line_name(&f.tool, &p.series),
                        (*x, m),
                        spread(&f.values),
                    ),
                    (PlotBody::Bars(bars), PlotX::Category(c)) => bars.push(Bar {
                        category: c.clone(),
                        tool: line_name(&f.tool, &p.series),
                        value: m,
                        range: spread(&f.values),
                    }),
                    _ => {}
                }
            }
            Record::Series(s) => {
                let plot = plot_entry(&mut out, &s.plot, || Plot {
                    id: s.plot.clone(),
                    title: caption(&s.plot_title, &s.scenario_title),
                    x_label: s.x_label.clone(),
                    y_label: s.y_label.clone(),
                    log_y: false,
                    log_x: false,
                    body: PlotBody::Lines(Vec::new()),
                });
                if let PlotBody::Lines(lines) = &mut plot.body {
                    let name = line_name(&s.tool, &s.series);
                    for (x, y) in s.x.iter().zip(&s.y) {
                        push_point(lines, name.clone(), (*x, *y), None);
                    }
                }
            }
            Record::Note(_) => {}
        }
    }
    for p in &mut out {
        if let PlotBody::Lines(lines) = &mut p.body {
            for l in lines.iter_mut() {
                l.points.sort_by(|a, b| a.0.total_cmp(&b.0));
                l.ranges.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
        }
    }
    out
}

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

#[cfg(test)]
mod saturation_tests {
    use super::*;

    #[test]
    fn the_knee_of_a_flattening_curve() {
        let pts = [
            (10.0, 10.0),
            (20.0, 20.0),
            (40.0, 39.0),
            (80.0, 40.0),
            (160.0, 40.5),
        ];
        assert_eq!(saturation_point(&pts), Some((40.0, 39.0)));
        // Still rising at the end, or falling, or too short: nothing to mark.
        assert_eq!(
            saturation_point(&[(1.0, 1.0), (2.0, 2.0), (3.0, 3.0)]),
            None
        );
        assert_eq!(
            saturation_point(&[(1.0, 3.0), (2.0, 2.0), (3.0, 1.0)]),
            None
        );
        assert_eq!(saturation_point(&[(1.0, 1.0), (2.0, 2.0)]), None);
        assert_eq!(spread(&[3.0, 1.0, 2.0]), Some((1.0, 3.0)));
        assert_eq!(spread(&[3.0]), None);
    }

    #[test]
    fn error_bars_and_the_saturation_mark_are_drawn() {
        let plot = Plot {
            id: "p".into(),
            title: "t".into(),
            x_label: "offered".into(),
            y_label: "achieved".into(),
            log_y: false,
            log_x: false,
            body: PlotBody::Lines(vec![Line {
                name: "kreplay".into(),
                points: vec![(10.0, 10.0), (20.0, 20.0), (40.0, 39.0), (80.0, 40.0)],
                ranges: vec![(20.0, 18.0, 23.0)],
            }]),
        };
        let svg = render_svg(&plot).unwrap().unwrap();
        assert!(svg.contains("saturation ≈ 40"), "{svg}");
        // The y axis reaches above the highest error bar (23) and the data (40) but not far.
        assert!(!svg.contains(">100<"), "axis fitted to the data");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::record::{Better, Figure, PlotRef, Series};

    fn fig(tool: &str, x: PlotX, values: &[f64]) -> Record {
        Record::Figure(Figure {
            scenario: "s".into(),
            scenario_title: "S".into(),
            figure: "f".into(),
            unit: "ms".into(),
            better: Better::Lower,
            tool: tool.into(),
            command: String::new(),
            values: values.to_vec(),
            expect: None,
            plot: Some(PlotRef {
                id: "p".into(),
                x,
                series: "p99".into(),
                x_label: "rate".into(),
                log_y: true,
                log_x: false,
                title: String::new(),
            }),
        })
    }

    #[test]
    fn figures_become_sorted_lines_of_medians_per_tool_and_series() {
        let records = [
            fig("kreplay", PlotX::Number(50.0), &[3.0, 1.0, 2.0]),
            fig("kreplay", PlotX::Number(10.0), &[1.0]),
            fig("oha", PlotX::Number(10.0), &[4.0]),
            // A category in a numeric plot is left out.
            fig("hey", PlotX::Category("x".into()), &[9.0]),
        ];
        let plots = plots(&records);
        assert_eq!(plots.len(), 1);
        assert_eq!(plots[0].title, "S");
        assert!(plots[0].log_y);
        let PlotBody::Lines(lines) = &plots[0].body else {
            panic!("lines expected")
        };
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].name, "kreplay p99");
        assert_eq!(lines[0].points, vec![(10.0, 1.0), (50.0, 2.0)]);
        assert_eq!(lines[1].name, "oha p99");
        let svg = render_svg(&plots[0]).unwrap().unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("oha p99"));
    }

    #[test]
    fn categories_become_bars_and_series_become_lines() {
        let records = [
            fig("kreplay", PlotX::Category("HTTP/1.1".into()), &[5.0]),
            fig("wrk", PlotX::Category("HTTP/1.1".into()), &[7.0]),
            Record::Series(Series {
                scenario: "r".into(),
                scenario_title: "R".into(),
                plot: "shape".into(),
                series: "sent".into(),
                tool: "kreplay".into(),
                x_label: "s".into(),
                y_label: "n".into(),
                x: vec![1.0, 0.0],
                y: vec![20.0, 10.0],
                command: String::new(),
                plot_title: "Shape".into(),
            }),
        ];
        let plots = plots(&records);
        assert_eq!(plots.len(), 2);
        let PlotBody::Bars(bars) = &plots[0].body else {
            panic!("bars expected")
        };
        assert_eq!(
            bars.iter()
                .map(|b| (b.tool.as_str(), b.value))
                .collect::<Vec<_>>(),
            [("kreplay p99", 5.0), ("wrk p99", 7.0)]
        );
        assert_eq!(plots[1].title, "Shape");
        let PlotBody::Lines(lines) = &plots[1].body else {
            panic!("lines expected")
        };
        assert_eq!(lines[0].points, vec![(0.0, 10.0), (1.0, 20.0)]);
    }

    #[test]
    fn a_log_plot_of_zeros_draws_nothing() {
        let records = [fig("kreplay", PlotX::Number(1.0), &[0.0])];
        assert_eq!(render_svg(&plots(&records)[0]).unwrap(), None);
    }
}

//! The lab's plots: lines per tool and series, or bars per category and tool, made from the
//! records' figures here and drawn as SVG by `svg.rs`.

mod svg;

pub use svg::{render_svg, PlotError};

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

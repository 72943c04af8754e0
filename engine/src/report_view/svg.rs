//! Line charts as inline SVG: axes fitted to the data, ticks, a legend. No scripts, no
//! network: the page renders the same in any browser, offline.

use std::fmt::Write as _;

/// One line of a chart.
pub struct Series<'a> {
    /// Legend text.
    pub name: &'a str,
    /// Stroke colour (`#rrggbb`).
    pub color: &'a str,
    /// Points (x, y); `None` y values break the line.
    pub points: Vec<(f64, Option<f64>)>,
}

/// A chart's frame.
pub struct Chart<'a> {
    /// Title above the plot.
    pub title: &'a str,
    /// X axis label.
    pub x_label: &'a str,
    /// Y axis label.
    pub y_label: &'a str,
    /// X axis as `1 / (1 − p)` on a log scale (percentile plots): x values are quantiles.
    pub percentile_x: bool,
    /// Y on a log scale.
    pub log_y: bool,
}

const W: f64 = 1100.0;
const H: f64 = 300.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 46.0;

fn nice_step(span: f64) -> f64 {
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let step = if norm < 1.5 {
        1.0
    } else if norm < 3.0 {
        2.0
    } else if norm < 7.0 {
        5.0
    } else {
        10.0
    };
    step * mag
}

fn fmt_tick(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        let t = format!("{v:.2}");
        t.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.3}")
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The chart as an `<svg>` element; an empty chart says so instead of drawing empty axes.
pub fn line_chart(chart: &Chart<'_>, series: &[Series<'_>]) -> String {
    let tx = |x: f64| {
        if chart.percentile_x {
            (1.0 / (1.0 - x.min(0.999_999))).log10()
        } else {
            x
        }
    };
    let ty = |y: f64| if chart.log_y { y.max(1e-9).log10() } else { y };
    let pts: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter_map(|&(x, y)| Some((tx(x), ty(y?))))
        .collect();
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12"><rect width="{W}" height="{H}" fill="#ffffff"/><text x="{LEFT}" y="20" font-size="15" font-weight="bold">{}</text>"##,
        esc(chart.title)
    );
    if pts.is_empty() {
        let _ = write!(
            out,
            r##"<text x="{}" y="{}" fill="#666">no data in this report</text></svg>"##,
            W / 2.0 - 70.0,
            H / 2.0
        );
        return out;
    }
    let (mut x0, mut x1) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |a, p| (a.0.min(p.0), a.1.max(p.0)));
    let (mut y0, mut y1) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |a, p| (a.0.min(p.1), a.1.max(p.1)));
    if !chart.log_y {
        y0 = y0.min(0.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    // Axes fitted to the data, with a nice step and a little headroom (a line at the maximum
    // must not merge into the frame).
    if chart.log_y {
        y1 += 0.1;
    } else {
        y1 += (y1 - y0) * 0.08;
    }
    let ystep = if chart.log_y { 1.0 } else { nice_step(y1 - y0) };
    y0 = (y0 / ystep).floor() * ystep;
    y1 = (y1 / ystep).ceil() * ystep;
    if !chart.log_y && y1 == y0 {
        y1 += ystep;
    }
    if chart.percentile_x {
        x0 = 0.0;
        x1 = x1.ceil().max(1.0);
    }
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * pw;
    let sy = |y: f64| TOP + ph - (y - y0) / (y1 - y0) * ph;
    let _ = write!(
        out,
        r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>"##
    );
    // Y ticks.
    let mut y = y0;
    while y <= y1 + ystep * 1e-6 {
        let label = if chart.log_y {
            fmt_tick(10f64.powf(y))
        } else {
            fmt_tick(y)
        };
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{py}" y2="{py}" stroke="#e5e5e5"/><text x="{}" y="{}" text-anchor="end">{label}</text>"##,
            LEFT + pw,
            LEFT - 6.0,
            sy(y) + 4.0,
            py = sy(y)
        );
        y += ystep;
    }
    // X ticks.
    if chart.percentile_x {
        for d in 0..=(x1 as i32) {
            let label = if d == 0 {
                "0%".to_string()
            } else {
                format!("{:.*}%", (d - 2).max(0) as usize, 100.0 - 10f64.powi(2 - d))
            };
            let _ = write!(
                out,
                r##"<line x1="{px}" x2="{px}" y1="{TOP}" y2="{}" stroke="#e5e5e5"/><text x="{px}" y="{}" text-anchor="middle">{label}</text>"##,
                TOP + ph,
                TOP + ph + 16.0,
                px = sx(d as f64)
            );
        }
    } else {
        let xstep = nice_step(x1 - x0).max(1.0);
        let mut x = (x0 / xstep).ceil() * xstep;
        while x <= x1 {
            let _ = write!(
                out,
                r##"<line x1="{px}" x2="{px}" y1="{TOP}" y2="{}" stroke="#e5e5e5"/><text x="{px}" y="{}" text-anchor="middle">{}</text>"##,
                TOP + ph,
                TOP + ph + 16.0,
                fmt_tick(x),
                px = sx(x)
            );
            x += xstep;
        }
    }
    let _ = write!(
        out,
        r##"<text x="{}" y="{}" text-anchor="middle">{}</text><text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">{}</text>"##,
        LEFT + pw / 2.0,
        H - 8.0,
        esc(chart.x_label),
        TOP + ph / 2.0,
        TOP + ph / 2.0,
        esc(chart.y_label)
    );
    for (i, s) in series.iter().enumerate() {
        let mut d = String::new();
        let mut pen_up = true;
        for &(x, y) in &s.points {
            match y {
                Some(y) => {
                    let _ = write!(
                        d,
                        "{}{:.1},{:.1} ",
                        if pen_up { "M" } else { "L" },
                        sx(tx(x)),
                        sy(ty(y))
                    );
                    pen_up = false;
                }
                None => pen_up = true,
            }
        }
        let _ = write!(
            out,
            r##"<path d="{d}" fill="none" stroke="{c}" stroke-width="{width}" stroke-linejoin="round"/><rect x="{lx}" y="{ly}" width="14" height="4" fill="{c}"/><text x="{}" y="{}">{}</text>"##,
            LEFT + pw - 200.0 + 20.0,
            TOP + 14.0 + i as f64 * 16.0 + 4.0,
            esc(s.name),
            c = s.color,
            // Earlier series are drawn wider, so lines that coincide (sent = scheduled) all show.
            width = 2.0 + 2.5 * (series.len() - 1 - i) as f64,
            lx = LEFT + pw - 200.0,
            ly = TOP + 10.0 + i as f64 * 16.0,
        );
    }
    out.push_str("</svg>");
    out
}

//! `engine report --html FILE`: one self-contained page (inline SVG and CSS, no script, no
//! network) with the run's plots per interval (requests, errors, latency and send-lag p99),
//! the latency distribution as an HDR percentile plot (log scale), and the per-verb tables.

use std::fmt::Write as _;

use super::svg::{line_chart, Chart, Series};
use super::ReportView;
use crate::metrics::per_second::{quantile_micros, PerSecondSeries};
use crate::report::model::{EncodedHistogram, HistogramPair};

/// Colours of the series (distinct, so a screenshot test can find each line).
pub mod colors {
    /// Scheduled requests.
    pub const SCHEDULED: &str = "#1f77b4";
    /// Sent requests.
    pub const SENT: &str = "#ff7f0e";
    /// Completed requests.
    pub const COMPLETED: &str = "#2ca02c";
    /// Failed requests.
    pub const FAILED: &str = "#d62728";
    /// Latency p99.
    pub const LATENCY: &str = "#9467bd";
    /// Send-lag p99.
    pub const LAG: &str = "#8c564b";
    /// Latency distribution (service).
    pub const SERVICE: &str = "#e377c2";
    /// Latency distribution from the due instant.
    pub const FROM_DUE: &str = "#17becf";
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Quantiles of an HDR percentile plot: 0 %, then 1 − 10^(−k/10) up to 99.999 %.
fn plot_quantiles() -> Vec<f64> {
    (0..=50)
        .map(|k| 1.0 - 10f64.powf(-(k as f64) / 10.0))
        .collect()
}

fn counts_series<'a>(name: &'a str, color: &'a str, counts: &[u64], per: f64) -> Series<'a> {
    Series {
        name,
        color,
        points: counts
            .iter()
            .enumerate()
            .map(|(i, &c)| (i as f64 * per, Some(c as f64 / per)))
            .collect(),
    }
}

fn p99_series<'a>(
    name: &'a str,
    color: &'a str,
    s: &PerSecondSeries,
    at: fn(&PerSecondSeries, usize) -> &[u32],
) -> Series<'a> {
    Series {
        name,
        color,
        points: (0..s.used_len())
            .map(|i| {
                (
                    (i as u64 * s.interval_s) as f64,
                    quantile_micros(at(s, i), 0.99).map(|us| us as f64 / 1e3),
                )
            })
            .collect(),
    }
}

/// The page.
pub fn render(view: &ReportView) -> String {
    let mut body = String::new();
    let s = &view.series;
    let per = s.interval_s.max(1) as f64;
    let per_second = view.file.kreplay().map(|k| &k.per_second);
    let n = s.used_len();
    let scheduled = per_second.map_or(&[][..], |p| &p.scheduled);
    let sent = per_second.map_or(&[][..], |p| &p.sent);
    body.push_str(&line_chart(
        &Chart {
            title: "Requests per second",
            x_label: "seconds since the start",
            y_label: "requests/s",
            percentile_x: false,
            log_y: false,
        },
        &[
            counts_series("scheduled", colors::SCHEDULED, scheduled, 1.0),
            counts_series("sent", colors::SENT, sent, 1.0),
            counts_series("completed", colors::COMPLETED, &s.completed[..n], per),
        ],
    ));
    body.push_str(&line_chart(
        &Chart {
            title: "Errors per second",
            x_label: "seconds since the start",
            y_label: "failed requests/s",
            percentile_x: false,
            log_y: false,
        },
        &[counts_series("failed", colors::FAILED, &s.failed[..n], per)],
    ));
    body.push_str(&line_chart(
        &Chart {
            title: "Latency and send lag, p99 per interval",
            x_label: "seconds since the start",
            y_label: "milliseconds (log)",
            percentile_x: false,
            log_y: true,
        },
        &[
            p99_series(
                "latency p99",
                colors::LATENCY,
                s,
                PerSecondSeries::latency_at,
            ),
            p99_series("send lag p99", colors::LAG, s, PerSecondSeries::lag_at),
        ],
    ));
    // The latency distribution: from the full histograms when the report has them (kreplay),
    // else kperf's percentile list.
    let hist = |field: &str, pick: fn(&HistogramPair) -> Option<&EncodedHistogram>| {
        view.file
            .histogram(field, |h| pick(&h.all))
            .ok()
            .flatten()
            .filter(|h| !h.is_empty())
    };
    let mut dist = Vec::new();
    let from_hist = |h: hdrhistogram::Histogram<u64>| {
        plot_quantiles()
            .into_iter()
            .map(|q| (q, Some(h.value_at_quantile(q) as f64 / 1e3)))
            .collect::<Vec<_>>()
    };
    match hist("all.service", |p| p.service.as_ref()) {
        Some(h) => dist.push(Series {
            name: "service latency",
            color: colors::SERVICE,
            points: from_hist(h),
        }),
        None => dist.push(Series {
            name: "service latency",
            color: colors::SERVICE,
            points: view
                .latency_pairs()
                .into_iter()
                .filter(|(q, _)| *q < 1.0)
                .map(|(q, v)| (q, Some(v * 1e3)))
                .collect(),
        }),
    }
    if let Some(h) = hist("all.scheduled", |p| p.scheduled.as_ref()) {
        dist.push(Series {
            name: "from the due instant",
            color: colors::FROM_DUE,
            points: from_hist(h),
        });
    }
    body.push_str(&line_chart(
        &Chart {
            title: "Latency distribution (HDR percentile plot)",
            x_label: "percentile",
            y_label: "milliseconds (log)",
            percentile_x: true,
            log_y: true,
        },
        &dist,
    ));

    let verbs = view.verb_rows();
    if !verbs.is_empty() {
        body.push_str("<h2>Per verb</h2><table><tr><th>verb</th><th>count</th><th>errors</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>");
        for (name, count, errors, p) in verbs {
            let c = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.3} ms", v * 1e3));
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{count}</td><td>{errors}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&name),
                c(p[0]),
                c(p[1]),
                c(p[2]),
                c(p[3])
            );
        }
        body.push_str("</table>");
    }
    let errors = view.errors();
    if !errors.is_empty() {
        body.push_str("<h2>Errors</h2><table><tr><th>count</th><th>error</th></tr>");
        for (k, c) in errors.iter().take(50) {
            let _ = write!(body, "<tr><td>{c}</td><td>{}</td></tr>", esc(k));
        }
        body.push_str("</table>");
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>kreplay report: {title}</title>\
<style>body{{font-family:sans-serif;margin:16px;background:#fff;color:#222}}svg{{display:block;margin:8px 0}}\
table{{border-collapse:collapse;margin:8px 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}\
td:first-child,th:first-child{{text-align:left}}pre{{background:#f6f6f6;padding:8px;overflow-x:auto;font-size:12px}}</style>\
</head><body><h1>kreplay report</h1><pre>{summary}</pre>{body}</body></html>\n",
        title = esc(&view.file.path.display().to_string()),
        summary = esc(&view.summary()),
    )
}

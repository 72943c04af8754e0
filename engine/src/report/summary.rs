//! The human summary printed on stderr at the end of a run.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

use super::gofmt::format_go_duration;
use super::ReportContext;

fn ms(us: u64) -> String {
    format!("{:.3} ms", us as f64 / 1000.0)
}

fn quantiles(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return "-".to_string();
    }
    format!(
        "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.9)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max())
    )
}

/// The summary text: totals, error table, latency and lag percentiles.
pub fn render_summary(ctx: &ReportContext<'_>) -> String {
    let o = ctx.outcome;
    let m = &o.metrics;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "kreplay: {} of {} requests run in {} on {} cores ({} failed, {} bytes received){}",
        m.run,
        o.scheduled,
        format_go_duration(o.duration),
        o.cores,
        m.failed,
        m.bytes_received,
        if o.interrupted { ", interrupted" } else { "" }
    );
    if let Some(d) = &o.check_failure {
        let _ = writeln!(s, "  stopped: {d}");
    }
    let _ = writeln!(s, "  service latency   {}", quantiles(&m.all.service));
    let _ = writeln!(s, "  from due instant  {}", quantiles(&m.all.scheduled));
    let _ = writeln!(
        s,
        "  send lag          {}  (late >1ms: {}, >10ms: {})",
        quantiles(&m.lag),
        m.late_1ms,
        m.late_10ms
    );
    if !m.error_stats.is_empty() {
        let _ = writeln!(s, "  errors:");
        let mut rows: Vec<(&String, &u64)> = m.error_stats.iter().collect();
        rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (k, n) in rows {
            let _ = writeln!(s, "    {n:>10}  {k}");
        }
    }
    s
}

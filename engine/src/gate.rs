//! Threshold expressions shared by `engine run --fail-on` and `engine compare --fail-on`:
//! `error_rate>0.1%`, `p99(GET)>200ms`, `p95(LIST)>20%` (compare: relative to the base),
//! `lag_p99>1ms`, `max>2s`, `rate<900`. One parser, one way to read a figure from a report.
//!
//! Grammar: `METRIC[(SELECTOR)] OP VALUE`, where METRIC is `error_rate`, `pNN[.N]` (service
//! latency percentile), `max`, `lag_p50|p90|p99|p999|max` (send lag) or `rate` (achieved
//! requests/s); SELECTOR is a verb (`GET`, `CREATE`, …) or a metric key; OP is `>`, `>=`, `<`,
//! `<=`; VALUE is a Go duration for latencies, a percentage for `error_rate` (or for a latency in
//! `compare`: the change from the base), a number for `rate`. The expression says when to
//! FAIL, like k6's thresholds inverted: `p99(GET)>200ms` fails when GET's p99 is above 200 ms.
//! A figure the report does not hold (no successful request, a kperf report without the
//! percentile) fails the gate: a gate that cannot be checked must not pass silently.

use std::fmt;
use std::str::FromStr;

use crate::compare::read::ReportFile;

/// What a gate measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// failed / run.
    ErrorRate,
    /// Service latency at this quantile (0–1].
    Latency(f64),
    /// Largest service latency.
    LatencyMax,
    /// Send lag at this quantile (p50, p90, p99, p99.9).
    Lag(f64),
    /// Largest send lag.
    LagMax,
    /// Achieved requests per second.
    Rate,
}

/// The comparison that fails the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
}

impl Op {
    fn holds(self, value: f64, limit: f64) -> bool {
        match self {
            Op::Gt => value > limit,
            Op::Ge => value >= limit,
            Op::Lt => value < limit,
            Op::Le => value <= limit,
        }
    }
}

/// The limit of a gate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// Seconds (latencies, lag).
    Seconds(f64),
    /// A fraction (error rate given in percent).
    Fraction(f64),
    /// A relative change from the base, as a fraction (`compare` only).
    Change(f64),
    /// A plain number (rate).
    Number(f64),
}

/// One parsed `--fail-on` expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// The expression as written (trimmed).
    pub text: String,
    /// What is measured.
    pub metric: Metric,
    /// Verb or metric key; `None` for the whole run.
    pub selector: Option<String>,
    /// When it fails.
    pub op: Op,
    /// The limit.
    pub limit: Limit,
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

const HELP: &str = "expected METRIC[(VERB or KEY)] OP VALUE, e.g. error_rate>0.1%, p99(GET)>200ms, lag_p99>1ms, max>2s, rate<900, p50(LIST)>20% (compare); METRIC is error_rate, pNN, max, lag_p50/p90/p99/p999/max or rate; OP is >, >=, < or <=";

fn quantile(digits: &str) -> Option<f64> {
    let v: f64 = digits.parse().ok()?;
    (v > 0.0 && v <= 100.0 && !digits.starts_with('.')).then_some(v / 100.0)
}

impl FromStr for Gate {
    type Err = String;

    fn from_str(text: &str) -> Result<Gate, String> {
        let t: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let bad = |why: &str| format!("invalid threshold {text:?}: {why}; {HELP}");
        let op_at = t.find(['>', '<']).ok_or_else(|| bad("no comparison"))?;
        let (lhs, rest) = t.split_at(op_at);
        let (op, value) = if let Some(v) = rest.strip_prefix(">=") {
            (Op::Ge, v)
        } else if let Some(v) = rest.strip_prefix("<=") {
            (Op::Le, v)
        } else if let Some(v) = rest.strip_prefix('>') {
            (Op::Gt, v)
        } else {
            (Op::Lt, &rest[1..])
        };
        let (name, selector) = match lhs.split_once('(') {
            Some((name, sel)) => {
                let sel = sel
                    .strip_suffix(')')
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| bad("the selector in parentheses is empty or not closed"))?;
                (name, Some(sel.to_string()))
            }
            None => (lhs, None),
        };
        let metric = match name {
            "error_rate" => Metric::ErrorRate,
            "max" => Metric::LatencyMax,
            "lag_max" => Metric::LagMax,
            "rate" => Metric::Rate,
            "lag_p50" => Metric::Lag(0.5),
            "lag_p90" => Metric::Lag(0.9),
            "lag_p99" => Metric::Lag(0.99),
            "lag_p999" | "lag_p99.9" => Metric::Lag(0.999),
            other => match other.strip_prefix('p').and_then(quantile) {
                Some(q) => Metric::Latency(q),
                None => return Err(bad(&format!("unknown metric {other:?}"))),
            },
        };
        if selector.is_some() && matches!(metric, Metric::Lag(_) | Metric::LagMax | Metric::Rate) {
            return Err(bad(
                "send lag and rate are figures of the whole run: drop the selector",
            ));
        }
        let limit = match metric {
            Metric::ErrorRate => match value.strip_suffix('%') {
                Some(p) => Limit::Fraction(
                    p.parse::<f64>()
                        .ok()
                        .filter(|v| (0.0..=100.0).contains(v))
                        .ok_or_else(|| bad("the error rate is a percentage from 0% to 100%"))?
                        / 100.0,
                ),
                None => return Err(bad("write the error rate in percent (0.1%)")),
            },
            Metric::Rate => Limit::Number(
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| bad("rate is a number of requests per second"))?,
            ),
            _ => match value.strip_suffix('%') {
                Some(p) => Limit::Change(
                    p.parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite())
                        .ok_or_else(|| bad("a change is a percentage, e.g. 20%"))?
                        / 100.0,
                ),
                None => Limit::Seconds(
                    preprocess::duration::parse_duration(value)
                        .map_err(|e| bad(&e))?
                        .as_secs_f64(),
                ),
            },
        };
        Ok(Gate {
            text: t,
            metric,
            selector,
            op,
            limit,
        })
    }
}

/// A gate's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The expression.
    pub gate: String,
    /// Whether the gate failed (crossed, or not checkable).
    pub failed: bool,
    /// The figure measured, as text (`12.345 ms`, `0.120% (3 of 2500)`), or why there is none.
    pub observed: String,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.failed { '✗' } else { '✓' };
        write!(f, "{mark} {}: {}", self.gate, self.observed)
    }
}

fn seconds_text(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.3} s")
    } else {
        format!("{:.3} ms", s * 1e3)
    }
}

/// A figure read from a report: its value, and a text for the verdict line.
struct Figure {
    value: f64,
    text: String,
}

/// Reads the figure `gate` measures from `report`; `Err` says why it is not there.
fn measure(report: &ReportFile, gate: &Gate) -> Result<Figure, String> {
    let r = &report.report;
    let k = r.kreplay.as_ref();
    let sel = gate.selector.as_deref();
    let verb = |s: &str| k.and_then(|k| k.verbs.get(s));
    let from_histogram = |q: Option<f64>| -> Result<Option<f64>, String> {
        let h = match sel {
            None => report.histogram("all.service", |h| h.all.service.as_ref()),
            Some(s) if verb(s).is_some() => report.histogram(&format!("byVerb.{s}.service"), |h| {
                h.by_verb.as_ref()?.get(s)?.service.as_ref()
            }),
            Some(s) => report.histogram(&format!("byURL.{s}.service"), |h| {
                h.by_url.as_ref()?.get(s)?.service.as_ref()
            }),
        }
        .map_err(|e| e.message)?;
        Ok(h.filter(|h| !h.is_empty()).map(|h| {
            let micros = match q {
                Some(q) => h.value_at_quantile(q),
                None => h.max(),
            };
            micros as f64 / 1e6
        }))
    };
    let seconds = |v: Option<f64>, what: &str| -> Result<Figure, String> {
        v.map(|value| Figure {
            value,
            text: seconds_text(value),
        })
        .ok_or_else(|| format!("no {what} in the report (no successful request to measure?)"))
    };
    match gate.metric {
        Metric::ErrorRate => {
            let (failed, run) = match sel {
                None => (r.total_failed, r.total_run),
                Some(s) => (verb(s).map(|v| v.errors), verb(s).map(|v| v.count)),
            };
            match (failed, run) {
                (Some(f), Some(r)) if r > 0 => Ok(Figure {
                    value: f as f64 / r as f64,
                    text: format!("{:.3}% ({f} of {r} failed)", f as f64 / r as f64 * 100.0),
                }),
                (Some(_), Some(_)) => Err("no request was run".into()),
                _ => Err(match sel {
                    Some(s) => {
                        format!("no failure count for {s} (kreplay reports hold them per verb)")
                    }
                    None => "no totalRun/totalFailed in the report".into(),
                }),
            }
        }
        Metric::Latency(q) => {
            if k.is_some() {
                return seconds(from_histogram(Some(q))?, &format!("p{} latency", q * 100.0));
            }
            // kperf's report: only its fixed percentiles, overall or per URL.
            let pairs = match sel {
                None => r.percentile_latencies.as_ref(),
                Some(s) => r
                    .percentile_latencies_by_url
                    .as_ref()
                    .and_then(|m| m.get(s)),
            };
            seconds(
                pairs.and_then(|p| crate::compare::read::pair_value(p, q)),
                &format!(
                    "p{} latency (kperf reports hold p50, p90, p95, p99)",
                    q * 100.0
                ),
            )
        }
        Metric::LatencyMax => seconds(from_histogram(None)?, "maximum latency"),
        Metric::Lag(_) | Metric::LagMax => {
            let lag = k.map(|k| &k.send_lag.all.quantiles);
            let (key, value) = match gate.metric {
                Metric::Lag(0.5) => ("p50", lag.and_then(|l| l.p50)),
                Metric::Lag(0.9) => ("p90", lag.and_then(|l| l.p90)),
                Metric::Lag(0.99) => ("p99", lag.and_then(|l| l.p99)),
                Metric::Lag(_) => ("p999", lag.and_then(|l| l.p999)),
                _ => ("max", lag.and_then(|l| l.max)),
            };
            seconds(
                value,
                &format!("sendLag.{key} (kperf does not record send lag)"),
            )
        }
        Metric::Rate => {
            let achieved = k
                .map(|k| k.rate.achieved_per_second)
                .or_else(|| {
                    let secs = report.duration.as_secs_f64();
                    (secs > 0.0).then(|| r.total as f64 / secs)
                })
                .ok_or("no rate in the report")?;
            Ok(Figure {
                value: achieved,
                text: format!("{achieved:.1}/s"),
            })
        }
    }
}

/// Checks `gate` against one report (`engine run`, or absolute gates of `compare`).
pub fn check(gate: &Gate, report: &ReportFile) -> Verdict {
    check_against(gate, &[], report)
}

/// Checks `gate` against `new`; a relative limit (`p99>10%`) compares with `bases`: their
/// largest value for `>`/`>=` gates and their smallest for `<`/`<=`, so a new run inside the
/// bases' spread passes however noisy one base was.
pub fn check_against(gate: &Gate, bases: &[&ReportFile], new: &ReportFile) -> Verdict {
    let verdict = |failed: bool, observed: String| Verdict {
        gate: gate.text.clone(),
        failed,
        observed,
    };
    let figure = match measure(new, gate) {
        Ok(f) => f,
        Err(why) => return verdict(true, format!("not checked, counts as failed: {why}")),
    };
    let limit = match gate.limit {
        Limit::Seconds(v) | Limit::Fraction(v) | Limit::Number(v) => v,
        Limit::Change(change) => {
            if bases.is_empty() {
                return verdict(
                    true,
                    "a relative limit needs a base report: use it with engine compare".into(),
                );
            }
            let mut base_values = Vec::new();
            for b in bases {
                match measure(b, gate) {
                    Ok(f) => base_values.push(f.value),
                    Err(why) => {
                        return verdict(
                            true,
                            format!(
                                "not checked, counts as failed: base {}: {why}",
                                b.path.display()
                            ),
                        )
                    }
                }
            }
            let upper = matches!(gate.op, Op::Gt | Op::Ge);
            let base = base_values.iter().copied().fold(
                if upper { f64::MIN } else { f64::MAX },
                |a, b| {
                    if upper {
                        a.max(b)
                    } else {
                        a.min(b)
                    }
                },
            );
            if base <= 0.0 {
                return verdict(true, "not checked, counts as failed: the base is 0".into());
            }
            let rel = (figure.value - base) / base;
            let spread = if base_values.len() > 1 {
                let lo = base_values.iter().copied().fold(f64::MAX, f64::min);
                let hi = base_values.iter().copied().fold(f64::MIN, f64::max);
                format!(", bases {}–{}", seconds_text(lo), seconds_text(hi))
            } else {
                String::new()
            };
            return verdict(
                gate.op.holds(rel, change),
                format!(
                    "{} vs base {} ({:+.1}%{spread})",
                    figure.text,
                    seconds_text(base),
                    rel * 100.0
                ),
            );
        }
    };
    verdict(gate.op.holds(figure.value, limit), figure.text)
}

/// The gate every `engine run` applies, with or without `--fail-on`: a run in which every
/// request failed exits 1 (k6 exits 0 then unless a threshold says otherwise; a replay whose
/// target answered nothing has measured nothing, so it must not pass a CI job silently).
pub fn nothing_succeeded() -> Gate {
    "error_rate>=100%".parse().expect("a valid built-in gate")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let g: Gate = "p99(GET) > 200ms".parse().unwrap();
        assert_eq!(g.metric, Metric::Latency(0.99));
        assert_eq!(g.selector.as_deref(), Some("GET"));
        assert_eq!(g.op, Op::Gt);
        assert_eq!(g.limit, Limit::Seconds(0.2));
        assert_eq!(g.text, "p99(GET)>200ms");
        let g: Gate = "error_rate>0.1%".parse().unwrap();
        assert_eq!(g.limit, Limit::Fraction(0.001));
        let g: Gate = "p99.9<=1m30s".parse().unwrap();
        assert!(matches!(g.metric, Metric::Latency(q) if (q - 0.999).abs() < 1e-12));
        assert_eq!(g.limit, Limit::Seconds(90.0));
        assert_eq!(g.op, Op::Le);
        let g: Gate = "p50(LIST)>20%".parse().unwrap();
        assert_eq!(g.limit, Limit::Change(0.2));
        assert_eq!(
            "lag_p99>1ms".parse::<Gate>().unwrap().metric,
            Metric::Lag(0.99)
        );
        assert_eq!(
            "rate<900".parse::<Gate>().unwrap().limit,
            Limit::Number(900.0)
        );
        assert_eq!(
            "max>=2s".parse::<Gate>().unwrap().metric,
            Metric::LatencyMax
        );
    }

    #[test]
    fn refuses_what_it_cannot_mean() {
        for bad in [
            "p99",
            "p99>200",
            "p0>1s",
            "p101>1s",
            "error_rate>0.1",
            "error_rate>200%",
            "lag_p99(GET)>1ms",
            "latency>1s",
            "p99()>1s",
            "p99(GET>1s",
            "rate<fast",
        ] {
            let err = bad.parse::<Gate>().unwrap_err();
            assert!(err.contains(bad) && err.contains("e.g."), "{err}");
        }
    }

    #[test]
    fn ops() {
        assert!(Op::Gt.holds(2.0, 1.0) && !Op::Gt.holds(1.0, 1.0));
        assert!(Op::Ge.holds(1.0, 1.0) && Op::Le.holds(1.0, 1.0));
        assert!(Op::Lt.holds(0.5, 1.0) && !Op::Lt.holds(1.0, 1.0));
    }
}

//! Request-rate shapes over time, and the request instants they produce.
//!
//! Instants are deterministic: request `i` (0-based) is due at the time `t` where the
//! cumulative rate `Λ(t)` reaches `i`, so every second holds the number of requests the
//! rate says (±1) and the output needs no sorting.

use std::fmt;
use std::str::FromStr;

use super::GenError;

/// How the request rate evolves during the profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateShape {
    /// A constant rate, set by `--rate` or by `-n` over `--duration`.
    Constant,
    /// The rate goes linearly from `from` to `to` requests/s; the ramp lasts as long as
    /// `-n` requests take (`2n / (from + to)` seconds).
    Ramp {
        /// Rate at the start, requests/s.
        from: f64,
        /// Rate at the end, requests/s.
        to: f64,
    },
    /// `base` requests/s, except `peak` requests/s from `at_s` for `len_s` seconds; the
    /// profile ends when `-n` requests are placed.
    Spike {
        /// Rate outside the spike, requests/s.
        base: f64,
        /// Rate during the spike, requests/s.
        peak: f64,
        /// Spike start, seconds.
        at_s: f64,
        /// Spike length, seconds.
        len_s: f64,
    },
    /// Every request at timestamp 0 (a burst).
    AllAtZero,
}

impl fmt::Display for RateShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateShape::Constant => f.write_str("constant"),
            RateShape::Ramp { from, to } => write!(f, "ramp:{from}:{to}"),
            RateShape::Spike {
                base,
                peak,
                at_s,
                len_s,
            } => write!(f, "spike:{base}:{peak}:{at_s}:{len_s}"),
            RateShape::AllAtZero => f.write_str("all-at-zero"),
        }
    }
}

impl FromStr for RateShape {
    type Err = GenError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| GenError::invalid("--shape", reason);
        let parts: Vec<&str> = s.split(':').collect();
        let nums = |expected: usize, form: &str| -> Result<Vec<f64>, GenError> {
            if parts.len() != expected + 1 {
                return Err(bad(format!("`{s}`: expected {form}")));
            }
            parts[1..]
                .iter()
                .map(|p| match p.trim().parse::<f64>() {
                    Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
                    _ => Err(bad(format!(
                        "`{s}`: `{p}` is not a non-negative number (expected {form})"
                    ))),
                })
                .collect()
        };
        match parts[0] {
            "constant" if parts.len() == 1 => Ok(RateShape::Constant),
            "all-at-zero" if parts.len() == 1 => Ok(RateShape::AllAtZero),
            "ramp" => {
                let v = nums(2, "ramp:FROM:TO (requests/s)")?;
                if v[0] + v[1] <= 0.0 {
                    return Err(bad(format!("`{s}`: FROM and TO cannot both be 0")));
                }
                Ok(RateShape::Ramp {
                    from: v[0],
                    to: v[1],
                })
            }
            "spike" => {
                let form = "spike:BASE:PEAK:AT:LEN (requests/s, requests/s, seconds, seconds)";
                let v = nums(4, form)?;
                if v[1] <= 0.0 || v[3] <= 0.0 {
                    return Err(bad(format!("`{s}`: PEAK and LEN must be > 0")));
                }
                Ok(RateShape::Spike {
                    base: v[0],
                    peak: v[1],
                    at_s: v[2],
                    len_s: v[3],
                })
            }
            _ => Err(bad(format!(
                "`{s}`: expected constant, ramp:FROM:TO, spike:BASE:PEAK:AT:LEN or all-at-zero"
            ))),
        }
    }
}

/// Maps request indices to millisecond timestamps for one shape and request count.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Schedule {
    Constant {
        rate: f64,
    },
    Ramp {
        from: f64,
        k: f64,
    },
    Spike {
        base: f64,
        peak: f64,
        at_s: f64,
        len_s: f64,
    },
    AllAtZero,
}

impl Schedule {
    /// Checks the shape against the request count and the rate/duration options.
    pub(crate) fn new(
        shape: RateShape,
        requests: u64,
        rate: Option<f64>,
        duration_s: Option<f64>,
    ) -> Result<Schedule, GenError> {
        if !matches!(shape, RateShape::Constant) && (rate.is_some() || duration_s.is_some()) {
            return Err(GenError::invalid(
                "--rate/--duration",
                format!("only apply to the constant shape; `{shape}` sets its own rates"),
            ));
        }
        match shape {
            RateShape::Constant => {
                let rate = match (rate, duration_s) {
                    (Some(_), Some(_)) => {
                        return Err(GenError::invalid(
                            "--rate/--duration",
                            "give one of them, not both".to_owned(),
                        ))
                    }
                    (Some(r), None) => r,
                    (None, Some(d)) => {
                        if !(d.is_finite() && d > 0.0) {
                            return Err(GenError::invalid(
                                "--duration",
                                format!("must be > 0 seconds, got {d}"),
                            ));
                        }
                        requests as f64 / d
                    }
                    (None, None) => DEFAULT_RATE,
                };
                if !(rate.is_finite() && rate > 0.0) {
                    return Err(GenError::invalid(
                        "--rate",
                        format!("must be > 0 requests/s, got {rate}"),
                    ));
                }
                Ok(Schedule::Constant { rate })
            }
            RateShape::Ramp { from, to } => {
                let duration = 2.0 * requests as f64 / (from + to);
                let k = if duration > 0.0 {
                    (to - from) / (2.0 * duration)
                } else {
                    0.0
                };
                Ok(Schedule::Ramp { from, k })
            }
            RateShape::Spike {
                base,
                peak,
                at_s,
                len_s,
            } => {
                if base <= 0.0 {
                    let before_and_during = peak * len_s;
                    if at_s > 0.0 || (requests as f64) > before_and_during {
                        return Err(GenError::invalid(
                            "--shape",
                            format!(
                                "spike with BASE 0 places requests only inside the spike (at 0 s, at most PEAK*LEN = {before_and_during} requests); AT is {at_s} s and -n is {requests}"
                            ),
                        ));
                    }
                }
                Ok(Schedule::Spike {
                    base,
                    peak,
                    at_s,
                    len_s,
                })
            }
            RateShape::AllAtZero => Ok(Schedule::AllAtZero),
        }
    }

    /// Seconds at which request `i` is due.
    fn instant_s(&self, i: u64) -> f64 {
        let x = i as f64;
        match *self {
            Schedule::Constant { rate } => x / rate,
            Schedule::Ramp { from, k } => {
                // Λ(t) = from·t + k·t²; solve Λ(t) = x for t ≥ 0.
                if k.abs() < 1e-12 {
                    x / from
                } else {
                    let disc = (from * from + 4.0 * k * x).max(0.0);
                    // Numerically stable root of k·t² + from·t − x = 0.
                    let t = 2.0 * x / (from + disc.sqrt());
                    if t.is_finite() {
                        t
                    } else {
                        (x / k).sqrt()
                    }
                }
            }
            Schedule::Spike {
                base,
                peak,
                at_s,
                len_s,
            } => {
                let before = base * at_s;
                let during = peak * len_s;
                if x < before {
                    x / base
                } else if x < before + during {
                    at_s + (x - before) / peak
                } else {
                    at_s + len_s + (x - before - during) / base
                }
            }
            Schedule::AllAtZero => 0.0,
        }
    }

    /// Millisecond timestamp of request `i`, never below `floor_ms` (kept sorted even
    /// where float rounding wobbles at a shape's corners).
    pub(crate) fn timestamp_ms(&self, i: u64, floor_ms: i64) -> i64 {
        let ms = (self.instant_s(i) * 1000.0).floor();
        let ms = if ms.is_finite() && ms >= 0.0 {
            ms.min(i64::MAX as f64) as i64
        } else {
            0
        };
        ms.max(floor_ms)
    }
}

/// Requests per second when neither `--rate` nor `--duration` is given.
pub const DEFAULT_RATE: f64 = 100.0;

//! Regression thresholds: from flags and/or a YAML file checked into a user's repository.
//!
//! ```yaml
//! max_p99_regression: 10%     # (new − base) / base of p99 latency, overall and per verb
//! max_lag_p99: 200us          # p99 send lag of the new run (kreplay reports only)
//! max_error_rate: 0.1%        # failed / run of the new run, overall and per verb
//! verbs:                      # optional per-verb overrides
//!   LIST: { max_p99_regression: 25% }
//! fail_on:                     # gate expressions, as `--fail-on` (engine::gate)
//!   - p95(LIST)>20%
//!   - max>2s
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use preprocess::duration::parse_duration;

/// The default `max_p99_regression` when neither a flag nor the file sets one.
pub const DEFAULT_MAX_P99_REGRESSION: f64 = 0.10;

/// A thresholds file or value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct ThresholdError {
    /// The file (or flag) the value came from.
    pub origin: String,
    /// What is wrong and what would be valid.
    pub message: String,
}

/// Limits for one group (overall, or one verb).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    /// Largest allowed (new − base) / base of p99 latency, as a fraction.
    pub max_p99_regression: Option<f64>,
    /// Largest allowed p99 send lag of the new run.
    pub max_lag_p99: Option<Duration>,
    /// Largest allowed failed / run of the new run, as a fraction.
    pub max_error_rate: Option<f64>,
}

impl Limits {
    /// `self`, with `over`'s values where it has them.
    fn overridden_by(self, over: &Limits) -> Limits {
        Limits {
            max_p99_regression: over.max_p99_regression.or(self.max_p99_regression),
            max_lag_p99: over.max_lag_p99.or(self.max_lag_p99),
            max_error_rate: over.max_error_rate.or(self.max_error_rate),
        }
    }
}

/// Every threshold of a comparison.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Thresholds {
    /// Limits for the whole run and every verb without an override.
    pub global: Limits,
    /// Per-verb overrides (verb or kperf method label, upper case).
    pub verbs: BTreeMap<String, Limits>,
    /// `fail_on:` expressions of the file (added to `--fail-on`).
    pub fail_on: Vec<crate::gate::Gate>,
}

impl Thresholds {
    /// The limits that apply to `verb`: its own override, else the override of its kperf
    /// method label (`POST` covers `CREATE`, `PATCH` covers `APPLY`), else the global ones.
    pub fn for_verb(&self, verb: &str) -> Limits {
        let over = self
            .verbs
            .get(verb)
            .or_else(|| self.verbs.get(super::figures::method_label(verb)));
        match over {
            Some(o) => self.global.overridden_by(o),
            None => self.global,
        }
    }

    /// Reads a thresholds file.
    pub fn from_file(path: &Path) -> Result<Thresholds, ThresholdError> {
        let origin = path.display().to_string();
        let err = |message: String| ThresholdError {
            origin: origin.clone(),
            message,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(format!("cannot read the thresholds file: {e}")))?;
        let file: FileThresholds = serde_saphyr::from_str(&text).map_err(|e| {
            err(format!(
                "{e} (valid keys: max_p99_regression, max_lag_p99, max_error_rate, verbs, fail_on)"
            ))
        })?;
        let global = FileLimits {
            max_p99_regression: file.max_p99_regression,
            max_lag_p99: file.max_lag_p99,
            max_error_rate: file.max_error_rate,
        }
        .parse("")
        .map_err(err)?;
        let mut verbs = BTreeMap::new();
        for (verb, v) in &file.verbs {
            let name = verb.to_ascii_uppercase();
            if !KNOWN_VERBS.contains(&name.as_str()) {
                return Err(err(format!(
                    "verbs.{verb}: unknown verb (valid: {})",
                    KNOWN_VERBS.join(", ")
                )));
            }
            let limits = v.parse(&format!("verbs.{verb}.")).map_err(err)?;
            if limits.max_lag_p99.is_some() {
                return Err(err(format!(
                    "verbs.{verb}.max_lag_p99: send lag is checked for the whole run only; move it to the top level"
                )));
            }
            verbs.insert(name, limits);
        }
        let fail_on = file
            .fail_on
            .iter()
            .enumerate()
            .map(|(i, text)| text.parse().map_err(|e| err(format!("fail_on[{i}]: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Thresholds {
            global,
            verbs,
            fail_on,
        })
    }

    /// Applies command-line flags: a flag replaces the file's value of that threshold,
    /// per-verb overrides included. When neither sets a global p99 regression limit,
    /// [`DEFAULT_MAX_P99_REGRESSION`] applies.
    pub fn with_flags(mut self, flags: &Limits) -> Thresholds {
        if flags.max_p99_regression.is_some() {
            self.verbs
                .values_mut()
                .for_each(|v| v.max_p99_regression = None);
        }
        if flags.max_lag_p99.is_some() {
            self.verbs.values_mut().for_each(|v| v.max_lag_p99 = None);
        }
        if flags.max_error_rate.is_some() {
            self.verbs
                .values_mut()
                .for_each(|v| v.max_error_rate = None);
        }
        self.global = self.global.overridden_by(flags);
        if self.global.max_p99_regression.is_none() {
            self.global.max_p99_regression = Some(DEFAULT_MAX_P99_REGRESSION);
        }
        self
    }
}

/// A fraction as a percentage without float noise: 0.007 → `0.7`.
fn percent_text(v: f64) -> String {
    let t = format!("{:.6}", v * 100.0);
    t.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl std::fmt::Display for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(v) = self.max_p99_regression {
            parts.push(format!("p99 regression <= +{}%", percent_text(v)));
        }
        if let Some(v) = self.max_lag_p99 {
            parts.push(format!("send lag p99 <= {v:?}"));
        }
        if let Some(v) = self.max_error_rate {
            parts.push(format!("error rate <= {}%", percent_text(v)));
        }
        if parts.is_empty() {
            parts.push("none".to_string());
        }
        f.write_str(&parts.join(", "))
    }
}

impl std::fmt::Display for Thresholds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.global)?;
        for (verb, limits) in self.verbs.iter().filter(|(_, l)| **l != Limits::default()) {
            write!(f, "; {verb}: {limits}")?;
        }
        Ok(())
    }
}

/// Verbs and kperf method labels a per-verb override may name.
pub const KNOWN_VERBS: [&str; 9] = [
    "GET",
    "LIST",
    "WATCH",
    "CREATE",
    "POST",
    "DELETE",
    "DELETECOLLECTION",
    "PATCH",
    "APPLY",
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    max_p99_regression: Option<String>,
    max_lag_p99: Option<String>,
    max_error_rate: Option<String>,
}

impl FileLimits {
    fn parse(&self, prefix: &str) -> Result<Limits, String> {
        let pct = |v: &Option<String>, name: &str| {
            v.as_deref()
                .map(|s| parse_percent(s).map_err(|m| format!("{prefix}{name}: {m}")))
                .transpose()
        };
        Ok(Limits {
            max_p99_regression: pct(&self.max_p99_regression, "max_p99_regression")?,
            max_error_rate: pct(&self.max_error_rate, "max_error_rate")?,
            max_lag_p99: self
                .max_lag_p99
                .as_deref()
                .map(|s| parse_duration(s).map_err(|m| format!("{prefix}max_lag_p99: {m}")))
                .transpose()?,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileThresholds {
    max_p99_regression: Option<String>,
    max_lag_p99: Option<String>,
    max_error_rate: Option<String>,
    #[serde(default)]
    verbs: BTreeMap<String, FileLimits>,
    #[serde(default)]
    fail_on: Vec<String>,
}

/// Parses a percentage such as `10%`, `0.1%` or `150%` into a fraction.
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let num = t
        .strip_suffix('%')
        .ok_or_else(|| format!("{s:?} is not a percentage: write it with %, e.g. 10% or 0.1%"))?;
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a percentage: write it with %, e.g. 10% or 0.1%"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("{s:?}: a percentage must be finite and >= 0%"));
    }
    Ok(v / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_read_strictly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gate.yaml");
        let write = |text: &str| std::fs::write(&path, text).unwrap();
        write("max_lag_p99: 200us\nmax_error_rate: 0.1%\nverbs:\n  post: { max_p99_regression: 50% }\n");
        let t = Thresholds::from_file(&path).unwrap();
        assert_eq!(t.global.max_lag_p99, Some(Duration::from_micros(200)));
        assert_eq!(t.global.max_error_rate, Some(0.001));
        // A method label's override covers the kreplay verbs behind it.
        assert_eq!(t.for_verb("CREATE").max_p99_regression, Some(0.5));
        assert_eq!(t.for_verb("GET").max_p99_regression, None);
        write("verbs:\n  FETCH: { max_error_rate: 1% }\n");
        let e = Thresholds::from_file(&path).unwrap_err().to_string();
        assert!(e.contains("verbs.FETCH: unknown verb"), "{e}");
        write("verbs:\n  GET: { max_lag_p99: 1ms }\n");
        let e = Thresholds::from_file(&path).unwrap_err().to_string();
        assert!(e.contains("whole run only"), "{e}");
        write("max_lag_p99: soon\n");
        let e = Thresholds::from_file(&path).unwrap_err().to_string();
        assert!(
            e.contains("gate.yaml: max_lag_p99: invalid duration"),
            "{e}"
        );
    }

    #[test]
    fn percentages() {
        assert_eq!(parse_percent("10%"), Ok(0.1));
        assert_eq!(parse_percent(" 0.1 %"), Ok(0.001));
        assert!(parse_percent("0.1").unwrap_err().contains("with %"));
        assert!(parse_percent("-5%").is_err());
        assert_eq!(percent_text(parse_percent("0.7%").unwrap()), "0.7");
        assert_eq!(percent_text(0.1), "10");
    }

    #[test]
    fn flags_beat_the_file_and_the_default_applies_without_a_p99_limit() {
        let mut t = Thresholds::default();
        t.global.max_error_rate = Some(0.01);
        t.verbs.insert(
            "LIST".into(),
            Limits {
                max_p99_regression: Some(0.5),
                ..Limits::default()
            },
        );
        let kept = t.clone().with_flags(&Limits::default());
        assert_eq!(kept.for_verb("LIST").max_p99_regression, Some(0.5));
        assert_eq!(
            kept.for_verb("GET").max_p99_regression,
            Some(DEFAULT_MAX_P99_REGRESSION)
        );
        let flagged = t.with_flags(&Limits {
            max_p99_regression: Some(0.2),
            ..Limits::default()
        });
        assert_eq!(flagged.for_verb("LIST").max_p99_regression, Some(0.2));
        assert_eq!(flagged.for_verb("LIST").max_error_rate, Some(0.01));
        assert_eq!(flagged.for_verb("APPLY").max_error_rate, Some(0.01));
        assert_eq!(
            flagged.to_string(),
            "p99 regression <= +20%, error rate <= 1%"
        );
        let default = Thresholds::default().with_flags(&Limits::default());
        assert_eq!(
            default.global.max_p99_regression,
            Some(DEFAULT_MAX_P99_REGRESSION)
        );
    }
}

//! Fault injection: added latency, 429s, an APF-like in-flight limit, 500s, stalls, connection closes and
//! HTTP/2 GOAWAYs. Decisions draw from one seeded generator, so a run with the same seed and the same
//! request arrival order makes the same decisions.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Added latency for one verb: `min_ms..=max_ms`, uniform (fixed when equal).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyRange {
    /// Lower bound, milliseconds.
    pub min_ms: u64,
    /// Upper bound, milliseconds (≥ min_ms).
    pub max_ms: u64,
}

/// The fault settings; the JSON form is what `GET/POST /apisim/faults` read and write. Absent fields
/// mean "off".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Added latency by verb (`GET LIST WATCH CREATE UPDATE PATCH APPLY DELETE DELETECOLLECTION`, or `*`
    /// for every verb without its own entry).
    pub latency: BTreeMap<String, LatencyRange>,
    /// Fraction of API requests answered 429 TooManyRequests.
    pub throttle_fraction: f64,
    /// Answer the first N API requests (watches excluded) 429 TooManyRequests, then stop
    /// throttling (a storm that passes).
    pub throttle_first: Option<u64>,
    /// `Retry-After` seconds on 429s (default 1).
    pub retry_after_seconds: Option<u32>,
    /// Requests (watches excluded) allowed in flight at once; more are answered 429.
    pub max_in_flight: Option<u64>,
    /// Fraction of API requests answered 500 InternalError.
    pub error_fraction: f64,
    /// Fraction of API requests that are accepted and never answered (until shutdown).
    pub stall_fraction: f64,
    /// Close each connection after it has served this many requests.
    pub close_after_requests: Option<u64>,
    /// Send GOAWAY on each HTTP/2 connection after this many streams.
    pub goaway_after_streams: Option<u64>,
    /// Read nothing from a new connection for this many milliseconds after its TLS handshake
    /// (a server too busy to take its clients' bytes: their requests wait in the client).
    pub read_delay_ms: Option<u64>,
}

impl FaultConfig {
    /// Checks ranges; the error names the field and the valid range.
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("throttle_fraction", self.throttle_fraction),
            ("error_fraction", self.error_fraction),
            ("stall_fraction", self.stall_fraction),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(format!("{name} must be within 0..=1, got {value}"));
            }
        }
        for (verb, range) in &self.latency {
            if range.min_ms > range.max_ms {
                return Err(format!(
                    "latency[{verb}]: min_ms {} is greater than max_ms {}",
                    range.min_ms, range.max_ms
                ));
            }
            if !VERBS.contains(&verb.as_str()) && verb != "*" {
                return Err(format!(
                    "latency: unknown verb {verb:?}; valid: {} or *",
                    VERBS.join(" ")
                ));
            }
        }
        for (name, value) in [
            ("max_in_flight", self.max_in_flight),
            ("throttle_first", self.throttle_first),
            ("close_after_requests", self.close_after_requests),
            ("goaway_after_streams", self.goaway_after_streams),
            ("read_delay_ms", self.read_delay_ms),
        ] {
            if value == Some(0) {
                return Err(format!(
                    "{name} must be at least 1 (omit it to turn it off)"
                ));
            }
        }
        Ok(())
    }

    fn is_active(&self) -> bool {
        *self != FaultConfig::default()
    }
}

/// The verbs apisim names in metrics, the order log and fault settings.
pub const VERBS: &[&str] = &[
    "GET",
    "LIST",
    "WATCH",
    "CREATE",
    "UPDATE",
    "PATCH",
    "APPLY",
    "DELETE",
    "DELETECOLLECTION",
];

/// What to do with one request before handling it.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultDecision {
    /// Handle it normally after `delay`.
    Proceed {
        /// Added latency.
        delay: Duration,
    },
    /// Answer 429 with this Retry-After.
    Throttle(u32),
    /// Answer 500.
    Fail,
    /// Never answer.
    Stall,
}

/// Live fault settings and the seeded generator.
pub struct Faults {
    active: AtomicBool,
    state: Mutex<(FaultConfig, ChaCha8Rng)>,
    /// API requests (watches excluded) decided so far, for `throttle_first`.
    decided: std::sync::atomic::AtomicU64,
}

impl Faults {
    /// Faults with `config`, drawing from a generator seeded with `seed`.
    pub fn new(config: FaultConfig, seed: u64) -> Self {
        Faults {
            active: AtomicBool::new(config.is_active()),
            state: Mutex::new((config, ChaCha8Rng::seed_from_u64(seed))),
            decided: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (FaultConfig, ChaCha8Rng)> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The current settings.
    pub fn config(&self) -> FaultConfig {
        self.lock().0.clone()
    }

    /// Replaces the settings (already validated); the generator keeps its position.
    pub fn set(&self, config: FaultConfig) {
        let mut state = self.lock();
        self.active.store(config.is_active(), Ordering::Relaxed);
        state.0 = config;
    }

    /// Decides the fate of one API request. `in_flight` counts requests being handled, this one included.
    pub fn decide(&self, verb: &str, in_flight: u64) -> FaultDecision {
        if !self.active.load(Ordering::Relaxed) {
            return FaultDecision::Proceed {
                delay: Duration::ZERO,
            };
        }
        let mut state = self.lock();
        let (config, rng) = &mut *state;
        let retry_after = config.retry_after_seconds.unwrap_or(1);
        if config.stall_fraction > 0.0 && rng.gen_bool(config.stall_fraction) {
            return FaultDecision::Stall;
        }
        if verb != "WATCH" && config.max_in_flight.is_some_and(|limit| in_flight > limit) {
            return FaultDecision::Throttle(retry_after);
        }
        if verb != "WATCH" {
            let seen = self.decided.fetch_add(1, Ordering::Relaxed);
            if config.throttle_first.is_some_and(|n| seen < n) {
                return FaultDecision::Throttle(retry_after);
            }
        }
        if config.throttle_fraction > 0.0 && rng.gen_bool(config.throttle_fraction) {
            return FaultDecision::Throttle(retry_after);
        }
        if config.error_fraction > 0.0 && rng.gen_bool(config.error_fraction) {
            return FaultDecision::Fail;
        }
        let range = config.latency.get(verb).or_else(|| config.latency.get("*"));
        let delay_ms = match range {
            Some(range) if range.max_ms > range.min_ms => {
                rng.gen_range(range.min_ms..=range.max_ms)
            }
            Some(range) => range.min_ms,
            None => 0,
        };
        FaultDecision::Proceed {
            delay: Duration::from_millis(delay_ms),
        }
    }

    /// How long a new connection is left unread, if at all.
    pub fn read_delay(&self) -> Option<Duration> {
        if !self.active.load(Ordering::Relaxed) {
            return None;
        }
        self.lock().0.read_delay_ms.map(Duration::from_millis)
    }

    /// `(close_after_requests, goaway_after_streams)`.
    pub fn connection_limits(&self) -> (Option<u64>, Option<u64>) {
        if !self.active.load(Ordering::Relaxed) {
            return (None, None);
        }
        let state = self.lock();
        (state.0.close_after_requests, state.0.goaway_after_streams)
    }
}

/// Parses a CLI latency spec `VERB=DURATION` or `VERB=MIN..MAX`, durations in Go's form
/// (`300ms`, `1.5s`, `0`) read by the parser every flag uses; whole milliseconds.
pub fn parse_latency_flag(spec: &str) -> Result<(String, LatencyRange), String> {
    let (verb, range) = spec.split_once('=').ok_or_else(|| {
        format!("--latency {spec:?}: expected VERB=DURATION or VERB=MIN..MAX (e.g. GET=300ms, *=0..3ms)")
    })?;
    let number = |text: &str| {
        let d = preprocess::duration::parse_duration(text.trim())
            .map_err(|e| format!("--latency {spec:?}: {e}"))?;
        if d.subsec_nanos() % 1_000_000 != 0 {
            return Err(format!(
                "--latency {spec:?}: {text:?} is not a whole number of milliseconds"
            ));
        }
        u64::try_from(d.as_millis())
            .map_err(|_| format!("--latency {spec:?}: {text:?} is too long"))
    };
    let (min_ms, max_ms) = match range.split_once("..") {
        Some((min, max)) => (number(min)?, number(max)?),
        None => {
            let fixed = number(range)?;
            (fixed, fixed)
        }
    };
    Ok((verb.to_ascii_uppercase(), LatencyRange { min_ms, max_ms }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_requests_are_throttled_then_none() {
        let faults = Faults::new(
            FaultConfig {
                throttle_first: Some(2),
                retry_after_seconds: Some(3),
                ..FaultConfig::default()
            },
            1,
        );
        assert_eq!(faults.decide("GET", 1), FaultDecision::Throttle(3));
        assert!(matches!(
            faults.decide("WATCH", 1),
            FaultDecision::Proceed { .. }
        ));
        assert_eq!(faults.decide("LIST", 1), FaultDecision::Throttle(3));
        assert!(matches!(
            faults.decide("GET", 1),
            FaultDecision::Proceed { .. }
        ));
    }

    #[test]
    fn inactive_faults_always_proceed() {
        let faults = Faults::new(FaultConfig::default(), 1);
        assert_eq!(
            faults.decide("GET", 1000),
            FaultDecision::Proceed {
                delay: Duration::ZERO
            }
        );
    }

    #[test]
    fn same_seed_same_decisions() {
        let config = FaultConfig {
            throttle_fraction: 0.3,
            error_fraction: 0.3,
            ..FaultConfig::default()
        };
        let run = |seed| {
            let faults = Faults::new(config.clone(), seed);
            (0..200)
                .map(|_| faults.decide("GET", 1))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let decisions = run(7);
        assert!(decisions.contains(&FaultDecision::Fail));
        assert!(decisions
            .iter()
            .any(|d| matches!(d, FaultDecision::Throttle(1))));
    }

    #[test]
    fn in_flight_limit_spares_watches() {
        let config = FaultConfig {
            max_in_flight: Some(2),
            retry_after_seconds: Some(5),
            ..FaultConfig::default()
        };
        let faults = Faults::new(config, 1);
        assert!(matches!(
            faults.decide("GET", 2),
            FaultDecision::Proceed { .. }
        ));
        assert_eq!(faults.decide("GET", 3), FaultDecision::Throttle(5));
        assert!(matches!(
            faults.decide("WATCH", 3),
            FaultDecision::Proceed { .. }
        ));
    }

    #[test]
    fn latency_flags_and_validation() {
        let (verb, range) = parse_latency_flag("get=5ms..10ms").unwrap();
        assert_eq!((verb.as_str(), range.min_ms, range.max_ms), ("GET", 5, 10));
        assert_eq!(parse_latency_flag("LIST=3ms").unwrap().1.max_ms, 3);
        assert_eq!(parse_latency_flag("*=0..1.5s").unwrap().1.max_ms, 1500);
        assert!(parse_latency_flag("LIST").is_err());
        assert!(parse_latency_flag("LIST=3")
            .unwrap_err()
            .contains("missing unit"));
        assert!(parse_latency_flag("LIST=2000us").is_ok());
        assert!(parse_latency_flag("LIST=1500us").is_err());
        let mut config = FaultConfig::default();
        config.latency.insert(
            "GET".into(),
            LatencyRange {
                min_ms: 9,
                max_ms: 1,
            },
        );
        assert!(config.validate().unwrap_err().contains("latency[GET]"));
        let config = FaultConfig {
            error_fraction: 1.5,
            ..FaultConfig::default()
        };
        assert!(config.validate().unwrap_err().contains("error_fraction"));
    }
}

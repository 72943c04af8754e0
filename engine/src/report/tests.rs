//! The whole report, byte for byte, on deterministic measurements: a digest of the text
//! pins the output, so that work on the report's speed cannot change a byte of it.

use std::time::{Duration, UNIX_EPOCH};

use preprocess::profile::{BodyKind, ContentType, Spec, Verb};

use super::{render_report, ReportConfig, ReportContext};
use crate::metrics::{CoreMetrics, ErrorRecord, SecondCounts, SMALL_LABEL_LIMIT};
use crate::run::RunOutcome;
use crate::source::{MemoryRequest, MemorySource};

const LABELS: u32 = 1_000;

/// xorshift64: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A latency in µs as replays see them: mostly sub-ms to a few ms, a tail to seconds.
    fn latency_us(&mut self) -> u64 {
        match self.below(20) {
            0 => self.below(5_000_000),
            1..=4 => self.below(60_000),
            5 => self.below(20),
            _ => 150 + self.below(3_000),
        }
    }
}

const VERBS: [Verb; 6] = [
    Verb::Get,
    Verb::List,
    Verb::Create,
    Verb::Patch,
    Verb::Delete,
    Verb::Watch,
];

/// The label of id `i`; some carry characters JSON escapes (`&`, `<`).
fn label(i: u32) -> (Verb, String) {
    let verb = VERBS[(i % 6) as usize];
    let ns = i % 37;
    let label = match verb {
        Verb::Get => format!("GET /api/v1/namespaces/ns-{ns}/pods/pod-{i}"),
        Verb::List if i % 4 == 1 => {
            format!("LIST /apis/apps/v1/deployments?labelSelector=app%3Dx{i}&limit=500")
        }
        Verb::List => format!("LIST /api/v1/namespaces/ns-{ns}/configmaps"),
        Verb::Create => format!("POST /api/v1/namespaces/ns-{ns}/secrets"),
        Verb::Patch => format!("PATCH /apis/apps/v1/namespaces/ns-{ns}/deployments/d<{i}>"),
        Verb::Delete => format!("DELETE /api/v1/namespaces/ns-{ns}/pods/pod-{i}"),
        _ => format!("WATCH /api/v1/namespaces/ns-{ns}/events"),
    };
    // Labels must be distinct (MemorySource numbers them by first appearance).
    (verb, format!("{label}#{i}"))
}

/// Samples of label `i`: from 1 to a few thousand, some past `SMALL_LABEL_LIMIT` (kept as
/// histograms), some none.
fn sample_count(i: u32, rng: &mut Rng) -> u64 {
    match i % 50 {
        0 => 0,
        1..=9 => 1 + rng.below(3),
        10 => 1_000 + rng.below(3_000),
        11 if i % 200 == 11 => SMALL_LABEL_LIMIT as u64 + 1 + rng.below(2_000),
        12 => SMALL_LABEL_LIMIT as u64 - 1 + rng.below(3),
        _ => 1 + rng.below(400),
    }
}

fn source() -> MemorySource {
    let requests: Vec<MemoryRequest> = (0..LABELS)
        .map(|i| {
            let (verb, label) = label(i);
            MemoryRequest {
                due_us: u64::from(i) * 1_000,
                key_hash: u64::from(i),
                verb,
                body_kind: BodyKind::None,
                target: "/api".to_string(),
                body: Vec::new(),
                label,
                invalid_target: false,
            }
        })
        .collect();
    let spec = Spec {
        runner_count: 1,
        conns_per_runner: 64,
        clients_per_runner: 0,
        content_type: ContentType::Json,
        disable_http2: true,
    };
    MemorySource::new(spec, 1, &requests)
}

fn outcome(raw: bool) -> RunOutcome {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut m = CoreMetrics::new(LABELS, raw);
    let start = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
    let mut scheduled_per_second = SecondCounts::default();
    let mut n = 0u64;
    for i in 0..LABELS {
        let verb = VERBS[(i % 6) as usize];
        for _ in 0..sample_count(i, &mut rng) {
            let since = Duration::from_millis(n * 60_000 / 400_000);
            scheduled_per_second.add(since);
            let lag = match rng.below(10) {
                0 => rng.below(50_000_000),
                _ => rng.below(900_000),
            };
            m.record_send(Duration::from_nanos(lag), since);
            let service_us = rng.latency_us();
            let service = Duration::from_nanos(service_us * 1_000 + rng.below(1_000));
            let scheduled = service + Duration::from_micros(lag / 1_000 + rng.below(200));
            m.record_success(verb, i, service, scheduled);
            n += 1;
        }
        // Extremes: zero, and a latency past u32::MAX µs (clamped in a small label).
        if i % 100 == 3 {
            m.record_success(verb, i, Duration::ZERO, Duration::ZERO);
            m.record_success(
                verb,
                i,
                Duration::from_secs(5_000),
                Duration::from_secs(5_001),
            );
        }
        if verb == Verb::Watch {
            if let Some(l) = m.label_mut(i) {
                l.watch_events += u64::from(i) * 3;
                l.watch_bytes += u64::from(i) * 1_234;
            }
            if i % 12 == 5 {
                m.record_watch_ended(verb);
            }
        }
        if i % 7 == 2 {
            let (kind, code, message) = match i % 3 {
                0 => ("http", 500 + (i % 4) as i32, String::new()),
                1 => (
                    "connection",
                    0,
                    "dial tcp: <refused> & \"reset\"\n".to_string(),
                ),
                _ => (
                    "unknown",
                    0,
                    format!("context deadline exceeded #{}", i % 5),
                ),
            };
            m.record_failure(
                verb,
                ErrorRecord {
                    method: verb.metric_label(),
                    url: format!("https://127.0.0.1:6443/api?i={i}&x=<y>"),
                    timestamp: start + Duration::from_millis(u64::from(i) * 61),
                    duration: rng.below(3_000_000) as f64 / 1e6,
                    kind,
                    code,
                    message,
                    runner: 0,
                    watch: verb == Verb::Watch,
                },
            );
        }
        if i % 13 == 4 {
            m.record_unbuildable(verb);
        }
    }
    m.finish();
    let (m_lag, m_wake) = (m.lag.clone(), m.wake_error.clone());
    RunOutcome {
        cpus: vec![0],
        watch_cpus: None,
        metrics: m,
        start_wall: start,
        duration: Duration::from_nanos(61_234_567_891),
        interrupted: false,
        check_failure: None,
        cores: 1,
        conns: 64,
        max_conns: 64,
        max_in_flight: 64,
        scheduled: n + 77,
        scheduled_span_us: 60_000_000,
        scheduled_per_second,
        unsent_on_stop: 0,
        conns_opened: 66,
        conns_opened_per_core: vec![66],
        max_streams: 0,
        peak_conns: 64,
        per_core: vec![crate::report::timing::CoreTiming::new(
            Some(0),
            &crate::runtime::CoreLoad {
                wall: Duration::from_secs(61),
                cpu: Duration::from_secs(20),
                spun: Duration::from_secs(1),
            },
            &m_lag,
            &m_wake,
        )],
    }
}

/// The report of the deterministic run, with or without `--raw-data` (and kperf's runner form).
pub(crate) fn render(raw: bool) -> String {
    let source = source();
    let outcome = outcome(raw);
    let ctx = ReportContext {
        outcome: &outcome,
        source: &source,
        base_url: Some("https://127.0.0.1:6443"),
        raw_data: raw,
        runner_form: raw,
        speed: 1.0,
        config: ReportConfig {
            timing: "precise",
            timeout: Duration::from_secs(60),
            runner_index: raw.then_some(0),
            server: "https://127.0.0.1:6443".to_string(),
            user_agent: "kreplay-test".to_string(),
        },
    };
    render_report(&ctx).expect("renders")
}

/// FNV-1a 64 of the report, with the crate version masked (it changes on every release,
/// the report's layout does not).
fn digest(report: &str) -> String {
    let version = format!("\"version\": \"{}\"", env!("CARGO_PKG_VERSION"));
    assert_eq!(report.matches(&version).count(), 1);
    let text = report.replacen(&version, "\"version\": \"-\"", 1);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in text.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x} {}", text.len())
}

#[test]
fn the_report_is_unchanged_byte_for_byte() {
    let report = render(false);
    // The measurements reach every path: small and histogram labels, escaped keys.
    assert!(report.contains("\\u0026limit=500"));
    assert!(report.contains("\"errorStats\""));
    assert!(report.contains("\"watches\""));
    assert_eq!(digest(&report), "bcd8055199fc66fa 1811225");
}

#[test]
fn the_raw_data_report_is_unchanged_byte_for_byte() {
    let report = render(true);
    assert!(report.contains("\"latenciesByURL\""));
    assert_eq!(digest(&report), "843d309a2ce05997 7799818");
}

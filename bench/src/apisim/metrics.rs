//! Prometheus metrics: requests by verb/resource/code, a latency histogram by verb, open watches, bytes.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Histogram bucket upper bounds, seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Tables {
    /// (verb, code) → resource → count.
    requests: HashMap<(&'static str, u16), HashMap<String, u64>>,
    latency: HashMap<&'static str, Histogram>,
}

/// The metrics registry.
#[derive(Default)]
pub struct Metrics {
    tables: Mutex<Tables>,
    watches: AtomicI64,
    response_bytes: AtomicU64,
    request_bytes: AtomicU64,
    connections: AtomicU64,
}

impl Metrics {
    /// Counts one answered request; `latency` runs from arrival to the response head.
    pub fn record(&self, verb: &'static str, resource: &str, code: u16, latency: Duration) {
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let by_resource = tables.requests.entry((verb, code)).or_default();
        match by_resource.get_mut(resource) {
            Some(count) => *count += 1,
            None => {
                by_resource.insert(resource.to_string(), 1);
            }
        }
        let histogram = tables.latency.entry(verb).or_default();
        let seconds = latency.as_secs_f64();
        let bucket = BUCKETS.partition_point(|&bound| bound < seconds);
        if let Some(count) = histogram.counts.get_mut(bucket) {
            *count += 1;
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// Adds response body bytes.
    pub fn add_response_bytes(&self, bytes: usize) {
        self.response_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Adds request body bytes.
    pub fn add_request_bytes(&self, bytes: usize) {
        self.request_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Counts an accepted connection; returns its number (1 for the first).
    pub fn connection_opened(&self) -> u64 {
        self.connections.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A watch started (`+1`) or ended (`-1`).
    pub fn watch_delta(&self, delta: i64) {
        self.watches.fetch_add(delta, Ordering::Relaxed);
    }

    /// The Prometheus text exposition; `in_flight` is the number of requests being handled now.
    pub fn render(&self, in_flight: u64) -> String {
        let mut out = String::new();
        let tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str(
            "# HELP apisim_requests_total API requests answered, by verb, resource and code.\n",
        );
        out.push_str("# TYPE apisim_requests_total counter\n");
        let mut rows = BTreeMap::new();
        for ((verb, code), by_resource) in &tables.requests {
            for (resource, count) in by_resource {
                rows.insert((*verb, resource.as_str(), *code), *count);
            }
        }
        for ((verb, resource, code), count) in rows {
            let _ = writeln!(
                out,
                "apisim_requests_total{{verb=\"{verb}\",resource=\"{}\",code=\"{code}\"}} {count}",
                escape_label(resource)
            );
        }
        out.push_str(
            "# HELP apisim_request_duration_seconds Time from request arrival to response head.\n",
        );
        out.push_str("# TYPE apisim_request_duration_seconds histogram\n");
        let latency: BTreeMap<_, _> = tables.latency.iter().collect();
        for (verb, histogram) in latency {
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(histogram.counts) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "apisim_request_duration_seconds_bucket{{verb=\"{verb}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "apisim_request_duration_seconds_bucket{{verb=\"{verb}\",le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "apisim_request_duration_seconds_sum{{verb=\"{verb}\"}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "apisim_request_duration_seconds_count{{verb=\"{verb}\"}} {}",
                histogram.count
            );
        }
        drop(tables);
        for (name, kind, help, value) in [
            (
                "apisim_requests_in_flight",
                "gauge",
                "API requests being handled now (watches excluded).",
                in_flight.to_string(),
            ),
            (
                "apisim_watches",
                "gauge",
                "Watches open now.",
                self.watches.load(Ordering::Relaxed).to_string(),
            ),
            (
                "apisim_response_body_bytes_total",
                "counter",
                "Response body bytes sent, watch streams included.",
                self.response_bytes.load(Ordering::Relaxed).to_string(),
            ),
            (
                "apisim_request_body_bytes_total",
                "counter",
                "Request body bytes received.",
                self.request_bytes.load(Ordering::Relaxed).to_string(),
            ),
            (
                "apisim_connections_total",
                "counter",
                "Connections accepted.",
                self.connections.load(Ordering::Relaxed).to_string(),
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.record("GET", "pods", 200, Duration::from_micros(300));
        metrics.record("GET", "pods", 200, Duration::from_millis(3));
        metrics.record("GET", "pods", 404, Duration::from_millis(3));
        metrics.add_response_bytes(10);
        metrics.watch_delta(1);
        let text = metrics.render(4);
        assert!(
            text.contains("apisim_requests_total{verb=\"GET\",resource=\"pods\",code=\"200\"} 2\n")
        );
        assert!(
            text.contains("apisim_requests_total{verb=\"GET\",resource=\"pods\",code=\"404\"} 1\n")
        );
        assert!(
            text.contains("apisim_request_duration_seconds_bucket{verb=\"GET\",le=\"0.0005\"} 1\n")
        );
        assert!(
            text.contains("apisim_request_duration_seconds_bucket{verb=\"GET\",le=\"0.005\"} 3\n")
        );
        assert!(text.contains("apisim_request_duration_seconds_count{verb=\"GET\"} 3\n"));
        assert!(text.contains("apisim_watches 1\n"));
        assert!(text.contains("apisim_requests_in_flight 4\n"));
        assert!(text.contains("apisim_response_body_bytes_total 10\n"));
    }
}

//! `engine run --metrics-listen ADDR`: Prometheus (OpenMetrics text) exposition during the run,
//! so a lab's Prometheus scrapes the replayer beside the API server.
//!
//! The figures come from [`CoreProgress`]: each core publishes its counters and histogram
//! buckets there from its tick loop (every ~100 ms, never per request), as plain atomic
//! stores into its own cache-line-aligned block. A scrape only loads them. The
//! `prometheus-client` crate encodes them through a [`Collector`] rather than its own
//! `Counter`/`Histogram` types: those are shared objects every core would update per request
//! (an atomic read-modify-write on a line all cores write), which the hot path must not do.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use preprocess::profile::Verb;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::runtime::progress::{CoreProgress, LATENCY_BOUNDS_US};
use crate::runtime::Shared;

/// The collector: reads every core's published block at each scrape.
struct ReplayCollector {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ReplayCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplayCollector")
    }
}

fn load(a: &std::sync::atomic::AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// `(upper bound in seconds, count in that bucket alone)` pairs, as `encode_histogram` takes
/// them (it accumulates), from the published cumulative counts.
fn buckets(cumulative: &[std::sync::atomic::AtomicU64]) -> Vec<(f64, u64)> {
    let mut below = 0;
    LATENCY_BOUNDS_US
        .iter()
        .zip(cumulative)
        .map(|(&us, c)| {
            let le = if us == u64::MAX {
                f64::INFINITY
            } else {
                us as f64 / 1e6
            };
            let upto = load(c).max(below);
            let n = upto - below;
            below = upto;
            (le, n)
        })
        .collect()
}

/// Reads one figure of a core's block.
type Figure = fn(&CoreProgress) -> u64;

struct Counter(u64);

impl EncodeMetric for Counter {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), std::fmt::Error> {
        encoder.encode_counter::<NoLabelSet, u64, u64>(&self.0, None)
    }
    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

impl Collector for ReplayCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let cores: Vec<(String, &CoreProgress)> = self
            .shared
            .progress
            .iter()
            .enumerate()
            .map(|(i, p)| {
                // The entry after the cores' is the WATCH lane's.
                let name = if i < self.shared.replay_end.cores() {
                    i.to_string()
                } else {
                    "watch-lane".to_string()
                };
                (name, p)
            })
            .collect();
        let counters: [(&str, &str, Figure); 3] = [
            (
                "kreplay_requests_sent",
                "Requests whose first byte was written.",
                |p| load(&p.sent),
            ),
            (
                "kreplay_requests_done",
                "Requests finished (successes and failures).",
                |p| load(&p.done),
            ),
            ("kreplay_requests_failed", "Requests that failed.", |p| {
                load(&p.failed)
            }),
        ];
        for (name, help, get) in counters {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (core, p) in &cores {
                let labels = [("core", core.as_str())];
                Counter(get(p)).encode(family.encode_family(&labels)?)?;
            }
        }
        for (name, help, failed) in [
            (
                "kreplay_verb_requests_done",
                "Requests finished, per verb.",
                false,
            ),
            (
                "kreplay_verb_requests_failed",
                "Requests failed, per verb.",
                true,
            ),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (core, p) in &cores {
                for v in Verb::ALL {
                    let i = v as usize;
                    let n = if failed {
                        load(&p.live.verb_failed[i])
                    } else {
                        load(&p.live.verb_done[i])
                    };
                    let labels = [("core", core.as_str()), ("verb", v.as_str())];
                    Counter(n).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        let mut family = encoder.encode_descriptor(
            "kreplay_latency_seconds",
            "Service latency of successful requests (first byte written to response), per verb.",
            None,
            MetricType::Histogram,
        )?;
        for (core, p) in &cores {
            for v in Verb::ALL {
                let i = v as usize;
                let labels = [("core", core.as_str()), ("verb", v.as_str())];
                family
                    .encode_family(&labels)?
                    .encode_histogram::<NoLabelSet>(
                        load(&p.live.latency_sum_us[i]) as f64 / 1e6,
                        load(&p.live.latency_count[i]),
                        &buckets(&p.live.latency_buckets[i]),
                        None,
                    )?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "kreplay_send_lag_seconds",
            "Send lag: first byte written minus the due instant.",
            None,
            MetricType::Histogram,
        )?;
        for (core, p) in &cores {
            let labels = [("core", core.as_str())];
            family
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(
                    load(&p.live.lag_sum_us) as f64 / 1e6,
                    load(&p.live.lag_count),
                    &buckets(&p.live.lag_buckets),
                    None,
                )?;
        }
        for (name, help, get) in [
            (
                "kreplay_in_flight",
                "Requests sent and not finished.",
                (|p: &CoreProgress| load(&p.sent).saturating_sub(load(&p.done))) as Figure,
            ),
            (
                "kreplay_connections",
                "Pool connections (io_uring pool: its largest size so far).",
                |p| load(&p.live.connections),
            ),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (core, p) in &cores {
                let labels = [("core", core.as_str())];
                family
                    .encode_family(&labels)?
                    .encode_gauge(&(get(p) as i64))?;
            }
        }
        Ok(())
    }
}

/// The running exposition server; stops (and joins its thread) when dropped.
pub struct MetricsServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// The address it listens on (the port chosen when ADDR asked for port 0).
    pub addr: SocketAddr,
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves `GET /metrics` (any path) on `addr` from its own thread until dropped.
pub fn serve(addr: SocketAddr, shared: Arc<Shared>) -> Result<MetricsServer, String> {
    let listener = TcpListener::bind(addr)
        .map_err(|e| format!("--metrics-listen {addr}: cannot listen: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("--metrics-listen {addr}: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("--metrics-listen {addr}: {e}"))?;
    let mut registry = Registry::default();
    registry.register_collector(Box::new(ReplayCollector { shared }));
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("kreplay-metrics".into())
        .spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut request = [0u8; 2048];
                        let _ = stream.read(&mut request);
                        let mut body = String::new();
                        let response = match prometheus_client::encoding::text::encode(
                            &mut body, &registry,
                        ) {
                            Ok(()) => format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            ),
                            Err(_) => "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
                        };
                        let _ = stream.write_all(response.as_bytes());
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        })
        .map_err(|e| format!("--metrics-listen: cannot start its thread: {e}"))?;
    Ok(MetricsServer {
        stop,
        thread: Some(thread),
        addr: local,
    })
}

//! The `"kreplay"` object appended to kperf's report: what kperf cannot tell (send lag,
//! latency from the scheduled instant, per-verb figures, rates, configuration) and every
//! histogram serialised (HdrHistogram V2 + deflate, base64) so reports merge exactly.

use std::cell::RefCell;

use base64::Engine as _;
use flate2::{Compress, Compression, FlushCompress, Status};
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use preprocess::profile::Verb;

use super::gofmt::format_rfc3339_nano;
use super::json_writer::GoJsonWriter;
use super::kperf::{hdr_percentiles, write_pairs, ReportKeys};
use super::sorted_hdr;
use super::ReportContext;
use crate::metrics::per_second::{quantile_micros, PerSecondSeries};
use crate::metrics::LatencyHistograms;

/// A histogram that cannot be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[error("histogram {what}: {message}")]
pub struct HistogramCodecError {
    what: &'static str,
    message: String,
}

/// The V2 format's cookie for a deflate-compressed histogram.
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9314;

/// A V2 serialiser and a deflate state reused for every histogram: a report writes
/// thousands, and hdrhistogram's `V2DeflateSerializer` builds (and zeroes, ~300 KiB) a new
/// compressor for each one.
struct HistogramEncoder {
    v2: V2Serializer,
    compress: Compress,
    plain: Vec<u8>,
    packed: Vec<u8>,
}

thread_local! {
    static ENCODER: RefCell<HistogramEncoder> = RefCell::new(HistogramEncoder {
        v2: V2Serializer::new(),
        compress: Compress::new(Compression::default(), true),
        plain: Vec::new(),
        packed: Vec::new(),
    });
}

/// Serialises a histogram as HdrHistogram V2 in a zlib stream (the compressed V2 form every
/// HdrHistogram reader takes), then standard base64. A payload over `STORED_UP_TO` bytes
/// is deflated (the bytes `V2DeflateSerializer` writes); a smaller one is stored.
pub fn encode_histogram(h: &Histogram<u64>) -> Result<String, HistogramCodecError> {
    with_packed_histogram(h, |packed| {
        base64::engine::general_purpose::STANDARD.encode(packed)
    })
}

/// `encode_histogram` of the histogram that samples (µs, ascending, not empty) would be
/// recorded into, without building it (`sorted_hdr`).
pub fn encode_sorted(sorted: &[u32]) -> Result<String, HistogramCodecError> {
    with_packed_sorted(sorted, |packed| {
        base64::engine::general_purpose::STANDARD.encode(packed)
    })
}

/// Writes `encode_histogram(h)` as a string value, straight into the report.
fn write_histogram(w: &mut GoJsonWriter, h: &Histogram<u64>) -> Result<(), HistogramCodecError> {
    with_packed_histogram(h, |packed| {
        w.base64_string(packed);
    })
}

/// Writes `encode_sorted(sorted)` as a string value, straight into the report.
fn write_sorted(w: &mut GoJsonWriter, sorted: &[u32]) -> Result<(), HistogramCodecError> {
    with_packed_sorted(sorted, |packed| {
        w.base64_string(packed);
    })
}

/// Calls `f` with the compressed V2 bytes of `h`.
fn with_packed_histogram<T>(
    h: &Histogram<u64>,
    f: impl FnOnce(&[u8]) -> T,
) -> Result<T, HistogramCodecError> {
    ENCODER.with(|cell| {
        let e = &mut *cell.borrow_mut();
        e.plain.clear();
        e.v2.serialize(h, &mut e.plain)
            .map_err(|err| encoding_failed(format!("{err:?}")))?;
        e.pack()?;
        Ok(f(&e.packed))
    })
}

/// Calls `f` with the compressed V2 bytes of the histogram of `sorted` (see `encode_sorted`).
fn with_packed_sorted<T>(
    sorted: &[u32],
    f: impl FnOnce(&[u8]) -> T,
) -> Result<T, HistogramCodecError> {
    ENCODER.with(|cell| {
        let e = &mut *cell.borrow_mut();
        e.plain.clear();
        sorted_hdr::write_v2(sorted, &mut e.plain);
        e.pack()?;
        Ok(f(&e.packed))
    })
}

fn encoding_failed(message: String) -> HistogramCodecError {
    HistogramCodecError {
        what: "encoding",
        message,
    }
}

impl HistogramEncoder {
    /// Packs the V2 payload in `plain` as a compressed V2 histogram into `packed`.
    fn pack(&mut self) -> Result<(), HistogramCodecError> {
        let e = self;
        e.packed.clear();
        e.packed
            .extend_from_slice(&V2_COMPRESSED_COOKIE.to_be_bytes());
        e.packed.extend_from_slice(&[0; 4]);
        if e.plain.len() <= STORED_UP_TO {
            zlib_stored(&e.plain, &mut e.packed);
            return finish_packed(&mut e.packed).map_err(encoding_failed);
        }
        // Deflate output is at most a little larger than its input.
        e.packed.reserve(e.plain.len() + e.plain.len() / 16 + 64);
        e.compress.reset();
        loop {
            let before = e.compress.total_in() as usize;
            let status = e
                .compress
                .compress_vec(&e.plain[before..], &mut e.packed, FlushCompress::Finish)
                .map_err(|err| encoding_failed(err.to_string()))?;
            if status == Status::StreamEnd {
                break;
            }
            e.packed.reserve(e.packed.capacity().max(64));
        }
        finish_packed(&mut e.packed).map_err(encoding_failed)
    }
}

/// V2 payloads up to this size go into the zlib stream uncompressed (stored blocks):
/// deflate saves a few dozen bytes on them, and resetting its state (128 KiB zeroed per
/// histogram) was most of the report's cost with thousands of labels.
const STORED_UP_TO: usize = 1024;

/// Appends `payload` as a zlib stream of stored (uncompressed) deflate blocks, which every
/// zlib decoder reads (RFC 1950/1951).
fn zlib_stored(payload: &[u8], out: &mut Vec<u8>) {
    // CMF 0x78 (deflate, 32 KiB window), FLG 0x01 (fastest; header check bits).
    out.extend_from_slice(&[0x78, 0x01]);
    let mut blocks = payload.chunks(usize::from(u16::MAX)).peekable();
    if payload.is_empty() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        out.push(u8::from(blocks.peek().is_none()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&adler2::adler32_slice(payload).to_be_bytes());
}

/// Writes the compressed length into the V2 header.
fn finish_packed(packed: &mut [u8]) -> Result<(), String> {
    let len = u32::try_from(packed.len() - 8)
        .map_err(|_| "compressed histogram over 4 GiB".to_string())?;
    packed[4..8].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Reads a histogram written by `encode_histogram`.
pub fn decode_histogram(text: &str) -> Result<Histogram<u64>, HistogramCodecError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| HistogramCodecError {
            what: "base64",
            message: e.to_string(),
        })?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| HistogramCodecError {
            what: "decoding",
            message: format!("{e:?}"),
        })
}

/// Whole µs as seconds.
pub(crate) fn seconds(us: u64) -> f64 {
    us as f64 / 1e6
}

/// How a timeline's content id appears in `kreplay.config.timelineId`.
pub fn timeline_id(content_id: u64) -> String {
    format!("xxh3:{content_id:016x}")
}

/// Writes per-second counts as a JSON array of integers.
pub fn write_counts(w: &mut GoJsonWriter, counts: &[u64]) {
    w.begin_array();
    for &c in counts {
        w.uint(c);
    }
    w.end_array();
}

/// Writes the per-interval series into the open `perSecond` object: counts, p99s derived from
/// the histograms, and the histograms themselves (sparse `[bucket, count]` pairs per interval,
/// what `engine merge` adds up exactly).
pub fn write_series(w: &mut GoJsonWriter, s: &PerSecondSeries) {
    if s.interval_s == 0 {
        return;
    }
    let n = s.used_len();
    w.key("intervalSeconds").uint(s.interval_s);
    for (key, v) in [
        ("completed", &s.completed),
        ("failed", &s.failed),
        ("bytes", &s.bytes),
    ] {
        w.key(key);
        write_counts(w, &v[..n]);
    }
    for (key, at) in [
        (
            "latencyP99",
            PerSecondSeries::latency_at as fn(&PerSecondSeries, usize) -> &[u32],
        ),
        ("lagP99", PerSecondSeries::lag_at),
    ] {
        w.key(key).begin_array();
        for i in 0..n {
            match quantile_micros(at(s, i), 0.99) {
                Some(us) => w.float(us as f64 / 1e6),
                None => w.null(),
            };
        }
        w.end_array();
    }
    for (key, at) in [
        (
            "latencyBuckets",
            PerSecondSeries::latency_at as fn(&PerSecondSeries, usize) -> &[u32],
        ),
        ("lagBuckets", PerSecondSeries::lag_at),
    ] {
        w.key(key).begin_array();
        for i in 0..n {
            let mut text = String::from("[");
            for (b, &c) in at(s, i).iter().enumerate().filter(|(_, c)| **c > 0) {
                if text.len() > 1 {
                    text.push(',');
                }
                text.push_str(&format!("[{b},{c}]"));
            }
            text.push(']');
            w.raw(&text);
        }
        w.end_array();
    }
}

fn write_histograms(
    w: &mut GoJsonWriter,
    l: &LatencyHistograms,
) -> Result<(), HistogramCodecError> {
    w.begin_object();
    w.key("scheduled");
    write_histogram(w, &l.scheduled)?;
    w.key("service");
    write_histogram(w, &l.service)?;
    w.end_object();
    Ok(())
}

/// `{"count", "p50", "p90", "p99", "p999", "max"}` of a send-lag histogram (seconds).
fn write_lag_summary(w: &mut GoJsonWriter, h: &Histogram<u64>) {
    w.begin_object();
    w.key("count").uint(h.len());
    if !h.is_empty() {
        for (name, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)] {
            w.key(name).float(seconds(h.value_at_quantile(q)));
        }
        w.key("max").float(seconds(h.max()));
    }
    w.end_object();
}

/// Writes `kreplay.sendLag` (of a run, or of merged runs): percentiles of every request's
/// send lag, the late counts and, when WATCHes were sent, the lag of WATCHes and of the rest.
pub(crate) fn write_send_lag(
    w: &mut GoJsonWriter,
    lag: &Histogram<u64>,
    watch_lag: &Histogram<u64>,
    late_1ms: u64,
    late_10ms: u64,
) {
    w.key("sendLag").begin_object();
    w.key("count").uint(lag.len());
    if !lag.is_empty() {
        for (name, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)] {
            w.key(name).float(seconds(lag.value_at_quantile(q)));
        }
        w.key("max").float(seconds(lag.max()));
    }
    w.key("lateOver1ms").uint(late_1ms);
    w.key("lateOver10ms").uint(late_10ms);
    if !watch_lag.is_empty() {
        // A WATCH's lag includes its connect: the other requests' lag is told apart.
        w.key("watches");
        write_lag_summary(w, watch_lag);
        w.key("withoutWatches");
        write_lag_summary(w, &crate::metrics::lag_without(lag, watch_lag));
    }
    w.end_object();
}

/// Writes the `"kreplay"` member into the open top-level object of `w`.
pub fn write_kreplay_member(
    w: &mut GoJsonWriter,
    ctx: &ReportContext<'_>,
    keys: &ReportKeys<'_>,
) -> Result<(), HistogramCodecError> {
    let o = ctx.outcome;
    let m = &o.metrics;
    w.key("kreplay").begin_object();
    w.key("version").string(env!("CARGO_PKG_VERSION"));

    write_send_lag(w, &m.lag, &m.watch_lag, m.late_1ms, m.late_10ms);
    super::timing::write_timing(
        w,
        &super::timing::LagSummary::of(&m.wake_error, 1e9),
        &o.per_core,
    );

    let sched = hdr_percentiles(&m.all.scheduled);
    if !sched.is_empty() {
        w.key("scheduledLatency");
        write_pairs(w, &sched);
    }

    w.key("verbs").begin_object();
    let mut verbs: Vec<Verb> = Verb::ALL
        .into_iter()
        .filter(|v| m.verbs[*v as usize].count > 0)
        .collect();
    verbs.sort_by_key(|v| v.as_str());
    for v in verbs {
        let s = &m.verbs[v as usize];
        w.key(v.as_str()).begin_object();
        w.key("count").uint(s.count);
        w.key("errors").uint(s.errors);
        let h = &s.latency.service;
        if !h.is_empty() {
            w.key("p50").float(seconds(h.value_at_quantile(0.5)));
            w.key("p90").float(seconds(h.value_at_quantile(0.9)));
            w.key("p99").float(seconds(h.value_at_quantile(0.99)));
            w.key("max").float(seconds(h.max()));
        }
        w.end_object();
    }
    w.end_object();

    let secs = o.duration.as_secs_f64();
    let span = o.scheduled_span_us as f64 / 1e6 / ctx.speed;
    w.key("rate").begin_object();
    w.key("achievedPerSecond").float(if secs > 0.0 {
        (m.run as f64 / secs).round()
    } else {
        0.0
    });
    w.key("scheduledPerSecond").float(if span > 0.0 {
        (o.scheduled as f64 / span).round()
    } else {
        0.0
    });
    w.end_object();

    w.key("perSecond").begin_object();
    w.key("scheduled");
    write_counts(w, o.scheduled_per_second.trimmed());
    w.key("sent");
    write_counts(w, m.sent_per_second.trimmed());
    write_series(w, &m.per_second);
    w.end_object();

    w.key("run").begin_object();
    w.key("completed").uint(m.completed);
    w.key("connectionRetries").uint(m.connection_retries);
    w.key("connectionsOpened").uint(o.conns_opened);
    w.key("connectionsPerCore");
    write_counts(w, &o.conns_opened_per_core);
    w.key("errorBodyBytes").uint(m.error_body_bytes);
    w.key("interrupted").bool(o.interrupted);
    w.key("maxStreamsPerConnection").uint(o.max_streams);
    w.key("retries").uint(m.retries);
    w.key("sent").uint(m.sent);
    // Only a run the timeline check stopped has it: the file, the damaged part, and that
    // nothing past it was sent.
    if let Some(d) = &o.check_failure {
        w.key("timelineDamage").string(&d.to_string());
    }
    w.key("unsentOnStop").uint(o.unsent_on_stop);
    w.end_object();

    let watches: Vec<_> = keys
        .entries
        .iter()
        .filter(|e| e.stats.watch_events > 0 || e.stats.watch_bytes > 0)
        .collect();
    if !watches.is_empty() {
        w.key("watches").begin_object();
        for e in watches {
            let s = e.stats;
            w.key(&e.key).begin_object();
            w.key("bytes").uint(s.watch_bytes);
            w.key("events").uint(s.watch_events);
            w.end_object();
        }
        w.end_object();
    }

    let c = &ctx.config;
    w.key("config").begin_object();
    w.key("cores").uint(o.cores as u64);
    w.key("cpus").begin_array();
    for &cpu in &o.cpus {
        w.uint(cpu as u64);
    }
    w.end_array();
    w.key("conns").uint(o.conns as u64);
    w.key("maxConns").uint(o.max_conns as u64);
    w.key("maxInFlight").uint(o.max_in_flight as u64);
    w.key("speed").float(ctx.speed);
    w.key("timing").string(c.timing);
    w.key("start").string(&format_rfc3339_nano(o.start_wall, 0));
    w.key("timeoutSeconds").float(c.timeout.as_secs_f64());
    if let Some(i) = c.runner_index {
        w.key("runnerIndex").uint(u64::from(i));
    }
    w.key("runnerCount")
        .uint(u64::from(ctx.source.info().runner_count));
    w.key("server").string(&c.server);
    if let Some(id) = ctx.source.info().content_id {
        w.key("timelineId").string(&timeline_id(id));
    }
    w.key("timelineSource").string(&ctx.source.info().source);
    w.key("timelineDescription")
        .string(&ctx.source.info().description);
    w.key("userAgent").string(&c.user_agent);
    w.end_object();

    w.key("histograms").begin_object();
    w.key("all");
    write_histograms(w, &m.all)?;
    if keys.entries.iter().any(|e| !e.stats.latency.is_empty()) {
        w.key("byURL").begin_object();
        for e in keys.entries.iter().filter(|e| !e.stats.latency.is_empty()) {
            w.key(&e.key);
            match keys.sorted(e) {
                Some((service, scheduled)) => {
                    w.begin_object();
                    w.key("scheduled");
                    write_sorted(w, scheduled)?;
                    w.key("service");
                    write_sorted(w, service)?;
                    w.end_object();
                }
                None => write_histograms(w, &e.stats.latency.histograms())?,
            }
        }
        w.end_object();
    }
    let mut verbs: Vec<Verb> = Verb::ALL
        .into_iter()
        .filter(|v| !m.verbs[*v as usize].latency.service.is_empty())
        .collect();
    verbs.sort_by_key(|v| v.as_str());
    if !verbs.is_empty() {
        w.key("byVerb").begin_object();
        for v in verbs {
            w.key(v.as_str());
            write_histograms(w, &m.verbs[v as usize].latency)?;
        }
        w.end_object();
    }
    w.key("sendLag");
    write_histogram(w, &m.lag)?;
    // Nanoseconds, unlike the others (µs): the wake error is a few µs.
    w.key("wakeError");
    write_histogram(w, &m.wake_error)?;
    if !m.watch_lag.is_empty() {
        // What `engine merge` needs to tell WATCHes' lag from the rest's.
        w.key("watchLag");
        write_histogram(w, &m.watch_lag)?;
    }
    w.end_object();

    w.end_object();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{new_histogram, record_value};

    #[test]
    fn histogram_round_trip_is_exact() {
        let mut h = new_histogram();
        for v in [0u64, 1, 7, 999, 1_000, 123_456, 59_000_000] {
            record_value(&mut h, v);
        }
        let back = decode_histogram(&encode_histogram(&h).unwrap()).unwrap();
        assert_eq!(back.len(), h.len());
        assert_eq!(back.max(), h.max());
        assert_eq!(back.min(), h.min());
        for q in [0.1, 0.5, 0.9, 0.99, 0.999] {
            assert_eq!(back.value_at_quantile(q), h.value_at_quantile(q));
        }
        assert!(decode_histogram("not base64!").is_err());
    }

    #[test]
    fn encoding_is_hdrhistograms_v2_deflate_with_the_compressor_reused() {
        use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
        let mut small = new_histogram();
        record_value(&mut small, 42);
        let mut wide = new_histogram();
        for v in 0..200_000u64 {
            record_value(&mut wide, v * 37 % 9_000_001);
        }
        // Twice each, interleaved: a reused compressor must start clean every time.
        for h in [&wide, &small, &wide, &small] {
            let ours = base64::engine::general_purpose::STANDARD
                .decode(encode_histogram(h).unwrap())
                .unwrap();
            // hdrhistogram's own reader takes both forms and gives the same histogram back.
            let back: Histogram<u64> = Deserializer::new()
                .deserialize(&mut ours.as_slice())
                .unwrap();
            assert_eq!(&back, h);
            assert_eq!(back.len(), h.len());
            let mut theirs = Vec::new();
            V2DeflateSerializer::new()
                .serialize(h, &mut theirs)
                .unwrap();
            if h.len() > 1 {
                // A large payload is deflated: the very bytes hdrhistogram writes.
                assert_eq!(ours, theirs);
            } else {
                // A small one is stored: zlib header, one final stored block.
                assert_eq!(&ours[8..11], &[0x78, 0x01, 0x01]);
                assert_ne!(ours, theirs);
            }
        }
    }

    #[test]
    fn stored_zlib_streams_decode_at_every_block_boundary() {
        use std::io::Read;
        for n in [0usize, 1, 1000, 65_535, 65_536, 140_000] {
            let payload: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
            let mut packed = Vec::new();
            zlib_stored(&payload, &mut packed);
            let mut back = Vec::new();
            flate2::read::ZlibDecoder::new(packed.as_slice())
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, payload, "{n} bytes");
        }
    }
}

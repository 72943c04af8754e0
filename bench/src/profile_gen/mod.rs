//! A deterministic generator of kperf replay profiles for tests and benchmarks.
//!
//! `write_profile` streams a profile (docs/kperf-compatibility.md §2) to any writer in
//! constant memory (memory grows with `--objects`, never with the request count). The same
//! config and seed always give the same bytes. Requests follow a rate shape ([`RateShape`])
//! and a verb mix ([`VerbMix`]) over a churning set of objects of seven kinds (pods, config
//! maps, secrets, deployments, the `stable.example.com/v1` CronTab custom resource, nodes,
//! namespaces) in namespaces `kreplay-0`, `kreplay-1`, ... which the target is expected to
//! have.
//!
//! Object lifecycles stay plausible: GET/PATCH/APPLY/DELETE only touch live objects,
//! CREATE only absent ones (a deleted object comes back under a new name). While fewer
//! than half the objects exist at the start, reads and updates turn into creates (less
//! often as the set fills), and a CREATE drawn when every object exists is redrawn from
//! the other verbs: the verb counts in [`GenSummary`] are what was written.

mod body;
mod kinds;
mod mix;
mod shape;
mod synth;
mod yaml_out;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use flate2::write::GzEncoder;
use flate2::Compression;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use mix::{GenVerb, VerbMix};
pub use shape::{RateShape, DEFAULT_RATE};

use shape::Schedule;
use synth::{RequestFields, Synthesizer};

/// Largest accepted `body_size`.
pub const MAX_BODY_SIZE: usize = 64 << 20;

/// `spec.contentType` of the generated profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GenContentType {
    /// `json`
    #[default]
    Json,
    /// `protobuf`
    Protobuf,
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenConfig {
    /// Number of requests (>= 1).
    pub requests: u64,
    /// Requests/s for the constant shape (default [`DEFAULT_RATE`]); excludes `duration_s`.
    pub rate: Option<f64>,
    /// Profile length in seconds for the constant shape; excludes `rate`.
    pub duration_s: Option<f64>,
    /// Rate over time.
    pub shape: RateShape,
    /// Relative verb weights.
    pub mix: VerbMix,
    /// Object slots (>= 1): the most objects alive at once.
    pub objects: u32,
    /// Namespaces (>= 1).
    pub namespaces: u32,
    /// Exact number of WATCH requests, spread evenly (overrides the mix's WATCH weight).
    pub watches: Option<u64>,
    /// Target size of CREATE/APPLY/PATCH bodies in bytes (bodies are padded up to it;
    /// smaller targets give the bare object).
    pub body_size: usize,
    /// `spec.runnerCount` (>= 1).
    pub runners: u32,
    /// `spec.connsPerRunner` (>= 1).
    pub conns: u32,
    /// `spec.clientsPerRunner` (0: same as conns).
    pub clients: u32,
    /// `spec.contentType`.
    pub content_type: GenContentType,
    /// `spec.disableHTTP2`.
    pub disable_http2: bool,
    /// Random seed.
    pub seed: u64,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            requests: 1000,
            rate: None,
            duration_s: None,
            shape: RateShape::Constant,
            mix: VerbMix::default_mix(),
            objects: 1000,
            namespaces: 10,
            watches: None,
            body_size: 512,
            runners: 1,
            conns: 10,
            clients: 0,
            content_type: GenContentType::Json,
            disable_http2: false,
            seed: 1,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenSummary {
    /// Requests written.
    pub requests: u64,
    /// Timestamp of the last request (the profile's duration), ms.
    pub last_timestamp_ms: i64,
    /// Requests per verb, indexed by [`GenVerb::index`].
    pub verb_counts: [u64; 8],
    /// Bytes of YAML written (before any compression).
    pub yaml_bytes: u64,
}

impl GenSummary {
    /// Requests written with `verb`.
    pub fn count(&self, verb: GenVerb) -> u64 {
        self.verb_counts[verb.index()]
    }
}

/// Why a profile could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// An option is out of range or malformed.
    #[error("invalid {option}: {reason}")]
    Invalid {
        /// The option, as the CLI spells it.
        option: &'static str,
        /// What is wrong and what would be valid.
        reason: String,
    },
    /// The output could not be opened.
    #[error("cannot create {path}: {source}")]
    Create {
        /// Output path.
        path: String,
        /// Cause.
        source: io::Error,
    },
    /// Writing the output failed.
    #[error("writing the profile failed: {0}")]
    Write(#[from] io::Error),
}

impl GenError {
    pub(crate) fn invalid(option: &'static str, reason: String) -> GenError {
        GenError::Invalid { option, reason }
    }
}

fn validate(cfg: &GenConfig) -> Result<Schedule, GenError> {
    let positive = |option: &'static str, v: u64| {
        if v == 0 {
            Err(GenError::invalid(option, "must be >= 1, got 0".to_owned()))
        } else {
            Ok(())
        }
    };
    positive("-n", cfg.requests)?;
    positive("--objects", u64::from(cfg.objects))?;
    positive("--namespaces", u64::from(cfg.namespaces))?;
    positive("--runners", u64::from(cfg.runners))?;
    positive("--conns", u64::from(cfg.conns))?;
    if cfg.runners > i32::MAX as u32 || cfg.conns > i32::MAX as u32 || cfg.clients > i32::MAX as u32
    {
        return Err(GenError::invalid(
            "--runners/--conns/--clients",
            format!("must be <= {}", i32::MAX),
        ));
    }
    if cfg.body_size > MAX_BODY_SIZE {
        return Err(GenError::invalid(
            "--body-size",
            format!("must be <= {MAX_BODY_SIZE} bytes, got {}", cfg.body_size),
        ));
    }
    if let Some(w) = cfg.watches {
        if w > cfg.requests {
            return Err(GenError::invalid(
                "--watches",
                format!("must be <= -n ({}), got {w}", cfg.requests),
            ));
        }
        if w < cfg.requests && cfg.mix.with_weight(GenVerb::Watch, 0.0).total() <= 0.0 {
            return Err(GenError::invalid(
                "--mix",
                "with --watches below -n, the mix needs a verb other than WATCH".to_owned(),
            ));
        }
    }
    if cfg.mix.total() <= 0.0 && cfg.watches != Some(cfg.requests) {
        return Err(GenError::invalid("--mix", "all weights are 0".to_owned()));
    }
    Schedule::new(cfg.shape, cfg.requests, cfg.rate, cfg.duration_s)
}

/// Counts the bytes passing through.
struct CountingWriter<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes the profile `cfg` describes to `out` (buffered internally) and flushes it.
pub fn write_profile<W: Write>(cfg: &GenConfig, out: W) -> Result<GenSummary, GenError> {
    let schedule = validate(cfg)?;
    let mut out = CountingWriter {
        inner: BufWriter::with_capacity(1 << 16, out),
        bytes: 0,
    };
    yaml_out::write_header(&mut out, cfg)?;
    let rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut synth = Synthesizer::new(
        rng,
        &cfg.mix,
        cfg.requests,
        cfg.watches,
        cfg.objects,
        cfg.namespaces,
        cfg.body_size,
    );
    let mut fields = RequestFields::default();
    let mut item = Vec::with_capacity(cfg.body_size * 2 + 512);
    let mut verb_counts = [0u64; 8];
    let mut last_ms = 0i64;
    for i in 0..cfg.requests {
        last_ms = schedule.timestamp_ms(i, last_ms);
        synth.next_request(i, &mut fields);
        if let Some(v) = fields.verb {
            verb_counts[v.index()] += 1;
        }
        item.clear();
        yaml_out::push_request(&mut item, last_ms, &fields);
        out.write_all(&item)?;
    }
    out.flush()?;
    Ok(GenSummary {
        requests: cfg.requests,
        last_timestamp_ms: last_ms,
        verb_counts,
        yaml_bytes: out.bytes,
    })
}

/// Writes the profile to `path`: `-` is stdout, a name ending in `.gz` is gzip-compressed
/// (fast level), anything else plain YAML.
pub fn write_profile_to_path(cfg: &GenConfig, path: &str) -> Result<GenSummary, GenError> {
    if path == "-" {
        let stdout = io::stdout();
        return write_profile(cfg, stdout.lock());
    }
    let file = File::create(Path::new(path)).map_err(|source| GenError::Create {
        path: path.to_owned(),
        source,
    })?;
    if path.ends_with(".gz") {
        let mut gz = GzEncoder::new(BufWriter::new(file), Compression::fast());
        let summary = write_profile(cfg, &mut gz)?;
        let mut inner = gz.finish()?;
        inner.flush()?;
        Ok(summary)
    } else {
        write_profile(cfg, file)
    }
}

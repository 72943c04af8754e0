//! Histograms in the report: HdrHistogram V2 in a zlib stream, base64, as every HdrHistogram
//! reader takes them, encoded with one reused compressor per thread.

use std::cell::RefCell;

use base64::Engine as _;
use flate2::{Compress, Compression, FlushCompress, Status};
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;

use super::sorted_hdr;

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

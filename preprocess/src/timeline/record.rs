//! The fixed-size request record of a timeline, read in place from the mmap.
//!
//! 64 bytes, little-endian, no implicit padding (so `bytemuck::Pod` is sound),
//! one cache line: the engine reads a record without touching its neighbours'
//! lines. Enum fields are raw bytes here and are decoded with checks
//! (`verb()`, `method()`, `body_kind()`), because the bytes come from a file.

use bytemuck::{Pod, Zeroable};

use crate::profile::{BodyKind, Method, Verb};

#[cfg(not(target_endian = "little"))]
compile_error!("the timeline format is read in place and assumes a little-endian host");

/// Flag bit: the request is a WATCH (a long-lived stream).
pub const FLAG_WATCH: u8 = 1;
/// Flag bit: the profile's apiPath cannot be turned into a URL (kperf counts such a
/// request as run and failed); `target` then holds the raw apiPath for the error record.
pub const FLAG_INVALID_TARGET: u8 = 2;

/// A reference to bytes in the blob area: `len` bytes at `offset` from the blob start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Pod, Zeroable)]
#[repr(C)]
pub struct BlobRef {
    /// Offset from the start of the blob area.
    pub offset: u64,
    /// Length in bytes.
    pub len: u32,
    /// Always zero.
    pub reserved: u32,
}

/// One scheduled request, everything the engine needs without parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
#[repr(C, align(64))]
pub struct RequestRecord {
    /// Due time in microseconds from the replay start (profile ms × 1000).
    pub due_us: u64,
    /// FNV-1a 64 of the kperf object key.
    pub key_hash: u64,
    /// The normalised request target (path + `?query`), without the server's base path.
    pub target: BlobRef,
    /// The request body (len 0: none).
    pub body: BlobRef,
    /// Index into the timeline's metric label table.
    pub label: u32,
    /// `Verb` discriminant.
    pub verb: u8,
    /// `Method` discriminant.
    pub method: u8,
    /// `BodyKind` discriminant.
    pub body_kind: u8,
    /// `FLAG_*` bits.
    pub flags: u8,
    /// Position of the request in the source profile (0-based).
    pub profile_index: u64,
}

const _: () = assert!(std::mem::size_of::<RequestRecord>() == 64);

impl RequestRecord {
    /// The verb, or `None` if the stored byte is not a verb (corrupt file).
    pub fn verb(&self) -> Option<Verb> {
        Verb::from_u8(self.verb)
    }

    /// The HTTP method, or `None` if corrupt.
    pub fn method(&self) -> Option<Method> {
        Method::from_u8(self.method)
    }

    /// The body's content-type class, or `None` if corrupt.
    pub fn body_kind(&self) -> Option<BodyKind> {
        BodyKind::from_u8(self.body_kind)
    }

    /// Whether the target could not be built (see `FLAG_INVALID_TARGET`).
    pub fn has_invalid_target(&self) -> bool {
        self.flags & FLAG_INVALID_TARGET != 0
    }

    /// Whether this request is a WATCH.
    pub fn is_watch(&self) -> bool {
        self.flags & FLAG_WATCH != 0
    }
}

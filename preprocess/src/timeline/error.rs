//! Errors of the timeline writer and reader.

use std::path::PathBuf;

/// What went wrong writing or reading a timeline. Reader errors name the part of the
/// file at fault, so a corrupt or truncated file is a sentence, never a panic.
#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    /// An I/O failure on a named file.
    #[error("{path}: {action}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done (`open`, `write records`, ...).
        action: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a kreplay timeline.
    #[error(
        "not a kreplay timeline (bad magic bytes); create one with `preprocess PROFILE -o FILE`"
    )]
    BadMagic,
    /// The file was written by another format version.
    #[error("timeline format version {found} is not supported (this build reads version {expected}); re-run preprocess")]
    UnsupportedVersion {
        /// Version in the file.
        found: u32,
        /// Version this build reads.
        expected: u32,
    },
    /// The file is shorter than a part it declares.
    #[error("truncated timeline: {what} needs bytes {start}..{end} but the file has {file_len}")]
    Truncated {
        /// The part (`preamble`, `header`, `records section`, ...).
        what: String,
        /// First byte needed.
        start: u64,
        /// One past the last byte needed.
        end: u64,
        /// Actual file length.
        file_len: u64,
    },
    /// A checksum does not match the bytes.
    #[error("corrupt timeline: {what} checksum mismatch (stored {stored:#018x}, computed {computed:#018x})")]
    ChecksumMismatch {
        /// The part.
        what: String,
        /// Checksum stored in the file.
        stored: u64,
        /// Checksum of the bytes.
        computed: u64,
    },
    /// A structural rule of the format is broken.
    #[error("corrupt timeline: {0}")]
    Corrupt(String),
    /// A record's field holds a value the format does not allow.
    #[error("corrupt timeline: record of profile index {profile_index}: {field}: {problem}")]
    BadRecord {
        /// The record's stored profile index.
        profile_index: u64,
        /// The field at fault.
        field: &'static str,
        /// What is wrong and what would be valid.
        problem: String,
    },
    /// A label id or profile index outside the file's range.
    #[error("{what} {value} is out of range (the timeline has {limit})")]
    OutOfRange {
        /// `label id`, `profile index`, ...
        what: &'static str,
        /// The value asked for.
        value: u64,
        /// How many exist.
        limit: u64,
    },
    /// A request cannot be stored.
    #[error("request {index}: {field}: {problem}")]
    BadRequest {
        /// Profile index of the request.
        index: u64,
        /// The field at fault.
        field: &'static str,
        /// What is wrong and what would be valid.
        problem: String,
    },
    /// The output path cannot be written (a directory, a path under a file...).
    #[error(transparent)]
    Destination(#[from] crate::destination::DestinationError),
    /// Writer options or usage that cannot produce a valid timeline.
    #[error("cannot write timeline: {0}")]
    InvalidWrite(String),
}

impl TimelineError {
    /// Wraps an I/O error with the file and the action.
    pub fn io(path: impl Into<PathBuf>, action: &'static str, source: std::io::Error) -> Self {
        TimelineError::Io {
            path: path.into(),
            action,
            source,
        }
    }
}

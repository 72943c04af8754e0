//! The binary timeline: format, writer and reader (one owner for both sides).
//!
//! See `format` for the layout. The writer (`TimelineWriter`) needs bounded memory
//! whatever the profile size; the reader (`Timeline`) maps the file and reads records
//! in place, checking every offset so that a corrupt file is an error, never UB.

mod blob_index;
mod blob_store;
mod block_layout;
mod due_order;
mod error;
pub mod format;
mod open_checks;
mod output;
mod prepare;
mod reader;
mod recent_copies;
pub mod record;
mod reseal;
mod spool;
mod writer;

pub use due_order::{VerifyProgress, VerifyState};
pub use error::TimelineError;
pub use format::{BlockLayout, TimelineHeader, DEFAULT_SHARDS_PER_RUNNER, FORMAT_VERSION};
pub use prepare::{due_us_of, path_mode_name, OwnedPrepared};
pub use reader::{Origin, RequestView, RunInfo, Timeline};
pub use reseal::reseal_checksums;
pub use writer::{OriginStrings, PreparedRequest, TimelineWriter, WriteSummary, WriterOptions};

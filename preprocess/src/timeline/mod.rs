//! The binary timeline: format, writer and reader.

pub mod record;

//! `preprocess export`: a timeline back to a kperf replay profile (YAML), in profile
//! order, with the original spec; every string double-quoted and escaped so that the
//! export loads back to the same requests.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::destination::Destination;
use crate::timeline::{Timeline, TimelineError};

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The timeline is unreadable or corrupt.
    #[error(transparent)]
    Timeline(#[from] TimelineError),
    /// Writing the output failed.
    #[error("{path}: {action}: {source}")]
    Io {
        /// The output file.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// The output path cannot be written (a directory, a path under a file...).
    #[error(transparent)]
    Destination(#[from] crate::destination::DestinationError),
    /// The writer given to `write_profile` failed.
    #[error("write: {0}")]
    Write(#[source] std::io::Error),
    /// A body is not UTF-8, so it cannot be written as a YAML string.
    #[error("request {profile_index}: body is not UTF-8 ({source}); a kperf profile can only hold text bodies")]
    BodyNotUtf8 {
        /// Profile index of the request.
        profile_index: u64,
        /// The decoding error.
        source: std::str::Utf8Error,
    },
}

/// Writes `t` as a kperf replay profile to `out`.
pub fn write_profile<W: Write>(t: &Timeline, out: &mut W) -> Result<(), ExportError> {
    let h = t.header();
    let spec = &h.spec;
    let mut text = String::with_capacity(4096);
    text.push_str("version: 1\ndescription: ");
    push_quoted(&mut text, &h.description);
    // Infallible: writing to a String.
    let _ = write!(
        text,
        "\nspec:\n  runnerCount: {}\n  connsPerRunner: {}\n  clientsPerRunner: {}\n  contentType: {}\n  disableHTTP2: {}\nrequests:\n",
        spec.runner_count,
        spec.conns_per_runner,
        spec.clients_per_runner,
        spec.content_type.as_str(),
        spec.disable_http2
    );
    for index in 0..h.request_count {
        let origin = t.origin(index)?;
        let view = t.view(origin.record)?;
        let body = std::str::from_utf8(view.body).map_err(|source| ExportError::BodyNotUtf8 {
            profile_index: index,
            source,
        })?;
        let _ = write!(
            text,
            "- timestamp: {}\n  verb: {}\n",
            origin.record.due_us / 1000,
            view.verb.as_str()
        );
        for (key, value) in [
            ("namespace", origin.namespace),
            ("resourceKind", origin.resource_kind),
            ("name", origin.name),
            ("apiPath", origin.api_path),
            ("body", body),
            ("labelSelector", origin.label_selector),
        ] {
            text.push_str("  ");
            text.push_str(key);
            text.push_str(": ");
            push_quoted(&mut text, value);
            text.push('\n');
        }
        if text.len() >= 1 << 16 {
            out.write_all(text.as_bytes()).map_err(ExportError::Write)?;
            text.clear();
        }
    }
    out.write_all(text.as_bytes()).map_err(ExportError::Write)?;
    out.flush().map_err(ExportError::Write)
}

/// Exports `t` to `path`: written to a 0600 temporary file (bodies can hold secrets) and
/// delivered to its [`Destination`] (renamed over a regular file, so a failure leaves no
/// partial profile; written into a device or pipe in place).
pub fn export_to_file(t: &Timeline, path: &Path) -> Result<(), ExportError> {
    let io = |action, source| ExportError::Io {
        path: path.to_path_buf(),
        action,
        source,
    };
    let destination = Destination::of(path)?;
    let tmp = tempfile::Builder::new()
        .prefix(".export-")
        .suffix(".tmp")
        .tempfile_in(destination.work_dir())
        .map_err(|e| io("create temporary file", e))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file());
    write_profile(t, &mut out).map_err(|e| match e {
        ExportError::Write(e) => io("write", e),
        other => other,
    })?;
    drop(out);
    destination.deliver(tmp)?;
    Ok(())
}

/// Appends `s` as a YAML double-quoted scalar. Escapes `"`, `\`, and every character
/// outside YAML's printable set, plus the characters YAML treats as line breaks
/// (U+0085, U+2028, U+2029) and the BOM, which a parser would otherwise fold or drop.
pub fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            ' '..='~' => out.push(c),
            '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}' => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c if (c as u32) < 0xA0 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

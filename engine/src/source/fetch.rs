//! `engine run https://…/timeline.bin`: a timeline downloaded to local disk, its SHA-256 checked,
//! before it is mapped. A runner pod gets its timeline this way (see `docs/distributed.md`).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use preprocess::source::redact_url;
use sha2::{Digest, Sha256};

/// Why a timeline could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// `--timeline-sha256` is not 64 hexadecimal digits.
    #[error("--timeline-sha256 {0:?} is not a SHA-256 digest (64 hexadecimal digits)")]
    BadDigest(String),
    /// The download failed (the URL is shown redacted).
    #[error("cannot download the timeline {url}: {message}")]
    Download {
        /// Redacted URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The downloaded bytes are not the expected ones.
    #[error("the timeline downloaded from {url} has SHA-256 {computed}, not the expected {expected} (--timeline-sha256): refusing to replay it")]
    DigestMismatch {
        /// Redacted URL.
        url: String,
        /// The digest asked for.
        expected: String,
        /// The digest of what arrived.
        computed: String,
    },
    /// The local file could not be written.
    #[error("cannot write the downloaded timeline to {path}: {source}")]
    Write {
        /// The destination.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Whether `timeline` names a URL rather than a file.
pub fn is_url(timeline: &str) -> bool {
    timeline.starts_with("http://") || timeline.starts_with("https://")
}

/// Parses a hex SHA-256 digest (either case) into its canonical lower-case form.
pub fn parse_sha256(text: &str) -> Result<String, FetchError> {
    let t = text.trim().strip_prefix("sha256:").unwrap_or(text.trim());
    if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(t.to_ascii_lowercase())
    } else {
        Err(FetchError::BadDigest(text.to_string()))
    }
}

/// The SHA-256 of a file, lower-case hex.
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Downloads `url` into `dir` (mode 0600: timelines may hold request bodies) and returns the
/// file's path. With `expected`, the digest is checked before the file is given its final
/// name, so a damaged download is never replayed; a file already there with that digest is
/// reused (a restarted pod does not download again).
pub fn fetch_timeline(
    url: &str,
    dir: &Path,
    expected: Option<&str>,
    idle_timeout: Duration,
) -> Result<PathBuf, FetchError> {
    let shown = redact_url(url);
    let name = match expected {
        Some(digest) => format!("timeline-{}.bin", &digest[..16]),
        None => "timeline.bin".to_string(),
    };
    let path = dir.join(&name);
    if let Some(digest) = expected {
        if file_sha256(&path).is_ok_and(|d| d == digest) {
            return Ok(path);
        }
    }
    let partial = dir.join(format!("{name}.part"));
    let write_error = |source| FetchError::Write {
        path: partial.clone(),
        source,
    };
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(idle_timeout))
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let download_error = |message: String| FetchError::Download {
        url: shown.clone(),
        message: message.replace(url, &shown),
    };
    let response = agent
        .get(url)
        .call()
        .map_err(|e| download_error(e.to_string()))?;
    let status = response.status();
    if status != ureq::http::StatusCode::OK {
        return Err(download_error(format!("the server answered {status}")));
    }
    let mut body = response.into_body().into_reader();
    let mut out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .map_err(write_error)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = body
            .read(&mut buf)
            .map_err(|e| download_error(e.to_string()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(write_error)?;
    }
    out.sync_all().map_err(write_error)?;
    drop(out);
    let computed = hex(&hasher.finalize());
    if let Some(expected) = expected {
        if computed != expected {
            let _ = std::fs::remove_file(&partial);
            return Err(FetchError::DigestMismatch {
                url: shown,
                expected: expected.to_string(),
                computed,
            });
        }
    }
    std::fs::rename(&partial, &path).map_err(|source| FetchError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_parse_in_either_case_with_or_without_prefix() {
        let d = "AB".repeat(32);
        assert_eq!(parse_sha256(&d).unwrap(), "ab".repeat(32));
        assert_eq!(
            parse_sha256(&format!("sha256:{d}")).unwrap(),
            "ab".repeat(32)
        );
        assert!(parse_sha256("abc").is_err());
        assert!(parse_sha256(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn file_digest_is_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(
            file_sha256(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

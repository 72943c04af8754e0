//! Where a profile comes from: a local file, standard input, or one HTTP(S) GET,
//! gunzipped when the bytes start with the gzip magic (kperf's rule,
//! docs/kperf-compatibility.md §1).
//!
//! Unlike kperf, a download has no whole-transfer deadline (kperf weakness 28): it fails only
//! when connecting takes too long or when no byte arrives for `idle_timeout`.

use std::fs::File;
use std::io::{self, Read};
use std::time::Duration;

use flate2::read::MultiGzDecoder;

/// How a URL source is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceOptions {
    /// Limit for establishing the TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Limit for any single wait on the network while reading; the transfer as a whole is not capped.
    pub idle_timeout: Duration,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// An opened profile: a display name (credentials removed) and its bytes, already gunzipped.
pub struct ProfileSource {
    /// What to call the source in messages (a URL has its user info and query hidden).
    pub name: String,
    /// The profile text; gzip has already been undone.
    pub reader: Box<dyn Read + Send>,
}

impl std::fmt::Debug for ProfileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfileSource")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Why a source could not be opened. Display follows kperf: `failed to open source <src>: …`.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The local file (or stdin) could not be opened or its first bytes read.
    #[error("failed to open source {name}: {source}")]
    Io {
        /// The source as given.
        name: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The HTTP request failed before a response arrived (DNS, connect, TLS, timeout, bad URL).
    #[error("failed to open source {name}: failed to fetch URL: {message}")]
    Fetch {
        /// The URL with credentials hidden.
        name: String,
        /// What went wrong (never contains the URL's query or user info).
        message: String,
    },
    /// The server answered with a status other than 200.
    #[error("failed to open source {name}: HTTP error: {status}")]
    Http {
        /// The URL with credentials hidden.
        name: String,
        /// The status line text, e.g. `404 Not Found`.
        status: String,
    },
}

/// Opens `src`: `-` is stdin, an `http://` or `https://` prefix (case-sensitive) is fetched with
/// one GET, anything else is a local path. The result is gunzipped when it starts with `1f 8b`.
pub fn open_source(src: &str, opts: &SourceOptions) -> Result<ProfileSource, SourceError> {
    let (name, raw): (String, Box<dyn Read + Send>) = if src == "-" {
        ("<stdin>".to_string(), Box::new(io::stdin()))
    } else if src.starts_with("http://") || src.starts_with("https://") {
        let name = redact_url(src);
        let reader = fetch_url(src, &name, opts)?;
        (name, reader)
    } else {
        let file = File::open(src).map_err(|source| SourceError::Io {
            name: src.to_string(),
            source,
        })?;
        (src.to_string(), Box::new(file))
    };
    let reader = gunzip_if_magic(raw).map_err(|source| SourceError::Io {
        name: name.clone(),
        source,
    })?;
    Ok(ProfileSource { name, reader })
}

/// Peeks the first two bytes and wraps `raw` in a multi-member gzip decoder when they are the
/// gzip magic; shorter inputs and anything else pass through unchanged.
pub fn gunzip_if_magic(mut raw: Box<dyn Read + Send>) -> io::Result<Box<dyn Read + Send>> {
    let mut head = [0u8; 2];
    let mut got = 0;
    while got < head.len() {
        match raw.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    let prefixed = io::Cursor::new(head[..got].to_vec()).chain(raw);
    if got == 2 && head == [0x1f, 0x8b] {
        Ok(Box::new(GzipErrors(MultiGzDecoder::new(
            io::BufReader::new(prefixed),
        ))))
    } else {
        Ok(Box::new(prefixed))
    }
}

/// Makes a gzip failure say so: flate2's own messages ("corrupt deflate stream", "unexpected
/// end of file") do not mention that the input was compressed.
struct GzipErrors<R>(R);

impl<R: Read> Read for GzipErrors<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| {
            let what = if e.kind() == io::ErrorKind::UnexpectedEof {
                "gzip stream is truncated".to_string()
            } else {
                format!("gzip stream is corrupt: {e}")
            };
            io::Error::new(e.kind(), what)
        })
    }
}

fn fetch_url(
    url: &str,
    name: &str,
    opts: &SourceOptions,
) -> Result<Box<dyn Read + Send>, SourceError> {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(opts.connect_timeout))
        .timeout_per_read(Some(opts.idle_timeout))
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let response = agent.get(url).call().map_err(|e| SourceError::Fetch {
        name: name.to_string(),
        message: scrub(&e.to_string(), url, name),
    })?;
    let status = response.status();
    if status != ureq::http::StatusCode::OK {
        let text = match status.canonical_reason() {
            Some(reason) => format!("{} {}", status.as_u16(), reason),
            None => status.as_u16().to_string(),
        };
        return Err(SourceError::Http {
            name: name.to_string(),
            status: text,
        });
    }
    Ok(Box::new(response.into_body().into_reader()))
}

/// Replaces any copy of the raw URL in a library message by its redacted form.
fn scrub(message: &str, url: &str, redacted: &str) -> String {
    message.replace(url, redacted)
}

/// The URL as safe to print: user info dropped, query and fragment replaced by `?…`, since
/// profile stores often authenticate with signed query strings (SAS tokens).
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => (&url[..i + 3], &url[i + 3..]),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = match authority.rfind('@') {
        Some(i) => &authority[i + 1..],
        None => authority,
    };
    let path_end = tail.find(['?', '#']).unwrap_or(tail.len());
    let hidden = if path_end < tail.len() { "?…" } else { "" };
    format!("{scheme}{host}{}{hidden}", &tail[..path_end])
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redaction_hides_user_info_and_query() {
        assert_eq!(
            redact_url("https://u:pw@host:8080/p/x.yaml?sig=abc#f"),
            "https://host:8080/p/x.yaml?…"
        );
        assert_eq!(redact_url("http://host/x"), "http://host/x");
        assert_eq!(redact_url("http://a@b?q=1"), "http://b?…");
    }
}

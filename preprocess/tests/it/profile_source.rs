//! Profile sources: local files, gzip by magic bytes, URLs against a local HTTP server,
//! and byte-level input errors.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use crate::util::*;
use flate2::write::GzEncoder;
use flate2::Compression;
use preprocess::loader::{load_profile, LoadError, LoadOptions};
use preprocess::source::{open_source, SourceError, SourceOptions};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).expect("in-memory write");
    enc.finish().expect("in-memory finish")
}

fn sample_text() -> Vec<u8> {
    std::fs::read(SAMPLE).expect("fixture present")
}

/// Opens `src` and loads it, returning the request count.
fn load_source(src: &str, opts: &SourceOptions) -> Result<u64, String> {
    let source = open_source(src, opts).map_err(|e| e.to_string())?;
    let head = load_profile(
        &source.name,
        source.reader,
        &LoadOptions::default(),
        &mut |_, _| Ok(()),
    )
    .map_err(|e| e.to_string())?;
    Ok(head.request_count)
}

fn temp_file(bytes: &[u8], suffix: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new()
        .suffix(suffix)
        .tempfile()
        .expect("temp file");
    file.write_all(bytes).expect("write temp file");
    file
}

#[test]
fn plain_file_and_missing_file() {
    let opts = SourceOptions::default();
    assert_eq!(load_source(SAMPLE, &opts), Ok(9));
    let err = open_source("/nonexistent/profile.yaml", &opts).unwrap_err();
    assert!(matches!(err, SourceError::Io { .. }));
    assert!(
        err.to_string()
            .starts_with("failed to open source /nonexistent/profile.yaml: "),
        "{err}"
    );
}

#[test]
fn gzip_is_detected_by_magic_not_by_name() {
    let opts = SourceOptions::default();
    let gz = temp_file(&gzip(&sample_text()), ".yaml");
    assert_eq!(load_source(gz.path().to_str().unwrap(), &opts), Ok(9));
    // A plain file named .gz is read as plain text.
    let plain = temp_file(&sample_text(), ".yaml.gz");
    assert_eq!(load_source(plain.path().to_str().unwrap(), &opts), Ok(9));
}

#[test]
fn multi_member_gzip_reads_as_one_stream() {
    let text = sample_text();
    let (a, b) = text.split_at(text.len() / 2);
    let mut both = gzip(a);
    both.extend_from_slice(&gzip(b));
    let file = temp_file(&both, "");
    assert_eq!(
        load_source(file.path().to_str().unwrap(), &SourceOptions::default()),
        Ok(9)
    );
}

#[test]
fn truncated_gzip_is_an_error() {
    let gz = gzip(&sample_text());
    // Cut inside the deflate data, and also just before the trailer: the YAML before the cut
    // may look complete, the stream is still broken.
    for cut in [gz.len() / 2, gz.len() - 4] {
        let file = temp_file(&gz[..cut], "");
        let err = load_source(file.path().to_str().unwrap(), &SourceOptions::default())
            .expect_err("truncated gzip must fail");
        assert!(err.contains("gzip stream is truncated"), "cut {cut}: {err}");
        assert!(err.starts_with(file.path().to_str().unwrap()), "{err}");
    }
}

#[test]
fn one_byte_input_is_plain_text() {
    let file = temp_file(b"x", "");
    let err = load_source(file.path().to_str().unwrap(), &SourceOptions::default()).unwrap_err();
    assert!(
        err.contains("cannot unmarshal !!str `x` into types.ReplayProfile"),
        "{err}"
    );
}

#[test]
fn non_utf8_input_fails_with_its_offset() {
    let mut bytes = with_requests(&get_item(0)).into_bytes();
    let at = bytes.len() - 3;
    bytes[at] = 0xff;
    let err = load_bytes(&bytes, &LoadOptions::default()).unwrap_err();
    match err {
        LoadError::NotUtf8 { offset, .. } => assert_eq!(offset, at as u64),
        other => panic!("expected NotUtf8, got {other:?}"),
    }
    // A multi-byte sequence cut by the end of input.
    let mut bytes = with_requests(&get_item(0)).into_bytes();
    bytes.extend_from_slice(b"# \xe2\x82");
    assert!(matches!(
        load_bytes(&bytes, &LoadOptions::default()),
        Err(LoadError::NotUtf8 { .. })
    ));
    // Valid multi-byte text passes.
    let yaml = with_requests(&get_item(0)).replace("name: p", "name: pöd-€-𝄞");
    assert_eq!(load(&yaml).expect("utf-8").1[0].name, "pöd-€-𝄞");
}

/// A one-connection HTTP server on 127.0.0.1: answers the first request with `response`,
/// then (if `stall` is set) keeps the socket open without sending for that long.
fn serve_once(response: Vec<u8>, stall: Option<Duration>) -> (String, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let handle = thread::spawn(move || {
        let Ok((mut conn, _)) = listener.accept() else {
            return;
        };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") && seen.len() < 64 * 1024 {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        let _ = conn.write_all(&response);
        let _ = conn.flush();
        if let Some(stall) = stall {
            thread::sleep(stall);
        }
    });
    (format!("http://{addr}/profiles/p.yaml"), handle)
}

fn http_response(status: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

#[test]
fn url_source_200_plain_and_gzip() {
    let (url, server) = serve_once(http_response("200 OK", &sample_text()), None);
    assert_eq!(load_source(&url, &SourceOptions::default()), Ok(9));
    server.join().expect("server thread");
    let (url, server) = serve_once(http_response("200 OK", &gzip(&sample_text())), None);
    assert_eq!(load_source(&url, &SourceOptions::default()), Ok(9));
    server.join().expect("server thread");
}

#[test]
fn url_source_404_names_the_status_line() {
    let (url, server) = serve_once(http_response("404 Not Found", b"nope"), None);
    let err = open_source(&format!("{url}?sig=secret"), &SourceOptions::default()).unwrap_err();
    server.join().expect("server thread");
    assert!(matches!(err, SourceError::Http { .. }));
    let text = err.to_string();
    assert!(text.ends_with(": HTTP error: 404 Not Found"), "{text}");
    assert!(!text.contains("secret"), "the query is hidden: {text}");
    assert!(
        text.starts_with(&format!("failed to open source {url}?…")),
        "{text}"
    );
}

#[test]
fn url_source_fails_when_the_server_goes_idle() {
    // Headers promise 10 000 bytes; 100 arrive, then nothing.
    let mut response =
        b"HTTP/1.1 200 OK\r\nContent-Length: 10000\r\nConnection: close\r\n\r\n".to_vec();
    response.extend_from_slice(&[b'#'; 100]);
    let (url, server) = serve_once(response, Some(Duration::from_secs(3)));
    let opts = SourceOptions {
        connect_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_millis(300),
    };
    let err = load_source(&url, &opts).expect_err("a stalled download must fail");
    assert!(err.contains("failed to read profile"), "{err}");
    server.join().expect("server thread");
}

#[test]
fn url_source_connection_refused_is_a_fetch_error() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let err = open_source(&format!("http://{addr}/x"), &SourceOptions::default()).unwrap_err();
    assert!(matches!(err, SourceError::Fetch { .. }), "{err:?}");
    assert!(err.to_string().contains("failed to fetch URL"), "{err}");
}

fn utf16(text: &str, big_endian: bool) -> Vec<u8> {
    let mut out = if big_endian {
        vec![0xfe, 0xff]
    } else {
        vec![0xff, 0xfe]
    };
    for unit in text.encode_utf16() {
        out.extend_from_slice(&if big_endian {
            unit.to_be_bytes()
        } else {
            unit.to_le_bytes()
        });
    }
    out
}

#[test]
fn utf16_with_a_byte_order_mark_and_utf8_bom_are_read_as_libyaml_does() {
    let yaml = with_requests(&get_item(0)).replace("name: p", "name: pöd-𝄞");
    for big_endian in [false, true] {
        let (head, got) = load_bytes(&utf16(&yaml, big_endian), &LoadOptions::default())
            .unwrap_or_else(|e| panic!("utf-16 (be={big_endian}): {e}"));
        assert_eq!(head.request_count, 1);
        assert_eq!(got[0].name, "pöd-𝄞");
    }
    let mut bom = vec![0xef, 0xbb, 0xbf];
    bom.extend_from_slice(yaml.as_bytes());
    assert_eq!(
        load_bytes(&bom, &LoadOptions::default())
            .expect("utf-8 bom")
            .1
            .len(),
        1
    );
    // An odd trailing byte after a UTF-16 mark is broken input.
    let mut odd = utf16(&yaml, false);
    odd.push(b'x');
    assert!(matches!(
        load_bytes(&odd, &LoadOptions::default()),
        Err(LoadError::NotUtf8 { .. })
    ));
}

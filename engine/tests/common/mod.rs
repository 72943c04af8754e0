//! Test fixtures: a recording HTTP/1.1 server on 127.0.0.1 (std threads), timelines built
//! with preprocess's writer, and a bounded runner for the real `engine` binary.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use preprocess::profile::{ContentType, ProfileRequest, Spec, Verb};
use preprocess::request_target::PathMode;
use preprocess::timeline::{TimelineWriter, WriterOptions};

/// How the test server answers.
#[derive(Debug, Clone)]
pub struct Behavior {
    /// Delay before each response (server-side work).
    pub delay: Duration,
    /// Delay only for targets containing this text (all if None).
    pub delay_only: Option<String>,
    /// Close the connection after each response (`Connection: close`).
    pub close_after_each: bool,
    /// Never answer (hold the connection).
    pub stall: bool,
    /// Status of every response.
    pub status: u16,
    /// Send bodies chunked.
    pub chunked: bool,
    /// Response body.
    pub body: String,
    /// Answer `watch=true` requests with a chunked stream of this many event lines,
    /// then keep the stream open until the client or the server closes it.
    pub watch_events: usize,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior {
            delay: Duration::ZERO,
            delay_only: None,
            close_after_each: false,
            stall: false,
            status: 200,
            chunked: false,
            body: "{\"kind\":\"Status\"}".to_string(),
            watch_events: 0,
        }
    }
}

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Arrival order over the whole server.
    pub seq: u64,
    /// Wall-clock arrival time (head fully read).
    pub at: std::time::SystemTime,
    /// The client's address (one per connection).
    pub peer: Option<SocketAddr>,
}

impl Received {
    /// The value of header `name` (case-insensitive), if present once or more.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A recording HTTP/1.1 server.
pub struct TestServer {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    shutdown: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server on a free port of 127.0.0.1.
    pub fn start(behavior: Behavior) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let received = Arc::new(Mutex::new(Vec::new()));
        let shutdown = Arc::new(AtomicBool::new(false));
        let seq = Arc::new(AtomicU64::new(0));
        let (r, s) = (received.clone(), shutdown.clone());
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (r, s, b, q) = (r.clone(), s.clone(), behavior.clone(), seq.clone());
                std::thread::spawn(move || serve(stream, &b, &r, &s, &q));
            }
        });
        TestServer {
            addr,
            received,
            shutdown,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What arrived so far, in arrival order.
    pub fn requests(&self) -> Vec<Received> {
        let mut v = self.received.lock().expect("lock").clone();
        v.sort_by_key(|r| r.seq);
        v
    }

    /// Stops accepting and closes every connection.
    pub fn stop(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(
    mut stream: TcpStream,
    b: &Behavior,
    received: &Mutex<Vec<Received>>,
    shutdown: &AtomicBool,
    seq: &AtomicU64,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let _ = stream.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        // Read one request head.
        let (head_len, method, target, headers) = loop {
            if shutdown.load(Ordering::SeqCst) {
                return;
            }
            let mut hs = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut hs);
            if let Ok(httparse::Status::Complete(n)) = req.parse(&buf) {
                let headers: Vec<(String, String)> = req
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).to_string(),
                        )
                    })
                    .collect();
                break (
                    n,
                    req.method.unwrap_or("").to_string(),
                    req.path.unwrap_or("").to_string(),
                    headers,
                );
            }
            match stream.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            }
        };
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_len + len {
            if shutdown.load(Ordering::SeqCst) {
                return;
            }
            match stream.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            }
        }
        let body = buf[head_len..head_len + len].to_vec();
        buf.drain(..head_len + len);
        let n = seq.fetch_add(1, Ordering::SeqCst);
        received.lock().expect("lock").push(Received {
            method,
            target: target.clone(),
            headers,
            body,
            seq: n,
            at: std::time::SystemTime::now(),
            peer: stream.peer_addr().ok(),
        });
        if b.watch_events > 0 && target.contains("watch=true") {
            let mut resp = String::from("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
            for i in 0..b.watch_events {
                let line = format!("{{\"type\":\"ADDED\",\"object\":{{\"n\":{i}}}}}\n");
                resp.push_str(&format!("{:x}\r\n{line}\r\n", line.len()));
            }
            if stream.write_all(resp.as_bytes()).is_err() {
                return;
            }
            // Hold the stream until the client ends it (read returns 0) or the server stops.
            while !shutdown.load(Ordering::SeqCst) {
                match stream.read(&mut chunk) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => return,
                }
            }
            return;
        }
        if b.stall {
            while !shutdown.load(Ordering::SeqCst) {
                let _ = stream.read(&mut chunk);
            }
            return;
        }
        if !b.delay.is_zero()
            && b.delay_only
                .as_ref()
                .is_none_or(|t| target.contains(t.as_str()))
        {
            std::thread::sleep(b.delay);
        }
        let reason = if b.status < 300 { "OK" } else { "Error" };
        let conn = if b.close_after_each {
            "Connection: close\r\n"
        } else {
            ""
        };
        let resp = if b.chunked {
            let half = b.body.len() / 2;
            format!(
                "HTTP/1.1 {} {reason}\r\n{conn}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
                b.status,
                half,
                &b.body[..half],
                b.body.len() - half,
                &b.body[half..]
            )
        } else {
            format!(
                "HTTP/1.1 {} {reason}\r\n{conn}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
                b.status,
                b.body.len(),
                b.body
            )
        };
        if stream.write_all(resp.as_bytes()).is_err() || b.close_after_each {
            return;
        }
    }
}

/// A spec for tests.
pub fn spec(runners: u32, conns: u32) -> Spec {
    Spec {
        runner_count: runners,
        conns_per_runner: conns,
        clients_per_runner: 0,
        content_type: ContentType::Json,
        disable_http2: true,
    }
}

/// A profile request.
pub fn req(
    ts: i64,
    verb: Verb,
    ns: &str,
    name: &str,
    api_path: &str,
    body: &str,
) -> ProfileRequest {
    ProfileRequest {
        timestamp_ms: ts,
        verb,
        namespace: ns.to_string(),
        resource_kind: "Pod".to_string(),
        name: name.to_string(),
        api_path: api_path.to_string(),
        body: body.to_string(),
        label_selector: String::new(),
    }
}

/// Writes a timeline with preprocess's writer (real normalisation and partitioning).
pub fn write_timeline(dir: &Path, spec: &Spec, requests: &[ProfileRequest]) -> PathBuf {
    let path = dir.join("timeline.bin");
    let mut w = TimelineWriter::create(
        &path,
        WriterOptions {
            source: "engine-test".to_string(),
            ..WriterOptions::default()
        },
    )
    .expect("create timeline");
    for (i, r) in requests.iter().enumerate() {
        w.push(i as u64, r, PathMode::Recorded)
            .expect("push request");
    }
    w.finish(spec, "engine test").expect("finish timeline");
    path
}

/// The result of one engine run.
pub struct EngineRun {
    pub status: ExitStatus,
    pub stderr: String,
    pub report: Option<serde_json::Value>,
    pub report_text: Option<String>,
}

/// Waits for `child` at most `limit`; kills it and panics if it is still running.
pub fn wait_bounded(mut child: Child, limit: Duration) -> (ExitStatus, String) {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            return (status, err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("engine still running after {limit:?}: hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `engine run TIMELINE --result DIR/report.json --quiet ARGS...`.
pub fn spawn_engine(timeline: &Path, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_engine"));
    cmd.arg("run")
        .arg(timeline)
        .arg("--result")
        .arg(dir.join("out").join("report.json"))
        .arg("--quiet")
        // The recording servers count what arrives: keep the /version check out of it.
        .arg("--no-preflight")
        .args(args)
        .env_remove("JOB_COMPLETION_INDEX")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn engine")
}

/// Runs the engine to the end (bounded by 120 s) and reads its report.
pub fn run_engine(timeline: &Path, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> EngineRun {
    let child = spawn_engine(timeline, dir, args, env);
    let (status, stderr) = wait_bounded(child, Duration::from_secs(120));
    read_run(status, stderr, dir)
}

/// `run_engine` against the plain-HTTP server at `server` on one core, with `extra` flags.
pub fn run_on_one_core(timeline: &Path, dir: &Path, server: &str, extra: &[&str]) -> EngineRun {
    let mut args = vec!["--server", server, "--cores", "1"];
    args.extend_from_slice(extra);
    run_engine(timeline, dir, &args, &[])
}

/// Reads the report a finished run left in `dir`.
pub fn read_run(status: ExitStatus, stderr: String, dir: &Path) -> EngineRun {
    let report_text = std::fs::read_to_string(dir.join("out").join("report.json")).ok();
    let report = report_text.as_deref().map(|t| {
        serde_json::from_str(t).unwrap_or_else(|e| panic!("report is not JSON ({e}):\n{t}"))
    });
    EngineRun {
        status,
        stderr,
        report,
        report_text,
    }
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    port
}

/// `report[key]` as u64.
pub fn num(report: &serde_json::Value, key: &str) -> u64 {
    report[key]
        .as_u64()
        .unwrap_or_else(|| panic!("report has no integer {key}: {report}"))
}

/// A report's `kreplay.perSecond.<key>` counts (`scheduled` or `sent`).
pub fn per_second(report: &serde_json::Value, key: &str) -> Vec<u64> {
    report["kreplay"]["perSecond"][key]
        .as_array()
        .unwrap_or_else(|| panic!("kreplay.perSecond.{key} in {report}"))
        .iter()
        .map(|c| c.as_u64().expect("a count"))
        .collect()
}

/// A run in which every request failed: exit 1 from the built-in gate, with its report written.
pub fn assert_all_failed_exit(run: &EngineRun) {
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("✗ error_rate>=100%"), "{}", run.stderr);
    assert!(
        run.report.is_some(),
        "the report is written: {}",
        run.stderr
    );
}

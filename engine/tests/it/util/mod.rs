//! What the engine's scenarios share: a recording HTTP/1.1 server on 127.0.0.1 (std threads),
//! a scripted one (`scripted`), a test PKI and nginx (`tls`), and a bounded runner for the real
//! `engine` binary. Profiles, timelines and apisim come from `testkit`, re-exported here.

#![allow(dead_code)]

pub mod scripted;
pub mod tls;

pub use testkit::apisim::write_kubeconfig;
pub use testkit::{free_port, h2_spec, profile, spec, write_timeline, ApiSim};

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

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
            if !read_more(&mut stream, &mut buf) {
                return;
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
            if !read_more(&mut stream, &mut buf) {
                return;
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
                if !read_more(&mut stream, &mut buf) {
                    return;
                }
                buf.clear();
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

/// The result of one engine run.
pub struct EngineRun {
    pub status: ExitStatus,
    pub stderr: String,
    pub report: Option<serde_json::Value>,
    pub report_text: Option<String>,
}

/// Waits for an engine at most `limit` (past it the child is killed and the test fails); its
/// exit status and standard error.
pub fn wait_engine(child: Child, limit: Duration) -> (ExitStatus, String) {
    let out = testkit::wait_bounded(child, limit);
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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
    let (status, stderr) = wait_engine(child, Duration::from_secs(120));
    read_run(status, stderr, dir)
}

/// `run_engine` against the plain-HTTP server at `server` on one core, with `extra` flags.
pub fn run_on_one_core(timeline: &Path, dir: &Path, server: &str, extra: &[&str]) -> EngineRun {
    let mut args = vec!["--server", server, "--cores", "1"];
    args.extend_from_slice(extra);
    run_engine(timeline, dir, &args, &[])
}

/// `run_engine` against apisim through the kubeconfig it wrote, on one core, with `extra` flags.
pub fn run_on_apisim(sim: &ApiSim, timeline: &Path, dir: &Path, extra: &[&str]) -> EngineRun {
    let kubeconfig = sim.kubeconfig.to_str().expect("utf-8 kubeconfig path");
    let mut args = vec!["--kubeconfig", kubeconfig, "--cores", "1"];
    args.extend_from_slice(extra);
    run_engine(timeline, dir, &args, &[])
}

/// A report's `errorStats` (error class → count; empty when nothing failed).
pub fn error_stats(report: &serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    report["errorStats"]
        .as_object()
        .cloned()
        .unwrap_or_default()
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

/// Options for `engine::run` called as a library: two cores, relaxed timing, a 10 s timeout,
/// no progress line; tests override what they vary.
pub fn library_options(user_agent: &str) -> engine::run::RunOptions {
    engine::run::RunOptions {
        cores: 2,
        cpus: None,
        share_cpus: false,
        metrics_listen: None,
        conns: None,
        max_conns: None,
        max_in_flight: None,
        retries: Default::default(),
        watch_connections: Default::default(),
        watch_executor: Default::default(),
        watch_cpus: None,
        speed: 1.0,
        timing: engine::clock::TimingMode::Relaxed,
        start_at: None,
        timeout: Duration::from_secs(10),
        grace: Duration::from_secs(1),
        raw_data: false,
        user_agent: user_agent.to_string(),
        selection: engine::plan::RunnerSelection::All,
        progress: false,
    }
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

/// A run whose every request was a GET of a pod apisim does not have: exit 1 from the
/// all-failed gate, `n` run, every failure a 404 (none a refused stream or a transport error).
/// The report, for what the scenario checks next.
pub fn assert_all_not_found(run: EngineRun, n: u64) -> serde_json::Value {
    assert_all_failed_exit(&run);
    let report = run.report.expect("report written");
    assert_eq!(num(&report, "totalRun"), n);
    let stats = error_stats(&report);
    assert!(
        stats.keys().all(|k| k == "http/404"),
        "only 404s expected: {stats:?}"
    );
    assert_eq!(stats.get("http/404").and_then(|v| v.as_u64()), Some(n));
    report
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

/// Reads what has arrived into `buf`; false once the peer closed or the read failed. A read
/// timeout is not a failure: the caller checks for shutdown and reads again.
pub(crate) fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8192];
    match stream.read(&mut chunk) {
        Ok(0) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

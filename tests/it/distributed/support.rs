//! What the distributed scenarios share: one test at a time, the sample timeline, a file
//! server for timelines, a watched child process, small readers.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::util::{preprocess, run_bounded, workspace, ApiSim};

/// The distributed tests run one at a time: the start-skew check measures how late runner
/// processes begin, which another test's processes on the same two CPUs would distort. This
/// lock keeps them apart from each other; `scripts/test.sh` runs them after every other test of
/// the binary (`--skip distributed::`, then `distributed:: --test-threads=1`), so they run alone.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub(crate) fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn sample_timeline(dir: &Path) -> PathBuf {
    let timeline = dir.join("t.bin");
    preprocess(
        &workspace().join("bench/profiles/kperf_sample_replay.yaml"),
        &timeline,
        &[],
    );
    timeline
}

/// `python3 -m http.server` on a free loopback port, serving `dir`; killed on drop.
pub(crate) struct FileServer {
    child: Child,
    pub(crate) url: String,
}

impl FileServer {
    pub(crate) fn start(dir: &Path) -> FileServer {
        let mut child = Command::new("python3")
            .args([
                "-u",
                "-m",
                "http.server",
                "0",
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
                if let Some(port) = line
                    .split(" port ")
                    .nth(1)
                    .and_then(|t| t.split_whitespace().next())
                {
                    let _ = tx.send(port.to_string());
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("http.server printed its port");
        FileServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn api_request_count(apisim: &ApiSim) -> u64 {
    let metrics = apisim.admin_get("/metrics");
    metrics
        .lines()
        .filter(|l| l.starts_with("apisim_requests_total{") && !l.contains("resource=\"-\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

pub(crate) fn curl(args: &[&str]) -> (u16, String) {
    let out = run_bounded(
        Command::new("curl")
            .args(["-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}"])
            .args(args),
        Duration::from_secs(15),
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

pub(crate) fn read_json(path: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

/// A child whose stderr lines arrive on a channel, killed on drop.
pub(crate) struct Watched {
    pub(crate) child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Watched {
    pub(crate) fn spawn(cmd: &mut Command) -> Watched {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Watched {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    pub(crate) fn wait_for(&mut self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                let hit = line.contains(needle);
                self.seen.push(line.clone());
                if hit {
                    return line;
                }
            }
        }
        panic!(
            "no line with {needle:?} within 60 s:\n{}",
            self.seen.join("\n")
        );
    }

    /// Waits for the exit (bounded) and returns its code and every stderr line.
    pub(crate) fn finish(mut self) -> (Option<i32>, String) {
        let deadline = std::time::Instant::now() + Duration::from_secs(180);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still running after 180 s"
            );
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
                self.seen.push(line);
            }
        };
        // The reader thread ends with the pipe; take what is left.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(line);
        }
        (status.code(), self.seen.join("\n"))
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

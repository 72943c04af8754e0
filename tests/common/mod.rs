//! Shared harness of the end-to-end tests: locate the real binaries, start
//! apisim and nginx on loopback, preprocess profiles. Every wait is bounded.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Workspace root (this package's manifest dir).
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A sample profile kept in the repository (`bench/profiles/<name>`).
pub fn fixture(name: &str) -> PathBuf {
    workspace().join("bench").join("profiles").join(name)
}

/// A binary of the workspace, from the target dir this test runs from.
/// `scripts/test.sh` builds them (`cargo build --workspace --bins`) before the tests.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/<test> -> target/debug/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: run `cargo build --workspace --bins` before the end-to-end tests",
        path.display()
    );
    path
}

/// Runs a command to completion with a deadline; panics with its output on timeout.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    wait_bounded(child, limit)
}

/// Collects a spawned child, killing it once `limit` has passed so that the test fails
/// (on its exit status) instead of hanging.
pub fn wait_bounded(child: Child, limit: Duration) -> Output {
    let (tx, rx) = mpsc::channel();
    let pid = child.id();
    let waiter = std::thread::spawn(move || {
        if rx.recv_timeout(limit).is_err() {
            // Deadline passed: kill so the test fails instead of hanging.
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    });
    let out = child.wait_with_output().expect("wait for child");
    let _ = tx.send(());
    let _ = waiter.join();
    out
}

/// `engine run TIMELINE ARGS --quiet --result RESULT`, spawned with stderr piped (for a test
/// that acts while it runs, then collects it with [`wait_bounded`]).
pub fn spawn_engine_run(timeline: &Path, args: &[&str], result: &Path) -> Child {
    Command::new(bin("engine"))
        .arg("run")
        .arg(timeline)
        .args(args)
        .args(["--quiet", "--result"])
        .arg(result)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn engine")
}

/// The JSON report at `path`.
pub fn read_report(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("report written"))
        .expect("report is JSON")
}

/// A running apisim process, killed on drop.
pub struct ApiSim {
    child: Child,
    /// The URL it printed (`listening on <url>`).
    pub url: String,
    /// The kubeconfig it wrote.
    pub kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl ApiSim {
    /// Starts `apisim --listen 127.0.0.1:0 --kubeconfig-out <tmp>` plus `extra` flags and waits
    /// (at most 20 s) for its `listening on` line.
    pub fn start(extra: &[&str]) -> ApiSim {
        Self::start_on("127.0.0.1:0", extra)
    }

    /// Like [`ApiSim::start`] on a given `listen` address (to restart on the same port).
    pub fn start_on(listen: &str, extra: &[&str]) -> ApiSim {
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        let mut child = Command::new(bin("apisim"))
            .args(["--listen", listen, "--kubeconfig-out"])
            .arg(&kubeconfig)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn apisim");
        let stdout = child.stdout.take().expect("apisim stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("apisim did not print `listening on` within 20 s");
            }
        };
        ApiSim {
            child,
            url,
            kubeconfig,
            _dir: dir,
        }
    }

    /// GET a path of apisim's admin API with curl (works for plain and TLS apisim).
    pub fn admin_get(&self, path: &str) -> String {
        let out = run_bounded(
            Command::new("curl")
                .args(["-sS", "-k", "--max-time", "10", "--fail"])
                .args(self.auth_args())
                .arg(format!("{}{}", self.url, path)),
            Duration::from_secs(15),
        );
        assert!(
            out.status.success(),
            "curl {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 admin answer")
    }

    fn auth_args(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.kubeconfig).unwrap_or_default();
        text.lines()
            .find_map(|l| l.trim().strip_prefix("token: "))
            .map(|t| {
                vec![
                    "-H".into(),
                    format!("Authorization: Bearer {}", t.trim().trim_matches('"')),
                ]
            })
            .unwrap_or_default()
    }
}

impl Drop for ApiSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `preprocess PROFILE -o OUT` with the real binary; panics with stderr on failure.
pub fn preprocess(profile: &Path, out: &Path, extra: &[&str]) {
    let o = run_bounded(
        Command::new(bin("preprocess"))
            .arg(profile)
            .arg("-o")
            .arg(out)
            .args(extra),
        Duration::from_secs(120),
    );
    assert!(
        o.status.success(),
        "preprocess failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

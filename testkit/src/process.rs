//! The workspace's binaries and children run with a deadline.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives one level below the workspace root")
        .to_path_buf()
}

/// A binary of the workspace (`engine`, `preprocess`, `apisim`...) in the target directory the
/// running test executable was built into. A binary of another package is built on first use
/// (`cargo build --bin NAME`): cargo builds only the tested package's own binaries for its tests.
pub fn bin(name: &str) -> PathBuf {
    // One build per name at a time, even when several tests ask at once.
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps")
        .join(name);
    if !path.exists() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--bin", name])
            .current_dir(workspace())
            .status()
            .unwrap_or_else(|e| panic!("run cargo build --bin {name}: {e}"));
        assert!(status.success(), "cargo build --bin {name} failed");
    }
    assert!(
        path.exists(),
        "{} not found: run `cargo build --workspace --bins` before the tests",
        path.display()
    );
    built.insert(name.to_string(), path.clone());
    path
}

/// Runs `cmd` to completion (stdout and stderr captured) within `limit`.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    wait_bounded(child, limit)
}

/// Runs `cmd` like [`run_bounded`] and fails the test unless it succeeded (naming the command
/// and its stderr); its stdout as text.
pub fn run_ok(cmd: &mut Command, limit: Duration) -> String {
    let what = format!("{cmd:?}");
    let out = run_bounded(cmd, limit);
    assert!(
        out.status.success(),
        "{what}: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Collects a spawned child and its piped output; past `limit` the child is killed and the
/// test fails, naming the deadline and what the child had printed, instead of hanging.
pub fn wait_bounded(child: Child, limit: Duration) -> Output {
    let (done, deadline) = mpsc::channel::<()>();
    let killed = Arc::new(AtomicBool::new(false));
    let pid = child.id();
    let watchdog = {
        let killed = killed.clone();
        std::thread::spawn(move || {
            if deadline.recv_timeout(limit).is_err() {
                killed.store(true, Ordering::SeqCst);
                // SAFETY: kill(2) on our own child's pid; it is not reaped before `done` is sent.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        })
    };
    let out = child.wait_with_output().expect("wait for child");
    let _ = done.send(());
    let _ = watchdog.join();
    assert!(
        !killed.load(Ordering::SeqCst),
        "child still running after {limit:?}: killed (hung?)\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A loopback port that was free a moment ago (bound to port 0, then released): for a server
/// that must be told its port, or a client that must find nothing listening.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

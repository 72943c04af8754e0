//! End to end: limits and signals before the start. Ctrl-C / SIGTERM during the preflight,
//! the wait for `--start-at` and a hung exec plugin end the run with exit 130 (the report of
//! what ran, nothing, where a run began); exec plugins are bounded by `--exec-timeout`; the
//! soft open-file limit is raised to the hard one, and a plan beyond it is refused up front;
//! zero durations and a `--start-at` too far in the past are refused. Each signal is sent
//! at a point the test observes (a connection accepted, a marker written by the plugin).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use crate::util::{
    bin, fixture, preprocess, read_report, run_bounded, spawn_engine_run, wait_bounded, ApiSim,
};
use serde_json::Value;

fn sample_timeline(dir: &Path) -> PathBuf {
    let timeline = dir.join("timeline.bin");
    preprocess(&fixture("kperf_sample_replay.yaml"), &timeline, &[]);
    timeline
}

/// Sends `signal` to `child` and collects it, killing it if it has not ended within 30 s.
fn signal_and_wait(child: Child, signal: i32) -> Output {
    // SAFETY: kill(2) on our own child, not yet reaped.
    unsafe { libc::kill(child.id() as i32, signal) };
    wait_bounded(child, Duration::from_secs(30))
}

/// Waits (at most 20 s) for `path` to exist.
fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_signal_during_the_preflight_ends_the_run_with_130() {
    let dir = tempfile::tempdir().expect("tempdir");
    let timeline = sample_timeline(dir.path());
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // A server that accepts and never answers: the preflight waits (up to 10 s).
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let result = dir.path().join(format!("preflight-{signal}.json"));
        let child = spawn_engine_run(&timeline, &["--server", &url, "--timeout", "60s"], &result);
        let (_held, _) = listener.accept().expect("the preflight connects");
        let out = signal_and_wait(child, signal);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "signal {signal}: {stderr}");
        let report = read_report(&result);
        assert_eq!(report["totalRun"], 0, "nothing was sent: {report}");
        assert_eq!(report["kreplay"]["run"]["unsentOnStop"], 9, "{report}");
    }
}

#[test]
fn a_signal_while_waiting_for_start_at_ends_the_run_with_130() {
    let dir = tempfile::tempdir().expect("tempdir");
    let timeline = sample_timeline(dir.path());
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let in_an_hour = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis()
        + 3_600_000;
    let result = dir.path().join("start-at.json");
    let child = spawn_engine_run(
        &timeline,
        &[
            "--server",
            &url,
            "--cores",
            "1",
            "--conns",
            "1",
            "--start-at",
            &in_an_hour.to_string(),
        ],
        &result,
    );
    // Answer the preflight; with one connection the engine then only waits for the start.
    let (mut conn, _) = listener.accept().expect("the preflight connects");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        conn.read_exact(&mut byte)
            .expect("read the preflight request");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"GET /version"), "{head:?}");
    conn.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    )
    .expect("answer");
    let out = signal_and_wait(child, libc::SIGTERM);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    let report = read_report(&result);
    assert_eq!(report["totalRun"], 0, "{report}");
    assert_eq!(report["kreplay"]["run"]["unsentOnStop"], 9, "{report}");
}

/// A kubeconfig whose user runs `plugin` (a shell script) against `server`.
fn exec_kubeconfig(dir: &Path, server: &str, plugin_body: &str) -> PathBuf {
    let plugin = dir.join("plugin.sh");
    std::fs::write(&plugin, format!("#!/bin/sh\n{plugin_body}\n")).expect("write plugin");
    let status = Command::new("chmod")
        .arg("+x")
        .arg(&plugin)
        .status()
        .expect("chmod");
    assert!(status.success());
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n\
             users:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n\
             \x20     command: {}\n      interactiveMode: Never\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n\
             current-context: x\n",
            plugin.display()
        ),
    )
    .expect("write kubeconfig");
    kubeconfig
}

#[test]
fn a_hung_exec_plugin_is_bounded_and_a_signal_ends_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let timeline = sample_timeline(dir.path());
    let sim = ApiSim::start(&["--plain", "--no-auth"]);
    let marker = dir.path().join("plugin-started");
    let kubeconfig = exec_kubeconfig(
        dir.path(),
        &sim.url,
        &format!("touch {}\nexec sleep 600", marker.display()),
    );
    let kc = kubeconfig.to_str().expect("utf-8");

    // --exec-timeout bounds it.
    let out = run_bounded(
        Command::new(bin("engine")).arg("run").arg(&timeline).args([
            "--kubeconfig",
            kc,
            "--exec-timeout",
            "1s",
            "--quiet",
        ]),
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("did not finish within"), "{stderr}");
    assert!(stderr.contains("--exec-timeout"), "{stderr}");

    // A signal ends the wait for it.
    std::fs::remove_file(&marker).expect("reset marker");
    let result = dir.path().join("exec.json");
    let child = spawn_engine_run(&timeline, &["--kubeconfig", kc], &result);
    wait_for_file(&marker);
    let out = signal_and_wait(child, libc::SIGINT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("stopped by a signal"), "{stderr}");
    let order: Value = serde_json::from_str(&sim.admin_get("/apisim/order")).expect("order JSON");
    assert_eq!(order["recorded"], 0, "nothing was sent");
}

#[test]
fn an_exec_plugin_printing_garbage_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let timeline = sample_timeline(dir.path());
    let sim = ApiSim::start(&["--plain", "--no-auth"]);
    let kubeconfig = exec_kubeconfig(dir.path(), &sim.url, "echo 'this is not JSON {'");
    let out = run_bounded(
        Command::new(bin("engine"))
            .arg("run")
            .arg(&timeline)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--quiet"),
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("plugin.sh"), "names the plugin: {stderr}");
    let order: Value = serde_json::from_str(&sim.admin_get("/apisim/order")).expect("order JSON");
    assert_eq!(order["recorded"], 0, "nothing was sent");
}

#[test]
fn bad_durations_and_a_start_in_the_past_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let timeline = sample_timeline(dir.path());
    let sim = ApiSim::start(&["--plain", "--no-auth"]);
    for (args, code, says) in [
        (vec!["--timeout", "0s"], 2, "greater than 0"),
        (vec!["--grace", "0ms"], 2, "greater than 0"),
        (vec!["--exec-timeout", "0"], 2, "greater than 0"),
        (vec!["--timeout=-1s"], 2, "invalid"),
        (vec!["--start-at", "0"], 1, "in the past"),
        (vec!["--start-at", "2020-01-01T00:00:00Z"], 1, "in the past"),
    ] {
        let out = run_bounded(
            Command::new(bin("engine"))
                .arg("run")
                .arg(&timeline)
                .args(["--server", &sim.url, "--quiet"])
                .args(&args),
            Duration::from_secs(60),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let order: Value = serde_json::from_str(&sim.admin_get("/apisim/order")).expect("order JSON");
    assert_eq!(order["recorded"], 0, "nothing was sent");
}

#[test]
fn the_open_file_limit_is_raised_and_a_plan_beyond_it_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let timeline = sample_timeline(dir.path());
    let sim = ApiSim::start(&["--plain", "--no-auth"]);
    let mut hard = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit with a valid pointer.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut hard) },
        0
    );
    let hard = hard.rlim_max;
    assert!(
        hard >= 1024,
        "this test needs a hard open-file limit of at least 1024 (ulimit -Hn is {hard})"
    );

    // Soft limit 128, 400 connections: runs only if the engine raises its soft limit.
    let result = dir.path().join("raised.json");
    let mut cmd = Command::new(bin("engine"));
    cmd.arg("run")
        .arg(&timeline)
        .args(["--server", &sim.url, "--quiet", "--cores", "1"])
        .args(["--conns", "400", "--result"])
        .arg(&result);
    // SAFETY: setrlimit only, between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let soft = libc::rlimit {
                rlim_cur: 128,
                rlim_max: hard,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &soft) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = run_bounded(&mut cmd, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = read_report(&result);
    assert_eq!(report["totalRun"], 9, "{report}");
    assert_eq!(report["totalFailed"], 0, "{report}");

    // Beyond the hard limit: refused before anything is sent.
    let too_many = (hard + 1000).to_string();
    let out = run_bounded(
        Command::new(bin("engine"))
            .arg("run")
            .arg(&timeline)
            .args(["--server", &sim.url, "--quiet", "--conns", &too_many]),
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("open-file limit"), "{stderr}");
    let order: Value = serde_json::from_str(&sim.admin_get("/apisim/order")).expect("order JSON");
    assert_eq!(order["recorded"], 9, "only the first run's requests");
}

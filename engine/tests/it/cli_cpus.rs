//! CPU selection: two engines on one host, each given other CPUs (by `--cpus` or by its affinity
//! mask), pin their executors to distinct CPUs; `--cores` above the CPUs allowed is refused; the
//! WATCH executor runs on the CPUs `--watch-cpus` gives it.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::*;
use preprocess::profile::ProfileRequest;

fn gets(n: i64, every_ms: i64) -> Vec<ProfileRequest> {
    profile()
        .each(0..n, |p, i| p.get("ns/p").at_ms(i * every_ms))
        .build()
}

/// The affinity (`Cpus_allowed_list`) of the engine's thread named `thread` (`kreplay-core-0`,
/// `kreplay-watches`), read from /proc while it runs: polled until it names one CPU (the thread
/// pins itself just after it starts, so its first reading can still be the inherited mask),
/// else the last reading.
fn thread_affinity(pid: u32, thread: &str) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = None;
    while Instant::now() < deadline {
        match read_thread_affinity(pid, thread) {
            Some(a) if !a.contains(['-', ',']) => return Some(a),
            Some(a) => last = Some(a),
            None => {}
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    last
}

fn read_thread_affinity(pid: u32, thread: &str) -> Option<String> {
    {
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for task in tasks.flatten() {
                let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
                // glommio names the thread `kreplay-core-0-<id>`; the kernel keeps 15 bytes.
                if comm.trim().starts_with(thread) {
                    let status = std::fs::read_to_string(task.path().join("status")).ok()?;
                    return status
                        .lines()
                        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                        .map(|v| v.trim().to_string());
                }
            }
        }
    }
    None
}

/// This process's CPUs and the first two of them (the tests need two).
fn two_allowed_cpus() -> (Vec<usize>, usize, usize) {
    let allowed = engine::cpu_set::allowed_cpus();
    assert!(
        allowed.len() >= 2,
        "this test needs 2 CPUs in the affinity mask, has {allowed:?}"
    );
    let (first, second) = (allowed[0], allowed[1]);
    (allowed, first, second)
}

#[test]
fn two_engines_on_one_host_use_distinct_cpus() {
    let (_, first, second) = two_allowed_cpus();
    let server = TestServer::start(Behavior::default());
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    // 3 s of requests, so both engines run at the same time while their threads are inspected.
    let tl = write_timeline(dir_a.path(), &spec(1, 1), &gets(30, 100));
    let url = server.url();
    // A: told by --cpus. B: no flag, but started inside a one-CPU affinity mask (taskset).
    let a = spawn_engine(
        &tl,
        dir_a.path(),
        &["--server", &url, "--cpus", &second.to_string()],
        &[],
    );
    let mut b = Command::new("taskset");
    b.arg("-c")
        .arg(first.to_string())
        .arg(env!("CARGO_BIN_EXE_engine"))
        .arg("run")
        .arg(&tl)
        .arg("--result")
        .arg(dir_b.path().join("out").join("report.json"))
        .args(["--quiet", "--no-preflight", "--server", &url])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let b = b.spawn().expect("taskset (util-linux) runs the engine");
    let a_affinity = thread_affinity(a.id(), "kreplay-core-0");
    let b_affinity = thread_affinity(b.id(), "kreplay-core-0");
    let (a_status, a_err) = wait_engine(a, Duration::from_secs(60));
    let (b_status, b_err) = wait_engine(b, Duration::from_secs(60));
    assert!(a_status.success(), "{a_err}");
    assert!(b_status.success(), "{b_err}");
    assert_eq!(a_affinity, Some(second.to_string()), "A's executor thread");
    assert_eq!(b_affinity, Some(first.to_string()), "B's executor thread");
    let report_a = read_run(a_status, a_err, dir_a.path()).report.unwrap();
    let report_b = read_run(b_status, b_err, dir_b.path()).report.unwrap();
    assert_eq!(
        report_a["kreplay"]["config"]["cpus"],
        serde_json::json!([second])
    );
    assert_eq!(
        report_b["kreplay"]["config"]["cpus"],
        serde_json::json!([first])
    );
    assert_eq!(num(&report_a, "totalRun"), 30);
    assert_eq!(num(&report_b, "totalRun"), 30);
}

#[test]
fn more_cores_than_allowed_cpus_is_refused_before_anything_is_sent() {
    let allowed = engine::cpu_set::allowed_cpus();
    let server = TestServer::start(Behavior::default());
    let dir = tempfile::tempdir().unwrap();
    let tl = write_timeline(dir.path(), &spec(1, 1), &gets(3, 1));
    let too_many = (allowed.len() + 1).to_string();
    let run = run_engine(
        &tl,
        dir.path(),
        &["--server", &server.url(), "--cores", &too_many],
        &[],
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "--cores {too_many} asks for more executors than CPUs"
        )),
        "{}",
        run.stderr
    );
    assert!(server.requests().is_empty(), "nothing may be sent");
    let run = run_engine(
        &tl,
        dir.path(),
        &["--server", &server.url(), "--cpus", "100000"],
        &[],
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("CPU 100000"), "{}", run.stderr);
}

/// A WATCH at the start, then 30 GETs over 3 s: the WATCH executor lives as long as the GETs.
fn a_watch_beside_gets() -> Vec<ProfileRequest> {
    profile()
        .watch("ns")
        .path("/api/v1/namespaces/ns/pods?watch=true")
        .at_ms(0)
        .each(0..30, |p, i| p.get("ns/p").at_ms(10 + i * 100))
        .build()
}

#[test]
fn the_watch_executor_runs_on_the_cpus_it_is_given_else_on_those_no_core_uses() {
    let (allowed, core_cpu, watch_cpu) = two_allowed_cpus();
    let server = TestServer::start(Behavior::default());
    let dir = tempfile::tempdir().unwrap();
    let tl = write_timeline(dir.path(), &spec(1, 1), &a_watch_beside_gets());
    let (core_arg, watch_arg) = (core_cpu.to_string(), watch_cpu.to_string());
    let child = spawn_engine(
        &tl,
        dir.path(),
        &[
            "--server",
            &server.url(),
            "--cpus",
            &core_arg,
            "--watch-cpus",
            &watch_arg,
        ],
        &[],
    );
    let pid = child.id();
    let core_affinity = thread_affinity(pid, "kreplay-core-0");
    let watch_affinity = thread_affinity(pid, "kreplay-watches");
    let (status, stderr) = wait_engine(child, Duration::from_secs(60));
    assert!(status.success(), "{stderr}");
    assert_eq!(core_affinity, Some(core_arg), "the core's thread");
    assert_eq!(
        watch_affinity,
        Some(watch_arg.clone()),
        "the WATCH executor's thread"
    );
    let report = read_run(status, stderr, dir.path()).report.unwrap();
    let config = &report["kreplay"]["config"];
    assert_eq!(config["cpus"], serde_json::json!([core_cpu]), "{config}");
    assert_eq!(
        config["watchCpus"],
        serde_json::json!([watch_cpu]),
        "{config}"
    );
    assert_eq!(num(&report, "totalRun"), 31);
    assert_eq!(
        report["kreplay"]["verbs"]["WATCH"]["count"].as_u64(),
        Some(1)
    );
    // Without --watch-cpus: the CPUs no core uses (one core on a mask of two or more); with
    // --cpus naming the core's CPU alone, that one.
    let dir = tempfile::tempdir().unwrap();
    let run = run_engine(
        &tl,
        dir.path(),
        &["--server", &server.url(), "--cores", "1"],
        &[],
    );
    assert!(run.status.success(), "{}", run.stderr);
    let config = &run.report.unwrap()["kreplay"]["config"];
    let core = config["cpus"][0].as_u64().expect("one core's CPU") as usize;
    let spare: Vec<usize> = allowed.iter().copied().filter(|&c| c != core).collect();
    assert_eq!(config["watchCpus"], serde_json::json!(spare), "{config}");
    let dir = tempfile::tempdir().unwrap();
    let run = run_engine(
        &tl,
        dir.path(),
        &["--server", &server.url(), "--cpus", &watch_arg],
        &[],
    );
    assert!(run.status.success(), "{}", run.stderr);
    let config = &run.report.unwrap()["kreplay"]["config"];
    assert_eq!(
        config["watchCpus"],
        serde_json::json!([watch_cpu]),
        "{config}"
    );
}

#[test]
fn watch_cpus_outside_the_mask_or_beside_the_cores_executor_are_refused() {
    let server = TestServer::start(Behavior::default());
    let dir = tempfile::tempdir().unwrap();
    let tl = write_timeline(dir.path(), &spec(1, 1), &a_watch_beside_gets());
    let url = server.url();
    let run = run_engine(
        &tl,
        dir.path(),
        &["--server", &url, "--watch-cpus", "100000"],
        &[],
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("--watch-cpus names CPU 100000"),
        "{}",
        run.stderr
    );
    let own_cpu = engine::cpu_set::allowed_cpus()[0].to_string();
    let run = run_engine(
        &tl,
        dir.path(),
        &[
            "--server",
            &url,
            "--watch-cpus",
            &own_cpu,
            "--watch-executor",
            "cores",
        ],
        &[],
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("--watch-executor cores"),
        "{}",
        run.stderr
    );
    assert!(server.requests().is_empty(), "nothing may be sent");
}

//! `engine job run|collect` on `apisim --run-jobs`: a 3-runner lab and what goes wrong in one.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::distributed::manifests::manifest;
use crate::distributed::support::*;
use crate::util::order;
use crate::util::{bin, preprocess, run_bounded, run_ok, ApiSim};

/// A cluster stand-in: apisim carrying out Jobs with the real engine binary, a file server with
/// the timeline, and the generated profile's facts.
struct JobLab {
    dir: tempfile::TempDir,
    _files: FileServer,
    apisim: ApiSim,
    profile: PathBuf,
    timeline: PathBuf,
    url: String,
}

impl JobLab {
    /// Three runners, every request due at t=0 (so each runner's earliest send lag is its
    /// start's lateness).
    fn start() -> JobLab {
        let dir = tempfile::tempdir().unwrap();
        let served = dir.path().join("served");
        std::fs::create_dir(&served).unwrap();
        let profile = dir.path().join("p.yaml");
        let cfg = bench::profile_gen::GenConfig {
            requests: LAB_REQUESTS,
            runners: 3,
            conns: 2,
            objects: 90,
            namespaces: 3,
            watches: Some(0),
            shape: bench::profile_gen::RateShape::AllAtZero,
            seed: 15,
            ..bench::profile_gen::GenConfig::default()
        };
        bench::profile_gen::write_profile_to_path(&cfg, profile.to_str().unwrap()).unwrap();
        let timeline = served.join("t.bin");
        preprocess(&profile, &timeline, &[]);
        let files = FileServer::start(&served);
        let engine = bin("engine");
        let pods = dir.path().join("pods");
        std::fs::create_dir(&pods).unwrap();
        let apisim = ApiSim::start(&[
            "--run-jobs",
            engine.to_str().unwrap(),
            "--pods-dir",
            pods.to_str().unwrap(),
            // The timeline's directory is also the claim `data`, for runners reading it from a PVC.
            "--pvc",
            &format!("data={}", served.display()),
            "--record-requests",
            "100000",
        ]);
        let url = format!("{}/t.bin", files.url);
        JobLab {
            dir,
            _files: files,
            apisim,
            profile,
            timeline,
            url,
        }
    }

    fn result(&self) -> PathBuf {
        self.dir.path().join("merged.json")
    }

    /// `engine job run` (or `collect`) arguments against this lab.
    fn job_run(&self, name: &str, extra: &[&str]) -> Command {
        let mut cmd = Command::new(bin("engine"));
        cmd.args(["job", "run", "--kubeconfig"])
            .arg(&self.apisim.kubeconfig)
            .args(["--timeline", &self.url, "--timeline-file"])
            .arg(&self.timeline)
            .args([
                "--image",
                "kreplay:test",
                "--namespace",
                "kreplay",
                "--name",
                name,
            ])
            .args(["--start-in", "4s", "--collect-timeout", "120s", "--result"])
            .arg(self.result())
            .args(extra)
            .args(["--", "--cores", "1", "--metric-base", "none"]);
        cmd
    }

    /// `engine job collect` of Job `name` in this lab (bounded).
    fn collect(&self, name: &str, extra: &[&str]) -> std::process::Output {
        run_bounded(
            Command::new(bin("engine"))
                .args(["job", "collect", "--name", name, "--namespace", "kreplay"])
                .arg("--kubeconfig")
                .arg(&self.apisim.kubeconfig)
                .args(extra)
                .arg("--result")
                .arg(self.result()),
            Duration::from_secs(180),
        )
    }

    fn kubectl(&self, args: &[&str]) -> String {
        run_ok(
            Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&self.apisim.kubeconfig)
                .args(args),
            Duration::from_secs(30),
        )
    }

    /// What the runners sent: (method, target, body digest) of every replayed request apisim
    /// recorded (the collector's own calls and the preflight left out).
    fn replayed(apisim: &ApiSim) -> Vec<(String, String, String)> {
        let log: Value = serde_json::from_str(&apisim.admin_get("/apisim/requests")).unwrap();
        let mut out: Vec<_> = log["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["user_agent"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("kreplay/"))
            })
            .filter(|r| r["target"] != "/version")
            .map(|r| {
                (
                    r["method"].as_str().unwrap().to_string(),
                    r["target"].as_str().unwrap().to_string(),
                    r["body_fnv64"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        out.sort();
        out
    }
}

const LAB_REQUESTS: u64 = 600;

/// The earliest send lag in a report, µs (from its exact `sendLag` histogram).
fn earliest_send_lag_us(report: &Value) -> u64 {
    let h = engine::report::kreplay::decode_histogram(
        report["kreplay"]["histograms"]["sendLag"].as_str().unwrap(),
    )
    .unwrap();
    h.min()
}

fn verb_counts(report: &Value) -> Vec<(String, Value, Value)> {
    report["kreplay"]["verbs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(v, f)| (v.clone(), f["count"].clone(), f["errors"].clone()))
        .collect()
}

#[test]
fn a_three_runner_job_replays_every_request_once_and_merges_like_one_process() {
    let _serial = one_at_a_time();
    let lab = JobLab::start();
    let out = run_bounded(&mut lab.job_run("e2e", &[]), Duration::from_secs(180));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "engine job run: {}\n{stderr}",
        out.status
    );
    let merged = read_json(&lab.result());
    assert_eq!(merged["totalRun"], LAB_REQUESTS, "{stderr}");
    assert_eq!(merged["totalFailed"], 0);
    assert_eq!(merged["kreplay"]["config"]["mergedReports"], 3);
    assert!(merged["kreplay"]["config"].get("missingRunners").is_none());

    // The same timeline replayed by one process against a fresh server.
    let single_sim = ApiSim::start(&["--record-requests", "100000"]);
    let single_report = lab.dir.path().join("single.json");
    let o = run_bounded(
        Command::new(bin("engine"))
            .arg("run")
            .arg(&lab.timeline)
            .args([
                "--quiet",
                "--cores",
                "1",
                "--metric-base",
                "none",
                "--kubeconfig",
            ])
            .arg(&single_sim.kubeconfig)
            .arg("--result")
            .arg(&single_report),
        Duration::from_secs(120),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let single = read_json(&single_report);
    for field in ["total", "totalRun", "totalFailed", "runnerCount"] {
        assert_eq!(merged[field], single[field], "{field}");
    }
    assert_eq!(verb_counts(&merged), verb_counts(&single));
    let keys = |r: &Value| -> Vec<String> {
        r["percentileLatenciesByURL"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    assert_eq!(keys(&merged), keys(&single));

    // Every request of the profile reached the server exactly once.
    let distributed = JobLab::replayed(&lab.apisim);
    assert_eq!(distributed.len() as u64, LAB_REQUESTS);
    assert_eq!(distributed, JobLab::replayed(&single_sim));
    assert_eq!(order::requests_of(&lab.profile).len() as u64, LAB_REQUESTS);

    // The runners started together: every request was due at the common start, so a runner's
    // earliest send lag is how late it began.
    let runners = lab.result().with_extension("json.runners");
    for i in 0..3 {
        let report = read_json(&runners.join(format!("runner-{i}.json")));
        assert_eq!(report["kreplay"]["config"]["runnerIndex"], i);
        let lag = earliest_send_lag_us(&report);
        eprintln!("runner {i}: first send {lag} µs after the common start");
        assert!(
            lag <= 5_000,
            "runner {i} began {lag} µs after the common start"
        );
    }

    // Nothing is left behind.
    assert_eq!(
        lab.kubectl(&["get", "jobs", "-n", "kreplay", "-o", "name"])
            .trim(),
        ""
    );
    assert_eq!(
        lab.kubectl(&["get", "pods", "-n", "kreplay", "-o", "name"])
            .trim(),
        ""
    );
}

/// The pid of the runner process for `index` of the lab's Job (a child of apisim).
fn runner_pid(url: &str, index: u32) -> i32 {
    let env_marker = format!("JOB_COMPLETION_INDEX={index}");
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let has = |bytes: &[u8], text: &str| bytes.split(|b| *b == 0).any(|p| p == text.as_bytes());
        if has(&cmdline, url) && has(&environ, &env_marker) {
            return pid;
        }
    }
    panic!("no runner process for index {index}");
}

#[test]
fn a_killed_runner_is_named_and_the_others_are_merged() {
    let _serial = one_at_a_time();
    let lab = JobLab::start();
    let mut run = Watched::spawn(&mut lab.job_run("killed", &[]));
    run.wait_for("runner 1: Running");
    let pid = runner_pid(&lab.url, 1);
    // SAFETY: kill(2) of a process this test's apisim started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let (code, stderr) = run.finish();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("runner 1: FAILED"), "{stderr}");
    assert!(
        stderr.contains("runners [1] failed or were not collected"),
        "{stderr}"
    );
    let merged = read_json(&lab.result());
    assert_eq!(
        merged["kreplay"]["config"]["missingRunners"],
        serde_json::json!([1])
    );
    assert_eq!(merged["kreplay"]["config"]["mergedReports"], 2);
    let runners = lab.result().with_extension("json.runners");
    let share = |i: u32| {
        read_json(&runners.join(format!("runner-{i}.json")))["total"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(merged["totalRun"].as_u64().unwrap(), share(0) + share(2));
    assert!(share(0) + share(2) < LAB_REQUESTS);
}

#[test]
fn an_interrupted_collection_is_completed_by_engine_job_collect() {
    let _serial = one_at_a_time();
    let lab = JobLab::start();
    let mut run = Watched::spawn(&mut lab.job_run("resumed", &[]));
    run.wait_for("runner 2: Running");
    // SAFETY: kill(2) of this test's own child.
    assert_eq!(
        unsafe { libc::kill(run.child.id() as i32, libc::SIGINT) },
        0
    );
    let (code, stderr) = run.finish();
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        stderr.contains("engine job collect --name resumed"),
        "{stderr}"
    );
    // The Job is kept for the collection to come.
    assert_eq!(
        lab.kubectl(&["get", "jobs", "-n", "kreplay", "-o", "name"])
            .trim(),
        "job.batch/resumed"
    );

    let out = lab.collect("resumed", &["--collect-timeout", "120s"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "engine job collect: {stderr}");
    let merged = read_json(&lab.result());
    assert_eq!(merged["totalRun"], LAB_REQUESTS, "{stderr}");
    assert_eq!(
        lab.kubectl(&["get", "jobs", "-n", "kreplay", "-o", "name"])
            .trim(),
        ""
    );
    // Collecting again finds the Job gone and merges what it kept.
    let again = lab.collect("resumed", &[]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(read_json(&lab.result())["totalRun"], LAB_REQUESTS);
}

#[test]
fn runners_can_authenticate_with_a_kubeconfig_from_a_secret() {
    let _serial = one_at_a_time();
    let lab = JobLab::start();
    // From a file: kubectl sends objects read from files as JSON (apisim reads no protobuf).
    use base64::Engine as _;
    let secret = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "runner-kubeconfig", "namespace": "kreplay"},
        "data": {"config": base64::engine::general_purpose::STANDARD
            .encode(std::fs::read(&lab.apisim.kubeconfig).unwrap())},
    });
    let secret_file = lab.dir.path().join("secret.json");
    std::fs::write(&secret_file, secret.to_string()).unwrap();
    lab.kubectl(&["create", "-f", secret_file.to_str().unwrap()]);
    let mut cmd = lab.job_run("with-secret", &["--kubeconfig-secret", "runner-kubeconfig"]);
    let out = run_bounded(&mut cmd, Duration::from_secs(180));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The pods get no service-account token (automountServiceAccountToken: false), so a
    // complete replay means the runners used the Secret's kubeconfig.
    assert!(out.status.success(), "{stderr}");
    assert_eq!(read_json(&lab.result())["totalRun"], LAB_REQUESTS);
    let manifest = manifest(&[
        "--timeline",
        "https://e/t.bin",
        "--runners",
        "1",
        "--image",
        "r/k:1",
        "--kubeconfig-secret",
        "s",
    ]);
    assert!(
        manifest.contains("automountServiceAccountToken: false"),
        "{manifest}"
    );
}

#[test]
fn runners_can_read_the_timeline_from_a_persistent_volume_claim() {
    let _serial = one_at_a_time();
    let lab = JobLab::start();
    let out = run_bounded(
        Command::new(bin("engine"))
            .args(["job", "run", "--kubeconfig"])
            .arg(&lab.apisim.kubeconfig)
            .args(["--pvc", "data", "--timeline", "t.bin", "--timeline-file"])
            .arg(&lab.timeline)
            .args([
                "--image",
                "kreplay:test",
                "--namespace",
                "kreplay",
                "--name",
                "from-pvc",
            ])
            .args(["--start-in", "4s", "--collect-timeout", "120s", "--result"])
            .arg(lab.result())
            .args(["--", "--cores", "1"]),
        Duration::from_secs(180),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(read_json(&lab.result())["totalRun"], LAB_REQUESTS);
    // Every request of the profile arrived once.
    assert_eq!(JobLab::replayed(&lab.apisim).len() as u64, LAB_REQUESTS);
}

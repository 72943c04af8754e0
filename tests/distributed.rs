//! Distributed replays: `engine job manifest` output validated against Kubernetes' schemas,
//! `engine run URL` downloading and checking a timeline, and `engine job run|collect` carried out
//! end to end by `apisim --run-jobs` (each pod a local process of the real engine binary).

mod common;
#[path = "common/order.rs"]
mod order;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{bin, preprocess, run_bounded, workspace, ApiSim};

/// The tests of this file run one at a time: the start-skew check measures how late runner
/// processes begin, which another test's processes on the same two CPUs would distort.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}
use serde_json::Value;

/// The Kubernetes versions whose schemas every manifest must pass: 1.30 to the newest that
/// `kubernetes-validate` ships.
fn kubernetes_versions() -> Vec<String> {
    let out = run_bounded(
        Command::new("kubernetes-validate").arg("--help"),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "kubernetes-validate is needed (scripts/test.sh installs it with pip): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let help = String::from_utf8_lossy(&out.stdout).replace('\n', " ");
    let newest = help
        .split("Defaults to ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|v| {
            v.trim_end_matches('.')
                .split('.')
                .nth(1)?
                .parse::<u32>()
                .ok()
        })
        .expect("kubernetes-validate --help names its default (newest) version");
    assert!(
        newest >= 30,
        "kubernetes-validate's newest version is 1.{newest}"
    );
    (30..=newest).map(|m| format!("1.{m}.0")).collect()
}

fn validate(file: &Path, version: &str) -> (bool, String) {
    let out = run_bounded(
        Command::new("kubernetes-validate")
            .args(["--strict", "-k", version])
            .arg(file),
        Duration::from_secs(120),
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn sample_timeline(dir: &Path) -> PathBuf {
    let timeline = dir.join("t.bin");
    preprocess(
        &workspace().join("bench/profiles/kperf_sample_replay.yaml"),
        &timeline,
        &[],
    );
    timeline
}

fn manifest(args: &[&str]) -> String {
    let out = run_bounded(
        Command::new(bin("engine"))
            .args(["job", "manifest"])
            .args(args),
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "engine job manifest {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 manifest")
}

#[test]
fn manifests_validate_against_every_supported_kubernetes_version() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let timeline = sample_timeline(dir.path());
    let t = timeline.to_str().unwrap();
    let variants: Vec<(&str, Vec<&str>)> = vec![
        (
            "minimal",
            vec![
                "--timeline",
                "https://example.org/t.bin",
                "--runners",
                "3",
                "--image",
                "r/kreplay:1",
            ],
        ),
        (
            "every option",
            vec![
                "--timeline",
                "https://example.org/t.bin",
                "--timeline-file",
                t,
                "--image",
                "r/kreplay:1",
                "--name",
                "lab-42",
                "--namespace",
                "bench",
                "--rbac",
                "--cpu",
                "2",
                "--memory",
                "2Gi",
                "--node-selector",
                "pool=bench",
                "--node-affinity",
                "zone=a,b",
                "--toleration",
                "dedicated=bench:NoSchedule",
                "--toleration",
                "gpu",
                "--toleration",
                "*",
                "--start-in",
                "2m",
                "--serve-report-for",
                "1h",
                "--",
                "--timing",
                "relaxed",
            ],
        ),
        (
            "pvc and kubeconfig secret",
            vec![
                "--timeline",
                "timelines/t.bin",
                "--pvc",
                "kreplay-data",
                "--runners",
                "8",
                "--image",
                "r/kreplay:1",
                "--kubeconfig-secret",
                "kreplay-kubeconfig",
                "--service-account",
                "replayer",
            ],
        ),
    ];
    let versions = kubernetes_versions();
    for (what, args) in &variants {
        let text = manifest(args);
        assert!(text.contains("completionMode: Indexed"), "{what}: {text}");
        let file = dir.path().join("job.yaml");
        std::fs::write(&file, &text).unwrap();
        for v in &versions {
            let (ok, out) = validate(&file, v);
            assert!(ok, "{what} fails Kubernetes {v}'s schema:\n{out}\n{text}");
        }
    }
    // The validator does reject what the schema does not allow (so the passes above mean something).
    let broken = manifest(&variants[0].1).replace(
        "restartPolicy: Never",
        "restartPolicy: Never\n      bogusField: 1",
    );
    let file = dir.path().join("broken.yaml");
    std::fs::write(&file, broken).unwrap();
    let (ok, _) = validate(&file, versions.last().unwrap());
    assert!(
        !ok,
        "a manifest with an unknown field passed strict validation"
    );
}

#[test]
fn manifest_sets_runners_start_digest_and_options_from_the_timeline() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let timeline = sample_timeline(dir.path());
    let digest = engine::source::fetch::file_sha256(&timeline).unwrap();
    let text = manifest(&[
        "--timeline",
        "https://example.org/t.bin",
        "--timeline-file",
        timeline.to_str().unwrap(),
        "--image",
        "r/kreplay:1",
        "--start-at",
        "2030-01-02T03:04:05Z",
        "--rbac",
    ]);
    let jobs: Vec<Value> = text
        .split("\n---\n")
        .map(|doc| serde_saphyr::from_str::<Value>(doc).expect("YAML document"))
        .collect();
    let job = jobs.iter().find(|d| d["kind"] == "Job").expect("a Job");
    // The sample profile has 2 runners.
    assert_eq!(job["spec"]["completions"], 2);
    assert_eq!(job["spec"]["parallelism"], 2);
    // A failed runner is reported, never retried, and does not stop the others.
    assert_eq!(job["spec"]["backoffLimitPerIndex"], 0);
    assert!(job["spec"].get("backoffLimit").is_none());
    let args: Vec<&str> = job["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let after = |flag: &str| args[args.iter().position(|a| *a == flag).unwrap() + 1];
    assert_eq!(after("--start-at"), "2030-01-02T03:04:05Z");
    assert_eq!(after("--timeline-sha256"), digest);
    let role = jobs
        .iter()
        .find(|d| d["kind"] == "ClusterRole")
        .expect("a ClusterRole");
    // Exactly the sample's verbs (get, list, create, delete), plus /version for the preflight.
    let verbs: Vec<&str> = role["rules"][0]["verbs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(verbs, ["create", "delete", "get", "list"]);
    // Without --rbac nothing cluster-wide is emitted.
    let plain = manifest(&[
        "--timeline",
        "https://e/t.bin",
        "--runners",
        "1",
        "--image",
        "r/k:1",
    ]);
    assert!(!plain.contains("ClusterRole"), "{plain}");
    // No runner count, no manifest.
    let out = run_bounded(
        Command::new(bin("engine")).args([
            "job",
            "manifest",
            "--timeline",
            "https://e/t.bin",
            "--image",
            "r/k:1",
        ]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--runners"));
}

/// `python3 -m http.server` on a free loopback port, serving `dir`; killed on drop.
struct FileServer {
    child: Child,
    url: String,
}

impl FileServer {
    fn start(dir: &Path) -> FileServer {
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

fn api_request_count(apisim: &ApiSim) -> u64 {
    let metrics = apisim.admin_get("/metrics");
    metrics
        .lines()
        .filter(|l| l.starts_with("apisim_requests_total{") && !l.contains("resource=\"-\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[test]
fn engine_run_downloads_a_timeline_and_refuses_a_wrong_digest() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    std::fs::create_dir(&served).unwrap();
    let timeline = sample_timeline(&served);
    let digest = engine::source::fetch::file_sha256(&timeline).unwrap();
    let files = FileServer::start(&served);
    let apisim = ApiSim::start(&[]);
    let url = format!("{}/t.bin", files.url);
    let downloads = dir.path().join("downloads");
    std::fs::create_dir(&downloads).unwrap();

    let wrong = "0".repeat(64);
    let out = run_bounded(
        Command::new(bin("engine"))
            .args([
                "run",
                &url,
                "--timeline-sha256",
                &wrong,
                "--quiet",
                "--kubeconfig",
            ])
            .arg(&apisim.kubeconfig)
            .arg("--download-dir")
            .arg(&downloads)
            .arg("--result")
            .arg(dir.path().join("wrong.json")),
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not the expected"), "{stderr}");
    assert_eq!(
        api_request_count(&apisim),
        0,
        "requests were sent from a timeline that failed its digest"
    );
    assert_eq!(
        std::fs::read_dir(&downloads).unwrap().count(),
        0,
        "the damaged download was kept"
    );

    let report = dir.path().join("r.json");
    let out = run_bounded(
        Command::new(bin("engine"))
            .args([
                "run",
                &url,
                "--timeline-sha256",
                &digest.to_uppercase(),
                "--quiet",
                "--kubeconfig",
            ])
            .arg(&apisim.kubeconfig)
            .arg("--download-dir")
            .arg(&downloads)
            .arg("--result")
            .arg(&report),
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["totalRun"], 9, "the sample profile has 9 requests");
    let kept: Vec<_> = std::fs::read_dir(&downloads)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&kept[0]).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        engine::source::fetch::file_sha256(&kept[0]).unwrap(),
        digest
    );
}

fn curl(args: &[&str]) -> (u16, String) {
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

#[test]
fn a_runner_serves_its_state_then_its_report_until_collected() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let timeline = sample_timeline(dir.path());
    let apisim = ApiSim::start(&[]);
    let start_at = std::time::SystemTime::now() + Duration::from_secs(3);
    let start_ms = start_at
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    let mut child = Command::new(bin("engine"))
        .arg("run")
        .arg(&timeline)
        .args([
            "--quiet",
            "--start-at",
            &start_ms,
            "--serve-report",
            "127.0.0.1:0",
            "--kubeconfig",
        ])
        .arg(&apisim.kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let next_line_with = |needle: &str| loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no line with {needle:?} within 30 s"));
        if line.contains(needle) {
            return line;
        }
    };
    let line = next_line_with("serving the run's state and report on ");
    let addr = line.rsplit(' ').next().unwrap().to_string();
    let base = format!("http://{addr}");
    // Before the start instant: running, no report.
    let (code, body) = curl(&[&format!("{base}/status")]);
    assert_eq!(code, 200);
    assert!(body.contains("\"running\""), "{body}");
    assert_eq!(curl(&[&format!("{base}/report")]).0, 409);
    assert_eq!(curl(&["-X", "POST", &format!("{base}/collected")]).0, 409);
    next_line_with("report ready for collection");
    let (code, status) = curl(&[&format!("{base}/status")]);
    assert_eq!(code, 200);
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["state"], "done");
    assert_eq!(status["exitCode"], 0);
    let (code, report) = curl(&[&format!("{base}/report")]);
    assert_eq!(code, 200);
    assert_eq!(
        engine::source::fetch::sha256_hex(report.as_bytes()),
        status["sha256"].as_str().unwrap()
    );
    let report: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["totalRun"], 9);
    // The runner is still there: it ends only once told its report is safe.
    assert!(
        child.try_wait().unwrap().is_none(),
        "the runner exited before collection"
    );
    assert_eq!(curl(&["-X", "POST", &format!("{base}/collected")]).0, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the runner did not exit after collection"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}

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

const LAB_REQUESTS: u64 = 600;

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
        let out = run_bounded(
            Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&self.apisim.kubeconfig)
                .args(args),
            Duration::from_secs(30),
        );
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
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

fn read_json(path: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

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

/// A child whose stderr lines arrive on a channel, killed on drop.
struct Watched {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Watched {
    fn spawn(cmd: &mut Command) -> Watched {
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

    fn wait_for(&mut self, needle: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                let hit = line.contains(needle);
                self.seen.push(line);
                if hit {
                    return;
                }
            }
        }
        panic!(
            "no line with {needle:?} within 60 s:\n{}",
            self.seen.join("\n")
        );
    }

    /// Waits for the exit (bounded) and returns its code and every stderr line.
    fn finish(mut self) -> (Option<i32>, String) {
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
fn a_100_mb_report_is_collected_intact_and_its_runner_released() {
    let _serial = one_at_a_time();
    use engine::job::api::KubeClient;
    use engine::job::report_server::{ReportServer, DIGEST_HEADER};
    let dir = tempfile::tempdir().unwrap();
    let server = ReportServer::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://{}\n\
             users:\n- name: u\n  user: {{}}\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n\
             current-context: x\n",
            server.addr()
        ),
    )
    .unwrap();
    let access = engine::kubeconfig::resolve(&engine::kubeconfig::KubeconfigOptions {
        kubeconfig: Some(kubeconfig),
        context: None,
    })
    .unwrap();
    let client = KubeClient::new(&access).unwrap();
    // A report-like body of 100 MB whose bytes all differ from their neighbours' pattern.
    let mut report = String::with_capacity(100 << 20);
    let mut i = 0u64;
    while report.len() < 100 << 20 {
        report.push_str(&format!("{{\"n\":{i}}},"));
        i += 1;
    }
    let expected = engine::source::fetch::sha256_hex(report.as_bytes());
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let waiter =
            s.spawn(|| server.publish_and_wait(report, 0, Duration::from_secs(120), &stop));
        let dest = dir.path().join("r.json");
        // The report is published from the other thread: poll /status until it is done.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let status: Value = client.get("/status").unwrap();
            if status["state"] == "done" {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "never done");
            std::thread::sleep(Duration::from_millis(20));
        }
        let (digest, bytes) = client
            .download("/report", DIGEST_HEADER, &dest, Duration::from_secs(120))
            .unwrap();
        assert!(bytes >= 100 << 20);
        assert_eq!(digest.as_deref(), Some(expected.as_str()));
        assert_eq!(engine::source::fetch::file_sha256(&dest).unwrap(), expected);
        client
            .call(hyper::Method::POST, "/collected", None)
            .unwrap();
        assert!(
            waiter.join().unwrap(),
            "the runner was not told it was collected"
        );
    });
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

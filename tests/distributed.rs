//! Distributed replays: `engine job manifest` output validated against Kubernetes' schemas,
//! `engine run URL` downloading and checking a timeline, and `engine job run|collect` carried out
//! end to end by `apisim --run-jobs` (each pod a local process of the real engine binary).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{bin, preprocess, run_bounded, workspace, ApiSim};
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
    assert_eq!(job["spec"]["backoffLimit"], 0);
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

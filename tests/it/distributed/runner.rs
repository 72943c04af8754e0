//! The runner's side: a timeline downloaded by URL, the report served until collected.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::distributed::support::*;
use crate::util::{bin, run_bounded, ApiSim};

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
    let mut cmd = Command::new(bin("engine"));
    cmd.arg("run")
        .arg(&timeline)
        .args([
            "--quiet",
            "--start-at",
            &start_ms,
            "--serve-report",
            "127.0.0.1:0",
            "--kubeconfig",
        ])
        .arg(&apisim.kubeconfig);
    let mut runner = Watched::spawn(&mut cmd);
    let line = runner.wait_for("serving the run's state and report on ");
    let addr = line.rsplit(' ').next().unwrap().to_string();
    let base = format!("http://{addr}");
    // Before the start instant: running, no report.
    let (code, body) = curl(&[&format!("{base}/status")]);
    assert_eq!(code, 200);
    assert!(body.contains("\"running\""), "{body}");
    assert_eq!(curl(&[&format!("{base}/report")]).0, 409);
    assert_eq!(curl(&["-X", "POST", &format!("{base}/collected")]).0, 409);
    runner.wait_for("report ready for collection");
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
        runner.child.try_wait().unwrap().is_none(),
        "the runner exited before collection"
    );
    assert_eq!(curl(&["-X", "POST", &format!("{base}/collected")]).0, 200);
    // It exits with its run's code once told (bounded wait).
    let (code, stderr) = runner.finish();
    assert_eq!(code, Some(0), "{stderr}");
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

//! `engine run --kubeconfig`: HTTP/1.1 over TLS to nginx, with the kubeconfig's CA and token.

mod common;
#[path = "transport_support/mod.rs"]
mod transport_support;

use std::path::Path;

use common::*;
use preprocess::profile::Verb;
use transport_support::{start_nginx, Pki};

fn kubeconfig(dir: &Path, port: u16, ca: &Path, token: &str) -> std::path::PathBuf {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{port}\n    certificate-authority: {}\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n",
        ca.display()
    );
    let path = dir.join(format!("kubeconfig-{token}"));
    std::fs::write(&path, text).expect("write kubeconfig");
    path
}

#[test]
fn replays_over_tls_with_the_kubeconfig_token() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let extra = r#"location /api/ {
            if ($http_authorization != "Bearer good-t0ken") { return 401 '{"kind":"Status","status":"Failure","reason":"Unauthorized","code":401}'; }
            if ($server_protocol = "HTTP/2.0") { return 200 '{"kind":"Pod","via":"h2"}'; }
            return 200 '{"kind":"Pod"}';
        }"#;
    let Some(nginx) = start_nginx(
        dir.path(),
        &pki.server_cert_file,
        &pki.server_key_file,
        extra,
    ) else {
        eprintln!("skipped: nginx is not installed");
        return;
    };
    let requests: Vec<_> = (0..30)
        .map(|i| {
            req(
                i,
                Verb::Get,
                "ns",
                &format!("p{i}"),
                &format!("/api/v1/namespaces/ns/pods/p{i}"),
                "",
            )
        })
        .collect();
    let tl = write_timeline(dir.path(), &spec(2, 2), &requests);
    let port = nginx.addr.port();

    let good = kubeconfig(dir.path(), port, &pki.ca_file, "good-t0ken");
    let run_dir = dir.path().join("good");
    let run = run_engine(
        &tl,
        &run_dir,
        &["--kubeconfig", good.to_str().unwrap(), "--cores", "2"],
        &[],
    );
    assert!(run.status.success(), "{}", run.stderr);
    let report = run.report.unwrap();
    assert_eq!(num(&report, "totalRun"), 30);
    assert_eq!(num(&report, "totalFailed"), 0, "{report}");
    let base = format!("https://127.0.0.1:{port}");
    let keys = report["percentileLatenciesByURL"].as_object().unwrap();
    assert!(
        keys.keys()
            .all(|k| k.starts_with(&format!("GET {base}/api/v1/"))),
        "{keys:?}"
    );
    assert_eq!(
        num(&report, "totalReceivedBytes"),
        30 * "{\"kind\":\"Pod\"}".len() as u64
    );

    let bad = kubeconfig(dir.path(), port, &pki.ca_file, "wrong-s3cret");
    let run_dir = dir.path().join("bad");
    let run = run_engine(
        &tl,
        &run_dir,
        &[
            "--kubeconfig",
            bad.to_str().unwrap(),
            "--cores",
            "1",
            "--raw-data",
        ],
        &[],
    );
    assert_all_failed_exit(&run);
    let text = run.report_text.clone().unwrap();
    let report = run.report.unwrap();
    assert_eq!(
        report["errorStats"]["http/401"].as_u64(),
        Some(30),
        "{report}"
    );
    assert!(
        !text.contains("wrong-s3cret") && !run.stderr.contains("wrong-s3cret"),
        "token leaked"
    );

    // disableHTTP2: false: the pool speaks HTTP/2 when the server picks h2 in ALPN, and
    // workers share a connection up to its stream limit (nginx here: 8).
    let mut h2_spec = spec(2, 2);
    h2_spec.disable_http2 = false;
    let h2_dir = dir.path().join("h2");
    std::fs::create_dir_all(&h2_dir).unwrap();
    let burst: Vec<_> = (0..30)
        .map(|i| {
            req(
                0,
                Verb::Get,
                "ns",
                &format!("p{i}"),
                &format!("/api/v1/namespaces/ns/pods/p{i}"),
                "",
            )
        })
        .collect();
    let tl2 = write_timeline(&h2_dir, &h2_spec, &burst);
    let run = run_engine(
        &tl2,
        &h2_dir,
        &[
            "--kubeconfig",
            good.to_str().unwrap(),
            "--cores",
            "1",
            "--conns",
            "2",
            "--max-conns",
            "16",
        ],
        &[],
    );
    assert!(run.status.success(), "{}", run.stderr);
    let report = run.report.unwrap();
    assert_eq!(num(&report, "totalFailed"), 0, "{report}");
    assert_eq!(
        num(&report, "totalReceivedBytes"),
        30 * "{\"kind\":\"Pod\",\"via\":\"h2\"}".len() as u64
    );
    // 16 workers on 2 connections of 8 streams each: no connection beyond the prewarmed two.
    assert_eq!(
        report["kreplay"]["run"]["connectionsOpened"].as_u64(),
        Some(2),
        "{report}"
    );
}

//! `engine run --kubeconfig`: HTTP/1.1 over TLS to nginx, with the kubeconfig's CA and token.

use std::path::Path;

use crate::util::tls::{start_nginx, Pki};
use crate::util::*;

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
    let nginx = start_nginx(
        dir.path(),
        &pki.server_cert_file,
        &pki.server_key_file,
        extra,
    );
    let tl = profile()
        .each(0..30, |p, i| p.get(&format!("ns/p{i}")).at_ms(i))
        .timeline(dir.path(), &spec(2, 2));
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
    let h2_spec = h2_spec(2, 2);
    let h2_dir = dir.path().join("h2");
    std::fs::create_dir_all(&h2_dir).unwrap();
    let tl2 = profile()
        .each(0..30, |p, i| p.get(&format!("ns/p{i}")).at_ms(0))
        .timeline(&h2_dir, &h2_spec);
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

/// An expired client certificate (issued by the CA nginx trusts, `openssl x509 -days -1`):
/// nginx answers 400 to every request and the run ends with counts that add up.
#[test]
fn an_expired_client_certificate_is_refused_and_the_run_ends() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let ca_key = dir.path().join("ca.key");
    std::fs::write(&ca_key, &pki.ca.key_pem).unwrap();
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("run openssl (scripts/test.sh installs it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ca_file = pki.ca_file.to_str().unwrap();
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "expired.key",
        "-out",
        "expired.csr",
        "-subj",
        "/CN=expired-client",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "expired.csr",
        "-CA",
        ca_file,
        "-CAkey",
        "ca.key",
        "-days",
        "-1",
        "-out",
        "expired.crt",
    ]);
    let extra = format!(
        "ssl_client_certificate {ca_file}; ssl_verify_client on; location /api/ {{ return 200 '{{\"kind\":\"Pod\"}}'; }}"
    );
    let nginx = start_nginx(
        &dir.path().join("nginx"),
        &pki.server_cert_file,
        &pki.server_key_file,
        &extra,
    );
    let kubeconfig = dir.path().join("kubeconfig-expired");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{}\n    certificate-authority: {ca_file}\nusers:\n- name: u\n  user:\n    client-certificate: {}\n    client-key: {}\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n",
            nginx.addr.port(),
            dir.path().join("expired.crt").display(),
            dir.path().join("expired.key").display(),
        ),
    )
    .unwrap();
    let tl = profile()
        .each(0..10, |p, i| p.get(&format!("ns/p{i}")).at_ms(i))
        .timeline(dir.path(), &spec(1, 2));
    let kc = kubeconfig.to_str().unwrap();

    // The preflight's GET /version gets the same 400 and lets the run go on (it stops on 401,
    // 403 and TLS failures only); the run ends with every request failed.
    let run = run_engine(
        &tl,
        &dir.path().join("run"),
        &["--kubeconfig", kc, "--cores", "1"],
        &[],
    );
    assert_all_failed_exit(&run);
    let report = run.report.unwrap();
    assert_eq!(num(&report, "totalRun"), 10, "{report}");
    assert_eq!(num(&report, "totalFailed"), 10, "{report}");
    let classified: u64 = report["errorStats"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(classified, 10, "{report}");
    assert_eq!(
        report["errorStats"]["http/400"].as_u64(),
        Some(10),
        "{report}"
    );
}

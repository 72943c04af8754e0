//! Connections to nginx over TLS: `--conns 8` reaches it (HTTP/2) on 8 connections, and the
//! requests are spread over them (no connection under half the mean; nginx's access log
//! records each request's `$connection`); over HTTP/1.1, connections nginx closes while idle
//! are not reused.

mod common;
#[path = "transport_support/mod.rs"]
mod transport_support;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use preprocess::profile::Verb;
use transport_support::{start_nginx, Pki};

fn kubeconfig(dir: &Path, port: u16, ca: &Path) -> std::path::PathBuf {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{port}\n    certificate-authority: {}\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n",
        ca.display()
    );
    let path = dir.join("kubeconfig");
    std::fs::write(&path, text).expect("write kubeconfig");
    path
}

#[test]
fn conns_8_reach_the_server_on_8_connections_each_with_a_fair_share() {
    const REQUESTS: usize = 400;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let log = dir.path().join("conns.log");
    let extra = format!(
        "access_log {} kreplay_conn;\n        location /api/ {{ return 200 '{{\"kind\":\"Pod\"}}'; }}",
        log.display()
    );
    let nginx = start_nginx(
        dir.path(),
        &pki.server_cert_file,
        &pki.server_key_file,
        &extra,
    )
    .expect("nginx is required: scripts/test.sh installs it");
    let requests: Vec<_> = (0..REQUESTS)
        .map(|i| {
            req(
                i as i64 / 2,
                Verb::Get,
                "ns",
                &format!("p{i}"),
                &format!("/api/v1/namespaces/ns/pods/p{i}"),
                "",
            )
        })
        .collect();
    let mut s = spec(2, 4);
    s.disable_http2 = false;
    let tl = write_timeline(dir.path(), &s, &requests);
    let kc = kubeconfig(dir.path(), nginx.addr.port(), &pki.ca_file);
    let run = run_engine(
        &tl,
        &dir.path().join("run"),
        &[
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--conns",
            "8",
            "--cores",
            "2",
        ],
        &[],
    );
    assert!(run.status.success(), "{}", run.stderr);
    let report = run.report.unwrap();
    assert_eq!(num(&report, "totalRun"), REQUESTS as u64);
    assert_eq!(num(&report, "totalFailed"), 0, "{report}");
    let r = &report["kreplay"]["run"];
    let per_core: Vec<u64> = r["connectionsPerCore"]
        .as_array()
        .expect("connectionsPerCore")
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    assert_eq!(per_core, vec![4, 4], "{r}");
    drop(nginx); // flushes the access log
    let text = std::fs::read_to_string(&log).expect("access log");
    let mut by_conn: BTreeMap<&str, usize> = BTreeMap::new();
    for line in text.lines() {
        *by_conn.entry(line.trim()).or_default() += 1;
    }
    assert_eq!(by_conn.values().sum::<usize>(), REQUESTS, "{text}");
    assert_eq!(by_conn.len(), 8, "{by_conn:?}");
    let mean = REQUESTS / 8;
    assert!(
        by_conn.values().all(|&n| n * 2 >= mean),
        "a connection under half the mean share ({mean}): {by_conn:?}"
    );
    assert!(r["maxStreamsPerConnection"].as_u64() >= Some(1), "{r}");
}

#[test]
fn tls_connections_nginx_closed_while_idle_are_not_reused() {
    const REQUESTS: usize = 6;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let extra =
        "keepalive_timeout 500ms;\n        location /api/ { return 200 '{\"kind\":\"Pod\"}'; }";
    let nginx = start_nginx(
        dir.path(),
        &pki.server_cert_file,
        &pki.server_key_file,
        extra,
    )
    .expect("nginx is required: scripts/test.sh installs it");
    // Every request finds its connection idle past nginx's 0.5 s.
    let requests: Vec<_> = (0..REQUESTS)
        .map(|i| {
            req(
                i as i64 * 700,
                Verb::Get,
                "ns",
                &format!("p{i}"),
                &format!("/api/v1/namespaces/ns/pods/p{i}"),
                "",
            )
        })
        .collect();
    let tl = write_timeline(dir.path(), &spec(1, 1), &requests);
    let kc = kubeconfig(dir.path(), nginx.addr.port(), &pki.ca_file);
    let run = run_engine(
        &tl,
        &dir.path().join("run"),
        &[
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--http1",
            "--cores",
            "1",
        ],
        &[],
    );
    assert!(run.status.success(), "{}", run.stderr);
    let report = run.report.unwrap();
    assert_eq!(num(&report, "totalRun"), REQUESTS as u64);
    assert_eq!(num(&report, "totalFailed"), 0, "{report}");
    let opened = report["kreplay"]["run"]["connectionsOpened"]
        .as_u64()
        .unwrap();
    assert!(
        opened >= REQUESTS as u64,
        "a fresh connection each: {opened}"
    );
    // Seen closed before reuse: no request met the close and had to go again.
    let retries = report["kreplay"]["run"]["connectionRetries"].as_u64();
    assert_eq!(retries, Some(0), "{}", report["kreplay"]["run"]);
}

//! Connections to nginx over TLS: `--conns 8` reaches it (HTTP/2) on 8 connections, and the
//! requests are spread over them (no connection under half the mean; nginx's access log
//! records each request's `$connection`); over HTTP/1.1, connections nginx closes while idle
//! are not reused.

use std::collections::BTreeMap;
use std::path::Path;

use crate::util::tls::{start_nginx, Pki};
use crate::util::*;

fn kubeconfig(dir: &Path, port: u16, ca: &Path) -> std::path::PathBuf {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{port}\n    certificate-authority: {}\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n",
        ca.display()
    );
    let path = dir.join("kubeconfig");
    std::fs::write(&path, text).expect("write kubeconfig");
    path
}

/// `n` GETs of distinct pods, `every_ms` apart (in whole milliseconds of the profile).
fn gets(n: usize, every_ms: f64) -> Vec<preprocess::profile::ProfileRequest> {
    profile()
        .each(0..n, |p, i| {
            p.get(&format!("ns/p{i}"))
                .at_ms((i as f64 * every_ms) as i64)
        })
        .build()
}

/// Starts nginx in `dir` with `extra` in its server block (and `/api/` answered 200), replays
/// `requests` with `spec` and `args` through a kubeconfig, checks none failed, and returns
/// the report.
fn replay(
    dir: &Path,
    extra: &str,
    spec: &preprocess::profile::Spec,
    requests: &[preprocess::profile::ProfileRequest],
    args: &[&str],
) -> serde_json::Value {
    let pki = Pki::new(dir);
    let extra = format!("{extra}\n        location /api/ {{ return 200 '{{\"kind\":\"Pod\"}}'; }}");
    let nginx = start_nginx(dir, &pki.server_cert_file, &pki.server_key_file, &extra);
    let tl = write_timeline(dir, spec, requests);
    let kc = kubeconfig(dir, nginx.addr.port(), &pki.ca_file);
    let mut all = vec!["--kubeconfig", kc.to_str().unwrap()];
    all.extend_from_slice(args);
    let run = run_engine(&tl, &dir.join("run"), &all, &[]);
    assert!(run.status.success(), "{}", run.stderr);
    let report = run.report.unwrap();
    assert_eq!(num(&report, "totalRun"), requests.len() as u64);
    assert_eq!(num(&report, "totalFailed"), 0, "{report}");
    // Dropping nginx stops it, which flushes its access log.
    drop(nginx);
    report
}

#[test]
fn conns_8_reach_the_server_on_8_connections_each_with_a_fair_share() {
    const REQUESTS: usize = 400;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("conns.log");
    let s = h2_spec(2, 4);
    let report = replay(
        dir.path(),
        &format!("access_log {} kreplay_conn;", log.display()),
        &s,
        &gets(REQUESTS, 0.5),
        &["--conns", "8", "--cores", "2"],
    );
    let r = &report["kreplay"]["run"];
    let per_core: Vec<u64> = r["connectionsPerCore"]
        .as_array()
        .expect("connectionsPerCore")
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    assert_eq!(per_core, vec![4, 4], "{r}");
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
    // Every request finds its connection idle past nginx's 0.5 s.
    let report = replay(
        dir.path(),
        "keepalive_timeout 500ms;",
        &spec(1, 1),
        &gets(REQUESTS, 700.0),
        &["--http1", "--cores", "1"],
    );
    let r = &report["kreplay"]["run"];
    let opened = r["connectionsOpened"].as_u64().unwrap();
    assert!(opened >= REQUESTS as u64, "a fresh connection each: {r}");
    // Seen closed before reuse: no request met the close and had to go again.
    assert_eq!(r["connectionRetries"].as_u64(), Some(0), "{r}");
}

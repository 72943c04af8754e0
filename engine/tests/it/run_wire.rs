//! What arrives at the server: every request once, with kperf's method, target, headers and body.

use crate::util::*;

#[test]
fn every_request_arrives_once_with_the_right_wire_form() {
    let server = TestServer::start(Behavior::default());
    let dir = tempfile::tempdir().unwrap();
    let requests = profile()
        .get("default/a")
        .at_ms(0)
        .list("default")
        .selector("app=nginx")
        .create("default/b")
        .body(r#"{"metadata":{"name":"b"}}"#)
        .at_ms(5)
        .patch("default/a")
        .body(r#"{"x":1}"#)
        .at_ms(10)
        .patch("default/c")
        .path("/apis/stable.example.com/v1/namespaces/default/crontabs/c")
        .body(r#"{"y":2}"#)
        .apply("default/d")
        .path("/api/v1/namespaces/default/configmaps/d")
        .body("kind: ConfigMap\n")
        .at_ms(15)
        .delete("default/a")
        .at_ms(20)
        .delete_collection("default")
        .build();
    let tl = write_timeline(dir.path(), &spec(2, 2), &requests);
    let run = run_engine(
        &tl,
        dir.path(),
        &[
            "--server",
            &server.url(),
            "--cores",
            "2",
            "--user-agent",
            "kreplay-test/1",
        ],
        &[],
    );
    assert!(run.status.success(), "engine failed: {}", run.stderr);
    let got = server.requests();
    assert_eq!(got.len(), requests.len(), "{got:#?}");

    let find = |method: &str, prefix: &str| -> &Received {
        let hits: Vec<&Received> = got
            .iter()
            .filter(|r| r.method == method && r.target.starts_with(prefix))
            .collect();
        assert_eq!(hits.len(), 1, "{method} {prefix}: {hits:#?}");
        hits[0]
    };
    for r in &got {
        assert_eq!(r.header("accept"), Some("application/json, */*"));
        assert_eq!(r.header("user-agent"), Some("kreplay-test/1"));
        assert_eq!(r.header("host"), Some(server.addr.to_string().as_str()));
        match r.header("content-length") {
            Some(n) => assert_eq!(n.parse::<usize>().unwrap(), r.body.len()),
            None => assert!(r.body.is_empty()),
        }
    }
    let get = find("GET", "/api/v1/namespaces/default/pods/a?");
    assert!(get.header("content-type").is_none());
    let list = find("GET", "/api/v1/namespaces/default/pods?");
    assert!(
        list.target.contains("labelSelector=app%3Dnginx"),
        "{}",
        list.target
    );
    let create = find("POST", "/api/v1/namespaces/default/pods");
    assert!(
        create.header("content-type").is_none(),
        "kperf sends CREATE without Content-Type"
    );
    assert_eq!(create.body, b"{\"metadata\":{\"name\":\"b\"}}");
    let builtin = find("PATCH", "/api/v1/namespaces/default/pods/a");
    assert_eq!(
        builtin.header("content-type"),
        Some("application/strategic-merge-patch+json")
    );
    assert_eq!(builtin.body, b"{\"x\":1}");
    let crd = find("PATCH", "/apis/stable.example.com/");
    assert_eq!(
        crd.header("content-type"),
        Some("application/merge-patch+json")
    );
    let apply = find("PATCH", "/api/v1/namespaces/default/configmaps/d");
    assert_eq!(
        apply.header("content-type"),
        Some("application/apply-patch+yaml")
    );
    assert!(
        apply.target.contains("fieldManager=kperf-replay"),
        "{}",
        apply.target
    );
    assert_eq!(apply.body, b"kind: ConfigMap\n");
    let delete = find("DELETE", "/api/v1/namespaces/default/pods/a");
    assert!(delete.body.is_empty() && delete.header("content-type").is_none());
    find("DELETE", "/api/v1/namespaces/default/pods?");

    let report = run.report.expect("report written");
    assert_eq!(num(&report, "total"), 8);
    assert_eq!(num(&report, "totalRun"), 8);
    assert_eq!(num(&report, "totalFailed"), 0);
    assert_eq!(num(&report, "runnerCount"), 2);
    let by_url = report["percentileLatenciesByURL"]
        .as_object()
        .expect("per-URL percentiles");
    let base = server.url();
    assert!(
        by_url.contains_key(&format!(
            "DELETE {base}/api/v1/namespaces/default/pods/:name"
        )),
        "{by_url:?}"
    );
    assert!(
        by_url.contains_key(&format!("POST {base}/api/v1/namespaces/default/pods")),
        "{by_url:?}"
    );
    let body_len = Behavior::default().body.len() as u64;
    assert_eq!(num(&report, "totalReceivedBytes"), 8 * body_len);
}

#[test]
fn a_user_agent_with_a_line_break_is_refused_before_anything_is_sent() {
    let server = TestServer::start(Behavior::default());
    let dir = tempfile::tempdir().unwrap();
    let tl = write_timeline(
        dir.path(),
        &spec(1, 1),
        &profile().get("default/a").at_ms(0).build(),
    );
    let run = run_engine(
        &tl,
        dir.path(),
        &["--server", &server.url(), "--user-agent", "ua\r\nX-Evil: 1"],
        &[],
    );
    assert_eq!(run.status.code(), Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("--user-agent") && run.stderr.contains("no CR, LF"),
        "{}",
        run.stderr
    );
    assert!(server.requests().is_empty(), "nothing may be sent");
}

#[test]
fn chunked_responses_and_metric_base_none() {
    let server = TestServer::start(Behavior {
        chunked: true,
        body: "0123456789abcdefghij".to_string(),
        ..Behavior::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let tl = profile()
        .each(0..20, |p, i| p.get(&format!("ns/p{i}")).at_ms(i))
        .timeline(dir.path(), &spec(1, 1));
    let run = run_on_one_core(&tl, dir.path(), &server.url(), &["--metric-base", "none"]);
    assert!(run.status.success(), "{}", run.stderr);
    let report = run.report.unwrap();
    assert_eq!(num(&report, "totalReceivedBytes"), 20 * 20);
    assert_eq!(num(&report, "totalFailed"), 0);
    let keys: Vec<&String> = report["percentileLatenciesByURL"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert!(
        keys.iter()
            .all(|k| k.starts_with("GET /api/v1/namespaces/ns/pods/p")),
        "{keys:?}"
    );
    assert_eq!(server.requests().len(), 20);
}

#[test]
fn start_at_and_speed_shift_the_schedule() {
    let server = TestServer::start(Behavior::default());
    let dir = tempfile::tempdir().unwrap();
    // Due at 0 and 2.4 s; at speed 2 the second is due 1.2 s after the start.
    let tl = profile()
        .get("ns/a")
        .at_ms(0)
        .get("ns/b")
        .at_ms(2400)
        .timeline(dir.path(), &spec(1, 1));
    let start_ms = unix_ms(std::time::SystemTime::now() + std::time::Duration::from_millis(1500));
    let run = run_on_one_core(
        &tl,
        dir.path(),
        &server.url(),
        &["--start-at", &start_ms, "--speed", "2"],
    );
    assert!(run.status.success(), "{}", run.stderr);
    let got = server.requests();
    assert_eq!(got.len(), 2);
    let start_ms: u64 = start_ms.parse().unwrap();
    let start = std::time::UNIX_EPOCH + std::time::Duration::from_millis(start_ms);
    // Never early: each request leaves at or after its due instant.
    assert!(got[0].at >= start, "first request before --start-at");
    assert!(
        got[1].at >= start + std::time::Duration::from_millis(1200),
        "second request early"
    );
    let report = run.report.unwrap();
    assert_eq!(report["kreplay"]["config"]["speed"].as_f64(), Some(2.0));
    // The replay's shape, in wall seconds since the start: one request due in second 0,
    // one in second 1; each is sent in its due second or later, never earlier.
    let counts = |k: &str| per_second(&report, k);
    assert_eq!(counts("scheduled"), vec![1, 1]);
    let sent = counts("sent");
    assert_eq!(sent.iter().sum::<u64>(), 2, "{sent:?}");
    assert_eq!(sent[0], 1, "{sent:?}");
}

#[test]
fn raw_data_latencies_are_sorted_and_give_the_reported_percentiles() {
    let server = TestServer::start(Behavior::default());
    let dir = tempfile::tempdir().unwrap();
    // 45 GETs named p0..p44 (their object keys) on three paths o0..o2 (their URLs).
    let tl = profile()
        .each(0..45, |p, i| {
            p.get(&format!("ns/p{i}"))
                .path(&format!("/api/v1/namespaces/ns/pods/o{}", i % 3))
                .at_ms(i / 5)
        })
        .timeline(dir.path(), &spec(1, 2));
    let run = run_on_one_core(&tl, dir.path(), &server.url(), &["--raw-data"]);
    assert!(run.status.success(), "{}", run.stderr);
    let report = run.report.unwrap();
    let raw = report["latenciesByURL"]
        .as_object()
        .expect("latenciesByURL with --raw-data");
    let pct = report["percentileLatenciesByURL"].as_object().unwrap();
    assert_eq!(raw.len(), 3);
    let mut pooled = Vec::new();
    for (key, values) in raw {
        let v: Vec<f64> = values
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(v.len(), 15, "{key}");
        assert!(v.windows(2).all(|w| w[0] <= w[1]), "{key} not sorted");
        let expected = engine::report::percentile::kperf_percentiles(&v);
        let got: Vec<(f64, f64)> = pct[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
            .collect();
        assert_eq!(got, expected, "{key}");
        pooled.extend(v);
    }
    pooled.sort_by(f64::total_cmp);
    let got: Vec<f64> = report["percentileLatencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_f64().unwrap())
        .collect();
    let expected: Vec<f64> = engine::report::percentile::kperf_percentiles(&pooled)
        .iter()
        .map(|p| p.1)
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn a_body_larger_than_the_socket_buffers_arrives_whole() {
    // 32 MiB: more than loopback's socket buffers take in one non-blocking send, so the
    // HTTP/1.1 pool writes the rest as it drains (through its ring).
    let server = TestServer::start(Behavior::default());
    let dir = tempfile::tempdir().unwrap();
    let body: String = (0..32 * 1024 * 1024)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let tl = profile()
        .create("default/big")
        .path("/api/v1/namespaces/default/configmaps")
        .body(&body)
        .at_ms(0)
        .get("default/big")
        .path("/api/v1/namespaces/default/configmaps/big")
        .at_ms(1)
        .timeline(dir.path(), &spec(1, 1));
    let run = run_on_one_core(&tl, dir.path(), &server.url(), &[]);
    assert!(run.status.success(), "engine failed: {}", run.stderr);
    let got = server.requests();
    assert_eq!(got.len(), 2, "both requests arrive once");
    assert_eq!(
        got[0].method, "POST",
        "the large request first (same object)"
    );
    assert_eq!(got[0].header("content-length"), Some("33554432"));
    assert!(
        got[0].body == body.as_bytes(),
        "the body arrives byte for byte"
    );
    assert_eq!(got[1].method, "GET");
    let report = run.report.expect("report written");
    assert_eq!(num(&report, "totalRun"), 2);
    assert_eq!(num(&report, "totalFailed"), 0);
}

#[test]
fn requests_already_late_arrive_intact_and_in_order() {
    // `--start-at` 3 s ago: every request is late when it gets a connection, so the pool
    // sends them back to back as fast as connections free up. Bodies from empty to 4 KiB,
    // and one of 64 KiB.
    let server = TestServer::start(Behavior::default());
    let dir = tempfile::tempdir().unwrap();
    const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";
    let large = "y".repeat(64 * 1024);
    let requests = profile()
        .each(0..400usize, |p, i| {
            let object = format!("default/o{}", i % 37);
            let path = format!("{CONFIGMAPS}/o{}", i % 37);
            let body = format!(
                "{{\"seq\":{i},\"pad\":\"{}\"}}",
                "x".repeat((i * 97) % 4100)
            );
            match i % 3 {
                0 => p.get(&object).path(&path),
                1 => p.patch(&object).path(&path).body(&body),
                _ => p.create(&object).path(CONFIGMAPS).body(&body),
            }
            .at_ms(i as i64 / 8)
        })
        // Due 8 s in: the start 3 s in the past stays within the replay's length (a start
        // further back than the whole replay is refused), every request before this one is
        // late, and this one is due 5 s after the run began, well after a loaded machine has
        // sent the others.
        .create("default/o0")
        .path(CONFIGMAPS)
        .body(&large)
        .at_ms(8_000)
        .build();
    let tl = write_timeline(dir.path(), &spec(1, 8), &requests);
    let start_ms = unix_ms(std::time::SystemTime::now() - std::time::Duration::from_secs(3));
    let run = run_on_one_core(&tl, dir.path(), &server.url(), &["--start-at", &start_ms]);
    assert!(run.status.success(), "engine failed: {}", run.stderr);
    let got = server.requests();
    assert_eq!(got.len(), requests.len(), "every request arrives once");
    // Each object's requests arrive in profile order, each with its body byte for byte. A
    // CREATE names the collection, not its object: its (unique) body tells which it is.
    let object_of = |r: &Received| -> String {
        let path = r.target.split('?').next().unwrap_or_default();
        match path.rsplit_once("/configmaps/") {
            Some((_, name)) => name.to_string(),
            None => requests
                .iter()
                .find(|p| p.body.as_bytes() == r.body.as_slice())
                .map(|p| p.name.clone())
                .unwrap_or_else(|| panic!("a body no request has: {r:?}")),
        }
    };
    for k in 0..37 {
        let name = format!("o{k}");
        let arrived: Vec<&[u8]> = got
            .iter()
            .filter(|r| object_of(r) == name)
            .map(|r| r.body.as_slice())
            .collect();
        let expected: Vec<&[u8]> = requests
            .iter()
            .filter(|p| p.name == name)
            .map(|p| p.body.as_bytes())
            .collect();
        assert!(arrived == expected, "object {name}: order or bodies differ");
    }
    for r in &got {
        match r.header("content-length") {
            Some(n) => assert_eq!(n.parse::<usize>().unwrap(), r.body.len()),
            None => assert!(r.body.is_empty()),
        }
    }
    let report = run.report.expect("report written");
    assert_eq!(num(&report, "totalRun"), requests.len() as u64);
    assert_eq!(num(&report, "totalFailed"), 0);
    // Every send is counted once, as late (all but the last, due 5 s after the run began),
    // and no earlier than the run's start allows.
    let lag = &report["kreplay"]["sendLag"];
    assert_eq!(lag["count"].as_u64(), Some(requests.len() as u64), "{lag}");
    assert_eq!(
        lag["lateOver1ms"].as_u64(),
        Some(requests.len() as u64 - 1),
        "{lag}"
    );
    assert!(lag["p50"].as_f64().unwrap() >= 2.9, "{lag}");
}

/// `t` as unix milliseconds, the form `--start-at` takes.
fn unix_ms(t: std::time::SystemTime) -> String {
    t.duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string()
}

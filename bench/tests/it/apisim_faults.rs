//! apisim's fault injection, each fault against the real binary: flags and the admin endpoint.

use std::time::{Duration, Instant};

use crate::util::{call, request, wait_for_metric, ApiSim, H1, H2, WAIT};
use serde_json::json;

const CMS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn added_latency_delays_only_the_configured_verb() {
    let sim = ApiSim::start(&["--plain", "--no-auth", "--latency", "GET=300ms"]);
    let addr = sim.addr.as_str();
    let started = Instant::now();
    let list = call(addr, "GET", CMS, &[], "").await;
    assert_eq!(list.status, 200);
    let started_get = Instant::now();
    let missing = call(addr, "GET", &format!("{CMS}/x"), &[], "").await;
    assert_eq!(missing.status, 404);
    // A sleep of 300 ms can only end later, never earlier: this bound cannot flake.
    assert!(started_get.elapsed() >= Duration::from_millis(300));
    assert!(started.elapsed() >= Duration::from_millis(300));
    let faults = call(addr, "GET", "/apisim/faults", &[], "").await.json();
    assert_eq!(
        faults["latency"]["GET"],
        json!({"min_ms": 300, "max_ms": 300})
    );
}

#[tokio::test]
async fn throttling_and_errors_follow_the_admin_endpoint() {
    let sim = ApiSim::start(&["--plain", "--no-auth"]);
    let addr = sim.addr.as_str();
    assert_eq!(call(addr, "GET", CMS, &[], "").await.status, 200);

    let set = |body: &'static str| async move {
        let answer = call(addr, "POST", "/apisim/faults", &[], body).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        answer.json()
    };
    let config = set(r#"{"throttle_fraction": 1.0, "retry_after_seconds": 7}"#).await;
    assert_eq!(config["throttle_fraction"], 1.0);
    let throttled = call(addr, "GET", CMS, &[], "").await;
    assert_eq!(throttled.status, 429);
    assert_eq!(throttled.headers["retry-after"], "7");
    assert_eq!(throttled.json()["reason"], "TooManyRequests");
    assert_eq!(throttled.json()["details"]["retryAfterSeconds"], 7);
    assert_eq!(
        call(addr, "GET", "/apisim/faults", &[], "").await.json()["retry_after_seconds"],
        7
    );

    set(r#"{"error_fraction": 1.0}"#).await;
    let failed = call(addr, "GET", CMS, &[], "").await;
    assert_eq!(failed.status, 500);
    assert_eq!(failed.json()["reason"], "InternalError");

    set("{}").await;
    assert_eq!(call(addr, "GET", CMS, &[], "").await.status, 200);

    let invalid = call(
        addr,
        "POST",
        "/apisim/faults",
        &[],
        r#"{"error_fraction": 2}"#,
    )
    .await;
    assert_eq!(invalid.status, 400);
    assert!(invalid.json()["message"]
        .as_str()
        .unwrap()
        .contains("error_fraction"));
    let unknown = call(addr, "POST", "/apisim/faults", &[], r#"{"errors": 1}"#).await;
    assert_eq!(unknown.status, 400);
    assert!(unknown.json()["message"]
        .as_str()
        .unwrap()
        .contains("errors"));
}

async fn codes(seed: &str) -> Vec<u16> {
    let sim = ApiSim::start(&[
        "--plain",
        "--no-auth",
        "--seed",
        seed,
        "--error-fraction",
        "0.5",
    ]);
    let mut conn = H1::connect(&sim.addr).await;
    let mut codes = Vec::new();
    for _ in 0..40 {
        codes.push(conn.send(request("GET", CMS, &[], "")).await.status);
    }
    codes
}

#[tokio::test]
async fn fault_decisions_are_deterministic_for_a_seed() {
    let first = codes("42").await;
    assert_eq!(first, codes("42").await);
    assert_ne!(first, codes("43").await);
    assert!(first.contains(&500) && first.contains(&200), "{first:?}");
}

#[tokio::test]
async fn in_flight_limit_answers_429_beyond_it() {
    let sim = ApiSim::start(&[
        "--plain",
        "--no-auth",
        "--max-in-flight",
        "1",
        "--latency",
        "LIST=20s",
    ]);
    let addr = sim.addr.clone();
    // One slow LIST holds the only slot...
    let slow_addr = addr.clone();
    let slow = tokio::spawn(async move { call(&slow_addr, "GET", CMS, &[], "").await.status });
    wait_for_metric(&addr, &[], "apisim_requests_in_flight 1").await;
    // ...so the next request is refused at once.
    let refused = call(&addr, "GET", &format!("{CMS}/x"), &[], "").await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.headers["retry-after"], "1");
    // Watches are not counted against the limit.
    let mut conn = H1::connect(&addr).await;
    let watch = conn
        .send_streaming(request("GET", &format!("{CMS}?watch=true"), &[], ""))
        .await;
    assert_eq!(watch.status(), 200);
    slow.abort();
}

#[tokio::test]
async fn stalled_requests_are_answered_only_at_shutdown() {
    let mut sim = ApiSim::start(&["--plain", "--no-auth", "--stall-fraction", "1"]);
    let addr = sim.addr.clone();
    let stalled_addr = addr.clone();
    let stalled = tokio::spawn(async move { call(&stalled_addr, "GET", CMS, &[], "").await });
    wait_for_metric(&addr, &[], "apisim_requests_in_flight 1").await;
    // Turning the fault off does not release a request already stalled.
    call(&addr, "POST", "/apisim/faults", &[], "{}").await;
    assert_eq!(call(&addr, "GET", CMS, &[], "").await.status, 200);
    wait_for_metric(&addr, &[], "apisim_requests_in_flight 1").await;
    sim.terminate();
    let answer = tokio::time::timeout(WAIT, stalled)
        .await
        .expect("answered at shutdown")
        .expect("task");
    assert_eq!(answer.status, 500);
    assert!(answer.json()["message"]
        .as_str()
        .unwrap()
        .contains("stalled"));
    assert!(sim.wait_exit());
}

#[tokio::test]
async fn connections_close_after_n_requests() {
    let sim = ApiSim::start(&["--plain", "--no-auth", "--close-after", "3"]);
    let mut conn = H1::connect(&sim.addr).await;
    for index in 1..=3 {
        let answer = conn.send(request("GET", CMS, &[], "")).await;
        assert_eq!(answer.status, 200);
        let close = answer
            .headers
            .get("connection")
            .map(|v| v.to_str().unwrap().to_string());
        if index < 3 {
            assert_eq!(close, None, "request {index}");
        } else {
            assert_eq!(close.as_deref(), Some("close"), "request {index}");
        }
    }
    tokio::time::timeout(WAIT, &mut conn.connection)
        .await
        .expect("server closed the connection")
        .unwrap();
}

#[tokio::test]
async fn http2_connections_get_goaway_after_n_streams() {
    let sim = ApiSim::start(&["--plain", "--no-auth", "--goaway-after", "2"]);
    let addr = sim.addr.as_str();
    let mut h2 = H2::connect(addr).await;
    for _ in 0..2 {
        assert_eq!(
            h2.send(addr, request("GET", CMS, &[], "")).await.status,
            200
        );
    }
    tokio::time::timeout(WAIT, &mut h2.connection)
        .await
        .expect("GOAWAY ended the connection")
        .unwrap();
    // HTTP/1.1 connections are not affected by the HTTP/2-only fault.
    let mut h1 = H1::connect(addr).await;
    for _ in 0..3 {
        let answer = h1.send(request("GET", CMS, &[], "")).await;
        assert_eq!(answer.status, 200);
        assert!(answer.headers.get("connection").is_none());
    }
}

//! apisim's WATCH against the real binary: events, bookmarks, selectors, expiry, initial events,
//! timeoutSeconds and the end of streams on shutdown.

use crate::util::{call, request, ApiSim, WatchReader, H1};
use serde_json::{json, Value};

const PODS: &str = "/api/v1/namespaces/default/pods";

async fn create(addr: &str, name: &str, labels: Value) {
    let body = json!({"metadata": {"name": name, "labels": labels}}).to_string();
    let answer = call(addr, "POST", PODS, &[], &body).await;
    assert_eq!(answer.status, 201, "{}", answer.text());
}

#[tokio::test]
async fn watch_streams_events_bookmarks_and_expires_old_versions() {
    let sim = ApiSim::start(&[
        "--plain",
        "--no-auth",
        "--bookmark-interval",
        "50ms",
        "--watch-history",
        "3",
    ]);
    let addr = sim.addr.as_str();
    create(addr, "before", json!({"app": "w"})).await;
    let list = call(addr, "GET", PODS, &[], "").await.json();
    let list_rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();

    let mut watch_conn = H1::connect(addr).await;
    let target = format!(
        "{PODS}?watch=true&resourceVersion={list_rv}&allowWatchBookmarks=true&labelSelector=app%3Dw&timeout=1m0s"
    );
    let response = watch_conn
        .send_streaming(request("GET", &target, &[], ""))
        .await;
    assert_eq!(response.status(), 200);
    let mut events = WatchReader::new(response);

    create(addr, "other", json!({"app": "not-w"})).await;
    create(addr, "x", json!({"app": "w"})).await;
    let merge = [("content-type", "application/merge-patch+json")];
    call(
        addr,
        "PATCH",
        &format!("{PODS}/x"),
        &merge,
        r#"{"spec":{"n":1}}"#,
    )
    .await;
    call(addr, "DELETE", &format!("{PODS}/x"), &[], "").await;

    let mut changes = Vec::new();
    let mut bookmarks = 0;
    while changes.len() < 3 || bookmarks == 0 {
        let event = events.next().await.expect("watch stream ended early");
        match event["type"].as_str().unwrap() {
            "BOOKMARK" => {
                bookmarks += 1;
                assert_eq!(event["object"]["kind"], "Pod");
                assert!(event["object"]["metadata"]["resourceVersion"].is_string());
            }
            kind => changes.push((
                kind.to_string(),
                event["object"]["metadata"]["name"].clone(),
            )),
        }
    }
    assert_eq!(
        changes,
        [
            ("ADDED".to_string(), json!("x")),
            ("MODIFIED".to_string(), json!("x")),
            ("DELETED".to_string(), json!("x"))
        ]
    );

    // Label changes move objects in and out of the selector: ADDED when it starts matching, DELETED when
    // it stops.
    call(
        addr,
        "PATCH",
        &format!("{PODS}/other"),
        &merge,
        r#"{"metadata":{"labels":{"app":"w"}}}"#,
    )
    .await;
    call(
        addr,
        "PATCH",
        &format!("{PODS}/other"),
        &merge,
        r#"{"metadata":{"labels":{"app":"q"}}}"#,
    )
    .await;
    let mut moves = Vec::new();
    while moves.len() < 2 {
        let event = events.next().await.expect("watch stream ended early");
        if event["type"] != "BOOKMARK" {
            assert_eq!(event["object"]["metadata"]["name"], "other");
            moves.push(event["type"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(moves, ["ADDED", "DELETED"]);

    // The history keeps 3 events: the list's resourceVersion is now too old.
    let stale = format!("{PODS}?watch=1&resourceVersion={list_rv}");
    let mut stale_events = WatchReader::new(
        H1::connect(addr)
            .await
            .send_streaming(request("GET", &stale, &[], ""))
            .await,
    );
    let error = stale_events.next().await.expect("an ERROR event");
    assert_eq!(error["type"], "ERROR");
    assert_eq!(error["object"]["code"], 410);
    assert_eq!(error["object"]["reason"], "Expired");
    assert!(
        stale_events.next().await.is_none(),
        "the stream ends after ERROR"
    );

    // A resourceVersion the store has not reached: one ERROR (504 Timeout), then the end.
    let future = format!("{PODS}?watch=1&resourceVersion=999999");
    let mut future_events = WatchReader::new(
        H1::connect(addr)
            .await
            .send_streaming(request("GET", &future, &[], ""))
            .await,
    );
    let error = future_events.next().await.expect("an ERROR event");
    assert_eq!(error["object"]["code"], 504);
    assert_eq!(error["object"]["reason"], "Timeout");
    assert!(future_events.next().await.is_none());

    // No resourceVersion: the current state as ADDED, then the stream ends at timeoutSeconds.
    let snapshot = "/api/v1/watch/namespaces/default/pods?timeoutSeconds=1";
    let mut snapshot_events = WatchReader::new(
        H1::connect(addr)
            .await
            .send_streaming(request("GET", snapshot, &[], ""))
            .await,
    );
    let mut added = Vec::new();
    while let Some(event) = snapshot_events.next().await {
        assert_eq!(event["type"], "ADDED");
        added.push(
            event["object"]["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(added, ["before", "other"]);

    // sendInitialEvents: the initial ADDED events end with an annotated BOOKMARK.
    let initial = format!(
        "{PODS}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&timeoutSeconds=5"
    );
    let mut initial_events = WatchReader::new(
        H1::connect(addr)
            .await
            .send_streaming(request("GET", &initial, &[], ""))
            .await,
    );
    let mut kinds = Vec::new();
    loop {
        let event = initial_events.next().await.expect("initial events");
        kinds.push(event["type"].as_str().unwrap().to_string());
        if event["type"] == "BOOKMARK" {
            assert_eq!(
                event["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
                "true"
            );
            break;
        }
    }
    assert_eq!(kinds, ["ADDED", "ADDED", "BOOKMARK"]);
}

#[tokio::test]
async fn watches_end_when_the_server_stops() {
    let mut sim = ApiSim::start(&["--plain", "--no-auth"]);
    let addr = sim.addr.clone();
    let mut conn = H1::connect(&addr).await;
    let response = conn
        .send_streaming(request("GET", &format!("{PODS}?watch=true"), &[], ""))
        .await;
    assert_eq!(response.status(), 200);
    let mut events = WatchReader::new(response);
    crate::util::wait_for_metric(&addr, &[], "apisim_watches 1").await;
    sim.terminate();
    assert!(events.next().await.is_none(), "the watch ends on shutdown");
    assert!(sim.wait_exit(), "apisim exits cleanly on SIGTERM");
}

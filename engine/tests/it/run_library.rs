//! The library entry point with code-built requests (`MemorySource`), in process.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::util::*;
use engine::run::{run, RunOptions};
use engine::source::{MemoryRequest, MemorySource, ReplaySource};
use engine::target::Target;
use preprocess::profile::{BodyKind, Verb};

#[test]
fn memory_source_replays_through_the_library_api() {
    let server = TestServer::start(Behavior::default());
    let requests: Vec<MemoryRequest> = (0..40u64)
        .map(|i| MemoryRequest {
            due_us: i * 500,
            key_hash: i % 5,
            verb: if i % 4 == 0 { Verb::Create } else { Verb::Get },
            body_kind: BodyKind::None,
            target: format!("/api/v1/namespaces/ns/pods/o{}?seq={i}", i % 5),
            body: if i % 4 == 0 {
                b"{}".to_vec()
            } else {
                Vec::new()
            },
            label: format!("GET /api/v1/namespaces/ns/pods/o{}", i % 5),
            invalid_target: i == 39,
        })
        .collect();
    let source: Arc<dyn ReplaySource> = Arc::new(MemorySource::new(spec(2, 2), 4, &requests));
    assert_eq!(source.runs().len(), 8);
    let target = Arc::new(Target::from_server_url(&server.url()).unwrap());
    let opts = RunOptions {
        raw_data: true,
        ..library_options("lib-test")
    };
    let outcome = run(source, target, &opts, Arc::new(AtomicBool::new(false))).unwrap();
    let m = &outcome.metrics;
    // The request with an unbuildable target is run and failed, never sent (kperf's rule).
    assert_eq!((m.run, m.completed, m.failed), (40, 39, 1));
    assert!(
        m.errors.is_empty(),
        "no error record for an unbuildable target"
    );
    assert_eq!(server.requests().len(), 39);
    assert_eq!(outcome.conns, 4);
    assert_eq!(outcome.scheduled, 40);
    let raw: usize = m.labels.iter().flatten().map(|l| l.raw_seconds.len()).sum();
    assert_eq!(raw, 39);
    // Per-object order with keys shared across the run.
    let mut last: [i64; 5] = [-1; 5];
    for r in server.requests() {
        let seq: i64 = r
            .target
            .split("seq=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let obj = (seq % 5) as usize;
        assert!(seq > last[obj], "object {obj}: {seq} after {}", last[obj]);
        last[obj] = seq;
    }
    assert!(Target::from_server_url("http://127.0.0.1:1").is_ok());
    let bad = run(
        Arc::new(MemorySource::new(spec(1, 1), 1, &[])),
        Arc::new(Target::from_server_url(&server.url()).unwrap()),
        &RunOptions {
            speed: 0.0,
            ..opts.clone()
        },
        Arc::new(AtomicBool::new(false)),
    );
    assert!(bad.unwrap_err().to_string().contains("--speed"));
    // A User-Agent with CR LF would write a header of its own: refused, nothing sent.
    let before = server.requests().len();
    let one = [MemoryRequest {
        due_us: 0,
        key_hash: 0,
        verb: Verb::Get,
        body_kind: BodyKind::None,
        target: "/api/v1/namespaces/ns/pods/o".into(),
        body: Vec::new(),
        label: "GET /api/v1/namespaces/ns/pods/o".into(),
        invalid_target: false,
    }];
    let bad = run(
        Arc::new(MemorySource::new(spec(1, 1), 1, &one)),
        Arc::new(Target::from_server_url(&server.url()).unwrap()),
        &RunOptions {
            user_agent: "ua\r\nX-Evil: 1".into(),
            ..opts
        },
        Arc::new(AtomicBool::new(false)),
    );
    let err = bad.unwrap_err().to_string();
    assert!(
        err.contains("--user-agent") && err.contains("no CR, LF"),
        "{err}"
    );
    assert_eq!(server.requests().len(), before, "nothing may be sent");
}

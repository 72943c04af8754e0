//! Preflight against the real apisim: `GET /version` through the replay's target, TLS,
//! credentials and protocol stops a run that could only fail, before anything is sent.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crate::util::ApiSim;
use crate::util::*;
use base64::Engine as _;
use engine::kubeconfig::{resolve, KubeconfigOptions};
use engine::run::{run_with_preflight, RunError, RunOptions, RunOutcome};
use engine::source::{ReplaySource, TimelineSource};
use engine::target::Target;

const TOKEN_MARK: &str = "wr0ng-t0ken-s3cret";

fn options() -> RunOptions {
    RunOptions {
        timeout: Duration::from_secs(5),
        ..library_options("preflight-test")
    }
}

/// Replays 20 CREATEs (HTTP/2 allowed) with preflight through `kubeconfig`.
fn replay(dir: &Path, kubeconfig: &Path) -> Result<RunOutcome, RunError> {
    let access = resolve(&KubeconfigOptions {
        kubeconfig: Some(kubeconfig.to_path_buf()),
        context: None,
    })
    .expect("kubeconfig resolves");
    let target = Target::from_cluster(&access, false).expect("target");
    replay_to(dir, target, &options())
}

/// Replays 20 CREATEs with preflight to `target`.
fn replay_to(dir: &Path, target: Target, opts: &RunOptions) -> Result<RunOutcome, RunError> {
    let s = h2_spec(1, 2);
    let tl = profile()
        .each(0..20, |p, i| p.create_pod(&format!("ns/p{i}")).at_ms(i * 2))
        .timeline(dir, &s);
    let source: Arc<dyn ReplaySource> = Arc::new(TimelineSource::open(&tl).expect("timeline"));
    run_with_preflight(
        source,
        Arc::new(target),
        opts,
        Arc::new(AtomicBool::new(false)),
    )
}

/// Objects apisim's order log holds (requests that reached the API).
fn order_log_objects(sim: &ApiSim) -> usize {
    let order: serde_json::Value =
        serde_json::from_str(&sim.admin_get("/apisim/order")).expect("order log JSON");
    order["objects"].as_object().map_or(0, |o| o.len())
}

fn preflight_message(result: Result<RunOutcome, RunError>) -> String {
    match result {
        Err(e @ RunError::Preflight(_)) => e.to_string(),
        Err(other) => panic!("expected a preflight error, got: {other}"),
        Ok(o) => panic!(
            "expected a preflight error, the run went on: {:?}",
            o.metrics.run
        ),
    }
}

#[test]
fn good_credentials_pass_and_the_replay_runs() {
    let sim = ApiSim::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kc");
    write_kubeconfig(&kc, &sim.url, sim.ca_data(), sim.token());
    let outcome = replay(dir.path(), &kc).expect("run with a good kubeconfig");
    assert_eq!((outcome.metrics.run, outcome.metrics.failed), (20, 0));
    assert_eq!(order_log_objects(&sim), 20);
}

#[test]
fn a_wrong_token_stops_the_run_with_401() {
    let sim = ApiSim::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kc");
    write_kubeconfig(&kc, &sim.url, sim.ca_data(), TOKEN_MARK);
    let message = preflight_message(replay(dir.path(), &kc));
    assert_eq!(
        message,
        format!(
            "preflight: GET {}/version answered 401 Unauthorized: check the kubeconfig user's credentials",
            sim.url
        )
    );
    assert!(!message.contains(TOKEN_MARK));
    assert_eq!(
        order_log_objects(&sim),
        0,
        "nothing of the timeline was sent"
    );
}

#[test]
fn a_wrong_ca_stops_the_run_at_the_tls_handshake() {
    let sim = ApiSim::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let other = crate::util::tls::self_signed_ca("another CA", &[]);
    let other_ca = base64::engine::general_purpose::STANDARD.encode(other.cert_pem.as_bytes());
    let kc = dir.path().join("kc");
    write_kubeconfig(&kc, &sim.url, &other_ca, sim.token());
    let message = preflight_message(replay(dir.path(), &kc));
    let prefix = format!("preflight: GET {}/version failed: TLS handshake", sim.url);
    assert!(message.starts_with(&prefix), "{message}");
    assert!(!message.contains(sim.token()));
    assert_eq!(
        order_log_objects(&sim),
        0,
        "nothing of the timeline was sent"
    );
}

#[test]
fn an_unreachable_server_stops_the_run() {
    let sim = ApiSim::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = format!("https://127.0.0.1:{port}");
    let kc = dir.path().join("kc");
    write_kubeconfig(&kc, &server, sim.ca_data(), sim.token());
    let message = preflight_message(replay(dir.path(), &kc));
    let prefix =
        format!("preflight: cannot connect to 127.0.0.1:{port} for GET {server}/version: ");
    assert!(message.starts_with(&prefix), "{message}");
    assert!(message.contains("refused"), "{message}");
    assert_eq!(order_log_objects(&sim), 0);
}

#[test]
fn a_forbidden_answer_stops_the_run_with_403() {
    let server = TestServer::start(Behavior {
        status: 403,
        ..Behavior::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let target = Target::from_server_url(&server.url()).unwrap();
    let message = preflight_message(replay_to(dir.path(), target, &options()));
    assert_eq!(
        message,
        format!(
            "preflight: GET {}/version answered 403 Forbidden: the kubeconfig user may not read /version; check its RBAC permissions",
            server.url()
        )
    );
    // Each of the two cores checked once; nothing of the timeline followed.
    let got = server.requests();
    assert!(!got.is_empty() && got.len() <= 2, "{got:?}");
    assert!(
        got.iter()
            .all(|r| r.method == "GET" && r.target == "/version"),
        "{got:?}"
    );
}

#[test]
fn a_server_that_never_answers_stops_the_run_at_the_time_limit() {
    let server = TestServer::start(Behavior {
        stall: true,
        ..Behavior::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let target = Target::from_server_url(&server.url()).unwrap();
    let opts = RunOptions {
        timeout: Duration::from_millis(300),
        ..options()
    };
    let message = preflight_message(replay_to(dir.path(), target, &opts));
    assert_eq!(
        message,
        format!(
            "preflight: GET {}/version got no answer within 300ms: check the server address, or raise --timeout if the server is slow",
            server.url()
        )
    );
    assert!(server.requests().iter().all(|r| r.target == "/version"));
}

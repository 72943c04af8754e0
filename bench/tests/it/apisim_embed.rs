//! apisim's library API: `spawn` runs it on its own thread; the handle exposes URL, token, kubeconfig and
//! the order log, and `shutdown` stops and joins.

use crate::util::call;
use bench::apisim::{spawn, ApiSimConfig, OrderEntry};

#[tokio::test]
async fn spawned_apisim_serves_and_shuts_down() {
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kc");
    let sim = spawn(ApiSimConfig {
        token: Some("tok".to_string()),
        kubeconfig_out: Some(kubeconfig.clone()),
        ..ApiSimConfig::default()
    })
    .expect("spawn apisim");
    assert!(sim.url().starts_with("http://127.0.0.1:"));
    assert_eq!(sim.token(), "tok");
    assert_eq!(sim.kubeconfig_path(), Some(kubeconfig.as_path()));
    let addr = sim.url().trim_start_matches("http://").to_string();
    let auth = [("authorization", "Bearer tok")];
    let body = r#"{"metadata":{"name":"a"}}"#;
    let created = call(
        &addr,
        "POST",
        "/api/v1/namespaces/n/configmaps",
        &auth,
        body,
    )
    .await;
    assert_eq!(created.status, 201);
    assert_eq!(
        sim.order_log().entries("n/configmaps/a"),
        vec![OrderEntry {
            seq: 1,
            verb: "CREATE"
        }]
    );
    tokio::task::spawn_blocking(move || sim.shutdown())
        .await
        .expect("shutdown joins the apisim thread");
    let refused = tokio::net::TcpStream::connect(&addr).await;
    assert!(refused.is_err(), "apisim no longer accepts after shutdown");
}

#[test]
fn invalid_fault_settings_are_refused_at_start() {
    let mut config = ApiSimConfig::default();
    config.faults.error_fraction = 3.0;
    let error = spawn(config).err().expect("spawn must fail");
    assert!(error.to_string().contains("error_fraction"), "{error}");
}

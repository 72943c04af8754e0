//! `POST /apisim/reset` and `--seed-objects`: a second replay starts from the same objects as the
//! first, so its CREATEs do not meet 409s.

use crate::util::{call, ApiSim};
use serde_json::json;

const PODS: &str = "/api/v1/namespaces/default/pods";

#[tokio::test]
async fn reset_forgets_created_objects_and_restores_the_seed() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.yaml");
    std::fs::write(
        &seed,
        "- apiVersion: v1\n  kind: Pod\n  metadata: {name: seeded}\n  spec: {}\n\
         - apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: web, namespace: prod}\n\
         - apiVersion: v1\n  kind: Namespace\n  metadata: {name: prod}\n",
    )
    .unwrap();
    let sim = ApiSim::start(&[
        "--plain",
        "--no-auth",
        "--seed-objects",
        seed.to_str().unwrap(),
    ]);
    let addr = sim.addr.as_str();

    let seeded = call(addr, "GET", &format!("{PODS}/seeded"), &[], "").await;
    assert_eq!(seeded.status, 200, "{}", seeded.text());
    let deployment = call(
        addr,
        "GET",
        "/apis/apps/v1/namespaces/prod/deployments/web",
        &[],
        "",
    )
    .await;
    assert_eq!(deployment.status, 200, "{}", deployment.text());
    let namespace = call(addr, "GET", "/api/v1/namespaces/prod", &[], "").await;
    assert_eq!(namespace.status, 200, "{}", namespace.text());

    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}}).to_string();
    assert_eq!(call(addr, "POST", PODS, &[], &pod).await.status, 201);
    assert_eq!(call(addr, "POST", PODS, &[], &pod).await.status, 409);
    assert_eq!(
        call(addr, "DELETE", &format!("{PODS}/seeded"), &[], "")
            .await
            .status,
        200
    );
    let before = call(addr, "GET", PODS, &[], "").await.json();
    let rv_before: u64 = before["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    let reset = call(addr, "POST", "/apisim/reset", &[], "").await;
    assert_eq!(reset.status, 200, "{}", reset.text());

    // The created pod is gone (a second run can create it again), the deleted seed is back.
    assert_eq!(
        call(addr, "GET", &format!("{PODS}/a"), &[], "")
            .await
            .status,
        404
    );
    assert_eq!(call(addr, "POST", PODS, &[], &pod).await.status, 201);
    assert_eq!(
        call(addr, "GET", &format!("{PODS}/seeded"), &[], "")
            .await
            .status,
        200
    );
    // resourceVersions keep growing, and a watch from before the reset is told it is too old.
    let after = call(addr, "GET", PODS, &[], "").await.json();
    let rv_after: u64 = after["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv_after > rv_before, "{rv_after} > {rv_before}");
    let old_watch = call(
        addr,
        "GET",
        &format!("{PODS}?watch=true&resourceVersion={rv_before}&timeoutSeconds=1"),
        &[],
        "",
    )
    .await;
    assert!(
        old_watch.text().contains("Expired") || old_watch.status == 410,
        "{}",
        old_watch.text()
    );
    assert_eq!(
        call(addr, "GET", "/apisim/reset", &[], "").await.status,
        405
    );
}

#[test]
fn a_bad_seed_file_names_the_item_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.yaml");
    std::fs::write(
        &seed,
        "- apiVersion: v1\n  kind: Pod\n  metadata: {namespace: x}\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_apisim"))
        .args([
            "--plain",
            "--no-auth",
            "--seed-objects",
            seed.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("item 0: metadata.name is missing or empty"),
        "{err}"
    );
}

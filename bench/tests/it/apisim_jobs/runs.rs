//! Jobs run to their end: env and logs, a failing index, retries, log following, volumes.

use super::lab::*;
use crate::util::{call, request, H1, WAIT};
use http_body_util::BodyExt;
use serde_json::json;

#[tokio::test]
async fn three_indexes_complete_with_labels_env_and_logs() {
    let bin = entrypoint_dir();
    let sim = start(bin.path(), false, &[]);
    let script = "echo index=$JOB_COMPLETION_INDEX name=$POD_NAME app=$APP; \
                  echo host=$KUBERNETES_SERVICE_HOST port=$KUBERNETES_SERVICE_PORT; \
                  echo sa=$(cat $KREPLAY_SERVICE_ACCOUNT_DIR/token)/$(cat $KREPLAY_SERVICE_ACCOUNT_DIR/namespace); \
                  echo cwd=$(pwd); echo to-stderr >&2; echo last";
    let container = json!({"env": [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
    ]});
    let before = get(&sim.addr, &format!("/api/v1/namespaces/{NS}/pods"))
        .await
        .json();
    let since = before["metadata"]["resourceVersion"]
        .as_str()
        .expect("list resourceVersion")
        .to_string();
    let created = create_job(&sim.addr, &job("three", 3, script, json!({}), container)).await;
    let job_uid = created["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_string();
    let finished = wait_finished(&sim.addr, "three").await;
    assert!(has_condition(&finished, "Complete"), "{finished:#}");
    let status = &finished["status"];
    assert_eq!(status["succeeded"], 3, "{status:#}");
    assert_eq!(status["failed"], 0);
    assert_eq!(status["active"], 0);
    assert_eq!(status["completedIndexes"], "0-2");
    assert!(status["startTime"].is_string() && status["completionTime"].is_string());
    // Watchers saw every pod go Pending, Running, Succeeded.
    let phases = phase_history(&sim.addr, "three", &since, 3).await;
    assert_eq!(phases.len(), 3, "{phases:?}");
    for seen in phases.values() {
        assert_eq!(seen, &["Pending", "Running", "Succeeded"], "{phases:?}");
    }

    let pods = list_pods(&sim.addr, "three").await;
    assert_eq!(pods.keys().copied().collect::<Vec<_>>(), [0, 1, 2]);
    let port = sim.addr.rsplit(':').next().expect("port");
    for (index, pod) in &pods {
        let name = name_of(pod);
        let prefix = format!("three-{index}-");
        assert!(
            name.starts_with(&prefix) && name.len() == prefix.len() + 5,
            "{name}"
        );
        let labels = &pod["metadata"]["labels"];
        assert_eq!(labels["job-name"], "three");
        assert_eq!(labels["batch.kubernetes.io/job-name"], "three");
        assert_eq!(labels["controller-uid"], job_uid.as_str());
        assert_eq!(
            labels["batch.kubernetes.io/job-completion-index"],
            index.to_string()
        );
        assert_eq!(labels["app"], "kreplay");
        let annotations = &pod["metadata"]["annotations"];
        assert_eq!(
            annotations["batch.kubernetes.io/job-completion-index"],
            index.to_string()
        );
        assert_eq!(annotations["note"], "from-template");
        let owner = &pod["metadata"]["ownerReferences"][0];
        assert_eq!(
            (owner["kind"].as_str(), owner["uid"].as_str()),
            (Some("Job"), Some(job_uid.as_str()))
        );
        assert_eq!(pod["status"]["phase"], "Succeeded");
        assert_eq!(pod["status"]["podIP"], "127.0.0.1");
        let terminated = &pod["status"]["containerStatuses"][0]["state"]["terminated"];
        assert_eq!(terminated["exitCode"], 0, "{pod:#}");
        assert_eq!(terminated["reason"], "Completed");

        let log = get(
            &sim.addr,
            &format!("/api/v1/namespaces/{NS}/pods/{name}/log"),
        )
        .await;
        assert_eq!(log.status, 200, "{}", log.text());
        assert!(log.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
        let text = log.text();
        assert!(
            text.contains(&format!("index={index} name={name} app=kreplay\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("host=127.0.0.1 port={port}\n")),
            "{text}"
        );
        assert!(text.contains(&format!("sa={TOKEN}/{NS}\n")), "{text}");
        assert!(text.contains("to-stderr\n"), "{text}");
        assert!(
            !text.contains("cwd=/work"),
            "the pod runs in its own directory: {text}"
        );
        let tail = get(
            &sim.addr,
            &format!("/api/v1/namespaces/{NS}/pods/{name}/log?container=runner&tailLines=1"),
        )
        .await;
        assert_eq!(tail.text(), "last\n");
        let limited = get(
            &sim.addr,
            &format!("/api/v1/namespaces/{NS}/pods/{name}/log?limitBytes=6"),
        )
        .await;
        assert_eq!(limited.text(), "index=");
        let wrong = get(
            &sim.addr,
            &format!("/api/v1/namespaces/{NS}/pods/{name}/log?container=other"),
        )
        .await;
        assert_eq!(wrong.status, 400, "{}", wrong.text());
        // The process has ended: nothing to proxy to.
        let proxy = get(
            &sim.addr,
            &format!("/api/v1/namespaces/{NS}/pods/{name}/proxy/"),
        )
        .await;
        assert_eq!(proxy.status, 503, "{}", proxy.text());
        assert_eq!(proxy.json()["reason"], "ServiceUnavailable");
    }
    let missing = get(&sim.addr, &format!("/api/v1/namespaces/{NS}/pods/nope/log")).await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn a_failing_index_fails_the_job_with_its_exit_code() {
    let bin = entrypoint_dir();
    let sim = start(bin.path(), false, &[]);
    // With backoffLimitPerIndex the other indexes run to their end; index 1 exits 3.
    let script = "if [ \"$JOB_COMPLETION_INDEX\" = 1 ]; then echo failing; exit 3; fi; echo fine";
    create_job(
        &sim.addr,
        &job(
            "perindex",
            3,
            script,
            json!({"backoffLimitPerIndex": 0}),
            json!({}),
        ),
    )
    .await;
    let finished = wait_finished(&sim.addr, "perindex").await;
    assert!(has_condition(&finished, "Failed"), "{finished:#}");
    assert!(!has_condition(&finished, "Complete"));
    let status = &finished["status"];
    assert_eq!(status["failedIndexes"], "1", "{status:#}");
    assert_eq!(status["completedIndexes"], "0,2");
    assert_eq!(
        (status["succeeded"].as_u64(), status["failed"].as_u64()),
        (Some(2), Some(1))
    );
    let pods = list_pods(&sim.addr, "perindex").await;
    assert_eq!(pods.len(), 3, "no retry with backoffLimitPerIndex 0");
    assert_eq!(pods[&1]["status"]["phase"], "Failed");
    let terminated = &pods[&1]["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 3, "{terminated:#}");
    assert_eq!(terminated["reason"], "Error");
    assert_eq!(pods[&0]["status"]["phase"], "Succeeded");

    // Without it, backoffLimit 0: the first failure fails the Job, which ends its running pods.
    let script = "if [ \"$JOB_COMPLETION_INDEX\" = 1 ]; then exit 3; fi; exec sleep 60";
    create_job(&sim.addr, &job("global", 3, script, json!({}), json!({}))).await;
    let finished = wait_finished(&sim.addr, "global").await;
    assert!(has_condition(&finished, "Failed"), "{finished:#}");
    assert_eq!(
        finished["status"]["conditions"][1]["reason"], "BackoffLimitExceeded",
        "{finished:#}"
    );
    let pods = list_pods(&sim.addr, "global").await;
    assert_eq!(
        pods.keys().copied().collect::<Vec<_>>(),
        [1],
        "the running pods are deleted: {pods:#?}"
    );
    let terminated = &pods[&1]["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 3);
}

#[tokio::test]
async fn backoff_limit_retries_a_failed_index_in_a_new_pod() {
    let bin = entrypoint_dir();
    let claim = tempfile::tempdir().expect("claim dir");
    let pvc = format!("marks={}", claim.path().display());
    let sim = start(bin.path(), false, &["--pvc", &pvc]);
    // The first attempt leaves a mark and fails; the retry finds the mark and succeeds.
    let script = "if [ -e marks/tried ]; then echo retried; exit 0; fi; touch marks/tried; exit 1";
    let container = json!({"volumeMounts": [{"name": "marks", "mountPath": "/work/marks"}]});
    let mut retried = job("retry", 1, script, json!({"backoffLimit": 1}), container);
    retried["spec"]["template"]["spec"]["volumes"] =
        json!([{"name": "marks", "persistentVolumeClaim": {"claimName": "marks"}}]);
    create_job(&sim.addr, &retried).await;
    let finished = wait_finished(&sim.addr, "retry").await;
    assert!(has_condition(&finished, "Complete"), "{finished:#}");
    assert_eq!(
        (
            finished["status"]["succeeded"].as_u64(),
            finished["status"]["failed"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let answer = get(
        &sim.addr,
        &format!("/api/v1/namespaces/{NS}/pods?labelSelector=job-name%3Dretry"),
    )
    .await;
    let mut phases: Vec<String> = answer.json()["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|pod| pod["status"]["phase"].as_str().unwrap_or("").to_string())
        .collect();
    phases.sort();
    assert_eq!(phases, ["Failed", "Succeeded"]);
}

#[tokio::test]
async fn follow_streams_the_log_until_the_process_ends() {
    let bin = entrypoint_dir();
    let claim = tempfile::tempdir().expect("claim dir");
    let pvc = format!("marks={}", claim.path().display());
    let sim = start(bin.path(), false, &["--pvc", &pvc]);
    // The pod writes a line, then waits for the test to have read it before writing the last one.
    let script = "echo first; while [ ! -e marks/go ]; do sleep 0.05; done; echo second";
    let container = json!({"volumeMounts": [{"name": "marks", "mountPath": "/work/marks"}]});
    let mut follow = job("follow", 1, script, json!({}), container);
    follow["spec"]["template"]["spec"]["volumes"] =
        json!([{"name": "marks", "persistentVolumeClaim": {"claimName": "marks"}}]);
    create_job(&sim.addr, &follow).await;
    let pods = wait_pods(&sim.addr, "follow", 1, "Running").await;
    let mut connection = H1::connect(&sim.addr).await;
    let response = connection
        .send_streaming(request(
            "GET",
            &format!(
                "/api/v1/namespaces/{NS}/pods/{}/log?follow=true",
                name_of(&pods[&0])
            ),
            AUTH,
            "",
        ))
        .await;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut text = Vec::new();
    let streamed = tokio::time::timeout(WAIT, async {
        while !text.ends_with(b"first\n") {
            let frame = body.frame().await.expect("more log").expect("log frame");
            text.extend_from_slice(&frame.into_data().unwrap_or_default());
        }
        std::fs::write(claim.path().join("go"), b"").expect("write the go mark");
        while let Some(frame) = body.frame().await {
            text.extend_from_slice(&frame.expect("log frame").into_data().unwrap_or_default());
        }
    })
    .await;
    assert!(
        streamed.is_ok(),
        "log so far: {}",
        String::from_utf8_lossy(&text)
    );
    assert_eq!(text, b"first\nsecond\n");
}

#[tokio::test]
async fn volumes_appear_under_the_pod_dir_and_a_missing_secret_fails_the_pod() {
    let bin = entrypoint_dir();
    let claim = tempfile::tempdir().expect("claim dir");
    let pvc = format!("results={}", claim.path().display());
    let sim = start(bin.path(), false, &["--pvc", &pvc]);
    create(
        &sim.addr,
        &format!("/api/v1/namespaces/{NS}/secrets"),
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
                "data": {"token": "czNjcjN0"}, "stringData": {"config": "plain text"}}),
    )
    .await;
    let script = "set -e; test -d scratch; test -z \"$(ls -A scratch)\"; \
                  echo mode=$(stat -c %a creds/token) keyed=$(stat -c %a keyed/token); \
                  echo sa=${KREPLAY_SERVICE_ACCOUNT_DIR:-none}; test ! -e serviceaccount; \
                  cp creds/token out/token-$JOB_COMPLETION_INDEX; cp creds/config out/config-$JOB_COMPLETION_INDEX";
    let container = json!({"volumeMounts": [
        {"name": "scratch", "mountPath": "/work/scratch"},
        {"name": "creds", "mountPath": "/work/creds", "readOnly": true},
        {"name": "keyed", "mountPath": "/work/keyed"},
        {"name": "out", "mountPath": "/work/out"},
    ]});
    let mut with_volumes = job("volumes", 2, script, json!({}), container);
    // As in Kubernetes, no service-account mount when the pod opts out.
    with_volumes["spec"]["template"]["spec"]["automountServiceAccountToken"] = json!(false);
    with_volumes["spec"]["template"]["spec"]["volumes"] = json!([
        {"name": "scratch", "emptyDir": {}},
        {"name": "creds", "secret": {"secretName": "creds"}},
        {"name": "keyed", "secret": {"secretName": "creds", "defaultMode": 0o400}},
        {"name": "out", "persistentVolumeClaim": {"claimName": "results"}},
    ]);
    create_job(&sim.addr, &with_volumes).await;
    let finished = wait_finished(&sim.addr, "volumes").await;
    let pods = list_pods(&sim.addr, "volumes").await;
    let log = call(
        &sim.addr,
        "GET",
        &format!("/api/v1/namespaces/{NS}/pods/{}/log", name_of(&pods[&0])),
        AUTH,
        "",
    )
    .await;
    assert!(
        has_condition(&finished, "Complete"),
        "{finished:#} {}",
        log.text()
    );
    assert!(log.text().contains("mode=600 keyed=400"), "{}", log.text());
    assert!(log.text().contains("sa=none"), "{}", log.text());
    for index in 0..2 {
        let token = std::fs::read(claim.path().join(format!("token-{index}")))
            .expect("token copied to the claim");
        assert_eq!(token, b"s3cr3t");
        let config =
            std::fs::read(claim.path().join(format!("config-{index}"))).expect("config copied");
        assert_eq!(config, b"plain text");
    }

    // A Secret that does not exist: the pod fails before starting, with a reason naming it.
    let mut missing = job(
        "nosecret",
        1,
        "exit 0",
        json!({}),
        json!({"volumeMounts": [{"name": "s", "mountPath": "/work/s"}]}),
    );
    missing["spec"]["template"]["spec"]["volumes"] =
        json!([{"name": "s", "secret": {"secretName": "absent"}}]);
    create_job(&sim.addr, &missing).await;
    let finished = wait_finished(&sim.addr, "nosecret").await;
    assert!(has_condition(&finished, "Failed"), "{finished:#}");
    let pods = list_pods(&sim.addr, "nosecret").await;
    let status = &pods[&0]["status"];
    assert_eq!(status["phase"], "Failed");
    assert_eq!(status["reason"], "FailedMount");
    let message = status["message"].as_str().unwrap_or("");
    assert!(
        message.contains("secret \"absent\" not found"),
        "{status:#}"
    );
}

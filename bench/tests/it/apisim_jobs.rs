//! `apisim --run-jobs` against the real binary: Indexed Jobs run as local processes, their pods' status,
//! env, volumes, logs and proxy, failure handling, deletion with propagation, shutdown, and kubectl.
//! Every wait follows a watch or polls the store, bounded by `WAIT`.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{call, request, Answer, ApiSim, WatchReader, H1, WAIT};
use http_body_util::BodyExt;
use serde_json::{json, Value};

const TOKEN: &str = "jobs-test-token";
const AUTH: &[(&str, &str)] = &[("authorization", "Bearer jobs-test-token")];
const NS: &str = "lab";

/// A directory holding `sh -> /bin/sh`: containers whose `command[0]` is `/bin/sh` resolve there.
fn entrypoint_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::os::unix::fs::symlink("/bin/sh", dir.path().join("sh")).expect("symlink sh");
    dir
}

/// apisim with `--run-jobs`, its pod directories in a temp dir of the test (removed even when the
/// test kills apisim).
struct Lab {
    sim: ApiSim,
    _pods: tempfile::TempDir,
}

impl std::ops::Deref for Lab {
    type Target = ApiSim;
    fn deref(&self) -> &ApiSim {
        &self.sim
    }
}

impl std::ops::DerefMut for Lab {
    fn deref_mut(&mut self) -> &mut ApiSim {
        &mut self.sim
    }
}

fn start(bin: &Path, tls: bool, extra: &[&str]) -> Lab {
    let pods = tempfile::tempdir().expect("pods dir");
    let entrypoint = bin.join("sh");
    let mut args = vec![
        "--token",
        TOKEN,
        "--run-jobs",
        entrypoint.to_str().expect("utf-8 path"),
        "--pods-dir",
        pods.path().to_str().expect("utf-8 path"),
    ];
    if !tls {
        args.push("--plain");
    }
    args.extend_from_slice(extra);
    Lab {
        sim: ApiSim::start(&args),
        _pods: pods,
    }
}

/// An Indexed Job whose container runs `/bin/sh -c script`; `extra` is merged into its spec and
/// `container` into its container.
fn job(name: &str, completions: u32, script: &str, extra: Value, container: Value) -> Value {
    let mut spec = json!({
        "completionMode": "Indexed",
        "completions": completions,
        "parallelism": completions,
        "backoffLimit": 0,
        "template": {
            "metadata": {"labels": {"app": "kreplay"}, "annotations": {"note": "from-template"}},
            "spec": {
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 2,
                "containers": [{
                    "name": "runner",
                    "image": "kreplay:test",
                    "workingDir": "/work",
                    "command": ["/bin/sh", "-c", script],
                }],
            },
        },
    });
    merge(&mut spec, &extra);
    merge(&mut spec["template"]["spec"]["containers"][0], &container);
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": spec})
}

fn merge(target: &mut Value, extra: &Value) {
    if let (Some(target), Some(extra)) = (target.as_object_mut(), extra.as_object()) {
        for (key, value) in extra {
            target.insert(key.clone(), value.clone());
        }
    }
}

async fn get(addr: &str, target: &str) -> Answer {
    call(addr, "GET", target, AUTH, "").await
}

async fn create(addr: &str, collection: &str, object: &Value) -> Value {
    let answer = call(addr, "POST", collection, AUTH, &object.to_string()).await;
    assert_eq!(
        answer.status,
        201,
        "create in {collection}: {}",
        answer.text()
    );
    answer.json()
}

async fn create_job(addr: &str, object: &Value) -> Value {
    create(
        addr,
        &format!("/apis/batch/v1/namespaces/{NS}/jobs"),
        object,
    )
    .await
}

/// Follows a watch of `target` until `done` holds for the objects seen (by name); returns them.
async fn watch_until(
    addr: &str,
    target: &str,
    done: impl Fn(&BTreeMap<String, Value>) -> bool,
) -> BTreeMap<String, Value> {
    let separator = if target.contains('?') { '&' } else { '?' };
    let mut connection = H1::connect(addr).await;
    let response = connection
        .send_streaming(request(
            "GET",
            &format!("{target}{separator}watch=true"),
            AUTH,
            "",
        ))
        .await;
    assert_eq!(response.status(), 200, "watch {target}");
    let mut reader = WatchReader::new(response);
    let mut objects = BTreeMap::new();
    let followed = tokio::time::timeout(WAIT * 2, async {
        loop {
            let event = reader.next().await.expect("watch ended early");
            let name = event["object"]["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .to_string();
            if event["type"] == "DELETED" {
                objects.remove(&name);
            } else {
                objects.insert(name, event["object"].clone());
            }
            if done(&objects) {
                return;
            }
        }
    })
    .await;
    assert!(
        followed.is_ok(),
        "watch of {target}: never done; saw {objects:#?}"
    );
    objects
}

fn has_condition(job: &Value, kind: &str) -> bool {
    job["status"]["conditions"].as_array().is_some_and(|list| {
        list.iter()
            .any(|c| c["type"] == kind && c["status"] == "True")
    })
}

/// Waits until the Job has a Complete or Failed condition; returns it.
async fn wait_finished(addr: &str, name: &str) -> Value {
    let target =
        format!("/apis/batch/v1/namespaces/{NS}/jobs?fieldSelector=metadata.name%3D{name}");
    let seen = watch_until(addr, &target, |jobs| {
        jobs.get(name)
            .is_some_and(|job| has_condition(job, "Complete") || has_condition(job, "Failed"))
    })
    .await;
    seen[name].clone()
}

/// The phases each pod of `job` went through, as a watch from resourceVersion `since` shows them,
/// once `count` pods are Succeeded.
async fn phase_history(
    addr: &str,
    job: &str,
    since: &str,
    count: usize,
) -> BTreeMap<String, Vec<String>> {
    let mut connection = H1::connect(addr).await;
    let target = format!(
        "/api/v1/namespaces/{NS}/pods?labelSelector=job-name%3D{job}&resourceVersion={since}&watch=true"
    );
    let response = connection
        .send_streaming(request("GET", &target, AUTH, ""))
        .await;
    assert_eq!(response.status(), 200);
    let mut reader = WatchReader::new(response);
    let mut phases: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let done = |phases: &BTreeMap<String, Vec<String>>| {
        phases
            .values()
            .filter(|seen| seen.last().is_some_and(|p| p == "Succeeded"))
            .count()
            >= count
    };
    while !done(&phases) {
        let event = reader.next().await.expect("watch ended early");
        let name = event["object"]["metadata"]["name"].as_str().unwrap_or("");
        let phase = event["object"]["status"]["phase"].as_str().unwrap_or("");
        let seen = phases.entry(name.to_string()).or_default();
        if seen.last().is_none_or(|last| last != phase) {
            seen.push(phase.to_string());
        }
    }
    phases
}

/// Waits until `count` pods of the Job are in `phase`; returns the Job's pods by index.
async fn wait_pods(addr: &str, job: &str, count: usize, phase: &str) -> BTreeMap<u32, Value> {
    let target = format!("/api/v1/namespaces/{NS}/pods?labelSelector=job-name%3D{job}");
    let seen = watch_until(addr, &target, |pods| {
        pods.values()
            .filter(|p| p["status"]["phase"] == phase)
            .count()
            >= count
    })
    .await;
    by_index(seen.into_values())
}

fn by_index(pods: impl Iterator<Item = Value>) -> BTreeMap<u32, Value> {
    pods.map(|pod| {
        let index = pod["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"]
            .as_str()
            .expect("index label")
            .parse()
            .expect("numeric index");
        (index, pod)
    })
    .collect()
}

async fn list_pods(addr: &str, job: &str) -> BTreeMap<u32, Value> {
    let answer = get(
        addr,
        &format!("/api/v1/namespaces/{NS}/pods?labelSelector=job-name%3D{job}"),
    )
    .await;
    assert_eq!(answer.status, 200);
    let items = answer.json()["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    by_index(items.into_iter())
}

fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().expect("name")
}

fn pid_of(pod: &Value) -> u32 {
    pod["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .and_then(|id| id.strip_prefix("apisim://"))
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no apisim containerID in {pod:#}"))
}

/// Waits (bounded) until no process has `pid` any more.
async fn wait_gone(pid: u32) {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let deadline = tokio::time::Instant::now() + WAIT;
    while proc_dir.exists() {
        let state = std::fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
        // A zombie has ended; its parent just has not reaped it yet.
        if state
            .split(") ")
            .nth(1)
            .is_some_and(|rest| rest.starts_with('Z'))
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "process {pid} still runs"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The children of `pid`, once it has some (bounded wait).
async fn children_of(pid: u32) -> Vec<u32> {
    let file = format!("/proc/{pid}/task/{pid}/children");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let children: Vec<u32> = text
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        if !children.is_empty() {
            return children;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{pid} started no child ({file})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

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

#[tokio::test]
async fn proxy_carries_a_20_mb_file_and_background_delete_kills_the_pods() {
    let python = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 is needed by this test (scripts/test.sh installs it)");
    let python = String::from_utf8(python.stdout)
        .expect("utf-8")
        .trim()
        .to_string();
    assert!(!python.is_empty(), "python3 printed no executable path");
    let bin = entrypoint_dir();
    let served = tempfile::tempdir().expect("served dir");
    let file: Vec<u8> = (0..20_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(served.path().join("file"), &file).expect("write file");
    std::fs::set_permissions(served.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let pvc = format!("served={}", served.path().display());
    let sim = start(bin.path(), false, &["--pvc", &pvc]);
    let script = format!(
        "exec {python} -m http.server --bind 127.0.0.1 --directory data \"${{LISTEN##*:}}\""
    );
    let container = json!({
        "ports": [{"name": "report", "containerPort": 8086}],
        "env": [{"name": "LISTEN", "value": "0.0.0.0:8086"}],
        "volumeMounts": [{"name": "data", "mountPath": "/work/data"}],
    });
    let mut server = job("server", 2, &script, json!({}), container);
    server["spec"]["template"]["spec"]["volumes"] =
        json!([{"name": "data", "persistentVolumeClaim": {"claimName": "served"}}]);
    create_job(&sim.addr, &server).await;
    let pods = wait_pods(&sim.addr, "server", 2, "Running").await;
    let name = name_of(&pods[&0]).to_string();

    // Poll until the server listens (503 until then), then fetch the file through apisim.
    let target = format!("/api/v1/namespaces/{NS}/pods/{name}:8086/proxy/file?x=1");
    let deadline = tokio::time::Instant::now() + WAIT;
    let answer = loop {
        let answer = get(&sim.addr, &target).await;
        if answer.status != 503 {
            break answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pod never listened: {}",
            answer.text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body[..answer.body.len().min(400)])
    );
    assert_eq!(answer.headers["content-length"], "20000000");
    assert!(
        answer.body.as_ref() == file.as_slice(),
        "the proxied file differs from the served one"
    );
    // By port name, and a missing path answered by the pod itself.
    let named = get(
        &sim.addr,
        &format!("/api/v1/namespaces/{NS}/pods/{name}:report/proxy/absent"),
    )
    .await;
    assert_eq!(named.status, 404, "{}", named.text());
    let undeclared = get(
        &sim.addr,
        &format!("/api/v1/namespaces/{NS}/pods/{name}:9999/proxy/"),
    )
    .await;
    assert_eq!(undeclared.status, 503);

    // Background deletion: processes stopped, pods deleted, then the Job.
    let pids: Vec<u32> = pods.values().map(pid_of).collect();
    let deleted = call(
        &sim.addr,
        "DELETE",
        &format!("/apis/batch/v1/namespaces/{NS}/jobs/server"),
        &[AUTH[0], ("content-type", "application/json")],
        r#"{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background"}"#,
    )
    .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    for pid in pids {
        wait_gone(pid).await;
    }
    assert!(list_pods(&sim.addr, "server").await.is_empty());
    let job = get(
        &sim.addr,
        &format!("/apis/batch/v1/namespaces/{NS}/jobs/server"),
    )
    .await;
    assert_eq!(job.status, 404);
}

#[tokio::test]
async fn orphan_delete_leaves_pods_and_shutdown_kills_every_process() {
    let bin = entrypoint_dir();
    let mut sim = start(bin.path(), false, &[]);
    // No exec: `sleep` is the shell's child, in the pod's process group.
    create_job(
        &sim.addr,
        &job("sleepers", 2, "sleep 60; echo never", json!({}), json!({})),
    )
    .await;
    let pods = wait_pods(&sim.addr, "sleepers", 2, "Running").await;
    // No propagationPolicy: Orphan, the Job resource's default. The pods keep running.
    let deleted = call(
        &sim.addr,
        "DELETE",
        &format!("/apis/batch/v1/namespaces/{NS}/jobs/sleepers"),
        AUTH,
        "",
    )
    .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    let left = list_pods(&sim.addr, "sleepers").await;
    assert_eq!(left.len(), 2);
    assert!(
        left.values().all(|pod| pod["status"]["phase"] == "Running"),
        "{left:#?}"
    );
    // Deleting one pod kills its process.
    let first = pid_of(&pods[&0]);
    let gone = call(
        &sim.addr,
        "DELETE",
        &format!("/api/v1/namespaces/{NS}/pods/{}", name_of(&pods[&0])),
        AUTH,
        "",
    )
    .await;
    assert_eq!(gone.status, 200);
    wait_gone(first).await;
    // apisim's shutdown ends the other, and what it started.
    let second = pid_of(&pods[&1]);
    let grandchildren = children_of(second).await;
    sim.terminate();
    assert!(sim.wait_exit(), "apisim exits 0");
    wait_gone(second).await;
    for pid in grandchildren {
        wait_gone(pid).await;
    }
}

#[tokio::test]
async fn kubectl_gets_jobs_and_pods_and_reads_logs_over_tls() {
    let found = Command::new("kubectl")
        .args(["version", "--client"])
        .output();
    assert!(
        found.is_ok_and(|output| output.status.success()),
        "kubectl is needed by this test (scripts/test.sh installs it)"
    );
    let bin = entrypoint_dir();
    let sim = start(bin.path(), true, &[]);
    assert!(sim.url.starts_with("https://"));
    let manifest = sim.dir.path().join("job.json");
    // The pod reaches apisim as an in-cluster client would: service host and port, the relocated
    // service-account token and CA.
    let script = "sa=$KREPLAY_SERVICE_ACCOUNT_DIR; \
                  code=$(curl -sS --cacert $sa/ca.crt -H \"Authorization: Bearer $(cat $sa/token)\" -o /dev/null \
                  -w '%{http_code}' https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/apis/batch/v1/namespaces/$(cat $sa/namespace)/jobs/viakubectl); \
                  echo in-cluster $code; echo hello from $JOB_COMPLETION_INDEX";
    let mut object = job("viakubectl", 2, script, json!({}), json!({}));
    object["metadata"]["namespace"] = json!("default");
    std::fs::write(&manifest, object.to_string()).expect("write manifest");
    let kubectl = |args: &[&str]| {
        let output = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&sim.kubeconfig)
            .args(["--request-timeout", "20s"])
            .args(args)
            .output()
            .expect("run kubectl");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "kubectl {args:?}: {}{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };
    kubectl(&["create", "-f", manifest.to_str().expect("utf-8")]);
    // What `engine job manifest` may emit beside the Job: creatable and deletable.
    let access = sim.dir.path().join("access.json");
    let objects = json!([
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "runner", "namespace": "default"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kc", "namespace": "default"},
         "stringData": {"config": "x"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "replay"},
         "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "replay"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "replay"},
         "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": "default"}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "pods", "namespace": "default"},
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "pods", "namespace": "default"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pods"},
         "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": "default"}]},
    ]);
    // kubectl reads a file of concatenated JSON objects as a stream of documents.
    let documents: Vec<String> = objects
        .as_array()
        .expect("array")
        .iter()
        .map(Value::to_string)
        .collect();
    std::fs::write(&access, documents.join("\n")).expect("write access manifest");
    let access = access.to_str().expect("utf-8");
    let created = kubectl(&["create", "-f", access]);
    assert_eq!(created.lines().count(), 6, "{created}");
    let deleted = kubectl(&["delete", "-f", access]);
    assert_eq!(deleted.lines().count(), 6, "{deleted}");
    kubectl(&[
        "wait",
        "--for=condition=Complete",
        "job/viakubectl",
        "--timeout=20s",
    ]);
    let listed = kubectl(&["get", "jobs,pods", "-o", "name"]);
    assert!(listed.contains("job.batch/viakubectl"), "{listed}");
    let pods: Vec<&str> = listed
        .lines()
        .filter(|l| l.starts_with("pod/viakubectl-"))
        .collect();
    assert_eq!(pods.len(), 2, "{listed}");
    let logs = kubectl(&["logs", "-l", "batch.kubernetes.io/job-completion-index=1"]);
    assert_eq!(logs, "in-cluster 200\nhello from 1\n");
    // The Job's defaulted selector lets kubectl find its pods.
    let by_job = kubectl(&["logs", "job/viakubectl"]);
    assert!(
        by_job.starts_with("in-cluster 200\nhello from "),
        "{by_job}"
    );
    let tail = kubectl(&["logs", pods[0], "--tail", "1"]);
    assert!(tail.starts_with("hello from "), "{tail}");
    kubectl(&["delete", "job", "viakubectl", "--wait=true"]);
    let after = kubectl(&["get", "jobs,pods", "-o", "name"]);
    assert!(
        after.trim().is_empty(),
        "kubectl deletes with Background propagation: {after}"
    );
}

//! The harness: apisim with `--run-jobs`, Jobs to create, and bounded waits on watches and
//! processes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::util::{call, request, Answer, ApiSim, WatchReader, H1, WAIT};
use serde_json::{json, Value};

pub(super) const TOKEN: &str = "jobs-test-token";
pub(super) const AUTH: &[(&str, &str)] = &[("authorization", "Bearer jobs-test-token")];
pub(super) const NS: &str = "lab";

/// A directory holding `sh -> /bin/sh`: containers whose `command[0]` is `/bin/sh` resolve there.
pub(super) fn entrypoint_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::os::unix::fs::symlink("/bin/sh", dir.path().join("sh")).expect("symlink sh");
    dir
}

/// apisim with `--run-jobs`, its pod directories in a temp dir of the test (removed even when the
/// test kills apisim).
pub(super) struct Lab {
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

pub(super) fn start(bin: &Path, tls: bool, extra: &[&str]) -> Lab {
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
pub(super) fn job(
    name: &str,
    completions: u32,
    script: &str,
    extra: Value,
    container: Value,
) -> Value {
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

pub(super) fn merge(target: &mut Value, extra: &Value) {
    if let (Some(target), Some(extra)) = (target.as_object_mut(), extra.as_object()) {
        for (key, value) in extra {
            target.insert(key.clone(), value.clone());
        }
    }
}

pub(super) async fn get(addr: &str, target: &str) -> Answer {
    call(addr, "GET", target, AUTH, "").await
}

pub(super) async fn create(addr: &str, collection: &str, object: &Value) -> Value {
    let answer = call(addr, "POST", collection, AUTH, &object.to_string()).await;
    assert_eq!(
        answer.status,
        201,
        "create in {collection}: {}",
        answer.text()
    );
    answer.json()
}

pub(super) async fn create_job(addr: &str, object: &Value) -> Value {
    create(
        addr,
        &format!("/apis/batch/v1/namespaces/{NS}/jobs"),
        object,
    )
    .await
}

/// Follows a watch of `target` until `done` holds for the objects seen (by name); returns them.
pub(super) async fn watch_until(
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

pub(super) fn has_condition(job: &Value, kind: &str) -> bool {
    job["status"]["conditions"].as_array().is_some_and(|list| {
        list.iter()
            .any(|c| c["type"] == kind && c["status"] == "True")
    })
}

/// Waits until the Job has a Complete or Failed condition; returns it.
pub(super) async fn wait_finished(addr: &str, name: &str) -> Value {
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
pub(super) async fn phase_history(
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
pub(super) async fn wait_pods(
    addr: &str,
    job: &str,
    count: usize,
    phase: &str,
) -> BTreeMap<u32, Value> {
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

pub(super) fn by_index(pods: impl Iterator<Item = Value>) -> BTreeMap<u32, Value> {
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

pub(super) async fn list_pods(addr: &str, job: &str) -> BTreeMap<u32, Value> {
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

pub(super) fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().expect("name")
}

pub(super) fn pid_of(pod: &Value) -> u32 {
    pod["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .and_then(|id| id.strip_prefix("apisim://"))
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no apisim containerID in {pod:#}"))
}

/// Waits (bounded) until no process has `pid` any more.
pub(super) async fn wait_gone(pid: u32) {
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
pub(super) async fn children_of(pid: u32) -> Vec<u32> {
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

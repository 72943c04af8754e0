//! The Job controller's task for one Indexed Job: creates its pods (at most `parallelism` at a time),
//! retries or fails indexes as `backoffLimit` / `backoffLimitPerIndex` say, ends a failed Job's running
//! pods, and writes the Job's status through the store.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, watch, Notify};

use super::logs::{LogBuffer, LOG_LIMIT};
use super::{kubelet, lock, JobEvent, JobRuntime, Jobs, PodRuntime, JOBS, MAX_GRACE, PODS};
use crate::apisim::handlers::generated_name;
use crate::apisim::status::ApiError;
use crate::apisim::store::{metadata_str, now_rfc3339, ObjectKey, WriteOp};
use crate::apisim::Shared;

/// What the controller reads from a Job's spec.
#[derive(Debug)]
pub(super) struct JobSpec {
    completions: u32,
    parallelism: u32,
    backoff_limit: u32,
    backoff_limit_per_index: Option<u32>,
    template: Value,
}

pub(super) fn job_spec(job: &Value) -> Result<JobSpec, String> {
    let spec = job.get("spec").ok_or("the Job has no spec")?;
    let mode = spec
        .get("completionMode")
        .and_then(Value::as_str)
        .unwrap_or("NonIndexed");
    if mode != "Indexed" {
        return Err(format!(
            "spec.completionMode is {mode:?}; apisim runs only Indexed Jobs"
        ));
    }
    let count = |field: &str, default: Option<u64>| -> Result<Option<u32>, String> {
        match spec.get(field) {
            None | Some(Value::Null) => Ok(default.map(|d| d as u32)),
            Some(value) => value
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| format!("spec.{field} must be a non-negative integer")),
        }
    };
    let completions = count("completions", None)?
        .filter(|n| *n > 0)
        .ok_or("spec.completions must be set (> 0) for an Indexed Job")?;
    if spec.get("suspend").and_then(Value::as_bool) == Some(true) {
        return Err("the Job is suspended (spec.suspend: true)".to_string());
    }
    let template = spec
        .get("template")
        .cloned()
        .ok_or("spec.template is missing")?;
    Ok(JobSpec {
        completions,
        parallelism: count("parallelism", Some(1))?.unwrap_or(1).max(1),
        backoff_limit: count("backoffLimit", Some(6))?.unwrap_or(6),
        backoff_limit_per_index: count("backoffLimitPerIndex", None)?,
        template,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum IndexState {
    Waiting,
    Active,
    Succeeded,
    Failed,
}

/// The Job's progress, from which its status is written.
struct Progress {
    start_time: String,
    states: Vec<IndexState>,
    failures: Vec<u32>,
    active: Vec<Option<Arc<PodRuntime>>>,
    succeeded_pods: u32,
    failed_pods: u32,
}

impl Progress {
    fn active_count(&self) -> usize {
        self.states
            .iter()
            .filter(|s| **s == IndexState::Active)
            .count()
    }

    fn indexes(&self, state: IndexState) -> String {
        compress_indexes(
            self.states
                .iter()
                .enumerate()
                .filter(|(_, s)| **s == state)
                .map(|(i, _)| i as u32),
        )
    }
}

/// `0-2,4,6-7`: the apiserver's form of `completedIndexes` / `failedIndexes`.
pub(crate) fn compress_indexes(indexes: impl Iterator<Item = u32>) -> String {
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for index in indexes {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == index => *end = index,
            _ => ranges.push((index, index)),
        }
    }
    ranges
        .iter()
        .map(|(start, end)| match end - start {
            0 => start.to_string(),
            _ => format!("{start}-{end}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub(super) async fn run_job(
    shared: Arc<Shared>,
    job: Arc<JobRuntime>,
    spec: JobSpec,
    mut events: mpsc::UnboundedReceiver<JobEvent>,
) {
    let n = spec.completions as usize;
    let mut progress = Progress {
        start_time: now_rfc3339(),
        states: vec![IndexState::Waiting; n],
        failures: vec![0; n],
        active: vec![None; n],
        succeeded_pods: 0,
        failed_pods: 0,
    };
    let mut queue: VecDeque<u32> = (0..spec.completions).collect();
    loop {
        if job.deleting.load(Ordering::SeqCst) {
            return;
        }
        while progress.active_count() < spec.parallelism as usize {
            // A deletion may have begun on another worker thread while pods were being created.
            if job.deleting.load(Ordering::SeqCst) {
                return;
            }
            let Some(index) = queue.pop_front() else {
                break;
            };
            match start_pod(&shared, &job, &spec, index) {
                Ok(pod) => {
                    progress.states[index as usize] = IndexState::Active;
                    progress.active[index as usize] = Some(pod);
                }
                Err(error) => {
                    // Only a store failure gets here; the index counts as a failed pod.
                    tracing::warn!(
                        "Job {}/{}: cannot create the pod of index {index}: {}",
                        job.namespace,
                        job.name,
                        error.message
                    );
                    progress.failed_pods += 1;
                    progress.states[index as usize] = IndexState::Failed;
                }
            }
        }
        let finished = finished_condition(&spec, &progress);
        if let Some((_, "BackoffLimitExceeded", _)) = finished {
            stop_active_pods(&shared, &mut progress, &mut events).await;
        }
        write_job_status(&shared, &job, &spec, &progress, finished);
        if finished.is_some() {
            if let Some(jobs) = shared.jobs.as_ref() {
                lock(&jobs.jobs).remove(&job.uid);
            }
            return;
        }
        let event = tokio::select! {
            event = events.recv() => event,
            _ = job.wake.notified() => continue,
        };
        let Some(JobEvent::PodFinished { index, succeeded }) = event else {
            return;
        };
        let slot = index as usize;
        progress.active[slot] = None;
        if succeeded {
            progress.succeeded_pods += 1;
            progress.states[slot] = IndexState::Succeeded;
            continue;
        }
        progress.failed_pods += 1;
        progress.failures[slot] += 1;
        progress.states[slot] = IndexState::Failed;
        let retry = match spec.backoff_limit_per_index {
            Some(limit) => progress.failures[slot] <= limit,
            None => progress.failed_pods <= spec.backoff_limit,
        };
        if retry {
            progress.states[slot] = IndexState::Waiting;
            queue.push_back(index);
        }
    }
}

/// The final condition when the Job is done: (type, reason, message).
fn finished_condition(
    spec: &JobSpec,
    progress: &Progress,
) -> Option<(&'static str, &'static str, &'static str)> {
    if spec.backoff_limit_per_index.is_none() && progress.failed_pods > spec.backoff_limit {
        return Some((
            "Failed",
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
        ));
    }
    let done = |s: &IndexState| matches!(s, IndexState::Succeeded | IndexState::Failed);
    if !progress.states.iter().all(done) {
        return None;
    }
    if progress.states.contains(&IndexState::Failed) {
        Some(("Failed", "FailedIndexes", "Job has failed indexes"))
    } else {
        Some((
            "Complete",
            "CompletionsReached",
            "Reached expected number of succeeded pods",
        ))
    }
}

/// A failed Job ends its running pods, as the Job controller does: stop their processes and delete them.
async fn stop_active_pods(
    shared: &Arc<Shared>,
    progress: &mut Progress,
    events: &mut mpsc::UnboundedReceiver<JobEvent>,
) {
    let active: Vec<Arc<PodRuntime>> = progress
        .active
        .iter_mut()
        .filter_map(Option::take)
        .collect();
    for pod in &active {
        pod.request_stop();
    }
    for pod in &active {
        pod.wait_finished().await;
        delete_pod(shared, &pod.namespace, &pod.name, &pod.uid);
    }
    while let Ok(JobEvent::PodFinished { index, .. }) = events.try_recv() {
        progress.failed_pods += 1;
        progress.states[index as usize] = IndexState::Failed;
    }
    for state in progress.states.iter_mut() {
        if *state != IndexState::Succeeded {
            *state = IndexState::Failed;
        }
    }
}

/// Deletes the Pod object `namespace/name` when it is still the pod `uid`.
fn delete_pod(shared: &Shared, namespace: &str, name: &str, uid: &str) {
    let key = ObjectKey {
        collection: PODS.to_string(),
        namespace: namespace.to_string(),
        name: name.to_string(),
    };
    let _ = shared.store.write(&key, |current| match current {
        Some(current) if metadata_str(&current.value, "uid") == uid => Ok(WriteOp::Delete),
        _ => Err(ApiError::path_not_found()),
    });
}

/// Stops and deletes every pod of the Job `uid` (Background/Foreground deletion of the Job).
pub(crate) async fn delete_job_pods(shared: &Arc<Shared>, jobs: &Jobs, namespace: &str, uid: &str) {
    let owned = |pod: &Value| {
        pod.pointer("/metadata/labels/controller-uid")
            .and_then(Value::as_str)
            == Some(uid)
    };
    let pods = shared
        .store
        .list(PODS, Some(namespace), None, 0, &|object| {
            owned(&object.value)
        })
        .items;
    let mut stopping = Vec::new();
    for pod in &pods {
        let name = metadata_str(&pod.value, "name");
        if let Some(runtime) = jobs
            .pod(namespace, name)
            .filter(|r| r.uid == metadata_str(&pod.value, "uid"))
        {
            runtime.request_stop();
            stopping.push(runtime);
        }
    }
    for runtime in &stopping {
        runtime.wait_finished().await;
    }
    for pod in &pods {
        delete_pod(
            shared,
            namespace,
            metadata_str(&pod.value, "name"),
            metadata_str(&pod.value, "uid"),
        );
    }
}

/// Creates the Pod object of `index` and starts its kubelet task.
fn start_pod(
    shared: &Arc<Shared>,
    job: &Arc<JobRuntime>,
    spec: &JobSpec,
    index: u32,
) -> Result<Arc<PodRuntime>, ApiError> {
    let jobs = shared
        .jobs
        .as_ref()
        .ok_or_else(|| ApiError::internal("jobs are not enabled"))?;
    let pod = pod_object(job, spec, index);
    let grace = pod
        .pointer("/spec/terminationGracePeriodSeconds")
        .and_then(Value::as_u64)
        .map_or(MAX_GRACE, |s| Duration::from_secs(s).min(MAX_GRACE));
    // A generated name may collide with an existing pod; a few draws make that vanishingly rare.
    let mut attempt = 0;
    let stored = loop {
        let name = generated_name(shared, &format!("{}-{index}-", job.name));
        let mut value = pod.clone();
        value["metadata"]["name"] = Value::String(name.clone());
        let key = ObjectKey {
            collection: PODS.to_string(),
            namespace: job.namespace.clone(),
            name: name.clone(),
        };
        let written = shared.store.write(&key, |current| match current {
            Some(_) => Err(ApiError::already_exists("pods", "", "pods", &name)),
            None => Ok(WriteOp::Put(value)),
        });
        match written {
            Ok(outcome) => break outcome.object,
            Err(error) if error.code == 409 && attempt < 5 => attempt += 1,
            Err(error) => return Err(error),
        }
    };
    let runtime = Arc::new(PodRuntime {
        namespace: job.namespace.clone(),
        name: metadata_str(&stored.value, "name").to_string(),
        uid: metadata_str(&stored.value, "uid").to_string(),
        index,
        container: Mutex::new(String::new()),
        logs: LogBuffer::new(LOG_LIMIT),
        ports: Mutex::new(Vec::new()),
        pgid: AtomicI32::new(0),
        started: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        terminate: Notify::new(),
        grace,
        finished: watch::channel(false).0,
    });
    lock(&jobs.pods).insert(
        (runtime.namespace.clone(), runtime.name.clone()),
        runtime.clone(),
    );
    tokio::spawn(kubelet::run(
        shared.clone(),
        runtime.clone(),
        stored.value.clone(),
        job.events.clone(),
    ));
    Ok(runtime)
}

/// The Pod the Job controller creates for `index` (name filled in by the caller).
fn pod_object(job: &JobRuntime, spec: &JobSpec, index: u32) -> Value {
    let template = &spec.template;
    let index_text = index.to_string();
    let mut labels = template
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (key, value) in [
        ("job-name", job.name.as_str()),
        ("batch.kubernetes.io/job-name", job.name.as_str()),
        ("controller-uid", job.uid.as_str()),
        ("batch.kubernetes.io/controller-uid", job.uid.as_str()),
        (
            "batch.kubernetes.io/job-completion-index",
            index_text.as_str(),
        ),
    ] {
        labels.insert(key.to_string(), Value::String(value.to_string()));
    }
    let mut annotations = template
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    annotations.insert(
        "batch.kubernetes.io/job-completion-index".to_string(),
        Value::String(index_text.clone()),
    );
    let mut pod_spec = template.get("spec").cloned().unwrap_or_else(|| json!({}));
    // As the Job controller does: every container gets JOB_COMPLETION_INDEX from the annotation.
    if let Some(containers) = pod_spec.get_mut("containers").and_then(Value::as_array_mut) {
        for container in containers {
            let env = container
                .as_object_mut()
                .map(|c| c.entry("env").or_insert_with(|| json!([])));
            if let Some(Value::Array(env)) = env {
                env.retain(|var| {
                    var.get("name").and_then(Value::as_str) != Some("JOB_COMPLETION_INDEX")
                });
                env.push(json!({"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
                    "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}}));
            }
        }
    }
    if let Some(map) = pod_spec.as_object_mut() {
        map.insert("nodeName".to_string(), json!("apisim"));
        map.entry("hostname")
            .or_insert_with(|| json!(format!("{}-{index}", job.name)));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "",
            "generateName": format!("{}-{index}-", job.name),
            "namespace": job.namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "Job", "name": job.name, "uid": job.uid,
                "controller": true, "blockOwnerDeletion": true
            }],
        },
        "spec": pod_spec,
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": now_rfc3339()}],
            "qosClass": "BestEffort",
        },
    })
}

fn write_job_status(
    shared: &Shared,
    job: &JobRuntime,
    spec: &JobSpec,
    progress: &Progress,
    finished: Option<(&'static str, &'static str, &'static str)>,
) {
    if job.deleting.load(Ordering::SeqCst) {
        return;
    }
    let mut status = Map::new();
    status.insert("startTime".into(), json!(progress.start_time));
    status.insert("active".into(), json!(progress.active_count()));
    status.insert("ready".into(), json!(progress.active_count()));
    status.insert("succeeded".into(), json!(progress.succeeded_pods));
    status.insert("failed".into(), json!(progress.failed_pods));
    status.insert("terminating".into(), json!(0));
    status.insert("uncountedTerminatedPods".into(), json!({}));
    let completed = progress.indexes(IndexState::Succeeded);
    if !completed.is_empty() {
        status.insert("completedIndexes".into(), json!(completed));
    }
    if spec.backoff_limit_per_index.is_some() || finished.is_some() {
        let failed = progress.indexes(IndexState::Failed);
        if spec.backoff_limit_per_index.is_some() {
            status.insert("failedIndexes".into(), json!(failed));
        }
    }
    if let Some((kind, reason, message)) = finished {
        let now = now_rfc3339();
        let condition = |kind: &str| {
            json!({"type": kind, "status": "True", "reason": reason, "message": message,
                   "lastProbeTime": now, "lastTransitionTime": now})
        };
        // Kubernetes 1.31+ sets SuccessCriteriaMet / FailureTarget first, then Complete / Failed.
        let interim = if kind == "Complete" {
            "SuccessCriteriaMet"
        } else {
            "FailureTarget"
        };
        status.insert(
            "conditions".into(),
            json!([condition(interim), condition(kind)]),
        );
        if kind == "Complete" {
            status.insert("completionTime".into(), json!(now));
        }
    }
    let key = ObjectKey {
        collection: JOBS.to_string(),
        namespace: job.namespace.clone(),
        name: job.name.clone(),
    };
    let _ = shared.store.write(&key, |current| match current {
        Some(current) if metadata_str(&current.value, "uid") == job.uid => {
            let mut value = current.value.clone();
            value["status"] = Value::Object(status);
            default_selector(&mut value, &job.uid);
            Ok(WriteOp::Put(value))
        }
        _ => Err(ApiError::path_not_found()),
    });
}

/// What the apiserver's Job defaulting adds and clients rely on (`kubectl logs job/NAME` selects the
/// pods by it): `spec.selector` on the controller-uid label, and the labels in the pod template.
fn default_selector(job: &mut Value, uid: &str) {
    let Some(spec) = job.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    spec.entry("selector")
        .or_insert_with(|| json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}));
    let labelled = spec
        .get("template")
        .and_then(|t| t.pointer("/metadata/labels/job-name"))
        .is_some();
    if labelled {
        return;
    }
    let job_name = job
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if let Some(template) = job
        .pointer_mut("/spec/template")
        .and_then(Value::as_object_mut)
    {
        let metadata = template.entry("metadata").or_insert_with(|| json!({}));
        if !metadata.get("labels").is_some_and(Value::is_object) {
            metadata["labels"] = json!({});
        }
        let labels = &mut metadata["labels"];
        labels["job-name"] = json!(job_name);
        labels["batch.kubernetes.io/job-name"] = json!(job_name);
        labels["controller-uid"] = json!(uid);
        labels["batch.kubernetes.io/controller-uid"] = json!(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_compress_to_ranges() {
        assert_eq!(
            compress_indexes([0, 1, 2, 4, 6, 7].into_iter()),
            "0-2,4,6-7"
        );
        assert_eq!(compress_indexes(std::iter::empty()), "");
        assert_eq!(compress_indexes([3].into_iter()), "3");
    }

    #[test]
    fn only_indexed_jobs_with_completions_run() {
        let indexed = json!({"spec": {"completionMode": "Indexed", "completions": 3, "parallelism": 3,
                                      "backoffLimit": 0, "template": {"spec": {}}}});
        let spec = job_spec(&indexed).unwrap();
        assert_eq!(
            (spec.completions, spec.parallelism, spec.backoff_limit),
            (3, 3, 0)
        );
        assert!(
            job_spec(&json!({"spec": {"completions": 1, "template": {}}}))
                .unwrap_err()
                .contains("Indexed")
        );
        assert!(
            job_spec(&json!({"spec": {"completionMode": "Indexed", "template": {}}}))
                .unwrap_err()
                .contains("completions")
        );
    }
}

//! The controller's view of the store: follows its Job and Pod events as an informer would (relisting
//! when its place in the event history was compacted away), starts a task per new Indexed Job, and
//! stops the processes of deleted pods.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{mpsc, Notify};

use super::controller::{job_spec, run_job};
use super::{lock, JobRuntime, Jobs, PodRuntime, JOBS, PODS};
use crate::apisim::store::{metadata_str, ObjectKey, StoreEvent};
use crate::apisim::Shared;

/// Events read from the history per lock.
const BATCH: usize = 256;

/// Follows the store until apisim shuts down.
pub(crate) async fn run(shared: Arc<Shared>) {
    if shared.jobs.is_none() {
        return;
    }
    let mut changes = shared.store.subscribe();
    let mut shutdown = shared.shutdown.clone();
    let mut last = relist(&shared);
    loop {
        let current = *changes.borrow_and_update();
        let concerns =
            |event: &StoreEvent| event.key.collection == JOBS || event.key.collection == PODS;
        match shared.store.events_after(last, BATCH, &concerns) {
            Ok(events) => {
                let complete = events.len() < BATCH;
                for event in &events {
                    on_event(&shared, event);
                    last = event.resource_version;
                }
                if !complete {
                    continue;
                }
                last = last.max(current);
            }
            Err(_) => {
                // Our place in the history was compacted away: start over from the current state.
                last = relist(&shared);
                continue;
            }
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

/// Reconciles with the current state; returns the resourceVersion it read.
fn relist(shared: &Arc<Shared>) -> u64 {
    let Some(jobs) = shared.jobs.as_ref() else {
        return 0;
    };
    let resource_version = shared.store.resource_version();
    for job in shared.store.list(JOBS, None, None, 0, &|_| true).items {
        job_seen(shared, jobs, &job.value);
    }
    let live: Vec<Arc<PodRuntime>> = lock(&jobs.pods).values().cloned().collect();
    for pod in live {
        let key = ObjectKey {
            collection: PODS.to_string(),
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
        };
        let exists = shared
            .store
            .get(&key)
            .is_some_and(|object| metadata_str(&object.value, "uid") == pod.uid);
        if !exists {
            pod_deleted(jobs, &pod.namespace, &pod.name, &pod.uid);
        }
    }
    resource_version
}

fn on_event(shared: &Arc<Shared>, event: &StoreEvent) {
    let Some(jobs) = shared.jobs.as_ref() else {
        return;
    };
    let uid = metadata_str(&event.object.value, "uid");
    match (event.key.collection.as_str(), event.event_type.as_str()) {
        (JOBS, "ADDED") => job_seen(shared, jobs, &event.object.value),
        (JOBS, "DELETED") => {
            if let Some(job) = lock(&jobs.jobs).remove(uid) {
                job.stop();
            }
        }
        (PODS, "DELETED") => pod_deleted(jobs, &event.key.namespace, &event.key.name, uid),
        _ => {}
    }
}

fn pod_deleted(jobs: &Jobs, namespace: &str, name: &str, uid: &str) {
    let key = (namespace.to_string(), name.to_string());
    let mut pods = lock(&jobs.pods);
    if pods.get(&key).is_some_and(|pod| pod.uid == uid) {
        if let Some(pod) = pods.remove(&key) {
            pod.request_stop();
        }
    }
}

/// A Job appeared (created, or found at a relist): start carrying it out unless it is already known,
/// already has a status, or is not an Indexed Job.
fn job_seen(shared: &Arc<Shared>, jobs: &Jobs, job: &Value) {
    let uid = metadata_str(job, "uid").to_string();
    let (namespace, name) = (metadata_str(job, "namespace"), metadata_str(job, "name"));
    if lock(&jobs.jobs).contains_key(&uid) {
        return;
    }
    if job.pointer("/status/startTime").is_some() {
        return;
    }
    let spec = match job_spec(job) {
        Ok(spec) => spec,
        Err(why) => {
            tracing::warn!("--run-jobs leaves Job {namespace}/{name} alone: {why}");
            return;
        }
    };
    let (events, receiver) = mpsc::unbounded_channel();
    let runtime = Arc::new(JobRuntime {
        namespace: namespace.to_string(),
        name: name.to_string(),
        uid: uid.clone(),
        deleting: AtomicBool::new(false),
        events,
        wake: Notify::new(),
    });
    lock(&jobs.jobs).insert(uid, runtime.clone());
    tokio::spawn(run_job(shared.clone(), runtime, spec, receiver));
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use crate::apisim::store::WriteOp;
    use crate::apisim::{serve, ApiSimConfig, RunJobsConfig};

    use super::*;

    fn key(collection: &str, name: &str) -> ObjectKey {
        ObjectKey {
            collection: collection.to_string(),
            namespace: "ns".to_string(),
            name: name.to_string(),
        }
    }

    #[tokio::test]
    async fn a_job_whose_event_was_compacted_away_is_found_by_relisting() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/bin/sh", dir.path().join("sh")).unwrap();
        let sim = serve(ApiSimConfig {
            watch_history: 1,
            run_jobs: Some(RunJobsConfig {
                entrypoint: dir.path().join("sh"),
                pods_dir: Some(dir.path().to_path_buf()),
                ..RunJobsConfig::default()
            }),
            ..ApiSimConfig::default()
        })
        .await
        .unwrap();
        let store = &sim.shared.store;
        // Let the informer take its place in the history first.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        // The Job and five more writes without yielding: with a history of one event, the Job's
        // ADDED is gone before the informer runs again.
        let job = json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "missed", "namespace": "ns"},
            "spec": {"completionMode": "Indexed", "completions": 1, "parallelism": 1, "backoffLimit": 0,
                     "template": {"spec": {"containers": [{"name": "c", "command": ["/bin/sh", "-c", "exit 0"]}]}}}});
        store
            .write(&key(JOBS, "missed"), |_| Ok(WriteOp::Put(job)))
            .unwrap();
        for i in 0..5 {
            let config_map = json!({"metadata": {"name": format!("cm{i}"), "namespace": "ns"}});
            store
                .write(&key("/configmaps", &format!("cm{i}")), |_| {
                    Ok(WriteOp::Put(config_map))
                })
                .unwrap();
        }
        assert!(
            store.events_after(1, 10, &|_| true).is_err(),
            "history compacted"
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let job = store.get(&key(JOBS, "missed")).unwrap();
            let conditions = job.value.pointer("/status/conditions").cloned();
            if let Some(conditions) = conditions {
                assert!(
                    conditions.to_string().contains("\"Complete\""),
                    "{conditions}"
                );
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "the Job never ran");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        sim.shutdown();
    }
}

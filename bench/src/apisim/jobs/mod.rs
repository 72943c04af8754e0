//! `apisim --run-jobs`: just enough of the Job controller, the kubelet and the pod subresources that an
//! Indexed `batch/v1` Job given to apisim is carried out by running each index as a local process.
//!
//! - `informer`: follows the store's Job and Pod events and starts or stops what they call for.
//! - `controller`: one task per Job that creates its Pod objects, retries or fails indexes and writes
//!   the Job's status.
//! - `kubelet`: one task per pod: pod directory, environment, the child process, pod status.
//! - `podspec`, `volumes`: the pure mapping from a Pod object to a command line, environment, ports
//!   and volumes.
//! - `logs`, `proxy`: the `pods/NAME/log` and `pods/NAME[:PORT]/proxy/PATH` subresources.
//!
//! The engine's `job` commands rely on the behaviour documented in bench/README.md ("Running Jobs").

mod controller;
mod informer;
mod kubelet;
mod logs;
mod podspec;
mod proxy;
mod volumes;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::{Method, Response};
use serde_json::Value;
use tokio::sync::{mpsc, watch, Notify};

use super::body::{error_response, json_bytes, ApiBody};
use super::handlers::ApiRequest;
use super::status::ApiError;
use super::store::{metadata_str, ObjectKey, WriteOp};
use super::Shared;
pub(crate) use informer::run as run_controller;

/// Store collection of Jobs.
const JOBS: &str = "batch/jobs";
/// Store collection of Pods.
const PODS: &str = "/pods";
/// apisim's cap on a pod's `terminationGracePeriodSeconds` (Kubernetes' default is 30 s).
const MAX_GRACE: Duration = Duration::from_secs(5);

/// What `--run-jobs` needs.
#[derive(Debug, Clone, Default)]
pub struct RunJobsConfig {
    /// The local binary standing in for the image's entrypoint; `command[0]` resolves by basename in its
    /// directory.
    pub entrypoint: PathBuf,
    /// PersistentVolumeClaim name → host directory (`--pvc NAME=DIR`).
    pub pvcs: BTreeMap<String, PathBuf>,
    /// Where the `apisim-pods-*` directory holding the pod directories is made (`--pods-dir`; default
    /// the system's temp directory).
    pub pods_dir: Option<PathBuf>,
}

/// Parses `--pvc NAME=DIR`.
pub fn parse_pvc_flag(spec: &str) -> Result<(String, PathBuf), String> {
    match spec.split_once('=') {
        Some((name, dir)) if !name.is_empty() && !dir.is_empty() => {
            Ok((name.to_string(), PathBuf::from(dir)))
        }
        _ => Err(format!(
            "invalid --pvc {spec:?}: expected NAME=DIR (a PersistentVolumeClaim name and a host directory)"
        )),
    }
}

/// The job runner's state, shared by the controller, the kubelets and the request handlers.
pub(crate) struct Jobs {
    config: RunJobsConfig,
    /// Holds every pod directory; removed when apisim ends.
    pod_root: tempfile::TempDir,
    service_port: u16,
    token: String,
    ca_pem: Option<String>,
    /// Pods apisim runs, by (namespace, name).
    pods: Mutex<HashMap<(String, String), Arc<PodRuntime>>>,
    /// Jobs apisim carries out, by uid.
    jobs: Mutex<HashMap<String, Arc<JobRuntime>>>,
    /// Process groups of the pods' processes still running (also of pods already deleted).
    groups: Mutex<HashSet<i32>>,
    /// Set at shutdown: no process starts any more.
    stopping: AtomicBool,
}

impl Jobs {
    /// The runner for apisim listening on `service_port`, accepting `token`, serving `ca_pem` (TLS).
    pub fn new(
        config: RunJobsConfig,
        service_port: u16,
        token: String,
        ca_pem: Option<String>,
    ) -> std::io::Result<Self> {
        let mut builder = tempfile::Builder::new();
        builder
            .prefix("apisim-pods-")
            .permissions(std::fs::Permissions::from_mode(0o700));
        let pod_root = match &config.pods_dir {
            Some(dir) => builder.tempdir_in(dir)?,
            None => builder.tempdir()?,
        };
        Ok(Jobs {
            config,
            pod_root,
            service_port,
            token,
            ca_pem,
            pods: Mutex::new(HashMap::new()),
            jobs: Mutex::new(HashMap::new()),
            groups: Mutex::new(HashSet::new()),
            stopping: AtomicBool::new(false),
        })
    }

    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<PodRuntime>> {
        lock(&self.pods)
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// SIGKILLs every pod's process group and stops starting new ones (apisim shutdown).
    pub fn kill_all(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for pgid in lock(&self.groups).iter() {
            signal_group(*pgid, libc::SIGKILL);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// A pod apisim runs (or is about to run).
pub(crate) struct PodRuntime {
    namespace: String,
    name: String,
    uid: String,
    index: u32,
    container: Mutex<String>,
    logs: logs::LogBuffer,
    ports: Mutex<Vec<podspec::PortMap>>,
    /// Process group id while the process runs, 0 otherwise.
    pgid: AtomicI32,
    started: AtomicBool,
    /// The Pod object was deleted, or its Job is being torn down: do not start, stop if running.
    stop: AtomicBool,
    terminate: Notify,
    grace: Duration,
    finished: watch::Sender<bool>,
}

impl PodRuntime {
    fn running(&self) -> bool {
        self.pgid.load(Ordering::SeqCst) > 0
    }

    /// SIGTERM now, SIGKILL after the grace period (the kubelet task does both).
    fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.terminate.notify_one();
    }

    /// Waits (bounded by the grace period and a margin) until the kubelet task is done with the pod.
    async fn wait_finished(&self) {
        let mut finished = self.finished.subscribe();
        let _ = tokio::time::timeout(
            self.grace + Duration::from_secs(3),
            finished.wait_for(|done| *done),
        )
        .await;
    }
}

/// Sends `signal` to a process group (ignored when `pgid` is 0 or the group is gone).
fn signal_group(pgid: i32, signal: i32) {
    if pgid > 0 {
        // SAFETY: kill(2) takes plain integers; a negative pid addresses the process group.
        unsafe {
            libc::kill(-pgid, signal);
        }
    }
}

/// What a pod reports to its Job's task.
pub(crate) enum JobEvent {
    /// The pod of `index` ended (process exited, failed to start, or was stopped).
    PodFinished { index: u32, succeeded: bool },
}

/// A Job apisim carries out.
pub(crate) struct JobRuntime {
    namespace: String,
    name: String,
    uid: String,
    /// Being deleted (or deleted): no more pods, no more status writes.
    deleting: AtomicBool,
    events: mpsc::UnboundedSender<JobEvent>,
    wake: Notify,
}

impl JobRuntime {
    fn stop(&self) {
        self.deleting.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }
}

/// A pod subresource apisim serves itself when running jobs.
pub(crate) enum PodRoute {
    Log {
        namespace: String,
        name: String,
    },
    Proxy {
        namespace: String,
        name: String,
        port: Option<String>,
        rest: String,
    },
}

impl PodRoute {
    /// The verb metrics count the request under.
    pub fn verb(&self) -> &'static str {
        match self {
            PodRoute::Log { .. } => "GET",
            PodRoute::Proxy { .. } => "PROXY",
        }
    }
}

/// Recognises `/api/v1/namespaces/NS/pods/NAME/log` and `/api/v1/namespaces/NS/pods/NAME[:PORT]/proxy[/PATH]`.
pub(crate) fn pod_route(path: &str) -> Option<PodRoute> {
    let rest = path.strip_prefix("/api/v1/namespaces/")?;
    let (namespace, rest) = rest.split_once('/')?;
    let rest = rest.strip_prefix("pods/")?;
    let (name_port, sub) = rest.split_once('/')?;
    let (sub, tail) = match sub.split_once('/') {
        Some((sub, tail)) => (sub, Some(tail)),
        None => (sub, None),
    };
    if namespace.is_empty() || name_port.is_empty() {
        return None;
    }
    match sub {
        "log" if tail.is_none() && !name_port.contains(':') => Some(PodRoute::Log {
            namespace: namespace.to_string(),
            name: name_port.to_string(),
        }),
        "proxy" => {
            let (name, port) = match name_port.split_once(':') {
                // `scheme:name:port` is accepted too; only the port matters here.
                Some((name, port)) => (name, Some(port.rsplit(':').next().unwrap_or(port))),
                None => (name_port, None),
            };
            Some(PodRoute::Proxy {
                namespace: namespace.to_string(),
                name: name.to_string(),
                port: port.filter(|p| !p.is_empty()).map(str::to_string),
                rest: format!("/{}", tail.unwrap_or("")),
            })
        }
        _ => None,
    }
}

/// Serves a pod route; `None` from `pod_route` means the request is not one.
pub(crate) async fn serve_route(
    shared: &Arc<Shared>,
    route: PodRoute,
    parts: Parts,
    body: Incoming,
) -> Response<ApiBody> {
    let Some(jobs) = shared.jobs.as_ref() else {
        return error_response(&ApiError::path_not_found());
    };
    match route {
        PodRoute::Log { namespace, name } => {
            if parts.method != Method::GET {
                return error_response(&ApiError::method_not_allowed(parts.method.as_str()));
            }
            logs::serve(shared, jobs, &namespace, &name, parts.uri.query())
                .unwrap_or_else(|error| error_response(&error))
        }
        PodRoute::Proxy {
            namespace,
            name,
            port,
            rest,
        } => {
            proxy::forward(
                shared,
                jobs,
                &namespace,
                &name,
                port.as_deref(),
                &rest,
                parts,
                body,
            )
            .await
        }
    }
}

fn pod_not_found(name: &str) -> ApiError {
    ApiError::not_found("pods", "", "pods", name)
}

/// The pod (from the store) and apisim's runtime for it, when the two are the same pod.
fn pod_and_runtime(
    shared: &Shared,
    jobs: &Jobs,
    namespace: &str,
    name: &str,
) -> Result<(Value, Option<Arc<PodRuntime>>), ApiError> {
    let key = ObjectKey {
        collection: PODS.to_string(),
        namespace: namespace.to_string(),
        name: name.to_string(),
    };
    let pod = shared
        .store
        .get(&key)
        .ok_or_else(|| pod_not_found(name))?
        .value
        .clone();
    let runtime = jobs
        .pod(namespace, name)
        .filter(|runtime| runtime.uid == metadata_str(&pod, "uid"));
    Ok((pod, runtime))
}

/// Is this a DELETE of a Job that apisim must handle (propagation to its pods)?
pub(crate) fn is_job_delete(shared: &Shared, request: &ApiRequest<'_>) -> bool {
    shared.jobs.is_some()
        && request.verb == "DELETE"
        && request.path.group == "batch"
        && request.path.resource == "jobs"
        && request.path.subresource.is_none()
}

/// DELETE of a Job: with `propagationPolicy` Background or Foreground (query or DeleteOptions body),
/// stops its pods' processes (SIGTERM, SIGKILL after the grace period), deletes its Pod objects, then the
/// Job; with Orphan (the default for Jobs) deletes only the Job and leaves the pods running.
pub(crate) async fn delete_job(
    shared: &Arc<Shared>,
    request: &ApiRequest<'_>,
    query: Option<&str>,
) -> Result<Response<ApiBody>, ApiError> {
    let path = request.path;
    let name = path.name.as_deref().unwrap_or("");
    let namespace = path.namespace.as_deref().unwrap_or("");
    let policy = propagation_policy(query, &request.body)?;
    let key = ObjectKey {
        collection: JOBS.to_string(),
        namespace: namespace.to_string(),
        name: name.to_string(),
    };
    let not_found = || ApiError::not_found("jobs.batch", "batch", "jobs", name);
    let job = shared.store.get(&key).ok_or_else(not_found)?;
    let uid = metadata_str(&job.value, "uid").to_string();
    if policy != "Orphan" {
        if let Some(jobs) = shared.jobs.as_ref() {
            if let Some(runtime) = lock(&jobs.jobs).get(&uid) {
                runtime.stop();
            }
            controller::delete_job_pods(shared, jobs, namespace, &uid).await;
        }
    }
    let outcome = shared.store.write(&key, |current| match current {
        Some(_) => Ok(WriteOp::Delete),
        None => Err(not_found()),
    })?;
    Ok(json_bytes(200, outcome.object.json.clone()))
}

/// `propagationPolicy` from the query or the DeleteOptions body; Orphan when neither sets it (the
/// default of the Job resource), and also for the legacy `orphanDependents: true`.
fn propagation_policy(query: Option<&str>, body: &Bytes) -> Result<String, ApiError> {
    let valid = |policy: &str| -> Result<String, ApiError> {
        match policy {
            "Orphan" | "Background" | "Foreground" => Ok(policy.to_string()),
            other => Err(ApiError::invalid(format!(
                "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \
                 {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
            ))),
        }
    };
    if let Some(policy) = query
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("propagationPolicy="))
    {
        return valid(policy);
    }
    if !body.is_empty() {
        let options: Value = serde_json::from_slice(body).map_err(|error| {
            ApiError::bad_request(format!("the DeleteOptions body is not valid JSON: {error}"))
        })?;
        if let Some(policy) = options.get("propagationPolicy").and_then(Value::as_str) {
            return valid(policy);
        }
        if options.get("orphanDependents").and_then(Value::as_bool) == Some(false) {
            return Ok("Background".to_string());
        }
    }
    Ok("Orphan".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_of_the_pod_subresources() {
        match pod_route("/api/v1/namespaces/ns/pods/p-0-abcde/log") {
            Some(PodRoute::Log { namespace, name }) => {
                assert_eq!((namespace.as_str(), name.as_str()), ("ns", "p-0-abcde"))
            }
            _ => panic!("log route"),
        }
        match pod_route("/api/v1/namespaces/ns/pods/p:8086/proxy/report/x") {
            Some(PodRoute::Proxy {
                name, port, rest, ..
            }) => {
                assert_eq!(name, "p");
                assert_eq!(port.as_deref(), Some("8086"));
                assert_eq!(rest, "/report/x");
            }
            _ => panic!("proxy route"),
        }
        match pod_route("/api/v1/namespaces/ns/pods/p/proxy") {
            Some(PodRoute::Proxy { port, rest, .. }) => {
                assert_eq!(port, None);
                assert_eq!(rest, "/");
            }
            _ => panic!("bare proxy route"),
        }
        assert!(pod_route("/api/v1/namespaces/ns/pods/p").is_none());
        assert!(pod_route("/api/v1/namespaces/ns/pods/p/status").is_none());
        assert!(pod_route("/apis/batch/v1/namespaces/ns/jobs/j").is_none());
    }

    #[test]
    fn propagation_policy_from_query_or_body() {
        let none = Bytes::new();
        assert_eq!(propagation_policy(None, &none).unwrap(), "Orphan");
        assert_eq!(
            propagation_policy(Some("propagationPolicy=Background"), &none).unwrap(),
            "Background"
        );
        let body =
            Bytes::from_static(br#"{"kind":"DeleteOptions","propagationPolicy":"Foreground"}"#);
        assert_eq!(propagation_policy(None, &body).unwrap(), "Foreground");
        assert_eq!(
            propagation_policy(Some("propagationPolicy=Later"), &none)
                .unwrap_err()
                .code,
            422
        );
    }
}

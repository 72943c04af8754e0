//! The kubelet of one pod: lays out the pod directory (service account, volumes), starts the container's
//! process in its own process group, captures its output, stops it when asked, and writes the pod's
//! status through the store (Running, then Succeeded or Failed).

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use super::podspec::{self, Launch, PlanContext, PodFailure};
use super::volumes::VolumeContent;
use super::{lock, signal_group, JobEvent, Jobs, PodRuntime, PODS};
use crate::apisim::status::ApiError;
use crate::apisim::store::{metadata_str, now_rfc3339, ObjectKey, WriteOp};
use crate::apisim::Shared;

/// How long the output readers may run on after the process ended (a descendant may hold the pipes).
const DRAIN_WAIT: Duration = Duration::from_secs(2);

/// Runs the pod to its end and reports it to the Job's task.
pub(crate) async fn run(
    shared: Arc<Shared>,
    pod: Arc<PodRuntime>,
    object: Value,
    events: mpsc::UnboundedSender<JobEvent>,
) {
    let succeeded = run_pod(&shared, &pod, &object).await;
    pod.pgid.store(0, Ordering::SeqCst);
    pod.finished.send_replace(true);
    let _ = events.send(JobEvent::PodFinished {
        index: pod.index,
        succeeded,
    });
}

async fn run_pod(shared: &Arc<Shared>, pod: &Arc<PodRuntime>, object: &Value) -> bool {
    let Some(jobs) = shared.jobs.as_ref() else {
        return false;
    };
    if pod.stop.load(Ordering::SeqCst) || jobs.stopping.load(Ordering::SeqCst) {
        return false;
    }
    let dir = jobs
        .pod_root
        .path()
        .join(format!("{}_{}", pod.namespace, pod.name));
    *lock(&pod.container) = object
        .pointer("/spec/containers/0/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let launch = match plan(shared, jobs, pod, object, &dir) {
        Ok(launch) => launch,
        Err(failure) => {
            fail_before_start(shared, pod, &failure);
            return false;
        }
    };
    *lock(&pod.ports) = launch.ports.clone();
    let (mut child, output) = match start(jobs, pod, object, &dir, &launch) {
        Ok(started) => started,
        Err(failure) => {
            fail_before_start(shared, pod, &failure);
            return false;
        }
    };
    let pid = child.id().map_or(0, |id| id as i32);
    lock(&jobs.groups).insert(pid);
    pod.pgid.store(pid, Ordering::SeqCst);
    pod.started.store(true, Ordering::SeqCst);
    let reader = tokio::net::unix::pipe::Receiver::from_file(output)
        .map(|pipe| spawn_reader(pipe, pod.clone()));
    let started_at = now_rfc3339();
    update_status(shared, pod, |status| {
        running_status(status, &launch.container, pid, &started_at)
    });
    // A stop requested before the process existed (pod deleted meanwhile) applies now.
    if pod.stop.load(Ordering::SeqCst) || jobs.stopping.load(Ordering::SeqCst) {
        pod.terminate.notify_one();
    }
    let exit = tokio::select! {
        exit = child.wait() => exit,
        _ = pod.terminate.notified() => {
            signal_group(pid, libc::SIGTERM);
            match tokio::time::timeout(pod.grace, child.wait()).await {
                Ok(exit) => exit,
                Err(_) => {
                    signal_group(pid, libc::SIGKILL);
                    child.wait().await
                }
            }
        }
    };
    // The container ends with its main process: whatever it left running in its group goes too.
    signal_group(pid, libc::SIGKILL);
    lock(&jobs.groups).remove(&pid);
    if let Ok(reader) = reader {
        let _ = tokio::time::timeout(DRAIN_WAIT, reader).await;
    }
    let (code, succeeded) = match exit {
        Ok(status) => (exit_code(status), status.success()),
        Err(_) => (128, false),
    };
    let finished_at = now_rfc3339();
    update_status(shared, pod, |status| {
        terminated_status(
            status,
            &launch.container,
            pid,
            code,
            &started_at,
            &finished_at,
        )
    });
    succeeded
}

fn start_error(message: String) -> PodFailure {
    PodFailure {
        reason: "StartError",
        message,
    }
}

/// Lays out the pod directory and starts the process; returns it and the read end of its output.
fn start(
    jobs: &Jobs,
    pod: &PodRuntime,
    object: &Value,
    dir: &Path,
    launch: &Launch,
) -> Result<(tokio::process::Child, std::fs::File), PodFailure> {
    prepare_dir(jobs, pod, object, dir, launch).map_err(|error| {
        start_error(format!(
            "cannot prepare the pod directory {}: {error}",
            dir.display()
        ))
    })?;
    let (output, stdout_writer) = output_pipe()
        .map_err(|error| start_error(format!("cannot create the output pipe: {error}")))?;
    let stderr_writer = stdout_writer
        .try_clone()
        .map_err(|error| start_error(format!("cannot duplicate the output pipe: {error}")))?;
    let mut command = tokio::process::Command::new(&launch.program);
    command
        .args(&launch.args)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir(dir)
        .stdin(Stdio::null())
        // One pipe for both streams: the log keeps the order the process wrote in.
        .stdout(Stdio::from(stdout_writer))
        .stderr(Stdio::from(stderr_writer))
        .kill_on_drop(true)
        .process_group(0);
    // SAFETY: the closure runs between fork and exec and only calls prctl(2), which is async-signal-safe.
    // The child dies with apisim even if apisim is killed without a chance to clean up.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let spawned = command.spawn();
    // Our copies of the pipe's write end must close, or the reader never sees the end of the output.
    drop(command);
    let child = spawned.map_err(|error| {
        start_error(format!(
            "cannot run {} (the stand-in for the container's command): {error}",
            launch.program.display()
        ))
    })?;
    Ok((child, output))
}

fn plan(
    shared: &Shared,
    jobs: &Jobs,
    pod: &PodRuntime,
    object: &Value,
    dir: &Path,
) -> Result<Launch, PodFailure> {
    let lookup = |collection: &str, name: &str| {
        shared
            .store
            .get(&ObjectKey {
                collection: collection.to_string(),
                namespace: pod.namespace.clone(),
                name: name.to_string(),
            })
            .map(|object| object.value.clone())
    };
    let mut free_port = || {
        std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
    };
    let mut base_env = vec![
        (
            "PATH".to_string(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".to_string()),
        ),
        ("HOME".to_string(), dir.display().to_string()),
        ("HOSTNAME".to_string(), pod.name.clone()),
        (
            "KUBERNETES_SERVICE_HOST".to_string(),
            "127.0.0.1".to_string(),
        ),
        (
            "KUBERNETES_SERVICE_PORT".to_string(),
            jobs.service_port.to_string(),
        ),
    ];
    if automounts_token(object) {
        base_env.push((
            "KREPLAY_SERVICE_ACCOUNT_DIR".to_string(),
            dir.join("serviceaccount").display().to_string(),
        ));
    }
    if jobs.ca_pem.is_some() {
        base_env.push((
            "KUBERNETES_SERVICE_PORT_HTTPS".to_string(),
            jobs.service_port.to_string(),
        ));
    }
    podspec::plan(
        object,
        PlanContext {
            entrypoint: &jobs.config.entrypoint,
            pvcs: &jobs.config.pvcs,
            base_env,
            lookup: &lookup,
            free_port: &mut free_port,
        },
    )
}

/// The pod directory: `serviceaccount/` (token, ca.crt, namespace) and the volumes.
fn prepare_dir(
    jobs: &Jobs,
    pod: &PodRuntime,
    object: &Value,
    dir: &Path,
    launch: &Launch,
) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true).mode(0o700);
    builder.create(dir)?;
    if automounts_token(object) {
        let account = dir.join("serviceaccount");
        builder.create(&account)?;
        write_private(&account.join("token"), jobs.token.as_bytes())?;
        write_private(&account.join("namespace"), pod.namespace.as_bytes())?;
        if let Some(ca) = &jobs.ca_pem {
            write_private(&account.join("ca.crt"), ca.as_bytes())?;
        }
    }
    for mount in &launch.mounts {
        let target = dir.join(&mount.relative);
        match &mount.content {
            VolumeContent::EmptyDir => builder.create(&target)?,
            VolumeContent::Files { files, mode } => {
                builder.create(&target)?;
                for (path, bytes) in files {
                    let relative = Path::new(path);
                    if !relative
                        .components()
                        .all(|c| matches!(c, Component::Normal(_)))
                    {
                        return Err(std::io::Error::other(format!(
                            "volume file path {path:?} must be relative without '..'"
                        )));
                    }
                    let file = target.join(relative);
                    if let Some(parent) = file.parent() {
                        builder.create(parent)?;
                    }
                    write_file(&file, bytes, *mode)?;
                }
            }
            VolumeContent::Link(host_dir) => {
                if let Some(parent) = target.parent() {
                    builder.create(parent)?;
                }
                std::os::unix::fs::symlink(host_dir, &target)?;
            }
        }
    }
    Ok(())
}

/// Whether the pod gets the service-account mount: unless `automountServiceAccountToken` is false.
fn automounts_token(pod: &Value) -> bool {
    pod.pointer("/spec/automountServiceAccountToken")
        .and_then(Value::as_bool)
        != Some(false)
}

/// A pipe (read end, write end), both close-on-exec (the child gets the write end through dup2).
fn output_pipe() -> std::io::Result<(std::fs::File, std::fs::File)> {
    use std::os::fd::FromRawFd as _;
    let mut fds = [0i32; 2];
    // SAFETY: pipe2(2) writes two new descriptors into the array, which outlives the call.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and nothing else owns them.
    Ok(unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_file(path, bytes, 0o600)
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)?
        .write_all(bytes)
}

fn spawn_reader(
    mut pipe: impl AsyncRead + Unpin + Send + 'static,
    pod: Arc<PodRuntime>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match pipe.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => pod.logs.push(&buffer[..read]),
            }
        }
    })
}

/// Kubernetes' exit code: the process's, or 128 + signal when a signal ended it.
fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt as _;
    status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(128)
}

/// Applies `change` to the pod's status when the Pod object is still the one this runtime runs.
fn update_status(shared: &Shared, pod: &PodRuntime, change: impl FnOnce(&mut Map<String, Value>)) {
    let key = ObjectKey {
        collection: PODS.to_string(),
        namespace: pod.namespace.clone(),
        name: pod.name.clone(),
    };
    let _ = shared.store.write(&key, |current| match current {
        Some(current) if metadata_str(&current.value, "uid") == pod.uid => {
            let mut value = current.value.clone();
            if !value.get("status").is_some_and(Value::is_object) {
                value["status"] = json!({});
            }
            if let Some(status) = value.get_mut("status").and_then(Value::as_object_mut) {
                change(status);
            }
            Ok(WriteOp::Put(value))
        }
        _ => Err(ApiError::path_not_found()),
    });
}

fn conditions(ready: bool, now: &str) -> Value {
    let ready = if ready { "True" } else { "False" };
    json!([
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
        {"type": "Initialized", "status": "True", "lastTransitionTime": now},
        {"type": "ContainersReady", "status": ready, "lastTransitionTime": now},
        {"type": "Ready", "status": ready, "lastTransitionTime": now},
    ])
}

fn running_status(status: &mut Map<String, Value>, container: &str, pid: i32, started_at: &str) {
    status.insert("phase".into(), json!("Running"));
    status.insert("startTime".into(), json!(started_at));
    status.insert("hostIP".into(), json!("127.0.0.1"));
    status.insert("hostIPs".into(), json!([{"ip": "127.0.0.1"}]));
    status.insert("podIP".into(), json!("127.0.0.1"));
    status.insert("podIPs".into(), json!([{"ip": "127.0.0.1"}]));
    status.insert("conditions".into(), conditions(true, started_at));
    status.insert(
        "containerStatuses".into(),
        json!([{
            "name": container, "ready": true, "started": true, "restartCount": 0,
            "image": "", "imageID": "", "containerID": format!("apisim://{pid}"),
            "state": {"running": {"startedAt": started_at}},
        }]),
    );
}

fn terminated_status(
    status: &mut Map<String, Value>,
    container: &str,
    pid: i32,
    code: i32,
    started_at: &str,
    finished_at: &str,
) {
    let (phase, reason) = if code == 0 {
        ("Succeeded", "Completed")
    } else {
        ("Failed", "Error")
    };
    status.insert("phase".into(), json!(phase));
    status.insert("conditions".into(), conditions(false, finished_at));
    status.insert(
        "containerStatuses".into(),
        json!([{
            "name": container, "ready": false, "started": false, "restartCount": 0,
            "image": "", "imageID": "", "containerID": format!("apisim://{pid}"),
            "state": {"terminated": {"exitCode": code, "reason": reason,
                                     "startedAt": started_at, "finishedAt": finished_at,
                                     "containerID": format!("apisim://{pid}")}},
        }]),
    );
}

/// The pod could not start: Failed, with the reason at the pod and on its container (waiting).
fn fail_before_start(shared: &Shared, pod: &PodRuntime, failure: &PodFailure) {
    tracing::warn!(
        "pod {}/{} failed before start: {}: {}",
        pod.namespace,
        pod.name,
        failure.reason,
        failure.message
    );
    let now = now_rfc3339();
    let container = lock(&pod.container).clone();
    update_status(shared, pod, |status| {
        status.insert("phase".into(), json!("Failed"));
        status.insert("reason".into(), json!(failure.reason));
        status.insert("message".into(), json!(failure.message));
        status.insert("startTime".into(), json!(now));
        status.insert("conditions".into(), conditions(false, &now));
        status.insert(
            "containerStatuses".into(),
            json!([{
                "name": container, "ready": false, "started": false, "restartCount": 0,
                "image": "", "imageID": "",
                "state": {"waiting": {"reason": failure.reason, "message": failure.message}},
            }]),
        );
    });
}

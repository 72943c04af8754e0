//! Following a replay's pods and collecting their reports through the API server's pod proxy,
//! with nothing but the user's cluster access. A report is kept in a local file before its
//! runner is told it was collected, so an interrupted collection loses nothing and can be
//! repeated (`engine job collect`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use hyper::{Method, StatusCode};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::List;

use super::api::{ApiError, KubeClient};
use super::manifest::REPORT_PORT;
use super::report_server::DIGEST_HEADER;
use crate::source::fetch::file_sha256;

/// The annotation (and label) the Job controller puts the completion index in.
const INDEX_ANNOTATION: &str = "batch.kubernetes.io/job-completion-index";
/// How many log lines of a failed runner are shown.
const LOG_LINES: u32 = 20;

/// Where one runner stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunnerState {
    /// No pod yet.
    Waiting,
    /// Its pod, and the pod's phase (Pending, Running, …).
    Pod {
        /// The pod's name.
        pod: String,
        /// Its phase.
        phase: String,
        /// Its node, once scheduled.
        node: Option<String>,
    },
    /// Its report is in this local file.
    Collected(PathBuf),
    /// It failed, or its report can no longer be had.
    Failed(String),
}

impl RunnerState {
    fn is_final(&self) -> bool {
        matches!(self, RunnerState::Collected(_) | RunnerState::Failed(_))
    }

    fn describe(&self) -> String {
        match self {
            RunnerState::Waiting => "no pod yet".into(),
            RunnerState::Pod { pod, phase, node } => match node {
                Some(n) => format!("{phase} ({pod} on {n})"),
                None => format!("{phase} ({pod})"),
            },
            RunnerState::Collected(p) => format!("report collected ({})", p.display()),
            RunnerState::Failed(why) => format!("FAILED: {why}"),
        }
    }
}

/// One replay's runners being collected.
pub struct Collection<'a> {
    client: &'a KubeClient,
    namespace: String,
    job: String,
    dir: PathBuf,
    /// Each runner's state, by index.
    pub runners: BTreeMap<u32, RunnerState>,
    /// When the first report was found ready, and the last one collected.
    ready_span: Option<(Instant, Instant)>,
    /// Bytes of the reports collected in this session.
    collected_bytes: u64,
}

impl<'a> Collection<'a> {
    /// Starts following `runners` runners of Job `job`; reports go to `dir` (created), and
    /// reports already there from an earlier collection count as collected.
    pub fn new(
        client: &'a KubeClient,
        namespace: &str,
        job: &str,
        runners: u32,
        dir: &Path,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let runners = (0..runners)
            .map(|i| {
                let path = report_path(dir, i);
                let state = if path.is_file() {
                    RunnerState::Collected(path)
                } else {
                    RunnerState::Waiting
                };
                (i, state)
            })
            .collect();
        Ok(Collection {
            client,
            namespace: namespace.to_string(),
            job: job.to_string(),
            dir: dir.to_path_buf(),
            runners,
            ready_span: None,
            collected_bytes: 0,
        })
    }

    /// Whether every runner is collected or failed.
    pub fn finished(&self) -> bool {
        self.runners.values().all(RunnerState::is_final)
    }

    /// The collected reports, by index.
    pub fn reports(&self) -> Vec<(u32, PathBuf)> {
        self.runners
            .iter()
            .filter_map(|(i, s)| match s {
                RunnerState::Collected(p) => Some((*i, p.clone())),
                _ => None,
            })
            .collect()
    }

    /// Indexes that failed or were not collected.
    pub fn missing(&self) -> Vec<u32> {
        self.runners
            .iter()
            .filter(|(_, s)| !matches!(s, RunnerState::Collected(_)))
            .map(|(i, _)| *i)
            .collect()
    }

    fn pods(&self) -> Result<BTreeMap<u32, Pod>, ApiError> {
        let path = format!(
            "/api/v1/namespaces/{}/pods?labelSelector=job-name%3D{}",
            self.namespace, self.job
        );
        let list: List<Pod> = self.client.get(&path)?;
        let mut by_index = BTreeMap::new();
        for pod in list.items {
            let index = pod
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(INDEX_ANNOTATION))
                .or_else(|| pod.metadata.labels.as_ref()?.get(INDEX_ANNOTATION))
                .and_then(|v| v.parse::<u32>().ok());
            if let Some(i) = index {
                // A newer pod of the same index (a replaced one) wins.
                by_index.insert(i, pod);
            }
        }
        Ok(by_index)
    }

    /// Why the Job has ended, if it has (a `Complete` or `Failed` condition).
    fn job_ended(&self) -> Result<Option<String>, ApiError> {
        let path = format!(
            "/apis/batch/v1/namespaces/{}/jobs/{}",
            self.namespace, self.job
        );
        let job: Job = match self.client.get(&path) {
            Ok(j) => j,
            Err(e) if is_not_found(&e) => return Ok(Some("the Job was deleted".into())),
            Err(e) => return Err(e),
        };
        let ended = job
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
            .map(|c| {
                format!(
                    "the Job ended ({}{})",
                    c.type_,
                    c.message.map(|m| format!(": {m}")).unwrap_or_default()
                )
            });
        Ok(ended)
    }

    /// One round: looks at every pod, collects what is ready. Prints what changed.
    pub fn poll(&mut self) -> Result<(), ApiError> {
        // Read before the pods: a runner without a pod after this is not coming.
        let ended = self.job_ended()?;
        let pods = self.pods()?;
        let indexes: Vec<u32> = self.runners.keys().copied().collect();
        for i in indexes {
            if self.runners[&i].is_final() {
                continue;
            }
            let next = match (pods.get(&i), &ended) {
                (None, None) => RunnerState::Waiting,
                (None, Some(why)) => RunnerState::Failed(format!("no pod, and {why}")),
                (Some(pod), _) => self.look_at(i, pod),
            };
            if next != self.runners[&i] {
                eprintln!("runner {i}: {}", next.describe());
                self.runners.insert(i, next);
            }
        }
        Ok(())
    }

    /// What this session collected: `(reports' bytes, seconds from the first report found
    /// ready to the last collected)`.
    pub fn collection_time(&self) -> Option<(u64, f64)> {
        self.ready_span
            .map(|(first, last)| (self.collected_bytes, (last - first).as_secs_f64()))
    }

    fn look_at(&mut self, index: u32, pod: &Pod) -> RunnerState {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let status = pod.status.as_ref();
        let phase = status
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Pending".into());
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        match phase.as_str() {
            "Running" => match self.try_collect(index, &name) {
                Ok(Some(path)) => RunnerState::Collected(path),
                Ok(None) => RunnerState::Pod { pod: name, phase, node },
                Err(e) => {
                    tracing::debug!("runner {index}: {e}");
                    RunnerState::Pod { pod: name, phase, node }
                }
            },
            "Failed" => RunnerState::Failed(self.failure(&name, pod)),
            "Succeeded" => RunnerState::Failed(format!(
                "pod {name} ended without its report being collected (its --serve-report-for ran out?)"
            )),
            _ => RunnerState::Pod { pod: name, phase, node },
        }
    }

    fn proxy(&self, pod: &str, path: &str) -> String {
        format!(
            "/api/v1/namespaces/{}/pods/{pod}:{REPORT_PORT}/proxy/{path}",
            self.namespace
        )
    }

    /// Fetches the runner's report if its replay is done; `None` while it runs.
    fn try_collect(&mut self, index: u32, pod: &str) -> Result<Option<PathBuf>, ApiError> {
        let status: serde_json::Value = self.client.get(&self.proxy(pod, "status"))?;
        if status.get("state").and_then(|s| s.as_str()) != Some("done") {
            return Ok(None);
        }
        let found = Instant::now();
        self.ready_span.get_or_insert((found, found));
        let dest = report_path(&self.dir, index);
        let partial = dest.with_extension("json.part");
        let (digest, bytes) = self.client.download(
            &self.proxy(pod, "report"),
            DIGEST_HEADER,
            &partial,
            Duration::from_secs(600),
        )?;
        let computed = file_sha256(&partial).map_err(|source| ApiError::Write {
            path: partial.display().to_string(),
            source,
        })?;
        if digest.as_deref() != Some(computed.as_str()) {
            let _ = std::fs::remove_file(&partial);
            return Err(ApiError::Decode {
                path: self.proxy(pod, "report"),
                message: format!(
                    "the report arrived damaged ({bytes} bytes, SHA-256 {computed}, runner said {digest:?}); will try again"
                ),
            });
        }
        std::fs::rename(&partial, &dest).map_err(|source| ApiError::Write {
            path: dest.display().to_string(),
            source,
        })?;
        self.collected_bytes += bytes;
        if let Some(span) = &mut self.ready_span {
            span.1 = Instant::now();
        }
        // Only now may the runner exit: the report is safe on this side.
        if let Err(e) = self
            .client
            .call(Method::POST, &self.proxy(pod, "collected"), None)
        {
            tracing::warn!("runner {index}: could not tell {pod} its report was collected: {e}");
        }
        Ok(Some(dest))
    }

    fn failure(&self, name: &str, pod: &Pod) -> String {
        let terminated = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c.first())
            .and_then(|c| c.state.as_ref())
            .and_then(|s| s.terminated.as_ref());
        let mut why = match terminated {
            Some(t) => format!(
                "pod {name} exited with code {}{}",
                t.exit_code,
                t.reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ),
            None => format!(
                "pod {name} failed{}",
                pod.status
                    .as_ref()
                    .and_then(|s| s.message.as_deref())
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ),
        };
        let log_path = format!(
            "/api/v1/namespaces/{}/pods/{name}/log?tailLines={LOG_LINES}",
            self.namespace
        );
        match self.client.call(Method::GET, &log_path, None) {
            Ok(log) if !log.is_empty() => {
                why.push_str("; last log lines:\n");
                for line in String::from_utf8_lossy(&log).lines() {
                    why.push_str("    ");
                    why.push_str(line);
                    why.push('\n');
                }
            }
            Ok(_) => why.push_str(" (no log)"),
            Err(e) => why.push_str(&format!(" (its log could not be read: {e})")),
        }
        why
    }

    /// Polls until every runner is final, `timeout` runs out or `stop` is set. Prints a summary
    /// line now and then, with the time left to `start_at`.
    pub fn follow(
        &mut self,
        start_at: Option<SystemTime>,
        timeout: Option<Duration>,
        stop: &AtomicBool,
    ) -> Result<(), ApiError> {
        let began = Instant::now();
        let mut last_summary = Instant::now() - Duration::from_secs(3600);
        let mut failures_in_a_row = 0;
        while !self.finished() {
            if stop.load(Ordering::Relaxed) || timeout.is_some_and(|t| began.elapsed() >= t) {
                return Ok(());
            }
            match self.poll() {
                Ok(()) => failures_in_a_row = 0,
                // The API server may be busy under the replay itself: keep trying for a while.
                Err(e) if failures_in_a_row < 30 => {
                    failures_in_a_row += 1;
                    eprintln!("engine job: {e} (retrying)");
                }
                Err(e) => return Err(e),
            }
            if last_summary.elapsed() >= Duration::from_secs(10) || self.finished() {
                last_summary = Instant::now();
                eprintln!("{}", self.summary(start_at));
            }
            if !self.finished() {
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        Ok(())
    }

    /// One line: how many runners are where, and the start.
    pub fn summary(&self, start_at: Option<SystemTime>) -> String {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for s in self.runners.values() {
            let k = match s {
                RunnerState::Waiting => "waiting",
                RunnerState::Pod { phase, .. } if phase == "Pending" => "pending",
                RunnerState::Pod { phase, .. } if phase == "Running" => "running",
                RunnerState::Pod { .. } => "other",
                RunnerState::Collected(_) => "collected",
                RunnerState::Failed(_) => "failed",
            };
            *counts.entry(k).or_default() += 1;
        }
        let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let start = match start_at.map(|t| t.duration_since(SystemTime::now())) {
            Some(Ok(left)) => format!("; start in {:.0} s", left.as_secs_f64()),
            Some(Err(e)) => format!("; started {:.0} s ago", e.duration().as_secs_f64()),
            None => String::new(),
        };
        format!(
            "job {}: {} runners: {}{start}",
            self.job,
            self.runners.len(),
            parts.join(", ")
        )
    }
}

/// Where runner `index`'s report is kept.
pub fn report_path(dir: &Path, index: u32) -> PathBuf {
    dir.join(format!("runner-{index}.json"))
}

/// Whether an API error says the object does not exist.
pub fn is_not_found(e: &ApiError) -> bool {
    e.status() == Some(StatusCode::NOT_FOUND)
}

//! Distributed replays on Kubernetes (`engine job`): one Indexed Job per replay, each pod one
//! runner (`JOB_COMPLETION_INDEX`), every runner starting at one instant; the runners' reports
//! collected through the API server's pod proxy and merged exactly. See `docs/distributed.md`.
//!
//! - `manifest`: the Job (and opt-in RBAC objects) as types and YAML.
//! - `api`: a small blocking client of the Kubernetes REST API over the engine's cluster access.
//! - `collect`: following the pods, collecting reports, naming failed runners with their logs.
//! - `report_server`: the runner's side, serving its state and report until collected.

pub mod api;
pub mod args;
pub mod collect;
pub mod manifest;
pub mod report_server;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use preprocess::profile::Verb;

use crate::kubeconfig::{resolve, KubeconfigOptions};
use crate::report_merge::{merge_files, MergeOptions};
use crate::source::fetch::{fetch_timeline, file_sha256, is_url, parse_sha256};
use crate::source::{ReplaySource, TimelineSource};
use api::KubeClient;
use args::{
    ClusterArgs, CollectOutputArgs, JobCollectArgs, JobManifestArgs, JobRunArgs, JobSpecArgs,
};
use collect::{is_not_found, Collection};
use manifest::{JobPlan, Object, TimelineLocation};

/// Exit code: every runner's report merged.
pub const EXIT_OK: u8 = 0;
/// Exit code: a runner failed or its report is missing (the merged report says which).
pub const EXIT_RUNNER_FAILED: u8 = 1;
/// Exit code: unusable input (flags, timeline, a Job that cannot be created or found).
pub const EXIT_USAGE: u8 = 2;

/// An `engine job` failure and the exit code it maps to.
#[derive(Debug)]
pub struct JobFailure {
    /// The exit code.
    pub code: u8,
    /// What to tell the user.
    pub message: String,
}

fn usage(message: impl Into<String>) -> JobFailure {
    JobFailure {
        code: EXIT_USAGE,
        message: message.into(),
    }
}

fn failed(message: impl Into<String>) -> JobFailure {
    JobFailure {
        code: EXIT_RUNNER_FAILED,
        message: message.into(),
    }
}

/// What the timeline tells the Job: its runner count, digest and replayed verbs.
struct TimelineFacts {
    runners: u32,
    sha256: Option<String>,
    verbs: Vec<String>,
}

/// The RBAC verb a profile verb needs.
fn rbac_verb(v: Verb) -> &'static str {
    match v {
        Verb::Get => "get",
        Verb::List => "list",
        Verb::Watch => "watch",
        Verb::Create => "create",
        Verb::Delete => "delete",
        Verb::DeleteCollection => "deletecollection",
        Verb::Patch | Verb::Apply => "patch",
    }
}

fn facts_of_file(path: &Path) -> Result<TimelineFacts, JobFailure> {
    let source = TimelineSource::open(path)
        .map_err(|e| usage(format!("cannot open timeline {}: {e}", path.display())))?;
    let sha256 = file_sha256(path)
        .map_err(|e| usage(format!("cannot read timeline {}: {e}", path.display())))?;
    let mut verbs: Vec<String> = source
        .timeline()
        .all_records()
        .map_err(|e| usage(format!("timeline {}: {e}", path.display())))?
        .iter()
        .filter_map(|r| r.verb())
        .map(|v| rbac_verb(v).to_string())
        .collect();
    verbs.sort();
    verbs.dedup();
    Ok(TimelineFacts {
        runners: source.info().runner_count,
        sha256: Some(sha256),
        verbs,
    })
}

/// Reads the facts from `--timeline-file`, else (when `fetch`) from one download of the URL.
fn timeline_facts(spec: &JobSpecArgs, fetch: bool) -> Result<Option<TimelineFacts>, JobFailure> {
    if let Some(file) = &spec.timeline_file {
        return facts_of_file(file).map(Some);
    }
    if !fetch || spec.pvc.is_some() || (spec.runners.is_some() && spec.timeline_sha256.is_some()) {
        return Ok(None);
    }
    let dir = tempfile::tempdir()
        .map_err(|e| usage(format!("cannot make a temporary directory: {e}")))?;
    eprintln!("engine job: downloading the timeline once to read its runner count and digest (give --timeline-file to skip this)");
    let path = fetch_timeline(&spec.timeline, dir.path(), None, Duration::from_secs(60))
        .map_err(|e| usage(e.to_string()))?;
    facts_of_file(&path).map(Some)
}

/// Turns the flags into a plan; `fetch` allows one download of the timeline for its facts.
fn plan(spec: &JobSpecArgs, fetch: bool) -> Result<JobPlan, JobFailure> {
    let facts = timeline_facts(spec, fetch)?;
    let timeline = match &spec.pvc {
        Some(claim) => {
            if is_url(&spec.timeline) {
                return Err(usage(
                    "--timeline with --pvc is the timeline's path inside the volume, not a URL",
                ));
            }
            TimelineLocation::Pvc {
                claim: claim.clone(),
                path: spec.timeline.clone(),
            }
        }
        None => {
            if !is_url(&spec.timeline) {
                return Err(usage(format!(
                    "--timeline {:?}: give an http(s) URL the pods can download, or --pvc CLAIM with the path inside the volume",
                    spec.timeline
                )));
            }
            let given = spec
                .timeline_sha256
                .as_deref()
                .map(parse_sha256)
                .transpose()
                .map_err(|e| usage(e.to_string()))?;
            let known = facts.as_ref().and_then(|f| f.sha256.clone());
            if let (Some(g), Some(k)) = (&given, &known) {
                if g != k {
                    return Err(usage(format!(
                        "--timeline-sha256 {g} is not the digest of the timeline ({k})"
                    )));
                }
            }
            TimelineLocation::Url {
                url: spec.timeline.clone(),
                sha256: given.or(known),
            }
        }
    };
    let runners = match (spec.runners, &facts) {
        (Some(0), _) => return Err(usage("--runners must be at least 1")),
        (Some(n), _) => n,
        (None, Some(f)) => f.runners,
        (None, None) => {
            return Err(usage(
                "the runner count is unknown: give --runners N or --timeline-file (a local copy of the timeline)",
            ))
        }
    };
    let start_at = spec
        .start_at
        .unwrap_or_else(|| SystemTime::now() + spec.start_in);
    let name = spec.name.clone().unwrap_or_else(|| {
        let now = time::OffsetDateTime::now_utc();
        format!(
            "kreplay-{:04}{:02}{:02}-{:02}{:02}{:02}",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second()
        )
    });
    check_name(&name)?;
    let verbs = facts
        .map(|f| f.verbs)
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| {
            Verb::ALL
                .iter()
                .map(|v| rbac_verb(*v).to_string())
                .collect()
        });
    let mut verbs = verbs;
    verbs.sort();
    verbs.dedup();
    Ok(JobPlan {
        name,
        namespace: spec.namespace.clone(),
        image: spec.image.clone(),
        timeline,
        runners,
        start_at: rfc3339(start_at),
        node_selector: spec.node_selector.clone(),
        node_affinity: spec.node_affinity.clone(),
        tolerations: spec.toleration.clone(),
        service_account: spec.service_account.clone(),
        cpu: spec.cpu,
        memory: spec.memory.clone(),
        kubeconfig_secret: spec.kubeconfig_secret.clone(),
        rbac: spec.rbac.then_some(verbs),
        engine_args: spec.engine_args.clone(),
        serve_report_for: seconds_text(spec.serve_report_for),
    })
}

/// A DNS-1123 label short enough for the pods' names (`<job>-<index>-<suffix>`).
fn check_name(name: &str) -> Result<(), JobFailure> {
    let ok = !name.is_empty()
        && name.len() <= 52
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(usage(format!(
            "--name {name:?}: a Job name is up to 52 lower-case letters, digits and '-', starting and ending with a letter or digit"
        )))
    }
}

/// `t` to the millisecond, as Go writes RFC 3339 (the report's own writer).
fn rfc3339(t: SystemTime) -> String {
    let ms = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let ms = u64::try_from(ms).unwrap_or(u64::MAX);
    crate::report::gofmt::format_rfc3339_nano(UNIX_EPOCH + Duration::from_millis(ms), 0)
}

/// Whole seconds as duration text every kreplay version reads (`86400s`).
fn seconds_text(d: Duration) -> String {
    format!("{}s", d.as_secs().max(1))
}

/// `engine job manifest`: the YAML on stdout.
pub fn manifest_command(args: &JobManifestArgs) -> Result<String, JobFailure> {
    let plan = plan(&args.spec, false)?;
    let mut text = format!(
        "# kreplay replay {}: {} runners starting at {} — apply before then.\n",
        plan.name, plan.runners, plan.start_at
    );
    text.push_str(&manifest::to_yaml(&plan.objects()).map_err(failed)?);
    Ok(text)
}

fn client(cluster: &ClusterArgs) -> Result<KubeClient, JobFailure> {
    let access = resolve(&KubeconfigOptions {
        kubeconfig: cluster.kubeconfig.clone(),
        context: cluster.context.clone(),
    })
    .map_err(|e| usage(e.to_string()))?;
    KubeClient::new(&access).map_err(|e| failed(e.to_string()))
}

fn reports_dir(output: &CollectOutputArgs) -> PathBuf {
    output.reports_dir.clone().unwrap_or_else(|| {
        let mut name = output.result.as_os_str().to_owned();
        name.push(".runners");
        PathBuf::from(name)
    })
}

/// `engine job run`: creates the objects, follows the pods, collects, merges, cleans up.
pub fn run_command(args: &JobRunArgs, stop: &AtomicBool) -> Result<(), JobFailure> {
    let plan = plan(&args.spec, true)?;
    let client = client(&args.cluster)?;
    let objects = plan.objects();
    eprintln!(
        "engine job: creating {} in namespace {} on {}: {} runners, image {}, start at {}",
        objects
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        plan.namespace,
        client.server(),
        plan.runners,
        plan.image,
        plan.start_at
    );
    let mut created = Vec::new();
    for o in &objects {
        if let Err(e) = client.create(&o.collection_path(&plan.namespace), o) {
            let code = match e.status() {
                Some(s) if s.is_client_error() => EXIT_USAGE,
                _ => EXIT_RUNNER_FAILED,
            };
            cleanup(&client, &plan.namespace, &created);
            return Err(JobFailure {
                code,
                message: format!("cannot create {o}: {e}"),
            });
        }
        created.push(o.clone());
    }
    let start = crate::cli::parse_start_at(&plan.start_at).ok();
    finish(
        &client,
        &plan.namespace,
        &plan.name,
        plan.runners,
        start,
        &args.output,
        args.keep,
        &created,
        stop,
    )
}

/// `engine job collect`: collects and merges the reports of an existing Job.
pub fn collect_command(args: &JobCollectArgs, stop: &AtomicBool) -> Result<(), JobFailure> {
    check_name(&args.name)?;
    let client = client(&args.cluster)?;
    let path = format!(
        "/apis/batch/v1/namespaces/{}/jobs/{}",
        args.namespace, args.name
    );
    let job: k8s_openapi::api::batch::v1::Job = match client.get(&path) {
        Ok(j) => j,
        Err(e) if is_not_found(&e) => {
            // The Job is gone: what was collected before is all there is.
            let dir = reports_dir(&args.output);
            let runners = count_local_reports(&dir);
            if runners == 0 {
                return Err(usage(format!(
                    "Job {}/{} does not exist and {} holds no runner reports",
                    args.namespace,
                    args.name,
                    dir.display()
                )));
            }
            eprintln!(
                "engine job: Job {} is gone; merging the reports collected before",
                args.name
            );
            return merge_collected(
                &Collection::new(&client, &args.namespace, &args.name, runners, &dir)
                    .map_err(|e| failed(format!("{}: {e}", dir.display())))?,
                &args.output,
            );
        }
        Err(e) => return Err(failed(format!("cannot read Job {}: {e}", args.name))),
    };
    let runners = job
        .spec
        .as_ref()
        .and_then(|s| s.completions)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            usage(format!(
                "Job {} has no completion count: not a kreplay replay",
                args.name
            ))
        })?;
    let start = job
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("kreplay.io/start-at"))
        .and_then(|s| crate::cli::parse_start_at(s).ok());
    let job_object = Object::Job(Box::new(job));
    finish(
        &client,
        &args.namespace,
        &args.name,
        runners,
        start,
        &args.output,
        args.keep,
        &[job_object],
        stop,
    )
}

fn count_local_reports(dir: &Path) -> u32 {
    (0..u32::MAX)
        .take_while(|i| collect::report_path(dir, *i).is_file())
        .count() as u32
}

#[allow(clippy::too_many_arguments)]
fn finish(
    client: &KubeClient,
    namespace: &str,
    name: &str,
    runners: u32,
    start: Option<SystemTime>,
    output: &CollectOutputArgs,
    keep: bool,
    created: &[Object],
    stop: &AtomicBool,
) -> Result<(), JobFailure> {
    let dir = reports_dir(output);
    let mut collection = Collection::new(client, namespace, name, runners, &dir)
        .map_err(|e| failed(format!("cannot create {}: {e}", dir.display())))?;
    let followed = collection.follow(start, output.collect_timeout, stop);
    let complete = collection.finished();
    if let Some((bytes, seconds)) = collection.collection_time() {
        eprintln!(
            "engine job: collected {bytes} bytes of reports in {seconds:.3} s (from the first report ready to the last collected)"
        );
    }
    let interrupted = !complete;
    if let Err(e) = &followed {
        eprintln!("engine job: following the Job failed: {e}");
    }
    if interrupted {
        eprintln!(
            "engine job: collection stopped before every runner ended; the Job is kept. Collect again with:\n  engine job collect --name {name} --namespace {namespace} --result {}",
            output.result.display()
        );
    } else if keep {
        eprintln!("engine job: --keep: Job {name} is left in place");
    } else {
        cleanup(client, namespace, created);
    }
    let merged = merge_collected(&collection, output);
    match (merged, interrupted) {
        (Err(e), _) => Err(e),
        (Ok(()), true) => Err(failed(format!(
            "runners {:?} were not collected",
            collection.missing()
        ))),
        (Ok(()), false) => Ok(()),
    }
}

fn cleanup(client: &KubeClient, namespace: &str, created: &[Object]) {
    // The Job first (its pods go with it), then what it needed.
    for o in created.iter().rev() {
        match client.delete(&o.object_path(namespace)) {
            Ok(()) => eprintln!("engine job: deleted {o}"),
            Err(e) => eprintln!("engine job: could not delete {o}: {e}"),
        }
    }
}

/// Merges what was collected into `--result`; fails (exit 1) when a runner is missing, after
/// writing the merged report of the others.
fn merge_collected(
    collection: &Collection<'_>,
    output: &CollectOutputArgs,
) -> Result<(), JobFailure> {
    let reports = collection.reports();
    let missing = collection.missing();
    for (i, state) in &collection.runners {
        if let collect::RunnerState::Failed(why) = state {
            eprintln!("runner {i}: {why}");
        }
    }
    if reports.is_empty() {
        return Err(failed(format!(
            "no runner's report was collected (runners {missing:?} missing); nothing to merge"
        )));
    }
    let paths: Vec<PathBuf> = reports.into_iter().map(|(_, p)| p).collect();
    let merged = merge_files(
        &paths,
        MergeOptions {
            force: false,
            expected_runners: Some(collection.runners.len() as u64),
        },
    )
    .map_err(|e| failed(format!("cannot merge the runners' reports: {e}")))?;
    for n in &merged.notes {
        eprintln!("engine job: note: {n}");
    }
    if let Some(dir) = output.result.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| failed(format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::write(&output.result, merged.json).map_err(|e| {
        failed(format!(
            "cannot write --result {}: {e}",
            output.result.display()
        ))
    })?;
    eprintln!(
        "engine job: merged {} of {} runner reports into {}",
        paths.len(),
        collection.runners.len(),
        output.result.display()
    );
    if missing.is_empty() {
        Ok(())
    } else {
        Err(failed(format!(
            "runners {missing:?} failed or were not collected; the merged report lists them in kreplay.config.missingRunners"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_seconds() {
        assert_eq!(seconds_text(Duration::from_secs(86400)), "86400s");
        assert_eq!(seconds_text(Duration::from_millis(10)), "1s");
    }

    #[test]
    fn job_names() {
        assert!(check_name("kreplay-20261206-010203").is_ok());
        assert!(check_name("Bad").is_err());
        assert!(check_name("-x").is_err());
        assert!(check_name(&"a".repeat(53)).is_err());
    }

    #[test]
    fn rfc3339_in_milliseconds() {
        let t = UNIX_EPOCH + Duration::new(1_500_000_123, 456_789_000);
        assert_eq!(rfc3339(t), "2017-07-14T02:42:03.456Z");
    }
}

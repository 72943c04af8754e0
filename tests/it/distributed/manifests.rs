//! `engine job manifest`: the objects, their options, Kubernetes' schemas.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::distributed::support::*;
use crate::util::{bin, run_bounded, run_ok};

/// The Kubernetes versions whose schemas every manifest must pass: 1.30 to the newest that
/// `kubernetes-validate` ships.
fn kubernetes_versions() -> Vec<String> {
    let out = run_bounded(
        Command::new("kubernetes-validate").arg("--help"),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "kubernetes-validate is needed (scripts/test.sh installs it with pip): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let help = String::from_utf8_lossy(&out.stdout).replace('\n', " ");
    let newest = help
        .split("Defaults to ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|v| {
            v.trim_end_matches('.')
                .split('.')
                .nth(1)?
                .parse::<u32>()
                .ok()
        })
        .expect("kubernetes-validate --help names its default (newest) version");
    assert!(
        newest >= 30,
        "kubernetes-validate's newest version is 1.{newest}"
    );
    (30..=newest).map(|m| format!("1.{m}.0")).collect()
}

fn validate(file: &Path, version: &str) -> (bool, String) {
    let out = run_bounded(
        Command::new("kubernetes-validate")
            .args(["--strict", "-k", version])
            .arg(file),
        Duration::from_secs(120),
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

pub(crate) fn manifest(args: &[&str]) -> String {
    run_ok(
        Command::new(bin("engine"))
            .args(["job", "manifest"])
            .args(args),
        Duration::from_secs(30),
    )
}

#[test]
fn manifests_validate_against_every_supported_kubernetes_version() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let timeline = sample_timeline(dir.path());
    let t = timeline.to_str().unwrap();
    let variants: Vec<(&str, Vec<&str>)> = vec![
        (
            "minimal",
            vec![
                "--timeline",
                "https://example.org/t.bin",
                "--runners",
                "3",
                "--image",
                "r/kreplay:1",
            ],
        ),
        (
            "every option",
            vec![
                "--timeline",
                "https://example.org/t.bin",
                "--timeline-file",
                t,
                "--image",
                "r/kreplay:1",
                "--name",
                "lab-42",
                "--namespace",
                "bench",
                "--rbac",
                "--cpu",
                "2",
                "--memory",
                "2Gi",
                "--node-selector",
                "pool=bench",
                "--node-affinity",
                "zone=a,b",
                "--toleration",
                "dedicated=bench:NoSchedule",
                "--toleration",
                "gpu",
                "--toleration",
                "*",
                "--start-in",
                "2m",
                "--serve-report-for",
                "1h",
                "--",
                "--timing",
                "relaxed",
            ],
        ),
        (
            "pvc and kubeconfig secret",
            vec![
                "--timeline",
                "timelines/t.bin",
                "--pvc",
                "kreplay-data",
                "--runners",
                "8",
                "--image",
                "r/kreplay:1",
                "--kubeconfig-secret",
                "kreplay-kubeconfig",
                "--service-account",
                "replayer",
            ],
        ),
    ];
    let versions = kubernetes_versions();
    for (what, args) in &variants {
        let text = manifest(args);
        assert!(text.contains("completionMode: Indexed"), "{what}: {text}");
        let file = dir.path().join("job.yaml");
        std::fs::write(&file, &text).unwrap();
        for v in &versions {
            let (ok, out) = validate(&file, v);
            assert!(ok, "{what} fails Kubernetes {v}'s schema:\n{out}\n{text}");
        }
    }
    // The validator does reject what the schema does not allow (so the passes above mean something).
    let broken = manifest(&variants[0].1).replace(
        "restartPolicy: Never",
        "restartPolicy: Never\n      bogusField: 1",
    );
    let file = dir.path().join("broken.yaml");
    std::fs::write(&file, broken).unwrap();
    let (ok, _) = validate(&file, versions.last().unwrap());
    assert!(
        !ok,
        "a manifest with an unknown field passed strict validation"
    );
}

#[test]
fn manifest_sets_runners_start_digest_and_options_from_the_timeline() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let timeline = sample_timeline(dir.path());
    let digest = engine::source::fetch::file_sha256(&timeline).unwrap();
    let text = manifest(&[
        "--timeline",
        "https://example.org/t.bin",
        "--timeline-file",
        timeline.to_str().unwrap(),
        "--image",
        "r/kreplay:1",
        "--start-at",
        "2030-01-02T03:04:05Z",
        "--rbac",
    ]);
    let jobs: Vec<Value> = text
        .split("\n---\n")
        .map(|doc| serde_saphyr::from_str::<Value>(doc).expect("YAML document"))
        .collect();
    let job = jobs.iter().find(|d| d["kind"] == "Job").expect("a Job");
    // The sample profile has 2 runners.
    assert_eq!(job["spec"]["completions"], 2);
    assert_eq!(job["spec"]["parallelism"], 2);
    // A failed runner is reported, never retried, and does not stop the others.
    assert_eq!(job["spec"]["backoffLimitPerIndex"], 0);
    assert!(job["spec"].get("backoffLimit").is_none());
    let args: Vec<&str> = job["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let after = |flag: &str| args[args.iter().position(|a| *a == flag).unwrap() + 1];
    assert_eq!(after("--start-at"), "2030-01-02T03:04:05Z");
    assert_eq!(after("--timeline-sha256"), digest);
    let role = jobs
        .iter()
        .find(|d| d["kind"] == "ClusterRole")
        .expect("a ClusterRole");
    // Exactly the sample's verbs (get, list, create, delete), plus /version for the preflight.
    let verbs: Vec<&str> = role["rules"][0]["verbs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(verbs, ["create", "delete", "get", "list"]);
    // Without --rbac nothing cluster-wide is emitted.
    let plain = manifest(&[
        "--timeline",
        "https://e/t.bin",
        "--runners",
        "1",
        "--image",
        "r/k:1",
    ]);
    assert!(!plain.contains("ClusterRole"), "{plain}");
    // No runner count, no manifest.
    let out = run_bounded(
        Command::new(bin("engine")).args([
            "job",
            "manifest",
            "--timeline",
            "https://e/t.bin",
            "--image",
            "r/k:1",
        ]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--runners"));
}

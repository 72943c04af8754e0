//! Per-object order at the server equals profile order, and runner selection replays
//! exactly kperf's partition.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::util::*;
use preprocess::partition::{key_hash, runner_of};
use preprocess::profile::{ProfileRequest, Verb};

/// 480 requests on 12 objects, several per object at the same millisecond, alternating verbs.
fn ordered_profile() -> Vec<ProfileRequest> {
    let mut p = profile();
    for i in 0..480i64 {
        let obj = (i * 7) % 12;
        let ts = i / 8; // 8 requests per millisecond
        let path = format!("/api/v1/namespaces/ns/pods/obj{obj}?seq={i}");
        let verb = if i % 3 == 0 { Verb::Patch } else { Verb::Get };
        let body = if verb == Verb::Patch { "{\"a\":1}" } else { "" };
        p = p
            .verb(verb, &format!("ns/obj{obj}"))
            .path(&path)
            .body(body)
            .at_ms(ts);
    }
    p.build()
}

fn seq_of(target: &str) -> u64 {
    let at = target.find("seq=").expect("seq parameter") + 4;
    let digits: String = target[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().expect("seq number")
}

fn obj_of(target: &str) -> String {
    let at = target.find("/pods/").expect("pod path") + 6;
    target[at..]
        .split(['?', '/'])
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn per_object_order_matches_profile_order_on_1_2_and_4_cores() {
    let requests = ordered_profile();
    for cores in ["1", "2", "4"] {
        // Slow answers for some objects make later requests of other objects overtake them.
        let server = TestServer::start(Behavior {
            delay: Duration::from_millis(3),
            delay_only: Some("obj3".to_string()),
            ..Behavior::default()
        });
        let dir = tempfile::tempdir().unwrap();
        let tl = write_timeline(dir.path(), &spec(3, 4), &requests);
        let run = run_engine(
            &tl,
            dir.path(),
            &["--server", &server.url(), "--cores", cores, "--share-cpus"],
            &[],
        );
        assert!(run.status.success(), "cores {cores}: {}", run.stderr);
        let got = server.requests();
        assert_eq!(got.len(), requests.len(), "cores {cores}");
        let mut per_obj: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for r in &got {
            per_obj
                .entry(obj_of(&r.target))
                .or_default()
                .push(seq_of(&r.target));
        }
        assert_eq!(per_obj.len(), 12);
        for (obj, seqs) in &per_obj {
            let mut sorted = seqs.clone();
            sorted.sort_unstable();
            assert_eq!(
                seqs, &sorted,
                "cores {cores}: {obj} arrived out of profile order"
            );
        }
        let report = run.report.unwrap();
        assert_eq!(num(&report, "totalRun"), 480);
        assert_eq!(num(&report, "totalFailed"), 0);
    }
}

fn selection_profile() -> Vec<ProfileRequest> {
    profile()
        .each(0..60, |p, i| p.get(&format!("ns/p{i}")).at_ms(i / 10))
        .build()
}

fn expected_targets(requests: &[ProfileRequest], runner: u32) -> BTreeSet<String> {
    requests
        .iter()
        .filter(|r| runner_of(key_hash(r), 3) == runner)
        .map(|r| obj_of(&r.api_path))
        .collect()
}

/// `requests` as a timeline of 3 runners, replayed with `args` and `env` against a fresh
/// recording server (returned with the run).
fn run_three_runners(
    requests: &[ProfileRequest],
    args: &[&str],
    env: &[(&str, &str)],
) -> (TestServer, EngineRun) {
    let server = TestServer::start(Behavior::default());
    let dir = tempfile::tempdir().unwrap();
    let tl = write_timeline(dir.path(), &spec(3, 2), requests);
    let url = server.url();
    let mut all_args = vec!["--server", url.as_str()];
    all_args.extend_from_slice(args);
    let run = run_engine(&tl, dir.path(), &all_args, env);
    (server, run)
}

#[test]
fn runner_index_and_job_completion_index_replay_kperfs_partition() {
    let requests = selection_profile();
    for (args, env, runner) in [
        (vec!["--runner-index", "1"], vec![], 1u32),
        (vec![], vec![("JOB_COMPLETION_INDEX", "2")], 2),
        (
            vec!["--runner-index", "0"],
            vec![("JOB_COMPLETION_INDEX", "2")],
            0,
        ),
    ] {
        let (server, run) = run_three_runners(&requests, &args, &env);
        assert!(run.status.success(), "{}", run.stderr);
        let expected = expected_targets(&requests, runner);
        assert!(!expected.is_empty());
        let got: BTreeSet<String> = server
            .requests()
            .iter()
            .map(|r| obj_of(&r.target))
            .collect();
        assert_eq!(got, expected, "runner {runner}");
        assert_eq!(server.requests().len(), expected.len(), "each request once");
        let report = run.report.unwrap();
        assert_eq!(num(&report, "total"), expected.len() as u64);
        // kperf's runner-replay form: no runnerCount/totalRun/totalFailed.
        assert!(
            report.get("runnerCount").is_none() && report.get("totalRun").is_none(),
            "{report}"
        );
        assert_eq!(
            report["kreplay"]["config"]["runnerIndex"].as_u64(),
            Some(u64::from(runner))
        );
    }
}

#[test]
fn runner_index_out_of_range_is_an_error() {
    let requests = selection_profile();
    for (args, env, needle) in [
        (vec!["--runner-index", "3"], vec![], "--runner-index"),
        (vec!["--runner-index", "-1"], vec![], "--runner-index"),
        (
            vec![],
            vec![("JOB_COMPLETION_INDEX", "7")],
            "JOB_COMPLETION_INDEX",
        ),
        (
            vec![],
            vec![("JOB_COMPLETION_INDEX", "one")],
            "JOB_COMPLETION_INDEX",
        ),
    ] {
        let (server, run) = run_three_runners(&requests, &args, &env);
        assert_eq!(run.status.code(), Some(1), "{args:?} {env:?}");
        assert!(run.stderr.contains(needle), "{}", run.stderr);
        assert!(server.requests().is_empty());
        assert!(run.report.is_none());
    }
}

//! The built `preprocess` binary: build, inspect (text and JSON), export, and errors.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_preprocess");
const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../bench/profiles/kperf_sample_replay.yaml"
);

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run preprocess")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn build_sample(dir: &Path) -> String {
    let out = dir.join("sample.bin").display().to_string();
    let o = run(&[SAMPLE, "-o", &out]);
    assert!(o.status.success(), "stderr: {}", text(&o.stderr));
    out
}

#[test]
fn builds_the_sample_and_prints_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = build_sample(dir.path());
    let stdout = text(&run(&[SAMPLE, "-o", &out]).stdout);
    assert!(
        stdout.contains("requests   9 over 400 ms, 0 WATCH"),
        "{stdout}"
    );
    assert!(stdout.contains("runners    2 × 64 shards"), "{stdout}");
    assert!(stdout.contains("2 bodies"), "{stdout}");
    assert!(Path::new(&out).is_file());
}

#[test]
fn inspect_json_reports_the_sample() {
    let dir = tempfile::tempdir().unwrap();
    let out = build_sample(dir.path());
    let o = run(&["inspect", &out, "--json", "--verify"]);
    assert!(o.status.success(), "stderr: {}", text(&o.stderr));
    let json: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("inspect --json prints JSON");
    assert_eq!(json["requests"], 9);
    assert_eq!(json["duration_ms"], 400.0);
    assert_eq!(json["runners"], 2);
    assert_eq!(json["shards_per_runner"], 64);
    assert_eq!(json["per_runner"]["counts"], serde_json::json!([4, 5]));
    assert_eq!(
        json["per_verb"],
        serde_json::json!({"CREATE": 2, "DELETE": 2, "GET": 2, "LIST": 3})
    );
    assert_eq!(json["watches"], 0);
    assert_eq!(json["verified"], true);
    assert_eq!(json["top_labels"].as_array().map(Vec::len), Some(6));

    let plain = text(&run(&["inspect", &out]).stdout);
    assert!(plain.contains("requests     9 over 400 ms"), "{plain}");
    assert!(plain.contains("imbalance 11.1%: 4 5"), "{plain}");
}

#[test]
fn runners_and_shards_flags_change_the_partition() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.bin").display().to_string();
    let o = run(&[
        SAMPLE,
        "-o",
        &out,
        "--runners",
        "3",
        "--shards",
        "2",
        "--kperf-paths",
    ]);
    assert!(o.status.success(), "stderr: {}", text(&o.stderr));
    let json: serde_json::Value =
        serde_json::from_slice(&run(&["inspect", &out, "--json"]).stdout).unwrap();
    assert_eq!(json["runners"], 3);
    assert_eq!(
        json["per_shard"]["counts"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(json["path_mode"], "kperf-cleaned");
}

#[test]
fn export_writes_a_profile_that_preprocesses_again() {
    let dir = tempfile::tempdir().unwrap();
    let out = build_sample(dir.path());
    let yaml = dir.path().join("back.yaml").display().to_string();
    let o = run(&["export", &out, "-o", &yaml]);
    assert!(o.status.success(), "stderr: {}", text(&o.stderr));
    let again = dir.path().join("again.bin").display().to_string();
    let o = run(&[&yaml, "-o", &again]);
    assert!(o.status.success(), "stderr: {}", text(&o.stderr));
    let a = text(&run(&["inspect", &out, "--json"]).stdout);
    let b = text(&run(&["inspect", &again, "--json"]).stdout);
    let mut a: serde_json::Value = serde_json::from_str(&a).unwrap();
    let mut b: serde_json::Value = serde_json::from_str(&b).unwrap();
    a["source"] = serde_json::Value::Null;
    b["source"] = serde_json::Value::Null;
    assert_eq!(a, b);
}

#[test]
fn a_bad_profile_exits_1_naming_the_file_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad-profile.yaml");
    std::fs::write(
        &bad,
        "version: 1\nspec: {runnerCount: 1, connsPerRunner: 1, contentType: json}\nrequests:\n\
         - {timestamp: 0, verb: GET, resourceKind: Pod, apiPath: /api/v1/pods}\n",
    )
    .unwrap();
    let out = dir.path().join("t.bin");
    let o = run(&[bad.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let stderr = text(&o.stderr);
    assert!(stderr.starts_with("preprocess: "), "{stderr}");
    assert!(stderr.contains("bad-profile.yaml"), "{stderr}");
    assert!(
        stderr.contains("name is required for GET operation"),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "only the profile remains: {left:?}");
}

#[test]
fn a_missing_profile_and_a_corrupt_timeline_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.yaml");
    let o = run(&[
        missing.to_str().unwrap(),
        "-o",
        dir.path().join("t.bin").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("nope.yaml"), "{}", text(&o.stderr));

    let out = build_sample(dir.path());
    let mut bytes = std::fs::read(&out).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&out, &bytes).unwrap();
    let o = run(&["inspect", &out]);
    assert_eq!(o.status.code(), Some(1));
    let stderr = text(&o.stderr);
    assert!(
        stderr.contains("sample.bin") && stderr.contains("checksum"),
        "{stderr}"
    );
}

#[test]
fn load_warnings_go_to_stderr_and_the_build_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("p.yaml");
    std::fs::write(
        &profile,
        "version: 1\nspec: {runnerCount: 1, connsPerRunner: 1, contentType: json}\nrequests:\n\
         - {timestamp: 0, verb: LIST, resourceKind: Pod, apiPath: /api/v1/pods, labelselector: a=b}\n",
    )
    .unwrap();
    let out = dir.path().join("t.bin");
    let o = run(&[profile.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "stderr: {}", text(&o.stderr));
    let stderr = text(&o.stderr);
    assert!(
        stderr.contains("preprocess: warning:") && stderr.contains("labelselector"),
        "{stderr}"
    );
}

#[test]
fn reads_the_profile_from_stdin() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("stdin.bin");
    let mut child = Command::new(BIN)
        .args(["-", "-o", out.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let profile = std::fs::read(SAMPLE).unwrap();
    child.stdin.take().unwrap().write_all(&profile).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "stderr: {}", text(&o.stderr));
    let json: serde_json::Value =
        serde_json::from_slice(&run(&["inspect", out.to_str().unwrap(), "--json"]).stdout).unwrap();
    assert_eq!(json["requests"], 9);
    assert_eq!(json["source"], "<stdin>");
}

/// A profile the fast path reads gives the same timeline as the general parser; one it
/// defers (here: an invalid request after valid ones) fails with the general parser's error.
#[test]
fn the_fast_path_and_its_fallback_give_the_general_parsers_results() {
    let dir = tempfile::tempdir().unwrap();
    let head = "version: 1\nspec:\n  runnerCount: 2\n  connsPerRunner: 1\n  contentType: json\nrequests:\n";
    let mut items = String::new();
    for i in 0..500 {
        items.push_str(&format!(
            "  - timestamp: {i}\n    verb: GET\n    namespace: \"ns-{}\"\n    resourceKind: Pod\n    name: p{i}\n    apiPath: /api/v1/namespaces/ns-{}/pods/p{i}\n",
            i % 7,
            i % 7
        ));
    }
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, format!("{head}{items}")).unwrap();
    let good = good.display().to_string();
    let fast = dir.path().join("fast.bin").display().to_string();
    let general = dir.path().join("general.bin").display().to_string();
    assert!(run(&[&good, "-o", &fast]).status.success());
    assert!(run(&[&good, "-o", &general, "--general-parser"])
        .status
        .success());
    assert!(std::fs::read(&fast).unwrap() == std::fs::read(&general).unwrap());

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        format!(
            "{head}{items}{}",
            items.replacen("verb: GET", "verb: PUT", 1)
        ),
    )
    .unwrap();
    let bad = bad.display().to_string();
    let out = dir.path().join("bad.bin").display().to_string();
    let o = run(&[&bad, "-o", &out]);
    assert!(!o.status.success());
    let general = run(&[&bad, "-o", &out, "--general-parser"]);
    assert_eq!(text(&o.stderr), text(&general.stderr));
    assert!(
        text(&o.stderr).starts_with(&format!(
            "preprocess: {bad}:3007:5: invalid profile: requests[500]: unsupported verb: PUT"
        )),
        "{}",
        text(&o.stderr)
    );
    assert!(!Path::new(&out).exists(), "no timeline after an error");
}

//! Without `--result` the report goes to a file in the current directory, named in the
//! summary; `--result -` still writes it on stdout for kperf users.

use std::process::{Command, Stdio};

use crate::util::*;

#[test]
fn the_report_goes_to_a_named_file_by_default_and_to_stdout_with_a_dash() {
    let server = TestServer::start(Behavior::default());
    let dir = tempfile::tempdir().unwrap();
    let tl = profile()
        .each(0..5, |p, i| p.get("ns/p").at_ms(i))
        .timeline(dir.path(), &spec(1, 1));
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_engine"))
            .arg("run")
            .arg(&tl)
            .args(["--server", &server.url(), "--cores", "1", "--quiet"])
            .args(extra)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("engine run")
    };
    let out = run(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "no JSON on a person's terminal");
    let err = String::from_utf8_lossy(&out.stderr);
    let named = err
        .lines()
        .find_map(|l| l.strip_prefix("report written to "))
        .unwrap_or_else(|| panic!("the summary names the file: {err}"));
    assert!(
        named.starts_with("kreplay-report-") && named.ends_with("Z.json"),
        "{named}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(named)).unwrap()).unwrap();
    assert_eq!(num(&report, "totalRun"), 5);

    let out = run(&["--result", "-"]);
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(num(&report, "totalRun"), 5);
}

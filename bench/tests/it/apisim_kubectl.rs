//! apisim validated by a real client: kubectl (v1.32 at /usr/bin/kubectl) over TLS with apisim's
//! kubeconfig, both contexts. Skipped with a printed reason when kubectl is absent.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;

use crate::util::{ApiSim, WAIT};

/// Fails the test when kubectl is missing (`scripts/test.sh` installs it): a check that
/// cannot run must not pass.
fn require_kubectl() {
    let found = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|output| output.status.success());
    assert!(
        found,
        "kubectl is not installed: this test needs it (scripts/test.sh installs it)"
    );
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--request-timeout", "20s"])
        .args(args)
        .output()
        .expect("run kubectl")
}

fn ok(kubeconfig: &Path, args: &[&str]) -> String {
    let output = kubectl(kubeconfig, args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "kubectl {args:?} failed: {}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write manifest");
    path.to_string_lossy().into_owned()
}

const CONFIGMAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: cm1
  labels:
    app: x
data:
  a: b
";

#[test]
fn kubectl_crud_with_the_certificate_context() {
    require_kubectl();
    let sim = ApiSim::start(&[]);
    assert!(sim.url.starts_with("https://"));
    let kc = sim.kubeconfig.as_path();
    let version = ok(kc, &["get", "--raw", "/version"]);
    assert!(
        version.contains("\"gitVersion\":\"v1.32.0-apisim\""),
        "{version}"
    );
    let empty = kubectl(kc, &["get", "pods"]);
    assert!(empty.status.success());
    assert!(String::from_utf8_lossy(&empty.stderr).contains("No resources found"));

    let manifest = write(sim.dir.path(), "cm.yaml", CONFIGMAP);
    assert!(ok(kc, &["create", "-f", &manifest]).contains("configmap/cm1 created"));
    let listed = ok(kc, &["get", "configmaps"]);
    assert!(
        listed.lines().any(|line| line.starts_with("cm1 ")),
        "{listed}"
    );
    let duplicate = kubectl(kc, &["create", "-f", &manifest]);
    assert!(!duplicate.status.success());
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("AlreadyExists"));

    ok(
        kc,
        &[
            "patch",
            "configmap",
            "cm1",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"c":"d"}}"#,
        ],
    );
    let data = ok(kc, &["get", "configmap", "cm1", "-o", "jsonpath={.data}"]);
    assert_eq!(data, r#"{"a":"b","c":"d"}"#);

    let applied = write(
        sim.dir.path(),
        "cm2.yaml",
        &CONFIGMAP
            .replace("name: cm1", "name: cm2")
            .replace("a: b", "e: f"),
    );
    assert!(ok(kc, &["apply", "--server-side", "-f", &applied]).contains("serverside-applied"));
    assert_eq!(
        ok(kc, &["get", "configmap", "cm2", "-o", "jsonpath={.data.e}"]),
        "f"
    );

    assert!(ok(kc, &["delete", "configmap", "cm1"]).contains("deleted"));
    let gone = kubectl(kc, &["get", "configmap", "cm1"]);
    assert!(String::from_utf8_lossy(&gone.stderr).contains("NotFound"));
    ok(kc, &["create", "-f", &manifest]);
    let deleted = ok(kc, &["delete", "configmaps", "-l", "app=x"]);
    assert!(
        deleted.contains("cm1") && deleted.contains("cm2"),
        "{deleted}"
    );
    let after = kubectl(kc, &["get", "configmaps"]);
    assert!(String::from_utf8_lossy(&after.stderr).contains("No resources found"));
}

#[test]
fn kubectl_token_context_and_wrong_token() {
    require_kubectl();
    let sim = ApiSim::start(&["--token", "good-token"]);
    let kc = sim.kubeconfig.as_path();
    let manifest = write(sim.dir.path(), "cm.yaml", CONFIGMAP);
    ok(
        kc,
        &["--context", "apisim-token", "create", "-f", &manifest],
    );
    assert_eq!(
        ok(
            kc,
            &[
                "--context",
                "apisim-token",
                "get",
                "configmap",
                "cm1",
                "-o",
                "jsonpath={.data.a}"
            ]
        ),
        "b"
    );
    let denied = kubectl(
        kc,
        &[
            "--context",
            "apisim-token",
            "--token",
            "bad-token",
            "get",
            "pods",
        ],
    );
    assert!(!denied.status.success());
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(stderr.contains("Unauthorized"), "{stderr}");
}

#[test]
fn kubectl_watch_sees_a_new_object() {
    require_kubectl();
    let sim = ApiSim::start(&[]);
    let kc = sim.kubeconfig.clone();
    let mut watcher = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kc)
        .args([
            "get",
            "configmaps",
            "-w",
            "--request-timeout",
            "20s",
            "-o",
            "name",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start kubectl get -w");
    let stdout = watcher.stdout.take().expect("watch stdout");
    let (lines_tx, lines_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    // kubectl lists before it watches; wait until its watch is open.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let metrics = ok(&kc, &["get", "--raw", "/metrics"]);
        if metrics.lines().any(|line| line == "apisim_watches 1") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "kubectl never opened its watch"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let manifest = write(sim.dir.path(), "cm.yaml", CONFIGMAP);
    ok(&kc, &["create", "-f", &manifest]);
    let line = lines_rx
        .recv_timeout(WAIT)
        .expect("kubectl printed the watched object");
    let _ = watcher.kill();
    let _ = watcher.wait();
    assert_eq!(line, "configmap/cm1");
}

//! Pods' traffic through the proxy, deletion with each propagation, shutdown, and kubectl.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use super::lab::*;
use crate::util::{call, WAIT};
use serde_json::{json, Value};

#[tokio::test]
async fn proxy_carries_a_20_mb_file_and_background_delete_kills_the_pods() {
    let python = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 is needed by this test (scripts/test.sh installs it)");
    let python = String::from_utf8(python.stdout)
        .expect("utf-8")
        .trim()
        .to_string();
    assert!(!python.is_empty(), "python3 printed no executable path");
    let bin = entrypoint_dir();
    let served = tempfile::tempdir().expect("served dir");
    let file: Vec<u8> = (0..20_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(served.path().join("file"), &file).expect("write file");
    std::fs::set_permissions(served.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let pvc = format!("served={}", served.path().display());
    let sim = start(bin.path(), false, &["--pvc", &pvc]);
    let script = format!(
        "exec {python} -m http.server --bind 127.0.0.1 --directory data \"${{LISTEN##*:}}\""
    );
    let container = json!({
        "ports": [{"name": "report", "containerPort": 8086}],
        "env": [{"name": "LISTEN", "value": "0.0.0.0:8086"}],
        "volumeMounts": [{"name": "data", "mountPath": "/work/data"}],
    });
    let mut server = job("server", 2, &script, json!({}), container);
    server["spec"]["template"]["spec"]["volumes"] =
        json!([{"name": "data", "persistentVolumeClaim": {"claimName": "served"}}]);
    create_job(&sim.addr, &server).await;
    let pods = wait_pods(&sim.addr, "server", 2, "Running").await;
    let name = name_of(&pods[&0]).to_string();

    // Poll until the server listens (503 until then), then fetch the file through apisim.
    let target = format!("/api/v1/namespaces/{NS}/pods/{name}:8086/proxy/file?x=1");
    let deadline = tokio::time::Instant::now() + WAIT;
    let answer = loop {
        let answer = get(&sim.addr, &target).await;
        if answer.status != 503 {
            break answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pod never listened: {}",
            answer.text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body[..answer.body.len().min(400)])
    );
    assert_eq!(answer.headers["content-length"], "20000000");
    assert!(
        answer.body.as_ref() == file.as_slice(),
        "the proxied file differs from the served one"
    );
    // By port name, and a missing path answered by the pod itself.
    let named = get(
        &sim.addr,
        &format!("/api/v1/namespaces/{NS}/pods/{name}:report/proxy/absent"),
    )
    .await;
    assert_eq!(named.status, 404, "{}", named.text());
    let undeclared = get(
        &sim.addr,
        &format!("/api/v1/namespaces/{NS}/pods/{name}:9999/proxy/"),
    )
    .await;
    assert_eq!(undeclared.status, 503);

    // Background deletion: processes stopped, pods deleted, then the Job.
    let pids: Vec<u32> = pods.values().map(pid_of).collect();
    let deleted = call(
        &sim.addr,
        "DELETE",
        &format!("/apis/batch/v1/namespaces/{NS}/jobs/server"),
        &[AUTH[0], ("content-type", "application/json")],
        r#"{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background"}"#,
    )
    .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    for pid in pids {
        wait_gone(pid).await;
    }
    assert!(list_pods(&sim.addr, "server").await.is_empty());
    let job = get(
        &sim.addr,
        &format!("/apis/batch/v1/namespaces/{NS}/jobs/server"),
    )
    .await;
    assert_eq!(job.status, 404);
}

#[tokio::test]
async fn orphan_delete_leaves_pods_and_shutdown_kills_every_process() {
    let bin = entrypoint_dir();
    let mut sim = start(bin.path(), false, &[]);
    // No exec: `sleep` is the shell's child, in the pod's process group.
    create_job(
        &sim.addr,
        &job("sleepers", 2, "sleep 60; echo never", json!({}), json!({})),
    )
    .await;
    let pods = wait_pods(&sim.addr, "sleepers", 2, "Running").await;
    // No propagationPolicy: Orphan, the Job resource's default. The pods keep running.
    let deleted = call(
        &sim.addr,
        "DELETE",
        &format!("/apis/batch/v1/namespaces/{NS}/jobs/sleepers"),
        AUTH,
        "",
    )
    .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    let left = list_pods(&sim.addr, "sleepers").await;
    assert_eq!(left.len(), 2);
    assert!(
        left.values().all(|pod| pod["status"]["phase"] == "Running"),
        "{left:#?}"
    );
    // Deleting one pod kills its process.
    let first = pid_of(&pods[&0]);
    let gone = call(
        &sim.addr,
        "DELETE",
        &format!("/api/v1/namespaces/{NS}/pods/{}", name_of(&pods[&0])),
        AUTH,
        "",
    )
    .await;
    assert_eq!(gone.status, 200);
    wait_gone(first).await;
    // apisim's shutdown ends the other, and what it started.
    let second = pid_of(&pods[&1]);
    let grandchildren = children_of(second).await;
    sim.terminate();
    assert!(sim.wait_exit(), "apisim exits 0");
    wait_gone(second).await;
    for pid in grandchildren {
        wait_gone(pid).await;
    }
}

#[tokio::test]
async fn kubectl_gets_jobs_and_pods_and_reads_logs_over_tls() {
    let found = Command::new("kubectl")
        .args(["version", "--client"])
        .output();
    assert!(
        found.is_ok_and(|output| output.status.success()),
        "kubectl is needed by this test (scripts/test.sh installs it)"
    );
    let bin = entrypoint_dir();
    let sim = start(bin.path(), true, &[]);
    assert!(sim.url.starts_with("https://"));
    let manifest = sim.dir.path().join("job.json");
    // The pod reaches apisim as an in-cluster client would: service host and port, the relocated
    // service-account token and CA.
    let script = "sa=$KREPLAY_SERVICE_ACCOUNT_DIR; \
                  code=$(curl -sS --cacert $sa/ca.crt -H \"Authorization: Bearer $(cat $sa/token)\" -o /dev/null \
                  -w '%{http_code}' https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/apis/batch/v1/namespaces/$(cat $sa/namespace)/jobs/viakubectl); \
                  echo in-cluster $code; echo hello from $JOB_COMPLETION_INDEX";
    let mut object = job("viakubectl", 2, script, json!({}), json!({}));
    object["metadata"]["namespace"] = json!("default");
    std::fs::write(&manifest, object.to_string()).expect("write manifest");
    let kubectl = |args: &[&str]| {
        let output = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&sim.kubeconfig)
            .args(["--request-timeout", "20s"])
            .args(args)
            .output()
            .expect("run kubectl");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "kubectl {args:?}: {}{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };
    kubectl(&["create", "-f", manifest.to_str().expect("utf-8")]);
    // What `engine job manifest` may emit beside the Job: creatable and deletable.
    let access = sim.dir.path().join("access.json");
    let objects = json!([
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "runner", "namespace": "default"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kc", "namespace": "default"},
         "stringData": {"config": "x"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "replay"},
         "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "replay"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "replay"},
         "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": "default"}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "pods", "namespace": "default"},
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "pods", "namespace": "default"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pods"},
         "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": "default"}]},
    ]);
    // kubectl reads a file of concatenated JSON objects as a stream of documents.
    let documents: Vec<String> = objects
        .as_array()
        .expect("array")
        .iter()
        .map(Value::to_string)
        .collect();
    std::fs::write(&access, documents.join("\n")).expect("write access manifest");
    let access = access.to_str().expect("utf-8");
    let created = kubectl(&["create", "-f", access]);
    assert_eq!(created.lines().count(), 6, "{created}");
    let deleted = kubectl(&["delete", "-f", access]);
    assert_eq!(deleted.lines().count(), 6, "{deleted}");
    kubectl(&[
        "wait",
        "--for=condition=Complete",
        "job/viakubectl",
        "--timeout=20s",
    ]);
    let listed = kubectl(&["get", "jobs,pods", "-o", "name"]);
    assert!(listed.contains("job.batch/viakubectl"), "{listed}");
    let pods: Vec<&str> = listed
        .lines()
        .filter(|l| l.starts_with("pod/viakubectl-"))
        .collect();
    assert_eq!(pods.len(), 2, "{listed}");
    let logs = kubectl(&["logs", "-l", "batch.kubernetes.io/job-completion-index=1"]);
    assert_eq!(logs, "in-cluster 200\nhello from 1\n");
    // The Job's defaulted selector lets kubectl find its pods.
    let by_job = kubectl(&["logs", "job/viakubectl"]);
    assert!(
        by_job.starts_with("in-cluster 200\nhello from "),
        "{by_job}"
    );
    let tail = kubectl(&["logs", pods[0], "--tail", "1"]);
    assert!(tail.starts_with("hello from "), "{tail}");
    kubectl(&["delete", "job", "viakubectl", "--wait=true"]);
    let after = kubectl(&["get", "jobs,pods", "-o", "name"]);
    assert!(
        after.trim().is_empty(),
        "kubectl deletes with Background propagation: {after}"
    );
}

//! apisim over HTTP: each verb's status codes, selectors, paging, order log, metrics, request log,
//! authentication and protocols — against the real binary.

use crate::util::{call, request, ApiSim, H2};
use serde_json::{json, Value};

const PODS: &str = "/api/v1/namespaces/default/pods";

fn pod(name: &str, labels: Value) -> String {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels}, "spec": {}})
        .to_string()
}

async fn create(addr: &str, name: &str, labels: Value) -> Value {
    let answer = call(addr, "POST", PODS, &[], &pod(name, labels)).await;
    assert_eq!(answer.status, 201, "{}", answer.text());
    answer.json()
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["metadata"]["name"].as_str().expect("name").to_string())
        .collect()
}

#[tokio::test]
async fn each_verb_answers_apiserver_status_codes() {
    let sim = ApiSim::start(&["--plain", "--no-auth"]);
    let addr = sim.addr.as_str();
    let target = format!("{PODS}/a");

    let created = create(addr, "a", json!({"app": "x"})).await;
    assert_eq!(created["metadata"]["namespace"], "default");
    let first_rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();

    let again = call(addr, "POST", PODS, &[], &pod("a", json!({}))).await;
    assert_eq!(again.status, 409);
    assert_eq!(again.json()["reason"], "AlreadyExists");
    assert_eq!(again.json()["kind"], "Status");

    let got = call(addr, "GET", &format!("{target}?timeout=1m0s"), &[], "").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["metadata"]["uid"], created["metadata"]["uid"]);
    let missing = call(addr, "GET", &format!("{PODS}/nope"), &[], "").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["reason"], "NotFound");
    assert_eq!(missing.json()["message"], "pods \"nope\" not found");

    let mut updated = created.clone();
    updated["spec"] = json!({"nodeName": "n1"});
    let put = call(addr, "PUT", &target, &[], &updated.to_string()).await;
    assert_eq!(put.status, 200, "{}", put.text());
    let stale = call(addr, "PUT", &target, &[], &updated.to_string()).await;
    assert_eq!(stale.status, 409);
    assert_eq!(stale.json()["reason"], "Conflict");
    assert_ne!(put.json()["metadata"]["resourceVersion"], first_rv.as_str());

    let merge = [("content-type", "application/merge-patch+json")];
    let patched = call(
        addr,
        "PATCH",
        &target,
        &merge,
        r#"{"metadata":{"labels":{"tier":"web"}}}"#,
    )
    .await;
    assert_eq!(patched.status, 200);
    assert_eq!(
        patched.json()["metadata"]["labels"],
        json!({"app": "x", "tier": "web"})
    );
    let strategic = [("content-type", "application/strategic-merge-patch+json")];
    let smp = call(
        addr,
        "PATCH",
        &target,
        &strategic,
        r#"{"spec":{"nodeName":"n2"}}"#,
    )
    .await;
    assert_eq!(smp.status, 200);
    assert_eq!(smp.json()["spec"]["nodeName"], "n2");
    let json_patch = [("content-type", "application/json-patch+json")];
    let ops = r#"[{"op":"replace","path":"/spec/nodeName","value":"n3"}]"#;
    let jp = call(addr, "PATCH", &target, &json_patch, ops).await;
    assert_eq!(jp.json()["spec"]["nodeName"], "n3");
    let failed_test = r#"[{"op":"test","path":"/spec/nodeName","value":"zz"}]"#;
    assert_eq!(
        call(addr, "PATCH", &target, &json_patch, failed_test)
            .await
            .status,
        422
    );
    let patch_missing = call(addr, "PATCH", &format!("{PODS}/nope"), &merge, "{}").await;
    assert_eq!(patch_missing.status, 404);
    let crd = "/apis/example.com/v1/namespaces/default/widgets";
    let widget = r#"{"metadata":{"name":"w"},"spec":{"size":1}}"#;
    assert_eq!(call(addr, "POST", crd, &[], widget).await.status, 201);
    let crd_smp = call(addr, "PATCH", &format!("{crd}/w"), &strategic, "{}").await;
    assert_eq!(crd_smp.status, 415);
    let crd_list = call(addr, "GET", crd, &[], "").await.json();
    assert_eq!(crd_list["kind"], "WidgetList");
    assert_eq!(crd_list["apiVersion"], "example.com/v1");

    let apply = [("content-type", "application/apply-patch+yaml")];
    let body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: v\n";
    let cms = "/api/v1/namespaces/default/configmaps";
    let no_manager = call(addr, "PATCH", &format!("{cms}/c"), &apply, body).await;
    assert_eq!(no_manager.status, 422);
    assert!(no_manager.json()["message"]
        .as_str()
        .unwrap()
        .contains("fieldManager"));
    let applied = call(
        addr,
        "PATCH",
        &format!("{cms}/c?fieldManager=t"),
        &apply,
        body,
    )
    .await;
    assert_eq!(applied.status, 201, "{}", applied.text());
    let body2 =
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"j":"w"}}"#;
    let reapplied = call(
        addr,
        "PATCH",
        &format!("{cms}/c?fieldManager=t"),
        &apply,
        body2,
    )
    .await;
    assert_eq!(reapplied.status, 200);
    assert_eq!(reapplied.json()["data"], json!({"k": "v", "j": "w"}));
    let nameless = call(
        addr,
        "PATCH",
        &format!("{cms}/n?fieldManager=t"),
        &apply,
        "data:\n  x: y\n",
    )
    .await;
    assert_eq!(nameless.status, 201);
    assert_eq!(
        nameless.json()["metadata"]["name"],
        "n",
        "the URL names the applied object"
    );
    let rename = call(
        addr,
        "PATCH",
        &format!("{cms}/n"),
        &merge,
        r#"{"metadata":{"name":"m"}}"#,
    )
    .await;
    assert_eq!(rename.status, 400);
    let unknown = [("content-type", "text/plain")];
    assert_eq!(
        call(addr, "PATCH", &target, &unknown, "{}").await.status,
        415
    );

    let deleted = call(addr, "DELETE", &target, &[], "").await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.json()["metadata"]["name"], "a");
    assert_eq!(call(addr, "DELETE", &target, &[], "").await.status, 404);
    assert_eq!(call(addr, "PUT", PODS, &[], "{}").await.status, 405);
    let protobuf = [("content-type", "application/vnd.kubernetes.protobuf")];
    assert_eq!(
        call(addr, "POST", PODS, &protobuf, "k8s\0").await.status,
        415
    );
    let nameless = call(addr, "POST", PODS, &[], r#"{"metadata":{}}"#).await;
    assert_eq!(nameless.status, 422);
    let generated = call(
        addr,
        "POST",
        PODS,
        &[],
        r#"{"metadata":{"generateName":"g-"}}"#,
    )
    .await;
    assert_eq!(generated.status, 201);
    let generated_name = generated.json()["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(generated_name.starts_with("g-") && generated_name.len() == 7);
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists() {
    let sim = ApiSim::start(&["--plain", "--no-auth"]);
    let addr = sim.addr.as_str();
    create(addr, "web1", json!({"app": "web", "tier": "front"})).await;
    create(addr, "web2", json!({"app": "web"})).await;
    create(addr, "db", json!({"app": "db"})).await;
    let list = |selector: &'static str| {
        let target = format!("{PODS}?{selector}");
        async move {
            let answer = call(addr, "GET", &target, &[], "").await;
            assert_eq!(answer.status, 200, "{selector}: {}", answer.text());
            names(&answer.json())
        }
    };
    assert_eq!(list("labelSelector=app%3Dweb").await, ["web1", "web2"]);
    assert_eq!(list("labelSelector=app%3D%3Dweb").await, ["web1", "web2"]);
    assert_eq!(list("labelSelector=app!%3Dweb").await, ["db"]);
    assert_eq!(
        list("labelSelector=app+in+(db,web)").await,
        ["db", "web1", "web2"]
    );
    assert_eq!(list("labelSelector=app+notin+(web)").await, ["db"]);
    assert_eq!(list("labelSelector=tier").await, ["web1"]);
    assert_eq!(list("labelSelector=!tier").await, ["db", "web2"]);
    assert_eq!(list("labelSelector=app%3Dweb,!tier").await, ["web2"]);
    assert_eq!(list("fieldSelector=metadata.name%3Ddb").await, ["db"]);
    assert_eq!(
        list("fieldSelector=metadata.namespace%3Ddefault")
            .await
            .len(),
        3
    );
    let everything = call(addr, "GET", "/api/v1/pods", &[], "").await.json();
    assert_eq!(everything["kind"], "PodList");
    assert_eq!(names(&everything).len(), 3);
    let bad = call(
        addr,
        "GET",
        &format!("{PODS}?labelSelector=app+in+web"),
        &[],
        "",
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["reason"], "BadRequest");

    let removed = call(
        addr,
        "DELETE",
        &format!("{PODS}?labelSelector=app%3Dweb"),
        &[],
        "",
    )
    .await;
    assert_eq!(removed.status, 200);
    assert_eq!(names(&removed.json()), ["web1", "web2"]);
    assert_eq!(list("").await, ["db"]);
}

#[tokio::test]
async fn limit_and_continue_page_through_a_list() {
    let sim = ApiSim::start(&["--plain", "--no-auth"]);
    let addr = sim.addr.as_str();
    for name in ["e", "d", "c", "b", "a"] {
        create(addr, name, json!({})).await;
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut remaining = Vec::new();
    for _ in 0..5 {
        let target = match &token {
            Some(token) => format!("{PODS}?limit=2&continue={token}"),
            None => format!("{PODS}?limit=2"),
        };
        let page = call(addr, "GET", &target, &[], "").await.json();
        seen.extend(names(&page));
        remaining.push(page["metadata"]["remainingItemCount"].clone());
        token = page["metadata"]["continue"].as_str().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, ["a", "b", "c", "d", "e"]);
    assert_eq!(remaining, [json!(3), json!(1), Value::Null]);
    let bad = call(
        addr,
        "GET",
        &format!("{PODS}?limit=2&continue=zzz"),
        &[],
        "",
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        call(addr, "GET", &format!("{PODS}?limit=x"), &[], "")
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn order_log_records_each_objects_requests_in_arrival_order() {
    let sim = ApiSim::start(&["--plain", "--no-auth"]);
    let addr = sim.addr.as_str();
    create(addr, "a", json!({})).await;
    create(addr, "b", json!({})).await;
    call(addr, "GET", &format!("{PODS}/a"), &[], "").await;
    call(addr, "GET", PODS, &[], "").await;
    call(addr, "DELETE", &format!("{PODS}/a"), &[], "").await;
    call(addr, "GET", &format!("{PODS}/a"), &[], "").await;
    let order = call(addr, "GET", "/apisim/order", &[], "").await.json();
    let verbs = |key: &str| -> Vec<(u64, String)> {
        order["objects"][key]
            .as_array()
            .unwrap_or_else(|| panic!("no entries for {key}: {order}"))
            .iter()
            .map(|e| {
                (
                    e["seq"].as_u64().unwrap(),
                    e["verb"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let a = verbs("default/pods/a");
    assert_eq!(
        a.iter().map(|(_, verb)| verb.as_str()).collect::<Vec<_>>(),
        ["CREATE", "GET", "DELETE", "GET"]
    );
    assert!(a.windows(2).all(|pair| pair[0].0 < pair[1].0), "{a:?}");
    assert_eq!(verbs("default/pods/b")[0].1, "CREATE");
    assert_eq!(verbs("default/pods/")[0].1, "LIST");
    assert_eq!(order["recorded"], 6);
    assert_eq!(
        call(addr, "DELETE", "/apisim/order", &[], "").await.status,
        200
    );
    let reset = call(addr, "GET", "/apisim/order", &[], "").await.json();
    assert_eq!(reset["recorded"], 0);
    assert_eq!(reset["objects"], json!({}));
}

#[tokio::test]
async fn metrics_count_requests_by_verb_resource_and_code() {
    let sim = ApiSim::start(&["--plain", "--no-auth"]);
    let addr = sim.addr.as_str();
    create(addr, "a", json!({})).await;
    call(addr, "GET", &format!("{PODS}/a"), &[], "").await;
    call(addr, "GET", &format!("{PODS}/a"), &[], "").await;
    call(addr, "GET", &format!("{PODS}/zz"), &[], "").await;
    let metrics = call(addr, "GET", "/metrics", &[], "").await;
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    for line in [
        "apisim_requests_total{verb=\"CREATE\",resource=\"pods\",code=\"201\"} 1",
        "apisim_requests_total{verb=\"GET\",resource=\"pods\",code=\"200\"} 2",
        "apisim_requests_total{verb=\"GET\",resource=\"pods\",code=\"404\"} 1",
        "apisim_request_duration_seconds_count{verb=\"GET\"} 3",
        "apisim_watches 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    let bytes_line = text
        .lines()
        .find(|l| l.starts_with("apisim_response_body_bytes_total "))
        .expect("bytes counter");
    let bytes: u64 = bytes_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(bytes > 0);
}

#[tokio::test]
async fn request_log_shows_exactly_what_arrived() {
    let sim = ApiSim::start(&["--plain", "--no-auth", "--record-requests", "2"]);
    let addr = sim.addr.as_str();
    let headers = [
        ("accept", "application/vnd.kubernetes.protobuf, */*"),
        (
            "user-agent",
            "kperf/v0.0.0 (linux/amd64) kubernetes/$Format",
        ),
    ];
    let body = pod("a", json!({}));
    call(
        addr,
        "POST",
        &format!("{PODS}?timeout=1m0s"),
        &headers,
        &body,
    )
    .await;
    let got = call(addr, "GET", &format!("{PODS}/a"), &headers, "").await;
    assert_eq!(
        got.headers["content-type"], "application/json",
        "protobuf Accept is answered with JSON"
    );
    call(addr, "GET", &format!("{PODS}/a?x=1"), &[], "").await;
    let log = call(addr, "GET", "/apisim/requests", &[], "").await.json();
    let requests = log["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 2, "bounded to the last 2");
    assert_eq!(requests[0]["method"], "GET");
    assert_eq!(requests[0]["target"], format!("{PODS}/a"));
    assert_eq!(requests[0]["accept"], headers[0].1);
    assert_eq!(requests[0]["user_agent"], headers[1].1);
    assert_eq!(requests[1]["target"], format!("{PODS}/a?x=1"));
    call(addr, "DELETE", "/apisim/requests", &[], "").await;
    call(
        addr,
        "POST",
        &format!("{PODS}?timeout=1m0s"),
        &headers,
        &pod("b", json!({})),
    )
    .await;
    let log = call(addr, "GET", "/apisim/requests", &[], "").await.json();
    let post = &log["requests"][0];
    assert_eq!(post["method"], "POST");
    assert_eq!(post["target"], format!("{PODS}?timeout=1m0s"));
    assert_eq!(
        post["content_type"],
        Value::Null,
        "no Content-Type was sent"
    );
    assert_eq!(post["body"], pod("b", json!({})));
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let sim = ApiSim::start(&["--plain", "--no-auth", "--max-body-bytes", "64"]);
    let big = pod(&"x".repeat(100), json!({}));
    let answer = call(&sim.addr, "POST", PODS, &[], &big).await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.json()["reason"], "RequestEntityTooLarge");
    let small = call(&sim.addr, "POST", PODS, &[], r#"{"metadata":{"name":"s"}}"#).await;
    assert_eq!(small.status, 201);
}

#[tokio::test]
async fn token_auth_and_discovery() {
    let sim = ApiSim::start(&["--plain", "--token", "s3cret"]);
    let addr = sim.addr.as_str();
    let denied = call(addr, "GET", PODS, &[], "").await;
    assert_eq!(denied.status, 401);
    assert_eq!(denied.json()["reason"], "Unauthorized");
    let wrong = [("authorization", "Bearer nope")];
    assert_eq!(call(addr, "GET", PODS, &wrong, "").await.status, 401);
    assert_eq!(call(addr, "GET", "/healthz", &[], "").await.status, 200);
    let auth = [("authorization", "Bearer s3cret")];
    assert_eq!(call(addr, "GET", PODS, &auth, "").await.status, 200);
    let core = call(addr, "GET", "/api/v1", &auth, "").await.json();
    assert_eq!(core["kind"], "APIResourceList");
    let groups = call(addr, "GET", "/apis", &auth, "").await.json();
    assert!(groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["name"] == "apps"));
    assert_eq!(
        call(addr, "GET", "/version", &auth, "").await.json()["major"],
        "1"
    );
    assert_eq!(call(addr, "GET", "/nowhere", &auth, "").await.status, 404);
    let kubeconfig = std::fs::read_to_string(&sim.kubeconfig).unwrap();
    assert!(kubeconfig.contains("token: \"s3cret\""));
    assert!(kubeconfig.contains(&format!("server: \"{}\"", sim.url)));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&sim.kubeconfig)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn h2c_prior_knowledge_serves_streams_on_one_connection() {
    let sim = ApiSim::start(&["--plain", "--no-auth"]);
    let addr = sim.addr.as_str();
    let mut h2 = H2::connect(addr).await;
    let created = h2
        .send(addr, request("POST", PODS, &[], &pod("a", json!({}))))
        .await;
    assert_eq!(created.status, 201);
    for _ in 0..3 {
        let got = h2
            .send(addr, request("GET", &format!("{PODS}/a"), &[], ""))
            .await;
        assert_eq!(got.status, 200);
    }
    let metrics = call(addr, "GET", "/metrics", &[], "").await.text();
    assert!(
        metrics.lines().any(|l| l == "apisim_connections_total 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn tls_serves_http1_with_token_or_client_certificate() {
    let curl_present = std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_ok();
    assert!(
        curl_present,
        "curl is not installed: this test needs it (scripts/test.sh installs it)"
    );
    let out = tempfile::tempdir().unwrap();
    let written_ca = out.path().join("written-ca.pem");
    let sim = ApiSim::start(&[
        "--token",
        "tls-token",
        "--threads",
        "2",
        "--write-ca",
        written_ca.to_str().unwrap(),
    ]);
    let dir = sim.dir.path();
    let ca = dir.join("ca.pem");
    let kubeconfig = std::fs::read_to_string(&sim.kubeconfig).unwrap();
    let field = |name: &str| -> Vec<u8> {
        let line = kubeconfig
            .lines()
            .find_map(|line| line.trim().strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("{name} missing from the kubeconfig"));
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(line)
            .unwrap()
    };
    std::fs::write(&ca, field("certificate-authority-data")).unwrap();
    assert_eq!(
        std::fs::read(&written_ca).unwrap(),
        field("certificate-authority-data"),
        "--write-ca writes the CA the kubeconfig carries"
    );
    std::fs::write(dir.join("client.pem"), field("client-certificate-data")).unwrap();
    std::fs::write(dir.join("client-key.pem"), field("client-key-data")).unwrap();
    let curl = |extra: &[&str]| -> (String, String) {
        let output = std::process::Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "20",
                "--http1.1",
                "-o",
                "-",
                "-w",
                "\n%{http_code} %{http_version}",
            ])
            .arg("--cacert")
            .arg(&ca)
            .args(extra)
            .arg(format!("{}{PODS}", sim.url))
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').expect("status line");
        (body.to_string(), status.to_string())
    };
    let (_, status) = curl(&[]);
    assert_eq!(status, "401 1.1");
    let (body, status) = curl(&["-H", "Authorization: Bearer tls-token"]);
    assert_eq!(status, "200 1.1");
    assert!(body.contains("\"kind\":\"PodList\""), "{body}");
    let cert = dir.join("client.pem");
    let key = dir.join("client-key.pem");
    let (_, status) = curl(&[
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(status, "200 1.1", "the client certificate authenticates");
}

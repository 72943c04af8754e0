//! Kubeconfig resolution against kubectl's own answer on the same files (`kubectl config view
//! --minify --flatten`), contexts, merging of KUBECONFIG lists, in-cluster configuration, and the
//! errors users see for broken kubeconfigs.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::util::tls::{env_without_cluster, error_text, Pki};
use engine::kubeconfig::{
    resolve_with, ClusterAccess, KubeconfigError, KubeconfigOptions, ResolveEnvironment,
};

fn with_kubeconfig_env(dir: &Path, files: &[&Path]) -> ResolveEnvironment {
    let list: Vec<PathBuf> = files.iter().map(|f| f.to_path_buf()).collect();
    ResolveEnvironment {
        kubeconfig_env: Some(std::env::join_paths(list).expect("join paths")),
        ..env_without_cluster(dir, Duration::from_secs(1))
    }
}

fn options(context: Option<&str>) -> KubeconfigOptions {
    KubeconfigOptions {
        kubeconfig: None,
        context: context.map(str::to_string),
    }
}

/// What kubectl selects: (context, cluster, user, namespace, server, tls-server-name, CA path).
#[derive(Debug, PartialEq)]
struct Selection {
    context: String,
    cluster: String,
    user: String,
    namespace: Option<String>,
    server: String,
    tls_server_name: Option<String>,
}

fn kubectl_selection(
    kubeconfig_env: &OsString,
    context: Option<&str>,
) -> Option<(Selection, serde_json::Value)> {
    if !Path::new("/usr/bin/kubectl").exists() {
        eprintln!("SKIPPED comparison: /usr/bin/kubectl is not installed");
        return None;
    }
    let mut command = Command::new("/usr/bin/kubectl");
    command.args(["config", "view", "--minify", "--flatten", "-o", "json"]);
    if let Some(context) = context {
        command.args(["--context", context]);
    }
    let output = command
        .env("KUBECONFIG", kubeconfig_env)
        .output()
        .expect("run kubectl");
    assert!(
        output.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let view: serde_json::Value = serde_json::from_slice(&output.stdout).expect("kubectl JSON");
    let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
    let context_entry = &view["contexts"][0];
    let cluster = &view["clusters"][0]["cluster"];
    Some((
        Selection {
            context: text(&view["current-context"]).unwrap_or_default(),
            cluster: text(&context_entry["context"]["cluster"]).unwrap_or_default(),
            user: text(&context_entry["context"]["user"]).unwrap_or_default(),
            namespace: text(&context_entry["context"]["namespace"]),
            server: text(&cluster["server"]).unwrap_or_default(),
            tls_server_name: text(&cluster["tls-server-name"]),
        },
        view,
    ))
}

fn our_selection(access: &ClusterAccess) -> Selection {
    let selected = access
        .selected
        .clone()
        .expect("kubeconfig access has a selected context");
    Selection {
        context: selected.context,
        cluster: selected.cluster,
        user: selected.user,
        namespace: selected.namespace,
        server: access.server.clone(),
        tls_server_name: access.tls_server_name.clone(),
    }
}

/// Two files that overlap: both define cluster `shared`, user `shared-user` and context `a`,
/// both set current-context; file B names its CA by a path relative to its own directory.
fn overlapping_files(dir: &Path) -> (PathBuf, PathBuf) {
    let a_dir = dir.join("a");
    let b_dir = dir.join("b");
    std::fs::create_dir_all(&a_dir).expect("mkdir");
    std::fs::create_dir_all(&b_dir).expect("mkdir");
    Pki::new(&b_dir); // writes b/ca.crt
    let a = a_dir.join("config");
    let b = b_dir.join("config");
    std::fs::write(
        &a,
        r#"apiVersion: v1
kind: Config
current-context: a
clusters:
- name: shared
  cluster:
    server: https://127.0.0.1:6443
    insecure-skip-tls-verify: true
- name: only-a
  cluster:
    server: http://127.0.0.1:8080
users:
- name: shared-user
  user:
    token: token-from-a
contexts:
- name: a
  context:
    cluster: shared
    user: shared-user
    namespace: ns-a
- name: a-plain
  context:
    cluster: only-a
    user: shared-user
"#,
    )
    .expect("write a");
    std::fs::write(
        &b,
        r#"apiVersion: v1
kind: Config
current-context: b
clusters:
- name: shared
  cluster:
    server: https://10.9.9.9:443
- name: only-b
  cluster:
    server: https://127.0.0.1:7443/prefix
    certificate-authority: ca.crt
    tls-server-name: kubernetes.default
users:
- name: shared-user
  user:
    token: token-from-b
- name: b-user
  user:
    token: token-b-user
contexts:
- name: a
  context:
    cluster: only-b
    user: b-user
- name: b
  context:
    cluster: only-b
    user: b-user
    namespace: ns-b
"#,
    )
    .expect("write b");
    (a, b)
}

#[test]
fn merged_kubeconfig_list_selects_what_kubectl_selects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = overlapping_files(dir.path());
    for files in [[&a, &b], [&b, &a]] {
        let env = with_kubeconfig_env(dir.path(), &[files[0], files[1]]);
        for context in [None, Some("a"), Some("b"), Some("a-plain")] {
            let access = resolve_with(&options(context), &env)
                .unwrap_or_else(|e| panic!("resolve {context:?} with {files:?}: {e}"));
            let ours = our_selection(&access);
            let Some((theirs, view)) =
                kubectl_selection(env.kubeconfig_env.as_ref().expect("set"), context)
            else {
                return;
            };
            assert_eq!(ours, theirs, "context {context:?}, files {files:?}");
            if ours.cluster == "only-b" {
                // kubectl embeds the CA it read through the relative path: file B's directory.
                use base64::Engine;
                let embedded = view["clusters"][0]["cluster"]["certificate-authority-data"]
                    .as_str()
                    .expect("embedded CA");
                let expected = std::fs::read(dir.path().join("b").join("ca.crt")).expect("ca");
                assert_eq!(
                    base64::engine::general_purpose::STANDARD
                        .decode(embedded)
                        .expect("base64"),
                    expected
                );
            }
        }
    }
    // The first file's current-context wins.
    let ab =
        resolve_with(&options(None), &with_kubeconfig_env(dir.path(), &[&a, &b])).expect("a:b");
    assert_eq!(ab.selected.expect("selected").context, "a");
    let ba =
        resolve_with(&options(None), &with_kubeconfig_env(dir.path(), &[&b, &a])).expect("b:a");
    assert_eq!(ba.selected.expect("selected").context, "b");
}

#[test]
fn first_file_wins_whole_entries_and_relative_ca_resolves_against_its_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = overlapping_files(dir.path());
    let access = resolve_with(
        &options(Some("a")),
        &with_kubeconfig_env(dir.path(), &[&a, &b]),
    )
    .expect("resolve");
    assert_eq!(
        access.server, "https://127.0.0.1:6443",
        "cluster shared from file a"
    );
    assert_eq!(
        access
            .credentials
            .authorization_header()
            .expect("header")
            .as_deref(),
        Some("Bearer token-from-a")
    );
    let access = resolve_with(
        &options(Some("b")),
        &with_kubeconfig_env(dir.path(), &[&a, &b]),
    )
    .expect("resolve");
    assert_eq!(access.endpoint.base_path, "/prefix");
    assert_eq!(access.endpoint.authority, "127.0.0.1:7443");
    assert_eq!(
        access
            .server_name()
            .map(|n| n.to_str().into_owned())
            .as_deref(),
        Some("kubernetes.default")
    );
    assert!(access.tls.is_some());
    let plain = resolve_with(
        &options(Some("a-plain")),
        &with_kubeconfig_env(dir.path(), &[&a, &b]),
    )
    .expect("resolve");
    assert!(plain.tls.is_none() && !plain.endpoint.https);
}

#[test]
fn missing_files_in_the_list_are_skipped_and_home_config_is_the_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, _b) = overlapping_files(dir.path());
    let missing = dir.path().join("missing-config");
    let access = resolve_with(
        &options(None),
        &with_kubeconfig_env(dir.path(), &[&missing, &a]),
    )
    .expect("resolve");
    assert_eq!(access.selected.expect("selected").context, "a");

    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".kube")).expect("mkdir");
    std::fs::copy(&a, home.join(".kube").join("config")).expect("copy");
    let access = resolve_with(
        &options(Some("a-plain")),
        &ResolveEnvironment {
            home: Some(home),
            ..env_without_cluster(dir.path(), Duration::from_secs(1))
        },
    )
    .expect("resolve from home");
    assert_eq!(access.server, "http://127.0.0.1:8080");
}

#[test]
fn unknown_context_cluster_and_user_are_named_with_what_exists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = overlapping_files(dir.path());
    let env = with_kubeconfig_env(dir.path(), &[&a, &b]);
    let message = error_text(resolve_with(&options(Some("nope")), &env));
    assert!(message.contains("context \"nope\""), "{message}");
    assert!(message.contains("a, a-plain, b"), "{message}");
    assert!(message.contains(&a.display().to_string()), "{message}");

    let broken = dir.path().join("broken");
    std::fs::write(
        &broken,
        "clusters:\n- name: c\n  cluster: {server: 'https://x:1'}\ncontexts:\n\
         - name: no-cluster\n  context: {cluster: ghost, user: u}\n\
         - name: no-user\n  context: {cluster: c, user: ghost-user}\n",
    )
    .expect("write");
    let env = with_kubeconfig_env(dir.path(), &[&broken]);
    let message = error_text(resolve_with(&options(Some("no-cluster")), &env));
    assert!(
        message.contains("cluster \"ghost\"") && message.contains("defined clusters: c"),
        "{message}"
    );
    let message = error_text(resolve_with(&options(Some("no-user")), &env));
    assert!(message.contains("user \"ghost-user\""), "{message}");
    let message = error_text(resolve_with(&options(None), &env));
    assert!(
        message.contains("current-context") && message.contains("--context"),
        "{message}"
    );
}

#[test]
fn explicit_kubeconfig_must_exist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nowhere.yaml");
    let message = error_text(resolve_with(
        &KubeconfigOptions {
            kubeconfig: Some(missing.clone()),
            context: None,
        },
        &env_without_cluster(dir.path(), Duration::from_secs(1)),
    ));
    assert!(
        message.contains(&missing.display().to_string()) && message.contains("cannot read"),
        "{message}"
    );
}

fn single(dir: &Path, cluster: &str, user: &str) -> Result<ClusterAccess, KubeconfigError> {
    let path = dir.join("single");
    std::fs::write(
        &path,
        format!(
            "clusters:\n- name: c\n  cluster:\n{cluster}users:\n- name: u\n  user:\n{user}\
             contexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n"
        ),
    )
    .expect("write");
    resolve_with(
        &KubeconfigOptions {
            kubeconfig: Some(path),
            context: None,
        },
        &env_without_cluster(dir, Duration::from_secs(1)),
    )
}

#[test]
fn invalid_cluster_settings_are_reported_before_any_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = "    token: abc\n";
    let message = error_text(single(
        dir.path(),
        "    server: https://x:1\n    proxy-url: http://proxy:3128\n",
        token,
    ));
    assert!(
        message.contains("cluster \"c\"") && message.contains("proxy-url"),
        "{message}"
    );
    let message = error_text(single(
        dir.path(),
        "    insecure-skip-tls-verify: true\n",
        token,
    ));
    assert!(message.contains("has no server"), "{message}");
    let message = error_text(single(
        dir.path(),
        "    server: https://x:1\n    certificate-authority-data: bm90IGEgY2VydGlmaWNhdGU=\n",
        token,
    ));
    assert!(
        message.contains("certificate-authority-data") && message.contains("no PEM certificate"),
        "{message}"
    );
    let missing_ca = dir.path().join("missing-ca.crt");
    let message = error_text(single(
        dir.path(),
        &format!(
            "    server: https://x:1\n    certificate-authority: {}\n",
            missing_ca.display()
        ),
        token,
    ));
    assert!(
        message.contains(&missing_ca.display().to_string()),
        "{message}"
    );
    let message = error_text(single(dir.path(), "    server: ftp://x:1\n", token));
    assert!(message.contains("unsupported scheme"), "{message}");
}

#[test]
fn yaml_errors_name_the_file_and_line_without_quoting_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "clusters:\n- name: c\n  cluster:\n    server: https://x:1\n    insecure-skip-tls-verify: SuperSecretValue123\n",
    )
    .expect("write");
    let message = error_text(resolve_with(
        &KubeconfigOptions {
            kubeconfig: Some(path.clone()),
            context: None,
        },
        &env_without_cluster(dir.path(), Duration::from_secs(1)),
    ));
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains('5'), "line number in {message}");
    assert!(!message.contains("SuperSecretValue123"), "{message}");
}

#[test]
fn in_cluster_service_account_is_used_when_no_kubeconfig_exists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("serviceaccount");
    std::fs::create_dir_all(&root).expect("mkdir");
    Pki::new(&root); // writes ca.crt
    std::fs::write(root.join("token"), "sa-token-1\n").expect("token");
    let env = ResolveEnvironment {
        kubeconfig_env: Some(dir.path().join("absent").into_os_string()),
        home: None,
        in_cluster_root: root.clone(),
        service_host: Some("10.96.0.1".into()),
        service_port: Some("443".into()),
        token_file_check_interval: Duration::from_secs(1),
    };
    let access = resolve_with(&options(None), &env).expect("in-cluster");
    assert_eq!(access.server, "https://10.96.0.1:443");
    assert!(access.selected.is_none());
    assert!(access.tls.is_some());
    assert_eq!(
        access
            .credentials
            .authorization_header()
            .expect("header")
            .as_deref(),
        Some("Bearer sa-token-1")
    );
    // Projected tokens rotate: a 401 makes the next header re-read the file.
    std::fs::write(root.join("token"), "sa-token-2\n").expect("token");
    access.credentials.on_unauthorized();
    assert_eq!(
        access
            .credentials
            .authorization_header()
            .expect("header")
            .as_deref(),
        Some("Bearer sa-token-2")
    );

    let ipv6 = resolve_with(
        &options(None),
        &ResolveEnvironment {
            service_host: Some("fd00::1".into()),
            ..env.clone()
        },
    )
    .expect("ipv6");
    assert_eq!(ipv6.server, "https://[fd00::1]:443");

    let message = error_text(resolve_with(
        &options(None),
        &ResolveEnvironment {
            service_host: None,
            ..env
        },
    ));
    assert!(
        message.contains("no kubeconfig found") && message.contains("KUBERNETES_SERVICE_HOST"),
        "{message}"
    );
}

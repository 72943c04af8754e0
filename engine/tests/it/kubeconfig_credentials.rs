//! Every credential kind of a kubeconfig user: token, basic auth, tokenFile rotation, client
//! certificates in each key format, and exec plugins (v1 and v1beta1) written as shell scripts,
//! with caching until expiry, refresh after a 401, installHint, and no secret in any message.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::util::tls::{env_without_cluster, error_text, h2_exchange, Pki};
use engine::kubeconfig::{resolve_with, ClusterAccess, KubeconfigError, KubeconfigOptions};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Resolves a one-context kubeconfig whose user entry is `user` (indented by 4 spaces).
fn resolve_user(
    dir: &Path,
    user: &str,
    interval: Duration,
) -> Result<ClusterAccess, KubeconfigError> {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\n    insecure-skip-tls-verify: true\n\
             users:\n- name: alice\n  user:\n{user}\
             contexts:\n- name: x\n  context: {{cluster: c, user: alice}}\ncurrent-context: x\n"
        ),
    )
    .expect("write kubeconfig");
    resolve_with(
        &KubeconfigOptions {
            kubeconfig: Some(path),
            context: None,
        },
        &env_without_cluster(dir, interval),
    )
}

fn header(access: &ClusterAccess) -> Option<String> {
    access
        .credentials
        .authorization_header()
        .expect("authorization header")
}

#[test]
fn static_token_and_basic_auth_never_show_in_debug_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let access = resolve_user(
        dir.path(),
        "    token: TopSecretToken42\n",
        Duration::from_secs(1),
    )
    .expect("resolve");
    assert_eq!(header(&access).as_deref(), Some("Bearer TopSecretToken42"));
    let debug = format!("{access:?} {:?}", access.credentials);
    assert!(!debug.contains("TopSecretToken42"), "{debug}");
    assert!(debug.contains("bearer token"), "{debug}");

    let access = resolve_user(
        dir.path(),
        "    username: admin\n    password: hunter2\n",
        Duration::from_secs(1),
    )
    .expect("resolve");
    // base64("admin:hunter2")
    assert_eq!(
        header(&access).as_deref(),
        Some("Basic YWRtaW46aHVudGVyMg==")
    );
    assert!(!format!("{access:?}").contains("hunter2"));

    let message = error_text(resolve_user(
        dir.path(),
        "    token: TopSecretToken42\n    username: admin\n    password: hunter2\n",
        Duration::from_secs(1),
    ));
    assert!(
        message.contains("user \"alice\"") && message.contains("only one"),
        "{message}"
    );
    assert!(
        !message.contains("TopSecretToken42") && !message.contains("hunter2"),
        "{message}"
    );
}

fn set_mtime(path: &Path, when: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open token file")
        .set_modified(when)
        .expect("set mtime");
}

#[test]
fn token_file_is_reread_when_it_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token_path = dir.path().join("token");
    std::fs::write(&token_path, "first-token\n").expect("write");
    set_mtime(
        &token_path,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
    );
    let user = format!("    tokenFile: {}\n", token_path.display());
    // No throttling: every call compares the file's mtime and size.
    let access = resolve_user(dir.path(), &user, Duration::ZERO).expect("resolve");
    assert_eq!(header(&access).as_deref(), Some("Bearer first-token"));
    std::fs::write(&token_path, "second-token\n").expect("rotate");
    set_mtime(
        &token_path,
        SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000),
    );
    assert_eq!(header(&access).as_deref(), Some("Bearer second-token"));
    // A file that disappears mid-rotation keeps the last good token.
    std::fs::remove_file(&token_path).expect("remove");
    assert_eq!(header(&access).as_deref(), Some("Bearer second-token"));
    // ... but a reload forced by a 401 reports the problem, naming user and file, not the token.
    access.credentials.on_unauthorized();
    let message = access
        .credentials
        .authorization_header()
        .expect_err("forced reload fails")
        .to_string();
    assert!(
        message.contains("user \"alice\"") && message.contains(&token_path.display().to_string()),
        "{message}"
    );
    assert!(!message.contains("second-token"), "{message}");
}

#[test]
fn token_file_change_is_seen_after_a_401_even_within_the_check_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token_path = dir.path().join("token");
    std::fs::write(&token_path, "old-token").expect("write");
    let user = format!("    tokenFile: {}\n", token_path.display());
    let access = resolve_user(dir.path(), &user, Duration::from_secs(3600)).expect("resolve");
    assert_eq!(header(&access).as_deref(), Some("Bearer old-token"));
    std::fs::write(&token_path, "new-token").expect("rotate");
    assert_eq!(
        header(&access).as_deref(),
        Some("Bearer old-token"),
        "checked at most once an hour here"
    );
    access.credentials.on_unauthorized();
    assert_eq!(header(&access).as_deref(), Some("Bearer new-token"));
}

#[test]
fn missing_or_empty_token_file_is_an_error_before_the_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token_path = dir.path().join("absent-token");
    let message = error_text(resolve_user(
        dir.path(),
        &format!("    tokenFile: {}\n", token_path.display()),
        Duration::from_secs(1),
    ));
    assert!(
        message.contains(&token_path.display().to_string()) && message.contains("user \"alice\""),
        "{message}"
    );
    std::fs::write(&token_path, "  \n").expect("write");
    let message = error_text(resolve_user(
        dir.path(),
        &format!("    tokenFile: {}\n", token_path.display()),
        Duration::from_secs(1),
    ));
    assert!(message.contains("empty"), "{message}");
}

/// Writes an executable shell script.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// A plugin that counts its runs in `count` and prints token `tok-<run>` expiring at $EXPIRY.
fn counting_plugin(dir: &Path, api_version: &str) -> PathBuf {
    script(
        dir,
        "plugin.sh",
        &format!(
            r#"count_file="$COUNT_FILE"
n=$(( $(cat "$count_file" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$count_file"
printf '%s' "$KUBERNETES_EXEC_INFO" > "$INFO_FILE"
printf '{{"apiVersion":"{api_version}","kind":"ExecCredential","status":{{"token":"tok-%s-%s","expirationTimestamp":"%s"}}}}' "$1" "$n" "$EXPIRY"
"#
        ),
    )
}

fn rfc3339_in(offset: Duration) -> String {
    (OffsetDateTime::now_utc() + offset)
        .format(&Rfc3339)
        .expect("format time")
}

fn exec_user(command: &Path, api_version: &str, dir: &Path, expiry: &str, extra: &str) -> String {
    format!(
        "    exec:\n      apiVersion: {api_version}\n      command: {command}\n      args: [argone]\n{extra}\
         \x20     env:\n      - {{name: COUNT_FILE, value: {count}}}\n      - {{name: INFO_FILE, value: {info}}}\n      - {{name: EXPIRY, value: '{expiry}'}}\n",
        command = command.display(),
        count = dir.join("count").display(),
        info = dir.join("info.json").display(),
    )
}

fn runs(dir: &Path) -> u32 {
    std::fs::read_to_string(dir.join("count"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn exec_v1_token_is_cached_until_expiry_and_refreshed_after_a_401() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = "client.authentication.k8s.io/v1";
    let plugin = counting_plugin(dir.path(), api);
    let user = exec_user(
        &plugin,
        api,
        dir.path(),
        &rfc3339_in(Duration::from_secs(3600)),
        "      interactiveMode: Never\n      provideClusterInfo: true\n",
    );
    let access = resolve_user(dir.path(), &user, Duration::from_secs(1)).expect("resolve");
    assert_eq!(runs(dir.path()), 1, "the plugin runs once at resolution");
    assert_eq!(header(&access).as_deref(), Some("Bearer tok-argone-1"));
    assert_eq!(
        header(&access).as_deref(),
        Some("Bearer tok-argone-1"),
        "cached: expires in an hour"
    );
    assert_eq!(runs(dir.path()), 1);
    access.credentials.on_unauthorized();
    assert_eq!(header(&access).as_deref(), Some("Bearer tok-argone-2"));
    assert_eq!(
        header(&access).as_deref(),
        Some("Bearer tok-argone-2"),
        "refreshed once, then cached"
    );

    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("info.json")).expect("info"))
            .expect("json");
    assert_eq!(info["apiVersion"], api);
    assert_eq!(info["kind"], "ExecCredential");
    assert_eq!(info["spec"]["interactive"], false);
    assert_eq!(info["spec"]["cluster"]["server"], "https://127.0.0.1:6443");
    assert!(!format!("{access:?}").contains("tok-argone"));
}

#[test]
fn exec_v1beta1_token_about_to_expire_is_refreshed_before_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = "client.authentication.k8s.io/v1beta1";
    let plugin = counting_plugin(dir.path(), api);
    // Expires within the refresh margin: every use runs the plugin again.
    let user = exec_user(
        &plugin,
        api,
        dir.path(),
        &rfc3339_in(Duration::from_secs(2)),
        "",
    );
    let access = resolve_user(dir.path(), &user, Duration::from_secs(1)).expect("resolve");
    assert_eq!(header(&access).as_deref(), Some("Bearer tok-argone-2"));
    assert_eq!(header(&access).as_deref(), Some("Bearer tok-argone-3"));
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("info.json")).expect("info"))
            .expect("json");
    assert_eq!(info["apiVersion"], api);
    assert!(
        info["spec"].get("cluster").is_none(),
        "provideClusterInfo not set"
    );
}

#[test]
fn exec_configuration_and_output_problems_are_explained_without_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let v1 = "client.authentication.k8s.io/v1";
    let missing = dir.path().join("no-such-plugin");
    let message = error_text(resolve_user(
        dir.path(),
        &format!(
            "    exec:\n      apiVersion: {v1}\n      command: {}\n      interactiveMode: Never\n      installHint: 'install it with: apt-get install kreplay-auth'\n",
            missing.display()
        ),
        Duration::from_secs(1),
    ));
    assert!(
        message.contains("not found")
            && message.contains("install it with: apt-get install kreplay-auth"),
        "{message}"
    );
    assert!(message.contains("user \"alice\""), "{message}");

    let plugin = counting_plugin(dir.path(), v1);
    let message = error_text(resolve_user(
        dir.path(),
        &exec_user(&plugin, v1, dir.path(), "", ""),
        Duration::from_secs(1),
    ));
    assert!(message.contains("interactiveMode must be set"), "{message}");

    let failing = script(
        dir.path(),
        "failing.sh",
        "echo 'LeakedSecretOnStdout'\nexit 3\n",
    );
    let message = error_text(resolve_user(
        dir.path(),
        &format!(
            "    exec:\n      apiVersion: {v1}\n      command: {}\n      interactiveMode: Never\n",
            failing.display()
        ),
        Duration::from_secs(1),
    ));
    assert!(
        message.contains("failed") && message.contains('3'),
        "{message}"
    );
    assert!(!message.contains("LeakedSecretOnStdout"), "{message}");

    let garbled = script(
        dir.path(),
        "garbled.sh",
        "printf '{\"apiVersion\": 12, \"status\": {\"token\": \"GarbledSecret\"}'\n",
    );
    let message = error_text(resolve_user(
        dir.path(),
        &format!(
            "    exec:\n      apiVersion: {v1}\n      command: {}\n      interactiveMode: Never\n",
            garbled.display()
        ),
        Duration::from_secs(1),
    ));
    assert!(message.contains("ExecCredential"), "{message}");
    assert!(!message.contains("GarbledSecret"), "{message}");

    let wrong_version = script(
        dir.path(),
        "wrong.sh",
        "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"WrongVersionSecret\"}}'\n",
    );
    let message = error_text(resolve_user(
        dir.path(),
        &format!(
            "    exec:\n      apiVersion: {v1}\n      command: {}\n      interactiveMode: Never\n",
            wrong_version.display()
        ),
        Duration::from_secs(1),
    ));
    assert!(
        message.contains("v1beta1") && !message.contains("WrongVersionSecret"),
        "{message}"
    );
}

/// Key formats users have: PKCS#8 (rcgen), PKCS#1 RSA and SEC1 EC (openssl).
#[test]
fn client_keys_in_rsa_ec_and_pkcs8_formats_are_accepted_and_bad_pem_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let files = |cert: &Path, key: &Path| {
        format!(
            "    client-certificate: {}\n    client-key: {}\n",
            cert.display(),
            key.display()
        )
    };
    resolve_user(
        dir.path(),
        &files(&pki.client_cert_file, &pki.client_key_file),
        Duration::from_secs(1),
    )
    .expect("PKCS#8 key");

    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("run openssl");
        assert!(
            status.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&status.stderr)
        );
    };
    openssl(&["genrsa", "-traditional", "-out", "rsa.key", "2048"]);
    openssl(&[
        "req",
        "-new",
        "-x509",
        "-key",
        "rsa.key",
        "-subj",
        "/CN=rsa-user",
        "-days",
        "1",
        "-out",
        "rsa.crt",
    ]);
    let rsa_key = std::fs::read_to_string(dir.path().join("rsa.key")).expect("rsa key");
    assert!(rsa_key.contains("BEGIN RSA PRIVATE KEY"), "PKCS#1 form");
    resolve_user(
        dir.path(),
        &files(&dir.path().join("rsa.crt"), &dir.path().join("rsa.key")),
        Duration::from_secs(1),
    )
    .expect("RSA key");

    openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        "ec.key",
    ]);
    openssl(&[
        "req",
        "-new",
        "-x509",
        "-key",
        "ec.key",
        "-subj",
        "/CN=ec-user",
        "-days",
        "1",
        "-out",
        "ec.crt",
    ]);
    assert!(std::fs::read_to_string(dir.path().join("ec.key"))
        .expect("ec key")
        .contains("BEGIN EC PRIVATE KEY"));
    // The same key given inline as client-key-data.
    use base64::Engine;
    let b64 = |p: &Path| {
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(p).expect("read"))
    };
    resolve_user(
        dir.path(),
        &format!(
            "    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(&dir.path().join("ec.crt")),
            b64(&dir.path().join("ec.key"))
        ),
        Duration::from_secs(1),
    )
    .expect("EC key as data");

    let bad_key = dir.path().join("bad.key");
    std::fs::write(
        &bad_key,
        "-----BEGIN PRIVATE KEY-----\nS2VlcFRoaXNTZWNyZXQ=\n",
    )
    .expect("write");
    let message = error_text(resolve_user(
        dir.path(),
        &files(&pki.client_cert_file, &bad_key),
        Duration::from_secs(1),
    ));
    assert!(
        message.contains("user \"alice\"") && message.contains("client key"),
        "{message}"
    );
    assert!(!message.contains("S2VlcFRoaXNTZWNyZXQ"), "{message}");

    let message = error_text(resolve_user(
        dir.path(),
        &format!(
            "    client-certificate: {}\n",
            pki.client_cert_file.display()
        ),
        Duration::from_secs(1),
    ));
    assert!(message.contains("no client-key"), "{message}");
}

#[test]
fn exec_client_certificate_is_presented_to_the_server() {
    use http::{HeaderMap, Method};

    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let output = serde_json::json!({
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {
            "clientCertificateData": pki.client.cert_pem,
            "clientKeyData": pki.client.key_pem,
        }
    });
    let output_file = dir.path().join("credential.json");
    std::fs::write(&output_file, output.to_string()).expect("write credential");
    let plugin = script(
        dir.path(),
        "cert-plugin.sh",
        &format!("cat {}\n", output_file.display()),
    );

    let nginx_dir = dir.path().join("nginx");
    std::fs::create_dir_all(&nginx_dir).expect("mkdir");
    let extra = format!(
        "ssl_client_certificate {}; ssl_verify_client on; location = /who {{ return 200 \"$ssl_client_s_dn\"; }}",
        pki.ca_file.display()
    );
    let nginx = crate::util::tls::start_nginx(
        &nginx_dir,
        &pki.server_cert_file,
        &pki.server_key_file,
        &extra,
    );
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "clusters:\n- name: c\n  cluster:\n    server: https://localhost:{port}\n    certificate-authority: {ca}\n\
             users:\n- name: alice\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {plugin}\n      interactiveMode: Never\n\
             contexts:\n- name: x\n  context: {{cluster: c, user: alice}}\ncurrent-context: x\n",
            port = nginx.addr.port(),
            ca = pki.ca_file.display(),
            plugin = plugin.display(),
        ),
    )
    .expect("write kubeconfig");
    let access = resolve_with(
        &KubeconfigOptions {
            kubeconfig: Some(kubeconfig),
            context: None,
        },
        &env_without_cluster(dir.path(), Duration::from_secs(1)),
    )
    .expect("resolve");
    assert_eq!(header(&access), None, "certificate only, no token");
    let addr = nginx.addr;
    let (_, body) = h2_exchange(access, addr, Method::GET, "/who", HeaderMap::new(), vec![]);
    assert!(
        body.contains("kreplay-test-user"),
        "client DN seen by nginx: {body}"
    );
}

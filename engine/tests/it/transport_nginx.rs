//! The TLS streams and the HTTP/2 client against a real nginx (TLS + HTTP/2) on 127.0.0.1,
//! configured through a kubeconfig as a user would.

use std::path::Path;
use std::rc::Rc;

use crate::util::tls::{
    env_without_cluster, h2_exchange, run_glommio, self_signed_ca, start_nginx, Nginx, Pki,
};
use engine::kubeconfig::{resolve_with, ClusterAccess, KubeconfigOptions};
use engine::transport::{connect, Http2Connection, TransportError};
use http::{HeaderMap, Method};

/// A kubeconfig for `server` trusting `ca_file`, with `user_yaml` as the user entry.
fn access_for(dir: &Path, server: &str, cluster_yaml: &str, user_yaml: &str) -> ClusterAccess {
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n{cluster_yaml}\
             users:\n- name: u\n  user:\n{user_yaml}\
             contexts:\n- name: ctx\n  context: {{cluster: c, user: u}}\ncurrent-context: ctx\n"
        ),
    )
    .expect("write kubeconfig");
    resolve_with(
        &KubeconfigOptions {
            kubeconfig: Some(kubeconfig),
            context: None,
        },
        &env_without_cluster(dir, std::time::Duration::from_secs(1)),
    )
    .expect("resolve kubeconfig")
}

fn trusting(pki: &Pki) -> String {
    format!("    certificate-authority: {}\n", pki.ca_file.display())
}

fn nginx_with(dir: &Path, pki: &Pki, extra: &str) -> Nginx {
    start_nginx(
        &dir.join("nginx"),
        &pki.server_cert_file,
        &pki.server_key_file,
        extra,
    )
}

/// A kubeconfig user with a static token, trusting the test CA, for nginx at `host`.
fn token_access(dir: &Path, pki: &Pki, host: &str, nginx: &Nginx) -> ClusterAccess {
    let server = format!("https://{host}:{}", nginx.addr.port());
    access_for(dir, &server, &trusting(pki), "    token: abc\n")
}

fn setup(extra: &str) -> (tempfile::TempDir, Pki, Nginx) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("nginx")).expect("nginx dir");
    let pki = Pki::new(dir.path());
    let nginx = nginx_with(dir.path(), &pki, extra);
    (dir, pki, nginx)
}

#[test]
fn h2_is_negotiated_and_many_requests_share_one_connection() {
    let (dir, pki, nginx) = setup("");
    let access = token_access(dir.path(), &pki, "localhost", &nginx);
    let addr = nginx.addr;
    let (alpn, statuses, bytes, limit) = run_glommio(move || async move {
        let stream = connect(addr, access.tls_target(false))
            .await
            .expect("connect");
        let alpn = stream.negotiated_alpn().map(|a| a.to_vec());
        let connection = Http2Connection::handshake(stream, &access.endpoint.authority)
            .await
            .expect("h2 handshake");
        let mut statuses = Vec::new();
        let mut bytes = 0u64;
        for _ in 0..200 {
            let mut response = connection
                .send(Method::GET, "/small", &HeaderMap::new(), b"")
                .await
                .expect("request");
            statuses.push(response.status.as_u16());
            bytes += response.body.drain().await.expect("body");
        }
        (alpn, statuses, bytes, connection.max_concurrent_streams())
    });
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(statuses.len(), 200);
    assert!(statuses.iter().all(|s| *s == 200), "statuses: {statuses:?}");
    assert_eq!(bytes, 200 * 5, "each body is \"hello\"");
    assert_eq!(limit, 8, "nginx advertises http2_max_concurrent_streams 8");
}

#[test]
fn http1_only_config_negotiates_http1() {
    let (dir, pki, nginx) = setup("");
    let access = token_access(dir.path(), &pki, "127.0.0.1", &nginx);
    let addr = nginx.addr;
    let alpn = run_glommio(move || async move {
        let stream = connect(addr, access.tls_target(true))
            .await
            .expect("connect");
        stream.negotiated_alpn().map(|a| a.to_vec())
    });
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
}

#[test]
fn concurrent_streams_beyond_the_limit_wait_and_large_bodies_flow() {
    let (dir, pki, nginx) = setup("");
    let access = token_access(dir.path(), &pki, "localhost", &nginx);
    let addr = nginx.addr;
    // 24 concurrent 1 MiB downloads on one connection whose server allows 8 streams at a time:
    // the rest must wait for a free stream, and every byte must arrive (flow control released).
    let results = run_glommio(move || async move {
        let stream = connect(addr, access.tls_target(false))
            .await
            .expect("connect");
        let connection = Rc::new(
            Http2Connection::handshake(stream, &access.endpoint.authority)
                .await
                .expect("h2 handshake"),
        );
        let mut tasks = Vec::new();
        for _ in 0..24 {
            let connection = Rc::clone(&connection);
            tasks.push(glommio::spawn_local(async move {
                let mut response = connection
                    .send(Method::GET, "/big", &HeaderMap::new(), b"")
                    .await?;
                let mut checksum = 0u64;
                let mut offset = 0u64;
                while let Some(chunk) = response.body.chunk().await? {
                    for byte in chunk.iter() {
                        if u64::from(*byte) != offset % 251 {
                            checksum += 1;
                        }
                        offset += 1;
                    }
                }
                Ok::<_, TransportError>((response.status.as_u16(), offset, checksum))
            }));
        }
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await);
        }
        results
    });
    assert_eq!(results.len(), 24);
    for result in results {
        let (status, bytes, mismatches) = result.expect("download");
        assert_eq!(status, 200);
        assert_eq!(bytes, 1 << 20);
        assert_eq!(mismatches, 0, "body bytes arrive in order and intact");
    }
}

#[test]
fn request_body_reaches_the_server() {
    // nginx answers 405 to a POST on a static location only after reading the request; a body of
    // 200 KiB exceeds the initial stream window, so this also exercises sending with flow control.
    let (dir, pki, nginx) =
        setup("location = /echo { client_max_body_size 1m; return 201 \"$content_length\"; }");
    let access = token_access(dir.path(), &pki, "localhost", &nginx);
    let addr = nginx.addr;
    let payload = vec![b'x'; 200 * 1024];
    let mut headers = HeaderMap::new();
    headers.insert(http::header::CONTENT_LENGTH, payload.len().into());
    let (status, body) = h2_exchange(access, addr, Method::POST, "/echo", headers, payload);
    assert_eq!(status, 201);
    assert_eq!(body, (200 * 1024).to_string());
}

#[test]
fn client_certificate_from_kubeconfig_is_presented() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("nginx")).expect("nginx dir");
    let pki = Pki::new(dir.path());
    let extra = format!(
        "ssl_client_certificate {}; ssl_verify_client on; location = /who {{ return 200 \"$ssl_client_s_dn\"; }}",
        pki.ca_file.display()
    );
    let nginx = nginx_with(dir.path(), &pki, &extra);
    let user = format!(
        "    client-certificate: {}\n    client-key: {}\n",
        pki.client_cert_file.display(),
        pki.client_key_file.display()
    );
    let access = access_for(
        dir.path(),
        &format!("https://localhost:{}", nginx.addr.port()),
        &trusting(&pki),
        &user,
    );
    let addr = nginx.addr;
    let (status, body) = h2_exchange(access, addr, Method::GET, "/who", HeaderMap::new(), vec![]);
    assert_eq!(status, 200);
    assert!(
        body.contains("kreplay-test-user"),
        "client DN seen by nginx: {body}"
    );
}

fn handshake_error(access: ClusterAccess, addr: std::net::SocketAddr) -> String {
    run_glommio(move || async move {
        match connect(addr, access.tls_target(false)).await {
            Ok(_) => "connected".to_string(),
            Err(e) => e.to_string(),
        }
    })
}

#[test]
fn server_certificate_from_another_ca_is_explained() {
    let (dir, _pki, nginx) = setup("");
    let other_ca = self_signed_ca("some other CA", &[]);
    let other_ca_file = dir.path().join("other-ca.crt");
    std::fs::write(&other_ca_file, &other_ca.cert_pem).expect("write other CA");
    let access = access_for(
        dir.path(),
        &format!("https://localhost:{}", nginx.addr.port()),
        &format!("    certificate-authority: {}\n", other_ca_file.display()),
        "    token: abc\n",
    );
    let message = handshake_error(access, nginx.addr);
    assert!(
        message.contains("server certificate not signed by the cluster's certificate-authority")
            && message.contains(&other_ca_file.display().to_string()),
        "message: {message}"
    );
}

#[test]
fn ca_certificate_used_as_server_certificate_is_explained() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("nginx")).expect("nginx dir");
    // What `openssl req -x509` makes: a self-signed CA served as the server certificate.
    let ca = self_signed_ca("localhost", &["localhost"]);
    let cert = dir.path().join("ca-as-server.crt");
    let key = dir.path().join("ca-as-server.key");
    std::fs::write(&cert, &ca.cert_pem).expect("write");
    std::fs::write(&key, &ca.key_pem).expect("write");
    let nginx = start_nginx(&dir.path().join("nginx"), &cert, &key, "");
    let access = access_for(
        dir.path(),
        &format!("https://localhost:{}", nginx.addr.port()),
        &format!("    certificate-authority: {}\n", cert.display()),
        "    token: abc\n",
    );
    let message = handshake_error(access, nginx.addr);
    assert!(
        message.contains("the server's certificate is a CA certificate used as a server certificate; issue a leaf certificate signed by that CA"),
        "message: {message}"
    );
}

#[test]
fn name_mismatch_names_the_server_name_and_tls_server_name_fixes_it() {
    let (dir, pki, nginx) = setup("");
    let server = format!("https://127.0.0.1:{}", nginx.addr.port());
    let wrong = access_for(
        dir.path(),
        &server,
        &format!(
            "{}    tls-server-name: kubernetes.example\n",
            trusting(&pki)
        ),
        "    token: abc\n",
    );
    let message = handshake_error(wrong, nginx.addr);
    assert!(
        message.contains("not valid for the name kubernetes.example")
            && message.contains("localhost"),
        "message: {message}"
    );
    let right = access_for(
        dir.path(),
        &server,
        &format!("{}    tls-server-name: localhost\n", trusting(&pki)),
        "    token: abc\n",
    );
    assert_eq!(handshake_error(right, nginx.addr), "connected");
}

#[test]
fn insecure_skip_tls_verify_accepts_an_unknown_certificate() {
    let (dir, _pki, nginx) = setup("");
    let access = access_for(
        dir.path(),
        &format!("https://127.0.0.1:{}", nginx.addr.port()),
        "    insecure-skip-tls-verify: true\n",
        "    token: abc\n",
    );
    assert_eq!(handshake_error(access, nginx.addr), "connected");
}

#[test]
fn refused_connection_keeps_the_os_error() {
    let port = crate::util::free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let kind = run_glommio(move || async move {
        match connect(addr, None).await {
            Ok(_) => None,
            Err(e) => e.io_error().map(|io| io.kind()),
        }
    });
    assert_eq!(kind, Some(std::io::ErrorKind::ConnectionRefused));
}

/// A figure, not a check of speed: requests per second and per client CPU-second for 20,000
/// small GETs with 64 concurrent streams on one TLS HTTP/2 connection to nginx. Run with
/// `cargo test --release -p engine --test it -- --ignored --nocapture transport_nginx::h2_throughput`.
#[test]
#[ignore = "benchmark figure; run explicitly in release mode"]
fn h2_throughput_figure() {
    let (dir, pki, nginx) = setup("");
    let access = token_access(dir.path(), &pki, "localhost", &nginx);
    let addr = nginx.addr;
    const REQUESTS: usize = 20_000;
    const STREAMS: usize = 64;
    let (ok, elapsed, cpu) = run_glommio(move || async move {
        let stream = connect(addr, access.tls_target(false))
            .await
            .expect("connect");
        let connection = Rc::new(
            Http2Connection::handshake(stream, &access.endpoint.authority)
                .await
                .expect("h2 handshake"),
        );
        let headers = Rc::new(HeaderMap::new());
        let cpu_start = thread_cpu_time();
        let start = std::time::Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..STREAMS {
            let connection = Rc::clone(&connection);
            let headers = Rc::clone(&headers);
            tasks.push(glommio::spawn_local(async move {
                let mut ok = 0usize;
                for _ in 0..REQUESTS / STREAMS {
                    if let Ok(mut response) =
                        connection.send(Method::GET, "/small", &headers, b"").await
                    {
                        if response.body.drain().await.is_ok() && response.status == 200 {
                            ok += 1;
                        }
                    }
                }
                ok
            }));
        }
        let mut ok = 0;
        for task in tasks {
            ok += task.await;
        }
        (ok, start.elapsed(), thread_cpu_time() - cpu_start)
    });
    assert_eq!(ok, (REQUESTS / STREAMS) * STREAMS, "every request succeeds");
    eprintln!(
        "h2 over TLS, {STREAMS} streams, {ok} requests: {:.0} req/s wall, {:.0} req per client CPU-second",
        ok as f64 / elapsed.as_secs_f64(),
        ok as f64 / cpu.as_secs_f64()
    );
}

fn thread_cpu_time() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[test]
fn requests_refused_by_a_graceful_goaway_succeed_on_a_new_connection() {
    // nginx ends a connection with GOAWAY(NO_ERROR) after 5 requests: of 8 concurrent requests,
    // 3 are refused unprocessed and must be sent again on another connection.
    let (dir, pki, nginx) = setup("keepalive_requests 5;");
    let access = token_access(dir.path(), &pki, "localhost", &nginx);
    let addr = nginx.addr;
    let (first_try, retried, first_closed) = run_glommio(move || async move {
        let open = || async {
            let stream = connect(addr, access.tls_target(false))
                .await
                .expect("connect");
            Rc::new(
                Http2Connection::handshake(stream, &access.endpoint.authority)
                    .await
                    .expect("h2"),
            )
        };
        let first = open().await;
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let connection = Rc::clone(&first);
            tasks.push(glommio::spawn_local(async move {
                let mut response = connection
                    .send(Method::GET, "/small", &HeaderMap::new(), b"")
                    .await?;
                response.body.drain().await?;
                Ok::<u16, TransportError>(response.status.as_u16())
            }));
        }
        let mut first_try = Vec::new();
        for task in tasks {
            first_try.push(task.await);
        }
        let second = open().await;
        let mut retried = Vec::new();
        for outcome in &first_try {
            if outcome
                .as_ref()
                .err()
                .is_some_and(TransportError::is_refused)
            {
                let mut response = second
                    .send(Method::GET, "/small", &HeaderMap::new(), b"")
                    .await
                    .expect("retry");
                response.body.drain().await.expect("retry body");
                retried.push(response.status.as_u16());
            }
        }
        (first_try, retried, first.is_closed())
    });
    let served = first_try.iter().filter(|o| matches!(o, Ok(200))).count();
    let refused = first_try
        .iter()
        .filter(|o| o.as_ref().err().is_some_and(TransportError::is_refused))
        .count();
    assert_eq!((served, refused), (5, 3), "{first_try:?}");
    assert_eq!(retried, vec![200, 200, 200]);
    assert!(first_closed);
}

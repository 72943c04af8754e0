//! For the TLS scenarios (kubeconfig_*, transport_*, run_tls...): a test PKI made with rcgen, an
//! nginx (TLS + HTTP/2) started from a generated config, and a glommio executor to run clients on.

use std::future::Future;
use std::net::{SocketAddr, TcpStream};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testkit::free_port;

use engine::kubeconfig::{ClusterAccess, KubeconfigError, ResolveEnvironment};
use engine::transport::{connect, Http2Connection};
use http::{HeaderMap, Method};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// A PEM certificate and its key.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A CA, a server leaf signed by it (localhost, 127.0.0.1), a client certificate signed by it,
/// and the files they are written to.
pub struct Pki {
    pub ca: Issued,
    pub server: Issued,
    pub client: Issued,
    pub ca_file: PathBuf,
    pub server_cert_file: PathBuf,
    pub server_key_file: PathBuf,
    pub client_cert_file: PathBuf,
    pub client_key_file: PathBuf,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// A self-signed CA certificate (usable as trust root, and as a bad server certificate).
pub fn self_signed_ca(name: &str, sans: &[&str]) -> Issued {
    let mut params = ca_params(name);
    params.subject_alt_names =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("sans")
            .subject_alt_names;
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("self-signed");
    Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

impl Pki {
    /// Makes the PKI and writes it under `dir`.
    pub fn new(dir: &Path) -> Pki {
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_cert = ca_params("kreplay test CA")
            .self_signed(&ca_key)
            .expect("CA cert");

        let mut server =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("server params");
        server
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate().expect("server key");
        let server_cert = server
            .signed_by(&server_key, &ca_cert, &ca_key)
            .expect("server cert");

        let mut client = CertificateParams::new(Vec::<String>::new()).expect("client params");
        client
            .distinguished_name
            .push(DnType::CommonName, "kreplay-test-user");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_key = KeyPair::generate().expect("client key");
        let client_cert = client
            .signed_by(&client_key, &ca_cert, &ca_key)
            .expect("client cert");

        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("write PKI file");
            path
        };
        let pki = Pki {
            ca: Issued {
                cert_pem: ca_cert.pem(),
                key_pem: ca_key.serialize_pem(),
            },
            server: Issued {
                cert_pem: server_cert.pem(),
                key_pem: server_key.serialize_pem(),
            },
            client: Issued {
                cert_pem: client_cert.pem(),
                key_pem: client_key.serialize_pem(),
            },
            ca_file: dir.join("ca.crt"),
            server_cert_file: dir.join("server.crt"),
            server_key_file: dir.join("server.key"),
            client_cert_file: dir.join("client.crt"),
            client_key_file: dir.join("client.key"),
        };
        write("ca.crt", &pki.ca.cert_pem);
        write("server.crt", &pki.server.cert_pem);
        write("server.key", &pki.server.key_pem);
        write("client.crt", &pki.client.cert_pem);
        write("client.key", &pki.client.key_pem);
        pki
    }
}

/// An nginx started by a test; stopped (by its own pid) when dropped.
pub struct Nginx {
    child: Child,
    pub addr: SocketAddr,
    pub dir: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM to the master (our child, by its pid) makes it stop its workers too;
        // SIGKILL would orphan them.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) on a pid we spawned and have not yet reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let _ = self.child.wait();
    }
}

/// The nginx binary; a test that needs it fails when it is missing (`scripts/test.sh`
/// installs it), so a check that cannot run never passes.
pub fn nginx_binary() -> PathBuf {
    for candidate in ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!("nginx is not installed: this test needs it (apt-get install -y nginx; scripts/test.sh installs it)");
}

/// Starts nginx in `dir` serving TLS + HTTP/2 on a free port with `cert`/`key`.
/// `server_extra` goes inside the `server` block (locations, client verification).
pub fn start_nginx(dir: &Path, cert: &Path, key: &Path, server_extra: &str) -> Nginx {
    let binary = nginx_binary();
    let port = free_port();
    std::fs::create_dir_all(dir.join("tmp")).expect("nginx tmp dir");
    let conf = format!(
        r#"
user root;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    log_format kreplay_conn '$connection';
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{port} ssl http2;
        http2_max_concurrent_streams 8;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location = /small {{ return 200 "hello"; }}
        location /big {{ alias {dir}/big.bin; }}
        {server_extra}
    }}
}}
"#,
        dir = dir.display(),
        cert = cert.display(),
        key = key.display(),
    );
    // 1 MiB of a fixed pattern: larger than the initial 64 KiB window, so flow control matters.
    let big: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("big.bin"), big).expect("write big.bin");
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).expect("write nginx.conf");
    let child = Command::new(binary)
        .arg("-c")
        .arg(&conf_path)
        .arg("-p")
        .arg(dir)
        .arg("-g")
        .arg("daemon off;")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let mut nginx = Nginx {
        child,
        addr,
        dir: dir.to_path_buf(),
    };
    wait_listening(&mut nginx);
    nginx
}

/// Waits (at most 10 s) until nginx accepts connections.
fn wait_listening(nginx: &mut Nginx) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = nginx.child.try_wait() {
            let log = std::fs::read_to_string(nginx.dir.join("error.log")).unwrap_or_default();
            panic!("nginx exited ({status}) before listening; error.log:\n{log}");
        }
        if TcpStream::connect_timeout(&nginx.addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = std::fs::read_to_string(nginx.dir.join("error.log")).unwrap_or_default();
    panic!(
        "nginx did not start listening on {} within 10 s; error.log:\n{log}",
        nginx.addr
    );
}

/// Runs `make()`'s future on a fresh glommio executor in its own thread and returns its output.
pub fn run_glommio<T, F, Fut>(make: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
{
    glommio::LocalExecutorBuilder::default()
        .spawn(move || async move { make().await })
        .expect("start glommio executor")
        .join()
        .expect("glommio executor thread")
}

/// One HTTP/2 request over a fresh TLS connection to `addr`, set up as `access` says (server
/// name, trust, client certificate): the answer's status and body as text.
pub fn h2_exchange(
    access: ClusterAccess,
    addr: SocketAddr,
    method: Method,
    path: &'static str,
    headers: HeaderMap,
    body: Vec<u8>,
) -> (u16, String) {
    run_glommio(move || async move {
        let stream = connect(addr, access.tls_target(false))
            .await
            .expect("connect");
        let connection = Http2Connection::handshake(stream, &access.endpoint.authority)
            .await
            .expect("h2 handshake");
        let mut response = connection
            .send(method, path, &headers, &body)
            .await
            .expect("request");
        let mut text = Vec::new();
        while let Some(chunk) = response.body.chunk().await.expect("body") {
            text.extend_from_slice(&chunk);
        }
        (
            response.status.as_u16(),
            String::from_utf8_lossy(&text).into_owned(),
        )
    })
}

/// An environment with no cluster of its own: no `KUBECONFIG`, no home, no in-cluster service
/// account; a token file is checked for changes every `token_file_check_interval`.
pub fn env_without_cluster(dir: &Path, token_file_check_interval: Duration) -> ResolveEnvironment {
    ResolveEnvironment {
        kubeconfig_env: None,
        home: None,
        in_cluster_root: dir.join("no-such-serviceaccount"),
        service_host: None,
        service_port: None,
        token_file_check_interval,
    }
}

/// The message of a kubeconfig that must not resolve.
pub fn error_text(result: Result<ClusterAccess, KubeconfigError>) -> String {
    match result {
        Ok(access) => panic!("expected an error, got {access:?}"),
        Err(e) => e.to_string(),
    }
}

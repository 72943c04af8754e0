//! The real apisim binary (TLS + HTTP/2 by default) for the engine's HTTP/2 and preflight
//! tests, and kubeconfigs pointing at it. Every wait is bounded.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

/// `target/<profile>/apisim`, built with `cargo build -p bench --bin apisim` when missing
/// (bench is not an engine dependency, so cargo does not build it for these tests).
pub fn apisim_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test executable lives in target/<profile>/deps");
        let path = dir.join("apisim");
        if !path.exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
            let status = Command::new(cargo)
                .args(["build", "-p", "bench", "--bin", "apisim"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("run cargo build -p bench --bin apisim");
            assert!(status.success(), "cargo build -p bench --bin apisim failed");
        }
        assert!(path.exists(), "{} not found", path.display());
        path
    })
    .clone()
}

/// A running apisim, killed on drop.
pub struct ApiSim {
    child: Child,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The kubeconfig apisim wrote (client-certificate user is current).
    pub kubeconfig: PathBuf,
    /// The bearer token apisim accepts.
    pub token: String,
    /// `certificate-authority-data` of its CA (base64 PEM).
    pub ca_data: String,
    _dir: tempfile::TempDir,
}

impl ApiSim {
    /// Starts apisim on a free port with `extra` flags; waits at most 20 s for `listening on`.
    pub fn start(extra: &[&str]) -> ApiSim {
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        let mut child = Command::new(apisim_bin())
            .args(["--listen", "127.0.0.1:0", "--kubeconfig-out"])
            .arg(&kubeconfig)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn apisim");
        let stdout = child.stdout.take().expect("apisim stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let Ok(url) = rx.recv_timeout(Duration::from_secs(20)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("apisim did not print `listening on` within 20 s");
        };
        let text = std::fs::read_to_string(&kubeconfig).expect("apisim kubeconfig");
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(name))
                .map(|v| v.trim().trim_matches('"').to_string())
                .unwrap_or_else(|| panic!("apisim kubeconfig has no {name}"))
        };
        let token = field("token:");
        let ca_data = field("certificate-authority-data:");
        ApiSim {
            child,
            url,
            kubeconfig,
            token,
            ca_data,
            _dir: dir,
        }
    }

    /// The port apisim listens on.
    pub fn port(&self) -> u16 {
        self.url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port in apisim URL")
    }

    /// A kubeconfig at `path` for `server` with this apisim's CA (or `ca_data`) and `token`.
    pub fn write_kubeconfig(&self, path: &Path, server: &str, ca_data: &str, token: &str) {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca_data}\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n"
        );
        std::fs::write(path, text).expect("write kubeconfig");
    }

    /// GET an admin path (`/apisim/order`, `/metrics`) with curl, bounded.
    pub fn admin_get(&self, path: &str) -> String {
        let mut child = Command::new("curl")
            .args(["-sS", "-k", "--max-time", "10", "--fail", "-H"])
            .arg(format!("Authorization: Bearer {}", self.token))
            .arg(format!("{}{}", self.url, path))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn curl");
        let mut out = String::new();
        if let Some(mut o) = child.stdout.take() {
            use std::io::Read;
            let _ = o.read_to_string(&mut out);
        }
        let status = child.wait().expect("wait curl");
        assert!(status.success(), "curl {path} failed");
        out
    }
}

impl Drop for ApiSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! The real apisim binary on a free loopback port.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::process::{bin, run_bounded};

/// How long apisim may take to print `listening on`, and to exit when asked.
const WAIT: Duration = Duration::from_secs(20);

/// A running apisim, killed on drop.
pub struct ApiSim {
    child: Child,
    /// The URL it printed (`listening on <url>`): `https://127.0.0.1:PORT` or `http://...`.
    pub url: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The kubeconfig it wrote.
    pub kubeconfig: PathBuf,
    /// The bearer token in that kubeconfig (TLS apisim), if any.
    pub token: Option<String>,
    /// The kubeconfig's `certificate-authority-data` (base64 PEM), if any.
    pub ca_data: Option<String>,
    /// A directory that lives as long as this apisim (its kubeconfig is there).
    pub dir: tempfile::TempDir,
}

impl ApiSim {
    /// `apisim --listen 127.0.0.1:0 --kubeconfig-out <tmp> EXTRA...`, once it listens.
    pub fn start(extra: &[&str]) -> ApiSim {
        Self::start_on("127.0.0.1:0", extra)
    }

    /// Like [`ApiSim::start`] on a given `listen` address (to restart on the same port).
    pub fn start_on(listen: &str, extra: &[&str]) -> ApiSim {
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        let mut child = Command::new(bin("apisim"))
            .args(["--listen", listen, "--kubeconfig-out"])
            .arg(&kubeconfig)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn apisim");
        let stdout = child.stdout.take().expect("apisim stdout");
        let (tx, rx) = mpsc::channel();
        // Reads stdout to its end so that apisim never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let Ok(url) = rx.recv_timeout(WAIT) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("apisim {extra:?} did not print `listening on` within {WAIT:?}");
        };
        let addr = url
            .split_once("://")
            .map(|(_, rest)| rest.trim_end_matches('/').to_string())
            .unwrap_or_else(|| panic!("apisim printed a URL without a scheme: {url}"));
        let text = std::fs::read_to_string(&kubeconfig).unwrap_or_default();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(name))
                .map(|v| v.trim().trim_matches('"').to_string())
        };
        ApiSim {
            token: field("token:"),
            ca_data: field("certificate-authority-data:"),
            child,
            url,
            addr,
            kubeconfig,
            dir,
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in apisim's address {}", self.addr))
    }

    /// The bearer token; panics for an apisim that wrote none (plain HTTP).
    pub fn token(&self) -> &str {
        self.token
            .as_deref()
            .expect("apisim's kubeconfig has a token (start it with TLS)")
    }

    /// The CA's `certificate-authority-data`; panics for an apisim that wrote none.
    pub fn ca_data(&self) -> &str {
        self.ca_data
            .as_deref()
            .expect("apisim's kubeconfig has certificate-authority-data (start it with TLS)")
    }

    /// GET a path of apisim's admin API (`/apisim/order`, `/metrics`) with curl, with its
    /// token when it has one; panics unless the answer is a success.
    pub fn admin_get(&self, path: &str) -> String {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-k", "--max-time", "10", "--fail"]);
        if let Some(token) = &self.token {
            cmd.arg("-H").arg(format!("Authorization: Bearer {token}"));
        }
        let out = run_bounded(
            cmd.arg(format!("{}{path}", self.url)),
            Duration::from_secs(15),
        );
        assert!(
            out.status.success(),
            "curl {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 admin answer")
    }

    /// Asks for a graceful stop (SIGTERM) without waiting.
    pub fn terminate(&self) {
        // SAFETY: kill(2) on our own child, not yet reaped (it is reaped in `wait_exit` or drop).
        let rc = unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill -TERM apisim");
    }

    /// Waits (at most 20 s) for apisim to exit; true when it exited successfully.
    pub fn wait_exit(&mut self) -> bool {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait apisim") {
                return status.success();
            }
            assert!(
                Instant::now() < deadline,
                "apisim did not exit within {WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Writes a kubeconfig at `path` for `server` with `ca_data` as its CA and `token` as its user.
pub fn write_kubeconfig(path: &Path, server: &str, ca_data: &str, token: &str) {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca_data}\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n"
    );
    std::fs::write(path, text).expect("write kubeconfig");
}

impl Drop for ApiSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

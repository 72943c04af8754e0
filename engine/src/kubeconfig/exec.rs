//! Exec credential plugins (client.authentication.k8s.io v1 and v1beta1), as kubectl runs them:
//! the plugin prints an ExecCredential with a token and/or a client certificate, which is cached
//! until shortly before its `expirationTimestamp` and refreshed once after a 401.

use std::io::IsTerminal;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::error::CredentialError;
use super::model::ExecConfig;
use super::pem::certified_key;

/// A credential is refreshed this long before it expires, so no request carries an expired one.
pub const EXEC_REFRESH_MARGIN: Duration = Duration::from_secs(10);

const API_V1: &str = "client.authentication.k8s.io/v1";
const API_V1BETA1: &str = "client.authentication.k8s.io/v1beta1";

/// When the plugin may talk to the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InteractiveMode {
    Never,
    IfAvailable,
    Always,
}

/// A configured plugin and its cached credential.
pub(crate) struct ExecPlugin {
    config: ExecConfig,
    interactive_mode: InteractiveMode,
    /// `spec.cluster` of KUBERNETES_EXEC_INFO when `provideClusterInfo` is set.
    cluster_info: Option<serde_json::Value>,
    origin: String,
    state: Mutex<ExecState>,
}

#[derive(Default)]
struct ExecState {
    cached: Option<ExecCredential>,
    force: bool,
}

/// What one plugin run produced.
#[derive(Clone)]
pub(crate) struct ExecCredential {
    pub token: Option<String>,
    pub client_certificate: Option<Arc<CertifiedKey>>,
    pub expires: Option<SystemTime>,
}

/// The plugin's stdout.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecCredentialOutput {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    status: Option<ExecCredentialStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecCredentialStatus {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    expiration_timestamp: Option<String>,
    #[serde(default)]
    client_certificate_data: Option<String>,
    #[serde(default)]
    client_key_data: Option<String>,
}

impl ExecPlugin {
    /// Checks the configuration (`origin` names the kubeconfig user, for messages).
    pub(crate) fn new(
        config: ExecConfig,
        origin: String,
        cluster_info: Option<serde_json::Value>,
    ) -> Result<Self, CredentialError> {
        let error = |message: String| CredentialError::Exec {
            origin: origin.clone(),
            command: config.command.clone(),
            message,
        };
        if config.command.is_empty() {
            return Err(error(
                "exec.command is empty; name the plugin to run".into(),
            ));
        }
        if config.api_version != API_V1 && config.api_version != API_V1BETA1 {
            return Err(error(format!(
                "exec.apiVersion {:?} is not supported; use {API_V1} or {API_V1BETA1}",
                config.api_version
            )));
        }
        let interactive_mode = match config.interactive_mode.as_deref().filter(|m| !m.is_empty()) {
            Some("Never") => InteractiveMode::Never,
            Some("IfAvailable") => InteractiveMode::IfAvailable,
            Some("Always") => InteractiveMode::Always,
            Some(other) => {
                return Err(error(format!(
                    "exec.interactiveMode {other:?} is not one of Never, IfAvailable, Always"
                )))
            }
            None if config.api_version == API_V1 => {
                return Err(error(format!(
                    "exec.interactiveMode must be set for {API_V1} (Never, IfAvailable or Always)"
                )))
            }
            // v1beta1's default.
            None => InteractiveMode::IfAvailable,
        };
        let cluster_info = if config.provide_cluster_info.unwrap_or(false) {
            cluster_info
        } else {
            None
        };
        Ok(Self {
            config,
            interactive_mode,
            cluster_info,
            origin,
            state: Mutex::new(ExecState::default()),
        })
    }

    pub(crate) fn command(&self) -> &str {
        &self.config.command
    }

    fn lock(&self) -> MutexGuard<'_, ExecState> {
        // Only whole values are stored under this lock, so a poisoned state is still consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The cached credential, running the plugin first when there is none, it expires within
    /// [`EXEC_REFRESH_MARGIN`], or a refresh was forced by a 401.
    pub(crate) fn credential(&self) -> Result<ExecCredential, CredentialError> {
        let mut state = self.lock();
        let fresh = match &state.cached {
            Some(cached) if !state.force => match cached.expires {
                None => true,
                Some(expires) => SystemTime::now() + EXEC_REFRESH_MARGIN < expires,
            },
            _ => false,
        };
        if !fresh {
            state.force = false;
            state.cached = Some(self.run()?);
        }
        match &state.cached {
            Some(credential) => Ok(credential.clone()),
            None => Err(self.error("produced no credential".into())),
        }
    }

    pub(crate) fn force_refresh(&self) {
        self.lock().force = true;
    }

    fn error(&self, message: String) -> CredentialError {
        CredentialError::Exec {
            origin: self.origin.clone(),
            command: self.config.command.clone(),
            message,
        }
    }

    fn run(&self) -> Result<ExecCredential, CredentialError> {
        let stdin_is_terminal = std::io::stdin().is_terminal();
        let interactive = match self.interactive_mode {
            InteractiveMode::Never => false,
            InteractiveMode::IfAvailable => stdin_is_terminal,
            InteractiveMode::Always if stdin_is_terminal => true,
            InteractiveMode::Always => {
                return Err(self.error(
                    "interactiveMode is Always but standard input is not a terminal".into(),
                ))
            }
        };
        let mut spec = serde_json::json!({ "interactive": interactive });
        if let Some(cluster) = &self.cluster_info {
            spec["cluster"] = cluster.clone();
        }
        let exec_info = serde_json::json!({
            "kind": "ExecCredential",
            "apiVersion": self.config.api_version,
            "spec": spec,
        });

        let mut command = Command::new(&self.config.command);
        command
            .args(self.config.args.iter().flatten())
            .envs(
                self.config
                    .env
                    .iter()
                    .flatten()
                    .map(|v| (v.name.as_str(), v.value.as_str())),
            )
            .env("KUBERNETES_EXEC_INFO", exec_info.to_string())
            .stdin(if interactive {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            // Like kubectl: the plugin's diagnostics go straight to the user.
            .stderr(Stdio::inherit());
        if !interactive {
            // Its own process group, so that a stop or the timeout also ends whatever the
            // plugin started (an interactive plugin keeps the terminal's group).
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
        }
        let mut child = command.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => CredentialError::ExecNotFound {
                origin: self.origin.clone(),
                command: self.config.command.clone(),
                install_hint: self.config.install_hint.clone(),
            },
            _ => self.error(format!("cannot be started: {e}")),
        })?;
        let stdout = child.stdout.take();
        let reader = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut out) = stdout {
                let _ = std::io::Read::read_to_end(&mut out, &mut bytes);
            }
            bytes
        });
        let limit = crate::interrupt::exec_timeout();
        let started = std::time::Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => return Err(self.error(format!("cannot be waited for: {e}"))),
            }
            let why = if crate::interrupt::stopped() {
                Some("was stopped by a signal".to_string())
            } else if started.elapsed() >= limit {
                Some(format!("did not finish within {limit:?} (--exec-timeout)"))
            } else {
                None
            };
            if let Some(why) = why {
                let pid = child.id() as i32;
                // SAFETY: kill(2) on the group (non-interactive) or the process we spawned
                // and have not yet reaped.
                unsafe {
                    if !interactive {
                        libc::kill(-pid, libc::SIGKILL);
                    }
                    libc::kill(pid, libc::SIGKILL);
                }
                let _ = child.wait();
                return Err(self.error(why));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let stdout = reader
            .join()
            .map_err(|_| self.error("its output could not be read".into()))?;
        if !status.success() {
            return Err(self.error(format!("failed ({status})")));
        }
        self.parse_output(&stdout)
    }

    fn parse_output(&self, stdout: &[u8]) -> Result<ExecCredential, CredentialError> {
        // serde_json's messages can quote values (the token): report the position only.
        let parsed: ExecCredentialOutput = serde_json::from_slice(stdout).map_err(|e| {
            self.error(format!(
                "did not print an ExecCredential JSON object (error at line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        if parsed.kind != "ExecCredential" {
            return Err(self.error(format!(
                "printed kind {:?}, expected ExecCredential",
                parsed.kind
            )));
        }
        if parsed.api_version != self.config.api_version {
            return Err(self.error(format!(
                "is configured for apiVersion {} but printed apiVersion {:?}",
                self.config.api_version, parsed.api_version
            )));
        }
        let Some(status) = parsed.status else {
            return Err(self.error("printed an ExecCredential without status".into()));
        };
        let expires = match status.expiration_timestamp.as_deref() {
            None | Some("") => None,
            Some(text) => Some(
                OffsetDateTime::parse(text, &Rfc3339)
                    .map(SystemTime::from)
                    .map_err(|_| {
                        self.error(format!(
                            "status.expirationTimestamp {text:?} is not an RFC 3339 time"
                        ))
                    })?,
            ),
        };
        let token = status.token.filter(|t| !t.is_empty());
        let cert = status.client_certificate_data.filter(|c| !c.is_empty());
        let key = status.client_key_data.filter(|k| !k.is_empty());
        let client_certificate = match (cert, key) {
            (Some(cert), Some(key)) => Some(
                certified_key(cert.as_bytes(), key.as_bytes())
                    .map_err(|e| self.error(format!("status: {e}")))?,
            ),
            (None, None) => None,
            _ => return Err(self.error(
                "status has only one of clientCertificateData and clientKeyData; both are needed"
                    .into(),
            )),
        };
        if token.is_some()
            && token
                .as_deref()
                .is_some_and(|t| t.chars().any(char::is_control))
        {
            return Err(self.error("status.token holds control characters".into()));
        }
        if token.is_none() && client_certificate.is_none() {
            return Err(self.error(
                "status has neither a token nor clientCertificateData/clientKeyData".into(),
            ));
        }
        Ok(ExecCredential {
            token,
            client_certificate,
            expires,
        })
    }
}

/// Parses `stdout` as the output of a plugin configured with `api_version` (see
/// [`super::check_exec_credential`]).
pub(super) fn check_output(
    api_version: &str,
    stdout: &[u8],
) -> Result<(bool, bool), CredentialError> {
    let config = ExecConfig {
        command: "exec-plugin".into(),
        api_version: api_version.into(),
        interactive_mode: Some("Never".into()),
        ..ExecConfig::default()
    };
    let plugin = ExecPlugin::new(config, "the plugin's output".into(), None)?;
    let credential = plugin.parse_output(stdout)?;
    Ok((
        credential.token.is_some(),
        credential.client_certificate.is_some(),
    ))
}

/// Presents the exec plugin's current client certificate during TLS handshakes.
#[derive(Debug)]
pub(crate) struct ExecClientCert(pub Arc<ExecPlugin>);

impl std::fmt::Debug for ExecPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ExecPlugin({:?} for {})",
            self.config.command, self.origin
        )
    }
}

impl ResolvesClientCert for ExecClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        match self.0.credential() {
            Ok(credential) => credential.client_certificate,
            Err(e) => {
                tracing::warn!("no client certificate for the TLS handshake: {e}");
                None
            }
        }
    }

    fn has_certs(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::{check_output, API_V1, API_V1BETA1};

    #[test]
    fn output_with_a_token_is_read_and_a_wrong_version_is_refused_without_the_token() {
        let v1 = br#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"s3cret-token","expirationTimestamp":"2030-01-02T03:04:05Z"}}"#;
        assert_eq!(check_output(API_V1, v1).unwrap(), (true, false));
        let message = check_output(API_V1BETA1, v1).unwrap_err().to_string();
        assert!(message.contains("apiVersion"), "{message}");
        assert!(!message.contains("s3cret-token"), "{message}");
    }

    #[test]
    fn output_that_is_not_a_credential_is_an_error() {
        for bad in [
            &b""[..],
            b"\xff",
            br#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential"}"#,
            br#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"expirationTimestamp":"soon","token":"t"}}"#,
        ] {
            assert!(check_output(API_V1, bad).is_err(), "{bad:?}");
        }
        assert!(check_output("v0", b"{}").is_err());
    }
}

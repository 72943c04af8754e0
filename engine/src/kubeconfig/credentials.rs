//! Credentials of the selected user: nothing, a bearer token, basic auth, a token file that is
//! re-read when it changes (projected service-account tokens rotate), or an exec plugin.
//!
//! `Credentials` is cheap to clone and may be shared by all cores. Static tokens are returned
//! without locking; token files and plugins take a short lock, so callers should fetch the header
//! per connection (and again after a 401), not per request.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;

use super::error::CredentialError;
use super::exec::ExecPlugin;

/// How often a token file is checked for a change at most.
pub const TOKEN_FILE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The credentials sent with every request. Debug output never shows a secret.
#[derive(Clone)]
pub struct Credentials {
    kind: Arc<CredentialKind>,
}

enum CredentialKind {
    Anonymous,
    /// `Authorization` header value, built once.
    Static(String),
    TokenFile(TokenFile),
    Exec(Arc<ExecPlugin>),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &*self.kind {
            CredentialKind::Anonymous => "anonymous".to_string(),
            CredentialKind::Static(header) if header.starts_with("Basic ") => "basic auth".into(),
            CredentialKind::Static(_) => "bearer token".to_string(),
            CredentialKind::TokenFile(file) => format!("tokenFile {}", file.path.display()),
            CredentialKind::Exec(plugin) => format!("exec plugin {:?}", plugin.command()),
        };
        write!(f, "Credentials({kind})")
    }
}

impl Credentials {
    /// No credentials (a client certificate alone, or an anonymous user).
    pub fn anonymous() -> Self {
        Self::from_kind(CredentialKind::Anonymous)
    }

    /// A fixed bearer token.
    pub fn bearer_token(token: &str) -> Self {
        Self::from_kind(CredentialKind::Static(format!("Bearer {token}")))
    }

    /// HTTP basic authentication (deprecated in Kubernetes, still accepted by kubectl).
    pub fn basic(username: &str, password: &str) -> Self {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        Self::from_kind(CredentialKind::Static(format!("Basic {encoded}")))
    }

    /// A bearer token read from `path` now, and re-read when its modification time or size
    /// changes, checked at most every `check_interval` ([`TOKEN_FILE_CHECK_INTERVAL`] normally).
    /// `origin` names who configured it, for messages.
    pub fn token_file(
        path: &Path,
        origin: &str,
        check_interval: Duration,
    ) -> Result<Self, CredentialError> {
        let file = TokenFile::open(path, origin, check_interval)?;
        Ok(Self::from_kind(CredentialKind::TokenFile(file)))
    }

    pub(crate) fn exec(plugin: Arc<ExecPlugin>) -> Self {
        Self::from_kind(CredentialKind::Exec(plugin))
    }

    fn from_kind(kind: CredentialKind) -> Self {
        Self {
            kind: Arc::new(kind),
        }
    }

    /// The `Authorization` header value (`Bearer …` or `Basic …`), or `None` when the user has
    /// no token. May re-read a token file or run an exec plugin (blocking this thread while it
    /// runs) when the credential changed, expires soon, or a 401 was reported.
    pub fn authorization_header(&self) -> Result<Option<String>, CredentialError> {
        match &*self.kind {
            CredentialKind::Anonymous => Ok(None),
            CredentialKind::Static(header) => Ok(Some(header.clone())),
            CredentialKind::TokenFile(file) => file.token().map(|t| Some(format!("Bearer {t}"))),
            CredentialKind::Exec(plugin) => {
                Ok(plugin.credential()?.token.map(|t| format!("Bearer {t}")))
            }
        }
    }

    /// The server answered 401: the next [`authorization_header`](Self::authorization_header)
    /// re-reads the token file or re-runs the exec plugin once, whatever the cache says.
    pub fn on_unauthorized(&self) {
        match &*self.kind {
            CredentialKind::TokenFile(file) => file.force_reload(),
            CredentialKind::Exec(plugin) => plugin.force_refresh(),
            CredentialKind::Anonymous | CredentialKind::Static(_) => {}
        }
    }
}

/// A token file and the last token read from it.
struct TokenFile {
    path: PathBuf,
    origin: String,
    check_interval: Duration,
    state: Mutex<TokenFileState>,
}

struct TokenFileState {
    token: String,
    stamp: FileStamp,
    last_check: Instant,
    force: bool,
}

/// What identifies a version of the file cheaply.
#[derive(Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
}

impl TokenFile {
    fn open(path: &Path, origin: &str, check_interval: Duration) -> Result<Self, CredentialError> {
        let file = TokenFile {
            path: path.to_path_buf(),
            origin: origin.to_string(),
            check_interval,
            state: Mutex::new(TokenFileState {
                token: String::new(),
                stamp: FileStamp {
                    modified: None,
                    len: 0,
                },
                last_check: Instant::now(),
                force: false,
            }),
        };
        let (token, stamp) = file.read()?;
        {
            let mut state = file.lock();
            state.token = token;
            state.stamp = stamp;
        }
        Ok(file)
    }

    fn lock(&self) -> MutexGuard<'_, TokenFileState> {
        // A panic while holding this lock cannot leave the state half-written (plain assignments).
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn token(&self) -> Result<String, CredentialError> {
        let mut state = self.lock();
        let now = Instant::now();
        if state.force || now.duration_since(state.last_check) >= self.check_interval {
            state.last_check = now;
            let changed = state.force || self.stamp().ok() != Some(state.stamp);
            let forced = std::mem::take(&mut state.force);
            if changed {
                match self.read() {
                    Ok((token, stamp)) => {
                        state.token = token;
                        state.stamp = stamp;
                    }
                    // Like client-go: a failed re-read keeps the last good token (a rotation may be
                    // mid-write); a forced reload after a 401 reports the failure.
                    Err(e) if forced => return Err(e),
                    Err(e) => tracing::warn!("keeping the previous token: {e}"),
                }
            }
        }
        Ok(state.token.clone())
    }

    fn force_reload(&self) {
        self.lock().force = true;
    }

    fn stamp(&self) -> std::io::Result<FileStamp> {
        let meta = std::fs::metadata(&self.path)?;
        Ok(FileStamp {
            modified: meta.modified().ok(),
            len: meta.len(),
        })
    }

    fn read(&self) -> Result<(String, FileStamp), CredentialError> {
        let error = |message: String| CredentialError::TokenFile {
            origin: self.origin.clone(),
            path: self.path.clone(),
            message,
        };
        let stamp = self
            .stamp()
            .map_err(|e| error(format!("cannot read: {e}")))?;
        let bytes = std::fs::read(&self.path).map_err(|e| error(format!("cannot read: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|_| error("is not UTF-8 text".into()))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(error("is empty; it must hold a bearer token".into()));
        }
        if token.chars().any(|c| c.is_control()) {
            return Err(error(
                "holds control characters; it must hold a single bearer token".into(),
            ));
        }
        Ok((token.to_string(), stamp))
    }
}

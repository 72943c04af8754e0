//! Where a report goes: opened and checked before a run sends anything, written at the end,
//! and never lost. A run mutates the server, so a report that cannot reach its destination
//! (a full disk, `/dev/full`, a closed stdout pipe) is saved to a fallback file instead and
//! the exit code says so ([`REPORT_FALLBACK_EXIT`]).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Exit code when the report could not be written where asked and went to a fallback file
/// (or, if even that failed, to stderr).
pub const REPORT_FALLBACK_EXIT: u8 = 3;

/// A report destination that cannot be used, found before anything was sent.
#[derive(Debug, thiserror::Error)]
pub enum ReportPathError {
    /// The path names a directory.
    #[error("{flag} {path} is a directory: give a file path")]
    Directory {
        /// The option that named it.
        flag: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// The path (or its directory) cannot be created or opened for writing.
    #[error("{flag} {path}: cannot {action}: {source}")]
    Io {
        /// The option that named it.
        flag: &'static str,
        /// The path.
        path: PathBuf,
        /// What failed.
        action: &'static str,
        /// The cause.
        source: std::io::Error,
    },
}

/// Where the report ended up when it could not go where asked.
#[derive(Debug)]
pub struct Fallback {
    /// Why the destination failed.
    pub error: String,
    /// The fallback file, or `None` when the report went to stderr.
    pub saved_to: Option<PathBuf>,
}

/// An opened report destination.
#[derive(Debug)]
pub enum ReportDestination {
    /// Standard output.
    Stdout,
    /// A file opened (not truncated) before the run.
    File {
        /// The option that named it (for messages).
        flag: &'static str,
        /// The path as given.
        path: PathBuf,
        /// The open handle the report is written through.
        file: File,
        /// Whether this run created it (removed again if no report is written).
        created: bool,
    },
}

impl ReportDestination {
    /// The file's path (`None` for stdout).
    pub fn path(&self) -> Option<&Path> {
        match self {
            ReportDestination::Stdout => None,
            ReportDestination::File { path, .. } => Some(path),
        }
    }

    /// Opens `path` (or stdout for `None`) for the report: its directory is created, a
    /// directory, a path under a file or an unwritable place is refused now. An existing
    /// file is left as it is until the report replaces its content.
    pub fn open(
        flag: &'static str,
        path: Option<&Path>,
    ) -> Result<ReportDestination, ReportPathError> {
        let Some(path) = path else {
            return Ok(ReportDestination::Stdout);
        };
        let err = |action, source| ReportPathError::Io {
            flag,
            path: path.to_path_buf(),
            action,
            source,
        };
        if path.is_dir() {
            return Err(ReportPathError::Directory {
                flag,
                path: path.to_path_buf(),
            });
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err("create its directory", e))?;
        }
        let existed = std::fs::symlink_metadata(path).is_ok();
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| err("open it for writing", e))?;
        Ok(ReportDestination::File {
            flag,
            path: path.to_path_buf(),
            file,
            created: !existed,
        })
    }

    /// Removes a file this run created when no report will be written (the run failed).
    pub fn discard(self) {
        if let ReportDestination::File {
            path,
            created: true,
            file,
            ..
        } = self
        {
            let empty = file.metadata().is_ok_and(|m| m.is_file() && m.len() == 0);
            if empty {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    /// Writes `report`; if that fails, saves it to a fallback file in the temporary
    /// directory (0600), or as a last resort to stderr, and says where.
    pub fn write(self, report: &str) -> Result<(), Fallback> {
        let written = match &self {
            ReportDestination::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(report.as_bytes())
                    .and_then(|()| out.flush())
                    .map_err(|e| format!("writing the report to stdout: {e}"))
            }
            ReportDestination::File {
                flag, path, file, ..
            } => write_file(file, report)
                .map_err(|e| format!("cannot write {flag} {}: {e}", path.display())),
        };
        let Err(error) = written else {
            return Ok(());
        };
        let name = format!(
            "kreplay-report-{}-{}.json",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        );
        let fallback = std::env::temp_dir().join(name);
        let saved = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&fallback)
            .and_then(|mut f| f.write_all(report.as_bytes()).and_then(|()| f.sync_all()));
        match saved {
            Ok(()) => Err(Fallback {
                error,
                saved_to: Some(fallback),
            }),
            Err(_) => {
                let _ = std::io::stderr().write_all(report.as_bytes());
                Err(Fallback {
                    error,
                    saved_to: None,
                })
            }
        }
    }
}

/// Replaces a regular file's content with `report`; writes a device or pipe as it is.
fn write_file(mut file: &File, report: &str) -> std::io::Result<()> {
    if file.metadata()?.is_file() {
        file.set_len(0)?;
    }
    file.write_all(report.as_bytes())?;
    file.flush()
}

impl Fallback {
    /// The line to print on stderr.
    pub fn message(&self) -> String {
        match &self.saved_to {
            Some(p) => format!(
                "{}; the report was saved to {} instead",
                self.error,
                p.display()
            ),
            None => format!(
                "{}; the report was written to stderr instead (no fallback file could be created)",
                self.error
            ),
        }
    }
}

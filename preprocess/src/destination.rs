//! Where an output file goes, decided by what its path is now: a regular file (or none yet)
//! is built beside it and renamed into place, so a failure leaves no partial file; a device,
//! a pipe or a socket (`/dev/stdout`, `/dev/null`, a FIFO) is written in place, never replaced;
//! a symlink's target is written, never the link itself; a directory is refused.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// An output path that cannot be written, with the reason.
#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    /// The path names a directory.
    #[error("{0} is a directory: give a file path (or a device such as /dev/stdout)")]
    Directory(PathBuf),
    /// The path could not be looked at or written.
    #[error("{path}: {action}: {source}")]
    Io {
        /// The output path.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The cause.
        source: std::io::Error,
    },
}

/// How an output reaches its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Build a 0600 temporary file in `dir`, then rename it to `file` (the path itself, or
    /// the file a symlink points to).
    Replace {
        /// The regular file to create or replace.
        file: PathBuf,
        /// Its directory (where temporary files go).
        dir: PathBuf,
    },
    /// Not a regular file: the finished bytes are written into it, in order.
    InPlace(PathBuf),
}

/// Symlinks followed at most (as the kernel's own limit).
const MAX_LINKS: usize = 40;

impl Destination {
    /// Looks at `path` and decides how to write it.
    pub fn of(path: &Path) -> Result<Destination, DestinationError> {
        let io = |action, source| DestinationError::Io {
            path: path.to_path_buf(),
            action,
            source,
        };
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => Err(DestinationError::Directory(path.to_path_buf())),
            Ok(meta) if meta.is_file() => match std::fs::canonicalize(path) {
                // A regular file reached through /proc (as /dev/stdout redirected to a file
                // is) has no name to rename onto: write it in place.
                Ok(real) if !real.starts_with("/proc") => Ok(Self::replace(real)),
                _ => Ok(Destination::InPlace(path.to_path_buf())),
            },
            Ok(_) => Ok(Destination::InPlace(path.to_path_buf())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Nothing there yet, or a dangling symlink: create what the links lead to.
                let mut file = path.to_path_buf();
                for _ in 0..MAX_LINKS {
                    match std::fs::symlink_metadata(&file) {
                        Ok(m) if m.file_type().is_symlink() => {
                            let next =
                                std::fs::read_link(&file).map_err(|e| io("read the symlink", e))?;
                            file = match file.parent() {
                                Some(dir) => dir.join(next),
                                None => next,
                            };
                        }
                        _ => return Ok(Self::replace(file)),
                    }
                }
                Err(io(
                    "follow the symlinks",
                    std::io::Error::other("too many levels of symbolic links"),
                ))
            }
            Err(e) => Err(io("look at the output path", e)),
        }
    }

    fn replace(file: PathBuf) -> Destination {
        let dir = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Destination::Replace { file, dir }
    }

    /// Where temporary files for this output go: beside a regular file, else the system's
    /// temporary directory (never inside /dev).
    pub fn work_dir(&self) -> PathBuf {
        match self {
            Destination::Replace { dir, .. } => dir.clone(),
            Destination::InPlace(_) => std::env::temp_dir(),
        }
    }

    /// Puts the finished temporary file in place: renamed over a regular file, or copied
    /// into a device or pipe from its start.
    pub fn deliver(&self, tmp: tempfile::NamedTempFile) -> Result<(), DestinationError> {
        match self {
            Destination::Replace { file, .. } => {
                let io = |action, source| DestinationError::Io {
                    path: file.clone(),
                    action,
                    source,
                };
                tmp.as_file().sync_all().map_err(|e| io("sync", e))?;
                tmp.persist(file)
                    .map_err(|e| io("rename into place", e.error))?;
                Ok(())
            }
            Destination::InPlace(path) => {
                let io = |action, source| DestinationError::Io {
                    path: path.clone(),
                    action,
                    source,
                };
                let mut src: &File = tmp.as_file();
                src.seek(SeekFrom::Start(0))
                    .map_err(|e| io("read back the output", e))?;
                // No O_CREAT: the path exists and is not a regular file. Truncation is
                // meaningless for a device or a pipe and right for a file behind /proc.
                let mut dest = OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(path)
                    .map_err(|e| io("open for writing", e))?;
                std::io::copy(&mut src, &mut dest).map_err(|e| io("write", e))?;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_paths() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.bin");
        std::fs::write(&file, b"x").unwrap();
        let real_dir = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(
            Destination::of(&file).unwrap(),
            Destination::Replace {
                file: real_dir.join("a.bin"),
                dir: real_dir.clone()
            }
        );
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(
            Destination::of(&link).unwrap(),
            Destination::of(&file).unwrap(),
            "a symlink's target is written"
        );
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink("new.bin", &dangling).unwrap();
        assert_eq!(
            Destination::of(&dangling).unwrap(),
            Destination::Replace {
                file: dir.path().join("new.bin"),
                dir: dir.path().to_path_buf()
            }
        );
        assert!(matches!(
            Destination::of(dir.path()),
            Err(DestinationError::Directory(_))
        ));
        assert_eq!(
            Destination::of(Path::new("/dev/null")).unwrap(),
            Destination::InPlace(PathBuf::from("/dev/null"))
        );
        let under_file = file.join("x");
        assert!(matches!(
            Destination::of(&under_file),
            Err(DestinationError::Io { .. })
        ));
    }
}

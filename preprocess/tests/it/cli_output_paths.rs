//! `preprocess -o` and `preprocess export -o` write what the path leads to and never replace
//! a path of another kind: a symlink's target is written (the link stays), a FIFO is written
//! in place (it stays a FIFO), a directory or a path under a file is refused with a message.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_preprocess");
const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../bench/profiles/kperf_sample_replay.yaml"
);

/// Runs preprocess with `args`, killed after 60 s so a blocked write fails the test.
fn run(args: &[&str]) -> Output {
    let child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn preprocess");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    let watchdog = std::thread::spawn(move || {
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    });
    let out = child.wait_with_output().expect("wait");
    let _ = tx.send(());
    let _ = watchdog.join();
    out
}

fn ok(args: &[&str]) -> Output {
    let o = run(args);
    assert!(
        o.status.success(),
        "preprocess {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success());
}

/// Reads a FIFO to its end on a thread (opening it blocks until the writer opens it).
fn drain(fifo: &Path) -> std::thread::JoinHandle<Vec<u8>> {
    let fifo = fifo.to_path_buf();
    std::thread::spawn(move || std::fs::read(fifo).expect("read the FIFO"))
}

fn timeline(dir: &Path) -> PathBuf {
    let out = dir.join("plain.bin");
    ok(&[SAMPLE, "-o", s(&out)]);
    out
}

#[test]
fn a_symlink_is_followed_and_stays_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target.bin");
    std::fs::write(&target, b"old").unwrap();
    let link = dir.path().join("link.bin");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    ok(&[SAMPLE, "-o", s(&link)]);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_link(&link).unwrap(), target);
    ok(&["inspect", s(&target), "--verify"]);

    // A dangling link: its target is created.
    let new_target = dir.path().join("new.yaml");
    let dangling = dir.path().join("dangling.yaml");
    std::os::unix::fs::symlink(&new_target, &dangling).unwrap();
    ok(&["export", s(&target), "-o", s(&dangling)]);
    assert!(std::fs::symlink_metadata(&dangling)
        .unwrap()
        .file_type()
        .is_symlink());
    let exported = std::fs::read_to_string(&new_target).unwrap();
    assert!(exported.contains("requests:"), "{exported}");
}

#[test]
fn a_fifo_is_written_in_place_and_stays_a_fifo() {
    let dir = tempfile::tempdir().unwrap();
    let plain = timeline(dir.path());
    let fifo = dir.path().join("pipe");
    mkfifo(&fifo);

    let reader = drain(&fifo);
    ok(&[SAMPLE, "-o", s(&fifo)]);
    // Checked before joining the reader: a replaced FIFO would leave it blocked.
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    let bytes = reader.join().unwrap();
    assert_eq!(bytes, std::fs::read(&plain).unwrap(), "the same timeline");

    let yaml = dir.path().join("plain.yaml");
    ok(&["export", s(&plain), "-o", s(&yaml)]);
    let reader = drain(&fifo);
    ok(&["export", s(&plain), "-o", s(&fifo)]);
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(reader.join().unwrap(), std::fs::read(&yaml).unwrap());
}

#[test]
fn a_directory_or_a_path_under_a_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let plain = timeline(dir.path());
    for args in [
        vec![SAMPLE, "-o", s(dir.path())],
        vec!["export", s(&plain), "-o", s(dir.path())],
    ] {
        let o = run(&args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("is a directory"), "{args:?}: {stderr}");
        assert!(dir.path().is_dir());
    }
    let under = plain.join("x.bin");
    let o = run(&[SAMPLE, "-o", s(&under)]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(s(&under)), "names the path: {stderr}");
    ok(&["inspect", s(&plain), "--verify"]);
}

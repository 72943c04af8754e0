//! The runner image: `scripts/image.sh` builds it with buildah from the debug binaries,
//! `umoci` unpacks it, and its binaries run inside the unpacked root with `chroot`: the
//! version, then a short replay against apisim on the host as the image's non-root user.
//! Needs root (chroot, mounts) and Debian's buildah and umoci (`scripts/test.sh` installs
//! them); without them the test fails, saying what is missing.

use crate::util::order;

use std::ffi::OsStr;
use std::os::unix::fs::{chown, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::util::{bin, preprocess, run_bounded, workspace, ApiSim};
use order::requests_of;
use serde_json::Value;

/// The image's user and group (scripts/image.sh, Dockerfile).
const RUNNER_ID: u32 = 65532;
const TAG: &str = "test";

fn require_tool(name: &str) {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{name} not found on PATH: the image test needs Debian's buildah and umoci \
         (scripts/test.sh installs them: apt-get install buildah umoci)"
    );
}

fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds the image from the debug binaries into an OCI layout and unpacks it; returns the
/// bundle directory (`config.json`, `rootfs/`).
fn build_and_unpack(dir: &Path) -> PathBuf {
    let bin_dir = bin("engine")
        .parent()
        .expect("binaries live in a directory")
        .to_path_buf();
    bin("preprocess");
    let oci = dir.join("oci");
    let out = run_bounded(
        Command::new(workspace().join("scripts/image.sh"))
            .arg("--bin-dir")
            .arg(&bin_dir)
            .arg("--oci")
            .arg(&oci)
            .args(["--tag", TAG])
            // The script's storage lives here, so it goes even if the script is killed.
            .env("TMPDIR", dir),
        Duration::from_secs(300),
    );
    assert_success("scripts/image.sh", &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().any(|l| l.starts_with("digest sha256:")),
        "image.sh prints the digest: {stdout}"
    );

    let bundle = dir.join("bundle");
    let mut image = oci.into_os_string();
    image.push(format!(":kreplay:{TAG}"));
    let out = run_bounded(
        Command::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(&image)
            .arg(&bundle),
        Duration::from_secs(120),
    );
    assert_success("umoci unpack", &out);
    bundle
}

/// The runtime config umoci derived from the image (`config.json` of the bundle).
fn bundle_config(bundle: &Path) -> Value {
    let text = std::fs::read_to_string(bundle.join("config.json")).expect("bundle config.json");
    serde_json::from_str(&text).expect("config.json is JSON")
}

/// Checks the image's user, entrypoint, working dir, a label and the runner's directory.
fn assert_image_config(bundle: &Path, config: &Value) {
    let process = &config["process"];
    assert_eq!(process["user"]["uid"], RUNNER_ID, "image user: {process}");
    assert_eq!(process["user"]["gid"], RUNNER_ID, "image group: {process}");
    assert_eq!(
        process["args"][0], "/usr/local/bin/engine",
        "entrypoint: {process}"
    );
    assert_eq!(process["cwd"], "/var/lib/kreplay", "working dir: {process}");
    assert_eq!(
        config["annotations"]["org.opencontainers.image.title"], "kreplay",
        "labels: {}",
        config["annotations"]
    );
    let home = std::fs::metadata(bundle.join("rootfs/var/lib/kreplay")).expect("/var/lib/kreplay");
    assert!(home.is_dir());
    assert_eq!(
        (home.uid(), home.gid()),
        (RUNNER_ID, RUNNER_ID),
        "/var/lib/kreplay belongs to the runner"
    );
}

/// The Dockerfile's final stage sets what scripts/image.sh set in the image just built.
fn assert_dockerfile_agrees(config: &Value) {
    let process = &config["process"];
    let dockerfile =
        std::fs::read_to_string(workspace().join("Dockerfile")).expect("Dockerfile at the root");
    let json_list = |items: &[Value]| serde_json::to_string(items).expect("JSON list");
    let args = process["args"].as_array().expect("process args");
    let expected = [
        format!("USER {}:{}", process["user"]["uid"], process["user"]["gid"]),
        format!("WORKDIR {}", process["cwd"].as_str().expect("cwd")),
        format!("ENTRYPOINT {}", json_list(&args[..1]).replace(',', ", ")),
        format!("CMD {}", json_list(&args[1..]).replace(',', ", ")),
    ];
    for line in expected {
        assert!(
            dockerfile.lines().any(|l| l.trim() == line),
            "the Dockerfile lacks `{line}`, which scripts/image.sh sets: keep the two in step"
        );
    }
}

/// `chroot ROOT PROGRAM ARGS` (as root, nothing mounted).
fn chroot_plain(rootfs: &Path, program: &str, args: &[&str]) -> Output {
    run_bounded(
        Command::new("chroot").arg(rootfs).arg(program).args(args),
        Duration::from_secs(30),
    )
}

/// Runs PROGRAM in the root as the image's user, the way a container runtime would: in a
/// private mount namespace with /proc and a read-only /sys (glommio reads the CPU topology
/// there), and with the soft RLIMIT_MEMLOCK at 0 so the engine has to raise it itself.
fn chroot_as_runner(rootfs: &Path, args: &[&OsStr]) -> Output {
    for dir in ["proc", "sys"] {
        std::fs::create_dir_all(rootfs.join(dir)).expect("mount point");
    }
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-euc"])
        .arg(
            r#"root=$1; shift
mount -t proc proc "$root/proc"
mount -t sysfs -o ro sysfs "$root/sys"
exec chroot --userspec=65532:65532 "$root" "$@""#,
        )
        .arg("sh")
        .arg(rootfs)
        .args(args);
    // SAFETY: setrlimit(2) only, between fork and exec; lowering a soft limit needs no privilege.
    unsafe {
        cmd.pre_exec(|| {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            lim.rlim_cur = 0;
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    run_bounded(&mut cmd, Duration::from_secs(120))
}

/// Hands a file in the root to the image's user: timelines and kubeconfigs are 0600.
fn give_to_runner(path: &Path) {
    chown(path, Some(RUNNER_ID), Some(RUNNER_ID)).expect("chown to the runner");
}

#[test]
fn the_image_runs_a_replay_as_its_non_root_user() {
    // SAFETY: geteuid(2) has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the image test runs as root (umoci unpack keeps owners, chroot, mount)"
    );
    require_tool("buildah");
    require_tool("umoci");

    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = build_and_unpack(dir.path());
    let config = bundle_config(&bundle);
    assert_image_config(&bundle, &config);
    assert_dockerfile_agrees(&config);
    let rootfs = bundle.join("rootfs");

    // The image's binaries run with only the image's files (libraries and loader included).
    for name in ["engine", "preprocess"] {
        let host = run_bounded(
            Command::new(bin(name)).arg("--version"),
            Duration::from_secs(30),
        );
        assert_success(&format!("{name} --version on the host"), &host);
        let image = chroot_plain(&rootfs, &format!("/usr/local/bin/{name}"), &["--version"]);
        assert_success(&format!("{name} --version in the image"), &image);
        let version = String::from_utf8_lossy(&image.stdout);
        assert!(version.starts_with(&format!("{name} ")), "{version}");
        assert_eq!(version, String::from_utf8_lossy(&host.stdout));
    }

    // A short replay inside the root against apisim on the host (TLS, client certificate).
    let profile = workspace().join("bench/profiles/kperf_sample_replay.yaml");
    let expected = requests_of(&profile).len();
    let home = rootfs.join("var/lib/kreplay");
    let timeline = home.join("t.bin");
    preprocess(&profile, &timeline, &[]);
    give_to_runner(&timeline);
    let sim = ApiSim::start(&[]);
    let kubeconfig = home.join("kubeconfig");
    std::fs::copy(&sim.kubeconfig, &kubeconfig).expect("copy the kubeconfig into the root");
    give_to_runner(&kubeconfig);

    let out = chroot_as_runner(
        &rootfs,
        &[
            "/usr/local/bin/engine".as_ref(),
            "run".as_ref(),
            "/var/lib/kreplay/t.bin".as_ref(),
            "--kubeconfig".as_ref(),
            "/var/lib/kreplay/kubeconfig".as_ref(),
            "--result".as_ref(),
            "/var/lib/kreplay/r.json".as_ref(),
        ],
    );
    assert_success("engine run in the image", &out);
    let report_path = home.join("r.json");
    let meta = std::fs::metadata(&report_path).expect("report written in the root");
    assert_eq!(meta.uid(), RUNNER_ID, "the runner wrote the report");
    let text = std::fs::read_to_string(&report_path).expect("report");
    let report: Value = serde_json::from_str(&text).expect("report is JSON");
    assert_eq!(report["total"], expected, "report: {report}");
    assert_eq!(report["totalRun"], expected, "report: {report}");
    assert_eq!(report["totalFailed"], 0, "report: {report}");
    let order: Value = serde_json::from_str(&sim.admin_get("/apisim/order")).expect("order JSON");
    assert_eq!(order["recorded"], expected, "apisim saw every request once");
}

//! `engine report`: the terminal summary of a real run's report and of kperf's form, and the
//! HTML page rendered by headless Chromium (Debian's `chromium`), whose screenshot must show
//! every plot's lines.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::*;
use engine::report_view::html::colors;

fn engine(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_engine"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("engine")
}

/// Pixels of `png` within 40 (sum of channel distances) of `hex`.
fn pixels_of(rgba: &[u8], channels: usize, hex: &str) -> usize {
    let c = |i: usize| i64::from_str_radix(&hex[1 + 2 * i..3 + 2 * i], 16).unwrap();
    let (r, g, b) = (c(0), c(1), c(2));
    rgba.chunks(channels)
        .filter(|p| {
            (i64::from(p[0]) - r).abs() + (i64::from(p[1]) - g).abs() + (i64::from(p[2]) - b).abs()
                < 40
        })
        .count()
}

fn screenshot(html: &Path, png: &Path) {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1200,2000")
        .arg(format!("file://{}", html.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium (Debian package `chromium`, installed by scripts/test.sh)");
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium failed: {status}");
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish its screenshot in 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn summary_and_html_page_rendered_by_chromium() {
    let server = TestServer::start(Behavior::default());
    let dir = tempfile::tempdir().unwrap();
    // 3 s at 500/s: GETs and LISTs.
    let tl = profile()
        .each(0..1500i64, |p, i| {
            if i % 3 == 0 {
                p.list("ns").at_ms(i * 2)
            } else {
                p.get("ns/p").at_ms(i * 2)
            }
        })
        .timeline(dir.path(), &spec(1, 4));
    let run = run_on_one_core(&tl, dir.path(), &server.url(), &[]);
    assert!(run.status.success(), "{}", run.stderr);
    let report = dir.path().join("out").join("report.json");
    let html = dir.path().join("report.html");

    let out = engine(&[
        "report".as_ref(),
        report.as_os_str(),
        "--html".as_ref(),
        html.as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "1500 run, 1500 succeeded, 0 failed",
        "achieved",
        "scheduled",
        "send lag",
        "GET",
        "LIST",
        "slowest labels",
        "configuration",
        "intervals of 1 s",
    ] {
        assert!(text.contains(want), "summary lacks {want:?}:\n{text}");
    }
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        !page.contains("http://") || !page.contains("<script"),
        "no network, no script"
    );
    assert!(
        !page.contains("src=") && !page.contains("href="),
        "self-contained"
    );

    // Kept for a person to look at (target/tmp/report-screenshot.png).
    let png_path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshot.png");
    screenshot(&html, &png_path);
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png_path).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let rgba = &buf[..info.buffer_size()];
    assert!(
        info.width >= 1100 && info.height >= 1500,
        "{}x{}",
        info.width,
        info.height
    );
    // Every plot's line is drawn: each colour covers a line's worth of pixels (legend swatches
    // are 56 pixels; a drawn line across a plot is hundreds).
    for (name, color) in [
        ("scheduled", colors::SCHEDULED),
        ("sent", colors::SENT),
        ("completed", colors::COMPLETED),
        ("failed", colors::FAILED),
        ("latency p99", colors::LATENCY),
        ("send lag p99", colors::LAG),
        ("latency distribution", colors::SERVICE),
        ("from due", colors::FROM_DUE),
    ] {
        let n = pixels_of(rgba, channels, color);
        assert!(
            n > 400,
            "{name} ({color}): {n} pixels in the screenshot {}",
            png_path.display()
        );
    }
}

#[test]
fn kperf_reports_and_merged_reports_have_a_summary() {
    let server = TestServer::start(Behavior::default());
    let dir = tempfile::tempdir().unwrap();
    let tl = profile()
        .each(0..40i64, |p, i| p.get("ns/p").at_ms(i))
        .timeline(dir.path(), &spec(1, 1));
    let run = run_on_one_core(&tl, dir.path(), &server.url(), &[]);
    assert!(run.status.success(), "{}", run.stderr);
    let mut v = run.report.unwrap();
    v.as_object_mut().unwrap().remove("kreplay");
    let kperf = dir.path().join("kperf.json");
    std::fs::write(&kperf, v.to_string()).unwrap();
    let out = engine(&["report".as_ref(), kperf.as_os_str()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("kperf report") && text.contains("40 run"),
        "{text}"
    );
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{}").unwrap();
    let out = engine(&["report".as_ref(), bad.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.json"));
}

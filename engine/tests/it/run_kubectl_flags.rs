//! `--server https://… --token --certificate-authority --insecure-skip-tls-verify`, named as
//! kubectl names them, against the real apisim over TLS; the token never shows.

use crate::util::ApiSim;
use crate::util::*;
use base64::Engine as _;

#[test]
fn kubectl_style_flags_reach_a_tls_server_and_never_print_the_token() {
    let sim = ApiSim::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let s = h2_spec(1, 1);
    let tl = profile()
        .each(0..10i64, |p, i| p.list("ns").at_ms(i))
        .timeline(dir.path(), &s);
    let ca = dir.path().join("ca.crt");
    std::fs::write(
        &ca,
        base64::engine::general_purpose::STANDARD
            .decode(sim.ca_data())
            .unwrap(),
    )
    .unwrap();
    let ca = ca.to_str().unwrap();
    let run = |extra: &[&str]| {
        let d = tempfile::tempdir().unwrap();
        let mut args = vec!["--server", sim.url.as_str(), "--cores", "1"];
        args.extend_from_slice(extra);
        let r = run_engine(&tl, d.path(), &args, &[]);
        assert!(
            !r.stderr.contains(sim.token()),
            "the token leaked: {}",
            r.stderr
        );
        if let Some(text) = &r.report_text {
            assert!(!text.contains(sim.token()), "the token is in the report");
        }
        r
    };
    let ok = run(&["--token", sim.token(), "--certificate-authority", ca]);
    assert!(ok.status.success(), "{}", ok.stderr);
    let report = ok.report.unwrap();
    assert_eq!(num(&report, "totalRun"), 10);
    assert_eq!(num(&report, "totalFailed"), 0);
    assert_eq!(report["kreplay"]["config"]["server"], sim.url.as_str());

    let ok = run(&["--token", sim.token(), "--insecure-skip-tls-verify"]);
    assert!(ok.status.success(), "{}", ok.stderr);
    assert_eq!(num(ok.report.as_ref().unwrap(), "totalFailed"), 0);

    // A wrong token: every request is refused (401), and the run says so by exiting 1.
    let bad = run(&["--token", "not-the-token", "--certificate-authority", ca]);
    assert_all_failed_exit(&bad);
    assert!(!bad.stderr.contains("not-the-token"), "{}", bad.stderr);
    assert!(
        bad.report.unwrap()["errorStats"]["http/401"].as_u64() == Some(10),
        "401s"
    );
    // Without the CA, the public roots do not trust apisim's certificate.
    let untrusted = run(&["--token", sim.token()]);
    assert_all_failed_exit(&untrusted);
}

//! A kubeconfig `tokenFile` rotated in the middle of a replay (as projected
//! service-account tokens are): later requests carry the new token, and once the new
//! token is seen the old one never comes back.

use std::time::{Duration, Instant};

use crate::util::*;

#[test]
fn token_file_rotated_mid_run_is_picked_up() {
    let server = TestServer::start(Behavior::default());
    let dir = tempfile::tempdir().unwrap();
    // 60 GETs, one every 100 ms: a 6 s replay.
    let tl = profile()
        .each(0..60, |p, i| p.get(&format!("ns/p{i}")).at_ms(i * 100))
        .timeline(dir.path(), &spec(1, 2));
    let token = dir.path().join("token");
    std::fs::write(&token, "token-A\n").unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\n\
             clusters: [{{name: t, cluster: {{server: \"{}\"}}}}]\n\
             users: [{{name: t, user: {{tokenFile: \"{}\"}}}}]\n\
             contexts: [{{name: t, context: {{cluster: t, user: t}}}}]\n\
             current-context: t\n",
            server.url(),
            token.display()
        ),
    )
    .unwrap();

    let child = spawn_engine(
        &tl,
        dir.path(),
        &["--kubeconfig", kubeconfig.to_str().unwrap(), "--cores", "1"],
        &[],
    );
    // Rotate once the replay is under way (bounded wait on what the server received).
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.requests().len() < 5 {
        assert!(Instant::now() < deadline, "the replay did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let rotated = dir.path().join("token.new");
    std::fs::write(&rotated, "token-B\n").unwrap();
    std::fs::rename(&rotated, &token).unwrap();

    let (status, stderr) = wait_engine(child, Duration::from_secs(60));
    let run = read_run(status, stderr, dir.path());
    assert!(run.status.success(), "{}", run.stderr);
    assert_eq!(num(run.report.as_ref().unwrap(), "totalFailed"), 0);

    let mut seen = server.requests();
    seen.sort_by_key(|r| r.seq);
    assert_eq!(seen.len(), 60);
    let auth: Vec<&str> = seen
        .iter()
        .map(|r| r.header("authorization").unwrap_or("(none)"))
        .collect();
    assert_eq!(auth[0], "Bearer token-A", "{auth:?}");
    assert_eq!(auth[59], "Bearer token-B", "{auth:?}");
    let first_b = auth.iter().position(|a| *a == "Bearer token-B").unwrap();
    assert!(
        auth[first_b..].iter().all(|a| *a == "Bearer token-B"),
        "the old token came back after the new one: {auth:?}"
    );
    assert!(
        auth[..first_b].iter().all(|a| *a == "Bearer token-A"),
        "{auth:?}"
    );
    assert!(!run.stderr.contains("token-"), "a token reached stderr");
}

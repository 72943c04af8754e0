//! Properties of `normalize` over arbitrary apiPaths: it never panics, and every wire
//! target it returns is safe to put on a request line as is.

use crate::util::target_request;
use preprocess::profile::Verb;
use preprocess::request_target::{normalize, PathMode};
use proptest::prelude::*;

/// apiPaths built from the pieces that matter to URL parsing, plus arbitrary text.
fn api_path() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/".to_owned()),
        Just("?".to_owned()),
        Just("&".to_owned()),
        Just("=".to_owned()),
        Just("#".to_owned()),
        Just(";".to_owned()),
        Just("+".to_owned()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just("%2F".to_owned()),
        Just("%zz".to_owned()),
        Just("%".to_owned()),
        Just(" ".to_owned()),
        Just("é".to_owned()),
        Just("timeout".to_owned()),
        "[a-z0-9]{1,6}",
        any::<char>().prop_map(String::from),
    ];
    proptest::collection::vec(piece, 0..16).prop_map(|pieces| pieces.concat())
}

fn verb() -> impl Strategy<Value = Verb> {
    proptest::sample::select(Verb::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn wire_targets_are_plain_ascii_with_one_timeout(
        verb in verb(),
        api_path in api_path(),
        selector in prop_oneof![Just(String::new()), ".{0,8}"],
        cleaned in any::<bool>(),
    ) {
        let mode = if cleaned { PathMode::KperfCleaned } else { PathMode::Recorded };
        let req = target_request(verb, &api_path, &selector);
        // An error is fine (Go rejects some inputs); a panic is not.
        if let Ok(n) = normalize(&req, mode) {
            prop_assert!(n.target.starts_with('/'), "{:?}", n.target);
            prop_assert!(
                n.target.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b'#'),
                "{:?}", n.target
            );
            let (path, query) = n.target.split_once('?').unwrap_or((&n.target, ""));
            let timeouts = query.split('&').filter(|p| p.starts_with("timeout=")).count();
            prop_assert_eq!(timeouts, 1, "{:?}", n.target);
            prop_assert!(query.split('&').any(|p| p == "timeout=1m0s"));
            if cleaned {
                let dot_segment = path.split('/').any(|s| s == "." || s == "..");
                prop_assert!(!dot_segment && (path == "/" || (!path.contains("//") && !path.ends_with('/'))),
                    "{:?}", path);
            } else {
                // The recorded path is the request URL's path, as printed.
                prop_assert!(n.request_path.starts_with(path), "{:?} vs {:?}", n.request_path, path);
            }
        }
    }
}

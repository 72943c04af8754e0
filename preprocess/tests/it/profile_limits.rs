//! Hostile inputs fail early and within bounded memory: alias bombs, huge scalars, deep
//! nesting, oversized requests.

use std::io::{self, Read};

use crate::util::*;
use preprocess::loader::{load_profile, LoadError, LoadOptions};

/// Billion laughs through merge keys: every level merges the previous one ten times, so
/// decoding the request would visit 10^9 mappings.
fn merge_bomb() -> String {
    let mut yaml = format!("{HEAD}l0: &l0 {{verb: GET}}\n");
    for level in 1..=9 {
        let prev = format!("*l{}", level - 1);
        let list = [prev.as_str(); 10].join(", ");
        yaml.push_str(&format!("l{level}: &l{level} {{<<: [{list}]}}\n"));
    }
    yaml.push_str("requests:\n- <<: *l9\n  timestamp: 1\n");
    yaml
}

#[test]
fn alias_bomb_fails_on_the_expansion_limit() {
    let opts = LoadOptions {
        max_alias_expansions: 500,
        ..LoadOptions::default()
    };
    let err = load_bytes(merge_bomb().as_bytes(), &opts).unwrap_err();
    match &err {
        LoadError::Limit { message, .. } => {
            assert!(message.contains("max_alias_expansions"), "{message}")
        }
        other => panic!("expected the alias limit, got {other:?}"),
    }
}

#[test]
fn alias_bomb_with_default_options_fails_like_yaml_v2() {
    let err = load(&merge_bomb()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("excessive aliasing") || text.contains("max_alias_expansions"),
        "{text}"
    );
}

#[test]
fn unused_alias_bomb_is_harmless_as_in_yaml_v2() {
    let mut yaml = format!(
        "{}junk:\n  l0: &l0 [lol, lol]\n",
        with_requests(&get_item(0))
    );
    for level in 1..=9 {
        let list = vec![format!("*l{}", level - 1); 10].join(", ");
        yaml.push_str(&format!("  l{level}: &l{level} [{list}]\n"));
    }
    let (head, got) = load(&yaml).expect("aliases are not expanded unless decoded");
    assert_eq!(got.len(), 1);
    assert_eq!(head.warnings, ["unknown key \"junk\""]);
}

/// `prefix`, then `filler` bytes forever (never allocated as a whole); counts bytes served.
struct Endless {
    prefix: io::Cursor<Vec<u8>>,
    filler: u8,
    served: u64,
    cap: u64,
}

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.prefix.read(buf)?;
        let n = if n > 0 {
            n
        } else if self.served >= self.cap {
            0
        } else {
            let n = buf.len().min((self.cap - self.served) as usize);
            buf[..n].fill(self.filler);
            n
        };
        self.served += n as u64;
        Ok(n)
    }
}

#[test]
fn huge_scalar_fails_after_the_limit_not_after_the_input() {
    let mut reader = Endless {
        prefix: io::Cursor::new(format!("{HEAD}description: ").into_bytes()),
        filler: b'a',
        served: 0,
        cap: 300 << 20,
    };
    let opts = LoadOptions::default();
    let err = load_profile("huge.yaml", &mut reader, &opts, &mut |_, _| Ok(())).unwrap_err();
    match &err {
        LoadError::ScalarTooLarge { limit, .. } => assert_eq!(*limit, opts.max_scalar_bytes),
        other => panic!("expected ScalarTooLarge, got {other:?}"),
    }
    assert!(
        reader.served < (opts.max_scalar_bytes as u64) + (1 << 20),
        "stopped after {} bytes of 300 MiB",
        reader.served
    );
    assert!(err
        .to_string()
        .starts_with("huge.yaml: failed to parse YAML: "));
}

#[test]
fn huge_block_scalar_body_fails_too() {
    let mut reader = Endless {
        prefix: io::Cursor::new(with_requests("- verb: CREATE\n  body: |\n    ").into_bytes()),
        filler: b'x',
        served: 0,
        cap: 300 << 20,
    };
    let opts = LoadOptions {
        max_scalar_bytes: 1 << 20,
        ..LoadOptions::default()
    };
    let err = load_profile("b", &mut reader, &opts, &mut |_, _| Ok(())).unwrap_err();
    assert!(matches!(err, LoadError::ScalarTooLarge { .. }), "{err:?}");
    assert!(reader.served < 3 << 20, "{}", reader.served);
}

fn nested_junk(depth: usize) -> String {
    format!(
        "{}junk: {}{}\n",
        with_requests(&get_item(0)),
        "[".repeat(depth),
        "]".repeat(depth)
    )
}

#[test]
fn deep_nesting_hits_the_depth_limit() {
    let err = load(&nested_junk(100)).unwrap_err();
    match err {
        LoadError::Limit { message, .. } => assert!(message.contains("max_depth"), "{message}"),
        other => panic!("expected the depth limit, got {other:?}"),
    }
    // Far deeper input is stopped by the parser's own recursion limit, as a syntax error.
    let text = load(&nested_junk(100_000)).unwrap_err().to_string();
    assert!(
        text.contains("recursion limit") || text.contains("max_depth"),
        "{text}"
    );
}

#[test]
fn oversized_request_hits_the_node_limit() {
    let mut item = get_item(0);
    for i in 0..20_000 {
        item.push_str(&format!("  extra{i}: some value here\n"));
    }
    let opts = LoadOptions {
        max_node_bytes: 256 << 10,
        ..LoadOptions::default()
    };
    let err = load_bytes(with_requests(&item).as_bytes(), &opts).unwrap_err();
    match err {
        LoadError::Limit { message, .. } => {
            assert!(message.contains("max_node_bytes"), "{message}");
            assert!(message.contains("line 7"), "{message}");
        }
        other => panic!("expected the node limit, got {other:?}"),
    }
}

//! The fast, parallel loader against the general parser: on any input, either it defers or it
//! delivers exactly what the general parser delivers (and the general parser accepts the
//! input); on the common shape it does not defer; and the timelines written through either
//! path are byte-identical, however the input is cut into chunks.

use std::fmt::Write as _;
use std::path::Path;

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use preprocess::loader::{
    load_profile, load_profile_fast, FastOptions, FastOutcome, LoadOptions, ProfileHead,
};
use preprocess::profile::ProfileRequest;
use preprocess::request_target::PathMode;
use preprocess::timeline::{OwnedPrepared, TimelineWriter, WriterOptions};

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../bench/profiles/kperf_sample_replay.yaml"
);

type Loaded = (ProfileHead, Vec<ProfileRequest>);

fn general(text: &str) -> Option<Loaded> {
    let mut got = Vec::new();
    let head = load_profile(
        "p.yaml",
        text.as_bytes(),
        &LoadOptions::default(),
        &mut |_, r| {
            got.push(r);
            Ok(())
        },
    )
    .ok()?;
    Some((head, got))
}

fn fast(text: &str, workers: usize, chunk_bytes: usize) -> Result<Loaded, &'static str> {
    let opts = FastOptions {
        workers,
        chunk_bytes,
        ..FastOptions::default()
    };
    let mut got = Vec::new();
    let outcome = load_profile_fast(text.as_bytes(), &opts, &Some, &mut |i, r| {
        assert_eq!(i, got.len() as u64, "requests arrive in profile order");
        got.push(r.clone());
        Ok(())
    })
    .expect("only the caller's callback can fail");
    match outcome {
        FastOutcome::Loaded(head) => Ok((head, got)),
        FastOutcome::Deferred(why) => Err(why),
    }
}

/// The fast path agrees with the general parser or defers.
fn assert_agrees(text: &str, workers: usize, chunk_bytes: usize) -> bool {
    let Ok(from_fast) = fast(text, workers, chunk_bytes) else {
        return false;
    };
    let from_general = general(text).unwrap_or_else(|| {
        panic!("the fast path accepted what the general parser refuses:\n{text}")
    });
    assert_eq!(from_fast, from_general, "different results for:\n{text}");
    true
}

/// Pieces of text that exercise the scalar rules: indicators, quotes, escapes, comments,
/// separators, tabs, non-ASCII and characters YAML treats specially.
const PIECES: &[&str] = &[
    "a",
    "pod",
    "/api/v1/pods",
    " ",
    "  ",
    ":",
    ": ",
    " #",
    "#",
    "-",
    "- ",
    "?",
    "'",
    "''",
    "\"",
    "\\",
    "\\n",
    "\\t",
    "\\x41",
    "\\u00e9",
    "\\U0001F600",
    "\\/",
    "\\_",
    "\\q",
    "|",
    ">",
    "&a",
    "*a",
    "!",
    "!!str",
    "{",
    "}",
    "[",
    "]",
    ",",
    "%",
    "@",
    "`",
    "\t",
    "é",
    "\u{85}",
    "\u{2028}",
    "\u{feff}",
    "~",
    "null",
    "true",
    "0",
    "010",
    "0x1F",
    "1_000",
    "-1",
    "1e3",
    "7",
    "123",
];

fn noise(rng: &mut ChaCha8Rng) -> String {
    let n = rng.gen_range(0..5);
    (0..n)
        .map(|_| PIECES[rng.gen_range(0..PIECES.len())])
        .collect()
}

/// How far a generated profile strays from the common shape.
#[derive(Clone, Copy)]
struct Roughness {
    /// Noise in values and odd keys, verbs, versions.
    noisy: bool,
}

/// A scalar written in one of the styles, from clean or (when rough) noisy text; `text_only`
/// fields may also be block literals.
fn scalar(rng: &mut ChaCha8Rng, clean: &str, indent: usize, rough: Roughness) -> String {
    let text = if rough.noisy && rng.gen_bool(0.3) {
        format!("{clean}{}", noise(rng))
    } else {
        clean.to_string()
    };
    // Clean profiles keep to what kperf's recorder and kreplay-gen write: no plain `{`.
    let style = match (rough.noisy, clean.starts_with('{')) {
        (true, _) => rng.gen_range(0..6),
        (false, true) => [2, 3, 4][rng.gen_range(0..3)],
        (false, false) => [0, 1, 2, 3, 5][rng.gen_range(0..5)],
    };
    match style {
        0 | 1 => text,
        2 => format!("\"{text}\""),
        3 => format!("'{}'", text.replace('\'', "''")),
        4 => {
            let pad = " ".repeat(indent + rng.gen_range(1..4));
            let mut out = String::from("|");
            for line in text.split('x').chain(["line", "", "{\"k\": 1}"]) {
                out.push('\n');
                if !line.is_empty() || rng.gen_bool(0.5) {
                    out.push_str(&pad);
                }
                out.push_str(line);
            }
            out
        }
        _ => format!("{text} # comment"),
    }
}

const VERBS: &[&str] = &[
    "GET", "LIST", "WATCH", "CREATE", "DELETE", "PATCH", "APPLY", "get",
];

/// A profile in the common shape, with random deviations from it.
fn profile(seed: u64, requests: usize) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let rough = Roughness {
        noisy: rng.gen_bool(0.5),
    };
    let odd = |rng: &mut ChaCha8Rng, p: f64| rough.noisy && rng.gen_bool(p);
    let item_indent = [0, 2, 4][rng.gen_range(0..3)];
    let dash_pad = if rng.gen_bool(0.8) { 1 } else { 3 };
    let column = item_indent + 1 + dash_pad;
    let pad = " ".repeat(column);
    let mut items = String::new();
    let mut ts = 0i64;
    for i in 0..requests {
        if rng.gen_bool(0.1) {
            let _ = writeln!(items, "{}# request {i}", " ".repeat(rng.gen_range(0..6)));
        }
        if rng.gen_bool(0.05) {
            items.push('\n');
        }
        ts += rng.gen_range(0..3);
        let ts_text = if odd(&mut rng, 0.05) {
            scalar(&mut rng, &ts.to_string(), column, rough)
        } else {
            ts.to_string()
        };
        let verbs = if rough.noisy {
            VERBS.len()
        } else {
            VERBS.len() - 1
        };
        let verb = VERBS[rng.gen_range(0..verbs)];
        let mut fields = vec![
            ("timestamp", ts_text),
            ("verb", scalar(&mut rng, verb, column, rough)),
            ("resourceKind", scalar(&mut rng, "Pod", column, rough)),
            ("namespace", scalar(&mut rng, "default", column, rough)),
            ("name", scalar(&mut rng, &format!("pod-{i}"), column, rough)),
            (
                "apiPath",
                scalar(
                    &mut rng,
                    "/api/v1/namespaces/default/pods/pod",
                    column,
                    rough,
                ),
            ),
        ];
        if rng.gen_bool(0.3) {
            fields.push(("body", scalar(&mut rng, "{\"a\": 1}", column, rough)));
        }
        if rng.gen_bool(0.2) {
            fields.push(("labelSelector", scalar(&mut rng, "app=x", column, rough)));
        }
        if odd(&mut rng, 0.03) {
            fields.push(("unknownKey", "1".into()));
        }
        if odd(&mut rng, 0.03) {
            fields.push(("name", "again".into()));
        }
        if rng.gen_bool(0.5) {
            let a = rng.gen_range(0..fields.len());
            let b = rng.gen_range(0..fields.len());
            fields.swap(a, b);
        }
        for (k, (key, value)) in fields.iter().enumerate() {
            let lead = if k == 0 {
                format!("{}-{}", " ".repeat(item_indent), " ".repeat(dash_pad))
            } else {
                pad.clone()
            };
            let _ = writeln!(items, "{lead}{key}: {value}");
        }
    }
    let head = [
        format!("version: {}", if odd(&mut rng, 0.1) { "2" } else { "1" }),
        format!("description: {}", scalar(&mut rng, "a profile", 0, rough)),
        format!(
            "spec:\n  runnerCount: {}\n  connsPerRunner: 2\n  contentType: {}\n  disableHTTP2: {}",
            rng.gen_range(1..5),
            scalar(&mut rng, "json", 2, rough),
            ["false", "true", "no", "\"false\""][rng.gen_range(0..if rough.noisy { 4 } else { 3 })]
        ),
    ];
    let mut parts: Vec<String> = head.to_vec();
    parts.insert(
        rng.gen_range(0..=parts.len()),
        format!("requests:\n{items}"),
    );
    let mut text = parts.join("\n");
    text.push('\n');
    text
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn the_fast_path_agrees_with_the_general_parser_or_defers(
        seed in any::<u64>(),
        requests in 1usize..12,
        workers in 1usize..4,
        chunk in 1usize..600,
    ) {
        assert_agrees(&profile(seed, requests), workers, chunk);
    }
}

/// The random profiles must not all be deferred, or the property above tests nothing.
#[test]
fn many_random_profiles_take_the_fast_path() {
    let accepted = (0..200)
        .filter(|&seed| assert_agrees(&profile(seed, 3), 2, 256))
        .count();
    assert!(accepted >= 20, "only {accepted} of 200 took the fast path");
}

#[test]
fn the_kperf_sample_takes_the_fast_path() {
    let text = std::fs::read_to_string(SAMPLE).unwrap();
    for (workers, chunk) in [(1, 1 << 20), (3, 200)] {
        assert!(
            assert_agrees(&text, workers, chunk),
            "deferred: {:?}",
            fast(&text, workers, chunk).err()
        );
    }
}

/// Inputs the scanner must leave to the general parser, errors included.
#[test]
fn unusual_or_broken_inputs_are_deferred() {
    let head = "version: 1\nspec:\n  runnerCount: 1\n  connsPerRunner: 1\n  contentType: json\n";
    let item = "  - timestamp: 1\n    verb: GET\n    resourceKind: Pod\n    name: p\n    apiPath: /api/v1/pods/p\n";
    let cases = [
        format!("{head}requests:\n{}", item.replace("name: p", "name: &a p")),
        format!(
            "{head}requests:\n{}",
            item.replace("verb: GET", "verb: PUT")
        ),
        format!("{head}requests:\n{}", item.replace("name: p", "name: \"p")),
        format!("{head}requests:\n{}", item.replace("name: p", "nmae: p")),
        format!(
            "{head}requests:\n{}{}",
            item.replace("timestamp: 1", "timestamp: 5"),
            item
        ),
        format!("{head}requests: []\n"),
        format!("---\n{head}requests:\n{item}"),
        format!("{}requests:\n{item}", head.replace("json", "yaml")),
        format!("{head}requests:\n{item}requests:\n{item}"),
        format!(
            "{head}requests:\n{}",
            item.replace("name: p", "name: p\n      q")
        ),
        format!("{head}requests:\n{}", item.replace("\n", "\r\n")),
    ];
    for text in &cases {
        assert!(fast(text, 2, 64).is_err(), "not deferred:\n{text}");
    }
}

/// A block literal that ends the file on a line of spaces with no line break after it:
/// yaml.v2 reads that line as an empty line, which clipping drops, and so do both loaders
/// (the general one used to add a line break for it; found by the `profile_loader` fuzzer).
#[test]
fn a_block_literal_ending_the_file_on_spaces_is_clipped() {
    let head = "version: 1\nspec:\n  runnerCount: 1\n  connsPerRunner: 1\n  contentType: json\nrequests:\n";
    let item = "  - timestamp: 1\n    verb: CREATE\n    resourceKind: Pod\n    apiPath: /api/v1/pods\n    body: |\n      {\n        \"a\": 1\n      }\n";
    for tail in ["", "\n", "      ", "   ", " ", "      \n"] {
        let text = format!("{head}{item}{tail}");
        let (_, requests) = general(&text).unwrap_or_else(|| panic!("refused: {tail:?}"));
        assert_eq!(requests[0].body, "{\n  \"a\": 1\n}\n", "tail {tail:?}");
        assert!(assert_agrees(&text, 2, 64), "deferred: {tail:?}");
    }
}

/// Near the general parser's scalar limit the scanner defers, so that the general parser
/// reports the limit (a long quoted body, a long comment, a long block literal).
#[test]
fn inputs_near_the_scalar_limit_are_deferred() {
    let head = "version: 1\nspec:\n  runnerCount: 1\n  connsPerRunner: 1\n  contentType: json\nrequests:\n";
    let item =
        "  - timestamp: 1\n    verb: CREATE\n    resourceKind: Pod\n    apiPath: /api/v1/pods\n";
    let long = "x".repeat(3000);
    let cases = [
        format!("{head}{item}    body: \"{long}\"\n"),
        format!("{head}{item}    body: \"{{}}\"\n# {long}\n"),
        format!(
            "{head}{item}    body: |\n{}",
            "      abcdefghij\n".repeat(300)
        ),
    ];
    let opts = FastOptions {
        load: LoadOptions {
            max_scalar_bytes: 4000,
            ..LoadOptions::default()
        },
        ..FastOptions::default()
    };
    for text in &cases {
        let outcome = load_profile_fast(text.as_bytes(), &opts, &Some, &mut |_, _| Ok(())).unwrap();
        assert!(
            matches!(outcome, FastOutcome::Deferred(_)),
            "not deferred: {outcome:?}"
        );
        let short = text
            .replace(&long, "x")
            .replace(&"      abcdefghij\n".repeat(300), "      a\n");
        let outcome =
            load_profile_fast(short.as_bytes(), &opts, &Some, &mut |_, _| Ok(())).unwrap();
        assert!(
            matches!(outcome, FastOutcome::Loaded(_)),
            "the short form deferred: {outcome:?}"
        );
    }
}

/// A generated profile of the common shape, with YAML bodies as block literals.
fn large_profile(requests: usize) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut text = String::from(
        "version: 1\ndescription: \"large\"\nspec:\n  runnerCount: 3\n  connsPerRunner: 2\n  clientsPerRunner: 4\n  contentType: json\n  disableHTTP2: false\nrequests:\n",
    );
    for i in 0..requests {
        let ns = rng.gen_range(0..20);
        let obj = rng.gen_range(0..500);
        let _ = writeln!(text, "  - timestamp: {}", i / 3);
        match rng.gen_range(0..4) {
            0 => {
                let _ = write!(text, "    verb: GET\n    namespace: \"ns-{ns}\"\n    resourceKind: \"Pod\"\n    name: \"pod-{obj}\"\n    apiPath: \"/api/v1/namespaces/ns-{ns}/pods/pod-{obj}\"\n");
            }
            1 => {
                let _ = write!(text, "    verb: LIST\n    namespace: \"ns-{ns}\"\n    resourceKind: \"Pod\"\n    apiPath: \"/api/v1/namespaces/ns-{ns}/pods?limit=500\"\n    labelSelector: \"app=a{obj}\"\n");
            }
            2 => {
                let _ = write!(text, "    verb: APPLY\n    namespace: \"ns-{ns}\"\n    resourceKind: \"ConfigMap\"\n    name: \"cm-{obj}\"\n    apiPath: \"/api/v1/namespaces/ns-{ns}/configmaps/cm-{obj}\"\n    body: |\n      apiVersion: v1\n      kind: ConfigMap\n      metadata:\n        name: cm-{obj}\n\n      data:\n        k: \"{i}\"\n");
            }
            _ => {
                let _ = write!(text, "    verb: CREATE\n    namespace: \"ns-{ns}\"\n    resourceKind: \"Pod\"\n    name: \"pod-{obj}\"\n    apiPath: \"/api/v1/namespaces/ns-{ns}/pods\"\n    body: \"{{\\\"metadata\\\": {{\\\"name\\\": \\\"pod-{obj}\\\"}}, \\\"n\\\": {i}}}\"\n");
            }
        }
    }
    text
}

fn timeline_via_general(text: &str, out: &Path) {
    let mut w = TimelineWriter::create(out, WriterOptions::default()).unwrap();
    let head = load_profile(
        "p.yaml",
        text.as_bytes(),
        &LoadOptions::default(),
        &mut |i, r| {
            w.push(i, &r, PathMode::Recorded).unwrap();
            Ok(())
        },
    )
    .unwrap();
    w.finish(&head.spec, &head.description).unwrap();
}

fn timeline_via_fast(text: &str, out: &Path, workers: usize, chunk_bytes: usize) {
    let mut w = TimelineWriter::create(out, WriterOptions::default()).unwrap();
    let opts = FastOptions {
        workers,
        chunk_bytes,
        ..FastOptions::default()
    };
    let prepare = |r| OwnedPrepared::new(0, r, PathMode::Recorded).ok();
    let outcome = load_profile_fast(text.as_bytes(), &opts, &prepare, &mut |i, p| {
        w.push_owned(i, p).unwrap();
        Ok(())
    })
    .unwrap();
    let FastOutcome::Loaded(head) = outcome else {
        panic!("deferred: {outcome:?}");
    };
    w.finish(&head.spec, &head.description).unwrap();
}

/// The parallel path (several workers, many chunks) writes the same bytes as the serial
/// general parser on a large profile.
#[test]
fn parallel_and_serial_paths_write_identical_timelines() {
    let text = large_profile(20_000);
    let dir = tempfile::tempdir().unwrap();
    let serial = dir.path().join("serial.bin");
    timeline_via_general(&text, &serial);
    let expected = std::fs::read(&serial).unwrap();
    for (workers, chunk) in [(1, 1 << 20), (2, 64 << 10), (4, 4096)] {
        let parallel = dir.path().join(format!("fast-{workers}-{chunk}.bin"));
        timeline_via_fast(&text, &parallel, workers, chunk);
        assert!(
            std::fs::read(&parallel).unwrap() == expected,
            "{workers} workers, {chunk}-byte chunks: the timeline differs"
        );
    }
}

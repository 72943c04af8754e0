//! The generator's output: valid YAML with kperf's fields, deterministic, bodies of the
//! requested size, plausible object lifecycles, gzip output, clear errors.

use std::collections::HashMap;
use std::io::Read;

use bench::profile_gen::{
    write_profile, write_profile_to_path, GenConfig, GenContentType, GenError, GenVerb, RateShape,
    VerbMix,
};
use saphyr_parser::{Event, Parser, ScalarStyle};

/// A YAML node, enough for a profile.
#[derive(Debug)]
enum Node {
    Scalar(String, ScalarStyle),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn text(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            Node::Scalar(s, _) => Some(s),
            _ => None,
        }
    }

    fn style(&self, key: &str) -> Option<ScalarStyle> {
        match self.get(key)? {
            Node::Scalar(_, st) => Some(*st),
            _ => None,
        }
    }
}

fn parse_yaml(text: &str) -> Node {
    let mut events = Parser::new_from_str(text).map(|r| r.expect("valid YAML").0);
    loop {
        match events.next().expect("a document") {
            Event::StreamStart | Event::DocumentStart(_) => continue,
            first => return build(first, &mut events),
        }
    }
}

fn build<'a>(first: Event<'a>, events: &mut impl Iterator<Item = Event<'a>>) -> Node {
    match first {
        Event::Scalar(s, style, _, _) => Node::Scalar(s.into_owned(), style),
        Event::SequenceStart(..) => {
            let mut items = Vec::new();
            loop {
                match events.next().expect("sequence end") {
                    Event::SequenceEnd => return Node::Seq(items),
                    e => items.push(build(e, events)),
                }
            }
        }
        Event::MappingStart(..) => {
            let mut entries = Vec::new();
            loop {
                match events.next().expect("mapping end") {
                    Event::MappingEnd => return Node::Map(entries),
                    Event::Scalar(k, ..) => {
                        let v = build(events.next().expect("a value"), events);
                        entries.push((k.into_owned(), v));
                    }
                    other => panic!("unexpected key event {other:?}"),
                }
            }
        }
        other => panic!("unexpected event {other:?}"),
    }
}

fn generate(cfg: &GenConfig) -> (String, bench::profile_gen::GenSummary) {
    let mut out = Vec::new();
    let summary = write_profile(cfg, &mut out).expect("generation succeeds");
    (String::from_utf8(out).expect("UTF-8 output"), summary)
}

fn requests(doc: &Node) -> &[Node] {
    match doc.get("requests") {
        Some(Node::Seq(items)) => items,
        other => panic!("requests is not a sequence: {other:?}"),
    }
}

const VERBS: [&str; 8] = [
    "GET",
    "LIST",
    "WATCH",
    "CREATE",
    "PATCH",
    "APPLY",
    "DELETE",
    "DELETECOLLECTION",
];

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let cfg = GenConfig {
        requests: 3000,
        ..GenConfig::default()
    };
    let (a, _) = generate(&cfg);
    let (b, _) = generate(&cfg);
    assert_eq!(a, b);
    let (c, _) = generate(&GenConfig { seed: 2, ..cfg });
    assert_ne!(a, c);
}

#[test]
fn header_and_fields_parse_as_kperf_profile() {
    let cfg = GenConfig {
        requests: 2000,
        runners: 3,
        conns: 4,
        clients: 7,
        content_type: GenContentType::Protobuf,
        disable_http2: true,
        mix: "GET=30,LIST=10,WATCH=5,CREATE=20,PATCH=10,APPLY=10,DELETE=10,DELETECOLLECTION=5"
            .parse()
            .expect("mix"),
        ..GenConfig::default()
    };
    let (text, summary) = generate(&cfg);
    assert_eq!(summary.yaml_bytes, text.len() as u64);
    let doc = parse_yaml(&text);
    assert_eq!(doc.text("version"), Some("1"));
    let spec = doc.get("spec").expect("spec");
    assert_eq!(spec.text("runnerCount"), Some("3"));
    assert_eq!(spec.text("connsPerRunner"), Some("4"));
    assert_eq!(spec.text("clientsPerRunner"), Some("7"));
    assert_eq!(spec.text("contentType"), Some("protobuf"));
    assert_eq!(spec.text("disableHTTP2"), Some("true"));
    let reqs = requests(&doc);
    assert_eq!(reqs.len(), 2000);
    let mut seen = [0u64; 8];
    for (i, r) in reqs.iter().enumerate() {
        let verb = r.text("verb").expect("verb");
        let vi = VERBS.iter().position(|v| *v == verb).expect("known verb");
        seen[vi] += 1;
        let path = r.text("apiPath").expect("apiPath");
        assert!(
            path.starts_with("/api/v1/") || path.starts_with("/apis/"),
            "{i}: {path}"
        );
        assert!(!r.text("resourceKind").unwrap_or("").is_empty(), "{i}");
        let name = r.text("name").unwrap_or("");
        let ns = r.text("namespace").unwrap_or("");
        if ns.is_empty() {
            let namespace_object = r.text("resourceKind") == Some("Namespace");
            assert!(
                namespace_object || !path.contains("/namespaces/"),
                "{i}: {path}"
            );
        } else {
            assert!(path.contains(&format!("/namespaces/{ns}/")), "{i}: {path}");
        }
        match verb {
            "GET" | "PATCH" | "APPLY" | "DELETE" => {
                assert!(path.ends_with(&format!("/{name}")), "{i}: {path} vs {name}");
            }
            "CREATE" => assert!(!name.is_empty() && !path.ends_with(name), "{i}"),
            "DELETECOLLECTION" => {
                let sel = r.text("labelSelector").expect("selector");
                assert!(path.ends_with(&format!("?labelSelector={}", sel.replace('=', "%3D"))));
            }
            _ => assert!(name.is_empty(), "{i}"),
        }
        let has_body = r.get("body").is_some();
        assert_eq!(
            has_body,
            matches!(verb, "CREATE" | "PATCH" | "APPLY"),
            "{i}: {verb}"
        );
    }
    let by_summary: Vec<u64> = GenVerb::ALL.iter().map(|v| summary.count(*v)).collect();
    assert_eq!(seen.to_vec(), by_summary);
    assert!(seen.iter().all(|&c| c > 0), "every verb appears: {seen:?}");
    assert!(reqs.iter().any(|r| r
        .text("apiPath")
        .unwrap_or("")
        .starts_with("/apis/stable.example.com/v1/namespaces/")));
    assert!(reqs.iter().any(|r| r.text("resourceKind") == Some("Node")));
}

/// JSON body → (name, namespace, app label).
fn json_identity(body: &str) -> (String, String, String) {
    let v: serde_json::Value = serde_json::from_str(body).expect("JSON body");
    let md = &v["metadata"];
    (
        md["name"].as_str().unwrap_or("").to_owned(),
        md["namespace"].as_str().unwrap_or("").to_owned(),
        md["labels"]["app"].as_str().unwrap_or("").to_owned(),
    )
}

#[test]
fn bodies_have_the_requested_size_and_describe_their_object() {
    for body_size in [900usize, 4096] {
        let cfg = GenConfig {
            requests: 1500,
            body_size,
            mix: VerbMix::write_heavy(),
            seed: 7,
            ..GenConfig::default()
        };
        let (text, _) = generate(&cfg);
        let doc = parse_yaml(&text);
        let mut yaml_bodies = 0;
        for r in requests(&doc) {
            let Some(body) = r.text("body") else { continue };
            assert_eq!(body.len(), body_size, "{body}");
            let name = r.text("name").expect("name");
            match r.text("verb") {
                Some("PATCH") => {
                    let v: serde_json::Value = serde_json::from_str(body).expect("merge patch");
                    assert!(v["metadata"]["labels"]["rev"].is_string());
                }
                Some("APPLY") if r.style("body") == Some(ScalarStyle::Literal) => {
                    yaml_bodies += 1;
                    let obj = parse_yaml(body);
                    let md = obj.get("metadata").expect("metadata");
                    assert_eq!(md.text("name"), Some(name));
                    assert!(obj.text("apiVersion").is_some() && obj.text("kind").is_some());
                }
                _ => {
                    let (n, ns, app) = json_identity(body);
                    assert_eq!(n, name);
                    assert_eq!(ns, r.text("namespace").unwrap_or(""));
                    assert!(app.starts_with("app-"));
                }
            }
        }
        assert!(yaml_bodies > 0, "some APPLY bodies are YAML");
    }
    // A target below the bare object gives the bare object.
    let (text, _) = generate(&GenConfig {
        requests: 200,
        body_size: 10,
        ..GenConfig::default()
    });
    let doc = parse_yaml(&text);
    let body = requests(&doc)
        .iter()
        .find_map(|r| {
            (r.text("verb") == Some("CREATE"))
                .then(|| r.text("body"))
                .flatten()
        })
        .expect("a CREATE");
    assert!(body.len() > 10);
    json_identity(body);
}

#[test]
fn object_lifecycles_are_plausible() {
    let cfg = GenConfig {
        requests: 20_000,
        objects: 300,
        namespaces: 3,
        mix: "GET=30,LIST=5,CREATE=20,PATCH=10,APPLY=10,DELETE=15,DELETECOLLECTION=3"
            .parse()
            .expect("mix"),
        body_size: 0,
        seed: 11,
        ..GenConfig::default()
    };
    let (text, _) = generate(&cfg);
    let doc = parse_yaml(&text);
    // key (ns/kind/name) → app label while live.
    let mut live: HashMap<String, (String, String, String)> = HashMap::new();
    let mut ever: HashMap<String, u32> = HashMap::new();
    for (i, r) in requests(&doc).iter().enumerate() {
        let ns = r.text("namespace").unwrap_or("").to_owned();
        let kind = r.text("resourceKind").unwrap_or("").to_owned();
        let key = format!("{ns}/{kind}/{}", r.text("name").unwrap_or(""));
        match r.text("verb").unwrap_or("") {
            "CREATE" => {
                let (_, _, app) = json_identity(r.text("body").expect("body"));
                assert!(!live.contains_key(&key), "request {i}: {key} created twice");
                *ever.entry(key.clone()).or_default() += 1;
                assert_eq!(
                    ever[&key], 1,
                    "request {i}: {key} re-created under the same name"
                );
                live.insert(key, (ns, kind, app));
            }
            "GET" | "PATCH" | "APPLY" => {
                assert!(
                    live.contains_key(&key),
                    "request {i}: {key} used while absent"
                );
            }
            "DELETE" => {
                assert!(
                    live.remove(&key).is_some(),
                    "request {i}: {key} deleted while absent"
                );
            }
            "DELETECOLLECTION" => {
                let app = r
                    .text("labelSelector")
                    .unwrap_or("")
                    .trim_start_matches("app=");
                live.retain(|_, (n, k, a)| !(*n == ns && *k == kind && a == app));
            }
            _ => {}
        }
    }
    assert!(
        ever.len() > 300,
        "objects churn: {} distinct names",
        ever.len()
    );
}

#[test]
fn gzip_output_decodes_to_the_plain_output() {
    let cfg = GenConfig {
        requests: 500,
        ..GenConfig::default()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let gz_path = dir.path().join("p.yaml.gz");
    let plain_path = dir.path().join("p.yaml");
    let s1 = write_profile_to_path(&cfg, gz_path.to_str().expect("utf8")).expect("gz");
    let s2 = write_profile_to_path(&cfg, plain_path.to_str().expect("utf8")).expect("plain");
    assert_eq!(s1, s2);
    let compressed = std::fs::read(&gz_path).expect("read gz");
    assert_eq!(&compressed[..2], &[0x1f, 0x8b]);
    let mut decoded = String::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_string(&mut decoded)
        .expect("gunzip");
    let plain = std::fs::read_to_string(&plain_path).expect("read plain");
    assert_eq!(decoded, plain);
    assert_eq!(plain.len() as u64, s2.yaml_bytes);
}

#[test]
fn bad_options_are_clear_errors() {
    let err = |cfg: GenConfig| -> String {
        match write_profile(&cfg, Vec::new()) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("expected an error for {cfg:?}"),
        }
    };
    let base = GenConfig::default();
    assert!(err(GenConfig {
        requests: 0,
        ..base.clone()
    })
    .contains("invalid -n"));
    assert!(err(GenConfig {
        objects: 0,
        ..base.clone()
    })
    .contains("--objects"));
    assert!(err(GenConfig {
        rate: Some(-5.0),
        ..base.clone()
    })
    .contains("--rate"));
    let e = err(GenConfig {
        rate: Some(10.0),
        shape: RateShape::Ramp { from: 1.0, to: 2.0 },
        ..base.clone()
    });
    assert!(e.contains("only apply to the constant shape"), "{e}");
    assert!(err(GenConfig {
        watches: Some(5000),
        ..base.clone()
    })
    .contains("--watches"));
    let e = err(GenConfig {
        requests: 10_000,
        shape: RateShape::Spike {
            base: 0.0,
            peak: 10.0,
            at_s: 0.0,
            len_s: 1.0,
        },
        ..base
    });
    assert!(e.contains("spike with BASE 0"), "{e}");
    let e = "GET=1,FETCH=2"
        .parse::<VerbMix>()
        .expect_err("unknown verb");
    assert!(matches!(
        e,
        GenError::Invalid {
            option: "--mix",
            ..
        }
    ));
    assert!(e.to_string().contains("unknown verb `FETCH`"), "{e}");
    assert!("GET=-1".parse::<VerbMix>().is_err());
    assert!("GET=0".parse::<VerbMix>().is_err());
    assert!("ramp:1".parse::<RateShape>().is_err());
    assert!("spike:1:2:3".parse::<RateShape>().is_err());
    assert!("zigzag".parse::<RateShape>().is_err());
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no/such/dir/p.yaml");
    let e = write_profile_to_path(&GenConfig::default(), missing.to_str().expect("utf8"))
        .expect_err("cannot create");
    assert!(e.to_string().starts_with("cannot create "), "{e}");
}

#[test]
fn cli_writes_the_same_profile_as_the_library() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("cli.yaml");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_kreplay-gen"))
        .args([
            "-n",
            "700",
            "--shape",
            "ramp:10:90",
            "--mix",
            "read-heavy",
            "--objects",
            "50",
        ])
        .args([
            "--namespaces",
            "2",
            "--watches",
            "7",
            "--body-size",
            "333",
            "--runners",
            "2",
        ])
        .args([
            "--conns",
            "3",
            "--clients",
            "4",
            "--content-type",
            "protobuf",
            "--seed",
            "9",
        ])
        .args(["--disable-http2", "-o"])
        .arg(&out)
        .output()
        .expect("run kreplay-gen");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let cfg = GenConfig {
        requests: 700,
        shape: RateShape::Ramp {
            from: 10.0,
            to: 90.0,
        },
        mix: VerbMix::read_heavy(),
        objects: 50,
        namespaces: 2,
        watches: Some(7),
        body_size: 333,
        runners: 2,
        conns: 3,
        clients: 4,
        content_type: GenContentType::Protobuf,
        disable_http2: true,
        seed: 9,
        ..GenConfig::default()
    };
    let (lib, _) = generate(&cfg);
    assert_eq!(std::fs::read_to_string(&out).expect("read"), lib);
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_kreplay-gen"))
        .args(["-n", "10", "--mix", "GET=x", "-o", "-"])
        .output()
        .expect("run kreplay-gen");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid --mix"));
}

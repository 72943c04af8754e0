//! The model against the reports `engine run` writes: read and written again, byte for byte;
//! every optional member; Go's layout; errors that name the member.

use std::collections::BTreeMap;

use super::*;
use crate::report::json_writer::to_go_json;

/// Parses `text` and writes it again.
fn round_trip(text: &str) -> (Report, String) {
    let report = parse(text.as_bytes()).expect("a report");
    let again = report.to_json(text.len());
    (report, again)
}

#[test]
fn run_reports_read_and_write_back_byte_for_byte() {
    for raw in [false, true] {
        let text = crate::report::tests::render(raw);
        let (report, again) = round_trip(&text);
        assert!(
            again == text,
            "raw {raw}: the text changed through the model"
        );
        assert!(report.is_kreplay());
        // The runner form (the raw case here) has no totals; the full form has them.
        assert_eq!(report.total_run.is_some(), !raw);
        assert_eq!(report.latencies_by_url.is_some(), raw);
    }
}

/// A report with every optional member of the model present (and every map and list
/// non-empty), from the deterministic run's.
fn full_report() -> Report {
    let mut r = parse(crate::report::tests::render(true).as_bytes()).expect("a report");
    r.runner_count = Some(3);
    r.total_run = Some(10);
    r.total_failed = Some(2);
    let k = r.kreplay.as_mut().expect("kreplay");
    let watches = LagSummary {
        count: 2,
        quantiles: Quantiles {
            p50: Some(0.5),
            p90: Some(1e-7),
            p99: Some(2.0),
            p999: Some(2.5),
            max: Some(3.25),
        },
    };
    k.send_lag.watches = Some(watches.clone());
    k.wake_error = watches.clone();
    k.send_lag.without_watches = Some(LagSummary {
        count: 1,
        ..watches.clone()
    });
    // A verb's figures have no p99.9 in a run's report; the model can hold one.
    let get = k.verbs.get_mut("GET").expect("GET ran");
    get.latency.p999 = get.latency.p99;
    k.run.timeline_damage = Some("t.bin: records block 9 of run 0 <damaged> & \"cut\"".into());
    let c = k.config.as_mut().expect("config");
    c.timeline_id = Some("xxh3:00000000000000ff".into());
    c.merged_reports = Some(2);
    c.runner_indexes = Some(vec![0, 2]);
    c.missing_runners = Some(vec![1]);
    c.watch_cpus = Some(vec![0]);
    let h = k.histograms.as_mut().expect("histograms");
    h.watch_lag = h.send_lag.clone();
    // The deterministic run sized no per-interval series.
    let buckets = vec![SparseBuckets(vec![(3, 5), (300, 1)]), SparseBuckets(vec![])];
    k.per_second = PerSecond {
        scheduled: vec![6, 0],
        sent: vec![5, 1],
        interval_seconds: Some(1),
        completed: Some(vec![5, 1]),
        failed: Some(vec![1, 0]),
        bytes: Some(vec![1234, 0]),
        latency_p99: Some(vec![Some(0.25), None]),
        lag_p99: Some(vec![Some(1e-6), None]),
        latency_buckets: Some(buckets.clone()),
        lag_buckets: Some(buckets),
    };
    r
}

#[test]
fn a_report_with_every_optional_member_round_trips_byte_for_byte() {
    let full = full_report();
    let text = full.to_json(1 << 20);
    let (back, again) = round_trip(&text);
    assert_eq!(back, full);
    assert!(again == text, "the text changed through the model");
    // Every member of every struct of the model is in the text: none was skipped.
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let k = &v["kreplay"];
    let objects: [(&str, &serde_json::Value, &[&str]); 12] = [
        ("report", &v, field_names::<Report>()),
        ("errors[0]", &v["errors"][0], field_names::<ErrorEntry>()),
        ("kreplay", k, field_names::<Kreplay>()),
        ("perCore[0]", &k["perCore"][0], field_names::<CoreTiming>()),
        ("verbs.GET", &k["verbs"]["GET"], field_names::<Quantiles>()),
        ("rate", &k["rate"], field_names::<Rate>()),
        ("perSecond", &k["perSecond"], field_names::<PerSecond>()),
        ("run", &k["run"], field_names::<RunCounters>()),
        ("config", &k["config"], field_names::<Config>()),
        ("histograms", &k["histograms"], field_names::<Histograms>()),
        (
            "histograms.all",
            &k["histograms"]["all"],
            field_names::<HistogramPair>(),
        ),
        (
            "watches",
            first_value(&k["watches"]),
            field_names::<WatchFigures>(),
        ),
    ];
    for (at, object, fields) in objects {
        assert!(!fields.is_empty(), "{at}");
        for f in fields {
            assert!(
                object.get(f).is_some(),
                "{at}.{f} is not in the full report"
            );
        }
    }
    // Structs with a flattened member (serde reads them as maps) are checked by name.
    let lag_members = field_names::<Quantiles>().iter().chain(&["count"]);
    for at in [&k["sendLag"], &k["sendLag"]["watches"], &k["wakeError"]] {
        for f in lag_members.clone() {
            assert!(at.get(f).is_some(), "{f} of {at}");
        }
    }
    for f in ["lateOver1ms", "lateOver10ms", "withoutWatches"] {
        assert!(k["sendLag"].get(f).is_some(), "sendLag.{f}");
    }
    for f in ["count", "errors"] {
        assert!(k["verbs"]["GET"].get(f).is_some(), "verbs.GET.{f}");
    }
}

/// The first member of an object (`Null` when there is none).
fn first_value(v: &serde_json::Value) -> &serde_json::Value {
    v.as_object()
        .and_then(|m| m.values().next())
        .unwrap_or(&serde_json::Value::Null)
}

/// The member names serde reads for struct `T`: the model's own list, so that a member added
/// later is checked here without an edit.
fn field_names<'de, T: serde::Deserialize<'de>>() -> &'static [&'static str] {
    use serde::de::{self, Visitor};
    struct Names(&'static [&'static str]);
    impl<'de> de::Deserializer<'de> for &mut Names {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("names only"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = fields;
            Err(de::Error::custom("names only"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 u8 u16 u32 u64 f32 f64 char str string bytes byte_buf option
            unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut names = Names(&[]);
    let _ = T::deserialize(&mut names);
    names.0
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Sample {
    empty_list: Vec<u64>,
    empty_map: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<u64>,
    floats: Vec<f64>,
    keyed: BTreeMap<String, Vec<(f64, f64)>>,
    buckets: Vec<SparseBuckets>,
    text: String,
    nothing: Option<u64>,
}

#[test]
fn the_formatter_writes_what_go_writes() {
    let sample = Sample {
        empty_list: vec![],
        empty_map: BTreeMap::new(),
        skipped: None,
        floats: vec![0.0, 1.0, 1e-7, 1e21, 0.001, -2.5, f64::NAN],
        keyed: BTreeMap::from([
            ("b<&>".to_string(), vec![(0.5, 0.25)]),
            ("a".to_string(), vec![]),
        ]),
        buckets: vec![SparseBuckets(vec![(3, 5), (9, 1)]), SparseBuckets(vec![])],
        text: "line\n\u{2028}\"q\"\u{1}".to_string(),
        nothing: None,
    };
    let want = r#"{
  "emptyList": [],
  "emptyMap": {},
  "floats": [
    0,
    1,
    1e-7,
    1e+21,
    0.001,
    -2.5,
    null
  ],
  "keyed": {
    "a": [],
    "b\u003c\u0026\u003e": [
      [
        0.5,
        0.25
      ]
    ]
  },
  "buckets": [
    [[3,5],[9,1]],
    []
  ],
  "text": "line\n\u2028\"q\"\u0001",
  "nothing": null
}
"#;
    assert_eq!(to_go_json(&sample, 0), want);
}

#[test]
fn sparse_buckets_read_back_from_their_one_line() {
    let text = to_go_json(&vec![SparseBuckets(vec![(0, 1), (300, 7)])], 0);
    let back: Vec<SparseBuckets> = serde_json::from_str(&text).unwrap();
    assert_eq!(back, vec![SparseBuckets(vec![(0, 1), (300, 7)])]);
}

#[test]
fn errors_name_the_member_and_unknown_members_are_ignored() {
    let err = |text: &str| parse(text.as_bytes()).unwrap_err().to_string();
    let e = err(r#"{"total": 1, "duration": "1s", "kreplay": {"verbs": {"GET": {"count": "x"}}}}"#);
    assert!(
        e.starts_with("kreplay.verbs.GET.count: invalid type"),
        "{e}"
    );
    let e = err(r#"{"total": 1, "duration": "1s", "kreplay": {"config": {"speed": 1}}}"#);
    assert!(
        e.contains("kreplay.config") && e.contains("timelineSource"),
        "{e}"
    );
    assert!(err("[1, 2").starts_with("not JSON"));
    assert!(err("[1, 2]").contains("not a report: the JSON is not an object"));
    assert!(err(r#"{"apiVersion": "v1"}"#).starts_with("not a report: no integer `total`"));
    assert!(
        err(r#"{"total": -1, "duration": "1s"}"#).starts_with("not a report: no integer `total`")
    );
    assert!(err(r#"{"total": 1}"#).starts_with("not a report: no string `duration`"));
    // A member this version does not know (a newer writer's) is not an error.
    let r = parse(br#"{"total": 2, "duration": "1s", "future": [1], "kreplay": {"next": {}}}"#)
        .expect("tolerant");
    assert_eq!((r.total, r.kreplay.map(|k| k.verbs.len())), (2, Some(0)));
}

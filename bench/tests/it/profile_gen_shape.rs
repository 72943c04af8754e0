//! Timestamps and verbs as measured from the generated text: count, order, rate shape per
//! one-second bucket, verb mix for large N, exact WATCH counts.

use bench::profile_gen::{write_profile, GenConfig, RateShape, VerbMix};

fn generate(cfg: &GenConfig) -> String {
    let mut out = Vec::new();
    write_profile(cfg, &mut out).expect("generation succeeds");
    String::from_utf8(out).expect("UTF-8")
}

/// `timestamp` of every request, read from the item lines.
fn timestamps(text: &str) -> Vec<i64> {
    text.lines()
        .filter_map(|l| l.strip_prefix("  - timestamp: "))
        .map(|v| v.parse().expect("integer timestamp"))
        .collect()
}

fn verbs(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.strip_prefix("    verb: "))
        .collect()
}

/// Requests per whole second.
fn buckets(ts: &[i64]) -> Vec<usize> {
    let last = *ts.last().expect("non-empty");
    let mut b = vec![0usize; (last / 1000) as usize + 1];
    for t in ts {
        b[(*t / 1000) as usize] += 1;
    }
    b
}

fn assert_sorted(ts: &[i64]) {
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "timestamps sorted");
    assert!(ts.iter().all(|t| *t >= 0));
}

#[test]
fn constant_rate_and_duration() {
    let text = generate(&GenConfig {
        requests: 1000,
        duration_s: Some(10.0),
        ..GenConfig::default()
    });
    let ts = timestamps(&text);
    assert_eq!(ts.len(), 1000);
    assert_sorted(&ts);
    assert_eq!(ts[0], 0);
    assert_eq!(*ts.last().expect("last"), 9990);
    assert!(buckets(&ts).iter().all(|&c| c == 100));

    let text = generate(&GenConfig {
        requests: 2500,
        rate: Some(250.0),
        ..GenConfig::default()
    });
    let b = buckets(&timestamps(&text));
    assert_eq!(b, vec![250; 10]);
}

#[test]
fn ramp_rises_linearly() {
    // Λ(t) = 100 t + 5 t² over 20 s: second b holds 105 + 10 b requests.
    let text = generate(&GenConfig {
        requests: 4000,
        shape: RateShape::Ramp {
            from: 100.0,
            to: 300.0,
        },
        ..GenConfig::default()
    });
    let ts = timestamps(&text);
    assert_eq!(ts.len(), 4000);
    assert_sorted(&ts);
    let b = buckets(&ts);
    assert_eq!(b.len(), 20);
    for (sec, &count) in b.iter().enumerate() {
        let want = 105 + 10 * sec as i64;
        assert!(
            (count as i64 - want).abs() <= 1,
            "second {sec}: {count} vs {want}"
        );
    }
    // A falling ramp mirrors it.
    let text = generate(&GenConfig {
        requests: 4000,
        shape: RateShape::Ramp {
            from: 300.0,
            to: 100.0,
        },
        ..GenConfig::default()
    });
    let b = buckets(&timestamps(&text));
    for (sec, &count) in b.iter().enumerate() {
        let want = 295 - 10 * sec as i64;
        assert!(
            (count as i64 - want).abs() <= 1,
            "second {sec}: {count} vs {want}"
        );
    }
}

#[test]
fn spike_holds_peak_rate_inside_the_window() {
    // 50/s for 5 s, 500/s for 2 s, then 50/s until 1750 requests (10 more seconds).
    let text = generate(&GenConfig {
        requests: 1750,
        shape: "spike:50:500:5:2".parse().expect("shape"),
        ..GenConfig::default()
    });
    let ts = timestamps(&text);
    assert_sorted(&ts);
    let b = buckets(&ts);
    assert_eq!(b.len(), 17);
    for (sec, &count) in b.iter().enumerate() {
        let want = if (5..7).contains(&sec) { 500 } else { 50 };
        assert!(count.abs_diff(want) <= 1, "second {sec}: {count} vs {want}");
    }
}

#[test]
fn all_at_zero() {
    let text = generate(&GenConfig {
        requests: 300,
        shape: RateShape::AllAtZero,
        ..GenConfig::default()
    });
    let ts = timestamps(&text);
    assert_eq!(ts.len(), 300);
    assert!(ts.iter().all(|t| *t == 0));
}

fn shares(text: &str) -> std::collections::HashMap<String, f64> {
    let v = verbs(text);
    let n = v.len() as f64;
    let mut m = std::collections::HashMap::new();
    for verb in v {
        *m.entry(verb.to_owned()).or_insert(0.0) += 1.0 / n;
    }
    m
}

#[test]
fn verb_mix_within_tolerance_for_large_n() {
    let mix = VerbMix::default_mix();
    let text = generate(&GenConfig {
        requests: 200_000,
        rate: Some(10_000.0),
        body_size: 0,
        seed: 3,
        mix: mix.clone(),
        ..GenConfig::default()
    });
    let got = shares(&text);
    let total = mix.total();
    for v in bench::profile_gen::GenVerb::ALL {
        let want = mix.weight(v) / total;
        let have = got.get(v.as_str()).copied().unwrap_or(0.0);
        assert!(
            (have - want).abs() < 0.01,
            "{v}: {have:.4} of requests, mix says {want:.4}"
        );
    }

    let custom: VerbMix = "GET=50,LIST=30,CREATE=10,DELETE=10".parse().expect("mix");
    let text = generate(&GenConfig {
        requests: 100_000,
        rate: Some(10_000.0),
        body_size: 0,
        mix: custom,
        ..GenConfig::default()
    });
    let got = shares(&text);
    for (verb, want) in [
        ("GET", 0.5),
        ("LIST", 0.3),
        ("CREATE", 0.1),
        ("DELETE", 0.1),
    ] {
        let have = got.get(verb).copied().unwrap_or(0.0);
        assert!((have - want).abs() < 0.01, "{verb}: {have:.4} vs {want}");
    }
    assert!(!got.contains_key("PATCH"));
}

#[test]
fn get_only_is_gets_after_the_objects_exist() {
    let text = generate(&GenConfig {
        requests: 50_000,
        objects: 200,
        mix: VerbMix::get_only(),
        ..GenConfig::default()
    });
    let v = verbs(&text);
    let creates = v.iter().filter(|x| **x == "CREATE").count();
    assert!(creates > 0 && creates <= 200, "{creates} creates");
    assert_eq!(v.iter().filter(|x| **x == "GET").count() + creates, 50_000);
    // Creates come first: after the warm-up nothing but GET.
    let last_create = v.iter().rposition(|x| *x == "CREATE").expect("a create");
    assert!(last_create < 2_000, "last CREATE at {last_create}");
}

#[test]
fn exact_watch_count_spread_evenly() {
    let text = generate(&GenConfig {
        requests: 10_000,
        watches: Some(40),
        ..GenConfig::default()
    });
    let v = verbs(&text);
    let at: Vec<usize> = (0..v.len()).filter(|&i| v[i] == "WATCH").collect();
    assert_eq!(at.len(), 40);
    for (k, i) in at.iter().enumerate() {
        assert!(i.abs_diff(250 * k + 249) <= 1, "watch {k} at {i}");
    }
}

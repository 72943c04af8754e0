//! `engine compare --format json|junit`: the verdicts in forms CI systems show natively
//! (JUnit XML: one test case per check, a failure per crossed one).

use serde_json::json;

use super::CompareOutcome;

/// The outcome as one JSON document: `pass`, every check, and what could not be checked.
pub fn to_json(o: &CompareOutcome) -> String {
    let checks: Vec<_> = o
        .checks
        .iter()
        .map(|c| json!({"name": c.name, "pass": !c.failed, "detail": c.detail}))
        .collect();
    let doc = json!({
        "pass": o.crossings.is_empty(),
        "checks": checks,
        "crossings": o.crossings,
        "unchecked": o.unchecked,
        "notes": o.notes,
    });
    let mut text = serde_json::to_string_pretty(&doc).expect("a JSON value serialises");
    text.push('\n');
    text
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// The outcome as a JUnit XML test suite; unchecked figures are skipped test cases.
pub fn to_junit(o: &CompareOutcome) -> String {
    let failures = o.checks.iter().filter(|c| c.failed).count();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str(&format!(
        "<testsuites name=\"kreplay compare\" tests=\"{}\" failures=\"{failures}\">\n",
        o.checks.len() + o.unchecked.len()
    ));
    x.push_str(&format!(
        "  <testsuite name=\"engine compare\" tests=\"{}\" failures=\"{failures}\" skipped=\"{}\">\n",
        o.checks.len() + o.unchecked.len(),
        o.unchecked.len()
    ));
    for c in &o.checks {
        let name = xml_escape(&c.name);
        let detail = xml_escape(&c.detail);
        if c.failed {
            x.push_str(&format!(
                "    <testcase classname=\"kreplay.compare\" name=\"{name}\">\n      <failure message=\"{detail}\">{detail}</failure>\n    </testcase>\n"
            ));
        } else {
            x.push_str(&format!(
                "    <testcase classname=\"kreplay.compare\" name=\"{name}\">\n      <system-out>{detail}</system-out>\n    </testcase>\n"
            ));
        }
    }
    for u in &o.unchecked {
        let u = xml_escape(u);
        x.push_str(&format!(
            "    <testcase classname=\"kreplay.compare\" name=\"{u}\">\n      <skipped message=\"{u}\"/>\n    </testcase>\n"
        ));
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::CheckResult;

    fn outcome() -> CompareOutcome {
        CompareOutcome {
            table: String::new(),
            crossings: vec!["p99(GET)>200ms: 250.000 ms".into()],
            unchecked: vec!["send lag: kperf report".into()],
            notes: vec![],
            checks: vec![
                CheckResult {
                    name: "p99(GET)>200ms".into(),
                    failed: true,
                    detail: "250.000 ms".into(),
                },
                CheckResult {
                    name: "error rate of <all>".into(),
                    failed: false,
                    detail: "0 & fine".into(),
                },
            ],
        }
    }

    #[test]
    fn junit_counts_and_escapes() {
        let x = to_junit(&outcome());
        assert!(
            x.contains("tests=\"3\" failures=\"1\" skipped=\"1\""),
            "{x}"
        );
        assert!(x.contains("name=\"p99(GET)&gt;200ms\""), "{x}");
        assert!(x.contains("error rate of &lt;all&gt;"), "{x}");
        assert!(x.contains("0 &amp; fine"), "{x}");
        assert_eq!(x.matches("<failure ").count(), 1);
    }

    #[test]
    fn json_says_pass_or_fail() {
        let v: serde_json::Value = serde_json::from_str(&to_json(&outcome())).unwrap();
        assert_eq!(v["pass"], false);
        assert_eq!(v["checks"][0]["pass"], false);
        assert_eq!(v["checks"][1]["pass"], true);
    }
}

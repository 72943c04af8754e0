//! Medians, the best peer of a figure and kreplay's ratio to it.

use super::record::{Better, Figure, KREPLAY};

/// The median of `values` (mean of the middle two for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.to_vec();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// One tool's median of a figure.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolValue {
    /// The tool.
    pub tool: String,
    /// Median over repeats.
    pub median: f64,
    /// The command that produced it.
    pub command: String,
}

/// A figure across tools: kreplay's value, the best peer's, and the ratio.
#[derive(Debug, Clone, PartialEq)]
pub struct FigureSummary {
    /// Figure name.
    pub figure: String,
    /// Unit.
    pub unit: String,
    /// Which way is better.
    pub better: Better,
    /// kreplay's median, if kreplay measured it.
    pub kreplay: Option<ToolValue>,
    /// The best peer by `better` (ties: the first recorded).
    pub best_peer: Option<ToolValue>,
    /// Every peer value, in record order (the best one included).
    pub peers: Vec<ToolValue>,
    /// kreplay / best peer, when both exist and the peer's value is not 0.
    pub ratio: Option<f64>,
    /// The value every kreplay repeat must have, if any.
    pub expect: Option<f64>,
    /// kreplay's repeat values that differ from `expect`.
    pub unexpected: Vec<f64>,
}

impl FigureSummary {
    /// True when an expected value is set and a kreplay repeat differs from it (or kreplay has
    /// no value at all).
    pub fn violates_expectation(&self) -> bool {
        self.expect.is_some() && (self.kreplay.is_none() || !self.unexpected.is_empty())
    }
}

/// The best of several peer values: highest or lowest median by `better`; the first on ties.
pub fn best_peer(peers: &[ToolValue], better: Better) -> Option<&ToolValue> {
    let mut best: Option<&ToolValue> = None;
    for p in peers {
        best = match best {
            None => Some(p),
            Some(b) => {
                let wins = match better {
                    Better::Higher => p.median > b.median,
                    Better::Lower => p.median < b.median,
                };
                Some(if wins { p } else { b })
            }
        };
    }
    best
}

/// kreplay / peer; `None` when the peer's value is 0 (no meaningful ratio).
pub fn ratio(kreplay: f64, peer: f64) -> Option<f64> {
    (peer != 0.0).then(|| kreplay / peer)
}

/// Summarises the records of one figure (same scenario and figure name), in record order.
/// Several records of one tool (e.g. two settings of hey) each count as a candidate peer.
pub fn summarize(records: &[&Figure]) -> Option<FigureSummary> {
    let first = records.first()?;
    let mut kreplay = None;
    let mut peers = Vec::new();
    let mut expect = None;
    let mut unexpected = Vec::new();
    for f in records {
        let Some(m) = median(&f.values) else { continue };
        let tv = ToolValue {
            tool: f.tool.clone(),
            median: m,
            command: f.command.clone(),
        };
        if f.tool == KREPLAY {
            if kreplay.is_none() {
                expect = f.expect;
                if let Some(e) = f.expect {
                    unexpected.extend(f.values.iter().copied().filter(|v| *v != e));
                }
                kreplay = Some(tv);
            }
        } else {
            peers.push(tv);
        }
    }
    let best = best_peer(&peers, first.better).cloned();
    let ratio = match (&kreplay, &best) {
        (Some(k), Some(p)) => ratio(k.median, p.median),
        _ => None,
    };
    Some(FigureSummary {
        figure: first.figure.clone(),
        unit: first.unit.clone(),
        better: first.better,
        kreplay,
        best_peer: best,
        peers,
        ratio,
        expect,
        unexpected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fig(tool: &str, better: Better, values: &[f64]) -> Figure {
        Figure {
            scenario: "s".into(),
            scenario_title: "S".into(),
            figure: "f".into(),
            unit: "u".into(),
            better,
            tool: tool.into(),
            command: format!("{tool} --flag"),
            values: values.to_vec(),
            expect: None,
            plot: None,
        }
    }

    #[test]
    fn median_of_odd_even_and_empty_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn best_peer_follows_direction() {
        let higher = [
            fig("kreplay", Better::Higher, &[10.0]),
            fig("wrk", Better::Higher, &[20.0]),
            fig("hey", Better::Higher, &[5.0]),
        ];
        let s = summarize(&higher.iter().collect::<Vec<_>>()).unwrap();
        assert_eq!(s.best_peer.as_ref().unwrap().tool, "wrk");
        assert_eq!(s.ratio, Some(0.5));

        let lower = [
            fig("kreplay", Better::Lower, &[10.0]),
            fig("wrk", Better::Lower, &[20.0]),
            fig("hey", Better::Lower, &[5.0]),
        ];
        let s = summarize(&lower.iter().collect::<Vec<_>>()).unwrap();
        assert_eq!(s.best_peer.as_ref().unwrap().tool, "hey");
        assert_eq!(s.ratio, Some(2.0));
    }

    #[test]
    fn missing_peer_or_zero_peer_gives_no_ratio() {
        let alone = [fig("kreplay", Better::Higher, &[1.0, 3.0])];
        let s = summarize(&alone.iter().collect::<Vec<_>>()).unwrap();
        assert!(s.best_peer.is_none());
        assert_eq!(s.ratio, None);
        assert_eq!(s.kreplay.unwrap().median, 2.0);

        let zero = [
            fig("kreplay", Better::Lower, &[1.0]),
            fig("oha", Better::Lower, &[0.0]),
        ];
        let s = summarize(&zero.iter().collect::<Vec<_>>()).unwrap();
        assert_eq!(s.best_peer.unwrap().tool, "oha");
        assert_eq!(s.ratio, None);
    }

    #[test]
    fn peer_without_kreplay_has_no_ratio() {
        let only_peer = [fig("wrk", Better::Higher, &[9.0])];
        let s = summarize(&only_peer.iter().collect::<Vec<_>>()).unwrap();
        assert!(s.kreplay.is_none());
        assert_eq!(s.best_peer.unwrap().median, 9.0);
        assert_eq!(s.ratio, None);
    }

    #[test]
    fn expectation_is_checked_on_every_kreplay_repeat() {
        let mut f = fig("kreplay", Better::Lower, &[0.0, 0.0, 0.0]);
        f.expect = Some(0.0);
        let s = summarize(&[&f]).unwrap();
        assert!(!s.violates_expectation());
        // The median is 0, but one repeat saw 3 violations: flagged.
        f.values = vec![0.0, 0.0, 3.0];
        let s = summarize(&[&f]).unwrap();
        assert!(s.violates_expectation());
        assert_eq!(s.unexpected, vec![3.0]);
    }
}

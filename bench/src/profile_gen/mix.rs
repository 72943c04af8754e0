//! Verbs and the weighted verb mix the generator draws from.

use std::fmt;
use std::str::FromStr;

use super::GenError;

/// A kperf profile verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GenVerb {
    /// `GET` one object.
    Get,
    /// `LIST` a collection.
    List,
    /// `WATCH` a collection.
    Watch,
    /// `CREATE` an object.
    Create,
    /// `PATCH` an object (merge patch).
    Patch,
    /// `APPLY` an object (server-side apply).
    Apply,
    /// `DELETE` an object.
    Delete,
    /// `DELETECOLLECTION` by label selector.
    DeleteCollection,
}

impl GenVerb {
    /// Every verb, in [`GenVerb::index`] order.
    pub const ALL: [GenVerb; 8] = [
        GenVerb::Get,
        GenVerb::List,
        GenVerb::Watch,
        GenVerb::Create,
        GenVerb::Patch,
        GenVerb::Apply,
        GenVerb::Delete,
        GenVerb::DeleteCollection,
    ];

    /// The profile spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            GenVerb::Get => "GET",
            GenVerb::List => "LIST",
            GenVerb::Watch => "WATCH",
            GenVerb::Create => "CREATE",
            GenVerb::Patch => "PATCH",
            GenVerb::Apply => "APPLY",
            GenVerb::Delete => "DELETE",
            GenVerb::DeleteCollection => "DELETECOLLECTION",
        }
    }

    /// Position in [`GenVerb::ALL`] (and in [`super::GenSummary::verb_counts`]).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the verb acts on one existing object.
    pub(crate) fn needs_live_object(self) -> bool {
        matches!(
            self,
            GenVerb::Get | GenVerb::Patch | GenVerb::Apply | GenVerb::Delete
        )
    }
}

impl fmt::Display for GenVerb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Relative verb weights (any non-negative numbers; only ratios matter).
#[derive(Debug, Clone, PartialEq)]
pub struct VerbMix {
    weights: [f64; 8],
}

impl VerbMix {
    /// Close to a busy cluster: mostly reads, a steady churn of writes whose creates and
    /// deletes balance so the object set neither fills up nor drains.
    pub fn default_mix() -> VerbMix {
        VerbMix::from_pairs(&[
            (GenVerb::Get, 45.0),
            (GenVerb::List, 18.0),
            (GenVerb::Watch, 2.0),
            (GenVerb::Create, 9.0),
            (GenVerb::Patch, 14.0),
            (GenVerb::Apply, 3.0),
            (GenVerb::Delete, 9.0),
        ])
    }

    /// Reads dominate.
    pub fn read_heavy() -> VerbMix {
        VerbMix::from_pairs(&[
            (GenVerb::Get, 62.0),
            (GenVerb::List, 25.0),
            (GenVerb::Watch, 2.0),
            (GenVerb::Create, 3.0),
            (GenVerb::Patch, 4.0),
            (GenVerb::Apply, 1.0),
            (GenVerb::Delete, 3.0),
        ])
    }

    /// Writes dominate.
    pub fn write_heavy() -> VerbMix {
        VerbMix::from_pairs(&[
            (GenVerb::Get, 15.0),
            (GenVerb::List, 6.0),
            (GenVerb::Watch, 1.0),
            (GenVerb::Create, 24.0),
            (GenVerb::Patch, 24.0),
            (GenVerb::Apply, 6.0),
            (GenVerb::Delete, 24.0),
        ])
    }

    /// Only GET.
    pub fn get_only() -> VerbMix {
        VerbMix::from_pairs(&[(GenVerb::Get, 1.0)])
    }

    fn from_pairs(pairs: &[(GenVerb, f64)]) -> VerbMix {
        let mut weights = [0.0; 8];
        for &(v, w) in pairs {
            weights[v.index()] = w;
        }
        VerbMix { weights }
    }

    /// Weight of one verb.
    pub fn weight(&self, v: GenVerb) -> f64 {
        self.weights[v.index()]
    }

    /// The same mix with one verb's weight replaced.
    pub fn with_weight(&self, v: GenVerb, w: f64) -> VerbMix {
        let mut m = self.clone();
        m.weights[v.index()] = w;
        m
    }

    /// Sum of the weights.
    pub fn total(&self) -> f64 {
        self.weights.iter().sum()
    }

    /// Picks a verb for `u` uniform in [0, 1), among the verbs `allowed` accepts; `None`
    /// when no allowed verb has weight.
    pub(crate) fn pick(&self, u: f64, allowed: impl Fn(GenVerb) -> bool) -> Option<GenVerb> {
        let total: f64 = GenVerb::ALL
            .iter()
            .filter(|v| allowed(**v))
            .map(|v| self.weights[v.index()])
            .sum();
        if total <= 0.0 {
            return None;
        }
        let mut target = u * total;
        let mut last = None;
        for v in GenVerb::ALL {
            let w = self.weights[v.index()];
            if w <= 0.0 || !allowed(v) {
                continue;
            }
            last = Some(v);
            if target < w {
                return Some(v);
            }
            target -= w;
        }
        last
    }
}

impl Default for VerbMix {
    fn default() -> Self {
        VerbMix::default_mix()
    }
}

impl FromStr for VerbMix {
    type Err = GenError;

    /// `default`, `read-heavy`, `write-heavy`, `get-only`, or `VERB=W,...` (e.g.
    /// `GET=80,LIST=15,WATCH=5`); verbs not named get weight 0.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "default" => return Ok(VerbMix::default_mix()),
            "read-heavy" => return Ok(VerbMix::read_heavy()),
            "write-heavy" => return Ok(VerbMix::write_heavy()),
            "get-only" => return Ok(VerbMix::get_only()),
            _ => {}
        }
        let mut weights = [0.0; 8];
        for part in s.split(',') {
            let Some((name, w)) = part.split_once('=') else {
                return Err(GenError::invalid(
                    "--mix",
                    format!("`{part}`: expected VERB=WEIGHT, or one of default, read-heavy, write-heavy, get-only"),
                ));
            };
            let name = name.trim();
            let verb = GenVerb::ALL
                .into_iter()
                .find(|v| v.as_str() == name)
                .ok_or_else(|| {
                    GenError::invalid(
                        "--mix",
                        format!("unknown verb `{name}`; valid: GET LIST WATCH CREATE PATCH APPLY DELETE DELETECOLLECTION"),
                    )
                })?;
            let weight = match w.trim().parse::<f64>() {
                Ok(x) if x.is_finite() && x >= 0.0 => x,
                _ => {
                    return Err(GenError::invalid(
                        "--mix",
                        format!("weight of {name} must be a non-negative number, got `{w}`"),
                    ))
                }
            };
            weights[verb.index()] = weight;
        }
        let mix = VerbMix { weights };
        if mix.total() <= 0.0 {
            return Err(GenError::invalid("--mix", "all weights are 0".to_owned()));
        }
        Ok(mix)
    }
}

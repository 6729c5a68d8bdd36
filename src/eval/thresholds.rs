//! Quality gates: a committed TOML file of per-metric bounds that an eval run must meet.
//!
//! ```toml
//! [min]
//! hit_at_5 = 1.0
//! [max]
//! invalid_citations_shown = 0
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ThresholdError {
    #[error("thresholds file {path}: {why}")]
    Parse { path: PathBuf, why: String },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    #[serde(default)]
    pub min: BTreeMap<String, f64>,
    #[serde(default)]
    pub max: BTreeMap<String, f64>,
}

/// A bound that a run missed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Miss {
    pub metric: String,
    /// `None` when the run did not measure the metric (which is itself a miss).
    pub value: Option<f64>,
    pub bound: String,
}

impl std::fmt::Display for Miss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.value {
            Some(v) => write!(f, "{} = {v:.4}, required {}", self.metric, self.bound),
            None => write!(
                f,
                "{} was not measured, required {}",
                self.metric, self.bound
            ),
        }
    }
}

impl Thresholds {
    pub fn load(path: &Path) -> Result<Self, ThresholdError> {
        let text = std::fs::read_to_string(path).map_err(|e| ThresholdError::Parse {
            path: path.to_path_buf(),
            why: e.to_string(),
        })?;
        let t: Thresholds = toml::from_str(&text).map_err(|e| ThresholdError::Parse {
            path: path.to_path_buf(),
            why: e.to_string(),
        })?;
        let known = |m: &str| super::catalog::metric(m).is_some();
        if let Some(bad) = t.min.keys().chain(t.max.keys()).find(|m| !known(m)) {
            let names: Vec<&str> = super::catalog::METRICS.iter().map(|m| m.name).collect();
            return Err(ThresholdError::Parse {
                path: path.to_path_buf(),
                why: format!("unknown metric `{bad}` (known: {})", names.join(", ")),
            });
        }
        if t.min.is_empty() && t.max.is_empty() {
            return Err(ThresholdError::Parse {
                path: path.to_path_buf(),
                why: "no [min] or [max] bounds".into(),
            });
        }
        Ok(t)
    }

    /// Checks metric values looked up by name; an unknown metric name is a miss, so a typo in the
    /// file cannot silently disable a gate.
    pub fn check(&self, lookup: impl Fn(&str) -> Option<Option<f64>>) -> Vec<Miss> {
        let mut misses = Vec::new();
        for (metric, &bound) in &self.min {
            let value = lookup(metric).flatten();
            if value.is_none_or(|v| v < bound) {
                misses.push(Miss {
                    metric: metric.clone(),
                    value,
                    bound: format!(">= {bound}"),
                });
            }
        }
        for (metric, &bound) in &self.max {
            let value = lookup(metric).flatten();
            if value.is_none_or(|v| v > bound) {
                misses.push(Miss {
                    metric: metric.clone(),
                    value,
                    bound: format!("<= {bound}"),
                });
            }
        }
        misses
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thresholds() -> Thresholds {
        toml::from_str("[min]\nhit_at_5 = 1.0\nf1 = 0.5\n[max]\ninvalid = 0\n").unwrap()
    }

    #[test]
    fn misses_name_the_metric_and_bound() {
        let t = thresholds();
        let misses = t.check(|m| match m {
            "hit_at_5" => Some(Some(0.9)),
            "f1" => Some(Some(0.7)),
            "invalid" => Some(Some(1.0)),
            _ => None,
        });
        assert_eq!(misses.len(), 2);
        assert_eq!(misses[0].metric, "hit_at_5");
        assert_eq!(misses[0].to_string(), "hit_at_5 = 0.9000, required >= 1");
        assert_eq!(misses[1].metric, "invalid");
    }

    #[test]
    fn unmeasured_or_unknown_metrics_are_misses() {
        let t = thresholds();
        let misses = t.check(|m| (m == "f1").then_some(None));
        assert_eq!(misses.len(), 3);
        assert!(misses.iter().all(|m| m.value.is_none()));
    }

    #[test]
    fn all_met_is_empty() {
        let misses = thresholds().check(|m| Some(Some(if m == "invalid" { 0.0 } else { 1.0 })));
        assert!(misses.is_empty());
    }
}

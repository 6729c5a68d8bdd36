//! The one list of summary metrics: each named once with its label, which way is better, how
//! its value is read from a [`Summary`], how it prints, and whether the leaderboard and its
//! chart show it. The terminal table, the Markdown report, thresholds, the leaderboard and its
//! chart all read this list, so a new metric is one entry here (and its field in `Summary`).

use super::runner::Summary;

/// Which way a metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

/// How a metric's value prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A 0-1 ratio, 3 decimals.
    Ratio,
    /// A time or a rate, 1 decimal.
    Measure,
    /// A whole count.
    Count,
}

pub struct Metric {
    /// The name reports, thresholds files and `--json` use.
    pub name: &'static str,
    /// The column or row label of tables.
    pub label: &'static str,
    pub better: Better,
    pub format: Format,
    pub value: fn(&Summary) -> Option<f64>,
    /// Shown as a column of the `compare` leaderboard.
    pub leaderboard: bool,
    /// Drawn as a bar of the leaderboard chart (a 0-1 quality), with its legend label and colour.
    pub chart: Option<(&'static str, &'static str)>,
}

impl Metric {
    pub fn value(&self, s: &Summary) -> Option<f64> {
        (self.value)(s)
    }

    /// The value as tables print it; `-` when no question defines it.
    pub fn format(&self, v: Option<f64>) -> String {
        match (v, self.format) {
            (None, _) => "-".into(),
            (Some(v), Format::Ratio) => format!("{v:.3}"),
            (Some(v), Format::Measure) => format!("{v:.1}"),
            (Some(v), Format::Count) => format!("{v:.0}"),
        }
    }
}

/// Every summary metric, in the order tables show them.
pub const METRICS: &[Metric] = &[
    ratio("hit_at_1", "hit@1", |s| s.hit_at_1, false, None),
    ratio("hit_at_5", "hit@5", |s| s.hit_at_5, true, None),
    ratio("recall_at_5", "recall@5", |s| s.recall_at_5, false, None),
    ratio("mrr_at_10", "MRR@10", |s| s.mrr_at_10, true, None),
    ratio("ndcg_at_10", "nDCG@10", |s| s.ndcg_at_10, false, None),
    ratio("exact_match", "EM", |s| s.exact_match, false, None),
    ratio("f1", "F1", |s| s.f1, true, Some(("F1", "#4e79a7"))),
    ratio(
        "containment",
        "contains",
        |s| s.containment,
        true,
        Some(("contains", "#f28e2b")),
    ),
    ratio(
        "citation_validity",
        "cite valid",
        |s| s.citation_validity,
        false,
        None,
    ),
    ratio(
        "citation_precision",
        "cite prec",
        |s| s.citation_precision,
        true,
        Some(("cite prec", "#59a14f")),
    ),
    ratio(
        "citation_recall",
        "cite recall",
        |s| s.citation_recall,
        false,
        None,
    ),
    Metric {
        name: "invalid_citations_shown",
        label: "invalid shown",
        better: Better::Lower,
        format: Format::Count,
        value: |s| Some(s.invalid_citations_shown as f64),
        leaderboard: false,
        chart: None,
    },
    ratio(
        "unanswerable_declined",
        "unans. declined",
        |s| s.unanswerable_declined,
        true,
        Some(("unans. declined", "#e15759")),
    ),
    Metric {
        better: Better::Lower,
        ..ratio(
            "answerable_declined",
            "ans. declined",
            |s| s.answerable_declined,
            true,
            None,
        )
    },
    measure(
        "latency_p50_ms",
        "p50 ms",
        Better::Lower,
        |s| s.latency_p50_ms,
        true,
    ),
    measure(
        "latency_p95_ms",
        "p95 ms",
        Better::Lower,
        |s| s.latency_p95_ms,
        false,
    ),
    measure(
        "prefill_tok_s",
        "prefill tok/s",
        Better::Higher,
        |s| s.prefill_tok_s,
        false,
    ),
    measure(
        "decode_tok_s",
        "decode tok/s",
        Better::Higher,
        |s| s.decode_tok_s,
        true,
    ),
];

const fn ratio(
    name: &'static str,
    label: &'static str,
    value: fn(&Summary) -> Option<f64>,
    leaderboard: bool,
    chart: Option<(&'static str, &'static str)>,
) -> Metric {
    Metric {
        name,
        label,
        better: Better::Higher,
        format: Format::Ratio,
        value,
        leaderboard,
        chart,
    }
}

const fn measure(
    name: &'static str,
    label: &'static str,
    better: Better,
    value: fn(&Summary) -> Option<f64>,
    leaderboard: bool,
) -> Metric {
    Metric {
        name,
        label,
        better,
        format: Format::Measure,
        value,
        leaderboard,
        chart: None,
    }
}

/// The metric of this name.
pub fn metric(name: &str) -> Option<&'static Metric> {
    METRICS.iter().find(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_one_reads_its_own_field() {
        let mut names: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), METRICS.len());
        // Each ratio field set to a distinct value is read back by its own metric only.
        let s = Summary {
            hit_at_1: Some(0.01),
            hit_at_5: Some(0.02),
            recall_at_5: Some(0.03),
            mrr_at_10: Some(0.04),
            ndcg_at_10: Some(0.05),
            exact_match: Some(0.06),
            f1: Some(0.07),
            containment: Some(0.08),
            citation_validity: Some(0.09),
            citation_precision: Some(0.10),
            citation_recall: Some(0.11),
            invalid_citations_shown: 12,
            unanswerable_declined: Some(0.13),
            answerable_declined: Some(0.14),
            latency_p50_ms: Some(15.0),
            latency_p95_ms: Some(16.0),
            prefill_tok_s: Some(17.0),
            decode_tok_s: Some(18.0),
            ..Summary::default()
        };
        let values: Vec<f64> = METRICS.iter().map(|m| m.value(&s).unwrap()).collect();
        let mut sorted = values.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), values.len(), "{values:?}");
        assert_eq!(metric("f1").unwrap().format(Some(0.5)), "0.500");
        assert_eq!(
            metric("latency_p50_ms").unwrap().format(Some(12.34)),
            "12.3"
        );
        assert_eq!(
            metric("invalid_citations_shown").unwrap().format(Some(2.0)),
            "2"
        );
    }
}

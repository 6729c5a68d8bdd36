//! Proves `eval::metrics::{exact_match, f1}` reproduce the official SQuAD v1.1 script: scores
//! five leaderboard systems' predictions on the 300 squad-dev questions and compares them with
//! the figures `evaluate-v1.1.py` printed (evals/squad-dev/metric-check/expected_scores.json).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::PathBuf;

use docqa::eval::metrics::{exact_match, f1};
use docqa::eval::qa::{load_qa, resolve_evidence};
use serde::Deserialize;

#[derive(Deserialize)]
struct Prediction {
    system: String,
    id: String,
    prediction: String,
}

#[derive(Deserialize)]
struct Expected {
    exact_match: f64,
    f1: f64,
    total: usize,
}

fn squad_dev() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("evals/squad-dev")
}

/// Rounds to 4 decimals the way the expected file was written.
fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

#[test]
fn em_and_f1_match_the_official_squad_script() {
    let dir = squad_dev();
    let questions = load_qa(&dir.join("qa.jsonl")).expect("load squad-dev qa.jsonl");
    assert_eq!(questions.len(), 300);

    let expected_path = dir.join("metric-check/expected_scores.json");
    let expected: BTreeMap<String, Expected> =
        serde_json::from_str(&fs::read_to_string(&expected_path).unwrap())
            .expect("parse expected_scores.json");
    assert!(!expected.is_empty());

    let predictions_path = dir.join("metric-check/predictions.jsonl");
    let mut by_system: BTreeMap<String, HashMap<String, String>> = BTreeMap::new();
    for (i, line) in fs::read_to_string(&predictions_path)
        .unwrap()
        .lines()
        .enumerate()
    {
        if line.trim().is_empty() {
            continue;
        }
        let p: Prediction = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("predictions.jsonl:{}: {e}", i + 1));
        let old = by_system
            .entry(p.system.clone())
            .or_default()
            .insert(p.id.clone(), p.prediction);
        assert!(
            old.is_none(),
            "duplicate prediction {} / {}",
            p.system,
            p.id
        );
    }
    assert_eq!(
        by_system.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "systems in predictions.jsonl and expected_scores.json differ"
    );

    let mut mismatches = Vec::new();
    for (system, want) in &expected {
        let preds = &by_system[system];
        assert_eq!(want.total, questions.len(), "{system}: total");
        assert_eq!(preds.len(), questions.len(), "{system}: prediction count");
        let (mut em_sum, mut f1_sum) = (0.0, 0.0);
        for q in &questions {
            let pred = preds
                .get(&q.id)
                .unwrap_or_else(|| panic!("{system}: no prediction for {}", q.id));
            em_sum += exact_match(pred, &q.answers);
            f1_sum += f1(pred, &q.answers);
        }
        let n = questions.len() as f64;
        let (em, f1) = (100.0 * em_sum / n, 100.0 * f1_sum / n);
        eprintln!(
            "{system}: EM {em:.4} (official {:.4}), F1 {f1:.4} (official {:.4})",
            want.exact_match, want.f1
        );
        for (metric, got, official) in [("EM", em, want.exact_match), ("F1", f1, want.f1)] {
            if (round4(got) - official).abs() >= 5e-5 {
                mismatches.push(format!(
                    "{system} {metric}: got {got:.6}, official {official}"
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "scores differ from the official script:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn squad_dev_evidence_resolves_to_byte_ranges() {
    let dir = squad_dev();
    let questions = load_qa(&dir.join("qa.jsonl")).expect("load squad-dev qa.jsonl");
    for q in &questions {
        let spans = resolve_evidence(q, &dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(spans.len(), q.evidence.len(), "{}", q.id);
        assert!(spans.iter().all(|(_, r)| r.start < r.end), "{}", q.id);
    }
}

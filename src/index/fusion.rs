//! Fusion: merges ranked lists from different retrievers (BM25, vector search) into one ranking.
//! Called by the retriever; knows nothing about where the lists came from.
//!
//! Two methods. [`convex_combination`] (the default) min-max normalises each list's scores and
//! adds them with weights, so how far ahead a top hit is still counts; on squad-dev it beat BM25
//! alone where RRF did not (docs/benchmarks.md, "Retrieval"). [`reciprocal_rank_fusion`] uses
//! ranks only, so BM25 scores (unbounded) and cosine similarities (-1..1) need no calibration
//! against each other (Cormack, Clarke & Büttcher, SIGIR 2009).

use std::collections::{HashMap, HashSet};

/// The `k` constant of the original paper: it damps the advantage of the very top ranks.
pub const DEFAULT_K_RRF: f32 = 60.0;

/// Fuses ranked lists of `(item index, score)`, each given best first and with a weight, into
/// `(item index, fused score)` sorted by fused score, best first; ties go to the lower index.
///
/// An item at 1-based rank `r` of a list with weight `w` contributes `w / (k_rrf + r)`; its
/// fused score is the sum over the lists it appears in. Only list order matters, never the
/// scores in it. An item repeated within one list counts at its best rank only. `k_rrf` should
/// be positive ([`DEFAULT_K_RRF`]); a negative or NaN value is treated as 0.
pub fn reciprocal_rank_fusion(lists: &[(&[(usize, f32)], f32)], k_rrf: f32) -> Vec<(usize, f32)> {
    let k_rrf = if k_rrf > 0.0 { k_rrf } else { 0.0 };
    // Summed in f64 and in list order, so the result does not depend on hashing order.
    let mut fused: HashMap<usize, f64> = HashMap::new();
    for &(list, weight) in lists {
        let mut seen = HashSet::with_capacity(list.len());
        for (position, &(item, _)) in list.iter().enumerate() {
            if !seen.insert(item) {
                continue;
            }
            let rank = position as f64 + 1.0;
            *fused.entry(item).or_insert(0.0) += f64::from(weight) / (f64::from(k_rrf) + rank);
        }
    }
    let mut ranked: Vec<(usize, f64)> = fused.into_iter().collect();
    ranked.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked
        .into_iter()
        .map(|(item, score)| (item, score as f32))
        .collect()
}

/// Fuses ranked lists of `(item index, score)` by a weighted sum of min-max normalised scores:
/// in each list the best score maps to 1 and the worst to 0 (all to 1 when they are equal), and
/// an item missing from a list gets 0 from it. Weights are used as given (they need not sum to
/// 1). Sorted by fused score, best first; ties go to the lower index. An item repeated within one
/// list counts at its first (best) position only.
pub fn convex_combination(lists: &[(&[(usize, f32)], f32)]) -> Vec<(usize, f32)> {
    let mut fused: HashMap<usize, f64> = HashMap::new();
    for &(list, weight) in lists {
        let (lo, hi) = list.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &(_, s)| {
            (lo.min(s), hi.max(s))
        });
        let span = f64::from(hi) - f64::from(lo);
        let mut seen = HashSet::with_capacity(list.len());
        for &(item, score) in list {
            if !seen.insert(item) {
                continue;
            }
            let norm = if span > 1e-9 {
                (f64::from(score) - f64::from(lo)) / span
            } else {
                1.0
            };
            *fused.entry(item).or_insert(0.0) += f64::from(weight) * norm;
        }
    }
    let mut ranked: Vec<(usize, f64)> = fused.into_iter().collect();
    ranked.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked
        .into_iter()
        .map(|(item, score)| (item, score as f32))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(fused: &[(usize, f32)]) -> Vec<usize> {
        fused.iter().map(|&(i, _)| i).collect()
    }

    #[test]
    fn items_ranked_well_by_both_lists_win() {
        let bm25 = [(1, 12.0), (2, 9.0), (3, 1.0)];
        let dense = [(2, 0.9), (4, 0.8), (1, 0.1)];
        let fused = reciprocal_rank_fusion(&[(&bm25, 1.0), (&dense, 1.0)], DEFAULT_K_RRF);
        assert_eq!(ids(&fused), [2, 1, 4, 3]);
        let expected_2 = 1.0 / 62.0 + 1.0 / 61.0;
        assert!((fused[0].1 - expected_2).abs() < 1e-6);
    }

    #[test]
    fn only_ranks_matter_not_scores() {
        let a = [(7, 1000.0), (8, 0.001)];
        let b = [(7, 0.5), (8, 0.4)];
        assert_eq!(
            reciprocal_rank_fusion(&[(&a, 1.0)], 60.0),
            reciprocal_rank_fusion(&[(&b, 1.0)], 60.0)
        );
    }

    #[test]
    fn weights_shift_the_balance() {
        let bm25 = [(1, 5.0), (2, 4.0)];
        let dense = [(2, 0.9), (1, 0.8)];
        let fused = reciprocal_rank_fusion(&[(&bm25, 1.0), (&dense, 2.0)], 60.0);
        assert_eq!(ids(&fused), [2, 1]);
        let fused = reciprocal_rank_fusion(&[(&bm25, 3.0), (&dense, 1.0)], 60.0);
        assert_eq!(ids(&fused), [1, 2]);
    }

    #[test]
    fn ties_break_by_index_and_duplicates_count_once() {
        let a = [(5, 1.0), (3, 0.5)];
        let b = [(3, 1.0), (5, 0.5)];
        let fused = reciprocal_rank_fusion(&[(&a, 1.0), (&b, 1.0)], 60.0);
        assert_eq!(ids(&fused), [3, 5]);
        assert_eq!(fused[0].1, fused[1].1);

        let repeated = [(9, 1.0), (9, 0.9), (4, 0.8)];
        let fused = reciprocal_rank_fusion(&[(&repeated, 1.0)], 60.0);
        assert_eq!(ids(&fused), [9, 4]);
        assert!((fused[0].1 - 1.0 / 61.0).abs() < 1e-7);
        assert!((fused[1].1 - 1.0 / 63.0).abs() < 1e-7);
    }

    #[test]
    fn convex_combination_keeps_score_margins() {
        // BM25 is sure of item 1; dense barely prefers item 2: the margin decides.
        let bm25 = [(1, 20.0), (2, 2.0), (3, 1.0)];
        let dense = [(2, 0.80), (1, 0.79), (3, 0.10)];
        let fused = convex_combination(&[(&dense, 0.5), (&bm25, 0.5)]);
        assert_eq!(ids(&fused), [1, 2, 3]);
        assert!((fused[0].1 - (0.5 * (0.69 / 0.70) + 0.5)).abs() < 1e-4);
        // Ranks alone tie items 1 and 2 and fall back to the index.
        let rrf = reciprocal_rank_fusion(&[(&dense, 1.0), (&bm25, 1.0)], 60.0);
        assert_eq!(rrf[0].1, rrf[1].1);
    }

    #[test]
    fn convex_combination_handles_missing_items_equal_scores_and_weights() {
        let a = [(4, 3.0), (5, 3.0)];
        let b = [(6, 0.9), (4, 0.1)];
        let fused = convex_combination(&[(&a, 1.0), (&b, 1.0)]);
        // 4: 1 + 0; 5: 1 + nothing; 6: 0 + 1. Ties by index.
        assert_eq!(ids(&fused), [4, 5, 6]);
        let fused = convex_combination(&[(&a, 0.1), (&b, 1.0)]);
        assert_eq!(ids(&fused)[0], 6);
        assert!(convex_combination(&[]).is_empty());
    }

    #[test]
    fn empty_input_gives_empty_output() {
        assert!(reciprocal_rank_fusion(&[], 60.0).is_empty());
        assert!(reciprocal_rank_fusion(&[(&[], 1.0)], 60.0).is_empty());
    }
}

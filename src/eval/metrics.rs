//! Pure metric functions for the eval runner and reports: SQuAD answer scores, retrieval,
//! citations, abstention and latency. No I/O and no state; every ratio that can be undefined
//! (empty denominator) returns `None` rather than a silent zero, and [`mean`] skips those.

use std::collections::HashMap;
use std::ops::Range;

use crate::answer::{runs_by, unsegmented};
use unicode_normalization::char::is_combining_mark;

// ---------------------------------------------------------------------------------------------
// Answer scores (SQuAD v1.1)
// ---------------------------------------------------------------------------------------------

/// Normalises an answer exactly as the official SQuAD v1.1 `evaluate-v1.1.py` does, in its
/// order: lower-case, remove punctuation, remove the articles a/an/the, collapse whitespace.
///
/// Punctuation is Python's `string.punctuation` (ASCII only, so `“` or `–` survive) and goes
/// *before* articles, so `"the-end"` becomes `"theend"` and keeps its `the`. Words and
/// whitespace follow Python 3's `re` `\b` and `str.split()` rules rather than Rust's, so the
/// scores match the official script on non-ASCII text too.
pub fn normalize_answer(s: &str) -> String {
    let lowered = s.to_lowercase();
    let no_punc: String = lowered
        .chars()
        .filter(|c| !c.is_ascii_punctuation())
        .collect();
    let no_articles = remove_articles(&no_punc);
    py_split(&no_articles).collect::<Vec<_>>().join(" ")
}

/// `re.sub(r'\b(a|an|the)\b', ' ', text)`: a whole run of word characters equal to an article
/// becomes one space.
fn remove_articles(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word_start: Option<usize> = None;
    let flush = |out: &mut String, word: &str| {
        if matches!(word, "a" | "an" | "the") {
            out.push(' ');
        } else {
            out.push_str(word);
        }
    };
    for (i, c) in text.char_indices() {
        if is_py_word_char(c) {
            word_start.get_or_insert(i);
        } else {
            if let Some(start) = word_start.take() {
                flush(&mut out, &text[start..i]);
            }
            out.push(c);
        }
    }
    if let Some(start) = word_start {
        flush(&mut out, &text[start..]);
    }
    out
}

/// Python 3 `re` `\w` on `str`: `_` or `str.isalnum()` (letters `L*` and characters with a
/// numeric value). Rust's `is_alphanumeric` also counts the `Other_Alphabetic` combining marks
/// and the circled/squared Latin letter symbols, which Python does not. This and [`is_py_space`]
/// were checked against CPython 3.11 (Unicode 14) for every assigned code point.
fn is_py_word_char(c: char) -> bool {
    c == '_' || (c.is_alphanumeric() && !is_combining_mark(c) && !is_alphabetic_symbol(c))
}

/// Circled and squared Latin letters: `Other_Alphabetic` (so Rust's `is_alphabetic`) but
/// category `So`, so not `str.isalpha()` in Python.
fn is_alphabetic_symbol(c: char) -> bool {
    matches!(c,
        '\u{24B6}'..='\u{24E9}' | '\u{1F130}'..='\u{1F149}' | '\u{1F150}'..='\u{1F169}'
        | '\u{1F170}'..='\u{1F189}')
}

/// Python 3 `str.isspace()`: Unicode `White_Space` plus the ASCII separators U+001C..U+001F.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1C}'..='\u{1F}').contains(&c)
}

/// Python's `str.split()` with no argument.
fn py_split(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_py_space).filter(|t| !t.is_empty())
}

/// Scores `pred` against each gold answer with `score` and keeps the best, as SQuAD's
/// `metric_max_over_ground_truths` does. With no gold answers the question is unanswerable and,
/// following the SQuAD v2.0 script, the only correct prediction is one that normalises to empty.
fn max_over_golds<S: AsRef<str>>(pred: &str, golds: &[S], score: fn(&str, &str) -> f64) -> f64 {
    if golds.is_empty() {
        return if normalize_answer(pred).is_empty() {
            1.0
        } else {
            0.0
        };
    }
    golds
        .iter()
        .map(|g| score(pred, g.as_ref()))
        .fold(f64::NEG_INFINITY, f64::max)
}

/// SQuAD v1.1 exact match: 1.0 if the normalised prediction equals some normalised gold answer,
/// else 0.0. Empty `golds` (unanswerable): 1.0 iff the prediction normalises to empty.
pub fn exact_match<S: AsRef<str>>(pred: &str, golds: &[S]) -> f64 {
    max_over_golds(pred, golds, |p, g| {
        if normalize_answer(p) == normalize_answer(g) {
            1.0
        } else {
            0.0
        }
    })
}

/// SQuAD v1.1 token F1 (bag-of-tokens overlap with multiplicity), best over `golds`. As in the
/// official script, a pair with no common token scores 0, even when both are empty. Empty
/// `golds` (unanswerable): 1.0 iff the prediction normalises to empty.
pub fn f1<S: AsRef<str>>(pred: &str, golds: &[S]) -> f64 {
    max_over_golds(pred, golds, f1_single)
}

fn f1_single(pred: &str, gold: &str) -> f64 {
    let pred_norm = normalize_answer(pred);
    let gold_norm = normalize_answer(gold);
    let pred_tokens: Vec<&str> = py_split(&pred_norm).collect();
    let gold_tokens: Vec<&str> = py_split(&gold_norm).collect();
    let mut gold_counts: HashMap<&str, usize> = HashMap::new();
    for t in &gold_tokens {
        *gold_counts.entry(t).or_default() += 1;
    }
    let mut num_same = 0usize;
    for t in &pred_tokens {
        if let Some(n) = gold_counts.get_mut(t) {
            if *n > 0 {
                *n -= 1;
                num_same += 1;
            }
        }
    }
    if num_same == 0 {
        return 0.0;
    }
    // Same operations in the same order as the Python, so the floats agree bit for bit.
    let precision = num_same as f64 / pred_tokens.len() as f64;
    let recall = num_same as f64 / gold_tokens.len() as f64;
    (2.0 * precision * recall) / (precision + recall)
}

/// True if some normalised gold answer occurs in the normalised prediction as a whole run of
/// tokens ("paris" is in "it is paris france", not in "parisian"). A gold answer that normalises
/// to nothing (e.g. `"the"`) never matches, and empty `golds` give false.
///
/// A gold answer in Hangul, kana or Han characters is matched as a run of characters instead,
/// spaces aside: Korean attaches particles to the word ("이종섭입니다" holds "이종섭"), and
/// Chinese and Japanese do not separate words at all.
pub fn contains_answer<S: AsRef<str>>(pred: &str, golds: &[S]) -> bool {
    let pred_norm = normalize_answer(pred);
    // A Latin name in Korean text carries its particle ("Choi Byung-ok입니다"): a change
    // between Hangul, kana or Han and other characters ends a word too.
    let pred_tokens: Vec<&str> = py_split(&pred_norm)
        .flat_map(|t| runs_by(t, unsegmented))
        .collect();
    let unspaced = |t: &str| t.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    let pred_unspaced = unspaced(&pred_norm);
    golds.iter().any(|g| {
        let gold_norm = normalize_answer(g.as_ref());
        let gold_tokens: Vec<&str> = py_split(&gold_norm).collect();
        if gold_tokens.is_empty() {
            return false;
        }
        if gold_norm.chars().any(unsegmented) {
            return pred_unspaced.contains(&unspaced(&gold_norm));
        }
        pred_tokens
            .windows(gold_tokens.len())
            .any(|w| w == gold_tokens.as_slice())
    })
}

// ---------------------------------------------------------------------------------------------
// Spans, retrieval and citations
// ---------------------------------------------------------------------------------------------

/// A half-open byte range `start..end` in one corpus file (path relative to the corpus folder,
/// compared exactly). Retrieved chunks, cited chunks and gold evidence are all spans.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Span {
    pub file: String,
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(file: impl Into<String>, range: Range<usize>) -> Self {
        Span {
            file: file.into(),
            start: range.start,
            end: range.end,
        }
    }

    /// Same file and at least one byte in common. An empty span overlaps nothing.
    pub fn overlaps(&self, other: &Span) -> bool {
        self.file == other.file && self.start.max(other.start) < self.end.min(other.end)
    }

    fn overlaps_any(&self, others: &[Span]) -> bool {
        others.iter().any(|o| self.overlaps(o))
    }
}

impl From<(String, Range<usize>)> for Span {
    fn from((file, range): (String, Range<usize>)) -> Self {
        Span::new(file, range)
    }
}

/// `None` when a retrieval metric is undefined: no gold evidence (e.g. an unanswerable
/// question) or a cutoff of zero.
fn retrieval_defined(gold: &[Span], k: usize) -> bool {
    !gold.is_empty() && k > 0
}

/// 1.0 if any of the first `k` hits overlaps a gold span, else 0.0.
/// `None` if `gold` is empty or `k == 0`.
pub fn hit_at_k(hits: &[Span], gold: &[Span], k: usize) -> Option<f64> {
    retrieval_defined(gold, k).then(|| {
        let hit = hits.iter().take(k).any(|h| h.overlaps_any(gold));
        if hit {
            1.0
        } else {
            0.0
        }
    })
}

/// Share of gold spans overlapped by at least one of the first `k` hits.
/// `None` if `gold` is empty or `k == 0`.
pub fn recall_at_k(hits: &[Span], gold: &[Span], k: usize) -> Option<f64> {
    retrieval_defined(gold, k).then(|| {
        let top = &hits[..k.min(hits.len())];
        let found = gold.iter().filter(|g| g.overlaps_any(top)).count();
        found as f64 / gold.len() as f64
    })
}

/// `1 / rank` of the first hit (1-based) that overlaps a gold span, 0.0 if none does within the
/// first `k`. Averaged with [`mean`] this is MRR@k. `None` if `gold` is empty or `k == 0`.
pub fn reciprocal_rank(hits: &[Span], gold: &[Span], k: usize) -> Option<f64> {
    retrieval_defined(gold, k).then(|| {
        hits.iter()
            .take(k)
            .position(|h| h.overlaps_any(gold))
            .map_or(0.0, |i| 1.0 / (i + 1) as f64)
    })
}

/// nDCG@k with binary relevance: DCG = Σ rel_i / log2(i + 1) over ranks i = 1..=k, divided by
/// the ideal DCG of min(|gold|, k) relevant hits at the top.
///
/// Gold spans play the part of relevant documents, each found once: a hit is relevant only if it
/// overlaps a gold span no earlier hit overlapped. Several chunks of one gold passage therefore
/// do not score twice, and the result stays within 0..=1. `None` if `gold` is empty or `k == 0`.
pub fn ndcg_at_k(hits: &[Span], gold: &[Span], k: usize) -> Option<f64> {
    if !retrieval_defined(gold, k) {
        return None;
    }
    let discount = |rank: usize| 1.0 / ((rank + 1) as f64).log2();
    let mut found = vec![false; gold.len()];
    let mut dcg = 0.0;
    for (i, hit) in hits.iter().take(k).enumerate() {
        let mut new = false;
        for (g, seen) in gold.iter().zip(found.iter_mut()) {
            if !*seen && hit.overlaps(g) {
                *seen = true;
                new = true;
            }
        }
        if new {
            dcg += discount(i + 1);
        }
    }
    let ideal: f64 = (1..=gold.len().min(k)).map(discount).sum();
    Some(dcg / ideal)
}

/// Share of cited IDs that are among the allowed ones (the chunks actually shown to the model),
/// compared exactly. `None` if nothing was cited.
pub fn citation_validity<T: PartialEq>(cited: &[T], allowed: &[T]) -> Option<f64> {
    if cited.is_empty() {
        return None;
    }
    let valid = cited.iter().filter(|c| allowed.contains(c)).count();
    Some(valid as f64 / cited.len() as f64)
}

/// Share of cited spans that overlap some gold span. `None` if nothing was cited or there is no
/// gold evidence (unanswerable questions are scored by [`AbstentionCounts`] instead).
pub fn citation_precision(cited: &[Span], gold: &[Span]) -> Option<f64> {
    if cited.is_empty() || gold.is_empty() {
        return None;
    }
    let good = cited.iter().filter(|c| c.overlaps_any(gold)).count();
    Some(good as f64 / cited.len() as f64)
}

/// Share of gold spans overlapped by some cited span. `None` if there is no gold evidence;
/// `Some(0.0)` if there is gold evidence but nothing was cited.
pub fn citation_recall(cited: &[Span], gold: &[Span]) -> Option<f64> {
    if gold.is_empty() {
        return None;
    }
    let found = gold.iter().filter(|g| g.overlaps_any(cited)).count();
    Some(found as f64 / gold.len() as f64)
}

// ---------------------------------------------------------------------------------------------
// Abstention
// ---------------------------------------------------------------------------------------------

/// Tally of declines ("I cannot answer from these documents") split by whether the question was
/// answerable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AbstentionCounts {
    pub answerable: usize,
    pub answerable_declined: usize,
    pub unanswerable: usize,
    pub unanswerable_declined: usize,
}

impl AbstentionCounts {
    /// Counts one question.
    pub fn record(&mut self, answerable: bool, declined: bool) {
        if answerable {
            self.answerable += 1;
            self.answerable_declined += usize::from(declined);
        } else {
            self.unanswerable += 1;
            self.unanswerable_declined += usize::from(declined);
        }
    }

    /// Share of unanswerable questions that were declined (higher is better).
    /// `None` if there were no unanswerable questions.
    pub fn correct_decline_rate(&self) -> Option<f64> {
        ratio(self.unanswerable_declined, self.unanswerable)
    }

    /// Share of answerable questions that were declined (lower is better).
    /// `None` if there were no answerable questions.
    pub fn wrong_decline_rate(&self) -> Option<f64> {
        ratio(self.answerable_declined, self.answerable)
    }
}

/// Collects `(answerable, declined)` pairs.
impl FromIterator<(bool, bool)> for AbstentionCounts {
    fn from_iter<I: IntoIterator<Item = (bool, bool)>>(iter: I) -> Self {
        let mut counts = AbstentionCounts::default();
        for (answerable, declined) in iter {
            counts.record(answerable, declined);
        }
        counts
    }
}

fn ratio(num: usize, den: usize) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

// ---------------------------------------------------------------------------------------------
// Aggregation
// ---------------------------------------------------------------------------------------------

/// Nearest-rank percentile: the smallest value with at least `p`% of the values at or below it,
/// i.e. the `ceil(p/100 * n)`-th smallest (the smallest for `p == 0`). Always one of the inputs,
/// never interpolated. `None` if `values` is empty or `p` is outside `0..=100`. NaNs sort after
/// every number (`f64::total_cmp`), so keep them out.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() || !(0.0..=100.0).contains(&p) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    // p * n / 100 rather than p / 100 * n: exact for whole-number p, so p95 of 20 values is
    // rank 19, not 20 through a rounding error.
    let rank = (p * n as f64 / 100.0).ceil() as usize;
    Some(sorted[rank.clamp(1, n) - 1])
}

/// Mean of the defined values, skipping `None`s. `None` if no value is defined.
pub fn mean<I: IntoIterator<Item = Option<f64>>>(values: I) -> Option<f64> {
    let (sum, count) = values
        .into_iter()
        .flatten()
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (count > 0).then(|| sum / count as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn korean_golds_match_inside_words() {
        assert!(contains_answer(
            "국방부 장관은 이종섭입니다. [1]",
            &["이종섭"]
        ));
        assert!(contains_answer("2011년부터 열렸습니다", &["2011년"]));
        assert!(!contains_answer("국방부 장관은 최병옥입니다", &["이종섭"]));
        // Latin golds keep whole-token matching.
        assert!(!contains_answer("parisian", &["paris"]));
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    // --- normalisation -------------------------------------------------------------------

    #[test]
    fn normalize_follows_official_order() {
        assert_eq!(normalize_answer("The  Eiffel Tower!"), "eiffel tower");
        assert_eq!(
            normalize_answer("  a cat, AN owl and the dog "),
            "cat owl and dog"
        );
        // Punctuation goes first, so a hyphenated article merges into its word and survives...
        assert_eq!(normalize_answer("the-end"), "theend");
        assert_eq!(normalize_answer("a_b"), "ab");
        // ...and punctuation can expose an article that then goes.
        assert_eq!(normalize_answer("(the) end"), "end");
        assert_eq!(normalize_answer("Levi's Stadium"), "levis stadium");
        // Articles only as whole words.
        assert_eq!(normalize_answer("theatre an anthem"), "theatre anthem");
        assert_eq!(normalize_answer("The"), "");
        assert_eq!(normalize_answer(""), "");
    }

    #[test]
    fn normalize_matches_python_on_unicode() {
        // Only ASCII punctuation is removed.
        assert_eq!(normalize_answer("“Quoted” – text"), "“quoted” – text");
        // Python's \w: a letter after an article glues it into one word; `é` is a letter.
        assert_eq!(normalize_answer("théâtre the é"), "théâtre é");
        // A combining mark is not a word character in Python, so `the` + U+0301 loses `the`.
        assert_eq!(normalize_answer("the\u{301} end"), "\u{301} end");
        // Circled letters are symbols, not word characters, in Python.
        assert_eq!(normalize_answer("the\u{24D0}"), "\u{24D0}");
        // Python's split() also splits on U+001C..U+001F and U+00A0.
        assert_eq!(normalize_answer("x\u{1F}y\u{a0}z"), "x y z");
        // Full Unicode lower-casing, including final sigma.
        assert_eq!(normalize_answer("ΟΔΟΣ"), "οδος");
    }

    // --- EM / F1 / contains --------------------------------------------------------------

    #[test]
    fn exact_match_takes_best_gold() {
        assert_eq!(exact_match("the Denver Broncos", &["Denver Broncos"]), 1.0);
        assert_eq!(exact_match("Broncos", &["Denver Broncos", "broncos."]), 1.0);
        assert_eq!(exact_match("Denver", &["Denver Broncos"]), 0.0);
    }

    #[test]
    fn f1_uses_bag_of_tokens_with_multiplicity() {
        // pred {x y y}, gold {y z}: one token in common.
        let p = 1.0 / 3.0;
        let r = 1.0 / 2.0;
        assert!(close(f1("x y y", &["y z"]), 2.0 * p * r / (p + r)));
        // Repeated tokens only count as often as the gold has them.
        assert!(close(
            f1("y y", &["y y z"]),
            2.0 * 1.0 * (2.0 / 3.0) / (1.0 + 2.0 / 3.0)
        ));
        assert_eq!(f1("Denver Broncos", &["the denver broncos"]), 1.0);
        assert_eq!(f1("no overlap", &["something else"]), 0.0);
        // Max over golds.
        assert_eq!(f1("Santa Clara", &["Levi's Stadium", "Santa Clara"]), 1.0);
    }

    #[test]
    fn f1_of_two_empty_answers_is_zero_like_v1_1() {
        assert_eq!(f1("the", &["a"]), 0.0);
        assert_eq!(exact_match("the", &["a"]), 1.0);
    }

    #[test]
    fn no_golds_means_only_an_empty_prediction_is_right() {
        let none: [&str; 0] = [];
        assert_eq!(exact_match("", &none), 1.0);
        assert_eq!(f1(" the ", &none), 1.0);
        assert_eq!(exact_match("Paris", &none), 0.0);
        assert_eq!(f1("Paris", &none), 0.0);
        assert!(!contains_answer("Paris", &none));
    }

    #[test]
    fn contains_answer_respects_token_boundaries() {
        assert!(contains_answer("It is Paris, France.", &["paris"]));
        assert!(contains_answer(
            "built in 1889 by Eiffel",
            &["London", "by eiffel"]
        ));
        assert!(!contains_answer("Parisian cafés", &["Paris"]));
        assert!(!contains_answer("France Paris", &["Paris France"]));
        // A gold that normalises to nothing never matches.
        assert!(!contains_answer("anything", &["The"]));
        // A Latin name with a Korean particle attached is the name; a longer Latin word is not.
        assert!(contains_answer(
            "대표는 Choi Byung-ok입니다.",
            &["Choi Byung-ok"]
        ));
        assert!(!contains_answer(
            "대표는 Choi Byung-okay입니다.",
            &["Choi Byung-ok"]
        ));
    }

    // --- spans and retrieval -------------------------------------------------------------

    fn s(file: &str, start: usize, end: usize) -> Span {
        Span::new(file, start..end)
    }

    #[test]
    fn spans_overlap_only_in_same_file_with_a_shared_byte() {
        assert!(s("a", 0, 10).overlaps(&s("a", 9, 20)));
        assert!(!s("a", 0, 10).overlaps(&s("a", 10, 20)));
        assert!(!s("a", 0, 10).overlaps(&s("b", 0, 10)));
        assert!(!s("a", 5, 5).overlaps(&s("a", 0, 10)));
        assert!(s("a", 0, 100).overlaps(&s("a", 40, 41)));
        assert_eq!(Span::from(("a".to_string(), 1..2)), s("a", 1, 2));
    }

    #[test]
    fn retrieval_metrics_on_a_ranked_list() {
        let gold = [s("x", 100, 200), s("y", 0, 50)];
        let hits = [
            s("z", 0, 500),
            s("x", 150, 300),
            s("x", 0, 120),
            s("y", 40, 60),
        ];
        assert_eq!(hit_at_k(&hits, &gold, 1), Some(0.0));
        assert_eq!(hit_at_k(&hits, &gold, 2), Some(1.0));
        assert_eq!(recall_at_k(&hits, &gold, 3), Some(0.5));
        assert_eq!(recall_at_k(&hits, &gold, 4), Some(1.0));
        assert_eq!(recall_at_k(&hits, &gold, 100), Some(1.0));
        assert_eq!(reciprocal_rank(&hits, &gold, 1), Some(0.0));
        assert_eq!(reciprocal_rank(&hits, &gold, 10), Some(0.5));
        // Relevant (new gold) at ranks 2 and 4; rank 3 only re-finds the first gold span.
        let dcg = 1.0 / 3f64.log2() + 1.0 / 5f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2();
        assert!(close(ndcg_at_k(&hits, &gold, 4).unwrap(), dcg / idcg));
    }

    #[test]
    fn ndcg_is_one_for_a_perfect_ranking_and_never_above() {
        let gold = [s("x", 0, 10)];
        let hits = [s("x", 0, 5), s("x", 5, 10), s("x", 2, 3)];
        assert_eq!(ndcg_at_k(&hits, &gold, 3), Some(1.0));
        // Ideal DCG is capped at k: two gold spans, k = 1, first hit relevant.
        let gold2 = [s("x", 0, 10), s("y", 0, 10)];
        assert_eq!(ndcg_at_k(&[s("y", 1, 2)], &gold2, 1), Some(1.0));
        assert_eq!(ndcg_at_k(&[s("q", 1, 2)], &gold2, 5), Some(0.0));
    }

    #[test]
    fn retrieval_metrics_are_undefined_without_gold_or_cutoff() {
        let hits = [s("x", 0, 10)];
        let gold = [s("x", 0, 10)];
        for f in [hit_at_k, recall_at_k, reciprocal_rank, ndcg_at_k] {
            assert_eq!(f(&hits, &[], 5), None);
            assert_eq!(f(&hits, &gold, 0), None);
            assert_eq!(f(&[], &gold, 5), Some(0.0));
        }
    }

    // --- citations -----------------------------------------------------------------------

    #[test]
    fn citation_validity_compares_ids_exactly() {
        let allowed = ["doc1#3", "doc2#1"];
        assert_eq!(
            citation_validity(&["doc1#3", "doc1#30"], &allowed),
            Some(0.5)
        );
        assert_eq!(citation_validity(&["doc2#1"], &allowed), Some(1.0));
        assert_eq!(citation_validity(&["doc9#9"], &[]), Some(0.0));
        assert_eq!(citation_validity::<&str>(&[], &allowed), None);
    }

    #[test]
    fn citation_precision_and_recall() {
        let gold = [s("x", 0, 10), s("x", 50, 60), s("y", 0, 10)];
        let cited = [s("x", 5, 55), s("z", 0, 10)];
        assert_eq!(citation_precision(&cited, &gold), Some(0.5));
        assert!(close(citation_recall(&cited, &gold).unwrap(), 2.0 / 3.0));
        assert_eq!(citation_precision(&[], &gold), None);
        assert_eq!(citation_recall(&[], &gold), Some(0.0));
        assert_eq!(citation_precision(&cited, &[]), None);
        assert_eq!(citation_recall(&cited, &[]), None);
    }

    // --- abstention ----------------------------------------------------------------------

    #[test]
    fn abstention_rates() {
        let counts: AbstentionCounts = [(true, false), (true, true), (true, false), (true, false)]
            .into_iter()
            .chain([(false, true), (false, false)])
            .collect();
        assert_eq!(counts.answerable, 4);
        assert_eq!(counts.unanswerable_declined, 1);
        assert_eq!(counts.correct_decline_rate(), Some(0.5));
        assert_eq!(counts.wrong_decline_rate(), Some(0.25));
        let only_answerable: AbstentionCounts = [(true, false)].into_iter().collect();
        assert_eq!(only_answerable.correct_decline_rate(), None);
        assert_eq!(AbstentionCounts::default().wrong_decline_rate(), None);
    }

    // --- aggregation ---------------------------------------------------------------------

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<f64> = (1..=20).rev().map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(10.0));
        assert_eq!(percentile(&v, 95.0), Some(19.0));
        assert_eq!(percentile(&v, 100.0), Some(20.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&hundred, 55.0), Some(55.0));
        assert_eq!(
            percentile(&[15.0, 20.0, 35.0, 40.0, 50.0], 30.0),
            Some(20.0)
        );
        assert_eq!(percentile(&[7.0], 95.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&v, 101.0), None);
        assert_eq!(percentile(&v, f64::NAN), None);
    }

    #[test]
    fn mean_skips_undefined_values() {
        assert_eq!(mean([Some(1.0), None, Some(0.0)]), Some(0.5));
        assert_eq!(mean([None, None]), None);
        assert_eq!(mean(std::iter::empty()), None);
    }
}

//! The eval runner: drives the ask pipeline over a Q&A file and scores every question with the
//! pure functions of [`super::metrics`]. Called by `docqa eval` and `docqa compare`.

use std::path::Path;

use serde::Serialize;

use super::metrics::{self, AbstentionCounts, Span};
use super::qa::{self, QaItem, QaKind};
use crate::embed::Embedder;
use crate::generate::Generator;
use crate::index::{self, Index};
use crate::pipeline::{self, AskConfig, Timings};

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Qa(#[from] qa::QaError),
    #[error("question {id}: {source}")]
    Ask {
        id: String,
        #[source]
        source: pipeline::AskError,
    },
    #[error("question {id}: retrieval: {source}")]
    Retrieval {
        id: String,
        #[source]
        source: index::IndexError,
    },
    #[error("the index is empty: nothing to evaluate")]
    EmptyIndex,
    #[error("the Q&A set is empty: nothing to evaluate")]
    EmptyQa,
}

/// How deep retrieval metrics look (hit@k, recall@k use 1 and 5 and the answer's k as well).
pub const METRIC_DEPTH: usize = 10;

#[derive(Debug, Clone, Serialize)]
pub struct SpanRecord {
    pub id: String,
    pub file: String,
    pub start: usize,
    pub end: usize,
    /// Overlaps gold evidence.
    pub relevant: bool,
}

/// Everything about one question, for the per-question report.
#[derive(Debug, Clone, Serialize)]
pub struct QuestionResult {
    pub id: String,
    pub kind: QaKind,
    pub question: String,
    /// The question's English translation, for a question written in another script (what
    /// retrieval and the draft used).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub question_english: Option<String>,
    pub gold_answers: Vec<String>,
    pub answer: String,
    /// For an answer translated into the question's language: the checked English answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer_english: Option<String>,
    /// The span of the answer sentence that answers the question, when one was extracted.
    pub short_answer: Option<String>,
    pub draft: String,
    pub abstained: bool,
    pub abstain_reason: Option<String>,
    /// The kind of [`crate::answer::Decline`] that declined it.
    pub decline: Option<&'static str>,
    /// The verification step's margin, log P(Yes) - log P(No), when it ran.
    pub verify_margin: Option<f32>,
    /// The judgements the verification margin adds up, when it ran.
    pub verify_parts: Option<pipeline::VerifyParts>,
    /// What of the question's constraints the answer's passage lacks.
    pub coverage: Option<crate::answer::constraints::Coverage>,
    pub retrieved: Vec<SpanRecord>,
    pub cited: Vec<SpanRecord>,
    pub dropped_citations: usize,
    /// Citations shown to the user that were not among the prompt's passages (must be 0).
    pub invalid_shown: usize,
    pub hit_at_1: Option<f64>,
    pub hit_at_5: Option<f64>,
    pub recall_at_5: Option<f64>,
    pub mrr_at_10: Option<f64>,
    pub ndcg_at_10: Option<f64>,
    pub exact_match: Option<f64>,
    pub f1: Option<f64>,
    pub contains: Option<f64>,
    pub citation_precision: Option<f64>,
    pub citation_recall: Option<f64>,
    pub timings: Timings,
}

/// Aggregates over a run. Ratios are `None` where no question defines them.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Summary {
    pub questions: usize,
    pub answerable: usize,
    pub unanswerable: usize,
    pub hit_at_1: Option<f64>,
    pub hit_at_5: Option<f64>,
    pub recall_at_5: Option<f64>,
    pub mrr_at_10: Option<f64>,
    pub ndcg_at_10: Option<f64>,
    pub exact_match: Option<f64>,
    pub f1: Option<f64>,
    pub containment: Option<f64>,
    pub citation_validity: Option<f64>,
    pub citation_precision: Option<f64>,
    pub citation_recall: Option<f64>,
    pub invalid_citations_shown: usize,
    pub unanswerable_declined: Option<f64>,
    pub answerable_declined: Option<f64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub prefill_tok_s: Option<f64>,
    pub decode_tok_s: Option<f64>,
}

impl Summary {
    /// A metric by its report name (see [`super::catalog::METRICS`]), for thresholds and
    /// leaderboards; `None` for a name that is not a metric.
    pub fn get(&self, name: &str) -> Option<Option<f64>> {
        super::catalog::metric(name).map(|m| m.value(self))
    }
}

/// How many chunks beyond k a withheld-gold retrieval looks at, so that k remain once the
/// chunks overlapping the gold evidence are removed.
const WITHHELD_SLACK: usize = 20;

/// Suffix of the id of a question's withheld-gold twin.
pub const WITHHELD_SUFFIX: &str = "/withheld";

/// What a run answers with, beside its stages.
#[derive(Debug, Clone, Copy)]
pub struct RunConfig<'a> {
    /// The corpus folder, against which the items' evidence resolves.
    pub corpus_dir: &'a Path,
    pub ask: &'a AskConfig,
    /// Also ask each answerable item with its gold evidence withheld (see [`run`]).
    pub withhold_gold: bool,
}

/// Runs every item; with `generator` `None` only retrieval is scored. With `withhold_gold`, each
/// answerable item is followed by a twin (`ID/withheld`) answered from a retrieval without any
/// chunk that overlaps its gold evidence: the corpus then no longer holds the answer, so the
/// twin scores as unanswerable. Unlike a question about another topic, the twin's passages are
/// on its topic, which is what makes abstention hard.
pub fn run(
    items: &[QaItem],
    run: RunConfig<'_>,
    index: &Index,
    embedder: &dyn Embedder,
    mut generator: Option<&mut dyn Generator>,
    on_progress: &mut dyn FnMut(usize, &QuestionResult),
) -> Result<(Vec<QuestionResult>, Summary), EvalError> {
    let RunConfig {
        corpus_dir,
        ask: cfg,
        withhold_gold,
    } = run;
    if index.is_empty() {
        return Err(EvalError::EmptyIndex);
    }
    if items.is_empty() {
        return Err(EvalError::EmptyQa);
    }
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        let extracted = |file: &str| index.extracted_text(file).map(str::to_string);
        let gold: Vec<Span> = qa::resolve_evidence_in(item, corpus_dir, &extracted)?
            .into_iter()
            .map(Span::from)
            .collect();
        let twin = withhold_gold && item.kind.is_answerable();
        for withheld in [false, true].into_iter().take(1 + usize::from(twin)) {
            let result = score_item(
                item,
                &gold,
                withheld,
                index,
                embedder,
                generator.as_deref_mut(),
                cfg,
            )?;
            results.push(result);
            on_progress(results.len(), results.last().expect("just pushed"));
        }
    }
    let summary = summarize(&results, generator.is_some());
    Ok((results, summary))
}

/// Questions [`run`] scores for `items`: one each, and a twin for each answerable one with
/// `withhold_gold`.
pub fn case_count(items: &[QaItem], withhold_gold: bool) -> usize {
    items.len()
        + if withhold_gold {
            items.iter().filter(|i| i.kind.is_answerable()).count()
        } else {
            0
        }
}

/// Retrieves for, answers and scores one item, or its withheld-gold twin.
fn score_item<'g>(
    item: &QaItem,
    gold: &[Span],
    withheld: bool,
    index: &Index,
    embedder: &dyn Embedder,
    mut generator: Option<&mut (dyn Generator + 'g)>,
    cfg: &AskConfig,
) -> Result<QuestionResult, EvalError> {
    let started = std::time::Instant::now();
    let span_of = |i: usize| {
        let c = &index.chunks[i];
        Span::new(c.doc.to_string(), c.start..c.end)
    };
    let on_gold = |s: &Span| gold.iter().any(|g| g.overlaps(s));
    // A question in another script is retrieved by its English translation when a generator
    // can make one; a withheld-gold twin's translation does not see the gold evidence either.
    let off_gold = |i: usize| !on_gold(&span_of(i));
    let query = match generator.as_deref_mut() {
        Some(g) => {
            let usable = withheld.then_some(&off_gold as &dyn Fn(usize) -> bool);
            pipeline::understand_within(&item.question, index, embedder, &cfg.retrieval, g, usable)
                .map_err(|source| EvalError::Ask {
                    id: item.id.clone(),
                    source,
                })?
        }
        None => pipeline::Query::plain(&item.question),
    };
    let deep = index::RetrievalConfig {
        k: METRIC_DEPTH.max(cfg.retrieval.k) + if withheld { WITHHELD_SLACK } else { 0 },
        ..cfg.retrieval.clone()
    };
    let mut ranked = index::retrieve_texts(
        index,
        embedder,
        query.dense_text(),
        &query.bm25_text(),
        &deep,
    )
    .map_err(|source| EvalError::Retrieval {
        id: item.id.clone(),
        source,
    })?;
    if withheld {
        ranked.retain(|h| !on_gold(&span_of(h.index)));
    }
    let ranked_spans: Vec<Span> = ranked.iter().map(|h| span_of(h.index)).collect();
    let record = |i: usize| {
        let s = span_of(i);
        SpanRecord {
            id: index.chunks[i].id.to_string(),
            relevant: on_gold(&s),
            file: s.file,
            start: s.start,
            end: s.end,
        }
    };
    let kind = if withheld {
        QaKind::Unanswerable
    } else {
        item.kind
    };
    let answerable = kind.is_answerable();
    // Retrieval metrics are defined where the corpus holds the answer.
    let retrieval_metric = |v: Option<f64>| v.filter(|_| answerable);
    let mut result = QuestionResult {
        id: if withheld {
            format!("{}{WITHHELD_SUFFIX}", item.id)
        } else {
            item.id.clone()
        },
        kind,
        question: item.question.clone(),
        question_english: None,
        gold_answers: if answerable {
            item.answers.clone()
        } else {
            Vec::new()
        },
        answer: String::new(),
        answer_english: None,
        short_answer: None,
        draft: String::new(),
        abstained: false,
        abstain_reason: None,
        decline: None,
        verify_margin: None,
        verify_parts: None,
        coverage: None,
        retrieved: ranked
            .iter()
            .take(cfg.retrieval.k)
            .map(|h| record(h.index))
            .collect(),
        cited: Vec::new(),
        dropped_citations: 0,
        invalid_shown: 0,
        hit_at_1: retrieval_metric(metrics::hit_at_k(&ranked_spans, gold, 1)),
        hit_at_5: retrieval_metric(metrics::hit_at_k(&ranked_spans, gold, 5)),
        recall_at_5: retrieval_metric(metrics::recall_at_k(&ranked_spans, gold, 5)),
        mrr_at_10: retrieval_metric(metrics::reciprocal_rank(&ranked_spans, gold, 10)),
        ndcg_at_10: retrieval_metric(metrics::ndcg_at_k(&ranked_spans, gold, 10)),
        exact_match: None,
        f1: None,
        contains: None,
        citation_precision: None,
        citation_recall: None,
        timings: Timings::default(),
    };
    let Some(generator) = generator else {
        return Ok(result);
    };
    ranked.truncate(cfg.retrieval.k);
    let outcome =
        pipeline::answer_hits(&query, ranked, index, generator, cfg, started, &mut |_| {})
            .map_err(|source| EvalError::Ask {
                id: item.id.clone(),
                source,
            })?;
    let checked = &outcome.checked;
    result.answer = checked.text.clone();
    result.question_english = outcome.question_english.clone();
    result.answer_english = outcome.answer_english.clone();
    result.short_answer = outcome.short_answer.clone();
    result.draft = outcome.draft.clone();
    result.abstained = checked.abstained;
    result.abstain_reason = checked.abstain_reason.as_ref().map(ToString::to_string);
    result.decline = checked.abstain_reason.as_ref().map(|d| d.kind());
    result.verify_margin = outcome.verify_margin;
    result.verify_parts = outcome.verify_parts;
    result.coverage = outcome.coverage.clone();
    result.dropped_citations = checked.dropped.len();
    result.invalid_shown = checked
        .cited
        .iter()
        .filter(|&&i| i >= outcome.hits.len())
        .count();
    let cited_idx: Vec<usize> = checked
        .cited
        .iter()
        .filter(|&&i| i < outcome.hits.len())
        .map(|&i| outcome.hits[i].index)
        .collect();
    result.cited = cited_idx.iter().map(|&i| record(i)).collect();
    let cited_spans: Vec<Span> = cited_idx.iter().map(|&i| span_of(i)).collect();
    if answerable {
        // An abstention scores as an empty answer.
        let shown = if checked.abstained {
            String::new()
        } else {
            strip_markers(&checked.text)
        };
        // EM and F1 score the short answer when there is one (SQuAD's gold answers are short
        // spans); containment scores the whole shown answer.
        let short = outcome.short_answer.as_deref().unwrap_or(&shown);
        result.exact_match = Some(metrics::exact_match(short, &item.answers));
        result.f1 = Some(metrics::f1(short, &item.answers));
        result.contains = Some(f64::from(u8::from(metrics::contains_answer(
            &shown,
            &item.answers,
        ))));
        result.citation_precision = metrics::citation_precision(&cited_spans, gold);
        result.citation_recall = if checked.abstained {
            Some(0.0)
        } else {
            metrics::citation_recall(&cited_spans, gold)
        };
    }
    result.timings = outcome.timings.clone();
    Ok(result)
}

/// The answer text without `[n]` markers, for answer metrics.
fn strip_markers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0;
    for c in text.chars() {
        match c {
            '[' => depth += 1,
            ']' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

pub fn summarize(results: &[QuestionResult], generated: bool) -> Summary {
    let answerable: Vec<&QuestionResult> =
        results.iter().filter(|r| r.kind.is_answerable()).collect();
    let m = |f: &dyn Fn(&QuestionResult) -> Option<f64>| metrics::mean(results.iter().map(f));
    let mut s = Summary {
        questions: results.len(),
        answerable: answerable.len(),
        unanswerable: results.len() - answerable.len(),
        hit_at_1: m(&|r| r.hit_at_1),
        hit_at_5: m(&|r| r.hit_at_5),
        recall_at_5: m(&|r| r.recall_at_5),
        mrr_at_10: m(&|r| r.mrr_at_10),
        ndcg_at_10: m(&|r| r.ndcg_at_10),
        ..Summary::default()
    };
    if !generated {
        return s;
    }
    s.exact_match = m(&|r| r.exact_match);
    s.f1 = m(&|r| r.f1);
    s.containment = m(&|r| r.contains);
    s.citation_precision = m(&|r| r.citation_precision);
    s.citation_recall = m(&|r| r.citation_recall);
    let shown: usize = results.iter().map(|r| r.cited.len()).sum();
    let invalid: usize = results.iter().map(|r| r.invalid_shown).sum();
    s.invalid_citations_shown = invalid;
    s.citation_validity = (shown + invalid > 0).then(|| shown as f64 / (shown + invalid) as f64);
    let counts: AbstentionCounts = results
        .iter()
        .map(|r| (r.kind.is_answerable(), r.abstained))
        .collect();
    s.unanswerable_declined = counts.correct_decline_rate();
    s.answerable_declined = counts.wrong_decline_rate();
    let latencies: Vec<f64> = results.iter().map(|r| r.timings.total_ms).collect();
    s.latency_p50_ms = metrics::percentile(&latencies, 50.0);
    s.latency_p95_ms = metrics::percentile(&latencies, 95.0);
    let generated_runs: Vec<&QuestionResult> = results
        .iter()
        .filter(|r| r.timings.prompt_tokens > 0)
        .collect();
    let prefill: Vec<f64> = generated_runs
        .iter()
        .map(|r| r.timings.prefill_tok_s)
        .collect();
    let decode: Vec<f64> = generated_runs
        .iter()
        .map(|r| r.timings.decode_tok_s)
        .filter(|v| *v > 0.0)
        .collect();
    s.prefill_tok_s = metrics::percentile(&prefill, 50.0);
    s.decode_tok_s = metrics::percentile(&decode, 50.0);
    s
}

//! One question through the whole pipeline: retrieve, decide whether the passages are relevant
//! enough, prompt, generate, check citations. Called by `ask` and by the eval runner; takes
//! ready-built stages and never touches the CLI.

use std::time::Instant;

use serde::Serialize;

use crate::answer::{self, CheckConfig, CheckedAnswer, Passage};
use crate::embed::Embedder;
use crate::generate::{GenOptions, Generator, StopReason};
use crate::index::{self, Hit, Index, RetrievalConfig};

#[derive(Debug, thiserror::Error)]
pub enum AskError {
    #[error("the question is empty")]
    EmptyQuestion,
    #[error("retrieval: {0}")]
    Index(#[from] index::IndexError),
    #[error("generation: {0}")]
    Generate(#[from] crate::generate::GenerateError),
}

/// Settings of one ask, resolved from flags and defaults.
#[derive(Debug, Clone, Serialize)]
pub struct AskConfig {
    pub retrieval: RetrievalConfig,
    /// Below this best dense similarity no passage is relevant and docqa abstains without
    /// asking the model.
    pub min_relevance: f32,
    pub check: CheckConfig,
    pub max_tokens: usize,
    /// Tokens for the short answer copied out of the answer sentence; 0 turns that step off.
    pub short_answer_tokens: usize,
}

impl Default for AskConfig {
    fn default() -> Self {
        Self {
            retrieval: RetrievalConfig::default(),
            min_relevance: 0.2,
            check: CheckConfig::default(),
            max_tokens: 96,
            short_answer_tokens: 24,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub retrieval_ms: f64,
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    pub prefill_ms: f64,
    pub decode_ms: f64,
    pub prefill_tok_s: f64,
    pub decode_tok_s: f64,
    /// Prefill and decode of the short-answer step (0 when it did not run).
    pub short_answer_ms: f64,
    pub total_ms: f64,
}

/// The outcome of one question.
#[derive(Debug, Clone, Serialize)]
pub struct AskOutcome {
    pub hits: Vec<Hit>,
    pub checked: CheckedAnswer,
    /// The words of the first supported answer sentence that answer the question (a span of that
    /// sentence, so as grounded as it is); `None` when docqa abstained or the step was off.
    pub short_answer: Option<String>,
    /// The model's raw reply (empty when docqa abstained before generating).
    pub draft: String,
    pub timings: Timings,
}

/// Answers `question` from `index`. `on_token` receives the draft as it is generated.
pub fn ask(
    question: &str,
    index: &Index,
    embedder: &dyn Embedder,
    generator: &mut dyn Generator,
    cfg: &AskConfig,
    on_token: &mut dyn FnMut(&str),
) -> Result<AskOutcome, AskError> {
    if question.trim().is_empty() {
        return Err(AskError::EmptyQuestion);
    }
    let started = Instant::now();
    let hits = index::retrieve(index, embedder, question, &cfg.retrieval)?;
    let mut timings = Timings {
        retrieval_ms: started.elapsed().as_secs_f64() * 1e3,
        ..Default::default()
    };
    let best_dense = hits
        .iter()
        .filter_map(|h| h.dense.map(|d| d.score))
        .fold(f32::MIN, f32::max);
    let passages: Vec<Passage> = hits
        .iter()
        .map(|h| {
            let c = &index.chunks[h.index];
            Passage {
                id: c.id.clone(),
                title: c.title.clone(),
                text: c.text.clone(),
            }
        })
        .collect();
    let relevant = !hits.is_empty() && (best_dense == f32::MIN || best_dense >= cfg.min_relevance);
    if !relevant {
        timings.total_ms = started.elapsed().as_secs_f64() * 1e3;
        return Ok(AskOutcome {
            hits,
            checked: CheckedAnswer {
                text: answer::ABSTAIN_TEXT.into(),
                sentences: Vec::new(),
                cited: Vec::new(),
                dropped: Vec::new(),
                abstained: true,
                abstain_reason: Some(format!(
                    "no passage is relevant enough (best similarity {best_dense:.2} < {:.2})",
                    cfg.min_relevance
                )),
            },
            short_answer: None,
            draft: String::new(),
            timings,
        });
    }
    let prompt = answer::build_prompt(question, &passages);
    let opts = GenOptions {
        max_tokens: cfg.max_tokens,
        ..Default::default()
    };
    let gen_started = Instant::now();
    let generation = generator.generate(&prompt, &opts, on_token)?;
    let gen_wall_ms = gen_started.elapsed().as_secs_f64() * 1e3;
    timings.prompt_tokens = generation.prompt_tokens;
    timings.generated_tokens = generation.generated_tokens;
    timings.prefill_ms = generation.prefill_ms;
    timings.decode_ms = generation.decode_ms;
    timings.prefill_tok_s = generation.prefill_tokens_per_s();
    timings.decode_tok_s = generation.decode_tokens_per_s();
    let reply = match generation.stop_reason {
        StopReason::MaxTokens => answer::drop_unfinished_tail(&generation.text),
        _ => generation.text.as_str(),
    };
    let checked = answer::check_answer(question, reply, &passages, &cfg.check);
    let mut short_answer = None;
    let mut short_wall_ms = 0.0;
    if let Some(sentence) =
        answer::short_answer_source(&checked).filter(|_| cfg.short_answer_tokens > 0)
    {
        let opts = GenOptions {
            max_tokens: cfg.short_answer_tokens,
            copy_from: Some(sentence.to_string()),
            avoid_starts: answer::question_words(question),
            ..Default::default()
        };
        let short_started = Instant::now();
        let span = generator.generate(
            &answer::short_answer_prompt(question, sentence),
            &opts,
            &mut |_| {},
        )?;
        short_wall_ms = short_started.elapsed().as_secs_f64() * 1e3;
        timings.short_answer_ms = span.prefill_ms + span.decode_ms;
        short_answer = answer::clean_short_answer(&span.text, question);
    }
    // Latency counts the generations' own prefill and decode time rather than the wall time of
    // the calls, so a generation replayed from the eval cache reports what it cost when it ran.
    timings.total_ms = started.elapsed().as_secs_f64() * 1e3 - gen_wall_ms - short_wall_ms
        + generation.prefill_ms
        + generation.decode_ms
        + timings.short_answer_ms;
    Ok(AskOutcome {
        hits,
        checked,
        short_answer,
        draft: generation.text,
        timings,
    })
}

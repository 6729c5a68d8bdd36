//! One question through the whole pipeline: retrieve, decide whether the passages are relevant
//! enough, prompt, generate, check citations. Called by `ask` and by the eval runner; takes
//! ready-built stages and never touches the CLI.

use std::time::Instant;

use serde::Serialize;

use crate::answer::lang::{self, Script};
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
    #[error("verification: the generator scored {0} replies, not the 2 it was asked to score")]
    VerifyScores(usize),
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
    /// Only the first sentence of the draft is checked and shown (the prompt asks for one). On
    /// by default: on the seeds eval it raised the default 1.5B model's citation precision from
    /// 0.877 to 0.906 at the cost of one contained answer (0.780 to 0.763), F1 unchanged; with
    /// the 0.5B model it cost one contained answer and gained nothing.
    pub one_sentence: bool,
    /// When set, the model judges in a separate prompt whether the passage the answer stands on
    /// states it, and docqa abstains when the judgement's margin, log P(Yes) - log P(No), falls
    /// below this value (`-inf` measures the margin without ever declining). `None` skips the
    /// step. See [`DEFAULT_VERIFY_THRESHOLD`].
    pub verify_threshold: Option<f32>,
    /// Decline when the passages an answer stands on lack a number of the question
    /// ([`answer::constraints`]).
    pub check_constraints: bool,
}

/// The verification margin below which `--verify` declines, unless set otherwise.
pub const DEFAULT_VERIFY_THRESHOLD: f32 = 0.0;

impl Default for AskConfig {
    fn default() -> Self {
        Self {
            retrieval: RetrievalConfig::default(),
            min_relevance: 0.2,
            check: CheckConfig::default(),
            max_tokens: 96,
            short_answer_tokens: 24,
            one_sentence: true,
            verify_threshold: None,
            check_constraints: true,
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
    /// Prefill and decode of the verification step (0 when it did not run).
    pub verify_ms: f64,
    /// Prefill and decode of translating a question into English and its answer back (0 for
    /// a question in Latin script).
    pub translate_ms: f64,
    pub total_ms: f64,
}

/// The three judgements of verification, each a margin log P(Yes) - log P(No) of the model's
/// one-token reply, on the passages the answer stands on. Summed, they separate answerable from
/// unanswerable SQuAD 2.0 questions better than any one of them (docs/decisions.md,
/// "Declining").
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct VerifyParts {
    /// Does the text state the drafted sentence ([`answer::verify_prompt`])?
    pub claim: f32,
    /// Does the text give the short answer as the answer to this exact question
    /// ([`answer::answer_claim_prompt`])?
    pub answer: f32,
    /// Does the text answer this exact question at all ([`answer::answerable_prompt`])?
    pub question: f32,
    /// True when the three judged the sentences that hold the short answer
    /// ([`answer::constraints::evidence_window`]) rather than the whole passages.
    pub focused: bool,
}

/// The outcome of one question.
#[derive(Debug, Clone, Serialize)]
pub struct AskOutcome {
    /// For a question answered in another language than its passages': the checked answer in
    /// English, before `checked.text` was translated.
    pub answer_english: Option<String>,
    /// The question's English translation, for a question written in another script.
    pub question_english: Option<String>,
    pub hits: Vec<Hit>,
    /// How many of `hits`, from the first, the prompt showed the model: all of them unless the
    /// model's context holds fewer (then as many as fit beside room for the answer); 0 when
    /// docqa abstained before generating.
    pub passages_used: usize,
    pub checked: CheckedAnswer,
    /// The words of the first supported answer sentence that answer the question (a span of that
    /// sentence, so as grounded as it is); `None` when docqa abstained or the step was off.
    pub short_answer: Option<String>,
    /// The model's raw reply (empty when docqa abstained before generating).
    pub draft: String,
    /// The verification margin: the sum of [`VerifyParts`], compared with the threshold;
    /// `None` when the step did not run.
    pub verify_margin: Option<f32>,
    /// The three judgements the verification margin adds up.
    pub verify_parts: Option<VerifyParts>,
    /// What of the question's constraints the passage the answer stands on lacks; `None`
    /// when no sentence was supported.
    pub coverage: Option<answer::constraints::Coverage>,
    pub timings: Timings,
}

/// The wall time of a question's generation calls and what they cost by their own account
/// (prefill plus decode), so latency can count the latter: a generation replayed from the eval
/// cache then reports what it cost when it ran.
#[derive(Default)]
struct GenClock {
    wall_ms: f64,
    cost_ms: f64,
}

impl GenClock {
    fn generate(
        &mut self,
        generator: &mut dyn Generator,
        prompt: &crate::generate::Prompt,
        opts: &GenOptions,
        on_token: &mut dyn FnMut(&str),
    ) -> Result<crate::generate::Generation, AskError> {
        let started = Instant::now();
        let g = generator.generate(prompt, opts, on_token)?;
        self.wall_ms += started.elapsed().as_secs_f64() * 1e3;
        self.cost_ms += g.prefill_ms + g.decode_ms;
        Ok(g)
    }
}

/// A question as retrieval and drafting see it: as written, and in English when it is written
/// in another script (MiniLM embeds English only, and the documents are mostly English).
#[derive(Debug, Clone, Serialize)]
pub struct Query {
    pub original: String,
    /// The script of a question not written in Latin letters; `None` for one that is.
    pub script: Option<Script>,
    /// The question in English, for a question in another script when a generator translated
    /// it.
    pub english: Option<String>,
    /// Prefill and decode of the translation (0 when none ran).
    pub translate_ms: f64,
}

impl Query {
    /// `question` as written, with no translation.
    pub fn plain(question: &str) -> Self {
        Self {
            original: question.to_string(),
            script: lang::dominant_script(question).filter(|s| *s != Script::Latin),
            english: None,
            translate_ms: 0.0,
        }
    }

    /// What the dense retriever embeds: the English translation when there is one.
    pub fn dense_text(&self) -> &str {
        self.english.as_deref().unwrap_or(&self.original)
    }

    /// What BM25 matches: the question as written and its translation, so documents in either
    /// language are found by their words.
    pub fn bm25_text(&self) -> String {
        match &self.english {
            Some(e) => format!("{} {e}", self.original),
            None => self.original.clone(),
        }
    }
}

/// `question` made ready for retrieval: translated into English by `generator` when it is
/// written in a script other than Latin. When the passages that translation retrieves are
/// English, the question is translated once more beside them, so that its names and terms are
/// spelled as the documents spell them (docs/decisions.md, "Answers in the question's
/// language").
pub fn understand(
    question: &str,
    index: &Index,
    embedder: &dyn Embedder,
    retrieval: &RetrievalConfig,
    generator: &mut dyn Generator,
) -> Result<Query, AskError> {
    understand_within(question, index, embedder, retrieval, generator, None)
}

/// How many chunks beyond [`lang::GLOSSARY_PASSAGES`] the second translation's retrieval looks
/// at, so that enough remain after [`understand_within`]'s filter.
const GLOSSARY_SLACK: usize = 8;

/// [`understand`], showing the second translation only chunks (by index) that `usable` lets
/// through, when given: the eval's withheld-gold twin must not see its gold evidence there
/// either.
pub fn understand_within(
    question: &str,
    index: &Index,
    embedder: &dyn Embedder,
    retrieval: &RetrievalConfig,
    generator: &mut dyn Generator,
    usable: Option<&dyn Fn(usize) -> bool>,
) -> Result<Query, AskError> {
    if question.trim().is_empty() {
        return Err(AskError::EmptyQuestion);
    }
    let mut query = Query::plain(question);
    if query.script.is_none() {
        return Ok(query);
    }
    let opts = GenOptions {
        max_tokens: 64,
        shared_prefix_messages: lang::to_english_shared_messages(),
        ..Default::default()
    };
    let g = generator.generate(&lang::to_english_prompt(question), &opts, &mut |_| {})?;
    query.translate_ms = g.prefill_ms + g.decode_ms;
    let english = lang::clean_translation(&g.text);
    if english.is_empty() {
        return Ok(query);
    }
    query.english = Some(english);
    let first = RetrievalConfig {
        k: lang::GLOSSARY_PASSAGES + usable.map_or(0, |_| GLOSSARY_SLACK),
        ..retrieval.clone()
    };
    let hits = retrieve(index, embedder, &query, &first)?;
    let texts: Vec<&str> = hits
        .iter()
        .filter(|h| usable.is_none_or(|keep| keep(h.index)))
        .take(lang::GLOSSARY_PASSAGES)
        .map(|h| index.chunks[h.index].text.as_str())
        .collect();
    if texts.is_empty() || lang::dominant_script(&texts.concat()) != Some(Script::Latin) {
        return Ok(query);
    }
    let opts = GenOptions {
        max_tokens: 64,
        ..Default::default()
    };
    let g = generator.generate(
        &lang::grounded_to_english_prompt(question, &texts),
        &opts,
        &mut |_| {},
    )?;
    query.translate_ms += g.prefill_ms + g.decode_ms;
    let grounded = lang::clean_translation(&g.text);
    // A reply that answers rather than translates, or adds a number, keeps the first one.
    if lang::faithful_translation(question, &grounded) {
        query.english = Some(grounded);
    }
    Ok(query)
}

/// Ranks `index`'s chunks for `query` (see [`Query::dense_text`] and [`Query::bm25_text`]).
pub fn retrieve(
    index: &Index,
    embedder: &dyn Embedder,
    query: &Query,
    cfg: &RetrievalConfig,
) -> Result<Vec<Hit>, AskError> {
    Ok(index::retrieve_texts(
        index,
        embedder,
        query.dense_text(),
        &query.bm25_text(),
        cfg,
    )?)
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
    let query = understand(question, index, embedder, &cfg.retrieval, generator)?;
    let hits = retrieve(index, embedder, &query, &cfg.retrieval)?;
    answer_hits(&query, hits, index, generator, cfg, started, on_token)
}

/// Answers `question` from `hits`, retrieved from `index` since `started` (latency counts from
/// then). The eval uses it to answer from a retrieval it has altered, such as one with the gold
/// evidence withheld.
pub fn answer_hits(
    query: &Query,
    hits: Vec<Hit>,
    index: &Index,
    generator: &mut dyn Generator,
    cfg: &AskConfig,
    started: Instant,
    on_token: &mut dyn FnMut(&str),
) -> Result<AskOutcome, AskError> {
    if query.original.trim().is_empty() {
        return Err(AskError::EmptyQuestion);
    }
    let mut timings = Timings {
        retrieval_ms: started.elapsed().as_secs_f64() * 1e3 - query.translate_ms,
        translate_ms: query.translate_ms,
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
    // A question in another script than its passages is drafted and checked in English (the
    // checks compare words with the passages), and its checked answer is translated back.
    let passages_text: String = passages.iter().map(|p| p.text.as_str()).collect();
    let reply_language = query
        .script
        .filter(|s| lang::dominant_script(&passages_text) != Some(*s));
    let question = match (&query.english, reply_language) {
        (Some(english), Some(_)) => english.as_str(),
        _ => query.original.as_str(),
    };
    // MiniLM reads English only: its similarity says nothing about passages in another script,
    // and those are judged by the later checks alone.
    let dense_reads = lang::dominant_script(&passages_text).is_none_or(|s| s == Script::Latin);
    let relevant = !hits.is_empty()
        && (best_dense == f32::MIN || !dense_reads || best_dense >= cfg.min_relevance);
    let mut clock = GenClock::default();
    let drafted = if relevant {
        draft(
            generator,
            &mut clock,
            &mut timings,
            cfg,
            question,
            passages,
            match (query.script, reply_language) {
                (Some(script), None) => Asked::InItsLanguage(script),
                (Some(_), Some(_)) if query.english.is_some() => Asked::Translated {
                    original: &query.original,
                },
                _ => Asked::AsWritten,
            },
            on_token,
        )?
    } else {
        Drafted {
            checked: CheckedAnswer {
                text: answer::ABSTAIN_TEXT.into(),
                sentences: Vec::new(),
                cited: Vec::new(),
                dropped: Vec::new(),
                abstained: true,
                abstain_reason: Some(answer::Decline::NoRelevantPassage {
                    best_similarity: best_dense,
                    min_relevance: cfg.min_relevance,
                }),
            },
            passages_used: 0,
            short_answer: None,
            draft: String::new(),
            verify_margin: None,
            verify_parts: None,
            coverage: None,
        }
    };
    let mut checked = drafted.checked;
    let answer_english = match reply_language {
        Some(script) => Some(translate_answer(
            generator,
            &mut clock,
            &mut checked,
            script,
            &mut timings,
        )?),
        None => None,
    };
    // Latency counts the generations' own prefill and decode time rather than the wall time of
    // the calls, so a generation replayed from the eval cache reports what it cost when it ran.
    timings.total_ms = started.elapsed().as_secs_f64() * 1e3 - clock.wall_ms + clock.cost_ms;
    Ok(AskOutcome {
        answer_english,
        question_english: query.english.clone(),
        hits,
        passages_used: drafted.passages_used,
        checked,
        short_answer: drafted.short_answer,
        draft: drafted.draft,
        verify_margin: drafted.verify_margin,
        verify_parts: drafted.verify_parts,
        coverage: drafted.coverage,
        timings,
    })
}

/// What the answer stage made of relevant passages, before the answer is translated back.
struct Drafted {
    checked: CheckedAnswer,
    passages_used: usize,
    short_answer: Option<String>,
    draft: String,
    verify_margin: Option<f32>,
    verify_parts: Option<VerifyParts>,
    coverage: Option<answer::constraints::Coverage>,
}

/// How a draft prompt puts the question.
enum Asked<'a> {
    AsWritten,
    /// In another script than English, over passages in that script: the draft is asked in
    /// the question's language (the instructions are English, and a small model follows their
    /// language).
    InItsLanguage(Script),
    /// Translated into English for passages in English: the question as written is shown
    /// beside the translation, which a small model gets wrong at times.
    Translated {
        original: &'a str,
    },
}

/// Drafts an answer to `question` from `passages`, checks its citations, takes its short
/// answer and verifies it.
#[allow(clippy::too_many_arguments)]
fn draft(
    generator: &mut dyn Generator,
    clock: &mut GenClock,
    timings: &mut Timings,
    cfg: &AskConfig,
    question: &str,
    mut passages: Vec<Passage>,
    asked: Asked,
    on_token: &mut dyn FnMut(&str),
) -> Result<Drafted, AskError> {
    // A `-k` past the model's context costs the passages that do not fit, not the answer.
    if let Some(context) = generator.context_length() {
        let limit = context.saturating_sub(cfg.max_tokens);
        let generator = &*generator;
        let fit = answer::passages_that_fit(question, &passages, limit, |p| {
            generator.prompt_tokens(p).map(|n| n.unwrap_or(0))
        })?;
        // Not even one passage fits: generating reports the prompt's size.
        passages.truncate(fit.max(1));
    }
    let asked = match asked {
        Asked::InItsLanguage(script) => format!("{question} (Answer in {}.)", script.language()),
        Asked::Translated { original } => format!("{question} (Asked as: {original})"),
        Asked::AsWritten => question.to_string(),
    };
    let prompt = answer::build_prompt(&asked, &passages);
    // The system message opens every draft prompt: kept once computed (also on disk).
    let opts = GenOptions {
        max_tokens: cfg.max_tokens,
        shared_prefix_messages: 1,
        ..Default::default()
    };
    let generation = clock.generate(generator, &prompt, &opts, on_token)?;
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
    let reply = if cfg.one_sentence {
        answer::first_sentence(reply)
    } else {
        reply.to_string()
    };
    let mut checked = answer::check_answer(question, &reply, &passages, &cfg.check);
    let mut short_answer = None;
    if let Some(sentence) =
        answer::short_answer_source(&checked).filter(|_| cfg.short_answer_tokens > 0)
    {
        let mut avoid_starts = answer::question_words(question);
        for attempt in 0..2 {
            let opts = GenOptions {
                max_tokens: cfg.short_answer_tokens,
                copy_from: Some(sentence.to_string()),
                avoid_starts: avoid_starts.clone(),
                shared_prefix_messages: answer::short_answer_shared_messages(),
                ..Default::default()
            };
            let span = clock.generate(
                generator,
                &answer::short_answer_prompt(question, sentence),
                &opts,
                &mut |_| {},
            )?;
            timings.short_answer_ms += span.prefill_ms + span.decode_ms;
            short_answer = answer::clean_short_answer(&span.text, question);
            let Some(short) = short_answer.as_deref() else {
                break;
            };
            let Some(why) = answer::short_answer_mismatch(question, short) else {
                if let Some(why) = answer::short_answer_unquoted(short, &passages) {
                    short_answer = None;
                    checked = checked.declined(why);
                }
                break;
            };
            // The span missed, but the sentence holds what the question lacks (a word of its
            // own, a number when a quantity is asked): one more span, not starting where this
            // one did. A span that copies a negation is the model saying the sentence does not
            // answer, and is taken at its word.
            if attempt == 0 && answer::short_answer_retry(question, sentence, short) {
                avoid_starts.extend(answer::first_word(short));
                continue;
            }
            short_answer = None;
            checked = checked.declined(why);
            break;
        }
    }
    let mut verify_margin = None;
    let mut verify_parts = None;
    let mut coverage = None;
    // The question's numbers must be in the passages the answer stands on. A passage that holds
    // a name of the question which those lack becomes a source too: an answer drawn from two
    // documents cites both, and is verified on both.
    let numbers = answer::supported_sources(&checked).map(|own| {
        let own: Vec<&Passage> = own.iter().map(|&i| &passages[i]).collect();
        answer::constraints::coverage_by(question, &own)
    });
    let misses_numbers =
        cfg.check_constraints && numbers.as_ref().is_some_and(|c| c.misses_numbers());
    if let Some(sources) = answer::supported_sources(&checked).filter(|_| !misses_numbers) {
        if let Some(j) = answer::constraints::complement(question, &sources, &passages) {
            checked.add_source(j, answer::Support::Complement);
        }
    }
    if let Some((sentence, source)) = answer::first_supported(&checked) {
        let sources = answer::supported_sources(&checked).unwrap_or_default();
        let held: Vec<&Passage> = sources.iter().map(|&i| &passages[i]).collect();
        let cov = answer::constraints::coverage_by(question, &held);
        if misses_numbers {
            short_answer = None;
            checked = checked.declined(answer::Decline::QuestionNotCovered {
                passage: source,
                missing: numbers.map(|c| c.missing_numbers).unwrap_or_default(),
            });
        } else if let Some(threshold) = cfg.verify_threshold {
            // The passages the answer stands on, as one text: two when it drew on two documents.
            let text: Vec<&str> = held.iter().map(|p| p.text.as_str()).collect();
            let text = text.join("\n");
            let claim = short_answer.as_deref().unwrap_or(sentence);
            // All three are judged on the sentences that hold the short answer (the whole
            // passages when there is none): a small model judges a near miss better on a few
            // sentences than on whole passages, and reads them faster (docs/decisions.md,
            // "Declining").
            let window = short_answer
                .as_deref()
                .and_then(|short| answer::constraints::evidence_window(question, short, &held));
            let evidence = window.as_deref().unwrap_or(&text);
            let judged = [
                (answer::verify_prompt(evidence, sentence), 1),
                (
                    answer::answer_claim_prompt(evidence, question, claim),
                    answer::answer_claim_shared_messages(),
                ),
                (
                    answer::answerable_prompt(evidence, question),
                    answer::answerable_shared_messages(),
                ),
            ];
            let mut parts = [0.0f32; 3];
            for (part, (prompt, shared)) in parts.iter_mut().zip(&judged) {
                *part = verify_margin_of(generator, clock, prompt, *shared, timings)?;
            }
            let margin: f32 = parts.iter().sum();
            verify_margin = Some(margin);
            verify_parts = Some(VerifyParts {
                claim: parts[0],
                answer: parts[1],
                question: parts[2],
                focused: window.is_some(),
            });
            if margin < threshold {
                short_answer = None;
                checked = checked.declined(answer::Decline::NotVerified {
                    passage: source,
                    margin,
                    threshold,
                });
            }
        }
        coverage = Some(cov);
    }
    Ok(Drafted {
        checked,
        passages_used: passages.len(),
        short_answer,
        draft: generation.text,
        verify_margin,
        verify_parts,
        coverage,
    })
}

/// Replaces `checked`'s shown text by its translation into `script`'s language and returns the
/// English it was checked in. The citation markers are the checked ones: when the translation
/// loses or alters them, they are put back at its end.
fn translate_answer(
    generator: &mut dyn Generator,
    clock: &mut GenClock,
    checked: &mut CheckedAnswer,
    script: Script,
    timings: &mut Timings,
) -> Result<String, AskError> {
    let english = checked.text.clone();
    // Names go through the translation as placeholders and come back as written.
    let (masked, names) = lang::protect_names(&english);
    let opts = GenOptions {
        max_tokens: 48 + 3 * english.split_whitespace().count(),
        shared_prefix_messages: lang::from_english_shared_messages(script),
        ..Default::default()
    };
    let g = clock.generate(
        generator,
        &lang::from_english_prompt(&masked, script),
        &opts,
        &mut |_| {},
    )?;
    timings.translate_ms += g.prefill_ms + g.decode_ms;
    let translated = lang::clean_translation(&g.text);
    // A small model sometimes answers in English again: then the checked English is shown.
    // The language is told without the names, which stay in Latin letters.
    let unnamed = lang::restore_names(&translated, &vec![String::new(); names.len()]);
    if translated.is_empty() || lang::dominant_script(&unnamed) != Some(script) {
        return Ok(english);
    }
    let mut text = lang::restore_names(&translated, &names);
    let wanted = lang::markers(&english);
    if lang::markers(&text) != wanted {
        let mut bare = text.clone();
        for m in lang::markers(&text) {
            bare = bare.replace(&m, "");
        }
        text = format!("{} {}", bare.trim(), wanted.join(" "))
            .trim()
            .to_string();
    }
    checked.text = text;
    Ok(english)
}

/// The margin log P(Yes) - log P(No) of the model's one-token reply to a Yes/No `prompt`.
fn verify_margin_of(
    generator: &mut dyn Generator,
    clock: &mut GenClock,
    prompt: &crate::generate::Prompt,
    shared_prefix_messages: usize,
    timings: &mut Timings,
) -> Result<f32, AskError> {
    let opts = GenOptions {
        max_tokens: 1,
        score_first: vec![answer::VERDICT_YES.into(), answer::VERDICT_NO.into()],
        shared_prefix_messages,
        ..Default::default()
    };
    let verdict = clock.generate(generator, prompt, &opts, &mut |_| {})?;
    timings.verify_ms += verdict.prefill_ms + verdict.decode_ms;
    match verdict.first_logprobs[..] {
        [yes, no] => Ok(yes - no),
        _ => Err(AskError::VerifyScores(verdict.first_logprobs.len())),
    }
}

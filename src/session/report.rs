//! The typed results a session answers with. The command line prints them (`--json`: as they
//! are), and the HTTP and MCP servers send them unchanged, so every front end says the same
//! thing about an answer.

use std::path::PathBuf;

use serde::Serialize;

use crate::answer::constraints::Coverage;
use crate::answer::Decline;
use crate::corpus::{Chunk, ChunkId, DocId};
use crate::generate::GeneratorFeatures;
use crate::index::{Hit, Index, RankScore, RetrievalMode};
use crate::models::ModelKind;
use crate::pipeline::{AskOutcome, VerifyParts};

/// One question answered: what `docqa ask --json` prints and `POST /v1/ask` returns.
#[derive(Debug, Clone, Serialize)]
pub struct AskReport {
    pub question: String,
    pub answer: String,
    pub short_answer: Option<String>,
    pub abstained: bool,
    /// Why docqa declined, in words.
    pub abstain_reason: Option<String>,
    /// Why docqa declined, as the check that declined names it (serialised as its type says).
    pub decline: Option<Decline>,
    /// The sources the shown answer cites, numbered as its markers are.
    pub citations: Vec<Citation>,
    pub dropped_citations: Vec<crate::answer::DroppedCitation>,
    pub sentences: Vec<crate::answer::CheckedSentence>,
    pub draft: String,
    /// A question in another script, translated for retrieval.
    pub question_english: Option<String>,
    /// The answer in English, when the question was translated.
    pub answer_english: Option<String>,
    pub verify_margin: Option<f32>,
    /// The judgements the verification margin adds up, when it ran.
    pub verify_parts: Option<VerifyParts>,
    /// What of the question's constraints the answer's passage lacks.
    pub coverage: Option<Coverage>,
    pub passages_used: usize,
    pub passages_retrieved: usize,
    pub retrieval: Vec<Retrieved>,
    pub index: PathBuf,
    pub models: ModelsUsed,
    pub timings: AskTimings,
}

/// A cited passage.
#[derive(Debug, Clone, Serialize)]
pub struct Citation {
    /// The number the answer's marker uses (`[n]`).
    pub n: usize,
    pub id: ChunkId,
    pub file: DocId,
    pub page: Option<u32>,
    pub start: usize,
    pub end: usize,
    pub title: String,
    pub text: String,
}

/// A retrieved chunk with its scores.
#[derive(Debug, Clone, Serialize)]
pub struct Retrieved {
    pub id: ChunkId,
    pub file: DocId,
    pub page: Option<u32>,
    pub start: usize,
    pub end: usize,
    pub score: f32,
    pub dense: Option<RankScore>,
    pub bm25: Option<RankScore>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelsUsed {
    pub generator: GeneratorRef,
    pub embedder: EmbedderRef,
}

/// The generator an answer came from.
#[derive(Debug, Clone, Serialize)]
pub struct GeneratorRef {
    /// The registry name, the file's name, or the served model's id.
    pub name: String,
    /// Registered, a GGUF file given by path, or served.
    pub kind: ModelKind,
    /// The GGUF file that ran (the re-encoded one when the manifest derives one).
    pub file: Option<String>,
    /// A file given by path: where it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// The weights' sha256 (`None` for a served model: its server holds them).
    pub sha256: Option<String>,
    /// A served model: the API's base URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// How verification is scored and the short answer made, and whether its speed is this
    /// machine's.
    pub features: GeneratorFeatures,
}

impl GeneratorRef {
    pub fn new(name: &str, kind: ModelKind) -> GeneratorRef {
        GeneratorRef {
            name: name.to_string(),
            kind,
            file: None,
            path: None,
            sha256: None,
            url: None,
            features: GeneratorFeatures::default(),
        }
    }

    /// What identifies its outputs, for the generation cache: the weights' sha256, or a served
    /// model's URL and model id.
    pub fn cache_identity(&self) -> String {
        match (&self.sha256, &self.url) {
            (Some(sha256), _) => sha256.clone(),
            (None, Some(url)) => format!("served:{url}#{}", self.name),
            (None, None) => format!("{}:{}", self.kind, self.name),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EmbedderRef {
    pub name: String,
    /// The weights' sha256; for a served embedder, its id (server, model, dimension).
    pub sha256: String,
    /// A served embedder: the API's base URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AskTimings {
    /// Loading the models and the index for this answer: the whole load for a one-shot
    /// command, 0 for a warm session.
    pub load_ms: f64,
    pub retrieval_ms: f64,
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    pub prefill_ms: f64,
    pub decode_ms: f64,
    pub prefill_tok_s: f64,
    pub decode_tok_s: f64,
    pub answer_ms: f64,
    pub total_ms: f64,
}

impl AskReport {
    pub(super) fn new(
        question: &str,
        index: &Index,
        index_path: PathBuf,
        models: ModelsUsed,
        o: AskOutcome,
        load_ms: f64,
    ) -> AskReport {
        let chunk = |h: &Hit| &index.chunks[h.index];
        let citations = o
            .checked
            .cited
            .iter()
            .map(|&i| {
                let c = chunk(&o.hits[i]);
                Citation {
                    n: i + 1,
                    id: c.id.clone(),
                    file: c.doc.clone(),
                    page: c.page,
                    start: c.start,
                    end: c.end,
                    title: c.title.clone(),
                    text: c.text.clone(),
                }
            })
            .collect();
        let retrieval = o.hits.iter().map(|h| Retrieved::new(chunk(h), h)).collect();
        AskReport {
            question: question.to_string(),
            answer: o.checked.text,
            short_answer: o.short_answer,
            abstained: o.checked.abstained,
            abstain_reason: o.checked.abstain_reason.as_ref().map(ToString::to_string),
            decline: o.checked.abstain_reason,
            citations,
            dropped_citations: o.checked.dropped,
            sentences: o.checked.sentences,
            draft: o.draft,
            question_english: o.question_english,
            answer_english: o.answer_english,
            verify_margin: o.verify_margin,
            verify_parts: o.verify_parts,
            coverage: o.coverage,
            passages_used: o.passages_used,
            passages_retrieved: o.hits.len(),
            retrieval,
            index: index_path,
            models,
            timings: AskTimings {
                load_ms,
                retrieval_ms: o.timings.retrieval_ms,
                prompt_tokens: o.timings.prompt_tokens,
                generated_tokens: o.timings.generated_tokens,
                prefill_ms: o.timings.prefill_ms,
                decode_ms: o.timings.decode_ms,
                prefill_tok_s: o.timings.prefill_tok_s,
                decode_tok_s: o.timings.decode_tok_s,
                answer_ms: o.timings.total_ms,
                total_ms: load_ms + o.timings.total_ms,
            },
        }
    }

    /// The answer for a reader: the checked text, its short answer, then the numbered sources
    /// (or, when docqa declined, that it did). What the OpenAI-compatible endpoint and the MCP
    /// `ask` tool put in their text content.
    pub fn to_text(&self) -> String {
        let mut out = self.answer.clone();
        if let Some(short) = &self.short_answer {
            out.push_str(&format!("\nShort answer: {short}"));
        }
        if !self.citations.is_empty() {
            out.push_str("\n\nSources:");
            for c in &self.citations {
                out.push_str(&format!("\n[{}] {} ({})", c.n, c.id, location(c)));
            }
        }
        out
    }
}

impl Retrieved {
    fn new(c: &Chunk, h: &Hit) -> Retrieved {
        Retrieved {
            id: c.id.clone(),
            file: c.doc.clone(),
            page: c.page,
            start: c.start,
            end: c.end,
            score: h.score,
            dense: h.dense,
            bm25: h.bm25,
        }
    }
}

fn location(c: &Citation) -> String {
    match c.page {
        Some(p) => format!("{} p. {p}, bytes {}-{}", c.file, c.start, c.end),
        None => format!("{}, bytes {}-{}", c.file, c.start, c.end),
    }
}

/// A ranking of the corpus for a question: what `docqa search --json` prints and
/// `POST /v1/search` returns.
#[derive(Debug, Clone, Serialize)]
pub struct SearchReport {
    pub question: String,
    pub mode: RetrievalMode,
    pub retrieval_ms: f64,
    pub hits: Vec<SearchHit>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchHit {
    pub id: ChunkId,
    pub file: DocId,
    pub page: Option<u32>,
    pub start: usize,
    pub end: usize,
    pub title: String,
    pub score: f32,
    pub dense: Option<RankScore>,
    pub bm25: Option<RankScore>,
    pub text: String,
}

impl SearchHit {
    pub(super) fn new(c: &Chunk, h: &Hit) -> SearchHit {
        SearchHit {
            id: c.id.clone(),
            file: c.doc.clone(),
            page: c.page,
            start: c.start,
            end: c.end,
            title: c.title.clone(),
            score: h.score,
            dense: h.dense,
            bm25: h.bm25,
            text: c.text.clone(),
        }
    }
}

/// What a session serves: corpus, index and models (the MCP `status` tool, `GET /v1/models`).
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub corpus: PathBuf,
    pub index: PathBuf,
    pub files: usize,
    pub chunks: usize,
    pub embedder: EmbedderRef,
    /// `None` until the generator is loaded.
    pub generator: Option<GeneratorRef>,
    pub threads: usize,
}

/// Text fetched from the corpus by chunk ID or by file and range (the MCP `get` tool).
#[derive(Debug, Clone, Serialize)]
pub struct Excerpt {
    pub file: DocId,
    /// The chunk, when fetched by ID.
    pub id: Option<ChunkId>,
    /// Byte offsets of `text` in the file's text.
    pub start: usize,
    pub end: usize,
    pub text: String,
}

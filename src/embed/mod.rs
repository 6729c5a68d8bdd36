//! Sentence embeddings for dense retrieval: the [`Embedder`] trait and its BERT implementation
//! (all-MiniLM-L6-v2: mean pooling over each text's tokens, then L2 normalisation; the forward
//! pass is [`bert`]).
//! Called by the index builder and by query-time retrieval; takes file paths, never the CLI.

pub mod bert;
mod served;
pub mod worker;

pub use served::ServedEmbedder;

use std::path::Path;

use std::sync::Mutex;

use tokenizers::{Tokenizer, TruncationParams};

use bert::{Bert, BertConfig, Precision, Scratch};

use crate::models::LocalModel;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("embedder {what} {path}: {why}")]
    Load {
        what: &'static str,
        path: String,
        why: String,
    },
    #[error("tokenizing for the embedder: {0}")]
    Tokenize(String),
    #[error("embedder forward pass: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("embedding worker: {0}")]
    Worker(String),
    #[error(transparent)]
    Served(Box<crate::served::ServedError>),
}

impl From<crate::served::ServedError> for EmbedError {
    fn from(e: crate::served::ServedError) -> Self {
        EmbedError::Served(Box::new(e))
    }
}

/// Maps texts to unit-length vectors; similar texts get a high dot product.
pub trait Embedder {
    /// One vector per text, each of length [`Embedder::dim`] and L2 norm 1.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError>;

    fn dim(&self) -> usize;

    /// Identifies the model and weights, stored in the index header so that vectors from
    /// different models are never mixed.
    fn id(&self) -> &str;

    fn embed_one(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        Ok(self.embed(&[text])?.remove(0))
    }
}

/// Tokens per input; all-MiniLM-L6-v2 was trained with 256 (longer input is truncated).
pub const MAX_TOKENS: usize = 256;

pub struct BertEmbedder {
    model: Bert,
    /// Buffers reused by every forward pass of this embedder.
    scratch: Mutex<Scratch>,
    tokenizer: Tokenizer,
    dim: usize,
    batch: usize,
    /// The files it was loaded from and its id, for the index header and for worker processes
    /// to load the same model.
    files: worker::WorkerModel,
    workers: Option<worker::WorkerPool>,
}

/// Fewer texts than this are embedded in-process even with workers: a query is one text, and
/// a worker round trip only pays off over a few batches.
pub const MIN_WORKER_TEXTS: usize = 2 * BATCH;

impl BertEmbedder {
    /// The embedder of a model from the store, under the id every index header records: the
    /// registry name and the first 12 hex digits of the weights' sha256.
    pub fn from_model(name: &str, model: &LocalModel) -> Result<Self, EmbedError> {
        let weights = "model.safetensors";
        let id = format!("{name}@{}", &model.sha256(weights)[..12]);
        Self::load(
            model.path(weights),
            model.path("config.json"),
            model.path("tokenizer.json"),
            id,
        )
    }

    /// Loads safetensors weights, `config.json` and `tokenizer.json`. `id` names the model and
    /// its weights hash.
    pub fn load(
        weights: &Path,
        config: &Path,
        tokenizer: &Path,
        id: String,
    ) -> Result<Self, EmbedError> {
        let load_err = |what, path: &Path, why: String| EmbedError::Load {
            what,
            path: path.display().to_string(),
            why,
        };
        let config_text = std::fs::read_to_string(config)
            .map_err(|e| load_err("config", config, e.to_string()))?;
        let cfg: BertConfig = serde_json::from_str(&config_text)
            .map_err(|e| load_err("config", config, e.to_string()))?;
        let mut tok = Tokenizer::from_file(tokenizer)
            .map_err(|e| load_err("tokenizer", tokenizer, e.to_string()))?;
        // The model's tokenizer.json pads to a fixed 128 tokens; the forward pass takes each
        // text at its own length instead.
        tok.with_padding(None);
        tok.with_truncation(Some(TruncationParams {
            max_length: MAX_TOKENS,
            ..Default::default()
        }))
        .map_err(|e| load_err("tokenizer", tokenizer, e.to_string()))?;
        let model = Bert::load(weights, &cfg, Precision::Fastest)
            .map_err(|e| load_err("weights", weights, e.to_string()))?;
        Ok(Self {
            model,
            scratch: Mutex::new(Scratch::default()),
            tokenizer: tok,
            dim: cfg.hidden_size,
            files: worker::WorkerModel {
                weights: weights.to_path_buf(),
                config: config.to_path_buf(),
                tokenizer: tokenizer.to_path_buf(),
                id,
            },
            batch: BATCH,
            workers: None,
        })
    }

    /// Embeds [`MIN_WORKER_TEXTS`] or more texts at once in `count` worker processes, each
    /// started by `command` (a program that runs [`worker::serve`]) with one candle thread.
    /// On 2 shared cores two workers embed about 1.5 times as fast as one process with two
    /// threads (see `benches/pipeline.rs`). A worker that fails is reported on stderr and its
    /// texts are embedded in-process, so nothing is lost. `count` below 2 turns workers off.
    pub fn with_workers(
        mut self,
        command: impl Fn() -> std::process::Command + Send + Sync + 'static,
        count: usize,
    ) -> Self {
        self.workers =
            (count >= 2).then(|| worker::WorkerPool::new(command, self.files.clone(), count));
        self
    }

    /// The files this embedder was loaded from, as a worker is told them.
    pub fn worker_model(&self) -> &worker::WorkerModel {
        &self.files
    }

    /// Embeds in-process, whatever workers are configured.
    pub fn embed_here(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = texts
            .iter()
            .map(|t| self.tokenizer.encode(*t, true))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| EmbedError::Tokenize(e.to_string()))?;
        let lens: Vec<usize> = encodings.iter().map(|e| e.get_ids().len()).collect();
        let mut out = vec![Vec::new(); texts.len()];
        for group in length_batches(&lens, self.batch) {
            let batch: Vec<&tokenizers::Encoding> = group.iter().map(|&i| &encodings[i]).collect();
            for (i, v) in group.iter().zip(self.embed_batch(&batch)?) {
                out[*i] = v;
            }
        }
        Ok(out)
    }

    /// Texts per forward pass (default [`BATCH`]); 1 runs each text alone.
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Texts through the model together. They are not padded (each attends over its own
    /// tokens), so batching only gives the matrix products more rows; texts are still grouped
    /// by length (see [`Embedder::embed`]).
    fn embed_batch(
        &self,
        encodings: &[&tokenizers::Encoding],
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let ids: Vec<&[u32]> = encodings.iter().map(|e| e.get_ids()).collect();
        // A pass that panicked leaves only stale numbers in the buffers, all overwritten.
        let mut scratch = self.scratch.lock().unwrap_or_else(|p| p.into_inner());
        Ok(self.model.embed(&ids, &mut scratch))
    }
}

/// Texts per forward pass. Texts are sorted by token count and batched with their neighbours
/// (a habit from when batches were padded to their longest text; the forward pass no longer
/// pads); measured on 2 cores, see `benches/pipeline.rs`.
pub const BATCH: usize = 8;

/// Texts per forward pass in a single-threaded worker process. Chosen for candle's padded
/// forward pass (on 2 shared cores, two workers embedded 30.8 chunks/s at batch 4 against 27.9
/// at 8 and 27.1 at 1, `benches/pipeline.rs`, medians of 3, one session); not re-measured for
/// docqa's unpadded one, where 4 texts (~500 tokens) already give its integer products whole
/// 96-token blocks.
pub const WORKER_BATCH: usize = 4;

/// Groups `lens` (token counts) into batches of at most `batch` indices of similar length:
/// indices sorted by length, then cut into runs. Returns index lists in that order.
fn length_batches(lens: &[usize], batch: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lens.len()).collect();
    order.sort_by_key(|&i| (lens[i], i));
    order.chunks(batch.max(1)).map(<[usize]>::to_vec).collect()
}

impl Embedder for BertEmbedder {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if let Some(pool) = self
            .workers
            .as_ref()
            .filter(|_| texts.len() >= MIN_WORKER_TEXTS)
        {
            match pool.embed(texts) {
                Ok(vectors) => return Ok(vectors),
                Err(e) => tracing::warn!("{e}; embedding in this process instead"),
            }
        }
        self.embed_here(texts)
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn id(&self) -> &str {
        &self.files.id
    }
}

/// Dot product of two unit vectors: their cosine similarity.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_group_similar_lengths_and_cover_every_text_once() {
        let lens = [30, 5, 12, 29, 6, 13, 31];
        let b = length_batches(&lens, 3);
        assert_eq!(b, vec![vec![1, 4, 2], vec![5, 3, 0], vec![6]]);
        let mut all: Vec<usize> = b.concat();
        all.sort();
        assert_eq!(all, (0..lens.len()).collect::<Vec<_>>());
        assert!(length_batches(&[], 8).is_empty());
    }
}

//! Sentence embeddings for dense retrieval: the [`Embedder`] trait and its candle BERT
//! implementation (all-MiniLM-L6-v2: attention-mask mean pooling, then L2 normalisation).
//! Called by the index builder and by query-time retrieval; takes file paths, never the CLI.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{Tokenizer, TruncationParams};

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
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    dim: usize,
    id: String,
}

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
        let cfg: Config = serde_json::from_str(&config_text)
            .map_err(|e| load_err("config", config, e.to_string()))?;
        let mut tok = Tokenizer::from_file(tokenizer)
            .map_err(|e| load_err("tokenizer", tokenizer, e.to_string()))?;
        // The model's tokenizer.json pads to a fixed 128 tokens; texts go through one at a time
        // and unpadded.
        tok.with_padding(None);
        tok.with_truncation(Some(TruncationParams {
            max_length: MAX_TOKENS,
            ..Default::default()
        }))
        .map_err(|e| load_err("tokenizer", tokenizer, e.to_string()))?;
        let device = Device::Cpu;
        // SAFETY: the weights file is verified by sha256 in the model cache and not modified
        // while docqa runs.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[weights], DType::F32, &device) }
            .map_err(|e| load_err("weights", weights, e.to_string()))?;
        let model =
            BertModel::load(vb, &cfg).map_err(|e| load_err("weights", weights, e.to_string()))?;
        Ok(Self {
            model,
            tokenizer: tok,
            device,
            dim: cfg.hidden_size,
            id,
        })
    }

    /// One text through the model. Texts go one at a time: with nothing to pad, no mask is
    /// needed, and batching measured slower on CPU (padding, and working sets that fall out of
    /// cache).
    fn embed_text(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| EmbedError::Tokenize(e.to_string()))?;
        let ids = encoding.get_ids();
        let ids = Tensor::from_slice(ids, (1, ids.len()), &self.device)?;
        let type_ids = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &type_ids, None)?;
        // Mean over the tokens (all are real tokens), then L2 normalisation.
        let mean = hidden.mean(1)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?;
        let unit = mean.broadcast_div(&norm)?;
        Ok(unit.squeeze(0)?.to_vec1::<f32>()?)
    }
}

impl Embedder for BertEmbedder {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        texts.iter().map(|t| self.embed_text(t)).collect()
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn id(&self) -> &str {
        &self.id
    }
}

/// Dot product of two unit vectors: their cosine similarity.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

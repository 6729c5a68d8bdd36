//! Sentence embeddings for dense retrieval: the [`Embedder`] trait and its candle BERT
//! implementation (all-MiniLM-L6-v2: attention-mask mean pooling, then L2 normalisation).
//! Called by the index builder and by query-time retrieval; takes file paths, never the CLI.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

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
/// Texts per forward pass; sorted by length first, so padding stays small.
const BATCH: usize = 16;

pub struct BertEmbedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    dim: usize,
    id: String,
}

impl BertEmbedder {
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
        tok.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
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

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedError::Tokenize(e.to_string()))?;
        let rows = encodings.len();
        let cols = encodings[0].get_ids().len();
        let mut ids = Vec::with_capacity(rows * cols);
        let mut mask = Vec::with_capacity(rows * cols);
        for e in &encodings {
            ids.extend_from_slice(e.get_ids());
            mask.extend_from_slice(e.get_attention_mask());
        }
        let ids = Tensor::from_vec(ids, (rows, cols), &self.device)?;
        let mask = Tensor::from_vec(mask, (rows, cols), &self.device)?;
        let type_ids = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &type_ids, Some(&mask))?;
        let mask_f = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask_f)?.sum(1)?;
        let counts = mask_f.sum(1)?;
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?;
        let unit = mean.broadcast_div(&norms)?;
        Ok(unit.to_vec2::<f32>()?)
    }
}

impl Embedder for BertEmbedder {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        for idx in order.chunks(BATCH) {
            let batch: Vec<&str> = idx.iter().map(|&i| texts[i]).collect();
            for (v, &i) in self.embed_batch(&batch)?.into_iter().zip(idx) {
                out[i] = v;
            }
        }
        Ok(out)
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

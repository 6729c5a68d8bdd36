//! The BERT encoder forward pass the embedder runs (all-MiniLM-L6-v2 and other BERT
//! checkpoints with the exact erf GELU), written for CPU throughput: the texts of a batch are
//! concatenated without padding and each attends over its own tokens only, the query, key and
//! value projections are one matrix product, biases are added by the products themselves, and
//! the element-wise work runs in `crate::kernels`. Buffers live in a [`Scratch`] reused from
//! batch to batch. candle-transformers' `BertModel` computes the same function and is the
//! reference in `tests/embed.rs`. Called by `embed::BertEmbedder`; takes a weights path and a
//! config, never the CLI.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::Deserialize;

use crate::kernels::elementwise::{add_layer_norm, gelu_erf, softmax};
use crate::kernels::int16::{self, I16Acts, I16Matrix};

/// The fields of a BERT `config.json` the forward pass uses.
#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    pub layer_norm_eps: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum BertError {
    #[error("tensor {name}: {why}")]
    Tensor { name: String, why: String },
    #[error("unsupported config: {0}")]
    Config(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// How the matrix products are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// 16-bit integers ([`int16`]) where the CPU has AVX-512 VNNI, else f32: embeddings within
    /// 4e-4 of f32 ones for all-MiniLM-L6-v2, at about twice the speed.
    Fastest,
    /// f32 everywhere, as candle-transformers computes it.
    F32,
}

/// `y = x W^T + b` for a weight of `rows` outputs by `cols` inputs, row-major as stored.
struct Linear {
    w: Vec<f32>,
    b: Vec<f32>,
    rows: usize,
    cols: usize,
    /// The weights as 16-bit integers, when the CPU multiplies those faster (then `w` is
    /// empty).
    q: Option<I16Matrix>,
}

struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

struct Layer {
    /// Query, key and value stacked: 3 x hidden outputs.
    qkv: Linear,
    attn_out: Linear,
    attn_norm: Norm,
    ffn_in: Linear,
    ffn_out: Linear,
    ffn_norm: Norm,
}

pub struct Bert {
    hidden: usize,
    heads: usize,
    max_positions: usize,
    eps: f32,
    word: Vec<f32>,
    position: Vec<f32>,
    /// Token type 0's embedding: every input is a single segment.
    token_type: Vec<f32>,
    emb_norm: Norm,
    layers: Vec<Layer>,
    /// Matrix products in 16-bit integers ([`int16`]) rather than f32.
    int16: bool,
}

/// Working buffers of a forward pass, kept between batches so their pages are not faulted in
/// again for every batch.
#[derive(Default)]
pub struct Scratch {
    h: Vec<f32>,
    qkv: Vec<f32>,
    ctx: Vec<f32>,
    tmp: Vec<f32>,
    inter: Vec<f32>,
    acts: I16Acts,
    attn: AttnScratch,
}

/// Attention's buffers: one head's scores over one text, and for the integer products its
/// queries, keys and values.
#[derive(Default)]
struct AttnScratch {
    scores: Vec<f32>,
    acts: I16Acts,
    q: Vec<f32>,
    k: I16Matrix,
    v: I16Matrix,
}

fn resize(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    v.resize(n, 0.0);
    &mut v[..n]
}

/// Threads for the matrix products: candle's count (1 in a worker process).
fn parallelism() -> gemm::Parallelism {
    match candle_core::utils::get_num_threads() {
        0 | 1 => gemm::Parallelism::None,
        n => gemm::Parallelism::Rayon(n),
    }
}

impl Linear {
    /// `out[t] = x[t] W^T + b` for the `x.len() / cols` rows of `x`.
    fn forward(&self, x: &[f32], out: &mut [f32], par: gemm::Parallelism, acts: &mut I16Acts) {
        let m = x.len() / self.cols;
        assert_eq!(x.len(), m * self.cols);
        assert_eq!(out.len(), m * self.rows);
        if let Some(q) = &self.q {
            return int16::matmul(q, x, m, Some(&self.b), out, self.rows, acts);
        }
        for row in out.chunks_exact_mut(self.rows) {
            row.copy_from_slice(&self.b);
        }
        // SAFETY: the shapes were checked above; W^T is read through W's strides (column j of
        // W^T is row j of W).
        unsafe {
            gemm::gemm(
                m,
                self.rows,
                self.cols,
                out.as_mut_ptr(),
                1,
                self.rows as isize,
                true,
                x.as_ptr(),
                1,
                self.cols as isize,
                self.w.as_ptr(),
                self.cols as isize,
                1,
                1.0,
                1.0,
                false,
                false,
                false,
                par,
            );
        }
    }
}

/// The tensors of a safetensors file by name, with any `bert.` prefix dropped.
struct Weights(HashMap<String, Tensor>);

impl Weights {
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, BertError> {
        let err = |why: String| BertError::Tensor {
            name: name.to_string(),
            why,
        };
        let t = self.0.remove(name).ok_or_else(|| err("missing".into()))?;
        if t.dims() != shape {
            return Err(err(format!("shape {:?}, expected {shape:?}", t.dims())));
        }
        Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
    }

    fn linear(&mut self, prefix: &str, rows: usize, cols: usize) -> Result<Linear, BertError> {
        Ok(Linear {
            w: self.take(&format!("{prefix}.weight"), &[rows, cols])?,
            b: self.take(&format!("{prefix}.bias"), &[rows])?,
            rows,
            cols,
            q: None,
        })
    }

    fn norm(&mut self, prefix: &str, d: usize) -> Result<Norm, BertError> {
        Ok(Norm {
            gamma: self.take(&format!("{prefix}.weight"), &[d])?,
            beta: self.take(&format!("{prefix}.bias"), &[d])?,
        })
    }
}

impl Bert {
    pub fn load(weights: &Path, cfg: &BertConfig, precision: Precision) -> Result<Self, BertError> {
        if cfg.hidden_act != "gelu" {
            return Err(BertError::Config(format!(
                "hidden_act {:?} (only the erf \"gelu\")",
                cfg.hidden_act
            )));
        }
        let d = cfg.hidden_size;
        if cfg.num_attention_heads == 0 || !d.is_multiple_of(cfg.num_attention_heads) {
            return Err(BertError::Config(format!(
                "hidden_size {d} is not a multiple of num_attention_heads {}",
                cfg.num_attention_heads
            )));
        }
        let all = candle_core::safetensors::load(weights, &Device::Cpu)?;
        let mut w = Weights(
            all.into_iter()
                .map(|(k, v)| (k.strip_prefix("bert.").unwrap_or(&k).to_string(), v))
                .collect(),
        );
        let word = w.take("embeddings.word_embeddings.weight", &[cfg.vocab_size, d])?;
        let position = w.take(
            "embeddings.position_embeddings.weight",
            &[cfg.max_position_embeddings, d],
        )?;
        let types = w.take("embeddings.token_type_embeddings.weight", &[2, d])?;
        let emb_norm = w.norm("embeddings.LayerNorm", d)?;
        let int16 = precision == Precision::Fastest
            && int16::available()
            && (d / cfg.num_attention_heads).is_multiple_of(int16::COL_STEP);
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            let (q, k, v) = (
                w.linear(&format!("{p}.attention.self.query"), d, d)?,
                w.linear(&format!("{p}.attention.self.key"), d, d)?,
                w.linear(&format!("{p}.attention.self.value"), d, d)?,
            );
            let qkv = Linear {
                w: [q.w, k.w, v.w].concat(),
                b: [q.b, k.b, v.b].concat(),
                rows: 3 * d,
                cols: d,
                q: None,
            };
            let mut l = Layer {
                qkv,
                attn_out: w.linear(&format!("{p}.attention.output.dense"), d, d)?,
                attn_norm: w.norm(&format!("{p}.attention.output.LayerNorm"), d)?,
                ffn_in: w.linear(&format!("{p}.intermediate.dense"), cfg.intermediate_size, d)?,
                ffn_out: w.linear(&format!("{p}.output.dense"), d, cfg.intermediate_size)?,
                ffn_norm: w.norm(&format!("{p}.output.LayerNorm"), d)?,
            };
            if int16 {
                for lin in [&mut l.qkv, &mut l.attn_out, &mut l.ffn_in, &mut l.ffn_out] {
                    lin.q = Some(I16Matrix::quantize(&lin.w, lin.rows, lin.cols));
                    lin.w = Vec::new();
                }
            }
            layers.push(l);
        }
        Ok(Self {
            hidden: d,
            heads: cfg.num_attention_heads,
            max_positions: cfg.max_position_embeddings,
            eps: cfg.layer_norm_eps as f32,
            word,
            position,
            token_type: types[..d].to_vec(),
            emb_norm,
            layers,
            int16,
        })
    }

    pub fn hidden_size(&self) -> usize {
        self.hidden
    }

    /// The last layer's hidden states of each text (token ids, at most the position table's
    /// length each), concatenated: one row of `hidden_size` per token, in order.
    pub fn forward<'s>(&self, texts: &[&[u32]], s: &'s mut Scratch) -> &'s [f32] {
        let d = self.hidden;
        let total: usize = texts.iter().map(|t| t.len()).sum();
        let par = parallelism();
        let h = resize(&mut s.h, total * d);
        let mut row = 0;
        for ids in texts {
            assert!(ids.len() <= self.max_positions, "{} tokens", ids.len());
            for (pos, &id) in ids.iter().enumerate() {
                let out = &mut h[row * d..(row + 1) * d];
                let word = &self.word[id as usize * d..(id as usize + 1) * d];
                let position = &self.position[pos * d..(pos + 1) * d];
                for (((o, w), p), t) in out.iter_mut().zip(word).zip(position).zip(&self.token_type)
                {
                    *o = w + p + t;
                }
                row += 1;
            }
        }
        let zeros = resize(&mut s.tmp, total * d);
        zeros.fill(0.0);
        add_layer_norm(
            h,
            zeros,
            &self.emb_norm.gamma,
            &self.emb_norm.beta,
            self.eps,
        );

        for layer in &self.layers {
            let qkv = resize(&mut s.qkv, total * 3 * d);
            layer.qkv.forward(&s.h, qkv, par, &mut s.acts);
            let ctx = resize(&mut s.ctx, total * d);
            if self.int16 {
                self.attention_int16(texts, qkv, ctx, &mut s.attn);
            } else {
                self.attention(texts, qkv, ctx, &mut s.attn.scores);
            }
            let tmp = resize(&mut s.tmp, total * d);
            layer.attn_out.forward(ctx, tmp, par, &mut s.acts);
            // tmp = LN(attn + h): the attention block's output, the FFN's input and residual.
            add_layer_norm(
                tmp,
                &s.h,
                &layer.attn_norm.gamma,
                &layer.attn_norm.beta,
                self.eps,
            );
            let inter = resize(&mut s.inter, total * layer.ffn_in.rows);
            layer.ffn_in.forward(tmp, inter, par, &mut s.acts);
            gelu_erf(inter);
            layer
                .ffn_out
                .forward(inter, &mut s.h[..total * d], par, &mut s.acts);
            add_layer_norm(
                &mut s.h[..total * d],
                tmp,
                &layer.ffn_norm.gamma,
                &layer.ffn_norm.beta,
                self.eps,
            );
        }
        &s.h[..total * d]
    }

    /// Multi-head self-attention of each text over its own tokens: `qkv` holds each token's
    /// query, key and value rows side by side; `ctx` gets the heads' outputs side by side.
    fn attention(&self, texts: &[&[u32]], qkv: &[f32], ctx: &mut [f32], scores: &mut Vec<f32>) {
        let d = self.hidden;
        let dh = d / self.heads;
        let scale = 1.0 / (dh as f32).sqrt();
        let mut start = 0;
        for ids in texts {
            let len = ids.len();
            if len == 0 {
                continue;
            }
            let sc = resize(scores, len * len);
            for head in 0..self.heads {
                let q = &qkv[start * 3 * d + head * dh..];
                let k = &qkv[start * 3 * d + d + head * dh..];
                let v = &qkv[start * 3 * d + 2 * d + head * dh..];
                let out = &mut ctx[start * d + head * dh..];
                // The last row read is row len-1 of the text, dh wide.
                assert!(v.len() >= (len - 1) * 3 * d + dh && out.len() >= (len - 1) * d + dh);
                // SAFETY: every read and write stays inside the slices (checked above): q, k
                // and v rows are 3d apart, ctx rows d apart, scores len x len.
                unsafe {
                    // scores = scale * q k^T
                    gemm::gemm(
                        len,
                        len,
                        dh,
                        sc.as_mut_ptr(),
                        1,
                        len as isize,
                        false,
                        q.as_ptr(),
                        1,
                        3 * d as isize,
                        k.as_ptr(),
                        3 * d as isize,
                        1,
                        0.0,
                        scale,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
                for r in sc.chunks_exact_mut(len) {
                    softmax(r);
                }
                // SAFETY: as above.
                unsafe {
                    // ctx_head = probabilities v
                    gemm::gemm(
                        len,
                        dh,
                        len,
                        out.as_mut_ptr(),
                        1,
                        d as isize,
                        false,
                        sc.as_ptr(),
                        1,
                        len as isize,
                        v.as_ptr(),
                        1,
                        3 * d as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
            }
            start += len;
        }
    }

    /// [`Bert::attention`] with both products in 16-bit integers: scores = (q scale) k^T with
    /// the keys as the matrix, then probabilities v with v^T as the matrix (each text's length
    /// padded with zeros to whole steps of 32).
    fn attention_int16(&self, texts: &[&[u32]], qkv: &[f32], ctx: &mut [f32], s: &mut AttnScratch) {
        let d = self.hidden;
        let dh = d / self.heads;
        let scale = 1.0 / (dh as f32).sqrt();
        let mut start = 0;
        for ids in texts {
            let len = ids.len();
            if len == 0 {
                continue;
            }
            let padded = len.next_multiple_of(int16::COL_STEP);
            let base = start * 3 * d;
            for head in 0..self.heads {
                let (qo, ko, vo) = (head * dh, d + head * dh, 2 * d + head * dh);
                let q = resize(&mut s.q, len * dh);
                for (i, row) in q.chunks_exact_mut(dh).enumerate() {
                    let src = &qkv[base + i * 3 * d + qo..][..dh];
                    for (o, x) in row.iter_mut().zip(src) {
                        *o = x * scale;
                    }
                }
                s.acts.quantize(q, len, dh);
                s.k.quantize_rows(len, dh, |r| &qkv[base + r * 3 * d + ko..]);
                let sc = resize(&mut s.scores, len * padded);
                int16::matmul_quantized(&s.k, &s.acts, None, sc, padded);
                s.acts.softmax_quantize(sc, len, padded, len);
                s.v.quantize_transposed(dh, padded, len, |c| &qkv[base + c * 3 * d + vo..]);
                int16::matmul_quantized(&s.v, &s.acts, None, &mut ctx[start * d + qo..], d);
            }
            start += len;
        }
    }

    /// Sentence embeddings: each text's hidden states averaged over its tokens, then scaled to
    /// unit length (sentence-transformers' mean pooling and normalisation).
    pub fn embed(&self, texts: &[&[u32]], s: &mut Scratch) -> Vec<Vec<f32>> {
        let d = self.hidden;
        let h = self.forward(texts, s);
        let mut start = 0;
        texts
            .iter()
            .map(|ids| {
                let mut mean = vec![0.0f32; d];
                for row in h[start * d..(start + ids.len()) * d].chunks_exact(d) {
                    for (m, x) in mean.iter_mut().zip(row) {
                        *m += x;
                    }
                }
                start += ids.len();
                let n = ids.len().max(1) as f32;
                mean.iter_mut().for_each(|m| *m /= n);
                let norm = mean.iter().map(|m| m * m).sum::<f32>().sqrt();
                mean.iter_mut().for_each(|m| *m /= norm);
                mean
            })
            .collect()
    }
}

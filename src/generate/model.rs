//! The decoder-only transformer shared by the `qwen2` and `llama` GGUF architectures (RMSNorm,
//! grouped-query attention with RoPE, SwiGLU MLP), with a KV cache. Used by
//! [`super::GgufGenerator`].
//!
//! The weights stay where they are: every matrix is a view of the memory-mapped GGUF file, read
//! by the quantized kernels of `crate::kernels::quant` (Q4_K, Q5_K, Q6_K and Q8_0 as stored;
//! a tensor in any other encoding is converted to Q8_0 once at load). A prompt of many tokens
//! runs each linear layer as one quantized matrix product over all its tokens (int8 activations,
//! register tiles of 4 rows x 4 tokens); one token at a time (decode) is the same product with
//! one token, bound by memory bandwidth. q/k/v and gate/up each run in one parallel region.
//! Nothing but the KV cache, the norms and the activations is resident beyond the file's pages.

use std::io::Cursor;
use std::sync::Arc;

use candle_core::quantized::{gguf_file, GgmlDType};
use candle_core::{Device, Storage, Tensor};

use super::kernels::{self, SharedMut};
use super::GenerateError;
use crate::kernels::quant::{self, QMatrix, QType, Scratch, WeightBytes};

/// Most prompt tokens processed per GEMM pass; bounds activation memory on long prompts.
const PREFILL_CHUNK: usize = 1024;
/// Fewer tokens than this go through the one-token path one at a time. A batch reads every
/// weight once whatever its size, so two tokens together already cost little more than one.
const DENSE_MIN_TOKENS: usize = 2;
/// Query rows per attention block in prefill: keys after a block's last query are skipped.
const ATTN_QUERY_BLOCK: usize = 128;

/// How RoPE pairs the dimensions of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RopeStyle {
    /// Dimension i rotates with i + head_dim/2 (GPT-NeoX; llama.cpp's NEOX type: qwen2).
    HalfSplit,
    /// Dimension 2i rotates with 2i+1 (llama.cpp's NORM type: llama, whose GGUF q/k weights are
    /// permuted for it).
    Interleaved,
}

/// Hyper-parameters read from `{arch}.*` GGUF metadata.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Config {
    pub(crate) arch: String,
    pub(crate) n_layer: usize,
    pub(crate) d_model: usize,
    pub(crate) n_head: usize,
    pub(crate) n_kv_head: usize,
    pub(crate) head_dim: usize,
    pub(crate) d_ff: usize,
    pub(crate) rms_eps: f32,
    pub(crate) rope_base: f32,
    pub(crate) rope_style: RopeStyle,
    pub(crate) context_length: usize,
}

impl Config {
    pub(crate) fn from_gguf(content: &gguf_file::Content) -> Result<Self, GenerateError> {
        let arch = match content.metadata.get("general.architecture") {
            Some(gguf_file::Value::String(s)) => s.clone(),
            Some(_) => return Err(bad_key("general.architecture", "not a string")),
            None => return Err(missing_key("general.architecture")),
        };
        let rope_style = match arch.as_str() {
            "qwen2" => RopeStyle::HalfSplit,
            "llama" => RopeStyle::Interleaved,
            _ => return Err(GenerateError::UnsupportedArchitecture(arch)),
        };
        let get = |name: &str| content.metadata.get(&format!("{arch}.{name}"));
        let usize_key = |name: &str| -> Result<usize, GenerateError> {
            let key = format!("{arch}.{name}");
            let v = get(name).ok_or_else(|| missing_key(&key))?;
            v.to_u64()
                .ok()
                .or_else(|| v.to_u32().ok().map(u64::from))
                .and_then(|v| usize::try_from(v).ok())
                .filter(|&v| v > 0)
                .ok_or_else(|| bad_key(&key, "not a positive integer"))
        };
        let f32_key = |name: &str, default: Option<f32>| -> Result<f32, GenerateError> {
            let key = format!("{arch}.{name}");
            match get(name) {
                Some(v) => v.to_f32().map_err(|_| bad_key(&key, "not a float")),
                None => default.ok_or_else(|| missing_key(&key)),
            }
        };
        let d_model = usize_key("embedding_length")?;
        let n_head = usize_key("attention.head_count")?;
        let n_kv_head = usize_key("attention.head_count_kv")?;
        let head_dim = match get("attention.key_length") {
            Some(_) => usize_key("attention.key_length")?,
            None => d_model / n_head,
        };
        if n_head % n_kv_head != 0 {
            return Err(bad_key(
                &format!("{arch}.attention.head_count_kv"),
                &format!("{n_kv_head} does not divide {n_head} heads"),
            ));
        }
        if head_dim % kernels::DIMS != 0 || d_model % kernels::QK != 0 {
            return Err(bad_key(
                &format!("{arch}.embedding_length"),
                "head size must be a multiple of 16 and width a multiple of 32",
            ));
        }
        if get("rope.dimension_count").is_some() && usize_key("rope.dimension_count")? != head_dim {
            return Err(bad_key(
                &format!("{arch}.rope.dimension_count"),
                "partial rotary embeddings are not supported",
            ));
        }
        if let Some(gguf_file::Value::String(kind)) = get("rope.scaling.type") {
            if kind != "none" {
                return Err(bad_key(
                    &format!("{arch}.rope.scaling.type"),
                    &format!("RoPE scaling `{kind}` is not supported"),
                ));
            }
        }
        Ok(Config {
            n_layer: usize_key("block_count")?,
            d_ff: usize_key("feed_forward_length")?,
            rms_eps: f32_key("attention.layer_norm_rms_epsilon", None)?,
            rope_base: f32_key("rope.freq_base", Some(10_000.0))?,
            context_length: usize_key("context_length")?,
            arch,
            d_model,
            n_head,
            n_kv_head,
            head_dim,
            rope_style,
        })
    }

    fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }

    fn kv_dim(&self) -> usize {
        self.n_kv_head * self.head_dim
    }
}

fn missing_key(key: &str) -> GenerateError {
    GenerateError::MissingMetadata { key: key.into() }
}

fn bad_key(key: &str, reason: &str) -> GenerateError {
    GenerateError::BadMetadata {
        key: key.into(),
        reason: reason.into(),
    }
}

/// One weight matrix `[rows, cols]` (output × input), quantized.
struct Linear {
    rows: usize,
    m: QMatrix,
}

fn bad_tensor(name: &str, e: impl std::fmt::Display) -> GenerateError {
    GenerateError::BadTensor {
        name: name.into(),
        reason: e.to_string(),
    }
}

struct Layer {
    attn_norm: Vec<f32>,
    q: Linear,
    k: Linear,
    v: Linear,
    /// q, k and v biases concatenated (qwen2 has them, llama not).
    qkv_bias: Option<Vec<f32>>,
    o: Linear,
    ffn_norm: Vec<f32>,
    gate: Linear,
    up: Linear,
    down: Linear,
}

/// Per-layer keys and values with room for `capacity` positions. Keys are stored in blocks of
/// eight positions, each block `[dim][8]` (`[kv_head][block][dim][8]` overall), so decode scores
/// eight positions per vector without horizontal sums while reading memory sequentially; values
/// are `[kv_head][position][dim]`.
struct KvCache {
    k_blocks: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    len: usize,
    capacity: usize,
    n_kv_head: usize,
    head_dim: usize,
}

impl KvCache {
    fn new(n_layer: usize, n_kv_head: usize, head_dim: usize) -> Self {
        KvCache {
            k_blocks: vec![Vec::new(); n_layer],
            v: vec![Vec::new(); n_layer],
            len: 0,
            capacity: 0,
            n_kv_head,
            head_dim,
        }
    }

    /// Makes room for `needed` positions (growing geometrically up to `limit`), keeping what is
    /// cached. Capacity stays a multiple of 256, so 8-position blocks never run past the end.
    fn reserve(&mut self, needed: usize, limit: usize) {
        if needed <= self.capacity {
            return;
        }
        let new_cap = needed
            .max((self.capacity * 2).min(limit))
            .next_multiple_of(256);
        let (hd, old_cap, len) = (self.head_dim, self.capacity, self.len);
        let size = self.n_kv_head * new_cap * hd;
        // Whole blocks in use (the last may be partly filled).
        let used = len.next_multiple_of(kernels::POSITIONS) * hd;
        for buf in &mut self.k_blocks {
            let mut grown = vec![0f32; size];
            for g in 0..self.n_kv_head {
                grown[g * new_cap * hd..][..used].copy_from_slice(&buf[g * old_cap * hd..][..used]);
            }
            *buf = grown;
        }
        for buf in &mut self.v {
            let mut grown = vec![0f32; size];
            for g in 0..self.n_kv_head {
                grown[g * new_cap * hd..][..len * hd]
                    .copy_from_slice(&buf[g * old_cap * hd..][..len * hd]);
            }
            *buf = grown;
        }
        self.capacity = new_cap;
    }

    /// Makes this cache hold exactly the first `n` positions of `other` (same shape).
    fn copy_prefix_from(&mut self, other: &KvCache, n: usize, limit: usize) {
        self.len = 0;
        self.reserve(n, limit);
        let hd = self.head_dim;
        let (dst_cap, src_cap) = (self.capacity, other.capacity);
        let key_span = n.next_multiple_of(kernels::POSITIONS) * hd;
        for (dst, src) in self.k_blocks.iter_mut().zip(&other.k_blocks) {
            for g in 0..self.n_kv_head {
                dst[g * dst_cap * hd..][..key_span]
                    .copy_from_slice(&src[g * src_cap * hd..][..key_span]);
            }
        }
        for (dst, src) in self.v.iter_mut().zip(&other.v) {
            for g in 0..self.n_kv_head {
                dst[g * dst_cap * hd..][..n * hd]
                    .copy_from_slice(&src[g * src_cap * hd..][..n * hd]);
            }
        }
        self.len = n;
    }

    /// Stores the keys and values of `n` tokens at positions `at..at + n` of layer `li`, read
    /// from rows of `qkv` (width `row`, keys at `k_off`, values at `v_off`).
    fn store(&mut self, li: usize, at: usize, qkv: &[f32], row: usize, k_off: usize, v_off: usize) {
        const P: usize = kernels::POSITIONS;
        let (hd, cap) = (self.head_dim, self.capacity);
        let n = qkv.len() / row;
        for g in 0..self.n_kv_head {
            let blocks = &mut self.k_blocks[li][g * cap * hd..(g + 1) * cap * hd];
            for (t, r) in qkv.chunks_exact(row).enumerate() {
                let pos = at + t;
                let block = &mut blocks[(pos / P) * hd * P..][..hd * P];
                for (d, &kd) in r[k_off + g * hd..][..hd].iter().enumerate() {
                    block[d * P + pos % P] = kd;
                }
            }
            let range = self.head_range(g, at..at + n);
            let dst = &mut self.v[li][range];
            for (t, r) in qkv.chunks_exact(row).enumerate() {
                dst[t * hd..(t + 1) * hd].copy_from_slice(&r[v_off + g * hd..][..hd]);
            }
        }
    }

    /// Values of kv head `g` at `positions`, `[position][dim]`.
    fn head_range(&self, g: usize, positions: std::ops::Range<usize>) -> std::ops::Range<usize> {
        let base = g * self.capacity * self.head_dim;
        base + positions.start * self.head_dim..base + positions.end * self.head_dim
    }

    /// Keys of kv head `g` for `count` 8-position blocks starting at `first` (a multiple of 8),
    /// each `[dim][8]`. Positions past `len` hold stale values.
    fn key_blocks(&self, li: usize, g: usize, first: usize, count: usize) -> &[f32] {
        let hd = self.head_dim;
        let base = g * self.capacity * hd + first * hd;
        &self.k_blocks[li][base..base + count * hd * kernels::POSITIONS]
    }

    /// Keys of kv head `g` at positions `0..len` as a `[dim, position]` matrix.
    fn keys_transposed(&self, li: usize, g: usize, len: usize) -> Vec<f32> {
        const P: usize = kernels::POSITIONS;
        let hd = self.head_dim;
        let mut out = vec![0f32; hd * len];
        for first in (0..len).step_by(P) {
            let block = self.key_blocks(li, g, first, 1);
            let width = P.min(len - first);
            for d in 0..hd {
                out[d * len + first..][..width].copy_from_slice(&block[d * P..][..width]);
            }
        }
        out
    }
}

/// cos/sin of `position * theta_i` for every position seen so far.
struct RopeTable {
    half: usize,
    inv_freq: Vec<f64>,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl RopeTable {
    fn new(head_dim: usize, base: f32) -> Self {
        let half = head_dim / 2;
        let inv_freq = (0..half)
            .map(|i| 1.0 / f64::from(base).powf(2.0 * i as f64 / head_dim as f64))
            .collect();
        RopeTable {
            half,
            inv_freq,
            cos: Vec::new(),
            sin: Vec::new(),
        }
    }

    fn ensure(&mut self, positions: usize) {
        let have = self.cos.len() / self.half;
        if positions <= have {
            return;
        }
        let target = positions.next_multiple_of(1024);
        for p in have..target {
            for &f in &self.inv_freq {
                let angle = p as f64 * f;
                self.cos.push(angle.cos() as f32);
                self.sin.push(angle.sin() as f32);
            }
        }
    }

    /// Rotates one head vector for `pos`.
    fn apply(&self, style: RopeStyle, x: &mut [f32], pos: usize) {
        let cos = &self.cos[pos * self.half..][..self.half];
        let sin = &self.sin[pos * self.half..][..self.half];
        match style {
            RopeStyle::HalfSplit => {
                let (a, b) = x.split_at_mut(self.half);
                for i in 0..self.half {
                    let (x0, x1) = (a[i], b[i]);
                    a[i] = x0 * cos[i] - x1 * sin[i];
                    b[i] = x0 * sin[i] + x1 * cos[i];
                }
            }
            RopeStyle::Interleaved => {
                for (i, pair) in x.chunks_exact_mut(2).enumerate() {
                    let (x0, x1) = (pair[0], pair[1]);
                    pair[0] = x0 * cos[i] - x1 * sin[i];
                    pair[1] = x0 * sin[i] + x1 * cos[i];
                }
            }
        }
    }
}

/// Reusable buffers of the one-token path.
#[derive(Default)]
struct DecodeScratch {
    x: Vec<f32>,
    xn: Vec<f32>,
    qkv: Vec<f32>,
    attn: Vec<f32>,
    proj: Vec<f32>,
    gate_up: Vec<f32>,
    scores: Vec<f32>,
    acts: Scratch,
}

/// Reusable buffers of the many-token path (allocating them per layer cost ~10% of a prompt in
/// page faults and zeroing).
#[derive(Default)]
struct BatchScratch {
    qkv: Vec<f32>,
    proj: Vec<f32>,
    gate_up: Vec<f32>,
    h: Vec<f32>,
}

/// A loaded model with its KV cache.
pub(crate) struct Transformer {
    cfg: Config,
    embed: QMatrix,
    layers: Vec<Layer>,
    norm: Vec<f32>,
    output: Linear,
    rope: RopeTable,
    cache: KvCache,
    /// Prompt prefixes computed once and kept, most recently used first.
    prefixes: Vec<KeptPrefix>,
    scratch: DecodeScratch,
    batch: BatchScratch,
}

/// A prompt prefix and a cache holding exactly its positions.
struct KeptPrefix {
    tokens: Vec<u32>,
    cache: KvCache,
}

/// Prefixes kept at once. docqa declares one (the short-answer prompt's worked examples); a
/// second lets two kinds of prompt alternate without recomputing.
const KEPT_PREFIXES: usize = 3;

/// Whether Q4_K/Q6_K matrices are repacked at load for `kernels::packed` (1.5B on 2 threads:
/// prefill 96 -> 163 tok/s, decode 16.5 -> 21 tok/s). The packed kernels add the same integer
/// sums in another float order than the row kernels, so greedy drafts can differ where tokens
/// nearly tie; the answer checks are calibrated with packing on (docs/decisions.md).
const PACK_WEIGHTS: bool = true;

/// The first bytes of an exported prompt prefix (format version 1).
const PREFIX_MAGIC: &[u8] = b"DOCQA-KV 1\n";

impl Transformer {
    /// Builds the model over `map`, the memory-mapped file `content` was read from.
    pub(crate) fn from_gguf(
        content: &gguf_file::Content,
        map: Arc<memmap2::Mmap>,
    ) -> Result<Self, GenerateError> {
        let cfg = Config::from_gguf(content)?;
        let mut ld = Loader {
            content,
            map,
            pack: PACK_WEIGHTS,
        };
        let (d, q_dim, kv_dim) = (cfg.d_model, cfg.q_dim(), cfg.kv_dim());
        let mut layers = Vec::with_capacity(cfg.n_layer);
        for i in 0..cfg.n_layer {
            let name = |part: &str| format!("blk.{i}.{part}");
            let has_bias = content.tensor_infos.contains_key(&name("attn_q.bias"));
            let qkv_bias = if has_bias {
                let mut b = ld.vector(&name("attn_q.bias"), q_dim)?;
                b.extend(ld.vector(&name("attn_k.bias"), kv_dim)?);
                b.extend(ld.vector(&name("attn_v.bias"), kv_dim)?);
                Some(b)
            } else {
                None
            };
            layers.push(Layer {
                attn_norm: ld.vector(&name("attn_norm.weight"), d)?,
                ffn_norm: ld.vector(&name("ffn_norm.weight"), d)?,
                qkv_bias,
                q: ld.matrix(&name("attn_q.weight"), q_dim, d)?,
                k: ld.matrix(&name("attn_k.weight"), kv_dim, d)?,
                v: ld.matrix(&name("attn_v.weight"), kv_dim, d)?,
                o: ld.matrix(&name("attn_output.weight"), d, q_dim)?,
                gate: ld.matrix(&name("ffn_gate.weight"), cfg.d_ff, d)?,
                up: ld.matrix(&name("ffn_up.weight"), cfg.d_ff, d)?,
                down: ld.matrix(&name("ffn_down.weight"), d, cfg.d_ff)?,
            });
        }
        let norm = ld.vector("output_norm.weight", d)?;
        let info = content
            .tensor_infos
            .get("token_embd.weight")
            .ok_or_else(|| bad_tensor("token_embd.weight", "missing"))?;
        let (vocab, width) = info
            .shape
            .dims2()
            .map_err(|e| bad_tensor("token_embd.weight", e))?;
        if width != d {
            return Err(bad_tensor(
                "token_embd.weight",
                format!("width {width}, expected {d}"),
            ));
        }
        // Embedding rows are read one token at a time, in place.
        ld.pack = false;
        let embed = ld.matrix("token_embd.weight", vocab, d)?.m;
        ld.pack = PACK_WEIGHTS;
        // Models with tied embeddings have no output.weight and reuse the embedding table.
        let output_name = if content.tensor_infos.contains_key("output.weight") {
            "output.weight"
        } else {
            "token_embd.weight"
        };
        let output = ld.matrix(output_name, vocab, d)?;
        let rope = RopeTable::new(cfg.head_dim, cfg.rope_base);
        let cache = KvCache::new(cfg.n_layer, cfg.n_kv_head, cfg.head_dim);
        Ok(Transformer {
            cfg,
            embed,
            layers,
            norm,
            output,
            rope,
            cache,
            prefixes: Vec::new(),
            scratch: DecodeScratch::default(),
            batch: BatchScratch::default(),
        })
    }

    pub(crate) fn config(&self) -> &Config {
        &self.cfg
    }

    pub(crate) fn vocab_size(&self) -> usize {
        self.output.rows
    }

    /// Positions held in the KV cache.
    pub(crate) fn cached(&self) -> usize {
        self.cache.len
    }

    /// Forgets the cached context.
    pub(crate) fn clear_cache(&mut self) {
        self.cache.len = 0;
    }

    /// Forgets the kept prompt prefixes.
    pub(crate) fn forget_prefixes(&mut self) {
        self.prefixes.clear();
    }

    /// Whether a prefix of exactly these tokens is kept.
    pub(crate) fn has_prefix(&self, tokens: &[u32]) -> bool {
        self.prefixes.iter().any(|p| p.tokens == tokens)
    }

    /// The kept prefix of exactly these tokens as bytes ([`Transformer::import_prefix`] reads
    /// them back): its tokens and, per layer and kv head, its key blocks and values.
    pub(crate) fn export_prefix(&self, tokens: &[u32]) -> Option<Vec<u8>> {
        let kept = self.prefixes.iter().find(|p| p.tokens == tokens)?;
        let (c, n) = (&kept.cache, tokens.len());
        let hd = c.head_dim;
        let mut out = Vec::new();
        out.extend_from_slice(PREFIX_MAGIC);
        for v in [self.cfg.n_layer, c.n_kv_head, hd, n] {
            out.extend_from_slice(&(v as u32).to_le_bytes());
        }
        for t in tokens {
            out.extend_from_slice(&t.to_le_bytes());
        }
        let key_span = n.next_multiple_of(kernels::POSITIONS) * hd;
        for li in 0..self.cfg.n_layer {
            for g in 0..c.n_kv_head {
                let base = g * c.capacity * hd;
                for v in &c.k_blocks[li][base..base + key_span] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
                for v in &c.v[li][base..base + n * hd] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
        Some(out)
    }

    /// Keeps a prefix written by [`Transformer::export_prefix`]; false (and nothing kept) when
    /// the bytes are not one of this model's shape or not of exactly these tokens.
    pub(crate) fn import_prefix(&mut self, tokens: &[u32], bytes: &[u8]) -> bool {
        let (nl, nkv, hd, n) = (
            self.cfg.n_layer,
            self.cfg.n_kv_head,
            self.cfg.head_dim,
            tokens.len(),
        );
        let Some(rest) = bytes.strip_prefix(PREFIX_MAGIC) else {
            return false;
        };
        let words = |b: &[u8]| -> Vec<u32> {
            b.chunks_exact(4)
                .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
                .collect()
        };
        if rest.len() < 16 || words(&rest[..16]) != [nl, nkv, hd, n].map(|v| v as u32) {
            return false;
        }
        let rest = &rest[16..];
        let key_span = n.next_multiple_of(kernels::POSITIONS) * hd;
        let floats = nl * nkv * (key_span + n * hd);
        if rest.len() != 4 * n + 4 * floats || words(&rest[..4 * n]) != tokens {
            return false;
        }
        let mut data = rest[4 * n..]
            .chunks_exact(4)
            .map(|w| f32::from_le_bytes([w[0], w[1], w[2], w[3]]));
        let mut cache = KvCache::new(nl, nkv, hd);
        cache.reserve(n, self.cfg.context_length);
        for li in 0..nl {
            for g in 0..nkv {
                let base = g * cache.capacity * hd;
                for (dst, v) in cache.k_blocks[li][base..base + key_span]
                    .iter_mut()
                    .zip(data.by_ref())
                {
                    *dst = v;
                }
                for (dst, v) in cache.v[li][base..base + n * hd]
                    .iter_mut()
                    .zip(data.by_ref())
                {
                    *dst = v;
                }
            }
        }
        cache.len = n;
        self.prefixes.retain(|p| p.tokens != tokens);
        self.prefixes.insert(
            0,
            KeptPrefix {
                tokens: tokens.to_vec(),
                cache,
            },
        );
        self.prefixes.truncate(KEPT_PREFIXES);
        true
    }

    /// Starts a new context with `prompt` and returns how many of its tokens were taken from a
    /// kept prefix, and the logits after its last token. The first `prefix` tokens (0 for none)
    /// are a prefix the caller expects to repeat: they are computed as a pass of their own and
    /// kept, and a later prompt with the same prefix copies them instead. Computing the prefix
    /// as its own pass either way makes a resumed prompt bit-identical to a fresh one.
    pub(crate) fn prefill(
        &mut self,
        prompt: &[u32],
        prefix: usize,
    ) -> Result<(usize, Vec<f32>), GenerateError> {
        self.clear_cache();
        if prefix == 0 || prefix >= prompt.len() {
            return Ok((0, self.forward(prompt)?));
        }
        let (head, rest) = prompt.split_at(prefix);
        let limit = self.cfg.context_length;
        let reused = match self.prefixes.iter().position(|p| p.tokens == head) {
            Some(i) => {
                let kept = self.prefixes.remove(i);
                self.cache.copy_prefix_from(&kept.cache, prefix, limit);
                self.prefixes.insert(0, kept);
                prefix
            }
            None => {
                self.forward(head)?;
                let mut cache =
                    KvCache::new(self.cfg.n_layer, self.cfg.n_kv_head, self.cfg.head_dim);
                cache.copy_prefix_from(&self.cache, prefix, limit);
                self.prefixes.insert(
                    0,
                    KeptPrefix {
                        tokens: head.to_vec(),
                        cache,
                    },
                );
                self.prefixes.truncate(KEPT_PREFIXES);
                0
            }
        };
        Ok((reused, self.forward(rest)?))
    }

    /// Appends `tokens` to the context and returns the logits after the last one.
    pub(crate) fn forward(&mut self, tokens: &[u32]) -> Result<Vec<f32>, GenerateError> {
        if tokens.is_empty() {
            return Err(GenerateError::EmptyPrompt);
        }
        let end = self.cache.len + tokens.len();
        if end > self.cfg.context_length {
            return Err(GenerateError::PromptTooLong {
                prompt_tokens: end,
                context: self.cfg.context_length,
            });
        }
        let vocab = self.vocab_size();
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= vocab) {
            return Err(GenerateError::Tokenizer(format!(
                "token id {bad} is outside the vocabulary of {vocab}"
            )));
        }
        self.cache.reserve(end, self.cfg.context_length);
        self.rope.ensure(end);
        if tokens.len() < DENSE_MIN_TOKENS {
            for &t in tokens {
                self.step_one(t)?;
            }
            let x = std::mem::take(&mut self.scratch.x);
            let logits = self.logits(&x);
            self.scratch.x = x;
            return logits;
        }
        // Equal chunks, so a long prompt does not end with a tiny, inefficient pass.
        let chunks = tokens.len().div_ceil(PREFILL_CHUNK);
        let mut hidden = Vec::new();
        for chunk in tokens.chunks(tokens.len().div_ceil(chunks)) {
            hidden = self.forward_many(chunk)?;
        }
        let last_row = &hidden[hidden.len() - self.cfg.d_model..];
        self.logits(last_row)
    }

    /// Final norm and output projection of one hidden state.
    fn logits(&mut self, x: &[f32]) -> Result<Vec<f32>, GenerateError> {
        let mut xn = vec![0f32; x.len()];
        kernels::rms_norm(x, &self.norm, self.cfg.rms_eps, &mut xn);
        let vocab = self.output.rows;
        let mut logits = vec![0f32; vocab];
        linear(
            &[(&self.output, 0)],
            &xn,
            1,
            &mut logits,
            vocab,
            &mut self.scratch.acts,
        );
        Ok(logits)
    }

    fn embed_rows(&self, tokens: &[u32]) -> Result<Vec<f32>, GenerateError> {
        let d = self.cfg.d_model;
        let mut out = vec![0f32; tokens.len() * d];
        for (row, &t) in out.chunks_exact_mut(d).zip(tokens) {
            self.embed.dequantize_row(t as usize, row);
        }
        Ok(out)
    }

    /// The one-token path: quantized kernels, no GEMM.
    /// Leaves the token's final hidden state in `scratch.x`.
    fn step_one(&mut self, token: u32) -> Result<(), GenerateError> {
        let cfg = &self.cfg;
        let (d, q_dim, kv_dim, hd) = (cfg.d_model, cfg.q_dim(), cfg.kv_dim(), cfg.head_dim);
        let pos = self.cache.len;
        let x = self.embed_rows(&[token])?;
        let s = &mut self.scratch;
        s.x = x;
        s.xn.resize(d, 0.0);
        s.qkv.resize(q_dim + 2 * kv_dim, 0.0);
        s.attn.resize(q_dim, 0.0);
        s.proj.resize(d, 0.0);
        s.gate_up.resize(2 * cfg.d_ff, 0.0);

        for (li, layer) in self.layers.iter().enumerate() {
            kernels::rms_norm(&s.x, &layer.attn_norm, cfg.rms_eps, &mut s.xn);
            linear(
                &[(&layer.q, 0), (&layer.k, q_dim), (&layer.v, q_dim + kv_dim)],
                &s.xn,
                1,
                &mut s.qkv,
                q_dim + 2 * kv_dim,
                &mut s.acts,
            );
            if let Some(bias) = &layer.qkv_bias {
                for (x, b) in s.qkv.iter_mut().zip(bias) {
                    *x += b;
                }
            }
            for head in s.qkv[..q_dim + kv_dim].chunks_exact_mut(hd) {
                self.rope.apply(cfg.rope_style, head, pos);
            }
            let row = s.qkv.len();
            self.cache
                .store(li, pos, &s.qkv, row, q_dim, q_dim + kv_dim);
            attend_one(
                cfg,
                &self.cache,
                li,
                pos + 1,
                &s.qkv[..q_dim],
                &mut s.scores,
                &mut s.attn,
            );

            linear(&[(&layer.o, 0)], &s.attn, 1, &mut s.proj, d, &mut s.acts);
            for (x, p) in s.x.iter_mut().zip(&s.proj) {
                *x += p;
            }

            kernels::rms_norm(&s.x, &layer.ffn_norm, cfg.rms_eps, &mut s.xn);
            linear(
                &[(&layer.gate, 0), (&layer.up, cfg.d_ff)],
                &s.xn,
                1,
                &mut s.gate_up,
                2 * cfg.d_ff,
                &mut s.acts,
            );
            {
                let (g, u) = s.gate_up.split_at_mut(cfg.d_ff);
                kernels::silu_mul(g, u);
            }
            linear(
                &[(&layer.down, 0)],
                &s.gate_up[..cfg.d_ff],
                1,
                &mut s.proj,
                d,
                &mut s.acts,
            );
            for (x, p) in s.x.iter_mut().zip(&s.proj) {
                *x += p;
            }
        }
        self.cache.len = pos + 1;
        Ok(())
    }

    /// The many-token path: one GEMM per linear layer over all tokens. Returns the hidden states
    /// `[tokens, d_model]` after the last layer.
    fn forward_many(&mut self, tokens: &[u32]) -> Result<Vec<f32>, GenerateError> {
        let n = tokens.len();
        let past = self.cache.len;
        let (d, q_dim, kv_dim, hd) = (
            self.cfg.d_model,
            self.cfg.q_dim(),
            self.cfg.kv_dim(),
            self.cfg.head_dim,
        );
        let d_ff = self.cfg.d_ff;
        let qkv_dim = q_dim + 2 * kv_dim;
        let mut x = self.embed_rows(tokens)?;

        for li in 0..self.layers.len() {
            let cfg = &self.cfg;
            let layer = &self.layers[li];
            let acts = &mut self.scratch.acts;
            let BatchScratch {
                qkv,
                proj,
                gate_up,
                h,
            } = &mut self.batch;
            let xn = rms_norm_rows(&x, &layer.attn_norm, cfg.rms_eps);
            qkv.resize(n * qkv_dim, 0.0);
            linear(
                &[(&layer.q, 0), (&layer.k, q_dim), (&layer.v, q_dim + kv_dim)],
                &xn,
                n,
                qkv,
                qkv_dim,
                acts,
            );
            drop(xn);
            let rope = &self.rope;
            let style = cfg.rope_style;
            let bias = layer.qkv_bias.as_deref();
            let rows = SharedMut::new(qkv);
            kernels::par_ranges(n, |range| {
                for t in range {
                    // SAFETY: each token's row is touched by one worker.
                    let row = unsafe { rows.slice(t * qkv_dim..(t + 1) * qkv_dim) };
                    if let Some(bias) = bias {
                        for (x, b) in row.iter_mut().zip(bias) {
                            *x += b;
                        }
                    }
                    for head in row[..q_dim + kv_dim].chunks_exact_mut(hd) {
                        rope.apply(style, head, past + t);
                    }
                }
            });
            self.cache
                .store(li, past, qkv, qkv_dim, q_dim, q_dim + kv_dim);
            let attn = attend_many(cfg, &self.cache, li, past, n, qkv, qkv_dim)?;

            proj.resize(n * d, 0.0);
            linear(&[(&layer.o, 0)], &attn, n, proj, d, acts);
            drop(attn);
            add_rows(&mut x, proj);

            let xn = rms_norm_rows(&x, &layer.ffn_norm, cfg.rms_eps);
            gate_up.resize(n * 2 * d_ff, 0.0);
            linear(
                &[(&layer.gate, 0), (&layer.up, d_ff)],
                &xn,
                n,
                gate_up,
                2 * d_ff,
                acts,
            );
            drop(xn);
            h.resize(n * d_ff, 0.0);
            {
                let out = SharedMut::new(h);
                let gu = &*gate_up;
                kernels::par_ranges(n, |range| {
                    for t in range {
                        // SAFETY: each token's row is written by one worker.
                        let dst = unsafe { out.slice(t * d_ff..(t + 1) * d_ff) };
                        let row = &gu[t * 2 * d_ff..(t + 1) * 2 * d_ff];
                        dst.copy_from_slice(&row[..d_ff]);
                        kernels::silu_mul(dst, &row[d_ff..]);
                    }
                });
            }
            linear(&[(&layer.down, 0)], h, n, proj, d, acts);
            add_rows(&mut x, proj);
        }
        self.cache.len = past + n;
        Ok(x)
    }
}

/// Reads named tensors from a memory-mapped GGUF file, with errors naming the tensor.
struct Loader<'a> {
    content: &'a gguf_file::Content,
    map: Arc<memmap2::Mmap>,
    /// Whether matrices are repacked for the kernels (rows interleaved by 8) rather than read
    /// in place.
    pack: bool,
}

impl Loader<'_> {
    fn info(&self, name: &str) -> Result<&gguf_file::TensorInfo, GenerateError> {
        self.content
            .tensor_infos
            .get(name)
            .ok_or_else(|| bad_tensor(name, "missing from the file"))
    }

    /// A small tensor, copied out of the file.
    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>, GenerateError> {
        let t = self
            .content
            .tensor(&mut Cursor::new(&self.map[..]), name, &Device::Cpu)
            .map_err(|e| bad_tensor(name, e))?
            .dequantize(&Device::Cpu)?;
        let v = t.flatten_all()?.to_vec1::<f32>()?;
        if v.len() != len {
            return Err(bad_tensor(
                name,
                format!("{} values, expected {len}", v.len()),
            ));
        }
        Ok(v)
    }

    /// A `[rows, cols]` weight matrix: a view of the file when the kernels read its encoding,
    /// otherwise converted to Q8_0 once.
    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Linear, GenerateError> {
        let info = self.info(name)?;
        if info.shape.dims() != [rows, cols] {
            return Err(bad_tensor(
                name,
                format!("shape {:?}, expected [{rows}, {cols}]", info.shape.dims()),
            ));
        }
        let kind = match info.ggml_dtype {
            GgmlDType::Q4K => Some(QType::Q4K),
            GgmlDType::Q5K => Some(QType::Q5K),
            GgmlDType::Q6K => Some(QType::Q6K),
            GgmlDType::Q8_0 => Some(QType::Q8_0),
            _ => None,
        };
        let m = match kind {
            Some(kind) => {
                let offset = usize::try_from(self.content.tensor_data_offset + info.offset)
                    .map_err(|e| bad_tensor(name, e))?;
                let len = rows * cols / kind.block_values() * kind.block_bytes();
                if offset
                    .checked_add(len)
                    .is_none_or(|end| end > self.map.len())
                {
                    return Err(bad_tensor(name, "data runs past the end of the file"));
                }
                let bytes = WeightBytes::Mapped {
                    map: Arc::clone(&self.map),
                    offset,
                    len,
                };
                let m = QMatrix::new(kind, rows, cols, bytes).map_err(|e| bad_tensor(name, e))?;
                if !self.pack {
                    m
                } else {
                    let m = m.packed();
                    if m.is_packed() {
                        // The packed copy is what the products read: the file's pages of this
                        // tensor leave the process (they stay in the page cache).
                        // SAFETY: the map is read-only and no view of this range remains.
                        let _ = unsafe {
                            self.map.unchecked_advise_range(
                                memmap2::UncheckedAdvice::DontNeed,
                                offset,
                                len,
                            )
                        };
                    }
                    m
                }
            }
            None => {
                let t = self
                    .content
                    .tensor(&mut Cursor::new(&self.map[..]), name, &Device::Cpu)
                    .map_err(|e| bad_tensor(name, e))?
                    .dequantize(&Device::Cpu)?;
                let v = t.flatten_all()?.to_vec1::<f32>()?;
                QMatrix::quantize_q8_0(&v, rows, cols).map_err(|e| bad_tensor(name, e))?
            }
        };
        Ok(Linear { rows, m })
    }
}

/// `out[t * stride + offset_i + r] = W_i · x[t]` for `n` tokens and several matrices over the
/// same input (one quantization of `x`, one parallel region).
fn linear(
    parts: &[(&Linear, usize)],
    x: &[f32],
    n: usize,
    out: &mut [f32],
    stride: usize,
    scratch: &mut Scratch,
) {
    let parts: Vec<(&QMatrix, usize)> = parts.iter().map(|(l, off)| (&l.m, *off)).collect();
    quant::matmul(&parts, x, n, out, stride, scratch);
}

/// Cached positions one decode-attention work unit covers.
const ATTN_POSITIONS_PER_UNIT: usize = 256;

/// Attention of one query (all heads) over cached positions `0..len` of layer `li`.
///
/// Work is split by kv head and by position range, so the heads sharing a kv head read each key
/// and value once, and both cores stay busy even with two kv heads. Each unit keeps a partial
/// softmax (max, sum, weighted values) and the partials are merged per head at the end.
fn attend_one(
    cfg: &Config,
    cache: &KvCache,
    li: usize,
    len: usize,
    q: &[f32],
    scratch: &mut Vec<f32>,
    out: &mut [f32],
) {
    const SPAN: usize = ATTN_POSITIONS_PER_UNIT;
    let hd = cfg.head_dim;
    let group = cfg.n_head / cfg.n_kv_head;
    // Heads are processed four at a time; a short last set is padded with zero queries.
    let padded = group.next_multiple_of(kernels::HEADS);
    let scale = 1.0 / (hd as f32).sqrt();
    let chunks = len.div_ceil(SPAN);
    let units = cfg.n_kv_head * chunks;
    // Per unit: `padded` rows of scores, then per head (max, sum, hd weighted values).
    let partial = 2 + hd;
    let unit_len = padded * SPAN + group * partial;
    scratch.resize(units * unit_len, 0.0);
    let buf = SharedMut::new(scratch);
    let unit = |u: usize| {
        let (g, c) = (u / chunks, u % chunks);
        let first = c * SPAN;
        let n = len.min(first + SPAN) - first;
        // SAFETY: unit u owns its slice of the scratch buffer.
        let mine = unsafe { buf.slice(u * unit_len..(u + 1) * unit_len) };
        let (scores, partials) = mine.split_at_mut(padded * SPAN);
        // The group's queries, scaled, padded with zero heads: `[padded][hd]`.
        let mut qg = vec![0f32; padded * hd];
        for (dst, src) in qg
            .chunks_exact_mut(hd)
            .zip(q[g * group * hd..][..group * hd].chunks_exact(hd))
        {
            for (d, s) in dst.iter_mut().zip(src) {
                *d = s * scale;
            }
        }
        const BLOCK: usize = 2 * kernels::POSITIONS;
        for h0 in (0..padded).step_by(kernels::HEADS) {
            let qs: [&[f32]; kernels::HEADS] = std::array::from_fn(|i| &qg[(h0 + i) * hd..][..hd]);
            // The last block may cover positions past `len`; those scores are never used.
            for j in (0..n).step_by(BLOCK) {
                let blocks = if j + kernels::POSITIONS < n { 2 } else { 1 };
                let keys = cache.key_blocks(li, g, first + j, blocks);
                let block = kernels::scores_block(qs, keys);
                for (i, row) in block.iter().enumerate() {
                    scores[(h0 + i) * SPAN + j..][..BLOCK].copy_from_slice(row);
                }
            }
        }
        for h in 0..group {
            let s = &mut scores[h * SPAN..][..n];
            let max = kernels::max(s);
            let sum = kernels::exp_shifted(s, max);
            let p = &mut partials[h * partial..(h + 1) * partial];
            p[0] = max;
            p[1] = sum;
        }
        let values = &cache.v[li][cache.head_range(g, first..first + n)];
        for h0 in (0..padded).step_by(kernels::HEADS) {
            let ps: [&[f32]; kernels::HEADS] =
                std::array::from_fn(|i| &scores[(h0 + i) * SPAN..][..n]);
            for dc in (0..hd).step_by(kernels::DIMS) {
                let acc = kernels::weighted_values(ps, values, hd, dc);
                for (i, a) in acc.iter().enumerate().filter(|(i, _)| h0 + i < group) {
                    partials[(h0 + i) * partial + 2 + dc..][..kernels::DIMS].copy_from_slice(a);
                }
            }
        }
    };
    // Short contexts cost less than a trip through the pool.
    if units == 1 || cfg.n_head * len < 2048 {
        (0..units).for_each(unit);
    } else {
        kernels::par_ranges(units, |range| range.for_each(unit));
    }

    for h in 0..cfg.n_head {
        let (g, hl) = (h / group, h % group);
        let part = |c: usize| {
            let base = (g * chunks + c) * unit_len + padded * SPAN;
            &scratch[base + hl * partial..base + (hl + 1) * partial]
        };
        let max = (0..chunks).fold(f32::NEG_INFINITY, |m, c| m.max(part(c)[0]));
        let o = &mut out[h * hd..(h + 1) * hd];
        o.fill(0.0);
        let mut total = 0.0;
        for c in 0..chunks {
            let p = part(c);
            let w = kernels::exp(p[0] - max);
            total += p[1] * w;
            kernels::axpy(w, &p[2..], o);
        }
        let inv = 1.0 / total;
        o.iter_mut().for_each(|v| *v *= inv);
    }
}

/// Causal attention of `n` new tokens (queries in `qkv` rows) over cached positions
/// `0..past + n`. Returns `[n, n_head * head_dim]`.
fn attend_many(
    cfg: &Config,
    cache: &KvCache,
    li: usize,
    past: usize,
    n: usize,
    qkv: &[f32],
    qkv_dim: usize,
) -> Result<Vec<f32>, GenerateError> {
    let hd = cfg.head_dim;
    let group = cfg.n_head / cfg.n_kv_head;
    let scale = 1.0 / (hd as f32).sqrt();
    let total = past + n;
    let mut out = vec![0f32; n * cfg.n_head * hd];
    for g in 0..cfg.n_kv_head {
        let keys_t = Tensor::from_vec(
            cache.keys_transposed(li, g, total),
            (hd, total),
            &Device::Cpu,
        )?;
        let values = Tensor::from_slice(
            &cache.v[li][cache.head_range(g, 0..total)],
            (total, hd),
            &Device::Cpu,
        )?;
        for start in (0..n).step_by(ATTN_QUERY_BLOCK) {
            let end = (start + ATTN_QUERY_BLOCK).min(n);
            let rows = end - start;
            let visible = past + end;
            // Queries of the group's heads stacked: row (h, t).
            let mut qs = Vec::with_capacity(group * rows * hd);
            for h in g * group..(g + 1) * group {
                for t in start..end {
                    qs.extend(qkv[t * qkv_dim + h * hd..][..hd].iter().map(|v| v * scale));
                }
            }
            let qs = Tensor::from_vec(qs, (group * rows, hd), &Device::Cpu)?;
            let scores = qs.matmul(&keys_t.narrow(1, 0, visible)?)?;
            let mut probs = vec![0f32; group * rows * visible];
            with_slice(&scores, |sc| {
                let dst = SharedMut::new(&mut probs);
                kernels::par_ranges(group * rows, |range| {
                    for r in range {
                        let t = start + r % rows;
                        let allowed = past + t + 1;
                        // SAFETY: each score row is written by one worker.
                        let p = unsafe { dst.slice(r * visible..r * visible + allowed) };
                        p.copy_from_slice(&sc[r * visible..r * visible + allowed]);
                        kernels::softmax(p);
                    }
                });
            })?;
            let probs = Tensor::from_vec(probs, (group * rows, visible), &Device::Cpu)?;
            let o = probs.matmul(&values.narrow(0, 0, visible)?)?;
            with_slice(&o, |o| {
                for (i, h) in (g * group..(g + 1) * group).enumerate() {
                    for (r, t) in (start..end).enumerate() {
                        let src = &o[(i * rows + r) * hd..][..hd];
                        out[t * cfg.n_head * hd + h * hd..][..hd].copy_from_slice(src);
                    }
                }
            })?;
        }
    }
    Ok(out)
}

/// RMSNorm of each `w.len()`-wide row.
fn rms_norm_rows(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let d = w.len();
    let mut out = vec![0f32; x.len()];
    let dst = SharedMut::new(&mut out);
    kernels::par_ranges(x.len() / d, |range| {
        for t in range {
            // SAFETY: each row is written by one worker.
            let o = unsafe { dst.slice(t * d..(t + 1) * d) };
            kernels::rms_norm(&x[t * d..(t + 1) * d], w, eps, o);
        }
    });
    out
}

/// Calls `f` with the contiguous f32 data of a CPU tensor, without copying it.
fn with_slice<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R, GenerateError> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        return Err(GenerateError::UnsupportedDevice(format!(
            "{:?}",
            t.device()
        )));
    };
    let data = cpu.as_slice::<f32>()?;
    let start = layout.start_offset();
    Ok(f(&data[start..start + t.elem_count()]))
}

fn add_rows(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(n_head: usize, n_kv_head: usize, head_dim: usize) -> Config {
        Config {
            arch: "test".into(),
            n_layer: 1,
            d_model: n_head * head_dim,
            n_head,
            n_kv_head,
            head_dim,
            d_ff: 64,
            rms_eps: 1e-6,
            rope_base: 10_000.0,
            rope_style: RopeStyle::HalfSplit,
            context_length: 4096,
        }
    }

    fn pseudo_random(n: usize, seed: u32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    /// Attention computed the obvious way, per head.
    fn naive(cfg: &Config, keys: &[Vec<f32>], values: &[Vec<f32>], q: &[f32]) -> Vec<f32> {
        let hd = cfg.head_dim;
        let group = cfg.n_head / cfg.n_kv_head;
        let mut out = vec![0f32; cfg.n_head * hd];
        for h in 0..cfg.n_head {
            let g = h / group;
            let qh = &q[h * hd..(h + 1) * hd];
            let scores: Vec<f64> = keys
                .iter()
                .map(|k| {
                    let k = &k[g * hd..(g + 1) * hd];
                    qh.iter().zip(k).map(|(a, b)| f64::from(a * b)).sum::<f64>()
                        / (hd as f64).sqrt()
                })
                .collect();
            let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let total: f64 = weights.iter().sum();
            for (w, v) in weights.iter().zip(values) {
                for d in 0..hd {
                    out[h * hd + d] += (w / total * f64::from(v[g * hd + d])) as f32;
                }
            }
        }
        out
    }

    #[test]
    fn decode_attention_matches_naive_attention() {
        for (n_head, n_kv, len) in [
            (14, 2, 1),
            (14, 2, 9),
            (14, 2, 300),
            (9, 3, 17),
            (4, 4, 530),
        ] {
            let hd = 32;
            let cfg = config(n_head, n_kv, hd);
            let kv_dim = n_kv * hd;
            let mut cache = KvCache::new(1, n_kv, hd);
            // Fill in two steps so that the cache grows and keeps what it held.
            let split = len / 2;
            let mut keys = Vec::new();
            let mut values = Vec::new();
            for (start, end) in [(0, split), (split, len)] {
                cache.reserve(end, cfg.context_length);
                let rows: Vec<f32> = pseudo_random((end - start) * 2 * kv_dim, end as u32);
                for r in rows.chunks_exact(2 * kv_dim) {
                    keys.push(r[..kv_dim].to_vec());
                    values.push(r[kv_dim..].to_vec());
                }
                if end > start {
                    cache.store(0, start, &rows, 2 * kv_dim, 0, kv_dim);
                }
                cache.len = end;
            }
            let q = pseudo_random(n_head * hd, 7);
            let mut scratch = Vec::new();
            let mut out = vec![0f32; n_head * hd];
            attend_one(&cfg, &cache, 0, len, &q, &mut scratch, &mut out);
            let want = naive(&cfg, &keys, &values, &q);
            for (i, (a, b)) in out.iter().zip(&want).enumerate() {
                assert!(
                    (a - b).abs() < 1e-4,
                    "{n_head}/{n_kv}/{len} [{i}]: {a} vs {b}"
                );
            }
            // The transposed copy used by prefill holds the same keys.
            let kt = cache.keys_transposed(0, n_kv - 1, len);
            for (p, k) in keys.iter().enumerate() {
                for d in 0..hd {
                    assert_eq!(kt[d * len + p], k[(n_kv - 1) * hd + d]);
                }
            }
        }
    }
}

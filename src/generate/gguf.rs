//! [`GgufGenerator`]: a [`Generator`] over one GGUF file (architectures `qwen2` and `llama`),
//! taking its tokenizer, chat template and stop tokens from the file's own metadata.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use tokenizers::Tokenizer;

use super::copy::{argmax_among, SpanConstraint};
use super::model::Transformer;
use super::prefix_store::PrefixStore;
use super::template::ChatTemplate;
use super::tokenizer::{build_tokenizer, GgufVocab, TokenBytes, Utf8Stream};
use super::{GenOptions, GenerateError, Generation, Generator, Prompt, StopReason, TokenLogprob};

/// End-of-turn markers used by chat models; whichever the vocabulary has are stop tokens.
const STOP_TEXTS: &[&str] = &[
    "<|im_end|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|end_of_text|>",
    "<|end|>",
    "<end_of_turn>",
];

/// The `general.architecture` values [`GgufGenerator`] runs.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["qwen2", "llama"];

/// The `general.architecture` of the GGUF at `path`, read from its header alone (no tensor
/// data), so a file docqa cannot run is refused before anything loads.
pub fn gguf_architecture(path: &Path) -> Result<String, GenerateError> {
    let mut file = File::open(path).map_err(|source| GenerateError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let content = gguf_file::Content::read(&mut file).map_err(|source| GenerateError::Gguf {
        path: path.to_path_buf(),
        source: Box::new(source),
    })?;
    match content.metadata.get("general.architecture") {
        Some(gguf_file::Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(GenerateError::BadMetadata {
            key: "general.architecture".into(),
            reason: "not a string".into(),
        }),
        None => Err(GenerateError::MissingMetadata {
            key: "general.architecture".into(),
        }),
    }
}

/// What a loaded model is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// `general.architecture`: `qwen2` or `llama`.
    pub architecture: String,
    /// `general.name`, when the file has one.
    pub name: Option<String>,
    pub layers: usize,
    pub context_length: usize,
    pub vocab_size: usize,
}

/// A chat model in a GGUF file, run on the CPU with candle.
pub struct GgufGenerator {
    model: Transformer,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    token_bytes: TokenBytes,
    vocab: GgufVocab,
    stop_ids: Vec<u32>,
    info: ModelInfo,
    /// Token bytes to id, and the longest token's length: built on the first copy-constrained
    /// generation.
    by_bytes: OnceLock<(HashMap<Vec<u8>, u32>, usize)>,
    /// Where computed prompt prefixes are kept across processes, when set.
    prefix_store: Option<PrefixStore>,
}

impl std::fmt::Debug for GgufGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufGenerator")
            .field("info", &self.info)
            .field("stop_ids", &self.stop_ids)
            .finish_non_exhaustive()
    }
}

impl GgufGenerator {
    /// Loads the model, tokenizer and chat template from the GGUF at `path`. Only the CPU device
    /// is supported.
    pub fn load(path: &Path, device: &Device) -> Result<Self, GenerateError> {
        let _span = tracing::info_span!("load_generator", path = %path.display()).entered();
        if !device.is_cpu() {
            return Err(GenerateError::UnsupportedDevice(format!("{device:?}")));
        }
        let started = Instant::now();
        let file = File::open(path).map_err(|source| GenerateError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        // SAFETY: registry models are docqa's own cache entries, verified before use and
        // replaced only by rename, so the mapped pages do not change under the model. A file
        // given by path is the user's: like llama.cpp, docqa maps it and expects it not to be
        // rewritten while it runs (its sha256 is taken before loading).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|source| GenerateError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let content =
            gguf_file::Content::read(&mut std::io::Cursor::new(&map[..])).map_err(|source| {
                GenerateError::Gguf {
                    path: path.to_path_buf(),
                    source: Box::new(source),
                }
            })?;
        let vocab = GgufVocab::from_gguf(&content)?;
        let tokenizer = build_tokenizer(&vocab)?;
        let template = ChatTemplate::from_gguf(&content)?;
        let model = Transformer::from_gguf(&content, std::sync::Arc::new(map))?;

        let mut stop_ids: Vec<u32> = vocab.eos_id.into_iter().collect();
        for text in STOP_TEXTS {
            if let Some(id) = vocab.token_id(text) {
                if !stop_ids.contains(&id) {
                    stop_ids.push(id);
                }
            }
        }
        let cfg = model.config();
        let name = match content.metadata.get("general.name") {
            Some(gguf_file::Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        let info = ModelInfo {
            architecture: cfg.arch.clone(),
            name,
            layers: cfg.n_layer,
            context_length: cfg.context_length,
            vocab_size: model.vocab_size(),
        };
        tracing::debug!(
            arch = %info.architecture,
            layers = info.layers,
            ms = started.elapsed().as_millis() as u64,
            "generator loaded"
        );
        Ok(GgufGenerator {
            token_bytes: TokenBytes::new(&vocab),
            by_bytes: OnceLock::new(),
            prefix_store: None,
            model,
            tokenizer,
            template,
            vocab,
            stop_ids,
            info,
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Keeps computed prompt prefixes (see [`GenOptions::shared_prefix_messages`]) in `store`
    /// too, and resumes from the ones already there.
    pub fn set_prefix_store(&mut self, store: PrefixStore) {
        self.prefix_store = Some(store);
    }

    /// Forgets the prompt prefixes kept from earlier generations (see
    /// [`GenOptions::shared_prefix_messages`]), so the next prompt is computed in full.
    pub fn forget_context(&mut self) {
        self.model.forget_prefixes();
    }

    /// The tokenizer built from the file's vocabulary.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Token ids that end generation (eos and the vocabulary's end-of-turn markers).
    pub fn stop_ids(&self) -> &[u32] {
        &self.stop_ids
    }

    /// The prompt text after the chat template, ready for the assistant's reply.
    pub fn render_prompt(&self, prompt: &Prompt) -> Result<String, GenerateError> {
        self.template.render(&prompt.messages, true)
    }

    /// The log-probability under `logits` of each reply's first token.
    fn first_token_logprobs(
        &self,
        logits: &[f32],
        replies: &[String],
    ) -> Result<Vec<f32>, GenerateError> {
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let log_sum = logits.iter().map(|&l| (l - max).exp()).sum::<f32>().ln() + max;
        replies
            .iter()
            .map(|reply| {
                let encoding = self
                    .tokenizer
                    .encode(reply.as_str(), false)
                    .map_err(|e| GenerateError::Tokenizer(e.to_string()))?;
                let id = *encoding.get_ids().first().ok_or_else(|| {
                    GenerateError::Tokenizer(format!("the reply {reply:?} has no tokens"))
                })?;
                logits
                    .get(id as usize)
                    .map(|&l| l - log_sum)
                    .ok_or_else(|| {
                        GenerateError::Tokenizer(format!(
                            "token {id} of the reply {reply:?} is outside the model's {} logits",
                            logits.len()
                        ))
                    })
            })
            .collect()
    }

    /// The `n` likeliest tokens under `logits`, likeliest first, with their log-probabilities.
    fn top_first_tokens(&self, logits: &[f32], n: usize) -> Vec<TokenLogprob> {
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let log_sum = logits.iter().map(|&l| (l - max).exp()).sum::<f32>().ln() + max;
        let mut order: Vec<usize> = (0..logits.len()).collect();
        let n = n.min(order.len());
        order.select_nth_unstable_by(n.saturating_sub(1), |&a, &b| {
            logits[b].total_cmp(&logits[a]).then(a.cmp(&b))
        });
        order.truncate(n);
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
        order
            .into_iter()
            .map(|id| TokenLogprob {
                token: String::from_utf8_lossy(self.token_bytes.get(id as u32)).into_owned(),
                logprob: logits[id] - log_sum,
            })
            .collect()
    }

    /// The token ids the model sees for `prompt`.
    pub fn encode_prompt(&self, prompt: &Prompt) -> Result<Vec<u32>, GenerateError> {
        self.encode_rendered(&self.render_prompt(prompt)?)
    }

    /// How many leading tokens of `ids` (the encoded `prompt`) its first `messages` messages
    /// make, when they end on a token boundary; 0 when none are declared or they do not.
    fn shared_prefix_tokens(
        &self,
        prompt: &Prompt,
        messages: usize,
        ids: &[u32],
    ) -> Result<usize, GenerateError> {
        if messages == 0 || messages >= prompt.messages.len() {
            return Ok(0);
        }
        let head =
            self.encode_rendered(&self.template.render(&prompt.messages[..messages], false)?)?;
        Ok(if ids.starts_with(&head) {
            head.len()
        } else {
            0
        })
    }

    fn encode_rendered(&self, text: &str) -> Result<Vec<u32>, GenerateError> {
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| GenerateError::Tokenizer(e.to_string()))?;
        let mut ids = encoding.get_ids().to_vec();
        if let (true, Some(bos)) = (self.vocab.add_bos, self.vocab.bos_id) {
            if ids.first() != Some(&bos) {
                ids.insert(0, bos);
            }
        }
        Ok(ids)
    }
}

impl Generator for GgufGenerator {
    fn prompt_tokens(&self, prompt: &Prompt) -> Result<Option<usize>, GenerateError> {
        self.encode_prompt(prompt).map(|ids| Some(ids.len()))
    }

    fn context_length(&self) -> Option<usize> {
        Some(self.info.context_length)
    }

    fn generate(
        &mut self,
        prompt: &Prompt,
        opts: &GenOptions,
        on_token: &mut dyn FnMut(&str),
    ) -> Result<Generation, GenerateError> {
        let _span = tracing::info_span!("generate").entered();
        let ids = self.encode_prompt(prompt)?;
        if ids.is_empty() {
            return Err(GenerateError::EmptyPrompt);
        }
        let context = self.info.context_length;
        if ids.len() >= context {
            return Err(GenerateError::PromptTooLong {
                prompt_tokens: ids.len(),
                context,
            });
        }
        let mut sampler = match opts.temperature {
            Some(t) if t > 0.0 => Some(LogitsProcessor::from_sampling(
                opts.seed,
                match opts.top_p {
                    Some(p) if p > 0.0 && p < 1.0 => Sampling::TopP { p, temperature: t },
                    _ => Sampling::All { temperature: t },
                },
            )),
            _ => None,
        };
        let mut pick = |logits: Vec<f32>| -> Result<u32, GenerateError> {
            match sampler.as_mut() {
                None => Ok(argmax(&logits)),
                Some(s) => {
                    let n = logits.len();
                    Ok(s.sample(&Tensor::from_vec(logits, n, &Device::Cpu)?)?)
                }
            }
        };

        let by_bytes = opts.copy_from.as_ref().map(|_| {
            self.by_bytes.get_or_init(|| {
                let mut map = HashMap::new();
                let mut longest = 0;
                for id in 0..self.info.vocab_size as u32 {
                    let bytes = self.token_bytes.get(id);
                    if !bytes.is_empty() && !self.vocab.is_control(id) {
                        longest = longest.max(bytes.len());
                        map.entry(bytes.to_vec()).or_insert(id);
                    }
                }
                (map, longest)
            })
        });
        let constraint = opts
            .copy_from
            .as_deref()
            .zip(by_bytes)
            .map(|(source, (map, longest))| {
                SpanConstraint::new(source, &opts.avoid_starts, map, *longest)
            });
        let stop_ids = &self.stop_ids;
        // Greedy among the tokens that keep the output a span of the source; a stop token when
        // the span may end there and the model prefers it, or when nothing can follow.
        // `None` when no token can continue the span and none may end it (a vocabulary without
        // stop tokens): generation stops there.
        let pick_constrained = |logits: &[f32], c: &SpanConstraint, so_far: &[u8]| -> Option<u32> {
            let allowed = c.allowed(so_far);
            let mut candidates = allowed.tokens;
            if allowed.can_stop {
                candidates.extend(stop_ids);
            }
            argmax_among(logits, &candidates).or_else(|| stop_ids.first().copied())
        };
        let mut so_far: Vec<u8> = Vec::new();

        let prefix = self.shared_prefix_tokens(prompt, opts.shared_prefix_messages, &ids)?;
        let started = Instant::now();
        let mut first_logprobs = Vec::new();
        let mut top_logprobs = Vec::new();
        let mut reused_tokens = 0;
        let mut next = if opts.max_tokens > 0 {
            let head = &ids[..prefix];
            if prefix > 0 && !self.model.has_prefix(head) {
                if let Some(bytes) = self.prefix_store.as_ref().and_then(|s| s.read(head)) {
                    if !self.model.import_prefix(head, &bytes) {
                        tracing::debug!("a stored prompt prefix did not fit the model: ignored");
                    }
                }
            }
            let (reused, logits) = self.model.prefill(&ids, prefix)?;
            reused_tokens = reused;
            if prefix > 0 && reused == 0 {
                if let (Some(store), Some(bytes)) =
                    (&self.prefix_store, self.model.export_prefix(head))
                {
                    if let Err(e) = store.write(head, &bytes) {
                        tracing::warn!(dir = %store.dir().display(), "keeping a prompt prefix: {e}");
                    }
                }
            }
            if !opts.score_first.is_empty() {
                first_logprobs = self.first_token_logprobs(&logits, &opts.score_first)?;
            }
            if opts.top_logprobs > 0 {
                top_logprobs = self.top_first_tokens(&logits, opts.top_logprobs);
            }
            match &constraint {
                Some(c) => pick_constrained(&logits, c, &so_far),
                None => Some(pick(logits)?),
            }
        } else {
            None
        };
        let prefill_ms = ms_since(started);

        let decode_started = Instant::now();
        let mut stream = Utf8Stream::default();
        let mut text = String::new();
        let mut generated = 0;
        let stop_reason = loop {
            let Some(token) = next else {
                break StopReason::MaxTokens;
            };
            if self.stop_ids.contains(&token) {
                break StopReason::StopToken;
            }
            generated += 1;
            if !self.vocab.is_control(token) {
                if constraint.is_some() {
                    so_far.extend_from_slice(self.token_bytes.get(token));
                }
                let piece = stream.push(self.token_bytes.get(token));
                if !piece.is_empty() {
                    on_token(&piece);
                    text.push_str(&piece);
                }
            }
            if generated >= opts.max_tokens {
                break StopReason::MaxTokens;
            }
            if self.model.cached() >= context {
                break StopReason::ContextFull;
            }
            let logits = self.model.forward(&[token])?;
            next = match &constraint {
                Some(c) => pick_constrained(&logits, c, &so_far),
                None => Some(pick(logits)?),
            };
        };
        let rest = stream.finish();
        if !rest.is_empty() {
            on_token(&rest);
            text.push_str(&rest);
        }
        let generation = Generation {
            text,
            prompt_tokens: ids.len(),
            reused_tokens,
            generated_tokens: generated,
            prefill_ms,
            decode_ms: ms_since(decode_started),
            stop_reason,
            first_logprobs,
            top_logprobs,
        };
        tracing::debug!(
            prompt_tokens = generation.prompt_tokens,
            reused_tokens = generation.reused_tokens,
            generated_tokens = generation.generated_tokens,
            prefill_tok_s = generation.prefill_tokens_per_s(),
            decode_tok_s = generation.decode_tokens_per_s(),
            "generated"
        );
        Ok(generation)
    }
}

/// Index of the largest logit; the first one on ties, so greedy decoding is reproducible.
fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

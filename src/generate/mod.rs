//! Text generation: the [`Generator`] trait that the answer stage drafts with, and its candle
//! implementation over GGUF files ([`GgufGenerator`]) with the tokenizer and chat template read
//! from the GGUF itself.
//!
//! Model code here takes a file path and a device; it never touches the CLI, the model store or
//! the network. Thread count is the caller's business (candle reads `RAYON_NUM_THREADS`).

use std::path::PathBuf;

mod copy;
mod gguf;
mod kernels;
mod model;
pub mod prefix_store;
pub mod requant;
pub mod served;
pub mod template;
pub mod tokenizer;

pub use gguf::{gguf_architecture, GgufGenerator, ModelInfo, SUPPORTED_ARCHITECTURES};
pub use requant::{requantize_slow_tensors, RequantReport};
pub use served::ServedGenerator;
pub use template::ChatTemplate;
pub use tokenizer::tokenizer_from_gguf;

/// Who says a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// The role name chat templates expect.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

/// What the model is asked: chat messages, rendered with the model's own chat template.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prompt {
    pub messages: Vec<Message>,
}

impl Prompt {
    /// A prompt of one system message and one user message.
    pub fn new(system: impl Into<String>, user: impl Into<String>) -> Self {
        Prompt {
            messages: vec![
                Message {
                    role: Role::System,
                    content: system.into(),
                },
                Message {
                    role: Role::User,
                    content: user.into(),
                },
            ],
        }
    }

    /// A prompt of a single user message (the template may add its default system message).
    pub fn user(user: impl Into<String>) -> Self {
        Prompt {
            messages: vec![Message {
                role: Role::User,
                content: user.into(),
            }],
        }
    }
}

/// How to pick tokens and when to stop.
#[derive(Debug, Clone, PartialEq)]
pub struct GenOptions {
    /// Upper bound on generated tokens (stop tokens excluded).
    pub max_tokens: usize,
    /// `None` or `<= 0` means greedy decoding: the same prompt always gives the same text.
    pub temperature: Option<f64>,
    /// Nucleus sampling threshold, used only when sampling with a temperature.
    pub top_p: Option<f64>,
    /// Seed for sampling; ignored by greedy decoding.
    pub seed: u64,
    /// When set, the output must be one contiguous span of this text, starting at a word and
    /// ending at a word boundary (decoded greedily among the tokens that keep it so).
    pub copy_from: Option<String>,
    /// With `copy_from`: lower-cased words the span may not start with (the question's own
    /// words, which an answer adds nothing by repeating).
    pub avoid_starts: Vec<String>,
    /// Replies whose log-probability as the start of the reply is reported in
    /// [`Generation::first_logprobs`], in this order. A reply is scored by its first token, so
    /// choices should differ in their first token ("Yes" and "No").
    pub score_first: Vec<String>,
    /// The prompt's first this-many messages are expected to open other prompts too (fixed
    /// instructions or worked examples): the generator may keep their computed state and resume
    /// later prompts that open with the same messages from it. The prefix is then always
    /// computed as a pass of its own, so a resumed prompt gets exactly what a fresh one would;
    /// against not declaring it, only floating-point rounding differs.
    pub shared_prefix_messages: usize,
    /// The likeliest first tokens of the reply to report in [`Generation::top_logprobs`] (what
    /// an OpenAI-compatible server returns as `top_logprobs`); 0 reports none.
    pub top_logprobs: usize,
}

/// Bumped whenever decoding changes what a given prompt and options produce (a kernel, the
/// copy constraint, stop handling), so cached generations from older code are not replayed.
pub const DECODER_VERSION: u32 = 3;

impl GenOptions {
    /// Everything about these options that decides the generated text, with the decoder
    /// version: what a generation cache keys on besides the model and the prompt.
    pub fn cache_key(&self) -> String {
        let mut key = format!(
            "decoder={DECODER_VERSION};max_tokens={};temperature={:?};top_p={:?};seed={};\
copy_from={:?};avoid_starts={:?}",
            self.max_tokens,
            self.temperature,
            self.top_p,
            self.seed,
            self.copy_from,
            self.avoid_starts
        );
        // Added only when set, so that keys of plain generations stay as they were.
        if !self.score_first.is_empty() {
            key.push_str(&format!(";score_first={:?}", self.score_first));
        }
        if self.shared_prefix_messages > 0 {
            key.push_str(&format!(";shared_prefix={}", self.shared_prefix_messages));
        }
        if self.top_logprobs > 0 {
            key.push_str(&format!(";top_logprobs={}", self.top_logprobs));
        }
        key
    }
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            max_tokens: 512,
            temperature: None,
            top_p: None,
            seed: 299_792_458,
            copy_from: None,
            avoid_starts: Vec::new(),
            score_first: Vec::new(),
            shared_prefix_messages: 0,
            top_logprobs: 0,
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// The model produced one of its stop tokens.
    StopToken,
    /// `max_tokens` tokens were generated.
    MaxTokens,
    /// The model's context window is full.
    ContextFull,
}

/// The drafted text and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// Generated text, stop token excluded.
    pub text: String,
    pub prompt_tokens: usize,
    /// Leading prompt tokens whose keys and values were resumed from an earlier prompt rather
    /// than computed (a prefix it shared); prefill computed the rest.
    pub reused_tokens: usize,
    pub generated_tokens: usize,
    /// Wall time to process the prompt and produce the first token's logits.
    pub prefill_ms: f64,
    /// Wall time of the decode loop after prefill.
    pub decode_ms: f64,
    pub stop_reason: StopReason,
    /// Log-probability of each of [`GenOptions::score_first`] as the start of the reply (from
    /// the prompt's last position, whatever was then generated); empty when none were asked.
    pub first_logprobs: Vec<f32>,
    /// The [`GenOptions::top_logprobs`] likeliest first tokens of the reply with their
    /// log-probabilities, likeliest first; empty when none were asked.
    pub top_logprobs: Vec<TokenLogprob>,
}

/// A token's text and its log-probability.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TokenLogprob {
    pub token: String,
    pub logprob: f32,
}

/// How a generator scores a Yes/No judgement ([`GenOptions::score_first`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifySource {
    /// From the log-probabilities of the reply's first token.
    Logprobs,
    /// From the reply the model generated: Yes scores +1, No -1, anything else 0 (a served
    /// model whose server returns no log-probabilities).
    GeneratedYesNo,
}

/// How a generator makes the short answer ([`GenOptions::copy_from`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShortAnswerSource {
    /// Decoding constrained to copy a span of the checked sentence.
    CopyConstrained,
    /// A plain request (a served model): the reply is kept as the span of the sentence it
    /// matches, or as it came when it matches none.
    PlainRequest,
}

/// What a generator can do of what the answer contract asks: reports name it beside the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct GeneratorFeatures {
    pub verification: VerifySource,
    pub short_answer: ShortAnswerSource,
    /// Its speed is measured on this machine (false for a served model: its hardware is not
    /// ours, and its figures include the network).
    pub local_speed: bool,
}

impl Default for GeneratorFeatures {
    fn default() -> Self {
        GeneratorFeatures {
            verification: VerifySource::Logprobs,
            short_answer: ShortAnswerSource::CopyConstrained,
            local_speed: true,
        }
    }
}

impl Generation {
    /// Prompt tokens computed per second during prefill (resumed ones are not counted).
    pub fn prefill_tokens_per_s(&self) -> f64 {
        per_second(
            self.prompt_tokens.saturating_sub(self.reused_tokens),
            self.prefill_ms,
        )
    }

    /// Generated tokens per second during decode (the first token comes from prefill).
    pub fn decode_tokens_per_s(&self) -> f64 {
        per_second(self.generated_tokens.saturating_sub(1), self.decode_ms)
    }
}

fn per_second(tokens: usize, ms: f64) -> f64 {
    if ms > 0.0 {
        tokens as f64 * 1000.0 / ms
    } else {
        0.0
    }
}

/// Something that drafts text for a chat prompt.
pub trait Generator {
    /// Generates a reply to `prompt`, calling `on_token` with each new piece of text as soon as
    /// it forms complete UTF-8. The pieces concatenate to `Generation::text`.
    fn generate(
        &mut self,
        prompt: &Prompt,
        opts: &GenOptions,
        on_token: &mut dyn FnMut(&str),
    ) -> Result<Generation, GenerateError>;

    /// How many tokens `prompt` takes in this model, so that a caller can shorten a prompt to
    /// fit [`Generator::context_length`]; `None` when the generator cannot tell.
    fn prompt_tokens(&self, _prompt: &Prompt) -> Result<Option<usize>, GenerateError> {
        Ok(None)
    }

    /// The most tokens, prompt and reply together, the model's context holds; `None` when the
    /// generator has no such limit or cannot tell.
    fn context_length(&self) -> Option<usize> {
        None
    }

    /// What of the answer contract this generator does as asked (see [`GeneratorFeatures`]).
    fn features(&self) -> GeneratorFeatures {
        GeneratorFeatures::default()
    }

    /// [`Generator::generate`] without streaming.
    fn generate_text(
        &mut self,
        prompt: &Prompt,
        opts: &GenOptions,
    ) -> Result<Generation, GenerateError> {
        self.generate(prompt, opts, &mut |_| {})
    }
}

/// Errors of the generate stage. Messages name the file, metadata key or model involved.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot read GGUF: {source}")]
    Gguf {
        path: PathBuf,
        #[source]
        source: Box<candle_core::Error>,
    },
    #[error("GGUF metadata key `{key}` is missing")]
    MissingMetadata { key: String },
    #[error("GGUF metadata key `{key}` is invalid: {reason}")]
    BadMetadata { key: String, reason: String },
    #[error("GGUF tensor `{name}` is missing or malformed: {reason}")]
    BadTensor { name: String, reason: String },
    #[error("model architecture `{0}` is not supported (supported: qwen2, llama)")]
    UnsupportedArchitecture(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("chat template: {0}")]
    Template(String),
    #[error("the prompt is empty")]
    EmptyPrompt,
    #[error("the prompt has {prompt_tokens} tokens but the model's context holds {context}")]
    PromptTooLong {
        prompt_tokens: usize,
        context: usize,
    },
    #[error("only the CPU device is supported, got {0}")]
    UnsupportedDevice(String),
    #[error("tensor computation failed: {0}")]
    Candle(#[source] Box<candle_core::Error>),
    /// A served model's server failed (see [`crate::served::ServedError`]). Boxed: it is
    /// large, and this error travels up through every later stage's errors.
    #[error(transparent)]
    Served(Box<crate::served::ServedError>),
}

impl From<crate::served::ServedError> for GenerateError {
    fn from(e: crate::served::ServedError) -> Self {
        GenerateError::Served(Box::new(e))
    }
}

// Boxed: candle's error is large and this one travels up through every later stage's errors.
impl From<candle_core::Error> for GenerateError {
    fn from(e: candle_core::Error) -> Self {
        GenerateError::Candle(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_key_changes_with_every_option_that_decides_the_text() {
        let base = GenOptions::default();
        let variants = [
            GenOptions {
                max_tokens: 7,
                ..GenOptions::default()
            },
            GenOptions {
                temperature: Some(0.7),
                ..GenOptions::default()
            },
            GenOptions {
                top_p: Some(0.9),
                ..GenOptions::default()
            },
            GenOptions {
                seed: 1,
                ..GenOptions::default()
            },
            GenOptions {
                copy_from: Some(String::new()),
                ..GenOptions::default()
            },
            GenOptions {
                avoid_starts: vec!["who".into()],
                ..GenOptions::default()
            },
            GenOptions {
                score_first: vec!["Yes".into()],
                ..GenOptions::default()
            },
            GenOptions {
                top_logprobs: 5,
                ..GenOptions::default()
            },
        ];
        let mut keys: Vec<String> = variants.iter().map(GenOptions::cache_key).collect();
        keys.push(base.cache_key());
        assert!(base
            .cache_key()
            .contains(&format!("decoder={DECODER_VERSION};")));
        let n = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), n, "two different options share a key: {keys:?}");
        assert_eq!(base.cache_key(), GenOptions::default().cache_key());
    }
}

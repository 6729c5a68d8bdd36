//! Builds a Hugging Face `tokenizers::Tokenizer` from the vocabulary a GGUF file carries
//! (`tokenizer.ggml.*`), so a model needs no separate tokenizer.json, and turns generated ids back
//! into bytes for streaming. Used by [`super::GgufGenerator`] and by tests that compare against
//! official tokenizer.json files.
//!
//! Only byte-level BPE (`tokenizer.ggml.model = "gpt2"`) is supported; `tokenizer.ggml.pre` picks
//! the pre-tokenizer the model was trained with, mirroring the model's own tokenizer.json.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

use super::GenerateError;

/// Qwen2's split (its tokenizer.json): contractions, letters with one leading non-letter, single
/// digits, punctuation runs, newlines, spaces.
const SPLIT_QWEN2: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Llama 3's split: as Qwen2's but digits in groups of up to three.
const SPLIT_LLAMA3: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// llama.cpp's `llama_token_type` values found in `tokenizer.ggml.token_type`.
const TOKEN_TYPE_UNKNOWN: i64 = 2;
const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// The vocabulary-related metadata of a GGUF file.
#[derive(Debug, Clone)]
pub struct GgufVocab {
    pub tokens: Vec<String>,
    pub token_types: Vec<i64>,
    pub merges: Vec<(String, String)>,
    /// `tokenizer.ggml.pre`, "gpt2" when absent.
    pub pre: String,
    pub bos_id: Option<u32>,
    pub eos_id: Option<u32>,
    pub add_bos: bool,
}

impl GgufVocab {
    /// Reads the `tokenizer.ggml.*` keys.
    pub fn from_gguf(content: &Content) -> Result<Self, GenerateError> {
        let model = metadata_str(content, "tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(GenerateError::BadMetadata {
                key: "tokenizer.ggml.model".into(),
                reason: format!("`{model}` is not supported, only byte-level BPE (`gpt2`) is"),
            });
        }
        let tokens = metadata_strings(content, "tokenizer.ggml.tokens")?;
        let merges = metadata_strings(content, "tokenizer.ggml.merges")?
            .into_iter()
            .map(|m| match m.split_once(' ') {
                Some((a, b)) => Ok((a.to_string(), b.to_string())),
                None => Err(GenerateError::BadMetadata {
                    key: "tokenizer.ggml.merges".into(),
                    reason: format!("merge `{m}` is not two tokens separated by a space"),
                }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let token_types = match content.metadata.get("tokenizer.ggml.token_type") {
            Some(Value::Array(values)) => values
                .iter()
                .map(|v| value_as_i64(v).ok_or(()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|()| GenerateError::BadMetadata {
                    key: "tokenizer.ggml.token_type".into(),
                    reason: "not an array of integers".into(),
                })?,
            Some(_) => {
                return Err(GenerateError::BadMetadata {
                    key: "tokenizer.ggml.token_type".into(),
                    reason: "not an array".into(),
                })
            }
            None => vec![1; tokens.len()],
        };
        if token_types.len() != tokens.len() {
            return Err(GenerateError::BadMetadata {
                key: "tokenizer.ggml.token_type".into(),
                reason: format!("{} entries for {} tokens", token_types.len(), tokens.len()),
            });
        }
        let pre = match content.metadata.get("tokenizer.ggml.pre") {
            Some(Value::String(s)) => s.clone(),
            _ => "gpt2".to_string(),
        };
        let token_id = |key: &str| -> Result<Option<u32>, GenerateError> {
            match content.metadata.get(key) {
                None => Ok(None),
                Some(v) => match value_as_i64(v) {
                    Some(id) if (0..tokens.len() as i64).contains(&id) => Ok(Some(id as u32)),
                    _ => Err(GenerateError::BadMetadata {
                        key: key.into(),
                        reason: format!("not a token id below {}", tokens.len()),
                    }),
                },
            }
        };
        let bos_id = token_id("tokenizer.ggml.bos_token_id")?;
        let eos_id = token_id("tokenizer.ggml.eos_token_id")?;
        let add_bos = matches!(
            content.metadata.get("tokenizer.ggml.add_bos_token"),
            Some(Value::Bool(true))
        );
        Ok(GgufVocab {
            tokens,
            token_types,
            merges,
            pre,
            bos_id,
            eos_id,
            add_bos,
        })
    }

    /// Id of the token whose text is exactly `text`, if the vocabulary has one.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.tokens.iter().position(|t| t == text).map(|i| i as u32)
    }

    /// Whether `id` is a control token (`<|im_end|>`, `<|endoftext|>`, ...).
    pub fn is_control(&self, id: u32) -> bool {
        self.token_types.get(id as usize) == Some(&TOKEN_TYPE_CONTROL)
    }
}

/// Builds the tokenizer described by the GGUF's `tokenizer.ggml.*` metadata.
pub fn tokenizer_from_gguf(content: &Content) -> Result<Tokenizer, GenerateError> {
    build_tokenizer(&GgufVocab::from_gguf(content)?)
}

/// Builds a byte-level BPE tokenizer from an already read vocabulary.
///
/// Control tokens (and the bos/eos tokens) become special added tokens, so `<|im_start|>` in a
/// rendered chat prompt encodes as one id and `decode(.., skip_special_tokens)` drops them.
/// User-defined tokens (`<tool_call>`) are added as whole tokens but not special, as in the
/// models' own tokenizer.json files.
pub fn build_tokenizer(vocab: &GgufVocab) -> Result<Tokenizer, GenerateError> {
    let tok_err = |e: tokenizers::Error| GenerateError::Tokenizer(e.to_string());
    let ids: Vocab = vocab
        .tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(ids, vocab.merges.clone())
        .build()
        .map_err(tok_err)?;
    let mut tokenizer = Tokenizer::new(bpe);

    let no_regex_byte_level = ByteLevel::new(false, false, false);
    let pre_tokenizer: PreTokenizerWrapper = match vocab.pre.as_str() {
        "qwen2" => {
            tokenizer.with_normalizer(Some(NFC)).map_err(tok_err)?;
            split_then_bytes(SPLIT_QWEN2, no_regex_byte_level)?
        }
        "llama-bpe" | "llama3" | "smaug-bpe" => {
            split_then_bytes(SPLIT_LLAMA3, no_regex_byte_level)?
        }
        // StarCoder-family vocabularies (SmolLM): every digit alone, then GPT-2's split.
        "smollm" | "starcoder" | "refact" | "codeshell" => Sequence::new(vec![
            Digits::new(true).into(),
            ByteLevel::new(false, true, true).into(),
        ])
        .into(),
        "gpt2" | "default" => ByteLevel::new(false, true, true).into(),
        other => {
            return Err(GenerateError::BadMetadata {
                key: "tokenizer.ggml.pre".into(),
                reason: format!(
                    "pre-tokenizer `{other}` is not supported \
                     (supported: qwen2, llama-bpe, smollm, starcoder, gpt2)"
                ),
            })
        }
    };
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer));
    tokenizer.with_decoder(Some(ByteLevelDecoder::new(false, false, false)));

    let mut special = Vec::new();
    let mut plain = Vec::new();
    for (id, (text, &kind)) in vocab.tokens.iter().zip(&vocab.token_types).enumerate() {
        let id = Some(id as u32);
        let is_marker = id == vocab.bos_id || id == vocab.eos_id;
        if kind == TOKEN_TYPE_CONTROL || kind == TOKEN_TYPE_UNKNOWN || is_marker {
            special.push(AddedToken::from(text.clone(), true).normalized(false));
        } else if kind == TOKEN_TYPE_USER_DEFINED {
            plain.push(AddedToken::from(text.clone(), false).normalized(false));
        }
    }
    tokenizer.add_special_tokens(special).map_err(tok_err)?;
    tokenizer.add_tokens(plain).map_err(tok_err)?;
    Ok(tokenizer)
}

fn split_then_bytes(regex: &str, bytes: ByteLevel) -> Result<PreTokenizerWrapper, GenerateError> {
    let split = Split::new(
        SplitPattern::Regex(regex.to_string()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map_err(|e| GenerateError::Tokenizer(format!("pre-tokenizer regex: {e}")))?;
    Ok(Sequence::new(vec![split.into(), bytes.into()]).into())
}

/// Maps token ids to the raw bytes they stand for, so that streamed text can be cut only at
/// UTF-8 character boundaries even when a character spans several tokens.
#[derive(Debug, Clone)]
pub struct TokenBytes {
    bytes: Vec<Vec<u8>>,
}

impl TokenBytes {
    /// Byte-level BPE writes each byte as one printable character (GPT-2's `bytes_to_unicode`);
    /// this inverts that mapping for every vocabulary entry. Control tokens keep their text.
    pub fn new(vocab: &GgufVocab) -> Self {
        let to_byte = unicode_to_byte();
        let bytes = vocab
            .tokens
            .iter()
            .zip(&vocab.token_types)
            .map(|(text, &kind)| {
                let mapped: Option<Vec<u8>> =
                    text.chars().map(|c| to_byte.get(&c).copied()).collect();
                match mapped {
                    Some(b) if kind != TOKEN_TYPE_CONTROL => b,
                    _ => text.as_bytes().to_vec(),
                }
            })
            .collect();
        TokenBytes { bytes }
    }

    /// The bytes of token `id` (empty for an id outside the vocabulary).
    pub fn get(&self, id: u32) -> &[u8] {
        self.bytes.get(id as usize).map_or(&[], Vec::as_slice)
    }
}

/// GPT-2's byte-to-character table, inverted: printable Latin-1 bytes stand for themselves and
/// the rest are shifted to U+0100 and up, in byte order.
fn unicode_to_byte() -> HashMap<char, u8> {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut map = HashMap::with_capacity(256);
    let mut shifted = 0u32;
    for b in 0..=255u8 {
        let c = if printable(b) {
            char::from(b)
        } else {
            shifted += 1;
            char::from_u32(255 + shifted).expect("U+0100..U+0143 are chars")
        };
        map.insert(c, b);
    }
    map
}

/// Turns a stream of token bytes into text pieces that end on character boundaries.
#[derive(Debug, Default)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// Appends `bytes` and returns the longest complete UTF-8 text now available. Invalid bytes
    /// (not a prefix of any character) come out as U+FFFD, as `String::from_utf8_lossy` would.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(
                        std::str::from_utf8(&self.pending[..valid]).expect("valid prefix"),
                    );
                    match e.error_len() {
                        // An incomplete character at the end: wait for more bytes.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// Flushes bytes left at the end of generation (an unfinished character) as U+FFFD.
    pub fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

fn metadata_str<'a>(content: &'a Content, key: &str) -> Result<&'a str, GenerateError> {
    match content.metadata.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(GenerateError::BadMetadata {
            key: key.into(),
            reason: "not a string".into(),
        }),
        None => Err(GenerateError::MissingMetadata { key: key.into() }),
    }
}

fn metadata_strings(content: &Content, key: &str) -> Result<Vec<String>, GenerateError> {
    let bad = || GenerateError::BadMetadata {
        key: key.into(),
        reason: "not an array of strings".into(),
    };
    match content.metadata.get(key) {
        Some(Value::Array(values)) => values
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(bad()),
            })
            .collect(),
        Some(_) => Err(bad()),
        None => Err(GenerateError::MissingMetadata { key: key.into() }),
    }
}

fn value_as_i64(v: &Value) -> Option<i64> {
    Some(match *v {
        Value::U8(x) => x.into(),
        Value::I8(x) => x.into(),
        Value::U16(x) => x.into(),
        Value::I16(x) => x.into(),
        Value::U32(x) => x.into(),
        Value::I32(x) => x.into(),
        Value::U64(x) => i64::try_from(x).ok()?,
        Value::I64(x) => x,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_inverts_gpt2_mapping() {
        let map = unicode_to_byte();
        assert_eq!(map.len(), 256);
        assert_eq!(map[&'Ġ'], b' ');
        assert_eq!(map[&'Ċ'], b'\n');
        assert_eq!(map[&'A'], b'A');
        assert_eq!(map[&'Ā'], 0);
    }

    #[test]
    fn utf8_stream_waits_for_split_characters() {
        let mut s = Utf8Stream::default();
        let bytes = "한a😀".as_bytes();
        let mut out = String::new();
        for b in bytes {
            out.push_str(&s.push(std::slice::from_ref(b)));
        }
        out.push_str(&s.finish());
        assert_eq!(out, "한a😀");
        assert_eq!(s.push(&[0xED, 0x95]), "");
        assert_eq!(s.push(&[0x9C, b'x']), "한x");
    }

    #[test]
    fn utf8_stream_replaces_invalid_bytes() {
        let mut s = Utf8Stream::default();
        assert_eq!(s.push(&[b'a', 0xFF, b'b']), "a\u{FFFD}b");
        assert_eq!(s.push(&[0xE2, 0x82]), "");
        assert_eq!(s.finish(), "\u{FFFD}");
    }
}

//! A generation cache keyed by (model hash, prompt hash, options and decoder version): a re-run
//! of an eval or a comparison only generates what changed. Wraps any [`Generator`]; the pipeline cannot tell.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::generate::{
    GenOptions, GenerateError, Generation, Generator, GeneratorFeatures, Prompt, StopReason,
    TokenLogprob,
};

#[derive(Serialize, Deserialize)]
struct Entry {
    text: String,
    prompt_tokens: usize,
    #[serde(default)]
    reused_tokens: usize,
    generated_tokens: usize,
    prefill_ms: f64,
    decode_ms: f64,
    stop: String,
    #[serde(default)]
    first_logprobs: Vec<f32>,
    #[serde(default)]
    top_logprobs: Vec<TokenLogprob>,
}

pub struct CachedGenerator<'a> {
    inner: &'a mut dyn Generator,
    dir: PathBuf,
    model_sha256: String,
    /// Generations served from the cache so far.
    pub hits: usize,
    /// Generations computed (and stored) so far.
    pub misses: usize,
}

impl<'a> CachedGenerator<'a> {
    /// `dir` holds the entries; `model_sha256` identifies the exact weights (for a served
    /// model, its server's URL and model id).
    pub fn new(inner: &'a mut dyn Generator, dir: &Path, model_sha256: &str) -> Self {
        Self {
            inner,
            dir: dir.to_path_buf(),
            model_sha256: model_sha256.to_string(),
            hits: 0,
            misses: 0,
        }
    }

    fn key(&self, prompt: &Prompt, opts: &GenOptions) -> String {
        let mut h = Sha256::new();
        h.update(self.model_sha256.as_bytes());
        for m in &prompt.messages {
            h.update([0u8]);
            h.update(m.role.as_str().as_bytes());
            h.update([0u8]);
            h.update(m.content.as_bytes());
        }
        h.update([0u8]);
        h.update(opts.cache_key().as_bytes());
        hex::encode(h.finalize())
    }
}

fn stop_name(s: StopReason) -> &'static str {
    match s {
        StopReason::StopToken => "stop_token",
        StopReason::MaxTokens => "max_tokens",
        StopReason::ContextFull => "context_full",
    }
}

impl Generator for CachedGenerator<'_> {
    fn prompt_tokens(&self, prompt: &Prompt) -> Result<Option<usize>, GenerateError> {
        self.inner.prompt_tokens(prompt)
    }

    fn context_length(&self) -> Option<usize> {
        self.inner.context_length()
    }

    fn features(&self) -> GeneratorFeatures {
        self.inner.features()
    }

    fn generate(
        &mut self,
        prompt: &Prompt,
        opts: &GenOptions,
        on_token: &mut dyn FnMut(&str),
    ) -> Result<Generation, GenerateError> {
        let key = self.key(prompt, opts);
        let path = self.dir.join(&key[..2]).join(format!("{key}.json"));
        // A damaged entry is treated as absent and overwritten.
        if let Some(e) = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Entry>(&b).ok())
        {
            self.hits += 1;
            on_token(&e.text);
            return Ok(Generation {
                text: e.text,
                prompt_tokens: e.prompt_tokens,
                reused_tokens: e.reused_tokens,
                generated_tokens: e.generated_tokens,
                prefill_ms: e.prefill_ms,
                decode_ms: e.decode_ms,
                stop_reason: match e.stop.as_str() {
                    "max_tokens" => StopReason::MaxTokens,
                    "context_full" => StopReason::ContextFull,
                    _ => StopReason::StopToken,
                },
                first_logprobs: e.first_logprobs,
                top_logprobs: e.top_logprobs,
            });
        }
        let g = self.inner.generate(prompt, opts, on_token)?;
        self.misses += 1;
        let entry = Entry {
            text: g.text.clone(),
            prompt_tokens: g.prompt_tokens,
            reused_tokens: g.reused_tokens,
            generated_tokens: g.generated_tokens,
            prefill_ms: g.prefill_ms,
            decode_ms: g.decode_ms,
            stop: stop_name(g.stop_reason).into(),
            first_logprobs: g.first_logprobs.clone(),
            top_logprobs: g.top_logprobs.clone(),
        };
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
            // Written to a temporary file and renamed, so a killed run leaves no half entry.
            if let Ok(mut tmp) = tempfile::NamedTempFile::new_in(parent) {
                let ok = serde_json::to_writer(&mut tmp, &entry).is_ok();
                if ok {
                    let _ = tmp.persist(&path);
                }
            }
        }
        Ok(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counting(usize);

    impl Generator for Counting {
        fn generate(
            &mut self,
            prompt: &Prompt,
            _opts: &GenOptions,
            on_token: &mut dyn FnMut(&str),
        ) -> Result<Generation, GenerateError> {
            self.0 += 1;
            let text = format!("reply to {}", prompt.messages[0].content);
            on_token(&text);
            Ok(Generation {
                text,
                prompt_tokens: 3,
                reused_tokens: 0,
                generated_tokens: 2,
                prefill_ms: 1.0,
                decode_ms: 1.0,
                stop_reason: StopReason::StopToken,
                first_logprobs: Vec::new(),
                top_logprobs: Vec::new(),
            })
        }
    }

    #[test]
    fn second_identical_prompt_is_served_from_cache() {
        let dir = tempfile::tempdir().unwrap();
        let mut inner = Counting(0);
        let opts = GenOptions::default();
        {
            let mut c = CachedGenerator::new(&mut inner, dir.path(), "abc");
            let a = c.generate_text(&Prompt::user("q1"), &opts).unwrap();
            let b = c.generate_text(&Prompt::user("q1"), &opts).unwrap();
            assert_eq!(a.text, b.text);
            c.generate_text(&Prompt::user("q2"), &opts).unwrap();
            assert_eq!((c.hits, c.misses), (1, 2));
        }
        assert_eq!(inner.0, 2);
        // Another model hash misses.
        let mut c = CachedGenerator::new(&mut inner, dir.path(), "def");
        c.generate_text(&Prompt::user("q1"), &opts).unwrap();
        assert_eq!(c.misses, 1);
    }
}

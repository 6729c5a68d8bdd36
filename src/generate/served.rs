//! [`ServedGenerator`]: a [`Generator`] over an OpenAI-compatible `/chat/completions` endpoint
//! (llama.cpp's `llama-server`, vLLM, another `docqa serve`). The model runs elsewhere; this
//! sends the prompt's messages and reads the reply.
//!
//! What the answer contract asks of a generator, over HTTP:
//! - [`GenOptions::score_first`] (verification): the first token's `top_logprobs` when the
//!   server returns them, read for each reply's token; otherwise the generated reply itself
//!   (Yes +1, No -1, else 0), which [`GeneratorFeatures::verification`] then says.
//! - [`GenOptions::copy_from`] (the short answer): no server constrains decoding to a span, so
//!   it is a plain request whose reply is kept as the span of the sentence it matches.
//! - Prompt prefixes and token counts stay on the server: no [`Generator::prompt_tokens`] or
//!   context length here; a prompt past the context is the server's 400, a typed error.

use std::time::Instant;

use serde_json::{json, Value};

use super::{
    GenOptions, GenerateError, Generation, Generator, GeneratorFeatures, Prompt, ShortAnswerSource,
    StopReason, TokenLogprob, VerifySource,
};
use crate::served::{model_ids, Client, ServedError, ServedOptions};

/// Alternatives asked for when scoring Yes/No (OpenAI's most).
const SCORE_TOP_LOGPROBS: usize = 20;

/// A chat model behind an OpenAI-compatible server.
#[derive(Debug)]
pub struct ServedGenerator {
    client: Client,
    model: String,
    verification: VerifySource,
}

impl ServedGenerator {
    /// Connects to the API at `base_url` (`http://host:port/v1`): checks that it serves
    /// `api_model` (by default the first model its `GET /models` lists) and whether it returns
    /// log-probabilities, with one one-token request.
    pub fn connect(
        base_url: &str,
        api_model: Option<&str>,
        opts: ServedOptions,
    ) -> Result<ServedGenerator, ServedError> {
        let client = Client::new(base_url, opts);
        let listed = match client.get("/models") {
            Ok(list) => model_ids(&list),
            // A server without the list route still serves a model named on the command line.
            Err(ServedError::Status { .. }) if api_model.is_some() => Vec::new(),
            Err(e) => return Err(e),
        };
        let model = match api_model {
            Some(m) => {
                if !listed.is_empty() && !listed.iter().any(|id| id == m) {
                    return Err(ServedError::UnknownModel {
                        url: client.base().to_string(),
                        model: m.to_string(),
                        known: listed,
                    });
                }
                m.to_string()
            }
            None => listed
                .first()
                .cloned()
                .ok_or_else(|| ServedError::BadReply {
                    url: format!("{}/models", client.base()),
                    why: "it lists no model; name one with --api-model".into(),
                })?,
        };
        let mut g = ServedGenerator {
            client,
            model,
            verification: VerifySource::Logprobs,
        };
        let probe = g.complete(
            &Prompt::user("Is water wet? Reply Yes or No."),
            &GenOptions {
                max_tokens: 1,
                top_logprobs: 5,
                ..GenOptions::default()
            },
        )?;
        if probe.top.is_empty() {
            tracing::warn!(
                "{} returns no log-probabilities for `{}`: verification is scored from the \
                 generated Yes/No",
                g.client.base(),
                g.model
            );
            g.verification = VerifySource::GeneratedYesNo;
        }
        Ok(g)
    }

    /// The model id the server is asked for.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The API's base URL.
    pub fn base_url(&self) -> &str {
        self.client.base()
    }

    /// One request to `/chat/completions`, parsed.
    fn complete(&self, prompt: &Prompt, opts: &GenOptions) -> Result<Reply, ServedError> {
        let messages: Vec<Value> = prompt
            .messages
            .iter()
            .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
            .collect();
        let sampling = opts.temperature.filter(|t| *t > 0.0);
        let mut body = json!({
            "model": self.model,
            "messages": messages,
            "max_tokens": opts.max_tokens.max(1),
            "temperature": sampling.unwrap_or(0.0),
            "stream": false,
        });
        if sampling.is_some() {
            body["seed"] = json!(opts.seed);
            if let Some(p) = opts.top_p {
                body["top_p"] = json!(p);
            }
        }
        let top = if opts.score_first.is_empty() {
            opts.top_logprobs
        } else {
            opts.top_logprobs.max(SCORE_TOP_LOGPROBS)
        };
        if top > 0 {
            body["logprobs"] = json!(true);
            body["top_logprobs"] = json!(top);
        }
        let started = Instant::now();
        let v = self.client.post("/chat/completions", &body, &self.model)?;
        let wall_ms = started.elapsed().as_secs_f64() * 1e3;
        Reply::parse(&v, wall_ms).map_err(|why| ServedError::BadReply {
            url: format!("{}/chat/completions", self.client.base()),
            why,
        })
    }
}

/// A `/chat/completions` reply, as much of it as docqa reads.
struct Reply {
    text: String,
    finish: Option<String>,
    prompt_tokens: usize,
    completion_tokens: usize,
    /// The first token's alternatives, as sent.
    top: Vec<TokenLogprob>,
    /// The server's own split of its time (llama.cpp's `timings`), when it sends one.
    predicted_ms: Option<f64>,
    wall_ms: f64,
}

impl Reply {
    fn parse(v: &Value, wall_ms: f64) -> Result<Reply, String> {
        let choice = v
            .get("choices")
            .and_then(|c| c.get(0))
            .ok_or("no `choices[0]`")?;
        let text = match choice.get("message").and_then(|m| m.get("content")) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => return Err(format!("`message.content` is {other}")),
        };
        let top = choice
            .get("logprobs")
            .and_then(|l| l.get("content"))
            .and_then(|c| c.get(0))
            .and_then(|first| first.get("top_logprobs"))
            .and_then(Value::as_array)
            .map(|alts| {
                alts.iter()
                    .filter_map(|a| {
                        Some(TokenLogprob {
                            token: a.get("token")?.as_str()?.to_string(),
                            logprob: a.get("logprob")?.as_f64()? as f32,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let usage = |k: &str| {
            v.get("usage")
                .and_then(|u| u.get(k))
                .and_then(Value::as_u64)
                .map_or(0, |n| n as usize)
        };
        Ok(Reply {
            text,
            finish: choice
                .get("finish_reason")
                .and_then(Value::as_str)
                .map(str::to_string),
            prompt_tokens: usage("prompt_tokens"),
            completion_tokens: usage("completion_tokens"),
            top,
            predicted_ms: v
                .get("timings")
                .and_then(|t| t.get("predicted_ms"))
                .and_then(Value::as_f64),
            wall_ms,
        })
    }
}

/// The log-probability of each of `choices` as the reply's first token, read from the first
/// token's alternatives: the likeliest alternative that is the choice (spaces ignored; case
/// ignored when no alternative matches exactly). A choice among none of them is at most as
/// likely as the least likely one listed, which it is given.
pub fn choice_logprobs(top: &[TokenLogprob], choices: &[String]) -> Vec<f32> {
    let floor = top.iter().map(|t| t.logprob).fold(f32::INFINITY, f32::min);
    choices
        .iter()
        .map(|c| {
            let best = |same: &dyn Fn(&str) -> bool| {
                top.iter()
                    .filter(|t| same(t.token.trim()))
                    .map(|t| t.logprob)
                    .fold(None, |m: Option<f32>, l| Some(m.map_or(l, |m| m.max(l))))
            };
            best(&|t| t == c.as_str())
                .or_else(|| best(&|t| t.eq_ignore_ascii_case(c)))
                .unwrap_or(floor)
        })
        .collect()
}

/// Scores read from a generated reply when there are no log-probabilities: 0 for the choice the
/// reply starts with, -1 for the others (so a Yes/No margin is +1, -1, or 0 for neither).
pub fn generated_choice_scores(text: &str, choices: &[String]) -> Vec<f32> {
    let reply = text.trim().to_lowercase();
    choices
        .iter()
        .map(|c| {
            if reply.starts_with(&c.to_lowercase()) {
                0.0
            } else {
                -1.0
            }
        })
        .collect()
}

/// The span of `source` that `reply` copies (ASCII case, surrounding spaces, quotes and a final
/// full stop ignored), or `reply` as it came when it copies none.
pub fn snap_to_span(reply: &str, source: &str) -> String {
    let trimmed = reply
        .trim()
        .trim_matches(|c: char| c == '"' || c == '\'' || c == '`')
        .trim_end_matches('.')
        .trim();
    if trimmed.is_empty() {
        return reply.trim().to_string();
    }
    let hay = source.to_ascii_lowercase();
    match hay.find(&trimmed.to_ascii_lowercase()) {
        Some(i) => source[i..i + trimmed.len()].to_string(),
        None => reply.trim().to_string(),
    }
}

impl Generator for ServedGenerator {
    fn features(&self) -> GeneratorFeatures {
        GeneratorFeatures {
            verification: self.verification,
            short_answer: ShortAnswerSource::PlainRequest,
            local_speed: false,
        }
    }

    fn generate(
        &mut self,
        prompt: &Prompt,
        opts: &GenOptions,
        on_token: &mut dyn FnMut(&str),
    ) -> Result<Generation, GenerateError> {
        let _span = tracing::info_span!("generate_served", model = %self.model).entered();
        if prompt.messages.is_empty() {
            return Err(GenerateError::EmptyPrompt);
        }
        let reply = self.complete(prompt, opts)?;
        let first_logprobs = if opts.score_first.is_empty() {
            Vec::new()
        } else if reply.top.is_empty() {
            generated_choice_scores(&reply.text, &opts.score_first)
        } else {
            choice_logprobs(&reply.top, &opts.score_first)
        };
        let text = match &opts.copy_from {
            Some(source) => snap_to_span(&reply.text, source),
            None => reply.text,
        };
        on_token(&text);
        let decode_ms = reply.predicted_ms.unwrap_or(0.0).clamp(0.0, reply.wall_ms);
        let mut top_logprobs = reply.top;
        top_logprobs.truncate(opts.top_logprobs);
        Ok(Generation {
            text,
            prompt_tokens: reply.prompt_tokens,
            reused_tokens: 0,
            generated_tokens: reply.completion_tokens,
            // The server's compute and the network: the wall time is what an answer waits.
            prefill_ms: reply.wall_ms - decode_ms,
            decode_ms,
            stop_reason: match reply.finish.as_deref() {
                Some("length") => StopReason::MaxTokens,
                _ => StopReason::StopToken,
            },
            first_logprobs,
            top_logprobs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alt(token: &str, logprob: f32) -> TokenLogprob {
        TokenLogprob {
            token: token.into(),
            logprob,
        }
    }

    #[test]
    fn yes_and_no_are_read_from_the_first_tokens_alternatives() {
        let choices = vec!["Yes".to_string(), "No".to_string()];
        let top = [
            alt("Yes", -0.1),
            alt(" Yes", -3.0),
            alt("no", -2.5),
            alt("The", -4.0),
        ];
        // Exact match (spaces ignored) first; case ignored when no exact one is listed.
        assert_eq!(choice_logprobs(&top, &choices), vec![-0.1, -2.5]);
        // A choice that is not listed gets the least likely listed logprob.
        let top = [alt("Yes", -0.05), alt("Maybe", -6.0)];
        assert_eq!(choice_logprobs(&top, &choices), vec![-0.05, -6.0]);
        assert_eq!(
            generated_choice_scores(" yes, it is", &choices),
            vec![0.0, -1.0]
        );
        assert_eq!(generated_choice_scores("No.", &choices), vec![-1.0, 0.0]);
        assert_eq!(
            generated_choice_scores("Perhaps", &choices),
            vec![-1.0, -1.0]
        );
    }

    #[test]
    fn a_plain_reply_is_kept_as_the_span_it_copies() {
        let s = "General Paul Nakasone met the minister in Seoul.";
        assert_eq!(snap_to_span("paul nakasone.", s), "Paul Nakasone");
        assert_eq!(snap_to_span(" \"in Seoul\" ", s), "in Seoul");
        assert_eq!(
            snap_to_span("Nakasone of Cyber Command", s),
            "Nakasone of Cyber Command"
        );
    }

    #[test]
    fn replies_parse_from_the_openai_shape() {
        let v = json!({
            "choices": [{"message": {"role": "assistant", "content": "Yes"}, "finish_reason": "length",
                "logprobs": {"content": [{"token": "Yes", "logprob": -0.2,
                    "top_logprobs": [{"token": "Yes", "logprob": -0.2}, {"token": "No", "logprob": -1.8}]}]}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 1},
            "timings": {"predicted_ms": 5.0}
        });
        let r = Reply::parse(&v, 40.0).unwrap();
        assert_eq!(
            (r.text.as_str(), r.prompt_tokens, r.completion_tokens),
            ("Yes", 12, 1)
        );
        assert_eq!(r.finish.as_deref(), Some("length"));
        assert_eq!(r.top, vec![alt("Yes", -0.2), alt("No", -1.8)]);
        assert_eq!(r.predicted_ms, Some(5.0));
        assert!(Reply::parse(&json!({"choices": []}), 1.0).is_err());
    }
}

//! The HTTP side of models served by an OpenAI-compatible server (llama.cpp's `llama-server`,
//! text-embeddings-inference, vLLM, another `docqa serve`): one blocking client with a time
//! limit per request, retries with exponential backoff on 429 and 5xx (honouring
//! `Retry-After`) and on a connection that breaks mid-reply, and typed errors for what a user
//! can act on (nothing listening, no such model, a prompt past the context). Used by
//! [`crate::generate::ServedGenerator`] and [`crate::embed::ServedEmbedder`]; the only code
//! besides the model store that touches the network, and only the URL it is given.

use std::time::{Duration, Instant};

use serde_json::Value;

/// How requests to a server go.
#[derive(Debug, Clone)]
pub struct ServedOptions {
    /// Sent as `Authorization: Bearer KEY` (the command line takes it from `DOCQA_API_KEY`).
    pub api_key: Option<String>,
    /// The longest a request may take, retries and their waits included.
    pub timeout: Duration,
    /// Attempts after the first for a 429, a 5xx or a connection that broke mid-reply.
    pub retries: usize,
    /// The wait before the first retry; doubled for each further one (a `Retry-After` header
    /// decides instead when the server sends one).
    pub backoff: Duration,
}

impl Default for ServedOptions {
    fn default() -> Self {
        ServedOptions {
            api_key: None,
            timeout: Duration::from_secs(300),
            retries: 3,
            backoff: Duration::from_millis(500),
        }
    }
}

/// The longest `Retry-After` docqa waits for; a server asking for more is waited for this long.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// What went wrong with a served model. Every message names the server's URL.
#[derive(Debug, thiserror::Error)]
pub enum ServedError {
    /// Nothing answered at the address (connection refused, no such host).
    #[error("cannot reach the model server at {url}: {reason} (is it running?)")]
    Unreachable { url: String, reason: String },
    /// The server does not serve the model asked for (a 404 naming the model, or a model
    /// missing from its `/models` list).
    #[error("the model server at {url} has no model `{model}`{}", known_models(.known))]
    UnknownModel {
        url: String,
        model: String,
        known: Vec<String>,
    },
    /// The server refused the prompt as longer than the model's context.
    #[error("the prompt does not fit the context of `{model}` at {url}: {message}")]
    ContextOverflow {
        url: String,
        model: String,
        message: String,
    },
    /// The server answered with an error status (after retries for 429 and 5xx).
    #[error("the model server at {url} answered HTTP {status} ({attempts} attempt{}): {message}", plural(.attempts))]
    Status {
        url: String,
        status: u16,
        attempts: usize,
        message: String,
    },
    /// The connection broke before a whole reply arrived, on every attempt.
    #[error(
        "the model server at {url} closed the connection before its reply was complete \
         ({attempts} attempt{}): {reason}", plural(.attempts)
    )]
    Disconnected {
        url: String,
        attempts: usize,
        reason: String,
    },
    /// No whole reply within the time limit.
    #[error("the model server at {url} did not answer within {secs:.0} s")]
    Timeout { url: String, secs: f64 },
    /// A reply that is not the OpenAI shape docqa reads.
    #[error("the model server at {url} sent a reply docqa cannot read: {why}")]
    BadReply { url: String, why: String },
}

fn plural(n: &usize) -> &'static str {
    if *n == 1 {
        ""
    } else {
        "s"
    }
}

fn known_models(known: &[String]) -> String {
    if known.is_empty() {
        String::new()
    } else {
        format!(" (it serves: {})", known.join(", "))
    }
}

/// A blocking client of one server's API, at its base URL (`http://host:port/v1`).
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
    opts: ServedOptions,
}

impl Client {
    pub fn new(base_url: &str, opts: ServedOptions) -> Client {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10).min(opts.timeout))
            .build();
        Client {
            base: base_url.trim_end_matches('/').to_string(),
            agent,
            opts,
        }
    }

    /// The base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET base/path` as JSON.
    pub fn get(&self, path: &str) -> Result<Value, ServedError> {
        self.request(path, None, None)
    }

    /// `POST base/path` with a JSON body for `model`, the reply as JSON.
    pub fn post(&self, path: &str, body: &Value, model: &str) -> Result<Value, ServedError> {
        self.request(path, Some(body), Some(model))
    }

    fn request(
        &self,
        path: &str,
        body: Option<&Value>,
        model: Option<&str>,
    ) -> Result<Value, ServedError> {
        let url = format!("{}{path}", self.base);
        let started = Instant::now();
        let timeout = || ServedError::Timeout {
            url: url.clone(),
            secs: self.opts.timeout.as_secs_f64(),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let remaining = self
                .opts
                .timeout
                .checked_sub(started.elapsed())
                .filter(|d| !d.is_zero())
                .ok_or_else(timeout)?;
            let mut req = match body {
                Some(_) => self.agent.post(&url),
                None => self.agent.get(&url),
            }
            .timeout(remaining);
            if let Some(key) = self.opts.api_key.as_deref().filter(|k| !k.is_empty()) {
                req = req.set("Authorization", &format!("Bearer {key}"));
            }
            let result = match body {
                Some(b) => req.send_json(b),
                None => req.call(),
            };
            let (failure, wait) = match result {
                Ok(resp) => match resp.into_string() {
                    Ok(text) => {
                        return serde_json::from_str(&text).map_err(|e| ServedError::BadReply {
                            url: url.clone(),
                            why: format!("not JSON ({e}): {}", excerpt(&text)),
                        })
                    }
                    Err(e) if is_timeout(&e) => return Err(timeout()),
                    Err(e) => (
                        ServedError::Disconnected {
                            url: url.clone(),
                            attempts: attempt,
                            reason: e.to_string(),
                        },
                        None,
                    ),
                },
                Err(ureq::Error::Status(status, resp)) => {
                    let retry_after = resp
                        .header("Retry-After")
                        .and_then(|v| v.trim().parse::<f64>().ok())
                        .filter(|s| s.is_finite() && *s >= 0.0)
                        .map(|s| Duration::from_secs_f64(s).min(MAX_RETRY_AFTER));
                    let text = resp.into_string().unwrap_or_default();
                    let err = status_error(&url, status, &text, model, attempt);
                    if status == 429 || (500..600).contains(&status) {
                        (err, retry_after)
                    } else {
                        return Err(err);
                    }
                }
                Err(ureq::Error::Transport(t)) => match t.kind() {
                    ureq::ErrorKind::ConnectionFailed
                    | ureq::ErrorKind::Dns
                    | ureq::ErrorKind::InvalidUrl
                    | ureq::ErrorKind::UnknownScheme => {
                        return Err(ServedError::Unreachable {
                            url: url.clone(),
                            reason: t.to_string(),
                        })
                    }
                    _ if transport_timed_out(&t) => return Err(timeout()),
                    _ => (
                        ServedError::Disconnected {
                            url: url.clone(),
                            attempts: attempt,
                            reason: t.to_string(),
                        },
                        None,
                    ),
                },
            };
            if attempt > self.opts.retries {
                return Err(failure);
            }
            let wait = wait
                .unwrap_or_else(|| self.opts.backoff * 2u32.saturating_pow((attempt - 1) as u32));
            let left = self.opts.timeout.saturating_sub(started.elapsed());
            if wait >= left {
                // Waiting would use up the time limit: the failure so far is the answer.
                return Err(failure);
            }
            tracing::warn!("{failure}; retrying in {:.1} s", wait.as_secs_f64());
            std::thread::sleep(wait);
        }
    }
}

/// The error an HTTP status with body `text` means for a request about `model`.
fn status_error(
    url: &str,
    status: u16,
    text: &str,
    model: Option<&str>,
    attempts: usize,
) -> ServedError {
    let parsed: Option<Value> = serde_json::from_str(text).ok();
    let field = |k: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get("error"))
            .and_then(|e| e.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let message = field("message")
        .or_else(|| {
            parsed
                .as_ref()
                .and_then(|v| v.get("error"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| excerpt(text));
    let code = field("code").unwrap_or_default();
    let kind = field("type").unwrap_or_default();
    let lower = message.to_lowercase();
    if let Some(model) = model {
        let about_model = code.contains("model") || lower.contains("model");
        if status == 404 && about_model {
            return ServedError::UnknownModel {
                url: url.to_string(),
                model: model.to_string(),
                known: Vec::new(),
            };
        }
        let about_context =
            code.contains("context") || kind.contains("context") || lower.contains("context");
        if (status == 400 || status == 413) && about_context {
            return ServedError::ContextOverflow {
                url: url.to_string(),
                model: model.to_string(),
                message,
            };
        }
    }
    let message = if status == 404 {
        format!("{message} (is the URL the API's base, ending in /v1?)")
    } else {
        message
    };
    ServedError::Status {
        url: url.to_string(),
        status,
        attempts,
        message,
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    )
}

fn transport_timed_out(t: &ureq::Transport) -> bool {
    std::error::Error::source(t)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .is_some_and(is_timeout)
}

/// The start of a reply, for an error message.
fn excerpt(text: &str) -> String {
    let t = text.trim();
    match t.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &t[..i]),
        None => t.to_string(),
    }
}

/// The model ids a server's `GET /models` lists (OpenAI's `{"data": [{"id": ...}]}`).
pub fn model_ids(list: &Value) -> Vec<String> {
    list.get("data")
        .and_then(Value::as_array)
        .map(|models| {
            models
                .iter()
                .filter_map(|m| m.get("id").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `s` names a served model's API rather than a registry name or a file.
pub fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_statuses_become_typed_errors() {
        let e = status_error(
            "u",
            404,
            r#"{"error": {"message": "The model `x` does not exist", "code": "model_not_found"}}"#,
            Some("x"),
            1,
        );
        assert!(
            matches!(e, ServedError::UnknownModel { ref model, .. } if model == "x"),
            "{e}"
        );
        let e = status_error(
            "u",
            400,
            r#"{"error": {"message": "the request exceeds the available context size", "type": "exceed_context_size_error"}}"#,
            Some("x"),
            1,
        );
        assert!(matches!(e, ServedError::ContextOverflow { .. }), "{e}");
        // A 404 that is not about a model is a wrong path, and says so.
        let e = status_error("u", 404, "Not Found", Some("x"), 1);
        assert!(e.to_string().contains("ending in /v1"), "{e}");
        let e = status_error("u", 503, "busy", Some("x"), 4);
        assert!(
            matches!(
                e,
                ServedError::Status {
                    status: 503,
                    attempts: 4,
                    ..
                }
            ),
            "{e}"
        );
    }
}

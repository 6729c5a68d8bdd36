//! `docqa serve`: an HTTP server over one warm session, with docqa's own routes and an
//! OpenAI-compatible subset, so chat front ends and scripts can use the corpus.
//!
//! | route | body | reply |
//! |---|---|---|
//! | `GET /health` | | `{"status": "ok", ...}` |
//! | `GET /v1/models` | | the generator and embedder, OpenAI's list shape |
//! | `POST /v1/ask` | `question`, optional `k`, `mode` | the `docqa ask --json` object |
//! | `POST /v1/search` | `question`, optional `k`, `mode` | the `docqa search --json` object |
//! | `POST /v1/chat/completions` | OpenAI's; `model` absent or `"docqa"`: the last user message is the question | the checked answer and its numbered sources as the message, `citations` beside it; `"stream": true` sends server-sent events |
//! | `POST /v1/chat/completions` | OpenAI's with `model` the generator's id (`GET /v1/models` lists it first): raw generation, no retrieval; `max_tokens`, `temperature`, `top_p`, `seed`, `logprobs` with `top_logprobs` (the first token's alternatives, `choices[0].logprobs.content[0].top_logprobs`) | OpenAI's completion, with llama.cpp's `timings`; `"stream": true` sends each piece as it is written; any other `model` is a 404 in OpenAI's error shape |
//! | `POST /v1/embeddings` | OpenAI's (`input`: a string or strings) | MiniLM vectors |
//!
//! Errors are `{"error": {"kind", "message"}}` with the kinds the command line's `--json` uses
//! (the raw-generation errors also carry OpenAI's `type` and `code`).
//! Generation requests (ask, chat) wait in a bounded queue; past it the reply is 503 with
//! `Retry-After`. SIGTERM or Ctrl-C stops accepting connections, finishes the requests in flight
//! and returns.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::stream::Stream;
use serde::Deserialize;
use serde_json::{json, Value};

use super::Shared;
use crate::generate::{GenOptions, Generation, Message, Prompt, Role, StopReason};
use crate::index::RetrievalMode;
use crate::session::errors::{json_error, kind_of, ErrorKind};
use crate::session::{AskReport, Session, SessionError, Settings};

/// How the server listens.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub addr: SocketAddr,
    /// Required of every request as `Authorization: Bearer TOKEN` when set; binding anything but
    /// loopback needs it.
    pub token: Option<String>,
    /// Generation requests that may wait while one runs; more get 503.
    pub queue: usize,
}

/// Generation requests that may wait by default.
pub const DEFAULT_QUEUE: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "refusing to serve on {0} without a token: any other address than loopback lets other \
         machines ask; pass --token or set DOCQA_TOKEN (clients then send \
         `Authorization: Bearer TOKEN`)"
    )]
    NeedsToken(SocketAddr),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("the server failed: {0}")]
    Io(#[from] std::io::Error),
}

impl ServeOptions {
    /// Refuses a non-loopback address without a token, before anything loads.
    pub fn check(&self) -> Result<(), ServeError> {
        if !self.addr.ip().is_loopback() && self.token.as_deref().is_none_or(str::is_empty) {
            return Err(ServeError::NeedsToken(self.addr));
        }
        Ok(())
    }
}

/// Opens the session (loading both models), binds `opts.addr`, prints the address it listens on
/// to stderr (`listening on http://ADDR`) and serves until SIGTERM or Ctrl-C.
pub fn run(settings: Settings, opts: ServeOptions) -> Result<(), ServeError> {
    opts.check()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(serve(settings, opts))
}

struct AppState {
    session: Shared,
    token: Option<String>,
    /// Generation requests admitted (running or waiting).
    admitted: AtomicUsize,
    /// Admitted at most: the one running plus the queue.
    admit_limit: usize,
    generator: String,
    embedder: String,
    next_id: AtomicU64,
    started: Instant,
}

async fn serve(settings: Settings, opts: ServeOptions) -> Result<(), ServeError> {
    let started = Instant::now();
    let session = tokio::task::spawn_blocking(move || Session::open_warm(settings))
        .await
        .expect("loading does not panic")?;
    tracing::info!(
        "models and index loaded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let generator = session.generator_ref().map_or_else(
        || session.settings().generator.model.label(),
        |g| g.name.clone(),
    );
    let embedder = session.settings().corpus.embedder.clone();
    let state = Arc::new(AppState {
        session: Shared::new(session),
        token: opts.token.filter(|t| !t.is_empty()),
        admitted: AtomicUsize::new(0),
        admit_limit: opts.queue + 1,
        generator,
        embedder,
        next_id: AtomicU64::new(1),
        started,
    });
    let app = Router::new()
        .route("/health", get(health))
        .route("/v1/models", get(models))
        .route("/v1/ask", post(ask))
        .route("/v1/search", post(search))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/embeddings", post(embeddings))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(opts.addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: opts.addr,
            source,
        })?;
    let local = listener.local_addr()?;
    // The line a supervisor or test waits for (the port when bound to :0).
    eprintln!("listening on http://{local}");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("stopped: requests in flight finished");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing the requests in flight");
}

/// An error reply: the JSON error object with the status its kind calls for.
struct ApiError {
    status: StatusCode,
    kind: ErrorKind,
    message: String,
    /// OpenAI's `type` and `code`, for errors of its own routes that its clients read.
    openai: Option<(&'static str, &'static str)>,
}

impl ApiError {
    fn new(status: StatusCode, kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            message: message.into(),
            openai: None,
        }
    }

    fn openai(mut self, kind: &'static str, code: &'static str) -> ApiError {
        self.openai = Some((kind, code));
        self
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorKind::BadRequest, message)
    }
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> ApiError {
        let chain = std::iter::successors(Some(&e as &(dyn std::error::Error + 'static)), |e| {
            e.source()
        });
        let kind = chain.clone().find_map(kind_of).unwrap_or(ErrorKind::Other);
        let message = chain
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(": ");
        let status = match kind {
            ErrorKind::Usage | ErrorKind::BadRequest | ErrorKind::ContextOverflow => {
                StatusCode::BAD_REQUEST
            }
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Busy => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError {
            status,
            kind,
            message,
            openai: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json_error(self.kind, &self.message);
        if let Some((kind, code)) = self.openai {
            body["error"]["type"] = json!(kind);
            body["error"]["code"] = json!(code);
        }
        let mut resp = (self.status, Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        resp
    }
}

/// A body parsed as `T`: anything else (not JSON, a missing or mistyped field) is a 400 that
/// says what was wrong, rather than axum's plain-text rejection.
fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

async fn auth(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Some(token) = &state.token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(token.as_str()) {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorKind::Unauthorized,
                "missing or wrong bearer token (`Authorization: Bearer TOKEN`)",
            ));
        }
    }
    Ok(next.run(req).await)
}

async fn not_found(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorKind::NotFound,
        format!(
            "no route {} {} (see GET /health, GET /v1/models, POST /v1/ask, /v1/search, \
             /v1/chat/completions, /v1/embeddings)",
            req.method(),
            req.uri().path()
        ),
    )
}

async fn health(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "generator": state.generator,
        "embedder": state.embedder,
        "uptime_s": state.started.elapsed().as_secs_f64(),
        "generation_requests": state.admitted.load(Ordering::SeqCst),
    }))
}

async fn models(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let status = state.session.run(|s| Ok(s.status())).await?;
    let model = |id: &str, role: &str| json!({"id": id, "object": "model", "created": 0, "owned_by": "docqa", "docqa_role": role});
    // The generator first: a client that takes the first model gets raw generation.
    Ok(Json(json!({
        "object": "list",
        "data": [model(&state.generator, "generator"), model(&state.embedder, "embedder")],
        "docqa": status,
    })))
}

/// A place in the generation queue, given back when dropped.
struct Admission(Arc<AppState>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::SeqCst);
    }
}

fn admit(state: &Arc<AppState>) -> Result<Admission, ApiError> {
    let before = state.admitted.fetch_add(1, Ordering::SeqCst);
    let admission = Admission(state.clone());
    if before >= state.admit_limit {
        drop(admission);
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Busy,
            format!(
                "{} generation requests are running or waiting (the queue holds {}): retry later",
                before,
                state.admit_limit - 1
            ),
        ));
    }
    Ok(admission)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AskBody {
    question: String,
    #[serde(default)]
    k: Option<usize>,
    #[serde(default)]
    mode: Option<RetrievalMode>,
}

async fn answer(
    state: &Arc<AppState>,
    question: String,
    k: Option<usize>,
    mode: Option<RetrievalMode>,
) -> Result<AskReport, ApiError> {
    if question.trim().is_empty() {
        return Err(ApiError::bad_request("the question is empty"));
    }
    let admission = admit(state)?;
    let report = state.session.ask(question, k, mode).await;
    drop(admission);
    Ok(report?)
}

async fn ask(State(state): State<Arc<AppState>>, body: Bytes) -> Result<Json<AskReport>, ApiError> {
    let body: AskBody = parse(&body)?;
    Ok(Json(
        answer(&state, body.question, body.k, body.mode).await?,
    ))
}

async fn search(State(state): State<Arc<AppState>>, body: Bytes) -> Result<Response, ApiError> {
    let body: AskBody = parse(&body)?;
    if body.question.trim().is_empty() {
        return Err(ApiError::bad_request("the question is empty"));
    }
    let report = state
        .session
        .search(body.question, body.k, body.mode)
        .await?;
    Ok(Json(report).into_response())
}

/// The model id of checked answers over the corpus (also what a request without `model` gets).
const RAG_MODEL: &str = "docqa";

/// The most tokens a raw generation may ask for.
const MAX_RAW_TOKENS: usize = 4096;

#[derive(Deserialize)]
struct ChatBody {
    messages: Vec<ChatMessage>,
    #[serde(default)]
    stream: bool,
    /// Absent or `docqa`: a checked answer; the generator's id: raw generation.
    #[serde(default)]
    model: Option<String>,
    /// Raw generation: tokens to generate at most (`max_completion_tokens` is OpenAI's newer
    /// name).
    #[serde(default, alias = "max_completion_tokens")]
    max_tokens: Option<usize>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    seed: Option<u64>,
    /// Raw generation: report the first token's likeliest alternatives.
    #[serde(default)]
    logprobs: bool,
    #[serde(default)]
    top_logprobs: Option<usize>,
    /// docqa's own: passages to retrieve.
    #[serde(default)]
    k: Option<usize>,
    #[serde(default)]
    mode: Option<RetrievalMode>,
}

#[derive(Deserialize)]
struct ChatMessage {
    role: String,
    content: MessageContent,
}

/// OpenAI's message content: a string, or parts of which the text ones count.
#[derive(Deserialize)]
#[serde(untagged)]
enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Deserialize)]
struct ContentPart {
    #[serde(default)]
    text: Option<String>,
}

impl MessageContent {
    fn text(&self) -> String {
        match self {
            MessageContent::Text(t) => t.clone(),
            MessageContent::Parts(parts) => parts
                .iter()
                .filter_map(|p| p.text.as_deref())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn chat(State(state): State<Arc<AppState>>, body: Bytes) -> Result<Response, ApiError> {
    let body: ChatBody = parse(&body)?;
    let raw = match body.model.as_deref() {
        None | Some(RAG_MODEL) => false,
        Some(m) if m == state.generator => true,
        Some(m) => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorKind::UnknownModel,
                format!(
                    "The model `{m}` does not exist: this server has `{}` (raw generation) and \
                     `{RAG_MODEL}` (checked answers over its corpus)",
                    state.generator
                ),
            )
            .openai("invalid_request_error", "model_not_found"))
        }
    };
    if raw {
        return raw_chat(state, body).await;
    }
    let question = body
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| m.content.text())
        .ok_or_else(|| ApiError::bad_request("no message with role `user`: nothing to answer"))?;
    let id = format!(
        "chatcmpl-docqa-{}",
        state.next_id.fetch_add(1, Ordering::SeqCst)
    );
    let created = unix_now();
    if body.stream {
        return Ok(chat_stream(state, question, body.k, body.mode, id, created)
            .await?
            .into_response());
    }
    let report = answer(&state, question, body.k, body.mode).await?;
    Ok(Json(json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": report.models.generator.name,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": report.to_text()},
            "finish_reason": "stop",
        }],
        "usage": usage(&report),
        "citations": report.citations,
        "docqa": report,
    }))
    .into_response())
}

/// A chat completion by the generator itself: the messages as given, no retrieval, no checks.
async fn raw_chat(state: Arc<AppState>, body: ChatBody) -> Result<Response, ApiError> {
    let invalid = |m: String| {
        ApiError::bad_request(m).openai("invalid_request_error", "invalid_request_error")
    };
    if body.stream && body.logprobs {
        return Err(invalid(
            "`logprobs` are not streamed: send `\"stream\": false` with them".into(),
        ));
    }
    let mut messages = Vec::with_capacity(body.messages.len());
    for m in &body.messages {
        let role = match m.role.as_str() {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => return Err(invalid(format!("unsupported message role `{other}`"))),
        };
        messages.push(Message {
            role,
            content: m.content.text(),
        });
    }
    if messages.is_empty() {
        return Err(invalid("`messages` is empty".into()));
    }
    let max_tokens = body.max_tokens.unwrap_or(256);
    if max_tokens == 0 || max_tokens > MAX_RAW_TOKENS {
        return Err(invalid(format!(
            "`max_tokens` must be 1 to {MAX_RAW_TOKENS}, got {max_tokens}"
        )));
    }
    let top_logprobs = if body.logprobs {
        body.top_logprobs.unwrap_or(1).clamp(1, 20)
    } else {
        0
    };
    let defaults = GenOptions::default();
    let opts = GenOptions {
        max_tokens,
        temperature: body.temperature,
        top_p: body.top_p,
        seed: body.seed.unwrap_or(defaults.seed),
        top_logprobs,
        ..defaults
    };
    let admission = admit(&state)?;
    let prompt = Prompt { messages };
    if body.stream {
        return Ok(raw_chat_stream(state, prompt, opts, admission).into_response());
    }
    let result = state.session.run(move |s| s.generate(&prompt, &opts)).await;
    drop(admission);
    let g = result.map_err(|e| {
        let e = ApiError::from(e);
        match e.kind {
            ErrorKind::ContextOverflow => {
                e.openai("invalid_request_error", "context_length_exceeded")
            }
            _ => e.openai("server_error", "server_error"),
        }
    })?;
    let logprobs = match g.top_logprobs.first() {
        Some(first) if body.logprobs => json!({"content": [{
            "token": first.token,
            "logprob": first.logprob,
            "bytes": first.token.as_bytes(),
            "top_logprobs": g.top_logprobs.iter().map(|t| json!({
                "token": t.token, "logprob": t.logprob, "bytes": t.token.as_bytes(),
            })).collect::<Vec<_>>(),
        }]}),
        _ => Value::Null,
    };
    let id = format!(
        "chatcmpl-docqa-{}",
        state.next_id.fetch_add(1, Ordering::SeqCst)
    );
    Ok(Json(json!({
        "id": id,
        "object": "chat.completion",
        "created": unix_now(),
        "model": state.generator,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": g.text},
            "logprobs": logprobs,
            "finish_reason": finish_reason(g.stop_reason),
        }],
        "usage": raw_usage(&g),
        // llama.cpp's field: the server's own split of its time.
        "timings": raw_timings(&g),
    }))
    .into_response())
}

/// OpenAI's `finish_reason` for why a generation stopped.
fn finish_reason(stop: StopReason) -> &'static str {
    match stop {
        StopReason::StopToken => "stop",
        StopReason::MaxTokens | StopReason::ContextFull => "length",
    }
}

fn raw_usage(g: &Generation) -> Value {
    json!({
        "prompt_tokens": g.prompt_tokens,
        "completion_tokens": g.generated_tokens,
        "total_tokens": g.prompt_tokens + g.generated_tokens,
    })
}

fn raw_timings(g: &Generation) -> Value {
    json!({
        "prompt_n": g.prompt_tokens,
        "prompt_ms": g.prefill_ms,
        "predicted_n": g.generated_tokens,
        "predicted_ms": g.decode_ms,
    })
}

/// Raw generation as server-sent events in OpenAI's chunk format: the role at once, each piece
/// of the reply as the model writes it, then a last chunk with `finish_reason`, `usage` and
/// `timings`, then `data: [DONE]`. Unlike a checked answer, raw text is the reply itself, so
/// nothing shown is taken back. A client that goes away stops nothing: the generation runs to
/// its end, as the session serves one request at a time.
fn raw_chat_stream(
    state: Arc<AppState>,
    prompt: Prompt,
    opts: GenOptions,
    admission: Admission,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let id = format!(
        "chatcmpl-docqa-{}",
        state.next_id.fetch_add(1, Ordering::SeqCst)
    );
    let chunks = Chunks {
        id,
        created: unix_now(),
        model: state.generator.clone(),
    };
    let _ = tx.send(chunks.event(json!({"role": "assistant", "content": ""}), None, None));
    tokio::spawn(async move {
        let pieces = tx.clone();
        let piece = chunks.clone();
        let result = state
            .session
            .run(move |s| {
                s.generate_streaming(&prompt, &opts, &mut |text| {
                    let _ = pieces.send(piece.event(json!({"content": text}), None, None));
                })
            })
            .await;
        drop(admission);
        let _ = tx.send(match result {
            Ok(g) => chunks.event(
                json!({}),
                Some(finish_reason(g.stop_reason)),
                Some(json!({"usage": raw_usage(&g), "timings": raw_timings(&g)})),
            ),
            Err(e) => {
                let e = ApiError::from(e);
                Event::default().data(json_error(e.kind, &e.message).to_string())
            }
        });
        let _ = tx.send(Event::default().data("[DONE]"));
    });
    let stream =
        futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
        );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

fn usage(r: &AskReport) -> Value {
    json!({
        "prompt_tokens": r.timings.prompt_tokens,
        "completion_tokens": r.timings.generated_tokens,
        "total_tokens": r.timings.prompt_tokens + r.timings.generated_tokens,
    })
}

/// Makes the `chat.completion.chunk` events of one streamed reply.
#[derive(Clone)]
struct Chunks {
    id: String,
    created: u64,
    model: String,
}

impl Chunks {
    /// One chunk: `delta` and `finish` as its one choice's, and `extra`'s fields (an object)
    /// beside `choices`.
    fn event(&self, delta: Value, finish: Option<&str>, extra: Option<Value>) -> Event {
        let mut v = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        if let (Some(fields), Some(Value::Object(extra))) = (v.as_object_mut(), extra) {
            fields.extend(extra);
        }
        Event::default().data(v.to_string())
    }
}

/// The chat reply as server-sent events in OpenAI's chunk format: the role at once, then, once
/// the answer is checked, its text, then a last chunk with `finish_reason` and the citations,
/// then `data: [DONE]`. The draft is not streamed token by token: what the model drafts is not
/// yet the answer (citations that fail their check are removed, a declined answer is replaced),
/// and a client must not show text that docqa then takes back.
async fn chat_stream(
    state: Arc<AppState>,
    question: String,
    k: Option<usize>,
    mode: Option<RetrievalMode>,
    id: String,
    created: u64,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    if question.trim().is_empty() {
        return Err(ApiError::bad_request("the question is empty"));
    }
    // Refused before the stream opens, so a full queue is still a 503.
    let admission = admit(&state)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(8);
    let chunks = Chunks {
        id,
        created,
        model: state.generator.clone(),
    };
    let _ = tx
        .send(chunks.event(json!({"role": "assistant", "content": ""}), None, None))
        .await;
    tokio::spawn(async move {
        let result = state.session.ask(question, k, mode).await;
        drop(admission);
        match result {
            Ok(report) => {
                let _ = tx
                    .send(chunks.event(json!({"content": report.to_text()}), None, None))
                    .await;
                let citations = serde_json::to_value(&report.citations).unwrap_or(Value::Null);
                let _ = tx
                    .send(chunks.event(
                        json!({}),
                        Some("stop"),
                        Some(json!({ "citations": citations })),
                    ))
                    .await;
            }
            Err(e) => {
                let e = ApiError::from(e);
                let _ = tx
                    .send(Event::default().data(json_error(e.kind, &e.message).to_string()))
                    .await;
            }
        }
        let _ = tx.send(Event::default().data("[DONE]")).await;
    });
    let stream =
        futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
        );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[derive(Deserialize)]
struct EmbeddingsBody {
    input: EmbeddingInput,
    #[serde(default)]
    #[allow(dead_code)]
    model: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum EmbeddingInput {
    One(String),
    Many(Vec<String>),
}

async fn embeddings(State(state): State<Arc<AppState>>, body: Bytes) -> Result<Response, ApiError> {
    let body: EmbeddingsBody = parse(&body)?;
    let texts = match body.input {
        EmbeddingInput::One(t) => vec![t],
        EmbeddingInput::Many(ts) => ts,
    };
    if texts.is_empty() {
        return Err(ApiError::bad_request("`input` holds no text"));
    }
    let vectors = state
        .session
        .run(move |s| {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            s.embed(&refs)
        })
        .await?;
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(i, v)| json!({"object": "embedding", "index": i, "embedding": v}))
        .collect();
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": state.embedder,
        "usage": {"prompt_tokens": 0, "total_tokens": 0},
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(addr: &str, token: Option<&str>) -> ServeOptions {
        ServeOptions {
            addr: addr.parse().unwrap(),
            token: token.map(str::to_string),
            queue: DEFAULT_QUEUE,
        }
    }

    #[test]
    fn only_loopback_is_served_without_a_token() {
        assert!(opts("127.0.0.1:8765", None).check().is_ok());
        assert!(opts("[::1]:8765", None).check().is_ok());
        for addr in ["0.0.0.0:8765", "192.168.1.4:80", "[::]:8765"] {
            let err = opts(addr, None).check().unwrap_err();
            assert!(matches!(err, ServeError::NeedsToken(_)), "{addr}: {err}");
            // An empty token is no token.
            assert!(opts(addr, Some("")).check().is_err(), "{addr}");
            assert!(opts(addr, Some("s3cret")).check().is_ok(), "{addr}");
        }
    }

    #[test]
    fn chat_content_is_a_string_or_text_parts() {
        let m: ChatMessage =
            serde_json::from_str(r#"{"role": "user", "content": "Who?"}"#).unwrap();
        assert_eq!(m.content.text(), "Who?");
        let m: ChatMessage = serde_json::from_str(
            r#"{"role": "user", "content": [{"type": "text", "text": "Who"}, {"type": "image_url"}, {"type": "text", "text": "met?"}]}"#,
        )
        .unwrap();
        assert_eq!(m.content.text(), "Who\nmet?");
    }
}

//! `docqa mcp`: a Model Context Protocol server over stdio (the official Rust SDK, `rmcp`), so
//! an agent or editor can ask the corpus. Tools:
//!
//! - `ask`: a checked answer with its numbered sources (text), the whole `ask --json` report,
//!   citations included, as structured content;
//! - `search`: the ranked chunks (the `search --json` report);
//! - `get`: a chunk's text by its ID, or a file's text, whole or a byte or line range;
//! - `status`: corpus, index and models.
//!
//! Tool failures come back as tool errors carrying `{"error": {"kind", "message"}}`, with the
//! command line's kinds. stdout carries the protocol only; diagnostics go to stderr.

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{schemars, tool, tool_handler, tool_router, ServerHandler, ServiceExt};
use serde::{Deserialize, Serialize};

use super::Shared;
use crate::corpus::ChunkId;
use crate::index::RetrievalMode;
use crate::session::errors::{json_error, kind_of, ErrorKind};
use crate::session::{Session, SessionError, Settings};

/// Opens the session (both models loaded) and serves MCP on stdin/stdout until the client
/// closes it.
pub fn run(settings: Settings) -> Result<(), McpError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let session = tokio::task::spawn_blocking(move || Session::open_warm(settings))
            .await
            .expect("loading does not panic")?;
        tracing::info!("docqa mcp: models and index loaded, serving on stdio");
        let server = DocqaMcp::new(Shared::new(session))
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| McpError::Protocol(e.to_string()))?;
        server
            .waiting()
            .await
            .map_err(|e| McpError::Protocol(e.to_string()))?;
        Ok(())
    })
}

#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("MCP: {0}")]
    Protocol(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct AskParams {
    /// The question, in plain words.
    pub question: String,
    /// Passages to retrieve (default 5).
    #[serde(default)]
    pub k: Option<usize>,
    /// Ranking: `hybrid` (default), `dense` or `bm25`.
    #[serde(default)]
    pub mode: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct GetParams {
    /// A chunk ID as `search` and `ask` give them, e.g. `notes#3`.
    #[serde(default)]
    pub id: Option<String>,
    /// A file, relative to the corpus folder as `search` gives it (instead of `id`).
    #[serde(default)]
    pub file: Option<String>,
    /// With `file`: `[start, end)` byte offsets into its text, as chunks give them.
    #[serde(default)]
    pub bytes: Option<[usize; 2]>,
    /// With `file`: `[first, last]` 1-based lines, inclusive.
    #[serde(default)]
    pub lines: Option<[usize; 2]>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct NoParams {}

/// The MCP server: tools over one warm session.
#[derive(Clone)]
pub struct DocqaMcp {
    session: Shared,
    tool_router: ToolRouter<Self>,
}

/// A tool's reply: `text` for people and models, `value` as structured content.
fn reply<T: Serialize>(text: String, value: &T) -> CallToolResult {
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = serde_json::to_value(value).ok();
    result
}

fn failure(kind: ErrorKind, message: String) -> CallToolResult {
    let mut result = CallToolResult::error(vec![ContentBlock::text(format!("error: {message}"))]);
    result.structured_content = Some(json_error(kind, &message));
    result
}

fn session_failure(e: SessionError) -> CallToolResult {
    let chain = std::iter::successors(Some(&e as &(dyn std::error::Error + 'static)), |e| {
        e.source()
    });
    let kind = chain.clone().find_map(kind_of).unwrap_or(ErrorKind::Other);
    let message = chain
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ");
    failure(kind, message)
}

fn parse_mode(mode: Option<&str>) -> Result<Option<RetrievalMode>, CallToolResult> {
    mode.map(|m| {
        serde_json::from_value(serde_json::Value::String(m.to_lowercase())).map_err(|_| {
            failure(
                ErrorKind::BadRequest,
                format!("unknown mode `{m}`: use hybrid, dense or bm25"),
            )
        })
    })
    .transpose()
}

#[tool_router]
impl DocqaMcp {
    pub fn new(session: Shared) -> Self {
        DocqaMcp {
            session,
            tool_router: Self::tool_router(),
        }
    }

    #[tool(
        description = "Answer a question from the documents with checked citations. Returns the \
                       answer and its numbered sources; when the documents do not hold the answer \
                       it says so instead of guessing. Structured content: the full report \
                       (answer, short_answer, abstained, citations with file, byte range and text)."
    )]
    async fn ask(&self, Parameters(p): Parameters<AskParams>) -> CallToolResult {
        if p.question.trim().is_empty() {
            return failure(ErrorKind::BadRequest, "the question is empty".into());
        }
        let mode = match parse_mode(p.mode.as_deref()) {
            Ok(m) => m,
            Err(e) => return e,
        };
        let result = self.session.ask(p.question, p.k, mode).await;
        match result {
            Ok(report) => reply(report.to_text(), &report),
            Err(e) => session_failure(e),
        }
    }

    #[tool(
        description = "Rank the documents' chunks for a question or keywords (no answer \
                       generated). Returns each chunk's ID, file, byte range, scores and text."
    )]
    async fn search(&self, Parameters(p): Parameters<AskParams>) -> CallToolResult {
        let mode = match parse_mode(p.mode.as_deref()) {
            Ok(m) => m,
            Err(e) => return e,
        };
        let result = self.session.search(p.question, p.k, mode).await;
        match result {
            Ok(report) => {
                let text = report
                    .hits
                    .iter()
                    .enumerate()
                    .map(|(i, h)| {
                        format!(
                            "{}. {} ({}, bytes {}-{}, score {:.3})\n{}",
                            i + 1,
                            h.id,
                            h.file,
                            h.start,
                            h.end,
                            h.score,
                            h.text
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n\n");
                reply(text, &report)
            }
            Err(e) => session_failure(e),
        }
    }

    #[tool(
        description = "Fetch text from the corpus: a chunk by its ID (`id`, as search and ask give \
                       them), or a file (`file`, relative to the corpus folder), whole or a range \
                       (`bytes`: [start, end) offsets as chunks give them; `lines`: [first, last], \
                       1-based, inclusive)."
    )]
    async fn get(&self, Parameters(p): Parameters<GetParams>) -> CallToolResult {
        let result = match (p.id, p.file) {
            (Some(id), None) => {
                let id: ChunkId = match id.parse() {
                    Ok(id) => id,
                    Err(e) => return failure(ErrorKind::BadRequest, format!("{e}")),
                };
                self.session.run(move |s| s.chunk(&id)).await
            }
            (None, Some(file)) => {
                let (range, lines) = match (p.bytes, p.lines) {
                    (Some(_), Some(_)) => {
                        return failure(
                            ErrorKind::BadRequest,
                            "give `bytes` or `lines`, not both".into(),
                        )
                    }
                    (Some([s, e]), None) => (Some((s, e)), false),
                    (None, Some([s, e])) => (Some((s, e)), true),
                    (None, None) => (None, false),
                };
                self.session
                    .run(move |s| s.file_text(&file, range, lines))
                    .await
            }
            _ => {
                return failure(
                    ErrorKind::BadRequest,
                    "give a chunk `id` or a `file` (with an optional `bytes` or `lines` range)"
                        .into(),
                )
            }
        };
        match result {
            Ok(excerpt) => reply(excerpt.text.clone(), &excerpt),
            Err(e) => session_failure(e),
        }
    }

    #[tool(
        description = "What docqa serves: the corpus folder, its index, files and chunks, and \
                          the embedder and generator loaded."
    )]
    async fn status(&self, Parameters(_): Parameters<NoParams>) -> CallToolResult {
        match self.session.run(|s| Ok(s.status())).await {
            Ok(status) => {
                let text = format!(
                    "corpus {} ({} files, {} chunks), index {}, embedder {}, generator {}",
                    status.corpus.display(),
                    status.files,
                    status.chunks,
                    status.index.display(),
                    status.embedder.name,
                    status
                        .generator
                        .as_ref()
                        .map_or("not loaded", |g| g.name.as_str())
                );
                reply(text, &status)
            }
            Err(e) => session_failure(e),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for DocqaMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("docqa", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "docqa answers questions about a folder of documents with checked citations. \
                 Use `ask` for an answer with sources, `search` to find passages, `get` to read \
                 a chunk or part of a file, `status` to see what is served.",
            )
    }
}

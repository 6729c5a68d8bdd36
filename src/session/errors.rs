//! The kinds of failure every front end names the same way: the command line's `--json` error
//! object (`{"error": {"kind": "corpus_not_found", "message": "..."}}`) and its exit code, and
//! the HTTP and MCP servers' error replies. Called by `cli::errors` and the servers.

use crate::corpus::CorpusError;
use crate::eval::qa::QaError;
use crate::eval::runner::EvalError;
use crate::eval::suite::SuiteError;
use crate::eval::thresholds::ThresholdError;
use crate::generate::GenerateError;
use crate::index::IndexError;
use crate::models::StoreError;
use crate::pipeline::AskError;
use crate::served::ServedError;
use serde::Serialize;

use super::SessionError;

/// What went wrong, as the JSON error object names it (`"kind"`, snake_case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The command line: an unknown flag, a bad value, flags that do not go together, an
    /// unknown model name.
    Usage,
    CorpusNotFound,
    CorpusNotAFolder,
    CorpusUnreadable,
    /// The folder holds nothing docqa can index (no supported file, or no text left).
    CorpusEmpty,
    /// The index was built with another embedder.
    IndexMismatch,
    /// The index file could not be read or written.
    IndexIo,
    /// The index path holds something docqa did not write (another file, a symlink, a FIFO, a
    /// device, a folder): refused and left untouched.
    IndexNotDocqa,
    /// A model is not cached and cannot be fetched (offline, or every source failed).
    ModelUnavailable,
    /// A cached model file does not match its registered sha256.
    ModelCorrupt,
    /// Any other model-store failure (a manifest, a derived file, the cache folder).
    Model,
    Embedding,
    Generation,
    /// A GGUF file whose architecture docqa does not run (the message names it and the
    /// supported ones).
    UnsupportedModel,
    /// A served model's server does not answer at its URL (connection refused, no such host).
    ServerUnreachable,
    /// The server does not serve the model asked for (404).
    UnknownModel,
    /// The prompt is longer than the model's context (a served model's: the server's 400).
    ContextOverflow,
    /// A served model's server failed: an error status after retries (429, 5xx), a connection
    /// that broke mid-reply, a timeout, or a reply docqa cannot read.
    ServerError,
    /// The Q&A file is missing, empty or has a bad row.
    QaFile,
    /// A Q&A row's evidence does not resolve against the corpus.
    Evidence,
    Thresholds,
    /// Reading or writing some other file (a report).
    Io,
    /// A chunk, file or range asked for by a client that the corpus does not hold.
    NotFound,
    /// A request to a server that is not valid JSON or lacks a field.
    BadRequest,
    /// A server's generation queue is full: retry later.
    Busy,
    /// A server request without the bearer token the server requires.
    Unauthorized,
    /// Anything not classified above.
    Other,
}

/// The kind of the first error in `err`'s chain that docqa knows.
pub fn classify(err: &(dyn std::error::Error + 'static)) -> ErrorKind {
    std::iter::successors(Some(err), |e| e.source())
        .find_map(kind_of)
        .unwrap_or(ErrorKind::Other)
}

pub fn kind_of(e: &(dyn std::error::Error + 'static)) -> Option<ErrorKind> {
    if let Some(e) = e.downcast_ref::<SessionError>() {
        return session_kind(e);
    }
    if let Some(e) = e.downcast_ref::<crate::server::http::ServeError>() {
        return match e {
            crate::server::http::ServeError::NeedsToken(_) => Some(ErrorKind::Usage),
            _ => None,
        };
    }
    if let Some(e) = e.downcast_ref::<SuiteError>() {
        return match e {
            SuiteError::Session(e) => session_kind(e),
            SuiteError::Eval(e) => kind_of(e.as_ref()),
        };
    }
    if let Some(e) = e.downcast_ref::<CorpusError>() {
        return Some(corpus_kind(e));
    }
    if let Some(e) = e.downcast_ref::<IndexError>() {
        return Some(index_kind(e));
    }
    if let Some(e) = e.downcast_ref::<StoreError>() {
        return Some(store_kind(e));
    }
    if let Some(e) = e.downcast_ref::<QaError>() {
        return Some(qa_kind(e));
    }
    if let Some(e) = e.downcast_ref::<EvalError>() {
        return Some(match e {
            EvalError::Qa(e) => qa_kind(e),
            EvalError::Ask { source, .. } => ask_kind(source),
            EvalError::Retrieval { source, .. } => index_kind(source),
            EvalError::EmptyIndex => ErrorKind::CorpusEmpty,
            EvalError::EmptyQa => ErrorKind::QaFile,
        });
    }
    if let Some(e) = e.downcast_ref::<AskError>() {
        return Some(ask_kind(e));
    }
    if let Some(e) = e.downcast_ref::<GenerateError>() {
        return Some(generate_kind(e));
    }
    if let Some(e) = e.downcast_ref::<ServedError>() {
        return Some(served_kind(e));
    }
    if let Some(e) = e.downcast_ref::<crate::embed::EmbedError>() {
        return Some(match e {
            crate::embed::EmbedError::Served(e) => served_kind(e),
            _ => ErrorKind::Embedding,
        });
    }
    if e.is::<ThresholdError>() {
        return Some(ErrorKind::Thresholds);
    }
    if e.is::<std::io::Error>() {
        return Some(ErrorKind::Io);
    }
    None
}

fn corpus_kind(e: &CorpusError) -> ErrorKind {
    match e {
        CorpusError::NotFound { .. } => ErrorKind::CorpusNotFound,
        CorpusError::NotADirectory { .. } => ErrorKind::CorpusNotAFolder,
        CorpusError::ReadDir { .. } => ErrorKind::CorpusUnreadable,
        CorpusError::Empty { .. } | CorpusError::NothingReadable { .. } => ErrorKind::CorpusEmpty,
        CorpusError::Config(_) => ErrorKind::Usage,
    }
}

fn index_kind(e: &IndexError) -> ErrorKind {
    match e {
        IndexError::Corpus(e) => corpus_kind(e),
        IndexError::NoChunks { .. } => ErrorKind::CorpusEmpty,
        IndexError::Embed(_) => ErrorKind::Embedding,
        IndexError::EmbedderMismatch { .. } => ErrorKind::IndexMismatch,
        IndexError::NotAnIndex { .. } => ErrorKind::IndexNotDocqa,
        _ => ErrorKind::IndexIo,
    }
}

fn store_kind(e: &StoreError) -> ErrorKind {
    match e {
        StoreError::UnknownModel { .. } | StoreError::WrongRole { .. } => ErrorKind::Usage,
        StoreError::OfflineMissing { .. } | StoreError::AllSourcesFailed { .. } => {
            ErrorKind::ModelUnavailable
        }
        StoreError::Corrupt { .. } => ErrorKind::ModelCorrupt,
        _ => ErrorKind::Model,
    }
}

fn qa_kind(e: &QaError) -> ErrorKind {
    match e {
        QaError::Read { .. } | QaError::Empty { .. } | QaError::Row { .. } => ErrorKind::QaFile,
        _ => ErrorKind::Evidence,
    }
}

fn ask_kind(e: &AskError) -> ErrorKind {
    match e {
        AskError::EmptyQuestion => ErrorKind::Usage,
        AskError::Index(e) => index_kind(e),
        AskError::Generate(e) => generate_kind(e),
        _ => ErrorKind::Generation,
    }
}

fn generate_kind(e: &GenerateError) -> ErrorKind {
    match e {
        GenerateError::UnsupportedArchitecture(_) => ErrorKind::UnsupportedModel,
        GenerateError::PromptTooLong { .. } => ErrorKind::ContextOverflow,
        GenerateError::Served(e) => served_kind(e),
        _ => ErrorKind::Generation,
    }
}

fn served_kind(e: &ServedError) -> ErrorKind {
    match e {
        ServedError::Unreachable { .. } => ErrorKind::ServerUnreachable,
        ServedError::UnknownModel { .. } => ErrorKind::UnknownModel,
        ServedError::ContextOverflow { .. } => ErrorKind::ContextOverflow,
        ServedError::Status { .. }
        | ServedError::Disconnected { .. }
        | ServedError::Timeout { .. }
        | ServedError::BadReply { .. } => ErrorKind::ServerError,
    }
}

/// The kind of a session error: its library error's, or `None` for context that only names what
/// was being done (the cause below it then decides).
fn session_kind(e: &SessionError) -> Option<ErrorKind> {
    Some(match e {
        SessionError::Corpus(e) => corpus_kind(e),
        SessionError::Model(e) => store_kind(e),
        SessionError::Index(e) => index_kind(e),
        SessionError::Indexing { .. } => return None,
        SessionError::ReadFile { .. } => ErrorKind::Io,
        SessionError::Embed(crate::embed::EmbedError::Served(e)) => served_kind(e),
        SessionError::Embed(_) => ErrorKind::Embedding,
        SessionError::Generate(e) => generate_kind(e),
        SessionError::ModelFile { source, .. } => generate_kind(source),
        SessionError::Ask(e) => ask_kind(e),
        SessionError::NoSuchChunk(_) | SessionError::NoSuchFile(_) => ErrorKind::NotFound,
        SessionError::BadRange { .. } => ErrorKind::BadRequest,
    })
}

/// The JSON error object every front end sends: `{"error": {"kind": ..., "message": ...}}`.
pub fn json_error(kind: ErrorKind, message: &str) -> serde_json::Value {
    serde_json::json!({ "error": { "kind": kind, "message": message } })
}

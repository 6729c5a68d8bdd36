//! How a failed command is reported: the exit code it gets, and with `--json` the one error
//! object it prints on stdout (`{"error": {"kind": "corpus_not_found", "message": "..."}}`),
//! beside the human-readable chain on stderr. Called by [`super::run`].

use std::ffi::OsString;
use std::process::ExitCode;

use docqa::corpus::CorpusError;
use docqa::eval::qa::QaError;
use docqa::eval::runner::EvalError;
use docqa::eval::thresholds::ThresholdError;
use docqa::generate::GenerateError;
use docqa::index::IndexError;
use docqa::models::StoreError;
use docqa::pipeline::AskError;
use serde::Serialize;

/// Exit code of an error that is not the user's command line.
pub const EXIT_ERROR: u8 = 1;
/// Exit code of a usage error: a bad flag, value or combination of them.
pub const EXIT_USAGE: u8 = 2;

/// What went wrong, as `--json` names it (`"kind"`, snake_case). Usage errors exit 2, the rest 1.
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
    /// The Q&A file is missing, empty or has a bad row.
    QaFile,
    /// A Q&A row's evidence does not resolve against the corpus.
    Evidence,
    Thresholds,
    /// Reading or writing some other file (a report).
    Io,
    /// Anything not classified above.
    Other,
}

impl ErrorKind {
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Usage => EXIT_USAGE,
            _ => EXIT_ERROR,
        }
    }
}

/// The kind of the first error in `err`'s chain that docqa knows.
pub fn classify(err: &anyhow::Error) -> ErrorKind {
    err.chain().find_map(kind_of).unwrap_or(ErrorKind::Other)
}

fn kind_of(e: &(dyn std::error::Error + 'static)) -> Option<ErrorKind> {
    if e.is::<clap::Error>() {
        return Some(ErrorKind::Usage);
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
    if e.is::<GenerateError>() {
        return Some(ErrorKind::Generation);
    }
    if e.is::<docqa::embed::EmbedError>() {
        return Some(ErrorKind::Embedding);
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
        _ => ErrorKind::Generation,
    }
}

/// `err` with its causes, one line: what `--json` prints as the message.
pub fn message(err: &anyhow::Error) -> String {
    err.chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

/// The `--json` error object.
pub fn json_error(kind: ErrorKind, message: &str) -> serde_json::Value {
    serde_json::json!({ "error": { "kind": kind, "message": message } })
}

/// Reports a failed command: the chain on stderr, with `json` also the error object on stdout.
pub fn report(err: &anyhow::Error, json: bool) -> ExitCode {
    let kind = classify(err);
    eprintln!("error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    if json {
        println!("{}", json_error(kind, &message(err)));
    }
    ExitCode::from(kind.exit_code())
}

/// Reports a command line clap refused (or `--help`/`--version`, which clap prints and exits
/// 0 on). With `json` the error also goes to stdout as a JSON object.
pub fn report_clap(err: clap::Error, json: bool) -> ExitCode {
    use clap::error::ErrorKind as Clap;
    if matches!(err.kind(), Clap::DisplayHelp | Clap::DisplayVersion) {
        err.exit();
    }
    let _ = err.print();
    if json {
        println!("{}", json_error(ErrorKind::Usage, &clap_message(&err)));
    }
    ExitCode::from(EXIT_USAGE)
}

/// clap's message without its `error: ` prefix and the usage and help hints after it.
fn clap_message(err: &clap::Error) -> String {
    let rendered = err.render().to_string();
    let text = rendered.strip_prefix("error: ").unwrap_or(&rendered);
    let text = text.split("\n\n").next().unwrap_or(text);
    text.trim().to_string()
}

/// Whether the raw command line asks for `--json` (before any `--`): decides the format of an
/// error found while parsing it.
pub fn wants_json(args: impl IntoIterator<Item = OsString>) -> bool {
    args.into_iter()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn kinds_serialise_snake_case() {
        let v = json_error(ErrorKind::CorpusNotFound, "m");
        assert_eq!(v["error"]["kind"], "corpus_not_found");
        assert_eq!(v["error"]["message"], "m");
    }

    #[test]
    fn wrapped_library_errors_keep_their_kind() {
        let corpus = |e| anyhow::Error::new(IndexError::Corpus(e)).context("indexing somewhere");
        let err = corpus(CorpusError::NotFound {
            dir: PathBuf::from("nope"),
        });
        assert_eq!(classify(&err), ErrorKind::CorpusNotFound);
        assert_eq!(
            message(&err),
            "indexing somewhere: corpus folder nope does not exist"
        );
        let err = corpus(CorpusError::NotADirectory {
            dir: PathBuf::from("f.txt"),
        });
        assert_eq!(classify(&err), ErrorKind::CorpusNotAFolder);
        let err = anyhow::Error::new(StoreError::UnknownModel {
            name: "x".into(),
            known: "y".into(),
        });
        assert_eq!(classify(&err), ErrorKind::Usage);
        assert_eq!(classify(&err).exit_code(), EXIT_USAGE);
        assert_eq!(classify(&anyhow::anyhow!("plain")), ErrorKind::Other);
        assert_eq!(classify(&anyhow::anyhow!("plain")).exit_code(), EXIT_ERROR);
    }

    #[test]
    fn json_is_wanted_only_as_a_flag_before_a_double_dash() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(wants_json(args(&["docqa", "search", "x", "--json"])));
        assert!(!wants_json(args(&["docqa", "search", "x"])));
        assert!(!wants_json(args(&["docqa", "search", "--", "--json"])));
        assert!(!wants_json(args(&["--json"])));
    }
}

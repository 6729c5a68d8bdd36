//! How a failed command is reported: the exit code it gets, and with `--json` the one error
//! object it prints on stdout (`{"error": {"kind": "corpus_not_found", "message": "..."}}`),
//! beside the human-readable chain on stderr. The kinds are the library's
//! ([`docqa::session::ErrorKind`]), shared with the servers. Called by [`super::run`].

use std::ffi::OsString;
use std::process::ExitCode;

pub use docqa::session::errors::{json_error, ErrorKind};

/// Exit code of an error that is not the user's command line.
pub const EXIT_ERROR: u8 = 1;
/// Exit code of a usage error: a bad flag, value or combination of them.
pub const EXIT_USAGE: u8 = 2;

/// The exit code of a failure of `kind`: usage errors exit 2, the rest 1.
pub fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Usage => EXIT_USAGE,
        _ => EXIT_ERROR,
    }
}

/// The kind of the first error in `err`'s chain that docqa knows.
pub fn classify(err: &anyhow::Error) -> ErrorKind {
    err.chain()
        .find_map(|e| {
            if e.is::<clap::Error>() {
                Some(ErrorKind::Usage)
            } else {
                docqa::session::errors::kind_of(e)
            }
        })
        .unwrap_or(ErrorKind::Other)
}

/// `err` with its causes, one line: what `--json` prints as the message.
pub fn message(err: &anyhow::Error) -> String {
    err.chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
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
    ExitCode::from(exit_code(kind))
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
    use docqa::corpus::CorpusError;
    use docqa::index::IndexError;
    use docqa::models::StoreError;
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
        assert_eq!(exit_code(classify(&err)), EXIT_USAGE);
        assert_eq!(classify(&anyhow::anyhow!("plain")), ErrorKind::Other);
        assert_eq!(exit_code(classify(&anyhow::anyhow!("plain"))), EXIT_ERROR);
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

//! Runs a document parser on one file so that nothing the file does stops the index build: a
//! panic becomes the reason the file is skipped, and a parse running past its time limit is
//! abandoned. Called by the loader for PDF and zipped-XML documents, the formats whose parsers
//! walk structures the file itself describes.

use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Time one file may take to parse. The largest manual in the test corpus (311 pages) takes
/// about 2.5 s on one core; a file at this limit is either enormous or looping.
pub const PARSE_TIME_LIMIT: Duration = Duration::from_secs(120);

/// Runs `parse` on its own thread and waits at most `limit`. The thread is not killed when the
/// limit passes (Rust cannot stop a thread); it is left to finish or spin on its own, detached,
/// and its result is dropped. One such file costs one core until the process exits, which is
/// far better than a build that never ends.
pub fn run_isolated<T: Send + 'static>(
    what: &str,
    limit: Duration,
    parse: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = mpsc::channel();
    let spawned = thread::Builder::new()
        .name(format!("parse {what}"))
        .spawn(move || {
            let outcome = panic::catch_unwind(AssertUnwindSafe(parse));
            let _ = tx.send(outcome);
        });
    if let Err(e) = spawned {
        return Err(format!("cannot start a parser thread: {e}"));
    }
    match rx.recv_timeout(limit) {
        Ok(Ok(result)) => result,
        Ok(Err(payload)) => Err(format!(
            "the {what} parser crashed on this file ({})",
            panic_message(payload.as_ref())
        )),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!(
            "the {what} parser took longer than {} s on this file; abandoned",
            limit.as_secs_f64()
        )),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err(format!("the {what} parser stopped without a result"))
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_and_a_runaway_become_reasons() {
        let ok = run_isolated("test", Duration::from_secs(5), || Ok(7));
        assert_eq!(ok, Ok(7));
        let err = run_isolated::<()>("test", Duration::from_secs(5), || Err("bad".into()));
        assert_eq!(err, Err("bad".to_string()));
        let panicked = run_isolated::<()>("PDF", Duration::from_secs(5), || {
            panic!("index out of bounds")
        });
        let why = panicked.unwrap_err();
        assert!(why.contains("PDF parser crashed"), "{why}");
        assert!(why.contains("index out of bounds"), "{why}");
        let slow = run_isolated::<()>("PDF", Duration::from_millis(100), || {
            thread::sleep(Duration::from_secs(3));
            Ok(())
        });
        assert!(slow.unwrap_err().contains("longer than 0.1 s"));
    }
}

//! Runs a document parser on one file so that nothing the file does stops the index build: a
//! panic becomes the reason the file is skipped, and a parse running past its time limit is
//! abandoned. Called by the loader for PDF and zipped-XML documents, the formats whose parsers
//! walk structures the file itself describes.

use std::os::unix::thread::JoinHandleExt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// CPU time one file may take to parse. The largest manual in the test corpus (311 pages) takes
/// about 2.5 s of CPU; a file at this limit is either enormous or looping.
pub const PARSE_TIME_LIMIT: Duration = Duration::from_secs(120);

/// How often the parser thread's CPU clock is read while waiting.
const POLL: Duration = Duration::from_millis(50);

/// Runs `parse` on its own thread and waits until it has used `limit` of CPU time. CPU time,
/// not wall time: on a machine busy with other work (a benchmark, a second build) a parser that
/// is merely starved of CPU must not be mistaken for a runaway. As a backstop for a clock that
/// cannot be read, wall time is bounded too, at twenty times the limit.
///
/// The thread is not killed when the limit passes (Rust cannot stop a thread); it is left to
/// finish or spin on its own, detached, and its result is dropped. One such file costs one core
/// until the process exits, which is far better than a build that never ends.
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
    let handle = match spawned {
        Ok(handle) => handle,
        Err(e) => return Err(format!("cannot start a parser thread: {e}")),
    };
    let started = Instant::now();
    let outcome = loop {
        match rx.recv_timeout(POLL) {
            Ok(outcome) => break Some(outcome),
            Err(mpsc::RecvTimeoutError::Disconnected) => break None,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // The handle is not joined yet, so its thread id stays valid to ask about.
                let used = thread_cpu_time(&handle).unwrap_or_else(|| started.elapsed());
                if used >= limit || started.elapsed() >= limit * 20 {
                    return Err(format!(
                        "the {what} parser took longer than {} s on this file; abandoned",
                        limit.as_secs_f64()
                    ));
                }
            }
        }
    };
    let _ = handle.join();
    match outcome {
        Some(Ok(result)) => result,
        Some(Err(payload)) => Err(format!(
            "the {what} parser crashed on this file ({})",
            panic_message(payload.as_ref())
        )),
        None => Err(format!("the {what} parser stopped without a result")),
    }
}

/// CPU time the thread has used so far, from its POSIX CPU-time clock.
fn thread_cpu_time<T>(handle: &thread::JoinHandle<T>) -> Option<Duration> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: the thread is not joined or detached (we hold its handle), so its pthread_t is
    // valid; both calls only write the out-parameters given.
    unsafe {
        if libc::pthread_getcpuclockid(handle.as_pthread_t(), &mut clock) != 0 {
            return None;
        }
        let mut ts = std::mem::zeroed::<libc::timespec>();
        if libc::clock_gettime(clock, &mut ts) != 0 {
            return None;
        }
        Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
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
        // A spinning parser is stopped by its CPU time.
        let spin = run_isolated::<()>("PDF", Duration::from_millis(100), || loop {
            std::hint::black_box(0u64);
        });
        assert!(spin.unwrap_err().contains("longer than 0.1 s"));
        // A sleeping one uses no CPU: only the wall-time backstop (20 x 0.1 s) ends it.
        let started = Instant::now();
        let slow = run_isolated::<()>("PDF", Duration::from_millis(100), || {
            thread::sleep(Duration::from_secs(5));
            Ok(())
        });
        assert!(slow.unwrap_err().contains("longer than 0.1 s"));
        assert!(started.elapsed() >= Duration::from_secs(2));
    }
}

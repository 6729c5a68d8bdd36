//! The long-running front ends: `docqa serve` (HTTP, [`http`]) and `docqa mcp` (Model Context
//! Protocol over stdio, [`mcp`]). Both hold one warm [`Session`] (models and index loaded once),
//! bring its index up to date when a corpus file changes, and send the session's reports
//! unchanged. Model work runs on blocking threads, one request at a time: the CPU is the
//! bottleneck, and the generator keeps state (its prompt-prefix cache) between calls.

pub mod http;
pub mod mcp;

use std::sync::{Arc, Mutex};

use crate::index::RetrievalMode;
use crate::session::{AskReport, SearchReport, Session, SessionError, Silent};

/// A session shared by a server's requests.
#[derive(Clone)]
pub struct Shared(Arc<Mutex<Session>>);

impl Shared {
    pub fn new(session: Session) -> Shared {
        Shared(Arc::new(Mutex::new(session)))
    }

    /// Runs `f` on the session on a blocking thread, after bringing the index up to date with
    /// the corpus folder (an added, changed or removed file is indexed before the request is
    /// answered).
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<T, SessionError> + Send + 'static,
    ) -> Result<T, SessionError> {
        let shared = self.0.clone();
        tokio::task::spawn_blocking(move || {
            // A request that panicked left the session as it was between calls: keep serving.
            let mut session = shared.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(report) = session.refresh(&mut Silent)? {
                tracing::info!(
                    "corpus changed: {} files re-embedded, {} removed",
                    report.embedded_files.len(),
                    report.removed_files.len()
                );
            }
            f(&mut session)
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    /// A checked answer to `question`, with the request's own `k` and mode over the session's.
    pub async fn ask(
        &self,
        question: String,
        k: Option<usize>,
        mode: Option<RetrievalMode>,
    ) -> Result<AskReport, SessionError> {
        self.run(move |s| {
            let retrieval = s.retrieval(k, mode);
            s.ask(&question, retrieval, &mut |_| {})
        })
        .await
    }

    /// The ranked chunks for `question`, with the request's own `k` and mode.
    pub async fn search(
        &self,
        question: String,
        k: Option<usize>,
        mode: Option<RetrievalMode>,
    ) -> Result<SearchReport, SessionError> {
        self.run(move |s| {
            let retrieval = s.retrieval(k, mode);
            s.search(&question, &retrieval)
        })
        .await
    }
}

//! One eval run through a [`Session`]: the Q&A items answered by the session's index, embedder
//! and generator (through the generation cache unless told otherwise), scored and gathered into
//! an [`EvalReport`]. Called by `docqa eval` and by [`super::compare`].

use crate::generate::Generator;
use crate::session::{Events, Session, SessionError};

use super::calibrate;
use super::gencache::CachedGenerator;
use super::qa::QaItem;
use super::report::{EvalReport, ModelRef};
use super::runner::{self, EvalError};

/// What an eval run failed on: loading (the session) or a question (the runner).
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error(transparent)]
    Session(#[from] SessionError),
    /// Boxed: a question's error is large, and this travels up through every caller.
    #[error(transparent)]
    Eval(Box<EvalError>),
}

impl From<EvalError> for SuiteError {
    fn from(e: EvalError) -> Self {
        SuiteError::Eval(Box::new(e))
    }
}

/// How a run goes, beside the session's settings.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The Q&A file the items came from, as the report names it.
    pub qa_file: String,
    /// Score retrieval only: no generator is loaded.
    pub retrieval_only: bool,
    /// Also ask each answerable item with its gold evidence withheld (see [`runner::run`]).
    pub withhold_gold: bool,
    /// Reuse generations cached by (model hash, prompt hash) under the cache's `generations/`.
    pub use_cache: bool,
}

/// Runs `items` through `session` as its settings say (retrieval, generator, verification).
/// `on_progress` gets the number of cases done.
pub fn evaluate(
    session: &mut Session,
    items: &[QaItem],
    opts: &RunOptions,
    events: &mut dyn Events,
    on_progress: &mut dyn FnMut(usize),
) -> Result<EvalReport, SuiteError> {
    if !opts.retrieval_only {
        session.load_generator(events)?;
    }
    let cfg = session.ask_config(session.settings().retrieval.clone());
    let corpus = session.settings().corpus.dir.clone();
    let cache_dir = session.store().root().join("generations");
    let embedder = ModelRef {
        name: session.embedder_ref().name.clone(),
        sha256: session.embedder_ref().sha256.clone(),
        kind: None,
        url: session.embedder_ref().url.clone(),
        features: None,
    };
    // The generator is borrowed mutably while the index and embedder are read: split the
    // session's borrows through its parts.
    let (index, embedder_ref, generator) = session.parts();
    let mut cached;
    let (g, generator_ref): (Option<&mut dyn Generator>, Option<ModelRef>) =
        match generator.filter(|_| !opts.retrieval_only) {
            Some((g, info)) => {
                let model_ref = ModelRef {
                    name: info.name.clone(),
                    sha256: info.cache_identity(),
                    kind: Some(info.kind),
                    url: info.url.clone(),
                    features: Some(info.features),
                };
                if opts.use_cache {
                    cached = CachedGenerator::new(g, &cache_dir, &model_ref.sha256);
                    (Some(&mut cached), Some(model_ref))
                } else {
                    (Some(g), Some(model_ref))
                }
            }
            None => (None, None),
        };
    let run = runner::RunConfig {
        corpus_dir: &corpus,
        ask: &cfg,
        withhold_gold: opts.withhold_gold,
    };
    let (results, summary) = runner::run(items, run, index, embedder_ref, g, &mut |n, _| {
        on_progress(n)
    })?;
    Ok(EvalReport {
        qa_file: opts.qa_file.clone(),
        corpus: corpus.display().to_string(),
        generator: generator_ref,
        embedder,
        retrieval_mode: cfg.retrieval.mode.to_string(),
        k: cfg.retrieval.k,
        summary,
        verify_calibration: results.iter().any(|r| r.verify_margin.is_some()).then(|| {
            calibrate::calibrate(
                &calibrate::judged_results(&results),
                calibrate::DEFAULT_DECLINE_BUDGET,
            )
        }),
        questions: results,
    })
}

/// The number of cases a run over `items` answers (twins included).
pub fn case_count(items: &[QaItem], opts: &RunOptions) -> usize {
    runner::case_count(items, opts.withhold_gold)
}

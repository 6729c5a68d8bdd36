//! The settings every front end resolves once (the command line from its flags, the servers from
//! theirs) and hands to [`super::Session::open`]: cache, threads, corpus and index, retrieval,
//! generator and verification policy. Nothing below the session reads flags or the environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::index::{self, IndexSettings, RetrievalConfig};
use crate::models::{FetchOptions, ModelRef, Registry, Store, StoreError};
use crate::pipeline::{self, AskConfig};
use crate::served::ServedOptions;

/// Starts a program that runs [`crate::embed::worker::serve`]: the binary passes itself with
/// `embed-worker`. A library caller without such a program passes `None` and embeds in-process.
pub type WorkerCommand = fn() -> std::process::Command;

/// Everything a [`super::Session`] needs, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// The model cache (models, indexes, kept prompt prefixes, cached generations).
    pub cache: PathBuf,
    /// Never touch the network: a model that is not cached is an error.
    pub offline: bool,
    /// No progress lines while fetching models.
    pub quiet: bool,
    /// A folder of the user's own model manifests that extend the registry (`None`: the
    /// built-in registry alone).
    pub models_dir: Option<PathBuf>,
    /// CPU threads for the models, and the number of embedding worker processes a build starts.
    pub threads: usize,
    #[serde(skip)]
    pub worker_command: Option<WorkerCommand>,
    pub corpus: CorpusSettings,
    pub retrieval: RetrievalConfig,
    pub generator: GeneratorSettings,
}

/// Which folder is answered from, with which embedder, indexed where and how.
#[derive(Debug, Clone, Serialize)]
pub struct CorpusSettings {
    pub dir: PathBuf,
    /// The embedder's registry name.
    pub embedder: String,
    /// The index file: given, or under the cache keyed by the folder's absolute path.
    pub index_path: PathBuf,
    pub index: IndexSettings,
    /// Least time between checkpoints while building (see [`index::UpdateOptions`]).
    pub checkpoint_every: Duration,
}

impl CorpusSettings {
    /// The settings of `dir` with the default embedder and chunking, indexed at `index_path`
    /// or, when that is `None`, under `cache`.
    pub fn new(dir: PathBuf, cache: &Path, index_path: Option<PathBuf>) -> Self {
        let index_path = index_path.unwrap_or_else(|| index::default_index_path(cache, &dir));
        CorpusSettings {
            dir,
            embedder: crate::models::DEFAULT_EMBEDDER.to_string(),
            index_path,
            index: IndexSettings::default(),
            checkpoint_every: index::DEFAULT_CHECKPOINT_EVERY,
        }
    }

    /// The index of `dir` under `cache` for `embedder`: a served embedder's (named by its URL)
    /// beside the local one's, never in its place, so switching back does not re-embed.
    pub fn default_index_for(dir: &Path, cache: &Path, embedder: &str) -> PathBuf {
        let local = index::default_index_path(cache, dir);
        if !crate::served::is_url(embedder) {
            return local;
        }
        use sha2::Digest;
        let tag = hex::encode(sha2::Sha256::digest(embedder.as_bytes()));
        local.with_file_name(format!("index-served-{}.docqa", &tag[..12]))
    }
}

/// The generator and what an answer goes through.
#[derive(Debug, Clone, Serialize)]
pub struct GeneratorSettings {
    /// The generator: registered, a GGUF file, or served.
    pub model: ModelRef,
    /// How a served generator's requests go (key, time limit, retries); not serialised, as it
    /// may hold the key.
    #[serde(skip)]
    pub served: ServedOptions,
    pub max_tokens: usize,
    pub verify: VerifyPolicy,
    /// Check and show only the first sentence of the draft (see [`AskConfig::one_sentence`]).
    pub one_sentence: bool,
}

impl Default for GeneratorSettings {
    fn default() -> Self {
        GeneratorSettings {
            model: ModelRef::Registry {
                name: crate::models::DEFAULT_GENERATOR.to_string(),
            },
            served: ServedOptions::default(),
            max_tokens: AskConfig::default().max_tokens,
            verify: VerifyPolicy::Auto,
            one_sentence: true,
        }
    }
}

/// Whether and at which margin an answer is verified against its passage.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyPolicy {
    /// Never (`--no-verify`).
    Off,
    /// At the generator's calibrated threshold when its manifest has one, else not at all.
    Auto,
    /// Always: at the calibrated threshold, else at [`pipeline::DEFAULT_VERIFY_THRESHOLD`].
    On,
    /// Always, at this margin (`-inf` measures and never declines).
    At(f32),
}

impl VerifyPolicy {
    /// The margin below which docqa declines, given the generator's calibrated threshold;
    /// `None` skips verification.
    pub fn threshold(self, calibrated: Option<f64>) -> Option<f32> {
        let calibrated = calibrated.map(|t| t as f32);
        match self {
            VerifyPolicy::Off => None,
            VerifyPolicy::Auto => calibrated,
            VerifyPolicy::On => calibrated.or(Some(pipeline::DEFAULT_VERIFY_THRESHOLD)),
            VerifyPolicy::At(t) => Some(t),
        }
    }
}

impl GeneratorSettings {
    /// The pipeline settings of one ask with `retrieval`, for a generator whose manifest has
    /// the calibrated threshold `calibrated`.
    pub fn ask_config(&self, retrieval: RetrievalConfig, calibrated: Option<f64>) -> AskConfig {
        AskConfig {
            retrieval,
            max_tokens: self.max_tokens,
            verify_threshold: self.verify.threshold(calibrated),
            one_sentence: self.one_sentence,
            ..AskConfig::default()
        }
    }
}

impl Settings {
    /// Defaults for answering from `dir`: the default cache (or `cache`), models and retrieval,
    /// every available core.
    pub fn new(dir: PathBuf, cache: Option<PathBuf>) -> Self {
        let cache = cache.unwrap_or_else(Store::default_root);
        Settings {
            corpus: CorpusSettings::new(dir, &cache, None),
            cache,
            offline: false,
            quiet: false,
            models_dir: None,
            threads: default_threads(),
            worker_command: None,
            retrieval: RetrievalConfig::default(),
            generator: GeneratorSettings::default(),
        }
    }

    /// The registry: built in, extended by the manifests in [`Settings::models_dir`].
    pub fn registry(&self) -> Result<Registry, StoreError> {
        match &self.models_dir {
            Some(dir) => Registry::with_user_manifests(dir),
            None => Ok(Registry::builtin()),
        }
    }

    pub fn store(&self) -> Result<Store, StoreError> {
        Ok(Store::new(self.cache.clone(), self.registry()?))
    }

    pub fn fetch_options(&self) -> FetchOptions {
        FetchOptions {
            offline: self.offline,
            quiet: self.quiet,
        }
    }
}

/// Every core the process may use.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_follows_the_calibrated_threshold_unless_told_otherwise() {
        let t = |policy: VerifyPolicy, calibrated| policy.threshold(calibrated);
        // On by default at the calibrated threshold; off by default without one.
        assert_eq!(t(VerifyPolicy::Auto, Some(-0.8)), Some(-0.8));
        assert_eq!(t(VerifyPolicy::Auto, None), None);
        // --verify turns it on without a calibration; --no-verify turns it off.
        assert_eq!(
            t(VerifyPolicy::On, None),
            Some(pipeline::DEFAULT_VERIFY_THRESHOLD)
        );
        assert_eq!(t(VerifyPolicy::On, Some(-0.8)), Some(-0.8));
        assert_eq!(t(VerifyPolicy::Off, Some(-0.8)), None);
        // A given threshold wins.
        assert_eq!(t(VerifyPolicy::At(1.5), Some(-0.8)), Some(1.5));
        assert_eq!(t(VerifyPolicy::At(1.5), None), Some(1.5));
    }
}

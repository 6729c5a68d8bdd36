//! Model registry, fetching and the verified local cache. Every command that needs a model asks
//! [`Store::ensure`] for it; nothing else in docqa touches the network.
//!
//! The registry is the set of manifests in `models/*.toml`, compiled into the binary so the tool
//! works from any directory, extended by a user's own manifests (`$XDG_CONFIG_HOME/docqa/models`
//! or `--models-dir`). Each manifest lists the final files with their sha256, the sources to
//! fetch them from in order of preference, and files derived locally (GGUF re-encoding).

mod model_ref;
mod registry;
pub mod requant;
mod source;
mod store;
pub mod user_manifest;

pub use model_ref::{ModelKind, ModelRef};
pub use registry::{
    DerivedFile, ModelFile, ModelName, ModelRole, ModelSpec, Registry, ServedSpec, Source,
    SourceKind, Transform,
};
pub use source::FetchError;
pub use store::{
    sha256_file, FetchOptions, FileState, FileStatus, LocalModel, ModelStatus, Progress, Store,
    StoreError, CACHE_ENV,
};

/// The models docqa uses when none is named.
pub const DEFAULT_EMBEDDER: &str = "all-minilm-l6-v2";
/// Qwen2.5-Coder-1.5B: on the seeds eval F1 0.725 against 0.504 for the 0.5B model, and on the
/// squad-dev sample 0.603 against 0.397, at about three times the time per question
/// (docs/benchmarks.md). [`FAST_GENERATOR`] is the choice when speed matters more.
pub const DEFAULT_GENERATOR: &str = "qwen2.5-coder-1.5b-instruct";
/// The fastest generator that still answers usefully; the speed benchmarks' reference model.
pub const FAST_GENERATOR: &str = "qwen2.5-coder-0.5b-instruct";

/// The folder of a user's own model manifests: `docqa/models` under the user's configuration
/// folder (`$XDG_CONFIG_HOME`, else `~/.config` on Linux).
pub fn default_models_dir() -> Option<std::path::PathBuf> {
    dirs::config_dir().map(|d| d.join("docqa").join("models"))
}

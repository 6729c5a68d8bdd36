//! Shared by the integration tests that use the real embedder: models come from the user's model
//! store (fetched on first use, as the CLI does), and the embedder gets the id the CLI gives it,
//! so indexes cached by the CLI and by the tests agree.
//!
//! Each test file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use docqa::embed::BertEmbedder;
use docqa::models::{FetchOptions, LocalModel, Registry, Store, DEFAULT_EMBEDDER};

/// A model from the store, fetched if missing.
pub fn model(name: &str) -> LocalModel {
    Store::new(Store::default_root(), Registry::builtin())
        .ensure(
            name,
            FetchOptions {
                offline: false,
                quiet: true,
            },
            &mut |_: &str| {},
        )
        .unwrap_or_else(|e| panic!("model `{name}`: {e}"))
}

/// The default embedding model's files.
pub fn embedder_model() -> &'static LocalModel {
    static MODEL: OnceLock<LocalModel> = OnceLock::new();
    MODEL.get_or_init(|| model(DEFAULT_EMBEDDER))
}

/// The real embedder, loaded once per test binary, on the threads `DOCQA_THREADS` asks for (the
/// binary turns it into candle's thread count; so does this).
pub fn embedder() -> &'static BertEmbedder {
    static EMBEDDER: OnceLock<BertEmbedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| {
        if let Ok(n) = std::env::var("DOCQA_THREADS") {
            std::env::set_var("RAYON_NUM_THREADS", n);
        }
        BertEmbedder::from_model(DEFAULT_EMBEDDER, embedder_model())
            .unwrap_or_else(|e| panic!("embedder `{DEFAULT_EMBEDDER}`: {e}"))
    })
}

/// A temporary folder with `docs/` holding these files of the repository's `seeds/`, and the
/// path of an index file beside `docs/` (not yet built).
pub fn seeds_corpus(files: &[&str]) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    for f in files {
        std::fs::copy(seeds.join(f), docs.join(f)).unwrap();
    }
    let index = dir.path().join("index.docqa");
    (dir, docs, index)
}

//! Computed prompt prefixes kept on disk, so that a new process (one `docqa ask`) resumes the
//! fixed openings of its prompts (the short-answer examples, the system messages) instead of
//! computing them again. An entry is keyed by the model's sha256, the decoder version and the
//! exact prefix tokens; it carries all three and a checksum, and anything that does not match
//! (another model, another prefix, a damaged or truncated file) is ignored and recomputed.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::DECODER_VERSION;

/// Where one model's prefixes are kept.
#[derive(Debug, Clone)]
pub struct PrefixStore {
    dir: PathBuf,
    model_sha256: String,
}

impl PrefixStore {
    /// Prefixes of the model whose file hashes to `model_sha256`, under `dir`.
    pub fn new(dir: impl Into<PathBuf>, model_sha256: &str) -> Self {
        PrefixStore {
            dir: dir.into(),
            model_sha256: model_sha256.to_string(),
        }
    }

    fn key(&self, tokens: &[u32]) -> String {
        let mut h = Sha256::new();
        h.update(self.model_sha256.as_bytes());
        h.update(DECODER_VERSION.to_le_bytes());
        for t in tokens {
            h.update(t.to_le_bytes());
        }
        hex::encode(h.finalize())
    }

    fn path(&self, tokens: &[u32]) -> PathBuf {
        self.dir.join(format!("{}.kv", self.key(tokens)))
    }

    /// The stored state of this prefix, if an intact entry for this model and prefix exists.
    pub fn read(&self, tokens: &[u32]) -> Option<Vec<u8>> {
        let bytes = std::fs::read(self.path(tokens)).ok()?;
        let header = self.header(tokens);
        let rest = bytes.strip_prefix(header.as_bytes())?;
        if rest.len() < 32 {
            return None;
        }
        let (digest, payload) = rest.split_at(32);
        (Sha256::digest(payload).as_slice() == digest).then(|| payload.to_vec())
    }

    /// Stores a prefix's state atomically (a temporary file renamed into place).
    pub fn write(&self, tokens: &[u32], payload: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(self.header(tokens).as_bytes())?;
        tmp.write_all(&Sha256::digest(payload))?;
        tmp.write_all(payload)?;
        tmp.as_file().sync_all()?;
        tmp.persist(self.path(tokens)).map_err(|e| e.error)?;
        Ok(())
    }

    fn header(&self, tokens: &[u32]) -> String {
        format!(
            "DOCQA-PREFIX 1 model={} decoder={} key={}\n",
            self.model_sha256,
            DECODER_VERSION,
            self.key(tokens)
        )
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

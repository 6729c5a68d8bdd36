//! Typed identifiers for documents and chunks; minted by the loader and chunker, carried by every
//! later stage (index, citations, evals), and always compared exactly.

use std::fmt;
use std::path::{Component, Path};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A document: its path relative to the corpus root, `/`-separated on every platform
/// (e.g. `news/000_b48ef8e451107e2d.txt`), so IDs written on one machine resolve on another.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DocId(String);

impl DocId {
    /// Wraps an already `/`-separated relative path.
    pub fn new(relative: impl Into<String>) -> DocId {
        DocId(relative.into())
    }

    /// Builds the ID from a path relative to the corpus root; `None` when the path is absolute,
    /// climbs out with `..`, or is not valid UTF-8 (such a file could not be named in a citation).
    pub fn from_relative_path(relative: &Path) -> Option<DocId> {
        let mut parts = Vec::new();
        for component in relative.components() {
            match component {
                Component::Normal(part) => parts.push(part.to_str()?),
                Component::CurDir => {}
                _ => return None,
            }
        }
        if parts.is_empty() {
            return None;
        }
        Some(DocId(parts.join("/")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path without the file's extension (`news/000_b48e.txt` -> `news/000_b48e`): the
    /// readable part of this document's chunk IDs.
    pub fn stem(&self) -> &str {
        let name_start = self.0.rfind('/').map_or(0, |slash| slash + 1);
        match self.0[name_start..].rfind('.') {
            // A leading dot (".profile") is part of the name, not an extension.
            Some(dot) if dot > 0 => &self.0[..name_start + dot],
            _ => &self.0,
        }
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A chunk: `{document stem}#{ordinal}`, e.g. `000_b48ef8e451107e2d#3` for the fourth chunk of
/// `000_b48ef8e451107e2d.txt`. Both parts depend only on the file's own path and text (and the
/// chunker settings), so re-indexing an unchanged file yields the same IDs. Ordering is by stem,
/// then numerically by ordinal (`a#2` < `a#10`). Serialized as the display string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChunkId {
    stem: String,
    ordinal: u32,
}

impl ChunkId {
    pub fn new(stem: impl Into<String>, ordinal: u32) -> ChunkId {
        ChunkId {
            stem: stem.into(),
            ordinal,
        }
    }

    /// The document part (before the `#`).
    pub fn stem(&self) -> &str {
        &self.stem
    }

    /// Position of the chunk within its document, from 0.
    pub fn ordinal(&self) -> u32 {
        self.ordinal
    }
}

impl fmt::Display for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.stem, self.ordinal)
    }
}

/// A string that is not `{stem}#{ordinal}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid chunk ID {0:?}: expected `{{document stem}}#{{ordinal}}`, e.g. `report#3`")]
pub struct ChunkIdParseError(String);

impl FromStr for ChunkId {
    type Err = ChunkIdParseError;

    fn from_str(s: &str) -> Result<ChunkId, ChunkIdParseError> {
        // Split at the last '#': a file name may itself contain '#', the ordinal never does.
        let bad = || ChunkIdParseError(s.to_string());
        let (stem, ordinal) = s.rsplit_once('#').ok_or_else(bad)?;
        if stem.is_empty() || ordinal.is_empty() || !ordinal.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        // Reject "007": it would print back as "7" and no longer compare equal to its source.
        if ordinal.len() > 1 && ordinal.starts_with('0') {
            return Err(bad());
        }
        let ordinal = ordinal.parse().map_err(|_| bad())?;
        Ok(ChunkId::new(stem, ordinal))
    }
}

impl Serialize for ChunkId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ChunkId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ChunkId, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn doc_id_is_slash_separated_and_rejects_escapes() {
        let rel: PathBuf = ["news", "a.txt"].iter().collect();
        assert_eq!(
            DocId::from_relative_path(&rel).unwrap().as_str(),
            "news/a.txt"
        );
        assert_eq!(DocId::from_relative_path(Path::new("../a.txt")), None);
        assert_eq!(DocId::from_relative_path(Path::new("")), None);
    }

    #[test]
    fn doc_id_stem_drops_only_the_extension() {
        assert_eq!(
            DocId::new("000_b48ef8e451107e2d.txt").stem(),
            "000_b48ef8e451107e2d"
        );
        assert_eq!(DocId::new("a.b/c.tar.html").stem(), "a.b/c.tar");
        assert_eq!(DocId::new("dir/.hidden").stem(), "dir/.hidden");
        assert_eq!(DocId::new("README").stem(), "README");
    }

    #[test]
    fn chunk_id_round_trips_through_text_and_json() {
        let id = ChunkId::new("000_b48ef8e451107e2d", 3);
        assert_eq!(id.to_string(), "000_b48ef8e451107e2d#3");
        assert_eq!("000_b48ef8e451107e2d#3".parse::<ChunkId>().unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"000_b48ef8e451107e2d#3\"");
        assert_eq!(serde_json::from_str::<ChunkId>(&json).unwrap(), id);
        assert_eq!("c#sharp#0".parse::<ChunkId>().unwrap().stem(), "c#sharp");
    }

    #[test]
    fn chunk_id_rejects_malformed_text() {
        for bad in ["", "a", "a#", "#1", "a#x", "a#-1", "a#01", "a#1 "] {
            assert!(bad.parse::<ChunkId>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn chunk_ids_order_numerically_within_a_document() {
        let mut ids = [
            ChunkId::new("a", 10),
            ChunkId::new("b", 0),
            ChunkId::new("a", 2),
        ];
        ids.sort();
        let shown: Vec<String> = ids.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["a#2", "a#10", "b#0"]);
    }
}

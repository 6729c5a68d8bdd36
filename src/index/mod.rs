//! The persisted index of a corpus folder and retrieval over it: dense (embeddings), BM25 and
//! their fusion. Called by `search`, `ask` and `eval`.
//!
//! On disk an index is one file: a magic line, a JSON header line (format version, embedder id
//! and hash, chunker settings, per-file content hashes, a sha256 of the body), then the body
//! (chunk metadata as one JSON line, then the vectors as little-endian f32). It is written to a
//! temporary file and renamed, so a killed run leaves the previous index intact; a truncated or
//! altered file fails its checksum and is rebuilt, never used.

pub mod bm25;
pub mod fusion;

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::corpus::{self, Chunk, ChunkId, ChunkerConfig, DocId};
use crate::embed::{cosine, EmbedError, Embedder};
use bm25::{Bm25, Bm25Params};

const MAGIC: &str = "DOCQA-INDEX";
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(
        "index {path} was built with embedder {built}, but {asked} was asked for: run \
         `docqa index --rebuild` (or pass --embedder {built})"
    )]
    EmbedderMismatch {
        path: PathBuf,
        built: String,
        asked: String,
    },
    #[error("index {path} is unreadable ({why}); it will be rebuilt")]
    Corrupt { path: PathBuf, why: String },
    #[error(transparent)]
    Corpus(#[from] corpus::CorpusError),
    #[error("corpus folder {} has no text left after boilerplate removal", dir.display())]
    NoChunks { dir: PathBuf },
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error("I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> IndexError + '_ {
    move |source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Texts per embed call when indexing: progress moves every ~2 s, and each call splits over the
/// embedding workers with enough texts per worker that waiting for the slower one costs little.
pub const EMBED_CALL_TEXTS: usize = 64;

/// How an index is built; stored in its header. A change to any of these re-embeds the corpus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexSettings {
    pub chunker: ChunkerConfig,
    /// Prepend the document title to each chunk's embedded text (not to its shown text).
    pub embed_title: bool,
}

impl Default for IndexSettings {
    fn default() -> Self {
        Self {
            chunker: ChunkerConfig::default(),
            embed_title: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct FileEntry {
    doc: DocId,
    content_hash: String,
    /// Range of this file's chunks in `chunks`.
    first: usize,
    count: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Header {
    format_version: u32,
    embedder_id: String,
    dim: usize,
    settings: IndexSettings,
    files: Vec<FileEntry>,
    chunks: usize,
    body_len: u64,
    body_sha256: String,
}

/// What an `update` did, for the user and for tests.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UpdateReport {
    pub reused_files: Vec<String>,
    pub embedded_files: Vec<String>,
    pub removed_files: Vec<String>,
    pub skipped_files: Vec<(String, String)>,
    pub chunks: usize,
    pub embedded_chunks: usize,
    pub rebuilt_reason: Option<String>,
    pub seconds: f64,
}

/// A corpus's chunks with their vectors, plus a BM25 index built on load.
pub struct Index {
    pub embedder_id: String,
    pub settings: IndexSettings,
    pub chunks: Vec<Chunk>,
    vectors: Vec<Vec<f32>>,
    files: Vec<FileEntry>,
    bm25: Bm25,
}

/// Where the index of `corpus` lives: under the cache, keyed by the folder's absolute path.
pub fn default_index_path(cache_root: &Path, corpus: &Path) -> PathBuf {
    let abs = fs::canonicalize(corpus).unwrap_or_else(|_| corpus.to_path_buf());
    let digest = hex::encode(Sha256::digest(abs.to_string_lossy().as_bytes()));
    let stem = abs
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into());
    cache_root
        .join("indexes")
        .join(format!("{stem}-{}", &digest[..12]))
        .join("index.docqa")
}

impl Index {
    /// Brings the index at `path` up to date with the folder `corpus`: unchanged files keep
    /// their chunks and vectors, changed and new files are embedded, deleted ones dropped.
    /// `rebuild` ignores the existing index. An index built with another embedder is refused.
    pub fn update(
        path: &Path,
        corpus_dir: &Path,
        embedder: &dyn Embedder,
        settings: &IndexSettings,
        rebuild: bool,
        on_progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(Self, UpdateReport), IndexError> {
        let started = Instant::now();
        let mut report = UpdateReport::default();
        let previous = if rebuild || !path.exists() {
            None
        } else {
            match Self::read(path) {
                Ok(prev) => Some(prev),
                Err(IndexError::Corrupt { why, .. }) => {
                    tracing::warn!("index {} is damaged ({why}): rebuilding", path.display());
                    report.rebuilt_reason = Some(format!("damaged index: {why}"));
                    None
                }
                Err(e) => return Err(e),
            }
        };
        let previous = match previous {
            Some(p) if p.embedder_id != embedder.id() => {
                return Err(IndexError::EmbedderMismatch {
                    path: path.to_path_buf(),
                    built: p.embedder_id,
                    asked: embedder.id().to_string(),
                })
            }
            Some(p) if p.settings != *settings => {
                report.rebuilt_reason = Some("index settings changed".into());
                None
            }
            other => other,
        };

        let loaded = corpus::load_dir(corpus_dir)?;
        report.skipped_files = loaded
            .warnings
            .iter()
            .map(|w| (w.path.display().to_string(), w.reason.clone()))
            .collect();
        // Vectors are reused for chunks of unchanged files whose ID and text are unchanged.
        let mut reusable: HashMap<&ChunkId, (&str, &[f32])> = HashMap::new();
        if let Some(p) = &previous {
            for f in &p.files {
                let unchanged = loaded
                    .documents
                    .iter()
                    .any(|d| d.id == f.doc && d.content_hash == f.content_hash);
                if unchanged {
                    for i in f.first..f.first + f.count {
                        reusable.insert(&p.chunks[i].id, (&p.chunks[i].text, &p.vectors[i]));
                    }
                }
            }
        }
        let chunks = corpus::chunk_documents(&loaded.documents, &settings.chunker)?;
        let mut vectors: Vec<Option<Vec<f32>>> = chunks
            .iter()
            .map(|c| {
                reusable
                    .get(&c.id)
                    .filter(|(text, _)| *text == c.text)
                    .map(|(_, v)| v.to_vec())
            })
            .collect();
        let mut files = Vec::new();
        for doc in &loaded.documents {
            let first = chunks
                .iter()
                .position(|c| c.doc == doc.id)
                .unwrap_or(chunks.len());
            let count = chunks.iter().filter(|c| c.doc == doc.id).count();
            let all_reused = (first..first + count).all(|i| vectors[i].is_some());
            if all_reused && previous.is_some() && count > 0 {
                report.reused_files.push(doc.id.to_string());
            } else {
                report.embedded_files.push(doc.id.to_string());
            }
            files.push(FileEntry {
                doc: doc.id.clone(),
                content_hash: doc.content_hash.clone(),
                first,
                count,
            });
        }
        if let Some(p) = &previous {
            for f in &p.files {
                if !files.iter().any(|n| n.doc == f.doc) {
                    report.removed_files.push(f.doc.to_string());
                }
            }
        }
        if chunks.is_empty() {
            return Err(IndexError::NoChunks {
                dir: corpus_dir.to_path_buf(),
            });
        }

        let todo: Vec<usize> = (0..chunks.len())
            .filter(|&i| vectors[i].is_none())
            .collect();
        report.embedded_chunks = todo.len();
        let mut done = 0;
        on_progress(0, todo.len());
        for idx in todo.chunks(EMBED_CALL_TEXTS) {
            let texts: Vec<String> = idx
                .iter()
                .map(|&i| embed_text(&chunks[i], settings.embed_title))
                .collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            for (v, &i) in embedder.embed(&refs)?.into_iter().zip(idx) {
                vectors[i] = Some(v);
            }
            done += idx.len();
            on_progress(done, todo.len());
        }
        let vectors: Vec<Vec<f32>> = vectors.into_iter().map(|v| v.unwrap_or_default()).collect();
        let index = Self::assemble(
            embedder.id().to_string(),
            settings.clone(),
            chunks,
            vectors,
            files,
        );
        let changed = previous.is_none()
            || !report.embedded_files.is_empty()
            || !report.removed_files.is_empty();
        if changed {
            index.write(path)?;
        }
        report.chunks = index.chunks.len();
        report.seconds = started.elapsed().as_secs_f64();
        Ok((index, report))
    }

    fn assemble(
        embedder_id: String,
        settings: IndexSettings,
        chunks: Vec<Chunk>,
        vectors: Vec<Vec<f32>>,
        files: Vec<FileEntry>,
    ) -> Self {
        let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        let bm25 = Bm25::build(&texts, Bm25Params::default());
        Self {
            embedder_id,
            settings,
            chunks,
            vectors,
            files,
            bm25,
        }
    }

    /// Writes atomically: a temporary file beside `path`, synced, then renamed over it.
    pub fn write(&self, path: &Path) -> Result<(), IndexError> {
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut body = serde_json::to_vec(&self.chunks).expect("chunks serialise");
        body.push(b'\n');
        for v in &self.vectors {
            for x in v {
                body.extend_from_slice(&x.to_le_bytes());
            }
        }
        let header = Header {
            format_version: FORMAT_VERSION,
            embedder_id: self.embedder_id.clone(),
            dim: self.vectors.first().map_or(0, Vec::len),
            settings: self.settings.clone(),
            files: self.files.clone(),
            chunks: self.chunks.len(),
            body_len: body.len() as u64,
            body_sha256: hex::encode(Sha256::digest(&body)),
        };
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_err(dir))?;
        let write = |f: &mut fs::File| -> io::Result<()> {
            writeln!(f, "{MAGIC} {FORMAT_VERSION}")?;
            serde_json::to_writer(&mut *f, &header)?;
            f.write_all(b"\n")?;
            f.write_all(&body)?;
            f.sync_all()
        };
        write(tmp.as_file_mut()).map_err(io_err(path))?;
        tmp.persist(path).map_err(|e| IndexError::Io {
            path: path.to_path_buf(),
            source: e.error,
        })?;
        Ok(())
    }

    /// Reads and checks an index file; any damage is [`IndexError::Corrupt`].
    pub fn read(path: &Path) -> Result<Self, IndexError> {
        let corrupt = |why: String| IndexError::Corrupt {
            path: path.to_path_buf(),
            why,
        };
        let f = fs::File::open(path).map_err(io_err(path))?;
        let mut r = BufReader::new(f);
        let mut magic = String::new();
        r.read_line(&mut magic).map_err(io_err(path))?;
        if magic.trim_end() != format!("{MAGIC} {FORMAT_VERSION}") {
            return Err(corrupt(format!(
                "not a docqa index of format {FORMAT_VERSION}"
            )));
        }
        let mut header_line = String::new();
        r.read_line(&mut header_line).map_err(io_err(path))?;
        let header: Header =
            serde_json::from_str(&header_line).map_err(|e| corrupt(format!("header: {e}")))?;
        let mut body = Vec::new();
        r.read_to_end(&mut body).map_err(io_err(path))?;
        if body.len() as u64 != header.body_len {
            return Err(corrupt(format!(
                "body is {} bytes, header says {} (truncated?)",
                body.len(),
                header.body_len
            )));
        }
        if hex::encode(Sha256::digest(&body)) != header.body_sha256 {
            return Err(corrupt("body checksum mismatch".into()));
        }
        let nl = body
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| corrupt("no chunk table".into()))?;
        let chunks: Vec<Chunk> =
            serde_json::from_slice(&body[..nl]).map_err(|e| corrupt(format!("chunks: {e}")))?;
        let raw = &body[nl + 1..];
        if chunks.len() != header.chunks || raw.len() != header.chunks * header.dim * 4 {
            return Err(corrupt("chunk and vector counts disagree".into()));
        }
        // The header is outside the body checksum: its file table must match the chunks, or
        // `update` would index past them.
        for f in &header.files {
            let end = f
                .first
                .checked_add(f.count)
                .filter(|&end| end <= chunks.len());
            if end.is_none_or(|end| chunks[f.first..end].iter().any(|c| c.doc != f.doc)) {
                return Err(corrupt(format!(
                    "file table entry for {} does not match the chunks",
                    f.doc
                )));
            }
        }
        let vectors: Vec<Vec<f32>> = if header.dim == 0 {
            vec![Vec::new(); chunks.len()]
        } else {
            raw.chunks_exact(header.dim * 4)
                .map(|row| {
                    row.chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect()
                })
                .collect()
        };
        Ok(Self::assemble(
            header.embedder_id,
            header.settings,
            chunks,
            vectors,
            header.files,
        ))
    }

    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    pub fn chunk(&self, id: &ChunkId) -> Option<&Chunk> {
        self.chunks.iter().find(|c| &c.id == id)
    }

    pub fn vector(&self, i: usize) -> &[f32] {
        &self.vectors[i]
    }

    /// Every chunk scored against a query vector, best first.
    pub fn dense_search(&self, query: &[f32], k: usize) -> Vec<(usize, f32)> {
        let mut scored: Vec<(usize, f32)> = self
            .vectors
            .iter()
            .enumerate()
            .map(|(i, v)| (i, cosine(query, v)))
            .collect();
        top_k(&mut scored, k);
        scored
    }

    pub fn bm25_search(&self, query: &str, k: usize) -> Vec<(usize, f32)> {
        self.bm25.search(query, k)
    }
}

/// What is embedded for a chunk: its text, optionally after its document title.
pub fn embed_text(chunk: &Chunk, with_title: bool) -> String {
    if with_title && !chunk.title.is_empty() && !chunk.text.starts_with(&chunk.title) {
        format!("{}\n{}", chunk.title, chunk.text)
    } else {
        chunk.text.clone()
    }
}

fn top_k(scored: &mut Vec<(usize, f32)>, k: usize) {
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.truncate(k);
}

/// Which rankings a search uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum RetrievalMode {
    Dense,
    Bm25,
    Hybrid,
}

impl std::fmt::Display for RetrievalMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RetrievalMode::Dense => "dense",
            RetrievalMode::Bm25 => "bm25",
            RetrievalMode::Hybrid => "hybrid",
        })
    }
}

/// How hybrid retrieval merges the dense and BM25 rankings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FusionMethod {
    /// Weighted sum of min-max normalised scores.
    Convex,
    /// Reciprocal rank fusion (ranks only).
    Rrf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetrievalConfig {
    pub mode: RetrievalMode,
    pub k: usize,
    /// How hybrid mode merges the two rankings.
    pub fusion: FusionMethod,
    pub dense_weight: f32,
    pub bm25_weight: f32,
    /// The RRF constant: larger values flatten the advantage of top ranks.
    pub rrf_k: f32,
    /// How deep each ranking is read before fusion.
    pub depth: usize,
}

impl Default for RetrievalConfig {
    fn default() -> Self {
        Self {
            mode: RetrievalMode::Hybrid,
            k: 5,
            fusion: FusionMethod::Convex,
            // Chosen on squad-dev (retrieval only): dense 0.3-0.5 all beat BM25 alone there and
            // on seeds; 0.4 sits in the middle of that plateau.
            dense_weight: 0.4,
            bm25_weight: 0.6,
            rrf_k: 60.0,
            depth: 50,
        }
    }
}

/// One retrieved chunk with the scores each retriever gave it.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub index: usize,
    pub score: f32,
    pub dense: Option<RankScore>,
    pub bm25: Option<RankScore>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct RankScore {
    pub rank: usize,
    pub score: f32,
}

/// Ranks the index's chunks for a question.
pub fn retrieve(
    index: &Index,
    embedder: &dyn Embedder,
    question: &str,
    cfg: &RetrievalConfig,
) -> Result<Vec<Hit>, IndexError> {
    let depth = cfg.depth.max(cfg.k);
    let dense = if cfg.mode == RetrievalMode::Bm25 {
        Vec::new()
    } else {
        let q = embedder.embed_one(question)?;
        index.dense_search(&q, depth)
    };
    let sparse = if cfg.mode == RetrievalMode::Dense {
        Vec::new()
    } else {
        index.bm25_search(question, depth)
    };
    let lookup = |list: &[(usize, f32)], i: usize| {
        list.iter()
            .position(|(j, _)| *j == i)
            .map(|rank| RankScore {
                rank: rank + 1,
                score: list[rank].1,
            })
    };
    let ranked: Vec<(usize, f32)> = match cfg.mode {
        RetrievalMode::Dense => dense.clone(),
        RetrievalMode::Bm25 => sparse.clone(),
        RetrievalMode::Hybrid => {
            let lists = [
                (&dense[..], cfg.dense_weight),
                (&sparse[..], cfg.bm25_weight),
            ];
            match cfg.fusion {
                FusionMethod::Convex => fusion::convex_combination(&lists),
                FusionMethod::Rrf => fusion::reciprocal_rank_fusion(&lists, cfg.rrf_k),
            }
        }
    };
    Ok(ranked
        .into_iter()
        .take(cfg.k)
        .map(|(i, score)| Hit {
            index: i,
            score,
            dense: lookup(&dense, i),
            bm25: lookup(&sparse, i),
        })
        .collect())
}

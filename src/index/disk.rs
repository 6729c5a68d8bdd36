//! The index file on disk: telling docqa's own files from anything else at an index path,
//! reading and checking them, writing them atomically with memory bounded by what is written,
//! and the advisory lock that makes concurrent writers take turns. Used by [`super::Index`];
//! nothing else opens an index path.
//!
//! Format: a magic line (`DOCQA-INDEX 2`), a JSON header line, then the body: the chunk table as
//! one JSON line, the text extracted from PDF and zipped-XML files as one JSON line (so an
//! unchanged PDF is not parsed again), then the vectors as little-endian f32. The header records
//! the body's length and sha256, so a truncated or altered body is detected before anything in it
//! is used. Version 2 added the extracted texts and the chunks' pages; a version 1 index is
//! rebuilt, never read as version 2.
//!
//! docqa only ever replaces a file that starts with its magic (or an empty regular file, which
//! holds nothing to lose). Anything else at the path, a symbolic link, a directory, a FIFO, a
//! device or another program's file, is refused with [`IndexError::NotAnIndex`]; its type is
//! checked with `symlink_metadata` before anything is opened, so a FIFO is never opened and
//! cannot hang a run.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{io_err, IndexError, IndexSettings};
use crate::corpus::{Chunk, DocId, Extracted};

pub(super) const MAGIC: &str = "DOCQA-INDEX";
pub const FORMAT_VERSION: u32 = 2;

/// The longest magic line read when deciding whose file a path holds.
const MAGIC_LINE_MAX: u64 = 64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct FileEntry {
    pub doc: DocId,
    pub content_hash: String,
    /// Range of this file's chunks in `chunks`.
    pub first: usize,
    pub count: usize,
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

/// An index as stored, before the BM25 index is built over it.
pub(super) struct Stored {
    pub embedder_id: String,
    pub settings: IndexSettings,
    pub files: Vec<FileEntry>,
    pub chunks: Vec<Chunk>,
    /// Text extracted from the binary documents among `files`.
    pub extracted: Vec<Extracted>,
    pub vectors: Vec<Vec<f32>>,
}

/// What an index path holds, when it holds nothing docqa must leave alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexPathState {
    /// Nothing there yet.
    Absent,
    /// An empty regular file (as `mktemp` makes): nothing to lose by replacing it.
    Empty,
    /// A regular file starting with docqa's magic line: docqa's own, to read or rebuild.
    Docqa,
}

/// Says what is at `path` without following a symbolic link or opening anything but a regular
/// file. Anything docqa did not write is [`IndexError::NotAnIndex`], naming the path.
pub fn check_path(path: &Path) -> Result<IndexPathState, IndexError> {
    Ok(match inspect(path)? {
        Inspected::Absent => IndexPathState::Absent,
        Inspected::Empty => IndexPathState::Empty,
        Inspected::Docqa { .. } => IndexPathState::Docqa,
    })
}

/// [`IndexPathState`], with docqa's file opened.
enum Inspected {
    Absent,
    Empty,
    /// `reader` is positioned after the magic line, `magic`.
    Docqa {
        reader: BufReader<File>,
        magic: Vec<u8>,
    },
}

/// How many times [`inspect`] looks again at a path that was replaced between its two looks.
const INSPECT_ATTEMPTS: usize = 8;

/// [`check_path`], keeping the opened file. A path replaced between the look at its entry and the
/// open (another docqa process renaming a finished index into place) is looked at again, both
/// looks anew; one that keeps changing is refused.
fn inspect(path: &Path) -> Result<Inspected, IndexError> {
    for _ in 1..INSPECT_ATTEMPTS {
        if let Some(inspected) = inspect_once(path)? {
            return Ok(inspected);
        }
    }
    inspect_once(path)?.ok_or_else(|| IndexError::NotAnIndex {
        path: path.to_path_buf(),
        why: "it changed while being checked".to_string(),
    })
}

/// One look at `path`: `None` when it was replaced between the look at its entry and the open.
fn inspect_once(path: &Path) -> Result<Option<Inspected>, IndexError> {
    let refuse = |why: &str| IndexError::NotAnIndex {
        path: path.to_path_buf(),
        why: why.to_string(),
    };
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Some(Inspected::Absent)),
        Err(e) => return Err(io_err(path)(e)),
    };
    let kind = meta.file_type();
    if !kind.is_file() {
        return Err(refuse(if kind.is_symlink() {
            "it is a symbolic link"
        } else if kind.is_dir() {
            "it is a directory"
        } else if kind.is_fifo() {
            "it is a FIFO"
        } else if kind.is_socket() {
            "it is a socket"
        } else if kind.is_block_device() || kind.is_char_device() {
            "it is a device"
        } else {
            "it is not a regular file"
        }));
    }
    let file = match File::open(path) {
        Ok(file) => file,
        // Removed between the two looks (renamed away by another docqa process): look again.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    // The path may have been swapped between the two looks: trust only the file opened, and
    // only when it is the entry that was checked.
    let opened = file.metadata().map_err(io_err(path))?;
    if !opened.is_file() || opened.ino() != meta.ino() || opened.dev() != meta.dev() {
        return Ok(None);
    }
    if opened.len() == 0 {
        return Ok(Some(Inspected::Empty));
    }
    let mut reader = BufReader::new(file);
    let mut magic = Vec::new();
    (&mut reader)
        .take(MAGIC_LINE_MAX)
        .read_until(b'\n', &mut magic)
        .map_err(io_err(path))?;
    if !magic.starts_with(format!("{MAGIC} ").as_bytes()) {
        return Err(refuse(&format!(
            "it does not start with docqa's `{MAGIC}` line"
        )));
    }
    Ok(Some(Inspected::Docqa { reader, magic }))
}

/// Reads and checks an index file: [`IndexError::Corrupt`] for any damage to a docqa file,
/// [`IndexError::NotAnIndex`] for a path holding something else. Memory: the file's size plus
/// its chunk table once more while it is parsed.
pub(super) fn read(path: &Path) -> Result<Stored, IndexError> {
    let corrupt = |why: String| IndexError::Corrupt {
        path: path.to_path_buf(),
        why,
    };
    let (mut r, magic) = match inspect(path)? {
        Inspected::Absent => return Err(io_err(path)(io::ErrorKind::NotFound.into())),
        Inspected::Empty => return Err(corrupt("empty file".into())),
        Inspected::Docqa { reader, magic } => (reader, magic),
    };
    if magic != format!("{MAGIC} {FORMAT_VERSION}\n").as_bytes() {
        let shown = String::from_utf8_lossy(&magic).trim_end().to_string();
        return Err(corrupt(format!(
            "magic line {shown:?}: not a docqa index of format {FORMAT_VERSION}"
        )));
    }
    let file_len = r.get_ref().metadata().map_err(io_err(path))?.len();
    // Read as bytes: a damaged header need not be UTF-8, and that is damage, not an I/O error.
    let mut header_line = Vec::new();
    (&mut r)
        .take(file_len)
        .read_until(b'\n', &mut header_line)
        .map_err(io_err(path))?;
    let header_text =
        std::str::from_utf8(&header_line).map_err(|e| corrupt(format!("header: {e}")))?;
    let header: Header =
        serde_json::from_str(header_text).map_err(|e| corrupt(format!("header: {e}")))?;
    let body_on_disk = file_len.saturating_sub((magic.len() + header_line.len()) as u64);
    if body_on_disk != header.body_len {
        return Err(corrupt(format!(
            "body is {body_on_disk} bytes, header says {} (truncated?)",
            header.body_len
        )));
    }
    // Sizes from the header are checked against the file before anything is allocated by them.
    let vector_bytes = header
        .chunks
        .checked_mul(header.dim)
        .and_then(|n| n.checked_mul(4))
        .filter(|&n| (n as u64) < header.body_len)
        .ok_or_else(|| corrupt("chunk and vector counts disagree".into()))?;

    let mut hasher = Sha256::new();
    let mut table = Vec::new();
    let table_limit = header.body_len - vector_bytes as u64;
    (&mut r)
        .take(table_limit)
        .read_until(b'\n', &mut table)
        .map_err(io_err(path))?;
    hasher.update(&table);
    if table.len() as u64 >= table_limit || table.last() != Some(&b'\n') {
        return Err(corrupt("chunk and vector counts disagree".into()));
    }
    let mut texts = Vec::new();
    (&mut r)
        .take(table_limit - table.len() as u64)
        .read_until(b'\n', &mut texts)
        .map_err(io_err(path))?;
    hasher.update(&texts);
    if (table.len() + texts.len()) as u64 != table_limit || texts.last() != Some(&b'\n') {
        return Err(corrupt("chunk and vector counts disagree".into()));
    }
    let mut vectors = Vec::with_capacity(header.chunks);
    let mut row = vec![0u8; header.dim * 4];
    for _ in 0..header.chunks {
        r.read_exact(&mut row).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => corrupt("vectors cut short".into()),
            _ => io_err(path)(e),
        })?;
        hasher.update(&row);
        vectors.push(
            row.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect::<Vec<f32>>(),
        );
    }
    if hex::encode(hasher.finalize()) != header.body_sha256 {
        return Err(corrupt("body checksum mismatch".into()));
    }
    let chunks: Vec<Chunk> = serde_json::from_slice(&table[..table.len() - 1])
        .map_err(|e| corrupt(format!("chunks: {e}")))?;
    if chunks.len() != header.chunks {
        return Err(corrupt("chunk and vector counts disagree".into()));
    }
    let extracted: Vec<Extracted> = serde_json::from_slice(&texts[..texts.len() - 1])
        .map_err(|e| corrupt(format!("extracted texts: {e}")))?;
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
    Ok(Stored {
        embedder_id: header.embedder_id,
        settings: header.settings,
        files: header.files,
        chunks,
        extracted,
        vectors,
    })
}

/// What [`write`] stores: the files in `files` (whose `first..first + count` index `chunks`), in
/// that order, with their chunks and vectors.
pub(super) struct Contents<'a> {
    pub embedder_id: &'a str,
    pub settings: &'a IndexSettings,
    pub dim: usize,
    pub files: Vec<&'a FileEntry>,
    pub chunks: &'a [Chunk],
    /// Extracted texts; only those of `files` are written.
    pub extracted: &'a [Extracted],
    pub vector: &'a dyn Fn(usize) -> &'a [f32],
}

impl Contents<'_> {
    /// The body, streamed: written twice (once to hash, once to the file) rather than held.
    fn write_body(&self, w: &mut dyn Write) -> io::Result<()> {
        w.write_all(b"[")?;
        let mut first = true;
        for f in &self.files {
            for chunk in &self.chunks[f.first..f.first + f.count] {
                if !first {
                    w.write_all(b",")?;
                }
                first = false;
                serde_json::to_writer(&mut *w, chunk)?;
            }
        }
        w.write_all(b"]\n")?;
        let written: std::collections::HashSet<&DocId> =
            self.files.iter().map(|f| &f.doc).collect();
        let texts: Vec<&Extracted> = self
            .extracted
            .iter()
            .filter(|e| written.contains(&e.doc))
            .collect();
        serde_json::to_writer(&mut *w, &texts)?;
        w.write_all(b"\n")?;
        for f in &self.files {
            for i in f.first..f.first + f.count {
                let v = (self.vector)(i);
                if v.len() != self.dim {
                    return Err(io::Error::other(format!(
                        "chunk {} has a vector of {} values, expected {}",
                        self.chunks[i].id,
                        v.len(),
                        self.dim
                    )));
                }
                for x in v {
                    w.write_all(&x.to_le_bytes())?;
                }
            }
        }
        Ok(())
    }

    /// The header's file table: the same files, numbered as written.
    fn file_table(&self) -> Vec<FileEntry> {
        let mut next = 0;
        self.files
            .iter()
            .map(|f| {
                let entry = FileEntry {
                    first: next,
                    ..(*f).clone()
                };
                next += f.count;
                entry
            })
            .collect()
    }
}

/// Counts and hashes what is written to it.
struct HashWriter {
    hasher: Sha256,
    len: u64,
}

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.len += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Prefix of the temporary files a write of `path` uses, beside it.
fn temp_prefix(path: &Path) -> String {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    format!(".{name}.tmp")
}

/// Writes atomically: a temporary file beside `path`, synced, then renamed over it, and only
/// over nothing or a file docqa wrote. A killed write leaves the previous file in place.
pub(super) fn write(path: &Path, contents: &Contents<'_>) -> Result<(), IndexError> {
    check_path(path)?;
    let dir = parent(path);
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut digest = HashWriter {
        hasher: Sha256::new(),
        len: 0,
    };
    contents.write_body(&mut digest).map_err(io_err(path))?;
    let files = contents.file_table();
    let header = Header {
        format_version: FORMAT_VERSION,
        embedder_id: contents.embedder_id.to_string(),
        dim: contents.dim,
        settings: contents.settings.clone(),
        chunks: files.iter().map(|f| f.count).sum(),
        files,
        body_len: digest.len,
        body_sha256: hex::encode(digest.hasher.finalize()),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(&temp_prefix(path))
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    let mut w = BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
    let written: io::Result<()> = (|| {
        writeln!(w, "{MAGIC} {FORMAT_VERSION}")?;
        serde_json::to_writer(&mut w, &header)?;
        w.write_all(b"\n")?;
        contents.write_body(&mut w)?;
        w.flush()
    })();
    written.map_err(io_err(path))?;
    drop(w);
    tmp.as_file().sync_all().map_err(io_err(path))?;
    // Checked again just before the rename: something may have been put there meanwhile.
    check_path(path)?;
    tmp.persist(path).map_err(|e| IndexError::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    // The rename is durable once the folder is synced; a failure here loses nothing written.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Where the lock of the index at `path` lives: a small file beside it, never removed (removing
/// a lock file while another process waits on it would let two writers in).
pub fn lock_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!("{name}.lock"))
}

/// An exclusive advisory lock on an index path, held until dropped. Readers take no lock: they
/// see the old file or the new one, since writes are renames.
pub(super) struct WriteLock {
    _file: File,
    waited: bool,
}

impl WriteLock {
    /// Takes the lock, waiting while another process holds it.
    pub fn acquire(path: &Path) -> Result<WriteLock, IndexError> {
        let lock = lock_path(path);
        let dir = parent(path);
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        // The same care as for the index itself: a FIFO would hang the open.
        if let Ok(meta) = fs::symlink_metadata(&lock) {
            if !meta.is_file() {
                return Err(IndexError::NotAnIndex {
                    path: lock,
                    why: "the index's lock path is not a regular file".into(),
                });
            }
        }
        // Opened without truncating: if the name is taken by a file of the user's, its bytes
        // stay as they are; only an advisory lock is placed on it.
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock)
            .map_err(io_err(&lock))?;
        let mut waited = false;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                waited = true;
                tracing::info!(
                    "waiting for another docqa process to finish writing {}",
                    path.display()
                );
                file.lock().map_err(io_err(&lock))?;
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&lock)(e)),
        }
        Ok(WriteLock {
            _file: file,
            waited,
        })
    }

    /// Whether another process held the lock when this one asked for it.
    pub fn waited(&self) -> bool {
        self.waited
    }

    /// Removes temporary files that killed writes of `path` left behind. Only the lock holder
    /// writes, so any such file is stale; a file that merely shares the name pattern but is not
    /// empty or docqa's is left alone.
    pub fn remove_stale_temps(&self, path: &Path) {
        let prefix = temp_prefix(path);
        let Ok(entries) = fs::read_dir(parent(path)) else {
            return;
        };
        for entry in entries.flatten() {
            if !entry.file_name().to_string_lossy().starts_with(&prefix) {
                continue;
            }
            let temp = entry.path();
            if matches!(
                check_path(&temp),
                Ok(IndexPathState::Empty | IndexPathState::Docqa)
            ) {
                let _ = fs::remove_file(&temp);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::ChunkId;

    fn chunk(doc: &str, ordinal: u32) -> Chunk {
        let doc = DocId::new(doc);
        Chunk {
            id: ChunkId::new(doc.stem(), ordinal),
            text: format!("text {ordinal} of {doc}"),
            doc,
            start: 0,
            end: 10,
            title: String::new(),
            page: None,
        }
    }

    fn entry(doc: &str, first: usize, count: usize) -> FileEntry {
        FileEntry {
            doc: DocId::new(doc),
            content_hash: format!("hash of {doc}"),
            first,
            count,
        }
    }

    /// Three files' chunks (2 + 1 + 2) and 2-d vectors numbering them.
    fn sample() -> (Vec<Chunk>, Vec<Vec<f32>>, Vec<FileEntry>) {
        let chunks = vec![
            chunk("a.txt", 0),
            chunk("a.txt", 1),
            chunk("b.txt", 0),
            chunk("c.txt", 0),
            chunk("c.txt", 1),
        ];
        let vectors = (0..5).map(|i| vec![i as f32, -(i as f32)]).collect();
        let files = vec![
            entry("a.txt", 0, 2),
            entry("b.txt", 2, 1),
            entry("c.txt", 3, 2),
        ];
        (chunks, vectors, files)
    }

    fn write_files(path: &Path, picked: &[&FileEntry]) -> Result<(), IndexError> {
        let (chunks, vectors, _) = sample();
        let vector = |i: usize| vectors[i].as_slice();
        write(
            path,
            &Contents {
                embedder_id: "test-embedder",
                settings: &IndexSettings::default(),
                dim: 2,
                files: picked.to_vec(),
                chunks: &chunks,
                extracted: &[],
                vector: &vector,
            },
        )
    }

    #[test]
    fn a_subset_of_files_is_written_renumbered_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.docqa");
        let (chunks, vectors, files) = sample();
        // What a checkpoint writes: the finished files only, here a and c.
        write_files(&path, &[&files[0], &files[2]]).unwrap();
        let stored = read(&path).unwrap();
        assert_eq!(stored.embedder_id, "test-embedder");
        assert_eq!(
            stored.chunks,
            [&chunks[0], &chunks[1], &chunks[3], &chunks[4]].map(Clone::clone)
        );
        assert_eq!(
            stored.vectors,
            [&vectors[0], &vectors[1], &vectors[3], &vectors[4]].map(Clone::clone)
        );
        assert_eq!(stored.files, [entry("a.txt", 0, 2), entry("c.txt", 2, 2)]);
        assert!(stray_temps(dir.path()).is_empty());
    }

    fn stray_temps(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp"))
            .collect()
    }

    #[test]
    fn only_absent_empty_and_docqa_files_may_be_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name);
        assert_eq!(check_path(&at("absent")).unwrap(), IndexPathState::Absent);
        fs::write(at("empty"), "").unwrap();
        assert_eq!(check_path(&at("empty")).unwrap(), IndexPathState::Empty);
        write_files(&at("own"), &[]).unwrap();
        assert_eq!(check_path(&at("own")).unwrap(), IndexPathState::Docqa);

        fs::write(at("notes"), "precious\n").unwrap();
        std::os::unix::fs::symlink(at("own"), at("link")).unwrap();
        fs::create_dir(at("dir")).unwrap();
        let fifo = std::process::Command::new("mkfifo")
            .arg(at("fifo"))
            .status()
            .unwrap();
        assert!(fifo.success());
        for (name, why) in [
            ("notes", "does not start with"),
            ("link", "symbolic link"),
            ("dir", "directory"),
            ("fifo", "FIFO"),
        ] {
            match check_path(&at(name)) {
                Err(IndexError::NotAnIndex { path, why: got }) => {
                    assert_eq!(path, at(name));
                    assert!(got.contains(why), "{name}: {got}");
                }
                other => panic!("{name}: {other:?}"),
            }
            assert!(matches!(
                write_files(&at(name), &[]),
                Err(IndexError::NotAnIndex { .. })
            ));
        }
        assert_eq!(fs::read_to_string(at("notes")).unwrap(), "precious\n");
        assert!(fs::symlink_metadata(at("link")).unwrap().is_symlink());
        assert!(stray_temps(dir.path()).is_empty());
    }

    #[test]
    fn an_index_renamed_into_place_while_it_is_read_is_read_not_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.docqa");
        let (_, _, files) = sample();
        write_files(&path, &[&files[0]]).unwrap();
        // Ready-made replacements, renamed over the path as a finishing writer does.
        let spares: Vec<PathBuf> = (0..2)
            .map(|i| {
                let spare = dir.path().join(format!("spare{i}"));
                write_files(&spare, &[&files[i]]).unwrap();
                spare
            })
            .collect();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let swapper = {
            let (stop, path) = (stop.clone(), path.clone());
            std::thread::spawn(move || {
                let mut swaps = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let spare = &spares[(swaps % 2) as usize];
                    fs::copy(spare, spare.with_extension("next")).unwrap();
                    fs::rename(spare.with_extension("next"), &path).unwrap();
                    swaps += 1;
                }
                swaps
            })
        };
        for _ in 0..2000 {
            assert_eq!(check_path(&path).unwrap(), IndexPathState::Docqa);
            assert!(!read(&path).unwrap().chunks.is_empty());
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(swapper.join().unwrap() > 0);
    }

    #[test]
    fn binary_bytes_after_the_magic_line_are_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.docqa");
        let mut bytes = b"DOCQA-INDEX 2\n".to_vec();
        bytes.extend((0..5000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(read(&path), Err(IndexError::Corrupt { .. })));
        fs::write(&path, b"DOCQA-INDEX 1\n{}\n").unwrap();
        match read(&path) {
            Err(IndexError::Corrupt { why, .. }) => assert!(why.contains("format 2"), "{why}"),
            other => panic!("{:?}", other.err()),
        }
    }

    #[test]
    fn stale_temporary_files_of_killed_writes_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.docqa");
        let at = |name: &str| dir.path().join(name);
        fs::write(at(".i.docqa.tmpA1b2"), "").unwrap();
        fs::write(at(".i.docqa.tmpC3d4"), "DOCQA-INDEX 1\n{\"cut\"").unwrap();
        fs::write(at(".i.docqa.tmp-mine"), "a user's notes").unwrap();
        fs::write(at("other.txt"), "").unwrap();
        let lock = WriteLock::acquire(&path).unwrap();
        lock.remove_stale_temps(&path);
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [".i.docqa.tmp-mine", "i.docqa.lock", "other.txt"]);
    }

    #[test]
    fn a_second_lock_waits_for_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.docqa");
        let first = WriteLock::acquire(&path).unwrap();
        assert!(!first.waited());
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || {
                let second = WriteLock::acquire(&path).unwrap();
                tx.send(()).unwrap();
                second.waited()
            })
        };
        // Held by `first`: the second cannot get it.
        let held = std::time::Duration::from_millis(300);
        assert!(rx.recv_timeout(held).is_err(), "two writers held the lock");
        drop(first);
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .expect("the lock was not handed on");
        assert!(waiter.join().unwrap(), "the second writer did not wait");
        assert!(lock_path(&path).is_file());
    }
}

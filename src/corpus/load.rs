//! Loading a corpus folder: walks it recursively in a fixed order, reads `.txt`, `.md` and
//! `.html`/`.htm` files into [`Document`]s, and records (rather than fails on) every file it
//! cannot use, unsupported types included, so the user sees why a file is not searched. Called
//! by `docqa index` and the eval runner before chunking.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::boilerplate::clean_text;
use super::html;
use super::{CorpusError, DocId};

/// How a file's text was obtained, which decides what chunk offsets point into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocKind {
    /// `.txt`: the file's text as is.
    Text,
    /// `.md`: the file's text as is, Markdown structure respected when cleaning.
    Markdown,
    /// `.html` / `.htm`: the visible text extracted from the page; offsets point into that text,
    /// not into the file's markup.
    Html,
}

impl DocKind {
    /// The kind for a file name's extension (case-insensitive); `None` for files we ignore.
    pub fn from_path(path: &Path) -> Option<DocKind> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "txt" => Some(DocKind::Text),
            "md" | "markdown" => Some(DocKind::Markdown),
            "html" | "htm" => Some(DocKind::Html),
            _ => None,
        }
    }
}

/// One loaded file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    pub id: DocId,
    /// Where the file was read from.
    pub path: PathBuf,
    /// The headline: the HTML `<title>`, else the first heading-like line that is not page
    /// furniture, else the first body line cut to 100 characters, else the file stem.
    pub title: String,
    /// The text chunk offsets index into: the file itself for `.txt`/`.md`, the extracted
    /// visible text for HTML.
    pub text: String,
    /// SHA-256 of the file's bytes, lowercase hex: tells re-indexing which files changed.
    pub content_hash: String,
    pub kind: DocKind,
}

/// A file that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadWarning {
    pub path: PathBuf,
    pub reason: String,
}

impl fmt::Display for LoadWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "skipped {}: {}", self.path.display(), self.reason)
    }
}

/// What [`load_dir`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Loaded documents, sorted by ID.
    pub documents: Vec<Document>,
    /// Files that were not loaded, with the reason: unsupported types (`.pdf`, `.docx`, ...)
    /// and supported ones that could not be used (not UTF-8, binary, no text). Sorted by path.
    pub warnings: Vec<LoadWarning>,
    /// Hidden files and folders, and entries that are neither files nor folders.
    pub ignored: usize,
}

/// What a file of an unsupported type is skipped for.
fn unsupported_reason(path: &Path) -> String {
    match path.extension() {
        Some(ext) => format!("unsupported file type .{}", ext.to_string_lossy()),
        None => "no file extension".to_string(),
    }
}

/// Loads every `.txt`, `.md` and `.html`/`.htm` file under `dir`, recursively, in order of their
/// `/`-separated relative path. Hidden files and folders (`.git`) are ignored and symlinked folders
/// are not followed. Any other file, and a supported one that is not UTF-8, looks binary (holds
/// a NUL byte), cannot be read or holds no text, is skipped with a warning; it is an error only
/// when `dir` is missing, holds no supported file, or none of them could be used.
pub fn load_dir(dir: &Path) -> Result<LoadReport, CorpusError> {
    let meta = fs::metadata(dir).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => CorpusError::NotFound {
            dir: dir.to_path_buf(),
        },
        _ => CorpusError::ReadDir {
            dir: dir.to_path_buf(),
            source,
        },
    })?;
    if !meta.is_dir() {
        return Err(CorpusError::NotADirectory {
            dir: dir.to_path_buf(),
        });
    }

    let mut files = Vec::new();
    let mut warnings = Vec::new();
    let mut unsupported = Vec::new();
    let mut ignored = 0;
    walk(
        dir,
        dir,
        &mut Found {
            files: &mut files,
            warnings: &mut warnings,
            unsupported: &mut unsupported,
            ignored: &mut ignored,
        },
    )?;
    files.sort_by(|a, b| a.0.cmp(&b.0));
    unsupported.sort_by(|a: &LoadWarning, b| a.path.cmp(&b.path));

    if files.is_empty() && warnings.is_empty() {
        return Err(CorpusError::Empty {
            dir: dir.to_path_buf(),
            skipped: unsupported,
        });
    }
    let candidates = files.len() + warnings.len();

    let mut documents = Vec::with_capacity(files.len());
    for (id, path, kind) in files {
        match load_file(id, &path, kind) {
            Ok(doc) => documents.push(doc),
            Err(reason) => {
                tracing::warn!(file = %path.display(), %reason, "skipping file");
                warnings.push(LoadWarning { path, reason });
            }
        }
    }
    warnings.extend(unsupported);
    warnings.sort_by(|a, b| a.path.cmp(&b.path));
    if documents.is_empty() {
        return Err(CorpusError::NothingReadable {
            dir: dir.to_path_buf(),
            count: candidates,
            skipped: warnings,
        });
    }
    Ok(LoadReport {
        documents,
        warnings,
        ignored,
    })
}

/// What a walk collects.
struct Found<'a> {
    /// `(id, path, kind)` of supported files.
    files: &'a mut Vec<(DocId, PathBuf, DocKind)>,
    /// Supported files and folders that cannot be used.
    warnings: &'a mut Vec<LoadWarning>,
    /// Files of other types.
    unsupported: &'a mut Vec<LoadWarning>,
    ignored: &'a mut usize,
}

/// Collects the files below `current`.
fn walk(root: &Path, current: &Path, found: &mut Found<'_>) -> Result<(), CorpusError> {
    let entries = match fs::read_dir(current) {
        Ok(entries) => entries,
        Err(source) if current == root => {
            return Err(CorpusError::ReadDir {
                dir: root.to_path_buf(),
                source,
            })
        }
        Err(source) => {
            // An unreadable subfolder costs its files, not the whole corpus.
            let reason = format!("cannot read folder: {source}");
            tracing::warn!(folder = %current.display(), %reason, "skipping folder");
            found.warnings.push(LoadWarning {
                path: current.to_path_buf(),
                reason,
            });
            return Ok(());
        }
    };
    for entry in entries {
        let entry = entry.map_err(|source| CorpusError::ReadDir {
            dir: current.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            *found.ignored += 1;
            continue;
        }
        let file_type = match entry.file_type() {
            Ok(t) => t,
            Err(_) => {
                *found.ignored += 1;
                continue;
            }
        };
        if file_type.is_dir() {
            walk(root, &path, found)?;
            continue;
        }
        // Symlinks to files are read; symlinks to folders could loop and are skipped.
        let is_file = file_type.is_file() || (file_type.is_symlink() && path.is_file());
        if !is_file {
            *found.ignored += 1;
            continue;
        }
        let Some(kind) = DocKind::from_path(&path) else {
            found.unsupported.push(LoadWarning {
                reason: unsupported_reason(&path),
                path,
            });
            continue;
        };
        let relative = path.strip_prefix(root).unwrap_or(&path);
        match DocId::from_relative_path(relative) {
            Some(id) => found.files.push((id, path, kind)),
            None => found.warnings.push(LoadWarning {
                path: path.clone(),
                reason: "file name is not valid UTF-8".to_string(),
            }),
        }
    }
    Ok(())
}

/// Reads one file; the error is the reason it was skipped.
fn load_file(id: DocId, path: &Path, kind: DocKind) -> Result<Document, String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let content_hash = hex::encode(Sha256::digest(&bytes));
    let raw = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        format!("not valid UTF-8 (invalid byte at offset {at}); convert it to UTF-8 to index it")
    })?;
    // Valid UTF-8 yet not text: a NUL byte does not occur in a text file.
    if let Some(at) = raw.find('\0') {
        return Err(format!("binary file, not text (a NUL byte at offset {at})"));
    }
    let (text, html_title) = match kind {
        DocKind::Html => {
            let page = html::extract(&raw);
            (page.text, page.title)
        }
        DocKind::Text | DocKind::Markdown => (raw, None),
    };
    if text.trim().is_empty() {
        return Err("no text to index".to_string());
    }
    let title = html_title
        .or_else(|| clean_text(&text, kind == DocKind::Markdown).title)
        .unwrap_or_else(|| id.stem().rsplit('/').next().unwrap_or("").to_string());
    Ok(Document {
        id,
        path: path.to_path_buf(),
        title,
        text,
        content_hash,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, bytes: &[u8]) {
        let path = dir.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }

    #[test]
    fn loads_supported_files_recursively_in_order() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "b.txt",
            b"Second file\n\nIt has a body sentence that is long enough.",
        );
        write(
            dir.path(),
            "a/z.md",
            b"# Notes\n\nMarkdown body text goes here for the test.",
        );
        write(
            dir.path(),
            "a/page.HTML",
            b"<title>Page</title><p>Hello there.</p>",
        );
        write(dir.path(), "image.png", b"\x89PNG");
        write(dir.path(), ".git/config.txt", b"hidden");
        let report = load_dir(dir.path()).unwrap();
        let ids: Vec<&str> = report.documents.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["a/page.HTML", "a/z.md", "b.txt"]);
        // The hidden folder is ignored; the image is reported, with its type.
        assert_eq!(report.ignored, 1);
        assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
        assert_eq!(report.warnings[0].path, dir.path().join("image.png"));
        assert!(
            report.warnings[0]
                .reason
                .contains("unsupported file type .png"),
            "{}",
            report.warnings[0]
        );
        let titles: Vec<&str> = report.documents.iter().map(|d| d.title.as_str()).collect();
        assert_eq!(titles, ["Page", "Notes", "Second file"]);
        assert_eq!(report.documents[0].kind, DocKind::Html);
        assert_eq!(report.documents[0].text, "Hello there.");
        assert_eq!(
            report.documents[2].content_hash,
            hex::encode(Sha256::digest(
                b"Second file\n\nIt has a body sentence that is long enough."
            ))
        );
    }

    #[test]
    fn non_utf8_file_is_skipped_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "good.txt",
            b"A perfectly ordinary sentence about rivers.",
        );
        write(dir.path(), "latin1.txt", b"caf\xe9 au lait");
        let report = load_dir(dir.path()).unwrap();
        assert_eq!(report.documents.len(), 1);
        assert_eq!(report.warnings.len(), 1);
        let warning = report.warnings[0].to_string();
        assert!(warning.contains("latin1.txt"), "{warning}");
        assert!(warning.contains("not valid UTF-8"), "{warning}");
        assert!(warning.contains("offset 3"), "{warning}");
    }

    #[test]
    fn binary_text_file_is_skipped_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "good.txt",
            b"The Rhine flows into the North Sea.",
        );
        write(dir.path(), "nul.txt", &[0u8; 64]);
        write(dir.path(), "Makefile", b"all:\n");
        let report = load_dir(dir.path()).unwrap();
        let ids: Vec<&str> = report.documents.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["good.txt"]);
        let skipped: Vec<String> = report.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert!(
            skipped[0].contains("Makefile: no file extension"),
            "{skipped:?}"
        );
        assert!(
            skipped[1].contains("nul.txt: binary file, not text (a NUL byte at offset 0)"),
            "{skipped:?}"
        );

        // A folder of nothing but such a file is an error that says why.
        let only = tempfile::tempdir().unwrap();
        write(only.path(), "nul.txt", &[0u8; 64]);
        let err = load_dir(only.path()).unwrap_err();
        assert!(
            matches!(err, CorpusError::NothingReadable { count: 1, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("nul.txt: binary file"), "{err}");
    }

    #[test]
    fn missing_empty_and_unreadable_folders_are_errors_naming_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = load_dir(&missing).unwrap_err();
        assert!(matches!(err, CorpusError::NotFound { .. }));
        assert!(
            err.to_string().contains(&missing.display().to_string()),
            "{err}"
        );

        let empty = dir.path().join("empty");
        fs::create_dir(&empty).unwrap();
        write(&empty, "notes.pdf", b"%PDF");
        write(&empty, "sub/letter.docx", b"PK\x03\x04");
        let err = load_dir(&empty).unwrap_err();
        assert!(
            matches!(&err, CorpusError::Empty { skipped, .. } if skipped.len() == 2),
            "{err}"
        );
        // The error says what the folder does hold, and why none of it is read.
        let msg = err.to_string();
        assert!(msg.contains(&empty.display().to_string()), "{msg}");
        assert!(
            msg.ends_with(
                " (skipped 2 files: notes.pdf: unsupported file type .pdf; sub/letter.docx: \
                 unsupported file type .docx)"
            ),
            "{msg}"
        );

        let bad = dir.path().join("bad");
        write(&bad, "a.txt", b"\xff\xfe");
        write(&bad, "b.md", b"   \n");
        let err = load_dir(&bad).unwrap_err();
        assert!(
            matches!(err, CorpusError::NothingReadable { count: 2, .. }),
            "{err}"
        );
        let msg = err.to_string();
        assert!(msg.contains(&bad.display().to_string()), "{msg}");
        assert!(msg.contains("a.txt"), "{msg}");

        let file = dir.path().join("file.txt");
        fs::write(&file, "x").unwrap();
        assert!(matches!(
            load_dir(&file),
            Err(CorpusError::NotADirectory { .. })
        ));
    }
}

//! Loading a corpus folder: walks it recursively in a fixed order, reads `.txt`, `.md`,
//! `.html`/`.htm`, `.pdf`, `.docx`, `.odt` and `.epub` files into [`Document`]s, and records
//! (rather than fails on) every file it cannot use, unsupported types included, so the user sees
//! why a file is not searched. Called by `docqa index` and the eval runner before chunking.
//!
//! PDF and zipped-XML files are parsed in isolation ([`super::isolate`]): a parser panic or a
//! parse past its time limit skips that file with the reason. Their extracted text can be handed
//! back through an [`ExtractCache`] (the index keeps it), so an unchanged file is not parsed
//! again.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::boilerplate::{clean_text, document_paragraphs};
use super::isolate::{run_isolated, PARSE_TIME_LIMIT};
use super::{html, office, paged, pdf};
use super::{CorpusError, DocId};

/// How a file's text was obtained, which decides what chunk offsets point into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocKind {
    /// `.txt`: the file's text as is (decoded first when it is not UTF-8).
    Text,
    /// `.md`: the file's text as is, Markdown structure respected when cleaning.
    Markdown,
    /// `.html` / `.htm`: the visible text extracted from the page; offsets point into that text,
    /// not into the file's markup.
    Html,
    /// `.pdf`: the text layer, page by page, cleaned ([`paged`]); offsets point into that text.
    Pdf,
    /// `.docx`: Word paragraphs, headings as sections.
    Docx,
    /// `.odt`: OpenDocument text paragraphs, headings as sections.
    Odt,
    /// `.epub`: the chapters' visible text in reading order.
    Epub,
}

impl DocKind {
    /// The kind for a file name's extension (case-insensitive); `None` for files we ignore.
    pub fn from_path(path: &Path) -> Option<DocKind> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "txt" => Some(DocKind::Text),
            "md" | "markdown" => Some(DocKind::Markdown),
            "html" | "htm" => Some(DocKind::Html),
            "pdf" => Some(DocKind::Pdf),
            "docx" => Some(DocKind::Docx),
            "odt" => Some(DocKind::Odt),
            "epub" => Some(DocKind::Epub),
            _ => None,
        }
    }

    /// Whether the text comes from parsing a binary format, which is slow enough to cache and
    /// risky enough to isolate.
    pub fn is_extracted(self) -> bool {
        matches!(
            self,
            DocKind::Pdf | DocKind::Docx | DocKind::Odt | DocKind::Epub
        )
    }
}

/// A stretch of a document under one heading, from `start` to the next section's start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    /// Byte offset into [`Document::text`] of the heading.
    pub start: usize,
    /// The headings above and including this one, outermost first, joined by ` › `.
    pub path: String,
}

/// One loaded file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    pub id: DocId,
    /// Where the file was read from.
    pub path: PathBuf,
    /// The headline: the HTML `<title>` (the Word title, the EPUB's title), else the first
    /// heading-like line that is not page furniture, else the first body line cut to 100
    /// characters, else the file stem.
    pub title: String,
    /// The text chunk offsets index into: the file itself for UTF-8 `.txt`/`.md`, the decoded
    /// text for a `.txt` in another encoding, the extracted text for every other kind.
    pub text: String,
    /// SHA-256 of the file's bytes, lowercase hex: tells re-indexing which files changed.
    pub content_hash: String,
    pub kind: DocKind,
    /// Byte offset into `text` where each page starts (PDF only; empty for unpaged text).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub page_starts: Vec<usize>,
    /// Headings and where their sections start (Markdown, Word, OpenDocument, EPUB), in text order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<Section>,
    /// The encoding a `.txt` was decoded from when it was not UTF-8 (e.g. `windows-1252`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoded_from: Option<String>,
}

/// Version of the extraction and clean-up code: cached text from another version is extracted
/// again, so a fix to the clean-up reaches every indexed file.
pub const EXTRACTOR_VERSION: u32 = 1;

/// Text extracted from a binary document, as the index keeps it between runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extracted {
    pub doc: DocId,
    /// SHA-256 of the file the text was extracted from.
    pub content_hash: String,
    /// [`EXTRACTOR_VERSION`] at extraction.
    pub extractor: u32,
    pub title: String,
    pub text: String,
    #[serde(default)]
    pub page_starts: Vec<usize>,
    #[serde(default)]
    pub sections: Vec<Section>,
}

impl Extracted {
    /// What the index keeps of `doc`, when its text was extracted from a binary format.
    pub fn of(doc: &Document) -> Option<Extracted> {
        doc.kind.is_extracted().then(|| Extracted {
            doc: doc.id.clone(),
            content_hash: doc.content_hash.clone(),
            extractor: EXTRACTOR_VERSION,
            title: doc.title.clone(),
            text: doc.text.clone(),
            page_starts: doc.page_starts.clone(),
            sections: doc.sections.clone(),
        })
    }
}

/// Extracted texts from an earlier run, by document; a file whose bytes hash the same is not
/// parsed again. Read lazily: a corpus without PDF or zipped-XML files never reads it.
#[derive(Default)]
pub struct ExtractCache {
    by_doc: OnceCell<HashMap<DocId, Extracted>>,
    source: Option<Box<dyn Fn() -> Vec<Extracted>>>,
}

impl ExtractCache {
    pub fn new(entries: impl IntoIterator<Item = Extracted>) -> ExtractCache {
        let by_doc = OnceCell::new();
        let _ = by_doc.set(entries.into_iter().map(|e| (e.doc.clone(), e)).collect());
        ExtractCache {
            by_doc,
            source: None,
        }
    }

    /// A cache filled by `source` the first time a binary document is looked up.
    pub fn lazy(source: impl Fn() -> Vec<Extracted> + 'static) -> ExtractCache {
        ExtractCache {
            by_doc: OnceCell::new(),
            source: Some(Box::new(source)),
        }
    }

    fn get(&self, doc: &DocId, content_hash: &str) -> Option<&Extracted> {
        let by_doc = self.by_doc.get_or_init(|| {
            let entries = self.source.as_ref().map(|f| f()).unwrap_or_default();
            entries.into_iter().map(|e| (e.doc.clone(), e)).collect()
        });
        by_doc
            .get(doc)
            .filter(|e| e.content_hash == content_hash && e.extractor == EXTRACTOR_VERSION)
    }
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
    /// Documents whose text came from an [`ExtractCache`] rather than a parse.
    pub cached: usize,
    /// Files that were not loaded, with the reason: unsupported types (`.png`, `.xlsx`, ...)
    /// and supported ones that could not be used (binary, no text, no PDF text layer, a
    /// damaged or encrypted file, a parser crash or time-out). Sorted by path.
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

/// Loads every supported file under `dir` (see [`DocKind`]), recursively, in order of their
/// `/`-separated relative path. Hidden files and folders (`.git`) are ignored and symlinked folders
/// are not followed. Any other file, and a supported one that looks binary (holds a NUL byte),
/// cannot be read, cannot be parsed or holds no text, is skipped with a warning; it is an error
/// only when `dir` is missing, holds no supported file, or none of them could be used.
pub fn load_dir(dir: &Path) -> Result<LoadReport, CorpusError> {
    load_dir_cached(dir, &ExtractCache::default())
}

/// [`load_dir`], taking the text of PDF and zipped-XML files from `cache` when their bytes are
/// unchanged.
pub fn load_dir_cached(dir: &Path, cache: &ExtractCache) -> Result<LoadReport, CorpusError> {
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
    let mut cached = 0;
    for (id, path, kind) in files {
        match load_file(id, &path, kind, cache) {
            Ok((doc, from_cache)) => {
                cached += usize::from(from_cache);
                documents.push(doc)
            }
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
        cached,
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

/// Reads one file; the error is the reason it was skipped. Also says whether the text came
/// from `cache`.
fn load_file(
    id: DocId,
    path: &Path,
    kind: DocKind,
    cache: &ExtractCache,
) -> Result<(Document, bool), String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let content_hash = hex::encode(Sha256::digest(&bytes));
    if kind.is_extracted() {
        if let Some(hit) = cache.get(&id, &content_hash) {
            let doc = Document {
                id,
                path: path.to_path_buf(),
                title: hit.title.clone(),
                text: hit.text.clone(),
                content_hash,
                kind,
                page_starts: hit.page_starts.clone(),
                sections: hit.sections.clone(),
                decoded_from: None,
            };
            return Ok((doc, true));
        }
        return extract_file(id, path, kind, bytes, content_hash).map(|doc| (doc, false));
    }
    let (raw, decoded_from) = decode_text(bytes, kind)?;
    // Valid UTF-8 yet not text: a NUL byte does not occur in a text file.
    if let Some(at) = raw.find('\0') {
        return Err(format!("binary file, not text (a NUL byte at offset {at})"));
    }
    let (text, html_title) = match kind {
        DocKind::Html => {
            let page = html::extract(&raw);
            (page.text, page.title)
        }
        _ => (raw, None),
    };
    if text.trim().is_empty() {
        return Err("no text to index".to_string());
    }
    let sections = if kind == DocKind::Markdown {
        markdown_sections(&text)
    } else {
        Vec::new()
    };
    let title = html_title
        .or_else(|| clean_text(&text, kind == DocKind::Markdown).title)
        .unwrap_or_else(|| stem_name(&id));
    let doc = Document {
        id,
        path: path.to_path_buf(),
        title,
        text,
        content_hash,
        kind,
        page_starts: Vec::new(),
        sections,
        decoded_from,
    };
    Ok((doc, false))
}

fn stem_name(id: &DocId) -> String {
    id.stem().rsplit('/').next().unwrap_or("").to_string()
}

/// The file as text: UTF-8 as is; a `.txt` in another encoding decoded by detection
/// (`chardetng`, then `encoding_rs`), which is reported. A non-UTF-8 `.md` or `.html` stays
/// skipped: both formats are UTF-8 nearly always, so bad bytes there mean a damaged file.
fn decode_text(bytes: Vec<u8>, kind: DocKind) -> Result<(String, Option<String>), String> {
    let bytes = match String::from_utf8(bytes) {
        Ok(text) => return Ok((text, None)),
        Err(e) if kind == DocKind::Text => e.into_bytes(),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            return Err(format!(
                "not valid UTF-8 (invalid byte at offset {at}); convert it to UTF-8 to index it"
            ));
        }
    };
    // A NUL byte marks a binary file; UTF-16 (which has them) announces itself with a BOM.
    let (bom_encoding, _) = encoding_rs::Encoding::for_bom(&bytes).unzip();
    if bom_encoding.is_none() {
        if let Some(at) = bytes.iter().position(|&b| b == 0) {
            return Err(format!("binary file, not text (a NUL byte at offset {at})"));
        }
    }
    let encoding = bom_encoding.unwrap_or_else(|| {
        let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
        detector.feed(&bytes, true);
        detector.guess(None, chardetng::Utf8Detection::Allow)
    });
    let (text, used, had_errors) = encoding.decode(&bytes);
    if had_errors {
        return Err(format!(
            "not valid UTF-8, and not valid {} either (its likeliest encoding); convert it to \
             UTF-8 to index it",
            used.name()
        ));
    }
    Ok((text.into_owned(), Some(used.name().to_string())))
}

/// Markdown ATX headings (`#` to `######`, outside fenced code) as sections.
fn markdown_sections(text: &str) -> Vec<Section> {
    let mut sections = Vec::new();
    let mut open: Vec<(usize, String)> = Vec::new();
    let mut in_fence = false;
    let mut offset = 0;
    for raw in text.split_inclusive('\n') {
        let start = offset;
        offset += raw.len();
        let line = raw.trim();
        if line.starts_with("```") || line.starts_with("~~~") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        let level = line.bytes().take_while(|&b| b == b'#').count();
        let rest = &line[level..];
        if !(1..=6).contains(&level) || !rest.starts_with(char::is_whitespace) {
            continue;
        }
        let heading = rest.trim().trim_end_matches('#').trim();
        if heading.is_empty() {
            continue;
        }
        open.retain(|(l, _)| *l < level);
        open.push((level, heading.to_string()));
        let path: Vec<&str> = open.iter().map(|(_, h)| h.as_str()).collect();
        sections.push(Section {
            start: start + (raw.len() - raw.trim_start().len()),
            path: path.join(" › "),
        });
    }
    sections
}

/// A zipped-XML format's parser.
type Parser = fn(&[u8]) -> Result<office::Structured, String>;

/// Parses a PDF or zipped-XML file in isolation and cleans its text.
fn extract_file(
    id: DocId,
    path: &Path,
    kind: DocKind,
    bytes: Vec<u8>,
    content_hash: String,
) -> Result<Document, String> {
    let (text, page_starts, sections, title) = match kind {
        DocKind::Pdf => {
            let (pages, title) = run_isolated("PDF", PARSE_TIME_LIMIT, move || {
                let title = pdf::metadata_title(&bytes);
                pdf::extract_pages(&bytes).map(|pages| (pages, title))
            })?;
            if pdf::has_no_text_layer(&pages) {
                return Err(format!(
                    "no text layer ({} pages of images only: a scanned PDF; docqa does no OCR)",
                    pages.len()
                ));
            }
            let joined = paged::join_pages(&pages);
            tracing::debug!(
                file = %path.display(),
                pages = pages.len(),
                furniture = joined.furniture_lines,
                rejoined = joined.rejoined_words,
                "PDF text extracted"
            );
            (joined.text, joined.page_starts, Vec::new(), title)
        }
        DocKind::Docx | DocKind::Odt | DocKind::Epub => {
            let (what, parse): (&str, Parser) = match kind {
                DocKind::Docx => ("DOCX", office::docx),
                DocKind::Odt => ("ODT", office::odt),
                _ => ("EPUB", office::epub),
            };
            let s = run_isolated(what, PARSE_TIME_LIMIT, move || parse(&bytes))?;
            (s.text, Vec::new(), s.sections, s.title)
        }
        DocKind::Text | DocKind::Markdown | DocKind::Html => {
            unreachable!("only extracted kinds are parsed here")
        }
    };
    if text.trim().is_empty() {
        return Err("no text to index".to_string());
    }
    let title = title
        .or_else(|| document_paragraphs(&text, &[], &[]).title)
        .unwrap_or_else(|| stem_name(&id));
    Ok(Document {
        id,
        path: path.to_path_buf(),
        title,
        text,
        content_hash,
        kind,
        page_starts,
        sections,
        decoded_from: None,
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
    fn markdown_headings_become_the_titles_of_their_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let body = "Some prose that is long enough to be a paragraph of its own here.";
        let text = format!(
            "# Guide\n\n{body}\n\n## Setup\n\n{body}\n\n```\n# not a heading\n```\n\n\
             ### Install\n\n{body}\n\n## Usage\n\n{body}\n"
        );
        write(dir.path(), "guide.md", text.as_bytes());
        let docs = load_dir(dir.path()).unwrap().documents;
        let paths: Vec<&str> = docs[0].sections.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "Guide",
                "Guide › Setup",
                "Guide › Setup › Install",
                "Guide › Usage"
            ]
        );
        assert_eq!(docs[0].sections[1].start, text.find("## Setup").unwrap());
        let chunks = super::super::chunk_documents(
            &docs,
            &super::super::ChunkerConfig {
                max_tokens: 24,
                overlap_tokens: 0,
            },
        )
        .unwrap();
        let titles: Vec<&str> = chunks.iter().map(|c| c.title.as_str()).collect();
        assert!(titles.contains(&"Guide › Setup › Install"), "{titles:?}");
        assert!(titles.contains(&"Guide › Usage"), "{titles:?}");
    }

    #[test]
    fn legacy_encoded_text_is_decoded_and_said_so() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "good.txt",
            b"A perfectly ordinary sentence about rivers.",
        );
        write(
            dir.path(),
            "latin1.txt",
            b"Le caf\xe9 au lait co\xfbte deux euros \xe0 la gare, d\xe9j\xe0 servi tr\xe8s chaud.",
        );
        write(
            dir.path(),
            "cyrillic.txt",
            &encoding_rs::WINDOWS_1251
                .encode(
                    "Москва — столица России, крупнейший по численности населения город страны.",
                )
                .0,
        );
        // Not UTF-8 in a Markdown file: damage, still skipped with the offset.
        write(dir.path(), "notes.md", b"# Notes\n\ncaf\xe9 au lait");
        let report = load_dir(dir.path()).unwrap();
        let docs: Vec<(&str, Option<&str>)> = report
            .documents
            .iter()
            .map(|d| (d.id.as_str(), d.decoded_from.as_deref()))
            .collect();
        assert_eq!(
            docs,
            [
                ("cyrillic.txt", Some("windows-1251")),
                ("good.txt", None),
                ("latin1.txt", Some("windows-1252"))
            ]
        );
        assert!(report.documents[2]
            .text
            .starts_with("Le café au lait coûte"));
        assert!(report.documents[0].text.starts_with("Москва — столица"));
        assert_eq!(report.warnings.len(), 1);
        let warning = report.warnings[0].to_string();
        assert!(warning.contains("notes.md"), "{warning}");
        assert!(warning.contains("not valid UTF-8"), "{warning}");
        assert!(warning.contains("offset 12"), "{warning}");
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
        write(&empty, "sheet.xlsx", b"PK\x03\x04");
        write(&empty, "sub/photo.jpg", b"\xff\xd8");
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
                " (skipped 2 files: sheet.xlsx: unsupported file type .xlsx; sub/photo.jpg: \
                 unsupported file type .jpg)"
            ),
            "{msg}"
        );

        // Damaged PDF and Word files are skipped with their parser's reason.
        let damaged = dir.path().join("damaged");
        write(&damaged, "notes.pdf", b"%PDF");
        write(&damaged, "sub/letter.docx", b"PK\x03\x04");
        let msg = load_dir(&damaged).unwrap_err().to_string();
        assert!(msg.contains("notes.pdf: not a readable PDF"), "{msg}");
        assert!(
            msg.contains("sub/letter.docx: not a readable DOCX"),
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

//! The corpus stage: loads a folder of `.txt`, `.md`, `.html`, `.pdf`, `.docx`, `.odt` and
//! `.epub` files, removes web boilerplate (and a PDF's running headers and page numbers), and
//! cuts the text into [`Chunk`]s with exact byte spans, their page (PDF) and stable
//! [`ChunkId`]s. Called by `docqa index` and the eval runner; everything downstream (BM25,
//! embeddings, citations) works on its chunks.
//!
//! Offsets: for UTF-8 `.txt` and `.md` a chunk's `start..end` are byte offsets into the file as
//! stored; for every other kind they index the text extracted (or decoded) from the file
//! ([`Document::text`]), since markup and page descriptions have no contiguous span for a
//! paragraph of text. In every case `&document.text[chunk.start..chunk.end] == chunk.text`.
//!
//! Titles: a document's headline (its first heading-like line that is not page furniture, or the
//! HTML `<title>`) becomes [`Document::title`] and every chunk's `title`, and is left out of the
//! chunk text. Kept in the first chunk it would make that chunk match every query naming the
//! topic, while the other chunks would lack it; carried as a field, the embedding and prompt
//! stages can add it to any chunk they like.

mod boilerplate;
mod chunk;
mod html;
mod ids;
mod isolate;
mod load;
mod office;
mod paged;
mod pdf;
mod text;

use std::io;
use std::path::{Path, PathBuf};

pub use boilerplate::{
    boilerplate_reasons, clean_text, document_paragraphs, is_boilerplate, BodyParagraph,
    BoilerplateReason, CleanText, Removed,
};
pub use chunk::{chunk_document, chunk_documents, Chunk, ChunkerConfig};
pub use html::{extract as extract_html, HtmlText};
pub use ids::{ChunkId, ChunkIdParseError, DocId};
pub use isolate::{run_isolated, PARSE_TIME_LIMIT};
pub use load::{
    load_dir, load_dir_cached, DocKind, Document, ExtractCache, Extracted, LoadReport, LoadWarning,
    Section, EXTRACTOR_VERSION,
};
pub use paged::page_of;

/// The file types docqa reads, as the error messages list them.
pub const SUPPORTED_TYPES: &str = ".txt, .md, .html, .pdf, .docx, .odt or .epub";

/// Each page's raw text layer, as the loader reads it before clean-up: for the benchmark and for
/// checking extraction against another tool.
pub fn pdf_pages(bytes: &[u8]) -> Result<Vec<String>, String> {
    pdf::extract_pages(bytes)
}

/// Estimated model tokens in `text`: Unicode words × 1.3, rounded up. This is the measure
/// [`ChunkerConfig`] limits are in.
pub fn estimate_tokens(text: &str) -> usize {
    text::estimate_tokens(text)
}

/// Errors of the corpus stage; each names the folder involved.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("corpus folder {} does not exist", dir.display())]
    NotFound { dir: PathBuf },
    #[error("corpus path {} is a file, not a folder", dir.display())]
    NotADirectory { dir: PathBuf },
    #[error("cannot read corpus folder {}: {source}", dir.display())]
    ReadDir {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "corpus folder {} holds no {SUPPORTED_TYPES} files{}",
        dir.display(),
        skipped_list(dir, skipped)
    )]
    Empty {
        dir: PathBuf,
        /// The files it does hold (unsupported types), each with the reason.
        skipped: Vec<LoadWarning>,
    },
    #[error(
        "none of the {count} {SUPPORTED_TYPES} files in corpus folder {} could be loaded{}",
        dir.display(),
        skipped_list(dir, skipped)
    )]
    NothingReadable {
        dir: PathBuf,
        count: usize,
        /// Every file that was skipped, with the reason.
        skipped: Vec<LoadWarning>,
    },
    #[error("invalid chunker settings: {0}")]
    Config(String),
}

/// ` (skipped 2 files: a.pdf: unsupported ...; b.txt: ...)`, paths relative to `dir`, the
/// first few only; empty when nothing was skipped.
fn skipped_list(dir: &Path, skipped: &[LoadWarning]) -> String {
    const SHOWN: usize = 8;
    if skipped.is_empty() {
        return String::new();
    }
    let shown: Vec<String> = skipped
        .iter()
        .take(SHOWN)
        .map(|w| {
            let path = w.path.strip_prefix(dir).unwrap_or(&w.path);
            format!("{}: {}", path.display(), w.reason)
        })
        .collect();
    let files = if skipped.len() == 1 { "file" } else { "files" };
    let mut out = format!(" (skipped {} {files}: {}", skipped.len(), shown.join("; "));
    if skipped.len() > SHOWN {
        out.push_str(&format!("; and {} more", skipped.len() - SHOWN));
    }
    out.push(')');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn seeds() -> Vec<Chunk> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
        let report = load_dir(&dir).unwrap();
        assert_eq!(report.documents.len(), 5);
        assert!(report.warnings.is_empty());
        chunk_documents(&report.documents, &ChunkerConfig::default()).unwrap()
    }

    #[test]
    fn seed_chunks_carry_no_boilerplate() {
        let chunks = seeds();
        assert!(chunks.len() >= 10, "{} chunks", chunks.len());
        for c in &chunks {
            let lower = c.text.to_lowercase();
            for banned in [
                "newsletter",
                "subscribe",
                "all rights reserved",
                "©",
                "{mosads}",
            ] {
                assert!(
                    !lower.contains(banned),
                    "{} contains {banned:?}:\n{}",
                    c.id,
                    c.text
                );
            }
            for line in c.text.lines() {
                assert!(!line.starts_with("Previous"), "{}: {line}", c.id);
                assert!(!line.starts_with("Next "), "{}: {line}", c.id);
                assert!(!line.contains('@'), "{}: {line}", c.id);
                assert!(!line.contains("[email"), "{}: {line}", c.id);
            }
            assert!(!c.text.contains("Text Size") && !c.text.contains("Join us on social"));
        }
    }

    #[test]
    fn seed_titles_are_headlines() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
        let report = load_dir(&dir).unwrap();
        let titles: Vec<&str> = report.documents.iter().map(|d| d.title.as_str()).collect();
        assert_eq!(
            titles[0],
            "S. Korea, US agree to improve cyber cooperation, regularize cyber drills"
        );
        assert_eq!(
            titles[1],
            "Regular Implementation of Korea-US Cyber Defense Exercises"
        );
        assert_eq!(titles[3], "US, South Korea to team up on cyber tech");
        assert_eq!(
            titles[4],
            "U.S. and South Korea to strengthen cybersecurity coordination"
        );
        // The second file has no headline: its first sentence is the title, cut short.
        assert!(titles[2].starts_with("The South Korean military is moving ahead"));
        assert!(titles[2].ends_with('…'));
    }

    #[test]
    fn seed_chunks_keep_the_articles() {
        let chunks = seeds();
        let all: String = chunks
            .iter()
            .map(|c| c.text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        for fact in [
            "agreed to develop cybersecurity cooperation",
            "South Korea participated for the first time last October",
            "The Readable reached out to the U.S. Cyber Command",
            "Both South Korea and the U.S. have been in the digital crosshairs",
            "Gardner is chairman of the Senate Foreign Relations Subcommittee",
        ] {
            assert!(all.contains(fact), "lost {fact:?}");
        }
        let ids: Vec<String> = chunks.iter().map(|c| c.id.to_string()).collect();
        assert_eq!(ids[0], "000_b48ef8e451107e2d#0");
    }

    #[test]
    fn html_chunks_index_the_extracted_text() {
        let dir = tempfile::tempdir().unwrap();
        let page = "<html><head><title>Rhine plan</title></head><body>\
            <nav><a href='/'>Home</a> <a href='/world'>World</a></nav>\
            <h1>Ministers agree on river plan</h1>\
            <p>The ministers agreed on Monday to clean up the Rhine by 2030.</p>\
            <p>Costs will be shared according to each country's stretch of the river.</p>\
            <p>Share on Facebook</p><footer>&copy; 2024 Example Daily</footer></body></html>";
        std::fs::write(dir.path().join("page.html"), page).unwrap();
        let docs = load_dir(dir.path()).unwrap().documents;
        assert_eq!(docs[0].title, "Rhine plan");
        let chunks = chunk_documents(&docs, &ChunkerConfig::default()).unwrap();
        assert_eq!(chunks.len(), 1);
        let c = &chunks[0];
        assert_eq!(&docs[0].text[c.start..c.end], c.text);
        assert_eq!(
            c.text,
            "The ministers agreed on Monday to clean up the Rhine by 2030.\n\n\
             Costs will be shared according to each country's stretch of the river."
        );
        assert_eq!(c.title, "Rhine plan");
    }
}

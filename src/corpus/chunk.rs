//! The chunker: packs a document's body paragraphs (boilerplate already removed) into chunks of
//! at most `max_tokens` estimated tokens, with exact byte spans and stable IDs. Called by
//! `docqa index` and the eval runner after loading.
//!
//! Packing: whole paragraphs go into a chunk while they fit; a paragraph that does not fit starts
//! the next chunk, unless it is longer than `max_tokens` on its own, in which case it is split at
//! sentence ends (and a single sentence longer than that at word boundaries). Each chunk after the
//! first of a run starts with the last whole sentences of the previous chunk, up to
//! `overlap_tokens`, so a fact straddling the cut is whole in one of them. A chunk never spans
//! removed text: paragraphs separated by boilerplate (or the headline) are in different runs.

use std::collections::HashMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use unicode_segmentation::UnicodeSegmentation;

use super::boilerplate::{clean_text, document_paragraphs};
use super::text::{is_closer, is_terminal, tokens_for_words, word_count};
use super::{ChunkId, CorpusError, DocId, DocKind, Document};

/// Chunk size settings; recorded in the index header so a query uses the index's own settings.
/// Tokens are estimated as Unicode words × 1.3 (see [`estimate_tokens`](super::estimate_tokens)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChunkerConfig {
    /// Upper bound on a chunk's estimated tokens.
    pub max_tokens: usize,
    /// Upper bound on the estimated tokens repeated from the previous chunk.
    pub overlap_tokens: usize,
}

impl Default for ChunkerConfig {
    /// 160 tokens keeps a chunk well inside small BERT encoders' 256/512-token windows even when
    /// the estimate is low, and near the size at which BM25 and embeddings retrieve best here.
    fn default() -> ChunkerConfig {
        ChunkerConfig {
            max_tokens: 160,
            overlap_tokens: 32,
        }
    }
}

impl ChunkerConfig {
    /// Smallest `max_tokens` accepted: below it every sentence would be cut at word boundaries.
    pub const MIN_MAX_TOKENS: usize = 16;

    pub fn validate(&self) -> Result<(), CorpusError> {
        if self.max_tokens < Self::MIN_MAX_TOKENS {
            return Err(CorpusError::Config(format!(
                "max_tokens is {}, it must be at least {}",
                self.max_tokens,
                Self::MIN_MAX_TOKENS
            )));
        }
        if self.overlap_tokens >= self.max_tokens {
            return Err(CorpusError::Config(format!(
                "overlap_tokens ({}) must be smaller than max_tokens ({})",
                self.overlap_tokens, self.max_tokens
            )));
        }
        Ok(())
    }
}

/// A retrievable piece of a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    pub id: ChunkId,
    pub doc: DocId,
    /// Byte offsets into [`Document::text`]: the file's bytes for `.txt`/`.md`, the extracted
    /// visible text for HTML. `&doc.text[start..end] == text` always.
    pub start: usize,
    pub end: usize,
    pub text: String,
    /// The document's title (see [`Document::title`]), then the heading path of the section the
    /// chunk starts in, when the document has headings: `Guide › Setup › Install`.
    pub title: String,
    /// The 1-based page the chunk starts on, for paged documents (PDF).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
}

/// `title`, then the heading path of the section holding byte `offset`; the title is not
/// repeated when the outermost heading restates it.
fn section_title(doc: &Document, offset: usize) -> String {
    let at = doc.sections.partition_point(|s| s.start <= offset);
    let Some(section) = at.checked_sub(1).map(|i| &doc.sections[i]) else {
        return doc.title.clone();
    };
    let path = match section.path.strip_prefix(doc.title.as_str()) {
        Some("") => return doc.title.clone(),
        Some(rest) if rest.starts_with(" › ") => &rest[" › ".len()..],
        _ => section.path.as_str(),
    };
    if doc.title.is_empty() {
        path.to_string()
    } else {
        format!("{} › {path}", doc.title)
    }
}

/// Chunks every document. Chunk IDs use the document's path without extension; when two files
/// differ only in extension (`a.txt`, `a.md`) both use their full path instead, so IDs stay unique.
pub fn chunk_documents(
    docs: &[Document],
    config: &ChunkerConfig,
) -> Result<Vec<Chunk>, CorpusError> {
    config.validate()?;
    let mut stems: HashMap<&str, usize> = HashMap::new();
    for doc in docs {
        *stems.entry(doc.id.stem()).or_default() += 1;
    }
    let mut chunks = Vec::new();
    for doc in docs {
        let stem = if stems[doc.id.stem()] > 1 {
            doc.id.as_str()
        } else {
            doc.id.stem()
        };
        chunks.extend(chunk_with_stem(doc, stem, config));
    }
    Ok(chunks)
}

/// Chunks one document, with IDs `{stem}#{ordinal}` where the stem is the document's path
/// without extension. An invalid `config` is clamped (see [`ChunkerConfig::validate`]).
pub fn chunk_document(doc: &Document, config: &ChunkerConfig) -> Vec<Chunk> {
    chunk_with_stem(doc, doc.id.stem(), config)
}

fn chunk_with_stem(doc: &Document, stem: &str, config: &ChunkerConfig) -> Vec<Chunk> {
    let max_tokens = config.max_tokens.max(ChunkerConfig::MIN_MAX_TOKENS);
    let overlap_tokens = config.overlap_tokens.min(max_tokens - 1);
    let clean = if doc.kind.is_extracted() {
        {
            let sections: Vec<usize> = doc.sections.iter().map(|s| s.start).collect();
            document_paragraphs(&doc.text, &doc.page_starts, &sections)
        }
    } else {
        clean_text(&doc.text, doc.kind == DocKind::Markdown)
    };
    let units = sentence_units(&doc.text, &clean.paragraphs);
    pack(&doc.text, &units, max_tokens, overlap_tokens)
        .into_iter()
        .enumerate()
        .map(|(ordinal, span)| Chunk {
            id: ChunkId::new(stem, ordinal as u32),
            doc: doc.id.clone(),
            start: span.start,
            end: span.end,
            title: section_title(doc, span.start),
            page: super::page_of(&doc.page_starts, span.start),
            text: doc.text[span].to_string(),
        })
        .collect()
}

/// A sentence of the body.
#[derive(Debug, Clone)]
struct Unit {
    span: Range<usize>,
    words: usize,
    paragraph: usize,
    run: usize,
}

fn sentence_units(text: &str, paragraphs: &[super::BodyParagraph]) -> Vec<Unit> {
    let mut units = Vec::new();
    for (index, p) in paragraphs.iter().enumerate() {
        for s in sentence_spans(&text[p.span.clone()]) {
            let span = p.span.start + s.start..p.span.start + s.end;
            units.push(Unit {
                words: word_count(&text[span.clone()]),
                span,
                paragraph: index,
                run: p.run,
            });
        }
    }
    units
}

/// Greedy packing over sentence units; returns chunk spans in text order.
fn pack(text: &str, units: &[Unit], max_tokens: usize, overlap_tokens: usize) -> Vec<Range<usize>> {
    let fits = |words: usize, limit: usize| tokens_for_words(words) <= limit;
    let paragraph_words = {
        let mut words: HashMap<usize, usize> = HashMap::new();
        for u in units {
            *words.entry(u.paragraph).or_default() += u.words;
        }
        words
    };

    let mut spans = Vec::new();
    // Units of the previous chunk, for overlap; `None` after a run boundary or a forced split.
    let mut previous: Option<Range<usize>> = None;
    let mut i = 0;
    while i < units.len() {
        let run = units[i].run;
        let mut first = i;
        if let Some(prev) = previous
            .as_ref()
            .filter(|p| p.end == i && units[p.start].run == run)
        {
            // Whole sentences from the end of the previous chunk, never all of it.
            let mut words = 0;
            while first > prev.start + 1 && fits(words + units[first - 1].words, overlap_tokens) {
                words += units[first - 1].words;
                first -= 1;
            }
        }

        let fill = |from: usize| {
            let mut words: usize = units[from..i].iter().map(|u| u.words).sum();
            let mut end = i;
            while end < units.len()
                && units[end].run == run
                && fits(words + units[end].words, max_tokens)
            {
                words += units[end].words;
                end += 1;
            }
            end
        };
        let mut end;
        loop {
            end = fill(first);
            if end == i && first < i {
                // The overlap leaves no room for the next sentence: start clean.
                first = i;
                continue;
            }
            // Cutting inside a paragraph that fits in a chunk of its own: cut before it when that
            // leaves new text in this chunk, else give up overlap until the paragraph fits whole.
            let cut_inside = end > i
                && end < units.len()
                && units[end].run == run
                && units[end].paragraph == units[end - 1].paragraph;
            if cut_inside {
                let paragraph = units[end - 1].paragraph;
                if fits(paragraph_words[&paragraph], max_tokens) {
                    let paragraph_start = units[..end]
                        .iter()
                        .rposition(|u| u.paragraph != paragraph)
                        .map_or(0, |p| p + 1);
                    if paragraph_start > i {
                        end = paragraph_start;
                    } else if first < i {
                        first += 1;
                        continue;
                    }
                }
            }
            break;
        }
        if end == i {
            // One sentence longer than a chunk: cut it at word boundaries.
            spans.extend(split_words(text, &units[i].span, max_tokens));
            previous = None;
            i += 1;
            continue;
        }

        spans.push(units[first].span.start..units[end - 1].span.end);
        previous = Some(first..end);
        i = end;
    }
    spans
}

/// Splits an over-long sentence into pieces of at most `max_tokens`, cutting between words.
fn split_words(text: &str, span: &Range<usize>, max_tokens: usize) -> Vec<Range<usize>> {
    let sentence = &text[span.clone()];
    let mut pieces = Vec::new();
    let mut piece_start: Option<usize> = None;
    let mut piece_end = 0;
    let mut words = 0;
    for (offset, segment) in sentence.split_word_bound_indices() {
        let is_word = segment.chars().any(char::is_alphanumeric);
        if is_word && words > 0 && tokens_for_words(words + 1) > max_tokens {
            if let Some(start) = piece_start.take() {
                pieces.push(span.start + start..span.start + piece_end);
            }
            words = 0;
        }
        if segment.trim().is_empty() {
            continue;
        }
        piece_start.get_or_insert(offset);
        piece_end = offset + segment.len();
        if is_word {
            words += 1;
        }
    }
    if let Some(start) = piece_start {
        pieces.push(span.start + start..span.start + piece_end);
    }
    pieces
}

/// Abbreviations whose period does not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "gen", "col", "lt", "sgt", "capt",
    "cmdr", "adm", "gov", "sen", "rep", "rev", "hon", "pres", "vs", "etc", "al", "inc", "ltd",
    "co", "corp", "no", "nos", "fig", "figs", "vol", "pp", "ed", "eds", "approx", "ca", "cf",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "dept",
    "univ", "est", "op", "ch", "sec",
];

/// Whether the period that follows `before` belongs to an abbreviation or initial.
fn is_abbreviation(before: &str) -> bool {
    let word = before
        .rsplit(|c: char| c.is_whitespace() || "([{\"'“‘".contains(c))
        .next()
        .unwrap_or("");
    let mut chars = word.chars();
    match (chars.next(), chars.next()) {
        (None, _) => false,
        // Initials: "J. Smith", "S. Korea".
        (Some(c), None) => c.is_alphabetic(),
        // "U.S.", "e.g.", "a.m."
        _ if word.contains('.') => true,
        _ => ABBREVIATIONS.contains(&word.to_lowercase().as_str()),
    }
}

/// Sentence spans in `text`, trimmed of surrounding whitespace. A sentence ends at `.`, `!`, `?`
/// (with any closing quotes or brackets) followed by whitespace and a character that is not a
/// lowercase letter, unless the period ends an abbreviation or initial; CJK full stops end a
/// sentence without a following space.
pub(crate) fn sentence_spans(text: &str) -> Vec<Range<usize>> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut spans = Vec::new();
    let mut start = 0;
    let push = |spans: &mut Vec<Range<usize>>, from: usize, to: usize| {
        let piece = &text[from..to];
        let lead = piece.len() - piece.trim_start().len();
        let trimmed = piece.trim();
        if !trimmed.is_empty() {
            spans.push(from + lead..from + lead + trimmed.len());
        }
    };
    let mut k = 0;
    while k < chars.len() {
        let (pos, c) = chars[k];
        if !is_terminal(c) {
            k += 1;
            continue;
        }
        let mut m = k + 1;
        while m < chars.len() && (is_terminal(chars[m].1) || is_closer(chars[m].1)) {
            m += 1;
        }
        let end = chars.get(m).map_or(text.len(), |&(p, _)| p);
        let boundary = match chars.get(m) {
            None => true,
            Some(_) if matches!(c, '。' | '！' | '？' | '｡') => true,
            Some(&(_, next)) if !next.is_whitespace() => false,
            Some(_) => {
                let following = chars[m..]
                    .iter()
                    .map(|&(_, ch)| ch)
                    .find(|ch| !ch.is_whitespace());
                let starts_new = following.is_none_or(|ch| !ch.is_lowercase());
                starts_new && !(c == '.' && is_abbreviation(&text[..pos]))
            }
        };
        if boundary {
            push(&mut spans, start, end);
            start = end;
        }
        k = m;
    }
    push(&mut spans, start, text.len());
    spans
}

#[cfg(test)]
mod tests {
    use super::super::estimate_tokens;
    use super::*;
    use std::path::PathBuf;

    fn doc(id: &str, text: &str) -> Document {
        Document {
            id: DocId::new(id),
            path: PathBuf::from(id),
            title: "T".to_string(),
            text: text.to_string(),
            content_hash: String::new(),
            kind: DocKind::Text,
            page_starts: Vec::new(),
            sections: Vec::new(),
            decoded_from: None,
        }
    }

    #[test]
    fn a_pdf_chunk_never_spans_two_pages() {
        let text = format!("{}\n\n{}", paragraph("A", 3), paragraph("B", 3));
        let mut d = doc("m.pdf", &text);
        d.kind = DocKind::Pdf;
        d.page_starts = vec![0, text.find("B0").unwrap()];
        let chunks = chunk_document(&d, &ChunkerConfig::default());
        let shown: Vec<(Option<u32>, &str)> =
            chunks.iter().map(|c| (c.page, &c.text[..2])).collect();
        assert_eq!(shown, [(Some(1), "A0"), (Some(2), "B0")]);
        // Without pages the two short paragraphs share a chunk.
        d.page_starts.clear();
        assert_eq!(chunk_document(&d, &ChunkerConfig::default()).len(), 1);
    }

    #[test]
    fn chunks_carry_their_page_and_heading_path() {
        let mut d = doc(
            "m.pdf",
            &format!("{}\n\n{}", paragraph("A", 12), paragraph("B", 12)),
        );
        let b_start = d.text.find("B0").unwrap();
        d.page_starts = vec![0, b_start - 1];
        d.sections = vec![
            super::super::Section {
                start: 0,
                path: "T › Setup".into(),
            },
            super::super::Section {
                start: b_start,
                path: "Usage".into(),
            },
        ];
        let chunks = chunk_document(&d, &ChunkerConfig::default());
        assert_eq!(chunks.len(), 2, "{chunks:#?}");
        assert_eq!(chunks[0].page, Some(1));
        assert_eq!(chunks[0].title, "T › Setup");
        assert_eq!(chunks[1].page, Some(2));
        assert_eq!(chunks[1].title, "T › Usage");
        d.page_starts.clear();
        d.sections.clear();
        let plain = chunk_document(&d, &ChunkerConfig::default());
        assert_eq!(plain[0].page, None);
        assert_eq!(plain[0].title, "T");
        // A chunk without a page serialises as before, so indexes of text files read the same.
        assert!(!serde_json::to_string(&plain[0]).unwrap().contains("page"));
    }

    fn sentences(text: &str) -> Vec<&str> {
        sentence_spans(text).into_iter().map(|s| &text[s]).collect()
    }

    #[test]
    fn splits_sentences_but_not_abbreviations() {
        assert_eq!(
            sentences("Gen. Paul Nakasone met Lee. The U.S. Cyber Command agreed!  \"Good,\" he said. Next"),
            ["Gen. Paul Nakasone met Lee.", "The U.S. Cyber Command agreed!", "\"Good,\" he said.", "Next"]
        );
        assert_eq!(
            sentences("It cost 3.5 million. e.g. this stays"),
            ["It cost 3.5 million. e.g. this stays"]
        );
        assert_eq!(
            sentences("会議が開かれた。合意した。"),
            ["会議が開かれた。", "合意した。"]
        );
        assert_eq!(
            sentences("훈련을 실시했다. 국방부가 밝혔다."),
            ["훈련을 실시했다.", "국방부가 밝혔다."]
        );
        assert!(sentences("  ").is_empty());
    }

    /// Paragraphs of known sizes: `n` sentences of 10 words (13 tokens) each, tagged `{tag}{n}`
    /// (upper case, so that each starts a new sentence).
    fn paragraph(tag: &str, sentences: usize) -> String {
        (0..sentences)
            .map(|s| format!("{tag}{s} one two three four five six seven eight nine."))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn spans_are_exact_and_within_budget() {
        let text = format!(
            "Headline of the story\n\n{}\n\n{}\r\n\r\n{}\n\n  {}  \n",
            paragraph("A", 3),
            paragraph("B", 20),
            "Ünïcödé wörds — «quoted» text ends here. Ok, and a second sentence follows it.",
            paragraph("C", 2)
        );
        let config = ChunkerConfig::default();
        let chunks = chunk_document(&doc("x.txt", &text), &config);
        assert!(chunks.len() >= 3, "{chunks:#?}");
        for c in &chunks {
            assert_eq!(&text[c.start..c.end], c.text, "{}", c.id);
            assert_eq!(c.text.trim(), c.text);
            assert!(
                estimate_tokens(&c.text) <= config.max_tokens,
                "{} too long",
                c.id
            );
            assert!(
                !c.text.contains("Headline"),
                "headline is the title, not body"
            );
        }
        // Paragraph A (39 tokens) is not split; paragraph B (260 tokens) is split at sentences.
        assert!(chunks[0].text.starts_with("A0") && chunks[0].text.contains("A2"));
        assert!(chunks
            .iter()
            .all(|c| !c.text.ends_with("one") && c.text.ends_with('.')));
    }

    #[test]
    fn overlap_repeats_whole_sentences_of_the_previous_chunk() {
        let text = paragraph("S", 30);
        let config = ChunkerConfig {
            max_tokens: 65,
            overlap_tokens: 26,
        };
        let chunks = chunk_document(&doc("x.txt", &text), &config);
        assert!(chunks.len() > 3);
        // 65 tokens hold 5 sentences; 26 tokens of overlap are the last 2.
        assert!(chunks[0].text.starts_with("S0 ") && chunks[0].text.ends_with("nine."));
        assert!(chunks[1].text.starts_with("S3 "), "{}", chunks[1].text);
        for pair in chunks.windows(2) {
            assert!(pair[1].start < pair[0].end, "chunks overlap");
            assert!(pair[1].start > pair[0].start, "chunks advance");
        }
        assert_eq!(chunks.last().unwrap().end, text.len());
    }

    #[test]
    fn overlap_stays_within_a_run() {
        let text = format!("{}\n\nClose\n\n{}", paragraph("A", 4), paragraph("B", 4));
        let chunks = chunk_document(
            &doc("x.txt", &text),
            &ChunkerConfig {
                max_tokens: 60,
                overlap_tokens: 20,
            },
        );
        assert!(chunks.iter().all(|c| !c.text.contains("Close")));
        let b_start = text.find("B0").unwrap();
        let first_b = chunks.iter().find(|c| c.end > b_start).unwrap();
        assert_eq!(first_b.start, b_start, "no overlap across removed text");
    }

    #[test]
    fn an_over_long_sentence_is_cut_at_words() {
        let text = vec!["word"; 300].join(" ") + ".";
        let chunks = chunk_document(&doc("x.txt", &text), &ChunkerConfig::default());
        assert_eq!(chunks.len(), 3);
        for c in &chunks {
            assert_eq!(&text[c.start..c.end], c.text);
            assert!(estimate_tokens(&c.text) <= 160);
        }
        assert_eq!(chunks[2].end, text.len());
    }

    #[test]
    fn ids_are_stable_and_unique() {
        let text = format!("{}\n\n{}", paragraph("A", 12), paragraph("B", 12));
        let docs = [
            doc("000_b48ef8e451107e2d.txt", &text),
            doc("sub/other.txt", &text),
        ];
        let first = chunk_documents(&docs, &ChunkerConfig::default()).unwrap();
        let second = chunk_documents(&docs, &ChunkerConfig::default()).unwrap();
        assert_eq!(first, second);
        assert_eq!(first[0].id.to_string(), "000_b48ef8e451107e2d#0");
        assert_eq!(first[1].id, ChunkId::new("000_b48ef8e451107e2d", 1));
        assert!(first.iter().any(|c| c.id.to_string() == "sub/other#0"));
        // Adding an unrelated file leaves existing IDs alone.
        let more = [docs[0].clone(), docs[1].clone(), doc("zzz.txt", &text)];
        let third = chunk_documents(&more, &ChunkerConfig::default()).unwrap();
        assert_eq!(&third[..first.len()], &first[..]);
        // Files differing only in extension keep distinct IDs.
        let twins = [doc("a.md", &text), doc("a.txt", &text)];
        let chunks = chunk_documents(&twins, &ChunkerConfig::default()).unwrap();
        let mut ids: Vec<_> = chunks.iter().map(|c| c.id.clone()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), chunks.len());
    }

    #[test]
    fn rejects_bad_settings() {
        let bad = ChunkerConfig {
            max_tokens: 100,
            overlap_tokens: 100,
        };
        assert!(matches!(
            chunk_documents(&[], &bad),
            Err(CorpusError::Config(_))
        ));
        let tiny = ChunkerConfig {
            max_tokens: 3,
            overlap_tokens: 0,
        };
        assert!(tiny.validate().is_err());
        assert!(ChunkerConfig::default().validate().is_ok());
    }
}

//! Boilerplate detection and document cleaning: finds page furniture in saved web pages (links to
//! the previous/next story, e-mail bylines, copyright and subscribe blurbs, share buttons, menus,
//! lone short lines) and splits what is left into a title and body paragraphs. The loader takes
//! the title from here; the chunker packs the body paragraphs.
//!
//! The rules are general (short lines without sentence punctuation, navigation words, e-mail,
//! copyright and call-to-action patterns, link and tag lists), never strings of a particular site.
//! They work on lines because saved pages put one paragraph per line as often as they leave a
//! blank line between paragraphs, and a navigation link is a line of its own either way. A rule
//! only fires on a line that stands alone: in hard-wrapped prose "Next to the river stood" is
//! followed by a lowercase continuation and is kept.

use std::fmt;
use std::ops::Range;

use serde::Serialize;

use super::text::{
    collapse_whitespace, ends_sentence, starts_lowercase, truncate_words, word_count,
};

/// Why a line or paragraph was left out of the chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BoilerplateReason {
    /// "Previous story ...", "Next ...", "Skip to content", "Read more", arrow links.
    Navigation,
    /// A short line carrying an e-mail address: bylines and contact lines.
    Email,
    /// "© 2024 ...", "Copyright 2025 ...", "All rights reserved".
    Copyright,
    /// Subscribe / newsletter / sign up / follow us / privacy-policy blurbs.
    CallToAction,
    /// Share buttons: "Share on Facebook", "Twitter LinkedIn Email".
    SocialShare,
    /// Menus and breadcrumbs: several short items on separate lines or split by `|`, `•`, `»`.
    LinkList,
    /// Category tags: "Threat Intelligence, Incident Response, Cloud Security".
    TagList,
    /// "[Image source=...]", "Photo: ...", "(Getty Images)".
    PhotoCredit,
    /// CMS placeholders such as `{mosads}` left in the text.
    TemplateMarker,
    /// A line of at most three words with no sentence punctuation ("Close", "Text Size").
    ShortFragment,
    /// A fragment (no sentence punctuation) before the article body starts or after it ends.
    PageFurniture,
    /// The headline repeated, e.g. as an image caption.
    RepeatedTitle,
    /// Markdown front matter (`---` ... `---`).
    FrontMatter,
}

impl BoilerplateReason {
    pub fn as_str(self) -> &'static str {
        match self {
            BoilerplateReason::Navigation => "navigation",
            BoilerplateReason::Email => "email",
            BoilerplateReason::Copyright => "copyright",
            BoilerplateReason::CallToAction => "call-to-action",
            BoilerplateReason::SocialShare => "social-share",
            BoilerplateReason::LinkList => "link-list",
            BoilerplateReason::TagList => "tag-list",
            BoilerplateReason::PhotoCredit => "photo-credit",
            BoilerplateReason::TemplateMarker => "template-marker",
            BoilerplateReason::ShortFragment => "short-fragment",
            BoilerplateReason::PageFurniture => "page-furniture",
            BoilerplateReason::RepeatedTitle => "repeated-title",
            BoilerplateReason::FrontMatter => "front-matter",
        }
    }

    /// Rules that hold even for Markdown structure (headings, list items), whose shortness is
    /// authored rather than a sign of page furniture.
    fn is_strong(self) -> bool {
        matches!(
            self,
            BoilerplateReason::Copyright
                | BoilerplateReason::CallToAction
                | BoilerplateReason::SocialShare
                | BoilerplateReason::TemplateMarker
        )
    }
}

impl fmt::Display for BoilerplateReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a paragraph (one or more lines) is boilerplate on its own, without the context of the
/// page around it. [`clean_text`] adds the context rules (page header and footer, repeated title).
pub fn is_boilerplate(paragraph: &str) -> bool {
    !boilerplate_reasons(paragraph).is_empty()
}

/// The reasons [`is_boilerplate`] gives, sorted; empty when the paragraph is content.
pub fn boilerplate_reasons(paragraph: &str) -> Vec<BoilerplateReason> {
    let lines: Vec<&str> = paragraph
        .lines()
        .map(trim_line)
        .filter(|l| !l.is_empty())
        .collect();
    match lines.as_slice() {
        [] => Vec::new(),
        [line] => line_reasons(line),
        _ => {
            let per_line: Vec<Vec<BoilerplateReason>> =
                lines.iter().map(|l| line_reasons(l)).collect();
            if per_line.iter().all(|r| !r.is_empty()) {
                let mut all: Vec<BoilerplateReason> = per_line.into_iter().flatten().collect();
                all.sort();
                all.dedup();
                all
            } else {
                block_reasons(&lines)
            }
        }
    }
}

/// A document's text split into title, body and what was removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanText {
    /// The headline, or failing that the first body line (cut to 100 characters); `None` for a
    /// document without text.
    pub title: Option<String>,
    /// Where the headline sits when it was taken out of the body (it travels with every chunk as
    /// the title instead).
    pub headline: Option<Range<usize>>,
    /// Body paragraphs in text order.
    pub paragraphs: Vec<BodyParagraph>,
    /// Boilerplate that was left out, in text order.
    pub removed: Vec<Removed>,
}

/// A paragraph kept for chunking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyParagraph {
    /// Byte range into the text, trimmed of surrounding whitespace.
    pub span: Range<usize>,
    /// Paragraphs with the same run number follow each other with only whitespace between them,
    /// so one chunk may span them; removed text or the headline between two paragraphs starts a
    /// new run.
    pub run: usize,
}

/// A piece of text that was left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub span: Range<usize>,
    pub reasons: Vec<BoilerplateReason>,
}

/// Longest title kept when the title comes from a body line rather than a headline.
const MAX_FALLBACK_TITLE_CHARS: usize = 100;

/// Splits `text` into title, body paragraphs and removed boilerplate. `markdown` turns on
/// Markdown structure: front matter is dropped, and headings, list items, tables and fenced code
/// are exempt from the rules that judge by shortness.
pub fn clean_text(text: &str, markdown: bool) -> CleanText {
    let mut lines = split_lines(text, markdown);
    classify_lines(text, &mut lines);
    let mut paragraphs = group_paragraphs(text, &lines);
    let mut removed: Vec<Removed> = lines
        .iter()
        .filter(|l| !l.reasons.is_empty())
        .map(|l| Removed {
            span: l.span.clone(),
            reasons: l.reasons.clone(),
        })
        .collect();
    strip_template_markers(text, &mut paragraphs, &mut removed);
    let headline = apply_page_rules(text, &lines, &mut paragraphs);

    let title = match &headline {
        Some(span) => Some(heading_text(&text[span.clone()])),
        None => paragraphs
            .iter()
            .find(|p| p.removed.is_none())
            .or(paragraphs.first())
            .and_then(|p| {
                text[p.span.clone()]
                    .lines()
                    .map(trim_line)
                    .find(|l| !l.is_empty())
            })
            .map(|line| truncate_words(&heading_text(line), MAX_FALLBACK_TITLE_CHARS)),
    };

    for p in &paragraphs {
        if let Some(reasons) = p.removed.as_ref().filter(|r| !r.is_empty()) {
            removed.push(Removed {
                span: p.span.clone(),
                reasons: reasons.clone(),
            });
        }
    }
    removed.sort_by_key(|r| (r.span.start, r.span.end));

    let mut body = Vec::new();
    let mut run = 0;
    let mut previous_end: Option<usize> = None;
    for p in paragraphs.iter().filter(|p| p.removed.is_none()) {
        if let Some(end) = previous_end {
            if !text[end..p.span.start].trim().is_empty() {
                run += 1;
            }
        }
        previous_end = Some(p.span.end);
        body.push(BodyParagraph {
            span: p.span.clone(),
            run,
        });
    }

    CleanText {
        title,
        headline,
        paragraphs: body,
        removed,
    }
}

/// Splits the text of a document (PDF, Word, OpenDocument, EPUB) into paragraphs without the web
/// boilerplate rules: in a manual, short lines, code listings and lists of names are content, and
/// the page furniture those rules are for was already removed page by page. The title is the first
/// line, cut to 100 characters, and stays in the body.
///
/// With `page_starts` (a PDF), each page is a run of its own, so no chunk spans two pages and
/// the page a citation names holds all of the chunk: exact pages are worth more to a reader
/// checking a source than the rare sentence cut at a page break. Likewise each section (from
/// `section_starts`, a heading's offset) is a run, so a chunk's heading path is its own.
pub fn document_paragraphs(
    text: &str,
    page_starts: &[usize],
    section_starts: &[usize],
) -> CleanText {
    let lines = split_lines(text, false);
    let paragraphs = group_paragraphs(text, &lines);
    let title = lines.first().map(|l| {
        truncate_words(
            &heading_text(&text[l.span.clone()]),
            MAX_FALLBACK_TITLE_CHARS,
        )
    });
    let mut run = 0;
    let mut previous = None;
    let mut body = Vec::with_capacity(paragraphs.len());
    for p in paragraphs {
        let at = p.span.start;
        let place = (
            page_starts.partition_point(|&s| s <= at),
            section_starts.partition_point(|&s| s <= at),
        );
        if previous.is_some_and(|prev| prev != place) {
            run += 1;
        }
        previous = Some(place);
        body.push(BodyParagraph { span: p.span, run });
    }
    CleanText {
        title,
        headline: None,
        paragraphs: body,
        removed: Vec::new(),
    }
}

/// Markdown role of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Md {
    Plain,
    Heading,
    ListItem,
    TableRow,
    Code,
    FrontMatter,
}

#[derive(Debug)]
struct Line {
    /// Trimmed content, without the line break.
    span: Range<usize>,
    block: usize,
    md: Md,
    reasons: Vec<BoilerplateReason>,
}

fn trim_line(line: &str) -> &str {
    // A UTF-8 byte-order mark is not whitespace to Rust but is invisible on the page.
    line.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
}

fn split_lines(text: &str, markdown: bool) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut block = 0;
    let mut in_block = false;
    let mut in_fence = false;
    let mut in_front_matter = false;
    let mut offset = 0;
    for (index, raw) in text.split_inclusive('\n').enumerate() {
        let line_start = offset;
        offset += raw.len();
        let trimmed = trim_line(raw);
        if trimmed.is_empty() {
            if in_block {
                block += 1;
                in_block = false;
            }
            continue;
        }
        in_block = true;
        let lead = raw.len()
            - raw
                .trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
                .len();
        let start = line_start + lead;
        let span = start..start + trimmed.len();

        let md = if !markdown {
            Md::Plain
        } else if in_front_matter {
            if trimmed == "---" || trimmed == "..." {
                in_front_matter = false;
            }
            Md::FrontMatter
        } else if index == 0 && trimmed == "---" {
            in_front_matter = true;
            Md::FrontMatter
        } else if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
            Md::Code
        } else if in_fence {
            Md::Code
        } else {
            markdown_role(trimmed)
        };
        lines.push(Line {
            span,
            block,
            md,
            reasons: Vec::new(),
        });
    }
    lines
}

fn markdown_role(line: &str) -> Md {
    let hashes = line.bytes().take_while(|&b| b == b'#').count();
    if (1..=6).contains(&hashes)
        && line[hashes..]
            .chars()
            .next()
            .is_none_or(char::is_whitespace)
    {
        return Md::Heading;
    }
    if line.starts_with('|') {
        return Md::TableRow;
    }
    if ["- ", "* ", "+ "].iter().any(|m| line.starts_with(m)) {
        return Md::ListItem;
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && (line[digits..].starts_with(". ") || line[digits..].starts_with(") ")) {
        return Md::ListItem;
    }
    Md::Plain
}

/// Headline text without Markdown markers and with whitespace collapsed.
fn heading_text(line: &str) -> String {
    let line = line.trim();
    let line = if line.starts_with('#') {
        line.trim_start_matches('#').trim_end_matches('#')
    } else {
        line
    };
    collapse_whitespace(line)
}

/// Whether a line continues the sentence of the line above: it starts in lower case once any
/// template marker is skipped (`{mosads}Both` starts a sentence), or with a number followed by
/// lower case (a subscript broken onto its own line: "Trioxygen (O" / "3) is ozone").
fn continued_by(next_line: &str) -> bool {
    let mut rest = next_line;
    while let Some(len) = template_marker_len(rest) {
        rest = &rest[len..];
    }
    let mut words = rest.split_whitespace();
    let first = words.next().unwrap_or("");
    if first.chars().any(char::is_alphabetic) {
        return starts_lowercase(first);
    }
    first.chars().any(|c| c.is_ascii_digit()) && words.next().is_some_and(starts_lowercase)
}

/// A line ending in a comma, hyphen or function word carries on into the next line.
fn continues_onto_next_line(line: &str) -> bool {
    if line.ends_with([',', '-', '–', ';']) {
        return true;
    }
    let last = line.rsplit(char::is_whitespace).next().unwrap_or("");
    matches!(
        last.to_lowercase().as_str(),
        "the"
            | "a"
            | "an"
            | "of"
            | "and"
            | "or"
            | "to"
            | "in"
            | "by"
            | "with"
            | "for"
            | "from"
            | "at"
            | "on"
    )
}

fn classify_lines(text: &str, lines: &mut [Line]) {
    let mut block_start = 0;
    while block_start < lines.len() {
        let block = lines[block_start].block;
        let block_end = lines[block_start..]
            .iter()
            .position(|l| l.block != block)
            .map_or(lines.len(), |n| block_start + n);
        classify_block(text, &mut lines[block_start..block_end]);
        block_start = block_end;
    }
}

fn classify_block(text: &str, block: &mut [Line]) {
    for line in block.iter_mut() {
        line.reasons = match line.md {
            Md::FrontMatter => vec![BoilerplateReason::FrontMatter],
            Md::Code => Vec::new(),
            Md::Plain => line_reasons(&text[line.span.clone()]),
            Md::Heading | Md::ListItem | Md::TableRow => {
                let mut reasons = line_reasons(&text[line.span.clone()]);
                reasons.retain(|r| r.is_strong());
                reasons
            }
        };
    }

    let all_plain = block.iter().all(|l| l.md == Md::Plain);
    let non_last = &block[..block.len() - 1];
    let ending = non_last
        .iter()
        .filter(|l| ends_sentence(&text[l.span.clone()]))
        .count();
    let wrapped = block.len() >= 2 && ending * 2 < non_last.len().max(1);
    if wrapped && all_plain {
        let texts: Vec<&str> = block.iter().map(|l| &text[l.span.clone()]).collect();
        let reasons = block_reasons(&texts);
        if !reasons.is_empty() {
            for line in block.iter_mut() {
                line.reasons = reasons.clone();
            }
            return;
        }
    }

    // A rule fires on a line only when the line stands alone, not in the middle of a sentence
    // that was hard-wrapped across lines.
    for i in 0..block.len() {
        if block[i].reasons.is_empty() || block[i].md != Md::Plain {
            continue;
        }
        let line = &text[block[i].span.clone()];
        let after_break = i == 0 || {
            let prev = &block[i - 1];
            !prev.reasons.is_empty()
                || prev.md != Md::Plain
                || ends_sentence(&text[prev.span.clone()])
        };
        let before_break = i + 1 == block.len() || !continued_by(&text[block[i + 1].span.clone()]);
        let complete = !continues_onto_next_line(line) || ends_sentence(line);
        if !(after_break && before_break && complete) {
            block[i].reasons.clear();
        }
    }
}

/// Paragraph under construction, with page-level verdicts.
#[derive(Debug)]
struct Para {
    span: Range<usize>,
    first_line: usize,
    last_line: usize,
    md: Md,
    removed: Option<Vec<BoilerplateReason>>,
}

/// Groups kept lines into paragraphs. A blank line, a removed line or Markdown structure always
/// ends a paragraph. Inside a block, a layout with one paragraph per line (most lines end a
/// sentence) splits at every line not continued in lower case; hard-wrapped prose is joined back
/// into one paragraph.
fn group_paragraphs(text: &str, lines: &[Line]) -> Vec<Para> {
    let mut per_line_layout = vec![false; lines.len()];
    let mut i = 0;
    while i < lines.len() {
        let block = lines[i].block;
        let end = lines[i..]
            .iter()
            .position(|l| l.block != block)
            .map_or(lines.len(), |n| i + n);
        let non_last = &lines[i..end - 1];
        let ending = non_last
            .iter()
            .filter(|l| !l.reasons.is_empty() || ends_sentence(&text[l.span.clone()]))
            .count();
        let per_line = !non_last.is_empty() && ending * 2 >= non_last.len();
        per_line_layout[i..end].fill(per_line);
        i = end;
    }

    let mut paragraphs: Vec<Para> = Vec::new();
    let mut open = false;
    for (index, line) in lines.iter().enumerate() {
        if !line.reasons.is_empty() {
            open = false;
            continue;
        }
        let joins = open
            && paragraphs.last().is_some_and(|p| {
                let prev = &lines[p.last_line];
                let line_text = &text[line.span.clone()];
                prev.block == line.block
                    && (!per_line_layout[index] || continued_by(line_text))
                    && match (prev.md, line.md) {
                        (Md::Plain, Md::Plain) => true,
                        (Md::Code, Md::Code) | (Md::TableRow, Md::TableRow) => true,
                        // A list item's wrapped continuation line.
                        (Md::ListItem, Md::Plain) => true,
                        _ => false,
                    }
            });
        if joins {
            let p = paragraphs.last_mut().expect("joins implies a paragraph");
            p.span.end = line.span.end;
            p.last_line = index;
        } else {
            paragraphs.push(Para {
                span: line.span.clone(),
                first_line: index,
                last_line: index,
                md: line.md,
                removed: None,
            });
        }
        open = true;
    }
    paragraphs
}

/// Takes `{placeholder}` markers off the front of paragraphs ("{mosads}Both South Korea ...").
fn strip_template_markers(text: &str, paragraphs: &mut [Para], removed: &mut Vec<Removed>) {
    for p in paragraphs.iter_mut().filter(|p| p.md != Md::Code) {
        let mut start = p.span.start;
        while let Some(len) = template_marker_len(&text[start..p.span.end]) {
            let rest = &text[start + len..p.span.end];
            let after = start + len + (rest.len() - rest.trim_start().len());
            removed.push(Removed {
                span: start..start + len,
                reasons: vec![BoilerplateReason::TemplateMarker],
            });
            start = after;
        }
        if start == p.span.end {
            p.removed = Some(vec![BoilerplateReason::TemplateMarker]);
        } else {
            p.span.start = start;
        }
    }
}

/// Length of a `{name}` or `{{name}}` marker at the start of `s`.
fn template_marker_len(s: &str) -> Option<usize> {
    let open = s.bytes().take_while(|&b| b == b'{').count();
    if !(1..=2).contains(&open) {
        return None;
    }
    let name_len = s[open..]
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
        .count();
    if name_len == 0 || name_len > 40 {
        return None;
    }
    let close_at = open + name_len;
    let closing = "}".repeat(open);
    s[close_at..]
        .starts_with(closing.as_str())
        .then_some(close_at + open)
}

/// Applies the page-level rules: picks the headline, and marks fragments before the body starts,
/// after it ends, or sandwiched between removed lines. Returns the headline's span.
fn apply_page_rules(text: &str, lines: &[Line], paragraphs: &mut [Para]) -> Option<Range<usize>> {
    struct Measure {
        words: usize,
        ends: bool,
    }
    let measures: Vec<Measure> = paragraphs
        .iter()
        .map(|p| {
            let t = &text[p.span.clone()];
            Measure {
                words: word_count(t),
                ends: ends_sentence(t),
            }
        })
        .collect();
    let live = |p: &Para| p.removed.is_none();
    let substantial: Vec<bool> = paragraphs
        .iter()
        .zip(&measures)
        .map(|(p, m)| live(p) && p.md != Md::Heading && m.words >= 8 && m.ends)
        .collect();
    let first_body = substantial.iter().position(|&s| s);
    let last_body = substantial.iter().rposition(|&s| s);
    let fragment = |p: &Para, m: &Measure| live(p) && p.md == Md::Plain && !m.ends && m.words <= 20;

    // The headline: the first heading-like line before the body. A text that has no body
    // (notes, a list) keeps its first line as content.
    let mut headline = None;
    if let Some(first_body) = first_body {
        headline = (0..first_body).find(|&i| {
            let p = &paragraphs[i];
            live(p)
                && p.first_line == p.last_line
                && (p.md == Md::Heading
                    || (p.md == Md::Plain && !measures[i].ends && measures[i].words <= 25))
        });
    }
    // A short title ("Introduction") is flagged as a short fragment; when no longer headline
    // precedes the body, the first such line is the title after all (it stays out of the body).
    let short_title = match (headline, first_body) {
        (None, Some(first_body)) => lines[..paragraphs[first_body].first_line]
            .iter()
            .find(|l| l.reasons == [BoilerplateReason::ShortFragment])
            .map(|l| l.span.clone()),
        _ => None,
    };
    let headline_key = headline.map(|i| normalized_words(&text[paragraphs[i].span.clone()]));

    let line_removed = |index: usize| !lines[index].reasons.is_empty();
    for i in 0..paragraphs.len() {
        if Some(i) == headline || !live(&paragraphs[i]) {
            continue;
        }
        let (p, m) = (&paragraphs[i], &measures[i]);
        let mut reasons = Vec::new();
        let before_body = first_body.is_some_and(|first| i < first);
        let after_body = last_body.is_some_and(|last| i > last);
        if (before_body && fragment(p, m))
            || (after_body && (fragment(p, m) || (p.md == Md::Plain && m.words <= 5)))
        {
            reasons.push(BoilerplateReason::PageFurniture);
        } else if fragment(p, m) {
            let prev_removed = p.first_line > 0 && line_removed(p.first_line - 1);
            let next_removed = p.last_line + 1 < lines.len() && line_removed(p.last_line + 1);
            if prev_removed && next_removed {
                reasons.push(BoilerplateReason::PageFurniture);
            }
        }
        if let Some(key) = &headline_key {
            if fragment(p, m) && key.len() >= 3 {
                let words = normalized_words(&text[p.span.clone()]);
                if words.starts_with(key) {
                    reasons.push(BoilerplateReason::RepeatedTitle);
                }
            }
        }
        if !reasons.is_empty() {
            paragraphs[i].removed = Some(reasons);
        }
    }

    match headline {
        Some(i) => {
            // The headline leaves the body (it is the title of every chunk instead); marking it
            // removed keeps it out of chunks and splits the run around it.
            paragraphs[i].removed = Some(Vec::new());
            Some(paragraphs[i].span.clone())
        }
        None => short_title,
    }
}

fn normalized_words(s: &str) -> Vec<String> {
    use unicode_segmentation::UnicodeSegmentation;
    s.unicode_words().map(str::to_lowercase).collect()
}

// ---------------------------------------------------------------------------------------------
// Context-free rules.

/// What the rules look at in one line.
struct Features<'a> {
    text: &'a str,
    lower: String,
    words: usize,
    ends: bool,
}

impl<'a> Features<'a> {
    fn new(text: &'a str) -> Features<'a> {
        Features {
            text,
            // Saved pages put no-break spaces where the phrases below have plain ones.
            lower: collapse_whitespace(text).to_lowercase(),
            words: word_count(text),
            ends: ends_sentence(text),
        }
    }

    fn contains_any(&self, phrases: &[&str]) -> usize {
        phrases.iter().filter(|p| self.lower.contains(*p)).count()
    }

    fn starts_with_any(&self, phrases: &[&str]) -> bool {
        let lower = self
            .lower
            .trim_start_matches(|c: char| !c.is_alphanumeric());
        phrases.iter().any(|p| lower.starts_with(p))
    }
}

fn line_reasons(line: &str) -> Vec<BoilerplateReason> {
    let f = Features::new(line.trim());
    let mut reasons = Vec::new();
    if is_template_only(f.text) {
        reasons.push(BoilerplateReason::TemplateMarker);
    }
    if is_navigation(&f) {
        reasons.push(BoilerplateReason::Navigation);
    }
    if f.words <= 15 && has_email(&f) {
        reasons.push(BoilerplateReason::Email);
    }
    if is_copyright(&f) {
        reasons.push(BoilerplateReason::Copyright);
    }
    if is_call_to_action(&f) {
        reasons.push(BoilerplateReason::CallToAction);
    }
    if is_social_share(&f) {
        reasons.push(BoilerplateReason::SocialShare);
    }
    if let Some(reason) = list_kind(&f) {
        reasons.push(reason);
    }
    if is_photo_credit(&f) {
        reasons.push(BoilerplateReason::PhotoCredit);
    }
    if f.words <= 3 && !f.ends && reasons.is_empty() {
        reasons.push(BoilerplateReason::ShortFragment);
    }
    reasons
}

/// Rules over a multi-line block read as one piece: menus (a column of short titled lines) and
/// notices hard-wrapped over several lines.
fn block_reasons(lines: &[&str]) -> Vec<BoilerplateReason> {
    let mut reasons = Vec::new();
    let menu_like = |l: &&str| {
        word_count(l) <= 10
            && !ends_sentence(l)
            && !starts_lowercase(l)
            && !l.contains(". ")
            && !continues_onto_next_line(l)
    };
    if lines.len() >= 3 && lines.iter().all(menu_like) {
        reasons.push(BoilerplateReason::LinkList);
    }
    let joined = lines.join(" ");
    let f = Features::new(&joined);
    if is_copyright(&f) {
        reasons.push(BoilerplateReason::Copyright);
    }
    if is_call_to_action(&f) {
        reasons.push(BoilerplateReason::CallToAction);
    }
    reasons
}

fn is_template_only(line: &str) -> bool {
    let mut rest = line;
    while let Some(len) = template_marker_len(rest) {
        rest = rest[len..].trim_start();
        if rest.is_empty() {
            return true;
        }
    }
    false
}

/// Words that open a link to a neighbouring story.
const NAV_LEADS: &[&str] = &["previous", "prev", "next", "older", "newer"];

/// Phrases that open a navigation link or widget heading.
const NAV_PHRASES: &[&str] = &[
    "skip to",
    "jump to",
    "back to",
    "return to",
    "go to",
    "read more",
    "read next",
    "read also",
    "continue reading",
    "see also",
    "see more",
    "view all",
    "view more",
    "show more",
    "load more",
    "more stories",
    "more from",
    "more news",
    "related articles",
    "related stories",
    "related posts",
    "related news",
    "related:",
    "you may also like",
    "you might also like",
    "recommended for you",
    "most read",
    "most popular",
    "top stories",
    "trending now",
];

const ARROWS: &[char] = &[
    '←', '→', '«', '»', '‹', '›', '◀', '▶', '⟵', '⟶', '↑', '▲', '▼', '◄', '►',
];

fn is_navigation(f: &Features) -> bool {
    if f.ends || f.words > 15 || f.words == 0 {
        return false;
    }
    let first_word = f
        .lower
        .split(|c: char| !c.is_alphanumeric())
        .find(|w| !w.is_empty())
        .unwrap_or("");
    // "Next, the ministers met" is prose; a link reads "Next Ministers meet".
    let after_first = f
        .lower
        .trim_start_matches(|c: char| !c.is_alphanumeric())
        .get(first_word.len()..)
        .unwrap_or("");
    let lead = NAV_LEADS.contains(&first_word) && !after_first.starts_with([',', ':']);
    lead || f.starts_with_any(NAV_PHRASES) || f.text.starts_with(ARROWS) || f.text.ends_with(ARROWS)
}

fn has_email(f: &Features) -> bool {
    // Cloudflare replaces addresses in saved pages with this text.
    if f.lower.contains("[email protected]") || f.lower.contains("email protected]") {
        return true;
    }
    let bytes = f.text.as_bytes();
    f.text.match_indices('@').any(|(at, _)| {
        let local_ok = at > 0 && {
            let b = bytes[at - 1];
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
        };
        let domain: &str = f.text[at + 1..]
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
            .next()
            .unwrap_or("");
        let domain = domain.trim_end_matches('.');
        let tld_ok = domain.rsplit_once('.').is_some_and(|(host, tld)| {
            !host.is_empty() && tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic())
        });
        local_ok && tld_ok
    })
}

fn is_year(token: &str) -> bool {
    let digits = token.trim_matches(|c: char| !c.is_ascii_digit());
    digits.len() >= 4
        && digits[..4]
            .parse::<u32>()
            .is_ok_and(|y| (1900..2100).contains(&y))
        && token.chars().next().is_some_and(|c| c.is_ascii_digit())
}

fn is_copyright(f: &Features) -> bool {
    if f.lower.contains("all rights reserved") && f.words <= 80 {
        return true;
    }
    if f.text.contains('©') && f.words <= 30 {
        return true;
    }
    let lower = f.lower.trim_start();
    if lower.starts_with("(c) ") && f.words <= 30 {
        return true;
    }
    if let Some(rest) = lower.strip_prefix("copyright") {
        // "Copyright 2025 Nexstar Media", "Copyright (c) Foo" - not "Copyright law says".
        let mut tokens = rest.split_whitespace();
        let next = tokens.next().unwrap_or("");
        return f.words <= 60 && (is_year(next) || next == "(c)" || next.starts_with('©'));
    }
    false
}

/// Phrases of a subscribe, follow or legal blurb.
const CTA_PHRASES: &[&str] = &[
    "subscribe",
    "newsletter",
    "sign up",
    "signup",
    "sign-up",
    "sign in to",
    "log in to",
    "register now",
    "follow us",
    "join us on",
    "like us on",
    "email updates",
    "email alerts",
    "e-mail updates",
    "privacy policy",
    "terms of use",
    "terms of service",
    "terms and conditions",
    "cookie policy",
    "use cookies",
    "uses cookies",
    "advertisement",
    "sponsored content",
    "download the app",
    "download our app",
    "get the app",
    "click here",
    "tap here",
    "support our journalism",
];

/// Openings of an imperative addressed to the reader.
const CTA_IMPERATIVES: &[&str] = &[
    "get ",
    "subscribe",
    "sign ",
    "join ",
    "follow ",
    "like ",
    "share ",
    "download ",
    "click ",
    "tap ",
    "register",
    "support ",
    "don't miss",
    "never miss",
    "stay ",
    "by clicking",
    "by signing",
    "by subscribing",
    "want ",
];

fn is_call_to_action(f: &Features) -> bool {
    let signals = f.contains_any(CTA_PHRASES);
    if signals == 0 {
        return false;
    }
    let addressed = f.starts_with_any(CTA_IMPERATIVES)
        || f.lower
            .split(|c: char| !c.is_alphanumeric() && c != '\'')
            .any(|w| matches!(w, "you" | "your" | "you're" | "you'll"));
    (signals >= 2 && f.words <= 60) || (f.words <= 30 && (!f.ends || addressed))
}

const SOCIAL_WORDS: &[&str] = &[
    "share",
    "shares",
    "tweet",
    "facebook",
    "twitter",
    "linkedin",
    "whatsapp",
    "telegram",
    "pinterest",
    "reddit",
    "email",
    "e-mail",
    "print",
    "copy",
    "link",
    "instagram",
    "youtube",
    "tiktok",
    "kakaotalk",
    "kakao",
    "naver",
    "flipboard",
    "messenger",
];

fn is_social_share(f: &Features) -> bool {
    if f.ends || f.words == 0 || f.words > 12 {
        return false;
    }
    if f.starts_with_any(&[
        "share this",
        "share on",
        "share via",
        "share article",
        "share story",
    ]) {
        return true;
    }
    let social = f
        .lower
        .split(|c: char| !c.is_alphanumeric() && c != '-')
        .filter(|w| SOCIAL_WORDS.contains(w))
        .count();
    social * 2 >= f.words && social >= 1
}

/// Words allowed in lower case inside a title-cased tag.
const TAG_CONNECTORS: &[&str] = &["and", "of", "the", "for", "in", "on", "&", "de", "to"];

fn list_kind(f: &Features) -> Option<BoilerplateReason> {
    if f.ends {
        return None;
    }
    let short_items = |items: &[&str]| {
        items.len() >= 3
            && items
                .iter()
                .all(|i| !i.trim().is_empty() && word_count(i) <= 4)
    };
    let separated: Vec<&str> = f.text.split(['|', '•', '·', '»', '›']).collect();
    let slashed: Vec<&str> = f.text.split(" / ").collect();
    if short_items(&separated) || short_items(&slashed) {
        return Some(BoilerplateReason::LinkList);
    }
    let comma_items: Vec<&str> = f.text.split(',').collect();
    let title_cased = comma_items.iter().all(|item| {
        item.split_whitespace().all(|w| {
            TAG_CONNECTORS.contains(&w)
                || w.chars()
                    .next()
                    .is_some_and(|c| c.is_uppercase() || c.is_ascii_digit())
        })
    });
    (short_items(&comma_items) && title_cased).then_some(BoilerplateReason::TagList)
}

const CREDIT_PHRASES: &[&str] = &[
    "image source",
    "photo:",
    "photo by",
    "photos by",
    "photo credit",
    "photograph:",
    "image:",
    "image by",
    "credit:",
    "getty images",
    "ap photo",
    "courtesy of",
    "[image",
    "(photo",
    "file photo",
    "shutterstock",
    "illustration:",
];

fn is_photo_credit(f: &Features) -> bool {
    f.words <= 25 && (!f.ends || f.words <= 10) && f.contains_any(CREDIT_PHRASES) > 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use BoilerplateReason as R;

    fn body(text: &str, clean: &CleanText) -> Vec<String> {
        clean
            .paragraphs
            .iter()
            .map(|p| text[p.span.clone()].to_string())
            .collect()
    }

    #[test]
    fn flags_page_furniture_by_general_rules() {
        let cases: &[(&str, R)] = &[
            (
                "Previous Ministers meet in Geneva to discuss trade",
                R::Navigation,
            ),
            ("Next Startup unveils a faster battery", R::Navigation),
            ("« Older posts", R::Navigation),
            ("Skip to main content", R::Navigation),
            ("(jane.doe@example.com)", R::Email),
            ("([email protected])", R::Email),
            ("© 2024 Example Daily. All rights reserved.", R::Copyright),
            (
                "Copyright 2019 Acme Corp. This material may not be redistributed.",
                R::Copyright,
            ),
            ("Sign up for our weekly newsletter", R::CallToAction),
            ("Get daily email updates", R::CallToAction),
            (
                "By clicking Subscribe, you agree to our Terms and Conditions.",
                R::CallToAction,
            ),
            ("Share on Facebook", R::SocialShare),
            ("Facebook Twitter LinkedIn Email", R::SocialShare),
            ("Home | World | Business | Tech", R::LinkList),
            (
                "Cloud Security, Threat Intelligence, Incident Response, TDR",
                R::TagList,
            ),
            (
                "Flood waters rise in the valley [Image source=Wire Service]",
                R::PhotoCredit,
            ),
            ("{adslot}", R::TemplateMarker),
            ("Text Size", R::ShortFragment),
            ("Close", R::ShortFragment),
        ];
        for (line, reason) in cases {
            let reasons = boilerplate_reasons(line);
            assert!(
                reasons.contains(reason),
                "{line:?}: got {reasons:?}, want {reason:?}"
            );
        }
    }

    #[test]
    fn keeps_prose_that_merely_mentions_the_trigger_words() {
        for line in [
            "Next, the ministers agreed to hold the drills every year.",
            "Readers subscribe to the paper for its coverage of local courts.",
            "The copyright office rejected the claim in 2019.",
            "He previously led the Cyber Command for four years.",
            "Singapore, Canada, Australia and New Zealand also took part in the exercise.",
            "S. Korea, US agree to improve cyber cooperation, regularize cyber drills",
            "The advertising market grew by five percent in 2010.",
        ] {
            assert!(
                !is_boilerplate(line),
                "{line:?}: {:?}",
                boilerplate_reasons(line)
            );
        }
    }

    #[test]
    fn multi_line_paragraphs() {
        assert_eq!(
            boilerplate_reasons("Previous Rates rise again\nNext Markets fall"),
            vec![R::Navigation]
        );
        assert_eq!(
            boilerplate_reasons("World\nBusiness News\nTechnology\nSports Results"),
            vec![R::ShortFragment]
        );
        assert_eq!(
            boilerplate_reasons(
                "Latest Headlines Today\nMarkets Rally On Rate Hopes\nNew Phone Launch Set"
            ),
            vec![R::LinkList]
        );
        assert!(!is_boilerplate(
            "Previous studies of the region\nfound that rainfall was falling."
        ));
    }

    /// A page shaped like the saved news articles docqa is pointed at.
    const PAGE: &str = "\
Skip to content
Menu

Ministers agree on river clean-up plan

Two ministers shake hands at the summit in Lyon on Tuesday. (Photo: Wire Service)

The environment ministers of three countries agreed on Monday to clean up the Rhine by 2030. The plan sets limits on farm run-off.
Officials said the cost would be shared according to each country's stretch of the river.

The agreement follows a decade of talks. Critics say the limits are too weak.

(reporter@example.com)

Previous Heatwave grips the south
Next New rail link opens in the Alps

Get our daily newsletter
The best of the news, every morning
By signing up, you agree to our Privacy Policy.

© 2024 Example Daily Media. All rights reserved.
Share on Facebook
Top";

    #[test]
    fn cleans_a_web_page_fixture() {
        let clean = clean_text(PAGE, false);
        assert_eq!(
            clean.title.as_deref(),
            Some("Ministers agree on river clean-up plan")
        );
        let kept = body(PAGE, &clean);
        assert_eq!(
            kept,
            [
                "The environment ministers of three countries agreed on Monday to clean up the \
                 Rhine by 2030. The plan sets limits on farm run-off.",
                "Officials said the cost would be shared according to each country's stretch of \
                 the river.",
                "The agreement follows a decade of talks. Critics say the limits are too weak.",
            ]
        );
        // The photo line is a caption: it goes, as do the menu and the whole footer.
        let removed: Vec<&str> = clean
            .removed
            .iter()
            .map(|r| &PAGE[r.span.clone()])
            .collect();
        for gone in ["Skip to content", "Menu", "(reporter@example.com)", "Top"] {
            assert!(
                removed.contains(&gone),
                "{gone:?} not removed: {removed:#?}"
            );
        }
        // All kept paragraphs of the article body form one run.
        assert!(clean
            .paragraphs
            .iter()
            .all(|p| p.run == clean.paragraphs[0].run));
    }

    #[test]
    fn a_document_without_headline_keeps_its_first_line() {
        let text = "The committee met on Tuesday to review the budget for next year.\n\
                    It approved the plan without changes.";
        let clean = clean_text(text, false);
        assert_eq!(clean.headline, None);
        assert_eq!(body(text, &clean).len(), 2);
        assert_eq!(
            clean.title.as_deref(),
            Some("The committee met on Tuesday to review the budget for next year.")
        );
    }

    #[test]
    fn hard_wrapped_prose_is_one_paragraph_and_not_navigation() {
        let text = "A study of the valley found that the river had changed course\n\
                    twice in a century, and the fields had turned to marsh.\n\
                    Next to the old mill stood a dam that\n\
                    no longer held water after the flood.";
        let clean = clean_text(text, false);
        assert_eq!(body(text, &clean), [text]);
        assert!(clean.removed.is_empty());
    }

    #[test]
    fn template_markers_are_cut_from_the_paragraph_start() {
        let text = "Title line here please\n\
                    The first paragraph is long enough to be the body of the text.\n\
                    {mosads}The second paragraph follows a marker that a CMS left behind.";
        let clean = clean_text(text, false);
        let kept = body(text, &clean);
        assert_eq!(
            kept[1],
            "The second paragraph follows a marker that a CMS left behind."
        );
        // Text between the two paragraphs was removed, so they are separate runs.
        assert_ne!(clean.paragraphs[0].run, clean.paragraphs[1].run);
    }

    #[test]
    fn markdown_structure_is_content() {
        let text =
            "---\ntitle: x\n---\n# Install\n\n## Linux\n\n- apt\n- dnf\n\n```\nmake\n}\n```\n\n\
                    Run the installer and follow the prompts on screen.\n";
        let clean = clean_text(text, true);
        assert_eq!(clean.title.as_deref(), Some("Install"));
        let kept = body(text, &clean);
        assert_eq!(
            kept,
            [
                "## Linux",
                "- apt",
                "- dnf",
                "```\nmake\n}\n```",
                "Run the installer and follow the prompts on screen."
            ]
        );
        assert!(clean.removed[0].reasons.contains(&R::FrontMatter));
    }

    #[test]
    fn korean_prose_is_kept() {
        let text = "한미 사이버 훈련 정례화\n\n국방부는 10일 한국과 미국이 사이버 방어 훈련을 정례적으로 실시하기로 합의했다고 밝혔다.";
        let clean = clean_text(text, false);
        assert_eq!(clean.title.as_deref(), Some("한미 사이버 훈련 정례화"));
        assert_eq!(body(text, &clean).len(), 1);
    }
}

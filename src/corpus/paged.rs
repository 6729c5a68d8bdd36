//! Clean-up of text extracted page by page (PDF): ligatures normalised, running headers, footers
//! and page numbers dropped, words hyphenated at line ends rejoined, and the pages joined into
//! one text with the byte offset where each page starts. Called by the PDF loader; the chunker
//! maps a chunk's start offset back to its page with [`page_of`].

use std::collections::{HashMap, HashSet};

/// Lines at each end of a page that may be page furniture.
const EDGE_LINES: usize = 2;

/// Pages a line must sit at the edge of before it counts as a running header or footer; fewer
/// and a heading that merely repeats (a chapter title on its first page and in the contents)
/// would be dropped.
const MIN_REPEATS: usize = 3;

/// What [`join_pages`] makes of a document's pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PagedText {
    /// The cleaned pages, separated by a blank line.
    pub text: String,
    /// Byte offset into `text` where each page starts (one entry per page, empty pages
    /// included, so `page_starts[n]` is page `n + 1`).
    pub page_starts: Vec<usize>,
    /// Header, footer and page-number lines removed.
    pub furniture_lines: usize,
    /// Line-end hyphens removed.
    pub rejoined_words: usize,
}

/// The 1-based page holding byte `offset`, given each page's start; `None` for unpaged text.
pub fn page_of(page_starts: &[usize], offset: usize) -> Option<u32> {
    if page_starts.is_empty() {
        return None;
    }
    let after = page_starts.partition_point(|&start| start <= offset);
    Some(after.max(1) as u32)
}

/// Cleans each page and joins them. The rules, applied to each page on its own:
/// - ligatures (`ﬁ`, `ﬂ`, ...) become their letters, soft hyphens and NULs are dropped;
/// - a line among the first or last [`EDGE_LINES`] of a page is furniture when it is a bare page
///   number (`12`, `xii`, `Page 3 of 9`), or when the same line, its digits ignored, sits at the
///   edge of at least [`MIN_REPEATS`] pages and either holds a number (a running header with its
///   page number: `Chapter 2: Installation 5`) or sits on half the pages or more;
/// - a word broken across a line end by a hyphen (`warn-` / `ings`) is rejoined on the first
///   line, when the next line starts in lower case (a hyphen before a capital or a digit is
///   part of a name or a range).
pub(crate) fn join_pages(pages: &[String]) -> PagedText {
    let pages: Vec<Vec<String>> = pages.iter().map(|p| page_lines(p)).collect();
    let furniture = repeated_edges(&pages);
    let mut text = String::new();
    let mut page_starts = Vec::with_capacity(pages.len());
    let mut furniture_lines = 0;
    let mut rejoined_words = 0;
    for (n, lines) in pages.iter().enumerate() {
        let edges = edge_positions(lines);
        let mut kept: Vec<String> = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            let at_edge = edges.contains(&i);
            if at_edge && (is_page_number(line) || furniture.contains(&edge_key(line))) {
                furniture_lines += 1;
                continue;
            }
            kept.push(line.clone());
        }
        rejoined_words += rejoin_hyphens(&mut kept);
        // Leading and trailing blank lines would only widen the gap between pages.
        while kept.last().is_some_and(|l| l.is_empty()) {
            kept.pop();
        }
        let first = kept
            .iter()
            .position(|l| !l.is_empty())
            .unwrap_or(kept.len());
        if n > 0 {
            text.push_str("\n\n");
        }
        page_starts.push(text.len());
        text.push_str(&kept[first..].join("\n"));
    }
    PagedText {
        text,
        page_starts,
        furniture_lines,
        rejoined_words,
    }
}

/// A page's lines, ligatures normalised, right-trimmed, runs of blank lines kept as one.
fn page_lines(page: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for raw in page.lines() {
        let line = normalise(raw.trim_end());
        if line.trim().is_empty() {
            if lines.last().is_some_and(|l| !l.is_empty()) {
                lines.push(String::new());
            }
            continue;
        }
        lines.push(line);
    }
    lines
}

/// Ligatures to letters; soft hyphens, NULs and other control characters removed. A map rather
/// than NFKC: NFKC would also rewrite superscripts, fractions and full-width forms, which a
/// manual's formulas and a reader's quotes keep as printed.
fn normalise(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        match c {
            '\u{FB00}' => out.push_str("ff"),
            '\u{FB01}' => out.push_str("fi"),
            '\u{FB02}' => out.push_str("fl"),
            '\u{FB03}' => out.push_str("ffi"),
            '\u{FB04}' => out.push_str("ffl"),
            '\u{FB05}' | '\u{FB06}' => out.push_str("st"),
            '\u{00AD}' => {}
            '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Indexes of the first and last [`EDGE_LINES`] non-blank lines.
fn edge_positions(lines: &[String]) -> HashSet<usize> {
    let filled: Vec<usize> = (0..lines.len())
        .filter(|&i| !lines[i].trim().is_empty())
        .collect();
    filled
        .iter()
        .take(EDGE_LINES)
        .chain(filled.iter().rev().take(EDGE_LINES))
        .copied()
        .collect()
}

/// A line with its digit runs replaced by `#`, lower case, whitespace collapsed: the same
/// running header on every page.
fn edge_key(line: &str) -> String {
    let mut key = String::with_capacity(line.len());
    let mut in_digits = false;
    for word in line.split_whitespace() {
        if !key.is_empty() {
            key.push(' ');
        }
        for c in word.chars() {
            if c.is_ascii_digit() {
                if !in_digits {
                    key.push('#');
                }
                in_digits = true;
            } else {
                in_digits = false;
                key.extend(c.to_lowercase());
            }
        }
        in_digits = false;
    }
    key
}

/// Edge-line keys that are running headers or footers (see [`join_pages`]).
fn repeated_edges(pages: &[Vec<String>]) -> HashSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for lines in pages {
        let keys: HashSet<String> = edge_positions(lines)
            .into_iter()
            .map(|i| edge_key(&lines[i]))
            .collect();
        for key in keys {
            *seen.entry(key).or_default() += 1;
        }
    }
    let half = pages.len().div_ceil(2);
    seen.into_iter()
        .filter(|(key, count)| {
            *count >= MIN_REPEATS && (key.contains('#') || *count >= half.max(MIN_REPEATS))
        })
        .map(|(key, _)| key)
        .collect()
}

/// `12`, `- 12 -`, `xii`, `Page 3`, `Page 3 of 9`, `3/9`.
fn is_page_number(line: &str) -> bool {
    let s = line
        .trim()
        .trim_matches(|c: char| c == '-' || c == '–' || c == '—' || c.is_whitespace())
        .to_lowercase();
    if s.is_empty() {
        return false;
    }
    let s = s.strip_prefix("page").map_or(s.as_str(), str::trim_start);
    let numeric = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit());
    let roman = |p: &str| !p.is_empty() && p.len() <= 6 && p.chars().all(|c| "ivxlc".contains(c));
    if numeric(s) || roman(s) {
        return true;
    }
    let parts: Vec<&str> = s.split(['/', ' ']).collect();
    match parts.as_slice() {
        [a, b] => numeric(a) && numeric(b),
        [a, "of", b] => numeric(a) && numeric(b),
        _ => false,
    }
}

/// Moves the rest of each word hyphenated at a line end up onto its line; returns how many.
fn rejoin_hyphens(lines: &mut Vec<String>) -> usize {
    let mut joined = 0;
    let mut i = 0;
    while i + 1 < lines.len() {
        let broken = {
            let line = &lines[i];
            let before = line.strip_suffix('-').and_then(|l| l.chars().last());
            let next_lower = lines[i + 1].chars().next().is_some_and(char::is_lowercase);
            before.is_some_and(char::is_alphabetic) && !line.ends_with("--") && next_lower
        };
        if broken {
            let next = std::mem::take(&mut lines[i + 1]);
            let (rest_of_word, tail) = match next.find(char::is_whitespace) {
                Some(at) => (&next[..at], next[at..].trim_start()),
                None => (next.as_str(), ""),
            };
            lines[i].pop();
            lines[i].push_str(rest_of_word);
            if tail.is_empty() {
                lines.remove(i + 1);
            } else {
                lines[i + 1] = tail.to_string();
            }
            joined += 1;
        }
        i += 1;
    }
    joined
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(n: usize, body: &str) -> String {
        format!("Chapter 2: Installation {n}\n\n{body}\n\n{n}\n")
    }

    #[test]
    fn running_headers_and_page_numbers_go_body_stays() {
        let words = ["alpha", "beta", "gamma", "delta", "epsilon"];
        let pages: Vec<String> = (4..9)
            .zip(words)
            .map(|(n, w)| {
                page(
                    n,
                    &format!("The {w} setting changes the configuration file."),
                )
            })
            .collect();
        let joined = join_pages(&pages);
        assert_eq!(joined.page_starts.len(), 5);
        assert!(!joined.text.contains("Chapter 2"), "{}", joined.text);
        for (&start, w) in joined.page_starts.iter().zip(words) {
            assert!(joined.text[start..].starts_with(&format!("The {w} setting")));
        }
        assert_eq!(joined.furniture_lines, 10);
        assert_eq!(page_of(&joined.page_starts, 0), Some(1));
        assert_eq!(page_of(&joined.page_starts, joined.page_starts[2]), Some(3));
        assert_eq!(page_of(&joined.page_starts, joined.text.len()), Some(5));
        assert_eq!(page_of(&[], 10), None);
    }

    #[test]
    fn a_heading_on_two_pages_is_not_furniture() {
        let pages = vec![
            "Contents\n\nIntroduction 1".to_string(),
            "Introduction\n\nThe first chapter begins here.".to_string(),
            "More text on the third page.".to_string(),
        ];
        let joined = join_pages(&pages);
        assert!(joined.text.contains("Introduction\n\nThe first chapter"));
        assert_eq!(joined.furniture_lines, 0);
    }

    #[test]
    fn hyphenated_words_are_rejoined_and_ligatures_spelt_out() {
        let pages = vec![
            "which lists all disabled warn-\nings. A well-\nKnown name, pages 3-\n4 and the ﬁrst ﬂag."
                .to_string(),
        ];
        let joined = join_pages(&pages);
        assert_eq!(
            joined.text,
            "which lists all disabled warnings.\nA well-\nKnown name, pages 3-\n4 and the first flag."
        );
        assert_eq!(joined.rejoined_words, 1);
    }

    #[test]
    fn page_numbers_in_their_forms() {
        for yes in ["12", "- 12 -", "xii", "Page 3", "page 3 of 9", "3/9"] {
            assert!(is_page_number(yes), "{yes}");
        }
        for no in ["12 apples", "Chapter 2", "mix", "Page three"] {
            assert!(!is_page_number(no), "{no}");
        }
    }
}

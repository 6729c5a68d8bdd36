//! Small text measures shared by the boilerplate classifier and the chunker: word counts, token
//! estimates and "does this end a sentence".

use unicode_segmentation::UnicodeSegmentation;

/// Characters that end a sentence in the scripts we expect (Latin, CJK, Devanagari).
const TERMINALS: &[char] = &['.', '!', '?', '。', '！', '？', '…', '‼', '⁇', '।', '｡'];

/// Characters that may follow a terminal and still belong to the sentence: `He said "no."`.
const CLOSERS: &[char] = &[
    '"', '\'', '”', '’', '»', '›', ')', ']', '}', '」', '』', '）', '】',
];

/// Number of words by Unicode (UAX #29) word boundaries; every Han or kana character counts as
/// a word, which is also roughly how BERT WordPiece vocabularies split them.
pub(crate) fn word_count(s: &str) -> usize {
    s.unicode_words().count()
}

/// Estimated model tokens: words × 1.3, rounded up. English WordPiece averages about 1.3 pieces
/// per word, close enough for sizing chunks without loading a tokenizer here.
pub(crate) fn estimate_tokens(s: &str) -> usize {
    tokens_for_words(word_count(s))
}

pub(crate) fn tokens_for_words(words: usize) -> usize {
    (words * 13).div_ceil(10)
}

/// Whether the text's last visible character closes a sentence (`... in Seoul.`, `"No!"`).
pub(crate) fn ends_sentence(s: &str) -> bool {
    let body = s.trim_end().trim_end_matches(CLOSERS);
    body.ends_with(TERMINALS)
}

pub(crate) fn is_terminal(c: char) -> bool {
    TERMINALS.contains(&c)
}

pub(crate) fn is_closer(c: char) -> bool {
    CLOSERS.contains(&c)
}

/// Whether the first letter-or-digit of `s` is a lowercase letter: the line continues a sentence.
pub(crate) fn starts_lowercase(s: &str) -> bool {
    s.chars()
        .find(|c| c.is_alphanumeric())
        .is_some_and(char::is_lowercase)
}

/// Collapses runs of whitespace into single spaces and trims the ends.
pub(crate) fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Cuts `s` to at most `max_chars` characters at a word boundary, marking the cut with `…`.
pub(crate) fn truncate_words(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    let cut = s.char_indices().nth(max_chars).map_or(s.len(), |(i, _)| i);
    let head = &s[..cut];
    let head = match head.rfind(char::is_whitespace) {
        Some(space) if space > 0 => &head[..space],
        _ => head,
    };
    format!("{}…", head.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentence_ends_see_through_closing_quotes() {
        assert!(ends_sentence("He said \"no.\""));
        assert!(ends_sentence("서울에서 만났다."));
        assert!(ends_sentence("会議が開かれた。"));
        assert!(!ends_sentence("(Ministry of National Defence)"));
        assert!(!ends_sentence("Next AI-powered kit helps"));
    }

    #[test]
    fn token_estimate_is_words_times_1_3() {
        assert_eq!(
            estimate_tokens("one two three four five six seven eight nine ten"),
            13
        );
        assert_eq!(estimate_tokens("one"), 2);
        assert_eq!(estimate_tokens(""), 0);
    }

    #[test]
    fn truncation_cuts_at_a_word() {
        assert_eq!(truncate_words("short title", 40), "short title");
        assert_eq!(truncate_words("alpha beta gamma", 12), "alpha beta…");
    }
}

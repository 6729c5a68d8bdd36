//! Copy-constrained decoding: the generated text may only be one contiguous stretch of a given
//! source text. Used to pull a short answer out of a checked sentence, so the short answer is
//! grounded by construction: a model can choose where the span starts and ends, never what it
//! says.

use std::collections::HashMap;

/// The tokens that may follow what was generated so far, when the output must be a span of
/// `source`.
pub(crate) struct SpanConstraint<'a> {
    source: &'a [u8],
    /// Lower-cased words a span may not start with.
    avoid_starts: &'a [String],
    /// Vocabulary bytes to token id (control tokens and empty entries left out).
    by_bytes: &'a HashMap<Vec<u8>, u32>,
    /// Longest token in bytes: no continuation longer than this can be one token.
    max_token_bytes: usize,
}

/// What may come next.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Allowed {
    /// Token ids that continue the span, in no particular order, without repeats.
    pub(crate) tokens: Vec<u32>,
    /// Whether the span may end here (it ends at a word boundary of the source).
    pub(crate) can_stop: bool,
}

impl<'a> SpanConstraint<'a> {
    pub(crate) fn new(
        source: &'a str,
        avoid_starts: &'a [String],
        by_bytes: &'a HashMap<Vec<u8>, u32>,
        max_token_bytes: usize,
    ) -> Self {
        Self {
            source: source.as_bytes(),
            avoid_starts,
            by_bytes,
            max_token_bytes,
        }
    }

    /// Where a span may start: the start of the source, a space (byte-level vocabularies attach
    /// the space to the word after it), or the first byte of a word after one; never at a word
    /// of `avoid_starts`.
    fn is_start(&self, p: usize) -> bool {
        let s = self.source;
        let char_boundary = (s[p] & 0xC0) != 0x80;
        if !(char_boundary && (p == 0 || s[p] == b' ' || s[p - 1].is_ascii_whitespace())) {
            return false;
        }
        let from = if s[p] == b' ' { p + 1 } else { p };
        let len = s[from..]
            .iter()
            .position(|b| b.is_ascii_whitespace() || matches!(b, b',' | b';' | b':'))
            .unwrap_or(s.len() - from);
        // "U.S." at a sentence end and "U.S" from the question are one word.
        let word = String::from_utf8_lossy(&s[from..from + len])
            .trim_end_matches(['.', '!', '?'])
            .to_lowercase();
        !self.avoid_starts.contains(&word)
    }

    pub(crate) fn allowed(&self, generated: &[u8]) -> Allowed {
        let s = self.source;
        let mut out = Allowed::default();
        for p in 0..s.len() {
            if generated.is_empty() && !self.is_start(p) {
                continue;
            }
            if !s[p..].starts_with(generated) {
                continue;
            }
            let end = p + generated.len();
            if !generated.is_empty()
                && (end == s.len() || !s[end].is_ascii_alphanumeric())
                && !generated.iter().all(u8::is_ascii_whitespace)
            {
                out.can_stop = true;
            }
            let rest = &s[end..];
            for len in 1..=rest.len().min(self.max_token_bytes) {
                if let Some(&id) = self.by_bytes.get(&rest[..len]) {
                    if !out.tokens.contains(&id) {
                        out.tokens.push(id);
                    }
                }
            }
        }
        out
    }
}

/// The index of the largest of `logits` among `candidates` (the first one on ties).
pub(crate) fn argmax_among(logits: &[f32], candidates: &[u32]) -> Option<u32> {
    candidates
        .iter()
        .copied()
        .filter(|&id| (id as usize) < logits.len())
        .fold(None, |best: Option<u32>, id| match best {
            Some(b) if logits[b as usize] >= logits[id as usize] => Some(b),
            _ => Some(id),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab(pieces: &[&str]) -> HashMap<Vec<u8>, u32> {
        pieces
            .iter()
            .enumerate()
            .map(|(i, p)| (p.as_bytes().to_vec(), i as u32))
            .collect()
    }

    fn names(v: &HashMap<Vec<u8>, u32>, ids: &[u32]) -> Vec<String> {
        let mut out: Vec<String> = ids
            .iter()
            .map(|id| {
                let (b, _) = v.iter().find(|(_, &i)| i == *id).unwrap();
                String::from_utf8(b.clone()).unwrap()
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_span_starts_at_a_word_and_continues_only_as_the_source_does() {
        let v = vocab(&[
            "Paul", " Paul", " Nak", "as", "one", " met", "aul", " Lee", "x",
        ]);
        let c = SpanConstraint::new("Lee met Paul Nakasone.", &[], &v, 8);
        let start = c.allowed(b"");
        assert_eq!(
            names(&v, &start.tokens),
            vec![" Nak", " Paul", " met", "Paul"]
        );
        assert!(!start.can_stop);
        let after_paul = c.allowed(b"Paul");
        assert_eq!(names(&v, &after_paul.tokens), vec![" Nak"]);
        assert!(after_paul.can_stop, "Paul ends at a word boundary");
        let mid_word = c.allowed(b"Paul Nak");
        assert_eq!(names(&v, &mid_word.tokens), vec!["as"]);
        assert!(!mid_word.can_stop, "a span cannot end inside Nakasone");
        assert!(c.allowed(b"Paul Nakasone").can_stop);
        assert_eq!(c.allowed(b"Kim"), Allowed::default());
    }

    #[test]
    fn a_span_never_starts_at_an_avoided_word() {
        let v = vocab(&["Paul", " Paul", " met", "Lee", " U"]);
        let avoid = vec!["met".to_string(), "lee".to_string(), "u.s".to_string()];
        let c = SpanConstraint::new("Lee met Paul of the U.S.", &avoid, &v, 8);
        assert_eq!(names(&v, &c.allowed(b"").tokens), vec![" Paul", "Paul"]);
    }

    #[test]
    fn argmax_among_ignores_tokens_outside_the_candidates() {
        let logits = [5.0, 1.0, 3.0, 3.0];
        assert_eq!(argmax_among(&logits, &[1, 2, 3]), Some(2));
        assert_eq!(argmax_among(&logits, &[9]), None);
        assert_eq!(argmax_among(&logits, &[]), None);
    }
}

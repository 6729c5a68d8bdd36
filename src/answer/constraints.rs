//! The question's own constraints against the passage an answer stands on: the names, numbers
//! and other content words a question pins its answer to ("in 2023", "in the Sony hack") must be
//! in that passage, or the answer is about something else. Called by the pipeline after the
//! citation check; pure functions of the texts.

use std::collections::BTreeSet;

use serde::Serialize;

use super::{content_words, Passage};

/// What of a question's constraints one passage (with its title) lacks.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Coverage {
    /// Numbers of the question (years, counts, ordinals written in digits) not in the passage.
    pub missing_numbers: Vec<String>,
    /// Capitalised words of the question (past its first word) not in the passage: names.
    pub missing_names: Vec<String>,
    /// Share of the question's content words (wh-words aside) found in the passage, in [0, 1];
    /// 1 when the question has none.
    pub share: f32,
}

impl Coverage {
    /// True when a number or a name the question asks about is missing from the passage.
    pub fn misses_specifics(&self) -> bool {
        !self.missing_numbers.is_empty() || !self.missing_names.is_empty()
    }

    /// True when a number of the question is missing from the passage: what docqa declines on.
    /// A missing name is not enough: names are often written otherwise in the passage than in
    /// the question ("American" for "US", "NSA" for "National Security Agency"), and declining
    /// on them cost 5 of 59 correct seeds answers while declining no more SQuAD 2.0
    /// unanswerable questions than verification does (docs/decisions.md, "Declining").
    pub fn misses_numbers(&self) -> bool {
        !self.missing_numbers.is_empty()
    }
}

/// Question words that ask rather than constrain: never required of a passage.
const ASKING: &[&str] = &[
    "why", "whose", "which", "what", "who", "whom", "when", "where", "how", "many", "much", "did",
    "does", "do", "name", "called", "type", "kind", "year", "long",
];

/// A word of the question as a passage must hold it: lower-cased, a plural `s` folded as
/// [`content_words`] folds it.
fn key(word: &str) -> String {
    content_words(word).into_iter().next().unwrap_or_default()
}

/// The sentences of `passages` that hold `short` (the short answer), each with its neighbours:
/// the text an answer stands on, for a judgement that is not distracted by the rest of the
/// passage. Of several sentences holding it, the two that share the most content words with
/// `question` are taken. `None` when no sentence holds the short answer as written.
pub fn evidence_window(question: &str, short: &str, passages: &[&Passage]) -> Option<String> {
    let needle = short.trim().to_lowercase();
    if needle.is_empty() {
        return None;
    }
    let asked = content_words(question);
    // (shared content words, passage, sentence index)
    let mut found: Vec<(usize, usize, usize)> = Vec::new();
    let split: Vec<Vec<String>> = passages
        .iter()
        .map(|p| super::split_sentences(&p.text))
        .collect();
    for (pi, sentences) in split.iter().enumerate() {
        for (si, s) in sentences.iter().enumerate() {
            if s.to_lowercase().contains(&needle) {
                let lo = si.saturating_sub(1);
                let hi = (si + 2).min(sentences.len());
                let near = content_words(&sentences[lo..hi].join(" "));
                found.push((asked.intersection(&near).count(), pi, si));
            }
        }
    }
    if found.is_empty() {
        return None;
    }
    // Most shared words first; ties in reading order.
    found.sort_by(|a, b| b.0.cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
    let mut chosen: Vec<(usize, usize)> = found.iter().take(2).map(|f| (f.1, f.2)).collect();
    chosen.sort();
    let mut taken: BTreeSet<(usize, usize)> = BTreeSet::new();
    let mut parts = Vec::new();
    for (pi, si) in chosen {
        let sentences = &split[pi];
        let lo = si.saturating_sub(1);
        let hi = (si + 2).min(sentences.len());
        for (i, sentence) in sentences.iter().enumerate().take(hi).skip(lo) {
            if taken.insert((pi, i)) {
                parts.push(sentence.trim().to_string());
            }
        }
    }
    Some(parts.join(" "))
}

/// How far `passage` (and its `title`) covers `question`'s constraints.
pub fn coverage(question: &str, passage: &str, title: &str) -> Coverage {
    use unicode_segmentation::UnicodeSegmentation;
    let mut held = content_words(passage);
    held.extend(content_words(title));
    // Numbers are compared without thousands separators: "1,500" and "1500".
    let digits = |w: &str| w.chars().filter(char::is_ascii_digit).collect::<String>();
    let held_numbers: BTreeSet<String> = held
        .iter()
        .filter(|w| w.chars().any(|c| c.is_ascii_digit()))
        .map(|w| digits(w))
        .collect();
    let mut cov = Coverage::default();
    let words: Vec<&str> = question.unicode_words().collect();
    for (i, w) in words.iter().enumerate() {
        let k = key(w);
        if k.is_empty() || ASKING.contains(&k.as_str()) {
            continue;
        }
        if w.chars().any(|c| c.is_ascii_digit()) {
            let w = w.to_lowercase();
            if !held_numbers.contains(&digits(&w)) && !cov.missing_numbers.contains(&w) {
                cov.missing_numbers.push(w);
            }
        } else if i > 0
            && w.chars().next().is_some_and(char::is_uppercase)
            && !held.contains(&k)
            && !cov.missing_names.contains(&w.to_lowercase())
        {
            cov.missing_names.push(w.to_lowercase());
        }
    }
    let asked: Vec<String> = content_words(question)
        .into_iter()
        .filter(|w| !ASKING.contains(&w.as_str()))
        .collect();
    cov.share = if asked.is_empty() {
        1.0
    } else {
        asked.iter().filter(|w| held.contains(*w)).count() as f32 / asked.len() as f32
    };
    cov
}

/// How many of the question's names `c` lacks, and how much of its wording: lower is better
/// covered. Numbers do not count: a number of the question pins the answer's own fact (the
/// date of that event), and a passage that holds it beside another fact is about something
/// else ("18 took part in October" beside "the July 17-28 training").
fn gap(c: &Coverage) -> (usize, f32) {
    (c.missing_names.len(), 1.0 - c.share)
}

/// [`coverage`] of `question` by several passages together.
pub fn coverage_by(question: &str, passages: &[&Passage]) -> Coverage {
    let text: Vec<&str> = passages.iter().map(|p| p.text.as_str()).collect();
    let titles: Vec<&str> = passages.iter().map(|p| p.title.as_str()).collect();
    coverage(question, &text.join("\n"), &titles.join("\n"))
}

/// The passage that, added to `sources`, covers a name of `question` that they lack (the best
/// such, fewest names left missing, then most wording covered); `None` when no passage adds
/// one. An answer drawn from two documents ("who commanded the organisation that
/// hosts the exercise when he visited Seoul") stands on both.
pub fn complement(question: &str, sources: &[usize], passages: &[Passage]) -> Option<usize> {
    let held: Vec<&Passage> = sources.iter().map(|&i| &passages[i]).collect();
    let base = gap(&coverage_by(question, &held));
    if base.0 == 0 {
        return None;
    }
    (0..passages.len())
        .filter(|j| !sources.contains(j))
        .map(|j| {
            let mut with = held.clone();
            with.push(&passages[j]);
            (j, gap(&coverage_by(question, &with)))
        })
        .filter(|(_, g)| g.0 < base.0)
        .min_by(|a, b| {
            a.1 .0
                .cmp(&b.1 .0)
                .then(a.1 .1.total_cmp(&b.1 .1))
                .then(a.0.cmp(&b.0))
        })
        .map(|(j, _)| j)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_year_the_passage_does_not_give_is_missing() {
        let c = coverage(
            "Which South Korean president visited Washington in 2023?",
            "South Korean President Park Geun-hye visited Washington last week, in October 2015.",
            "Korea news",
        );
        assert_eq!(c.missing_numbers, vec!["2023"]);
        assert!(c.missing_names.is_empty(), "{c:?}");
        assert!(c.misses_specifics());
    }

    #[test]
    fn names_are_matched_in_the_title_too_and_plurals_fold() {
        let c = coverage(
            "What malware did the Lazarus group use against Sony Pictures?",
            "The group planted wipers on the studio's networks.",
            "Sony Pictures hack",
        );
        assert_eq!(c.missing_names, vec!["lazarus"]);
        let all = coverage(
            "How many reptiles live in the Amazon?",
            "378 species of reptiles live in the Amazon.",
            "",
        );
        assert!(!all.misses_specifics());
        assert_eq!(all.share, 1.0);
    }

    #[test]
    fn a_second_passage_that_holds_a_missing_name_is_its_complement() {
        let p = |text: &str| Passage {
            id: crate::corpus::ChunkId::new("doc", 0),
            title: String::new(),
            text: text.into(),
        };
        let passages = [
            p("General Paul Nakasone visited Seoul and met the defense minister."),
            p("The weather in Seoul was mild."),
            p("Cyber Flag, hosted by the US Cyber Command, has been held since 2011."),
        ];
        let q = "Who commanded the organisation that hosts Cyber Flag when he visited Seoul?";
        assert_eq!(complement(q, &[0], &passages), Some(2));
        // Nothing is missing: no complement.
        assert_eq!(complement("Who visited Seoul?", &[0], &passages), None);
    }

    #[test]
    fn the_evidence_window_is_the_sentences_around_the_short_answer() {
        let p = |text: &str| Passage {
            id: crate::corpus::ChunkId::new("doc", 0),
            title: String::new(),
            text: text.into(),
        };
        let a = p(
            "The port opened in 1901. It was rebuilt by Ana Ferreira in 1932. \
Ferries use the south pier. Boats use the north pier. The town has a museum.",
        );
        let b = p("Ana Ferreira also designed a school. It opened in 1950.");
        let held = [&a, &b];
        // Of the two sentences naming her, the one that shares the question's words, with its
        // neighbours.
        assert_eq!(
            evidence_window("Who rebuilt the port in 1932?", "Ana Ferreira", &held[..1]).as_deref(),
            Some(
                "The port opened in 1901. It was rebuilt by Ana Ferreira in 1932. \
Ferries use the south pier."
            )
        );
        // Two passages: both sentences, in reading order, each once.
        let both = evidence_window("Who rebuilt the port?", "ana ferreira", &held).unwrap();
        assert!(both.starts_with("The port opened in 1901."), "{both}");
        assert!(both.ends_with("It opened in 1950."), "{both}");
        assert_eq!(both.matches("It was rebuilt").count(), 1);
        // A short answer the text does not hold as written: no window.
        assert_eq!(
            evidence_window("Who rebuilt it?", "A. Ferreira", &held),
            None
        );
        assert_eq!(evidence_window("Who rebuilt it?", " ", &held), None);
    }

    #[test]
    fn numbers_match_without_separators_and_the_first_word_is_no_name() {
        let c = coverage(
            "Where did 1,500 people gather?",
            "Some 1500 people gathered in the square.",
            "",
        );
        assert!(!c.misses_specifics(), "{c:?}");
        assert!(c.share < 1.0);
    }
}

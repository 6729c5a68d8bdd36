//! BM25 keyword search over chunk texts: the lexical half of hybrid retrieval. Built by
//! `docqa index` next to the vector index and stored with it; queried by the retriever, whose
//! results are fused with vector search (see [`super::fusion`]).
//!
//! Tokens: NFKC, lower case, Unicode word boundaries; English stopwords dropped, Latin diacritics
//! folded (`Amazônia` = `amazonia`), English words reduced by the Porter2 (Snowball English)
//! stemmer. Scripts written without spaces between words (Han, kana, Hangul, Thai, ...) become
//! character unigrams and bigrams, so `사이버훈련` matches `사이버 훈련을`.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use unicode_normalization::{char::is_combining_mark, UnicodeNormalization};
use unicode_segmentation::UnicodeSegmentation;

/// BM25 constants: `k1` saturates term frequency, `b` normalises by chunk length.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bm25Params {
    pub k1: f32,
    pub b: f32,
}

impl Default for Bm25Params {
    /// The usual Lucene / Robertson values.
    fn default() -> Bm25Params {
        Bm25Params { k1: 1.2, b: 0.75 }
    }
}

/// An inverted index over chunk texts, addressed by the chunks' positions in the slice it was
/// built from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bm25 {
    params: Bm25Params,
    /// Sorted, so lookups are binary searches and the serialized form is deterministic.
    terms: Vec<String>,
    /// `postings[t]`: `(chunk index, term frequency)` for `terms[t]`, by ascending chunk index.
    postings: Vec<Vec<(u32, u32)>>,
    /// Token count per chunk.
    doc_lens: Vec<u32>,
    avg_len: f32,
}

impl Bm25 {
    /// Indexes `texts`; search results refer to positions in this slice.
    pub fn build(texts: &[&str], params: Bm25Params) -> Bm25 {
        let mut index: BTreeMap<String, Vec<(u32, u32)>> = BTreeMap::new();
        let mut doc_lens = Vec::with_capacity(texts.len());
        for (doc, text) in texts.iter().enumerate() {
            let tokens = tokenize(text);
            doc_lens.push(tokens.len() as u32);
            let mut counts: HashMap<String, u32> = HashMap::new();
            for token in tokens {
                *counts.entry(token).or_default() += 1;
            }
            for (term, tf) in counts {
                index.entry(term).or_default().push((doc as u32, tf));
            }
        }
        let total: u64 = doc_lens.iter().map(|&l| u64::from(l)).sum();
        let avg_len = if doc_lens.is_empty() {
            0.0
        } else {
            total as f32 / doc_lens.len() as f32
        };
        let (terms, mut postings): (Vec<String>, Vec<Vec<(u32, u32)>>) = index.into_iter().unzip();
        for list in &mut postings {
            // Chunks were visited in order, but HashMap iteration is not: keep lists sorted.
            list.sort_unstable();
        }
        Bm25 {
            params,
            terms,
            postings,
            doc_lens,
            avg_len,
        }
    }

    /// Number of chunks indexed.
    pub fn len(&self) -> usize {
        self.doc_lens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.doc_lens.is_empty()
    }

    pub fn params(&self) -> Bm25Params {
        self.params
    }

    /// The `k` best chunks for `query` as `(chunk index, score)`, best first; ties go to the lower
    /// index. Chunks sharing no term with the query are not returned, so fewer than `k` may come
    /// back (none for a query of stopwords only).
    pub fn search(&self, query: &str, k: usize) -> Vec<(usize, f32)> {
        if k == 0 || self.is_empty() {
            return Vec::new();
        }
        let mut query_terms = tokenize(query);
        query_terms.sort();
        query_terms.dedup();

        let n = self.len() as f32;
        let Bm25Params { k1, b } = self.params;
        let avg_len = self.avg_len.max(f32::MIN_POSITIVE);
        let mut scores = vec![0.0f32; self.len()];
        for term in &query_terms {
            let Ok(t) = self.terms.binary_search(term) else {
                continue;
            };
            let list = &self.postings[t];
            let df = list.len() as f32;
            // The "+1" form of IDF never goes negative, so a very common term cannot lower a score.
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            for &(doc, tf) in list {
                let tf = tf as f32;
                let len_norm = 1.0 - b + b * self.doc_lens[doc as usize] as f32 / avg_len;
                scores[doc as usize] += idf * tf * (k1 + 1.0) / (tf + k1 * len_norm);
            }
        }

        let mut hits: Vec<(usize, f32)> = scores
            .into_iter()
            .enumerate()
            .filter(|&(_, s)| s > 0.0)
            .collect();
        let order = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if hits.len() > k {
            hits.select_nth_unstable_by(k - 1, order);
            hits.truncate(k);
        }
        hits.sort_unstable_by(order);
        hits
    }
}

/// Words too common in English questions and passages to help ranking.
const STOPWORDS: &[&str] = &[
    "a", "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be",
    "been", "before", "being", "but", "by", "can", "could", "did", "do", "does", "doing", "during",
    "each", "for", "from", "had", "has", "have", "having", "he", "her", "hers", "him", "his",
    "how", "i", "if", "in", "into", "is", "it", "its", "itself", "me", "more", "most", "my", "no",
    "nor", "not", "of", "on", "or", "other", "our", "ours", "she", "should", "so", "some", "such",
    "than", "that", "the", "their", "theirs", "them", "then", "there", "these", "they", "this",
    "those", "through", "to", "too", "very", "was", "we", "were", "what", "when", "where", "which",
    "while", "who", "whom", "whose", "why", "will", "with", "would", "you", "your", "yours",
];

/// Scripts written without spaces between words, indexed as character n-grams.
fn is_unspaced_script(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0EFF         // Thai, Lao
        | 0x1000..=0x109F       // Myanmar
        | 0x1100..=0x11FF       // Hangul Jamo
        | 0x1780..=0x17FF       // Khmer
        | 0x2E80..=0x2FDF       // CJK radicals
        | 0x3040..=0x30FF       // Hiragana, Katakana
        | 0x3100..=0x31FF       // Bopomofo, Hangul compatibility Jamo, Katakana extensions
        | 0x3400..=0x4DBF       // CJK extension A
        | 0x4E00..=0x9FFF       // CJK unified ideographs
        | 0xA960..=0xA97F       // Hangul Jamo extended A
        | 0xAC00..=0xD7FF       // Hangul syllables, Jamo extended B
        | 0xF900..=0xFAFF       // CJK compatibility ideographs
        | 0xFF66..=0xFF9F       // half-width Katakana
        | 0x20000..=0x3FFFF     // CJK extensions B and later
    )
}

/// Splits text into index terms (see the module docs). Used for both chunks and queries, so the
/// two always agree.
pub fn tokenize(text: &str) -> Vec<String> {
    let normalized = text.nfkc().collect::<String>().to_lowercase();
    let mut tokens = Vec::new();
    let mut run = String::new();
    for segment in normalized.split_word_bounds() {
        // Word-boundary rules split Han text into single characters and keep a Hangul word
        // whole; a run collects unspaced characters until a space or punctuation ends it.
        let mut word_start = None;
        for (i, c) in segment.char_indices() {
            if is_unspaced_script(c) {
                if let Some(start) = word_start.take() {
                    push_word(&segment[start..i], &mut tokens);
                }
                run.push(c);
            } else {
                if !run.is_empty() {
                    push_ngrams(&run, &mut tokens);
                    run.clear();
                }
                word_start.get_or_insert(i);
            }
        }
        if let Some(start) = word_start {
            push_word(&segment[start..], &mut tokens);
        }
    }
    if !run.is_empty() {
        push_ngrams(&run, &mut tokens);
    }
    tokens
}

/// Unigrams and bigrams of a run of unspaced-script characters.
fn push_ngrams(run: &str, tokens: &mut Vec<String>) {
    let chars: Vec<char> = run.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        tokens.push(c.to_string());
        if let Some(&next) = chars.get(i + 1) {
            tokens.push([c, next].iter().collect());
        }
    }
}

/// Normalises one lower-cased word and adds it unless it is a stopword.
fn push_word(word: &str, tokens: &mut Vec<String>) {
    if !word.chars().any(char::is_alphanumeric) {
        return;
    }
    let word = word.replace(['’', '‘', 'ʼ'], "'");
    let word = word.trim_matches(|c: char| !c.is_alphanumeric());
    let word = word.strip_suffix("'s").unwrap_or(word);
    // "u.s" = "us", "can't" = "cant", "7,000" = "7000".
    let word: String = word
        .chars()
        .filter(|c| !matches!(c, '\'' | '.' | ','))
        .collect();
    if word.is_empty() || STOPWORDS.contains(&word.as_str()) {
        return;
    }
    let word = fold_latin(word);
    if word.bytes().all(|b| b.is_ascii_lowercase()) {
        tokens.push(porter2::stem(&word));
    } else {
        tokens.push(word);
    }
}

/// Strips diacritics from a word in Latin letters (`amazônia` -> `amazonia`); words in other
/// scripts are returned unchanged, since their combining marks are letters.
fn fold_latin(word: String) -> String {
    if word.is_ascii() {
        return word;
    }
    let folded: String = word.nfd().filter(|&c| !is_combining_mark(c)).collect();
    if folded.is_ascii() {
        folded
    } else {
        word
    }
}

/// The Porter2 (Snowball English) stemmer, following
/// <https://snowballstem.org/algorithms/english/stemmer.html>.
mod porter2 {
    fn is_vowel(b: u8) -> bool {
        matches!(b, b'a' | b'e' | b'i' | b'o' | b'u' | b'y')
    }

    /// Whether `w` ends in a short syllable: consonant-vowel-consonant (last not `w`, `x`, `Y`),
    /// or a two-letter word vowel-consonant.
    fn ends_short_syllable(w: &[u8]) -> bool {
        match w.len() {
            0 | 1 => false,
            2 => is_vowel(w[0]) && !is_vowel(w[1]),
            n => {
                !is_vowel(w[n - 3])
                    && is_vowel(w[n - 2])
                    && !is_vowel(w[n - 1])
                    && !matches!(w[n - 1], b'w' | b'x' | b'Y')
            }
        }
    }

    /// Start of the region after the first non-vowel that follows a vowel, from `from`.
    fn region_after(w: &[u8], from: usize) -> usize {
        (from + 1..w.len())
            .find(|&i| !is_vowel(w[i]) && is_vowel(w[i - 1]))
            .map_or(w.len(), |i| i + 1)
    }

    fn ends(w: &[u8], suffix: &str) -> bool {
        w.ends_with(suffix.as_bytes())
    }

    fn replace(w: &mut Vec<u8>, suffix_len: usize, with: &str) {
        w.truncate(w.len() - suffix_len);
        w.extend_from_slice(with.as_bytes());
    }

    /// The longest of `suffixes` that `w` ends with.
    fn longest<'a>(w: &[u8], suffixes: &[(&'a str, &'a str)]) -> Option<(&'a str, &'a str)> {
        suffixes
            .iter()
            .filter(|(s, _)| ends(w, s))
            .max_by_key(|(s, _)| s.len())
            .copied()
    }

    const EXCEPTIONS: &[(&str, &str)] = &[
        ("skis", "ski"),
        ("skies", "sky"),
        ("dying", "die"),
        ("lying", "lie"),
        ("tying", "tie"),
        ("idly", "idl"),
        ("gently", "gentl"),
        ("ugly", "ugli"),
        ("early", "earli"),
        ("only", "onli"),
        ("singly", "singl"),
        ("sky", "sky"),
        ("news", "news"),
        ("howe", "howe"),
        ("atlas", "atlas"),
        ("cosmos", "cosmos"),
        ("bias", "bias"),
        ("andes", "andes"),
    ];

    const AFTER_STEP_1A: &[&str] = &[
        "inning", "outing", "canning", "herring", "earring", "proceed", "exceed", "succeed",
    ];

    const STEP2: &[(&str, &str)] = &[
        ("tional", "tion"),
        ("enci", "ence"),
        ("anci", "ance"),
        ("abli", "able"),
        ("entli", "ent"),
        ("izer", "ize"),
        ("ization", "ize"),
        ("ational", "ate"),
        ("ation", "ate"),
        ("ator", "ate"),
        ("alism", "al"),
        ("aliti", "al"),
        ("alli", "al"),
        ("fulness", "ful"),
        ("ousli", "ous"),
        ("ousness", "ous"),
        ("iveness", "ive"),
        ("iviti", "ive"),
        ("biliti", "ble"),
        ("bli", "ble"),
        ("ogi", "og"),
        ("fulli", "ful"),
        ("lessli", "less"),
        ("li", ""),
    ];

    const STEP3: &[(&str, &str)] = &[
        ("tional", "tion"),
        ("ational", "ate"),
        ("alize", "al"),
        ("icate", "ic"),
        ("iciti", "ic"),
        ("ical", "ic"),
        ("ful", ""),
        ("ness", ""),
        ("ative", ""),
    ];

    const STEP4: &[(&str, &str)] = &[
        ("al", ""),
        ("ance", ""),
        ("ence", ""),
        ("er", ""),
        ("ic", ""),
        ("able", ""),
        ("ible", ""),
        ("ant", ""),
        ("ement", ""),
        ("ment", ""),
        ("ent", ""),
        ("ism", ""),
        ("ate", ""),
        ("iti", ""),
        ("ous", ""),
        ("ive", ""),
        ("ize", ""),
        ("ion", ""),
    ];

    /// Stems a lower-case ASCII word.
    pub(super) fn stem(word: &str) -> String {
        if word.len() <= 2 {
            return word.to_string();
        }
        if let Some((_, stem)) = EXCEPTIONS.iter().find(|(w, _)| *w == word) {
            return stem.to_string();
        }
        let mut w: Vec<u8> = word.trim_start_matches('\'').bytes().collect();
        if w.is_empty() {
            return String::new();
        }
        // A 'y' acting as a consonant is marked 'Y' so that it is not taken for a vowel.
        if w[0] == b'y' {
            w[0] = b'Y';
        }
        for i in 1..w.len() {
            if w[i] == b'y' && is_vowel(w[i - 1]) {
                w[i] = b'Y';
            }
        }
        let special = [
            "gener", "commun", "arsen", "past", "univers", "later", "emerg", "organ",
        ]
        .iter()
        .find(|p| w.starts_with(p.as_bytes()));
        let r1 = special.map_or_else(|| region_after(&w, 0), |p| p.len());
        let r2 = region_after(&w, r1);

        // Step 0: possessives.
        for suffix in ["'s'", "'s", "'"] {
            if ends(&w, suffix) {
                w.truncate(w.len() - suffix.len());
                break;
            }
        }

        // Step 1a: plurals.
        if ends(&w, "sses") {
            replace(&mut w, 4, "ss");
        } else if ends(&w, "ied") || ends(&w, "ies") {
            let with = if w.len() > 4 { "i" } else { "ie" };
            replace(&mut w, 3, with);
        } else if ends(&w, "s")
            && !ends(&w, "us")
            && !ends(&w, "ss")
            // A vowel before the letter preceding the s: "gaps" -> "gap", but "gas" stays.
            && w[..w.len() - 2].iter().any(|&b| is_vowel(b))
        {
            w.pop();
        }
        if AFTER_STEP_1A.iter().any(|e| w == e.as_bytes()) {
            return finish(w);
        }

        // Step 1b: -ed, -ing.
        let step1b = ["eedly", "ingly", "edly", "eed", "ing", "ed"]
            .into_iter()
            .find(|s| ends(&w, s));
        match step1b {
            Some(s @ ("eedly" | "eed")) if w.len() - s.len() >= r1 => {
                replace(&mut w, s.len(), "ee");
            }
            // "-eed" outside R1 ("feed") stays; "-ed" is not tried instead.
            Some("eedly" | "eed") | None => {}
            Some(s) => {
                let stem_len = w.len() - s.len();
                if w[..stem_len].iter().any(|&b| is_vowel(b)) {
                    w.truncate(stem_len);
                    if ends(&w, "at") || ends(&w, "bl") || ends(&w, "iz") {
                        w.push(b'e');
                    } else if ["bb", "dd", "ff", "gg", "mm", "nn", "pp", "rr", "tt"]
                        .iter()
                        .any(|d| ends(&w, d))
                    {
                        w.pop();
                    } else if r1 >= w.len() && ends_short_syllable(&w) {
                        w.push(b'e');
                    }
                }
            }
        }

        // Step 1c: final y after a consonant (not the first letter) becomes i.
        let n = w.len();
        if n > 2 && matches!(w[n - 1], b'y' | b'Y') && !is_vowel(w[n - 2]) {
            w[n - 1] = b'i';
        }

        // Step 2.
        if let Some((suffix, with)) = longest(&w, STEP2) {
            let start = w.len() - suffix.len();
            if start >= r1 {
                match suffix {
                    "ogi" => {
                        if start > 0 && w[start - 1] == b'l' {
                            replace(&mut w, 3, "og");
                        }
                    }
                    "li" => {
                        let valid = start > 0
                            && matches!(
                                w[start - 1],
                                b'c' | b'd' | b'e' | b'g' | b'h' | b'k' | b'm' | b'n' | b'r' | b't'
                            );
                        if valid {
                            w.truncate(start);
                        }
                    }
                    _ => replace(&mut w, suffix.len(), with),
                }
            }
        }

        // Step 3.
        if let Some((suffix, with)) = longest(&w, STEP3) {
            let start = w.len() - suffix.len();
            if start >= r1 && (suffix != "ative" || start >= r2) {
                replace(&mut w, suffix.len(), with);
            }
        }

        // Step 4.
        if let Some((suffix, _)) = longest(&w, STEP4) {
            let start = w.len() - suffix.len();
            if start >= r2
                && (suffix != "ion" || (start > 0 && matches!(w[start - 1], b's' | b't')))
            {
                w.truncate(start);
            }
        }

        // Step 5.
        let n = w.len();
        if ends(&w, "e") {
            let start = n - 1;
            if start >= r2 || (start >= r1 && !ends_short_syllable(&w[..start])) {
                w.pop();
            }
        } else if ends(&w, "ll") && n > r2 {
            w.pop();
        }
        finish(w)
    }

    fn finish(w: Vec<u8>) -> String {
        w.into_iter()
            .map(|b| if b == b'Y' { 'y' } else { b as char })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn porter2_matches_the_snowball_reference() {
        // Pairs from the Snowball English vocabulary and its published output.
        let pairs = [
            ("abandoned", "abandon"),
            ("abilities", "abil"),
            ("academy", "academi"),
            ("accompanied", "accompani"),
            ("accidental", "accident"),
            ("accidents", "accid"),
            ("added", "ad"),
            ("adds", "add"),
            ("admiralty", "admiralti"),
            ("abhorrence", "abhorr"),
            ("absorption", "absorpt"),
            ("acuter", "acut"),
            ("adios", "adio"),
            ("abed", "abe"),
            ("aborigines", "aborigin"),
            ("accountabilities", "account"),
            ("abbreviation", "abbrevi"),
            ("abeyance", "abey"),
            ("abjectly", "abject"),
            ("abominably", "abomin"),
            ("administration", "administr"),
            ("administrative", "administr"),
            ("adulatory", "adulatori"),
            ("accessories", "accessori"),
            ("acknowledgments", "acknowledg"),
            ("generously", "generous"),
            ("caresses", "caress"),
            ("ponies", "poni"),
            ("ties", "tie"),
            ("cries", "cri"),
            ("gas", "gas"),
            ("gaps", "gap"),
            ("running", "run"),
            ("hoping", "hope"),
            ("national", "nation"),
            ("happiness", "happi"),
            ("skies", "sky"),
            ("dying", "die"),
            ("news", "news"),
            ("feed", "feed"),
            ("agreed", "agre"),
            ("cooperation", "cooper"),
            ("exercises", "exercis"),
            ("exercise", "exercis"),
            ("fall", "fall"),
        ];
        for (word, stem) in pairs {
            assert_eq!(porter2::stem(word), stem, "stem of {word}");
        }
    }

    #[test]
    fn tokenizes_english_with_stopwords_stems_and_folding() {
        assert_eq!(
            tokenize("The U.S. agreed to regular cyber-defense drills in Amazônia’s rainforests!"),
            [
                "us",
                "agre",
                "regular",
                "cyber",
                "defens",
                "drill",
                "amazonia",
                "rainforest"
            ]
        );
        assert_eq!(tokenize("Ｆｕｌｌ－width ＡＢＣ"), ["full", "width", "abc"]);
        assert_eq!(tokenize("7,000,000 sq km"), ["7000000", "sq", "km"]);
    }

    #[test]
    fn tokenizes_unspaced_scripts_into_character_ngrams() {
        assert_eq!(
            tokenize("사이버 훈련"),
            ["사", "사이", "이", "이버", "버", "훈", "훈련", "련"]
        );
        assert_eq!(
            tokenize("网络安全"),
            ["网", "网络", "络", "络安", "安", "安全", "全"]
        );
        assert_eq!(
            tokenize("韩国Korea合作"),
            ["韩", "韩国", "国", "korea", "合", "合作", "作"]
        );
    }

    fn build(texts: &[&str]) -> Bm25 {
        Bm25::build(texts, Bm25Params::default())
    }

    #[test]
    fn ranks_the_matching_chunk_first() {
        let index = build(&[
            "South Korea and the United States agreed to hold regular cyber defense drills.",
            "The weather in Seoul was sunny on Thursday.",
            "North Korea was blamed for the hack on Sony Pictures.",
        ]);
        let hits = index.search("Who was blamed for hacking Sony?", 3);
        assert_eq!(hits[0].0, 2);
        assert!(hits.iter().all(|&(_, s)| s > 0.0));
        let hits = index.search("cyber drill", 3);
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [0]);
        assert!(index.search("the of and", 3).is_empty());
        assert!(index.search("cyber", 0).is_empty());
    }

    #[test]
    fn korean_and_chinese_queries_match() {
        let index = build(&[
            "한국과 미국은 사이버 방어 훈련을 정례화하기로 합의했다.",
            "북한의 해킹 공격이 늘었다.",
            "韩美两国同意加强网络安全合作。",
            "The two countries agreed on cyber drills.",
        ]);
        assert_eq!(index.search("사이버 훈련", 2)[0].0, 0);
        // No space and a different particle: bigrams still match.
        assert_eq!(index.search("사이버훈련은", 2)[0].0, 0);
        assert_eq!(index.search("해킹", 2)[0].0, 1);
        assert_eq!(index.search("网络安全", 2)[0].0, 2);
    }

    #[test]
    fn ties_break_by_chunk_index_and_k_limits() {
        let index = build(&["cyber drill", "cyber drill", "cyber drill", "other text"]);
        let hits = index.search("cyber", 2);
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(hits[0].1, hits[1].1);
    }

    #[test]
    fn round_trips_through_json_and_handles_empty_input() {
        let index = build(&["alpha beta", "beta gamma"]);
        let json = serde_json::to_string(&index).unwrap();
        let back: Bm25 = serde_json::from_str(&json).unwrap();
        assert_eq!(back, index);
        assert_eq!(back.search("gamma", 5), index.search("gamma", 5));

        let empty = build(&[]);
        assert!(empty.is_empty());
        assert!(empty.search("alpha", 5).is_empty());
        let blank = build(&["", "  "]);
        assert!(blank.search("alpha", 5).is_empty());
    }

    /// Retrieval over the SQuAD dev sample (24 articles, 300 questions): the chunk holding the
    /// evidence should be among the top 5 for nearly every question. Runs in well under a second.
    #[test]
    fn squad_dev_retrieval_quality() {
        use crate::corpus::{chunk_documents, load_dir, ChunkerConfig};
        use std::path::Path;

        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("evals/squad-dev");
        let started = std::time::Instant::now();
        let docs = load_dir(&root).unwrap().documents;
        let chunks = chunk_documents(&docs, &ChunkerConfig::default()).unwrap();
        let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        let index = Bm25::build(&texts, Bm25Params::default());

        let qa = std::fs::read_to_string(root.join("qa.jsonl")).unwrap();
        let (mut questions, mut hits_at_5, mut reciprocal_ranks) = (0usize, 0usize, 0.0f64);
        for line in qa.lines().filter(|l| !l.trim().is_empty()) {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            let evidence: Vec<(String, usize, usize)> = row["evidence"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    let (start, end) = (e["start"].as_u64().unwrap(), e["end"].as_u64().unwrap());
                    (
                        e["file"].as_str().unwrap().to_string(),
                        start as usize,
                        end as usize,
                    )
                })
                .collect();
            let ranked = index.search(row["question"].as_str().unwrap(), 10);
            let first_hit = ranked.iter().position(|&(i, _)| {
                let c = &chunks[i];
                evidence.iter().any(|(file, start, end)| {
                    c.doc.as_str() == file && c.start < *end && *start < c.end
                })
            });
            questions += 1;
            if first_hit.is_some_and(|rank| rank < 5) {
                hits_at_5 += 1;
            }
            if let Some(rank) = first_hit {
                reciprocal_ranks += 1.0 / (rank as f64 + 1.0);
            }
        }
        let hit5 = hits_at_5 as f64 / questions as f64;
        let mrr10 = reciprocal_ranks / questions as f64;
        eprintln!(
            "squad-dev BM25: {} chunks, {questions} questions, hit@5 {hit5:.3}, MRR@10 {mrr10:.3}, {:?}",
            chunks.len(),
            started.elapsed()
        );
        assert_eq!(questions, 300);
        assert!(hit5 >= 0.90, "hit@5 {hit5:.3}");
        assert!(mrr10 >= 0.78, "MRR@10 {mrr10:.3}");
    }
}

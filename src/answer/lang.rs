//! The language of a question, told by its writing system, and the prompts that carry a
//! question into English for retrieval and an answer back into the question's language. Called
//! by the pipeline; MiniLM embeds English only, so a question in another script is retrieved by
//! its English translation (dense) beside its own words (BM25).

use crate::generate::Prompt;

/// A writing system docqa tells apart. Latin-script languages are not told apart: MiniLM
/// handles their shared words well enough, and drafting follows the question as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Script {
    Latin,
    Hangul,
    /// Han characters with kana: Japanese.
    Japanese,
    /// Han characters without kana: Chinese.
    Han,
    Cyrillic,
    Greek,
    Arabic,
    Hebrew,
    Devanagari,
    Thai,
}

impl Script {
    /// The language a reply in this script is asked for, by name.
    pub fn language(self) -> &'static str {
        match self {
            Self::Latin => "English",
            Self::Hangul => "Korean",
            Self::Japanese => "Japanese",
            Self::Han => "Chinese",
            Self::Cyrillic => "Russian",
            Self::Greek => "Greek",
            Self::Arabic => "Arabic",
            Self::Hebrew => "Hebrew",
            Self::Devanagari => "Hindi",
            Self::Thai => "Thai",
        }
    }

    fn of(c: char) -> Option<Self> {
        Some(match c as u32 {
            0x41..=0x5A | 0x61..=0x7A | 0xC0..=0x24F => Self::Latin,
            0x1100..=0x11FF | 0x3130..=0x318F | 0xAC00..=0xD7AF => Self::Hangul,
            0x3040..=0x30FF => Self::Japanese,
            0x4E00..=0x9FFF | 0x3400..=0x4DBF => Self::Han,
            0x400..=0x4FF => Self::Cyrillic,
            0x370..=0x3FF => Self::Greek,
            0x600..=0x6FF => Self::Arabic,
            0x590..=0x5FF => Self::Hebrew,
            0x900..=0x97F => Self::Devanagari,
            0xE00..=0xE7F => Self::Thai,
            _ => return None,
        })
    }
}

/// The script most of `text`'s letters are written in (Han with any kana counts as Japanese);
/// `None` for text without letters. Latin letters in a mostly Korean question (an acronym such
/// as "NSA") do not make it Latin.
pub fn dominant_script(text: &str) -> Option<Script> {
    let mut counts: Vec<(Script, usize)> = Vec::new();
    for s in text.chars().filter_map(Script::of) {
        match counts.iter_mut().find(|(k, _)| *k == s) {
            Some((_, n)) => *n += 1,
            None => counts.push((s, 1)),
        }
    }
    let kana = counts.iter().any(|(s, _)| *s == Script::Japanese);
    if kana {
        let han = counts
            .iter()
            .find(|(s, _)| *s == Script::Han)
            .map_or(0, |(_, n)| *n);
        counts.retain(|(s, _)| *s != Script::Han);
        if let Some((_, n)) = counts.iter_mut().find(|(s, _)| *s == Script::Japanese) {
            *n += han;
        }
    }
    counts.into_iter().max_by_key(|(_, n)| *n).map(|(s, _)| s)
}

const TRANSLATE_SYSTEM: &str = "You are a careful translator.";

/// Asks for `question` in English, for retrieval and drafting over English documents.
pub fn to_english_prompt(question: &str) -> Prompt {
    Prompt::new(
        TRANSLATE_SYSTEM,
        format!(
            "Translate this question into English. Keep names, numbers and terms exact. Reply \
             with the English question only.\n\n{}",
            question.trim()
        ),
    )
}

/// Asks for a checked English `answer` in `language`, its citation markers kept.
pub fn from_english_prompt(answer: &str, language: &str) -> Prompt {
    Prompt::new(
        TRANSLATE_SYSTEM,
        format!(
            "Translate this text into {language}. Keep every citation marker such as [1] exactly \
             where it is. Write the names of people, organisations, places and works in their \
             original Latin spelling, and numbers as digits. Reply with the translation \
             only.\n\n{}",
            answer.trim()
        ),
    )
}

/// The first line of a translation reply, without quotes a model may wrap it in.
pub fn clean_translation(reply: &str) -> String {
    let line = reply.trim().lines().next().unwrap_or("").trim();
    line.trim_matches(|c| matches!(c, '"' | '\u{201c}' | '\u{201d}'))
        .trim()
        .to_string()
}

/// The citation markers (`[n]`) of `text`, in order.
pub fn markers(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let Some(len) = rest[open..].find(']') else {
            break;
        };
        let inner = &rest[open + 1..open + len];
        if !inner.is_empty() && inner.chars().all(|c| c.is_ascii_digit()) {
            out.push(rest[open..=open + len].to_string());
        }
        rest = &rest[open + len + 1..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_told_by_most_letters() {
        assert_eq!(
            dominant_script("미국 사이버사령부와 국가안보국(NSA)을 이끄는 장군은?"),
            Some(Script::Hangul)
        );
        assert_eq!(dominant_script("Who leads the NSA?"), Some(Script::Latin));
        assert_eq!(dominant_script("東京はどこですか"), Some(Script::Japanese));
        assert_eq!(dominant_script("北京在哪里"), Some(Script::Han));
        assert_eq!(dominant_script("Где Москва?"), Some(Script::Cyrillic));
        assert_eq!(dominant_script("2011?"), None);
        assert_eq!(Script::Hangul.language(), "Korean");
    }

    #[test]
    fn markers_and_translations_are_read_plainly() {
        assert_eq!(markers("A [1] b [2, 3] c [4]"), vec!["[1]", "[4]"]);
        assert_eq!(clean_translation("\"Who won?\"\nNote: ..."), "Who won?");
    }
}

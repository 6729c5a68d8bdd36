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

fn to_english_request(question: &str) -> String {
    format!(
        "Translate this question into English. Keep names, numbers and terms exact. Reply with \
         the English question only.\n\n{}",
        question.trim()
    )
}

/// How many leading messages every [`to_english_prompt`] shares (kept once computed).
pub fn to_english_shared_messages() -> usize {
    1
}

/// Asks for `question` in English, for retrieval and drafting over English documents. Worked
/// examples in several scripts were tried: on the Korean seeds questions they gave translations
/// that retrieved worse (docs/decisions.md, "Questions in other languages").
pub fn to_english_prompt(question: &str) -> Prompt {
    Prompt::new(TRANSLATE_SYSTEM, to_english_request(question))
}

/// How many passages [`grounded_to_english_prompt`] shows the model.
pub const GLOSSARY_PASSAGES: usize = 2;

/// Asks for `question` in English again, now beside the English passages its first
/// translation found: names and terms written in another script ("윤석열", "싱크탱크") are
/// spelled as the documents spell them ("Yoon Suk-yeol", "think tank") when the passages hold
/// them, which a translation from the question alone often cannot guess.
pub fn grounded_to_english_prompt(question: &str, passages: &[&str]) -> Prompt {
    let mut user = String::from("English passages from the documents:\n");
    for (i, p) in passages.iter().enumerate() {
        user.push_str(&format!("[{}] {}\n", i + 1, super::one_line(p)));
    }
    user.push_str(&format!(
        "\nTranslate this question into English word for word, adding nothing it does not say. \
Where it names a person, place, organisation or term that the passages name, write it as the \
passages do. Do not answer it. Reply with the English question only.\n\n{}",
        question.trim()
    ));
    Prompt::new(TRANSLATE_SYSTEM, user)
}

/// True when `translation` keeps to what `question` says as far as can be told across
/// languages: it is a question when `question` is one, and it holds no number that `question`
/// lacks (a translation beside passages can take one from them, "in 2013", and so ask what the
/// user did not).
pub fn faithful_translation(question: &str, translation: &str) -> bool {
    let numbers = |t: &str| -> Vec<String> {
        t.split(|c: char| !c.is_ascii_digit())
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect()
    };
    let asked = numbers(question);
    !translation.is_empty()
        && (translation.ends_with('?') || !question.trim_end().ends_with('?'))
        && numbers(translation).iter().all(|n| asked.contains(n))
}

/// The English text of the worked example of [`from_english_prompt`].
const BRIDGE_EN: &str = "The bridge, designed by NAME1, opened in 1932 after six years of \
construction. [2]";

/// [`BRIDGE_EN`] in the language of each script: one worked example, so that the reply comes in
/// that language (a small model asked by English instructions alone often answers in English).
fn bridge_in(script: Script) -> Option<&'static str> {
    Some(match script {
        Script::Latin => return None,
        Script::Hangul => "NAME1가 설계한 그 다리는 6년의 공사 끝에 1932년에 개통되었습니다. [2]",
        Script::Japanese => "NAME1が設計したその橋は、6年間の工事を経て1932年に開通しました。[2]",
        Script::Han => "由NAME1设计的这座桥经过6年施工，于1932年通车。[2]",
        Script::Cyrillic => {
            "Мост, спроектированный NAME1, открылся в 1932 году после 6 лет строительства. [2]"
        }
        Script::Greek => {
            "Η γέφυρα, που σχεδίασε η NAME1, άνοιξε το 1932 μετά από 6 χρόνια κατασκευής. [2]"
        }
        Script::Arabic => "افتُتح الجسر الذي صممته NAME1 عام 1932 بعد 6 سنوات من البناء. [2]",
        Script::Hebrew => "הגשר, שתכננה NAME1, נפתח ב-1932 לאחר 6 שנות בנייה. [2]",
        Script::Devanagari => "NAME1 द्वारा डिज़ाइन किया गया पुल 6 साल के निर्माण के बाद 1932 में खुला। [2]",
        Script::Thai => "สะพานที่ออกแบบโดย NAME1 เปิดใช้ในปี 1932 หลังการก่อสร้าง 6 ปี [2]",
    })
}

fn from_english_request(answer: &str, language: &str) -> String {
    format!(
        "Translate this text into {language}. Keep every citation marker such as [1] exactly \
         where it is. Write the names of people, organisations, places and works in their \
         original Latin spelling, and numbers as digits. Reply with the translation \
         only.\n\n{}",
        answer.trim()
    )
}

/// How many leading messages every [`from_english_prompt`] for `script` shares.
pub fn from_english_shared_messages(script: Script) -> usize {
    1 + 2 * usize::from(bridge_in(script).is_some())
}

/// Asks for a checked English `answer` in `script`'s language, its citation markers kept.
pub fn from_english_prompt(answer: &str, script: Script) -> Prompt {
    let language = script.language();
    super::with_examples(
        TRANSLATE_SYSTEM,
        bridge_in(script).map(|t| (from_english_request(BRIDGE_EN, language), t.to_string())),
        from_english_request(answer, language),
    )
}

/// `text` with each run of capitalised Latin words (a name: "General Paul Nakasone", "FBI",
/// "ADMM-Plus") replaced by a placeholder `NAME<n>`, and the names in order. A small model
/// translating into another script transliterates names, often beyond recognition; a
/// placeholder it copies, and [`restore_names`] puts the name back as written. A run does not
/// start with a stopword ("The FBI" keeps "The" to translate), and one capitalised word
/// opening a sentence is a name only when written in capitals ("FBI", not "During").
pub fn protect_names(text: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut names: Vec<String> = Vec::new();
    let mut run: Vec<&str> = Vec::new();
    let mut run_opens_sentence = false;
    let mut gap = String::new();
    let mut sentence_start = true;
    let flush = |run: &mut Vec<&str>, opens: bool, out: &mut String, names: &mut Vec<String>| {
        if run.is_empty() {
            return;
        }
        let single = run.len() == 1;
        let acronym = run[0]
            .chars()
            .filter(|c| c.is_alphabetic())
            .all(|c| c.is_uppercase());
        if single && opens && !acronym {
            out.push_str(run[0]);
        } else {
            let name = run.join(" ");
            let n = match names.iter().position(|x| *x == name) {
                Some(i) => i + 1,
                None => {
                    names.push(name);
                    names.len()
                }
            };
            out.push_str(&format!("NAME{n}"));
        }
        run.clear();
    };
    for piece in super::runs_by(text, char::is_whitespace) {
        if piece.chars().all(char::is_whitespace) {
            if run.is_empty() {
                out.push_str(piece);
            } else {
                gap.push_str(piece);
            }
            continue;
        }
        // The name part of a word: letters, digits, hyphens, apostrophes, ampersands and inner
        // dots; what follows it (a comma, a full stop, a bracket) stays outside.
        let core_len = piece
            .char_indices()
            .find(|&(_, c)| !(c.is_alphanumeric() || matches!(c, '-' | '\'' | '&' | '.')))
            .map_or(piece.len(), |(i, _)| i);
        let core = piece[..core_len].trim_end_matches('.');
        let tail = &piece[core.len()..];
        let capital = core.chars().next().is_some_and(|c| c.is_ascii_uppercase());
        let joins = capital
            && core.chars().count() > 1
            && !(run.is_empty() && super::is_stopword(&core.to_lowercase()));
        if joins {
            if run.is_empty() {
                run_opens_sentence = sentence_start;
            }
            gap.clear();
            run.push(core);
            if !tail.is_empty() {
                flush(&mut run, run_opens_sentence, &mut out, &mut names);
                out.push_str(tail);
            }
        } else {
            flush(&mut run, run_opens_sentence, &mut out, &mut names);
            out.push_str(&gap);
            gap.clear();
            out.push_str(piece);
        }
        sentence_start = matches!(piece.chars().last(), Some('.' | '!' | '?'));
    }
    flush(&mut run, run_opens_sentence, &mut out, &mut names);
    out.push_str(&gap);
    (out, names)
}

/// `text` with each placeholder of [`protect_names`] replaced by its name; highest numbers
/// first, so `NAME1` does not match inside `NAME12`.
pub fn restore_names(text: &str, names: &[String]) -> String {
    let mut out = text.to_string();
    for (i, name) in names.iter().enumerate().rev() {
        out = out.replace(&format!("NAME{}", i + 1), name);
    }
    out
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
    fn a_translation_may_not_add_a_number_or_stop_being_a_question() {
        let q = "한국이 처음 참가한 사이버 플래그 훈련에는 몇 개국이 참여했습니까?";
        assert!(faithful_translation(
            q,
            "How many countries took part in the first Cyber Flag exercise South Korea joined?"
        ));
        assert!(!faithful_translation(
            q,
            "How many countries took part in the Cyber Flag exercise in 2017?"
        ));
        assert!(!faithful_translation(q, "25 countries took part."));
        assert!(!faithful_translation(q, ""));
        assert!(faithful_translation(
            "2013년에 공격을 받은 곳은?",
            "What was attacked in 2013?"
        ));
    }

    #[test]
    fn the_grounded_translation_shows_the_passages_and_the_question() {
        let p = grounded_to_english_prompt(
            "윤석열 대통령은 언제 방문했습니까?",
            &["President Yoon Suk-yeol\nvisited in May.", "Other text."],
        );
        let user = &p.messages.last().unwrap().content;
        assert!(user.contains("[1] President Yoon Suk-yeol visited in May."));
        assert!(user.contains("[2] Other text."));
        assert!(user.ends_with("윤석열 대통령은 언제 방문했습니까?"));
    }

    #[test]
    fn translation_prompts_and_their_worked_examples() {
        let to = to_english_prompt(" 다리는 언제 개통되었습니까? ");
        assert_eq!(to.messages.len(), to_english_shared_messages() + 1);
        assert!(to
            .messages
            .last()
            .unwrap()
            .content
            .ends_with("\n\n다리는 언제 개통되었습니까?"));
        for script in [
            Script::Hangul,
            Script::Japanese,
            Script::Han,
            Script::Cyrillic,
            Script::Greek,
            Script::Arabic,
            Script::Hebrew,
            Script::Devanagari,
            Script::Thai,
        ] {
            let p = from_english_prompt("Lee met Paul. [1]", script);
            assert_eq!(p.messages.len(), from_english_shared_messages(script) + 1);
            let example = &p.messages[2].content;
            assert_eq!(dominant_script(example), Some(script), "{example}");
            assert!(
                example.contains("NAME1") && example.ends_with("[2]"),
                "{example}"
            );
            assert!(p.messages[3].content.contains(script.language()));
        }
        assert_eq!(from_english_shared_messages(Script::Latin), 1);
    }

    #[test]
    fn names_are_kept_out_of_translation_and_put_back() {
        let text = "The FBI said General Paul Nakasone met Lee Jong-sup, and the FBI agreed. [1]";
        let (masked, names) = protect_names(text);
        assert_eq!(
            masked,
            "The NAME1 said NAME2 met NAME3, and the NAME1 agreed. [1]"
        );
        assert_eq!(names, ["FBI", "General Paul Nakasone", "Lee Jong-sup"]);
        assert_eq!(restore_names(&masked, &names), text);
        // One capitalised word opening a sentence is an ordinary word unless in capitals.
        let (masked, names) = protect_names("During 2013, NATO met. Singapore joined ADMM-Plus.");
        assert_eq!(masked, "During 2013, NAME1 met. Singapore joined NAME2.");
        assert_eq!(names, ["NATO", "ADMM-Plus"]);
        // Placeholders past nine are put back whole.
        let many: Vec<String> = (1..=12).map(|i| format!("Name{i}x")).collect();
        let (masked, names) = protect_names(&format!("x {}", many.join(", ")));
        assert_eq!(names.len(), 12);
        assert_eq!(
            restore_names(&masked, &names),
            format!("x {}", many.join(", "))
        );
    }

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

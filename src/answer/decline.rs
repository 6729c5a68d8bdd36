//! Why docqa declined a question: one typed reason per check, which the reports serialise as
//! `{"kind": ..., "message": ...}` and count by kind. Made by the pipeline and the answer checks;
//! read by every front end.

use std::fmt;

use serde::{Serialize, Serializer};

/// The check that declined a question, with what it measured.
#[derive(Debug, Clone, PartialEq)]
pub enum Decline {
    /// Retrieval found nothing close enough to the question to ask the model about.
    NoRelevantPassage {
        best_similarity: f32,
        min_relevance: f32,
    },
    /// The model replied that the passages do not hold the answer.
    ModelFoundNoAnswer,
    /// No sentence of the draft shares enough of its words with a passage.
    Unsupported,
    /// The short answer adds nothing to the question's own words.
    ShortAnswerEchoesQuestion { short: String },
    /// A quantity was asked and the short answer holds no number.
    ShortAnswerLacksNumber { short: String },
    /// The short answer's number is in no passage in those words.
    NumberNotInPassages { short: String },
    /// A name or number the question pins its answer to is not in the answer's passage.
    QuestionNotCovered {
        passage: usize,
        missing: Vec<String>,
    },
    /// The model judged that the passage does not state the drafted answer.
    NotVerified {
        passage: usize,
        margin: f32,
        threshold: f32,
    },
}

impl Decline {
    /// The reason's kind, as reports and `--json` name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NoRelevantPassage { .. } => "no_relevant_passage",
            Self::ModelFoundNoAnswer => "model_found_no_answer",
            Self::Unsupported => "unsupported",
            Self::ShortAnswerEchoesQuestion { .. } => "short_answer_echoes_question",
            Self::ShortAnswerLacksNumber { .. } => "short_answer_lacks_number",
            Self::NumberNotInPassages { .. } => "number_not_in_passages",
            Self::QuestionNotCovered { .. } => "question_not_covered",
            Self::NotVerified { .. } => "not_verified",
        }
    }

    /// Every kind, in the order reports list them.
    pub const KINDS: &'static [&'static str] = &[
        "no_relevant_passage",
        "model_found_no_answer",
        "unsupported",
        "short_answer_echoes_question",
        "short_answer_lacks_number",
        "number_not_in_passages",
        "question_not_covered",
        "not_verified",
    ];
}

impl fmt::Display for Decline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoRelevantPassage {
                best_similarity,
                min_relevance,
            } => write!(
                f,
                "no passage is relevant enough (best similarity {best_similarity:.2} < \
                 {min_relevance:.2})"
            ),
            Self::ModelFoundNoAnswer => write!(f, "the model found no answer in the passages"),
            Self::Unsupported => write!(
                f,
                "no sentence of the draft answer is supported by the retrieved passages"
            ),
            Self::ShortAnswerEchoesQuestion { short } => write!(
                f,
                "the short answer \"{short}\" only repeats words of the question, so it does \
                 not answer the question"
            ),
            Self::ShortAnswerLacksNumber { short } => write!(
                f,
                "the question asks for a quantity and the short answer \"{short}\" holds no \
                 number, so it does not answer the question"
            ),
            Self::NumberNotInPassages { short } => write!(
                f,
                "the short answer \"{short}\" holds a number but no passage says it in those \
                 words, so it does not answer the question"
            ),
            Self::QuestionNotCovered { passage, missing } => write!(
                f,
                "passage [{}], which the answer stands on, does not mention {} of the question",
                passage + 1,
                missing
                    .iter()
                    .map(|w| format!("\"{w}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::NotVerified {
                passage,
                margin,
                threshold,
            } => write!(
                f,
                "the model judged that passage [{}] does not state the drafted answer \
                 (verification margin {margin:.2} < {threshold:.2})",
                passage + 1
            ),
        }
    }
}

impl Serialize for Decline {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Decline", 2)?;
        st.serialize_field("kind", self.kind())?;
        st.serialize_field("message", &self.to_string())?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_listed_once_and_serialises_with_its_message() {
        let all = [
            Decline::NoRelevantPassage {
                best_similarity: 0.1,
                min_relevance: 0.2,
            },
            Decline::ModelFoundNoAnswer,
            Decline::Unsupported,
            Decline::ShortAnswerEchoesQuestion { short: "x".into() },
            Decline::ShortAnswerLacksNumber { short: "x".into() },
            Decline::NumberNotInPassages {
                short: "x 1".into(),
            },
            Decline::QuestionNotCovered {
                passage: 0,
                missing: vec!["2023".into()],
            },
            Decline::NotVerified {
                passage: 1,
                margin: -2.0,
                threshold: 0.0,
            },
        ];
        let kinds: Vec<&str> = all.iter().map(Decline::kind).collect();
        assert_eq!(kinds, Decline::KINDS);
        let v = serde_json::to_value(&all[6]).unwrap();
        assert_eq!(v["kind"], "question_not_covered");
        assert_eq!(
            v["message"],
            "passage [1], which the answer stands on, does not mention \"2023\" of the question"
        );
    }
}

//! Q&A file format: one JSON object per line (JSONL), parsed and validated by [`load_qa`], with
//! evidence turned into byte ranges by [`resolve_evidence`]. Called by the eval runner.
//!
//! ```text
//! {"id":"seeds-001","question":"...","answers":["..",".."],
//!  "evidence":[{"file":"000_x.txt","quote":"exact substring"},
//!              {"file":"articles/X.txt","start":0,"end":777}],
//!  "kind":"single"}
//! ```
//! `kind` is `single`, `multi` or `unanswerable`; when absent it is `unanswerable` if `answers`
//! is empty, else `single`. An answerable row needs at least one evidence passage (retrieval is
//! scored against it). Byte offsets are UTF-8 bytes into the file as stored, half-open.
//! Unknown fields are errors, so a misspelt `kind` cannot silently fall back to the default.
//! Every error names the Q&A file and line, evidence errors found later included.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One question with its gold answers and evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QaItem {
    pub id: String,
    pub question: String,
    /// Acceptable answers; empty exactly when `kind` is [`QaKind::Unanswerable`].
    pub answers: Vec<String>,
    pub evidence: Vec<Evidence>,
    pub kind: QaKind,
    /// The file and line the row was read from, for errors found after loading.
    pub origin: RowOrigin,
}

/// Where a Q&A row was read from; shown as `path:line`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowOrigin {
    pub path: PathBuf,
    /// 1-based line number.
    pub line: usize,
}

impl fmt::Display for RowOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.path.display(), self.line)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QaKind {
    /// Answered from one passage.
    Single,
    /// Needs more than one passage.
    Multi,
    /// The corpus does not answer it; the right response is to decline.
    Unanswerable,
}

impl QaKind {
    pub fn is_answerable(self) -> bool {
        self != QaKind::Unanswerable
    }

    pub fn as_str(self) -> &'static str {
        match self {
            QaKind::Single => "single",
            QaKind::Multi => "multi",
            QaKind::Unanswerable => "unanswerable",
        }
    }
}

impl fmt::Display for QaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A gold passage: a file relative to the corpus folder and where in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub file: String,
    pub span: EvidenceSpan,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvidenceSpan {
    /// An exact substring of the file; its first occurrence is the evidence.
    Quote(String),
    /// Half-open byte range `start..end`, `start < end`.
    Bytes { start: usize, end: usize },
}

#[derive(Debug, thiserror::Error)]
pub enum QaError {
    #[error("cannot read Q&A file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("Q&A file {path} has no questions")]
    Empty { path: PathBuf },
    #[error("{path}:{line}: {problem}")]
    Row {
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        problem: RowProblem,
    },
    #[error("{at}: question `{id}`: cannot read evidence file {path}: {source}")]
    EvidenceRead {
        at: RowOrigin,
        id: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{at}: question `{id}`: quote not found in {file}: {quote:?}")]
    QuoteNotFound {
        at: RowOrigin,
        id: String,
        file: String,
        quote: String,
    },
    #[error(
        "{at}: question `{id}`: evidence {file} bytes {start}..{end} run past the end of the \
         file ({len} bytes)"
    )]
    RangeOutOfBounds {
        at: RowOrigin,
        id: String,
        file: String,
        start: usize,
        end: usize,
        len: usize,
    },
    #[error(
        "{at}: question `{id}`: evidence {file} bytes {start}..{end} split a UTF-8 character \
         (offsets must count bytes, not characters)"
    )]
    NotCharBoundary {
        at: RowOrigin,
        id: String,
        file: String,
        start: usize,
        end: usize,
    },
}

/// What is wrong with one row of a Q&A file; [`QaError::Row`] adds the file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowProblem {
    #[error("bad JSON at column {column}: {message}")]
    BadJson { column: usize, message: String },
    /// Valid JSON of the wrong shape: a missing or unknown field, a wrong type, an unknown kind.
    #[error("invalid row at column {column}: {message}")]
    InvalidRow { column: usize, message: String },
    #[error("empty `{field}`")]
    EmptyField { field: &'static str },
    #[error("duplicate id `{id}` (first used on line {first_line})")]
    DuplicateId { id: String, first_line: usize },
    #[error("question `{id}` is {kind} but has no answers")]
    NoAnswers { id: String, kind: QaKind },
    #[error(
        "question `{id}` is {kind} but has no evidence: give the passage that answers it (a \
         `quote` or `start`/`end` in a corpus file)"
    )]
    NoEvidence { id: String, kind: QaKind },
    #[error("question `{id}` is unanswerable but has {count} answer(s)")]
    UnanswerableWithAnswers { id: String, count: usize },
    #[error("question `{id}`: answers[{index}] is blank")]
    BlankAnswer { id: String, index: usize },
    #[error("question `{id}`: evidence[{index}] needs either `quote` or both `start` and `end`")]
    MissingSpan { id: String, index: usize },
    #[error("question `{id}`: evidence[{index}] has both `quote` and `start`/`end`; give one")]
    BothSpans { id: String, index: usize },
    #[error("question `{id}`: evidence[{index}] has an empty quote")]
    EmptyQuote { id: String, index: usize },
    #[error("question `{id}`: evidence[{index}] start {start} >= end {end}")]
    EmptyRange {
        id: String,
        index: usize,
        start: usize,
        end: usize,
    },
    #[error(
        "question `{id}`: evidence[{index}] file {file:?} must be a relative path inside the \
         corpus folder"
    )]
    BadFile {
        id: String,
        index: usize,
        file: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a Q&A object")]
struct RawItem {
    id: String,
    question: String,
    answers: Vec<String>,
    evidence: Vec<RawEvidence>,
    kind: Option<QaKind>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an evidence object")]
struct RawEvidence {
    file: String,
    quote: Option<String>,
    start: Option<usize>,
    end: Option<usize>,
}

/// Reads and validates a Q&A file. Blank lines are skipped; the first bad row stops the load with
/// an error naming the file, the 1-based line and the problem. A file without rows is an error.
pub fn load_qa(path: &Path) -> Result<Vec<QaItem>, QaError> {
    let text = fs::read_to_string(path).map_err(|source| QaError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut items = parse_qa(&text).map_err(|(line, problem)| QaError::Row {
        path: path.to_path_buf(),
        line,
        problem,
    })?;
    for item in &mut items {
        item.origin.path = path.to_path_buf();
    }
    if items.is_empty() {
        return Err(QaError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(items)
}

/// Parses JSONL text; an error carries the 1-based line.
fn parse_qa(text: &str) -> Result<Vec<QaItem>, (usize, RowProblem)> {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut items = Vec::new();
    let mut first_line_of: HashMap<String, usize> = HashMap::new();
    for (index, raw_line) in text.split('\n').enumerate() {
        let line = index + 1;
        let row = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        if row.trim().is_empty() {
            continue;
        }
        let mut item = parse_row(row).map_err(|p| (line, p))?;
        item.origin.line = line;
        if let Some(&first_line) = first_line_of.get(&item.id) {
            return Err((
                line,
                RowProblem::DuplicateId {
                    id: item.id,
                    first_line,
                },
            ));
        }
        first_line_of.insert(item.id.clone(), line);
        items.push(item);
    }
    Ok(items)
}

fn parse_row(row: &str) -> Result<QaItem, RowProblem> {
    let raw: RawItem = serde_json::from_str(row).map_err(json_problem)?;
    if raw.id.trim().is_empty() {
        return Err(RowProblem::EmptyField { field: "id" });
    }
    let id = raw.id;
    if raw.question.trim().is_empty() {
        return Err(RowProblem::EmptyField { field: "question" });
    }
    let kind = raw.kind.unwrap_or(if raw.answers.is_empty() {
        QaKind::Unanswerable
    } else {
        QaKind::Single
    });
    if kind.is_answerable() && raw.answers.is_empty() {
        return Err(RowProblem::NoAnswers { id, kind });
    }
    if !kind.is_answerable() && !raw.answers.is_empty() {
        let count = raw.answers.len();
        return Err(RowProblem::UnanswerableWithAnswers { id, count });
    }
    if let Some(index) = raw.answers.iter().position(|a| a.trim().is_empty()) {
        return Err(RowProblem::BlankAnswer { id, index });
    }
    if kind.is_answerable() && raw.evidence.is_empty() {
        return Err(RowProblem::NoEvidence { id, kind });
    }
    let mut evidence = Vec::with_capacity(raw.evidence.len());
    for (index, ev) in raw.evidence.into_iter().enumerate() {
        if !is_inside_corpus(&ev.file) {
            let file = ev.file;
            return Err(RowProblem::BadFile { id, index, file });
        }
        let span = match (ev.quote, ev.start, ev.end) {
            (Some(quote), None, None) => {
                if quote.is_empty() {
                    return Err(RowProblem::EmptyQuote { id, index });
                }
                EvidenceSpan::Quote(quote)
            }
            (None, Some(start), Some(end)) => {
                if start >= end {
                    return Err(RowProblem::EmptyRange {
                        id,
                        index,
                        start,
                        end,
                    });
                }
                EvidenceSpan::Bytes { start, end }
            }
            (Some(_), _, _) => return Err(RowProblem::BothSpans { id, index }),
            (None, _, _) => return Err(RowProblem::MissingSpan { id, index }),
        };
        evidence.push(Evidence {
            file: ev.file,
            span,
        });
    }
    Ok(QaItem {
        id,
        question: raw.question,
        answers: raw.answers,
        evidence,
        kind,
        origin: RowOrigin::default(),
    })
}

/// serde_json positions are within the one-line row, so keep the column and drop its
/// "at line 1 column N" suffix: the caller reports the real line.
fn json_problem(err: serde_json::Error) -> RowProblem {
    let column = err.column();
    let full = err.to_string();
    let message = match full.rsplit_once(" at line ") {
        Some((m, _)) => m.to_string(),
        None => full,
    };
    match err.classify() {
        serde_json::error::Category::Data => RowProblem::InvalidRow { column, message },
        _ => RowProblem::BadJson { column, message },
    }
}

/// A non-empty relative path that cannot climb out of the corpus folder.
fn is_inside_corpus(file: &str) -> bool {
    let path = Path::new(file);
    !file.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)))
}

/// Resolves an item's evidence to `(file, byte range)` pairs, in order, reading the files under
/// `corpus_dir`. A quote becomes the range of its first exact occurrence; a byte range is checked
/// against the file's length and UTF-8 character boundaries.
pub fn resolve_evidence(
    item: &QaItem,
    corpus_dir: &Path,
) -> Result<Vec<(String, Range<usize>)>, QaError> {
    resolve_evidence_in(item, corpus_dir, &|_| None)
}

/// [`resolve_evidence`], taking a file's text from `extracted` when it gives one: the text docqa
/// extracted from a PDF or Word file, which chunk offsets (and so evidence) index into.
pub fn resolve_evidence_in(
    item: &QaItem,
    corpus_dir: &Path,
    extracted: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, Range<usize>)>, QaError> {
    let mut texts: HashMap<&str, String> = HashMap::new();
    let mut resolved = Vec::with_capacity(item.evidence.len());
    for ev in &item.evidence {
        if !texts.contains_key(ev.file.as_str()) {
            let text = match extracted(&ev.file) {
                Some(text) => text,
                None => {
                    let path = corpus_dir.join(&ev.file);
                    fs::read_to_string(&path).map_err(|source| QaError::EvidenceRead {
                        at: item.origin.clone(),
                        id: item.id.clone(),
                        path,
                        source,
                    })?
                }
            };
            texts.insert(&ev.file, text);
        }
        let text = &texts[ev.file.as_str()];
        let range = match &ev.span {
            EvidenceSpan::Quote(quote) => {
                let start = text
                    .find(quote.as_str())
                    .ok_or_else(|| QaError::QuoteNotFound {
                        at: item.origin.clone(),
                        id: item.id.clone(),
                        file: ev.file.clone(),
                        quote: quote.clone(),
                    })?;
                start..start + quote.len()
            }
            &EvidenceSpan::Bytes { start, end } => {
                if end > text.len() {
                    return Err(QaError::RangeOutOfBounds {
                        at: item.origin.clone(),
                        id: item.id.clone(),
                        file: ev.file.clone(),
                        start,
                        end,
                        len: text.len(),
                    });
                }
                if !text.is_char_boundary(start) || !text.is_char_boundary(end) {
                    return Err(QaError::NotCharBoundary {
                        at: item.origin.clone(),
                        id: item.id.clone(),
                        file: ev.file.clone(),
                        start,
                        end,
                    });
                }
                start..end
            }
        };
        resolved.push((ev.file.clone(), range));
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&path, text).unwrap();
        path
    }

    /// Loads `text` as a Q&A file and returns the row error's line and problem.
    fn row_error(text: &str) -> (usize, RowProblem) {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "qa.jsonl", text);
        match load_qa(&path) {
            Err(QaError::Row {
                path: p,
                line,
                problem,
            }) => {
                assert_eq!(p, path);
                (line, problem)
            }
            other => panic!("expected a row error, got {other:?}"),
        }
    }

    const GOOD: &str = r#"{"id":"q1","question":"Where?","answers":["Paris"],"evidence":[{"file":"a.txt","quote":"in Paris"}]}

{"id":"q2","question":"Who?","answers":["A","B"],"evidence":[{"file":"dir/b.txt","start":0,"end":4},{"file":"a.txt","quote":"x"}],"kind":"multi"}
{"id":"q3","question":"Why?","answers":[],"evidence":[]}
"#;

    #[test]
    fn loads_rows_and_defaults_kind() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "qa.jsonl", GOOD);
        let items = load_qa(&path).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].kind, QaKind::Single);
        assert_eq!(
            items[0].evidence,
            vec![Evidence {
                file: "a.txt".into(),
                span: EvidenceSpan::Quote("in Paris".into())
            }]
        );
        assert_eq!(items[1].kind, QaKind::Multi);
        assert_eq!(items[1].answers, ["A", "B"]);
        assert_eq!(
            items[1].evidence[0].span,
            EvidenceSpan::Bytes { start: 0, end: 4 }
        );
        assert_eq!(items[2].kind, QaKind::Unanswerable);
        assert!(!items[2].kind.is_answerable());
    }

    #[test]
    fn accepts_crlf_and_a_byte_order_mark() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("\u{FEFF}{}", GOOD.replace('\n', "\r\n"));
        let path = write(dir.path(), "qa.jsonl", &text);
        assert_eq!(load_qa(&path).unwrap().len(), 3);
    }

    #[test]
    fn empty_or_blank_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        for text in ["", "\n  \n\n"] {
            let path = write(dir.path(), "qa.jsonl", text);
            let err = load_qa(&path).unwrap_err();
            assert!(matches!(err, QaError::Empty { .. }), "{err:?}");
            assert!(err.to_string().contains("qa.jsonl"));
        }
    }

    #[test]
    fn missing_file_is_a_read_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_qa(&dir.path().join("nope.jsonl")).unwrap_err();
        assert!(matches!(err, QaError::Read { .. }));
        assert!(err.to_string().contains("nope.jsonl"));
    }

    #[test]
    fn bad_json_names_file_and_line() {
        let text = format!("{GOOD}{{\"id\": \"q4\",\n");
        let (line, problem) = row_error(&text);
        assert_eq!(line, 5);
        assert!(matches!(problem, RowProblem::BadJson { .. }), "{problem:?}");
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "qa.jsonl", &text);
        let msg = load_qa(&path).unwrap_err().to_string();
        assert!(msg.contains("qa.jsonl:5: bad JSON"), "{msg}");
        assert!(!msg.contains("line 1"), "{msg}");
    }

    #[test]
    fn missing_and_unknown_fields_and_kinds() {
        let (line, p) = row_error(r#"{"id":"q","question":"?","evidence":[]}"#);
        assert_eq!(line, 1);
        assert!(
            matches!(&p, RowProblem::InvalidRow { message, .. } if message.contains("missing field `answers`")),
            "{p:?}"
        );
        let (_, p) =
            row_error(r#"{"id":"q","question":"?","answers":["x"],"evidence":[],"knd":"multi"}"#);
        assert!(
            matches!(&p, RowProblem::InvalidRow { message, .. } if message.contains("unknown field `knd`")),
            "{p:?}"
        );
        let (_, p) =
            row_error(r#"{"id":"q","question":"?","answers":["x"],"evidence":[],"kind":"many"}"#);
        assert!(
            matches!(&p, RowProblem::InvalidRow { message, .. } if message.contains("unknown variant `many`")),
            "{p:?}"
        );
        let (_, p) = row_error(r#"{"id":"q","question":"?","answers":"x","evidence":[]}"#);
        assert!(matches!(p, RowProblem::InvalidRow { .. }), "{p:?}");
        let (_, p) = row_error(r#"[1, 2]"#);
        assert!(matches!(p, RowProblem::InvalidRow { .. }), "{p:?}");
    }

    #[test]
    fn answerable_row_without_evidence_is_an_error() {
        for (row, kind) in [
            (
                r#"{"id":"q","question":"?","answers":["x"],"evidence":[]}"#,
                QaKind::Single,
            ),
            (
                r#"{"id":"q","question":"?","answers":["x"],"evidence":[],"kind":"multi"}"#,
                QaKind::Multi,
            ),
        ] {
            let (line, p) = row_error(&format!("{GOOD}{row}\n"));
            assert_eq!(line, 5, "{row}");
            assert_eq!(
                p,
                RowProblem::NoEvidence {
                    id: "q".into(),
                    kind
                },
                "{row}"
            );
        }
    }

    #[test]
    fn rows_remember_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "qa.jsonl", GOOD);
        let lines: Vec<usize> = load_qa(&path)
            .unwrap()
            .iter()
            .map(|i| i.origin.line)
            .collect();
        assert_eq!(lines, [1, 3, 4]);
        assert_eq!(load_qa(&path).unwrap()[0].origin.path, path);
    }

    #[test]
    fn duplicate_id_names_both_lines() {
        let text = format!("{GOOD}\n{}", GOOD.lines().next().unwrap());
        let (line, problem) = row_error(&text);
        assert_eq!(line, 6);
        assert_eq!(
            problem,
            RowProblem::DuplicateId {
                id: "q1".into(),
                first_line: 1
            }
        );
    }

    #[test]
    fn answers_must_agree_with_kind() {
        let (_, p) =
            row_error(r#"{"id":"q","question":"?","answers":[],"evidence":[],"kind":"single"}"#);
        assert_eq!(
            p,
            RowProblem::NoAnswers {
                id: "q".into(),
                kind: QaKind::Single
            }
        );
        let (_, p) = row_error(
            r#"{"id":"q","question":"?","answers":["x"],"evidence":[],"kind":"unanswerable"}"#,
        );
        assert_eq!(
            p,
            RowProblem::UnanswerableWithAnswers {
                id: "q".into(),
                count: 1
            }
        );
        let (_, p) = row_error(r#"{"id":"q","question":"?","answers":["x"," "],"evidence":[]}"#);
        assert_eq!(
            p,
            RowProblem::BlankAnswer {
                id: "q".into(),
                index: 1
            }
        );
        let (_, p) = row_error(r#"{"id":" ","question":"?","answers":["x"],"evidence":[]}"#);
        assert_eq!(p, RowProblem::EmptyField { field: "id" });
    }

    #[test]
    fn evidence_shapes_are_checked() {
        let row = |ev: &str| {
            format!(
                r#"{{"id":"q","question":"?","answers":["x"],"evidence":[{{"file":"a.txt","quote":"x"}},{ev}]}}"#
            )
        };
        let id = || "q".to_string();
        let cases = [
            (
                r#"{"file":"a.txt","start":5,"end":5}"#,
                RowProblem::EmptyRange {
                    id: id(),
                    index: 1,
                    start: 5,
                    end: 5,
                },
            ),
            (
                r#"{"file":"a.txt","start":5}"#,
                RowProblem::MissingSpan { id: id(), index: 1 },
            ),
            (
                r#"{"file":"a.txt","quote":"x","end":3}"#,
                RowProblem::BothSpans { id: id(), index: 1 },
            ),
            (
                r#"{"file":"a.txt","quote":""}"#,
                RowProblem::EmptyQuote { id: id(), index: 1 },
            ),
            (
                r#"{"file":"../secret.txt","quote":"x"}"#,
                RowProblem::BadFile {
                    id: id(),
                    index: 1,
                    file: "../secret.txt".into(),
                },
            ),
            (
                r#"{"file":"/etc/passwd","quote":"x"}"#,
                RowProblem::BadFile {
                    id: id(),
                    index: 1,
                    file: "/etc/passwd".into(),
                },
            ),
        ];
        for (ev, want) in cases {
            assert_eq!(row_error(&row(ev)).1, want, "{ev}");
        }
        let (_, p) = row_error(&row(r#"{"file":"a.txt","start":-1,"end":3}"#));
        assert!(matches!(p, RowProblem::InvalidRow { .. }), "{p:?}");
    }

    fn item(evidence: Vec<Evidence>) -> QaItem {
        QaItem {
            id: "q7".into(),
            question: "?".into(),
            answers: vec!["x".into()],
            evidence,
            kind: QaKind::Single,
            origin: RowOrigin {
                path: PathBuf::from("dir/qa.jsonl"),
                line: 4,
            },
        }
    }

    fn quote(file: &str, q: &str) -> Evidence {
        Evidence {
            file: file.into(),
            span: EvidenceSpan::Quote(q.into()),
        }
    }

    fn bytes(file: &str, start: usize, end: usize) -> Evidence {
        Evidence {
            file: file.into(),
            span: EvidenceSpan::Bytes { start, end },
        }
    }

    #[test]
    fn resolves_quotes_and_byte_ranges() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "a.txt",
            "Café au lait. The tower is in Paris. Paris!",
        );
        write(dir.path(), "sub/b.txt", "0123456789");
        let it = item(vec![
            quote("a.txt", "Paris"),
            bytes("sub/b.txt", 2, 5),
            quote("a.txt", "au lait"),
        ]);
        let got = resolve_evidence(&it, dir.path()).unwrap();
        // Byte offsets: "Café" is 5 bytes.
        assert_eq!(
            got,
            vec![
                ("a.txt".to_string(), 31..36),
                ("sub/b.txt".to_string(), 2..5),
                ("a.txt".to_string(), 6..13),
            ]
        );
    }

    #[test]
    fn unresolvable_evidence_names_question_and_file() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.txt", "Café");
        let msg = |ev| resolve_evidence(&item(vec![ev]), dir.path()).unwrap_err();

        // Every message opens with the Q&A file and line, then the question.
        let names_row = |err: &QaError| {
            let text = err.to_string();
            assert!(
                text.starts_with("dir/qa.jsonl:4: question `q7`: "),
                "{text}"
            );
        };

        let err = msg(quote("a.txt", "cafe"));
        assert!(matches!(err, QaError::QuoteNotFound { .. }));
        names_row(&err);
        assert!(err.to_string().contains("a.txt"), "{err}");

        let err = msg(bytes("a.txt", 0, 6));
        assert!(
            matches!(err, QaError::RangeOutOfBounds { len: 5, .. }),
            "{err:?}"
        );
        names_row(&err);

        let err = msg(bytes("a.txt", 0, 4));
        assert!(matches!(err, QaError::NotCharBoundary { .. }), "{err:?}");
        names_row(&err);

        let err = msg(quote("missing.txt", "x"));
        assert!(matches!(err, QaError::EvidenceRead { .. }));
        names_row(&err);
        assert!(err.to_string().contains("missing.txt"));
    }
}

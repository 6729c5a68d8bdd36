//! Eval reports: a plain-text table for the terminal, JSON, and Markdown with one row per
//! question so that a failure can be read, not just counted.

use serde::Serialize;

pub use super::catalog::{metric, METRICS};
use super::runner::{QuestionResult, Summary};

/// A whole eval run, as written to `--json` and report files.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub qa_file: String,
    pub corpus: String,
    pub generator: Option<ModelRef>,
    pub embedder: ModelRef,
    pub retrieval_mode: String,
    pub k: usize,
    pub summary: Summary,
    /// How the verification margins of this run separate answerable from unanswerable
    /// questions; present when verification ran.
    pub verify_calibration: Option<super::calibrate::Calibration>,
    pub questions: Vec<QuestionResult>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelRef {
    pub name: String,
    /// The weights' sha256; for a served model, its URL and model id.
    pub sha256: String,
    /// A generator's kind (registry, file, served) and what it does of the answer contract.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<crate::models::ModelKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<crate::generate::GeneratorFeatures>,
}

/// A line on how a generator that is not a local GGUF differs: verification scored from the
/// generated Yes/No, a short answer by a plain request, speed measured on another machine.
pub fn generator_notes(g: &ModelRef) -> Option<String> {
    use crate::generate::{ShortAnswerSource, VerifySource};
    let f = g.features?;
    let mut notes = Vec::new();
    if let Some(url) = &g.url {
        notes.push(format!("served by {url}"));
    }
    if f.verification == VerifySource::GeneratedYesNo {
        notes.push("verification: generated yes/no (the server returns no logprobs)".into());
    }
    if f.short_answer == ShortAnswerSource::PlainRequest {
        notes.push("short answer: plain request (no copy-constrained decoding)".into());
    }
    if !f.local_speed {
        notes.push("speed: measured through the server, not comparable with local runs".into());
    }
    (!notes.is_empty()).then(|| notes.join("; "))
}

/// Formats a metric's value as its entry in [`METRICS`] says; an unknown name as a ratio.
pub fn fmt_metric(name: &str, v: Option<f64>) -> String {
    match metric(name) {
        Some(m) => m.format(v),
        None => v.map_or("-".into(), |v| format!("{v:.3}")),
    }
}

/// Metric / value lines for the terminal.
pub fn summary_table(s: &Summary) -> String {
    let mut out = format!(
        "questions {} ({} answerable, {} unanswerable)\n",
        s.questions, s.answerable, s.unanswerable
    );
    for m in METRICS {
        let v = m.value(s);
        if v.is_some() {
            out.push_str(&format!("  {:<16} {}\n", m.label, m.format(v)));
        }
    }
    out
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The Markdown report: summary, then every question with its answer, citations and scores.
pub fn markdown(r: &EvalReport) -> String {
    let mut out = String::from("# docqa eval report\n\n");
    out.push_str(&format!(
        "- Q&A file: `{}`\n- corpus: `{}`\n- generator: {}\n- embedder: {} (`{}`)\n- retrieval: {} k={}\n\n",
        r.qa_file,
        r.corpus,
        r.generator
            .as_ref()
            .map_or("none (retrieval only)".to_string(), |g| match &g.url {
                Some(url) => format!("{} at {url}", g.name),
                None => format!("{} (`{}`)", g.name, &g.sha256[..12.min(g.sha256.len())]),
            }),
        r.embedder.name,
        &r.embedder.sha256[..12.min(r.embedder.sha256.len())],
        r.retrieval_mode,
        r.k
    ));
    if let Some(notes) = r.generator.as_ref().and_then(generator_notes) {
        out.push_str(&format!("Generator: {notes}.\n\n"));
    }
    out.push_str("## Summary\n\n| metric | value |\n|---|---|\n");
    out.push_str(&format!("| questions | {} |\n", r.summary.questions));
    for m in METRICS {
        let v = m.value(&r.summary);
        if v.is_some() {
            out.push_str(&format!("| {} | {} |\n", m.label, m.format(v)));
        }
    }
    if let Some(c) = &r.verify_calibration {
        out.push_str(&format!("\n{}\n", calibration_line(c)));
        out.push_str(&curve_table(c));
    }
    out.push_str(&kinds_table(&r.questions));
    out.push_str(&declines_table(&r.questions));
    out.push_str("\n## Questions\n\n| id | kind | question | gold | answer | short answer | cited | hit@5 | F1 | contains | cite prec | verify margin | ok |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for q in &r.questions {
        let cited: Vec<String> = q
            .cited
            .iter()
            .map(|c| format!("{}{}", c.id, if c.relevant { "" } else { " (off-gold)" }))
            .collect();
        let ok = question_ok(q);
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            q.id,
            q.kind,
            md_escape(&q.question),
            md_escape(&q.gold_answers.join(" / ")),
            md_escape(if q.abstained { "(declined)" } else { &q.answer }),
            md_escape(q.short_answer.as_deref().unwrap_or("-")),
            md_escape(&cited.join(", ")),
            f(q.hit_at_5),
            f(q.f1),
            f(q.contains),
            f(q.citation_precision),
            q.verify_margin
                .map_or("-".to_string(), |m| format!("{m:.2}")),
            if ok { "yes" } else { "**no**" }
        ));
    }
    out
}

/// The verification trade-off: what each threshold declines and which correct answers it keeps.
pub fn curve_table(c: &super::calibrate::Calibration) -> String {
    let mut out = String::from(
        "\n| threshold | answerable declined | unanswerable declined | correct answers kept |\n|---|---|---|---|\n",
    );
    for p in &c.curve {
        out.push_str(&format!(
            "| {:.3} | {:.3} | {:.3} | {:.3} |\n",
            p.threshold, p.answerable_declined, p.unanswerable_declined, p.correct_kept
        ));
    }
    out
}

/// The main answer figures by kind of question, so questions that need two documents are seen
/// apart from those one passage answers.
pub fn kinds_table(questions: &[QuestionResult]) -> String {
    use super::qa::QaKind;
    let mut out = String::from(
        "\n## By kind of question\n\n| kind | questions | declined | F1 | contains | cite prec | cite recall |\n|---|---|---|---|---|---|---|\n",
    );
    for kind in [QaKind::Single, QaKind::Multi, QaKind::Unanswerable] {
        let group: Vec<&QuestionResult> = questions.iter().filter(|q| q.kind == kind).collect();
        if group.is_empty() {
            continue;
        }
        let mean = |f: fn(&QuestionResult) -> Option<f64>| {
            super::metrics::mean(group.iter().map(|q| f(q)))
                .map_or("-".to_string(), |v| format!("{v:.3}"))
        };
        let declined = group.iter().filter(|q| q.abstained).count() as f64 / group.len() as f64;
        out.push_str(&format!(
            "| {kind} | {} | {declined:.3} | {} | {} | {} | {} |\n",
            group.len(),
            mean(|q| q.f1),
            mean(|q| q.contains),
            mean(|q| q.citation_precision),
            mean(|q| q.citation_recall),
        ));
    }
    out
}

/// How many questions each check declined, by kind of question: what every check earns (an
/// unanswerable one declined) and costs (an answerable one declined).
pub fn declines_table(questions: &[QuestionResult]) -> String {
    let mut out = String::from(
        "\n## Declines by check\n\n| check | unanswerable declined | answerable declined |\n|---|---|---|\n",
    );
    let count = |kind: &str, answerable: bool| {
        questions
            .iter()
            .filter(|q| q.kind.is_answerable() == answerable && q.decline == Some(kind))
            .count()
    };
    for kind in crate::answer::Decline::KINDS {
        let (u, a) = (count(kind, false), count(kind, true));
        if u + a > 0 {
            out.push_str(&format!("| {kind} | {u} | {a} |\n"));
        }
    }
    out
}

/// Whether a question came out right: declined if unanswerable; otherwise answered with the
/// gold answer contained and no off-gold citation.
pub fn question_ok(q: &QuestionResult) -> bool {
    if !q.kind.is_answerable() {
        return q.abstained;
    }
    !q.abstained && q.contains == Some(1.0) && q.cited.iter().all(|c| c.relevant)
}

/// One line on how verification margins separate the run's answerable and unanswerable
/// questions, and the threshold they suggest.
pub fn calibration_line(c: &super::calibrate::Calibration) -> String {
    let auc = c.auc.map_or("-".to_string(), |a| format!("{a:.3}"));
    let proposal = match &c.proposed {
        Some(p) => format!(
            "threshold {:.3} would decline {:.3} of answerable and {:.3} of unanswerable questions",
            p.threshold, p.answerable_declined, p.unanswerable_declined
        ),
        None => format!(
            "no threshold keeps answerable declines within {:.2}",
            c.budget
        ),
    };
    let keeping = match &c.keeps_correct {
        Some(p) => format!(
            "threshold {:.3} keeps all {} correct answers and would decline {:.3} of answerable \
             and {:.3} of unanswerable questions",
            p.threshold, c.correct_judged, p.answerable_declined, p.unanswerable_declined
        ),
        None => "no correct answer was judged".to_string(),
    };
    format!(
        "verification margins: AUC {auc} over {} answerable and {} unanswerable judged answers; \
         {proposal} (budget {:.2}); {keeping}",
        c.answerable_judged, c.unanswerable_judged, c.budget
    )
}

//! `compare`: the same eval over a grid of model choices (generators, embedders, retrieval
//! modes, k), each cell a run through a [`Session`], gathered into a leaderboard (Markdown, JSON
//! and an SVG chart). The columns and bars come from [`super::catalog::METRICS`]. Called by
//! `docqa compare`, which writes the files.

use std::path::Path;

use serde::Serialize;

use crate::index::RetrievalMode;
use crate::session::{Events, Session, Settings, Silent};

use super::catalog::METRICS;
use super::qa::QaItem;
use super::report::EvalReport;
use super::runner;
use super::suite::{self, RunOptions, SuiteError};

/// The choices to compare: every combination runs.
#[derive(Debug, Clone)]
pub struct Grid {
    pub generators: Vec<String>,
    pub embedders: Vec<String>,
    pub modes: Vec<RetrievalMode>,
    pub ks: Vec<usize>,
}

/// One cell of the grid.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub generator: String,
    pub embedder: String,
    pub mode: String,
    pub k: usize,
    pub summary: runner::Summary,
}

/// One finished cell: its leaderboard row, its full report, and the stem its report files are
/// named by (`{generator}-{embedder}-{mode}-k{k}`).
pub struct Run {
    pub row: Row,
    pub report: EvalReport,
    pub stem: String,
}

/// What a compare reports while it runs.
pub trait Observer: Events {
    /// A cell starts: its label and the number of cases it answers.
    fn run_started(&mut self, _label: &str, _cases: usize) {}
    /// Cases done in the current cell.
    fn run_progress(&mut self, _done: usize) {}
    /// The current cell is done.
    fn run_finished(&mut self, _run: &Run) {}
}

/// Runs `items` over every cell of `grid`, each from `base` with the cell's choices in place.
/// One session per embedder (its index); generators load once per embedder.
pub fn run(
    base: &Settings,
    grid: &Grid,
    items: &[QaItem],
    opts: &RunOptions,
    observer: &mut dyn Observer,
) -> Result<Vec<Run>, SuiteError> {
    let mut runs = Vec::new();
    for embedder in &grid.embedders {
        let mut settings = base.clone();
        settings.corpus.embedder = embedder.clone();
        let mut session = Session::open(settings, observer)?;
        for generator in &grid.generators {
            session.set_generator(generator);
            for &mode in &grid.modes {
                for &k in &grid.ks {
                    let mut retrieval = base.retrieval.clone();
                    retrieval.mode = mode;
                    retrieval.k = k;
                    session.set_retrieval(retrieval);
                    let label = format!("{generator} {mode} k={k}");
                    tracing::info!("running {label} ({embedder})");
                    observer.run_started(&label, suite::case_count(items, opts));
                    if !opts.retrieval_only {
                        session.load_generator(observer)?;
                    }
                    let report =
                        suite::evaluate(&mut session, items, opts, &mut Silent, &mut |n| {
                            observer.run_progress(n)
                        })?;
                    let run = Run {
                        row: Row {
                            generator: generator.clone(),
                            embedder: embedder.clone(),
                            mode: mode.to_string(),
                            k,
                            summary: report.summary.clone(),
                        },
                        report,
                        stem: format!("{generator}-{embedder}-{mode}-k{k}"),
                    };
                    observer.run_finished(&run);
                    runs.push(run);
                }
            }
        }
    }
    Ok(runs)
}

/// The leaderboard as a Markdown table, best first (by F1 plus containment).
pub fn markdown(qa: &Path, rows: &[Row]) -> String {
    let mut order: Vec<&Row> = rows.iter().collect();
    order.sort_by(|a, b| {
        let key = |r: &Row| r.summary.f1.unwrap_or(0.0) + r.summary.containment.unwrap_or(0.0);
        key(b).total_cmp(&key(a))
    });
    let mut out = format!(
        "# docqa leaderboard: {}\n\n| # | generator | embedder | mode | k |",
        qa.display()
    );
    let board: Vec<_> = METRICS.iter().filter(|m| m.leaderboard).collect();
    for m in &board {
        out.push_str(&format!(" {} |", m.label));
    }
    out.push_str("\n|---|---|---|---|---|");
    out.push_str(&"---|".repeat(board.len()));
    out.push('\n');
    for (i, r) in order.iter().enumerate() {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |",
            i + 1,
            r.generator,
            r.embedder,
            r.mode,
            r.k
        ));
        for m in &board {
            out.push_str(&format!(" {} |", m.format(m.value(&r.summary))));
        }
        out.push('\n');
    }
    out
}

/// A grouped bar chart of the metrics [`METRICS`] marks for it (F1, containment, citation
/// precision, unanswerable declined) per run, with p50 latency in the label.
pub fn svg(rows: &[Row]) -> String {
    let metrics: Vec<(&str, &str, &str)> = METRICS
        .iter()
        .filter_map(|m| m.chart.map(|(label, colour)| (m.name, label, colour)))
        .collect();
    let group_w = 140.0;
    let bar_w = 26.0;
    let h = 260.0;
    let top = 40.0;
    let left = 50.0;
    let width = left + group_w * rows.len() as f64 + 40.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{left}\" y=\"20\" font-size=\"14\">docqa leaderboard (bars: quality 0-1; label: p50 latency)</text>\n",
        top + h + 90.0
    );
    for i in 0..=4 {
        let v = i as f64 / 4.0;
        let y = top + h - v * h;
        s.push_str(&format!(
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" stroke=\"#ddd\"/><text x=\"10\" y=\"{}\">{v:.2}</text>\n",
            width - 20.0,
            y + 4.0
        ));
    }
    for (g, r) in rows.iter().enumerate() {
        let x0 = left + 10.0 + g as f64 * group_w;
        for (j, (m, _, color)) in metrics.iter().enumerate() {
            let v = r.summary.get(m).flatten().unwrap_or(0.0).clamp(0.0, 1.0);
            let bh = v * h;
            s.push_str(&format!(
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{bh}\" fill=\"{color}\"><title>{m} {v:.3}</title></rect>\n",
                x0 + j as f64 * bar_w,
                top + h - bh,
                bar_w - 3.0
            ));
        }
        let p50 = r
            .summary
            .latency_p50_ms
            .map_or("-".to_string(), |v| format!("{:.1}s", v / 1e3));
        let name = r.generator.replace("-instruct", "");
        s.push_str(&format!(
            "<text x=\"{x0}\" y=\"{}\">{name}</text><text x=\"{x0}\" y=\"{}\">{} k={} p50 {p50}</text>\n",
            top + h + 16.0,
            top + h + 30.0,
            r.mode,
            r.k
        ));
    }
    for (j, (_, label, color)) in metrics.iter().enumerate() {
        let x = left + j as f64 * 120.0;
        let y = top + h + 60.0;
        s.push_str(&format!(
            "<rect x=\"{x}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{color}\"/><text x=\"{}\" y=\"{y}\">{label}</text>\n",
            y - 10.0,
            x + 16.0
        ));
    }
    s.push_str("</svg>\n");
    s
}

//! `compare`: the same eval over a grid of model choices (generators of any kind: registered,
//! GGUF files, served; embedders, retrieval modes, k), each cell a run through a [`Session`],
//! gathered into a leaderboard (Markdown, JSON and an SVG chart) that names each generator's
//! kind and keeps a served model's speed apart (its hardware is not ours). The columns and bars
//! come from [`super::catalog::METRICS`]. Called by `docqa compare`, which writes the files.

use std::path::Path;

use serde::Serialize;

use crate::index::RetrievalMode;
use crate::models::{ModelKind, ModelRef};
use crate::session::{CorpusSettings, Events, Session, Settings, Silent};

use super::catalog::{Format, METRICS};
use super::qa::QaItem;
use super::report::EvalReport;
use super::runner;
use super::suite::{self, RunOptions, SuiteError};

/// The choices to compare: every combination runs.
#[derive(Debug, Clone)]
pub struct Grid {
    pub generators: Vec<ModelRef>,
    pub embedders: Vec<String>,
    pub modes: Vec<RetrievalMode>,
    pub ks: Vec<usize>,
}

/// One cell of the grid.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The registry name, the file's name, or the served model's id.
    pub generator: String,
    /// Registry, file or server.
    pub kind: ModelKind,
    /// Where it came from: the file's path or the server's URL (`None` for a registered one).
    pub source: Option<String>,
    /// Whether its speed figures were measured on this machine (not so for a served model).
    pub speed_comparable: bool,
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
        // A default index path follows the embedder (a served one's is kept apart).
        let default_for =
            |e: &str| CorpusSettings::default_index_for(&base.corpus.dir, &base.cache, e);
        if base.corpus.index_path == default_for(&base.corpus.embedder) {
            settings.corpus.index_path = default_for(embedder);
        }
        let mut session = Session::open(settings, observer)?;
        for generator in &grid.generators {
            session.set_generator(generator.clone());
            for &mode in &grid.modes {
                for &k in &grid.ks {
                    let mut retrieval = base.retrieval.clone();
                    retrieval.mode = mode;
                    retrieval.k = k;
                    session.set_retrieval(retrieval);
                    let label = format!("{} {mode} k={k}", generator.label());
                    tracing::info!("running {label} ({embedder})");
                    observer.run_started(&label, suite::case_count(items, opts));
                    if !opts.retrieval_only {
                        session.load_generator(observer)?;
                    }
                    let report =
                        suite::evaluate(&mut session, items, opts, &mut Silent, &mut |n| {
                            observer.run_progress(n)
                        })?;
                    let name = report
                        .generator
                        .as_ref()
                        .map_or_else(|| generator.label(), |g| g.name.clone());
                    let source = match generator {
                        ModelRef::Registry { .. } => None,
                        ModelRef::File { path } => Some(path.display().to_string()),
                        ModelRef::Served { base_url, .. } => Some(base_url.clone()),
                    };
                    let stem = format!("{}-{embedder}-{mode}-k{k}", file_safe(&name));
                    let run = Run {
                        row: Row {
                            generator: name,
                            kind: generator.kind(),
                            source,
                            speed_comparable: generator.kind() != ModelKind::Served,
                            embedder: embedder.clone(),
                            mode: mode.to_string(),
                            k,
                            summary: report.summary.clone(),
                        },
                        report,
                        stem,
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
        "# docqa leaderboard: {}\n\n| # | generator | kind | embedder | mode | k |",
        qa.display()
    );
    let board: Vec<_> = METRICS.iter().filter(|m| m.leaderboard).collect();
    for m in &board {
        out.push_str(&format!(" {} |", m.label));
    }
    out.push_str("\n|---|---|---|---|---|---|");
    out.push_str(&"---|".repeat(board.len()));
    out.push('\n');
    for (i, r) in order.iter().enumerate() {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |",
            i + 1,
            r.generator,
            kind_cell(r),
            r.embedder,
            r.mode,
            r.k
        ));
        for m in &board {
            let cell = m.format(m.value(&r.summary));
            // A served model's times are its server's hardware and the network: marked, so
            // they are not read against this machine's.
            let cell = if m.format == Format::Measure && !r.speed_comparable && cell != "-" {
                format!("({cell})†")
            } else {
                cell
            };
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    if rows.iter().any(|r| !r.speed_comparable) {
        out.push_str(
            "\n† Served model: its times were measured through its server (another machine's \
             hardware, and the network), so they do not compare with the local rows.\n",
        );
    }
    out
}

/// The kind column: `registry`, `file (PATH)`, `server (URL)`.
fn kind_cell(r: &Row) -> String {
    match &r.source {
        Some(source) => format!("{} ({source})", r.kind),
        None => r.kind.to_string(),
    }
}

/// `name` with every character a file name should not hold replaced by `_`.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
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
        let p50 = r.summary.latency_p50_ms.map_or("-".to_string(), |v| {
            let served = if r.speed_comparable { "" } else { " (served)" };
            format!("{:.1}s{served}", v / 1e3)
        });
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

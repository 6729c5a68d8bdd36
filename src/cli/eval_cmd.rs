//! `docqa eval` and `docqa compare`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use docqa::eval::gencache::CachedGenerator;
use docqa::eval::qa::{self, QaItem};
use docqa::eval::report::{self, EvalReport, ModelRef};
use docqa::eval::thresholds::Thresholds;
use docqa::eval::{calibrate, runner};
use docqa::generate::Generator;
use docqa::index::RetrievalMode;
use docqa::models::LocalModel;
use docqa::pipeline::AskConfig;

use super::ask_cmd::{load_generator, GeneratorArgs};
use super::corpus_cmd::{progress_bar, CorpusArgs, Loaded, RetrievalArgs};
use super::GlobalArgs;

/// Exit code when a run misses a threshold.
pub const EXIT_THRESHOLD: u8 = 3;

#[derive(Args, Clone)]
pub struct EvalArgs {
    /// Q&A file (JSONL; see README "Q&A file format")
    #[arg(long, default_value = "evals/seeds.jsonl")]
    pub qa: PathBuf,
    /// Score retrieval only (no generation)
    #[arg(long)]
    pub retrieval_only: bool,
    /// Evaluate only the first N questions (after --sample)
    #[arg(long)]
    pub limit: Option<usize>,
    /// Evaluate every Nth question (a deterministic sample)
    #[arg(long, default_value_t = 1, value_parser = super::parse_positive)]
    pub every: usize,
    /// Write the Markdown report (one row per question) here
    #[arg(long)]
    pub report_md: Option<PathBuf>,
    /// Write the JSON report here
    #[arg(long)]
    pub report_json: Option<PathBuf>,
    /// Thresholds file; a missed bound exits with code 3 and names the metric
    #[arg(long)]
    pub thresholds: Option<PathBuf>,
    /// Generate everything again instead of reusing cached generations
    #[arg(long)]
    pub no_cache: bool,
    /// Also ask every answerable question with its gold evidence withheld from retrieval
    /// (`ID/withheld`, scored as unanswerable): a stress test of abstention on passages about
    /// the question's own topic. With --verify-threshold=-inf the reports carry every
    /// verification margin, and the summary proposes a threshold
    #[arg(long)]
    pub withhold_gold: bool,
}

impl EvalArgs {
    fn items(&self) -> Result<Vec<QaItem>> {
        let mut items = qa::load_qa(&self.qa)?;
        if self.every > 1 {
            items = items.into_iter().step_by(self.every).collect();
        }
        if let Some(n) = self.limit {
            items.truncate(n);
        }
        if items.is_empty() {
            anyhow::bail!("{}: no questions left to evaluate", self.qa.display());
        }
        Ok(items)
    }
}

fn gen_cache_dir(global: &GlobalArgs) -> PathBuf {
    global.store().root().join("generations")
}

/// One eval over loaded stages.
#[allow(clippy::too_many_arguments)]
fn run_one(
    global: &GlobalArgs,
    args: &EvalArgs,
    corpus: &CorpusArgs,
    items: &[QaItem],
    loaded: &Loaded,
    generator: Option<(&mut dyn Generator, ModelRef)>,
    cfg: &AskConfig,
    label: &str,
) -> Result<EvalReport> {
    let bar = progress_bar(global, label);
    bar.set_length(runner::case_count(items, args.withhold_gold) as u64);
    let mut cached;
    let (g, gen_ref): (Option<&mut dyn Generator>, Option<ModelRef>) = match generator {
        Some((g, model)) if !args.no_cache => {
            cached = CachedGenerator::new(g, &gen_cache_dir(global), &model.sha256);
            (Some(&mut cached), Some(model))
        }
        Some((g, model)) => (Some(g), Some(model)),
        None => (None, None),
    };
    let (results, summary) = runner::run(
        items,
        &corpus.corpus,
        &loaded.index,
        &loaded.embedder,
        g,
        cfg,
        args.withhold_gold,
        &mut |n, _| bar.set_position(n as u64),
    )?;
    bar.finish_and_clear();
    Ok(EvalReport {
        qa_file: args.qa.display().to_string(),
        corpus: corpus.corpus.display().to_string(),
        generator: gen_ref,
        embedder: ModelRef {
            name: loaded.embedder_model.spec.name.0.clone(),
            sha256: loaded
                .embedder_model
                .sha256("model.safetensors")
                .to_string(),
        },
        retrieval_mode: cfg.retrieval.mode.to_string(),
        k: cfg.retrieval.k,
        summary,
        verify_calibration: results.iter().any(|r| r.verify_margin.is_some()).then(|| {
            calibrate::calibrate(
                &calibrate::judged_results(&results),
                calibrate::DEFAULT_DECLINE_BUDGET,
            )
        }),
        questions: results,
    })
}

/// A generator as reports name it: registry name and the hash of the weights that ran.
fn model_ref(name: &str, model: &LocalModel) -> ModelRef {
    ModelRef {
        name: name.to_string(),
        sha256: model.runtime_gguf().1.to_string(),
    }
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

pub fn run_eval(
    global: &GlobalArgs,
    args: &EvalArgs,
    corpus: &CorpusArgs,
    retrieval: &RetrievalArgs,
    gen: &GeneratorArgs,
    json: bool,
) -> Result<ExitCode> {
    let thresholds = args
        .thresholds
        .as_ref()
        .map(|p| Thresholds::load(p))
        .transpose()?;
    let items = args.items()?;
    let loaded = corpus.load(global, false)?;
    let store = global.store();
    let mut calibrated = None;
    let mut generator = if args.retrieval_only {
        None
    } else {
        let (generator, model) = load_generator(global, &store, &gen.model)?;
        calibrated = model.spec.verify_threshold;
        Some((generator, model_ref(&gen.model, &model)))
    };
    let cfg = gen.ask_config(retrieval.config(), calibrated);
    let report = run_one(
        global,
        args,
        corpus,
        &items,
        &loaded,
        generator
            .as_mut()
            .map(|(g, m)| (g as &mut dyn Generator, m.clone())),
        &cfg,
        "evaluating",
    )?;
    if let Some(p) = &args.report_md {
        write_file(p, &report::markdown(&report))?;
        eprintln!("wrote {}", p.display());
    }
    if let Some(p) = &args.report_json {
        write_file(p, &serde_json::to_string_pretty(&report)?)?;
        eprintln!("wrote {}", p.display());
    }
    let misses = thresholds
        .as_ref()
        .map(|t| t.check(|m| report.summary.get(m)));
    if json {
        // One object on stdout, a missed threshold included (the exit code says it too).
        let mut v = serde_json::to_value(&report)?;
        if let Some(misses) = &misses {
            v["thresholds_missed"] = serde_json::to_value(misses)?;
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{} over {} ({}, k={}, generator {})",
            report.qa_file,
            report.corpus,
            report.retrieval_mode,
            report.k,
            report
                .generator
                .as_ref()
                .map_or("none", |g| g.name.as_str())
        );
        print!("{}", report::summary_table(&report.summary));
        if let Some(c) = &report.verify_calibration {
            println!("{}", report::calibration_line(c));
        }
        let failed: Vec<&str> = report
            .questions
            .iter()
            .filter(|q| !args.retrieval_only && !report::question_ok(q))
            .map(|q| q.id.as_str())
            .collect();
        if !failed.is_empty() {
            println!("not fully right: {}", failed.join(", "));
        }
    }
    if let Some(misses) = misses {
        if !misses.is_empty() {
            for m in &misses {
                eprintln!("threshold missed: {m}");
            }
            return Ok(ExitCode::from(EXIT_THRESHOLD));
        }
        eprintln!("all thresholds met");
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Clone)]
pub struct CompareArgs {
    /// Generators to compare (comma-separated registry names)
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "qwen2.5-coder-0.5b-instruct,qwen2.5-coder-1.5b-instruct,smollm2-135m-instruct",
        value_parser = super::parse_generator
    )]
    pub models: Vec<String>,
    /// Retrieval modes to compare
    #[arg(
        long,
        value_delimiter = ',',
        value_enum,
        default_value = "dense,hybrid"
    )]
    pub modes: Vec<RetrievalMode>,
    /// Numbers of passages to compare
    #[arg(
        long = "ks",
        value_delimiter = ',',
        default_value = "5",
        value_parser = super::parse_positive
    )]
    pub ks: Vec<usize>,
    /// Embedders to compare
    #[arg(
        long,
        value_delimiter = ',',
        default_value = docqa::models::DEFAULT_EMBEDDER,
        value_parser = super::parse_embedder
    )]
    pub embedders: Vec<String>,
    /// Folder for leaderboard.md, leaderboard.json, leaderboard.svg and per-run reports
    #[arg(long, default_value = "evals/reports/compare")]
    pub out: PathBuf,
}

/// One cell of the grid.
#[derive(serde::Serialize)]
struct Row {
    generator: String,
    embedder: String,
    mode: String,
    k: usize,
    summary: runner::Summary,
}

pub fn run_compare(
    global: &GlobalArgs,
    args: &EvalArgs,
    cmp: &CompareArgs,
    corpus: &CorpusArgs,
    retrieval: &RetrievalArgs,
    gen: &GeneratorArgs,
    json: bool,
) -> Result<ExitCode> {
    let items = args.items()?;
    let store = global.store();
    let mut rows = Vec::new();
    for embedder in &cmp.embedders {
        let mut corpus = corpus.clone();
        corpus.embedder = embedder.clone();
        let loaded = corpus.load(global, false)?;
        for model in &cmp.models {
            let (mut generator, local) = load_generator(global, &store, model)?;
            let model_ref = model_ref(model, &local);
            for &mode in &cmp.modes {
                for &k in &cmp.ks {
                    let mut r = retrieval.clone();
                    r.mode = mode;
                    r.k = k;
                    let cfg = gen.ask_config(r.config(), local.spec.verify_threshold);
                    let label = format!("{model} {mode} k={k}");
                    eprintln!("running {label} ({embedder})");
                    let report = run_one(
                        global,
                        args,
                        &corpus,
                        &items,
                        &loaded,
                        Some((&mut generator, model_ref.clone())),
                        &cfg,
                        &label,
                    )?;
                    let stem = format!("{model}-{embedder}-{mode}-k{k}");
                    write_file(
                        &cmp.out.join(format!("{stem}.md")),
                        &report::markdown(&report),
                    )?;
                    rows.push(Row {
                        generator: model.clone(),
                        embedder: embedder.clone(),
                        mode: mode.to_string(),
                        k,
                        summary: report.summary,
                    });
                }
            }
        }
    }
    let md = leaderboard_markdown(&args.qa, &rows);
    write_file(&cmp.out.join("leaderboard.md"), &md)?;
    write_file(
        &cmp.out.join("leaderboard.json"),
        &serde_json::to_string_pretty(&rows)?,
    )?;
    write_file(&cmp.out.join("leaderboard.svg"), &leaderboard_svg(&rows))?;
    eprintln!("wrote {}/leaderboard.{{md,json,svg}}", cmp.out.display());
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{md}");
    }
    Ok(ExitCode::SUCCESS)
}

const BOARD: &[&str] = &[
    "hit_at_5",
    "mrr_at_10",
    "f1",
    "containment",
    "citation_precision",
    "unanswerable_declined",
    "answerable_declined",
    "latency_p50_ms",
    "decode_tok_s",
];

fn leaderboard_markdown(qa: &Path, rows: &[Row]) -> String {
    let mut order: Vec<&Row> = rows.iter().collect();
    order.sort_by(|a, b| {
        let key = |r: &Row| r.summary.f1.unwrap_or(0.0) + r.summary.containment.unwrap_or(0.0);
        key(b).total_cmp(&key(a))
    });
    let mut out = format!(
        "# docqa leaderboard: {}\n\n| # | generator | embedder | mode | k |",
        qa.display()
    );
    for m in BOARD {
        let label = report::METRICS
            .iter()
            .find(|(n, _)| n == m)
            .map_or(*m, |(_, l)| *l);
        out.push_str(&format!(" {label} |"));
    }
    out.push_str("\n|---|---|---|---|---|");
    out.push_str(&"---|".repeat(BOARD.len()));
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
        for m in BOARD {
            out.push_str(&format!(
                " {} |",
                report::fmt_metric(m, r.summary.get(m).flatten())
            ));
        }
        out.push('\n');
    }
    out
}

/// A grouped bar chart (F1, containment, citation precision, unanswerable declined) per run,
/// with p50 latency in the label.
fn leaderboard_svg(rows: &[Row]) -> String {
    let metrics = [
        ("f1", "F1", "#4e79a7"),
        ("containment", "contains", "#f28e2b"),
        ("citation_precision", "cite prec", "#59a14f"),
        ("unanswerable_declined", "unans. declined", "#e15759"),
    ];
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

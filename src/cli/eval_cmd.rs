//! `docqa eval` and `docqa compare`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use docqa::eval::compare;
use docqa::eval::qa::{self, QaItem};
use docqa::eval::report;
use docqa::eval::suite::{self, RunOptions};
use docqa::eval::thresholds::Thresholds;
use docqa::index::RetrievalMode;
use docqa::session::{Events, Session, Settings, Silent};

use super::corpus_cmd::{Meter, Shown};
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

fn write_file(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

impl EvalArgs {
    fn run_options(&self) -> RunOptions {
        RunOptions {
            qa_file: self.qa.display().to_string(),
            retrieval_only: self.retrieval_only,
            withhold_gold: self.withhold_gold,
            use_cache: !self.no_cache,
        }
    }
}

pub fn run_eval(
    global: &GlobalArgs,
    args: &EvalArgs,
    write_threshold: Option<&str>,
    settings: Settings,
    json: bool,
) -> Result<ExitCode> {
    let thresholds = args
        .thresholds
        .as_ref()
        .map(|p| Thresholds::load(p))
        .transpose()?;
    let items = args.items()?;
    let opts = args.run_options();
    let mut events = Shown::new(global, &settings.corpus.dir);
    let mut session = Session::open(settings, &mut events)?;
    if !opts.retrieval_only {
        session.load_generator(&mut events)?;
    }
    drop(events);
    let mut meter = Meter::new(global, "evaluating");
    meter.set_length(suite::case_count(&items, &opts) as u64);
    let report = suite::evaluate(&mut session, &items, &opts, &mut Silent, &mut |n| {
        meter.set_position(n as u64)
    })?;
    meter.finish();
    if let Some(p) = &args.report_md {
        write_file(p, &report::markdown(&report))?;
        eprintln!("wrote {}", p.display());
    }
    if let Some(p) = &args.report_json {
        write_file(p, &serde_json::to_string_pretty(&report)?)?;
        eprintln!("wrote {}", p.display());
    }
    if let Some(name) = write_threshold {
        let path = write_calibrated_manifest(&session, &report, name)?;
        eprintln!(
            "wrote the proposed verification threshold to {}",
            path.display()
        );
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

/// Writes the run's proposed verification threshold into a user manifest for its generator,
/// named `name` (empty: the generator's own name).
fn write_calibrated_manifest(
    session: &Session,
    report: &report::EvalReport,
    name: &str,
) -> Result<PathBuf> {
    use docqa::models::user_manifest::{calibrated_manifest, write_manifest, Pinned};
    use docqa::models::ModelRef;
    let cal = report.verify_calibration.as_ref().context(
        "no verification margins to calibrate on: run with --verify-threshold=-inf (and \
         --withhold-gold, so unanswerable twins are judged too)",
    )?;
    let point = cal
        .proposed
        .context("the run proposes no threshold (see the calibration line): nothing written")?;
    let dir = session
        .settings()
        .models_dir
        .clone()
        .context("no folder for user manifests: pass --models-dir DIR")?;
    let info = session
        .generator_ref()
        .context("no generator ran (--retrieval-only?): nothing to calibrate")?;
    let model = &session.settings().generator.model;
    let architecture = match model {
        ModelRef::File { path } => docqa::generate::gguf_architecture(path)?,
        _ => String::new(),
    };
    let (pinned, default_name) = match model {
        ModelRef::Registry { name } => (Pinned::Registry(name), name.clone()),
        ModelRef::File { path } => (
            Pinned::File {
                path,
                sha256: info.sha256.as_deref().unwrap_or_default(),
                size: std::fs::metadata(path)
                    .with_context(|| format!("reading {}", path.display()))?
                    .len(),
                architecture: &architecture,
            },
            path.file_stem()
                .map_or("model".into(), |s| s.to_string_lossy().into_owned()),
        ),
        ModelRef::Served { base_url, .. } => (
            Pinned::Served {
                base_url,
                api_model: &info.name,
            },
            info.name.replace(['/', ':'], "-"),
        ),
    };
    let name = if name.is_empty() { &default_name } else { name };
    let spec = calibrated_manifest(
        session.store().registry(),
        &pinned,
        name,
        point.threshold.into(),
    )?;
    let header = format!(
        "Written by `docqa eval --write-threshold` from {} over {}: {}",
        report.qa_file,
        report.corpus,
        report::calibration_line(cal)
    );
    Ok(write_manifest(&dir, &spec, &header)?)
}

#[derive(Args, Clone)]
pub struct CompareArgs {
    /// Generators to compare, comma-separated, of any kind: registered names, paths to GGUF
    /// files, servers' base URLs (`http://host:port/v1`, asked for --api-model or their first
    /// listed model)
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "qwen2.5-coder-0.5b-instruct,qwen2.5-coder-1.5b-instruct,smollm2-135m-instruct"
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

/// Shows a compare's progress: the session's loading, then a bar per run; writes each run's
/// Markdown report as it finishes.
struct CompareShown<'a> {
    global: &'a GlobalArgs,
    shown: Shown,
    bar: Option<Meter>,
    out: &'a Path,
    written: Result<()>,
}

impl Events for CompareShown<'_> {
    fn fetch_line(&mut self, line: &str) {
        self.shown.fetch_line(line);
    }

    fn build_progress(&mut self, p: &docqa::index::BuildProgress) {
        self.shown.build_progress(p);
    }
}

impl compare::Observer for CompareShown<'_> {
    fn run_started(&mut self, label: &str, cases: usize) {
        eprintln!("running {label}");
        let mut bar = Meter::new(self.global, label);
        bar.set_length(cases as u64);
        self.bar = Some(bar);
    }

    fn run_progress(&mut self, done: usize) {
        if let Some(bar) = &mut self.bar {
            bar.set_position(done as u64);
        }
    }

    fn run_finished(&mut self, run: &compare::Run) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
        if self.written.is_ok() {
            self.written = write_file(
                &self.out.join(format!("{}.md", run.stem)),
                &report::markdown(&run.report),
            );
        }
    }
}

pub fn run_compare(
    global: &GlobalArgs,
    args: &EvalArgs,
    cmp: &CompareArgs,
    generator: &super::ask_cmd::GeneratorArgs,
    settings: Settings,
    json: bool,
) -> Result<ExitCode> {
    let items = args.items()?;
    let registry = settings.registry()?;
    let generators = cmp
        .models
        .iter()
        .map(|m| generator.model_ref(m, &registry))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let grid = compare::Grid {
        generators,
        embedders: cmp.embedders.clone(),
        modes: cmp.modes.clone(),
        ks: cmp.ks.clone(),
    };
    let mut shown = CompareShown {
        global,
        shown: Shown::new(global, &settings.corpus.dir),
        bar: None,
        out: &cmp.out,
        written: Ok(()),
    };
    let runs = compare::run(&settings, &grid, &items, &args.run_options(), &mut shown)?;
    shown.written?;
    let rows: Vec<compare::Row> = runs.into_iter().map(|r| r.row).collect();
    let md = compare::markdown(&args.qa, &rows);
    write_file(&cmp.out.join("leaderboard.md"), &md)?;
    write_file(
        &cmp.out.join("leaderboard.json"),
        &serde_json::to_string_pretty(&rows)?,
    )?;
    write_file(&cmp.out.join("leaderboard.svg"), &compare::svg(&rows))?;
    eprintln!("wrote {}/leaderboard.{{md,json,svg}}", cmp.out.display());
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{md}");
    }
    Ok(ExitCode::SUCCESS)
}

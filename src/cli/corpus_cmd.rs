//! `docqa index` and `docqa search`, and the shared corpus/embedder flags that every command
//! reading documents takes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use docqa::embed::BertEmbedder;
use docqa::index::{
    self, BuildProgress, FusionMethod, IndexSettings, RetrievalConfig, RetrievalMode,
};
use docqa::models::DEFAULT_EMBEDDER;
use docqa::session::{CorpusSettings, Events, Session, Settings};
use indicatif::{ProgressBar, ProgressStyle};

use super::GlobalArgs;

#[derive(Args, Clone)]
pub struct CorpusArgs {
    /// Folder of documents (.txt, .md, .html) to answer from
    #[arg(long, default_value = "seeds")]
    pub corpus: PathBuf,
    /// Embedding model (see `docqa models list`), or the base URL of an OpenAI-compatible
    /// embeddings API (`http://host:port/v1`: llama-server --embeddings,
    /// text-embeddings-inference); a served embedder's index is kept apart from a local one's
    #[arg(long, default_value = DEFAULT_EMBEDDER, value_parser = super::parse_embedder)]
    pub embedder: String,
    /// Index file [default: under the cache, keyed by the corpus folder's absolute path].
    /// Only a docqa index (or an empty file) there is ever replaced; anything else is refused
    #[arg(long)]
    pub index: Option<PathBuf>,
    /// Target chunk size in tokens (changing it re-indexes)
    #[arg(long, value_parser = super::parse_positive, default_value_t = docqa::corpus::ChunkerConfig::default().max_tokens)]
    pub chunk_tokens: usize,
    /// Embed chunk text without the document title in front (changing it re-indexes)
    #[arg(long)]
    pub no_embed_title: bool,
    /// Overlap between consecutive chunks in tokens (smaller than --chunk-tokens)
    #[arg(long, default_value_t = docqa::corpus::ChunkerConfig::default().overlap_tokens)]
    pub chunk_overlap: usize,
    /// Seconds between saves of the files embedded so far while building an index; a killed
    /// build resumes from the last save
    #[arg(
        long,
        value_name = "SECONDS",
        value_parser = parse_seconds,
        default_value_t = index::DEFAULT_CHECKPOINT_EVERY.as_secs_f64()
    )]
    pub checkpoint_secs: f64,
}

#[derive(Args, Clone)]
pub struct RetrievalArgs {
    /// Number of chunks to retrieve (`ask` gives the model as many of them as fit its context)
    #[arg(short = 'k', long, default_value_t = 5, value_parser = super::parse_positive)]
    pub k: usize,
    /// Ranking: dense (embeddings), bm25 (keywords) or hybrid (both, merged as --fusion says:
    /// by default the weighted sum of their min-max normalised scores)
    #[arg(long, value_enum, default_value_t = RetrievalMode::Hybrid)]
    pub mode: RetrievalMode,
    /// How hybrid mode merges the rankings: convex (weighted sum of min-max normalised scores)
    /// or rrf (reciprocal rank fusion)
    #[arg(long, value_enum, default_value_t = RetrievalConfig::default().fusion)]
    pub fusion: FusionMethod,
    /// Weight of the dense ranking in hybrid fusion
    #[arg(long, default_value_t = RetrievalConfig::default().dense_weight)]
    pub dense_weight: f32,
    /// Weight of the BM25 ranking in hybrid fusion
    #[arg(long, default_value_t = RetrievalConfig::default().bm25_weight)]
    pub bm25_weight: f32,
}

impl RetrievalArgs {
    pub fn config(&self) -> RetrievalConfig {
        RetrievalConfig {
            mode: self.mode,
            k: self.k.max(1),
            fusion: self.fusion,
            dense_weight: self.dense_weight,
            bm25_weight: self.bm25_weight,
            ..RetrievalConfig::default()
        }
    }
}

/// Starts this same program as an embedding worker.
pub fn worker_command() -> std::process::Command {
    let exe = std::env::current_exe().unwrap_or_else(|_| "docqa".into());
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("embed-worker");
    cmd
}

/// `docqa embed-worker`: embeds texts sent on stdin until it closes (see
/// `docqa::embed::worker`).
pub fn run_embed_worker() -> Result<ExitCode> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    docqa::embed::worker::serve(stdin.lock(), stdout.lock(), |m| {
        BertEmbedder::load(&m.weights, &m.config, &m.tokenizer, m.id.clone())
            .map(|e| e.with_batch(docqa::embed::WORKER_BATCH))
    })?;
    Ok(ExitCode::SUCCESS)
}

impl CorpusArgs {
    /// The chunker settings checked against each other, with the flags to blame on failure.
    pub fn check(&self) -> Result<(), String> {
        let min = docqa::corpus::ChunkerConfig::MIN_MAX_TOKENS;
        if self.chunk_tokens < min {
            return Err(format!(
                "--chunk-tokens {} is too small: it must be at least {min}",
                self.chunk_tokens
            ));
        }
        if self.chunk_overlap >= self.chunk_tokens {
            return Err(format!(
                "--chunk-overlap {} must be smaller than --chunk-tokens {}",
                self.chunk_overlap, self.chunk_tokens
            ));
        }
        Ok(())
    }

    /// The corpus settings these flags resolve to, with the index under `cache` unless
    /// `--index` names it.
    pub fn settings(&self, cache: &Path) -> CorpusSettings {
        CorpusSettings {
            embedder: self.embedder.clone(),
            index: IndexSettings {
                chunker: docqa::corpus::ChunkerConfig {
                    max_tokens: self.chunk_tokens,
                    overlap_tokens: self.chunk_overlap,
                },
                embed_title: !self.no_embed_title,
            },
            checkpoint_every: Duration::from_secs_f64(self.checkpoint_secs),
            index_path: match &self.index {
                Some(path) => path.clone(),
                None => CorpusSettings::default_index_for(&self.corpus, cache, &self.embedder),
            },
            ..CorpusSettings::new(self.corpus.clone(), cache, self.index.clone())
        }
    }
}

/// What the command line shows while a session loads: model fetch lines and the index build's
/// progress, on stderr, nothing under `--quiet`.
pub struct Shown {
    quiet: bool,
    meter: BuildMeter,
}

impl Shown {
    pub fn new(global: &GlobalArgs, corpus: &Path) -> Shown {
        Shown {
            quiet: global.quiet,
            meter: BuildMeter::new(global, corpus),
        }
    }
}

impl Events for Shown {
    fn fetch_line(&mut self, line: &str) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }

    fn build_progress(&mut self, p: &BuildProgress) {
        self.meter.show(p);
    }
}

impl Drop for Shown {
    fn drop(&mut self) {
        self.meter.finish();
    }
}

/// Shows an index build's progress on stderr: a bar on a terminal; otherwise (logs, CI, a pipe)
/// a line every [`PROGRESS_LINE_EVERY`] and one at the end; nothing under `--quiet`.
struct BuildMeter {
    meter: Meter,
    label: String,
}

/// Time between progress lines when stderr is not a terminal.
const PROGRESS_LINE_EVERY: Duration = Duration::from_secs(10);

impl BuildMeter {
    fn new(global: &GlobalArgs, corpus: &Path) -> BuildMeter {
        BuildMeter {
            meter: Meter::new(global, "embedding chunks"),
            label: corpus.display().to_string(),
        }
    }

    fn show(&mut self, p: &BuildProgress) {
        self.meter.set_length(p.chunks_total as u64);
        if let Some((rate, left)) = self.meter.advance(p.chunks_done as u64) {
            tracing::info!(
                "indexing {}: {}/{} files, {}/{} chunks embedded, {rate:.1} chunks/s, {left}",
                self.label,
                p.files_done,
                p.files_total,
                p.chunks_done,
                p.chunks_total
            );
        }
    }

    fn finish(&self) {
        self.meter.finish();
    }
}

/// A number of seconds, 0 or more.
pub fn parse_seconds(arg: &str) -> Result<f64, String> {
    match arg.parse::<f64>() {
        Ok(secs) if secs >= 0.0 && secs.is_finite() => Ok(secs),
        _ => Err(format!("`{arg}` is not a number of seconds (0 or more)")),
    }
}

/// `75` -> `1m 15s`, `4000` -> `1h 06m`.
fn human_duration(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
    }
}

/// Progress of counted work (an index build's chunks, an eval's questions, a compare's runs): a
/// bar when stderr is a terminal, otherwise a line every [`PROGRESS_LINE_EVERY`] and one at the
/// end (CI logs and pipes see progress too), nothing with `--quiet`.
pub struct Meter {
    bar: ProgressBar,
    lines: bool,
    label: String,
    len: u64,
    started: Option<Instant>,
    last_line: Option<Instant>,
}

impl Meter {
    pub fn new(global: &GlobalArgs, label: &str) -> Meter {
        use std::io::IsTerminal;
        Meter {
            bar: progress_bar(global, label),
            lines: !global.quiet && !std::io::stderr().is_terminal(),
            label: label.to_string(),
            len: 0,
            started: None,
            last_line: None,
        }
    }

    /// Sets the total; the clock starts with the first call.
    pub fn set_length(&mut self, len: u64) {
        self.started.get_or_insert_with(Instant::now);
        self.len = len;
        self.bar.set_length(len);
    }

    pub fn set_position(&mut self, done: u64) {
        if let Some((_, left)) = self.advance(done) {
            tracing::info!("{}: {done}/{}, {left}", self.label, self.len);
        }
    }

    /// Moves the bar to `done`. When lines are shown and one is due (the first after
    /// [`PROGRESS_LINE_EVERY`], and the last), returns the rate per second and "about ... left"
    /// or "done in ...".
    fn advance(&mut self, done: u64) -> Option<(f64, String)> {
        self.bar.set_position(done);
        let started = *self.started.get_or_insert_with(Instant::now);
        if !self.lines || done == 0 {
            return None;
        }
        let finished = done >= self.len;
        let due = self
            .last_line
            .is_none_or(|t| t.elapsed() >= PROGRESS_LINE_EVERY);
        if !(due || finished) {
            return None;
        }
        self.last_line = Some(Instant::now());
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        let rate = done as f64 / secs;
        let left = if finished {
            format!("done in {}", human_duration(secs))
        } else {
            let eta = self.len.saturating_sub(done) as f64 / rate.max(1e-9);
            format!("about {} left", human_duration(eta))
        };
        Some((rate, left))
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

pub fn progress_bar(global: &GlobalArgs, label: &str) -> ProgressBar {
    use std::io::IsTerminal;
    if global.quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:>18} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_message(label.to_string());
    bar
}

pub fn run_index(
    global: &GlobalArgs,
    settings: &Settings,
    rebuild: bool,
    json: bool,
) -> Result<ExitCode> {
    let path = &settings.corpus.index_path;
    let (index, report) = {
        let mut events = Shown::new(global, &settings.corpus.dir);
        Session::index_only(settings, rebuild, &mut events)?
    };
    if json {
        let v = serde_json::json!({
            "index": path,
            "corpus": settings.corpus.dir,
            "embedder": index.embedder_id,
            "report": report,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{}: {} chunks ({} embedded, {} reused) from {} files ({} re-embedded, {} unchanged, \
             {} removed, {} skipped) in {:.2}s",
            path.display(),
            report.chunks,
            report.embedded_chunks,
            report.reused_chunks,
            report.reused_files.len() + report.embedded_files.len(),
            report.embedded_files.len(),
            report.reused_files.len(),
            report.removed_files.len(),
            report.skipped_files.len(),
            report.seconds
        );
        for (file, why) in &report.skipped_files {
            println!("  skipped {file}: {why}");
        }
        for (file, encoding) in &report.decoded_files {
            println!("  decoded {file}: not UTF-8, read as {encoding}");
        }
        if let Some(why) = &report.rebuilt_reason {
            println!("  rebuilt: {why}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_search(
    global: &GlobalArgs,
    settings: Settings,
    question: &str,
    json: bool,
) -> Result<ExitCode> {
    let session = {
        let mut events = Shown::new(global, &settings.corpus.dir);
        Session::open(settings, &mut events)?
    };
    let report = session.search(question, &session.settings().retrieval)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for (rank, h) in report.hits.iter().enumerate() {
            let fmt = |s: Option<index::RankScore>| {
                s.map_or("-".to_string(), |s| format!("#{} {:.3}", s.rank, s.score))
            };
            let c = session.index().chunk(&h.id).expect("a hit of this index");
            println!(
                "{}. {}  {}  score {:.4}  (dense {}, bm25 {})",
                rank + 1,
                h.id,
                chunk_location(c),
                h.score,
                fmt(h.dense),
                fmt(h.bm25)
            );
            println!("   {}\n", snippet(&h.text, 240));
        }
        eprintln!(
            "{} hits in {:.1} ms ({} mode)",
            report.hits.len(),
            report.retrieval_ms,
            report.mode
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Where a chunk is, for people: `notes.txt:120-480`, or with its page and section when it has
/// them, `manual.pdf p. 4 (120-480)`, `guide.md:120-480 (Guide › Setup)`.
pub fn chunk_location(c: &docqa::corpus::Chunk) -> String {
    let mut out = match c.page {
        Some(page) => format!("{} p. {page} ({}-{})", c.doc, c.start, c.end),
        None => format!("{}:{}-{}", c.doc, c.start, c.end),
    };
    if c.title.contains(" › ") {
        out.push_str(&format!(" [{}]", c.title));
    }
    out
}

/// The first `max` characters of a text on one line.
pub fn snippet(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        let cut: String = flat.chars().take(max).collect();
        format!("{}…", cut.trim_end())
    }
}

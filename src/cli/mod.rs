//! Flag parsing and printing for every subcommand.

mod ask_cmd;
mod corpus_cmd;
mod errors;
mod eval_cmd;
mod models_cmd;
mod serve_cmd;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};
use docqa::index::RetrievalConfig;
use docqa::models::{FetchOptions, ModelRole, Registry, Store};
use docqa::session::{GeneratorSettings, Settings};

/// Exit codes: 0 success, 1 error, 2 usage error, 3 an eval threshold was missed.
pub use errors::EXIT_ERROR;

#[derive(Parser)]
#[command(
    name = "docqa",
    version,
    about = "Answer questions about a folder of documents, offline on a CPU, with checked citations",
    long_about = "docqa ranks the chunks of a folder of documents for a question (BERT embeddings \
                  + BM25), has a small local LLM draft an answer that cites the chunks it used, \
                  checks every citation, and says so when the documents do not hold the answer.\n\n\
                  Models are fetched on first use into a verified cache (DOCQA_CACHE)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Clone)]
pub struct GlobalArgs {
    /// Model cache folder [default: the user's cache dir + /docqa]
    #[arg(long, global = true, env = "DOCQA_CACHE")]
    pub cache: Option<PathBuf>,
    /// Never touch the network; fail if a model is not cached (also HF_HUB_OFFLINE=1)
    #[arg(long, global = true)]
    pub offline: bool,
    /// CPU threads for model inference, and the number of embedding worker processes an index
    /// build starts (one single-threaded model each) [default: all cores]
    #[arg(long, global = true, env = "DOCQA_THREADS")]
    pub threads: Option<usize>,
    /// Hide progress bars and informational messages
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Folder of your own model manifests (`*.toml`, the schema of the bundled `models/*.toml`)
    /// that extend the registry: pinned files, sources and hashes, a calibrated verification
    /// threshold, or a served model [default: $XDG_CONFIG_HOME/docqa/models]
    #[arg(long, global = true, value_name = "DIR", env = "DOCQA_MODELS_DIR")]
    pub models_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Answer a question from the documents, with checked citations
    ///
    /// Retrieves the most relevant chunks (hybrid BM25 + embeddings), has the local model draft
    /// an answer citing them, removes citations that do not check out, and abstains when the
    /// documents do not hold the answer. The draft streams to stderr on a terminal; the checked
    /// answer and its sources go to stdout.
    Ask {
        /// The question
        #[arg(value_parser = parse_question)]
        question: String,
        #[command(flatten)]
        corpus: corpus_cmd::CorpusArgs,
        #[command(flatten)]
        retrieval: corpus_cmd::RetrievalArgs,
        #[command(flatten)]
        generator: ask_cmd::GeneratorArgs,
        /// Print JSON (answer, citations, dropped citations, retrieval scores, models, timings)
        #[arg(long)]
        json: bool,
    },
    /// Rank the corpus's chunks for a question (no generation)
    Search {
        /// The question or keywords
        #[arg(value_parser = parse_question)]
        question: String,
        #[command(flatten)]
        corpus: corpus_cmd::CorpusArgs,
        #[command(flatten)]
        retrieval: corpus_cmd::RetrievalArgs,
        /// Print JSON: each hit with id, file, start, end, score and text
        #[arg(long)]
        json: bool,
    },
    /// Build or update the index of a corpus folder (only changed files are re-embedded)
    ///
    /// The index lives under the cache (DOCQA_CACHE/indexes/<folder>-<hash>/index.docqa) unless
    /// --index is given. Every command that reads documents updates it on its own.
    Index {
        /// Corpus folder [default: seeds] (or give it as --corpus)
        #[arg(conflicts_with = "corpus")]
        dir: Option<std::path::PathBuf>,
        #[command(flatten)]
        corpus: corpus_cmd::CorpusArgs,
        /// Ignore the existing index and embed everything again
        #[arg(long)]
        rebuild: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Score the pipeline against a Q&A file: retrieval, answers, citations, abstention, speed
    ///
    /// Prints a summary table (or the full report with --json), writes Markdown/JSON reports on
    /// request, and exits with code 3 naming the metric when a --thresholds bound is missed.
    /// Generations are cached by (model hash, prompt hash); --no-cache recomputes them.
    Eval {
        #[command(flatten)]
        eval: eval_cmd::EvalArgs,
        #[command(flatten)]
        corpus: corpus_cmd::CorpusArgs,
        #[command(flatten)]
        retrieval: corpus_cmd::RetrievalArgs,
        #[command(flatten)]
        generator: ask_cmd::GeneratorArgs,
        /// Write the verification threshold the run proposes into a user manifest,
        /// MODELS_DIR/NAME.toml (see --models-dir; NAME defaults to the generator's name),
        /// where later runs of this generator (registered, the same file, or the same server and
        /// model) find it. Needs margins: run with --verify-threshold=-inf --withhold-gold
        #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "")]
        write_threshold: Option<String>,
        /// Print the whole report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Run the same eval over a grid of model choices and print a leaderboard
    ///
    /// Writes leaderboard.md, leaderboard.json and leaderboard.svg (a chart) to --out, plus a
    /// Markdown report per run. Cached generations are reused, so a re-run only computes what
    /// changed.
    Compare {
        #[command(flatten)]
        compare: eval_cmd::CompareArgs,
        #[command(flatten)]
        eval: eval_cmd::EvalArgs,
        #[command(flatten)]
        corpus: corpus_cmd::CorpusArgs,
        #[command(flatten)]
        retrieval: corpus_cmd::RetrievalArgs,
        #[command(flatten)]
        generator: ask_cmd::GeneratorArgs,
        /// Print the leaderboard as JSON
        #[arg(long)]
        json: bool,
    },
    /// Serve questions over HTTP: an OpenAI-compatible API and docqa's own, models loaded once
    ///
    /// Binds loopback by default; any other address needs a bearer token (--token or
    /// DOCQA_TOKEN) that every request must then present. Routes: GET /health, GET /v1/models,
    /// POST /v1/ask, /v1/search, /v1/chat/completions (also streamed), /v1/embeddings.
    Serve {
        #[command(flatten)]
        serve: serve_cmd::ServeArgs,
        #[command(flatten)]
        corpus: corpus_cmd::CorpusArgs,
        #[command(flatten)]
        retrieval: corpus_cmd::RetrievalArgs,
        #[command(flatten)]
        generator: ask_cmd::GeneratorArgs,
    },
    /// Serve the corpus to an agent over the Model Context Protocol (stdio)
    ///
    /// Tools: ask (a checked answer with its sources), search, get (a chunk, or a file's byte
    /// or line range) and status. See README, "MCP".
    Mcp {
        #[command(flatten)]
        corpus: corpus_cmd::CorpusArgs,
        #[command(flatten)]
        retrieval: corpus_cmd::RetrievalArgs,
        #[command(flatten)]
        generator: ask_cmd::GeneratorArgs,
    },
    /// Serve embedding requests on stdin/stdout (started by docqa itself when indexing)
    #[command(hide = true)]
    EmbedWorker,
    /// List, fetch and verify the registered models
    Models {
        #[command(subcommand)]
        command: models_cmd::ModelsCommand,
    },
}

impl Command {
    /// Whether the command prints JSON, and so its errors too.
    fn json(&self) -> bool {
        match self {
            Command::Ask { json, .. }
            | Command::Search { json, .. }
            | Command::Index { json, .. }
            | Command::Eval { json, .. }
            | Command::Compare { json, .. } => *json,
            Command::Models { command } => matches!(
                command,
                models_cmd::ModelsCommand::List { json: true }
                    | models_cmd::ModelsCommand::Verify { json: true, .. }
            ),
            Command::EmbedWorker | Command::Serve { .. } | Command::Mcp { .. } => false,
        }
    }

    /// The subcommand's name and its corpus flags, for the commands that read documents.
    fn corpus(&self) -> Option<(&'static str, &corpus_cmd::CorpusArgs)> {
        match self {
            Command::Ask { corpus, .. } => Some(("ask", corpus)),
            Command::Search { corpus, .. } => Some(("search", corpus)),
            Command::Index { corpus, .. } => Some(("index", corpus)),
            Command::Eval { corpus, .. } => Some(("eval", corpus)),
            Command::Compare { corpus, .. } => Some(("compare", corpus)),
            Command::Serve { corpus, .. } => Some(("serve", corpus)),
            Command::Mcp { corpus, .. } => Some(("mcp", corpus)),
            Command::Models { .. } | Command::EmbedWorker => None,
        }
    }
}

impl Command {
    /// The generator flags of the commands that generate, with the values of `--model` (or
    /// compare's `--models`).
    fn generator(&self) -> Option<(&ask_cmd::GeneratorArgs, Vec<&str>)> {
        match self {
            Command::Ask { generator, .. }
            | Command::Eval { generator, .. }
            | Command::Serve { generator, .. }
            | Command::Mcp { generator, .. } => Some((generator, vec![generator.model.as_str()])),
            Command::Compare {
                generator, compare, ..
            } => Some((
                generator,
                compare.models.iter().map(String::as_str).collect(),
            )),
            _ => None,
        }
    }
}

impl Cli {
    /// Checks what clap cannot check one flag at a time; a failure is a usage error (exit 2).
    fn validate(&self) -> Result<(), clap::Error> {
        let name = self.command.corpus().map(|(name, _)| name);
        // Built so the usage line names the subcommand (`docqa index [OPTIONS] ...`).
        let usage = |msg: String| {
            let mut cmd = Cli::command();
            cmd.build();
            match name.and_then(|n| cmd.find_subcommand_mut(n)) {
                Some(sub) => sub.error(clap::error::ErrorKind::ValueValidation, msg),
                None => cmd.error(clap::error::ErrorKind::ValueValidation, msg),
            }
        };
        if let Some((_, corpus)) = self.command.corpus() {
            corpus.check().map_err(usage)?;
        }
        if let Some((generator, models)) = self.command.generator() {
            let registry = self.global.registry().map_err(|e| usage(e.to_string()))?;
            for model in models {
                generator
                    .model_ref(model, &registry)
                    .map_err(|msg| usage(format!("--model {model}: {msg}")))?;
            }
        }
        Ok(())
    }

    /// The generator settings of `args` (validated by [`Cli::validate`]).
    fn generator_settings(&self, args: &ask_cmd::GeneratorArgs) -> GeneratorSettings {
        let registry = self.global.registry().expect("validated");
        args.settings(&registry).expect("validated")
    }
}

/// A question must hold a word: an empty one is a usage error, not an empty search.
pub fn parse_question(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("the question is empty".into());
    }
    Ok(s.to_string())
}

/// A count that must be at least 1 (`-k`, `--chunk-tokens`, `--every`).
pub fn parse_positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// `name` if the built-in registry has a model of that role by that name; else a message naming
/// the ones it has.
fn registered(name: &str, role: ModelRole) -> Result<String, String> {
    let registry = Registry::builtin();
    if registry.get_role(name, role).is_ok() {
        return Ok(name.to_string());
    }
    let known: Vec<&str> = registry
        .models()
        .iter()
        .filter(|m| m.role == role)
        .map(|m| m.name.0.as_str())
        .collect();
    Err(format!(
        "`{name}` is not a registered {role} (registered {role}s: {}; see `docqa models list`)",
        known.join(", ")
    ))
}

/// A registered embedder's name, or the base URL of an OpenAI-compatible `/embeddings` API.
pub fn parse_embedder(name: &str) -> Result<String, String> {
    if docqa::served::is_url(name) {
        return Ok(name.trim_end_matches('/').to_string());
    }
    registered(name, ModelRole::Embedder)
}

pub fn run() -> ExitCode {
    let wants_json = errors::wants_json(std::env::args_os());
    let cli = match Cli::try_parse().and_then(|cli| cli.validate().map(|()| cli)) {
        Ok(cli) => cli,
        Err(e) => return errors::report_clap(e, wants_json),
    };
    // A worker keeps the one thread its parent started it with.
    if let Some(n) = cli
        .global
        .threads
        .filter(|_| !matches!(cli.command, Command::EmbedWorker))
    {
        start_with_threads(n.max(1));
    }
    init_tracing(cli.global.quiet);
    let result = match &cli.command {
        Command::Models { command } => models_cmd::run(&cli.global, command),
        Command::EmbedWorker => corpus_cmd::run_embed_worker(),
        Command::Ask {
            question,
            corpus,
            retrieval,
            generator,
            json,
        } => ask_cmd::run(
            &cli.global,
            cli.global.settings(
                corpus,
                retrieval.config(),
                cli.generator_settings(generator),
            ),
            question,
            *json,
        ),
        Command::Eval {
            eval,
            corpus,
            retrieval,
            generator,
            write_threshold,
            json,
        } => eval_cmd::run_eval(
            &cli.global,
            eval,
            write_threshold.as_deref(),
            cli.global.settings(
                corpus,
                retrieval.config(),
                cli.generator_settings(generator),
            ),
            *json,
        ),
        Command::Compare {
            compare,
            eval,
            corpus,
            retrieval,
            generator,
            json,
        } => eval_cmd::run_compare(
            &cli.global,
            eval,
            compare,
            generator,
            cli.global.settings(
                corpus,
                retrieval.config(),
                cli.generator_settings(generator),
            ),
            *json,
        ),
        Command::Search {
            question,
            corpus,
            retrieval,
            json,
        } => corpus_cmd::run_search(
            &cli.global,
            cli.global
                .settings(corpus, retrieval.config(), GeneratorSettings::default()),
            question,
            *json,
        ),
        Command::Index {
            dir,
            corpus,
            rebuild,
            json,
        } => {
            let mut corpus = corpus.clone();
            if let Some(dir) = dir {
                corpus.corpus = dir.clone();
            }
            let settings = cli.global.settings(
                &corpus,
                RetrievalConfig::default(),
                GeneratorSettings::default(),
            );
            corpus_cmd::run_index(&cli.global, &settings, *rebuild, *json)
        }
        Command::Serve {
            serve,
            corpus,
            retrieval,
            generator,
        } => serve_cmd::run_http(
            serve,
            cli.global.settings(
                corpus,
                retrieval.config(),
                cli.generator_settings(generator),
            ),
        ),
        Command::Mcp {
            corpus,
            retrieval,
            generator,
        } => serve_cmd::run_mcp(cli.global.settings(
            corpus,
            retrieval.config(),
            cli.generator_settings(generator),
        )),
    };
    match result {
        Ok(code) => code,
        Err(e) => errors::report(&e, cli.command.json()),
    }
}

/// The variable candle sizes its CPU thread pools from when it starts them.
const POOL_THREADS_ENV: &str = "RAYON_NUM_THREADS";

/// Makes sure this process runs its models on `n` threads. candle takes its pools' size only
/// from [`POOL_THREADS_ENV`], read as the process starts them, and changing the environment of
/// a running program is unsound once it has threads (`set_var` is unsafe in edition 2024). So
/// when the process was not started with that value, it replaces itself (exec: same process
/// ID, same arguments, so a signal sent to it still arrives) with the variable set; the library
/// gets the count as a value in [`Settings::threads`].
fn start_with_threads(n: usize) {
    let wanted = n.to_string();
    if std::env::var_os(POOL_THREADS_ENV).is_some_and(|v| v == wanted.as_str()) {
        return;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let exe = std::env::current_exe().unwrap_or_else(|_| "docqa".into());
        let err = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env(POOL_THREADS_ENV, &wanted)
            .exec();
        eprintln!("warning: could not restart with {POOL_THREADS_ENV}={wanted} ({err}): running on candle's default threads");
    }
}

fn init_tracing(quiet: bool) {
    // The PDF parser logs each figure it cannot decode; docqa needs only the text, so those
    // warnings would be noise on every indexed manual.
    let default = if quiet {
        "warn,lopdf=error,pdf_extract=error"
    } else {
        "info,lopdf=error,pdf_extract=error"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("DOCQA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .init();
}

impl GlobalArgs {
    /// The cache folder: `--cache`, else `DOCQA_CACHE`, else the user's cache dir + `/docqa`.
    pub fn cache(&self) -> PathBuf {
        self.cache.clone().unwrap_or_else(Store::default_root)
    }

    /// The folder of the user's own model manifests: `--models-dir`, else
    /// `$XDG_CONFIG_HOME/docqa/models`.
    pub fn models_dir(&self) -> Option<PathBuf> {
        self.models_dir
            .clone()
            .or_else(docqa::models::default_models_dir)
    }

    /// The registry: built in, extended by the user's manifests.
    pub fn registry(&self) -> Result<Registry, docqa::models::StoreError> {
        match self.models_dir() {
            Some(dir) => Registry::with_user_manifests(&dir),
            None => Ok(Registry::builtin()),
        }
    }

    pub fn store(&self) -> Result<Store, docqa::models::StoreError> {
        Ok(Store::new(self.cache(), self.registry()?))
    }

    pub fn fetch_options(&self) -> FetchOptions {
        FetchOptions {
            offline: self.offline,
            quiet: self.quiet,
        }
    }

    /// The threads the models use: `--threads`, else `DOCQA_THREADS`, else every core.
    pub fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(docqa::session::default_threads)
            .max(1)
    }

    /// Every setting of a command that reads documents, resolved from its flags: the one place
    /// the command line's flags become the library's settings.
    pub fn settings(
        &self,
        corpus: &corpus_cmd::CorpusArgs,
        retrieval: RetrievalConfig,
        generator: GeneratorSettings,
    ) -> Settings {
        let cache = self.cache();
        Settings {
            corpus: corpus.settings(&cache),
            cache,
            offline: self.offline,
            quiet: self.quiet,
            models_dir: self.models_dir(),
            threads: self.threads(),
            worker_command: Some(corpus_cmd::worker_command),
            retrieval,
            generator,
        }
    }

    /// Prints a pull's progress lines on stderr unless quiet.
    pub fn progress_printer(&self) -> impl FnMut(&str) {
        let quiet = self.quiet;
        move |line: &str| {
            if !quiet {
                eprintln!("{line}");
            }
        }
    }
}

/// Formats a byte count for tables.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KB", "MB", "GB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Renders rows as an aligned plain-text table.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.clone()));
        out.push('\n');
    }
    out
}

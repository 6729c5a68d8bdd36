//! The one entry to the pipeline for every front end: the command line (`ask`, `search`,
//! `index`, `eval`, `compare`), the HTTP server (`docqa serve`) and the MCP server (`docqa mcp`).
//!
//! A front end resolves its flags into [`Settings`] once (as ripgrep's `hiargs` does), opens a
//! [`Session`], which loads the embedder, brings the corpus index up to date and, on first need,
//! loads the generator, and then asks, searches or fetches as often as it likes. Answers come
//! back as typed, serialisable reports ([`AskReport`], [`SearchReport`], [`StatusReport`],
//! [`Excerpt`]) that each front end prints or sends unchanged. A new front end (a web page,
//! another protocol) is one more caller of this module; nothing below it knows who is asking.

pub mod errors;
mod report;
mod settings;

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use crate::corpus::{ChunkId, CorpusError, DocId};
use crate::embed::{BertEmbedder, EmbedError, Embedder, ServedEmbedder};
use crate::generate::prefix_store::PrefixStore;
use crate::generate::{
    gguf_architecture, GenOptions, GenerateError, Generation, Generator, GgufGenerator, Prompt,
    ServedGenerator, SUPPORTED_ARCHITECTURES,
};
use crate::index::{
    self, BuildProgress, Index, IndexError, RetrievalConfig, RetrievalMode, UpdateOptions,
    UpdateReport,
};
use crate::models::{LocalModel, ModelKind, ModelRef, ModelRole, Store, StoreError};
use crate::pipeline::{self, AskConfig, AskError};

pub use report::{
    AskReport, AskTimings, Citation, EmbedderRef, Excerpt, GeneratorRef, ModelsUsed, Retrieved,
    SearchHit, SearchReport, StatusReport,
};
pub use settings::{
    default_threads, CorpusSettings, GeneratorSettings, Settings, VerifyPolicy, WorkerCommand,
};

/// What can go wrong in a session. Each variant carries the library error it came from; its
/// message is that error's (or, for [`SessionError::Indexing`], names the corpus before it).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Corpus(#[from] CorpusError),
    #[error(transparent)]
    Model(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] IndexError),
    /// Bringing the index of a corpus up to date failed.
    #[error("indexing {corpus}")]
    Indexing {
        corpus: PathBuf,
        #[source]
        source: IndexError,
    },
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Generate(#[from] GenerateError),
    /// A GGUF file given by path could not be loaded.
    #[error("model file {}", path.display())]
    ModelFile {
        path: PathBuf,
        #[source]
        source: Box<GenerateError>,
    },
    #[error(transparent)]
    Ask(#[from] AskError),
    /// `get` named a chunk the index does not hold.
    #[error("no chunk {0} in the index (IDs are as `search` prints them, e.g. `notes#3`)")]
    NoSuchChunk(ChunkId),
    /// `get` named a file that is not in the corpus.
    #[error("no file {0} in the corpus (paths are relative to the corpus folder, as `search` prints them)")]
    NoSuchFile(String),
    /// A corpus file the index holds could not be read (`get`).
    #[error("cannot read {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `get` asked for a range outside the file's text.
    #[error("{file}: {what} is outside its text ({len})")]
    BadRange {
        file: String,
        what: String,
        len: String,
    },
}

/// What a session reports while it loads: model fetch lines and index build progress. The
/// command line shows them; a server logs or ignores them.
pub trait Events {
    /// One line of a model fetch.
    fn fetch_line(&mut self, _line: &str) {}
    /// How far an index build has got.
    fn build_progress(&mut self, _p: &BuildProgress) {}
}

/// Reports nothing.
pub struct Silent;
impl Events for Silent {}

/// A loaded generator and what it is.
struct LoadedGenerator {
    generator: Box<dyn Generator + Send>,
    /// The model it was loaded as.
    source: ModelRef,
    /// What reports say of it.
    info: GeneratorRef,
    /// Its calibrated verification threshold, from its manifest (a file's by its sha256, a
    /// served model's by URL and model id).
    calibrated: Option<f64>,
    /// Time it took to load, charged to the first answer of a session.
    load_ms: f64,
}

/// The corpus's files as last indexed (path, length, modification time): a request compares
/// them with the folder to decide whether the index needs an update, which costs a directory
/// walk instead of reading and hashing every file.
#[derive(Debug, Clone, PartialEq, Default)]
struct CorpusStamp(Vec<(PathBuf, u64, Option<SystemTime>)>);

impl CorpusStamp {
    fn of(dir: &Path) -> CorpusStamp {
        let mut files = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let Ok(meta) = e.metadata() else { continue };
                if meta.is_dir() {
                    stack.push(e.path());
                } else {
                    files.push((e.path(), meta.len(), meta.modified().ok()));
                }
            }
        }
        files.sort();
        CorpusStamp(files)
    }
}

/// A corpus index with its embedder, and the generator once loaded: everything an answer needs,
/// loaded once.
pub struct Session {
    settings: Settings,
    store: Store,
    embedder: SessionEmbedder,
    embedder_ref: EmbedderRef,
    index: Index,
    stamp: CorpusStamp,
    generator: Option<LoadedGenerator>,
    /// Loading the embedder and the index, charged to the first answer.
    open_ms: f64,
    /// Whether the load times have been charged to an answer yet.
    load_charged: bool,
    last_update: UpdateReport,
}

impl Session {
    /// Loads the embedder and brings the corpus index up to date (embedding only what changed).
    pub fn open(settings: Settings, events: &mut dyn Events) -> Result<Session, SessionError> {
        let started = Instant::now();
        // Checked before the models load, so a mistyped path fails at once.
        let dir = settings.corpus.dir.clone();
        match std::fs::metadata(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CorpusError::NotFound { dir }.into())
            }
            Ok(meta) if !meta.is_dir() => return Err(CorpusError::NotADirectory { dir }.into()),
            _ => {}
        }
        // Before the models load: a path docqa must not write is refused at once.
        index::check_index_path(&settings.corpus.index_path)?;
        let store = settings.store()?;
        let (embedder, embedder_ref) = load_embedder(&settings, &store, events)?;
        let stamp = CorpusStamp::of(&dir);
        let (index, report) = build(&settings, embedder.get(), false, events)?;
        log_update(&settings.corpus.dir, &report);
        Ok(Session {
            open_ms: started.elapsed().as_secs_f64() * 1e3,
            settings,
            store,
            embedder,
            embedder_ref,
            index,
            stamp,
            generator: None,
            load_charged: false,
            last_update: report,
        })
    }

    /// Loads the embedder and builds or updates the index from scratch (`rebuild`) or
    /// incrementally, without keeping a session: `docqa index`.
    pub fn index_only(
        settings: &Settings,
        rebuild: bool,
        events: &mut dyn Events,
    ) -> Result<(Index, UpdateReport), SessionError> {
        index::check_index_path(&settings.corpus.index_path)?;
        let store = settings.store()?;
        let (embedder, _) = load_embedder(settings, &store, events)?;
        build(settings, embedder.get(), rebuild, events)
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn embedder(&self) -> &dyn Embedder {
        self.embedder.get()
    }

    /// The embedder, as reports name it.
    pub fn embedder_ref(&self) -> &EmbedderRef {
        &self.embedder_ref
    }

    /// What the last index update did (the one at open, or at the last [`Session::refresh`]
    /// that found a change).
    pub fn last_update(&self) -> &UpdateReport {
        &self.last_update
    }

    /// Loads the generator the settings name, unless it is loaded already: a registered model
    /// from the cache (fetched on first use), a GGUF file in place (its sha256 taken once and
    /// remembered), or a served model (its server asked whether it serves it).
    pub fn load_generator(&mut self, events: &mut dyn Events) -> Result<(), SessionError> {
        let wanted = self.settings.generator.model.clone();
        if self.generator.as_ref().is_some_and(|g| g.source == wanted) {
            return Ok(());
        }
        // The one loaded before goes first: two models need not fit in memory at once.
        self.generator = None;
        let started = Instant::now();
        let registry = self.store.registry();
        let (generator, mut info, calibrated): (Box<dyn Generator + Send>, GeneratorRef, _) =
            match &wanted {
                ModelRef::Registry { name } => {
                    registry.get_role(name, ModelRole::Generator)?;
                    let model =
                        self.store
                            .ensure(name, self.settings.fetch_options(), &mut |l| {
                                events.fetch_line(l)
                            })?;
                    let (path, sha256) = model.runtime_gguf();
                    let mut generator = GgufGenerator::load(path, &candle_core::Device::Cpu)?;
                    generator.set_prefix_store(PrefixStore::new(
                        self.store.root().join("prefixes"),
                        sha256,
                    ));
                    let info = GeneratorRef {
                        file: path.file_name().map(|f| f.to_string_lossy().into_owned()),
                        sha256: Some(sha256.to_string()),
                        ..GeneratorRef::new(name, ModelKind::Registry)
                    };
                    (Box::new(generator), info, model.spec.verify_threshold)
                }
                ModelRef::File { path } => {
                    let file_err = |source| SessionError::ModelFile {
                        path: path.clone(),
                        source: Box::new(source),
                    };
                    // Checked from the header first: a file docqa cannot run is named at once,
                    // before a gigabyte is hashed.
                    let arch = gguf_architecture(path).map_err(file_err)?;
                    if !SUPPORTED_ARCHITECTURES.contains(&arch.as_str()) {
                        return Err(file_err(GenerateError::UnsupportedArchitecture(arch)));
                    }
                    let sha256 = self.store.file_sha256(path)?;
                    let mut generator =
                        GgufGenerator::load(path, &candle_core::Device::Cpu).map_err(file_err)?;
                    generator.set_prefix_store(PrefixStore::new(
                        self.store.root().join("prefixes"),
                        &sha256,
                    ));
                    let calibrated = registry
                        .generator_by_sha256(&sha256)
                        .and_then(|spec| spec.verify_threshold);
                    let info = GeneratorRef {
                        file: path.file_name().map(|f| f.to_string_lossy().into_owned()),
                        path: Some(path.clone()),
                        sha256: Some(sha256),
                        ..GeneratorRef::new(&wanted.label(), ModelKind::File)
                    };
                    (Box::new(generator), info, calibrated)
                }
                ModelRef::Served {
                    base_url,
                    api_model,
                } => {
                    let generator = ServedGenerator::connect(
                        base_url,
                        api_model.as_deref(),
                        self.settings.generator.served.clone(),
                    )
                    .map_err(GenerateError::from)?;
                    let calibrated = registry
                        .served(base_url, generator.model())
                        .and_then(|spec| spec.verify_threshold);
                    let info = GeneratorRef {
                        url: Some(generator.base_url().to_string()),
                        ..GeneratorRef::new(generator.model(), ModelKind::Served)
                    };
                    (Box::new(generator), info, calibrated)
                }
            };
        info.features = generator.features();
        let load_ms = started.elapsed().as_secs_f64() * 1e3;
        tracing::info!("loaded generator {wanted} in {load_ms:.0} ms");
        self.generator = Some(LoadedGenerator {
            generator,
            source: wanted,
            info,
            calibrated,
            load_ms,
        });
        Ok(())
    }

    /// What the loaded generator is, as reports name it.
    pub fn generator_ref(&self) -> Option<&GeneratorRef> {
        self.generator.as_ref().map(|g| &g.info)
    }

    /// One raw generation by the loaded generator (loaded first if need be), outside the
    /// answer pipeline: `docqa serve`'s OpenAI-compatible completions for its generator.
    pub fn generate(
        &mut self,
        prompt: &Prompt,
        opts: &GenOptions,
    ) -> Result<Generation, SessionError> {
        self.generate_streaming(prompt, opts, &mut |_| {})
    }

    /// [`Session::generate`], calling `on_token` with each new piece of the reply as it forms.
    pub fn generate_streaming(
        &mut self,
        prompt: &Prompt,
        opts: &GenOptions,
        on_token: &mut dyn FnMut(&str),
    ) -> Result<Generation, SessionError> {
        self.load_generator(&mut Silent)?;
        let g = self.generator.as_mut().expect("loaded above");
        Ok(g.generator.generate(prompt, opts, on_token)?)
    }

    /// [`Session::open`] with the generator loaded too and the session marked warm: what a
    /// server holds before its first request, so no answer waits for a model to load.
    pub fn open_warm(settings: Settings) -> Result<Session, SessionError> {
        let mut session = Session::open(settings, &mut Silent)?;
        session.load_generator(&mut Silent)?;
        session.mark_warm();
        Ok(session)
    }

    /// Counts the models as loaded before any answer: a server loads them before it listens, so
    /// its answers report no load time.
    pub fn mark_warm(&mut self) {
        self.load_charged = true;
    }

    /// Switches to another generator (loaded on next need): `compare` over a grid.
    pub fn set_generator(&mut self, model: ModelRef) {
        self.settings.generator.model = model;
    }

    /// Sets the retrieval every later ask and search starts from.
    pub fn set_retrieval(&mut self, retrieval: RetrievalConfig) {
        self.settings.retrieval = retrieval;
    }

    /// The loaded generator and what it is, if any.
    pub fn generator(&mut self) -> Option<(&mut dyn Generator, &GeneratorRef)> {
        self.generator
            .as_mut()
            .map(|g| (g.generator.as_mut() as &mut dyn Generator, &g.info))
    }

    /// The index, the embedder and the loaded generator at once, for a caller that drives the
    /// pipeline itself (the eval runner).
    pub fn parts(
        &mut self,
    ) -> (
        &Index,
        &dyn Embedder,
        Option<(&mut dyn Generator, &GeneratorRef)>,
    ) {
        (
            &self.index,
            self.embedder.get(),
            self.generator
                .as_mut()
                .map(|g| (g.generator.as_mut() as &mut dyn Generator, &g.info)),
        )
    }

    /// The loaded generator's context length in tokens, when it has one.
    pub fn context_length(&self) -> Option<usize> {
        self.generator
            .as_ref()
            .and_then(|g| g.generator.context_length())
    }

    /// The pipeline settings an ask runs with under `retrieval`, for the loaded generator (its
    /// calibrated verification threshold), else as if it had none.
    pub fn ask_config(&self, retrieval: RetrievalConfig) -> AskConfig {
        let calibrated = self.generator.as_ref().and_then(|g| g.calibrated);
        self.settings.generator.ask_config(retrieval, calibrated)
    }

    /// Brings the index up to date when a corpus file was added, changed or removed since the
    /// last update; `Some` with what the update did, `None` when nothing changed.
    pub fn refresh(
        &mut self,
        events: &mut dyn Events,
    ) -> Result<Option<UpdateReport>, SessionError> {
        let stamp = CorpusStamp::of(&self.settings.corpus.dir);
        if stamp == self.stamp {
            return Ok(None);
        }
        let (index, report) = build(&self.settings, self.embedder.get(), false, events)?;
        log_update(&self.settings.corpus.dir, &report);
        self.index = index;
        self.stamp = stamp;
        self.last_update = report.clone();
        Ok(Some(report))
    }

    /// The settings' retrieval with a request's `k` and `mode` in place of theirs.
    pub fn retrieval(&self, k: Option<usize>, mode: Option<RetrievalMode>) -> RetrievalConfig {
        let mut r = self.settings.retrieval.clone();
        if let Some(k) = k {
            r.k = k.max(1);
        }
        if let Some(mode) = mode {
            r.mode = mode;
        }
        r
    }

    /// Answers `question` with checked citations, loading the generator on first use.
    /// `on_token` receives the draft as it is generated.
    pub fn ask(
        &mut self,
        question: &str,
        retrieval: RetrievalConfig,
        on_token: &mut dyn FnMut(&str),
    ) -> Result<AskReport, SessionError> {
        self.load_generator(&mut Silent)?;
        let cfg = self.ask_config(retrieval);
        let g = self.generator.as_mut().expect("loaded above");
        let outcome = pipeline::ask(
            question,
            &self.index,
            self.embedder.get(),
            g.generator.as_mut(),
            &cfg,
            on_token,
        )?;
        // The first answer of a session pays for loading it; later ones find it warm.
        let load_ms = if self.load_charged {
            0.0
        } else {
            self.load_charged = true;
            self.open_ms + g.load_ms
        };
        let models = ModelsUsed {
            generator: g.info.clone(),
            embedder: self.embedder_ref.clone(),
        };
        Ok(AskReport::new(
            question,
            &self.index,
            self.settings.corpus.index_path.clone(),
            models,
            outcome,
            load_ms,
        ))
    }

    /// Ranks the corpus's chunks for `question` (no generation).
    pub fn search(
        &self,
        question: &str,
        retrieval: &RetrievalConfig,
    ) -> Result<SearchReport, SessionError> {
        let started = Instant::now();
        let hits = index::retrieve(&self.index, self.embedder.get(), question, retrieval)?;
        let retrieval_ms = started.elapsed().as_secs_f64() * 1e3;
        Ok(SearchReport {
            question: question.to_string(),
            mode: retrieval.mode,
            retrieval_ms,
            hits: hits
                .iter()
                .map(|h| SearchHit::new(&self.index.chunks[h.index], h))
                .collect(),
        })
    }

    /// One L2-normalised vector per text, from the corpus's embedder.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, SessionError> {
        Ok(match &self.embedder {
            SessionEmbedder::Local(e) => e.embed_here(texts)?,
            SessionEmbedder::Served(e) => e.embed(texts)?,
        })
    }

    /// The text of a chunk.
    pub fn chunk(&self, id: &ChunkId) -> Result<Excerpt, SessionError> {
        let c = self
            .index
            .chunk(id)
            .ok_or_else(|| SessionError::NoSuchChunk(id.clone()))?;
        Ok(Excerpt {
            file: c.doc.clone(),
            id: Some(c.id.clone()),
            start: c.start,
            end: c.end,
            text: c.text.clone(),
        })
    }

    /// A part of a corpus file's text as docqa reads it (the offsets chunks use): the file
    /// itself for `.txt` and `.md`, the visible text for HTML, the extracted text for PDF and
    /// office files. `range` is in bytes, or with `lines` in 1-based lines, end inclusive;
    /// `None` is the whole text.
    pub fn file_text(
        &self,
        file: &str,
        range: Option<(usize, usize)>,
        lines: bool,
    ) -> Result<Excerpt, SessionError> {
        let doc = DocId::new(file.trim_start_matches("./"));
        let known = self.index.chunks.iter().any(|c| c.doc == doc);
        if !known {
            return Err(SessionError::NoSuchFile(file.to_string()));
        }
        let text = match self.index.extracted_text(doc.as_str()) {
            Some(t) => t.to_string(),
            None => {
                let path = self.settings.corpus.dir.join(doc.as_str());
                let bytes = std::fs::read(&path).map_err(|source| SessionError::ReadFile {
                    path: path.clone(),
                    source,
                })?;
                let raw = String::from_utf8_lossy(&bytes).into_owned();
                let is_html = matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("html" | "htm")
                );
                if is_html {
                    crate::corpus::extract_html(&raw).text
                } else {
                    raw
                }
            }
        };
        let bad = |what: String, len: String| SessionError::BadRange {
            file: file.to_string(),
            what,
            len,
        };
        let (start, end) = match range {
            None => (0, text.len()),
            Some((first, last)) if lines => {
                let starts: Vec<usize> = std::iter::once(0)
                    .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                    .filter(|&i| i < text.len())
                    .collect();
                let n = starts.len();
                if first == 0 || first > last || first > n {
                    return Err(bad(format!("lines {first}-{last}"), format!("{n} lines")));
                }
                let end = starts.get(last).copied().unwrap_or(text.len());
                (starts[first - 1], end)
            }
            Some((start, end)) => {
                if start > end || end > text.len() {
                    return Err(bad(
                        format!("bytes {start}-{end}"),
                        format!("{} bytes", text.len()),
                    ));
                }
                // A byte range may cut a character; it is widened to whole ones.
                let mut s = start;
                while !text.is_char_boundary(s) {
                    s -= 1;
                }
                let mut e = end;
                while !text.is_char_boundary(e) {
                    e += 1;
                }
                (s, e)
            }
        };
        Ok(Excerpt {
            file: doc,
            id: None,
            start,
            end,
            text: text[start..end].to_string(),
        })
    }

    /// Corpus, index and models.
    pub fn status(&self) -> StatusReport {
        let mut files: Vec<&DocId> = self.index.chunks.iter().map(|c| &c.doc).collect();
        files.sort();
        files.dedup();
        StatusReport {
            corpus: self.settings.corpus.dir.clone(),
            index: self.settings.corpus.index_path.clone(),
            files: files.len(),
            chunks: self.index.len(),
            embedder: self.embedder_ref.clone(),
            generator: self.generator.as_ref().map(|g| g.info.clone()),
            threads: self.settings.threads,
        }
    }
}

/// The corpus's embedder: MiniLM in this process (and its workers), or a served one.
enum SessionEmbedder {
    /// Boxed: the BERT embedder holds its buffers inline.
    Local(Box<BertEmbedder>),
    Served(ServedEmbedder),
}

impl SessionEmbedder {
    fn get(&self) -> &dyn Embedder {
        match self {
            SessionEmbedder::Local(e) => e.as_ref(),
            SessionEmbedder::Served(e) => e,
        }
    }
}

fn load_embedder(
    settings: &Settings,
    store: &Store,
    events: &mut dyn Events,
) -> Result<(SessionEmbedder, EmbedderRef), SessionError> {
    let name = &settings.corpus.embedder;
    if crate::served::is_url(name) {
        let embedder = ServedEmbedder::connect(name, None, settings.generator.served.clone())?;
        let info = EmbedderRef {
            name: embedder.id().to_string(),
            sha256: embedder.id().to_string(),
            url: Some(embedder.base_url().to_string()),
        };
        return Ok((SessionEmbedder::Served(embedder), info));
    }
    store.registry().get_role(name, ModelRole::Embedder)?;
    let model: LocalModel = store.ensure(name, settings.fetch_options(), &mut |l| {
        events.fetch_line(l)
    })?;
    let mut embedder = BertEmbedder::from_model(name, &model)?;
    if let Some(command) = settings.worker_command {
        embedder = embedder.with_workers(command, settings.threads);
    }
    let info = EmbedderRef {
        name: model.spec.name.0.clone(),
        sha256: model.sha256("model.safetensors").to_string(),
        url: None,
    };
    Ok((SessionEmbedder::Local(Box::new(embedder)), info))
}

/// Brings the settings' index up to date with their corpus.
fn build(
    settings: &Settings,
    embedder: &dyn Embedder,
    rebuild: bool,
    events: &mut dyn Events,
) -> Result<(Index, UpdateReport), SessionError> {
    let opts = UpdateOptions {
        rebuild,
        checkpoint_every: settings.corpus.checkpoint_every,
    };
    Index::update_with(
        &settings.corpus.index_path,
        &settings.corpus.dir,
        embedder,
        &settings.corpus.index,
        &opts,
        &mut |p| events.build_progress(p),
    )
    .map_err(|source| SessionError::Indexing {
        corpus: settings.corpus.dir.clone(),
        source,
    })
}

/// A few lines on what an update skipped and embedded (`docqa index` lists them all).
fn log_update(dir: &Path, report: &UpdateReport) {
    const SHOWN: usize = 5;
    for (file, why) in report.skipped_files.iter().take(SHOWN) {
        tracing::warn!("skipped {file}: {why}");
    }
    if report.skipped_files.len() > SHOWN {
        tracing::warn!(
            "skipped {} more files (`docqa index` lists them)",
            report.skipped_files.len() - SHOWN
        );
    }
    if report.embedded_chunks > 0 {
        tracing::info!(
            "indexed {}: {} chunks ({} embedded, {} reused, {} files unchanged) in {:.1}s",
            dir.display(),
            report.chunks,
            report.embedded_chunks,
            report.reused_chunks,
            report.reused_files.len(),
            report.seconds
        );
    }
}

//! `cargo bench --bench pipeline`: speed of each pipeline stage with the real models, printed as
//! figures a person can compare between runs and machines (medians with min/max, percentiles),
//! then a summary table against the project's targets.
//!
//! Sections: (1) embedding throughput, (2) warm hybrid retrieval latency over a few thousand
//! chunks, (3) generator load, prefill and decode speed, (4) `ask` end to end on `seeds/`.
//! Models come from the model store as the CLI gets them (first use pulls them); the thread
//! count comes from `DOCQA_THREADS` (default 2).
//!
//! `cargo bench --bench pipeline -- generate ask` runs only the named sections (`embed`,
//! `retrieve`, `generate`, `ask`). Each section prints the machine's load average when it starts:
//! on shared cores a load above the thread count means the figures were measured under contention.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::Device;
use docqa::corpus::{self, Chunk};
use docqa::embed::{BertEmbedder, EmbedError, Embedder, MAX_TOKENS};
use docqa::generate::{GenOptions, Generator, GgufGenerator, Prompt};
use docqa::index::{self, Index, IndexSettings, RetrievalConfig, EMBED_CALL_TEXTS};
use docqa::models::{
    FetchOptions, LocalModel, Registry, Store, DEFAULT_EMBEDDER, DEFAULT_GENERATOR, FAST_GENERATOR,
};
use docqa::pipeline::{self, AskConfig};

const DEFAULT_THREADS: usize = 2;
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

const EMBED_CHUNKS: usize = 200;
/// Estimated-token budget of the chunks section 1 embeds (the target is for ~128-token chunks).
const EMBED_CHUNK_TOKENS: usize = 128;
const EMBED_RUNS: usize = 3;
const MIN_INDEX_CHUNKS: usize = 3_000;
const QUESTIONS: usize = 30;
const RETRIEVE_PASSES: usize = 3;
const PREFILL_TOKENS: usize = 1_000;
const DECODE_TOKENS: usize = 64;
const GENERATE_RUNS: usize = 3;
const ASK_RUNS: usize = 3;
const ASK_QUESTION: &str = "Who did South Korea's defense minister meet in Seoul?";

const TARGET_CHUNKS_PER_S: f64 = 30.0;
const TARGET_RETRIEVE_MS: f64 = 30.0;
const TARGET_PREFILL_TOK_S: f64 = 100.0;
const TARGET_DECODE_TOK_S: f64 = 30.0;
const TARGET_ASK_WARM_S: f64 = 10.0;

const SECTIONS: [&str; 4] = ["embed", "retrieve", "generate", "ask"];

fn main() -> Result<()> {
    let threads = std::env::var("DOCQA_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(DEFAULT_THREADS);
    // As the CLI does: candle sizes its CPU pools from this variable on first use.
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    let store = Store::new(Store::default_root(), Registry::builtin());
    // `cargo bench` passes `--bench`; other arguments name sections.
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if let Some(bad) = wanted.iter().find(|w| !SECTIONS.contains(&w.as_str())) {
        anyhow::bail!("unknown section {bad:?}: the sections are {SECTIONS:?}");
    }
    let run = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);

    println!("docqa pipeline benchmark");
    println!(
        "threads: {threads} (DOCQA_THREADS; candle uses {})",
        candle_core::utils::get_num_threads()
    );
    println!("model cache: {}", store.root().display());
    let started = Instant::now();

    let (embedder, minilm) = load_embedder(&store)?;
    let settings = IndexSettings::default();
    let squad_dir = Path::new(ROOT).join("evals/squad-dev/articles");
    let squad = corpus::load_dir(&squad_dir)?;
    let squad_chunks = corpus::chunk_documents(&squad.documents, &settings.chunker)?;

    let mut rows = Vec::new();
    if run("embed") {
        bench_embedding(&embedder, &minilm, &squad.documents, threads, &mut rows)?;
    }
    if run("retrieve") {
        bench_retrieval(&embedder, &squad_dir, &squad_chunks, &mut rows)?;
    }
    drop(embedder);
    let mut generator_loads = Vec::new();
    if run("generate") {
        generator_loads.push(bench_generator(&store, &squad_chunks, &mut rows)?);
    }
    if run("ask") {
        // The speed targets are set for the fast model; the default model's figures are shown
        // beside them.
        bench_ask(&store, FAST_GENERATOR, generator_loads, true, &mut rows)?;
        if DEFAULT_GENERATOR != FAST_GENERATOR {
            bench_ask(&store, DEFAULT_GENERATOR, Vec::new(), false, &mut rows)?;
        }
    }

    section(&format!(
        "summary ({threads} threads, {:.0} s in all)",
        started.elapsed().as_secs_f64()
    ));
    print_summary(&rows);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 1. Embedding

/// Embeds ~128-token chunks of real text as the indexer embeds its chunks.
fn bench_embedding(
    embedder: &BertEmbedder,
    minilm: &LocalModel,
    docs: &[corpus::Document],
    threads: usize,
    rows: &mut Vec<Row>,
) -> Result<()> {
    section(&format!("1. embedding throughput ({DEFAULT_EMBEDDER})"));
    let settings = IndexSettings {
        chunker: corpus::ChunkerConfig {
            max_tokens: EMBED_CHUNK_TOKENS,
            overlap_tokens: 0,
        },
        ..IndexSettings::default()
    };
    let chunks = corpus::chunk_documents(docs, &settings.chunker)?;
    let step = (chunks.len() / EMBED_CHUNKS).max(1);
    let texts: Vec<String> = chunks
        .iter()
        .step_by(step)
        .take(EMBED_CHUNKS)
        .map(|c| index::embed_text(c, settings.embed_title))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let tokens = bert_tokens(minilm, &refs)?;
    println!(
        "input: {} chunks of evals/squad-dev/articles (chunker at {} est. tokens max, no \
         overlap, title prepended as indexed), {:.0} BERT tokens per chunk on average ({} in all, \
         truncated at {MAX_TOKENS})",
        texts.len(),
        settings.chunker.max_tokens,
        tokens as f64 / texts.len() as f64,
        tokens
    );

    // In-process (every thread on each forward pass), then split over one single-threaded
    // worker process per thread, as `docqa index` does; both in the index builder's calls.
    let with_workers = BertEmbedder::from_model(DEFAULT_EMBEDDER, minilm)?.with_workers(
        || {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_docqa"));
            cmd.arg("embed-worker");
            cmd
        },
        threads,
    );
    let mut medians = Vec::new();
    for (label, e) in [
        ("in-process", embedder),
        (
            format!("{threads} worker processes").as_str(),
            &with_workers,
        ),
    ] {
        println!("{label}:");
        e.embed(&refs[..EMBED_CALL_TEXTS.min(refs.len())])?; // warm-up (and worker start)
        let mut per_s = Vec::new();
        for run in 1..=EMBED_RUNS {
            let t = Instant::now();
            for call in refs.chunks(EMBED_CALL_TEXTS) {
                e.embed(call)?;
            }
            let s = t.elapsed().as_secs_f64();
            println!(
                "  run {run}: {s:.2} s, {:.1} chunks/s, {:.0} tokens/s",
                texts.len() as f64 / s,
                tokens as f64 / s
            );
            per_s.push(texts.len() as f64 / s);
        }
        let chunks_s = Stats::of(&per_s);
        println!("  chunks/s: {}", chunks_s.show(1));
        println!(
            "  tokens/s: {}",
            chunks_s.scale(tokens as f64 / texts.len() as f64).show(0)
        );
        medians.push((label.to_string(), chunks_s));
    }
    let (_, chunks_s) = medians.pop().expect("two measurements");
    let tokens_s = chunks_s.scale(tokens as f64 / texts.len() as f64);
    rows.push(Row::at_least(
        "embed chunks/s, workers (median)",
        chunks_s.median,
        1,
        TARGET_CHUNKS_PER_S,
    ));
    if let Some((_, here)) = medians.pop() {
        rows.push(Row::info(
            "embed chunks/s, in-process (median)",
            here.median,
            1,
        ));
    }
    rows.push(Row::info(
        "embed tokens/s, workers (median)",
        tokens_s.median,
        0,
    ));
    Ok(())
}

/// Tokens the embedder reads for `texts`: special tokens included, truncated as it truncates.
fn bert_tokens(minilm: &LocalModel, texts: &[&str]) -> Result<usize> {
    let mut tok = tokenizers::Tokenizer::from_file(minilm.path("tokenizer.json"))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    tok.with_padding(None);
    tok.with_truncation(None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut total = 0;
    for t in texts {
        let enc = tok.encode(*t, true).map_err(|e| anyhow::anyhow!("{e}"))?;
        total += enc.get_ids().len().min(MAX_TOKENS);
    }
    Ok(total)
}

// ---------------------------------------------------------------------------------------------
// 2. Retrieval

/// An embedder that computes each distinct text once, so copies of a corpus cost nothing to
/// index and their vectors are the model's own (exact duplicates, no noise).
struct Memo<'a> {
    inner: &'a dyn Embedder,
    seen: RefCell<HashMap<String, Vec<f32>>>,
    computed: Cell<usize>,
}

impl<'a> Memo<'a> {
    fn new(inner: &'a dyn Embedder) -> Self {
        Self {
            inner,
            seen: RefCell::new(HashMap::new()),
            computed: Cell::new(0),
        }
    }
}

impl Embedder for Memo<'_> {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut seen = self.seen.borrow_mut();
        let mut todo: Vec<&str> = texts
            .iter()
            .copied()
            .filter(|t| !seen.contains_key(*t))
            .collect();
        todo.sort_unstable();
        todo.dedup();
        if !todo.is_empty() {
            for (t, v) in todo.iter().zip(self.inner.embed(&todo)?) {
                seen.insert((*t).to_string(), v);
            }
            self.computed.set(self.computed.get() + todo.len());
        }
        Ok(texts.iter().map(|t| seen[*t].clone()).collect())
    }

    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn id(&self) -> &str {
        self.inner.id()
    }
}

fn bench_retrieval(
    embedder: &BertEmbedder,
    squad_dir: &Path,
    squad_chunks: &[Chunk],
    rows: &mut Vec<Row>,
) -> Result<()> {
    section("2. warm hybrid retrieval latency");
    let copies = MIN_INDEX_CHUNKS.div_ceil(squad_chunks.len()).max(1);
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("docqa-bench");
    let corpus_dir = work.join(format!("squad-x{copies}"));
    let index_path = work.join(format!("squad-x{copies}.docqa"));
    copy_corpus(squad_dir, &corpus_dir, copies)?;

    let memo = Memo::new(embedder);
    let t = Instant::now();
    let (index, report) = Index::update(
        &index_path,
        &corpus_dir,
        &memo,
        &IndexSettings::default(),
        false,
        &mut |_, _| {},
    )
    .with_context(|| format!("indexing {}", corpus_dir.display()))?;
    println!(
        "index: {} chunks = {} chunks of evals/squad-dev/articles x {copies} copies \
         (copy1/..copy{copies}/ under {})",
        index.len(),
        squad_chunks.len(),
        corpus_dir.display()
    );
    println!(
        "vectors: real {DEFAULT_EMBEDDER} embeddings; each distinct chunk text is embedded once \
         and reused for its copies (exact duplicates, no noise)"
    );
    if report.embedded_chunks == 0 {
        println!(
            "index file reused from an earlier run: {} ({:.1} s to check and load)",
            index_path.display(),
            t.elapsed().as_secs_f64()
        );
    } else {
        let s = t.elapsed().as_secs_f64();
        println!(
            "index built in {s:.1} s: {} distinct texts embedded ({:.1} chunks/s at the default \
             chunker's {} est. tokens), {} chunks in all; cached for later runs at {}",
            memo.computed.get(),
            memo.computed.get() as f64 / s,
            IndexSettings::default().chunker.max_tokens,
            report.embedded_chunks,
            index_path.display()
        );
    }

    let questions = squad_questions(QUESTIONS)?;
    let cfg = RetrievalConfig::default();
    println!(
        "queries: {} questions from evals/squad-dev/qa.jsonl, mode {}, k {}, depth {}, \
         query embedding included; {RETRIEVE_PASSES} passes after a warm-up pass",
        questions.len(),
        cfg.mode,
        cfg.k,
        cfg.depth
    );
    for q in &questions {
        index::retrieve(&index, embedder, q, &cfg)?;
    }
    let mut ms = Vec::new();
    for _ in 0..RETRIEVE_PASSES {
        for q in &questions {
            let t = Instant::now();
            let hits = index::retrieve(&index, embedder, q, &cfg)?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            anyhow::ensure!(!hits.is_empty(), "no hits for {q:?}");
        }
    }
    let mut embed_ms = Vec::new();
    for q in &questions {
        let t = Instant::now();
        embedder.embed_one(q)?;
        embed_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let p = Percentiles::of(&ms);
    println!("retrieve ms over {} queries: {}", ms.len(), p.show(2));
    println!(
        "  of which query embedding alone: {}",
        Percentiles::of(&embed_ms).show(2)
    );
    let label = |what: &str| format!("hybrid retrieve {what} ms ({} chunks)", index.len());
    rows.push(Row::at_most(&label("p50"), p.p50, 2, TARGET_RETRIEVE_MS));
    rows.push(Row::at_most(&label("p95"), p.p95, 2, TARGET_RETRIEVE_MS));
    Ok(())
}

/// Writes `copies` copies of the folder's files into `dst/copy{k}/`: different paths give
/// different document and chunk IDs for the same text.
fn copy_corpus(src: &Path, dst: &Path, copies: usize) -> Result<()> {
    let mut files: Vec<PathBuf> = fs::read_dir(src)
        .with_context(|| format!("reading {}", src.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.is_file());
    files.sort();
    for k in 1..=copies {
        let dir = dst.join(format!("copy{k}"));
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for f in &files {
            let to = dir.join(f.file_name().expect("a file has a name"));
            let same = fs::read(&to).ok() == Some(fs::read(f)?);
            if !same {
                fs::copy(f, &to).with_context(|| format!("writing {}", to.display()))?;
            }
        }
    }
    Ok(())
}

/// `n` questions spread evenly over the Q&A file.
fn squad_questions(n: usize) -> Result<Vec<String>> {
    let path = Path::new(ROOT).join("evals/squad-dev/qa.jsonl");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let all: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l)?;
            Ok(v["question"].as_str().unwrap_or_default().to_string())
        })
        .collect::<Result<_>>()?;
    anyhow::ensure!(!all.is_empty(), "{} holds no questions", path.display());
    let step = (all.len() / n).max(1);
    Ok(all.into_iter().step_by(step).take(n).collect())
}

// ---------------------------------------------------------------------------------------------
// 3. Generator

/// Returns the load time in seconds.
fn bench_generator(store: &Store, chunks: &[Chunk], rows: &mut Vec<Row>) -> Result<f64> {
    section(&format!("3. generator ({FAST_GENERATOR})"));
    let model = store.ensure(FAST_GENERATOR, fetch_options(), &mut progress)?;
    let (path, _) = model.runtime_gguf();
    let t = Instant::now();
    let mut generator = GgufGenerator::load(path, &Device::Cpu)?;
    let load_s = t.elapsed().as_secs_f64();
    println!(
        "file: {} ({:.0} MB), load {load_s:.2} s",
        path.display(),
        fs::metadata(path)?.len() as f64 / 1e6
    );

    // Consecutive passages of real text, until the rendered prompt reaches the target length.
    let ask = "Write a detailed summary of the sources above, one paragraph per source.";
    let mut sources = String::from("Sources:\n");
    let mut prompt = Prompt::new("You are a helpful assistant.", ask);
    for (i, c) in chunks.iter().enumerate() {
        let text = c.text.split_whitespace().collect::<Vec<_>>().join(" ");
        sources.push_str(&format!("[{}] {text}\n", i + 1));
        prompt = Prompt::new("You are a helpful assistant.", format!("{sources}\n{ask}"));
        if generator.encode_prompt(&prompt)?.len() >= PREFILL_TOKENS {
            break;
        }
    }
    let prompt_tokens = generator.encode_prompt(&prompt)?.len();
    println!(
        "prompt: {prompt_tokens} tokens (passages of evals/squad-dev/articles and a request for a \
         summary); {DECODE_TOKENS} greedy tokens; {GENERATE_RUNS} runs after a warm-up"
    );

    let greedy = |max_tokens| GenOptions {
        max_tokens,
        ..GenOptions::default()
    };
    generator.generate_text(&Prompt::user("Say hello."), &greedy(4))?; // warm-up
    let mut prefill = Vec::new();
    let mut decode = Vec::new();
    for run in 1..=GENERATE_RUNS {
        let g = generator.generate_text(&prompt, &greedy(DECODE_TOKENS))?;
        println!(
            "  run {run}: prefill {} tokens in {:.2} s = {:.1} tok/s; decode {} tokens in {:.2} s \
             = {:.1} tok/s ({:?})",
            g.prompt_tokens,
            g.prefill_ms / 1e3,
            g.prefill_tokens_per_s(),
            g.generated_tokens,
            g.decode_ms / 1e3,
            g.decode_tokens_per_s(),
            g.stop_reason
        );
        prefill.push(g.prefill_tokens_per_s());
        decode.push(g.decode_tokens_per_s());
    }
    let prefill = Stats::of(&prefill);
    let decode = Stats::of(&decode);
    println!("prefill tok/s: {}", prefill.show(1));
    println!("decode tok/s: {}", decode.show(1));
    rows.push(Row::at_least(
        &format!("prefill tok/s ({prompt_tokens}-token prompt)"),
        prefill.median,
        1,
        TARGET_PREFILL_TOK_S,
    ));
    rows.push(Row::at_least(
        &format!("decode tok/s ({DECODE_TOKENS} tokens after the prompt)"),
        decode.median,
        1,
        TARGET_DECODE_TOK_S,
    ));
    Ok(load_s)
}

// ---------------------------------------------------------------------------------------------
// 4. Ask

/// `gen_loads`: load times of `generator` measured before, to report with this section's.
/// `target`: whether the warm time is held to [`TARGET_ASK_WARM_S`].
fn bench_ask(
    store: &Store,
    generator_name: &str,
    mut gen_loads: Vec<f64>,
    target: bool,
    rows: &mut Vec<Row>,
) -> Result<()> {
    section(&format!(
        "4. ask end to end on seeds/ ({DEFAULT_EMBEDDER} + {generator_name})"
    ));
    println!(
        "question: {ASK_QUESTION:?}; cold = models verified and loaded, index brought up to date, \
         then ask (files in the OS page cache); warm = ask again on the loaded objects"
    );
    let seeds = Path::new(ROOT).join("seeds");
    let cfg = AskConfig::default();
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    for run in 1..=ASK_RUNS {
        let t = Instant::now();
        let (embedder, _) = load_embedder(store)?;
        let embedder_s = t.elapsed().as_secs_f64();
        let (index, _) = Index::update(
            &index::default_index_path(store.root(), &seeds),
            &seeds,
            &embedder,
            &IndexSettings::default(),
            false,
            &mut |_, _| {},
        )?;
        let index_s = t.elapsed().as_secs_f64() - embedder_s;
        let model = store.ensure(generator_name, fetch_options(), &mut progress)?;
        let t_gen = Instant::now();
        let mut generator = GgufGenerator::load(model.runtime_gguf().0, &Device::Cpu)?;
        gen_loads.push(t_gen.elapsed().as_secs_f64());
        let load_s = t.elapsed().as_secs_f64();
        let first = pipeline::ask(
            ASK_QUESTION,
            &index,
            &embedder,
            &mut generator,
            &cfg,
            &mut |_| {},
        )?;
        let cold_s = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let again = pipeline::ask(
            ASK_QUESTION,
            &index,
            &embedder,
            &mut generator,
            &cfg,
            &mut |_| {},
        )?;
        let warm_s = t.elapsed().as_secs_f64();
        if run == 1 {
            println!("answer: {}", again.checked.text.replace('\n', " "));
            let cited: Vec<String> = again
                .checked
                .cited
                .iter()
                .map(|&i| index.chunks[again.hits[i].index].id.to_string())
                .collect();
            println!(
                "cited: [{}]{}",
                cited.join(", "),
                if again.checked.abstained {
                    " (abstained)"
                } else {
                    ""
                }
            );
        }
        let w = &again.timings;
        println!(
            "  run {run}: cold {cold_s:.2} s (load {load_s:.2} s: embedder {embedder_s:.2}, index \
             {index_s:.2} ({} chunks), generator {:.2}; ask {:.2}); warm {warm_s:.2} s \
             (retrieval {:.0} ms, prompt {} tokens at {:.1} tok/s, {} tokens at {:.1} tok/s)",
            index.len(),
            gen_loads[gen_loads.len() - 1],
            first.timings.total_ms / 1e3,
            w.retrieval_ms,
            w.prompt_tokens,
            w.prefill_tok_s,
            w.generated_tokens,
            w.decode_tok_s
        );
        cold.push(cold_s);
        warm.push(warm_s);
    }
    let loads = Stats::of(&gen_loads);
    let cold = Stats::of(&cold);
    let warm = Stats::of(&warm);
    println!(
        "generator load s ({} loads in this run): {}",
        gen_loads.len(),
        loads.show(2)
    );
    println!("ask cold s: {}", cold.show(2));
    println!("ask warm s: {}", warm.show(2));
    let label = |what: &str| format!("{generator_name}: {what}");
    rows.push(Row::info(&label("load s (median)"), loads.median, 2));
    rows.push(Row::info(
        &label("ask cold s, load included (median)"),
        cold.median,
        2,
    ));
    let warm_label = label("ask warm s, load excluded (median)");
    rows.push(if target {
        Row::at_most(&warm_label, warm.median, 2, TARGET_ASK_WARM_S)
    } else {
        Row::info(&warm_label, warm.median, 2)
    });
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Models, as the CLI obtains them

fn fetch_options() -> FetchOptions {
    FetchOptions {
        offline: false,
        quiet: false,
    }
}

fn progress(line: &str) {
    eprintln!("{line}");
}

fn load_embedder(store: &Store) -> Result<(BertEmbedder, LocalModel)> {
    let model = store.ensure(DEFAULT_EMBEDDER, fetch_options(), &mut progress)?;
    // The CLI's embedder id, so `seeds/`' cached index is reused.
    let mut embedder = BertEmbedder::from_model(DEFAULT_EMBEDDER, &model)?;
    // DOCQA_EMBED_BATCH compares batch sizes (texts per forward pass) against the default.
    if let Some(b) = std::env::var("DOCQA_EMBED_BATCH")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        embedder = embedder.with_batch(b);
    }
    Ok((embedder, model))
}

// ---------------------------------------------------------------------------------------------
// Figures

/// Prints a section heading with the machine's load average (Linux), since the cores are shared.
fn section(title: &str) {
    println!();
    println!("== {title} ==");
    if let Ok(l) = fs::read_to_string("/proc/loadavg") {
        let l: Vec<&str> = l.split_whitespace().take(3).collect();
        println!("load average (1, 5, 15 min): {}", l.join(" "));
    }
}

struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

impl Stats {
    fn of(samples: &[f64]) -> Self {
        let s = sorted(samples);
        let n = s.len();
        let median = if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        };
        Self {
            median,
            min: s[0],
            max: s[n - 1],
        }
    }

    fn scale(&self, by: f64) -> Self {
        Self {
            median: self.median * by,
            min: self.min * by,
            max: self.max * by,
        }
    }

    fn show(&self, digits: usize) -> String {
        format!(
            "median {:.d$} (min {:.d$}, max {:.d$})",
            self.median,
            self.min,
            self.max,
            d = digits
        )
    }
}

struct Percentiles {
    p50: f64,
    p95: f64,
    min: f64,
    max: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles.
    fn of(samples: &[f64]) -> Self {
        let s = sorted(samples);
        let rank = |p: f64| s[((p * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
        Self {
            p50: rank(0.50),
            p95: rank(0.95),
            min: s[0],
            max: s[s.len() - 1],
        }
    }

    fn show(&self, digits: usize) -> String {
        format!(
            "p50 {:.d$}, p95 {:.d$} (min {:.d$}, max {:.d$})",
            self.p50,
            self.p95,
            self.min,
            self.max,
            d = digits
        )
    }
}

fn sorted(samples: &[f64]) -> Vec<f64> {
    assert!(!samples.is_empty(), "no samples");
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    s
}

/// One line of the summary table.
struct Row {
    figure: String,
    value: String,
    target: String,
    pass: Option<bool>,
}

impl Row {
    fn at_least(figure: &str, value: f64, digits: usize, target: f64) -> Self {
        Self {
            figure: figure.into(),
            value: format!("{value:.digits$}"),
            target: format!(">= {target}"),
            pass: Some(value >= target),
        }
    }

    fn at_most(figure: &str, value: f64, digits: usize, target: f64) -> Self {
        Self {
            figure: figure.into(),
            value: format!("{value:.digits$}"),
            target: format!("<= {target}"),
            pass: Some(value <= target),
        }
    }

    fn info(figure: &str, value: f64, digits: usize) -> Self {
        Self {
            figure: figure.into(),
            value: format!("{value:.digits$}"),
            target: "-".into(),
            pass: None,
        }
    }
}

fn print_summary(rows: &[Row]) {
    let header = ["figure", "value", "target", "result"];
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            let result = match r.pass {
                Some(true) => "pass",
                Some(false) => "FAIL",
                None => "-",
            };
            [
                r.figure.clone(),
                r.value.clone(),
                r.target.clone(),
                result.to_string(),
            ]
        })
        .collect();
    let width = |i: usize| {
        cells
            .iter()
            .map(|c| c[i].len())
            .chain([header[i].len()])
            .max()
            .unwrap_or(0)
    };
    let w = [width(0), width(1), width(2), width(3)];
    println!(
        "{:<a$}  {:>b$}  {:<c$}  {}",
        header[0],
        header[1],
        header[2],
        header[3],
        a = w[0],
        b = w[1],
        c = w[2]
    );
    println!("{}", "-".repeat(w.iter().sum::<usize>() + 6));
    for c in &cells {
        println!(
            "{:<a$}  {:>b$}  {:<c$}  {}",
            c[0],
            c[1],
            c[2],
            c[3],
            a = w[0],
            b = w[1],
            c = w[2]
        );
    }
    let failed = rows.iter().filter(|r| r.pass == Some(false)).count();
    let checked = rows.iter().filter(|r| r.pass.is_some()).count();
    println!("{} of {checked} targets met", checked - failed);
}

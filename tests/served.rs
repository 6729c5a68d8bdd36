//! Models by path and by server. Two layers:
//! - the served generator against a fault server (a `std` TcpListener in the test that answers
//!   as told: 429 with `Retry-After`, a reply cut off mid-body, a 404 for the model, a context
//!   overflow, a reply without logprobs, nothing listening), no model needed;
//! - the real binary with SmolLM2-135M (tiny): `docqa serve` as an OpenAI-compatible generator
//!   (raw generation with `top_logprobs`, a 404 for an unknown model), `docqa ask --model URL`
//!   and `--model FILE.gguf`, an unsupported architecture, `docqa compare` over the three kinds,
//!   and `--embedder URL` against the server's `/v1/embeddings`.
//!
//! Run with `--test-threads=1`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use docqa::generate::{
    GenOptions, Generator, GgufGenerator, Prompt, ServedGenerator, ShortAnswerSource, VerifySource,
};
use docqa::served::{ServedError, ServedOptions};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// The fault server.

/// What the fault server does with a request.
enum Act {
    /// Status, extra headers, JSON body.
    Reply(u16, Vec<(&'static str, String)>, Value),
    /// A 200 whose body stops halfway (the server "disappears mid-answer").
    CutOff,
}

type Script = Box<dyn Fn(&str, &Value, usize) -> Act + Send + Sync>;

/// A one-thread HTTP server on loopback that answers each request as `script` says (given the
/// path, the JSON body and the request's number), and records what it was asked.
struct FaultServer {
    base: String,
    seen: Arc<Mutex<Vec<(String, Value)>>>,
}

impl FaultServer {
    fn start(script: impl Fn(&str, &Value, usize) -> Act + Send + Sync + 'static) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let script: Script = Box::new(script);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (path, body) = match read_request(&stream) {
                    Some(r) => r,
                    None => continue,
                };
                let n = {
                    let mut log = log.lock().unwrap();
                    log.push((path.clone(), body.clone()));
                    log.len()
                };
                respond(stream, script(&path, &body, n));
            }
        });
        FaultServer { base, seen }
    }

    fn paths(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(p, _)| p.clone())
            .collect()
    }
}

fn read_request(stream: &TcpStream) -> Option<(String, Value)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let h = header.trim();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let path = path.split('?').next().unwrap_or_default().to_string();
    Some((path, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

fn respond(mut stream: TcpStream, act: Act) {
    match act {
        Act::Reply(status, headers, body) => {
            let body = body.to_string();
            let mut head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            let _ = stream.write_all(format!("{head}\r\n{body}").as_bytes());
        }
        Act::CutOff => {
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\nConnection: close\r\n\r\n{\"id\": \"x\", \"choices\": [",
            );
        }
    }
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

fn models_list(ids: &[&str]) -> Act {
    let data: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "object": "model"}))
        .collect();
    Act::Reply(200, vec![], json!({"object": "list", "data": data}))
}

/// A completion of `text` with the first token's alternatives `top` (none: no logprobs).
fn completion(text: &str, top: &[(&str, f32)]) -> Act {
    let logprobs = if top.is_empty() {
        Value::Null
    } else {
        json!({"content": [{"token": top[0].0, "logprob": top[0].1,
            "top_logprobs": top.iter().map(|(t, l)| json!({"token": t, "logprob": l})).collect::<Vec<_>>()}]})
    };
    Act::Reply(
        200,
        vec![],
        json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": text},
            "logprobs": logprobs, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 1}}),
    )
}

fn quick() -> ServedOptions {
    ServedOptions {
        backoff: Duration::from_millis(20),
        retries: 2,
        timeout: Duration::from_secs(20),
        ..ServedOptions::default()
    }
}

/// The server's error inside a generation error.
fn served(e: docqa::generate::GenerateError) -> ServedError {
    match e {
        docqa::generate::GenerateError::Served(e) => *e,
        other => panic!("not a served model's error: {other}"),
    }
}

fn yes_no() -> GenOptions {
    GenOptions {
        max_tokens: 1,
        score_first: vec!["Yes".into(), "No".into()],
        ..GenOptions::default()
    }
}

#[test]
fn a_429_is_retried_after_its_retry_after_then_answered() {
    let server = FaultServer::start(|path, _, n| match path {
        "/v1/models" => models_list(&["m"]),
        // The probe at connect (request 2), then one 429 before the answer.
        _ if n == 3 => Act::Reply(
            429,
            vec![("Retry-After", "1".into())],
            json!({"error": {"message": "slow down"}}),
        ),
        _ => completion("Yes", &[("Yes", -0.25), ("No", -1.75)]),
    });
    let mut g = ServedGenerator::connect(&server.base, None, quick()).unwrap();
    assert_eq!(g.model(), "m");
    assert_eq!(g.features().verification, VerifySource::Logprobs);
    assert_eq!(g.features().short_answer, ShortAnswerSource::PlainRequest);
    let started = Instant::now();
    let out = g.generate_text(&Prompt::user("Is it?"), &yes_no()).unwrap();
    // Retry-After (1 s) was honoured instead of the 20 ms backoff.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(out.first_logprobs, vec![-0.25, -1.75]);
    assert_eq!(out.text, "Yes");
    assert_eq!(server.paths().len(), 4, "{:?}", server.paths());
    let (_, body) = server.seen.lock().unwrap()[3].clone();
    assert_eq!(body["logprobs"], true);
    assert_eq!(body["max_tokens"], 1);
    assert_eq!(body["model"], "m");
}

#[test]
fn a_server_that_keeps_answering_429_or_disappears_mid_answer_fails_after_its_retries() {
    let server = FaultServer::start(|path, _, n| match path {
        "/v1/models" => models_list(&["m"]),
        _ if n == 2 => completion("Yes", &[("Yes", -0.1)]),
        _ => Act::Reply(429, vec![], json!({"error": {"message": "quota"}})),
    });
    let mut g = ServedGenerator::connect(&server.base, Some("m"), quick()).unwrap();
    let e = served(
        g.generate_text(&Prompt::user("q"), &GenOptions::default())
            .unwrap_err(),
    );
    let msg = e.to_string();
    assert!(
        matches!(
            e,
            ServedError::Status {
                status: 429,
                attempts: 3,
                ..
            }
        ),
        "{msg}"
    );
    assert!(msg.contains(&server.base) && msg.contains("quota"), "{msg}");
    // Connect (list, probe) and three attempts.
    assert_eq!(server.paths().len(), 5);

    let server = FaultServer::start(|path, _, n| match path {
        "/v1/models" => models_list(&["m"]),
        _ if n == 2 => completion("Yes", &[("Yes", -0.1)]),
        _ => Act::CutOff,
    });
    let mut g = ServedGenerator::connect(&server.base, None, quick()).unwrap();
    let e = served(
        g.generate_text(&Prompt::user("q"), &GenOptions::default())
            .unwrap_err(),
    );
    let msg = e.to_string();
    assert!(
        matches!(e, ServedError::Disconnected { attempts: 3, .. }),
        "{msg}"
    );
    assert!(
        msg.contains("closed the connection") && msg.contains(&server.base),
        "{msg}"
    );
    assert_eq!(server.paths().len(), 5);
}

#[test]
fn unknown_model_context_overflow_and_nothing_listening_are_named() {
    // Not in the server's list: refused at connect, naming what it serves.
    let server = FaultServer::start(|path, _, _| match path {
        "/v1/models" => models_list(&["a", "b"]),
        _ => Act::Reply(
            404,
            vec![],
            json!({"error": {"message": "The model `zz` does not exist", "code": "model_not_found"}}),
        ),
    });
    let e = ServedGenerator::connect(&server.base, Some("zz"), quick()).unwrap_err();
    assert!(
        matches!(e, ServedError::UnknownModel { ref model, .. } if model == "zz"),
        "{e}"
    );
    assert!(e.to_string().contains("a, b"), "{e}");
    // A server without a list answers 404 for the model itself.
    let server = FaultServer::start(|path, _, _| match path {
        "/v1/models" => Act::Reply(404, vec![], json!({"error": "no route"})),
        _ => Act::Reply(
            404,
            vec![],
            json!({"error": {"message": "The model `zz` does not exist", "code": "model_not_found"}}),
        ),
    });
    let e = ServedGenerator::connect(&server.base, Some("zz"), quick()).unwrap_err();
    assert!(matches!(e, ServedError::UnknownModel { .. }), "{e}");
    assert_eq!(server.paths().len(), 2, "a 404 is not retried");

    let server = FaultServer::start(|path, _, n| match path {
        "/v1/models" => models_list(&["m"]),
        _ if n == 2 => completion("Yes", &[("Yes", -0.1)]),
        _ => Act::Reply(
            400,
            vec![],
            json!({"error": {"code": 400, "message": "the request exceeds the available context size, try increasing it", "type": "exceed_context_size_error"}}),
        ),
    });
    let mut g = ServedGenerator::connect(&server.base, None, quick()).unwrap();
    let e = served(
        g.generate_text(&Prompt::user("long"), &GenOptions::default())
            .unwrap_err(),
    );
    assert!(matches!(e, ServedError::ContextOverflow { .. }), "{e}");
    assert!(e.to_string().contains("context"), "{e}");

    // Nothing listening: a closed port.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/v1");
    let started = Instant::now();
    let e = ServedGenerator::connect(&url, None, quick()).unwrap_err();
    assert!(matches!(e, ServedError::Unreachable { .. }), "{e}");
    assert!(e.to_string().contains(&url), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused is not retried"
    );
}

#[test]
fn without_logprobs_verification_is_scored_from_the_generated_yes_no() {
    let server = FaultServer::start(|path, body, _| match path {
        "/v1/models" => models_list(&["m"]),
        _ => {
            let asked = body["messages"][0]["content"].as_str().unwrap_or_default();
            completion(if asked.contains("blue") { "No." } else { "Yes" }, &[])
        }
    });
    let mut g = ServedGenerator::connect(&server.base, None, quick()).unwrap();
    assert_eq!(g.features().verification, VerifySource::GeneratedYesNo);
    let yes = g
        .generate_text(&Prompt::user("Is it red?"), &yes_no())
        .unwrap();
    let no = g
        .generate_text(&Prompt::user("Is it blue?"), &yes_no())
        .unwrap();
    assert_eq!(yes.first_logprobs, vec![0.0, -1.0]);
    assert_eq!(no.first_logprobs, vec![-1.0, 0.0]);
    // The short answer's plain request is kept as the span of the sentence it matches.
    let server = FaultServer::start(|path, _, _| match path {
        "/v1/models" => models_list(&["m"]),
        _ => completion("general paul nakasone.", &[]),
    });
    let mut g = ServedGenerator::connect(&server.base, None, quick()).unwrap();
    let span = g
        .generate_text(
            &Prompt::user("Who?"),
            &GenOptions {
                copy_from: Some("He met General Paul Nakasone in Seoul.".into()),
                ..GenOptions::default()
            },
        )
        .unwrap();
    assert_eq!(span.text, "General Paul Nakasone");
}

// ---------------------------------------------------------------------------------------------
// The real binary with SmolLM2.

const SMOLLM: &str = "smollm2-135m-instruct";
const NAKASONE_Q: &str = "Who did South Korea's defense minister meet in Seoul?";
const NAKASONE_FILE: &str = "000_b48ef8e451107e2d.txt";
const CYBER_FLAG_FILE: &str = "001_61b0842ad3a1497d.txt";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn threads() -> String {
    std::env::var("DOCQA_THREADS").unwrap_or("1".into())
}

/// Runs the binary; returns its exit code and stdout as JSON.
fn docqa(args: &[&str]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_docqa"))
        .args(args)
        .env("DOCQA_THREADS", threads())
        .env_remove("DOCQA_API_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "docqa {args:?}: stdout is not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

/// POSTs `body` asking for a stream and returns its events' JSON chunks, checking that the
/// stream is server-sent events ending with `data: [DONE]`.
fn post_stream(url: &str, body: &Value) -> Vec<Value> {
    let resp = ureq::post(url)
        .set("Content-Type", "application/json")
        .send_string(&body.to_string())
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    assert!(resp
        .header("Content-Type")
        .unwrap_or_default()
        .starts_with("text/event-stream"));
    let mut text = String::new();
    resp.into_reader().read_to_string(&mut text).unwrap();
    let events: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"), "{text}");
    events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap_or_else(|err| panic!("{err}: {e}")))
        .collect()
}

fn post(url: &str, body: Value) -> (u16, Value) {
    let resp = match ureq::post(url).send_json(body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("POST {url}: {e}"),
    };
    (resp.status(), resp.into_json().unwrap())
}

/// A GGUF file with only metadata, of architecture `arch`.
fn gguf_of_architecture(path: &Path, arch: &str) {
    use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
    let t = candle_core::Tensor::zeros((32,), candle_core::DType::F32, &candle_core::Device::Cpu)
        .unwrap();
    let q = QTensor::quantize(&t, GgmlDType::F32).unwrap();
    let arch = gguf_file::Value::String(arch.into());
    let mut f = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut f, &[("general.architecture", &arch)], &[("t", &q)]).unwrap();
}

#[test]
fn any_kind_of_model_in_ask_and_compare() {
    let (dir, docs, index) = common::seeds_corpus(&[NAKASONE_FILE, CYBER_FLAG_FILE]);
    let gguf = common::model(SMOLLM).path("model.gguf").to_path_buf();
    let server = common::Server::start(&docs, &index, &["--model", SMOLLM]);
    let base = server.url("/v1");

    // docqa serve as a plain OpenAI-compatible generator.
    let models: Value = ureq::get(&format!("{base}/models"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(models["data"][0]["id"], SMOLLM, "{models:#}");
    let verdict = json!({
        "model": SMOLLM,
        "messages": [{"role": "user", "content": "Text: Paris is the capital of France.\nClaim: Paris is in France.\nIs the claim stated by the text? Reply Yes or No."}],
        "max_tokens": 1, "logprobs": true, "top_logprobs": 20,
    });
    let (status, v) = post(&format!("{base}/chat/completions"), verdict.clone());
    assert_eq!(status, 200, "{v:#}");
    let top = v["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
        .as_array()
        .unwrap();
    assert_eq!(top.len(), 20);
    let lp: Vec<f64> = top.iter().map(|t| t["logprob"].as_f64().unwrap()).collect();
    assert!(
        lp.windows(2).all(|w| w[0] >= w[1]) && lp[0] <= 0.0,
        "{lp:?}"
    );
    // Greedy: the reply is the likeliest first token.
    assert_eq!(
        v["choices"][0]["message"]["content"], top[0]["token"],
        "{v:#}"
    );
    assert_eq!(v["usage"]["completion_tokens"], 1);

    // Streamed raw generation: the same greedy reply, piece by piece as it is written.
    let ask = json!({
        "model": SMOLLM,
        "messages": [{"role": "user", "content": "Name three colours."}],
        "max_tokens": 24,
    });
    let (status, whole) = post(&format!("{base}/chat/completions"), ask.clone());
    assert_eq!(status, 200, "{whole:#}");
    let mut streamed = ask.clone();
    streamed["stream"] = json!(true);
    let chunks = post_stream(&format!("{base}/chat/completions"), &streamed);
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let pieces: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .filter(|t| !t.is_empty())
        .collect();
    assert!(pieces.len() > 2, "{chunks:#?}");
    assert_eq!(
        pieces.concat(),
        whole["choices"][0]["message"]["content"].as_str().unwrap()
    );
    let last = chunks.last().unwrap();
    assert_eq!(
        last["choices"][0]["finish_reason"],
        whole["choices"][0]["finish_reason"]
    );
    assert_eq!(last["usage"], whole["usage"], "{last:#}");
    streamed["logprobs"] = json!(true);
    let (status, v) = post(&format!("{base}/chat/completions"), streamed);
    assert_eq!(status, 400, "{v:#}");

    let (status, v) = post(
        &format!("{base}/chat/completions"),
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(status, 404, "{v:#}");
    assert_eq!(v["error"]["code"], "model_not_found");
    assert_eq!(v["error"]["kind"], "unknown_model");

    // The served generator scores Yes/No as the same model run here does.
    let mut served = ServedGenerator::connect(&base, None, ServedOptions::default()).unwrap();
    assert_eq!(served.model(), SMOLLM);
    assert_eq!(served.features().verification, VerifySource::Logprobs);
    let prompt = Prompt::user(verdict["messages"][0]["content"].as_str().unwrap());
    let remote = served.generate_text(&prompt, &yes_no()).unwrap();
    let mut local = GgufGenerator::load(&gguf, &candle_core::Device::Cpu).unwrap();
    let here = local.generate_text(&prompt, &yes_no()).unwrap();
    for (r, h) in remote.first_logprobs.iter().zip(&here.first_logprobs) {
        assert!(
            (r - h).abs() < 2e-2,
            "served {:?} vs local {:?}",
            remote.first_logprobs,
            here.first_logprobs
        );
    }
    drop(local);

    let corpus = [
        "--corpus",
        docs.to_str().unwrap(),
        "--index",
        index.to_str().unwrap(),
    ];
    let ask = |model: &str| {
        let mut args = vec![
            "ask", NAKASONE_Q, "--json", "-k", "2", "--verify", "--model", model,
        ];
        args.extend(corpus);
        docqa(&args)
    };
    // ask through the server: the same answer contract, the kind and features reported.
    let (code, r) = ask(&base);
    assert_eq!(code, 0, "{r:#}");
    let g = &r["models"]["generator"];
    assert_eq!(g["kind"], "served", "{g:#}");
    assert_eq!(g["name"], SMOLLM);
    assert_eq!(g["url"], base.as_str());
    assert_eq!(g["features"]["verification"], "logprobs");
    assert_eq!(g["features"]["short_answer"], "plain_request");
    assert!(g["sha256"].is_null());
    let retrieved: Vec<&str> = r["retrieval"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap())
        .collect();
    for c in r["citations"].as_array().unwrap() {
        assert!(retrieved.contains(&c["id"].as_str().unwrap()), "{r:#}");
    }
    assert!(r["timings"]["prompt_tokens"].as_u64().unwrap() > 0, "{r:#}");

    // ask with the GGUF file by path: hashed as the registry pins it.
    let (code, r) = ask(gguf.to_str().unwrap());
    assert_eq!(code, 0, "{r:#}");
    let g = &r["models"]["generator"];
    assert_eq!(g["kind"], "file", "{g:#}");
    let pinned = docqa::models::Registry::builtin()
        .get(SMOLLM)
        .unwrap()
        .files[0]
        .sha256
        .clone();
    assert_eq!(g["sha256"], pinned.as_str());
    assert_eq!(g["features"]["short_answer"], "copy_constrained");

    // A file of another architecture is refused, naming it.
    let gpt2 = dir.path().join("gpt2.gguf");
    gguf_of_architecture(&gpt2, "gpt2");
    let (code, r) = ask(gpt2.to_str().unwrap());
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["error"]["kind"], "unsupported_model", "{r:#}");
    let msg = r["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("`gpt2`") && msg.contains("qwen2, llama") && msg.contains("gpt2.gguf"),
        "{msg}"
    );

    // A model the server does not serve.
    let mut args = vec![
        "ask",
        NAKASONE_Q,
        "--json",
        "--model",
        &base,
        "--api-model",
        "gpt-4o",
    ];
    args.extend(corpus);
    let (code, r) = docqa(&args);
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["error"]["kind"], "unknown_model", "{r:#}");
    let msg = r["error"]["message"].as_str().unwrap();
    assert!(msg.contains("`gpt-4o`") && msg.contains(SMOLLM), "{msg}");

    // Nothing listening.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{port}/v1");
    let (code, r) = ask(&dead);
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["error"]["kind"], "server_unreachable", "{r:#}");
    assert!(
        r["error"]["message"].as_str().unwrap().contains(&dead),
        "{r:#}"
    );

    // compare over the three kinds: one leaderboard.
    let qa = dir.path().join("qa.jsonl");
    std::fs::write(
        &qa,
        format!(
            "{}\n{}\n",
            json!({"id": "q1", "question": NAKASONE_Q, "answers": ["Paul Nakasone"], "kind": "single",
                "evidence": [{"file": NAKASONE_FILE, "quote": "Nakasone"}]}),
            json!({"id": "q2", "question": "Who won the 2022 FIFA World Cup?", "answers": [], "kind": "unanswerable", "evidence": []}),
        ),
    )
    .unwrap();
    let out = dir.path().join("board");
    let models = format!("{SMOLLM},{},{base}", gguf.display());
    let mut args = vec![
        "compare",
        "--json",
        "--models",
        &models,
        "--modes",
        "hybrid",
        "--qa",
        qa.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-cache",
    ];
    args.extend(corpus);
    let (code, rows) = docqa(&args);
    assert_eq!(code, 0, "{rows:#}");
    let rows = rows.as_array().unwrap();
    let kinds: Vec<&str> = rows.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["registry", "file", "served"], "{rows:#?}");
    assert_eq!(rows[2]["source"], base.as_str());
    assert_eq!(rows[2]["speed_comparable"], false);
    assert_eq!(rows[0]["speed_comparable"], true);
    for r in rows {
        assert_eq!(r["summary"]["questions"], 2, "{r:#}");
    }
    let md = std::fs::read_to_string(out.join("leaderboard.md")).unwrap();
    assert!(
        md.contains("| kind |") && md.contains(&format!("server ({base})")),
        "{md}"
    );
    assert!(md.contains(")†") && md.contains("† Served model"), "{md}");
    assert!(md.contains(&format!("file ({})", gguf.display())), "{md}");

    // Served embeddings: the server's MiniLM vectors rank as the local ones do, from an index
    // of their own.
    let served_index = dir.path().join("served.docqa");
    let search = |embedder: &str, index: &Path| {
        let (code, v) = docqa(&[
            "search",
            "cyber defense drills",
            "--json",
            "-k",
            "3",
            "--corpus",
            docs.to_str().unwrap(),
            "--embedder",
            embedder,
            "--mode",
            "dense",
            "--index",
            index.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{v:#}");
        v["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let served_hits = search(&base, &served_index);
    let local_hits = search(docqa::models::DEFAULT_EMBEDDER, &index);
    assert_eq!(served_hits, local_hits);
    assert_eq!(served_hits.len(), 3);
}

/// A scripted chat model: drafts the Nakasone answer citing the passage that holds it (or says
/// the sources do not tell), answers Yes/No judgements by whether the prompt names Nakasone,
/// with logprobs, and gives "General Paul Nakasone" as the short answer.
fn scripted_model(path: &str, body: &Value, _: usize) -> Act {
    if path.ends_with("/models") {
        return models_list(&["scripted"]);
    }
    let user = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string();
    if body["max_tokens"] == 1 {
        return if user.contains("Nakasone") {
            completion("Yes", &[("Yes", -0.125), ("No", -3.0)])
        } else {
            completion("No", &[("No", -0.125), ("Yes", -3.0)])
        };
    }
    if user.starts_with("Read the sources") {
        let cited = user
            .lines()
            .find(|l| l.starts_with('[') && l.contains("Nakasone"))
            .and_then(|l| l.split(']').next())
            .map(|n| format!("{n}]"));
        return match cited {
            Some(n) => completion(
                &format!("South Korean Defense Minister Lee Jong-sup speaks with General Paul Nakasone {n}."),
                &[],
            ),
            None => completion("The sources do not say.", &[]),
        };
    }
    completion("General Paul Nakasone", &[])
}

#[test]
fn a_calibrated_threshold_is_written_to_a_user_manifest_and_found_again() {
    let server = FaultServer::start(scripted_model);
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    for f in [NAKASONE_FILE, CYBER_FLAG_FILE] {
        std::fs::copy(root().join("seeds").join(f), docs.join(f)).unwrap();
    }
    let index = dir.path().join("index.docqa");
    let manifests = dir.path().join("manifests");
    let qa = dir.path().join("qa.jsonl");
    std::fs::write(
        &qa,
        json!({"id": "q1", "question": NAKASONE_Q, "answers": ["Paul Nakasone"], "kind": "single",
            "evidence": [{"file": NAKASONE_FILE, "quote": "Nakasone"}]})
        .to_string(),
    )
    .unwrap();
    let common = [
        "--corpus",
        docs.to_str().unwrap(),
        "--index",
        index.to_str().unwrap(),
        "-k",
        "2",
        "--models-dir",
        manifests.to_str().unwrap(),
    ];
    let mut eval = vec![
        "eval",
        "--json",
        "--qa",
        qa.to_str().unwrap(),
        "--withhold-gold",
        "--no-cache",
        "--verify-threshold=-inf",
        "--write-threshold",
        "--model",
        &server.base,
    ];
    eval.extend(common);
    let (code, report) = docqa(&eval);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["generator"]["kind"], "served", "{report:#}");
    let q1 = &report["questions"][0];
    assert_eq!(q1["abstained"], false, "{q1:#}");
    assert_eq!(q1["short_answer"], "General Paul Nakasone", "{q1:#}");
    // Three judgements of log(Yes) - log(No) = 2.875 each.
    let margin = q1["verify_margin"].as_f64().unwrap();
    assert!((margin - 8.625).abs() < 1e-4, "{q1:#}");
    let proposed = report["verify_calibration"]["proposed"]["threshold"]
        .as_f64()
        .unwrap();
    assert!((proposed - margin).abs() < 1e-6, "{report:#}");

    let written = std::fs::read_to_string(manifests.join("scripted.toml")).unwrap();
    assert!(
        written.starts_with("# Written by `docqa eval --write-threshold`"),
        "{written}"
    );
    let registry = docqa::models::Registry::with_user_manifests(&manifests).unwrap();
    let spec = registry.served(&server.base, "scripted").unwrap();
    assert!(
        (spec.verify_threshold.unwrap() - proposed).abs() < 1e-6,
        "{written}"
    );

    // The next run of that server and model verifies at that threshold without being asked;
    // by the manifest's name too.
    for model in [server.base.as_str(), "scripted"] {
        let mut ask = vec!["ask", NAKASONE_Q, "--json", "--model", model];
        ask.extend(common);
        let (code, r) = docqa(&ask);
        assert_eq!(code, 0, "{r:#}");
        assert!(
            (r["verify_margin"].as_f64().unwrap() - margin).abs() < 1e-4,
            "{r:#}"
        );
        assert_eq!(r["abstained"], false, "{r:#}");
    }
    // Without the manifest, it is not verified by default.
    let empty = dir.path().join("none");
    let (code, r) = docqa(&[
        "ask",
        NAKASONE_Q,
        "--json",
        "--model",
        &server.base,
        "--corpus",
        docs.to_str().unwrap(),
        "--index",
        index.to_str().unwrap(),
        "-k",
        "2",
        "--models-dir",
        empty.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{r:#}");
    assert!(r["verify_margin"].is_null(), "{r:#}");
}

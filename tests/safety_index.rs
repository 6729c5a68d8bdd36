//! docqa never loses or damages a user's files: what it does with whatever is at an `--index`
//! path (only its own files are replaced), damaged index files, bit rot in the model cache,
//! killed builds (finished work is kept and resumed), and concurrent use of one index.
//!
//! Everything runs the real binary against real files in temporary folders; models come from
//! the user's model cache (DOCQA_CACHE or the default), fetched on first use by the shared test
//! helper. FIFOs and symbolic links are made in temporary folders; no device node is touched.
//! The kill test builds the 24 squad-dev articles about twice over, so it takes a few minutes
//! on two shared cores; the soak test runs 100 short processes.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use docqa::index::{Index, IndexError, IndexSettings};
use docqa::models::{sha256_file, FetchOptions, FileState, Registry, Store, StoreError};

mod common;
use common::{embedder, embedder_model};

/// Vectors of the same text embedded in two runs.
const VECTOR_TOL: f32 = 1e-5;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn seeds_dir() -> PathBuf {
    repo().join("seeds")
}

fn squad_articles() -> PathBuf {
    repo().join("evals/squad-dev/articles")
}

/// The binary, on the user's model cache, offline: models are fetched once by the tests'
/// shared helper, never by the processes under test.
fn docqa() -> Command {
    embedder_model();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_docqa"));
    cmd.arg("--cache")
        .arg(Store::default_root())
        .arg("--offline");
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        text(&out.stderr)
    );
    out
}

fn json_of(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: stdout {:?}", text(&out.stdout)))
}

/// Waits for `child` at most `limit`; a child still running then is killed and the test fails.
fn wait_bounded(mut child: Child, limit: Duration, what: &str) -> Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {limit:?} (hung?)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// A small corpus: two seed articles.
fn small_corpus(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    for entry in fs::read_dir(seeds_dir()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("000_") || name.starts_with("001_") {
            fs::copy(entry.path(), dir.join(&name)).unwrap();
        }
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The same chunks with the same vectors (within the tolerance of two embedding runs).
fn assert_same_index(got: &Index, want: &Index, what: &str) {
    assert_eq!(got.embedder_id, want.embedder_id, "{what}");
    assert_eq!(got.settings, want.settings, "{what}");
    assert_eq!(got.chunks, want.chunks, "{what}: chunks differ");
    for i in 0..want.len() {
        let d = max_abs_diff(got.vector(i), want.vector(i));
        assert!(d <= VECTOR_TOL, "{what}: {}: {d:e}", want.chunks[i].id);
    }
}

/// The header line of an index file as JSON.
fn header_of(path: &Path) -> serde_json::Value {
    let bytes = fs::read(path).unwrap();
    let line = bytes.split(|&b| b == b'\n').nth(1).unwrap();
    serde_json::from_slice(line).unwrap()
}

/// Temporary files a write of the index left beside it.
fn stray_temps(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect()
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Runs `docqa search` with `--index index` and returns it, bounded in time (a FIFO must not
/// hang it).
fn search_with_index(corpus: &Path, index: &Path) -> Output {
    let child = docqa()
        .args(["--quiet", "search", "cyber", "--corpus"])
        .arg(corpus)
        .arg("--index")
        .arg(index)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_bounded(
        child,
        Duration::from_secs(120),
        &index.display().to_string(),
    )
}

fn assert_refused(out: &Output, path: &Path, why: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}: {err}", path.display());
    assert!(
        err.contains(&path.display().to_string()) && err.contains("not a docqa index"),
        "{}: error does not name the path: {err}",
        path.display()
    );
    assert!(err.contains(why), "{}: {err}", path.display());
}

#[test]
fn only_docqa_index_files_are_ever_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus");
    small_corpus(&corpus);

    // A user's file.
    let notes = tmp.path().join("notes.txt");
    fs::write(&notes, "precious\n").unwrap();
    let out = search_with_index(&corpus, &notes);
    assert_refused(&out, &notes, "does not start with");
    assert_eq!(fs::read_to_string(&notes).unwrap(), "precious\n");
    let out = search_cmd(&corpus, &notes).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let error = &json_of(&out)["error"];
    assert_eq!(error["kind"], "index_not_docqa", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("notes.txt"),
        "{error}"
    );
    assert_eq!(fs::read_to_string(&notes).unwrap(), "precious\n");

    // A symbolic link, to the user's file and to a valid index: neither the link nor its target
    // is replaced.
    let link = tmp.path().join("link.docqa");
    std::os::unix::fs::symlink(&notes, &link).unwrap();
    let out = search_with_index(&corpus, &link);
    assert_refused(&out, &link, "symbolic link");
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read_to_string(&notes).unwrap(), "precious\n");

    let real = tmp.path().join("real.docqa");
    run_ok(&mut search_cmd(&corpus, &real));
    let before = fs::read(&real).unwrap();
    let to_index = tmp.path().join("to-index.docqa");
    std::os::unix::fs::symlink(&real, &to_index).unwrap();
    fs::write(
        corpus.join("new.txt"),
        "A new file makes the index stale. It has ships.",
    )
    .unwrap();
    let out = search_with_index(&corpus, &to_index);
    assert_refused(&out, &to_index, "symbolic link");
    assert!(fs::symlink_metadata(&to_index)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        fs::read(&real).unwrap(),
        before,
        "index behind a symlink rewritten"
    );

    // A FIFO: refused at once, never opened (opening one for reading would wait for a writer).
    let fifo = tmp.path().join("fifo.docqa");
    mkfifo(&fifo);
    let out = search_with_index(&corpus, &fifo);
    assert_refused(&out, &fifo, "FIFO");
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(
        &fs::symlink_metadata(&fifo).unwrap().file_type()
    ));

    // A folder.
    let dir = tmp.path().join("folder.docqa");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("inside.txt"), "kept").unwrap();
    let out = search_with_index(&corpus, &dir);
    assert_refused(&out, &dir, "directory");
    assert_eq!(fs::read_to_string(dir.join("inside.txt")).unwrap(), "kept");

    // The library refuses the same paths, for reading and for writing.
    let index = Index::read(&real).unwrap();
    for path in [&notes, &link, &fifo, &dir] {
        match Index::read(path) {
            Err(IndexError::NotAnIndex { path: p, .. }) => assert_eq!(&p, path),
            other => panic!("{}: read gave {:?}", path.display(), other.err()),
        }
        match index.write(path) {
            Err(IndexError::NotAnIndex { path: p, .. }) => assert_eq!(&p, path),
            other => panic!("{}: write gave {other:?}", path.display()),
        }
    }
    assert_eq!(fs::read_to_string(&notes).unwrap(), "precious\n");
    assert!(
        stray_temps(tmp.path()).is_empty(),
        "{:?}",
        stray_temps(tmp.path())
    );

    // What docqa may replace: an empty file (as `mktemp` makes) and its own index.
    let empty = tmp.path().join("empty.docqa");
    fs::write(&empty, "").unwrap();
    run_ok(&mut search_cmd(&corpus, &empty));
    assert_same_index(
        &Index::read(&empty).unwrap(),
        &index_of(&corpus),
        "empty file",
    );
}

fn search_cmd(corpus: &Path, index: &Path) -> Command {
    let mut cmd = docqa();
    cmd.args(["--quiet", "search", "cyber", "--json", "--corpus"])
        .arg(corpus)
        .arg("--index")
        .arg(index);
    cmd
}

/// A fresh index of `corpus`, built in this process.
fn index_of(corpus: &Path) -> Index {
    let dir = tempfile::tempdir().unwrap();
    Index::update(
        &dir.path().join("fresh.docqa"),
        corpus,
        embedder(),
        &IndexSettings::default(),
        false,
        &mut |_, _| {},
    )
    .unwrap()
    .0
}

/// Deterministic bytes that are not UTF-8 and hold newlines now and then.
fn binary_noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn index_with_binary_bytes_after_its_magic_line_is_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus");
    small_corpus(&corpus);
    let path = tmp.path().join("g.docqa");
    let noise = binary_noise(50_000);
    assert!(std::str::from_utf8(&noise).is_err());
    for (what, bytes) in [
        (
            "magic then noise",
            [b"DOCQA-INDEX 1\n".as_slice(), &noise].concat(),
        ),
        (
            "magic, a header, then noise",
            [
                b"DOCQA-INDEX 1\n{\"format_version\":1}\n".as_slice(),
                &noise,
            ]
            .concat(),
        ),
        ("noise in the header line", {
            let mut b = b"DOCQA-INDEX 1\n{\"format_version\":1,\"x\":\"".to_vec();
            b.extend_from_slice(&[0xff, 0xfe, 0x80]);
            b.extend_from_slice(b"\"}\n");
            b
        }),
    ] {
        fs::write(&path, &bytes).unwrap();
        match Index::read(&path) {
            Err(IndexError::Corrupt { .. }) => {}
            other => panic!("{what}: read gave {:?}", other.err()),
        }
        let out = docqa()
            .args(["search", "cyber", "--json", "--corpus"])
            .arg(&corpus)
            .arg("--index")
            .arg(&path)
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert!(out.status.success(), "{what}: {err}");
        assert!(
            err.contains("damaged") && err.contains("rebuilding"),
            "{what}: {err}"
        );
        assert!(!json_of(&out)["hits"].as_array().unwrap().is_empty());
        assert_same_index(&Index::read(&path).unwrap(), &index_of(&corpus), what);
    }
}

const MINILM: &str = "all-minilm-l6-v2";

#[test]
fn models_verify_removes_a_rotten_file_so_the_next_use_fetches_it_again() {
    // A cache of its own, holding copies of the embedder's files (no stamps yet).
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let dir = cache.join("models").join(MINILM);
    let source = embedder_model();
    fs::create_dir_all(&dir).unwrap();
    let spec = Registry::builtin().get(MINILM).unwrap().clone();
    for f in &spec.files {
        fs::copy(source.path(&f.name), dir.join(&f.name)).unwrap();
    }
    let verify = |offline: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_docqa"));
        cmd.arg("--cache").arg(&cache);
        if offline {
            cmd.arg("--offline");
        }
        cmd.args(["models", "verify", MINILM]).output().unwrap()
    };
    let out = verify(true);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let config = dir.join("config.json");
    let stamp = dir.join(".config.json.verified");
    assert!(stamp.is_file(), "verify stamps a good file");

    // Bit rot: one byte flipped, size and modification time as before, so the stamp still
    // matches the file's identity.
    let meta = fs::metadata(&config).unwrap();
    let mut bytes = fs::read(&config).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x04;
    let mut f = fs::OpenOptions::new().write(true).open(&config).unwrap();
    f.write_all(&bytes).unwrap();
    f.set_modified(meta.modified().unwrap()).unwrap();
    drop(f);
    assert_eq!(fs::metadata(&config).unwrap().len(), meta.len());
    assert_eq!(
        fs::metadata(&config).unwrap().modified().unwrap(),
        meta.modified().unwrap()
    );
    let actual = sha256_file(&config).unwrap();
    let expected = spec
        .files
        .iter()
        .find(|f| f.name == "config.json")
        .unwrap()
        .sha256
        .clone();
    assert_ne!(actual, expected);

    let out = verify(true);
    let table = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{table}");
    let row = table
        .lines()
        .find(|l| l.contains("config.json"))
        .unwrap_or_else(|| panic!("no config.json row: {table}"));
    assert!(row.contains("CORRUPT"), "{row}");
    assert!(
        row.contains(&format!("file sha256 {actual}")),
        "the file's real hash is not shown: {row}"
    );
    assert!(row.contains(&format!("expected {expected}")), "{row}");
    assert!(row.contains("removed"), "{row}");
    assert!(!stamp.exists(), "the stamp of a corrupt file is kept");
    assert!(!config.exists(), "the corrupt file is kept");
    let left: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.iter().all(|n| !n.contains("config.json")), "{left:?}");

    // The next use does not load the corrupt file: offline, it says the model is not cached.
    let store = Store::new(cache.clone(), Registry::builtin());
    let offline = FetchOptions {
        offline: true,
        quiet: true,
    };
    match store.ensure(MINILM, offline, &mut |_: &str| {}) {
        Err(StoreError::OfflineMissing { name, .. }) => assert_eq!(name, MINILM),
        other => panic!("the next use after a failed verify gave {other:?}"),
    }
    let status = store.status(MINILM, false).unwrap();
    let state = &status
        .files
        .iter()
        .find(|f| f.file == "config.json")
        .unwrap()
        .state;
    assert_eq!(state, &FileState::Missing);

    // A good copy back in place (what a fetch does) is verified again, never trusted unseen.
    fs::copy(source.path("config.json"), &config).unwrap();
    assert!(store.ensure(MINILM, offline, &mut |_: &str| {}).is_ok());
    assert!(stamp.is_file());
}

#[test]
fn a_second_writer_waits_for_the_first_and_reuses_its_work() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus");
    copy_dir(&seeds_dir(), &corpus);
    let path = tmp.path().join("index.docqa");
    let start = || {
        docqa()
            .args(["--threads", "1", "index", "--json", "--corpus"])
            .arg(&corpus)
            .arg("--index")
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start(), start());
    let outs = [
        wait_bounded(a, Duration::from_secs(600), "first writer"),
        wait_bounded(b, Duration::from_secs(600), "second writer"),
    ];
    let reports: Vec<serde_json::Value> = outs
        .iter()
        .map(|o| {
            assert!(o.status.success(), "{}", text(&o.stderr));
            json_of(o)["report"].clone()
        })
        .collect();
    let chunks = reports[0]["chunks"].as_u64().unwrap();
    assert!(chunks > 10);
    assert_eq!(reports[1]["chunks"], chunks);
    let waited: Vec<usize> = (0..2)
        .filter(|&i| reports[i]["waited_for_lock"] == true)
        .collect();
    assert_eq!(waited.len(), 1, "exactly one writer waits: {reports:#?}");
    let (w, other) = (waited[0], 1 - waited[0]);
    assert!(
        text(&outs[w].stderr).contains("waiting for another docqa process"),
        "{}",
        text(&outs[w].stderr)
    );
    assert_eq!(reports[other]["embedded_chunks"], chunks, "{reports:#?}");
    assert_eq!(
        reports[w]["embedded_chunks"], 0,
        "the second writer redid the work"
    );
    assert_eq!(reports[w]["reused_chunks"], chunks);
    assert_same_index(
        &Index::read(&path).unwrap(),
        &index_of(&corpus),
        "after two writers",
    );
}

/// Sentences for the file the soak test keeps changing, different each round.
fn changing_text(round: usize) -> String {
    let mut s = format!("Round {round} report.\n\n");
    for i in 0..=round % 4 {
        s.push_str(&format!(
            "Harbour log {round}-{i}: the ferry carried {} passengers across the bay on a calm \
             morning, and the crew counted {} gulls on the pier.\n\n",
            100 + round * 7 + i,
            3 + i
        ));
    }
    s
}

#[test]
fn soak_four_searchers_and_a_reindexer_while_a_file_changes() {
    const ROUNDS: usize = 20;
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus");
    small_corpus(&corpus);
    let changing = corpus.join("harbour.txt");
    fs::write(&changing, changing_text(0)).unwrap();
    let index_dir = tmp.path().join("idx");
    let path = index_dir.join("index.docqa");
    let spawn = |args: &[&str]| {
        docqa()
            .args(["--threads", "1"])
            .args(args)
            .arg("--corpus")
            .arg(&corpus)
            .arg("--index")
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    for round in 1..=ROUNDS {
        let mut children = Vec::new();
        for q in [
            "ferry passengers",
            "cyber drill",
            "gulls on the pier",
            "Cyber Flag",
        ] {
            children.push((
                format!("search {q:?}"),
                spawn(&["search", q, "--json", "-k", "3"]),
            ));
        }
        // Every fifth round re-embeds everything, checkpointing as it goes.
        let reindex: &[&str] = if round % 5 == 0 {
            &["index", "--json", "--rebuild", "--checkpoint-secs", "0"]
        } else {
            &["index", "--json", "--checkpoint-secs", "0"]
        };
        children.push(("index".to_string(), spawn(reindex)));
        // The file changes while they run (written in place, as an editor might).
        std::thread::sleep(Duration::from_millis(30));
        fs::write(&changing, changing_text(round)).unwrap();
        for (what, child) in children {
            let out = wait_bounded(child, Duration::from_secs(120), &what);
            let err = text(&out.stderr);
            assert!(out.status.success(), "round {round}, {what}: {err}");
            assert!(
                !err.contains("damaged") && !err.contains("error"),
                "round {round}, {what}: {err}"
            );
            let v = json_of(&out);
            if what.starts_with("search") {
                assert!(
                    !v["hits"].as_array().unwrap().is_empty(),
                    "round {round}, {what}"
                );
            } else {
                assert!(v["report"]["chunks"].as_u64().unwrap() > 0);
            }
        }
    }
    // Brought up to date once more, the index holds the final files, nothing more to do, and
    // equals a fresh build of them.
    let catch_up = wait_bounded(
        spawn(&["index", "--json"]),
        Duration::from_secs(120),
        "catch up",
    );
    assert!(catch_up.status.success(), "{}", text(&catch_up.stderr));
    let final_run = wait_bounded(
        spawn(&["index", "--json"]),
        Duration::from_secs(120),
        "final",
    );
    assert!(final_run.status.success(), "{}", text(&final_run.stderr));
    let report = &json_of(&final_run)["report"];
    assert_eq!(report["embedded_chunks"], 0, "{report:#}");
    let index = Index::read(&path).unwrap();
    assert!(index
        .chunks
        .iter()
        .any(|c| c.text.contains(&format!("Harbour log {ROUNDS}-0"))));
    assert_same_index(&index, &index_of(&corpus), "after the soak");
    assert!(
        stray_temps(&index_dir).is_empty(),
        "{:?}",
        stray_temps(&index_dir)
    );
    let took = started.elapsed();
    eprintln!("soak: {ROUNDS} rounds of 5 processes in {took:.1?}");
    assert!(took < Duration::from_secs(300), "soak took {took:?}");
}

#[test]
fn a_killed_build_resumes_from_its_checkpoint_and_ends_with_the_same_index() {
    let tmp = tempfile::tempdir().unwrap();
    let articles = squad_articles();
    assert_eq!(fs::read_dir(&articles).unwrap().count(), 24);
    let index_cmd = |path: &Path, extra: &[&str]| {
        let mut cmd = docqa();
        cmd.arg("index")
            .arg(&articles)
            .arg("--index")
            .arg(path)
            .arg("--json")
            .args(extra);
        cmd
    };

    // Killed (SIGKILL) once its first checkpoint is on disk.
    let resumed = tmp.path().join("resumed.docqa");
    let mut child = index_cmd(&resumed, &["--checkpoint-secs", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let waiting = Instant::now();
    while Index::read(&resumed).is_err() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the build ended before it wrote a checkpoint"
        );
        assert!(
            waiting.elapsed() < Duration::from_secs(600),
            "no checkpoint written"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the build finished before it could be killed"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = Index::read(&resumed).expect("the checkpoint left by the killed run");
    assert!(!partial.is_empty());

    // Resumed: only what the checkpoint lacks is embedded. stderr is a pipe here, not a
    // terminal, so progress comes as lines.
    let out = run_ok(&mut index_cmd(&resumed, &[]));
    let report = &json_of(&out)["report"];
    let chunks = report["chunks"].as_u64().unwrap() as usize;
    let embedded = report["embedded_chunks"].as_u64().unwrap() as usize;
    assert!(partial.len() < chunks, "the checkpoint holds everything");
    assert_eq!(report["reused_chunks"], partial.len(), "{report:#}");
    assert_eq!(embedded, chunks - partial.len(), "{report:#}");
    assert!(
        embedded < chunks,
        "the resumed build embedded everything again"
    );
    assert!(report["rebuilt_reason"].is_null(), "{report:#}");
    let progress = text(&out.stderr);
    let lines: Vec<&str> = progress
        .lines()
        .filter(|l| l.contains("chunks embedded") && l.contains("files"))
        .collect();
    assert!(lines.len() >= 2, "no progress lines on stderr: {progress}");
    assert!(lines[0].contains("left"), "{}", lines[0]);
    let line = lines[lines.len() - 1];
    assert!(
        line.contains("chunks/s") && line.contains("done in"),
        "{line}"
    );
    assert!(
        line.contains(&format!("{embedded}/{embedded} chunks")),
        "{line}"
    );

    // The same index as a build that was never interrupted.
    let whole = tmp.path().join("whole.docqa");
    let out = run_ok(index_cmd(&whole, &[]).arg("--quiet"));
    assert_eq!(json_of(&out)["report"]["embedded_chunks"], chunks);
    assert_same_index(
        &Index::read(&resumed).unwrap(),
        &Index::read(&whole).unwrap(),
        "resumed against uninterrupted",
    );
    assert_eq!(header_of(&resumed)["files"], header_of(&whole)["files"]);
    assert!(
        stray_temps(tmp.path()).is_empty(),
        "{:?}",
        stray_temps(tmp.path())
    );
}

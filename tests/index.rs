//! The on-disk index and corpus ingestion with the real embedder (all-MiniLM-L6-v2 from the model
//! cache): stable chunk IDs, incremental updates, the embedder check, damaged index files, bad
//! corpus folders, boilerplate-free chunks of the seeds corpus, and `docqa search --json`.
//! Corpora and index files live in temporary folders; run with DOCQA_CACHE set to reuse an
//! existing model cache.

use std::fs;
use std::path::{Path, PathBuf};

use docqa::corpus::{ChunkId, CorpusError};
use docqa::embed::{EmbedError, Embedder};
use docqa::index::{embed_text, Index, IndexError, IndexSettings, UpdateReport};
use docqa::models::Store;

mod common;
use common::embedder;

/// Vectors of the same text embedded in two runs.
const VECTOR_TOL: f32 = 1e-5;

fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds")
}

const SEEDS: [&str; 5] = [
    "000_b48ef8e451107e2d.txt",
    "001_61b0842ad3a1497d.txt",
    "002_a6b6fc3752836784.txt",
    "003_a09d3a89988d2385.txt",
    "004_125c6c913165df30.txt",
];

/// The real embedder under another id: what an index built with a different model looks like.
struct Renamed(&'static str);

impl Embedder for Renamed {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        embedder().embed(texts)
    }

    fn dim(&self) -> usize {
        embedder().dim()
    }

    fn id(&self) -> &str {
        self.0
    }
}

fn update_with(
    index: &Path,
    corpus: &Path,
    embedder: &dyn Embedder,
    rebuild: bool,
) -> Result<(Index, UpdateReport), IndexError> {
    Index::update(
        index,
        corpus,
        embedder,
        &IndexSettings::default(),
        rebuild,
        &mut |_, _| {},
    )
}

fn update(index: &Path, corpus: &Path) -> (Index, UpdateReport) {
    update_with(index, corpus, embedder(), false).unwrap()
}

fn copy_seeds(dir: &Path, names: &[&str]) {
    fs::create_dir_all(dir).unwrap();
    for name in names {
        fs::copy(seeds_dir().join(name), dir.join(name)).unwrap();
    }
}

/// (id, file, start, end) of every chunk, in index order.
fn spans(index: &Index) -> Vec<(ChunkId, String, usize, usize)> {
    index
        .chunks
        .iter()
        .map(|c| (c.id.clone(), c.doc.to_string(), c.start, c.end))
        .collect()
}

fn ids_of(index: &Index, file: &str) -> Vec<String> {
    index
        .chunks
        .iter()
        .filter(|c| c.doc.as_str() == file)
        .map(|c| c.id.to_string())
        .collect()
}

fn vector_of<'a>(index: &'a Index, id: &str) -> &'a [f32] {
    let i = index
        .chunks
        .iter()
        .position(|c| c.id.to_string() == id)
        .unwrap_or_else(|| panic!("no chunk {id}"));
    index.vector(i)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

/// Every chunk's span in its `.txt`/`.md` file holds exactly its text, and ordinals count from 0
/// per file.
fn assert_spans_match_files(index: &Index, corpus: &Path) {
    let mut next: std::collections::HashMap<&str, u32> = Default::default();
    for c in &index.chunks {
        let bytes = fs::read(corpus.join(c.doc.as_str())).unwrap();
        assert!(c.start < c.end && c.end <= bytes.len(), "{}: span", c.id);
        assert_eq!(
            &bytes[c.start..c.end],
            c.text.as_bytes(),
            "{}: file bytes {}..{} differ from the chunk text",
            c.id,
            c.start,
            c.end
        );
        let ordinal = next.entry(c.doc.as_str()).or_default();
        assert_eq!(c.id.ordinal(), *ordinal, "{}", c.id);
        assert_eq!(c.id.stem(), c.doc.stem(), "{}", c.id);
        *ordinal += 1;
    }
}

#[test]
fn chunk_ids_and_spans_are_stable_across_reindexing() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus");
    copy_seeds(&corpus, &SEEDS);
    let path = tmp.path().join("a/index.docqa");

    let (first, report) = update(&path, &corpus);
    assert!(path.is_file());
    assert_eq!(sorted(&report.embedded_files), SEEDS.map(String::from));
    assert!(report.reused_files.is_empty() && report.removed_files.is_empty());
    assert_eq!(report.embedded_chunks, first.len());
    assert!(first.len() >= 10, "{} chunks", first.len());
    assert_spans_match_files(&first, &corpus);
    let ids: Vec<String> = first.chunks.iter().map(|c| c.id.to_string()).collect();
    assert_eq!(ids[0], "000_b48ef8e451107e2d#0");
    let unique: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "duplicate chunk IDs: {ids:?}");

    // Unchanged folder, same index: nothing embedded, nothing rewritten, same chunks.
    let before = fs::read(&path).unwrap();
    let (again, report) = update(&path, &corpus);
    assert_eq!(report.embedded_chunks, 0, "{report:?}");
    assert!(report.embedded_files.is_empty(), "{report:?}");
    assert_eq!(sorted(&report.reused_files), SEEDS.map(String::from));
    assert_eq!(spans(&again), spans(&first));
    assert_eq!(
        fs::read(&path).unwrap(),
        before,
        "unchanged index rewritten"
    );

    // What was written reads back as built.
    let read = Index::read(&path).unwrap();
    assert_eq!(read.chunks, first.chunks);
    assert_eq!(read.embedder_id, embedder().id());
    for i in 0..first.len() {
        assert_eq!(read.vector(i), first.vector(i), "{}", first.chunks[i].id);
    }

    // The same files in another folder, indexed from scratch into another file: IDs depend on
    // paths relative to the corpus and on the text only.
    let elsewhere = tmp.path().join("elsewhere/deeper/copy");
    copy_seeds(&elsewhere, &SEEDS);
    let other_path = tmp.path().join("b/index.docqa");
    let (fresh, report) = update_with(&other_path, &elsewhere, embedder(), true).unwrap();
    assert_eq!(report.embedded_chunks, fresh.len());
    assert_eq!(spans(&fresh), spans(&first));
    assert_eq!(fresh.chunks, first.chunks);
    for i in 0..first.len() {
        let d = max_abs_diff(fresh.vector(i), first.vector(i));
        assert!(d <= VECTOR_TOL, "{}: {d:e}", first.chunks[i].id);
    }
}

#[test]
fn incremental_update_embeds_only_changed_and_new_files() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus");
    let kept = [SEEDS[0], SEEDS[1]];
    let (changed, deleted) = (SEEDS[2], SEEDS[3]);
    copy_seeds(&corpus, &[kept[0], kept[1], changed, deleted]);
    let path = tmp.path().join("index.docqa");
    let (before, _) = update(&path, &corpus);
    assert!(!ids_of(&before, deleted).is_empty());

    // Change one file (a new closing paragraph), add one in a subfolder, delete one.
    let mut text = fs::read_to_string(corpus.join(changed)).unwrap();
    text.push_str(
        "\n\nThe ministry added on Tuesday that a third round of joint drills is planned for \
         the spring, with observers from Japan invited for the first time.\n",
    );
    fs::write(corpus.join(changed), text).unwrap();
    let added = "notes/rivers.md";
    fs::create_dir_all(corpus.join("notes")).unwrap();
    fs::write(
        corpus.join(added),
        "# River notes\n\nThe Rhine flows from the Swiss Alps to the North Sea and carries \
         more barge traffic than any other river in Europe.\n\nIts delta, shared with the \
         Meuse, holds the port of Rotterdam.\n",
    )
    .unwrap();
    fs::remove_file(corpus.join(deleted)).unwrap();

    let mut progress_total = None;
    let (after, report) = Index::update(
        &path,
        &corpus,
        embedder(),
        &IndexSettings::default(),
        false,
        &mut |_, total| progress_total = Some(total),
    )
    .unwrap();
    assert_eq!(
        sorted(&report.embedded_files),
        [changed, added].map(String::from),
        "{report:?}"
    );
    assert_eq!(sorted(&report.reused_files), kept.map(String::from));
    assert_eq!(report.removed_files, [deleted]);
    assert!(report.skipped_files.is_empty() && report.rebuilt_reason.is_none());
    let changed_ids = ids_of(&after, changed);
    let added_ids = ids_of(&after, added);
    assert_eq!(added_ids, ["notes/rivers#0"]);
    assert_eq!(report.embedded_chunks, changed_ids.len() + added_ids.len());
    assert_eq!(progress_total, Some(report.embedded_chunks));
    assert_eq!(report.chunks, after.len());
    assert!(ids_of(&after, deleted).is_empty());
    assert!(after
        .chunks
        .iter()
        .any(|c| c.doc.as_str() == changed && c.text.contains("observers from Japan")));
    assert_spans_match_files(&after, &corpus);

    // Unchanged files keep their chunks and their very vectors (reused, not re-embedded).
    for file in kept {
        assert_eq!(ids_of(&after, file), ids_of(&before, file), "{file}");
        for id in ids_of(&before, file) {
            assert_eq!(vector_of(&after, &id), vector_of(&before, &id), "{id}");
            let (old, new) = (
                before.chunk(&id.parse().unwrap()).unwrap(),
                after.chunk(&id.parse().unwrap()).unwrap(),
            );
            assert_eq!(
                (old.start, old.end, &old.text),
                (new.start, new.end, &new.text)
            );
        }
    }
    // Fresh vectors belong to the new text.
    for c in after.chunks.iter().filter(|c| c.doc.as_str() == added) {
        let want = embedder().embed_one(&embed_text(c, true)).unwrap();
        let d = max_abs_diff(vector_of(&after, &c.id.to_string()), &want);
        assert!(d <= VECTOR_TOL, "{}: {d:e}", c.id);
    }

    // The file on disk is the updated index, and a further update has nothing to do.
    assert_eq!(Index::read(&path).unwrap().chunks, after.chunks);
    let (_, report) = update(&path, &corpus);
    assert_eq!(report.embedded_chunks, 0, "{report:?}");
    assert!(report.removed_files.is_empty() && report.embedded_files.is_empty());
}

#[test]
fn index_built_with_another_embedder_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus");
    copy_seeds(&corpus, &[SEEDS[2]]);
    let path = tmp.path().join("index.docqa");
    update(&path, &corpus);
    let original = fs::read(&path).unwrap();

    let other = Renamed("bge-small-en-v1.5@0123456789ab");
    let err = update_with(&path, &corpus, &other, false)
        .err()
        .expect("an index of another embedder was used");
    assert!(
        matches!(&err, IndexError::EmbedderMismatch { built, asked, .. }
            if built == embedder().id() && asked == other.id()),
        "{err:?}"
    );
    let msg = err.to_string();
    for part in [
        "--rebuild",
        embedder().id(),
        other.id(),
        &path.display().to_string(),
    ] {
        assert!(msg.contains(part), "{part:?} missing from: {msg}");
    }
    assert_eq!(
        fs::read(&path).unwrap(),
        original,
        "refused index was changed"
    );

    // An index whose header names another embedder (edited on disk) is refused the same way.
    let edited = edit_header(&original, |h| {
        h.replacen(embedder().id(), "e5-small-v2@ffffffffffff", 1)
    });
    fs::write(&path, edited).unwrap();
    assert_eq!(
        Index::read(&path).unwrap().embedder_id,
        "e5-small-v2@ffffffffffff"
    );
    let err = update_with(&path, &corpus, embedder(), false)
        .err()
        .expect("an index of another embedder was used");
    assert!(
        matches!(&err, IndexError::EmbedderMismatch { built, .. } if built == "e5-small-v2@ffffffffffff"),
        "{err:?}"
    );
    assert!(err.to_string().contains("--rebuild"), "{err}");

    // Rebuilding with the other embedder replaces the index.
    let (index, report) = update_with(&path, &corpus, &other, true).unwrap();
    assert_eq!(index.embedder_id, other.id());
    assert_eq!(report.embedded_chunks, index.len());
    assert_eq!(Index::read(&path).unwrap().embedder_id, other.id());
}

/// Offset of the first body byte: after the magic line and the header line.
fn body_start(bytes: &[u8]) -> usize {
    let first = bytes.iter().position(|&b| b == b'\n').unwrap();
    first + 1 + bytes[first + 1..].iter().position(|&b| b == b'\n').unwrap() + 1
}

/// The file with its magic and header lines (UTF-8 text, unlike the body) passed through `edit`.
fn edit_header(bytes: &[u8], edit: impl FnOnce(&str) -> String) -> Vec<u8> {
    let body = body_start(bytes);
    let header = std::str::from_utf8(&bytes[..body]).unwrap();
    let edited = edit(header);
    assert_ne!(edited, header, "header edit changed nothing");
    [edited.as_bytes(), &bytes[body..]].concat()
}

fn assert_corrupt(path: &Path, what: &str) {
    match Index::read(path) {
        Err(IndexError::Corrupt { path: p, .. }) => assert_eq!(p, path),
        Err(e) => panic!("{what}: expected Corrupt, got {e:?}"),
        Ok(_) => panic!("{what}: damaged index was read as valid"),
    }
}

#[test]
fn damaged_index_is_detected_and_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus");
    copy_seeds(&corpus, &[SEEDS[0], SEEDS[3]]);
    let path = tmp.path().join("index.docqa");
    let (good, _) = update(&path, &corpus);
    let original = fs::read(&path).unwrap();
    let body = body_start(&original);
    assert!(body < original.len() / 2, "header is most of the file");
    // A byte of chunk text (inside the JSON chunk table) and a byte of a vector.
    let text_byte = body + (original[body..].iter().position(|&b| b == b'\n').unwrap() / 2);
    let vector_byte = original.len() - 7;

    let damages: Vec<(&str, Vec<u8>)> = vec![
        ("truncated to half", original[..original.len() / 2].to_vec()),
        ("truncated after the header", original[..body].to_vec()),
        ("last byte cut", original[..original.len() - 1].to_vec()),
        ("flipped byte in the chunk table", {
            let mut b = original.clone();
            b[text_byte] ^= 0x20;
            b
        }),
        ("flipped byte in the vectors", {
            let mut b = original.clone();
            b[vector_byte] ^= 0x01;
            b
        }),
    ];
    for (what, bytes) in &damages {
        fs::write(&path, bytes).unwrap();
        assert_corrupt(&path, what);
        let (rebuilt, report) = update(&path, &corpus);
        let why = report.rebuilt_reason.as_deref().unwrap_or_default();
        assert!(why.contains("damaged"), "{what}: rebuilt_reason {why:?}");
        assert_eq!(report.embedded_chunks, good.len(), "{what}: not rebuilt");
        assert!(report.reused_files.is_empty(), "{what}: {report:?}");
        assert_eq!(rebuilt.chunks, good.chunks, "{what}");
        for i in 0..good.len() {
            let d = max_abs_diff(rebuilt.vector(i), good.vector(i));
            assert!(d <= VECTOR_TOL, "{what}: {}: {d:e}", good.chunks[i].id);
        }
        // The damaged file was replaced by a good one.
        assert_eq!(Index::read(&path).unwrap().chunks, good.chunks, "{what}");
    }

    // Files that start like an index but hold none, checked on read alone.
    for (what, bytes) in [
        ("empty file", Vec::new()),
        (
            "magic line only",
            original[..=original.iter().position(|&b| b == b'\n').unwrap()].to_vec(),
        ),
    ] {
        fs::write(&path, bytes).unwrap();
        assert_corrupt(&path, what);
    }

    // Another program's file is not damage to repair: it is refused and left as it is.
    let foreign = b"PK\x03\x04 not an index\n{}\n".to_vec();
    fs::write(&path, &foreign).unwrap();
    match update_with(&path, &corpus, embedder(), false) {
        Err(IndexError::NotAnIndex { path: p, .. }) => assert_eq!(p, path),
        Err(e) => panic!("another program's file: expected NotAnIndex, got {e:?}"),
        Ok(_) => panic!("another program's file was replaced"),
    }
    assert_eq!(fs::read(&path).unwrap(), foreign);
}

#[test]
fn damaged_header_file_table_is_corrupt_not_a_panic() {
    // The body checksum does not cover the header; a header whose file table points past the
    // chunks, or at another file's chunks, must still be refused on read rather than index out
    // of bounds or reuse the wrong vectors on update.
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus");
    copy_seeds(&corpus, &[SEEDS[2], SEEDS[3]]);
    let path = tmp.path().join("index.docqa");
    let (good, _) = update(&path, &corpus);
    let original = fs::read(&path).unwrap();
    let n0 = ids_of(&good, SEEDS[2]).len();
    let n1 = ids_of(&good, SEEDS[3]).len();
    assert!(n0 > 0 && n1 > 0);
    let edits = [
        (
            "file table past the chunks",
            format!("\"first\":{n0},\"count\":{n1}"),
            format!("\"first\":{n0},\"count\":900"),
        ),
        (
            "file table pointing at another file's chunks",
            format!("\"first\":{n0},\"count\":{n1}"),
            format!("\"first\":0,\"count\":{n1}"),
        ),
    ];
    for (what, from, to) in edits {
        let edited = edit_header(&original, |h| {
            assert!(h.contains(&from), "no {from} in the header: {h}");
            h.replacen(&from, &to, 1)
        });
        fs::write(&path, edited).unwrap();
        assert_corrupt(&path, what);
        let (rebuilt, report) = update(&path, &corpus);
        assert!(report.rebuilt_reason.is_some(), "{what}: {report:?}");
        assert_eq!(rebuilt.chunks, good.chunks, "{what}");
    }
}

#[test]
fn empty_and_undecodable_folders_are_errors_naming_the_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("index.docqa");

    let empty = tmp.path().join("empty-corpus");
    fs::create_dir(&empty).unwrap();
    let err = update_with(&path, &empty, embedder(), false).err().unwrap();
    assert!(
        matches!(err, IndexError::Corpus(CorpusError::Empty { .. })),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&empty.display().to_string()),
        "{err}"
    );
    assert!(!path.exists(), "an index was written for an empty folder");

    let bad = tmp.path().join("undecodable-corpus");
    fs::create_dir(&bad).unwrap();
    // Markdown that is not UTF-8 is damage (a .txt would be decoded, see below), and a NUL
    // byte marks a binary file.
    fs::write(
        bad.join("menu.md"),
        b"Caf\xe9 cr\xe8me br\xfbl\xe9e, \xa3 4.50\n",
    )
    .unwrap();
    fs::write(bad.join("notes.txt"), b"\x00\x01h\x00i").unwrap();
    let err = update_with(&path, &bad, embedder(), false).err().unwrap();
    assert!(
        matches!(
            err,
            IndexError::Corpus(CorpusError::NothingReadable { count: 2, .. })
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&bad.display().to_string()), "{msg}");
    assert!(msg.contains("menu.md") && msg.contains("UTF-8"), "{msg}");
    assert!(
        !path.exists(),
        "an index was written for an unreadable folder"
    );

    // A legacy-encoded .txt is decoded and the report says from what.
    let latin1 = tmp.path().join("latin1-corpus");
    fs::create_dir(&latin1).unwrap();
    fs::write(
        latin1.join("menu.txt"),
        b"The caf\xe9 serves cr\xe8me br\xfbl\xe9e for \xa3 4.50 every day of the week.\n",
    )
    .unwrap();
    let latin1_index = tmp.path().join("latin1.docqa");
    let (index, report) = update_with(&latin1_index, &latin1, embedder(), false).unwrap();
    assert_eq!(report.decoded_files.len(), 1, "{report:?}");
    assert!(report.decoded_files[0].0.ends_with("menu.txt"));
    assert_eq!(report.decoded_files[0].1, "windows-1252");
    assert!(index.chunks[0].text.contains("crème brûlée for £ 4.50"));

    // Readable files holding nothing but page furniture leave no chunks: also an error.
    let furniture = tmp.path().join("furniture-corpus");
    fs::create_dir(&furniture).unwrap();
    fs::write(
        furniture.join("page.txt"),
        "Home\nWorld\nSports\n\nSubscribe to our newsletter\n\n© 2024 Example Daily. All rights reserved.\n",
    )
    .unwrap();
    let err = update_with(&path, &furniture, embedder(), false)
        .err()
        .unwrap();
    assert!(matches!(err, IndexError::NoChunks { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&furniture.display().to_string()),
        "{err}"
    );
    assert!(!path.exists());

    // One bad file beside a good one: the good one is indexed, the bad one reported.
    let mixed = tmp.path().join("mixed-corpus");
    fs::create_dir(&mixed).unwrap();
    fs::write(mixed.join("menu.md"), b"Caf\xe9 cr\xe8me br\xfbl\xe9e\n").unwrap();
    fs::write(
        mixed.join("river.txt"),
        "The Rhine flows from the Swiss Alps to the North Sea.\n\nIts delta holds the port \
         of Rotterdam, the busiest in Europe.\n",
    )
    .unwrap();
    let (index, report) = update_with(&path, &mixed, embedder(), false).unwrap();
    assert_eq!(report.embedded_files, ["river.txt"]);
    assert_eq!(report.skipped_files.len(), 1, "{report:?}");
    let (file, why) = &report.skipped_files[0];
    assert!(file.ends_with("menu.md"), "{file}");
    assert!(why.contains("not valid UTF-8"), "{why}");
    assert!(!index.is_empty());
    assert!(index.chunks.iter().all(|c| c.doc.as_str() == "river.txt"));
    assert_spans_match_files(&index, &mixed);
}

#[test]
fn seed_chunks_hold_the_articles_and_no_boilerplate() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("index.docqa");
    let (index, report) = update(&path, &seeds_dir());
    assert!(report.skipped_files.is_empty(), "{report:?}");
    assert_eq!(report.embedded_files.len(), SEEDS.len());
    assert_spans_match_files(&index, &seeds_dir());

    // Lines of page furniture found in the raw seed files.
    let furniture = [
        "([email protected])",
        "[email",
        "Previous Oak Ridge launches the world's fastest computer",
        "Next AI-powered kit helps Theseus project",
        "본문 바로가기",
        "bar_progress",
        "Text Size",
        "[Image source=Yonhap News]",
        "© The Asia Business Daily",
        "All rights reserved",
        "Special Coverage",
        "Join us on social!",
        "{mosads}",
        "Copyright 2025 Nexstar Media",
        "may not be published, broadcast, rewritten, or redistributed",
        "Critical Infrastructure Security, Threat Intelligence, Incident Response, TDR",
        "Get daily email updates",
        "SC Media's daily must-read",
        "By clicking the Subscribe button",
        "Terms and Conditions and Privacy Policy",
    ];
    // Lone words that are furniture as whole lines ("Close", "Top").
    let furniture_lines = ["Close", "Top"];
    for c in &index.chunks {
        for bad in furniture {
            assert!(!c.text.contains(bad), "{} holds {bad:?}:\n{}", c.id, c.text);
        }
        for line in c.text.lines() {
            assert!(
                !furniture_lines.contains(&line.trim()),
                "{} holds the line {line:?}",
                c.id
            );
        }
        // The headline is the chunk's title, not part of its text.
        assert!(!c.title.is_empty(), "{}: no title", c.id);
        assert!(
            !c.text.starts_with(&c.title),
            "{} starts with its title",
            c.id
        );
        // No chunk is a leftover fragment: each holds at least one full sentence.
        assert!(
            c.text.split_whitespace().count() >= 8,
            "{} is a fragment: {:?}",
            c.id,
            c.text
        );
    }

    // The articles survive, including their first and last sentences next to the furniture.
    let facts = [
        (
            SEEDS[0],
            "have agreed to develop cybersecurity cooperation through stages",
        ),
        (
            SEEDS[0],
            "with the aim of improving interoperability in cyber operations and partnership.",
        ),
        (
            SEEDS[1],
            "It appears that South Korea and the United States will conduct regular joint cyber \
             defense exercises in the future.",
        ),
        (
            SEEDS[1],
            "South Korea participated for the first time last October",
        ),
        (
            SEEDS[1],
            "Previously, meetings were held virtually due to the COVID-19 pandemic.",
        ),
        (
            SEEDS[2],
            "The South Korean military is moving ahead with its efforts to strengthen partnerships",
        ),
        (
            SEEDS[2],
            "exchanging information to effectively counter emerging threats.",
        ),
        (
            SEEDS[3],
            "The U.S. and South Korea have agreed to help one another develop technology",
        ),
        (
            SEEDS[3],
            "Both South Korea and the U.S. have been in the digital crosshairs",
        ),
        (
            SEEDS[3],
            "the Ministry of Science, ICT and Future Planning of the Republic of Korea.",
        ),
        (
            SEEDS[4],
            "The U.S. and South Korea announced that the two nations will begin working together",
        ),
        (
            SEEDS[4],
            "Gardner is chairman of the Senate Foreign Relations Subcommittee on East Asia",
        ),
    ];
    for (file, fact) in facts {
        assert!(
            index
                .chunks
                .iter()
                .any(|c| c.doc.as_str() == file && c.text.contains(fact)),
            "{file}: lost {fact:?}"
        );
    }
}

fn cache_root() -> PathBuf {
    Store::default_root()
}

#[test]
fn cli_search_json_hits_point_at_their_text() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus");
    copy_seeds(&corpus, &[SEEDS[1], SEEDS[2], SEEDS[4]]);
    let index_path = tmp.path().join("idx/index.docqa");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_docqa"))
            .arg("--cache")
            .arg(cache_root())
            .args(["--offline", "--quiet"])
            .args(args)
            .arg("--corpus")
            .arg(&corpus)
            .arg("--index")
            .arg(&index_path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docqa {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&out.stdout));
        });
        v
    };

    let question = "When did South Korea first take part in Cyber Flag?";
    let v = run(&["search", question, "--json", "-k", "4"]);
    assert!(index_path.is_file(), "index not written to --index");
    assert_eq!(v["question"], question);
    let hits = v["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 4);
    let mut last_score = f64::INFINITY;
    for h in hits {
        let id: ChunkId = h["id"].as_str().unwrap().parse().unwrap();
        let file = h["file"].as_str().unwrap();
        let start = h["start"].as_u64().unwrap() as usize;
        let end = h["end"].as_u64().unwrap() as usize;
        let score = h["score"].as_f64().unwrap();
        let text = h["text"].as_str().unwrap();
        assert!(
            score.is_finite() && score <= last_score,
            "scores not sorted"
        );
        last_score = score;
        assert_eq!(
            id.stem(),
            file.trim_end_matches(".txt"),
            "{id} is not in {file}"
        );
        let bytes = fs::read(corpus.join(file)).unwrap();
        assert_eq!(
            &bytes[start..end],
            text.as_bytes(),
            "{id}: {file}[{start}..{end}] is not the hit's text"
        );
    }
    assert!(
        hits.iter()
            .any(|h| h["text"].as_str().unwrap().contains("for the first time")),
        "no hit answers the question: {hits:#?}"
    );

    // `docqa index` on the same folder and index file finds nothing to do.
    let v = run(&["index", "--json"]);
    let report = &v["report"];
    assert_eq!(report["embedded_chunks"], 0, "{v:#}");
    assert_eq!(report["reused_files"].as_array().unwrap().len(), 3, "{v:#}");
}

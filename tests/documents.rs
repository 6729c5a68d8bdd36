//! Real document folders through the real binary: the PDF manuals Debian's `asymptote-doc` and
//! `gnuplot-doc` install (nobody here wrote them; `.ci/run` installs the packages), a Word file
//! this test writes, an image-only PDF it builds and a truncated PDF. Checks that the index
//! builds, that the bad files are reported in `skipped_files` without stopping it, that an
//! unchanged PDF is not parsed again, that `search --json` hits carry their page, and that `ask`
//! answers facts on known pages citing the right file and page. The corpus is indexed once per
//! run into a temporary `--index`; asks cost seconds of CPU each: run with `--test-threads=1`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use serde_json::Value;

/// Where the Debian packages put the manuals.
const PDFS: [(&str, &str); 4] = [
    ("asymptote.pdf", "/usr/share/doc/asymptote/asymptote.pdf"),
    ("CAD.pdf", "/usr/share/doc/asymptote/CAD.pdf"),
    ("asy-latex.pdf", "/usr/share/doc/asymptote/asy-latex.pdf"),
    ("gnuplot.pdf", "/usr/share/doc/gnuplot/gnuplot.pdf"),
];

/// A fact only the Word file holds.
const DOCX_FACT: &str = "The Lindqvist pump station was commissioned in 1997 and lifts water \
    from the lower canal to the reservoir.";

struct Corpus {
    /// Kept alive for the run.
    _dir: tempfile::TempDir,
    corpus: PathBuf,
    index: PathBuf,
    /// `docqa index --json` of the first build.
    first: Value,
}

fn docqa(args: &[&str]) -> std::process::Output {
    assert_cmd::Command::new(env!("CARGO_BIN_EXE_docqa"))
        .arg("--quiet")
        .args(args)
        .output()
        .unwrap()
}

fn json_of(args: &[&str]) -> Value {
    let out = docqa(args);
    assert!(
        out.status.success(),
        "docqa {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// A valid PDF whose two pages show an image and hold no text operator: what a scanner makes.
fn image_only_pdf() -> Vec<u8> {
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] \
         /Resources << /XObject << /Im0 6 0 R >> >> /Contents 5 0 R >>"
            .to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] \
         /Resources << /XObject << /Im0 6 0 R >> >> /Contents 5 0 R >>"
            .to_string(),
        "<< /Length 29 >>\nstream\nq 612 0 0 792 0 0 cm /Im0 Do Q\nendstream".to_string(),
        "<< /Type /XObject /Subtype /Image /Width 2 /Height 2 /ColorSpace /DeviceGray \
         /BitsPerComponent 8 /Length 4 >>\nstream\n\u{0}\u{7f}\u{7f}\u{0}\nendstream"
            .to_string(),
    ];
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (n, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", n + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

/// A Word file with a title, two headings and [`DOCX_FACT`] under the second.
fn docx() -> Vec<u8> {
    let paragraphs = [
        ("Title", "Waterworks notes"),
        ("Heading1", "Canals"),
        (
            "",
            "The lower canal carries water from the river to the pump stations.",
        ),
        ("Heading1", "Pump stations"),
        ("", DOCX_FACT),
    ];
    let mut body = String::new();
    for (style, text) in paragraphs {
        let ppr = if style.is_empty() {
            String::new()
        } else {
            format!("<w:pPr><w:pStyle w:val=\"{style}\"/></w:pPr>")
        };
        body.push_str(&format!("<w:p>{ppr}<w:r><w:t>{text}</w:t></w:r></w:p>"));
    }
    let document = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
         <w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">\
         <w:body>{body}</w:body></w:document>"
    );
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        let opts = zip::write::SimpleFileOptions::default();
        zip.start_file("[Content_Types].xml", opts).unwrap();
        zip.write_all(b"<?xml version=\"1.0\"?><Types/>").unwrap();
        zip.start_file("word/document.xml", opts).unwrap();
        zip.write_all(document.as_bytes()).unwrap();
        zip.finish().unwrap();
    }
    out.into_inner()
}

/// The corpus folder, indexed once.
fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let corpus = dir.path().join("docs");
        fs::create_dir_all(&corpus).unwrap();
        for (name, source) in PDFS {
            fs::copy(source, corpus.join(name)).unwrap_or_else(|e| {
                panic!(
                    "{source}: {e}: install the test corpus with \
                     `apt-get install asymptote-doc gnuplot-doc` (.ci/run does)"
                )
            });
        }
        fs::write(corpus.join("waterworks.docx"), docx()).unwrap();
        fs::write(corpus.join("scanned.pdf"), image_only_pdf()).unwrap();
        let cad = fs::read(corpus.join("CAD.pdf")).unwrap();
        fs::write(corpus.join("truncated.pdf"), &cad[..cad.len() / 3]).unwrap();
        let index = dir.path().join("docs.docqa");
        let started = Instant::now();
        let first = json_of(&[
            "index",
            corpus.to_str().unwrap(),
            "--index",
            index.to_str().unwrap(),
            "--json",
        ]);
        eprintln!(
            "indexed the document corpus in {:.1} s: {} chunks",
            started.elapsed().as_secs_f64(),
            first["report"]["chunks"]
        );
        Corpus {
            _dir: dir,
            corpus,
            index,
            first,
        }
    })
}

fn names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn bad_files_are_reported_and_the_rest_indexed() {
    let c = corpus();
    let report = &c.first["report"];
    assert_eq!(
        names(&report["embedded_files"]),
        [
            "CAD.pdf",
            "asy-latex.pdf",
            "asymptote.pdf",
            "gnuplot.pdf",
            "waterworks.docx"
        ]
    );
    let skipped: Vec<(String, String)> = report["skipped_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            let path = pair[0].as_str().unwrap();
            let name = Path::new(path).file_name().unwrap().to_string_lossy();
            (name.into_owned(), pair[1].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert_eq!(skipped[0].0, "scanned.pdf");
    assert!(
        skipped[0].1.starts_with("no text layer (2 pages"),
        "{skipped:?}"
    );
    assert_eq!(skipped[1].0, "truncated.pdf");
    assert!(
        skipped[1].1.contains("PDF"),
        "the reason names the parser's complaint: {skipped:?}"
    );
    // The manuals are big: hundreds of pages make well over a thousand chunks.
    assert!(report["chunks"].as_u64().unwrap() > 1000, "{report}");
    assert_eq!(report["parsed_files"], 5);
}

#[test]
fn an_unchanged_pdf_is_not_parsed_again() {
    let c = corpus();
    let again = json_of(&[
        "index",
        c.corpus.to_str().unwrap(),
        "--index",
        c.index.to_str().unwrap(),
        "--json",
    ]);
    let report = &again["report"];
    assert_eq!(report["parsed_files"], 0, "{report}");
    assert_eq!(report["embedded_chunks"], 0, "{report}");
    assert_eq!(names(&report["reused_files"]).len(), 5, "{report}");
}

fn search(question: &str) -> Vec<Value> {
    let c = corpus();
    let v = json_of(&[
        "search",
        question,
        "--corpus",
        c.corpus.to_str().unwrap(),
        "--index",
        c.index.to_str().unwrap(),
        "-k",
        "5",
        "--json",
    ]);
    v["hits"].as_array().unwrap().clone()
}

#[test]
fn search_hits_carry_their_page() {
    let hits = search("Who originally prepared the gnuplot manual?");
    let top = &hits[0];
    assert_eq!(top["file"], "gnuplot.pdf", "{hits:#?}");
    assert_eq!(top["page"], 1, "{top}");
    assert!(top["text"]
        .as_str()
        .unwrap()
        .contains("originally prepared by Dick Crawford"));
    for h in &hits {
        let page = h["page"].as_u64().expect("every PDF hit has a page");
        assert!(page >= 1);
        assert!(h["start"].as_u64() < h["end"].as_u64());
    }

    let hits = search("When was the Lindqvist pump station commissioned?");
    let top = &hits[0];
    assert_eq!(top["file"], "waterworks.docx", "{hits:#?}");
    assert!(top["page"].is_null(), "a Word file has no pages: {top}");
    assert_eq!(top["title"], "Waterworks notes › Pump stations");
    assert!(top["text"]
        .as_str()
        .unwrap()
        .contains("commissioned in 1997"));

    // The text output names the page.
    let c = corpus();
    let out = docqa(&[
        "search",
        "default paper type configuration variable papertype",
        "--corpus",
        c.corpus.to_str().unwrap(),
        "--index",
        c.index.to_str().unwrap(),
        "-k",
        "1",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("asymptote.pdf p. 10 ("), "{text}");
}

/// `ask --json`: the answer holds `fact`, and a citation is `file` on `page`.
fn check_ask(question: &str, fact: &str, file: &str, page: Option<u64>) {
    let c = corpus();
    let v = json_of(&[
        "ask",
        question,
        "--corpus",
        c.corpus.to_str().unwrap(),
        "--index",
        c.index.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(v["abstained"], false, "{question}: {v:#}");
    let answer = v["answer"].as_str().unwrap();
    assert!(
        answer.contains(fact),
        "{question}: {answer:?} lacks {fact:?}"
    );
    let citations = v["citations"].as_array().unwrap();
    assert!(
        citations
            .iter()
            .any(|c| c["file"] == file && c["page"].as_u64() == page),
        "{question}: no citation of {file} page {page:?}: {citations:#?}"
    );
}

#[test]
fn ask_cites_the_file_and_page_of_the_fact() {
    check_ask(
        "Who originally prepared the gnuplot manual?",
        "Dick Crawford",
        "gnuplot.pdf",
        Some(1),
    );
    check_ask(
        "Which paper type does Asymptote assume by default when centering a figure?",
        "letter",
        "asymptote.pdf",
        Some(10),
    );
    check_ask(
        "Since which year has gnuplot been under active development?",
        "1986",
        "gnuplot.pdf",
        Some(21),
    );
    check_ask(
        "When was the Lindqvist pump station commissioned?",
        "1997",
        "waterworks.docx",
        None,
    );
}

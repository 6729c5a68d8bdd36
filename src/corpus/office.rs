//! Zipped-XML documents: Word (`.docx`), OpenDocument text (`.odt`) and EPUB, read with `zip` and
//! `quick-xml`. Paragraphs become paragraphs separated by a blank line; headings become their own
//! paragraphs and open a [`Section`], so chunks carry their heading path as part of their title.
//! Called by the loader inside [`super::isolate`].

use std::collections::HashMap;
use std::io::{Cursor, Read};

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::load::Section;

/// Largest XML part read from an archive: a zip bomb stops here instead of filling memory.
const MAX_PART_BYTES: u64 = 256 << 20;

/// A document's text with its sections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Structured {
    pub text: String,
    pub sections: Vec<Section>,
    /// The document's own title (a `Title`-styled paragraph, the EPUB's `dc:title`).
    pub title: Option<String>,
}

/// Builds [`Structured`] text paragraph by paragraph, keeping the open headings.
#[derive(Default)]
struct Builder {
    out: Structured,
    /// Open headings: (level, text).
    open: Vec<(u8, String)>,
}

impl Builder {
    fn paragraph(&mut self, text: &str) {
        let text = tidy(text);
        if text.is_empty() {
            return;
        }
        if !self.out.text.is_empty() {
            self.out.text.push_str("\n\n");
        }
        self.out.text.push_str(&text);
    }

    /// A heading of `level` (1 = top): starts a section whose path is the open headings above it.
    fn heading(&mut self, level: u8, text: &str) {
        let text = tidy(text).replace('\n', " ");
        if text.is_empty() {
            return;
        }
        self.open.retain(|(l, _)| *l < level);
        self.open.push((level, text.clone()));
        let start = if self.out.text.is_empty() {
            0
        } else {
            self.out.text.len() + 2
        };
        self.paragraph(&text);
        let path: Vec<&str> = self.open.iter().map(|(_, t)| t.as_str()).collect();
        self.out.sections.push(Section {
            start,
            path: path.join(" › "),
        });
    }
}

/// Collapses runs of spaces and trims each line; line breaks inside a paragraph stay.
fn tidy(text: &str) -> String {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn open_zip<'a>(bytes: &'a [u8], kind: &str) -> Result<zip::ZipArchive<Cursor<&'a [u8]>>, String> {
    // Password-protected Office files are OLE compound files, not zips.
    if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        return Err(format!(
            "not a {kind} zip: an OLE compound file (a password-protected or legacy Office file)"
        ));
    }
    zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| format!("not a readable {kind}: {e}"))
}

fn read_part(
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
    kind: &str,
) -> Result<String, String> {
    let file = zip
        .by_name(name)
        .map_err(|e| format!("not a readable {kind}: {name}: {e}"))?;
    let mut text = String::new();
    file.take(MAX_PART_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| format!("not a readable {kind}: {name}: {e}"))?;
    Ok(text)
}

fn xml_error(kind: &str, part: &str, e: impl std::fmt::Display) -> String {
    format!("not a readable {kind}: {part}: {e}")
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.try_get_attribute(name).ok().flatten().and_then(|a| {
        a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .ok()
            .map(|v| v.into_owned())
    })
}

/// The text of a general entity reference (`&amp;`, `&#8217;`).
fn entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix('x') {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

/// Heading level of a Word paragraph style: `Heading2` / `heading 2` -> 2, `Title` -> 0.
fn word_heading_level(style: &str) -> Option<u8> {
    let lower = style.to_ascii_lowercase().replace(' ', "");
    if lower == "title" {
        return Some(0);
    }
    let digits = lower.strip_prefix("heading")?;
    digits.parse::<u8>().ok().filter(|&l| (1..=9).contains(&l))
}

/// Style ids of `styles.xml` whose name is a heading (`heading 1`) or the title, with the level;
/// ids are often localised (`berschrift1`) while names are not.
fn word_heading_styles(styles_xml: &str) -> HashMap<String, u8> {
    let mut levels = HashMap::new();
    let mut reader = Reader::from_str(styles_xml);
    let mut current: Option<String> = None;
    while let Ok(event) = reader.read_event() {
        match event {
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                "style" => current = attr(&e, "w:styleId"),
                "name" => {
                    if let (Some(id), Some(name)) = (&current, attr(&e, "w:val")) {
                        if let Some(level) = word_heading_level(&name) {
                            levels.insert(id.clone(), level);
                        }
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    levels
}

/// A Word document's body text, headings as sections.
pub(crate) fn docx(bytes: &[u8]) -> Result<Structured, String> {
    let mut zip = open_zip(bytes, "DOCX")?;
    let body = read_part(&mut zip, "word/document.xml", "DOCX")?;
    let styles = read_part(&mut zip, "word/styles.xml", "DOCX")
        .map(|s| word_heading_styles(&s))
        .unwrap_or_default();
    let mut b = Builder::default();
    let mut reader = Reader::from_str(&body);
    let mut para = String::new();
    let mut level: Option<u8> = None;
    let mut in_text = false;
    let mut depth_in_p = 0usize;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| xml_error("DOCX", "word/document.xml", e))?;
        match event {
            Event::Start(e) => match e.local_name().as_ref() {
                "p" => {
                    depth_in_p += 1;
                    para.clear();
                    level = None;
                }
                "t" => in_text = true,
                _ => {}
            },
            Event::Empty(e) => match e.local_name().as_ref() {
                "pStyle" => {
                    let style = attr(&e, "w:val").unwrap_or_default();
                    level = styles
                        .get(&style)
                        .copied()
                        .or_else(|| word_heading_level(&style));
                }
                "outlineLvl" => {
                    if let Some(l) = attr(&e, "w:val").and_then(|v| v.parse::<u8>().ok()) {
                        level = level.or(Some(l + 1));
                    }
                }
                "tab" => para.push(' '),
                "br" | "cr" => para.push('\n'),
                _ => {}
            },
            Event::Text(t) if in_text => para.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if in_text => para.extend(entity(&r.xml10_content())),
            Event::End(e) => match e.local_name().as_ref() {
                "t" => in_text = false,
                "p" => {
                    depth_in_p = depth_in_p.saturating_sub(1);
                    match level {
                        Some(0) => {
                            let title = tidy(&para).replace('\n', " ");
                            if b.out.title.is_none() && !title.is_empty() {
                                b.out.title = Some(title);
                            } else {
                                b.paragraph(&para);
                            }
                        }
                        Some(l) => b.heading(l, &para),
                        None => b.paragraph(&para),
                    }
                    para.clear();
                    level = None;
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(b.out)
}

/// An OpenDocument text's body, `text:h` headings as sections.
pub(crate) fn odt(bytes: &[u8]) -> Result<Structured, String> {
    let mut zip = open_zip(bytes, "ODT")?;
    let body = read_part(&mut zip, "content.xml", "ODT")?;
    let mut b = Builder::default();
    let mut reader = Reader::from_str(&body);
    // Open paragraphs and headings (a note's paragraph may sit inside a paragraph).
    let mut stack: Vec<(Option<u8>, String)> = Vec::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| xml_error("ODT", "content.xml", e))?;
        match event {
            Event::Start(e) => match e.local_name().as_ref() {
                "p" => stack.push((None, String::new())),
                "h" => {
                    let level = attr(&e, "text:outline-level")
                        .and_then(|l| l.parse::<u8>().ok())
                        .unwrap_or(1);
                    stack.push((Some(level.max(1)), String::new()));
                }
                _ => {}
            },
            Event::Empty(e) => {
                if let Some((_, text)) = stack.last_mut() {
                    match e.local_name().as_ref() {
                        "s" => {
                            let n = attr(&e, "text:c")
                                .and_then(|c| c.parse::<usize>().ok())
                                .unwrap_or(1);
                            text.push_str(&" ".repeat(n.min(64)));
                        }
                        "tab" => text.push(' '),
                        "line-break" => text.push('\n'),
                        _ => {}
                    }
                }
            }
            Event::Text(t) => {
                if let Some((_, text)) = stack.last_mut() {
                    text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                if let Some((_, text)) = stack.last_mut() {
                    text.extend(entity(&r.xml10_content()));
                }
            }
            Event::End(e) if matches!(e.local_name().as_ref(), "p" | "h") => {
                if let Some((level, text)) = stack.pop() {
                    match level {
                        Some(l) => b.heading(l, &text),
                        None => b.paragraph(&text),
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(b.out)
}

/// An EPUB's chapters in reading (spine) order, each chapter's `<title>` (when it has one) as
/// its section; the visible text of each chapter through the HTML extractor.
pub(crate) fn epub(bytes: &[u8]) -> Result<Structured, String> {
    let mut zip = open_zip(bytes, "EPUB")?;
    let container = read_part(&mut zip, "META-INF/container.xml", "EPUB")?;
    let mut opf_path = None;
    let mut reader = Reader::from_str(&container);
    loop {
        match reader
            .read_event()
            .map_err(|e| xml_error("EPUB", "META-INF/container.xml", e))?
        {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == "rootfile" => {
                opf_path = attr(&e, "full-path");
                break;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let opf_path = opf_path.ok_or("not a readable EPUB: no rootfile in META-INF/container.xml")?;
    let opf = read_part(&mut zip, &opf_path, "EPUB")?;
    let base = opf_path.rsplit_once('/').map_or("", |(dir, _)| dir);
    let mut manifest: HashMap<String, String> = HashMap::new();
    let mut spine: Vec<String> = Vec::new();
    let mut title: Option<String> = None;
    let mut in_title = false;
    let mut reader = Reader::from_str(&opf);
    loop {
        match reader
            .read_event()
            .map_err(|e| xml_error("EPUB", &opf_path, e))?
        {
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                "item" => {
                    if let (Some(id), Some(href)) = (attr(&e, "id"), attr(&e, "href")) {
                        manifest.insert(id, href);
                    }
                }
                "itemref" => spine.extend(attr(&e, "idref")),
                "title" => in_title = title.is_none(),
                _ => {}
            },
            Event::Text(t) if in_title => {
                title = Some(tidy(&t.xml10_content())).filter(|t| !t.is_empty());
                in_title = false;
            }
            Event::End(_) => in_title = false,
            Event::Eof => break,
            _ => {}
        }
    }
    let mut b = Builder {
        out: Structured {
            title,
            ..Structured::default()
        },
        ..Builder::default()
    };
    for idref in &spine {
        let Some(href) = manifest.get(idref) else {
            continue;
        };
        let href = href.split('#').next().unwrap_or(href);
        let name = if base.is_empty() {
            href.to_string()
        } else {
            format!("{base}/{href}")
        };
        let Ok(chapter) = read_part(&mut zip, &name, "EPUB") else {
            tracing::debug!("EPUB chapter {name} missing; skipped");
            continue;
        };
        let page = super::html::extract(&chapter);
        match page.title.filter(|t| !t.trim().is_empty()) {
            Some(t) if b.out.title.as_deref() != Some(t.trim()) => {
                b.heading(1, &t);
                b.paragraph(&page.text);
            }
            _ => b.paragraph(&page.text),
        }
    }
    Ok(b.out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// A minimal DOCX: a title, headings and paragraphs (`("Heading1", text)`, `("", text)`).
    pub(crate) fn make_docx(paragraphs: &[(&str, &str)]) -> Vec<u8> {
        let mut body = String::new();
        for (style, text) in paragraphs {
            let ppr = if style.is_empty() {
                String::new()
            } else {
                format!("<w:pPr><w:pStyle w:val=\"{style}\"/></w:pPr>")
            };
            body.push_str(&format!(
                "<w:p>{ppr}<w:r><w:t xml:space=\"preserve\">{text}</w:t></w:r></w:p>"
            ));
        }
        let document = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
             <w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">\
             <w:body>{body}</w:body></w:document>"
        );
        let mut out = Cursor::new(Vec::new());
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

    #[test]
    fn docx_headings_become_sections() {
        let bytes = make_docx(&[
            ("Title", "Field Guide"),
            ("Heading1", "Rivers"),
            ("", "The Rhine flows north &amp; west."),
            ("Heading2", "Tributaries"),
            ("", "The Main joins at Mainz."),
            ("Heading1", "Lakes"),
            ("", "Lake Constance is large."),
        ]);
        let s = docx(&bytes).unwrap();
        assert_eq!(s.title.as_deref(), Some("Field Guide"));
        assert_eq!(
            s.text,
            "Rivers\n\nThe Rhine flows north & west.\n\nTributaries\n\nThe Main joins at \
             Mainz.\n\nLakes\n\nLake Constance is large."
        );
        let paths: Vec<(&str, usize)> = s
            .sections
            .iter()
            .map(|x| (x.path.as_str(), x.start))
            .collect();
        assert_eq!(
            paths,
            [
                ("Rivers", 0),
                ("Rivers › Tributaries", s.text.find("Tributaries").unwrap()),
                ("Lakes", s.text.find("Lakes").unwrap()),
            ]
        );
    }

    #[test]
    fn damaged_archives_say_what_they_are() {
        let why = docx(b"PK\x03\x04 truncated").unwrap_err();
        assert!(why.starts_with("not a readable DOCX"), "{why}");
        let why = docx(&[0xD0, 0xCF, 0x11, 0xE0, 0, 0]).unwrap_err();
        assert!(why.contains("password-protected"), "{why}");
        let bytes = make_docx(&[("", "x")]);
        let why = odt(&bytes).unwrap_err();
        assert!(why.contains("content.xml"), "{why}");
    }

    #[test]
    fn odt_text_and_headings() {
        let content = "<?xml version=\"1.0\"?><office:document-content \
            xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" \
            xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\"><office:body><office:text>\
            <text:h text:outline-level=\"1\">Setup</text:h>\
            <text:p>Run<text:s text:c=\"2\"/>the <text:span>installer</text:span>.</text:p>\
            </office:text></office:body></office:document-content>";
        let mut out = Cursor::new(Vec::new());
        {
            let mut zip = zip::ZipWriter::new(&mut out);
            let opts = zip::write::SimpleFileOptions::default();
            zip.start_file("content.xml", opts).unwrap();
            zip.write_all(content.as_bytes()).unwrap();
            zip.finish().unwrap();
        }
        let s = odt(&out.into_inner()).unwrap();
        assert_eq!(s.text, "Setup\n\nRun the installer.");
        assert_eq!(s.sections[0].path, "Setup");
    }
}

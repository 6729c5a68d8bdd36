//! PDF text layers, page by page, through `pdf-extract` (on `lopdf`); why this crate:
//! docs/decisions.md, "PDF text extraction". Called by the loader, inside the isolation of
//! [`super::isolate`], since a parser can panic or loop on a hostile file.

use pdf_extract::{output_doc_page, Document as PdfDocument, PlainTextOutput};

/// Each page's text as the crate lays it out (lines in reading order, a blank line between
/// paragraphs), or the reason the file cannot be read. A page whose content stream fails to
/// parse is kept as an empty page, so later pages keep their numbers.
pub(crate) fn extract_pages(bytes: &[u8]) -> Result<Vec<String>, String> {
    let mut doc = PdfDocument::load_mem(bytes).map_err(|e| format!("not a readable PDF: {e}"))?;
    if doc.is_encrypted() {
        // Many PDFs are encrypted with an empty user password only to restrict printing;
        // those read fine. Anything else needs a password docqa does not have.
        doc.decrypt("")
            .map_err(|e| format!("encrypted PDF (needs a password): {e}"))?;
    }
    let count = doc.get_pages().len();
    if count == 0 {
        return Err("PDF has no pages".to_string());
    }
    let mut pages = Vec::with_capacity(count);
    let mut failed = 0;
    let mut last_error = String::new();
    for number in 1..=count as u32 {
        let mut text = String::new();
        let result = {
            let mut out = PlainTextOutput::new(&mut text);
            output_doc_page(&doc, &mut out, number)
        };
        match result {
            Ok(()) => pages.push(text),
            Err(e) => {
                failed += 1;
                last_error = e.to_string();
                pages.push(String::new());
            }
        }
    }
    if failed == count {
        return Err(format!("no page of the PDF could be read: {last_error}"));
    }
    if failed > 0 {
        tracing::debug!("{failed} of {count} PDF pages unreadable: {last_error}");
    }
    Ok(pages)
}

/// The document's title from its Info dictionary, when it has a readable, non-blank one.
/// Parses the file a second time, but only its trailer and one dictionary.
pub(crate) fn metadata_title(bytes: &[u8]) -> Option<String> {
    let doc = PdfDocument::load_mem(bytes).ok()?;
    let info = doc.trailer.get(b"Info").ok()?;
    let info = match info {
        pdf_extract::Object::Reference(id) => doc.get_object(*id).ok()?,
        other => other,
    };
    let raw = info.as_dict().ok()?.get(b"Title").ok()?.as_str().ok()?;
    let title = decode_text_string(raw);
    let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
    (!title.is_empty()).then_some(title)
}

/// A PDF text string: UTF-16BE when it starts with a byte-order mark, else PDFDocEncoding,
/// read as Latin-1 (they differ only in rarely used punctuation).
fn decode_text_string(raw: &[u8]) -> String {
    if let Some(utf16) = raw.strip_prefix(&[0xFE, 0xFF]) {
        let units: Vec<u16> = utf16
            .chunks_exact(2)
            .map(|p| u16::from_be_bytes([p[0], p[1]]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    raw.iter().map(|&b| char::from(b)).collect()
}

/// Whether the pages hold no text worth indexing: a scanned or image-only PDF.
pub(crate) fn has_no_text_layer(pages: &[String]) -> bool {
    let letters: usize = pages
        .iter()
        .map(|p| p.chars().filter(|c| c.is_alphanumeric()).count())
        .sum();
    // A stray page number or scanner stamp is not a text layer.
    letters < 16.max(pages.len())
}

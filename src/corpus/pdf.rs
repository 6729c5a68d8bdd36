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

/// Whether the pages hold no text worth indexing: a scanned or image-only PDF.
pub(crate) fn has_no_text_layer(pages: &[String]) -> bool {
    let letters: usize = pages
        .iter()
        .map(|p| p.chars().filter(|c| c.is_alphanumeric()).count())
        .sum();
    // A stray page number or scanner stamp is not a text layer.
    letters < 16.max(pages.len())
}

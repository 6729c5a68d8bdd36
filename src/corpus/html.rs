//! Visible text of an HTML page, for the loader: drops scripts, styles and page chrome
//! (`nav`, `header`, `footer`, `aside`, `form`, hidden elements) and lays out block elements as
//! paragraphs separated by blank lines, so the text cleaner and chunker treat it like a `.txt`.

use scraper::{Html, Node, Selector};

use super::text::collapse_whitespace;

/// Text pulled out of an HTML page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtmlText {
    /// The `<title>`, whitespace collapsed; `None` when absent or blank.
    pub title: Option<String>,
    /// Visible text: one paragraph per block element, blank lines between paragraphs, `<br>` as a
    /// line break, `<pre>` verbatim.
    pub text: String,
}

/// Elements whose content is never shown as article text.
const SKIPPED: &[&str] = &[
    "head", "script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form",
    "iframe", "svg", "canvas", "object", "embed", "select", "button", "textarea", "dialog", "menu",
];

/// ARIA landmarks that mark the same chrome on sites built from `div`s.
const SKIPPED_ROLES: &[&str] = &[
    "navigation",
    "banner",
    "contentinfo",
    "complementary",
    "search",
    "menu",
    "menubar",
    "dialog",
];

/// Elements that start and end a paragraph.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "blockquote",
    "body",
    "dd",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "li",
    "main",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "tbody",
    "thead",
    "tfoot",
    "tr",
    "ul",
    "caption",
    "details",
    "summary",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Break {
    None,
    Space,
    Line,
    Paragraph,
}

struct Writer {
    out: String,
    pending: Break,
}

impl Writer {
    fn request(&mut self, brk: Break) {
        self.pending = self.pending.max(brk);
    }

    fn flush_break(&mut self) {
        if !self.out.is_empty() {
            match self.pending {
                Break::None => {}
                Break::Space => {
                    if !self.out.ends_with([' ', '\n']) {
                        self.out.push(' ');
                    }
                }
                Break::Line => {
                    trim_end_in_place(&mut self.out);
                    self.out.push('\n');
                }
                Break::Paragraph => {
                    trim_end_in_place(&mut self.out);
                    self.out.push_str("\n\n");
                }
            }
        }
        self.pending = Break::None;
    }

    /// Appends inline text with HTML whitespace rules: runs of whitespace are one space.
    fn inline(&mut self, text: &str) {
        let starts_space = text.starts_with(char::is_whitespace);
        let ends_space = text.ends_with(char::is_whitespace);
        let collapsed = collapse_whitespace(text);
        if collapsed.is_empty() {
            if starts_space || ends_space {
                self.request(Break::Space);
            }
            return;
        }
        if starts_space {
            self.request(Break::Space);
        }
        self.flush_break();
        self.out.push_str(&collapsed);
        if ends_space {
            self.request(Break::Space);
        }
    }

    fn verbatim(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.flush_break();
        self.out.push_str(text);
    }
}

fn trim_end_in_place(s: &mut String) {
    let kept = s.trim_end_matches([' ', '\t']).len();
    s.truncate(kept);
}

/// Extracts the title and visible text of an HTML document.
pub fn extract(html: &str) -> HtmlText {
    let doc = Html::parse_document(html);
    let title_selector = Selector::parse("title").expect("`title` is a valid selector");
    let title = doc
        .select(&title_selector)
        .next()
        .map(|t| collapse_whitespace(&t.text().collect::<String>()))
        .filter(|t| !t.is_empty());

    let mut w = Writer {
        out: String::new(),
        pending: Break::None,
    };
    // An explicit stack rather than recursion: deeply nested markup cannot overflow the stack.
    // `true` marks an element being closed after its children.
    let mut stack = vec![(doc.tree.root(), false)];
    let mut pre_depth = 0usize;
    while let Some((node, closing)) = stack.pop() {
        if closing {
            if let Node::Element(el) = node.value() {
                let name = el.name();
                if name == "pre" {
                    pre_depth -= 1;
                }
                if BLOCKS.contains(&name) {
                    w.request(Break::Paragraph);
                }
            }
            continue;
        }
        let descend = match node.value() {
            Node::Text(text) => {
                if pre_depth > 0 {
                    w.verbatim(text);
                } else {
                    w.inline(text);
                }
                false
            }
            Node::Element(el) => {
                let name = el.name();
                let hidden = el.attr("hidden").is_some()
                    || el.attr("aria-hidden") == Some("true")
                    || el.attr("role").is_some_and(|r| SKIPPED_ROLES.contains(&r));
                let shown = !(SKIPPED.contains(&name) || hidden);
                if shown {
                    match name {
                        "br" => w.request(Break::Line),
                        "td" | "th" => w.request(Break::Space),
                        "pre" => pre_depth += 1,
                        _ => {}
                    }
                    if BLOCKS.contains(&name) {
                        w.request(Break::Paragraph);
                    }
                }
                shown
            }
            Node::Document | Node::Fragment => true,
            _ => false,
        };
        if descend {
            stack.push((node, true));
            let children: Vec<_> = node.children().collect();
            stack.extend(children.into_iter().rev().map(|child| (child, false)));
        }
    }
    trim_end_in_place(&mut w.out);
    let text = w.out.trim_end().to_string();
    HtmlText { title, text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_article_text_and_drops_chrome() {
        let html = r#"<!doctype html><html><head><title> Rhine  plan | Example Daily </title>
            <style>p { color: red }</style><script>var x = "hidden";</script></head>
            <body>
              <header><a href="/">Example Daily</a></header>
              <nav><ul><li>World</li><li>Business</li></ul></nav>
              <div role="navigation">Sections</div>
              <article>
                <h1>Ministers agree on river plan</h1>
                <p>The ministers   agreed on <b>Monday</b> to clean up
                   the Rhine.</p>
                <p>Costs are shared.<br>Critics object.</p>
                <pre>line 1
  line 2</pre>
                <span hidden>secret</span>
              </article>
              <aside>Most read</aside>
              <form><input name="q">Search</form>
              <footer>&copy; 2024 Example Daily</footer>
            </body></html>"#;
        let got = extract(html);
        assert_eq!(got.title.as_deref(), Some("Rhine plan | Example Daily"));
        assert_eq!(
            got.text,
            "Ministers agree on river plan\n\n\
             The ministers agreed on Monday to clean up the Rhine.\n\n\
             Costs are shared.\nCritics object.\n\n\
             line 1\n  line 2"
        );
    }

    #[test]
    fn page_without_title_or_body_text() {
        let got = extract("<html><body><script>x()</script></body></html>");
        assert_eq!(
            got,
            HtmlText {
                title: None,
                text: String::new()
            }
        );
    }
}

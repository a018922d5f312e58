//! Escapes text for a Markdown document (CommonMark/GFM): every data value a Markdown report
//! shows passes `escape`, so a value never renders as HTML, an image, a link, emphasis, a
//! heading or an extra table cell. Uses nothing but `std`.

/// ASCII punctuation that starts or ends Markdown syntax anywhere in a line, escaped with a
/// backslash (CommonMark allows a backslash before any ASCII punctuation).
const BACKSLASHED: &[char] = &[
    '\\', '`', '*', '_', '{', '}', '[', ']', '(', ')', '#', '!', '|', '~', '@', '.', '$',
];

/// `text` as Markdown that renders as that text, on one line, safe in a table cell:
/// `& < >` become entities (no HTML), Markdown punctuation is backslash-escaped (no links,
/// images, emphasis, code spans, autolinks or cell breaks), `:` before `/` is escaped (no
/// `http://` autolink), line breaks become spaces and other control characters U+FFFD.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            ':' if chars.peek() == Some(&'/') => out.push_str("\\:"),
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => out.push('\u{FFFD}'),
            c if BACKSLASHED.contains(&c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn html_images_links_and_cells_are_escaped() {
        let e = escape("<img src=x onerror=alert(1)>");
        assert!(!e.contains('<') && !e.contains('>'), "{e}");
        let e = escape("![t](http://evil/x.png) [link](https://evil) a|b `code` *em* _em_");
        assert!(!e.contains("!["), "{e}");
        assert!(!e.contains("]("), "{e}");
        assert!(!e.contains("http://") && !e.contains("https://"), "{e}");
        assert_eq!(e.matches('|').count(), e.matches("\\|").count(), "{e}");
        assert!(
            !e.contains(" `") && !e.contains(" *e") && !e.contains(" _e"),
            "{e}"
        );
        assert_eq!(
            escape("# head\nline\r\u{1b}[2J"),
            "\\# head line \u{FFFD}\\[2J"
        );
        assert_eq!(escape("plain text, 12"), "plain text, 12");
    }
}

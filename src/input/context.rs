//! A row's context: what names the user and the tenant besides their GUIDs (the
//! `user_principal_name` and `customer_domain` columns, the columns named in `--keep-columns`,
//! and with `--fields` the field columns not sent). It is never sent; it is carried into the
//! results, audit and secrets files and the reports. Cells are read leniently (a context cell
//! never makes a row invalid): lossy UTF-8, control and invisible characters replaced, shortened.
//! Uses only `core` (its text helpers and the redaction point).

use std::sync::Arc;

/// The longest context value kept, in characters.
const MAX_CHARS: usize = 256;

/// What names a row's user and tenant besides the GUIDs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// The `user_principal_name` cell: the user's current UPN (a label, never sent).
    pub upn: String,
    /// The `customer_domain` cell.
    pub customer_domain: String,
    /// Other columns kept: (the header's name, the cell), in header order; empty cells left out.
    pub kept: Vec<(Arc<str>, String)>,
}

impl Context {
    /// The kept columns as one cell: a JSON object (`{"department":"Sales"}`), empty when none.
    pub fn kept_cell(&self) -> String {
        if self.kept.is_empty() {
            return String::new();
        }
        let map: serde_json::Map<String, serde_json::Value> = self
            .kept
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone())))
            .collect();
        serde_json::Value::Object(map).to_string()
    }

    /// Every value, for the one redaction every record passes.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut String> {
        [&mut self.upn, &mut self.customer_domain]
            .into_iter()
            .chain(self.kept.iter_mut().map(|(_, v)| v))
    }
}

/// A context cell as text: trimmed, lossy UTF-8, control and invisible characters replaced by
/// U+FFFD, at most `MAX_CHARS` characters, redacted (a token pasted into a kept column).
pub fn clean(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let cleaned: String = text
        .trim()
        .chars()
        .map(|c| {
            if c.is_control() || crate::core::text::is_invisible(c) {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect();
    let short = crate::core::text::shorten(&cleaned, MAX_CHARS);
    crate::core::redact::redact(&short).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_cleaned_and_kept_columns_are_one_json_object() {
        assert_eq!(clean(b"  a\x07b\xFF \r"), "a\u{FFFD}b\u{FFFD}");
        assert_eq!(clean("x\u{200B}y".as_bytes()), "x\u{FFFD}y");
        assert!(!clean(b"Bearer eyJhbGciOi.secret").contains("secret"));
        let c = Context {
            kept: vec![(Arc::from("Dept"), "Sales \"EU\"".into())],
            ..Context::default()
        };
        assert_eq!(c.kept_cell(), r#"{"Dept":"Sales \"EU\""}"#);
        assert_eq!(Context::default().kept_cell(), "");
    }
}

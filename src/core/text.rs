//! Text helpers for messages: shortening on a character boundary, error codes as the tool keeps
//! them. Uses only `core::redact`.

/// Shortens a value for a message, on a character boundary.
pub fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max_chars).collect();
        s.push('…');
        s
    }
}

/// Longest error code kept from a server's answer or a results file.
pub const MAX_ERROR_CODE: usize = 64;

/// An API's error code as the tool keeps it (`60002`, `Request_ResourceNotFound`): 1 to 64
/// ASCII letters, digits, `_`, `-` or `.`. Anything else is no code (it could not go into a
/// results cell or a report unescaped), and so is a code that holds a secret (a password the
/// server echoed).
pub fn error_code(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let ok = !raw.is_empty()
        && raw.len() <= MAX_ERROR_CODE
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && crate::core::redact::redact(raw) == raw;
    ok.then(|| raw.to_string())
}

/// Characters that cannot be seen but make a value differ (pasted from web pages and Word).
pub fn is_invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}')
}

#[cfg(test)]
mod error_code_tests {
    #[test]
    fn codes_are_short_plain_tokens() {
        assert_eq!(super::error_code(" 60002 ").as_deref(), Some("60002"));
        assert_eq!(
            super::error_code("Request_ResourceNotFound").as_deref(),
            Some("Request_ResourceNotFound")
        );
        for bad in ["", "a b", "=cmd", "<b>", "x\ny", &"9".repeat(65)] {
            assert_eq!(super::error_code(bad), None, "{bad:?}");
        }
        let password = secrecy::SecretString::from("Echoed_Pw-123".to_string());
        let _held = crate::core::redact::hold(Some(&password));
        assert_eq!(
            super::error_code("Echoed_Pw-123"),
            None,
            "a secret is no code"
        );
    }
}

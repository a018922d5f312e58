//! Text helpers for messages: shortening on a character boundary. Uses no other module of the crate.

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

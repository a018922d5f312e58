//! The one redaction point: every piece of server- or input-derived text passes [`redact`]
//! (or [`redact_with`]) before it reaches an output, and [`for_terminal`] before a terminal.
//!
//! It owns a process-wide registry of the secrets the run holds: long-lived ones (access and
//! refresh tokens, client secret, proxy passwords), registered where they are read or received,
//! and row passwords, registered only while their row is in flight ([`hold`] returns a guard).
//! Memory is thus bounded by the long-lived cap plus the rows in flight, never by the row
//! count. Each known secret is removed in every form a server or log would use (raw,
//! JSON-escaped, percent- or form-encoded, HTML-escaped, and inside base64 such as a Basic
//! `user:password`); independently of known values, the values after `Bearer `,
//! `access_token`, `refresh_token`, `client_secret` and `"password":` are cut, and URLs keep
//! their user but lose the password. Uses only std.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

/// What a removed secret is replaced with.
pub const REDACTED: &str = "<redacted>";
/// Known secrets shorter than this (in characters) are not searched for by value: "abc"
/// would turn every "abc" of every message into `<redacted>` and tell a reader the secret.
/// Passwords are longer anyway (validation asks for 8 or more); short tokens are still cut
/// by the key patterns (`Bearer `, `access_token=`...).
pub const MIN_SECRET_CHARS: usize = 4;
/// Long-lived secrets kept at most (the oldest go first): tokens rotate about hourly, so this
/// covers any realistic run while bounding memory if a token endpoint rotates on every call.
const MAX_LONG_LIVED: usize = 64;

struct Registry {
    long_lived: VecDeque<Box<[char]>>,
    rows: Vec<(u64, Box<[char]>)>,
}

static REGISTRY: RwLock<Registry> = RwLock::new(Registry {
    long_lived: VecDeque::new(),
    rows: Vec::new(),
});
static NEXT_ROW: AtomicU64 = AtomicU64::new(1);

fn searchable(secret: &str) -> Option<Box<[char]>> {
    let chars: Box<[char]> = secret.chars().collect();
    (chars.len() >= MIN_SECRET_CHARS).then_some(chars)
}

/// Registers a secret that lives for the whole run (a token, a client secret, a proxy password).
pub fn register(secret: &str) {
    let Some(chars) = searchable(secret) else {
        return;
    };
    let Ok(mut registry) = REGISTRY.write() else {
        return;
    };
    if registry.long_lived.contains(&chars) {
        return;
    }
    if registry.long_lived.len() >= MAX_LONG_LIVED {
        registry.long_lived.pop_front();
    }
    registry.long_lived.push_back(chars);
}

/// Registers the password (raw and percent-decoded) of each proxy URL in `HTTPS_PROXY`,
/// `HTTP_PROXY` and `ALL_PROXY` (either case).
pub fn register_proxy_passwords() {
    for name in ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"] {
        for name in [name.to_string(), name.to_ascii_lowercase()] {
            let Some(url) = std::env::var_os(&name) else {
                continue;
            };
            if let Some(password) = url_password(&url.to_string_lossy()) {
                register(&password);
                register(&percent_decode(&password));
            }
        }
    }
}

/// Registers the password (raw and percent-decoded) of a URL the user gave (`--base-url`,
/// `token_url`): `http://user:password@host` puts it in every connection's log line.
pub fn register_url_password(url: &str) {
    if let Some(password) = url_password(url) {
        register(&password);
        register(&percent_decode(&password));
    }
}

/// The password of `scheme://user:password@host...`, if the URL has one.
fn url_password(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    Some(password.to_string())
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A row password registered while its row is in flight; dropping it forgets the password.
#[must_use = "the password is forgotten when the guard is dropped"]
pub struct RowGuard(Option<u64>);

/// Registers a row's password (if any) until the returned guard is dropped.
pub fn hold(password: Option<&secrecy::SecretString>) -> RowGuard {
    use secrecy::ExposeSecret;
    let Some(chars) = password.and_then(|p| searchable(p.expose_secret())) else {
        return RowGuard(None);
    };
    let id = NEXT_ROW.fetch_add(1, Ordering::Relaxed);
    match REGISTRY.write() {
        Ok(mut registry) => {
            registry.rows.push((id, chars));
            RowGuard(Some(id))
        }
        Err(_) => RowGuard(None),
    }
}

impl Drop for RowGuard {
    fn drop(&mut self) {
        if let (Some(id), Ok(mut registry)) = (self.0, REGISTRY.write()) {
            registry.rows.retain(|(i, _)| *i != id);
        }
    }
}

/// `text` without any registered secret (in any encoding) and with the key patterns cut.
pub fn redact(text: &str) -> Cow<'_, str> {
    redact_with(text, &[])
}

/// Like [`redact`], also removing `extra` secrets (a row's password where its record is made).
pub fn redact_with<'a>(text: &'a str, extra: &[&str]) -> Cow<'a, str> {
    if text.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut ranges = Vec::new();
    {
        let registry = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
        let extra: Vec<Box<[char]>> = extra.iter().filter_map(|s| searchable(s)).collect();
        let secrets: Vec<&[char]> = registry
            .long_lived
            .iter()
            .chain(registry.rows.iter().map(|(_, s)| s))
            .chain(extra.iter())
            .map(|s| &**s)
            .collect();
        if !secrets.is_empty() {
            known_values(text, &secrets, &mut ranges);
            base64_runs(text, &secrets, &mut ranges);
        }
    }
    patterns::cut(text, &mut ranges);
    replace(text, ranges)
}

/// Replaces each range by [`REDACTED`], merging overlaps. A range that starts right after an
/// escaping backslash takes the backslash too, so that JSON text stays valid JSON.
fn replace(text: &str, mut ranges: Vec<(usize, usize)>) -> Cow<'_, str> {
    if ranges.is_empty() {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    for r in &mut ranges {
        let slashes = bytes[..r.0]
            .iter()
            .rev()
            .take_while(|b| **b == b'\\')
            .count();
        if slashes % 2 == 1 {
            r.0 -= 1;
        }
    }
    ranges.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in ranges {
        if end <= at {
            continue;
        }
        if start >= at {
            out.push_str(&text[at..start]);
            out.push_str(REDACTED);
        }
        at = end;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

/// Ranges where a known secret appears, each character in any of its encodings.
fn known_values(text: &str, secrets: &[&[char]], ranges: &mut Vec<(usize, usize)>) {
    let bytes = text.as_bytes();
    let mut starts = [false; 256];
    for s in secrets {
        let mut first = [0; 4];
        starts[s[0].encode_utf8(&mut first).as_bytes()[0] as usize] = true;
    }
    for b in [b'%', b'\\', b'&', b'+'] {
        starts[b as usize] = true;
    }
    for pos in 0..bytes.len() {
        if !starts[bytes[pos] as usize] || !text.is_char_boundary(pos) {
            continue;
        }
        let longest = secrets.iter().filter_map(|s| match_at(bytes, pos, s)).max();
        if let Some(end) = longest {
            ranges.push((pos, end));
        }
    }
}

/// Where a match of `secret` starting at `pos` ends (the longest), if there is one. Tracks
/// every text position reachable after each character, so mixed encodings match and no
/// backtracking can explode.
fn match_at(bytes: &[u8], pos: usize, secret: &[char]) -> Option<usize> {
    let mut reach = vec![pos];
    let mut next = Vec::new();
    for &c in secret {
        next.clear();
        for &at in &reach {
            forms_at(bytes, at, c, &mut next);
        }
        if next.is_empty() {
            return None;
        }
        next.sort_unstable();
        next.dedup();
        std::mem::swap(&mut reach, &mut next);
    }
    reach.into_iter().max()
}

/// Pushes the end of each encoding of `c` found at `at`.
fn forms_at(bytes: &[u8], at: usize, c: char, ends: &mut Vec<usize>) {
    let rest = &bytes[at.min(bytes.len())..];
    let mut buf = [0; 4];
    let raw = c.encode_utf8(&mut buf).as_bytes();
    if rest.starts_with(raw) {
        ends.push(at + raw.len());
    }
    match rest.first() {
        Some(b'+') if c == ' ' => ends.push(at + 1),
        Some(b'%') => {
            // Every byte of the character as %XX (either case).
            let mut i = 0;
            for b in raw {
                match rest.get(i..i + 3) {
                    Some([b'%', h, l]) if hex_pair(*h, *l) == Some(*b) => i += 3,
                    _ => return,
                }
            }
            ends.push(at + i);
        }
        Some(b'\\') => json_escape(rest, c)
            .into_iter()
            .for_each(|n| ends.push(at + n)),
        Some(b'&') => {
            if let Some(n) = html_escape(rest, c) {
                ends.push(at + n);
            }
        }
        _ => {}
    }
}

fn hex_pair(h: u8, l: u8) -> Option<u8> {
    let d = |x: u8| (x as char).to_digit(16);
    Some((d(h)? * 16 + d(l)?) as u8)
}

/// The length of a JSON escape of `c` at the start of `rest`, if there is one.
fn json_escape(rest: &[u8], c: char) -> Option<usize> {
    let short = match c {
        '"' => Some(b'"'),
        '\\' => Some(b'\\'),
        '/' => Some(b'/'),
        '\n' => Some(b'n'),
        '\t' => Some(b't'),
        '\r' => Some(b'r'),
        '\u{8}' => Some(b'b'),
        '\u{c}' => Some(b'f'),
        _ => None,
    };
    if short.is_some() && rest.get(1).copied() == short {
        return Some(2);
    }
    let mut units = [0u16; 2];
    let mut i = 0;
    for unit in c.encode_utf16(&mut units) {
        let hex = rest.get(i..i + 6)?;
        if &hex[..2] != b"\\u" {
            return None;
        }
        let value = u16::from_str_radix(std::str::from_utf8(&hex[2..]).ok()?, 16).ok()?;
        if value != *unit {
            return None;
        }
        i += 6;
    }
    Some(i)
}

/// The length of an HTML character reference to `c` at the start of `rest`, if there is one.
fn html_escape(rest: &[u8], c: char) -> Option<usize> {
    let end = rest.iter().take(12).position(|b| *b == b';')?;
    let name = std::str::from_utf8(&rest[1..end]).ok()?;
    let value = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)?
        }
    };
    (value == c).then_some(end + 1)
}

/// Ranges of base64 runs that decode to text holding a known secret (a Basic `user:password`).
fn base64_runs(text: &str, secrets: &[&[char]], ranges: &mut Vec<(usize, usize)>) {
    let needles: Vec<String> = secrets.iter().map(|s| s.iter().collect()).collect();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if sextet(bytes[i]).is_none() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && sextet(bytes[i]).is_some() {
            i += 1;
        }
        let mut end = i;
        while end < bytes.len() && bytes[end] == b'=' {
            end += 1;
        }
        let run = &bytes[start..i];
        let holds_secret = (0..4).filter(|o| run.len() >= o + 6).any(|o| {
            let decoded = decode_base64(&run[o..]);
            needles
                .iter()
                .any(|n| decoded.windows(n.len()).any(|w| w == n.as_bytes()))
        });
        if holds_secret {
            ranges.push((start, end));
        }
        i = end.max(i);
    }
}

fn sextet(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}

/// Decodes base64 (standard or URL-safe alphabet, padding optional) as far as it goes.
fn decode_base64(run: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(run.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for b in run {
        let Some(v) = sextet(*b) else { break };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

mod patterns {
    //! Cuts values after keys that announce a secret, whatever the value is.

    /// Keys whose value is a secret. `bare` keys are cut unquoted too (`access_token: x`);
    /// `password` only when quoted (`"password":`) or form-like (`password=`), since
    /// prose such as "password: too short" is common in error messages.
    const KEYS: [(&str, bool); 4] = [
        ("access_token", true),
        ("refresh_token", true),
        ("client_secret", true),
        ("password", false),
    ];

    pub(super) fn cut(text: &str, ranges: &mut Vec<(usize, usize)>) {
        let lower = text.to_ascii_lowercase();
        let bytes = text.as_bytes();
        for (at, _) in lower.match_indices("bearer") {
            if at > 0 && bytes[at - 1].is_ascii_alphanumeric() {
                continue; // "forbearer": not the scheme
            }
            let mut i = at + "bearer".len();
            let spaces = bytes[i..].iter().take_while(|b| **b == b' ').count();
            if spaces == 0 {
                continue;
            }
            i += spaces;
            let end = token_end(bytes, i);
            if end > i {
                ranges.push((i, end));
            }
        }
        for (key, bare) in KEYS {
            for (at, _) in lower.match_indices(key) {
                if let Some(range) = value_after_key(bytes, at + key.len(), bare) {
                    ranges.push(range);
                }
            }
        }
        userinfo_passwords(bytes, ranges);
    }

    /// The value's range after a key ending at `i`: `"key": "v"`, `\"key\":\"v\"`, `key=v`.
    fn value_after_key(bytes: &[u8], mut i: usize, bare: bool) -> Option<(usize, usize)> {
        let quoted_key = match bytes.get(i..) {
            Some([b'\\', b'"', ..]) => {
                i += 2;
                true
            }
            Some([b'"' | b'\'', ..]) => {
                i += 1;
                true
            }
            _ => false,
        };
        i += spaces(bytes, i);
        let separator = *bytes.get(i)?;
        match separator {
            b'=' => {}
            b':' if quoted_key || bare => {}
            _ => return None,
        }
        i += 1;
        i += spaces(bytes, i);
        match bytes.get(i..)? {
            [b'"', ..] => string_value(bytes, i + 1, 0),
            [b'\\', b'"', ..] => string_value(bytes, i + 2, 1),
            _ => {
                let end = token_end(bytes, i);
                (end > i).then_some((i, end))
            }
        }
    }

    fn spaces(bytes: &[u8], i: usize) -> usize {
        bytes
            .get(i..)
            .map_or(0, |r| r.iter().take_while(|b| **b == b' ').count())
    }

    /// A token runs to whitespace or a character that ends a value in JSON, forms or markup.
    fn token_end(bytes: &[u8], from: usize) -> usize {
        let stop = |b: &u8| b.is_ascii_whitespace() || b"\"'\\,;<>&)]}".contains(b);
        from + bytes[from..].iter().take_while(|b| !stop(b)).count()
    }

    /// The inside of a JSON string starting at `from`; `depth` 1 when the string is itself
    /// inside a JSON string (its quotes are `\"`). Unterminated: to the end of the text.
    fn string_value(bytes: &[u8], from: usize, depth: u8) -> Option<(usize, usize)> {
        // One character of the inner string: at depth 1, `\x` stands for `x`.
        let unit = |i: usize| -> Option<(u8, usize)> {
            let b = *bytes.get(i)?;
            match (depth, b, bytes.get(i + 1)) {
                (1, b'\\', Some(next)) => Some((*next, 2)),
                _ => Some((b, 1)),
            }
        };
        let mut i = from;
        while let Some((u, len)) = unit(i) {
            if u == b'"' {
                return (i > from).then_some((from, i));
            }
            i += len;
            if u == b'\\' {
                i += unit(i).map_or(0, |(_, l)| l);
            }
        }
        (bytes.len() > from).then_some((from, bytes.len()))
    }

    /// `scheme://user:password@host`: the password's range.
    fn userinfo_passwords(bytes: &[u8], ranges: &mut Vec<(usize, usize)>) {
        let mut from = 0;
        while let Some(found) = find(&bytes[from..], b"://") {
            let start = from + found + 3;
            let end = start
                + bytes[start..]
                    .iter()
                    .take_while(|b| !b.is_ascii_whitespace() && !b"/?#@\"'<>".contains(b))
                    .count();
            if bytes.get(end) == Some(&b'@') {
                if let Some(colon) = bytes[start..end].iter().position(|b| *b == b':') {
                    if start + colon + 1 < end {
                        ranges.push((start + colon + 1, end));
                    }
                }
            }
            from = start;
        }
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }
}

/// `text` with control characters shown escaped (`\u{1b}`), except newlines and tabs.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    escape(text, |c| c == '\n' || c == '\t')
}

/// `text` with every control character escaped, newlines and tabs too (one line of data).
pub fn escape_controls_in_line(text: &str) -> Cow<'_, str> {
    escape(text, |_| false)
}

fn escape(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && !keep(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() && !keep(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Text ready for a terminal: redacted, then control characters escaped (lines kept).
pub fn for_terminal(text: &str) -> String {
    escape_controls(&redact(text)).into_owned()
}

/// The text of a panic, redacted and escaped, with where it happened.
pub fn panic_text(info: &std::panic::PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into());
    let at = info
        .location()
        .map(|l| format!(" at {}:{}", l.file(), l.line()))
        .unwrap_or_default();
    format!("bulkpatch panicked{at}: {}", for_terminal(&message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_goes_in_every_encoding() {
        let s = r#"Qu0te"Pass!xyz &<>+%/= \"#;
        let json = serde_json::to_string(s).unwrap();
        let forms = [
            s.to_string(),
            json[1..json.len() - 1].to_string(),
            "Qu0te%22Pass%21xyz%20%26%3C%3E%2B%25%2F%3D%20%5C".to_string(),
            "Qu0te%22Pass%21xyz+%26%3c%3e%2b%25%2f%3d+%5c".to_string(),
            "Qu0te&quot;Pass!xyz &amp;&lt;&gt;+%/= \\".to_string(),
            "Qu0te&#34;Pass!xyz &#x26;&lt;&gt;+%/= \\".to_string(),
        ];
        for form in forms {
            let text = format!("before {form} after");
            let out = redact_with(&text, &[s]);
            assert_eq!(out, "before <redacted> after", "{form}");
        }
    }

    #[test]
    fn basic_auth_of_a_known_password_goes_whatever_the_user() {
        let basic = "YWxpY2U6UXUwdGUiUGFzcyF4eXo="; // alice:Qu0te"Pass!xyz
        let text = format!("Authorization: Basic {basic}.");
        let out = redact_with(&text, &["Qu0te\"Pass!xyz"]);
        assert_eq!(out, "Authorization: Basic <redacted>.");
    }

    #[test]
    fn key_patterns_cut_values_whatever_they_are() {
        for (text, expected) in [
            ("Bearer eyJ0eXAi.x-y_z", "Bearer <redacted>"),
            ("auth: bearer abc def", "auth: bearer <redacted> def"),
            (
                r#"{"access_token":"a\"b","x":1}"#,
                r#"{"access_token":"<redacted>","x":1}"#,
            ),
            (
                "grant_type=refresh_token&refresh_token=r%2B1&client_secret=s3&x=1",
                "grant_type=refresh_token&refresh_token=<redacted>&client_secret=<redacted>&x=1",
            ),
            (
                r#"echo {\"password\": \"p\\\"w\", \"n\":1}"#,
                r#"echo {\"password\": \"<redacted>\", \"n\":1}"#,
            ),
            ("access_token: abc.def", "access_token: <redacted>"),
            ("password: too short", "password: too short"),
            (
                "via http://bob:hunter2@proxy:3128/x",
                "via http://bob:<redacted>@proxy:3128/x",
            ),
            ("Bearer <redacted>", "Bearer <redacted>"),
            ("a forbearer waits", "a forbearer waits"),
        ] {
            assert_eq!(redact(text), expected, "{text}");
        }
    }

    #[test]
    fn proxy_urls_give_their_password() {
        let cases = [
            ("http://u:p%40ss@proxy:3128", Some("p%40ss")),
            ("u:pw@proxy", Some("pw")),
            ("http://u@proxy:3128", None),
            ("http://proxy:3128/a@b", None),
        ];
        for (url, expected) in cases {
            assert_eq!(url_password(url).as_deref(), expected, "{url}");
        }
        assert_eq!(percent_decode("p%40ss%zz"), "p@ss%zz");
    }

    #[test]
    fn panic_messages_are_redacted_and_escaped() {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let previous = std::panic::take_hook();
        let keep = seen.clone();
        std::panic::set_hook(Box::new(move |info| {
            if let Ok(mut s) = keep.lock() {
                *s = panic_text(info);
            }
        }));
        let _ = std::panic::catch_unwind(|| panic!("answer: Bearer abc.def-123 \x1b[2J"));
        std::panic::set_hook(previous);
        let text = seen.lock().unwrap().clone();
        assert!(text.contains("Bearer <redacted> \\u{1b}[2J"), "{text}");
        assert!(text.contains("redact.rs"), "{text}");
    }

    #[test]
    fn short_secrets_are_not_searched_for() {
        assert_eq!(redact_with("a cat sat", &["a"]), "a cat sat");
        assert_eq!(redact_with("x abcd y", &["abcd"]), "x <redacted> y");
    }

    #[test]
    fn json_stays_json_when_a_match_follows_an_escape() {
        let text = serde_json::to_string("line\nabcdef").unwrap();
        let out = redact_with(&text, &["nabcdef"]);
        assert!(serde_json::from_str::<String>(&out).is_ok(), "{out}");
    }

    #[test]
    fn row_passwords_are_known_only_while_held() {
        let password = secrecy::SecretString::from("Held-Only-While-9".to_string());
        let guard = hold(Some(&password));
        assert_eq!(redact("x Held-Only-While-9"), "x <redacted>");
        drop(guard);
        assert_eq!(redact("x Held-Only-While-9"), "x Held-Only-While-9");
    }

    #[test]
    fn control_characters_are_shown_escaped() {
        assert_eq!(
            escape_controls("a\x1b]0;t\x07b\u{9b}c\td\n"),
            "a\\u{1b}]0;t\\u{7}b\\u{9b}c\td\n"
        );
        assert_eq!(escape_controls_in_line("a\nb"), "a\\u{a}b");
    }

    fn base64(bytes: &[u8]) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    fn percent(secret: &str, space: &str) -> String {
        secret
            .bytes()
            .map(|b| match b {
                b' ' => space.to_string(),
                b if b.is_ascii_alphanumeric() || b"-._~".contains(&b) => (b as char).to_string(),
                b => format!("%{b:02X}"),
            })
            .collect()
    }

    fn html(secret: &str) -> String {
        secret
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;")
    }

    proptest::proptest! {
        #[test]
        fn a_random_secret_goes_in_every_encoding_from_any_text(
            secret in "[ -~é€😀]{4,24}",
            user in "[a-z]{1,8}",
            before in "\\PC{0,30}",
            after in "\\PC{0,30}",
        ) {
            let json = serde_json::to_string(&secret).unwrap();
            let forms = [
                secret.clone(),
                json[1..json.len() - 1].to_string(),
                percent(&secret, "%20"),
                percent(&secret, "+"),
                html(&secret),
                base64(format!("{user}:{secret}").as_bytes()),
            ];
            for form in forms {
                let text = format!("{before}{form}{after}");
                let out = redact_with(&text, &[&secret]);
                proptest::prop_assert!(!out.contains(&form), "{form:?} left in {out:?}");
                proptest::prop_assert!(!out.contains(&secret), "{secret:?} left in {out:?}");
            }
        }
    }
}

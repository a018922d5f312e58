//! The SHA-256 of an input file, computed while the file is read (a `Read` wrapper, so the
//! file is never loaded whole), and its hex form as reports, `.meta`, the summary and
//! `--expect-sha256` give it. Uses the `sha2` crate and `core::text`.

use std::fmt;
use std::io::Read;

use sha2::{Digest, Sha256 as Hasher};

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Sha256([u8; 32]);

impl Sha256 {
    /// Parses 64 hex digits (either case, surrounding white space ignored; an optional
    /// `sha256:` prefix as some tools write it); the reason otherwise.
    pub fn parse_hex(text: &str) -> Result<Sha256, String> {
        let t = text.trim();
        let t = t.strip_prefix("sha256:").unwrap_or(t);
        let shown = crate::core::text::shorten(t, 80);
        if t.len() != 64 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "must be a SHA-256 in hex: 64 characters 0-9 and a-f (got `{}`, {} characters)",
                shown.escape_debug(),
                t.chars().count()
            ));
        }
        let mut out = [0u8; 32];
        for (i, pair) in t.as_bytes().chunks(2).enumerate() {
            let hex = std::str::from_utf8(pair).map_err(|e| e.to_string())?;
            out[i] = u8::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
        }
        Ok(Sha256(out))
    }

    /// The digest of `bytes` (tests and small texts).
    pub fn of(bytes: &[u8]) -> Sha256 {
        Sha256(Hasher::digest(bytes).into())
    }
}

/// Lower-case hex, as `sha256sum` prints it.
impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({self})")
    }
}

/// A reader that hashes every byte read through it (or, made with [`Hashing::off`], none).
pub struct Hashing<R> {
    inner: R,
    hasher: Option<Hasher>,
}

impl<R: Read> Hashing<R> {
    /// Hashes `already` (bytes of the file read before this reader takes over, such as a
    /// byte-order mark), then every byte read from `inner`.
    pub fn new(inner: R, already: &[u8]) -> Hashing<R> {
        let mut hasher = Hasher::new();
        hasher.update(already);
        Hashing {
            inner,
            hasher: Some(hasher),
        }
    }

    /// A plain reader: hashes nothing (the passes after the first).
    pub fn off(inner: R) -> Hashing<R> {
        Hashing {
            inner,
            hasher: None,
        }
    }

    /// The digest of everything read so far; None when hashing is off.
    pub fn finish(self) -> Option<Sha256> {
        Some(Sha256(self.hasher?.finalize().into()))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..n]);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn known_digests_and_hex() {
        assert_eq!(Sha256::of(b"").to_string(), EMPTY);
        assert_eq!(
            Sha256::of(b"abc").to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Sha256::parse_hex(EMPTY), Ok(Sha256::of(b"")));
        let upper = format!(" sha256:{} ", EMPTY.to_uppercase());
        assert_eq!(Sha256::parse_hex(&upper), Ok(Sha256::of(b"")));
    }

    #[test]
    fn malformed_hex_is_refused_with_the_reason() {
        for bad in [
            "",
            "abc",
            &EMPTY[1..],
            &format!("{EMPTY}0"),
            &EMPTY.replace('e', "g"),
        ] {
            let e = Sha256::parse_hex(bad).unwrap_err();
            assert!(e.contains("64 characters"), "{bad}: {e}");
        }
        // Multi-byte text of 64 bytes is not 64 hex digits (and does not panic).
        assert!(Sha256::parse_hex(&"é".repeat(32)).is_err());
        assert!(Sha256::parse_hex("\u{1b}[2J")
            .unwrap_err()
            .contains("\\u{1b}"));
    }

    #[test]
    fn the_reader_hashes_what_passes_through_and_what_came_before() {
        let mut r = Hashing::new(&b"bc"[..], b"a");
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"bc");
        assert_eq!(r.finish(), Some(Sha256::of(b"abc")));
        let mut off = Hashing::off(&b"bc"[..]);
        off.read_to_end(&mut out).unwrap();
        assert_eq!(off.finish(), None);
    }
}

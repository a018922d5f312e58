//! Ids: GUIDs as people paste them, and new request and correlation ids. Uses `core::text`.

use uuid::Uuid;

use crate::core::text::shorten;

/// Why a GUID cell was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("\"{0}\" is not a GUID (expected the form 8-4-4-4-12 hex digits)")]
pub struct NotAGuid(pub String);

/// Parses a GUID in any common form (hyphenated or 32 hex digits, with or without braces) into
/// its canonical value.
pub fn parse_guid(text: &str) -> Result<Uuid, NotAGuid> {
    let t = text.trim();
    // uuid also accepts the `urn:uuid:` form; only the forms people paste from portals and Excel are taken.
    if t.len() > 38 || t.starts_with("urn:") {
        return Err(NotAGuid(shorten(t, 40)));
    }
    let inner = t
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(t);
    Uuid::parse_str(inner).map_err(|_| NotAGuid(shorten(t, 40)))
}

/// A new random (version 4) GUID for `MS-RequestId` or `MS-CorrelationId`, from the
/// thread-local CSPRNG: `Uuid::new_v4` makes a system call per id, two per row.
pub fn new_id() -> Uuid {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid()
}

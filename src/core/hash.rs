//! Stable hashes (the same value in every build and on every machine), for row and header fingerprints. Uses no other module of the crate.

/// FNV-1a, 64 bits: a hash whose value never changes between builds (unlike std's `DefaultHasher`).
pub fn fnv1a(fields: impl IntoIterator<Item = impl AsRef<[u8]>>) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            h ^= 0x1f; // unit separator between fields
            h = h.wrapping_mul(0x100000001b3);
        }
        for b in field.as_ref() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    h
}

//! Identifiers every service agrees on: the producer of an event and its consumers check
//! ids with the same rule, and derived ids use the same stable hash.

/// `id` is 1–`max_len` of `A-Z a-z 0-9 _ . : -` (safe in Kafka keys, Redis keys and the
/// `|`-joined ledger keys).
pub fn is_identifier(id: &str, max_len: usize) -> bool {
    (1..=max_len).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// FNV-1a over `bytes`: stable across versions, platforms and processes (unlike std's
/// hasher), for ids derived from content and persisted.
pub fn stable_hash(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_hashes() {
        assert!(is_identifier("pol-1:a_b.c", 64));
        assert!(!is_identifier("", 64));
        assert!(!is_identifier("a|b", 64));
        assert!(!is_identifier(&"a".repeat(65), 64));
        // FNV-1a test vectors.
        assert_eq!(stable_hash(*b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash(*b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}

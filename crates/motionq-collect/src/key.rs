//! Sanitising campaign and job ids into object-key segments.
//!
//! Ids come from user manifests and vendor responses, so they may hold anything: `/`, `..`,
//! NUL, emoji, 10 kB of text. A key segment must instead be a single, harmless path
//! component on every backend (local directories included). The mapping here is:
//!
//! * **Identity** for ids that are already safe: 1..=[`MAX_SEGMENT_LEN`] characters from
//!   `[A-Za-z0-9._-]`, not starting with `.`, without `..`, and not ending in something that
//!   looks like our hash suffix (see below). Most real ids (`job-000123`, UUIDs) stay readable.
//! * Otherwise **escaped**: every other character becomes `_`, a leading dot or the second dot
//!   of a `..` becomes `_`, the result is cut to leave room, and `_h` plus the first 16 hex
//!   digits of the SHA-256 of the *original* id is appended.
//!
//! Why this is injective: identity outputs never end in `_h<16 hex>` (ids that do are escaped),
//! and escaped outputs always do, so the two families cannot meet; two identity outputs are
//! equal only if the ids are; two escaped outputs are equal only if the 64-bit SHA-256
//! prefixes of two different ids collide, which for any realistic number of ids (a 10⁶-job
//! campaign has a collision chance around 3·10⁻⁸) does not happen. The mapping is a pure
//! function of the id, so it is stable across processes and versions of this crate (changing
//! it would orphan stored objects: don't).

use sha2::{Digest, Sha256};

/// Longest segment this module produces, in bytes (all ASCII). With `.json` appended the file
/// name stays far below the 255-byte limit of common file systems and S3's 1024-byte keys.
pub const MAX_SEGMENT_LEN: usize = 100;

/// `_h` + 16 hex digits.
const SUFFIX_LEN: usize = 2 + HASH_HEX_LEN;
const HASH_HEX_LEN: usize = 16;

/// Map an arbitrary id onto a safe, stable object-key segment (see the module docs).
///
/// The result contains only `[A-Za-z0-9._-]`, never starts with `.`, never contains `..`,
/// is 1..=[`MAX_SEGMENT_LEN`] bytes long, and different inputs give different outputs.
pub fn sanitize_segment(id: &str) -> String {
    if is_clean(id) {
        return id.to_owned();
    }
    let mut out = String::with_capacity(MAX_SEGMENT_LEN);
    for c in id.chars() {
        if out.len() >= MAX_SEGMENT_LEN - SUFFIX_LEN {
            break;
        }
        let safe = match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '_' | '-' => c,
            // A dot is kept unless it would start the segment or form `..`.
            '.' if !out.is_empty() && !out.ends_with('.') => '.',
            _ => '_',
        };
        out.push(safe);
    }
    let digest = Sha256::digest(id.as_bytes());
    out.push_str("_h");
    out.push_str(&hex::encode(digest)[..HASH_HEX_LEN]);
    out
}

/// True when `id` can be used verbatim (and so must not look like an escaped output).
fn is_clean(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_SEGMENT_LEN
        && id.bytes().all(is_safe_byte)
        && !id.starts_with('.')
        && !id.contains("..")
        && !has_hash_suffix(id)
}

fn is_safe_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

/// Does `s` end in `_h` followed by exactly 16 lowercase hex digits, like escaped outputs?
fn has_hash_suffix(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < SUFFIX_LEN {
        return false;
    }
    let tail = &b[b.len() - SUFFIX_LEN..];
    tail.starts_with(b"_h")
        && tail[2..]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn assert_safe(seg: &str) {
        assert!(!seg.is_empty(), "empty segment");
        assert!(seg.len() <= MAX_SEGMENT_LEN, "too long: {seg}");
        assert!(seg.bytes().all(is_safe_byte), "unsafe byte in {seg:?}");
        assert!(!seg.starts_with('.'), "leading dot in {seg:?}");
        assert!(!seg.contains(".."), "dot-dot in {seg:?}");
    }

    #[test]
    fn clean_ids_are_kept_verbatim() {
        for id in [
            "job-1",
            "a",
            "J_2.v3",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
        ] {
            assert_eq!(sanitize_segment(id), id);
        }
    }

    #[test]
    fn dangerous_ids_are_escaped() {
        for id in [
            "",
            ".",
            "..",
            "../../etc/passwd",
            "a/b",
            "a\\b",
            ".hidden",
            "x..y",
            "nul\0byte",
            "ünïcödé",
            "job #1",
            "%2e%2e",
        ] {
            let s = sanitize_segment(id);
            assert_safe(&s);
            assert_ne!(s, id, "{id:?} must be escaped");
            assert!(has_hash_suffix(&s), "{s}");
        }
        assert!(sanitize_segment("a/b").starts_with("a_b_h"));
        assert!(sanitize_segment(".hidden").starts_with("_hidden_h"));
    }

    #[test]
    fn lookalikes_of_escaped_outputs_are_escaped_too() {
        // An id spelled exactly like another id's escaped form must not map onto it.
        let escaped = sanitize_segment("a/b");
        let again = sanitize_segment(&escaped);
        assert_ne!(again, escaped);
        assert_safe(&again);
    }

    #[test]
    fn long_ids_are_bounded_and_stay_distinct() {
        let a = "x".repeat(500);
        let b = format!("{}y", "x".repeat(499));
        let (sa, sb) = (sanitize_segment(&a), sanitize_segment(&b));
        assert_safe(&sa);
        assert_safe(&sb);
        assert_ne!(sa, sb);
        let exact = "z".repeat(MAX_SEGMENT_LEN);
        assert_eq!(sanitize_segment(&exact), exact);
    }

    #[test]
    fn mapping_is_stable() {
        // Pinned: stored objects are found again by recomputing this mapping.
        assert_eq!(sanitize_segment("a/b"), "a_b_hc14cddc033f64b9d");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn output_is_always_safe(id in any::<String>()) {
            assert_safe(&sanitize_segment(&id));
        }

        #[test]
        fn output_is_safe_for_path_like_ids(id in "[./\\\\a-c_h0-9-]{0,140}") {
            assert_safe(&sanitize_segment(&id));
        }

        #[test]
        fn different_ids_give_different_segments(
            a in "[./a-c_h0-9-]{0,30}",
            b in "[./a-c_h0-9-]{0,30}",
        ) {
            if a != b {
                prop_assert_ne!(sanitize_segment(&a), sanitize_segment(&b));
            }
        }

    }

    proptest! {
        // Each case hashes up to 300 ids: fewer cases keep the debug-build test quick.
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn injective_over_a_random_population(ids in proptest::collection::hash_set(any::<String>(), 0..300)) {
            let mut seen: HashMap<String, &String> = HashMap::new();
            for id in &ids {
                if let Some(prev) = seen.insert(sanitize_segment(id), id) {
                    prop_assert!(false, "{prev:?} and {id:?} map to one segment");
                }
            }
        }
    }
}

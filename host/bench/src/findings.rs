//! What the arms of the side-by-side benchmark must agree on: the multiset of
//! (rule, address) pairs, sorted. Messages differ between engines; the rule and
//! the resource it fires on may not.

/// One finding as the arms compare it: the rule id and the resource address
/// (`-` for a finding about the whole plan).
pub type Key = (String, String);

/// Sorts findings into the form the arms compare.
pub fn normalize(mut keys: Vec<Key>) -> Vec<Key> {
    keys.sort_unstable();
    keys
}

/// A short digest of a sorted finding list, printed by child processes.
/// SHA-256 (which every peer's language has) over `rule NUL address 0xff` per
/// finding, the first 16 hex digits.
pub fn digest(keys: &[Key]) -> String {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    for (rule, address) in keys {
        hasher.update(rule.as_bytes());
        hasher.update([0u8]);
        hasher.update(address.as_bytes());
        hasher.update([0xffu8]);
    }
    hasher
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Counts per rule, for a readable line: `no-update-in-place 250, ...`.
pub fn per_rule(keys: &[Key]) -> Vec<(String, usize)> {
    let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for (rule, _) in keys {
        *counts.entry(rule.as_str()).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(rule, n)| (rule.to_string(), n))
        .collect()
}

/// The first difference between two sorted finding lists, for an error message.
pub fn first_difference(a: &[Key], b: &[Key]) -> Option<String> {
    let mut i = 0;
    let mut j = 0;
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x == y => {
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x < y => return Some(format!("only in the first: {x:?}")),
            (Some(_), Some(y)) => return Some(format!("only in the second: {y:?}")),
            (Some(x), None) => return Some(format!("only in the first: {x:?}")),
            (None, Some(y)) => return Some(format!("only in the second: {y:?}")),
            (None, None) => break,
        }
    }
    None
}

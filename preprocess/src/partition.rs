//! kperf's object key and runner partitioning (docs/kperf-compatibility.md §4, bit-exact), and the
//! split of one runner's requests into shards that cores replay independently.
//!
//! All requests of one object key land in one runner and one shard, so a shard
//! replayed in timestamp order keeps each object's requests in recorded order.

use crate::profile::{ProfileRequest, Verb};

/// FNV-1a 64-bit offset basis.
const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 over `bytes` (xor, then wrapping multiply), as kperf hashes object keys.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    fnv1a64_continue(FNV_OFFSET_BASIS, bytes)
}

/// Feeds more bytes into a running FNV-1a 64 state; hashing pieces in turn equals
/// hashing their concatenation, which lets `key_hash` skip building the key.
fn fnv1a64_continue(mut state: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        state ^= u64::from(b);
        state = state.wrapping_mul(FNV_PRIME);
    }
    state
}

/// Whether the key is the selector form `<ns>/<kind>/?labelSelector=<sel>`: a nameless
/// LIST or WATCH with a non-empty selector. Every other request keys on `<ns>/<kind>/<name>`.
fn keys_on_selector(req: &ProfileRequest) -> bool {
    req.name.is_empty()
        && !req.label_selector.is_empty()
        && matches!(req.verb, Verb::List | Verb::Watch)
}

/// Writes kperf's object key of `req` into `out` (cleared first): raw strings, no
/// escaping or trimming, e.g. `default/Pod/nginx`, `/Node/node-1`,
/// `default/Pod/?labelSelector=app=nginx`.
pub fn object_key(req: &ProfileRequest, out: &mut String) {
    out.clear();
    out.push_str(&req.namespace);
    out.push('/');
    out.push_str(&req.resource_kind);
    if keys_on_selector(req) {
        out.push_str("/?labelSelector=");
        out.push_str(&req.label_selector);
    } else {
        out.push('/');
        out.push_str(&req.name);
    }
}

/// `fnv1a64(object_key(req))`, computed without building the key.
pub fn key_hash(req: &ProfileRequest) -> u64 {
    let mut h = fnv1a64_continue(FNV_OFFSET_BASIS, req.namespace.as_bytes());
    h = fnv1a64_continue(h, b"/");
    h = fnv1a64_continue(h, req.resource_kind.as_bytes());
    if keys_on_selector(req) {
        h = fnv1a64_continue(h, b"/?labelSelector=");
        fnv1a64_continue(h, req.label_selector.as_bytes())
    } else {
        h = fnv1a64_continue(h, b"/");
        fnv1a64_continue(h, req.name.as_bytes())
    }
}

/// The runner (partition) of a key hash: `hash % runner_count` in unsigned 64-bit
/// arithmetic, as kperf. A `runner_count` of 0 has no partition (kperf runs nothing);
/// callers validate it, and this returns 0 for it rather than dividing by zero.
pub fn runner_of(hash: u64, runner_count: u32) -> u32 {
    // The remainder is below runner_count, so it fits in u32.
    hash.checked_rem(u64::from(runner_count)).unwrap_or(0) as u32
}

/// The shard, within its runner, of a key hash: the hash goes through a 64-bit
/// finaliser before the modulo, so the shard is independent of `runner_of` (a plain
/// `hash % shards` with 2 runners and 2 shards would leave half the shards empty).
/// A `shards_per_runner` of 0 returns 0.
pub fn shard_of(hash: u64, shards_per_runner: u32) -> u32 {
    mix64(hash)
        .checked_rem(u64::from(shards_per_runner))
        .unwrap_or(0) as u32
}

/// SplitMix64's finaliser (Stafford's "Mix13"): every input bit affects every output bit.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_published_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn zero_counts_do_not_divide_by_zero() {
        assert_eq!(runner_of(u64::MAX, 0), 0);
        assert_eq!(shard_of(u64::MAX, 0), 0);
    }
}

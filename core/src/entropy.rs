//! The engine's entropy pool: randomness the host supplies, stretched.
//!
//! The engine draws no randomness of its own. What a signed client assertion
//! needs (a fresh `jti` per request, RSA blinding, RSA-PSS salts) comes from
//! this pool, which holds only what the host gave it:
//!
//! - [`TokenCache::new`](crate::TokenCache::new) seeds it with the host's
//!   `u64` entropy (the same value that seeds the refresh jitter);
//! - [`TokenCache::add_entropy`](crate::TokenCache::add_entropy) mixes in
//!   more bytes at any time.
//!
//! ## The rule for hosts
//!
//! **Before every `poll` that may send a request, a host whose client signs
//! assertions passes at least 16 fresh bytes from the operating system's
//! random source to `add_entropy`** (Node `crypto.randomBytes(32)`, Python
//! `os.urandom(32)`, Rust `getrandom`, a component `wasi:random`). The pool
//! never repeats an output within one process whatever the host does (it
//! ratchets forward on every draw), but two processes forked from one parent
//! hold the same pool: only bytes added after the fork make their `jti`s
//! differ. Adding entropy costs one SHA-256; a host that skips it on the cache
//! hit path (no request can come out of a served token) loses nothing.
//!
//! ## Construction (re-implemented by `tests/conformance/generate.py`)
//!
//! The state is a 32-byte key `K`, all SHA-256:
//!
//! - seed: `K = H("tokenwell-entropy-v1" || seed as 8 bytes big-endian)`;
//! - add: `K = H("tokenwell-entropy-add" || K || len(bytes) as 8 bytes BE || bytes)`;
//! - draw `n` bytes: blocks `H("tokenwell-entropy-out" || K || i as 8 bytes BE)`
//!   for `i = 0, 1, ...`, concatenated and cut to `n`; then
//!   `K = H("tokenwell-entropy-next" || K)`, so an output never reveals the
//!   key that made earlier ones.

use std::fmt;

use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A deterministic random bit generator fed only by the host (see the module docs).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct EntropyPool {
    key: [u8; 32],
}

impl fmt::Debug for EntropyPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EntropyPool([redacted])")
    }
}

impl EntropyPool {
    /// A pool seeded with the host's `seed`.
    pub fn new(seed: u64) -> Self {
        let key = Sha256::new().chain_update(b"tokenwell-entropy-v1").chain_update(seed.to_be_bytes()).finalize();
        Self { key: key.into() }
    }

    /// Mixes `bytes` into the pool. Every later output depends on them.
    pub fn add_entropy(&mut self, bytes: &[u8]) {
        let key = Sha256::new()
            .chain_update(b"tokenwell-entropy-add")
            .chain_update(self.key)
            .chain_update((bytes.len() as u64).to_be_bytes())
            .chain_update(bytes)
            .finalize();
        self.key = key.into();
    }

    /// Fills `out` with the next bytes and ratchets the pool forward.
    pub fn fill(&mut self, out: &mut [u8]) {
        for (i, chunk) in out.chunks_mut(32).enumerate() {
            let block = Sha256::new()
                .chain_update(b"tokenwell-entropy-out")
                .chain_update(self.key)
                .chain_update((i as u64).to_be_bytes())
                .finalize();
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        let key = Sha256::new().chain_update(b"tokenwell-entropy-next").chain_update(self.key).finalize();
        self.key = key.into();
    }

    /// A pool of its own, seeded from 32 bytes drawn here: what a signature
    /// consumes from it cannot shift the draws of later requests.
    pub(crate) fn child(&mut self) -> EntropyPool {
        let mut key = [0u8; 32];
        self.fill(&mut key);
        let child = EntropyPool { key };
        key.zeroize();
        child
    }
}

impl RngCore for EntropyPool {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill(&mut b);
        u32::from_be_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        u64::from_be_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.fill(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill(dest);
        Ok(())
    }
}

/// Only host-supplied entropy goes in; see the module docs for the rule that
/// keeps it fresh.
impl CryptoRng for EntropyPool {}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Known answers, computed with Python's hashlib from the construction in
    /// the module docs.
    #[test]
    fn known_answers() {
        let mut pool = EntropyPool::new(1);
        let mut out = [0u8; 40];
        pool.fill(&mut out);
        let h = |parts: &[&[u8]]| {
            let mut d = Sha256::new();
            for p in parts {
                d.update(p);
            }
            d.finalize().to_vec()
        };
        let k0 = h(&[b"tokenwell-entropy-v1", &1u64.to_be_bytes()]);
        let mut expected = h(&[b"tokenwell-entropy-out", &k0, &0u64.to_be_bytes()]);
        expected.extend(&h(&[b"tokenwell-entropy-out", &k0, &1u64.to_be_bytes()])[..8]);
        assert_eq!(hex(&out), hex(&expected));
        let k1 = h(&[b"tokenwell-entropy-next", &k0]);
        pool.add_entropy(b"abc");
        let k2 = h(&[b"tokenwell-entropy-add", &k1, &3u64.to_be_bytes(), b"abc"]);
        let mut four = [0u8; 4];
        pool.fill(&mut four);
        assert_eq!(hex(&four), hex(&h(&[b"tokenwell-entropy-out", &k2, &0u64.to_be_bytes()])[..4]));
    }

    #[test]
    fn draws_never_repeat_and_added_entropy_separates_forks() {
        let mut a = EntropyPool::new(7);
        let (x, y) = (a.next_u64(), a.next_u64());
        assert_ne!(x, y);
        let mut fork = a.clone();
        assert_eq!(a.clone().next_u64(), fork.clone().next_u64(), "a fork repeats without fresh entropy");
        a.add_entropy(&[1]);
        fork.add_entropy(&[2]);
        assert_ne!(a.next_u64(), fork.next_u64());
        let mut b = EntropyPool::new(7);
        b.add_entropy(&[]);
        assert_ne!(EntropyPool::new(7).next_u64(), b.next_u64(), "even empty input moves the pool");
        assert_ne!(EntropyPool::new(7).next_u32(), EntropyPool::new(8).next_u32());
        let mut filled = [0u8; 3];
        EntropyPool::new(7).fill_bytes(&mut filled);
        let mut tried = [0u8; 3];
        EntropyPool::new(7).try_fill_bytes(&mut tried).unwrap();
        assert_eq!(filled, tried);
        assert_eq!(EntropyPool::new(7).next_u32().to_be_bytes(), EntropyPool::new(7).next_u64().to_be_bytes()[..4]);
        assert_eq!(format!("{:?}", EntropyPool::new(7)), "EntropyPool([redacted])");
    }

    #[test]
    fn a_child_is_seeded_by_one_draw() {
        let mut pool = EntropyPool::new(3);
        let mut reference = pool.clone();
        let mut child = pool.child();
        let mut seed = [0u8; 32];
        reference.fill(&mut seed);
        assert_eq!(pool.next_u64(), reference.next_u64(), "a child costs its parent exactly 32 bytes");
        let mut out = [0u8; 8];
        child.fill(&mut out);
        assert_eq!(out, EntropyPool { key: seed }.next_u64().to_be_bytes());
    }
}

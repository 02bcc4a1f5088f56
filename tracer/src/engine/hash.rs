//! A small, fast hasher for the engine's integer-keyed maps (pids, episode ids, cgroup ids):
//! one multiply per key instead of SipHash's rounds (the maps are looked up several times per
//! event). The keys are assigned by the kernel or by the engine itself, not chosen by whoever
//! could want to provoke collisions, so the DoS resistance of SipHash is not needed here.
//!
//! Same construction as `rustc-hash` 2 (FxHasher): add, multiply by an odd constant, and a
//! final rotation so that the well-mixed high bits land where `hashbrown` takes the bucket.
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

const K: u64 = 0xf135_7aea_2e62_a9c5;

/// See the module docs.
#[derive(Clone, Copy, Debug, Default)]
pub struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, v: u64) {
        self.hash = self.hash.wrapping_add(v).wrapping_mul(K);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(b));
        }
    }

    #[inline]
    fn write_u8(&mut self, v: u8) {
        self.add(u64::from(v));
    }

    #[inline]
    fn write_u32(&mut self, v: u32) {
        self.add(u64::from(v));
    }

    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.add(v);
    }

    #[inline]
    fn write_usize(&mut self, v: usize) {
        self.add(v as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash.rotate_left(26)
    }
}

/// A `HashMap` with [`FxHasher`].
pub type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_sequential_keys() {
        let mut m: FxHashMap<u32, u32> = FxHashMap::default();
        for pid in 0..100_000 {
            m.insert(pid, pid);
        }
        assert_eq!(m.len(), 100_000);
        assert!((0..100_000).all(|pid| m.get(&pid) == Some(&pid)));
        let h = |v: u64| {
            let mut h = FxHasher::default();
            h.write_u64(v);
            h.finish()
        };
        assert_ne!(h(1) >> 57, h(2) >> 57);
    }
}

//! A small bounded map with approximate-LRU batch eviction, shared by the cgroup path index,
//! the metadata cache and the per-cgroup result cache. Evictions are counted.
//!
//! Each entry carries the tick of its last use. When an insert would exceed the capacity, the
//! least recently used eighth of the entries is dropped in one go (O(n log n) once every n/8
//! inserts, so amortised O(log n) per insert), which keeps lookups O(1).
use std::collections::HashMap;
use std::hash::Hash;

#[derive(Debug)]
pub(crate) struct BoundedMap<K, V> {
    map: HashMap<K, (V, u64)>,
    cap: usize,
    tick: u64,
    evictions: u64,
}

impl<K: Eq + Hash + Clone, V> BoundedMap<K, V> {
    /// `cap` is clamped to at least 1.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            map: HashMap::new(),
            cap: cap.max(1),
            tick: 0,
            evictions: 0,
        }
    }

    /// Looks up and marks the entry as recently used.
    pub(crate) fn get(&mut self, key: &K) -> Option<&V> {
        self.tick += 1;
        let tick = self.tick;
        self.map.get_mut(key).map(|(v, t)| {
            *t = tick;
            &*v
        })
    }

    /// Looks up without touching recency.
    pub(crate) fn peek(&self, key: &K) -> Option<&V> {
        self.map.get(key).map(|(v, _)| v)
    }

    pub(crate) fn insert(&mut self, key: K, value: V) {
        self.tick += 1;
        if !self.map.contains_key(&key) && self.map.len() >= self.cap {
            self.evict_oldest();
        }
        self.map.insert(key, (value, self.tick));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn evictions(&self) -> u64 {
        self.evictions
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &K> {
        self.map.keys()
    }

    fn evict_oldest(&mut self) {
        let n = (self.cap / 8).max(1);
        let mut ticks: Vec<u64> = self.map.values().map(|(_, t)| *t).collect();
        ticks.sort_unstable();
        // Ticks are unique, so exactly `n` entries are at or below the threshold.
        let threshold = ticks[n - 1];
        self.map.retain(|_, (_, t)| *t > threshold);
        self.evictions += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_and_counts() {
        let mut m = BoundedMap::new(8);
        for i in 0..8 {
            m.insert(i, i * 10);
        }
        // Touch 0 so that 1 becomes the oldest.
        assert_eq!(m.get(&0), Some(&0));
        m.insert(100, 1);
        assert_eq!(m.len(), 8);
        assert_eq!(m.evictions(), 1);
        assert!(m.peek(&1).is_none());
        assert!(m.peek(&0).is_some());
        // Replacing an existing key never evicts.
        m.insert(100, 2);
        assert_eq!(m.evictions(), 1);
        assert_eq!(m.peek(&100), Some(&2));
    }

    #[test]
    fn batch_eviction_and_min_capacity() {
        let mut m = BoundedMap::new(64);
        for i in 0..65 {
            m.insert(i, ());
        }
        assert_eq!(m.evictions(), 8);
        assert_eq!(m.len(), 57);
        assert!((0..8).all(|i| m.peek(&i).is_none()));
        let mut one = BoundedMap::new(0);
        one.insert("a", 1);
        one.insert("b", 2);
        assert_eq!(one.len(), 1);
        assert_eq!(one.keys().next(), Some(&"b"));
    }
}

//! [`TimeQueue`] and [`LazyQueue`]: ordered sets of `(time, id)` keys for the engine's deadlines (episodes by
//! first stop signal and by emit deadline, container groups by last record). Same contents
//! and order as a `BTreeSet<(u64, u64)>`, cheaper for how the engine uses it: keys are
//! inserted nearly always in increasing order (events are applied in timestamp order), so an
//! insert is a push at the back; a removal marks the key in place (binary search: the keys
//! stay sorted) and the marked keys are dropped at the ends or by an occasional compaction.
use std::collections::VecDeque;

/// See the module docs.
#[derive(Debug, Default)]
pub(super) struct TimeQueue {
    /// (key, removed), sorted by key; the ends are never removed keys.
    q: VecDeque<((u64, u64), bool)>,
    /// Number of removed keys still in `q`.
    gone: usize,
}

impl TimeQueue {
    fn find(&self, key: (u64, u64)) -> Result<usize, usize> {
        self.q.binary_search_by(|(k, _)| k.cmp(&key))
    }

    pub fn insert(&mut self, key: (u64, u64)) {
        match self.q.back() {
            Some(&(b, _)) if b >= key => match self.find(key) {
                // Out of order (a late event), or already there.
                Ok(i) => {
                    if self.q[i].1 {
                        self.q[i].1 = false;
                        self.gone -= 1;
                    }
                }
                Err(i) => self.q.insert(i, (key, false)),
            },
            _ => self.q.push_back((key, false)),
        }
    }

    pub fn remove(&mut self, key: (u64, u64)) {
        if let Ok(i) = self.find(key) {
            if !self.q[i].1 {
                self.q[i].1 = true;
                self.gone += 1;
                self.trim();
                if self.gone > 64 && self.gone > self.q.len() / 2 {
                    self.q.retain(|&(_, removed)| !removed);
                    self.gone = 0;
                }
            }
        }
    }

    /// The smallest key.
    pub fn first(&self) -> Option<(u64, u64)> {
        self.q.front().map(|&(k, _)| k)
    }

    pub fn clear(&mut self) {
        self.q.clear();
        self.gone = 0;
    }

    /// Drops the removed keys at both ends.
    fn trim(&mut self) {
        while self.q.front().is_some_and(|&(_, removed)| removed) {
            self.q.pop_front();
            self.gone -= 1;
        }
        while self.q.back().is_some_and(|&(_, removed)| removed) {
            self.q.pop_back();
            self.gone -= 1;
        }
    }

    #[cfg(test)]
    fn pop_first(&mut self) -> Option<(u64, u64)> {
        let k = self.q.pop_front().map(|(k, _)| k);
        self.trim();
        k
    }
}

/// `(time, id)` keys in order whose removal is free: a removed key stays until it reaches the
/// front or a compaction, and the owner says which keys still count (`valid`). For the
/// episodes' deadlines, where an id is inserted once and removed once, and validity is
/// whether the episode is still in the state the queue is for.
#[derive(Debug, Default)]
pub(super) struct LazyQueue {
    q: VecDeque<(u64, u64)>,
    /// Keys removed but maybe still in `q` (an estimate: compaction counts them exactly).
    removed: usize,
}

impl LazyQueue {
    pub fn insert(&mut self, key: (u64, u64)) {
        match self.q.back() {
            Some(&b) if b >= key => {
                // Out of order (a late event); ids are unique, so never already there.
                let i = self.q.partition_point(|&k| k < key);
                self.q.insert(i, key);
            }
            _ => self.q.push_back(key),
        }
    }

    /// A key is no longer valid; compacts when most keys are stale.
    pub fn removed(&mut self, valid: impl Fn((u64, u64)) -> bool) {
        self.removed += 1;
        if self.removed > 64 && self.removed > self.q.len() / 2 {
            self.q.retain(|&k| valid(k));
            self.removed = 0;
        }
    }

    /// The smallest valid key if it is `due` (stale keys in front are dropped while due):
    /// `due` must hold for every key below one it holds for.
    pub fn first_due(
        &mut self,
        due: impl Fn((u64, u64)) -> bool,
        valid: impl Fn((u64, u64)) -> bool,
    ) -> Option<(u64, u64)> {
        while let Some(&k) = self.q.front() {
            if !due(k) {
                return None;
            }
            if valid(k) {
                return Some(k);
            }
            self.q.pop_front();
            self.removed = self.removed.saturating_sub(1);
        }
        None
    }

    /// The smallest valid key (stale keys in front are dropped).
    pub fn first(&mut self, valid: impl Fn((u64, u64)) -> bool) -> Option<(u64, u64)> {
        while let Some(&k) = self.q.front() {
            if valid(k) {
                return Some(k);
            }
            self.q.pop_front();
            self.removed = self.removed.saturating_sub(1);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn behaves_like_a_btreeset() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let mut q = TimeQueue::default();
        let mut s = BTreeSet::new();
        let mut t = 0u64;
        for _ in 0..50_000 {
            match rnd(10) {
                // Mostly in order, sometimes late.
                0..=3 => {
                    t += rnd(5);
                    let k = (
                        t.saturating_sub(if rnd(8) == 0 { rnd(50) } else { 0 }),
                        rnd(40),
                    );
                    q.insert(k);
                    s.insert(k);
                }
                4..=6 => {
                    // Remove a present key (or a random one).
                    let k = if rnd(4) > 0 && !s.is_empty() {
                        let skip = rnd(s.len() as u64) as usize;
                        s.iter().nth(skip).copied().unwrap_or_default()
                    } else {
                        (rnd(t + 1), rnd(40))
                    };
                    q.remove(k);
                    s.remove(&k);
                }
                7 => {
                    assert_eq!(q.pop_first(), s.pop_first());
                }
                _ => {}
            }
            assert_eq!(q.first(), s.first().copied());
            assert_eq!(q.q.len() - q.gone, s.len());
        }
        let mut rest = Vec::new();
        while let Some(k) = q.pop_first() {
            rest.push(k);
        }
        assert_eq!(rest, s.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn lazy_queue_keeps_the_valid_keys_in_order() {
        use std::cell::RefCell;
        let live = RefCell::new(BTreeSet::new());
        let valid = |k: (u64, u64)| live.borrow().contains(&k);
        let mut q = LazyQueue::default();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let (mut t, mut id) = (0u64, 0u64);
        for _ in 0..50_000 {
            if rnd(2) == 0 {
                t += rnd(5);
                id += 1;
                let k = (t.saturating_sub(if rnd(8) == 0 { rnd(50) } else { 0 }), id);
                q.insert(k);
                live.borrow_mut().insert(k);
            } else if !live.borrow().is_empty() {
                let skip = rnd(live.borrow().len() as u64) as usize;
                let k = live.borrow().iter().nth(skip).copied();
                if let Some(k) = k {
                    live.borrow_mut().remove(&k);
                    q.removed(valid);
                }
            }
            let limit = t.saturating_sub(rnd(20));
            assert_eq!(
                q.first_due(|(k, _)| k < limit, valid),
                live.borrow().first().copied().filter(|&(k, _)| k < limit)
            );
            assert_eq!(q.first(valid), live.borrow().first().copied());
            assert!(q.q.len() <= 2 * live.borrow().len() + 130);
        }
    }
}

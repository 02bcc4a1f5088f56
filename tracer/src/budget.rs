//! The per-sender budget: a process that floods others (or itself) with signals that change
//! nothing — generated `already_pending` (the same signal is still pending) or `ignored` —
//! gets [`PER_SECOND`] of them journaled, correlated and shown per second of event time; the
//! rest are counted and summed up, one line per sender when it goes over. Nothing a diagnosis
//! needs is lost: the first of them in every second still goes through, and deliveries, exits
//! and signals that were delivered are never budgeted. The budget runs on event time, so a
//! replay of the journal budgets exactly as the live run did.
use rustc_hash::FxHashMap;

/// Repeated signals journaled per sender and second.
pub const PER_SECOND: u32 = 1000;
/// Senders tracked at once (the map is reset past it).
const MAX_SENDERS: usize = 4096;

#[derive(Default)]
pub struct Budget {
    /// sender pid → (second of event time, signals counted in it, over budget in it).
    senders: FxHashMap<u32, (u64, u32, u64)>,
    /// Signals over budget, in all.
    pub over: u64,
}

impl Budget {
    /// Whether one more repeated signal from `sender` at `mono_ns` is kept.
    pub fn allow(&mut self, sender: u32, mono_ns: u64) -> bool {
        let second = mono_ns / 1_000_000_000;
        if self.senders.len() >= MAX_SENDERS && !self.senders.contains_key(&sender) {
            self.senders.clear();
        }
        let e = self.senders.entry(sender).or_insert((second, 0, 0));
        if e.0 != second {
            if e.2 > 0 {
                tracing::info!(
                    "pid {sender}: {} repeated signals over the budget of {PER_SECOND}/s were counted, not recorded",
                    e.2
                );
            }
            *e = (second, 0, 0);
        }
        e.1 += 1;
        if e.1 <= PER_SECOND {
            return true;
        }
        if e.2 == 0 {
            tracing::warn!(
                "pid {sender} sends more than {PER_SECOND} repeated signals a second: counting them instead of recording each"
            );
        }
        e.2 += 1;
        self.over += 1;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_cut_at_the_budget_and_each_second_starts_anew() {
        let mut b = Budget::default();
        let kept = (0..5_000u64).filter(|i| b.allow(7, i * 100_000)).count();
        assert_eq!(kept, PER_SECOND as usize);
        assert_eq!(b.over, 5_000 - u64::from(PER_SECOND));
        // Another sender has its own budget; the next second starts anew.
        assert!(b.allow(8, 1));
        assert!(b.allow(7, 1_000_000_000));
    }
}

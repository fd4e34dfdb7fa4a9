//! A bound on the label values a client can create. Some metric labels come
//! from what a client sends (the model name of a `provider/model` call,
//! which a permissive local server accepts whatever it is); each new value
//! is a new series held forever, so a client could grow the registry
//! without end. A [`LabelBudget`] admits at most [`SLOTS`] distinct values
//! per family and reports the rest as `(other)`.
//!
//! Lock-free: an open-addressed table of 64-bit hashes, filled by
//! compare-and-swap. A hash collision merges two values into one series,
//! which only ever undercounts distinct names.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinct values admitted per family.
pub(crate) const SLOTS: usize = 1024;

/// What values beyond the budget are reported as.
pub(crate) const OTHER: &str = "(other)";

/// The label values admitted so far for one family.
pub(crate) struct LabelBudget {
    slots: Box<[AtomicU64]>,
}

impl LabelBudget {
    pub(crate) fn new() -> LabelBudget {
        LabelBudget {
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// `value` when it was seen before or there is room for it, else `(other)`.
    pub(crate) fn admit<'a>(&self, value: &'a str) -> &'a str {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        value.hash(&mut h);
        // 0 marks a free slot.
        let hash = h.finish().max(1);
        let start = (hash as usize) % SLOTS;
        for i in 0..SLOTS {
            let slot = &self.slots[(start + i) % SLOTS];
            match slot.compare_exchange(0, hash, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return value,
                Err(seen) if seen == hash => return value,
                Err(_) => {}
            }
        }
        OTHER
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_slots_values_then_other() {
        let b = LabelBudget::new();
        for i in 0..SLOTS {
            let v = format!("m{i}");
            assert_eq!(b.admit(&v), v);
        }
        assert_eq!(b.admit("m0"), "m0", "a value seen before stays");
        assert_eq!(b.admit("one-too-many"), OTHER);
    }
}

//! `rate_limit` with `burst`: a token bucket, as users of nginx's
//! `limit_req burst=N nodelay` and of token buckets expect. The bucket holds
//! at most `burst + 1` requests and refills at the rate (`requests` per
//! `per`), so an idle client may send `burst + 1` at once, and a steady
//! overload gets the rate and nothing more: over ten seconds at 100/s with
//! `burst: 50`, 1,051 requests.
//!
//! It is GCRA (the generic cell rate algorithm), which keeps one number per
//! key instead of a token count and a time: the theoretical arrival time
//! (TAT) of the next request if requests came exactly at the rate. A request
//! at `now` is allowed when `max(TAT, now) - now <= burst × interval`, and
//! then moves TAT one interval on. Locally the TATs live in a fixed table of
//! atomics indexed by the key's hash and updated with compare-and-swap:
//! lock-free, fixed memory; two keys that share a slot share a bucket, so a
//! collision only ever makes a limit stricter. On Redis the same arithmetic
//! runs in one Lua script ([`super::cluster`]).

use super::Verdict;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Slots of one limit's table: 64 KiB.
const SLOTS: usize = 8192;

/// The bucket's shape: one request per `interval_us`, `tolerance_us` of
/// credit (`burst` intervals).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    pub(crate) interval_us: u64,
    pub(crate) tolerance_us: u64,
}

impl Shape {
    /// `requests` per `window`, with `burst` extra.
    pub(crate) fn new(requests: u64, window: Duration, burst: u64) -> Shape {
        let window_us = u64::try_from(window.as_micros()).unwrap_or(u64::MAX);
        let interval_us = (window_us / requests.max(1)).max(1);
        Shape {
            interval_us,
            tolerance_us: interval_us.saturating_mul(burst),
        }
    }

    /// The decision for a request at `now` on a bucket whose TAT is `tat`:
    /// the verdict, and the new TAT when allowed.
    pub(crate) fn decide(self, tat: u64, now: u64) -> (Verdict, Option<u64>) {
        let debt = tat.max(now) - now;
        if debt > self.tolerance_us {
            let wait_us = debt - self.tolerance_us;
            let verdict = Verdict {
                allowed: false,
                remaining: 0,
                reset_ms: wait_us.div_ceil(1000),
            };
            return (verdict, None);
        }
        let debt = debt + self.interval_us;
        let verdict = Verdict {
            allowed: true,
            // Whole requests the credit still covers.
            remaining: (self.tolerance_us + self.interval_us - debt) / self.interval_us,
            // Until the bucket is full again.
            reset_ms: debt.div_ceil(1000),
        };
        (verdict, Some(now + debt))
    }
}

/// The local buckets of one limit.
pub(crate) struct Bucket {
    shape: Shape,
    epoch: Instant,
    tats: Box<[AtomicU64]>,
}

impl Bucket {
    pub(crate) fn new(shape: Shape) -> Bucket {
        Bucket {
            shape,
            epoch: Instant::now(),
            tats: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Takes a request from `key`'s bucket, if it has one to give.
    pub(crate) fn take<K: Hash>(&self, key: &K) -> Verdict {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        let slot = &self.tats[(h.finish() as usize) % SLOTS];
        // Microseconds since this limit was made, plus one interval, so a
        // fresh slot (0) reads as an idle, full bucket.
        let now = u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX) + self.shape.interval_us;
        let mut tat = slot.load(Ordering::Relaxed);
        loop {
            let (verdict, next) = self.shape.decide(tat, now);
            let Some(next) = next else { return verdict };
            match slot.compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return verdict,
                Err(current) => tat = current,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_bucket_gives_burst_plus_one_then_the_rate() {
        let shape = Shape::new(100, Duration::from_secs(1), 50);
        assert_eq!(shape.interval_us, 10_000);
        let mut tat = 0;
        let now = 1_000_000;
        let mut allowed = 0;
        let mut remaining = Vec::new();
        for _ in 0..80 {
            let (v, next) = shape.decide(tat, now);
            if let Some(next) = next {
                tat = next;
                allowed += 1;
                remaining.push(v.remaining);
            }
        }
        assert_eq!(allowed, 51, "burst + 1 at once");
        assert_eq!(remaining.first(), Some(&50));
        assert_eq!(remaining.last(), Some(&0));
        // Refused: the wait is one interval.
        let (v, next) = shape.decide(tat, now);
        assert!(next.is_none() && !v.allowed);
        assert_eq!(v.reset_ms, 10);
        // One interval later, one more.
        assert!(shape.decide(tat, now + 10_000).1.is_some());
        assert!(shape.decide(tat, now + 9_999).1.is_none());
    }

    #[test]
    fn a_steady_overload_gets_the_rate_and_the_burst_once() {
        let shape = Shape::new(100, Duration::from_secs(1), 50);
        let mut tat = 0;
        let mut allowed = 0;
        // 1,000 requests a second for ten seconds.
        for ms in 0..10_000u64 {
            let (_, next) = shape.decide(tat, 1_000_000 + ms * 1000);
            if let Some(next) = next {
                tat = next;
                allowed += 1;
            }
        }
        assert_eq!(allowed, 1000 + 50, "{allowed}");
    }

    #[test]
    fn keys_have_their_own_buckets() {
        let bucket = Bucket::new(Shape::new(10, Duration::from_secs(3600), 2));
        let taken = (0..10).filter(|_| bucket.take(&"a").allowed).count();
        assert_eq!(taken, 3);
        assert!(bucket.take(&"b").allowed);
    }
}

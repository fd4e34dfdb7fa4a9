//! One upstream target and its live state. All state is atomics so the
//! request path reads and updates it without locks; the active checker and
//! passive failure tracking write the same fields.
//!
//! Passive ejection and active checks: an ejected target stays out for its
//! whole `cooldown`, unless the active check has since seen
//! `healthy_threshold` successes in a row, all after the ejection; then the
//! check vouches for it and it returns early. Successes from before the
//! ejection never count.

use pingora_core::upstreams::peer::HttpPeer;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use once_cell::sync::Lazy;

static EPOCH: Lazy<Instant> = Lazy::new(Instant::now);

/// Milliseconds since process start: a cheap monotonic clock for cooldowns.
pub(crate) fn now_ms() -> u64 {
    EPOCH.elapsed().as_millis() as u64
}

#[derive(Debug)]
pub struct Target {
    /// As written in the config (`host:port`); used in logs and metric labels.
    pub label: Arc<str>,
    pub addr: SocketAddr,
    pub weight: usize,
    /// Connection template: address, TLS, SNI, timeouts of the upstream.
    pub peer: HttpPeer,
    /// Result of active checks (true until a check says otherwise).
    healthy: AtomicBool,
    check_successes: AtomicU32,
    check_failures: AtomicU32,
    /// An active check of this target is running (checks never pile up when
    /// the timeout is longer than the interval).
    checking: AtomicBool,
    /// Consecutive passive failures (connect errors, resets).
    fails: AtomicU32,
    /// While now_ms() is below this, the target is ejected.
    ejected_until: AtomicU64,
    /// Successful active checks in a row since the last ejection.
    vouched: AtomicU32,
    inflight: AtomicUsize,
}

impl Target {
    pub fn new(label: String, addr: SocketAddr, weight: usize, peer: HttpPeer) -> Target {
        Target {
            label: label.into(),
            addr,
            weight,
            peer,
            healthy: AtomicBool::new(true),
            check_successes: AtomicU32::new(0),
            check_failures: AtomicU32::new(0),
            checking: AtomicBool::new(false),
            fails: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            vouched: AtomicU32::new(0),
            inflight: AtomicUsize::new(0),
        }
    }

    /// Usable now: passing active checks and not ejected by passive ones.
    pub fn available(&self, now: u64) -> bool {
        self.healthy.load(Ordering::Relaxed) && self.ejected_until.load(Ordering::Relaxed) <= now
    }

    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::Relaxed)
    }

    /// A request got a response from this target.
    pub fn record_success(&self) {
        if self.fails.load(Ordering::Relaxed) != 0 {
            self.fails.store(0, Ordering::Relaxed);
        }
    }

    /// A request failed to connect or was reset; ejects after `max_fails` in a row.
    pub fn record_failure(&self, max_fails: u32, cooldown_ms: u64) {
        let n = self.fails.fetch_add(1, Ordering::Relaxed) + 1;
        if max_fails > 0 && n >= max_fails {
            self.vouched.store(0, Ordering::Relaxed);
            self.ejected_until.store(now_ms() + cooldown_ms, Ordering::Relaxed);
            self.fails.store(0, Ordering::Relaxed);
            log::warn!("target {} ejected for {cooldown_ms} ms after {n} failures", self.label);
        }
    }

    /// Claims the right to run the next active check; false while one runs.
    pub fn begin_check(&self) -> bool {
        !self.checking.swap(true, Ordering::AcqRel)
    }

    pub fn end_check(&self) {
        self.checking.store(false, Ordering::Release);
    }

    /// Feeds one active check result; flips health after the thresholds.
    /// Returns Some(new state) when health changed.
    pub fn record_check(&self, ok: bool, healthy_threshold: u32, unhealthy_threshold: u32) -> Option<bool> {
        let healthy = self.healthy.load(Ordering::Relaxed);
        if ok {
            self.check_failures.store(0, Ordering::Relaxed);
            let n = self.check_successes.fetch_add(1, Ordering::Relaxed) + 1;
            let vouched = self.vouched.fetch_add(1, Ordering::Relaxed) + 1;
            let ejected = self.ejected_until.load(Ordering::Relaxed) > now_ms();
            if vouched >= healthy_threshold && ejected {
                // Enough checks since the ejection: the target returns early.
                self.ejected_until.store(0, Ordering::Relaxed);
                if healthy {
                    return Some(true);
                }
            }
            if !healthy && n >= healthy_threshold {
                self.healthy.store(true, Ordering::Relaxed);
                return Some(true);
            }
        } else {
            self.check_successes.store(0, Ordering::Relaxed);
            self.vouched.store(0, Ordering::Relaxed);
            let n = self.check_failures.fetch_add(1, Ordering::Relaxed) + 1;
            if healthy && n >= unhealthy_threshold {
                self.healthy.store(false, Ordering::Relaxed);
                return Some(false);
            }
        }
        None
    }

    /// Carries health state over from the same target in a previous config.
    pub fn inherit(&self, old: &Target) {
        self.healthy
            .store(old.healthy.load(Ordering::Relaxed), Ordering::Relaxed);
        self.check_successes
            .store(old.check_successes.load(Ordering::Relaxed), Ordering::Relaxed);
        self.check_failures
            .store(old.check_failures.load(Ordering::Relaxed), Ordering::Relaxed);
        self.fails.store(old.fails.load(Ordering::Relaxed), Ordering::Relaxed);
        self.ejected_until
            .store(old.ejected_until.load(Ordering::Relaxed), Ordering::Relaxed);
        self.vouched
            .store(old.vouched.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

/// Counts a request in flight on a target until dropped (least_conn uses it).
#[derive(Debug)]
pub(crate) struct InflightGuard(Arc<Target>);

impl InflightGuard {
    pub(crate) fn new(target: Arc<Target>) -> Self {
        target.inflight.fetch_add(1, Ordering::Relaxed);
        InflightGuard(target)
    }

    pub(crate) fn target(&self) -> &Arc<Target> {
        &self.0
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        Target::new("t".into(), addr, 1, HttpPeer::new(addr, false, String::new()))
    }

    #[test]
    fn a_cooldown_holds_until_enough_checks_after_the_ejection() {
        let t = target();
        // Checks passed before the ejection: they do not vouch for it.
        for _ in 0..3 {
            t.record_check(true, 5, 1);
        }
        t.record_failure(1, 60_000);
        assert!(!t.available(now_ms()));
        for _ in 0..4 {
            t.record_check(true, 5, 1);
            assert!(!t.available(now_ms()), "back before 5 checks after the ejection");
        }
        assert_eq!(t.record_check(true, 5, 1), Some(true));
        assert!(t.available(now_ms()));
    }

    #[test]
    fn a_failed_check_starts_the_count_again() {
        let t = target();
        t.record_failure(1, 60_000);
        for _ in 0..4 {
            t.record_check(true, 5, 3);
        }
        t.record_check(false, 5, 3);
        for _ in 0..4 {
            t.record_check(true, 5, 3);
        }
        assert!(!t.available(now_ms()));
        t.record_check(true, 5, 3);
        assert!(t.available(now_ms()));
    }
}

//! The coarse clocks (Linux's `CLOCK_REALTIME_COARSE` and
//! `CLOCK_MONOTONIC_COARSE`): the time of the last scheduler tick, a few
//! milliseconds old, read without the TSC. On a VM an exact clock read
//! costs 50–100 ns; the request path reads these where milliseconds are
//! ample (a request id's time, a retired route's sunset, how long a
//! keep-alive connection has been idle), and the exact clock only for
//! durations it reports (bench/TUNING.md, change 13).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `clock`'s time, or `None` when the kernel refuses it.
fn read(clock: nix::libc::clockid_t) -> Option<Duration> {
    let mut ts = nix::libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec, here a valid local one,
    // and reads nothing else.
    let read = unsafe { nix::libc::clock_gettime(clock, &mut ts) };
    if read != 0 {
        return None;
    }
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u32::try_from(ts.tv_nsec).ok()?;
    Some(Duration::new(secs, nanos))
}

/// The wall-clock time, to within a tick.
pub(crate) fn coarse_realtime() -> SystemTime {
    match read(nix::libc::CLOCK_REALTIME_COARSE) {
        Some(since_epoch) => UNIX_EPOCH + since_epoch,
        None => SystemTime::now(),
    }
}

/// A monotonic time (since an unspecified start), to within a tick; only
/// differences between two readings mean anything.
pub(crate) fn coarse_monotonic() -> Duration {
    read(nix::libc::CLOCK_MONOTONIC_COARSE).unwrap_or_else(|| {
        static START: once_cell::sync::Lazy<std::time::Instant> = once_cell::sync::Lazy::new(std::time::Instant::now);
        START.elapsed()
    })
}

/// A new request id: a ULID, sortable by time (to the millisecond of the
/// last tick) and random in its other 80 bits.
pub(crate) fn new_request_id() -> String {
    ulid::Ulid::from_datetime(coarse_realtime()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_clocks_follow_the_exact_ones() {
        let exact = SystemTime::now();
        let coarse = coarse_realtime();
        let apart = exact.duration_since(coarse).unwrap_or_else(|e| e.duration());
        assert!(apart < Duration::from_secs(1), "{apart:?} apart");
        let a = coarse_monotonic();
        std::thread::sleep(Duration::from_millis(30));
        let b = coarse_monotonic();
        assert!(b >= a + Duration::from_millis(10), "{a:?} then {b:?}");
    }

    #[test]
    fn request_ids_are_ulids_of_now_and_differ() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        let ulid = ulid::Ulid::from_string(&a).unwrap();
        let ms = ulid.timestamp_ms();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        assert!(now.abs_diff(ms) < 1000, "{ms} against {now}");
    }
}

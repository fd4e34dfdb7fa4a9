//! Draining: how a process that is about to stop serving lets its clients go
//! without failing their requests.
//!
//! Once draining (after handing its sockets to a successor, or when shutdown
//! begins) every response carries `Connection: close`, so keep-alive clients
//! reconnect, to the new process, instead of sending a request on a
//! connection that is about to close. The flag is process-wide: one relaxed
//! atomic load per response.

use std::sync::atomic::{AtomicBool, Ordering};

static DRAINING: AtomicBool = AtomicBool::new(false);

/// True once this process drains.
pub(crate) fn draining() -> bool {
    DRAINING.load(Ordering::Relaxed)
}

pub(crate) fn start_draining() {
    DRAINING.store(true, Ordering::Relaxed);
}

/// Undoes [`start_draining`] when a handover fails before it began.
pub(crate) fn stop_draining() {
    DRAINING.store(false, Ordering::Relaxed);
}

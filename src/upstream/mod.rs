//! Upstream pools: targets, selection, active and passive health, and the
//! connection templates used to reach them.

pub mod health;
pub mod peer;
pub mod pool;
pub mod target;

pub use pool::{ActiveCheck, Passive, UpstreamPool};
pub use target::{now_ms, InflightGuard, Target};

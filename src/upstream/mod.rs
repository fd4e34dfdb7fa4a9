//! Upstream pools: compiled from the config, their targets, selection,
//! active and passive health, and the connection templates used to reach them.

pub(crate) mod compile;
pub(crate) mod health;
pub(crate) mod peer;
pub(crate) mod pool;
pub(crate) mod target;

pub(crate) use compile::{compile_pools, Pools};
pub(crate) use pool::UpstreamPool;
pub(crate) use target::{now_ms, InflightGuard};

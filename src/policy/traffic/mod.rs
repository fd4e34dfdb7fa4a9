//! How much may pass: client address rules, rate limits (local and on
//! Redis), concurrency limits and request size limits.

pub(crate) mod concurrency;
pub(crate) mod ip;
pub(crate) mod rate_limit;
pub(crate) mod size;

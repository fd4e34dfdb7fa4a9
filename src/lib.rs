#![doc = include_str!("../docs/ARCHITECTURE.md")]

// The crate's public API is what the `portico` binary and the integration
// tests use (docs/ARCHITECTURE.md, "Gates"); everything else is `pub(crate)`.
pub mod config;
pub mod process;
pub mod serve;
pub mod store;

pub(crate) mod ai;
pub(crate) mod calllog;
pub(crate) mod error;
pub(crate) mod mcp;
pub(crate) mod policy;
pub(crate) mod proxy;
pub(crate) mod router;
pub(crate) mod snapshot;
pub(crate) mod telemetry;
pub(crate) mod upstream;

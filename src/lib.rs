//! Portico: an API and AI gateway on Cloudflare's Pingora.
//!
//! Config (YAML) -> [`config::Config`] -> [`runtime::Snapshot`] (compiled) ->
//! served by [`proxy::Gateway`], a Pingora `ProxyHttp`. See DESIGN.md.

pub mod ai;
pub mod config;
pub mod connection;
pub mod drain;
pub mod path;
pub mod policy;
pub mod proxy;
pub mod reload;
pub mod router;
pub mod runtime;
pub mod server;
pub mod telemetry;
pub mod tls;
pub mod transport;
pub mod upgrade;
pub mod upstream;
pub mod workers;

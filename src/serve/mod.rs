//! Serving connections: the listeners and their TLS, the acceptor that takes
//! every new connection, Portico's HTTP/1 loop and serving threads, the
//! stream type that moves a connection between threads, draining, and the
//! admin listener with its API, console and developer portal.

pub(crate) mod acceptor;
pub(crate) mod admin;
pub(crate) mod admin_api;
pub(crate) mod console;
pub(crate) mod drain;
pub(crate) mod head;
pub mod http1;
pub(crate) mod listeners;
pub(crate) mod respond;
pub(crate) mod stream;
pub(crate) mod tls;
pub(crate) mod workers;

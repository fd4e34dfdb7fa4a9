//! Process control: running the server, reloading its config, handing it
//! over to a new binary, the signals and pid file that drive them,
//! moving a whole config into the store and out of it, and keeping AI
//! budget spend across restarts.

pub(crate) mod admin_apply;
pub mod admin_cli;
mod aside;
mod error;
pub mod load;
pub mod pid_file;
pub(crate) mod reload;
pub mod run;
pub(crate) mod secrets_key;
pub(crate) mod signals;
pub(crate) mod spend;
pub mod store_io;
pub(crate) mod store_mode;
pub(crate) mod store_watch;
pub mod upgrade;

pub use error::ProcessError;

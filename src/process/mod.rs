//! Process control: running the server, reloading its config, handing it
//! over to a new binary, and the signals and pid file that drive them.

mod error;
pub mod load;
pub mod pid_file;
pub(crate) mod reload;
pub mod run;
pub(crate) mod signals;
pub mod upgrade;

pub use error::ProcessError;

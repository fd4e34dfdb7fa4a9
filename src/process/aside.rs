//! Async work from synchronous code (start-up, `portico` subcommands): on a
//! thread of its own with a current-thread runtime, so that it works from a
//! runtime's thread (where blocking on another runtime would panic) and
//! from none.

/// Runs the future `make` gives on a thread of its own and waits for it.
pub(crate) fn on_a_thread<T, F, Fut>(make: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(make())
    })
    .join()
    .map_err(|_| "the worker thread failed".to_string())?
}

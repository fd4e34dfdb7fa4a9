//! Background load for tests that must see no failed request while the
//! gateway reloads or upgrades: clients sending GETs until stopped, bounded
//! in count.

use super::{client, wait_until};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Requests each client sends at most.
const PER_CLIENT: usize = 100_000;

/// Clients sending GETs to one URL, counting answers.
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// What a load saw: 200s, and every other outcome.
pub(crate) struct LoadResult {
    pub ok: usize,
    pub failures: Vec<String>,
}

impl Load {
    /// Starts `clients` clients on `url`.
    pub(crate) fn start(url: String, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..clients)
            .map(|_| {
                let (stop, ok, failures, url) = (stop.clone(), ok.clone(), failures.clone(), url.clone());
                tokio::spawn(async move {
                    let c = client();
                    for _ in 0..PER_CLIENT {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        match c.get(&url).send().await {
                            Ok(r) if r.status() == 200 => {
                                ok.fetch_add(1, Ordering::SeqCst);
                            }
                            other => failures.lock().unwrap().push(format!("{other:?}")),
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            failures,
            tasks,
        }
    }

    /// 200s so far.
    pub(crate) fn ok(&self) -> usize {
        self.ok.load(Ordering::SeqCst)
    }

    /// Waits until `n` more requests have been answered 200.
    pub(crate) async fn wait_for(&self, n: usize, what: &str) {
        let target = self.ok() + n;
        wait_until(what, Duration::from_secs(60), || async { self.ok() >= target }).await;
    }

    /// Stops the clients and returns what they saw.
    pub(crate) async fn stop(self) -> LoadResult {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            t.await.unwrap();
        }
        LoadResult {
            ok: self.ok.load(Ordering::SeqCst),
            failures: std::mem::take(&mut *self.failures.lock().unwrap()),
        }
    }
}

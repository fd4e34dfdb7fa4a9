//! Portico's serving threads for plain HTTP/1 connections, used with
//! `work_stealing: false` (the default).
//!
//! Pingora's no-steal runtime gives each thread its own single-threaded tokio
//! runtime, but two of its choices cross threads:
//!
//! - its accept loop hands each new connection to a random thread, so one
//!   thread can hold many more connections than another (its own code marks
//!   this as a to-do);
//! - its upstream connection pool spawns the task that watches an idle
//!   connection on a random thread (`pingora_runtime::current_handle()`), so
//!   reusing the connection wakes that other thread, which wakes the reuser
//!   back. Spawning it on the reusing thread measured +12% at 8 threads
//!   (bench/TUNING.md), but that is a change inside Pingora.
//!
//! So each plain HTTP/1 connection is served on one of Portico's own threads
//! instead, the one with the fewest open connections. Its socket is moved to
//! that thread's reactor ([`crate::serve::stream`]). These threads are not
//! Pingora's, so `current_handle()` falls back to the current runtime there:
//! the pool's idle watch stays on the thread that reuses the connection,
//! without patching Pingora. Pingora's own accept task ends once the
//! connection is handed over, which frees its per-connection state (8.8 KB,
//! bench/TUNING.md). TLS and HTTP/2 connections stay on Pingora's threads.
//! This holds with one thread too: Pingora's thread then only accepts, and an
//! idle keep-alive connection holds about 4 KiB instead of 16.
//!
//! The open-connection counters are `crossbeam-utils`' `CachePadded` (the
//! crossbeam family is already used for the access-log queue), so that
//! threads updating neighbouring counters do not share a cache line.

use crate::telemetry::metrics::METRICS;
use crossbeam_utils::CachePadded;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntGauge, IntGaugeVec, Opts};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// A set of threads, each running a single-threaded tokio runtime. They stop
/// when the set is dropped.
pub(crate) struct Workers {
    threads: Box<[Worker]>,
    /// Where the search for the least-loaded thread starts, so that ties go
    /// round the threads.
    next: AtomicUsize,
}

struct Worker {
    handle: Handle,
    /// Shared with the thread's connections' [`Seat`]s, not the whole set,
    /// so that a connection never keeps the threads alive.
    open: Arc<CachePadded<AtomicUsize>>,
    /// Dropping it ends the thread's runtime.
    _stop: oneshot::Sender<()>,
}

impl Workers {
    /// Starts `count` threads named `name` (at least one).
    pub(crate) fn start(count: usize, name: &str) -> std::io::Result<Arc<Workers>> {
        let mut threads = Vec::with_capacity(count.max(1));
        for _ in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let handle = runtime.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            std::thread::Builder::new().name(name.to_string()).spawn(move || {
                // Runs the spawned connections until the sender is dropped.
                let _ = runtime.block_on(stopped);
            })?;
            threads.push(Worker {
                handle,
                open: Arc::new(CachePadded::new(AtomicUsize::new(0))),
                _stop: stop,
            });
        }
        Ok(Arc::new(Workers {
            threads: threads.into_boxed_slice(),
            next: AtomicUsize::new(0),
        }))
    }

    /// How many connections each thread serves now.
    pub(crate) fn open_connections(&self) -> Vec<usize> {
        self.threads.iter().map(|w| w.open.load(Ordering::Relaxed)).collect()
    }

    /// Runs `connection` on the thread with the fewest open connections,
    /// which counts it as open until the future ends or is dropped.
    pub(crate) fn serve<F>(&self, connection: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let index = self.least_loaded();
        let worker = &self.threads[index];
        worker.open.fetch_add(1, Ordering::Relaxed);
        let seat = Seat(worker.open.clone());
        worker.handle.spawn(async move {
            let _seat = seat;
            connection.await;
        });
    }

    fn least_loaded(&self) -> usize {
        let n = self.threads.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut best = start;
        let mut fewest = usize::MAX;
        for i in (start..n).chain(0..start) {
            let open = self.threads[i].open.load(Ordering::Relaxed);
            if open < fewest {
                best = i;
                fewest = open;
            }
        }
        best
    }
}

/// One open connection counted on one thread, until dropped.
struct Seat(Arc<CachePadded<AtomicUsize>>);

impl Drop for Seat {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `portico_worker_connections{worker}`: the plain HTTP/1 client connections
/// open on each of Portico's serving threads ([`crate::serve::workers`]), read when
/// scraped, so serving a connection costs nothing extra.
struct WorkerConnections {
    workers: Arc<Workers>,
    family: IntGaugeVec,
    /// One series per thread, resolved when registered.
    series: Vec<IntGauge>,
}

impl Collector for WorkerConnections {
    fn desc(&self) -> Vec<&Desc> {
        self.family.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        for (gauge, open) in self.series.iter().zip(self.workers.open_connections()) {
            gauge.set(i64::try_from(open).unwrap_or(i64::MAX));
        }
        self.family.collect()
    }
}

impl Workers {
    /// Exposes the open connections of each thread as
    /// `portico_worker_connections{worker}`, once per process.
    pub(crate) fn register_metrics(self: &Arc<Self>) -> Result<(), prometheus::Error> {
        let workers = self.clone();
        let family = IntGaugeVec::new(
            Opts::new(
                "worker_connections",
                "Plain HTTP/1 client connections open on each serving thread.",
            ),
            &["worker"],
        )?;
        let series = (0..workers.open_connections().len())
            .map(|i| family.with_label_values(&[i.to_string().as_str()]))
            .collect();
        METRICS.registry.register(Box::new(WorkerConnections {
            workers,
            family,
            series,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Connections go to the thread with the fewest open ones, ties round
    /// the threads; one that ends frees its place, and the next goes there.
    #[test]
    fn connections_go_to_the_least_loaded_thread() {
        let workers = Workers::start(4, "test-worker").expect("start");
        let mut hold = Vec::new();
        let mut names = Vec::new();
        for _ in 0..8 {
            let (release, released) = oneshot::channel::<()>();
            let (tell, name) = std::sync::mpsc::channel();
            workers.serve(async move {
                let _ = tell.send(std::thread::current().name().map(str::to_string));
                let _ = released.await;
            });
            hold.push(release);
            names.push(name.recv_timeout(Duration::from_secs(20)).expect("served"));
        }
        assert_eq!(workers.open_connections(), vec![2, 2, 2, 2]);
        assert!(names.iter().all(|n| n.as_deref() == Some("test-worker")));
        // Two connections on thread 2 end; the next two go there.
        let _ = hold.remove(6).send(());
        let _ = hold.remove(2).send(());
        wait_until("two connections to end", || {
            workers.open_connections() == vec![2, 2, 0, 2]
        });
        for _ in 0..2 {
            workers.serve(std::future::pending());
        }
        assert_eq!(workers.open_connections(), vec![2, 2, 2, 2]);
        drop(hold);
    }

    /// Dropping the set stops its threads; the connections still open are
    /// dropped with them.
    #[test]
    fn dropping_the_set_stops_its_threads() {
        struct Dropped(std::sync::mpsc::Sender<()>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                let _ = self.0.send(());
            }
        }
        let workers = Workers::start(2, "test-worker").expect("start");
        let (tell, told) = std::sync::mpsc::channel();
        let (started, running) = std::sync::mpsc::channel();
        workers.serve(async move {
            let _guard = Dropped(tell);
            let _ = started.send(());
            std::future::pending::<()>().await;
        });
        running.recv_timeout(Duration::from_secs(20)).expect("running");
        drop(workers);
        told.recv_timeout(Duration::from_secs(20))
            .expect("the connection was dropped");
    }

    /// A connection's future runs on a single-threaded runtime of its own
    /// thread, with I/O and timers enabled.
    #[test]
    fn connections_run_on_single_threaded_runtimes() {
        let workers = Workers::start(2, "test-worker").expect("start");
        let (tell, told) = std::sync::mpsc::channel();
        workers.serve(async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map(|_| ());
            let _ = tell.send((Handle::current().runtime_flavor(), listener.is_ok()));
        });
        let (flavor, io) = told.recv_timeout(Duration::from_secs(20)).expect("ran");
        assert_eq!(flavor, tokio::runtime::RuntimeFlavor::CurrentThread);
        assert!(io);
        wait_until("the connection to end", || workers.open_connections() == vec![0, 0]);
    }
}

//! Wires a compiled config into a Pingora server: listeners (plain, TLS with
//! SNI, h2c), the proxy service and the health-check background task.

use super::error::ProcessError;
use super::load::{load, Compiled};
use super::pid_file::write_pid_file;
use super::signals::SignalHandler;
use crate::config::LoadedConfig;
use crate::proxy::Gateway;
use crate::serve::acceptor::Acceptor;
use crate::serve::admin::AdminApp;
use crate::serve::head::HeadRules;
use crate::serve::http1::ConnectionRules;
use crate::serve::workers::Workers;
use crate::snapshot::SharedSnapshot;
use crate::telemetry::access_log::{AccessLog, Sink};
use crate::upstream::health::HealthChecker;
use arc_swap::ArcSwap;
use pingora_core::apps::HttpServerOptions;
use pingora_core::listeners::tls::TlsSettings;
use pingora_core::listeners::{L4BufferSettings, ListenerConfig};
use pingora_core::protocols::l4::stream::DEFAULT_L4_WRITE_BUFFER_SIZE;
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::Server;
use pingora_core::services::background::background_service;
use pingora_core::services::listening::Service;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Options of `portico run`.
pub struct RunOptions<'a> {
    /// The config file to serve.
    pub config: &'a Path,
    /// Take over the listening sockets of a running instance (graceful upgrade).
    pub upgrade: bool,
}

fn server_conf(loaded: &LoadedConfig) -> ServerConf {
    let s = &loaded.config.server;
    ServerConf {
        threads: s.threads,
        work_stealing: s.work_stealing,
        upstream_keepalive_pool_size: s.upstream_keepalive_pool_size,
        grace_period_seconds: Some(s.grace_period.0.as_secs()),
        graceful_shutdown_timeout_seconds: Some(s.graceful_shutdown_timeout.0.as_secs()),
        pid_file: s.pid_file.clone(),
        upgrade_sock: s.upgrade_sock.clone(),
        // Pingora's timeouts of a second or more (the upstream read, write
        // and idle timeouts every proxied request arms) on tokio's timer
        // wheel rather than Pingora's shared timer map: fewer instructions
        // per request, no lock shared by every thread, and a cancelled
        // timer leaves at once instead of at its deadline (bench/TUNING.md,
        // change 13).
        fast_timeout_to_tokio_threshold_seconds: Some(0),
        ..ServerConf::default()
    }
}

/// How long a stopping listener still reads requests on connections it has
/// already accepted: half the grace period, at most two seconds.
fn drain_delay(loaded: &LoadedConfig) -> std::time::Duration {
    (loaded.config.server.grace_period.0 / 2).min(std::time::Duration::from_secs(2))
}

fn start_access_log(loaded: &LoadedConfig) -> Result<Option<AccessLog>, ProcessError> {
    let cfg = &loaded.config.server.access_log;
    let sink = match cfg.path.as_str() {
        "off" => return Ok(None),
        "stdout" => Sink::Stdout,
        path => Sink::File(PathBuf::from(path)),
    };
    AccessLog::start(sink, cfg.buffer)
        .map(Some)
        .map_err(|e| ProcessError::Startup(format!("cannot open access log {}: {e}", cfg.path)))
}

/// The default write buffer of connections served on Portico's threads: a
/// 16 KiB body and its head.
const WORKER_WRITE_BUFFER: usize = 16 * 1024 + 512;

/// A client buffer size (validated at load to be at most 1 MiB).
/// The admin API: all of it in store mode, the call log's part in file
/// mode when calls are recorded.
fn admin_api(
    server_cfg: &crate::config::ServerConfig,
    applier: Arc<dyn crate::serve::admin_api::Applier>,
) -> Result<Option<(axum::Router, crate::serve::admin_api::Shared)>, ProcessError> {
    let calls = server_cfg.call_log_on();
    if server_cfg.store.is_none() && calls.is_none() {
        return Ok(None);
    }
    let token = crate::serve::admin_api::token::AdminToken::load(&server_cfg.state_dir)
        .map_err(|e| ProcessError::Startup(format!("admin token in {}: {e}", server_cfg.state_dir.display())))?;
    Ok(Some(crate::serve::admin_api::router(
        crate::serve::admin_api::AdminState {
            store_url: server_cfg.store.clone(),
            store: tokio::sync::OnceCell::new(),
            token,
            applier,
            writes: tokio::sync::Mutex::new(()),
            calls: calls.map(|c| crate::calllog::CallReader::new(server_cfg, &c)),
        },
    )))
}

/// The console and the portal over the admin API, in store mode.
fn console(
    server_cfg: &crate::config::ServerConfig,
    config_path: &std::path::Path,
    api: Option<&(axum::Router, crate::serve::admin_api::Shared)>,
) -> Result<Option<axum::Router>, ProcessError> {
    let Some((api, state)) = api.filter(|_| server_cfg.store.is_some()) else {
        return Ok(None);
    };
    let gateway = server_cfg.listeners.first().map_or_else(
        || "http://127.0.0.1:8080".to_string(),
        |l| {
            let scheme = if l.tls.is_some() { "https" } else { "http" };
            let addr = l
                .address
                .replacen("0.0.0.0:", "127.0.0.1:", 1)
                .replacen("[::]:", "[::1]:", 1);
            format!("{scheme}://{addr}")
        },
    );
    let oidc = match &server_cfg.console.oidc {
        Some(o) => {
            let base = config_path.parent().unwrap_or(std::path::Path::new("."));
            let secret = match &o.client_secret {
                Some(r) => Some(
                    r.read(base)
                        .map_err(|e| ProcessError::Startup(format!("server.console.oidc.client_secret: {e}")))?,
                ),
                None => None,
            };
            Some(crate::serve::console::Oidc::new(o.clone(), secret))
        }
        None => None,
    };
    Ok(Some(crate::serve::console::routes(
        api.clone(),
        state.clone(),
        gateway,
        oidc,
    )))
}

fn buffer_size(s: crate::config::ConfSize) -> usize {
    usize::try_from(s.0).unwrap_or(0)
}

/// Builds the server and runs until shutdown. Returns only on a startup error.
pub fn run(opts: RunOptions) -> Result<(), ProcessError> {
    super::upgrade::remember_binary();
    super::secrets_key::create_at_start(opts.config);
    let Compiled {
        loaded,
        snapshot,
        listeners,
        store_revision,
        last_good,
    } = load(opts.config, None)?;
    let shared: SharedSnapshot = Arc::new(ArcSwap::from_pointee(snapshot));
    // Store mode: the revision the running config is compiled from (-1: not known).
    let applied = Arc::new(super::reload::StoreRevision::new(store_revision));
    if let (Some((mode, part)), Some(rev)) = (&last_good, store_revision) {
        applied.remember(mode, part, rev);
    }
    let access_log = start_access_log(&loaded)?;
    let server_cfg = &loaded.config.server;
    let call_log_cfg = server_cfg.call_log_on();
    let call_log = match &call_log_cfg {
        Some(cfg) => Some(
            crate::calllog::CallLog::start(server_cfg, cfg, crate::serve::drain::draining)
                .map_err(|e| ProcessError::Startup(format!("call log writer: {e}")))?,
        ),
        None => None,
    };
    let slow_call = call_log_cfg.as_ref().map_or(std::time::Duration::MAX, |c| c.slow.0);

    let opt = Opt {
        upgrade: opts.upgrade,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, server_conf(&loaded));
    // With --upgrade this blocks until the old process hands over its sockets.
    server.bootstrap();

    // h2c is a property of the service, so plain listeners with h2c get their own.
    let drain_delay = drain_delay(&loaded);
    let rules = ConnectionRules {
        keepalive: server_cfg.keepalive_timeout.0,
        head: HeadRules {
            timeout: server_cfg.request_head_timeout.0,
            max_bytes: usize::try_from(server_cfg.max_header_size.0).unwrap_or(usize::MAX),
            idle: server_cfg.keepalive_timeout.0,
        },
        body_timeout: server_cfg.request_body_timeout.0,
    };
    // Pingora's streams hold their write buffer while open; Portico's threads
    // hold it only while writing, so their default fits a 16 KiB body and its
    // head in one send (bench/TUNING.md, change 12).
    let read_buffer = buffer_size(server_cfg.client_read_buffer);
    let write_buffer = |default: usize| server_cfg.client_write_buffer.map_or(default, buffer_size);
    let buffers = L4BufferSettings::new(read_buffer, write_buffer(DEFAULT_L4_WRITE_BUFFER_SIZE));
    let worker_buffers = L4BufferSettings::new(read_buffer, write_buffer(WORKER_WRITE_BUFFER));
    // Without work stealing, plain HTTP/1 connections are served on Portico's
    // own threads (see crate::serve::workers), even with one: an idle connection then
    // holds about 4 KiB instead of 16 (bench/TUNING.md, changes 11 and 12).
    let workers = if !server_cfg.work_stealing {
        let workers = Workers::start(server_cfg.threads, "portico-worker")
            .map_err(|e| ProcessError::Startup(format!("worker threads: {e}")))?;
        if let Err(e) = workers.register_metrics() {
            log::warn!("portico_worker_connections not exposed: {e}");
        }
        Some(workers)
    } else {
        None
    };
    let proxy_service = |name: &str, h2c: bool| {
        let mut proxy = pingora_proxy::http_proxy(
            &server.configuration,
            Gateway::new(shared.clone(), access_log.clone()).with_call_log(call_log.clone(), slow_call),
        );
        if h2c {
            let mut options = HttpServerOptions::default();
            options.h2c = true;
            proxy.server_options = Some(options);
        }
        let app = Acceptor::new(proxy, drain_delay, rules);
        let app = match &workers {
            Some(w) => app.serving_on(w.clone(), worker_buffers),
            None => app,
        };
        Service::new(name.to_string(), app)
    };
    let mut main = proxy_service("portico", false);
    let mut h2c = proxy_service("portico-h2c", true);
    let mut has_h2c = false;
    for l in &listeners {
        match &l.tls {
            Some(resolver) => {
                let mut tls = TlsSettings::intermediate("", "").map_err(|e| ProcessError::Startup(e.to_string()))?;
                tls.set_cert_resolver(resolver.clone());
                if l.http2 {
                    tls.enable_h2();
                }
                main.add_listener(ListenerConfig::tcp(&l.address).tls(tls).l4_buffer(buffers));
            }
            None if l.h2c => {
                has_h2c = true;
                h2c.add_listener(ListenerConfig::tcp(&l.address).l4_buffer(buffers));
            }
            None => main.add_listener(ListenerConfig::tcp(&l.address).l4_buffer(buffers)),
        }
    }
    server.add_service(main);
    if has_h2c {
        server.add_service(h2c);
    }
    if let Some(addr) = &server_cfg.admin {
        let api = admin_api(
            server_cfg,
            Arc::new(super::admin_apply::StoreApplier {
                config: opts.config.to_path_buf(),
                snapshot: shared.clone(),
                listeners: listeners.clone(),
                applied: applied.clone(),
            }),
        )?;
        let mut admin = Service::new(
            "portico-admin".to_string(),
            AdminApp {
                listeners: listeners.len(),
                store_mode: server_cfg.store.is_some(),
                console: console(server_cfg, opts.config, api.as_ref())?,
                api: api.map(|(router, _)| router),
            },
        );
        admin.add_tcp(addr);
        server.add_service(admin);
    }
    server.add_service(background_service(
        "health checks",
        HealthChecker {
            pools: {
                let shared = shared.clone();
                Box::new(move || shared.load().pools.values().cloned().collect())
            },
        },
    ));
    if let Some(url) = &server_cfg.store {
        log::info!(
            "store mode: resources from the store, the last good config kept in {}",
            server_cfg.state_dir.display()
        );
        server.add_service(background_service(
            "store watcher",
            super::store_watch::StoreWatcher {
                config: opts.config.to_path_buf(),
                url: url.clone(),
                snapshot: shared.clone(),
                listeners: listeners.clone(),
                applied: applied.clone(),
            },
        ));
    }
    // Budget spend read back before serving, then kept (process::spend).
    server.add_service(background_service(
        "budget spend",
        super::spend::SpendKeeper::start(server_cfg, &shared),
    ));
    server.add_service(background_service(
        "signals",
        SignalHandler {
            config: opts.config.to_path_buf(),
            snapshot: shared,
            listeners: listeners.clone(),
            applied,
            access_log,
            upgrade_sock: server_cfg.upgrade_sock.clone(),
            pid_file: server_cfg.pid_file.clone(),
        },
    ));
    // The sockets are ours now (bound, or handed over by the old process).
    write_pid_file(&server_cfg.pid_file);
    let _ = sd_notify::notify(
        false,
        &[
            sd_notify::NotifyState::MainPid(std::process::id()),
            sd_notify::NotifyState::Ready,
        ],
    );
    log::info!(
        "portico {} serving {} listener(s) from {}",
        env!("CARGO_PKG_VERSION"),
        listeners.len(),
        loaded.file
    );
    server.run_forever();
}

//! Test harness: real upstream servers (hyper, in-process, port 0) and a real
//! Portico process started from the built binary with a generated config.
#![allow(dead_code)]

mod fn_server;
mod load;
mod lossy_relay;
mod mock;
mod postgres;
mod raw;
pub(crate) use fn_server::FnServer;
#[allow(unused_imports)]
pub(crate) use load::*;
pub(crate) use lossy_relay::LossyRelay;
pub(crate) use mock::{chat_completion, Mock};
pub(crate) use postgres::Postgres;
#[allow(unused_imports)]
pub(crate) use raw::*;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// A port that was free a moment ago (Pingora listeners need a known port),
/// and that no other test of this process was given: the kernel may hand a
/// port it just freed to the next bind, and two gateways told the same port
/// would answer each other's requests.
pub(crate) fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Shared state of a test upstream.
pub(crate) struct UpstreamState {
    pub name: String,
    pub hits: AtomicUsize,
    /// What `/health` answers: 200 when true, 503 when false.
    pub healthy: AtomicBool,
    /// The largest request body received in full.
    pub max_body: AtomicUsize,
}

/// An HTTP/1.1 + h2c upstream that echoes the request as JSON:
/// `{"upstream", "method", "path", "query", "headers": {..}, "body"}`.
/// Special paths: `/health`, `/status/{code}`, `/delay/{ms}`, `/reset` (closes the connection).
pub(crate) struct Upstream {
    pub addr: SocketAddr,
    pub state: Arc<UpstreamState>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    pub(crate) async fn start(name: &str) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind upstream");
        Self::serve(name, listener)
    }

    /// Serves on a specific listener (e.g. to bring a target back on its old port).
    pub(crate) fn serve(name: &str, listener: TcpListener) -> Upstream {
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(UpstreamState {
            name: name.to_string(),
            hits: AtomicUsize::new(0),
            healthy: AtomicBool::new(true),
            max_body: AtomicUsize::new(0),
        });
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| handle(st.clone(), req));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Upstream { addr, state, task }
    }

    pub(crate) fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    pub(crate) fn set_healthy(&self, v: bool) {
        self.state.healthy.store(v, Ordering::SeqCst);
    }

    /// Stops accepting; the port then refuses connections.
    pub(crate) fn stop(self) -> SocketAddr {
        self.task.abort();
        self.addr
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    st: Arc<UpstreamState>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let path = req.uri().path().to_string();
    if path == "/health" {
        let ok = st.healthy.load(Ordering::SeqCst);
        let status = if ok { 200 } else { 503 };
        return Ok(Response::builder()
            .status(status)
            .body(Full::new(Bytes::from_static(b"health")))
            .unwrap());
    }
    st.hits.fetch_add(1, Ordering::SeqCst);
    if let Some(ms) = path.strip_prefix("/delay/").and_then(|m| m.parse::<u64>().ok()) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let status = path
        .strip_prefix("/status/")
        .and_then(|c| c.parse::<u16>().ok())
        .unwrap_or(200);
    let method = req.method().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let mut headers = serde_json::Map::new();
    for (k, v) in req.headers() {
        headers.insert(
            k.to_string(),
            serde_json::Value::String(String::from_utf8_lossy(v.as_bytes()).into()),
        );
    }
    let version = format!("{:?}", req.version());
    let body = body_bytes(req).await;
    st.max_body.fetch_max(body.len(), Ordering::SeqCst);
    let v = serde_json::json!({
        "upstream": st.name,
        "method": method,
        "path": path,
        "query": query,
        "version": version,
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-upstream", st.name.as_str())
        .body(Full::new(Bytes::from(v.to_string())))
        .unwrap())
}

/// The whole request body (empty when it cannot be read).
pub(super) async fn body_bytes(req: Request<Incoming>) -> Bytes {
    req.into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default()
}

/// A running Portico process; killed on drop, and its folder removed
/// unless the test failed.
pub(crate) struct Gateway {
    pub port: u16,
    /// Admin listener port (when the generated server block is used).
    pub admin_port: u16,
    pub dir: PathBuf,
    child: Child,
}

/// This process's folder for test files, `portico-tests/<pid>` in the
/// system's temp dir. When it is first made, the folders of test processes
/// no longer running are removed, so a run leaves behind at most what its
/// failed tests kept.
fn run_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let base = std::env::temp_dir().join("portico-tests");
        for entry in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let running = entry
                .file_name()
                .to_str()
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
            if !running {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        base.join(std::process::id().to_string())
    })
}

/// A fresh temp dir for one test.
pub(crate) fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = run_root().join(format!("{tag}-{}", N.fetch_add(1, Ordering::SeqCst)));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

pub(crate) fn portico_bin() -> &'static str {
    env!("CARGO_BIN_EXE_portico")
}

impl Gateway {
    /// Starts Portico with `yaml`, where `${PORT}` is replaced by a free port and
    /// `${DIR}` by the test's temp dir. Adds a `server:` block (listener on
    /// `${PORT}`, 2 threads, private pid file, upgrade socket and state
    /// directory, so budget spend starts at zero) when the YAML has none.
    /// Waits until the listener accepts connections.
    pub(crate) async fn start(yaml: &str) -> Gateway {
        Gateway::start_from(Path::new(portico_bin()), yaml).await
    }

    /// As [`Gateway::start`], running the binary at `bin`.
    pub(crate) async fn start_from(bin: &Path, yaml: &str) -> Gateway {
        Gateway::start_with_env(bin, yaml, &[]).await
    }

    /// As [`Gateway::start_from`], with these environment variables set.
    pub(crate) async fn start_with_env(bin: &Path, yaml: &str, env: &[(&str, &str)]) -> Gateway {
        let port = free_port();
        let dir = temp_dir("gw");
        let mut text = yaml.to_string();
        if !text.contains("server:") {
            text = format!(
                "server:\n  listeners:\n    - address: 127.0.0.1:${{PORT}}\n  threads: 2\n  admin: 127.0.0.1:${{ADMIN}}\n  \
                 access_log: {{path: ${{DIR}}/access.log}}\n  pid_file: ${{DIR}}/portico.pid\n  upgrade_sock: ${{DIR}}/upgrade.sock\n  \
                 state_dir: ${{DIR}}/state\n{text}"
            );
        }
        let admin_port = free_port();
        let text = text
            .replace("${PORT}", &port.to_string())
            .replace("${ADMIN}", &admin_port.to_string())
            .replace("${DIR}", &dir.display().to_string());
        let conf = dir.join("portico.yaml");
        std::fs::write(&conf, text).expect("write config");
        let log = std::fs::File::create(dir.join("portico.log")).expect("log file");
        let child = Command::new(bin)
            .args(["run", "-c"])
            .arg(&conf)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn portico");
        let mut gw = Gateway {
            port,
            admin_port,
            dir,
            child,
        };
        let admin = std::fs::read_to_string(&conf)
            .unwrap_or_default()
            .contains(&format!("127.0.0.1:{admin_port}"));
        gw.wait_ready(admin).await;
        gw
    }

    /// Waits until the listener (and the admin listener, when configured) accept connections.
    async fn wait_ready(&mut self, admin: bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = |port: u16| async move { tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() };
            if up(self.port).await && (!admin || up(self.admin_port).await) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("portico exited early ({status}):\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "portico did not start:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process's exit status, if it has exited.
    pub(crate) fn try_exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits for the Portico process to exit; panics with its log after `timeout`.
    pub(crate) async fn wait_exit(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !matches!(self.child.try_wait(), Ok(Some(_))) {
            assert!(Instant::now() < deadline, "portico did not exit:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("portico.log")).unwrap_or_default()
    }
}

impl Gateway {
    /// Pid of the process started by the test.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGHUP (reload) to the process started.
    pub(crate) fn hup(&self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid() as i32),
            nix::sys::signal::Signal::SIGHUP,
        )
        .expect("SIGHUP");
    }

    /// The access-log line (`${DIR}/access.log`) of the request with
    /// `request_id`, once the writer thread has written it.
    pub(crate) async fn access_log_line(&self, request_id: &str) -> serde_json::Value {
        let log = self.dir.join("access.log");
        let line = || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .find(|l| l.contains(request_id))
                .map(str::to_string)
        };
        wait_until("the access-log line", Duration::from_secs(20), || async {
            line().is_some()
        })
        .await;
        serde_json::from_str(&line().unwrap_or_default()).expect("a JSON line")
    }

    pub(crate) fn config_path(&self) -> PathBuf {
        self.dir.join("portico.yaml")
    }

    /// GET on the admin listener.
    pub(crate) async fn admin(&self, path: &str) -> (u16, String) {
        let r = client()
            .get(format!("http://127.0.0.1:{}{}", self.admin_port, path))
            .send()
            .await
            .expect("admin request");
        let status = r.status().as_u16();
        (status, r.text().await.unwrap_or_default())
    }

    /// The value of one sample line of /metrics (`name{labels}` exactly as exposed).
    pub(crate) async fn metric(&self, series: &str) -> Option<f64> {
        let (_, text) = self.admin("/metrics").await;
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // After an upgrade the serving process is a descendant: stop it too.
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("portico.pid")) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                if pid as u32 != self.child.id() {
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                }
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Kept when the test failed, for its log; else removed, so runs leave
        // nothing behind.
        if std::thread::panicking() {
            eprintln!("gateway folder kept: {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A plain HTTP client with no connection reuse surprises and a generous timeout.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .no_proxy()
        .build()
        .expect("client")
}

/// A client that opens a new connection per request. Tests that expect error
/// responses use it so that they check one thing each; connection reuse after
/// an error has its own test (`error_responses_announce_connection_close`).
pub(crate) fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .pool_max_idle_per_host(0)
        .no_proxy()
        .build()
        .expect("client")
}

/// Checks the JSON error shape and that x-request-id equals error.request_id.
pub(crate) async fn expect_error(
    r: reqwest::Response,
    status: u16,
    kind: &str,
) -> (reqwest::header::HeaderMap, serde_json::Value) {
    assert_eq!(r.status().as_u16(), status, "status");
    let headers = r.headers().clone();
    let rid = headers
        .get("x-request-id")
        .expect("x-request-id header")
        .to_str()
        .unwrap()
        .to_string();
    assert!(!rid.is_empty(), "empty x-request-id");
    let ct = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap_or(""))
        .unwrap_or("");
    assert!(ct.starts_with("application/json"), "content-type {ct:?}");
    let v: serde_json::Value = r.json().await.expect("JSON error body");
    let obj = v.as_object().expect("object");
    assert_eq!(obj.len(), 1, "only `error` at top level: {v}");
    let e = v["error"].as_object().expect("error object");
    let mut keys: Vec<&str> = e.keys().map(|k| k.as_str()).collect();
    keys.sort();
    assert_eq!(keys, ["code", "message", "param", "request_id", "type"], "{v}");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert_eq!(e["code"], kind, "{v}");
    assert_eq!(e["type"], error_category(status), "{v}");
    assert_eq!(e["request_id"], rid.as_str(), "{v}");
    (headers, v)
}

/// OpenAI's error category (`type`) Portico sends with each status.
pub(crate) fn error_category(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 | 410 => "not_found_error",
        429 => "rate_limit_error",
        500.. => "server_error",
        _ => "invalid_request_error",
    }
}

/// A config with one upstream `a` at `addr` and one route `api` to it;
/// `route_extra` adds lines to that route (e.g. `"    paths: [/api/*]\n"`),
/// `more` adds text after it (e.g. further routes).
pub(crate) fn one_upstream(addr: impl std::fmt::Display, route_extra: &str, more: &str) -> String {
    format!("upstreams:\n  a:\n    targets:\n      - address: {addr}\nroutes:\n  - name: api\n    upstream: a\n{route_extra}{more}")
}

/// Polls `f` until it returns true or the deadline passes.
pub(crate) async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// GET and parse the echo JSON (or error JSON) body.
pub(crate) async fn get_json(c: &reqwest::Client, url: &str) -> (u16, serde_json::Value) {
    let r = c.get(url).send().await.expect("request");
    let status = r.status().as_u16();
    let v = r.json().await.unwrap_or(serde_json::Value::Null);
    (status, v)
}

/// Sends SIGHUP and waits until the gateway counts `n` successful reloads in all.
pub(crate) async fn reload_and_wait(gw: &Gateway, n: u32) {
    gw.hup();
    wait_for_reloads(gw, "ok", n).await;
}

/// Waits until `portico_config_reloads_total{result}` reaches `n`.
pub(crate) async fn wait_for_reloads(gw: &Gateway, result: &str, n: u32) {
    let series = format!("portico_config_reloads_total{{result=\"{result}\"}}");
    let what = format!("{n} reload(s) counted {result}");
    wait_until(&what, Duration::from_secs(20), || async {
        gw.metric(&series).await == Some(f64::from(n))
    })
    .await;
}

/// Rewrites the gateway's config, keeping its generated `server:` block.
pub(crate) fn rewrite_config(gw: &Gateway, rest: &str) {
    let text = std::fs::read_to_string(gw.config_path()).expect("config");
    let server_end = ["\nroutes:", "\nupstreams:", "\nconsumers:", "\ndefault_policies:"]
        .iter()
        .filter_map(|k| text.find(k))
        .min()
        .expect("server block end")
        + 1;
    std::fs::write(gw.config_path(), format!("{}{}", &text[..server_end], rest)).expect("write config");
}

/// One raw HTTP/1.1 request, so the request target reaches the gateway
/// byte for byte (reqwest would normalise dot segments itself).
pub(crate) async fn raw_get(port: u16, target: &str) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let req = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf))
        .await
        .expect("response within 20s")
        .expect("read");
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("header end");
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    let body = if chunked { dechunk(body) } else { body.to_string() };
    (status, serde_json::from_str(&body).unwrap_or(serde_json::Value::Null))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

//! AI budget spend survives restarts: a graceful stop (SIGTERM) and a crash
//! (SIGKILL once the spend is written) both leave a budget's spend where it
//! was, in file mode (`state_dir/spend.db`) and in store mode (the store's
//! `spend` table, on SQLite and on PostgreSQL). The provider is a tiny
//! OpenAI-speaking server that charges 20 tokens a call, priced so that a
//! call costs $0.02.

use crate::support::*;
use portico::store::Store;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// What the budget allows: two calls of $0.02 fit under it, a third call
/// is admitted at $0.04 and spends it.
const BUDGET: &str = "usd_per_day: 0.05";

async fn provider() -> FnServer {
    FnServer::start(|_, _, _| (200, chat_completion("m", 10, 10))).await
}

/// Everything but `server`: a consumer (key "test"), the provider, its
/// price, the budget and an AI route.
fn resources(provider: &FnServer, key_file: &Path) -> String {
    format!(
        "consumers:\n  - name: team-a\n    credentials:\n      api_keys: [{{sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08}}]\n\
ai:\n  providers:\n    oai: {{kind: openai, base_url: 'http://{}/v1', keys: [{{file: {}}}]}}\n\
\x20 prices:\n    oai/m: {{input: 1000.0, output: 1000.0}}\n\
\x20 budgets:\n    - {{consumer: team-a, {BUDGET}}}\n\
routes:\n  - name: llm\n    paths: [/v1/*]\n    ai: {{}}\n    policies:\n      - key_auth: {{}}\n",
        provider.addr,
        key_file.display()
    )
}

/// A server section; `extra` adds lines (`store`, `state_dir`).
fn server(extra: &str) -> String {
    format!(
        "server:\n  listeners:\n    - address: 127.0.0.1:${{PORT}}\n  admin: 127.0.0.1:${{ADMIN}}\n  threads: 2\n  \
         grace_period: 1s\n  graceful_shutdown_timeout: 1s\n  \
         pid_file: ${{DIR}}/portico.pid\n  upgrade_sock: ${{DIR}}/upgrade.sock\n{extra}"
    )
}

async fn call(gw: &Gateway) -> (u16, Value) {
    let r = fresh_client()
        .post(gw.url("/v1/chat/completions"))
        .header("x-api-key", "test")
        .json(&json!({"model": "oai/m", "messages": [{"role": "user", "content": "hello"}]}))
        .send()
        .await
        .expect("call");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn signal(gw: &Gateway, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(gw.pid() as i32), sig).expect("signal");
}

/// The stored total of the daily window, in micro-USD.
async fn stored(url: &str) -> Option<i64> {
    let store = Store::open(url).await.ok()?;
    let rows = store.spend().await.ok()?;
    rows.into_iter().find(|r| r.period == "usd_day").map(|r| r.amount)
}

/// One call, a graceful stop, a restart that still counts it, a second call
/// written to the database, a crash, and a restart whose budget is spent by
/// the third call: $0.06, exactly what was spent.
async fn spend_survives_restarts(config: &str, db_url: &str) {
    let gw = Gateway::start(config).await;
    assert_eq!(call(&gw).await.0, 200, "{}", gw.log());
    signal(&gw, nix::sys::signal::Signal::SIGTERM);
    let mut gw = gw;
    gw.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(stored(db_url).await, Some(20_000), "written at shutdown:\n{}", gw.log());

    let mut gw = Gateway::start(config).await;
    assert!(gw.log().contains("budget spend: 1 window(s) read"), "{}", gw.log());
    assert_eq!(call(&gw).await.0, 200, "$0.02 of $0.05 spent");
    wait_until("the second call is written", Duration::from_secs(20), || async {
        stored(db_url).await == Some(40_000)
    })
    .await;
    signal(&gw, nix::sys::signal::Signal::SIGKILL);
    gw.wait_exit(Duration::from_secs(30)).await;

    let gw = Gateway::start(config).await;
    assert_eq!(call(&gw).await.0, 200, "$0.04 of $0.05 spent: {}", gw.log());
    let (status, v) = call(&gw).await;
    assert_eq!(status, 429, "{v}");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("daily budget of $0.05") && message.ends_with("($0.060000 used)"),
        "{message}"
    );
}

fn key_file(dir: &Path) -> std::path::PathBuf {
    let file = dir.join("provider.key");
    std::fs::write(&file, "sk-test").expect("key file");
    file
}

#[tokio::test]
async fn file_mode_keeps_spend_in_state_dir() {
    let dir = temp_dir("spend-file");
    let upstream = provider().await;
    let state = dir.join("state");
    let config = format!(
        "{}{}",
        server(&format!("  state_dir: {}\n", state.display())),
        resources(&upstream, &key_file(&dir))
    );
    let url = format!("sqlite://{}", state.join("spend.db").display());
    spend_survives_restarts(&config, &url).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Store mode: the resources are imported into the store, which keeps the spend too.
async fn store_mode(url: &str, dir: &Path) {
    let upstream = provider().await;
    let file = dir.join("resources.yaml");
    std::fs::write(&file, resources(&upstream, &key_file(dir))).expect("resources");
    let out = std::process::Command::new(portico_bin())
        .args(["import", file.to_str().unwrap_or_default(), "--store", url])
        .output()
        .expect("portico import");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let config = server(&format!(
        "  store: '{url}'\n  state_dir: {}\n",
        dir.join("state").display()
    ));
    spend_survives_restarts(&config, url).await;
}

#[tokio::test]
async fn store_mode_keeps_spend_in_the_store_on_sqlite() {
    let dir = temp_dir("spend-sqlite");
    let url = format!("sqlite://{}", dir.join("store.db").display());
    store_mode(&url, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn store_mode_keeps_spend_in_the_store_on_postgres() {
    let dir = temp_dir("spend-pg");
    let pg = Postgres::start().await;
    store_mode(&pg.url(), &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
}

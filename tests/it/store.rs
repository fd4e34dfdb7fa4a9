//! The store of store mode on both backends: SQLite (a file in a temporary
//! directory) and a real PostgreSQL (Debian's, started by the test). The
//! same checks run on each: versions and If-Match, concurrent writers, the
//! revision, the audit log, and `portico import`/`export` round trips that
//! `portico check` accepts, with a bad config refused and nothing written.

use crate::support::*;
use portico::store::spend::SpendRow;
use portico::store::{Store, StoreError};
use serde_json::json;
use std::process::Command;
use tempfile::TempDir;

/// A temporary folder, removed when dropped.
fn temp_folder() -> TempDir {
    tempfile::Builder::new()
        .prefix("portico-store-")
        .tempdir()
        .expect("temp dir")
}

fn sqlite_url() -> (TempDir, String) {
    let dir = temp_folder();
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    (dir, url)
}

/// Versions, If-Match, deletes, the revision and the audit log.
async fn versions_and_audit(url: &str) {
    let store = Store::open(url).await.unwrap();
    assert_eq!(store.revision().await.unwrap(), 0);
    let body = json!({"name": "r1", "upstream": "a"});
    let r = store.put("route", "r1", &body, Some(0), "alice").await.unwrap();
    assert_eq!((r.version, r.position), (1, 0));
    // If-Match 0 means "only if new": a second create is stale.
    let e = store.put("route", "r1", &body, Some(0), "bob").await.unwrap_err();
    assert!(matches!(e, StoreError::Stale { actual: 1, .. }), "{e}");
    let body2 = json!({"name": "r1", "upstream": "b"});
    let r = store.put("route", "r1", &body2, Some(1), "bob").await.unwrap();
    assert_eq!(r.version, 2);
    let e = store.put("route", "r1", &body, Some(1), "carol").await.unwrap_err();
    assert!(matches!(e, StoreError::Stale { expected: 1, .. }), "{e}");
    store
        .put("route", "r0", &json!({"name": "r0"}), None, "alice")
        .await
        .unwrap();
    let list = store.list("route", None, 10).await.unwrap();
    assert_eq!(list.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["r0", "r1"]);
    assert_eq!(store.list("route", Some("r0"), 10).await.unwrap().len(), 1, "cursor");
    assert_eq!(store.get("route", "r1").await.unwrap().unwrap().body, body2);
    // Positions keep the order written: r1 first, then r0.
    let all = store.all().await.unwrap();
    assert_eq!(all.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["r1", "r0"]);
    assert!(matches!(
        store.delete("route", "r1", Some(1), "dave").await.unwrap_err(),
        StoreError::Stale { .. }
    ));
    store.delete("route", "r1", Some(2), "dave").await.unwrap();
    assert!(store.get("route", "r1").await.unwrap().is_none());
    assert!(matches!(
        store.delete("route", "r1", None, "dave").await.unwrap_err(),
        StoreError::NotFound { .. }
    ));
    assert_eq!(store.revision().await.unwrap(), 4, "four writes took effect");
    let audit = store.audit(0, 100).await.unwrap();
    let seen: Vec<(&str, &str)> = audit.iter().map(|a| (a.actor.as_str(), a.action.as_str())).collect();
    assert_eq!(
        seen,
        [("alice", "put"), ("bob", "put"), ("alice", "put"), ("dave", "delete")]
    );
    assert_eq!(audit[1].before, Some(body.clone()));
    assert_eq!(audit[1].after, Some(body2.clone()));
    assert_eq!(audit[3].after, None);
    // Reopening keeps everything (and migrations do not run twice).
    drop(store);
    let store = Store::open(url).await.unwrap();
    assert_eq!(store.revision().await.unwrap(), 4);
    assert_eq!(store.all().await.unwrap().len(), 1);
}

/// Writers that read the same version race: exactly one wins.
async fn one_of_two_racing_writers_wins(url: &str) {
    let store = Store::open(url).await.unwrap();
    store
        .put("upstream", "race", &json!({"targets": []}), None, "t")
        .await
        .unwrap();
    let v = store.get("upstream", "race").await.unwrap().unwrap().version;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.put("upstream", "race", &json!({"writer": i}), Some(v), "racer").await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(StoreError::Stale { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(won, 1, "exactly one writer of version {v} wins");
    assert_eq!(store.get("upstream", "race").await.unwrap().unwrap().version, v + 1);
}

/// Budget spend rows add deltas: writers in one window all count, a newer
/// window replaces an older one, and a delta for an older window is dropped.
async fn spend_adds_deltas(url: &str) {
    let row = |window: i64, amount: i64| SpendRow {
        budget_key: "{\"consumer\":\"a\"}".into(),
        period: "usd_day".into(),
        window,
        amount,
    };
    let one = Store::open(url).await.unwrap();
    let two = Store::open(url).await.unwrap();
    assert!(one.spend().await.unwrap().is_empty());
    one.add_spend(&[row(100, 5)]).await.unwrap();
    two.add_spend(&[row(100, 7)]).await.unwrap();
    assert_eq!(one.spend().await.unwrap(), [row(100, 12)]);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = if tasks.len() % 2 == 0 { one.clone() } else { two.clone() };
        tasks.push(tokio::spawn(async move { s.add_spend(&[row(100, 1)]).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(two.spend().await.unwrap(), [row(100, 20)], "no delta lost");
    two.add_spend(&[row(101, 3)]).await.unwrap();
    one.add_spend(&[row(100, 50)]).await.unwrap();
    assert_eq!(one.spend().await.unwrap(), [row(101, 3)]);
    assert_eq!(one.forget_spend_older_than(1).await.unwrap(), 0, "written just now");
}

/// Runs `portico`; whether it succeeded, and its output (stdout, then stderr).
fn portico(args: &[&str]) -> (bool, String) {
    let (ok, stdout, stderr) = portico_out(args);
    (ok, stdout + &stderr)
}

fn portico_out(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(portico_bin())
        .args(args)
        .env("OPENAI_API_KEY", "k")
        .env("ANTHROPIC_API_KEY", "k")
        .env("ANTHROPIC_API_KEY_2", "k")
        .env("GEMINI_API_KEY", "k")
        .env("GROQ_API_KEY", "k")
        .env("AZURE_OPENAI_KEY", "k")
        .env("TEAM_SEARCH_KEY", "k")
        .output()
        .expect("portico");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `import` then `export` gives a config `check` accepts, and exporting it
/// again after re-importing gives the same text; a bad config is refused
/// with `check`'s message and the store is left as it was.
async fn import_export_round_trip(url: &str) {
    let work = temp_folder();
    for file in ["conf/portico.yaml", "conf/examples/ai.yaml"] {
        let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
        let (ok, out) = portico(&["import", &path, "--store", url]);
        assert!(ok, "{file}: {out}");
        let (ok, exported, err) = portico_out(&["export", "--store", url]);
        assert!(ok, "{exported}{err}");
        // The exported config plus a server section is a config `check` accepts.
        let server = "server:\n  listeners: [{address: 127.0.0.1:0}]\n";
        let again = work.path().join("again.yaml");
        std::fs::write(&again, format!("{server}{exported}")).unwrap();
        let (ok, out) = portico(&["check", "-c", again.to_str().unwrap()]);
        assert!(ok, "{file} exported:\n{exported}\ncheck: {out}");
        let (ok, out) = portico(&["import", again.to_str().unwrap(), "--store", url]);
        assert!(ok, "{out}");
        let (_, exported_again, _) = portico_out(&["export", "--store", url]);
        let body = |t: &str| t.lines().skip(1).collect::<Vec<_>>().join("\n");
        assert_eq!(body(&exported), body(&exported_again), "{file}: export is stable");
    }
    let store = Store::open(url).await.unwrap();
    let before = (store.revision().await.unwrap(), store.all().await.unwrap());
    let bad = work.path().join("bad.yaml");
    std::fs::write(&bad, "routes:\n  - name: r\n    upstream: nowhere\n").unwrap();
    let (ok, out) = portico(&["import", bad.to_str().unwrap(), "--store", url]);
    assert!(!ok);
    assert!(
        out.contains("bad.yaml:3:") && out.contains("nowhere"),
        "check's located message: {out}"
    );
    let after = (store.revision().await.unwrap(), store.all().await.unwrap());
    assert_eq!(before, after, "nothing written");
}

#[tokio::test]
async fn sqlite_store() {
    let (_dir, url) = sqlite_url();
    versions_and_audit(&url).await;
    let (_dir, url) = sqlite_url();
    one_of_two_racing_writers_wins(&url).await;
    let (_dir, url) = sqlite_url();
    import_export_round_trip(&url).await;
    let (_dir, url) = sqlite_url();
    spend_adds_deltas(&url).await;
}

#[tokio::test]
async fn postgres_store() {
    let pg = Postgres::start().await;
    versions_and_audit(&pg.url()).await;
    one_of_two_racing_writers_wins(&pg.url()).await;
    import_export_round_trip(&pg.url()).await;
    spend_adds_deltas(&pg.url()).await;
}

#[tokio::test]
async fn a_store_url_that_names_no_database_is_refused() {
    let e = Store::open("mysql://x").await.unwrap_err();
    assert!(e.to_string().contains("sqlite://PATH or postgres://"), "{e}");
    let (ok, out) = portico(&["export", "--store", "redis://x"]);
    assert!(!ok && out.contains("store URL"), "{out}");
}

/// A server section in store mode, for [`Gateway::start`].
fn store_mode_server(url: &str, state: &std::path::Path) -> String {
    format!(
        "server:\n  listeners:\n    - address: 127.0.0.1:${{PORT}}\n  admin: 127.0.0.1:${{ADMIN}}\n  threads: 2\n  \
         pid_file: ${{DIR}}/portico.pid\n  upgrade_sock: ${{DIR}}/upgrade.sock\n  store: '{url}'\n  state_dir: {}\n",
        state.display()
    )
}

const SEED: &str = "routes:\n  - name: hello\n    paths: [/hello]\n    response: {status: 200, body: hi}\n";

async fn body_of(url: &str) -> Option<(u16, String)> {
    let r = client().get(url).send().await.ok()?;
    let status = r.status().as_u16();
    Some((status, r.text().await.unwrap_or_default()))
}

fn seed(url: &str, dir: &std::path::Path) {
    let file = dir.join("seed.yaml");
    std::fs::write(&file, SEED).unwrap();
    let (ok, out) = portico(&["import", file.to_str().unwrap(), "--store", url]);
    assert!(ok, "{out}");
}

/// A gateway in store mode on a new SQLite store seeded with [`SEED`]:
/// the store's folder, its URL, the gateway's `state_dir` and the gateway.
async fn seeded_gateway() -> (TempDir, String, std::path::PathBuf, Gateway) {
    let (dir, url) = sqlite_url();
    seed(&url, dir.path());
    let state = dir.path().join("state");
    let gw = Gateway::start(&store_mode_server(&url, &state)).await;
    (dir, url, state, gw)
}

/// Store mode serves the store's config, follows its writes without a
/// signal, and refuses a write that does not compile.
#[tokio::test]
async fn a_gateway_in_store_mode_serves_the_store_and_follows_its_writes() {
    let (_dir, url, state, gw) = seeded_gateway().await;
    assert_eq!(
        body_of(&gw.url("/hello")).await,
        Some((200, "hi".into())),
        "{}",
        gw.log()
    );
    let store = Store::open(&url).await.unwrap();
    let bye = json!({"name": "bye", "paths": ["/bye"], "response": {"status": 200, "body": "bye"}});
    store.put("route", "bye", &bye, None, "test").await.unwrap();
    wait_until(
        "the new route is served",
        std::time::Duration::from_secs(30),
        || async { body_of(&gw.url("/bye")).await.is_some_and(|(s, _)| s == 200) },
    )
    .await;
    // A route to an upstream that does not exist does not compile: refused,
    // and the running config keeps serving.
    let bad = json!({"name": "bad", "paths": ["/bad"], "upstream": "nowhere"});
    store.put("route", "bad", &bad, None, "test").await.unwrap();
    wait_until(
        "the bad revision is rejected",
        std::time::Duration::from_secs(30),
        || async { gw.log().contains("rejected, the running config keeps serving") },
    )
    .await;
    assert_eq!(body_of(&gw.url("/bye")).await.map(|b| b.0), Some(200));
    assert!(state.join("last-good.yaml").exists(), "the last good config is kept");
}

/// With the store down, a restart serves the last config compiled from it,
/// and says so in `portico_store_up`, `portico_config_from_last_good` and
/// `/readyz`.
#[tokio::test]
async fn store_mode_starts_from_the_last_good_config_when_the_store_is_down() {
    let dir = temp_folder();
    let state = dir.path().join("state");
    let pg = Postgres::start().await;
    seed(&pg.url(), dir.path());
    let server = store_mode_server(&pg.url(), &state);
    {
        let gw = Gateway::start(&server).await;
        assert_eq!(body_of(&gw.url("/hello")).await.map(|b| b.0), Some(200), "{}", gw.log());
        assert_eq!(
            gw.admin("/readyz").await,
            (200, r#"{"status":"ready","store":"up","config":"store"}"#.into())
        );
    }
    drop(pg);
    let gw = Gateway::start(&server).await;
    assert_eq!(
        body_of(&gw.url("/hello")).await,
        Some((200, "hi".into())),
        "{}",
        gw.log()
    );
    let metrics = body_of(&format!("http://127.0.0.1:{}/metrics", gw.admin_port))
        .await
        .unwrap()
        .1;
    assert!(metrics.contains("portico_store_up 0"), "{metrics}");
    assert!(metrics.contains("portico_config_from_last_good 1"), "{metrics}");
    // Still ready (it serves), but it says what it serves from.
    assert_eq!(
        gw.admin("/readyz").await,
        (
            200,
            r#"{"status":"ready","store":"unreachable","config":"last-good"}"#.into()
        )
    );
}

/// In store mode the file holds only `server`: a section the store owns is
/// refused with a message that says where it goes.
#[tokio::test]
async fn a_store_mode_file_that_declares_routes_is_refused() {
    let (dir, url) = sqlite_url();
    let file = dir.path().join("p.yaml");
    std::fs::write(
        &file,
        format!(
            "server:\n  store: '{url}'\n  state_dir: {}\n{SEED}",
            dir.path().display()
        ),
    )
    .unwrap();
    let (ok, out) = portico(&["check", "-c", file.to_str().unwrap()]);
    assert!(!ok && out.contains("routes") && out.contains("portico import"), "{out}");
}

/// The admin API reads the store: resources with their version as ETag,
/// pages, the audit log and the whole config; only with the admin token,
/// which a first start writes 0600 into `state_dir`; errors are problem+json.
#[tokio::test]
async fn the_admin_api_reads_the_store_with_the_admin_token() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, _url, state, gw) = seeded_gateway().await;
    let token_file = state.join("admin-token");
    let token = std::fs::read_to_string(&token_file).expect("a first start writes the admin token");
    assert_eq!(
        std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let admin = |path: &str| format!("http://127.0.0.1:{}{path}", gw.admin_port);
    let c = client();
    let r = c.get(admin("/admin/v1/resources/route")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = c
        .get(admin("/admin/v1/resources/route"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let get = |path: &str| c.get(admin(path)).bearer_auth(token.trim()).send();
    let r = get("/admin/v1/resources/route").await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["items"][0]["name"], "hello", "{v}");
    assert_eq!(v["items"][0]["version"], 1);
    let r = get("/admin/v1/resources/route/hello").await.unwrap();
    assert_eq!(
        (r.status().as_u16(), r.headers()["etag"].to_str().unwrap()),
        (200, "\"1\"")
    );
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["paths"][0], "/hello");
    let r = get("/admin/v1/resources/route/nope").await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["status"], 404);
    assert_eq!(get("/admin/v1/resources/route?limit=0").await.unwrap().status(), 400);
    let yaml = get("/admin/v1/config").await.unwrap().text().await.unwrap();
    assert!(yaml.contains("name: hello"), "{yaml}");
    let v: serde_json::Value = get("/admin/v1/audit").await.unwrap().json().await.unwrap();
    assert_eq!(v["items"][0]["action"], "import", "{v}");
    assert_eq!(get("/admin/v1/nothing").await.unwrap().status(), 404);
    // The rest of the admin listener is as in file mode.
    assert_eq!(c.get(admin("/healthz")).send().await.unwrap().status(), 200);
}

/// An admin write is compiled before it is written, refused with 422 and the
/// located problem when it does not compile, conditional on If-Match (412
/// when stale), and served by the very next request once it returns.
#[tokio::test]
async fn admin_writes_are_checked_conditional_and_served_at_once() {
    let (_dir, url, state, gw) = seeded_gateway().await;
    let token = std::fs::read_to_string(state.join("admin-token")).unwrap();
    let token = token.trim();
    let admin = |path: &str| format!("http://127.0.0.1:{}/admin/v1/resources{path}", gw.admin_port);
    let c = client();
    let bye = json!({"paths": ["/bye"], "response": {"status": 200, "body": "bye"}});
    let r = c
        .put(admin("/route/bye"))
        .bearer_auth(token)
        .json(&bye)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    assert_eq!(r.headers()["etag"], "\"1\"");
    // Served by the next request: no waiting for the watcher.
    assert_eq!(
        body_of(&gw.url("/bye")).await,
        Some((200, "bye".into())),
        "{}",
        gw.log()
    );
    let stale = c
        .put(admin("/route/bye"))
        .bearer_auth(token)
        .header("if-match", "\"5\"")
        .json(&bye)
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);
    assert_eq!(stale.headers()["content-type"], "application/problem+json");
    let store = Store::open(&url).await.unwrap();
    let rev = store.revision().await.unwrap();
    let bad = json!({"paths": ["/bad"], "upstream": "nowhere"});
    let r = c
        .put(admin("/route/bad"))
        .bearer_auth(token)
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(
        v["errors"][0]["path"].as_str().unwrap_or_default().contains("upstream"),
        "{v}"
    );
    assert!(v["detail"].as_str().unwrap_or_default().contains("nowhere"), "{v}");
    assert_eq!(store.revision().await.unwrap(), rev, "nothing written");
    assert!(store.get("route", "bad").await.unwrap().is_none());
    let r = c
        .delete(admin("/route/bye"))
        .bearer_auth(token)
        .header("if-match", "\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(body_of(&gw.url("/bye")).await.map(|b| b.0), Some(404));
    let r = c
        .put(admin("/nonsense/x"))
        .bearer_auth(token)
        .json(&bye)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let audit = store.audit(0, 100).await.unwrap();
    let admin_writes: Vec<&str> = audit
        .iter()
        .filter(|a| a.actor == "admin")
        .map(|a| a.action.as_str())
        .collect();
    assert_eq!(admin_writes, ["put", "delete"]);
}

/// Reloads racing admin writes never put an older store revision back.
/// While SIGHUPs keep the process reloading (each reload reads the store
/// and compiles it), every admin write is still served by the very next
/// request. Before swaps were ordered by revision, a reload that read the
/// store just before a write could swap its older config in after the
/// write's, and the watcher, seeing the newest revision applied, left it.
#[tokio::test]
async fn reloads_racing_admin_writes_never_serve_an_older_revision() {
    let (_dir, _url, state, gw) = seeded_gateway().await;
    let token = std::fs::read_to_string(state.join("admin-token")).unwrap();
    let route = format!("http://127.0.0.1:{}/admin/v1/resources/route/v", gw.admin_port);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pid = nix::unistd::Pid::from_raw(gw.pid() as i32);
    let hups = tokio::spawn({
        let stop = stop.clone();
        async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP);
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
    });
    let c = client();
    for i in 0..40 {
        let body = format!("v{i}");
        let write = json!({"paths": ["/v"], "response": {"status": 200, "body": body}});
        let r = c
            .put(&route)
            .bearer_auth(token.trim())
            .json(&write)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
        assert_eq!(body_of(&gw.url("/v")).await, Some((200, body)), "write {i}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    hups.await.unwrap();
    let reloads = gw.metric("portico_config_reloads_total{result=\"ok\"}").await;
    assert!(reloads.unwrap_or(0.0) >= 10.0, "the writes raced reloads: {reloads:?}");
}

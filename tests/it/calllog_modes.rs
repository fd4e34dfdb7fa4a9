//! The call log outside the store-mode defaults: in file mode (on once
//! `server.call_log` is given, its queries on the admin listener with the
//! admin token), with sampling and retention by size; and on PostgreSQL,
//! with retention by age.

use crate::management::Admin;
use crate::support::*;
use serde_json::json;
use std::time::Duration;

/// A file-mode gateway with a call log; `call_log` is its settings,
/// `route` the route's extra lines.
async fn file_gateway(upstream: std::net::SocketAddr, call_log: &str, route: &str) -> (Gateway, Admin) {
    let yaml = format!(
        "server:\n  listeners:\n    - address: 127.0.0.1:${{PORT}}\n  threads: 2\n  admin: 127.0.0.1:${{ADMIN}}\n  \
         access_log: {{path: off}}\n  pid_file: ${{DIR}}/portico.pid\n  upgrade_sock: ${{DIR}}/upgrade.sock\n  \
         state_dir: ${{DIR}}/state\n  call_log: {call_log}\n{}",
        one_upstream(upstream, route, "")
    );
    let gw = Gateway::start(&yaml).await;
    let dir = gw.config_path().parent().unwrap().to_path_buf();
    let token = std::fs::read_to_string(dir.join("state/admin-token")).unwrap();
    let admin = Admin::new(&gw, token.trim());
    (gw, admin)
}

async fn get(gw: &Gateway, path: &str) -> u16 {
    client().get(gw.url(path)).send().await.unwrap().status().as_u16()
}

/// Sampling at 0 keeps no successful call but every error, and the rollups
/// count them all; the queries answer in file mode with the admin token only.
#[tokio::test]
async fn file_mode_samples_keeps_errors_and_counts_everything() {
    let up = Upstream::start("a").await;
    let (gw, admin) = file_gateway(up.addr, "{}", "    call_log: {sample: 0}\n").await;
    for _ in 0..10 {
        assert_eq!(get(&gw, "/ok").await, 200);
    }
    for _ in 0..3 {
        assert_eq!(get(&gw, "/status/502").await, 502);
    }
    wait_until("the rollups count all 13", Duration::from_secs(20), || async {
        admin.expect("GET", "/analytics/summary", None, 200).await["requests"] == json!(13)
    })
    .await;
    let page = admin.expect("GET", "/logs", None, 200).await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "only the errors are kept: {page}");
    assert!(items.iter().all(|c| c["status"] == 502));
    let s = admin.expect("GET", "/analytics/summary", None, 200).await;
    assert_eq!(
        (s["status_2xx"].clone(), s["status_5xx"].clone()),
        (json!(10), json!(3))
    );
    // File mode has no store: no other token, no other resource.
    admin.with_token("pt_abc.def").expect("GET", "/logs", None, 401).await;
    admin.expect("GET", "/routes", None, 404).await;
    let (status, body) = gw.admin("/readyz").await;
    assert_eq!(status, 200);
    assert!(!body.contains("store"), "{body}");
}

/// A size cap below what the log holds deletes the oldest records until it
/// fits: with a cap of one byte, every raw record goes; the rollups stay.
#[tokio::test]
async fn file_mode_retention_by_size_keeps_the_rollups() {
    let up = Upstream::start("a").await;
    let (gw, admin) = file_gateway(up.addr, "{retention: {raw_size: 1B, interval: 1s}}", "").await;
    for _ in 0..5 {
        assert_eq!(get(&gw, "/ok").await, 200);
    }
    wait_until("the rollups count all 5", Duration::from_secs(20), || async {
        admin.expect("GET", "/analytics/summary", None, 200).await["requests"] == json!(5)
    })
    .await;
    wait_until("no raw record left", Duration::from_secs(20), || async {
        admin.expect("GET", "/logs", None, 200).await["items"] == json!([])
    })
    .await;
    assert_eq!(
        admin.expect("GET", "/analytics/summary", None, 200).await["requests"],
        json!(5)
    );
}

/// On PostgreSQL: the same records, queries and usage; raw records older
/// than `raw_age` are deleted while the rollups keep counting them.
#[tokio::test]
async fn on_postgres_calls_are_recorded_and_expire_by_age() {
    let pg = Postgres::start().await;
    let up = Upstream::start("a").await;
    let settings = format!("{{url: '{}', retention: {{raw_age: 3s, interval: 1s}}}}", pg.url());
    let (gw, admin) = file_gateway(up.addr, &settings, "").await;
    for _ in 0..4 {
        assert_eq!(get(&gw, "/ok").await, 200);
    }
    assert_eq!(get(&gw, "/status/404").await, 404);
    wait_until("five calls in the log", Duration::from_secs(20), || async {
        admin.expect("GET", "/logs", None, 200).await["items"]
            .as_array()
            .map(Vec::len)
            == Some(5)
    })
    .await;
    let c = admin.expect("GET", "/logs?class=4xx", None, 200).await;
    assert_eq!(c["items"][0]["path"], "/status/404");
    let top = admin.expect("GET", "/analytics/top?by=route", None, 200).await;
    assert_eq!(
        (top["items"][0]["name"].clone(), top["items"][0]["requests"].clone()),
        (json!("api"), json!(5))
    );
    let usage = admin.expect("GET", "/analytics/usage", None, 200).await;
    assert_eq!(usage[0]["requests"], json!(5));
    wait_until("raw records expire", Duration::from_secs(30), || async {
        admin.expect("GET", "/logs", None, 200).await["items"] == json!([])
    })
    .await;
    let s = admin.expect("GET", "/analytics/summary", None, 200).await;
    assert_eq!(s["requests"], json!(5));
}

/// PostgreSQL restarting under the log loses nothing: calls made while it
/// is down wait in the writer's queue (and the batch whose write failed is
/// kept), and are written once it is back; none is counted as dropped.
#[tokio::test]
async fn calls_made_while_postgres_restarts_are_written_once_it_is_back() {
    let pg = Postgres::start().await;
    let up = Upstream::start("a").await;
    let (gw, admin) = file_gateway(up.addr, &format!("{{url: '{}'}}", pg.url()), "").await;
    let logged = |n: usize| {
        let admin = &admin;
        async move {
            let (status, page) = admin.call("GET", "/logs", None).await;
            status == 200 && page["items"].as_array().map(Vec::len) == Some(n)
        }
    };
    assert_eq!(get(&gw, "/ok").await, 200);
    wait_until("the first call in the log", Duration::from_secs(20), || logged(1)).await;

    pg.stop();
    for _ in 0..3 {
        assert_eq!(get(&gw, "/ok").await, 200, "the gateway serves without its log");
    }
    wait_until(
        "the writer finds the database gone",
        Duration::from_secs(20),
        || async {
            let log = gw.log();
            log.contains("records was not written") || log.contains("call log: cannot open")
        },
    )
    .await;
    pg.start_again().await;
    wait_until("all four calls in the log", Duration::from_secs(30), || logged(4)).await;
    assert_eq!(gw.metric("portico_call_log_dropped_total").await, Some(0.0));
    assert!(!gw.log().contains("was not written again"), "{}", gw.log());
}

/// The connection to PostgreSQL lost between a batch's COMMIT and its
/// answer: the writer cannot know the batch was written, writes it again,
/// finds its id in `call_batches`, and counts each call once.
#[tokio::test]
async fn a_batch_whose_commit_answer_is_lost_is_counted_once() {
    let pg = Postgres::start().await;
    let relay = LossyRelay::start(pg.port, b"INSERT INTO calls (", b"COMMIT", b"COMMIT\0").await;
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", relay.port);
    let up = Upstream::start("a").await;
    let (gw, _admin) = file_gateway(up.addr, &format!("{{url: '{url}'}}"), "").await;
    assert_eq!(get(&gw, "/ok").await, 200);
    relay.wait_cut().await;
    wait_until("the batch found written", Duration::from_secs(30), || async {
        gw.log().contains("was written before its answer was lost")
    })
    .await;
    for _ in 0..2 {
        assert_eq!(get(&gw, "/ok").await, 200);
    }
    crate::operations::every_call_logged(&gw, 3).await;
    assert_eq!(gw.metric("portico_call_log_dropped_total").await, Some(0.0));
}

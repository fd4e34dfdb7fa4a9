//! Operations: reload by signal and by command, bad reloads, metrics, the
//! access log, and zero failed requests across reloads and upgrades under load.

use crate::support::*;
use std::time::Duration;

fn fixed(body: &str) -> String {
    format!("routes:\n  - name: fixed\n    paths: [/v]\n    response:\n      body: {body}\n")
}

fn with_server(gw: &Gateway, rest: &str) -> String {
    let text = std::fs::read_to_string(gw.config_path()).unwrap();
    let server_end = ["\nroutes:", "\nupstreams:"]
        .iter()
        .filter_map(|k| text.find(k))
        .min()
        .unwrap()
        + 1;
    format!("{}{}", &text[..server_end], rest)
}

async fn body(url: &str) -> String {
    client().get(url).send().await.unwrap().text().await.unwrap()
}

fn portico(args: &[&str]) -> std::process::Output {
    std::process::Command::new(portico_bin()).args(args).output().unwrap()
}

#[tokio::test]
async fn reload_changes_routing_and_bad_reload_keeps_serving() {
    let gw = Gateway::start(&fixed("one")).await;
    assert_eq!(body(&gw.url("/v")).await, "one");

    // `portico reload` checks the file, then signals the pid in the pid file.
    std::fs::write(gw.config_path(), with_server(&gw, &fixed("two"))).unwrap();
    let out = portico(&["reload", "-c", gw.config_path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let url = gw.url("/v");
    wait_until("reload applied", Duration::from_secs(20), || {
        let url = url.clone();
        async move { body(&url).await == "two" }
    })
    .await;
    assert_eq!(
        gw.metric("portico_config_reloads_total{result=\"ok\"}").await,
        Some(1.0)
    );

    // A broken file: `portico reload` refuses without signalling...
    std::fs::write(
        gw.config_path(),
        with_server(&gw, "routes:\n  - name: x\n    upstream: nowhere\n"),
    )
    .unwrap();
    let out = portico(&["reload", "-c", gw.config_path().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no upstream named \"nowhere\""));
    // ...and a raw SIGHUP is rejected by the process, which keeps the old config.
    gw.hup();
    wait_for_reloads(&gw, "error", 1).await;
    assert_eq!(body(&gw.url("/v")).await, "two");
    let log = gw.log();
    assert!(
        log.contains("portico.yaml:") && log.contains("routes[0].upstream: no upstream named"),
        "{log}"
    );
}

#[tokio::test]
async fn metrics_health_and_readiness() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&one_upstream(up.addr, "    paths: [/api/*]\n", "")).await;
    let c = client();
    for _ in 0..3 {
        assert_eq!(c.get(gw.url("/api/x")).send().await.unwrap().status(), 200);
    }
    assert_eq!(c.get(gw.url("/nope")).send().await.unwrap().status(), 404);
    let gw_ref = &gw;
    wait_until("request counter", Duration::from_secs(10), || async move {
        gw_ref
            .metric("portico_requests_total{method=\"GET\",route=\"api\",status=\"200\"}")
            .await
            == Some(3.0)
    })
    .await;
    assert_eq!(
        gw.metric("portico_requests_total{method=\"GET\",route=\"(none)\",status=\"404\"}")
            .await,
        Some(1.0)
    );
    assert_eq!(
        gw.metric("portico_request_duration_seconds_count{route=\"api\"}").await,
        Some(3.0)
    );
    assert_eq!(
        gw.metric("portico_upstream_duration_seconds_count{upstream=\"a\"}")
            .await,
        Some(3.0)
    );
    let target = format!(
        "portico_upstream_target_healthy{{target=\"{}\",upstream=\"a\"}}",
        up.addr
    );
    wait_until("health gauge", Duration::from_secs(10), || {
        let target = target.clone();
        async move { gw_ref.metric(&target).await == Some(1.0) }
    })
    .await;
    let (_, text) = gw.admin("/metrics").await;
    assert!(text.contains("portico_process_resident_memory_bytes"), "{text}");
    // Raw paths never become label values.
    assert!(!text.contains("/api/x") && !text.contains("/nope"));
    assert_eq!(gw.admin("/healthz").await.0, 200);
    assert_eq!(gw.admin("/readyz").await.0, 200);
}

#[tokio::test]
async fn access_log_lines_are_json_with_the_request() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&one_upstream(up.addr, "", "")).await;
    let r = client()
        .post(gw.url("/items?x=1"))
        .header("x-request-id", "log-test-1")
        .body("12345")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let path = gw.dir.join("access.log");
    let path_ref = &path;
    wait_until("access log line", Duration::from_secs(10), || async move {
        std::fs::read_to_string(path_ref).is_ok_and(|t| t.contains("log-test-1"))
    })
    .await;
    let text = std::fs::read_to_string(&path).unwrap();
    let line = text.lines().find(|l| l.contains("log-test-1")).unwrap();
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["request_id"], "log-test-1");
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/items");
    assert_eq!(v["route"], "api");
    assert_eq!(v["upstream"], "a");
    assert_eq!(v["target"], up.addr.to_string());
    assert_eq!(v["status"], 200);
    assert_eq!(v["bytes_in"], 5);
    assert_eq!(v["client_ip"], "127.0.0.1");
    assert!(v["duration_ms"].as_f64().unwrap() >= 0.0);
    assert!(v["time"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn no_failed_requests_across_reloads() {
    load_through(10, 0, false).await;
}

#[tokio::test]
async fn no_failed_requests_across_reloads_and_upgrades() {
    load_through(10, 2, false).await;
}

/// Two upgrades under load with the call log on: the old and the new
/// process write the same database, and every answered call is in it once.
#[tokio::test]
async fn every_call_across_upgrades_is_in_the_call_log() {
    load_through(0, 2, true).await;
}

async fn load_through(reloads: usize, upgrades: usize, call_log: bool) {
    let up = Upstream::start("a").await;
    let routes = |tag: &str| {
        one_upstream(
            up.addr,
            "",
            &format!("  - name: tag\n    paths: [/tag]\n    response:\n      body: {tag}\n"),
        )
    };
    let calls = if call_log {
        "  state_dir: ${DIR}/state\n  call_log: {}\n"
    } else {
        ""
    };
    let gw = Gateway::start(&format!(
        "server:\n  listeners:\n    - address: 127.0.0.1:${{PORT}}\n  threads: 2\n  admin: 127.0.0.1:${{ADMIN}}\n  grace_period: 1s\n  graceful_shutdown_timeout: 2s\n  access_log: {{path: off}}\n  pid_file: ${{DIR}}/portico.pid\n  upgrade_sock: ${{DIR}}/upgrade.sock\n{calls}{}",
        routes("t0")
    ))
    .await;
    let load = Load::start(gw.url("/load"), 4);
    let conf = gw.config_path();
    let conf_s = conf.to_str().unwrap().to_string();
    for i in 1..=reloads {
        let tag = format!("t{i}");
        std::fs::write(&conf, with_server(&gw, &routes(&tag))).unwrap();
        let out = portico(&["reload", "-c", &conf_s]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let url = gw.url("/tag");
        wait_until("reload applied", Duration::from_secs(20), || {
            let (url, tag) = (url.clone(), tag.clone());
            async move {
                client()
                    .get(&url)
                    .send()
                    .await
                    .ok()
                    .map(|r| r.status() == 200)
                    .unwrap_or(false)
                    && body(&url).await == tag
            }
        })
        .await;
    }
    let before = load.ok();
    for _ in 0..upgrades {
        let out = portico(&["upgrade", "-c", &conf_s, "--timeout", "30s"]);
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            gw.log()
        );
        // Keep load running through the old process's drain.
        load.wait_for(200, "traffic after upgrade").await;
    }
    // The first process has handed over and exited after its grace period.
    let first = gw.pid() as i32;
    let upgraded = upgrades > 0;
    wait_until("old process exits", Duration::from_secs(30), || async move {
        !upgraded
            || nix::sys::signal::kill(nix::unistd::Pid::from_raw(first), None).is_err()
            || std::fs::read_to_string(format!("/proc/{first}/stat")).is_ok_and(|s| s.contains(") Z "))
    })
    .await;
    let seen = load.stop().await;
    assert!(seen.ok > before || upgrades == 0, "no traffic during upgrades");
    assert!(seen.ok > 0, "no traffic at all");
    assert!(
        seen.failures.is_empty(),
        "{} failed requests: {:?}\n{}",
        seen.failures.len(),
        seen.failures.iter().take(5).collect::<Vec<_>>(),
        gw.log()
    );
    assert_eq!(body(&gw.url("/tag")).await, format!("t{reloads}"));
    if call_log {
        every_call_logged(&gw, seen.ok).await;
    }
}

/// The call log counts `answered` calls of route `api`, in its rollups and
/// as raw records (each once).
pub(crate) async fn every_call_logged(gw: &Gateway, answered: usize) {
    let dir = gw.config_path().parent().unwrap().to_path_buf();
    let token = std::fs::read_to_string(dir.join("state/admin-token")).unwrap();
    let admin = crate::management::Admin::new(gw, token.trim());
    let counted = || async {
        admin.expect("GET", "/analytics/summary?route=api", None, 200).await["requests"]
            .as_u64()
            .unwrap_or(0)
    };
    wait_until("every answered call counted", Duration::from_secs(20), || async {
        counted().await >= answered as u64
    })
    .await;
    assert_eq!(
        counted().await,
        answered as u64,
        "counted more calls than were answered"
    );
    let mut ids = std::collections::HashSet::new();
    let mut cursor = String::new();
    loop {
        let page = admin
            .expect("GET", &format!("/logs?route=api&limit=10000{cursor}"), None, 200)
            .await;
        for c in page["items"].as_array().unwrap() {
            assert!(ids.insert(c["request_id"].as_str().unwrap().to_string()), "{c} twice");
        }
        match page["next"].as_str() {
            Some(n) => cursor = format!("&cursor={n}"),
            None => break,
        }
    }
    assert_eq!(ids.len(), answered);
}

#[tokio::test]
async fn sigusr1_reopens_the_access_log_after_rotation() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&one_upstream(up.addr, "", "")).await;
    let log = gw.dir.join("access.log");
    let rotated = gw.dir.join("access.log.1");
    let c = client();
    let send = |id: &'static str| {
        let c = c.clone();
        let url = gw.url("/x");
        async move {
            let r = c.get(url).header("x-request-id", id).send().await.unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    send("before-rotation").await;
    let log_ref = &log;
    wait_until("first line", Duration::from_secs(10), || async move {
        std::fs::read_to_string(log_ref).is_ok_and(|t| t.contains("before-rotation"))
    })
    .await;
    std::fs::rename(&log, &rotated).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(gw.pid() as i32),
        nix::sys::signal::Signal::SIGUSR1,
    )
    .unwrap();
    // The writer reopens within its poll interval; lines keep flowing to one file or the other.
    let mut n = 0;
    wait_until("a line in the new file", Duration::from_secs(20), || {
        n += 1;
        let send = send("after-rotation");
        async move {
            send.await;
            std::fs::read_to_string(log_ref).is_ok_and(|t| t.contains("after-rotation"))
        }
    })
    .await;
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert!(old.contains("before-rotation"));
    assert!(!std::fs::read_to_string(&log).unwrap().contains("before-rotation"));
    assert!(n >= 1);
}

#[tokio::test]
async fn reload_that_changes_listeners_says_they_need_an_upgrade() {
    let gw = Gateway::start(&fixed("one")).await;
    let text = std::fs::read_to_string(gw.config_path()).unwrap();
    let other = free_port();
    // Add a second listener: the running process cannot bind it on reload.
    let changed = text.replacen(
        "  threads: 2",
        &format!("    - address: 127.0.0.1:{other}\n  threads: 2"),
        1,
    );
    let changed = changed.replace("body: one", "body: two");
    std::fs::write(gw.config_path(), changed).unwrap();
    let out = portico(&["reload", "-c", gw.config_path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let url = gw.url("/v");
    wait_until("routes applied", Duration::from_secs(20), || {
        let url = url.clone();
        async move { body(&url).await == "two" }
    })
    .await;
    let gw_ref = &gw;
    wait_until("listener warning", Duration::from_secs(10), || async move {
        gw_ref.log().contains("listener changes") && gw_ref.log().contains("need `portico upgrade`")
    })
    .await;
    // The new listener is not bound by a reload.
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", other)).await.is_err());
}

//! API releases and retirement, end to end: a store-mode gateway with a
//! real upstream serves a `publishing: releases` service from its
//! published release only (edits to the working copy wait for the next
//! release and publish), compares releases, rolls back, and with
//! `publish_approval` waits for a service admin; releases are immutable.
//! A retired route announces its sunset (RFC 9745, RFC 8594) and then
//! answers 410; bad dates are located config errors.

use crate::management::{store_gateway, token_for, Admin};
use crate::support::*;
use serde_json::{json, Value};

/// The path the upstream saw for a GET of `path`, or the status when the
/// gateway did not proxy it.
async fn upstream_path(gw: &Gateway, path: &str) -> Result<String, u16> {
    let (status, v) = get_json(&client(), &gw.url(path)).await;
    match status {
        200 => Ok(v["path"].as_str().unwrap_or_default().to_string()),
        other => Err(other),
    }
}

/// Upstream `a`, service `shop` (team shop) served through releases with
/// route `orders` at `/orders`.
async fn shop(admin: &Admin, up: std::net::SocketAddr, approval: bool) {
    admin.expect("PUT", "/teams/shop", Some(json!({})), 200).await;
    admin
        .expect(
            "PUT",
            "/upstreams/a",
            Some(json!({"targets": [{"address": up.to_string()}]})),
            200,
        )
        .await;
    let service = json!({"team": "shop", "publishing": "releases", "publish_approval": approval});
    admin.expect("PUT", "/services/shop", Some(service), 200).await;
    admin
        .expect(
            "PUT",
            "/routes/orders",
            Some(json!({"service": "shop", "paths": ["/orders"], "upstream": "a"})),
            200,
        )
        .await;
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap_or_else(|| v["name"].as_str().unwrap()))
        .collect()
}

#[tokio::test]
async fn a_service_is_served_from_its_published_release_and_rolls_back() {
    let up = Upstream::start("rel").await;
    let (gw, root, _dir) = store_gateway().await;
    let admin = Admin::new(&gw, &root);
    shop(&admin, up.addr, false).await;
    // Nothing of the service is served before its first publish.
    expect_error(
        client().get(gw.url("/orders")).send().await.unwrap(),
        404,
        "route_not_found",
    )
    .await;
    let v1 = admin
        .expect(
            "POST",
            "/services/shop/releases",
            Some(json!({"name": "v1", "note": "first"})),
            201,
        )
        .await;
    assert_eq!(names(&v1["content"]["routes"]), ["orders"], "{v1}");
    assert_eq!(
        v1["content"]["upstreams"]["a"]["targets"][0]["address"],
        up.addr.to_string()
    );
    assert_eq!(
        (v1["published"].clone(), v1["created_by"].is_string()),
        (json!(false), true),
        "{v1}"
    );
    admin
        .expect("POST", "/services/shop/releases", Some(json!({"name": "v1"})), 409)
        .await;
    admin
        .expect(
            "POST",
            "/services/shop/releases",
            Some(json!({"name": "no/slash"})),
            422,
        )
        .await;
    assert_eq!(upstream_path(&gw, "/orders").await, Err(404), "made, not served");
    let published = admin
        .expect(
            "POST",
            "/services/shop/releases/v1/publish",
            Some(json!({"comment": "go"})),
            200,
        )
        .await;
    assert_eq!(published["status"], "applied", "{published}");
    assert_eq!(
        upstream_path(&gw, "/orders").await,
        Ok("/orders".into()),
        "{}",
        gw.log()
    );
    // The working copy changes; what is served does not.
    admin
        .expect("PATCH", "/routes/orders", Some(json!({"rewrite": "/v2/orders"})), 200)
        .await;
    admin
        .expect(
            "PUT",
            "/routes/refunds",
            Some(json!({"service": "shop", "paths": ["/refunds"], "upstream": "a"})),
            200,
        )
        .await;
    assert_eq!(upstream_path(&gw, "/orders").await, Ok("/orders".into()));
    assert_eq!(upstream_path(&gw, "/refunds").await, Err(404));
    // A mistake in the working copy is refused where it is made, served or not.
    let refused = admin
        .expect("PATCH", "/routes/orders", Some(json!({"upstream": "nope"})), 422)
        .await;
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("no upstream named \"nope\""),
        "{refused}"
    );
    admin
        .expect("POST", "/services/shop/releases", Some(json!({"name": "v2"})), 201)
        .await;
    // v2 against the published v1 (the default) and against v1 by name.
    for path in [
        "/services/shop/releases/v2/diff",
        "/services/shop/releases/v2/diff?against=v1",
    ] {
        let d = admin.expect("GET", path, None, 200).await;
        assert_eq!((d["from"].as_str(), d["to"].as_str()), (Some("v1"), Some("v2")), "{d}");
        assert_eq!(d["routes"]["added"], json!(["refunds"]), "{d}");
        assert_eq!(
            d["routes"]["changed"],
            json!([{"name": "orders", "fields": ["rewrite"]}]),
            "{d}"
        );
        assert_eq!(d["routes"]["removed"], json!([]), "{d}");
        assert_eq!(d["upstreams"]["changed"], json!([]), "{d}");
    }
    let d = admin
        .expect("GET", "/services/shop/releases/v2/diff?against=working", None, 200)
        .await;
    assert_eq!(
        (d["from"].as_str(), d["routes"]["changed"].clone()),
        (Some("working"), json!([])),
        "{d}"
    );
    admin
        .expect("GET", "/services/shop/releases/v2/diff?against=v9", None, 404)
        .await;
    let list = admin.expect("GET", "/services/shop/releases", None, 200).await;
    assert_eq!(names(&list["items"]), ["v2", "v1"], "newest first: {list}");
    assert_eq!(list["items"][1]["published"], true, "{list}");
    assert!(list["items"][0].get("content").is_none(), "{list}");
    // Publishing v2 serves it at once; publishing v1 again rolls back.
    admin
        .expect("POST", "/services/shop/releases/v2/publish", None, 200)
        .await;
    assert_eq!(upstream_path(&gw, "/orders").await, Ok("/v2/orders".into()));
    assert_eq!(upstream_path(&gw, "/refunds").await, Ok("/refunds".into()));
    admin
        .expect("POST", "/services/shop/releases/v1/publish", None, 200)
        .await;
    assert_eq!(upstream_path(&gw, "/orders").await, Ok("/orders".into()));
    assert_eq!(upstream_path(&gw, "/refunds").await, Err(404));
    let pubs = admin.expect("GET", "/services/shop/publications", None, 200).await;
    let seen: Vec<(&str, &str)> = pubs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["release"].as_str().unwrap(), p["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [("v1", "applied"), ("v2", "applied"), ("v1", "applied")],
        "{pubs}"
    );
    assert_eq!(pubs["items"][2]["comment"], "go");
    // Releases are immutable, publications are records, and a service's
    // release is set by publishing only.
    for (method, path) in [
        ("PUT", "/resources/release/shop@v1"),
        ("PATCH", "/resources/release/shop@v1"),
        ("DELETE", "/resources/release/shop@v1"),
        ("PUT", "/resources/release/shop@v3"),
        ("PUT", "/resources/publication/abc"),
    ] {
        let body = (method != "DELETE").then(|| json!({"note": "changed"}));
        admin.expect(method, path, body, 409).await;
    }
    let stored = admin.expect("GET", "/resources/release/shop@v1", None, 200).await;
    assert_eq!(stored["note"], "first");
    admin
        .expect("PATCH", "/services/shop", Some(json!({"release": "v2"})), 409)
        .await;
    let kept = admin
        .expect("PATCH", "/services/shop", Some(json!({"description": "the shop"})), 200)
        .await;
    assert_eq!(kept["release"], "v1", "{kept}");
    // The export is the working copy.
    let export = admin.raw("/config").await.text().await.unwrap();
    assert!(export.contains("/v2/orders") && export.contains("refunds"), "{export}");
    // Deleting the service (its routes first) forgets its releases.
    for route in ["orders", "refunds"] {
        admin.expect("DELETE", &format!("/routes/{route}"), None, 204).await;
    }
    admin.expect("DELETE", "/services/shop", None, 204).await;
    admin.expect("GET", "/resources/release/shop@v1", None, 404).await;
    let left = admin.expect("GET", "/resources/publication", None, 200).await;
    assert_eq!(left["items"], json!([]), "{left}");
}

#[tokio::test]
async fn a_publish_waits_for_a_service_admin_when_the_service_asks_for_approval() {
    let up = Upstream::start("rel").await;
    let (gw, root, _dir) = store_gateway().await;
    let admin = Admin::new(&gw, &root);
    shop(&admin, up.addr, true).await;
    let sa = Admin::new(
        &gw,
        &token_for(&admin, json!({"role": "service_admin", "team": "shop"})).await,
    );
    let dev = Admin::new(
        &gw,
        &token_for(&admin, json!({"role": "developer", "team": "shop"})).await,
    );
    let stranger = Admin::new(
        &gw,
        &token_for(&admin, json!({"role": "service_admin", "team": "other"})).await,
    );
    sa.expect("POST", "/services/shop/releases", Some(json!({"name": "v1"})), 201)
        .await;
    // A developer reads releases but neither makes nor publishes them.
    dev.expect("GET", "/services/shop/releases/v1", None, 200).await;
    dev.expect("POST", "/services/shop/releases", Some(json!({"name": "d1"})), 403)
        .await;
    dev.expect("POST", "/services/shop/releases/v1/publish", None, 403)
        .await;
    let asked = sa
        .expect(
            "POST",
            "/services/shop/releases/v1/publish",
            Some(json!({"comment": "please"})),
            202,
        )
        .await;
    assert_eq!(asked["status"], "pending", "{asked}");
    let id = asked["publication"]["id"].as_str().unwrap().to_string();
    assert_eq!(upstream_path(&gw, "/orders").await, Err(404), "pending is not served");
    let accept = format!("/services/shop/publications/{id}/accept");
    dev.expect("POST", &accept, None, 403).await;
    stranger.expect("POST", &accept, None, 403).await;
    let accepted = sa.expect("POST", &accept, Some(json!({"comment": "ok"})), 200).await;
    assert_eq!(accepted["status"], "accepted", "{accepted}");
    assert_eq!(accepted["publication"]["decision_comment"], "ok");
    assert_eq!(
        upstream_path(&gw, "/orders").await,
        Ok("/orders".into()),
        "{}",
        gw.log()
    );
    sa.expect("POST", &accept, None, 409).await;
    // A refusal is recorded and changes nothing.
    sa.expect("PATCH", "/routes/orders", Some(json!({"rewrite": "/v2"})), 200)
        .await;
    sa.expect("POST", "/services/shop/releases", Some(json!({"name": "v2"})), 201)
        .await;
    let asked = sa.expect("POST", "/services/shop/releases/v2/publish", None, 202).await;
    let refuse = format!(
        "/services/shop/publications/{}/refuse",
        asked["publication"]["id"].as_str().unwrap()
    );
    dev.expect("POST", &refuse, None, 403).await;
    let refused = sa
        .expect("POST", &refuse, Some(json!({"comment": "not on a Friday"})), 200)
        .await;
    assert_eq!(refused["publication"]["status"], "refused", "{refused}");
    assert_eq!(upstream_path(&gw, "/orders").await, Ok("/orders".into()));
    // A pending publication of a release that is no longer the newest is
    // applied as asked.
    let asked = sa.expect("POST", "/services/shop/releases/v2/publish", None, 202).await;
    sa.expect("POST", "/services/shop/releases", Some(json!({"name": "v3"})), 201)
        .await;
    let id = asked["publication"]["id"].as_str().unwrap();
    admin
        .expect("POST", &format!("/services/shop/publications/{id}/accept"), None, 200)
        .await;
    assert_eq!(upstream_path(&gw, "/orders").await, Ok("/v2".into()));
    let pubs = dev.expect("GET", "/services/shop/publications", None, 200).await;
    let statuses: Vec<&str> = pubs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["accepted", "refused", "accepted"], "{pubs}");
    assert_eq!(pubs["items"][1]["decision_comment"], "not on a Friday");
    let service = admin.expect("GET", "/services/shop", None, 200).await;
    assert_eq!(service["release"], "v2", "{service}");
}

/// A route inheriting its service's retirement (deprecated, sunset ahead),
/// a route whose own sunset has passed, and a route not retired.
#[tokio::test]
async fn retired_routes_announce_their_sunset_then_answer_410() {
    let up = Upstream::start("old").await;
    let retire = |sunset: &str, link: &str| {
        format!("    retire: {{deprecated_at: '2024-01-01T00:00:00Z', sunset_at: '{sunset}'{link}}}\n")
    };
    let config = format!(
        "upstreams:\n  a:\n    targets:\n      - address: {}\n\
services:\n  - name: legacy\n{}\
routes:\n  - name: soon\n    service: legacy\n    paths: [/soon]\n    upstream: a\n\
\x20 - name: gone\n    service: legacy\n    paths: [/gone]\n    upstream: a\n{}\
\x20 - name: plain\n    paths: [/plain]\n    upstream: a\n",
        up.addr,
        retire("2999-01-01T00:00:00Z", ", link: 'https://example.com/v2'"),
        retire("2024-06-01T00:00:00Z", ""),
    );
    let gw = Gateway::start(&config).await;
    let c = client();
    let soon = c.get(gw.url("/soon")).send().await.unwrap();
    assert_eq!(soon.status(), 200);
    let h = soon.headers();
    assert_eq!(h["deprecation"], "@1704067200");
    assert_eq!(h["sunset"], "Tue, 01 Jan 2999 00:00:00 GMT");
    assert_eq!(h["link"], "<https://example.com/v2>; rel=\"deprecation\"");
    let (h, v) = expect_error(c.get(gw.url("/gone")).send().await.unwrap(), 410, "gone").await;
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"gone\"") && message.contains("01 Jun 2024"),
        "{message}"
    );
    assert_eq!(h["sunset"], "Sat, 01 Jun 2024 00:00:00 GMT");
    assert!(h.get("link").is_none(), "the route's own retirement wins, link and all");
    let plain = c.get(gw.url("/plain")).send().await.unwrap();
    assert!(plain.headers().get("deprecation").is_none());
    assert_eq!(up.hits(), 2, "the retired route never reached the upstream");
}

#[tokio::test]
async fn bad_retire_dates_and_file_mode_releases_are_located_config_errors() {
    let dir = temp_dir("releases-check");
    let file = dir.join("p.yaml");
    let text = "upstreams:\n  a:\n    targets:\n      - address: 127.0.0.1:1\n\
services:\n  - name: s\n    publishing: releases\n    release: v1\n\
\x20   retire: {deprecated_at: '2025-02-01T00:00:00Z', sunset_at: '2025-01-01T00:00:00Z'}\n\
routes:\n  - name: r\n    service: s\n    upstream: a\n\
\x20   retire: {deprecated_at: soon, sunset_at: '2025-13-01T00:00:00Z', link: 'ftp://x'}\n";
    std::fs::write(&file, text).unwrap();
    let check = |args: &[&str]| {
        let out = std::process::Command::new(portico_bin()).args(args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
        (out.status.success(), text)
    };
    let (ok, out) = check(&["check", "-c", file.to_str().unwrap()]);
    assert!(!ok, "{out}");
    let line_of = |needle: &str| out.lines().find(|l| l.contains(needle)).unwrap_or_default().to_string();
    assert!(line_of("services[0].publishing:").contains("p.yaml:7:"), "{out}");
    assert!(line_of("services[0].release:").contains("p.yaml:8:"), "{out}");
    for expected in [
        "services[0].publishing: releases need store mode",
        "services[0].release: releases need store mode",
        "services[0].retire.sunset_at: 2025-01-01T00:00:00Z is before deprecated_at",
        "routes[0].retire.deprecated_at: \"soon\" is not an RFC 3339 time",
        "routes[0].retire.sunset_at: \"2025-13-01T00:00:00Z\" is not an RFC 3339 time",
        "routes[0].retire.link: \"ftp://x\" is not an http(s) URL",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    // An import takes releases into a store, where they mean something.
    let good = text.replace("2025-02-01", "2024-12-01").replace(
        "{deprecated_at: soon, sunset_at: '2025-13-01T00:00:00Z', link: 'ftp://x'}",
        "{deprecated_at: '2025-01-01T00:00:00Z', sunset_at: '2025-01-01T00:00:00Z'}",
    );
    std::fs::write(&file, good).unwrap();
    let store = format!("sqlite://{}", dir.join("store.db").display());
    let (ok, out) = check(&["import", file.to_str().unwrap(), "--store", &store]);
    assert!(ok, "{out}");
}

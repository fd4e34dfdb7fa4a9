//! Routing end to end: host, path and method precedence, 404/405 errors,
//! strip_prefix and rewrite, fixed responses and path normalisation.

use crate::support::*;

/// Starts one echo upstream per name; returns them and the `upstreams:` block.
async fn start_upstreams(names: &[&str]) -> (Vec<Upstream>, String) {
    let mut ups = Vec::new();
    let mut yaml = String::from("upstreams:\n");
    for n in names {
        let u = Upstream::start(n).await;
        yaml.push_str(&format!("  {n}:\n    targets:\n      - address: {}\n", u.addr));
        ups.push(u);
    }
    (ups, yaml)
}

/// Sends `method path` with a Host header; returns the name of the upstream that answered.
async fn served_by(c: &reqwest::Client, gw: &Gateway, method: &str, host: &str, path: &str) -> String {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let r = c
        .request(m, gw.url(path))
        .header("host", host)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let v: serde_json::Value = r.json().await.unwrap_or(serde_json::Value::Null);
    assert_eq!(status, 200, "{method} {host}{path}: {v}\n{}", gw.log());
    v["upstream"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn host_precedence() {
    let (_ups, mut yaml) = start_upstreams(&["any", "any_special", "wild", "exact", "shop_cart"]).await;
    // Written least specific first, so config order cannot explain the results.
    yaml.push_str(
        "routes:
  - name: any
    upstream: any
  - name: any_special
    paths: [/special]
    upstream: any_special
  - name: wild
    hosts: ['*.example.com']
    upstream: wild
  - name: exact
    hosts: [api.example.com]
    upstream: exact
  - name: shop_cart
    hosts: [shop.example.com]
    paths: [/cart/*]
    upstream: shop_cart
",
    );
    let gw = Gateway::start(&yaml).await;
    let c = client();
    for (host, path, want) in [
        ("other.test", "/x", "any"),
        ("other.test", "/special", "any_special"),
        ("foo.example.com", "/x", "wild"),
        ("a.b.example.com", "/x", "wild"),
        ("example.com", "/x", "any"),
        ("notexample.com", "/x", "any"),
        ("api.example.com", "/x", "exact"),
        ("API.Example.COM:8080", "/x", "exact"),
        // The host class is chosen first: a catch-all path of an exact host
        // beats a more specific path of a route with no hosts.
        ("api.example.com", "/special", "exact"),
        ("foo.example.com", "/special", "wild"),
        ("shop.example.com", "/cart/1", "shop_cart"),
        // An exact host whose paths do not match falls back to the wildcard.
        ("shop.example.com", "/other", "wild"),
    ] {
        assert_eq!(served_by(&c, &gw, "GET", host, path).await, want, "GET {host}{path}");
    }
}

#[tokio::test]
async fn path_and_method_precedence() {
    let (_ups, mut yaml) = start_upstreams(&[
        "catch_all",
        "api_prefix",
        "users_prefix",
        "user_template",
        "user_me",
        "items_any",
        "items_post",
        "post_tpl",
    ])
    .await;
    yaml.push_str(
        "routes:
  - name: catch_all
    upstream: catch_all
  - name: api_prefix
    paths: [/api/*]
    upstream: api_prefix
  - name: users_prefix
    paths: [/api/users/*]
    upstream: users_prefix
  - name: user_template
    paths: ['/api/users/{id}']
    upstream: user_template
  - name: user_me
    paths: [/api/users/me]
    upstream: user_me
  - name: post_tpl
    paths: ['/api/{kind}/{id}/posts']
    upstream: post_tpl
  - name: items_any
    paths: [/items]
    upstream: items_any
  - name: items_post
    paths: [/items]
    methods: [POST]
    upstream: items_post
",
    );
    let gw = Gateway::start(&yaml).await;
    let c = client();
    for (method, path, want) in [
        ("GET", "/", "catch_all"),
        ("GET", "/apix", "catch_all"),
        ("GET", "/api", "api_prefix"),
        ("GET", "/api/other", "api_prefix"),
        ("GET", "/api/users", "users_prefix"),
        ("GET", "/api/users/7/photos", "users_prefix"),
        ("GET", "/api/users/7", "user_template"),
        ("GET", "/api/users/me", "user_me"),
        // A template beats a prefix even when the prefix is long.
        ("GET", "/api/things/7/posts", "post_tpl"),
        // A template needs a non-empty segment per parameter.
        ("GET", "/api/users/", "users_prefix"),
        ("GET", "/items", "items_any"),
        ("POST", "/items", "items_post"),
        ("PUT", "/items", "items_any"),
        ("GET", "/items/x", "catch_all"),
    ] {
        assert_eq!(
            served_by(&c, &gw, method, "h.test", path).await,
            want,
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn not_found_and_method_not_allowed_are_json_errors() {
    let gw = Gateway::start(
        "routes:
  - name: read
    paths: [/thing]
    methods: [GET, HEAD]
    response: {body: read}
  - name: write
    paths: [/thing]
    methods: [PUT]
    response: {body: write}
  - name: admin
    hosts: [admin.test]
    paths: ['/admin/*']
    methods: [POST]
    response: {body: admin}
",
    )
    .await;
    let c = client();

    let r = c.get(gw.url("/nope?x=1")).send().await.unwrap();
    let (_, v) = expect_error(r, 404, "route_not_found").await;
    assert!(v["error"]["message"].as_str().unwrap().contains("/nope"), "{v}");

    // A client-supplied request id is kept and reported.
    let r = c
        .get(gw.url("/nope"))
        .header("x-request-id", "client-id-42")
        .send()
        .await
        .unwrap();
    let (_, v) = expect_error(r, 404, "route_not_found").await;
    assert_eq!(v["error"]["request_id"], "client-id-42");

    // Two errors get two different generated ids.
    let r1 = c.get(gw.url("/a")).send().await.unwrap();
    let (_, v1) = expect_error(r1, 404, "route_not_found").await;
    let r2 = c.get(gw.url("/a")).send().await.unwrap();
    let (_, v2) = expect_error(r2, 404, "route_not_found").await;
    assert_ne!(v1["error"]["request_id"], v2["error"]["request_id"]);

    let r = c.delete(gw.url("/thing")).send().await.unwrap();
    let (h, _) = expect_error(r, 405, "method_not_allowed").await;
    let allow = h.get("allow").expect("Allow header").to_str().unwrap().to_string();
    let mut methods: Vec<&str> = allow.split(',').map(|m| m.trim()).collect();
    methods.sort();
    assert_eq!(methods, ["GET", "HEAD", "PUT"], "Allow: {allow}");

    // The allowed methods still work.
    let r = c.put(gw.url("/thing")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "write");

    // A route of another host does not exist for this host: 404, not 405.
    let r = c
        .get(gw.url("/admin/x"))
        .header("host", "other.test")
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "route_not_found").await;
    let r = c
        .get(gw.url("/admin/x"))
        .header("host", "admin.test")
        .send()
        .await
        .unwrap();
    let (h, _) = expect_error(r, 405, "method_not_allowed").await;
    assert_eq!(h.get("allow").map(|v| v.to_str().unwrap()), Some("POST"));
}

#[tokio::test]
async fn strip_prefix_and_rewrite() {
    let up = Upstream::start("svc").await;
    let gw = Gateway::start(&format!(
        "upstreams:
  svc:
    targets:
      - address: {}
routes:
  - name: strip
    paths: [/svc/*]
    strip_prefix: true
    upstream: svc
  - name: keep
    paths: [/keep/*]
    upstream: svc
  - name: rewrite
    paths: ['/users/{{id}}']
    rewrite: '/v2/{{id}}'
    upstream: svc
  - name: rewrite2
    paths: ['/orgs/{{org}}/members/{{user}}']
    rewrite: '/v3/members/{{user}}/of/{{org}}'
    upstream: svc
",
        up.addr
    ))
    .await;
    let c = client();
    for (path, want_path, want_query) in [
        ("/svc/x/y?q=1&r=2", "/x/y", "q=1&r=2"),
        ("/svc/x", "/x", ""),
        ("/svc", "/", ""),
        ("/svc/", "/", ""),
        ("/keep/x?q=1", "/keep/x", "q=1"),
        ("/users/42?a=b", "/v2/42", "a=b"),
        ("/users/abc", "/v2/abc", ""),
        ("/orgs/acme/members/bob?x=y", "/v3/members/bob/of/acme", "x=y"),
    ] {
        let (status, v) = get_json(&c, &gw.url(path)).await;
        assert_eq!(status, 200, "{path}: {v}\n{}", gw.log());
        assert_eq!(v["path"], want_path, "{path}");
        assert_eq!(v["query"], want_query, "{path}");
    }
    // A template route does not match a longer path.
    let r = c.get(gw.url("/users/42/extra")).send().await.unwrap();
    expect_error(r, 404, "route_not_found").await;
}

#[tokio::test]
async fn fixed_responses() {
    let gw = Gateway::start(
        "routes:
  - name: teapot
    paths: [/teapot]
    response:
      status: 418
      body: '{\"short\":\"and stout\"}'
      content_type: application/json
      headers:
        x-custom: yes-indeed
        cache-control: no-store
  - name: plain
    paths: [/plain]
    response:
      body: hello
",
    )
    .await;
    let c = client();
    let r = c.get(gw.url("/teapot")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 418);
    let h = r.headers().clone();
    assert_eq!(h.get("content-type").unwrap(), "application/json");
    assert_eq!(h.get("x-custom").unwrap(), "yes-indeed");
    assert_eq!(h.get("cache-control").unwrap(), "no-store");
    assert!(h.get("x-request-id").is_some_and(|v| !v.is_empty()));
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["short"], "and stout");

    let r = c.get(gw.url("/plain")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers().get("content-type").unwrap(), "text/plain; charset=utf-8");
    assert!(r.headers().get("x-request-id").is_some());
    assert_eq!(r.text().await.unwrap(), "hello");
}

#[tokio::test]
async fn paths_are_normalised_before_routing_and_forwarding() {
    let (_ups, mut yaml) = start_upstreams(&["ac", "other"]).await;
    yaml.push_str(
        "routes:
  - name: ac
    paths: [/a/c]
    upstream: ac
  - name: other
    paths: ['/*']
    upstream: other
",
    );
    let gw = Gateway::start(&yaml).await;
    for target in ["//a/./b/../c", "/a//c", "/a/./c", "/x/../a/c", "/%61/c", "/a/c"] {
        let (status, v) = raw_get(gw.port, target).await;
        assert_eq!(status, 200, "{target}: {v}\n{}", gw.log());
        assert_eq!(v["upstream"], "ac", "{target} routed to {v}");
        assert_eq!(v["path"], "/a/c", "{target} sent upstream as {v}");
    }
    // The query survives normalisation.
    let (status, v) = raw_get(gw.port, "//a/./b/../c?k=v").await;
    assert_eq!(status, 200);
    assert_eq!(v["path"], "/a/c");
    assert_eq!(v["query"], "k=v");
    // `..` never climbs above the root, and an encoded slash is not a separator.
    let (_, v) = raw_get(gw.port, "/../../a/c").await;
    assert_eq!(v["upstream"], "ac");
    let (status, v) = raw_get(gw.port, "/a%2fc").await;
    assert_eq!(status, 400, "encoded slashes are refused by default: {v}");
    assert_eq!(v["error"]["message"], "encoded slash in path");
}

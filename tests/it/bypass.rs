//! Path tricks must not escape a route's policies: every spelling of
//! `/admin/...` reaches the admin route (and its key_auth) or is refused, and
//! the upstream receives the same normalised path the router saw.

use crate::support::*;

fn config(addr: std::net::SocketAddr, server_extra: &str) -> String {
    format!(
        "server:\n  listeners:\n    - address: 127.0.0.1:${{PORT}}\n  threads: 2\n  admin: 127.0.0.1:${{ADMIN}}\n  access_log: {{path: off}}\n  pid_file: ${{DIR}}/portico.pid\n  upgrade_sock: ${{DIR}}/upgrade.sock\n{server_extra}\
upstreams:\n  a:\n    targets:\n      - address: {addr}\n\
routes:\n  - name: admin\n    paths: [/admin/*]\n    upstream: a\n    policies:\n      - key_auth: {{}}\n\
\x20 - name: public\n    paths: [/*]\n    upstream: a\n"
    )
}

#[tokio::test]
async fn path_tricks_reach_the_admin_policies_or_are_refused() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&config(up.addr, "")).await;
    for target in [
        "/admin/x",
        "/admin/../admin/x",
        "/public/../admin/x",
        "/public/%2e%2e/admin/x",
        "/public/%2E%2E/admin/x",
        "/%2e/admin/x",
        "//admin/x",
        "/./admin/x",
        "/admin/./x",
        "/%61dmin/x",
        "/admin./x",
        "/admin../x",
        "/admin;jsessionid=1/x",
        "/admin/x;.css",
        "///admin///x",
    ] {
        let (status, v) = raw_get(gw.port, target).await;
        assert_eq!(status, 401, "{target} must hit the admin route's key_auth: {v}");
        assert_eq!(v["error"]["code"], "unauthorized", "{target}");
    }
    // Encoded slashes and backslashes are refused outright.
    for target in [
        "/public/..%2fadmin/x",
        "/public/..%2Fadmin/x",
        "/admin%2fx",
        "/public/..%5cadmin/x",
    ] {
        let (status, v) = raw_get(gw.port, target).await;
        assert_eq!(status, 400, "{target}: {v}");
        assert_eq!(v["error"]["code"], "bad_request");
    }
    assert_eq!(up.hits(), 0, "nothing reached the upstream");

    // Double encoding is not decoded twice: it stays a literal public path,
    // and the upstream receives exactly the path that was routed.
    let (status, v) = raw_get(gw.port, "/public/%252e%252e/admin/x").await;
    assert_eq!(status, 200);
    assert_eq!(v["path"], "/public/%252e%252e/admin/x");
    let (_, v) = raw_get(gw.port, "/public/a/../b/./c;p=1").await;
    assert_eq!(v["path"], "/public/b/c");
    // Routes are case-sensitive by default: /ADMIN is the public route's,
    // and the upstream sees /ADMIN, not /admin.
    let (status, v) = raw_get(gw.port, "/ADMIN/x").await;
    assert_eq!(status, 200);
    assert_eq!(v["path"], "/ADMIN/x");
}

#[tokio::test]
async fn case_insensitive_paths_and_kept_encoded_slashes() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&config(
        up.addr,
        "  case_insensitive_paths: true\n  encoded_slashes: keep\n",
    ))
    .await;
    for target in ["/ADMIN/x", "/Admin/X", "/%41DMIN/x"] {
        let (status, _) = raw_get(gw.port, target).await;
        assert_eq!(status, 401, "{target} is the admin route when paths ignore case");
    }
    // Kept encoded: never a separator, so it cannot climb into /admin.
    let (status, v) = raw_get(gw.port, "/public/..%2fadmin/x").await;
    assert_eq!(status, 200);
    assert_eq!(v["path"], "/public/..%2fadmin/x");
}

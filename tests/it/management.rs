//! The management plane end to end, in store mode on SQLite: teams, users
//! and their tokens; a team's service with manual approval, another team's
//! application, its credentials and its subscription, each step served by
//! the very next request; and the permission table over HTTP, every role
//! against every area.

use crate::support::*;
use serde_json::{json, Value};

/// A gateway in store mode with an empty SQLite store; (gateway, admin token, dir).
pub(crate) async fn store_gateway() -> (Gateway, String, std::path::PathBuf) {
    let dir = temp_dir("mgmt");
    let url = format!("sqlite://{}", dir.join("store.db").display());
    store_gateway_at(&url, dir).await
}

/// A gateway in store mode on the store at `url`, its state under `dir`.
async fn store_gateway_at(url: &str, dir: std::path::PathBuf) -> (Gateway, String, std::path::PathBuf) {
    let server = format!(
        "server:\n  listeners:\n    - address: 127.0.0.1:${{PORT}}\n  admin: 127.0.0.1:${{ADMIN}}\n  threads: 2\n  \
         pid_file: ${{DIR}}/portico.pid\n  upgrade_sock: ${{DIR}}/upgrade.sock\n  store: '{url}'\n  state_dir: {}\n",
        dir.join("state").display()
    );
    let gw = Gateway::start(&server).await;
    let token = std::fs::read_to_string(dir.join("state/admin-token")).unwrap();
    (gw, token.trim().to_string(), dir)
}

/// A client of the admin API with one token.
pub(crate) struct Admin {
    base: String,
    token: String,
    c: reqwest::Client,
}

impl Admin {
    pub(crate) fn new(gw: &Gateway, token: &str) -> Admin {
        Admin {
            base: format!("http://127.0.0.1:{}/admin/v1", gw.admin_port),
            token: token.to_string(),
            c: client(),
        }
    }

    pub(crate) async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = self
            .c
            .request(m, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// The same API with another token.
    pub(crate) fn with_token(&self, token: &str) -> Admin {
        Admin {
            base: self.base.clone(),
            token: token.to_string(),
            c: self.c.clone(),
        }
    }

    /// A GET's whole response.
    pub(crate) async fn raw(&self, path: &str) -> reqwest::Response {
        self.c
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }

    /// Calls and asserts the status; the body.
    pub(crate) async fn expect(&self, method: &str, path: &str, body: Option<Value>, status: u16) -> Value {
        let (got, v) = self.call(method, path, body).await;
        assert_eq!(got, status, "{method} {path}: {v}");
        v
    }
}

/// Payments owns `pay` (manual) and `free` (auto); shop owns application
/// `shop-app`; upstream `a` serves both services' routes.
async fn seed(admin: &Admin, upstream: std::net::SocketAddr) {
    for (user, role) in [("ann", json!(null)), ("dev", json!(null)), ("olga", json!("operator"))] {
        admin
            .expect("PUT", &format!("/users/{user}"), Some(json!({"role": role})), 200)
            .await;
    }
    admin
        .expect(
            "PUT",
            "/teams/payments",
            Some(json!({"members": [{"user": "ann", "role": "service_admin"}]})),
            200,
        )
        .await;
    admin
        .expect(
            "PUT",
            "/teams/shop",
            Some(json!({"members": [{"user": "dev", "role": "developer"}]})),
            200,
        )
        .await;
    admin
        .expect(
            "PUT",
            "/upstreams/a",
            Some(json!({"targets": [{"address": upstream.to_string()}]})),
            200,
        )
        .await;
    for (name, mode) in [("pay", "manual"), ("free", "auto")] {
        admin
            .expect(
                "PUT",
                &format!("/services/{name}"),
                Some(json!({"team": "payments", "subscription": mode})),
                200,
            )
            .await;
        admin
            .expect(
                "PUT",
                &format!("/routes/{name}"),
                Some(json!({"service": name, "paths": [format!("/{name}")], "upstream": "a",
                            "policies": [{"key_auth": {}}]})),
                200,
            )
            .await;
    }
    admin
        .expect("PUT", "/applications/shop-app", Some(json!({"team": "shop"})), 200)
        .await;
}

/// A token for `body` (a role and team, or a user), made by the admin.
pub(crate) async fn token_for(admin: &Admin, body: Value) -> String {
    let v = admin.expect("POST", "/tokens", Some(body), 201).await;
    assert!(v.get("digest").is_none(), "{v}");
    v["token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn an_application_subscribes_is_approved_and_loses_access_at_once() {
    let (gw, root, _dir) = store_gateway().await;
    application_life(gw, root).await;
}

#[tokio::test]
async fn an_application_subscribes_is_approved_and_loses_access_at_once_on_postgres() {
    let pg = Postgres::start().await;
    let (gw, root, _dir) = store_gateway_at(&pg.url(), temp_dir("mgmt-pg")).await;
    application_life(gw, root).await;
}

/// APIPark #405: a restart must not lose subscriptions. Approved before the
/// restart, served by the first request after it; and with the store down
/// at the restart, served from the last good config.
#[tokio::test]
async fn subscriptions_survive_a_restart_and_a_store_outage() {
    let up = Upstream::start("pay").await;
    let pg = Postgres::start().await;
    let dir = temp_dir("mgmt-restart");
    let key;
    {
        let (gw, root, _) = store_gateway_at(&pg.url(), dir.clone()).await;
        let admin = Admin::new(&gw, &root);
        seed(&admin, up.addr).await;
        let made = admin
            .expect(
                "POST",
                "/applications/shop-app/credentials",
                Some(json!({"type": "api_key"})),
                201,
            )
            .await;
        key = made["key"].as_str().unwrap().to_string();
        admin
            .expect(
                "POST",
                "/subscriptions",
                Some(json!({"application": "shop-app", "service": "pay"})),
                201,
            )
            .await;
        admin
            .expect("POST", "/subscriptions/shop-app:pay/approve", None, 200)
            .await;
    }
    let call = |gw: &Gateway| client().get(gw.url("/pay")).header("x-api-key", key.as_str()).send();
    {
        let (gw, _, _) = store_gateway_at(&pg.url(), dir.clone()).await;
        assert_eq!(call(&gw).await.unwrap().status(), 200, "{}", gw.log());
    }
    drop(pg);
    let (gw, _, _) = store_gateway_at("postgres://portico@127.0.0.1:1/none", dir.clone()).await;
    assert_eq!(call(&gw).await.unwrap().status(), 200, "{}", gw.log());
    assert!(
        gw.log().contains("serving the last config compiled from it"),
        "{}",
        gw.log()
    );
}

/// An application's whole life, each step served by the very next request.
async fn application_life(gw: Gateway, root: String) {
    let up = Upstream::start("pay").await;
    let admin = Admin::new(&gw, &root);
    seed(&admin, up.addr).await;
    let ann = Admin::new(&gw, &token_for(&admin, json!({"user": "ann"})).await);
    let dev = Admin::new(&gw, &token_for(&admin, json!({"user": "dev"})).await);
    let me = dev.expect("GET", "/me", None, 200).await;
    assert_eq!(me["teams"], json!([{"team": "shop", "role": "developer"}]), "{me}");
    // A developer reads but does not make credentials; a consumer admin of shop does.
    dev.expect(
        "POST",
        "/applications/shop-app/credentials",
        Some(json!({"type": "api_key"})),
        403,
    )
    .await;
    let cam = Admin::new(
        &gw,
        &token_for(&admin, json!({"role": "consumer_admin", "team": "shop"})).await,
    );
    let made = cam
        .expect(
            "POST",
            "/applications/shop-app/credentials",
            Some(json!({"type": "api_key", "id": "k1"})),
            201,
        )
        .await;
    let key = made["key"].as_str().unwrap().to_string();
    let stored = admin.expect("GET", "/applications/shop-app", None, 200).await;
    assert!(
        !stored.to_string().contains(&key),
        "only the digest is stored: {stored}"
    );
    let c = client();
    let call = |path: &str, key: &str| c.get(gw.url(path)).header("x-api-key", key).send();
    expect_error(call("/pay", &key).await.unwrap(), 403, "not_subscribed").await;
    // Asking: pending for a manual service, approved at once for an auto one.
    let sub = dev
        .expect(
            "POST",
            "/subscriptions",
            Some(json!({"application": "shop-app", "service": "pay", "reason": "checkout"})),
            201,
        )
        .await;
    assert_eq!(sub["status"], "pending", "{sub}");
    assert!(sub["requested_by"].as_str().unwrap().starts_with("dev"), "{sub}");
    expect_error(call("/pay", &key).await.unwrap(), 403, "subscription_pending").await;
    let free = dev
        .expect(
            "POST",
            "/subscriptions",
            Some(json!({"application": "shop-app", "service": "free"})),
            201,
        )
        .await;
    assert_eq!(free["status"], "approved", "{free}");
    assert_eq!(call("/free", &key).await.unwrap().status(), 200);
    // Only the service's side decides.
    dev.expect("POST", "/subscriptions/shop-app:pay/approve", None, 403)
        .await;
    let approved = ann
        .expect(
            "POST",
            "/subscriptions/shop-app:pay/approve",
            Some(json!({"reason": "ok"})),
            200,
        )
        .await;
    assert_eq!(approved["status"], "approved");
    assert!(
        approved["decided_by"].as_str().unwrap().starts_with("ann"),
        "{approved}"
    );
    assert_eq!(call("/pay", &key).await.unwrap().status(), 200, "served at once");
    ann.expect("POST", "/subscriptions/shop-app:pay/approve", None, 409)
        .await;
    let pending = dev.expect("GET", "/subscriptions?status=approved", None, 200).await;
    assert_eq!(pending["items"].as_array().unwrap().len(), 2, "{pending}");
    // Revoking the key: the next call is refused.
    let second = cam
        .expect(
            "POST",
            "/applications/shop-app/credentials",
            Some(json!({"type": "api_key", "id": "k2"})),
            201,
        )
        .await;
    let key2 = second["key"].as_str().unwrap().to_string();
    cam.expect("DELETE", "/applications/shop-app/credentials/k1", None, 204)
        .await;
    expect_error(call("/pay", &key).await.unwrap(), 401, "unauthorized").await;
    assert_eq!(call("/pay", &key2).await.unwrap().status(), 200);
    // Cancelling: the next call is refused.
    dev.expect("POST", "/subscriptions/shop-app:pay/cancel", None, 200)
        .await;
    expect_error(call("/pay", &key2).await.unwrap(), 403, "not_subscribed").await;
    // An expired credential says so.
    let old = cam
        .expect(
            "POST",
            "/applications/shop-app/credentials",
            Some(json!({"type": "api_key", "expires_at": "2020-01-01T00:00:00Z"})),
            201,
        )
        .await;
    expect_error(
        call("/free", old["key"].as_str().unwrap()).await.unwrap(),
        401,
        "credential_expired",
    )
    .await;
    // Deleting the application (and with it its subscriptions): its keys
    // stop working at once.
    cam.expect("DELETE", "/applications/shop-app", None, 204).await;
    admin.expect("GET", "/subscriptions/shop-app:free", None, 404).await;
    expect_error(call("/free", &key2).await.unwrap(), 401, "unauthorized").await;
    // The audit names who did each write, and never a token's digest.
    let audit = admin.expect("GET", "/audit?limit=1000", None, 200).await;
    let text = audit.to_string();
    assert!(!text.contains("\"digest\""), "{text}");
    let actors: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["actor"].as_str())
        .collect();
    assert!(actors.iter().any(|a| a.starts_with("ann")) && actors.iter().any(|a| a.starts_with("token:")));
}

/// Every role against every area over HTTP: what each may read and write
/// on its own team's things and on another team's (the README's table).
#[tokio::test]
async fn the_permission_table_holds_over_http() {
    let up = Upstream::start("any").await;
    let (gw, root, _dir) = store_gateway().await;
    let admin = Admin::new(&gw, &root);
    seed(&admin, up.addr).await;
    admin
        .expect("PUT", "/applications/other-app", Some(json!({"team": "payments"})), 200)
        .await;
    let sample_token = admin
        .expect("POST", "/tokens", Some(json!({"role": "auditor"})), 201)
        .await;
    let token_id = sample_token["id"].as_str().unwrap().to_string();
    let roles: [(&str, Value); 8] = [
        ("admin", json!({"role": "admin"})),
        ("operator", json!({"role": "operator"})),
        ("auditor", json!({"role": "auditor"})),
        ("team_admin@shop", json!({"role": "team_admin", "team": "shop"})),
        (
            "service_admin@payments",
            json!({"role": "service_admin", "team": "payments"}),
        ),
        ("consumer_admin@shop", json!({"role": "consumer_admin", "team": "shop"})),
        ("developer@shop", json!({"role": "developer", "team": "shop"})),
        ("developer@payments", json!({"role": "developer", "team": "payments"})),
    ];
    // One row per operation: whether each role above (in order) may do it.
    let y = true;
    let n = false;
    let table: &[(&str, [bool; 8])] = &[
        ("read config", [y, y, y, n, n, n, n, n]),
        ("write config", [y, y, n, n, n, n, n, n]),
        ("read a service", [y, y, y, y, y, y, y, y]),
        ("write payments' service", [y, y, n, n, y, n, n, n]),
        ("read shop's application", [y, y, y, y, n, y, y, n]),
        ("write shop's application", [y, y, n, y, n, y, n, n]),
        ("add a credential to shop's application", [y, y, n, y, n, y, n, n]),
        ("read payments' application", [y, y, y, n, n, n, n, y]),
        ("read shop's subscription to pay", [y, y, y, y, y, y, y, y]),
        ("approve a subscription to pay", [y, y, n, n, y, n, n, n]),
        ("ask for shop's subscription to free", [y, y, n, y, n, y, y, n]),
        ("read team shop", [y, y, y, y, n, y, y, n]),
        ("write team shop", [y, n, n, y, n, n, n, n]),
        ("read a user", [y, y, y, n, n, n, n, n]),
        ("write a user", [y, n, n, n, n, n, n, n]),
        ("read an admin token", [y, n, y, n, n, n, n, n]),
        ("make an admin token", [y, n, n, n, n, n, n, n]),
        ("read the audit log", [y, y, y, n, n, n, n, n]),
        ("read the whole config", [y, y, y, n, n, n, n, n]),
    ];
    for (i, (role, body)) in roles.iter().enumerate() {
        let who = Admin::new(&gw, &token_for(&admin, body.clone()).await);
        for (op, allowed) in table {
            // Each operation starts from the same state.
            admin
                .expect(
                    "PUT",
                    "/subscriptions/shop-app:pay",
                    Some(json!({"status": "pending"})),
                    200,
                )
                .await;
            let _ = admin.call("DELETE", "/subscriptions/shop-app:free", None).await;
            let (status, v) = match *op {
                "read config" => who.call("GET", "/upstreams/a", None).await,
                "write config" => {
                    let t = json!({"targets": [{"address": up.addr.to_string()}]});
                    who.call("PUT", "/upstreams/a", Some(t)).await
                }
                "read a service" => who.call("GET", "/services/pay", None).await,
                "write payments' service" => {
                    who.call("PATCH", "/services/pay", Some(json!({"description": role})))
                        .await
                }
                "read shop's application" => who.call("GET", "/applications/shop-app", None).await,
                "write shop's application" => {
                    who.call("PATCH", "/applications/shop-app", Some(json!({"description": role})))
                        .await
                }
                "add a credential to shop's application" => {
                    let b = json!({"type": "jwt", "subject": format!("sub-{i}"), "id": format!("j{i}")});
                    who.call("POST", "/applications/shop-app/credentials", Some(b)).await
                }
                "read payments' application" => who.call("GET", "/applications/other-app", None).await,
                "read shop's subscription to pay" => who.call("GET", "/subscriptions/shop-app:pay", None).await,
                "approve a subscription to pay" => who.call("POST", "/subscriptions/shop-app:pay/approve", None).await,
                "ask for shop's subscription to free" => {
                    let b = json!({"application": "shop-app", "service": "free"});
                    who.call("POST", "/subscriptions", Some(b)).await
                }
                "read team shop" => who.call("GET", "/teams/shop", None).await,
                "write team shop" => {
                    let b = json!({"description": role});
                    who.call("PATCH", "/teams/shop", Some(b)).await
                }
                "read a user" => who.call("GET", "/users/ann", None).await,
                "write a user" => who.call("PUT", &format!("/users/new-{i}"), Some(json!({}))).await,
                "read an admin token" => {
                    who.call("GET", &format!("/resources/admin_token/{token_id}"), None)
                        .await
                }
                "make an admin token" => who.call("POST", "/tokens", Some(json!({"role": "auditor"}))).await,
                "read the audit log" => who.call("GET", "/audit", None).await,
                "read the whole config" => {
                    let r = who
                        .c
                        .get(format!("{}/config", who.base))
                        .bearer_auth(&who.token)
                        .send()
                        .await
                        .unwrap();
                    (r.status().as_u16(), Value::Null)
                }
                other => unreachable!("{other}"),
            };
            let ok = (200..300).contains(&status);
            let refused = status == 403 || (status == 404 && op.starts_with("read"));
            assert!(
                ok == allowed[i] && (ok || refused),
                "{role}: {op}: expected {}, got {status} {v}",
                if allowed[i] { "allowed" } else { "refused" }
            );
        }
    }
}

/// `portico admin` scripts the common tasks with what the process's own
/// config file says (the admin address, the token in `state_dir`).
#[tokio::test]
async fn the_admin_cli_scripts_the_common_tasks() {
    let up = Upstream::start("cli").await;
    let (gw, _root, dir) = store_gateway().await;
    let conf = gw.config_path();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(portico_bin())
            .arg("admin")
            .args(["-c", conf.to_str().unwrap()])
            .args(args)
            .env_remove("PORTICO_ADMIN_TOKEN")
            .env_remove("PORTICO_ADMIN_URL")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let file = dir.join("shop.yaml");
    std::fs::write(
        &file,
        format!(
            "upstreams:\n  a:\n    targets:\n      - address: {}\n\
services:\n  - {{name: pay, team: payments, subscription: manual}}\n\
routes:\n  - name: pay\n    service: pay\n    paths: [/pay]\n    upstream: a\n    policies:\n      - key_auth: {{}}\n\
consumers:\n  - {{name: shop-app, team: shop}}\n",
            up.addr
        ),
    )
    .unwrap();
    let (ok, out) = cli(&["import", file.to_str().unwrap(), "--dry-run"]);
    assert!(
        ok && out.contains("\"dry_run\": true") && out.contains("\"pay\""),
        "{out}"
    );
    let (ok, out) = cli(&["get", "service"]);
    assert!(ok && !out.contains("\"pay\""), "a dry run writes nothing: {out}");
    let (ok, out) = cli(&["import", file.to_str().unwrap()]);
    assert!(ok, "{out}");
    let (ok, out) = cli(&["credential", "create", "shop-app", "--id", "k1"]);
    assert!(ok, "{out}");
    let made: Value = serde_json::from_str(&out).unwrap();
    let key = made["key"].as_str().unwrap().to_string();
    let (ok, out) = cli(&["subscription", "ask", "shop-app", "pay", "--reason", "checkout"]);
    assert!(ok && out.contains("pending"), "{out}");
    let (ok, out) = cli(&["subscription", "list", "--status", "pending"]);
    assert!(ok && out.contains("shop-app:pay"), "{out}");
    let c = client();
    let call = || c.get(gw.url("/pay")).header("x-api-key", key.as_str()).send();
    expect_error(call().await.unwrap(), 403, "subscription_pending").await;
    let (ok, out) = cli(&["subscription", "approve", "shop-app:pay"]);
    assert!(ok, "{out}");
    assert_eq!(call().await.unwrap().status(), 200);
    let (ok, out) = cli(&["token", "create", "--role", "auditor", "--expires-in", "1h"]);
    assert!(ok && out.contains("pt_"), "{out}");
    let (ok, out) = cli(&["subscription", "approve", "shop-app:pay"]);
    assert!(!ok && out.contains("409"), "a refusal is the API's: {out}");
    let (ok, out) = cli(&["export"]);
    assert!(
        ok && out.contains("subscriptions:") && out.contains("status: approved"),
        "{out}"
    );
}

/// A person signs in with a password for a session token that carries the
/// user's roles, and signs out; the password is never shown, and a wrong
/// name answers like a wrong password.
#[tokio::test]
async fn users_log_in_for_a_session_and_log_out() {
    let up = Upstream::start("login").await;
    let (gw, root, _dir) = store_gateway().await;
    let admin = Admin::new(&gw, &root);
    seed(&admin, up.addr).await;
    admin
        .expect(
            "PATCH",
            "/users/ann",
            Some(json!({"password": "correct horse battery"})),
            200,
        )
        .await;
    admin
        .expect("PATCH", "/users/dev", Some(json!({"password": "short"})), 422)
        .await;
    let shown = admin.expect("GET", "/users/ann", None, 200).await;
    assert!(
        shown.get("password_hash").is_none() && shown.get("password").is_none(),
        "{shown}"
    );
    let anon = Admin::new(&gw, "none");
    for (user, pw) in [
        ("ann", "wrong password!"),
        ("nobody", "correct horse battery"),
        ("dev", "anything at all"),
    ] {
        let v = anon
            .expect("POST", "/login", Some(json!({"user": user, "password": pw})), 401)
            .await;
        assert_eq!(v["detail"], "wrong user or password", "{user}: {v}");
    }
    let session = anon
        .expect(
            "POST",
            "/login",
            Some(json!({"user": "ann", "password": "correct horse battery"})),
            200,
        )
        .await;
    let ann = Admin::new(&gw, session["token"].as_str().unwrap());
    let me = ann.expect("GET", "/me", None, 200).await;
    assert_eq!(
        me["teams"],
        json!([{"team": "payments", "role": "service_admin"}]),
        "{me}"
    );
    ann.expect("PATCH", "/services/pay", Some(json!({"description": "by ann"})), 200)
        .await;
    ann.expect("POST", "/logout", None, 204).await;
    ann.expect("GET", "/me", None, 401).await;
}

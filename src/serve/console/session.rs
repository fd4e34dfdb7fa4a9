//! Who is signed in to the console and the portal.
//!
//! - The session is the admin API's login token (`POST /admin/v1/login`,
//!   12 hours, stored as its digest only), kept in the `portico_session`
//!   cookie: `HttpOnly`, `SameSite=Strict`, `Path=/`, and `Secure` when the
//!   admin listener is served over TLS. Signing out revokes the token.
//! - Every form carries a CSRF token: for a signed-in person, a digest of
//!   their session token (which a page's script could not read, and another
//!   site cannot know); for the sign-in form, a random value also set as a
//!   cookie (double submit). A POST whose `Origin` is another host is
//!   refused as well.
//! - Failed sign-ins are limited per client address and per user name
//!   (10 in the last minute each, a sliding estimate over pingora-limits'
//!   rate estimator, no lock); past the limit every attempt is refused
//!   with 429 until the failures age out.

use super::api::{enc, Answer};
use super::forms::Form;
use super::render::{page, redirect, Page};
use super::Shared;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use cookie::{Cookie, SameSite};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use subtle::ConstantTimeEq;

const SESSION: &str = "portico_session";
const LOGIN_CSRF: &str = "portico_login_csrf";
/// Failed sign-ins allowed a minute, per address and per user name; then
/// sign-in is refused (even with the right password) until the minute ends.
const FAILURES_PER_MINUTE: isize = 10;

/// The admin connection a request came on, set by the admin listener.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Conn {
    pub client: Option<IpAddr>,
    pub tls: bool,
}

/// Sign-in attempts per minute.
pub(super) struct LoginLimit(pingora_limits::rate::Rate);

impl LoginLimit {
    pub(super) fn new() -> LoginLimit {
        LoginLimit(pingora_limits::rate::Rate::new(std::time::Duration::from_secs(60)))
    }

    /// Whether sign-in is open to `client` and `user`: fewer than the
    /// limit's failures from either in the last minute.
    fn open(&self, client: Option<IpAddr>, user: &str) -> bool {
        let limit = FAILURES_PER_MINUTE as f64;
        self.recent(&("client", client)) < limit && self.recent(&("user", user)) < limit
    }

    /// Failures in the last minute: this minute's, and the previous
    /// minute's weighted by how much of it is still within the last 60 s.
    fn recent<K: std::hash::Hash>(&self, key: &K) -> f64 {
        self.0.rate_with(key, |r| {
            r.curr_samples as f64 + r.prev_samples as f64 * (1.0 - r.current_interval_fraction)
        })
    }

    /// Counts a failed attempt against both.
    fn failed(&self, client: Option<IpAddr>, user: &str) {
        self.0.observe(&("client", client), 1);
        self.0.observe(&("user", user), 1);
    }
}

/// The person signed in, with their roles as the API reports them.
pub(super) struct Viewer {
    pub token: String,
    pub name: String,
    /// Their system role, if any.
    pub role: Option<String>,
    /// Their teams and the role each gives them.
    pub teams: Vec<(String, String)>,
    pub csrf: String,
}

impl Viewer {
    /// Whether the person holds `role` system-wide or in any team.
    pub(super) fn has(&self, roles: &[&str]) -> bool {
        self.role.as_deref().is_some_and(|r| roles.contains(&r))
            || self.teams.iter().any(|(_, r)| roles.contains(&r.as_str()))
    }

    /// Whether the person may decide on things: admin, operator or a
    /// team's team_admin or service_admin (the API still decides per item).
    pub(super) fn decides(&self) -> bool {
        self.has(&["admin", "operator", "team_admin", "service_admin"])
    }

    /// What templates see of the person.
    pub(super) fn json(&self) -> Value {
        let teams: Vec<Value> = self.teams.iter().map(|(t, r)| json!({"team": t, "role": r})).collect();
        json!({"name": self.name, "role": self.role, "teams": teams, "csrf": self.csrf,
               "decides": self.decides(), "system": self.role.is_some()})
    }
}

fn csrf_of(token: &str) -> String {
    let d = Sha256::digest(format!("portico-console-csrf\0{token}").as_bytes());
    hex::encode(&d[..16])
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

pub(super) fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// Whether a POST came from this host (no `Origin`, or one naming `Host`).
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// Where to go to sign in, coming back to `path` afterwards.
fn to_login(path: &str) -> Response {
    redirect(&format!("/console/login?next={}", enc(path)))
}

/// The person signed in, or the sign-in page (back to `path` after).
pub(super) async fn viewer(c: &Shared, headers: &HeaderMap, path: &str) -> Result<Viewer, Response> {
    let Some(token) = cookie_value(headers, SESSION) else {
        return Err(to_login(path));
    };
    let me = c.api.get(&token, "/admin/v1/me").await;
    if me.status == StatusCode::UNAUTHORIZED {
        return Err(to_login(path));
    }
    if !me.ok() {
        return Err(failure(c, &me));
    }
    let teams = me
        .body
        .get("teams")
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .filter_map(|t| {
                    Some((
                        t.get("team")?.as_str()?.to_string(),
                        t.get("role")?.as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Viewer {
        csrf: csrf_of(&token),
        // A login session is named "ann (token:ID)" by the API: the person is "ann".
        name: me
            .body
            .get("name")
            .and_then(Value::as_str)
            .map(|n| n.split(" (token:").next().unwrap_or(n))
            .unwrap_or("")
            .to_string(),
        role: me.body.get("role").and_then(Value::as_str).map(str::to_string),
        teams,
        token,
    })
}

/// The person signed in, for a form they sent: the CSRF token and the
/// origin checked.
pub(super) async fn poster(c: &Shared, headers: &HeaderMap, form: &Form, path: &str) -> Result<Viewer, Response> {
    let v = viewer(c, headers, path).await?;
    if !same_origin(headers) || !same(form.get("_csrf"), &v.csrf) {
        return Err(forbidden(c, Some(&v)));
    }
    Ok(v)
}

/// The page for a form that failed the CSRF check.
fn forbidden(c: &Shared, v: Option<&Viewer>) -> Response {
    let ctx = json!({"title": "Refused", "message": "This form has expired or came from another site. Go back, reload the page and try again.",
                     "me": v.map(Viewer::json)});
    page(c, StatusCode::FORBIDDEN, Page::Error, ctx)
}

/// The error page for an API answer that was not a success.
pub(super) fn failure(c: &Shared, a: &Answer) -> Response {
    let status = if a.status.is_client_error() || a.status.is_server_error() {
        a.status
    } else {
        StatusCode::BAD_GATEWAY
    };
    let ctx = json!({"title": status.canonical_reason().unwrap_or("Error"), "message": a.problem(), "me": Value::Null});
    page(c, status, Page::Error, ctx)
}

fn new_login_csrf() -> String {
    let mut raw = [0u8; 16];
    if getrandom::fill(&mut raw).is_err() {
        // No randomness: a value no form will match, so sign-in fails safe.
        return "unavailable".into();
    }
    hex::encode(raw)
}

pub(super) fn session_cookie(value: &str, conn: Conn, max_age: i64) -> HeaderValue {
    let c = Cookie::build((SESSION, value.to_string()))
        .http_only(true)
        .secure(conn.tls)
        .same_site(SameSite::Strict)
        .path("/")
        .max_age(cookie::time::Duration::seconds(max_age))
        .build();
    HeaderValue::from_str(&c.to_string()).unwrap_or_else(|_| HeaderValue::from_static("portico_session=; Max-Age=0"))
}

/// Where to go after signing in: a console or portal path, nothing else.
pub(super) fn next_path(next: &str) -> &str {
    let local =
        (next.starts_with("/console") || next.starts_with("/portal")) && !next.contains("//") && !next.contains('\\');
    if local {
        next
    } else {
        "/console"
    }
}

pub(super) fn login_form(c: &Shared, conn: Conn, status: StatusCode, next: &str, error: Option<&str>) -> Response {
    let token = new_login_csrf();
    let oidc = c.oidc.as_ref().map(|o| o.label());
    let ctx = json!({"title": "Sign in", "next": next_path(next), "csrf": token, "error": error, "me": Value::Null, "oidc": oidc});
    let mut resp = page(c, status, Page::Login, ctx);
    let cookie = Cookie::build((LOGIN_CSRF, token))
        .http_only(true)
        .secure(conn.tls)
        .same_site(SameSite::Strict)
        .path("/console/login")
        .build();
    if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// `GET /console/login`.
pub(super) async fn login_page(
    State(c): State<Shared>,
    conn: Option<Extension<Conn>>,
    q: axum::extract::Query<std::collections::BTreeMap<String, String>>,
) -> Response {
    let next = q.get("next").map_or("/console", String::as_str);
    login_form(&c, conn.map(|e| e.0).unwrap_or_default(), StatusCode::OK, next, None)
}

/// `POST /console/login`: a user name and password.
pub(super) async fn login(
    State(c): State<Shared>,
    conn: Option<Extension<Conn>>,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let conn = conn.map(|e| e.0).unwrap_or_default();
    let next = form.get("next").to_string();
    let expected = cookie_value(&headers, LOGIN_CSRF).unwrap_or_default();
    if expected.is_empty() || !same(form.get("_csrf"), &expected) || !same_origin(&headers) {
        return login_form(
            &c,
            conn,
            StatusCode::FORBIDDEN,
            &next,
            Some("The sign-in form expired. Please try again."),
        );
    }
    let user = form.get("user").trim().to_string();
    if !c.logins.open(conn.client, &user) {
        return login_form(
            &c,
            conn,
            StatusCode::TOO_MANY_REQUESTS,
            &next,
            Some("Too many sign-in attempts. Wait a minute and try again."),
        );
    }
    let body = json!({"user": user, "password": form.get("password")});
    let a = c
        .api
        .call(None, axum::http::Method::POST, "/admin/v1/login", Some(&body))
        .await;
    let Some(token) = a.ok().then(|| a.body.get("token").and_then(Value::as_str)).flatten() else {
        c.logins.failed(conn.client, &user);
        let msg = if a.status == StatusCode::UNAUTHORIZED {
            "Wrong user name or password.".to_string()
        } else {
            a.problem()
        };
        return login_form(&c, conn, StatusCode::UNAUTHORIZED, &next, Some(&msg));
    };
    let mut resp = redirect(next_path(&next));
    resp.headers_mut()
        .append(header::SET_COOKIE, session_cookie(token, conn, 12 * 3600));
    resp
}

/// `POST /console/logout`: revokes the session's token.
pub(super) async fn logout(
    State(c): State<Shared>,
    conn: Option<Extension<Conn>>,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let v = match poster(&c, &headers, &form, "/console").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let _ = c.api.post(&v.token, "/admin/v1/logout", &Value::Null).await;
    let mut resp = redirect("/console/login");
    resp.headers_mut().append(
        header::SET_COOKIE,
        session_cookie("", conn.map(|e| e.0).unwrap_or_default(), 0),
    );
    resp.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_paths_stay_on_the_console() {
        assert_eq!(next_path("/console/services"), "/console/services");
        assert_eq!(next_path("/portal"), "/portal");
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/console//evil",
            "/admin/v1/me",
            "/console\\x",
        ] {
            assert_eq!(next_path(bad), "/console", "{bad}");
        }
    }

    #[test]
    fn origins_must_name_the_host() {
        let mut h = HeaderMap::new();
        assert!(same_origin(&h));
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:9901"));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:9901"));
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://evil.example"));
        assert!(!same_origin(&h));
    }

    #[test]
    fn csrf_tokens_differ_per_session_and_compare_whole() {
        assert_ne!(csrf_of("a"), csrf_of("b"));
        assert!(same(&csrf_of("a"), &csrf_of("a")));
        assert!(!same(&csrf_of("a")[..8], &csrf_of("a")));
    }

    #[test]
    fn failed_sign_ins_are_limited_per_client_and_user() {
        let l = LoginLimit::new();
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        for i in 0..FAILURES_PER_MINUTE {
            assert!(l.open(ip, &format!("u{i}")));
            l.failed(ip, &format!("u{i}"));
        }
        assert!(!l.open(ip, "fresh"), "the address is over its limit");
        let other = Some(IpAddr::from([10, 0, 0, 2]));
        for _ in 0..FAILURES_PER_MINUTE {
            assert!(l.open(Some(IpAddr::from([10, 0, 0, 3])), "ann"));
            l.failed(other, "ann");
        }
        assert!(
            !l.open(Some(IpAddr::from([10, 0, 0, 4])), "ann"),
            "the user is over its limit"
        );
        assert!(l.open(Some(IpAddr::from([10, 0, 0, 4])), "bob"));
    }
}

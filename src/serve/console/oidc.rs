//! Signing in to the console through any OpenID Connect provider
//! (`server.console.oidc`): the issuer's discovery document, the
//! authorization code flow with PKCE (S256), a `state` bound to the browser
//! by a cookie, the ID token's signature checked against the issuer's JWKS
//! (`jsonwebtoken`, asymmetric algorithms only), its issuer, audience,
//! expiry and `nonce`; then the groups claim mapped to roles and the user
//! kept in step ([`crate::serve::admin_api::federated`]).
//!
//! A sign-in waits at most 10 minutes between leaving for the provider and
//! coming back; what it needs meanwhile (the PKCE verifier, the nonce, where
//! to go after) stays in the process (a bounded `moka` cache), never in the
//! browser.

use super::session::{login_form, session_cookie, Conn};
use super::Shared;
use crate::config::OidcConfig;
use crate::serve::admin_api::access::Role;
use crate::serve::admin_api::federated::{sign_in, Federated};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Extension;
use base64::Engine;
use cookie::{Cookie, SameSite};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

const BINDING: &str = "portico_oidc";
/// How long a sign-in may stay at the provider.
const PENDING_SECS: u64 = 600;

/// What the issuer's discovery document says (the parts used).
#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// A sign-in gone to the provider.
#[derive(Clone)]
struct Pending {
    verifier: String,
    nonce: String,
    next: String,
    /// The digest of the browser's binding cookie.
    browser: String,
}

/// The provider and the sign-ins under way.
pub(crate) struct Oidc {
    cfg: OidcConfig,
    secret: Option<String>,
    discovery: tokio::sync::OnceCell<Discovery>,
    pending: moka::future::Cache<String, Pending>,
    http: Option<reqwest::Client>,
}

fn random() -> Option<String> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
}

fn digest(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(s.as_bytes()))
}

impl Oidc {
    /// The provider of `cfg`, with its client secret read.
    pub(crate) fn new(cfg: OidcConfig, secret: Option<String>) -> Oidc {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .ok();
        Oidc {
            cfg,
            secret,
            discovery: tokio::sync::OnceCell::new(),
            pending: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(std::time::Duration::from_secs(PENDING_SECS))
                .build(),
            http,
        }
    }

    /// The sign-in button's label.
    pub(super) fn label(&self) -> &str {
        &self.cfg.label
    }

    fn http(&self) -> Result<&reqwest::Client, String> {
        self.http.as_ref().ok_or_else(|| "no HTTP client".to_string())
    }

    async fn discovery(&self) -> Result<&Discovery, String> {
        self.discovery
            .get_or_try_init(|| async {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    self.cfg.issuer.trim_end_matches('/')
                );
                let d: Discovery = self
                    .http()?
                    .get(&url)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(|e| format!("the provider's discovery document: {e}"))?
                    .json()
                    .await
                    .map_err(|e| format!("the provider's discovery document: {e}"))?;
                if d.issuer.trim_end_matches('/') != self.cfg.issuer.trim_end_matches('/') {
                    return Err(format!(
                        "the provider says its issuer is {:?}, not {:?}",
                        d.issuer, self.cfg.issuer
                    ));
                }
                Ok(d)
            })
            .await
    }

    /// The system role and team roles `groups` map to.
    fn roles(&self, groups: &[String]) -> (Option<Role>, Vec<(String, Role)>) {
        let parse = |r: &str| serde_json::from_value::<Role>(json!(r)).ok();
        let mut system: Option<Role> = None;
        let mut teams = Vec::new();
        for m in self.cfg.roles.iter().filter(|m| groups.contains(&m.group)) {
            let Some(role) = parse(&m.role) else { continue };
            match &m.team {
                Some(team) => teams.push((team.clone(), role)),
                None => {
                    let rank = |r: Option<Role>| match r {
                        Some(Role::Admin) => 3,
                        Some(Role::Operator) => 2,
                        Some(Role::Auditor) => 1,
                        _ => 0,
                    };
                    if rank(Some(role)) > rank(system) {
                        system = Some(role);
                    }
                }
            }
        }
        (system, teams)
    }

    /// The teams the mapping names.
    fn managed_teams(&self) -> Vec<String> {
        let mut t: Vec<String> = self.cfg.roles.iter().filter_map(|m| m.team.clone()).collect();
        t.sort();
        t.dedup();
        t
    }

    /// Trades the code for an ID token and checks it: its claims.
    async fn claims(&self, code: &str, p: &Pending) -> Result<Value, String> {
        let d = self.discovery().await?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.cfg.redirect_url.as_str()),
            ("client_id", self.cfg.client_id.as_str()),
            ("code_verifier", p.verifier.as_str()),
        ];
        let mut req = self.http()?.post(&d.token_endpoint).form(&form);
        if let Some(secret) = &self.secret {
            req = req.basic_auth(&self.cfg.client_id, Some(secret));
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("the provider's token endpoint: {e}"))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let Some(id_token) = body
            .get("id_token")
            .and_then(Value::as_str)
            .filter(|_| status.is_success())
        else {
            let why = body.get("error").and_then(Value::as_str).unwrap_or("no ID token");
            return Err(format!("the provider refused the code ({status}): {why}"));
        };
        let head = jsonwebtoken::decode_header(id_token).map_err(|e| format!("the ID token: {e}"))?;
        use jsonwebtoken::Algorithm::{HS256, HS384, HS512};
        if matches!(head.alg, HS256 | HS384 | HS512) {
            return Err("the ID token is signed with a shared secret: only the provider's keys are accepted".into());
        }
        let jwks: jsonwebtoken::jwk::JwkSet = self
            .http()?
            .get(&d.jwks_uri)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("the provider's keys: {e}"))?
            .json()
            .await
            .map_err(|e| format!("the provider's keys: {e}"))?;
        let jwk = match &head.kid {
            Some(kid) => jwks.find(kid),
            None => jwks.keys.first(),
        }
        .ok_or("the ID token's key is not among the provider's keys")?;
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| format!("the provider's key: {e}"))?;
        let mut v = jsonwebtoken::Validation::new(head.alg);
        v.set_issuer(&[d.issuer.as_str()]);
        v.set_audience(&[self.cfg.client_id.as_str()]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.leeway = 60;
        let data = jsonwebtoken::decode::<Value>(id_token, &key, &v).map_err(|e| format!("the ID token: {e}"))?;
        if data.claims.get("nonce").and_then(Value::as_str) != Some(p.nonce.as_str()) {
            return Err("the ID token is not for this sign-in (nonce)".into());
        }
        Ok(data.claims)
    }

    /// The person the claims name, with their roles.
    fn person(&self, claims: &Value) -> Result<Federated, String> {
        let text = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_string);
        let user = text(&self.cfg.username_claim)
            .or_else(|| text("email"))
            .or_else(|| text("sub"))
            .unwrap_or_default();
        let ok = |c: char| c.is_ascii_alphanumeric() || "._@+-".contains(c);
        if user.is_empty() || user.len() > 128 || !user.chars().all(ok) {
            return Err(format!("the provider's user name {user:?} cannot name a Portico user"));
        }
        let groups: Vec<String> = match claims.get(&self.cfg.groups_claim) {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        };
        let (role, teams) = self.roles(&groups);
        if role.is_none() && teams.is_empty() {
            return Err(format!("{user}'s groups give no role in Portico"));
        }
        Ok(Federated {
            display_name: text("name").unwrap_or_default(),
            email: text("email").unwrap_or_default(),
            user,
            role,
            teams,
            managed_teams: self.managed_teams(),
            actor: format!("oidc:{}", self.cfg.issuer),
        })
    }
}

fn conn_of(conn: Option<Extension<Conn>>) -> Conn {
    conn.map(|e| e.0).unwrap_or_default()
}

/// `GET /console/oidc/start?next=...`: off to the provider.
pub(super) async fn start(
    State(c): State<Shared>,
    conn: Option<Extension<Conn>>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let conn = conn_of(conn);
    let next = q.get("next").map_or("/console", String::as_str);
    let Some(o) = &c.oidc else {
        return login_form(
            &c,
            conn,
            StatusCode::NOT_FOUND,
            next,
            Some("No identity provider is set up."),
        );
    };
    let d = match o.discovery().await {
        Ok(d) => d,
        Err(e) => return login_form(&c, conn, StatusCode::BAD_GATEWAY, next, Some(&e)),
    };
    let (Some(state), Some(nonce), Some(verifier), Some(binding)) = (random(), random(), random(), random()) else {
        return login_form(&c, conn, StatusCode::INTERNAL_SERVER_ERROR, next, Some("no randomness"));
    };
    let Ok(mut url) = reqwest::Url::parse(&d.authorization_endpoint) else {
        return login_form(
            &c,
            conn,
            StatusCode::BAD_GATEWAY,
            next,
            Some("the provider's authorization endpoint is not a URL"),
        );
    };
    let mut scopes = vec!["openid".to_string()];
    scopes.extend(o.cfg.scopes.iter().filter(|s| *s != "openid").cloned());
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &o.cfg.client_id)
        .append_pair("redirect_uri", &o.cfg.redirect_url)
        .append_pair("scope", &scopes.join(" "))
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &digest(&verifier))
        .append_pair("code_challenge_method", "S256");
    let pending = Pending {
        verifier,
        nonce,
        next: next.to_string(),
        browser: digest(&binding),
    };
    o.pending.insert(state, pending).await;
    let mut resp = super::render::redirect(url.as_str());
    let cookie = Cookie::build((BINDING, binding))
        .http_only(true)
        .secure(conn.tls)
        // The provider sends the browser back with a top-level GET: Lax lets
        // this one cookie come along (the session cookie stays Strict).
        .same_site(SameSite::Lax)
        .path("/console/oidc")
        .max_age(cookie::time::Duration::seconds(PENDING_SECS as i64))
        .build();
    if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// `GET /console/oidc/callback?code=...&state=...`: back from the provider.
pub(super) async fn callback(
    State(c): State<Shared>,
    conn: Option<Extension<Conn>>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let conn = conn_of(conn);
    let fail = |status: StatusCode, why: &str| login_form(&c, conn, status, "/console", Some(why));
    let Some(o) = &c.oidc else {
        return fail(StatusCode::NOT_FOUND, "No identity provider is set up.");
    };
    if let Some(e) = q.get("error") {
        let why = q.get("error_description").map_or(e.as_str(), String::as_str);
        return fail(
            StatusCode::UNAUTHORIZED,
            &format!("The provider refused the sign-in: {why}"),
        );
    }
    let (Some(state), Some(code)) = (q.get("state"), q.get("code")) else {
        return fail(StatusCode::BAD_REQUEST, "The provider sent no code.");
    };
    let Some(p) = o.pending.remove(state).await else {
        return fail(
            StatusCode::BAD_REQUEST,
            "This sign-in expired or was already used. Please sign in again.",
        );
    };
    let binding = super::session::cookie_value(&headers, BINDING).unwrap_or_default();
    if binding.is_empty() || digest(&binding) != p.browser {
        return fail(StatusCode::BAD_REQUEST, "This sign-in was started in another browser.");
    }
    let person = match o.claims(code, &p).await.and_then(|claims| o.person(&claims)) {
        Ok(f) => f,
        Err(e) => {
            log::warn!("console sign-in through {}: {e}", o.cfg.issuer);
            return fail(StatusCode::UNAUTHORIZED, &e);
        }
    };
    match sign_in(&c.admin, &person).await {
        Ok((token, _)) => {
            let mut resp = super::render::redirect(super::session::next_path(&p.next));
            resp.headers_mut()
                .append(header::SET_COOKIE, session_cookie(&token, conn, 12 * 3600));
            resp
        }
        Err(r) => {
            let status = r.status();
            let body = axum::body::to_bytes(r.into_body(), 64 * 1024).await.unwrap_or_default();
            let why = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("detail").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_else(|| "the sign-in could not be recorded".into());
            fail(status, &why)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oidc(roles: &str) -> Oidc {
        let cfg: OidcConfig = serde_yaml::from_str(&format!(
            "issuer: http://idp\nclient_id: portico\nredirect_url: http://a/console/oidc/callback\nroles: {roles}\n"
        ))
        .unwrap();
        Oidc::new(cfg, None)
    }

    #[test]
    fn groups_map_to_the_strongest_system_role_and_every_team_role() {
        let o = oidc("[{group: ops, role: operator}, {group: root, role: admin}, {group: devs, team: shop, role: developer}, {group: leads, team: apps, role: team_admin}]");
        let g = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (role, teams) = o.roles(&g(&["ops", "root", "devs"]));
        assert_eq!(role, Some(Role::Admin));
        assert_eq!(teams, vec![("shop".to_string(), Role::Developer)]);
        assert_eq!(o.managed_teams(), ["apps", "shop"]);
        let claims = json!({"preferred_username": "dana", "email": "d@x", "groups": ["devs"]});
        let f = o.person(&claims).unwrap();
        assert_eq!((f.user.as_str(), f.role), ("dana", None));
        assert!(o
            .person(&json!({"sub": "x", "groups": ["nobody"]}))
            .unwrap_err()
            .contains("no role"));
        assert!(o
            .person(&json!({"preferred_username": "a b", "groups": ["root"]}))
            .is_err());
        assert_eq!(
            o.person(&json!({"sub": "s-1", "groups": "root"})).unwrap().role,
            Some(Role::Admin)
        );
    }

    #[test]
    fn the_pkce_challenge_is_the_verifiers_s256() {
        // base64url (no padding) of SHA-256, as Python's hashlib and base64 compute it.
        let c = digest("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gXFrxmXsM");
        assert_eq!(c, "T6dzgtHj7ywgb_sl5Rgjm3WlSH4masgm7U3zg0vG58E");
        assert_eq!(c.len(), 43);
    }
}

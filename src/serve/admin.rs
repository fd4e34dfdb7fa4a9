//! The admin listener: `/metrics` (Prometheus text format), `/healthz`
//! (the process is up), `/readyz` (a config is loaded and it has at least
//! one listener), and in store mode the admin API under `/admin/v1/`
//! ([`super::admin_api`]), the console at `/console` and the developer
//! portal at `/portal` ([`super::console`]). Kept off the client listeners so it can bind to
//! localhost.
//!
//! In store mode `/readyz` also says whether the store can be read and
//! whether the config served is the last good copy kept in `state_dir`. It
//! stays 200 either way: the process serves, and taking it out of a load
//! balancer because its store is down would turn a degraded management plane
//! into an outage of the data plane.

use crate::telemetry::metrics::{render, METRICS};
use async_trait::async_trait;
use http::Response;
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;

/// The admin listener's app.
pub(crate) struct AdminApp {
    /// How many client listeners the process serves; `/readyz` needs one.
    pub listeners: usize,
    /// The admin API: all of it in store mode, the call log's part in file
    /// mode when calls are recorded.
    pub api: Option<axum::Router>,
    /// Whether the process runs in store mode.
    pub store_mode: bool,
    /// The console and the developer portal (store mode).
    pub console: Option<axum::Router>,
}

/// `/readyz`'s body when ready: in store mode with the store's state and
/// where the config came from.
fn ready_body(store_mode: bool, store_up: bool, from_last_good: bool) -> Vec<u8> {
    if !store_mode {
        return br#"{"status":"ready"}"#.to_vec();
    }
    let store = if store_up { "up" } else { "unreachable" };
    let config = if from_last_good { "last-good" } else { "store" };
    format!(r#"{{"status":"ready","store":"{store}","config":"{config}"}}"#).into_bytes()
}

/// Largest admin API request body.
const MAX_ADMIN_BODY: usize = 16 * 1024 * 1024;

/// Hands one request to the admin API's router and back: the thin adapter
/// between Pingora's admin service and `axum`.
async fn admin_api(router: &axum::Router, session: &mut ServerSession) -> Response<Vec<u8>> {
    use tower::ServiceExt;
    let mut body = Vec::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) if body.len() + chunk.len() <= MAX_ADMIN_BODY => body.extend_from_slice(&chunk),
            Ok(Some(_)) => {
                let r = super::admin_api::problem(
                    http::StatusCode::PAYLOAD_TOO_LARGE,
                    "Payload Too Large",
                    "the body is too large",
                );
                return into_reply(r).await;
            }
            Ok(None) => break,
            Err(_) => {
                let r = super::admin_api::problem(
                    http::StatusCode::BAD_REQUEST,
                    "Bad Request",
                    "the body could not be read",
                );
                return into_reply(r).await;
            }
        }
    }
    let conn = super::console::Conn {
        client: session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip()),
        tls: session.digest().is_some_and(|d| d.ssl_digest.is_some()),
    };
    let head = session.req_header();
    let mut req = http::Request::new(axum::body::Body::from(body));
    *req.method_mut() = head.method.clone();
    *req.uri_mut() = head.uri.clone();
    *req.headers_mut() = head.headers.clone();
    req.extensions_mut().insert(conn);
    match router.clone().oneshot(req).await {
        Ok(resp) => into_reply(resp).await,
        Err(never) => match never {},
    }
}

async fn into_reply(resp: axum::response::Response) -> Response<Vec<u8>> {
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_ADMIN_BODY).await.unwrap_or_default();
    let mut out = Response::new(bytes.to_vec());
    *out.status_mut() = parts.status;
    *out.headers_mut() = parts.headers;
    out.headers_mut()
        .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(bytes.len()));
    out
}

fn reply(status: u16, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    let mut resp = Response::new(body);
    *resp.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    let len = resp.body().len();
    resp.headers_mut()
        .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
    resp
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        if let Some(router) = &self.api {
            if session.req_header().uri.path().starts_with("/admin/") {
                return admin_api(router, session).await;
            }
        }
        if let Some(router) = &self.console {
            let path = session.req_header().uri.path();
            let ours = |p: &str| path == p || path.starts_with(&format!("{p}/"));
            if ours("/console") || ours("/portal") {
                return admin_api(router, session).await;
            }
        }
        match session.req_header().uri.path() {
            "/metrics" => reply(200, "text/plain; version=0.0.4", render().into_bytes()),
            "/healthz" => reply(200, "application/json", br#"{"status":"ok"}"#.to_vec()),
            "/readyz" => {
                if self.listeners == 0 {
                    reply(503, "application/json", br#"{"status":"not ready"}"#.to_vec())
                } else {
                    let body = ready_body(
                        self.store_mode,
                        METRICS.store_up.get() != 0,
                        METRICS.config_from_last_good.get() != 0,
                    );
                    reply(200, "application/json", body)
                }
            }
            _ => reply(
                404,
                "application/json",
                br#"{"error":{"message":"unknown admin path","type":"not_found_error","param":null,"code":"route_not_found"}}"#.to_vec(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ready_body;

    #[test]
    fn readyz_says_where_the_config_came_from_in_store_mode() {
        assert_eq!(ready_body(false, false, false), br#"{"status":"ready"}"#);
        assert_eq!(
            ready_body(true, true, false),
            br#"{"status":"ready","store":"up","config":"store"}"#
        );
        assert_eq!(
            ready_body(true, false, true),
            br#"{"status":"ready","store":"unreachable","config":"last-good"}"#
        );
    }
}

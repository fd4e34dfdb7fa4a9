//! The admin listener: `/metrics` (Prometheus text format), `/healthz`
//! (the process is up) and `/readyz` (a config is loaded and it has at least
//! one listener). Kept off the client listeners so it can bind to localhost.

use crate::telemetry::metrics::render;
use async_trait::async_trait;
use http::Response;
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;

/// The admin listener's app.
pub(crate) struct AdminApp {
    /// How many client listeners the process serves; `/readyz` needs one.
    pub listeners: usize,
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
        match session.req_header().uri.path() {
            "/metrics" => reply(200, "text/plain; version=0.0.4", render().into_bytes()),
            "/healthz" => reply(200, "application/json", br#"{"status":"ok"}"#.to_vec()),
            "/readyz" => {
                if self.listeners == 0 {
                    reply(503, "application/json", br#"{"status":"not ready"}"#.to_vec())
                } else {
                    reply(200, "application/json", br#"{"status":"ready"}"#.to_vec())
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

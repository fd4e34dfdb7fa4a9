//! The one conversion point from failures to what a client sees: the JSON
//! error shape (OpenAI's, so SDKs parse it) with a status, a machine-readable
//! type and the request id. The bottom layer: it depends on no other module,
//! so policies, the AI gateway and the connection loop refuse requests
//! without knowing the proxy.

use bytes::Bytes;
use pingora_core::{Error, ErrorSource, ErrorType};

/// A failure the gateway reports to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayError {
    RouteNotFound,
    MethodNotAllowed,
    NoHealthyUpstream,
    UpstreamConnect,
    UpstreamTimeout,
    UpstreamReset,
    BadRequest,
    HeadersTooLarge,
    RequestTimeout,
    Unauthorized,
    Forbidden,
    PayloadTooLarge,
    RateLimited,
    /// A service a policy depends on (Redis, an introspection endpoint) is down.
    DependencyUnavailable,
    /// An AI request named a model no alias or provider serves.
    ModelNotFound,
    /// Every provider target failed; the message carries the last provider's reason.
    ProviderError,
    /// A provider refused Portico's key (401/403): the operator's to fix.
    ProviderAuth,
    /// A model or deployment name a provider's URL cannot carry.
    InvalidModel,
    /// A model without a price, refused because a USD budget applies.
    ModelUnpriced,
    /// A model the route does not offer or the caller was not granted.
    ModelNotAllowed,
    /// An endpoint the model's provider does not have (e.g. completions on Anthropic).
    UnsupportedForProvider,
    /// A credential past its `expires_at`.
    CredentialExpired,
    /// The caller's application has no approved subscription to the route's service.
    NotSubscribed,
    /// The caller's application asked to subscribe and awaits approval.
    SubscriptionPending,
    /// A retired route or service past its `sunset_at` (410).
    Gone,
    Internal,
}

impl GatewayError {
    pub fn status(self) -> u16 {
        match self {
            GatewayError::RouteNotFound => 404,
            GatewayError::MethodNotAllowed => 405,
            GatewayError::NoHealthyUpstream => 503,
            GatewayError::UpstreamConnect | GatewayError::UpstreamReset => 502,
            GatewayError::UpstreamTimeout => 504,
            GatewayError::BadRequest => 400,
            GatewayError::HeadersTooLarge => 431,
            GatewayError::RequestTimeout => 408,
            GatewayError::Unauthorized | GatewayError::CredentialExpired => 401,
            GatewayError::Forbidden | GatewayError::NotSubscribed | GatewayError::SubscriptionPending => 403,
            GatewayError::PayloadTooLarge => 413,
            GatewayError::RateLimited => 429,
            GatewayError::DependencyUnavailable => 503,
            GatewayError::ModelNotFound => 404,
            GatewayError::InvalidModel | GatewayError::UnsupportedForProvider => 400,
            GatewayError::ModelUnpriced | GatewayError::ModelNotAllowed => 403,
            GatewayError::ProviderError | GatewayError::ProviderAuth => 502,
            GatewayError::Gone => 410,
            GatewayError::Internal => 500,
        }
    }

    /// The machine-readable reason: the error's `code`.
    pub fn kind(self) -> &'static str {
        match self {
            GatewayError::RouteNotFound => "route_not_found",
            GatewayError::MethodNotAllowed => "method_not_allowed",
            GatewayError::NoHealthyUpstream => "no_healthy_upstream",
            GatewayError::UpstreamConnect => "upstream_connect_failed",
            GatewayError::UpstreamTimeout => "upstream_timeout",
            GatewayError::UpstreamReset => "upstream_reset",
            GatewayError::BadRequest => "bad_request",
            GatewayError::HeadersTooLarge => "request_header_too_large",
            GatewayError::RequestTimeout => "request_timeout",
            GatewayError::Unauthorized => "unauthorized",
            GatewayError::Forbidden => "forbidden",
            GatewayError::PayloadTooLarge => "payload_too_large",
            GatewayError::RateLimited => "rate_limited",
            GatewayError::DependencyUnavailable => "dependency_unavailable",
            GatewayError::ModelNotFound => "model_not_found",
            GatewayError::ProviderError => "provider_error",
            GatewayError::ProviderAuth => "provider_auth_error",
            GatewayError::InvalidModel => "invalid_model",
            GatewayError::ModelUnpriced => "model_unpriced",
            GatewayError::ModelNotAllowed => "model_not_allowed",
            GatewayError::UnsupportedForProvider => "unsupported_for_provider",
            GatewayError::CredentialExpired => "credential_expired",
            GatewayError::NotSubscribed => "not_subscribed",
            GatewayError::SubscriptionPending => "subscription_pending",
            GatewayError::Gone => "gone",
            GatewayError::Internal => "internal_error",
        }
    }

    /// OpenAI's error category: the error's `type`, what SDKs branch on.
    pub fn category(self) -> &'static str {
        match self {
            GatewayError::Unauthorized | GatewayError::CredentialExpired => "authentication_error",
            GatewayError::Forbidden
            | GatewayError::ModelUnpriced
            | GatewayError::ModelNotAllowed
            | GatewayError::NotSubscribed
            | GatewayError::SubscriptionPending => "permission_error",
            GatewayError::RouteNotFound | GatewayError::ModelNotFound | GatewayError::Gone => "not_found_error",
            GatewayError::RateLimited => "rate_limit_error",
            GatewayError::MethodNotAllowed
            | GatewayError::BadRequest
            | GatewayError::HeadersTooLarge
            | GatewayError::RequestTimeout
            | GatewayError::PayloadTooLarge
            | GatewayError::InvalidModel
            | GatewayError::UnsupportedForProvider => "invalid_request_error",
            GatewayError::NoHealthyUpstream
            | GatewayError::UpstreamConnect
            | GatewayError::UpstreamTimeout
            | GatewayError::UpstreamReset
            | GatewayError::DependencyUnavailable
            | GatewayError::ProviderError
            | GatewayError::ProviderAuth
            | GatewayError::Internal => "server_error",
        }
    }

    /// Classifies a pingora error; None when the client is gone and nothing
    /// should be written.
    pub fn from_pingora(e: &Error) -> Option<GatewayError> {
        use ErrorType::*;
        let upstream = e.esource() == &ErrorSource::Upstream;
        Some(match e.etype() {
            HTTPStatus(503) => GatewayError::NoHealthyUpstream,
            HTTPStatus(504) => GatewayError::UpstreamTimeout,
            HTTPStatus(502) => GatewayError::UpstreamConnect,
            HTTPStatus(408) => GatewayError::RequestTimeout,
            HTTPStatus(431) => GatewayError::HeadersTooLarge,
            HTTPStatus(413) => GatewayError::PayloadTooLarge,
            HTTPStatus(s) if (400..500).contains(s) => GatewayError::BadRequest,
            HTTPStatus(_) => GatewayError::Internal,
            ConnectTimedout | TLSHandshakeTimedout => GatewayError::UpstreamTimeout,
            ReadTimedout | WriteTimedout if upstream => GatewayError::UpstreamTimeout,
            ConnectRefused | ConnectNoRoute | ConnectError | TLSHandshakeFailure | InvalidCert | HandshakeError
            | SocketError | BindError | ConnectProxyFailure => GatewayError::UpstreamConnect,
            _ if upstream => GatewayError::UpstreamReset,
            ReadTimedout => GatewayError::RequestTimeout,
            ReadError | WriteError | ConnectionClosed if e.esource() == &ErrorSource::Downstream => return None,
            _ if e.esource() == &ErrorSource::Downstream => GatewayError::BadRequest,
            _ => GatewayError::Internal,
        })
    }
}

/// `{"error": {"message", "type", "param", "code", "request_id"}}` with
/// OpenAI's field types: `type` the category, `code` Portico's reason as a
/// string, `param` the request field at fault or null. The HTTP status
/// carries the number.
pub(crate) fn error_body(message: &str, err: GatewayError, param: Option<&str>, request_id: &str) -> Bytes {
    Bytes::from(error_value(message, err, param, request_id).to_string())
}

/// [`error_body`] as a JSON value, for an error event in a stream.
pub(crate) fn error_value(
    message: &str,
    err: GatewayError,
    param: Option<&str>,
    request_id: &str,
) -> serde_json::Value {
    serde_json::json!({
        "error": {
            "message": message,
            "type": err.category(),
            "param": param,
            "code": err.kind(),
            "request_id": request_id,
        }
    })
}

/// The request id every response and log line carries: the client's own
/// `x-request-id` when sane, otherwise a new ULID.
/// A client-sent request id is kept when it is short and of safe characters.
pub(crate) fn sane_request_id(v: &[u8]) -> bool {
    !v.is_empty()
        && v.len() <= 128
        && v.iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'=' | b'+' | b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape() {
        let b = error_body("no route for GET /x", GatewayError::RouteNotFound, None, "abc");
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["error"]["code"], "route_not_found");
        assert_eq!(v["error"]["type"], "not_found_error");
        assert!(v["error"]["param"].is_null());
        assert_eq!(v["error"]["request_id"], "abc");
    }

    #[test]
    fn mapping() {
        let e = Error::new(ErrorType::ConnectRefused);
        assert_eq!(GatewayError::from_pingora(&e), Some(GatewayError::UpstreamConnect));
        let e = Error::new(ErrorType::ConnectTimedout);
        assert_eq!(GatewayError::from_pingora(&e), Some(GatewayError::UpstreamTimeout));
        let mut e = Error::new(ErrorType::ReadTimedout);
        e.esource = ErrorSource::Upstream;
        assert_eq!(GatewayError::from_pingora(&e), Some(GatewayError::UpstreamTimeout));
    }

    #[test]
    fn request_ids() {
        assert!(sane_request_id(b"abc-123"));
        assert!(!sane_request_id(b""));
        assert!(!sane_request_id(b"a b"));
        assert!(!sane_request_id(&[b'a'; 200]));
    }
}

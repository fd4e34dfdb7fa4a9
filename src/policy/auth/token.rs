//! The bearer-token auth steps: `jwt` (signature and claims checked locally,
//! see `jwt`) and `oauth2_introspection` (asked of the issuer, see
//! `introspection`). Both map the token to a consumer through a claim: a
//! consumer whose name or `credentials.subjects` equals the claim's value.
//! A token naming no configured consumer is still an identity (its subject),
//! unless `require_consumer` is set.

use crate::config::{IntrospectionConfig, JwtConfig};
use crate::error::GatewayError;
use crate::policy::auth::introspection::{IntrospectError, Introspector};
use crate::policy::auth::jwt::JwtVerifier;
use crate::policy::{Identity, PolicyState, Rejection, RequestView, Step};
use http::{HeaderName, HeaderValue};
use std::path::Path;
use std::sync::Arc;

fn unauthorized(msg: impl Into<String>) -> Step {
    Step::Reject(Rejection::new(GatewayError::Unauthorized, msg).with_header(
        http::header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    ))
}

/// Settles who the token's subject is.
fn identify(
    subject: Option<&str>,
    claim: &str,
    require_consumer: bool,
    view: &RequestView,
    state: &mut PolicyState,
) -> Step {
    let Some(subject) = subject.filter(|s| !s.is_empty()) else {
        return unauthorized(format!("token has no {claim:?} claim naming the caller"));
    };
    let holder = view.consumers.by_subject(subject);
    let consumer = match holder.map(|h| h.live(view.consumers)) {
        Some(Ok(i)) => Some(i),
        Some(Err(r)) => return Step::Reject(r),
        None => None,
    };
    if consumer.is_none() && require_consumer {
        return unauthorized("token does not belong to a known consumer");
    }
    let credential = holder.map(|h| h.credential);
    state.identity = Some(match consumer {
        Some(i) => Identity::of_consumer(i, view.consumers.get(i), credential),
        None => Identity::of_subject(subject, credential),
    });
    Step::Continue
}

pub struct JwtAuth {
    verifier: Arc<JwtVerifier>,
    header: Option<HeaderName>,
    claim: String,
    hide: bool,
    optional: bool,
    require_consumer: bool,
    query: Option<String>,
}

impl JwtAuth {
    pub fn new(c: &JwtConfig, base_dir: &Path) -> Result<JwtAuth, String> {
        let verifier = JwtVerifier::new(c, base_dir)?;
        let header =
            HeaderName::from_bytes(c.header.as_bytes()).map_err(|_| format!("header: invalid name {:?}", c.header))?;
        Ok(JwtAuth {
            verifier: Arc::new(verifier),
            header: Some(header),
            claim: c.consumer_claim.clone(),
            hide: c.hide_credentials,
            optional: c.optional,
            require_consumer: c.require_consumer,
            query: c.query.clone(),
        })
    }

    /// Keeps the JWKS keys the previous config's step already fetched.
    pub fn inherit(&self, previous: &JwtAuth) {
        self.verifier.inherit(&previous.verifier);
    }

    pub fn verifier(&self) -> &Arc<JwtVerifier> {
        &self.verifier
    }

    pub async fn check(&self, view: &RequestView<'_>, state: &mut PolicyState) -> Step {
        let header = self
            .header
            .as_ref()
            .and_then(|h| view.req.headers.get(h))
            .map(|v| v.as_bytes());
        let token = match self.verifier.extract(header, view.req.uri.query()) {
            Err(e) => return unauthorized(e.to_string()),
            Ok(None) if self.optional => return Step::Continue,
            Ok(None) => return unauthorized("missing bearer token"),
            Ok(Some(t)) => t,
        };
        let claims = match self.verifier.verify(&token).await {
            Ok(c) => c,
            Err(e) => return unauthorized(e.to_string()),
        };
        let step = identify(
            self.verifier.consumer_of(&claims),
            &self.claim,
            self.require_consumer,
            view,
            state,
        );
        if self.hide && matches!(step, Step::Continue) {
            if let Some(h) = &self.header {
                state.strip_headers.push(h.clone());
            }
            state.strip_query = self.query.clone();
        }
        step
    }
}

pub struct IntrospectionAuth {
    introspector: Introspector,
    header: HeaderName,
    claim: String,
    hide: bool,
    optional: bool,
    require_consumer: bool,
}

impl IntrospectionAuth {
    pub fn new(c: &IntrospectionConfig, base_dir: &Path) -> Result<IntrospectionAuth, String> {
        let header =
            HeaderName::from_bytes(c.header.as_bytes()).map_err(|_| format!("header: invalid name {:?}", c.header))?;
        Ok(IntrospectionAuth {
            introspector: Introspector::new(c, base_dir)?,
            header,
            claim: c.consumer_claim.clone(),
            hide: c.hide_credentials,
            optional: c.optional,
            require_consumer: c.require_consumer,
        })
    }

    pub async fn check(&self, view: &RequestView<'_>, state: &mut PolicyState) -> Step {
        let header = view.req.headers.get(&self.header).map(|v| v.as_bytes());
        let token = match self.introspector.extract(header) {
            Err(e) => return unauthorized(e.to_string()),
            Ok(None) if self.optional => return Step::Continue,
            Ok(None) => return unauthorized("missing bearer token"),
            Ok(Some(t)) => t,
        };
        let claims = match self.introspector.introspect(token).await {
            Ok(c) => c,
            Err(IntrospectError::Unavailable(e)) => {
                log::warn!("token introspection failed: {e}");
                return Step::Reject(Rejection::new(
                    GatewayError::DependencyUnavailable,
                    "token introspection unavailable",
                ));
            }
            Err(e) => return unauthorized(e.to_string()),
        };
        let step = identify(
            self.introspector.consumer_of(&claims),
            &self.claim,
            self.require_consumer,
            view,
            state,
        );
        if self.hide && matches!(step, Step::Continue) {
            state.strip_headers.push(self.header.clone());
        }
        step
    }
}

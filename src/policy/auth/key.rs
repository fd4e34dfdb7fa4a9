//! `key_auth`: an API key in a header or a query parameter names a consumer.
//!
//! A header carries the key as it is (`x-api-key: KEY`, the default) or after
//! a scheme (`scheme: bearer`: `Authorization: Bearer KEY`, the scheme in any
//! case, RFC 6750). On an AI route an unconfigured `key_auth` takes both, as
//! the SDKs send them (OpenAI's `api_key` as Bearer, Anthropic's as
//! `x-api-key`); the first one present wins, and both are removed before
//! anything is sent on.

use crate::config::{KeyAuthConfig, KeyScheme};
use crate::error::GatewayError;
use crate::policy::state::{query_count, query_param};
use crate::policy::{Identity, PolicyState, Rejection, RequestView, Step};
use http::HeaderName;

/// Where a key may be found in the headers.
enum Source {
    /// The header's value is the key.
    Plain(HeaderName),
    /// The header's value is `Bearer KEY`.
    Bearer(HeaderName),
    /// `Authorization: Bearer KEY` taken on an AI route without being
    /// configured: a token that is no key of ours is left to later steps
    /// when the step is optional (a JWT, say).
    SdkBearer,
}

impl Source {
    fn header(&self) -> &HeaderName {
        match self {
            Source::Plain(h) | Source::Bearer(h) => h,
            Source::SdkBearer => &http::header::AUTHORIZATION,
        }
    }
}

pub struct KeyAuth {
    sources: Vec<Source>,
    query: Option<String>,
    hide: bool,
    optional: bool,
}

impl KeyAuth {
    /// Compiles the step; `ai_route` adds the SDKs' Bearer when nothing is configured.
    pub fn new(c: &KeyAuthConfig, ai_route: bool) -> Result<KeyAuth, String> {
        let name = |h: &str| HeaderName::from_bytes(h.as_bytes()).map_err(|_| format!("invalid header name {h:?}"));
        let sources = match (c.header.as_deref(), c.scheme) {
            (h, Some(KeyScheme::Bearer)) => vec![Source::Bearer(name(h.unwrap_or("authorization"))?)],
            (Some(h), None) => vec![Source::Plain(name(h)?)],
            (None, None) if ai_route => vec![Source::Plain(HeaderName::from_static("x-api-key")), Source::SdkBearer],
            (None, None) => vec![Source::Plain(HeaderName::from_static("x-api-key"))],
        };
        if c.query
            .as_deref()
            .is_some_and(|q| q.is_empty() || q.contains(['&', '=', '#']))
        {
            return Err("query: invalid parameter name".into());
        }
        Ok(KeyAuth {
            sources,
            query: c.query.clone(),
            hide: c.hide_credentials,
            optional: c.optional,
        })
    }

    /// The key from the first source present, and whether it came from the
    /// unconfigured SDK Bearer; `Err` for a header given twice.
    fn header_key<'a>(&self, view: &'a RequestView) -> Result<Option<(&'a [u8], bool)>, Step> {
        for source in &self.sources {
            let mut values = view.req.headers.get_all(source.header()).iter();
            let Some(value) = values.next() else { continue };
            if values.next().is_some() {
                return Err(reject("API key header given more than once"));
            }
            let value = value.as_bytes();
            match source {
                Source::Plain(_) => return Ok(Some((value, false))),
                Source::Bearer(_) | Source::SdkBearer => {
                    let value = value.trim_ascii();
                    let cut = value.iter().position(|b| *b == b' ').unwrap_or(value.len());
                    let (scheme, rest) = value.split_at(cut);
                    if scheme.eq_ignore_ascii_case(b"bearer") {
                        return Ok(Some((rest.trim_ascii(), matches!(source, Source::SdkBearer))));
                    }
                    // Another scheme (Basic, a JWT step's): not this step's key.
                }
            }
        }
        Ok(None)
    }

    pub fn check(&self, view: &RequestView, state: &mut PolicyState) -> Step {
        let header_key = match self.header_key(view) {
            Ok(k) => k,
            Err(step) => return step,
        };
        let query = view.req.uri.query();
        let query_key = match &self.query {
            Some(name) => match query_count(query, name) {
                0 => None,
                1 => query_param(query, name),
                _ => return reject("API key query parameter given more than once"),
            },
            None => None,
        };
        let implicit = header_key.is_some_and(|(_, implicit)| implicit);
        let key: std::borrow::Cow<[u8]> = match (header_key, query_key) {
            (Some(_), Some(_)) => return reject("API key given in both header and query; send it once"),
            (Some((h, _)), None) => h.into(),
            (None, Some(q)) => q.into_bytes().into(),
            (None, None) if self.optional => return Step::Continue,
            (None, None) => return reject("missing API key"),
        };
        if key.is_empty() || key.len() > 4096 {
            return reject("invalid API key");
        }
        let Some(holder) = view.consumers.by_api_key(&key) else {
            if implicit && self.optional {
                return Step::Continue;
            }
            return reject("invalid API key");
        };
        let idx = match holder.live(view.consumers) {
            Ok(i) => i,
            Err(r) => return Step::Reject(r),
        };
        state.identity = Some(Identity::of_consumer(
            idx,
            view.consumers.get(idx),
            Some(holder.credential),
        ));
        if self.hide {
            state
                .strip_headers
                .extend(self.sources.iter().map(|s| s.header().clone()));
            state.strip_query = self.query.clone();
        }
        Step::Continue
    }
}

fn reject(msg: &str) -> Step {
    Step::Reject(Rejection::new(GatewayError::Unauthorized, msg))
}

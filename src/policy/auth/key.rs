//! `key_auth`: an API key in a header or a query parameter names a consumer.

use crate::config::KeyAuthConfig;
use crate::error::GatewayError;
use crate::policy::state::{query_count, query_param};
use crate::policy::{Identity, PolicyState, Rejection, RequestView, Step};
use http::HeaderName;

pub struct KeyAuth {
    header: HeaderName,
    query: Option<String>,
    hide: bool,
    optional: bool,
}

impl KeyAuth {
    pub fn new(c: &KeyAuthConfig) -> Result<KeyAuth, String> {
        let header =
            HeaderName::from_bytes(c.header.as_bytes()).map_err(|_| format!("invalid header name {:?}", c.header))?;
        if c.query
            .as_deref()
            .is_some_and(|q| q.is_empty() || q.contains(['&', '=', '#']))
        {
            return Err("query: invalid parameter name".into());
        }
        Ok(KeyAuth {
            header,
            query: c.query.clone(),
            hide: c.hide_credentials,
            optional: c.optional,
        })
    }

    pub fn check(&self, view: &RequestView, state: &mut PolicyState) -> Step {
        let mut in_header = view.req.headers.get_all(&self.header).iter();
        let header_key = in_header.next();
        if in_header.next().is_some() {
            return reject("API key header given more than once");
        }
        let query = view.req.uri.query();
        let query_key = match &self.query {
            Some(name) => match query_count(query, name) {
                0 => None,
                1 => query_param(query, name),
                _ => return reject("API key query parameter given more than once"),
            },
            None => None,
        };
        let key: Vec<u8> = match (header_key, query_key) {
            (Some(_), Some(_)) => return reject("API key given in both header and query; send it once"),
            (Some(h), None) => h.as_bytes().to_vec(),
            (None, Some(q)) => q.into_bytes(),
            (None, None) if self.optional => return Step::Continue,
            (None, None) => return reject("missing API key"),
        };
        if key.is_empty() || key.len() > 4096 {
            return reject("invalid API key");
        }
        let Some(idx) = view.consumers.by_api_key(&key) else {
            return reject("invalid API key");
        };
        let name = view.consumers.get(idx).map(|c| c.name.clone()).unwrap_or_default();
        state.identity = Some(Identity {
            consumer: Some(idx),
            name,
        });
        if self.hide {
            state.strip_headers.push(self.header.clone());
            state.strip_query = self.query.clone();
        }
        Step::Continue
    }
}

fn reject(msg: &str) -> Step {
    Step::Reject(Rejection::new(GatewayError::Unauthorized, msg))
}

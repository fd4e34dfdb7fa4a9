//! A retired route on the request path ([`crate::config::RetireConfig`]):
//! the `Deprecation`, `Sunset` and `Link` headers, made once at load and
//! added to every response of the route, and the 410 once the sunset has
//! passed. A request costs one read of the coarse realtime clock (the
//! kernel's vDSO, no system call, no lock) and one comparison.

use crate::config::RetireHeaders;
use crate::error::GatewayError;
use http::{HeaderName, HeaderValue};
use pingora_http::ResponseHeader;

/// A route's retirement, compiled.
#[derive(Debug)]
pub(crate) struct Retirement {
    /// `Deprecation`, `Sunset` and maybe `Link`.
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Unix seconds from which the route answers 410.
    sunset_unix: u64,
    /// The 410's message: names the route and the sunset.
    gone: String,
}

/// Unix seconds now, from the coarse realtime clock (updated every tick,
/// a few milliseconds; ample for a date given in seconds).
fn coarse_now() -> u64 {
    crate::telemetry::clock::coarse_realtime()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Retirement {
    /// The compiled form of `h` for the route `route`; an error names a
    /// header value that cannot be sent.
    pub(crate) fn new(route: &str, h: &RetireHeaders) -> Result<Retirement, String> {
        let value = |v: &str| HeaderValue::from_str(v).map_err(|_| format!("{v:?} cannot be sent in a header"));
        let mut headers = vec![
            (HeaderName::from_static("deprecation"), value(&h.deprecation)?),
            (HeaderName::from_static("sunset"), value(&h.sunset)?),
        ];
        if let Some(link) = &h.link {
            headers.push((http::header::LINK, value(link)?));
        }
        Ok(Retirement {
            headers,
            sunset_unix: h.sunset_unix,
            gone: format!("route {route:?} was retired on {} (its sunset)", h.sunset),
        })
    }

    /// Whether the sunset has passed at `now` (Unix seconds).
    pub(crate) fn is_gone_at(&self, now: u64) -> bool {
        now >= self.sunset_unix
    }

    /// The 410 to answer once the sunset has passed.
    pub(crate) fn check(&self) -> Option<super::Rejection> {
        self.is_gone_at(coarse_now())
            .then(|| super::Rejection::new(GatewayError::Gone, self.gone.clone()))
    }

    /// Adds the headers to a response of the route.
    pub(crate) fn decorate(&self, resp: &mut ResponseHeader) {
        for (name, value) in &self.headers {
            // The upstream's own links stay; its own Deprecation or Sunset do not.
            if name == http::header::LINK {
                let _ = resp.append_header(name.clone(), value.clone());
            } else {
                let _ = resp.insert_header(name.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RetireConfig;

    #[test]
    fn the_route_is_gone_from_its_sunset_on() {
        let cfg = RetireConfig {
            deprecated_at: "2024-01-01T00:00:00Z".into(),
            sunset_at: "2024-07-01T00:00:00Z".into(),
            link: Some("https://example.com/migrate".into()),
        };
        let r = Retirement::new("orders", &cfg.headers().unwrap()).unwrap();
        assert!(!r.is_gone_at(1_719_791_999));
        assert!(r.is_gone_at(1_719_792_000));
        let refusal = r.check().unwrap();
        assert_eq!(refusal.error, GatewayError::Gone);
        assert!(
            refusal.message.contains("\"orders\"") && refusal.message.contains("01 Jul 2024"),
            "{}",
            refusal.message
        );
        let mut resp = ResponseHeader::build(200, None).unwrap();
        r.decorate(&mut resp);
        assert_eq!(resp.headers["deprecation"], "@1704067200");
        assert_eq!(resp.headers["sunset"], "Mon, 01 Jul 2024 00:00:00 GMT");
        assert_eq!(
            resp.headers["link"],
            "<https://example.com/migrate>; rel=\"deprecation\""
        );
        let now = coarse_now();
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(now.abs_diff(wall) <= 1, "{now} vs {wall}");
    }
}

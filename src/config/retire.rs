//! `retire:` on a service or a route: the end of an API's life, announced
//! before it comes. From the moment it is set, every response of the route
//! carries `Deprecation` (RFC 9745: `@` and the Unix seconds of
//! `deprecated_at`, a structured-field date), `Sunset` (RFC 8594: the
//! IMF-fixdate of `sunset_at`) and, with `link`, `Link: <link>;
//! rel="deprecation"`; once `sunset_at` has passed the route answers 410
//! ([`crate::policy::retire`]). A route's own `retire` wins over its
//! service's. The header values are made here, once per load.

use serde::Deserialize;

/// When a service or a route is deprecated and when it goes away.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetireConfig {
    /// From when it is deprecated (RFC 3339); it may be in the future.
    pub deprecated_at: String,
    /// From when it answers 410 Gone (RFC 3339); not before `deprecated_at`.
    pub sunset_at: String,
    /// A page about the deprecation and what replaces it (http or https).
    pub link: Option<String>,
}

/// A retirement's times and header values, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RetireHeaders {
    /// `Deprecation`: `@<unix seconds>`.
    pub deprecation: String,
    /// `Sunset`: an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
    pub sunset: String,
    /// `Link`, when the config gives one.
    pub link: Option<String>,
    /// Unix seconds of `sunset_at`: from then on, 410.
    pub sunset_unix: u64,
}

/// A link fit to stand between `<` and `>` in a `Link` header.
fn link_ok(link: &str) -> bool {
    (link.starts_with("https://") || link.starts_with("http://"))
        && link.len() > "http://".len()
        && link
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"'))
}

impl RetireConfig {
    /// The header values, or each problem as (field, message).
    pub(crate) fn headers(&self) -> Result<RetireHeaders, Vec<(&'static str, String)>> {
        let mut problems = Vec::new();
        let deprecated = super::unix_time(&self.deprecated_at).map_err(|e| problems.push(("deprecated_at", e)));
        let sunset = super::unix_time(&self.sunset_at).map_err(|e| problems.push(("sunset_at", e)));
        if let Some(link) = self.link.as_deref().filter(|l| !link_ok(l)) {
            problems.push((
                "link",
                format!("{link:?} is not an http(s) URL that a Link header can carry"),
            ));
        }
        let (Ok(deprecated), Ok(sunset)) = (deprecated, sunset) else {
            return Err(problems);
        };
        if sunset < deprecated {
            problems.push((
                "sunset_at",
                format!(
                    "{} is before deprecated_at ({}): a route is deprecated before it goes",
                    self.sunset_at, self.deprecated_at
                ),
            ));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(sunset);
        Ok(RetireHeaders {
            deprecation: format!("@{deprecated}"),
            sunset: httpdate::fmt_http_date(at),
            link: self.link.as_ref().map(|l| format!("<{l}>; rel=\"deprecation\"")),
            sunset_unix: sunset,
        })
    }
}

/// Checks the `retire` of every service and route, in place.
pub(super) fn validate(cfg: &super::Config, issues: &mut super::Issues) {
    let services = cfg.services.iter().map(|s| &s.retire);
    let routes = cfg.routes.iter().map(|r| &r.retire);
    let places = services
        .enumerate()
        .map(|(i, r)| (format!("services[{i}]"), r))
        .chain(routes.enumerate().map(|(i, r)| (format!("routes[{i}]"), r)));
    for (at, retire) in places {
        if let Some(Err(problems)) = retire.as_ref().map(RetireConfig::headers) {
            for (field, message) in problems {
                issues.add(format!("{at}.retire.{field}"), message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retire(deprecated_at: &str, sunset_at: &str, link: Option<&str>) -> RetireConfig {
        RetireConfig {
            deprecated_at: deprecated_at.into(),
            sunset_at: sunset_at.into(),
            link: link.map(str::to_string),
        }
    }

    #[test]
    fn the_headers_are_the_rfcs_forms() {
        let h = retire(
            "2024-01-01T00:00:00Z",
            "2024-07-01T12:30:00Z",
            Some("https://example.com/v2"),
        )
        .headers()
        .unwrap();
        assert_eq!(h.deprecation, "@1704067200");
        assert_eq!(h.sunset, "Mon, 01 Jul 2024 12:30:00 GMT");
        assert_eq!(h.link.as_deref(), Some("<https://example.com/v2>; rel=\"deprecation\""));
        assert_eq!(h.sunset_unix, 1_719_837_000);
        // Deprecated and gone at the same moment is allowed.
        let same = retire("2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z", None).headers();
        assert!(same.unwrap().link.is_none());
    }

    #[test]
    fn bad_dates_and_links_are_refused_by_field() {
        let e = retire("yesterday", "2024-01-01T00:00:00Z", Some("ftp://x"))
            .headers()
            .unwrap_err();
        let fields: Vec<&str> = e.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["deprecated_at", "link"]);
        assert!(e[0].1.contains("RFC 3339"), "{e:?}");
        let e = retire("2024-02-01T00:00:00Z", "2024-01-01T00:00:00Z", None)
            .headers()
            .unwrap_err();
        assert_eq!(e[0].0, "sunset_at");
        assert!(e[0].1.contains("before deprecated_at"), "{e:?}");
        let e = retire("2024-01-01T00:00:00Z", "2024-13-01T00:00:00Z", Some("https://a/>x"))
            .headers()
            .unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
    }
}

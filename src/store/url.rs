//! Database URLs: which backend one names, and how logs and errors show it
//! (without its password). The `url` crate (the WHATWG parser behind
//! `reqwest`) parses them, so the password is found where a driver finds
//! it: in the user-info part or in a `password` query parameter.

use super::{Backend, StoreError};

/// Which database `url` names.
pub(crate) fn backend_of(url: &str) -> Result<Backend, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else {
        Err(StoreError::Url(redacted(url)))
    }
}

/// `url` as logs and errors show it: as written when it holds no password,
/// else with the password replaced by `***`. A URL that does not parse
/// shows its scheme only.
pub(crate) fn redacted(text: &str) -> String {
    let Ok(mut url) = url::Url::parse(text) else {
        let scheme = text.split_once("://").map_or("", |(s, _)| s);
        return format!("{scheme}://(a URL that does not parse)");
    };
    let secret = |k: &str| k.eq_ignore_ascii_case("password");
    let in_query = url.query_pairs().any(|(k, _)| secret(&k));
    if url.password().is_none() && !in_query {
        return text.to_string();
    }
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    if in_query {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret(&k) { "***".into() } else { v.into_owned() };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_its_password() {
        assert_eq!(
            redacted("postgres://portico:s3cret@db:5432/calls"),
            "postgres://portico:***@db:5432/calls"
        );
        assert_eq!(
            redacted("postgres://db/calls?user=portico&password=s3cret&sslmode=require"),
            "postgres://db/calls?user=portico&password=***&sslmode=require"
        );
        assert_eq!(
            redacted("sqlite:///var/lib/portico/calls.db?mode=rwc"),
            "sqlite:///var/lib/portico/calls.db?mode=rwc"
        );
        assert_eq!(redacted("postgres://db/calls"), "postgres://db/calls");
        assert_eq!(redacted("http://x"), "http://x");
        assert_eq!(redacted("redis://:s3cret@cache:6379/0"), "redis://:***@cache:6379/0");
        let bad = redacted("mysql://root:s3cret@[db/x");
        assert!(!bad.contains("s3cret"), "{bad}");
    }

    #[test]
    fn an_unknown_database_is_refused_without_its_password() {
        let e = backend_of("mysql://root:s3cret@db/x").err().map(|e| e.to_string());
        let e = e.unwrap_or_default();
        assert!(e.contains("mysql://root:***@db/x"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
    }
}

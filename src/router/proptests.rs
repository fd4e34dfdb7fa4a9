//! Property tests (proptest) of path normalisation with routing: a path
//! trick never reaches another route than its normalised form. `make test`
//! runs a bounded number of cases (PROPTEST_CASES, default 256).

use super::path::normalize;
use super::{PathPattern, RouteLookup, RouteSpec, Router};
use proptest::prelude::*;

/// Paths built from the pieces path tricks are made of.
fn tricky_path() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/".to_string()),
        Just("//".to_string()),
        Just(".".to_string()),
        Just("..".to_string()),
        Just("%2e".to_string()),
        Just("%2E%2e".to_string()),
        Just("%2f".to_string()),
        Just("%252e".to_string()),
        Just("%".to_string()),
        Just(";".to_string()),
        Just("admin".to_string()),
        Just("public".to_string()),
        Just("%61".to_string()),
        "[a-zA-Z0-9._~%;-]{0,6}",
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

fn router() -> Router {
    let spec = |route: usize, p: &str| RouteSpec {
        route,
        hosts: vec![],
        patterns: vec![PathPattern::parse(p).unwrap()],
        methods: vec![],
    };
    Router::new(&[spec(0, "/admin/*"), spec(1, "/users/{id}"), spec(2, "/*")])
}

fn route_of(r: &Router, path: &str) -> Option<usize> {
    match r.lookup("h", path, &http::Method::GET) {
        RouteLookup::Found { route, .. } => Some(route),
        _ => None,
    }
}

proptest! {
    #[test]
    fn normalisation_is_idempotent_and_canonical(raw in tricky_path()) {
        let once = normalize(&raw).into_owned();
        prop_assert!(once.starts_with('/'), "{once:?}");
        prop_assert!(!once.contains("//"), "{once:?}");
        prop_assert!(!once.contains(';'), "{once:?}");
        for seg in once.split('/') {
            prop_assert!(seg != "." && seg != ".." && !seg.ends_with('.'), "{raw:?} -> {once:?}");
        }
        prop_assert_eq!(normalize(&once).into_owned(), once.clone());
        // The router sees one meaning per normalised path: a second pass never reroutes.
        let r = router();
        prop_assert_eq!(route_of(&r, &once), route_of(&r, &normalize(&once)));
        // A path that ends up under /admin is always the admin route's.
        if once.starts_with("/admin/") {
            prop_assert_eq!(route_of(&r, &once), Some(0));
        }
    }

    #[test]
    fn any_bytes_route_without_panic(raw in "\\PC{0,64}") {
        let r = router();
        let _ = route_of(&r, &normalize(&raw));
    }
}

/// A case proptest once found: `%%61` must not decode into `/admin`'s prefix.
#[test]
fn a_percent_before_an_encoded_letter_stays_literal() {
    let once = normalize("%%61admin").into_owned();
    assert_eq!(normalize(&once).into_owned(), once);
    assert_ne!(route_of(&router(), &once), Some(0), "{once:?}");
}

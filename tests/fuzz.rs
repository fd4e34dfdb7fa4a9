//! Property tests (proptest) over the request-facing parsers: path
//! normalisation with routing, JWT parsing/verification, and the check for
//! malformed request heads. `make test`
//! runs them with a bounded number of cases (PROPTEST_CASES, default 256).

use portico::path::normalize;
use portico::router::{PathPattern, RouteLookup, RouteSpec, Router};
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

mod jwt {
    use super::*;
    use portico::policy::jwt::{JwtConfig, JwtVerifier};

    fn verifier() -> JwtVerifier {
        let cfg: JwtConfig =
            serde_yaml::from_str("keys: [{alg: HS256, secret: {env: PORTICO_FUZZ_SECRET}}]\nrequire_exp: false\n")
                .unwrap();
        std::env::set_var("PORTICO_FUZZ_SECRET", "fuzzing-secret-fuzzing-secret-32b");
        JwtVerifier::new(&cfg, std::path::Path::new(".")).unwrap()
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    proptest! {
        #[test]
        fn arbitrary_tokens_are_refused_without_panic(token in "[A-Za-z0-9_.=-]{0,300}") {
            let v = verifier();
            prop_assert!(rt().block_on(v.verify(&token)).is_err());
        }

        #[test]
        fn three_part_tokens_of_arbitrary_json_are_refused(header in "\\PC{0,80}", payload in "\\PC{0,80}", sig in "[A-Za-z0-9_-]{0,60}") {
            use base64::Engine;
            let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
            let token = format!("{}.{}.{sig}", b64(&header), b64(&payload));
            let v = verifier();
            prop_assert!(rt().block_on(v.verify(&token)).is_err());
        }

        #[test]
        fn extraction_never_panics(h in proptest::collection::vec(any::<u8>(), 0..100), q in "\\PC{0,100}") {
            let v = verifier();
            let _ = v.extract(Some(&h), Some(&q));
        }
    }
}

proptest! {
    /// Arbitrary bytes never panic the malformed-head check.
    #[test]
    fn malformed_head_check_takes_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = portico::connection::malformed_head(&bytes);
    }

    /// A well-formed head, whole or cut anywhere, is never called malformed.
    #[test]
    fn well_formed_heads_are_never_malformed(
        method in "[A-Z]{1,10}",
        path in "/[a-zA-Z0-9/._~%-]{0,60}",
        query in proptest::option::of("[a-z0-9=&]{0,30}"),
        headers in proptest::collection::vec(("[a-zA-Z][a-zA-Z0-9-]{0,20}", "[!-~]([ -~]{0,38}[!-~])?"), 0..12),
        cut in 0usize..1000,
    ) {
        let mut head = format!("{method} {path}{} HTTP/1.1\r\n", query.map(|q| format!("?{q}")).unwrap_or_default());
        for (k, v) in &headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let bytes = head.as_bytes();
        prop_assert_eq!(portico::connection::malformed_head(bytes), None);
        let cut = cut.min(bytes.len());
        prop_assert_eq!(portico::connection::malformed_head(&bytes[..cut]), None);
    }
}

//! Property tests (proptest) of JWT parsing and verification: arbitrary
//! tokens and headers are refused, never a panic.

use super::JwtVerifier;
use crate::config::JwtConfig;
use proptest::prelude::*;

fn verifier() -> JwtVerifier {
    let cfg: JwtConfig =
        serde_yaml::from_str("keys: [{alg: HS256, secret: {env: PORTICO_FUZZ_SECRET}}]\nrequire_exp: false\n").unwrap();
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

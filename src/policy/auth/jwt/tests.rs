//! Tests for `jwt`. Keys below are throwaway test keys generated once with the
//! `openssl` CLI (RSA 2048, EC P-256, Ed25519); they protect nothing.

use super::*;
use crate::config::{JwtConfig, JwtKeyConfig};

use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

pub(super) const RSA_PRIVATE: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQDjXRH5B5/qdXHq\n\
77m/5ga4CX728TN9W/D4sZgBVJErCmP2W9uKUd1BGngIIdUJCSTrCg1ZhhMbQmaM\n\
r3nRKB3ANxlkjuKJsmT9pAHKAwwr8/MNWpqaGHTtuSzGWO1yEst5ei6ZTUSy+hF/\n\
jxelFwcw43DOZHKKA31twc78lE0jy+j5m8vkMwAemPkfxqzbSoNebdkiQcn9O5Td\n\
AEwbOClnwR+eyeYGE64O6Mjr3vzW8BaOc1NJm0NFNSierujMVNVBHhWTvxvYpyP8\n\
AtzA6Y3XpMe/db8IWmu2uT9BQxUCgEeJky+s9zH1Xhqsx73FHdM1KaFaUwDMVkxj\n\
CT5OxhhjAgMBAAECggEAInW/vJvQPAvy6SXOZGxrxkcCLFFgeXaO7lKUdFcp7XkU\n\
r4k6nBtOSojFeo4OKOFu7ATJAzGUAcStoFMURoQrBjATtC8H3NDiB6Ns9f5CQQMn\n\
anW6CvL7/e/b/nAKBQkeN9ox5+BTMkE+l7PLZKU53MoMFewZhBuFTjZateOQUYVU\n\
M01xrvA1631Vl3ETkE0UKL+51832F6JnPmeU2RC9vE4iyCGIEGpYs/nRtpFF9B4R\n\
QvDf8Rx/PSCZ+7DrYVlXXgRvETXDq7eIusWtmpCLg1MN7sBAR7vQro4xMgKYh0b4\n\
F2Q6rIAAJwA1bU/dBkLXsr7jU4FurpidGQXWCEdWUQKBgQD2UnT5xwJd+MxyIbXp\n\
7O/cfWfeKv8sCww6SiomNJWRNZNNsb93hA+0pay8xs4MJEHnn7Te6FBJk/T/HDze\n\
DMGGJvRfgUl3KDNFP4OmAqlmGwmeiblIWvRpTg8a73K6cH4k04uvL/b6Iw6VNKbd\n\
XeS+Nz6Xdamt+YakDPXg+48aqQKBgQDsS+zviVxSXPjASnbYzWZrCg5xvQt3Ur4P\n\
bOdU+I7HzAT31KbXTQrGcz8l7usKfIF1PYBy1YQugqHJRE9gOrl1ueg4fbQ48nN/\n\
a8rLoCuI+vy0NPvqRKfmQWqD+4hHjapr8pzTvbLbgPZ3OrRkBWSwvywc4KWosoKo\n\
HRgNwwhuKwKBgBzRCrRJ7uH1gF19yh1ixbDizurz1sRdSoHrOUEc9750KRZ2y/J8\n\
daXpl+rBy0sqVrd1PKCzRulEsO3DbO+BSIacOgyOQHz7K/xW8NzUBONYGGj+rblk\n\
QqGrKyM4jhB3pppCUV4eW2NqBIO6FCdjm6YRKnZnooEi5vh8N6upYlV5AoGAc5nZ\n\
en6a2fh+AaTsa7hhCLDMzDwOJfwm22kN63YGdByNuakhTmd0hA3RsP8noeOzeeXy\n\
tztaBV8HQ23V32AbZ0riHvDwgIOsmYPknKXpZoRTqN3a+ItKEM2kDJm73DWkUFdK\n\
/hPqMpTu/vmLUvuIfSeprx8ALH3YieJh6CmoMC0CgYAw2RDykgHK7d0xF6rxLaQL\n\
4qbpCtctizPfSKbq20XS0S97B6geYd8pla5rlJ5vPzuCZG52+NDSV7Tv8xL6jE3Q\n\
0/LfeVIRo4Ow9M1xyuGWizmHWVWD9/06MEJDQcL+M/CK3YhQnpZhZAc1a74R4v4r\n\
Z0X2itQguotz3djqbSlbPA==\n\
-----END PRIVATE KEY-----\n\
";
pub(super) const RSA_PUBLIC: &str = "\
-----BEGIN PUBLIC KEY-----\n\
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA410R+Qef6nVx6u+5v+YG\n\
uAl+9vEzfVvw+LGYAVSRKwpj9lvbilHdQRp4CCHVCQkk6woNWYYTG0JmjK950Sgd\n\
wDcZZI7iibJk/aQBygMMK/PzDVqamhh07bksxljtchLLeXoumU1EsvoRf48XpRcH\n\
MONwzmRyigN9bcHO/JRNI8vo+ZvL5DMAHpj5H8as20qDXm3ZIkHJ/TuU3QBMGzgp\n\
Z8EfnsnmBhOuDujI69781vAWjnNTSZtDRTUonq7ozFTVQR4Vk78b2Kcj/ALcwOmN\n\
16THv3W/CFprtrk/QUMVAoBHiZMvrPcx9V4arMe9xR3TNSmhWlMAzFZMYwk+TsYY\n\
YwIDAQAB\n\
-----END PUBLIC KEY-----\n\
";
pub(super) const EC_PRIVATE: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgwujzHNliwOHtLxY7\n\
iQlqYW4B6g9lbg9dgWuPSx+1pxOhRANCAAQ1jsF5IYVzYFVCS73zE267hGBc2GnV\n\
dnEy1YD/g1Z4dCH6EhMrBX0slazkSyTUoqQo6DAy+dGq4NhOiHcVbQgC\n\
-----END PRIVATE KEY-----\n\
";
pub(super) const EC_PUBLIC: &str = "\
-----BEGIN PUBLIC KEY-----\n\
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAENY7BeSGFc2BVQku98xNuu4RgXNhp\n\
1XZxMtWA/4NWeHQh+hITKwV9LJWs5Esk1KKkKOgwMvnRquDYToh3FW0IAg==\n\
-----END PUBLIC KEY-----\n\
";
pub(super) const ED_PRIVATE: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MC4CAQAwBQYDK2VwBCIEINAhHr5KB5HpW5HbhA+wph66BmdG7oSdXYq7HHI+igjG\n\
-----END PRIVATE KEY-----\n\
";
pub(super) const ED_PUBLIC: &str = "\
-----BEGIN PUBLIC KEY-----\n\
MCowBQYDK2VwAyEAQjzgIX4Y99/bwSAA06D3V4ND8KOxXz5a1IuX3dl2Jio=\n\
-----END PUBLIC KEY-----\n\
";
pub(super) const RSA_N: &str = "410R-Qef6nVx6u-5v-YGuAl-9vEzfVvw-LGYAVSRKwpj9lvbilHdQRp4CCHVCQkk6woNWYYTG0JmjK950SgdwDcZZI7iibJk_aQBygMMK_PzDVqamhh07bksxljtchLLeXoumU1EsvoRf48XpRcHMONwzmRyigN9bcHO_JRNI8vo-ZvL5DMAHpj5H8as20qDXm3ZIkHJ_TuU3QBMGzgpZ8EfnsnmBhOuDujI69781vAWjnNTSZtDRTUonq7ozFTVQR4Vk78b2Kcj_ALcwOmN16THv3W_CFprtrk_QUMVAoBHiZMvrPcx9V4arMe9xR3TNSmhWlMAzFZMYwk-TsYYYw";
pub(super) const RSA_E: &str = "AQAB";
pub(super) const EC_X: &str = "NY7BeSGFc2BVQku98xNuu4RgXNhp1XZxMtWA_4NWeHQ";
pub(super) const EC_Y: &str = "IfoSEysFfSyVrORLJNSipCjoMDL50arg2E6IdxVtCAI";
pub(super) const ED_X: &str = "QjzgIX4Y99_bwSAA06D3V4ND8KOxXz5a1IuX3dl2Jio";

pub(super) const HS_SECRET: &str = "an-hmac-secret-of-at-least-32-bytes!!";

pub(super) fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

pub(super) fn claims() -> Value {
    json!({"sub": "alice", "exp": now() + 600, "iss": "https://idp", "aud": ["api", "other"]})
}

pub(super) fn with(mut c: Value, key: &str, v: Value) -> Value {
    c[key] = v;
    c
}

pub(super) fn without(mut c: Value, key: &str) -> Value {
    c.as_object_mut().unwrap().remove(key);
    c
}

pub(super) fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

pub(super) fn rsa() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap()
}
pub(super) fn ec() -> EncodingKey {
    EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap()
}
pub(super) fn ed() -> EncodingKey {
    EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap()
}
pub(super) fn hs() -> EncodingKey {
    EncodingKey::from_secret(HS_SECRET.as_bytes())
}

pub(super) fn b64(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

pub(super) fn config(v: Value) -> JwtConfig {
    serde_json::from_value(v).unwrap()
}

pub(super) fn verifier(v: Value) -> JwtVerifier {
    JwtVerifier::new(&config(v), Path::new(".")).unwrap()
}

pub(super) fn new_err(v: Value) -> String {
    JwtVerifier::new(&config(v), Path::new(".")).unwrap_err()
}

pub(super) fn hs_key_config(kid: Option<&str>) -> Value {
    std::env::set_var("PORTICO_TEST_JWT_HS", HS_SECRET);
    json!({"kid": kid, "alg": "HS256", "secret": {"env": "PORTICO_TEST_JWT_HS"}})
}

/// One verifier with every static key type, each under its own kid.
pub(super) fn all_static() -> JwtVerifier {
    verifier(json!({"keys": [
        hs_key_config(Some("hs")),
        {"kid": "rsa", "alg": "RS256", "public_key": RSA_PUBLIC},
        {"kid": "ec", "alg": "ES256", "public_key": EC_PUBLIC},
        {"kid": "ed", "alg": "EdDSA", "public_key": ED_PUBLIC},
    ]}))
}

#[test]
fn config_defaults_and_unknown_fields() {
    let cfg = config(json!({}));
    assert_eq!(cfg, JwtConfig::default());
    assert_eq!(cfg.jwks_refresh.0, Duration::from_secs(300));
    assert_eq!(cfg.header, "authorization");
    let cfg = config(json!({"leeway": "5s", "jwks_min_refresh": "1m"}));
    assert_eq!(cfg.leeway.0, Duration::from_secs(5));
    assert!(serde_json::from_value::<JwtConfig>(json!({"kyes": []})).is_err());
    assert!(serde_json::from_value::<JwtKeyConfig>(json!({"alg": "HS256", "pubkey": "x"})).is_err());
}

#[test]
fn config_errors_name_the_field() {
    assert!(new_err(json!({})).starts_with("keys:"));
    let e = new_err(json!({"keys": [hs_key_config(None), {"alg": "RS256", "public_key": "garbage"}]}));
    assert_eq!(e, "keys[1].public_key: not a valid RSA public key");
    let e = new_err(json!({"keys": [{"alg": "RS256", "public_key": RSA_PRIVATE}]}));
    assert!(e.starts_with("keys[0].public_key: this is a private key"), "{e}");
    let e = new_err(json!({"keys": [{"alg": "ES384", "public_key": EC_PUBLIC}]}));
    assert!(e.contains("P-384"), "{e}");
    let e = new_err(json!({"keys": [{"alg": "none", "public_key": RSA_PUBLIC}]}));
    assert!(e.starts_with("keys[0].alg: unsupported algorithm \"none\""), "{e}");
    let e = new_err(json!({"keys": [{"alg": "HS256"}]}));
    assert_eq!(e, "keys[0].secret: required for HS256");
    let e = new_err(json!({"keys": [{"alg": "HS256", "secret": {"env": "PORTICO_TEST_JWT_UNSET"}}]}));
    assert!(e.starts_with("keys[0].secret: environment variable"), "{e}");
    let e = new_err(json!({"keys": [{"alg": "RS256", "public_key_file": "/nonexistent/key.pem"}]}));
    assert!(e.starts_with("keys[0].public_key_file: cannot read"), "{e}");
    let e = new_err(json!({"keys": [hs_key_config(Some("a")), hs_key_config(Some("a"))]}));
    assert!(e.starts_with("keys[1].kid: duplicate"), "{e}");
    assert!(new_err(json!({"jwks_url": "ftp://x/jwks"})).starts_with("jwks_url:"));
    assert!(new_err(json!({"jwks_url": "not a url"})).starts_with("jwks_url:"));
    assert!(new_err(json!({"keys": [hs_key_config(None)], "leeway": "2h"})).starts_with("leeway:"));
}

#[test]
fn public_key_file_is_relative_to_base_dir() {
    let dir = std::env::temp_dir().join(format!("portico-jwt-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ed.pub"), ED_PUBLIC).unwrap();
    let cfg = config(json!({"keys": [{"alg": "EdDSA", "public_key_file": "ed.pub"}]}));
    assert!(JwtVerifier::new(&cfg, &dir).is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn every_algorithm_family_verifies() {
    let v = all_static();
    for (alg, kid, key) in [
        (Algorithm::HS256, "hs", hs()),
        (Algorithm::RS256, "rsa", rsa()),
        (Algorithm::ES256, "ec", ec()),
        (Algorithm::EdDSA, "ed", ed()),
    ] {
        let token = sign(alg, Some(kid), &key, &claims());
        let got = v.verify(&token).await.unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(v.consumer_of(&got), Some("alice"));
        // Without a kid, the key is found by algorithm.
        let token = sign(alg, None, &key, &claims());
        assert!(v.verify(&token).await.is_ok(), "{alg:?} without kid");
    }
}

#[tokio::test]
async fn tampered_or_foreign_signatures_fail() {
    let v = all_static();
    let token = sign(Algorithm::RS256, Some("rsa"), &rsa(), &claims());
    let (signed, _) = token.rsplit_once('.').unwrap();
    let forged_payload = b64(&with(claims(), "sub", json!("mallory")).to_string());
    let header = signed.split('.').next().unwrap();
    let sig = token.rsplit('.').next().unwrap();
    let forged = format!("{header}.{forged_payload}.{sig}");
    assert_eq!(v.verify(&forged).await, Err(JwtError::BadSignature));
    let other = EncodingKey::from_secret(b"some-other-secret-that-is-32-bytes-long");
    assert_eq!(
        v.verify(&sign(Algorithm::HS256, Some("hs"), &other, &claims())).await,
        Err(JwtError::BadSignature)
    );
    assert_eq!(v.verify(&format!("{signed}.")).await, Err(JwtError::BadSignature));
    assert_eq!(
        v.verify(&sign(Algorithm::RS256, Some("zzz"), &rsa(), &claims())).await,
        Err(JwtError::UnknownKid)
    );
}

#[tokio::test]
async fn alg_none_is_rejected_in_any_case() {
    let v = all_static();
    let payload = b64(&claims().to_string());
    for alg in ["none", "None", "NONE", "nOnE"] {
        for kid in ["", r#","kid":"hs""#] {
            let token = format!("{}.{payload}.", b64(&format!(r#"{{"alg":"{alg}"{kid}}}"#)));
            let err = v.verify(&token).await.unwrap_err();
            assert_eq!(err, JwtError::AlgNotAllowed(alg.into()));
            assert_eq!(
                err.to_string(),
                format!("token signed with an algorithm this route does not accept: {alg}")
            );
            // Even with a signature-shaped third segment.
            assert!(matches!(
                v.verify(&format!("{token}c2ln")).await,
                Err(JwtError::AlgNotAllowed(_))
            ));
        }
    }
}

#[tokio::test]
async fn algorithm_not_configured_for_the_key_is_rejected() {
    let v = verifier(json!({"keys": [hs_key_config(Some("hs"))]}));
    let hs384 = sign(Algorithm::HS384, Some("hs"), &hs(), &claims());
    assert_eq!(v.verify(&hs384).await, Err(JwtError::AlgNotAllowed("HS384".into())));
    let hs384 = sign(Algorithm::HS384, None, &hs(), &claims());
    assert_eq!(v.verify(&hs384).await, Err(JwtError::AlgNotAllowed("HS384".into())));
    // Attacker-controlled alg names are truncated and stripped before being echoed.
    let token = format!(
        "{}.{}.c2ln",
        b64(r#"{"alg":"<script>alert(1)</script>XXXXXXXXXXXX"}"#),
        b64("{}")
    );
    let Err(JwtError::AlgNotAllowed(label)) = v.verify(&token).await else {
        panic!()
    };
    assert!(
        label.len() <= 16 && label.chars().all(|c| c.is_ascii_alphanumeric()),
        "{label}"
    );
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_rejected() {
    // The classic algorithm-confusion attack: use the (public) RSA PEM as an HMAC secret.
    let confused = EncodingKey::from_secret(RSA_PUBLIC.as_bytes());
    for cfg in [
        json!({"keys": [{"kid": "rsa", "alg": "RS256", "public_key": RSA_PUBLIC}]}),
        json!({"keys": [{"alg": "RS256", "public_key": RSA_PUBLIC}]}),
    ] {
        let v = verifier(cfg);
        for kid in [Some("rsa"), None] {
            let token = sign(Algorithm::HS256, kid, &confused, &claims());
            assert_eq!(
                v.verify(&token).await,
                Err(JwtError::AlgNotAllowed("HS256".into())),
                "kid {kid:?}"
            );
        }
    }
}

#[tokio::test]
async fn time_claims_with_leeway() {
    let v = verifier(json!({"keys": [hs_key_config(None)], "leeway": "30s"}));
    let t = |c: Value| sign(Algorithm::HS256, None, &hs(), &c);
    assert!(
        v.verify(&t(with(claims(), "exp", json!(now() - 10)))).await.is_ok(),
        "inside leeway"
    );
    assert_eq!(
        v.verify(&t(with(claims(), "exp", json!(now() - 60)))).await,
        Err(JwtError::Expired)
    );
    assert_eq!(JwtError::Expired.to_string(), "token expired");
    assert!(
        v.verify(&t(with(claims(), "nbf", json!(now() + 10)))).await.is_ok(),
        "inside leeway"
    );
    assert_eq!(
        v.verify(&t(with(claims(), "nbf", json!(now() + 60)))).await,
        Err(JwtError::NotYetValid)
    );
    assert_eq!(v.verify(&t(without(claims(), "exp"))).await, Err(JwtError::MissingExp));
    assert_eq!(
        v.verify(&t(with(claims(), "exp", json!("tomorrow")))).await,
        Err(JwtError::Malformed)
    );
    let lax = verifier(json!({"keys": [hs_key_config(None)], "require_exp": false, "leeway": "0s"}));
    assert!(lax.verify(&t(without(claims(), "exp"))).await.is_ok());
    assert_eq!(
        lax.verify(&t(with(claims(), "exp", json!(now() - 2)))).await,
        Err(JwtError::Expired)
    );
}

#[tokio::test]
async fn issuer_and_audience() {
    let v = verifier(json!({"keys": [hs_key_config(None)], "issuers": ["https://idp"], "audiences": ["api"]}));
    let t = |c: Value| sign(Algorithm::HS256, None, &hs(), &c);
    assert!(v.verify(&t(claims())).await.is_ok());
    assert!(v.verify(&t(with(claims(), "aud", json!("api")))).await.is_ok());
    assert_eq!(
        v.verify(&t(with(claims(), "iss", json!("https://evil")))).await,
        Err(JwtError::WrongIssuer)
    );
    assert_eq!(v.verify(&t(without(claims(), "iss"))).await, Err(JwtError::WrongIssuer));
    assert_eq!(
        v.verify(&t(with(claims(), "aud", json!("web")))).await,
        Err(JwtError::WrongAudience)
    );
    assert_eq!(
        v.verify(&t(with(claims(), "aud", json!(["web", 7])))).await,
        Err(JwtError::WrongAudience)
    );
    assert_eq!(
        v.verify(&t(without(claims(), "aud"))).await,
        Err(JwtError::WrongAudience)
    );
    // Unchecked when not configured.
    let open = verifier(json!({"keys": [hs_key_config(None)]}));
    assert!(open.verify(&t(with(claims(), "aud", json!(42)))).await.is_ok());
}

#[tokio::test]
async fn garbage_is_malformed_never_a_panic() {
    let v = verifier(json!({"keys": [hs_key_config(None)], "max_token_bytes": 1000}));
    let good = sign(Algorithm::HS256, None, &hs(), &claims());
    let (h, rest) = good.split_once('.').unwrap();
    let (p, s) = rest.split_once('.').unwrap();
    for bad in [
        "".to_string(),
        "abc".to_string(),
        format!("{h}.{p}"),
        format!("{h}.{p}.{s}.{s}"),
        format!("{h}..{s}"),
        format!(".{p}.{s}"),
        format!("{h}=.{p}.{s}"),
        format!("{}.{p}.{s}", b64("not json")),
        format!("{}.{p}.{s}", b64("[\"alg\"]")),
        format!("{}.{p}.{s}", b64(r#"{"alg":"HS256","crit":["exp"]}"#)),
        format!("{}.{p}.{s}", b64(r#"{"typ":"JWT"}"#)),
        format!("{h}.!!!.{s}"),
    ] {
        assert_eq!(v.verify(&bad).await, Err(JwtError::Malformed), "{bad}");
    }
    // A correctly signed token whose payload is not a JSON object.
    let key = hs();
    let signed = format!("{h}.{}", b64("[1,2]"));
    let sig = jsonwebtoken::crypto::sign(signed.as_bytes(), &key, Algorithm::HS256).unwrap();
    assert_eq!(v.verify(&format!("{signed}.{sig}")).await, Err(JwtError::Malformed));
    assert_eq!(v.verify(&"a".repeat(1001)).await, Err(JwtError::TooLarge));
    // Every single-character mutation and truncation of a valid token: an error, not a panic.
    for i in 0..good.len() {
        for c in ['.', '=', '+', '/', 'A', '\0', 'é', '%'] {
            let mut m = good.clone();
            m.replace_range(i..=i, &c.to_string());
            let _ = v.verify(&m).await;
        }
        let _ = v.verify(&good[..i]).await;
    }
}

#[test]
fn extract_from_header_and_query() {
    fn ok(s: &str) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(s))
    }
    let v = verifier(json!({"keys": [hs_key_config(None)], "query": "access_token", "max_token_bytes": 16}));
    assert_eq!(v.header_name(), "authorization");
    assert_eq!(v.extract(Some(b"Bearer abc.def.ghi"), None), Ok(ok("abc.def.ghi")));
    assert_eq!(v.extract(Some(b"  bEaReR \t abc  "), None), Ok(ok("abc")));
    assert_eq!(v.extract(Some(b"Basic dXNlcjpwYXNz"), None), Ok(None));
    assert_eq!(v.extract(Some(b"BearerX abc"), None), Ok(None));
    assert_eq!(v.extract(Some(b"Bearer"), None), Err(JwtError::Malformed));
    assert_eq!(v.extract(Some(b"Bearer   "), None), Err(JwtError::Malformed));
    assert_eq!(v.extract(Some(b"Bearer \xff\xfe"), None), Err(JwtError::Malformed));
    assert_eq!(
        v.extract(Some(b"Bearer 0123456789abcdefX"), None),
        Err(JwtError::TooLarge)
    );
    assert_eq!(v.extract(None, None), Ok(None));
    assert_eq!(v.extract(None, Some("a=1&access_token=abc&b=2")), Ok(ok("abc")));
    assert_eq!(
        v.extract(None, Some("?access_token=a%2Eb")),
        Ok(Some(Cow::Owned("a.b".into())))
    );
    assert_eq!(v.extract(None, Some("access_token=a%zz")), Err(JwtError::Malformed));
    assert_eq!(v.extract(None, Some("access_token=a%")), Err(JwtError::Malformed));
    assert_eq!(v.extract(None, Some("access_token=")), Ok(None));
    assert_eq!(v.extract(None, Some("token=abc")), Ok(None));
    assert_eq!(
        v.extract(None, Some(&format!("access_token={}", "a".repeat(17)))),
        Err(JwtError::TooLarge)
    );
    assert_eq!(
        v.extract(None, Some("access_token=a&access_token=b")),
        Err(JwtError::AmbiguousCredentials)
    );
    assert_eq!(
        v.extract(Some(b"Bearer abc"), Some("access_token=abc")),
        Err(JwtError::AmbiguousCredentials)
    );
    assert_eq!(v.extract(Some(b"Basic abc"), Some("access_token=abc")), Ok(ok("abc")));
    // Without `query` configured the query string is ignored.
    let v = verifier(json!({"keys": [hs_key_config(None)], "header": "X-Api-Token"}));
    assert_eq!(v.header_name(), "x-api-token");
    assert_eq!(
        v.extract(Some(b" Bearer abc "), Some("access_token=x")),
        Ok(ok("Bearer abc"))
    );
    assert_eq!(v.extract(Some(b""), None), Ok(None));
}

#[test]
fn consumer_claim_is_configurable() {
    let v = verifier(json!({"keys": [hs_key_config(None)], "consumer_claim": "client_id"}));
    let c = json!({"sub": "alice", "client_id": "app-1"});
    assert_eq!(v.consumer_of(c.as_object().unwrap()), Some("app-1"));
    let c = json!({"client_id": 5});
    assert_eq!(v.consumer_of(c.as_object().unwrap()), None);
}

#[test]
fn error_messages_do_not_leak() {
    let v = all_static();
    let rendered = format!("{v:?}");
    assert!(
        !rendered.contains(HS_SECRET) && !rendered.contains("BEGIN"),
        "{rendered}"
    );
}

#[test]
fn verifier_is_send_sync_and_verify_is_send() {
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    fn assert_send<T: Send>(_: &T) {}
    let v = all_static();
    assert_send_sync(&v);
    let fut = v.verify("a.b.c");
    assert_send(&fut);
}

//! Provider credentials never leave Portico through a provider's words.
//! Providers echo keys in their errors ("Incorrect API key provided:
//! sk-..."); before such text reaches a client, a log line or a metric label
//! it goes through [`Scrubber::scrub`], which replaces every configured
//! provider key and anything shaped like a credential (a bearer token, an
//! `sk-` key, a Google API key). The patterns are compiled once, with the
//! `regex` crate already used by `transform` (linear time on any input).

use once_cell::sync::Lazy;
use regex::Regex;

/// What replaces a secret.
const REDACTED: &str = "[redacted]";

/// Credential shapes, whoever's they are.
static SHAPES: Lazy<Option<Regex>> = Lazy::new(|| {
    Regex::new(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{4,}|\bsk-[A-Za-z0-9_-]{6,}|\bAIza[0-9A-Za-z_-]{20,}").ok()
});

/// The secrets of one registry, longest first (so a key that contains
/// another is replaced whole).
#[derive(Debug, Default)]
pub(crate) struct Scrubber {
    secrets: Vec<String>,
}

impl Scrubber {
    /// Scrubs `secrets` (empty and very short ones are ignored: replacing
    /// them would garble any text).
    pub(crate) fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Scrubber {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .filter(|s| s.len() >= 6)
            .map(str::to_string)
            .collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Scrubber { secrets }
    }

    /// `text` without any configured secret or credential-shaped word.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        match SHAPES.as_ref() {
            Some(re) => re.replace_all(&out, REDACTED).into_owned(),
            None => out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_key_shapes_are_redacted() {
        let s = Scrubber::new(["mock-provider-key-1", "k", "my-very-secret-key-2"]);
        let text = "Incorrect API key provided: Bearer mock-provider-key-1. Also my-very-secret-key-2, \
                    sk-proj-abc123XYZ, AIzaSyA1234567890abcdefghijklmnop, x-api-key key";
        let out = s.scrub(text);
        for secret in [
            "mock-provider-key-1",
            "my-very-secret-key-2",
            "sk-proj-abc123XYZ",
            "AIzaSyA1234567890abcdefghijklmnop",
        ] {
            assert!(!out.contains(secret), "{out}");
        }
        assert!(out.starts_with("Incorrect API key provided: "), "{out}");
        assert!(
            out.ends_with("x-api-key key"),
            "a short secret does not garble the text: {out}"
        );
        assert_eq!(s.scrub("model not found"), "model not found");
    }
}

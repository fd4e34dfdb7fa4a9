//! OpenAI request parameters that not every provider has.
//!
//! A parameter a provider has no equivalent for is refused with a 400 that
//! names it ([`refuse_unsupported`]), unless its value is the default (a
//! `logprobs: false`, a `frequency_penalty: 0`), which asks for nothing. A
//! refusal is a [`TranslateError::BadRequest`], so a model with several
//! targets falls back to one whose provider can express the request, and a
//! model with one target answers the 400. Nothing the client asked for is
//! dropped silently; the parameters each provider drops on purpose are hints
//! that do not change the answer, listed in its module docs.
//!
//! `reasoning_effort` becomes a budget of thinking tokens
//! ([`reasoning_budget`]), the same for Anthropic and Gemini: `minimal` 1024
//! (Anthropic's least), `low` 2048, `medium` 8192, `high` 24576 (the most
//! Gemini Flash takes); `none` is 0.

use super::TranslateError;
use serde_json::{Map, Value};

/// The value with which a parameter may be left out: the one that asks for nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Harmless {
    /// Any value but `null` is refused.
    Null,
    /// `false`.
    False,
    /// `0`.
    Zero,
    /// An empty object (`logit_bias: {}`).
    Empty,
    /// `["text"]` (`modalities`).
    TextOnly,
    /// `"medium"` (`verbosity`).
    Medium,
}

impl Harmless {
    fn holds(self, v: &Value) -> bool {
        match self {
            Harmless::Null => false,
            Harmless::False => v == &Value::Bool(false),
            Harmless::Zero => v.as_f64() == Some(0.0),
            Harmless::Empty => v.as_object().is_some_and(Map::is_empty),
            Harmless::TextOnly => v.as_array().is_some_and(|a| a.iter().all(|m| m == "text")),
            Harmless::Medium => v == "medium",
        }
    }
}

/// The parameters neither Anthropic nor Gemini has, with their harmless value.
pub(crate) const NOWHERE: [(&str, Harmless); 10] = [
    ("logprobs", Harmless::False),
    ("top_logprobs", Harmless::Zero),
    ("logit_bias", Harmless::Empty),
    ("audio", Harmless::Null),
    ("modalities", Harmless::TextOnly),
    ("prediction", Harmless::Null),
    ("web_search_options", Harmless::Null),
    ("functions", Harmless::Null),
    ("function_call", Harmless::Null),
    ("verbosity", Harmless::Medium),
];

/// A 400 naming the first parameter of `params` that `req` sets to something other than its default.
pub(crate) fn refuse_unsupported(
    req: &Map<String, Value>,
    provider: &str,
    params: &[(&str, Harmless)],
) -> Result<(), TranslateError> {
    for (key, default) in params {
        let Some(v) = req.get(*key).filter(|v| !v.is_null()) else {
            continue;
        };
        if !default.holds(v) {
            let hint = match *key {
                "functions" | "function_call" => ": use `tools` and `tool_choice`",
                _ => "; remove it, or call a model of a provider that has it",
            };
            return Err(TranslateError::BadRequest(format!(
                "`{key}` is not supported for {provider} models{hint}"
            )));
        }
    }
    Ok(())
}

/// Thinking tokens for `reasoning_effort`, if set: `Some(0)` for `none`.
pub(crate) fn reasoning_budget(req: &Map<String, Value>) -> Result<Option<u64>, TranslateError> {
    let Some(v) = req.get("reasoning_effort").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let budget = match v.as_str() {
        Some("none") => 0,
        Some("minimal") => 1024,
        Some("low") => 2048,
        Some("medium") => 8192,
        Some("high") => 24576,
        _ => {
            return Err(TranslateError::BadRequest(
                "`reasoning_effort` must be none, minimal, low, medium or high".into(),
            ))
        }
    };
    Ok(Some(budget))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn defaults_pass_and_anything_else_is_named() {
        let ok = req(
            json!({"logprobs": false, "top_logprobs": 0, "logit_bias": {}, "modalities": ["text"],
            "verbosity": "medium", "audio": null}),
        );
        assert_eq!(refuse_unsupported(&ok, "Anthropic", &NOWHERE), Ok(()));
        for bad in [
            json!({"logprobs": true}),
            json!({"top_logprobs": 3}),
            json!({"logit_bias": {"50256": -100}}),
            json!({"audio": {"voice": "alloy", "format": "wav"}}),
            json!({"modalities": ["text", "audio"]}),
            json!({"prediction": {"type": "content", "content": "x"}}),
            json!({"web_search_options": {}}),
            json!({"functions": [{"name": "f"}]}),
            json!({"verbosity": "low"}),
        ] {
            let key = bad
                .as_object()
                .and_then(|o| o.keys().next())
                .cloned()
                .unwrap_or_default();
            match refuse_unsupported(&req(bad), "Gemini", &NOWHERE) {
                Err(TranslateError::BadRequest(m)) => {
                    assert!(m.contains(&format!("`{key}`")) && m.contains("Gemini"), "{m}")
                }
                other => panic!("{key}: {other:?}"),
            }
        }
    }

    #[test]
    fn reasoning_effort_budgets() {
        let budget = |e: Value| reasoning_budget(&req(json!({ "reasoning_effort": e })));
        assert_eq!(budget(json!("none")), Ok(Some(0)));
        assert_eq!(budget(json!("minimal")), Ok(Some(1024)));
        assert_eq!(budget(json!("high")), Ok(Some(24576)));
        assert_eq!(budget(Value::Null), Ok(None));
        assert!(budget(json!("extreme")).is_err());
        assert_eq!(reasoning_budget(&req(json!({}))), Ok(None));
    }
}

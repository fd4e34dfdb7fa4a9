//! OpenAI Embeddings <-> Gemini `batchEmbedContents` (part of the Gemini adapter).

use super::{bad, bad_response, model_path, ProviderCall, TranslateError, Usage};
use serde_json::{json, Map, Value};

/// The input strings of an OpenAI embeddings request: a string or a non-empty array of strings.
fn inputs(req: &Value) -> Result<Vec<&str>, TranslateError> {
    let texts: Vec<&str> =
        match req.get("input") {
            None | Some(Value::Null) => return Err(bad("missing `input`")),
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(a)) if a.is_empty() => return Err(bad("`input` is empty")),
            Some(Value::Array(a)) => a.iter().map(Value::as_str).collect::<Option<_>>().ok_or_else(|| {
                bad("`input` must be a string or an array of strings (token arrays are not supported)")
            })?,
            Some(_) => return Err(bad("`input` must be a string or an array of strings")),
        };
    if texts.iter().any(|t| t.is_empty()) {
        return Err(bad("`input` must not hold empty strings"));
    }
    Ok(texts)
}

/// Total characters (Unicode scalar values) of the request's `input` strings, for [`embeddings_response`];
/// 0 when `input` is not valid.
pub(crate) fn embeddings_input_chars(req: &Value) -> usize {
    inputs(req).map_or(0, |texts| texts.iter().map(|t| t.chars().count()).sum())
}

/// OpenAI embeddings request (`{"input": string | [strings], "model", "dimensions"?}`) -> Gemini batchEmbedContents call
/// (path "/v1beta/models/{model}:batchEmbedContents", one request per input with model "models/{model}",
/// outputDimensionality from dimensions).
///
/// `encoding_format` "float" and "base64" are both accepted, but the answer always holds float arrays
/// (OpenAI's SDKs that ask for base64 on their own also accept floats).
pub(crate) fn embeddings_request(req: &Value, model: &str) -> Result<ProviderCall, TranslateError> {
    if !req.is_object() {
        return Err(bad("the request body must be a JSON object"));
    }
    let texts = inputs(req)?;
    let dimensions = match req.get("dimensions") {
        None | Some(Value::Null) => None,
        Some(d) => Some(
            d.as_u64()
                .filter(|&d| d > 0)
                .ok_or_else(|| bad("`dimensions` must be a positive integer"))?,
        ),
    };
    match req.get("encoding_format") {
        None | Some(Value::Null) => {}
        Some(Value::String(f)) if f == "float" || f == "base64" => {}
        Some(_) => return Err(bad("`encoding_format` must be float or base64")),
    }
    let path = model_path(model, "batchEmbedContents")?;
    let name = format!("models/{}", model.strip_prefix("models/").unwrap_or(model));
    let requests: Vec<Value> = texts
        .iter()
        .map(|text| {
            let mut r = Map::new();
            r.insert("model".into(), name.clone().into());
            r.insert("content".into(), json!({"parts": [{"text": text}]}));
            if let Some(d) = dimensions {
                r.insert("outputDimensionality".into(), d.into());
            }
            Value::Object(r)
        })
        .collect();
    Ok(ProviderCall {
        path,
        headers: Vec::new(),
        body: json!({ "requests": requests }),
    })
}

/// batchEmbedContents response ({"embeddings":[{"values":[..]}]}) -> OpenAI
/// {"object":"list","data":[{"object":"embedding","index","embedding"}],"model","usage":{"prompt_tokens","total_tokens"}}.
///
/// Gemini reports no token count for embeddings, so `prompt_tokens` (and `total_tokens`) is an
/// **estimate**: `input_chars / 4`, rounded up, where `input_chars` is the total number of characters
/// of the inputs (see [`embeddings_input_chars`]).
pub(crate) fn embeddings_response(
    body: &[u8],
    model: &str,
    input_chars: usize,
) -> Result<(Value, Usage), TranslateError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| bad_response(format!("invalid JSON: {e}")))?;
    let embeddings = v.get("embeddings").and_then(Value::as_array);
    let embeddings = embeddings.ok_or_else(|| bad_response("no `embeddings` array"))?;
    let mut data = Vec::with_capacity(embeddings.len());
    for (i, e) in embeddings.iter().enumerate() {
        let values = e
            .get("values")
            .and_then(Value::as_array)
            .filter(|v| v.iter().all(Value::is_number));
        let values = values.ok_or_else(|| bad_response(format!("embeddings[{i}] has no array of numbers `values`")))?;
        data.push(json!({"object": "embedding", "index": i, "embedding": values}));
    }
    let tokens = u64::try_from(input_chars.div_ceil(4)).unwrap_or(u64::MAX);
    let usage = Usage {
        prompt_tokens: tokens,
        ..Usage::default()
    };
    let out = json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    });
    Ok((out, usage))
}

//! JSON Schema -> the subset Gemini accepts (part of the Gemini adapter; the
//! rules are in `gemini`'s module doc).

use serde_json::{json, Map, Value};

/// A JSON schema -> the subset Gemini accepts (see the module doc). Property names are kept as they are.
pub(super) fn clean_schema(schema: &Value) -> Value {
    let Some(obj) = schema.as_object() else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, v) in obj {
        match key.as_str() {
            "properties" => {
                if let Some(props) = v.as_object() {
                    let props = props.iter().map(|(name, s)| (name.clone(), clean_schema(s))).collect();
                    out.insert(key.clone(), Value::Object(props));
                }
            }
            "items" => {
                // a tuple (`items: [..]`) cannot be expressed; its first schema is the closest fit
                let item = v.as_array().and_then(|a| a.first()).unwrap_or(v);
                out.insert(key.clone(), clean_schema(item));
            }
            "anyOf" | "oneOf" => {
                if let Some(a) = v.as_array() {
                    out.insert("anyOf".into(), a.iter().map(clean_schema).collect());
                }
            }
            "type" => match v {
                Value::Array(types) => {
                    let mut real = types.iter().filter(|t| t.as_str() != Some("null"));
                    if let Some(t) = real.next() {
                        out.insert("type".into(), t.clone());
                    }
                    if types.len() > 1 && types.iter().any(|t| t.as_str() == Some("null")) {
                        out.insert("nullable".into(), true.into());
                    }
                }
                other => {
                    out.insert("type".into(), other.clone());
                }
            },
            "format" => {
                let known = ["enum", "date-time", "float", "double", "int32", "int64"];
                if v.as_str().is_some_and(|f| known.contains(&f)) {
                    out.insert(key.clone(), v.clone());
                }
            }
            "const" => {
                out.insert("enum".into(), json!([v]));
            }
            // copied as they are: the rest of what Gemini's `Schema` (an OpenAPI 3.0 subset) knows
            "description" | "title" | "nullable" | "enum" | "required" | "minItems" | "maxItems" | "minProperties"
            | "maxProperties" | "minLength" | "maxLength" | "pattern" | "minimum" | "maximum" | "example"
            | "default" | "propertyOrdering" => {
                out.insert(key.clone(), v.clone());
            }
            k => log::debug!("gemini: dropping JSON-schema key {k:?}, which Gemini does not accept"),
        }
    }
    Value::Object(out)
}

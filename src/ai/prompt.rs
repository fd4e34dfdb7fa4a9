//! Prompt APIs: a prompt template published as a REST endpoint. The request
//! body is a JSON object of the template's variables (checked: a missing
//! required variable or an unknown one is a 400 naming it); the answer is the
//! model's text, or JSON when the API declares an `output_schema` (the model
//! is asked for JSON matching it, and the answer is parsed and checked
//! against the schema's `type`, `required`, `properties`, `enum` and `items`).
//! `GET /apis/openapi.json` describes every prompt API.

use super::access::Allowed;
use super::dispatch::{CallRequest, Endpoint, Failure};
use super::exchange::AiExchange;
use super::handler::{
    call_headers, charge_failed, fail, finish_call, read_json, respond_json_with, start_call, whole_answer,
};
use super::registry::AiRegistry;
use crate::config::ai::{PromptApiConfig, VariableConfig};
use crate::error::GatewayError;
use crate::serve::respond::respond;
use bytes::Bytes;
use http::{header, HeaderValue};
use pingora_core::Result;
use pingora_proxy::Session;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Var(String),
}

#[derive(Debug)]
pub struct PromptApi {
    pub name: String,
    pub method: http::Method,
    pub path: String,
    model: String,
    system: Option<String>,
    template: Vec<Piece>,
    variables: BTreeMap<String, VariableConfig>,
    output_schema: Option<Value>,
    temperature: Option<f64>,
    max_tokens: Option<u64>,
    description: Option<String>,
}

fn parse_template(t: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            out.push(Piece::Text(rest[..start].to_string()));
        }
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or("a `{{` has no closing `}}`")?;
        let name = after[..end].trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("invalid variable name {name:?}"));
        }
        out.push(Piece::Var(name.to_string()));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest.to_string()));
    }
    Ok(out)
}

impl PromptApi {
    pub fn compile(c: &PromptApiConfig) -> Result<PromptApi, (String, String)> {
        let template = parse_template(&c.template).map_err(|e| ("template".to_string(), e))?;
        for p in &template {
            if let Piece::Var(v) = p {
                if !c.variables.contains_key(v) {
                    return Err((
                        "template".into(),
                        format!("{{{{{v}}}}} is not declared under `variables`"),
                    ));
                }
            }
        }
        let method = http::Method::from_bytes(c.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| ("method".to_string(), format!("invalid method {:?}", c.method)))?;
        if !c.path.starts_with('/') || c.path.contains(['*', '{']) {
            return Err(("path".into(), "must be an exact path like /apis/sentiment".into()));
        }
        if let Some(s) = &c.output_schema {
            if !s.is_object() {
                return Err(("output_schema".into(), "must be a JSON Schema object".into()));
            }
        }
        Ok(PromptApi {
            name: c.name.clone(),
            method,
            path: c.path.clone(),
            model: c.model.clone(),
            system: c.system.clone(),
            template,
            variables: c.variables.clone(),
            output_schema: c.output_schema.clone(),
            temperature: c.temperature,
            max_tokens: c.max_tokens,
            description: c.description.clone(),
        })
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// The prompt for these variables, or the 400 message.
    fn render(&self, vars: &Map<String, Value>) -> Result<String, String> {
        if let Some(unknown) = vars.keys().find(|k| !self.variables.contains_key(*k)) {
            return Err(format!("unknown variable {unknown:?}"));
        }
        let mut values = BTreeMap::new();
        for (name, spec) in &self.variables {
            let v = match vars.get(name) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => match (&spec.default, spec.required) {
                    (Some(d), _) => d.clone(),
                    (None, true) => return Err(format!("missing variable {name:?}")),
                    (None, false) => String::new(),
                },
                Some(other) => other.to_string(),
            };
            values.insert(name.as_str(), v);
        }
        Ok(self
            .template
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.as_str(),
                Piece::Var(v) => values.get(v.as_str()).map_or("", |s| s.as_str()),
            })
            .collect())
    }

    fn chat_request(&self, prompt: String) -> Value {
        let mut system = self.system.clone().unwrap_or_default();
        if let Some(schema) = &self.output_schema {
            if !system.is_empty() {
                system.push_str("\n\n");
            }
            system
                .push_str("Answer with one JSON value only, no prose and no code fences, matching this JSON Schema: ");
            system.push_str(&schema.to_string());
        }
        let mut messages = Vec::new();
        if !system.is_empty() {
            messages.push(json!({"role": "system", "content": system}));
        }
        messages.push(json!({"role": "user", "content": prompt}));
        let mut req = json!({"model": self.model, "messages": messages});
        if let Some(t) = self.temperature {
            req["temperature"] = json!(t);
        }
        if let Some(m) = self.max_tokens {
            req["max_tokens"] = json!(m);
        }
        if self.output_schema.is_some() {
            req["response_format"] = json!({"type": "json_object"});
        }
        req
    }
}

fn bad(msg: impl Into<String>) -> Failure {
    Failure::new(GatewayError::BadRequest, msg)
}

/// Serves one call of a prompt API.
pub(crate) async fn serve(
    session: &mut Session,
    ctx: &mut AiExchange<'_>,
    reg: &AiRegistry,
    api: &PromptApi,
) -> Result<()> {
    match run(session, ctx, reg, api).await {
        Ok(()) => Ok(()),
        Err(f) => {
            ctx.failure = Some(f.error);
            fail(session, ctx, f).await
        }
    }
}

async fn run(
    session: &mut Session,
    ctx: &mut AiExchange<'_>,
    reg: &AiRegistry,
    api: &PromptApi,
) -> std::result::Result<(), Failure> {
    let body = read_json(session, ctx, reg.max_body).await?;
    let vars = body.as_object().cloned().unwrap_or_default();
    let prompt = api.render(&vars).map_err(bad)?;
    let req = api.chat_request(prompt);
    let accepted = start_call(ctx, reg, Allowed::ANY, Endpoint::Chat, &CallRequest::chat(&req), false).await?;
    let (target, attempts) = (accepted.target.clone(), accepted.attempts);
    let answer = match whole_answer(ctx, reg, Endpoint::Chat, &CallRequest::chat(&req), accepted).await {
        Ok(a) => a,
        Err(f) => {
            charge_failed(ctx, reg, &target, attempts, &req);
            return Err(f);
        }
    };
    let usd = finish_call(ctx, reg, &answer.accepted, answer.usage, answer.estimated);
    let mut headers = call_headers(&answer.accepted, usd);
    let text = answer
        .body
        .pointer("/choices/0/message/content")
        .and_then(|c| c.as_str())
        .unwrap_or_default()
        .to_string();
    let provider_error = |m: String| Failure::new(GatewayError::ProviderError, m);
    let write_err = |_| provider_error("write failed".into());
    match &api.output_schema {
        None => {
            headers.push((
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ));
            respond(session, ctx, 200, &headers, Bytes::from(text))
                .await
                .map_err(write_err)
        }
        Some(schema) => {
            let answer = parse_json_answer(&text)
                .ok_or_else(|| provider_error(format!("model {} did not answer valid JSON", api.model)))?;
            if let Err(e) = check(schema, &answer, "$") {
                return Err(provider_error(format!(
                    "the model's answer does not match the output schema: {e}"
                )));
            }
            respond_json_with(session, ctx, 200, &answer, headers)
                .await
                .map_err(write_err)
        }
    }
}

/// The JSON in an answer, tolerating a Markdown code fence around it.
fn parse_json_answer(text: &str) -> Option<Value> {
    let t = text.trim();
    let t = t
        .strip_prefix("```json")
        .or_else(|| t.strip_prefix("```"))
        .and_then(|r| r.trim_end().strip_suffix("```"))
        .unwrap_or(t);
    serde_json::from_str(t.trim()).ok()
}

/// A small JSON Schema check: `type`, `required`, `properties`, `enum`, `items`.
fn check(schema: &Value, v: &Value, at: &str) -> std::result::Result<(), String> {
    if let Some(t) = schema.get("type").and_then(|t| t.as_str()) {
        let ok = match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "number" => v.is_number(),
            "integer" => v.is_i64() || v.is_u64(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            _ => true,
        };
        if !ok {
            return Err(format!("{at} is not of type {t}"));
        }
    }
    if let Some(options) = schema.get("enum").and_then(|e| e.as_array()) {
        if !options.contains(v) {
            return Err(format!("{at} is not one of the allowed values"));
        }
    }
    if let (Some(req), Some(obj)) = (schema.get("required").and_then(|r| r.as_array()), v.as_object()) {
        if let Some(missing) = req.iter().filter_map(|r| r.as_str()).find(|r| !obj.contains_key(*r)) {
            return Err(format!("{at}.{missing} is missing"));
        }
    }
    if let (Some(props), Some(obj)) = (schema.get("properties").and_then(|p| p.as_object()), v.as_object()) {
        for (k, s) in props {
            if let Some(x) = obj.get(k) {
                check(s, x, &format!("{at}.{k}"))?;
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            check(items, x, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// The OpenAPI 3.0 document of the prompt APIs.
pub(crate) fn openapi(apis: &[&PromptApi]) -> Value {
    let mut paths = Map::new();
    for api in apis {
        let mut props = Map::new();
        let mut required = Vec::new();
        for (name, v) in &api.variables {
            let mut p = json!({"type": "string"});
            if let Some(d) = &v.description {
                p["description"] = json!(d);
            }
            if let Some(d) = &v.default {
                p["default"] = json!(d);
            }
            props.insert(name.clone(), p);
            if v.required && v.default.is_none() {
                required.push(name.clone());
            }
        }
        let ok = match &api.output_schema {
            Some(s) => json!({"description": "the model's answer", "content": {"application/json": {"schema": s}}}),
            None => {
                json!({"description": "the model's answer", "content": {"text/plain": {"schema": {"type": "string"}}}})
            }
        };
        let error = json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
        let op = json!({
            "operationId": api.name,
            "summary": api.description.clone().unwrap_or_else(|| format!("prompt API {}", api.name)),
            "requestBody": {"required": true, "content": {"application/json": {"schema":
                {"type": "object", "properties": props, "required": required, "additionalProperties": false}}}},
            "responses": {"200": ok, "400": error, "401": error, "429": error, "502": error},
        });
        let entry = paths.entry(api.path.clone()).or_insert_with(|| json!({}));
        entry[api.method.as_str().to_ascii_lowercase()] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Portico prompt APIs", "version": "1"},
        "paths": paths,
        "components": {"schemas": {"Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
            "message": {"type": "string"}, "type": {"type": "string"}, "param": {"type": "string", "nullable": true},
            "code": {"type": "string", "nullable": true}, "request_id": {"type": "string"}}}}}}},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(template: &str, schema: Option<Value>) -> PromptApi {
        let cfg: PromptApiConfig = serde_yaml::from_str(&format!(
            "name: s\npath: /apis/s\nmodel: m\ntemplate: {template:?}\nvariables:\n  text: {{required: true}}\n  lang: {{default: en}}\n"
        ))
        .unwrap();
        let mut a = PromptApi::compile(&cfg).unwrap();
        a.output_schema = schema;
        a
    }

    #[test]
    fn rendering_and_variable_checks() {
        let a = api("Classify ({{lang}}): {{ text }}", None);
        let vars = |v: Value| v.as_object().cloned().unwrap();
        assert_eq!(
            a.render(&vars(json!({"text": "great"}))).unwrap(),
            "Classify (en): great"
        );
        assert_eq!(
            a.render(&vars(json!({"text": 5, "lang": "fr"}))).unwrap(),
            "Classify (fr): 5"
        );
        assert_eq!(a.render(&vars(json!({}))).unwrap_err(), "missing variable \"text\"");
        assert_eq!(
            a.render(&vars(json!({"text": "x", "tone": 1}))).unwrap_err(),
            "unknown variable \"tone\""
        );
        assert!(parse_template("{{unclosed").is_err());
        assert!(parse_template("{{bad name}}").is_err());
    }

    #[test]
    fn schema_checks() {
        let s = json!({"type": "object", "required": ["label"], "properties": {
            "label": {"type": "string", "enum": ["positive", "negative"]}, "score": {"type": "number"}}});
        assert!(check(&s, &json!({"label": "positive", "score": 0.9}), "$").is_ok());
        assert!(check(&s, &json!({"score": 0.9}), "$").is_err());
        assert!(check(&s, &json!({"label": "meh"}), "$").is_err());
        assert!(check(&s, &json!([1]), "$").is_err());
        assert_eq!(parse_json_answer("```json\n{\"a\":1}\n```"), Some(json!({"a": 1})));
        assert_eq!(parse_json_answer("nope"), None);
    }
}

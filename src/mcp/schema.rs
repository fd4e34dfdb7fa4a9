//! JSON Schemas out of an OpenAPI document, made whole for a tool's
//! `inputSchema`: local `$ref`s (`#/components/schemas/Pet`, any JSON
//! pointer into the document) are inlined, since MCP clients and the models
//! behind them read one self-contained schema; OpenAPI 3.0's `nullable` becomes
//! JSON Schema's `type: [T, "null"]`.
//!
//! Limits, so that no document can make a load hang or a tool list explode:
//! a reference to a schema already being inlined (a cycle: a tree of nodes
//! whose children are nodes) is cut to an empty schema saying so, as is a
//! chain of references deeper than [`MAX_DEPTH`]; a schema that grows past
//! [`MAX_NODES`] values while inlining (references that fan out) is an
//! error. A reference outside the document (`other.yaml#/Pet`, a URL) is cut
//! too: Portico reads no other file or URL to build a tool.

use serde_json::{json, Map, Value};

/// References inlined within one another before the chain is cut.
pub(crate) const MAX_DEPTH: usize = 32;
/// JSON values one schema may grow to while its references are inlined.
pub(crate) const MAX_NODES: usize = 100_000;
/// Nesting of one inlined schema (objects and arrays within one another):
/// the walk is recursive, and a reload compiles on a small thread stack.
pub(crate) const MAX_NESTING: usize = 256;

/// Keywords whose values are data, not schemas: a `$ref` inside them is an
/// example's content and stays as written.
const DATA_KEYWORDS: &[&str] = &["example", "examples", "default", "enum", "const"];

/// Resolves the references of schemas within one document.
pub(crate) struct Resolver<'a> {
    doc: &'a Value,
    nodes: usize,
}

impl<'a> Resolver<'a> {
    /// A resolver for schemas of `doc`.
    pub(crate) fn new(doc: &'a Value) -> Resolver<'a> {
        Resolver { doc, nodes: 0 }
    }

    /// `schema` with its references inlined, or why it cannot be.
    pub(crate) fn resolve(&mut self, schema: &Value) -> Result<Value, String> {
        self.nodes = 0;
        self.walk(schema, &mut Vec::new(), 0)
    }

    /// The value a local reference (`#/a/b`) points at, `$ref`s of its own
    /// left as they are (parameters and request bodies).
    pub(crate) fn target(&self, reference: &str) -> Result<&'a Value, String> {
        let pointer = local_pointer(reference).ok_or_else(|| format!("$ref {reference:?} is not in this document"))?;
        self.doc
            .pointer(&pointer)
            .ok_or_else(|| format!("$ref {reference:?} points at nothing in the document"))
    }

    fn walk(&mut self, v: &Value, stack: &mut Vec<String>, depth: usize) -> Result<Value, String> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(format!(
                "its schema grows past {MAX_NODES} values once its $refs are inlined"
            ));
        }
        if depth > MAX_NESTING {
            return Err(format!("its schema nests deeper than {MAX_NESTING} levels"));
        }
        match v {
            Value::Object(obj) => {
                if let Some(reference) = obj.get("$ref").and_then(Value::as_str) {
                    return self.reference(reference, obj, stack, depth);
                }
                let mut out = Map::new();
                for (k, x) in obj {
                    let data = DATA_KEYWORDS.contains(&k.as_str()) || k.starts_with("x-");
                    let value = if data {
                        x.clone()
                    } else {
                        self.walk(x, stack, depth + 1)?
                    };
                    out.insert(k.clone(), value);
                }
                Ok(Value::Object(nullable(out)))
            }
            Value::Array(items) => items.iter().map(|x| self.walk(x, stack, depth + 1)).collect(),
            other => Ok(other.clone()),
        }
    }

    fn reference(
        &mut self,
        reference: &str,
        obj: &Map<String, Value>,
        stack: &mut Vec<String>,
        depth: usize,
    ) -> Result<Value, String> {
        let Some(pointer) = local_pointer(reference) else {
            return Ok(cut(format!("external reference {reference} (not resolved)")));
        };
        if stack.iter().any(|r| r == reference) {
            return Ok(cut(format!("recursive reference to {reference} (cut)")));
        }
        if stack.len() >= MAX_DEPTH {
            return Ok(cut(format!("reference to {reference} nested too deep (cut)")));
        }
        let target = self
            .doc
            .pointer(&pointer)
            .ok_or_else(|| format!("$ref {reference:?} points at nothing in the document"))?;
        stack.push(reference.to_string());
        let resolved = self.walk(target, stack, depth + 1);
        stack.pop();
        let mut resolved = resolved?;
        // OpenAPI 3.1 lets a reference carry siblings (a description, say);
        // they describe this use of the schema, so they win.
        if let Value::Object(out) = &mut resolved {
            for (k, x) in obj.iter().filter(|(k, _)| k.as_str() != "$ref") {
                out.insert(k.clone(), x.clone());
            }
        }
        Ok(resolved)
    }
}

/// The JSON pointer of a local reference (`#/components/schemas/Pet` ->
/// `/components/schemas/Pet`), percent-decoded as a URI fragment is.
fn local_pointer(reference: &str) -> Option<String> {
    let fragment = reference.strip_prefix('#')?;
    if !fragment.is_empty() && !fragment.starts_with('/') {
        return None;
    }
    Some(
        percent_encoding::percent_decode_str(fragment)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// An empty schema (anything goes) that says why it is empty.
fn cut(why: String) -> Value {
    json!({ "description": why })
}

/// OpenAPI 3.0's `nullable: true` as JSON Schema says it.
fn nullable(mut obj: Map<String, Value>) -> Map<String, Value> {
    match obj.get("nullable") {
        Some(Value::Bool(true)) => {
            if let Some(Value::String(t)) = obj.get("type") {
                let t = t.clone();
                obj.insert("type".into(), json!([t, "null"]));
                obj.remove("nullable");
            }
        }
        Some(Value::Bool(false)) => {
            obj.remove("nullable");
        }
        _ => {}
    }
    obj
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        json!({"components": {"schemas": {
            "Pet": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string"},
                "tag": {"type": "string", "nullable": true},
                "owner": {"$ref": "#/components/schemas/Owner"}}},
            "Owner": {"type": "object", "properties": {"pets": {"type": "array", "items": {"$ref": "#/components/schemas/Pet"}}}},
            "Node": {"type": "object", "properties": {"next": {"$ref": "#/components/schemas/Node"}}},
            "a~b/c": {"type": "integer"},
        }}})
    }

    #[test]
    fn references_are_inlined_and_cycles_cut() {
        let d = doc();
        let mut r = Resolver::new(&d);
        let pet = r.resolve(&json!({"$ref": "#/components/schemas/Pet"})).unwrap();
        assert_eq!(pet["properties"]["name"], json!({"type": "string"}));
        assert_eq!(pet["properties"]["tag"], json!({"type": ["string", "null"]}));
        let owner = &pet["properties"]["owner"];
        assert_eq!(owner["type"], "object");
        // Pet -> Owner -> Pet: the second Pet is cut.
        assert_eq!(
            owner["properties"]["pets"]["items"],
            json!({"description": "recursive reference to #/components/schemas/Pet (cut)"})
        );
        let node = r.resolve(&json!({"$ref": "#/components/schemas/Node"})).unwrap();
        assert_eq!(
            node["properties"]["next"]["description"],
            "recursive reference to #/components/schemas/Node (cut)"
        );
    }

    #[test]
    fn pointers_are_unescaped_and_siblings_kept() {
        let d = doc();
        let mut r = Resolver::new(&d);
        let v = r
            .resolve(&json!({"$ref": "#/components/schemas/a~0b~1c", "description": "count"}))
            .unwrap();
        assert_eq!(v, json!({"type": "integer", "description": "count"}));
        let v = r.resolve(&json!({"$ref": "#/components/schemas/a~0b~1c"})).unwrap();
        assert_eq!(v, json!({"type": "integer"}));
    }

    #[test]
    fn missing_external_and_data_references() {
        let d = doc();
        let mut r = Resolver::new(&d);
        let e = r.resolve(&json!({"$ref": "#/components/schemas/Nope"})).unwrap_err();
        assert!(e.contains("points at nothing"), "{e}");
        let v = r.resolve(&json!({"$ref": "other.yaml#/Pet"})).unwrap();
        assert_eq!(v["description"], "external reference other.yaml#/Pet (not resolved)");
        let example = json!({"type": "object", "example": {"$ref": "#/not/a/schema"}});
        assert_eq!(r.resolve(&example).unwrap(), example);
        assert!(r.target("#/components/schemas/Pet").is_ok());
        assert!(r.target("http://example.com/x").is_err());
    }

    #[test]
    fn fan_out_is_bounded() {
        // Each level refers to the next twice: 2^40 values inlined whole.
        let mut schemas = Map::new();
        for i in 0..40 {
            let next = format!("#/components/schemas/S{}", i + 1);
            schemas.insert(
                format!("S{i}"),
                json!({"type": "object", "properties": {"a": {"$ref": next}, "b": {"$ref": next}}}),
            );
        }
        schemas.insert("S40".into(), json!({"type": "string"}));
        let d = json!({"components": {"schemas": schemas}});
        let e = Resolver::new(&d)
            .resolve(&json!({"$ref": "#/components/schemas/S0"}))
            .unwrap_err();
        assert!(e.contains("grows past"), "{e}");
    }

    #[test]
    fn deep_chains_are_cut() {
        let mut schemas = Map::new();
        for i in 0..100 {
            schemas.insert(
                format!("S{i}"),
                json!({"$ref": format!("#/components/schemas/S{}", i + 1)}),
            );
        }
        schemas.insert("S100".into(), json!({"type": "string"}));
        let d = json!({"components": {"schemas": schemas}});
        let v = Resolver::new(&d)
            .resolve(&json!({"$ref": "#/components/schemas/S0"}))
            .unwrap();
        assert!(v["description"].as_str().unwrap().contains("nested too deep"), "{v}");
    }
}

//! Documents to tools ([`super::openapi`]) and calls to requests
//! ([`super::request`]), on small documents written out in each test.

use super::openapi::{compile, tool_name, Compiled, Location, Tool};
use super::request::build;
use serde_json::{json, Map, Value};

fn pets() -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Pets", "version": "1"},
        "paths": {
            "/pets": {
                "get": {
                    "operationId": "listPets",
                    "summary": "List pets",
                    "parameters": [
                        {"name": "limit", "in": "query", "schema": {"type": "integer"}, "description": "How many"},
                        {"name": "tag", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}},
                        {"name": "X-Trace", "in": "header", "schema": {"type": "string"}},
                        {"name": "Authorization", "in": "header", "schema": {"type": "string"}},
                        {"name": "x-consumer", "in": "header", "schema": {"type": "string"}},
                        {"name": "session", "in": "cookie", "schema": {"type": "string"}}
                    ]
                },
                "post": {
                    "operationId": "create pet!",
                    "description": "Adds a pet.",
                    "requestBody": {"required": true, "content": {"application/json; charset=utf-8": {
                        "schema": {"$ref": "#/components/schemas/NewPet"}}}}
                }
            },
            "/pets/{id}": {
                "parameters": [{"$ref": "#/components/parameters/PetId"}],
                "get": {"operationId": "getPet"},
                "delete": {
                    "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}]
                },
                "put": {
                    "operationId": "uploadPhoto",
                    "requestBody": {"required": true, "content": {"image/png": {}}}
                }
            },
            "/owners/{owner}/pets/{id}": {
                "get": {
                    "operationId": "ownersPet",
                    "parameters": [
                        {"name": "owner", "in": "path", "required": true, "schema": {"type": "string"}},
                        {"name": "id", "in": "query", "schema": {"type": "string"}},
                        {"name": "unused", "in": "path", "required": true, "schema": {"type": "string"}}
                    ]
                }
            }
        },
        "components": {
            "parameters": {"PetId": {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}},
            "schemas": {
                "NewPet": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string"}, "owner": {"$ref": "#/components/schemas/Owner"}}},
                "Owner": {"type": "object", "properties": {"name": {"type": "string"}, "pets": {
                    "type": "array", "items": {"$ref": "#/components/schemas/NewPet"}}}}
            }
        }
    })
}

fn compiled() -> Compiled {
    let c = compile(&pets(), "x-consumer", None);
    assert!(c.issues.is_empty(), "{:?}", c.issues);
    c
}

fn tool<'a>(c: &'a Compiled, name: &str) -> &'a Tool {
    c.tools.iter().find(|t| &*t.name == name).unwrap_or_else(|| {
        panic!(
            "no tool {name} in {:?}",
            c.tools.iter().map(|t| &t.name).collect::<Vec<_>>()
        )
    })
}

fn args(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

#[test]
fn operations_become_tools_with_their_parameters() {
    let c = compiled();
    let list = tool(&c, "listPets");
    let schema = &list.definition["inputSchema"];
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(
        schema["properties"]["limit"],
        json!({"type": "integer", "description": "How many"})
    );
    assert_eq!(schema["properties"]["tag"]["items"], json!({"type": "string"}));
    // Authorization (ignored by OpenAPI), the consumer header and cookies are not arguments.
    let names: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["X-Trace", "limit", "tag"]);
    assert!(schema.get("required").is_none());
    assert_eq!(list.definition["title"], "List pets");
    assert_eq!(list.definition["description"], "List pets");
    assert_eq!(list.definition["annotations"]["readOnlyHint"], true);
    assert!(matches!(&list.params[2].at, Location::Header(h) if h == "x-trace"));
}

#[test]
fn a_json_body_is_the_body_argument_with_its_refs_inlined() {
    let c = compiled();
    let create = tool(&c, "create_pet");
    assert_eq!(create.operation_id.as_deref(), Some("create pet!"));
    let schema = &create.definition["inputSchema"];
    assert_eq!(schema["required"], json!(["body"]));
    let body = &schema["properties"]["body"];
    assert_eq!(body["required"], json!(["name"]));
    let owner = &body["properties"]["owner"];
    assert_eq!(owner["properties"]["name"], json!({"type": "string"}));
    assert!(owner["properties"]["pets"]["items"]["description"]
        .as_str()
        .unwrap()
        .contains("recursive reference"));
    assert_eq!(create.definition["description"], "Adds a pet.");
    assert!(create.definition.get("title").is_none());
    assert_eq!(create.definition["annotations"]["readOnlyHint"], false);
}

#[test]
fn names_path_parameters_and_skipped_operations() {
    let c = compiled();
    // Path-item parameters are shared; an operation's own replaces one of the same name.
    let get = tool(&c, "getPet");
    assert_eq!(
        get.definition["inputSchema"]["properties"]["id"],
        json!({"type": "string"})
    );
    let delete = tool(&c, "delete_pets_id");
    assert_eq!(
        delete.definition["inputSchema"]["properties"]["id"],
        json!({"type": "integer"})
    );
    assert_eq!(delete.definition["description"], "DELETE /pets/{id}");
    assert_eq!(delete.definition["annotations"]["destructiveHint"], true);
    // A path and a query parameter of one name; a declared path parameter the template lacks.
    let owners = tool(&c, "ownersPet");
    let props = owners.definition["inputSchema"]["properties"].as_object().unwrap();
    assert_eq!(props.keys().collect::<Vec<_>>(), ["id", "owner", "query_id"]);
    assert_eq!(owners.definition["inputSchema"]["required"], json!(["owner", "id"]));
    // A required body that is not JSON: not a tool, and why.
    assert!(c.tools.iter().all(|t| &*t.name != "uploadPhoto"));
    assert_eq!(c.skipped.len(), 1);
    assert_eq!(c.skipped[0].name, "uploadPhoto");
    assert!(c.skipped[0].why.contains("not JSON"));
}

#[test]
fn tool_names_are_sanitised() {
    assert_eq!(tool_name(Some("getPet"), "get", "/x"), "getPet");
    assert_eq!(tool_name(Some("pets.get by-id"), "get", "/x"), "pets_get_by-id");
    assert_eq!(tool_name(Some("  "), "get", "/pets/{id}/photos"), "get_pets_id_photos");
    assert_eq!(tool_name(None, "post", "/"), "post");
    assert_eq!(tool_name(Some("日本"), "get", "/v1/é"), "get_v1");
    assert_eq!(tool_name(Some(&"a".repeat(100)), "get", "/").len(), 64);
}

#[test]
fn bad_documents_are_located() {
    let c = compile(&json!({"swagger": "2.0", "paths": {}}), "x-consumer", None);
    assert!(c.issues[0].1.contains("Swagger 2.0"), "{:?}", c.issues);
    let c = compile(&json!({"openapi": "3.1.0"}), "x-consumer", None);
    assert_eq!(c.issues[0].0, "paths");
    let doc = json!({"openapi": "3.1.0", "paths": {
        "/a": {"get": {"parameters": [{"$ref": "#/components/parameters/Missing"}]}},
        "/b": {"get": {"parameters": [{"in": "query"}]}},
        "/c": {"get": {"parameters": [{"name": "x", "in": "body"}]}},
        "/d/{x": {"get": {}},
        "/e": {"post": {"requestBody": {"content": {"application/json": {"schema": {"$ref": "#/nope"}}}}}},
        "/f": {"get": {"parameters": [{"name": "bad header", "in": "header"}]}},
        "/g/../h": {"get": {}},
    }});
    let c = compile(&doc, "x-consumer", None);
    let at: Vec<&str> = c.issues.iter().map(|(at, _)| at.as_str()).collect();
    assert_eq!(
        at,
        [
            "paths./a.get",
            "paths./b.get",
            "paths./c.get",
            "paths./d/{x.get",
            "paths./e.post",
            "paths./f.get",
            "paths./g/../h.get"
        ],
        "{:?}",
        c.issues
    );
}

#[test]
fn calls_become_requests() {
    let c = compiled();
    let out = build(
        tool(&c, "listPets"),
        &args(json!({"limit": 5, "tag": ["a b", "c&d"], "X-Trace": "t1"})),
    )
    .unwrap();
    assert_eq!(out.path_and_query, "/pets?limit=5&tag=a%20b&tag=c%26d");
    assert_eq!(out.headers.len(), 1);
    assert_eq!(out.headers[0].0, "x-trace");
    assert_eq!(out.headers[0].1, "t1");
    assert_eq!(out.body, None);
    let out = build(tool(&c, "listPets"), &args(json!({"limit": null}))).unwrap();
    assert_eq!(out.path_and_query, "/pets");
    let out = build(tool(&c, "getPet"), &args(json!({"id": "a/b?c#d é"}))).unwrap();
    assert_eq!(out.path_and_query, "/pets/a%2Fb%3Fc%23d%20%C3%A9");
    let out = build(tool(&c, "delete_pets_id"), &args(json!({"id": 42}))).unwrap();
    assert_eq!(out.path_and_query, "/pets/42");
    let out = build(
        tool(&c, "ownersPet"),
        &args(json!({"owner": "ann", "id": "7", "query_id": "x"})),
    )
    .unwrap();
    assert_eq!(out.path_and_query, "/owners/ann/pets/7?id=x");
    let out = build(tool(&c, "create_pet"), &args(json!({"body": {"name": "Rex"}}))).unwrap();
    assert_eq!(out.path_and_query, "/pets");
    assert_eq!(out.body.as_deref(), Some(&br#"{"name":"Rex"}"#[..]));
}

#[test]
fn bad_arguments_are_refused_with_a_reason() {
    let c = compiled();
    let refuse = |name: &str, a: Value| build(tool(&c, name), &args(a)).unwrap_err();
    assert!(refuse("getPet", json!({})).contains("missing required argument \"id\""));
    assert!(refuse("getPet", json!({"id": "1", "extra": 1})).contains("no argument \"extra\""));
    for bad in ["", ".", ".."] {
        assert!(refuse("getPet", json!({"id": bad})).contains("path segment"), "{bad:?}");
    }
    assert!(refuse("getPet", json!({"id": {"a": 1}})).contains("string, number or boolean"));
    assert!(refuse("listPets", json!({"X-Trace": "a\nb"})).contains("header value"));
    assert!(refuse("create_pet", json!({})).contains("\"body\""));
    assert!(refuse("listPets", json!({"body": {}})).contains("no argument \"body\""));
}

#[test]
fn path_text_is_encoded_and_checked() {
    let doc = json!({"openapi": "3.0.0", "paths": {"/a b/{x}:do": {"post": {"operationId": "op"}}}});
    let c = compile(&doc, "x-consumer", None);
    let out = build(&c.tools[0], &args(json!({"x": "1"}))).unwrap();
    assert_eq!(out.path_and_query, "/a%20b/1:do");
}

#[test]
fn paths_follow_the_servers_base_path() {
    let path = |servers: Value, base: Option<&str>| {
        let doc =
            json!({"openapi": "3.0.0", "servers": servers, "paths": {"/pets/{id}": {"get": {"operationId": "p"}}}});
        let c = compile(&doc, "x-consumer", base);
        match c.tools.first() {
            Some(t) => Ok(build(t, &args(json!({"id": 1}))).unwrap().path_and_query),
            None => Err(c.issues[0].clone()),
        }
    };
    assert_eq!(path(json!([]), None).unwrap(), "/pets/1");
    assert_eq!(path(json!([{"url": "/api/v3"}]), None).unwrap(), "/api/v3/pets/1");
    assert_eq!(
        path(json!([{"url": "https://api.example.com/v1/"}]), None).unwrap(),
        "/v1/pets/1"
    );
    assert_eq!(
        path(json!([{"url": "https://api.example.com"}]), None).unwrap(),
        "/pets/1"
    );
    let vars = json!([{"url": "https://{env}.example.com/{version}", "variables": {
        "env": {"default": "prod"}, "version": {"default": "v2"}}}]);
    assert_eq!(path(vars, None).unwrap(), "/v2/pets/1");
    // The route's base_path wins; `/` is none.
    assert_eq!(path(json!([{"url": "/api/v3"}]), Some("/")).unwrap(), "/pets/1");
    assert_eq!(path(json!([]), Some("/internal")).unwrap(), "/internal/pets/1");
    let (at, why) = path(json!([{"url": "/{version}"}]), None).unwrap_err();
    assert_eq!(at, "servers[0].url");
    assert!(why.contains("mcp.base_path"), "{why}");
    assert!(path(json!([{"url": "/a/../b"}]), None).is_err());
}

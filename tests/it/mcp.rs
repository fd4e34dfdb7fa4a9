//! `mcp` routes against real upstreams, with raw JSON-RPC (the MCP SDK's
//! end-to-end tests are `tests/mcp`): a tool call moves to another target
//! when one refuses connections, stops at the route's `timeout`, carries the
//! forwarding headers and the tool's header parameters, and a reload
//! changes the tools offered.

use crate::support::*;
use serde_json::{json, Value};

/// Upstream `a` (`targets` its addresses), service `s` whose document has
/// `/delay/{ms}` (`slow`) and `/echo` (`echo`: a query and a header
/// parameter), and route `m` serving it at `/mcp` with `mcp` settings.
fn config(targets: &[std::net::SocketAddr], mcp: &str) -> String {
    let targets: Vec<String> = targets.iter().map(|a| format!("{{address: {a}}}")).collect();
    format!(
        "upstreams:\n  a:\n    targets: [{}]\n    health_check: {{passive: {{max_fails: 1, cooldown: 60s}}}}\n\
         routes:\n  - {{name: m, service: s, paths: [/mcp], upstream: a, mcp: {mcp}}}\n\
         services:\n  - name: s\n    openapi:\n      openapi: 3.0.0\n      paths:\n\
         \x20       /delay/{{ms}}: {{get: {{operationId: slow}}}}\n\
         \x20       /echo:\n          get:\n            operationId: echo\n            parameters:\n\
         \x20             - {{name: q, in: query, schema: {{type: string}}}}\n\
         \x20             - {{name: X-Note, in: header, schema: {{type: string}}}}\n",
        targets.join(", ")
    )
}

/// One JSON-RPC call; the answer and the request id.
async fn rpc(gw: &Gateway, method: &str, params: Value) -> (Value, String) {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let r = client().post(gw.url("/mcp")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    (r.json().await.unwrap(), id)
}

async fn call(gw: &Gateway, tool: &str, args: Value) -> (Value, String) {
    let (v, id) = rpc(gw, "tools/call", json!({"name": tool, "arguments": args})).await;
    (v["result"].clone(), id)
}

#[tokio::test]
async fn a_refused_target_is_skipped_and_the_timeout_holds() {
    let dead = Upstream::start("dead").await.stop();
    let live = Upstream::start("live").await;
    let gw = Gateway::start(&config(&[dead, live.addr], "{timeout: 500ms}")).await;
    let mut retries = 0;
    for _ in 0..2 {
        let (r, id) = call(&gw, "echo", json!({"q": "a&b", "X-Note": "hi"})).await;
        assert_eq!(r["isError"], false, "{r}\n{}", gw.log());
        let echo = &r["structuredContent"];
        assert_eq!(
            (echo["path"].clone(), echo["query"].clone()),
            (json!("/echo"), json!("q=a%26b"))
        );
        assert_eq!(echo["headers"]["x-note"], "hi");
        assert_eq!(echo["headers"]["x-request-id"], id.as_str());
        assert_eq!(echo["headers"]["x-forwarded-for"], "127.0.0.1");
        assert_eq!(echo["headers"]["x-forwarded-proto"], "http");
        let line = gw.access_log_line(&id).await;
        assert_eq!(line["target"], live.addr.to_string(), "{line}");
        assert_eq!(line["mcp_tool"], "echo");
        retries += line["retries"].as_u64().unwrap_or(0);
    }
    // Round robin tries the refusing target once; then it is ejected.
    assert_eq!(retries, 1);
    assert_eq!(live.hits(), 2);

    let (r, id) = call(&gw, "slow", json!({"ms": 3000})).await;
    assert_eq!(r["isError"], true, "{r}");
    let text = r["content"][0]["text"].as_str().unwrap_or_default();
    assert!(text.contains("did not answer within 500ms"), "{text}");
    let line = gw.access_log_line(&id).await;
    assert_eq!(
        (line["status"].clone(), line["error"].clone()),
        (json!(200), json!("upstream_timeout"))
    );
}

#[tokio::test]
async fn a_reload_changes_the_tools() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&config(&[up.addr], "{}")).await;
    let names = |v: &Value| -> Vec<String> {
        v["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (v, _) = rpc(&gw, "tools/list", json!({})).await;
    assert_eq!(names(&v), ["echo", "slow"]);
    rewrite_config(&gw, &config(&[up.addr], "{tools: [echo]}"));
    reload_and_wait(&gw, 1).await;
    let (v, _) = rpc(&gw, "tools/list", json!({})).await;
    assert_eq!(names(&v), ["echo"]);
    let (v, _) = rpc(&gw, "tools/call", json!({"name": "slow", "arguments": {"ms": 1}})).await;
    assert_eq!(v["error"]["code"], -32602, "{v}");
    // A reload that names an operation the document lacks is refused; the tools stay.
    rewrite_config(&gw, &config(&[up.addr], "{tools: [nope]}"));
    gw.hup();
    wait_for_reloads(&gw, "error", 1).await;
    let (v, _) = rpc(&gw, "tools/list", json!({})).await;
    assert_eq!(names(&v), ["echo"]);
}

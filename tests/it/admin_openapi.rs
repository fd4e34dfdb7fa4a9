//! The admin API's OpenAPI document over HTTP: served without a token, as
//! JSON; query parameters the document types are refused as problem+json.
//! (tests/admin runs schemathesis against the document.)

use crate::management::{store_gateway, Admin};
use crate::support::*;
use serde_json::{json, Value};

/// The OpenAPI document is served without a token, as JSON, and names the
/// operations the router serves; everything else still needs the token.
#[tokio::test]
async fn the_openapi_document_is_served_without_a_token() {
    let (gw, root, _dir) = store_gateway().await;
    let c = client();
    let r = c
        .get(format!("http://127.0.0.1:{}/admin/v1/openapi.json", gw.admin_port))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/admin/v1/services/{name}"]["put"].is_object());
    let anonymous = Admin::new(&gw, "");
    let (status, v) = anonymous.call("GET", "/services", None).await;
    assert_eq!(status, 401, "{v}");
    let admin = Admin::new(&gw, &root);
    // A path the document names answers; bad query parameters are problem+json.
    admin.expect("GET", "/audit?limit=5", None, 200).await;
    let v = admin.expect("GET", "/audit?after=x", None, 400).await;
    assert_eq!(v["status"], 400, "{v}");
    let v = admin
        .expect("POST", "/config?dry_run=maybe", Some(json!({})), 400)
        .await;
    assert_eq!(v["title"], "Bad Request", "{v}");
}

//! The admin API's OpenAPI 3.1 document, served at
//! `GET /admin/v1/openapi.json` (with `POST /admin/v1/login`, the admin paths
//! that need no token).
//!
//! It is generated from the code by `utoipa` (5.x, default features): every
//! handler carries a `#[utoipa::path(...)]` naming its method, path,
//! parameters, body and the statuses it answers, and [`AdminDoc`] gathers
//! them (the plurals' from [`super::plurals`]). utoipa rather than a
//! hand-written file because the document then moves with the handlers; its
//! `axum_extras` feature is not used: it reads parameters from typed
//! extractors, and the handlers take their kind from the route and their
//! body as bytes (a refusal is problem+json, never axum's plain-text
//! rejection), so each attribute states its parameters itself.
//!
//! The shapes here ([`schemas`]) describe answers that the handlers build as
//! JSON values; `make test` runs schemathesis against this document
//! (tests/admin), which checks every operation's answers against them:
//! statuses, content types and bodies.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use std::borrow::Cow;
use std::sync::LazyLock;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

pub(super) use schemas::*;

/// The document, made once.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    let mut doc = AdminDoc::openapi();
    for plural in super::plurals::documents() {
        doc.merge(plural);
    }
    doc.merge(super::releases::Doc::openapi());
    doc.merge(super::publications::Doc::openapi());
    doc.to_json().unwrap_or_else(|e| {
        log::error!("admin API: the OpenAPI document does not serialise: {e}");
        "{}".into()
    })
});

/// The OpenAPI document (JSON).
pub(crate) fn document() -> &'static str {
    &DOCUMENT
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(
    get,
    path = "/admin/v1/openapi.json",
    tag = "meta",
    security(()),
    responses((status = 200, description = "This document", body = Object, content_type = "application/json"))
)]
pub(super) async fn openapi_json() -> Response {
    let mut resp = document().into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// Every operation but the plurals' (added by [`document`]).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Portico admin API",
        description = "Portico's management plane (store mode): resources by kind and name, applications' \
                       credentials, subscriptions, services' releases and their publication, admin \
                       tokens, the whole config, the audit log, the call log and its analytics. Errors are RFC 7807 problem+json. Send an admin token as `Authorization: Bearer <token>`."
    ),
    paths(
        openapi_json,
        super::resources::list_any,
        super::resources::get_any,
        super::resources::put_any,
        super::resources::patch_any,
        super::resources::delete_any,
        super::actions::add_credential,
        super::actions::revoke_credential,
        super::actions::subscribe,
        super::actions::decide,
        super::tokens::list,
        super::tokens::create,
        super::tokens::revoke,
        super::tokens::me,
        super::sessions::login,
        super::sessions::logout,
        super::config::audit,
        super::config::export,
        super::config::import,
        super::calls::logs,
        super::calls::log,
        super::calls::summary,
        super::calls::timeseries,
        super::calls::top,
        super::calls::usage,
    ),
    components(schemas(
        Problem, FieldError, Page, Item, ResourceBody, AnyBody, CredentialType, DecisionAction,
        crate::serve::admin_api::access::Role
    )),
    modifiers(&Bearer),
    security(("bearer" = [])),
    tags(
        (name = "resources", description = "Any kind by name: /admin/v1/resources/{kind}/{name}"),
        (name = "applications", description = "Applications (consumers with a team) and their credentials"),
        (name = "subscriptions", description = "Applications' subscriptions to services"),
        (name = "tokens", description = "Admin tokens and who the caller is"),
        (name = "config", description = "The whole config and the audit log"),
        (name = "calls", description = "The call log and its analytics"),
    )
)]
pub(super) struct AdminDoc;

/// The `bearer` security scheme: an admin token.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The bootstrap admin token (PORTICO_ADMIN_TOKEN or state_dir/admin-token) \
                         or one made with POST /admin/v1/tokens (pt_<id>.<secret>)",
                    ))
                    .build(),
            ),
        );
    }
}

/// The shapes of the answers, for the document only: the handlers build
/// JSON values, and schemathesis checks those against these.
#[allow(dead_code)] // never built: they describe
pub(super) mod schemas {
    use super::*;
    use utoipa::IntoResponses;

    /// An RFC 7807 problem (`application/problem+json`).
    #[derive(ToSchema)]
    pub(crate) struct Problem {
        /// Always `about:blank`: the status says what kind of problem.
        #[schema(rename = "type")]
        kind: String,
        title: String,
        status: u16,
        detail: String,
        /// 422: each problem of the body or of the config it would make.
        #[schema(required = false, nullable = false)]
        errors: Option<Vec<FieldError>>,
    }

    /// One located problem: where (a config path or a field) and what.
    #[derive(ToSchema)]
    pub(crate) struct FieldError {
        path: String,
        message: String,
    }

    /// A page of a list, in name order.
    #[derive(ToSchema)]
    pub(crate) struct Page {
        items: Vec<Item>,
        /// The `after` of the next page; null on the last.
        next: Option<String>,
    }

    /// A listed resource and its metadata.
    #[derive(ToSchema)]
    pub(crate) struct Item {
        kind: String,
        name: String,
        /// Its version: the `ETag` of a single read, for `If-Match`.
        version: i64,
        /// Unix seconds.
        updated_at: i64,
        body: AnyBody,
    }

    /// A resource of a plural: a JSON object in the shape of its config
    /// section (docs/CONFIG.md), or the management plane's own (teams,
    /// users, subscriptions).
    pub(crate) struct ResourceBody;

    impl PartialSchema for ResourceBody {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .additional_properties(Some(AdditionalProperties::FreeForm(true)))
                .into()
        }
    }

    impl ToSchema for ResourceBody {
        fn name() -> Cow<'static, str> {
            "ResourceBody".into()
        }
    }

    /// A resource of any kind: an object, or for `default_policies` the list.
    pub(crate) struct AnyBody;

    impl PartialSchema for AnyBody {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::Object, Type::Array]))
                .additional_properties(Some(AdditionalProperties::FreeForm(true)))
                .into()
        }
    }

    impl ToSchema for AnyBody {
        fn name() -> Cow<'static, str> {
            "AnyBody".into()
        }
    }

    /// A new credential, shown once.
    #[derive(ToSchema)]
    pub(crate) struct CredentialMade {
        application: String,
        /// `basic` for a Basic login.
        id: String,
        #[schema(rename = "type")]
        kind: String,
        expires_at: Option<String>,
        /// api_key: the key (only its SHA-256 is stored).
        #[schema(required = false, nullable = false)]
        key: Option<String>,
        /// basic: the password made here, when none was given.
        #[schema(required = false, nullable = false)]
        password: Option<String>,
        #[schema(required = false, nullable = false)]
        note: Option<String>,
    }

    /// A credential's type.
    #[derive(ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub(crate) enum CredentialType {
        /// A key made here and shown once.
        ApiKey,
        /// A Basic login.
        Basic,
        /// A JWT subject.
        Jwt,
    }

    /// What a decision does to a subscription.
    #[derive(ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub(crate) enum DecisionAction {
        /// pending or rejected -> approved.
        Approve,
        /// pending or approved -> rejected.
        Reject,
        /// pending or approved -> cancelled.
        Cancel,
    }

    /// A subscription: who asked for what, and who decided.
    #[derive(ToSchema)]
    pub(crate) struct Subscription {
        application: String,
        service: String,
        /// pending, approved, rejected or cancelled.
        status: String,
        #[schema(required = false, nullable = false)]
        requested_by: Option<String>,
        /// RFC 3339.
        #[schema(required = false, nullable = false)]
        requested_at: Option<String>,
        #[schema(required = false, nullable = false)]
        reason: Option<String>,
        /// `auto` for a service with `subscription: auto`.
        #[schema(required = false, nullable = false)]
        decided_by: Option<String>,
        #[schema(required = false, nullable = false)]
        decided_at: Option<String>,
        #[schema(required = false, nullable = false)]
        decision_reason: Option<String>,
    }

    /// A new admin token, shown once, and what it may do.
    #[derive(ToSchema)]
    pub(crate) struct TokenMade {
        id: String,
        /// `pt_<id>.<secret>`: only the secret's SHA-256 is stored.
        token: String,
        note: String,
        role: Option<String>,
        team: Option<String>,
        user: Option<String>,
        /// Unix seconds.
        expires_at: Option<u64>,
        description: String,
        created_by: String,
        /// Unix seconds.
        created_at: u64,
    }

    /// A login session's token, shown once.
    #[derive(ToSchema)]
    pub(crate) struct LoggedIn {
        /// `pt_<id>.<secret>`, carrying the user's roles.
        token: String,
        user: String,
        /// Unix seconds.
        expires_at: u64,
    }

    /// A role a team gives.
    #[derive(ToSchema)]
    pub(crate) struct TeamRole {
        team: String,
        role: String,
    }

    /// Who the caller is.
    #[derive(ToSchema)]
    pub(crate) struct Me {
        name: String,
        /// Its system role, if any.
        role: Option<String>,
        teams: Vec<TeamRole>,
    }

    /// One write of the audit log.
    #[derive(ToSchema)]
    pub(crate) struct AuditEntry {
        id: i64,
        /// Unix seconds.
        at: i64,
        actor: String,
        /// put or delete.
        action: String,
        kind: String,
        name: String,
        before: Option<AnyBody>,
        after: Option<AnyBody>,
    }

    /// A page of the audit log, oldest first.
    #[derive(ToSchema)]
    pub(crate) struct AuditPage {
        items: Vec<AuditEntry>,
        /// The `after` of the next page; null on the last.
        next: Option<i64>,
    }

    /// A resource an import adds, changes or removes.
    #[derive(ToSchema)]
    pub(crate) struct Named {
        kind: String,
        name: String,
    }

    /// What an import changes.
    #[derive(ToSchema)]
    pub(crate) struct Changes {
        added: Vec<Named>,
        changed: Vec<Named>,
        removed: Vec<Named>,
    }

    /// What an import did (or, with `dry_run`, would do).
    #[derive(ToSchema)]
    pub(crate) struct Imported {
        dry_run: bool,
        /// The store's revision after the import; absent on a dry run.
        #[schema(required = false, nullable = false)]
        revision: Option<i64>,
        changes: Changes,
    }

    /// A page of a list: `limit` (1 to 1,000), `after` (the `next` of the
    /// previous page), and any other parameter a filter on a top-level
    /// field of the body (`?team=shop&status=pending`).
    #[derive(utoipa::IntoParams)]
    #[into_params(parameter_in = Query)]
    pub(crate) struct PageParams {
        /// How many at most (default 100).
        #[param(minimum = 1, maximum = 1000)]
        limit: Option<i64>,
        /// The `next` of the previous page.
        after: Option<String>,
        /// Filters: `field=value` on top-level fields of the body.
        #[param(style = Form, explode)]
        filters: Option<std::collections::BTreeMap<String, String>>,
    }

    /// `If-Match`: the version (`ETag`) the writer read; `*` any existing
    /// one; `"0"` only if there is none yet.
    #[derive(utoipa::IntoParams)]
    #[into_params(names("If-Match"), parameter_in = Header)]
    pub(crate) struct IfMatch(Option<String>);

    /// The body is not JSON (or YAML), a parameter is out of range, or
    /// `If-Match` is not an ETag this API gave.
    #[derive(IntoResponses)]
    #[response(status = 400, content_type = "application/problem+json")]
    pub(crate) struct BadRequest(Problem);

    /// No valid bearer token.
    #[derive(IntoResponses)]
    #[response(
        status = 401,
        content_type = "application/problem+json",
        headers(("WWW-Authenticate" = String, description = "Bearer realm=\"portico-admin\""))
    )]
    pub(crate) struct Unauthorized(Problem);

    /// The caller's roles do not allow it.
    #[derive(IntoResponses)]
    #[response(status = 403, content_type = "application/problem+json")]
    pub(crate) struct Forbidden(Problem);

    /// No such resource (or kind), or one the caller may not read.
    #[derive(IntoResponses)]
    #[response(status = 404, content_type = "application/problem+json")]
    pub(crate) struct NotFound(Problem);

    /// Admin tokens are made and revoked only at /admin/v1/tokens.
    #[derive(IntoResponses)]
    #[response(status = 405, content_type = "application/problem+json")]
    pub(crate) struct MethodNotAllowed(Problem);

    /// The state does not allow it (a subscription already approved, a
    /// token id taken), or the store kept changing: retry.
    #[derive(IntoResponses)]
    #[response(status = 409, content_type = "application/problem+json")]
    pub(crate) struct Conflict(Problem);

    /// `If-Match` names a version that is not the current one.
    #[derive(IntoResponses)]
    #[response(status = 412, content_type = "application/problem+json")]
    pub(crate) struct PreconditionFailed(Problem);

    /// The body is not valid, or the config it would make does not compile:
    /// `errors` locates each problem; nothing was written.
    #[derive(IntoResponses)]
    #[response(status = 422, content_type = "application/problem+json")]
    pub(crate) struct Unprocessable(Problem);

    /// The store cannot be reached.
    #[derive(IntoResponses)]
    #[response(status = 503, content_type = "application/problem+json")]
    pub(crate) struct Unavailable(Problem);
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use std::collections::BTreeSet;

    #[test]
    fn every_operation_is_documented_once_with_its_refusals() {
        let doc: Value = serde_json::from_str(super::document()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut ids = BTreeSet::new();
        let mut operations = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                operations += 1;
                let id = op["operationId"].as_str().unwrap();
                assert!(ids.insert(id.to_string()), "operationId {id} twice");
                let responses = op["responses"].as_object().unwrap();
                if path == "/admin/v1/openapi.json" || path == "/admin/v1/login" {
                    assert_eq!(op["security"], serde_json::json!([{}]), "{path} needs no token");
                } else {
                    assert!(responses.contains_key("401"), "{method} {path} answers 401");
                    assert!(responses.contains_key("503"), "{method} {path} answers 503");
                }
                if matches!(method.as_str(), "put" | "patch" | "delete") && !path.contains("credentials") {
                    let params = op["parameters"].as_array().unwrap();
                    let if_match = params.iter().any(|p| p["name"] == "If-Match");
                    assert_eq!(
                        if_match,
                        !path.starts_with("/admin/v1/tokens"),
                        "{method} {path}: If-Match"
                    );
                }
            }
        }
        // 7 plurals x 5, resources by kind 5, credentials 2, subscriptions 2,
        // tokens 4, login and logout, config and audit 3, the document itself,
        // the call log 2 and its analytics 4, releases 4 and publications 4.
        assert_eq!(operations, 7 * 5 + 5 + 2 + 2 + 4 + 2 + 3 + 1 + 2 + 4 + 4 + 4);
        assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    }
}

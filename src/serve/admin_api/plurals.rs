//! Each kind's plural under `/admin/v1/` (`/admin/v1/services[/{name}]`,
//! ...): the operations of [`super::resources`] for one kind. The `plural!`
//! macro makes a module per plural with a named handler per operation, so
//! each carries its own `#[utoipa::path]` (its path, tag and operation id)
//! for the OpenAPI document ([`super::openapi`]).

use super::openapi::{
    BadRequest, Conflict, Forbidden, IfMatch, NotFound, Page, PageParams, PreconditionFailed, ResourceBody,
    Unauthorized, Unavailable, Unprocessable,
};
use super::resources::{authed_list, authed_one, delete_one, patch_json, put_json, Bytes, Filters};
use super::Shared;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

/// A module `$plural` for the kind `$kind` at `$list` and `$one`
/// (`$one` is `$list/{name}`); `$name` and `$body` are the document's
/// examples (the names are those of tests/admin's seed).
macro_rules! plural {
    ($plural:ident, $kind:tt, $list:tt, $one:tt, $name:tt, $body:tt) => {
        pub(super) mod $plural {
            use super::*;

            #[doc = concat!("A page of ", stringify!($plural), ".")]
            #[utoipa::path(
                get,
                path = $list,
                tag = stringify!($plural),
                operation_id = concat!("list_", stringify!($plural)),
                params(PageParams),
                responses(
                    (status = 200, description = "A page, in name order", body = Page),
                    BadRequest, Unauthorized, Unavailable
                )
            )]
            pub(in super::super) async fn list(State(s): State<Shared>, h: HeaderMap, Query(q): Filters) -> Response {
                authed_list(s, h, $kind, q).await
            }

            #[doc = concat!("One ", $kind, ", with its version as `ETag`.")]
            #[utoipa::path(
                get,
                path = $one,
                tag = stringify!($plural),
                operation_id = concat!("get_", $kind),
                params(("name" = String, Path, example = $name)),
                responses(
                    (status = 200, description = "The resource", body = ResourceBody,
                     headers(("ETag" = String, description = "Its version, for If-Match"))),
                    Unauthorized, NotFound, Unavailable
                )
            )]
            pub(in super::super) async fn get_one(
                State(s): State<Shared>,
                h: HeaderMap,
                Path(n): Path<String>,
            ) -> Response {
                authed_one(s, h, $kind, &n).await
            }

            #[doc = concat!("Creates or replaces a ", $kind, ".")]
            #[utoipa::path(
                put,
                path = $one,
                tag = stringify!($plural),
                operation_id = concat!("put_", $kind),
                params(("name" = String, Path, example = $name), IfMatch),
                request_body(content = ResourceBody, description = "The resource's body", example = json!($body)),
                responses(
                    (status = 200, description = "Written and in effect", body = ResourceBody,
                     headers(("ETag" = String, description = "Its version"))),
                    BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unprocessable,
                    Unavailable
                )
            )]
            pub(in super::super) async fn put(
                State(s): State<Shared>,
                h: HeaderMap,
                Path(n): Path<String>,
                b: Bytes,
            ) -> Response {
                put_json(s, h, $kind, &n, &b).await
            }

            #[doc = concat!("Changes a ", $kind, " by a JSON merge patch (RFC 7396).")]
            #[utoipa::path(
                patch,
                path = $one,
                tag = stringify!($plural),
                operation_id = concat!("patch_", $kind),
                params(("name" = String, Path, example = $name), IfMatch),
                request_body(content = ResourceBody, description = "A JSON merge patch: null removes a field"),
                responses(
                    (status = 200, description = "Written and in effect", body = ResourceBody,
                     headers(("ETag" = String, description = "Its version"))),
                    BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unprocessable,
                    Unavailable
                )
            )]
            pub(in super::super) async fn patch(
                State(s): State<Shared>,
                h: HeaderMap,
                Path(n): Path<String>,
                b: Bytes,
            ) -> Response {
                patch_json(s, h, $kind, &n, &b).await
            }

            #[doc = concat!("Deletes a ", $kind, ".")]
            #[utoipa::path(
                delete,
                path = $one,
                tag = stringify!($plural),
                operation_id = concat!("delete_", $kind),
                params(("name" = String, Path, example = $name), IfMatch),
                responses(
                    (status = 204, description = "Deleted, and in effect"),
                    BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unprocessable,
                    Unavailable
                )
            )]
            pub(in super::super) async fn delete(
                State(s): State<Shared>,
                h: HeaderMap,
                Path(n): Path<String>,
            ) -> Response {
                delete_one(s, h, $kind, &n).await
            }

            /// The plural's routes.
            pub(in super::super) fn routes(r: Router<Shared>) -> Router<Shared> {
                r.route($list, get(list))
                    .route($one, get(get_one).put(put).patch(patch).delete(delete))
            }

            /// The plural's operations, for the OpenAPI document.
            #[derive(utoipa::OpenApi)]
            #[openapi(paths(list, get_one, put, patch, delete))]
            pub(in super::super) struct Doc;
        }
    };
}

plural!(services, "service", "/admin/v1/services", "/admin/v1/services/{name}", "payments",
    {"team": "payments", "subscription": "manual"});
plural!(applications, "consumer", "/admin/v1/applications", "/admin/v1/applications/{name}", "shop-app",
    {"team": "shop"});
plural!(subscriptions, "subscription", "/admin/v1/subscriptions", "/admin/v1/subscriptions/{name}",
    "shop-app:payments", {"status": "pending"});
plural!(teams, "team", "/admin/v1/teams", "/admin/v1/teams/{name}", "shop",
    {"description": "the shop", "members": [{"user": "ann", "role": "developer"}]});
plural!(users, "user", "/admin/v1/users", "/admin/v1/users/{name}", "ann",
    {"display_name": "Ann", "email": "ann@example.com"});
plural!(routes, "route", "/admin/v1/routes", "/admin/v1/routes/{name}", "pay",
    {"service": "payments", "paths": ["/pay"], "upstream": "backend", "policies": [{"key_auth": {}}]});
plural!(upstreams, "upstream", "/admin/v1/upstreams", "/admin/v1/upstreams/{name}", "backend",
    {"targets": [{"address": "127.0.0.1:9"}]});

/// Every plural's routes.
pub(super) fn routes(r: Router<Shared>) -> Router<Shared> {
    [
        services::routes,
        applications::routes,
        subscriptions::routes,
        teams::routes,
        users::routes,
        routes::routes,
        upstreams::routes,
    ]
    .into_iter()
    .fold(r, |r, add| add(r))
}

/// Every plural's part of the OpenAPI document.
pub(super) fn documents() -> Vec<utoipa::openapi::OpenApi> {
    use utoipa::OpenApi;
    vec![
        services::Doc::openapi(),
        applications::Doc::openapi(),
        subscriptions::Doc::openapi(),
        teams::Doc::openapi(),
        users::Doc::openapi(),
        routes::Doc::openapi(),
        upstreams::Doc::openapi(),
    ]
}

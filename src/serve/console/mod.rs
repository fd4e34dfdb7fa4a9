//! The web console (`/console`) and the developer portal (`/portal`) on the
//! admin listener, in store mode: server-rendered pages with no script at
//! all, so the Content-Security-Policy forbids every script and a page
//! works in any browser without a build step.
//!
//! Every page is a view over the admin API: a handler calls the API
//! in-process ([`api::Api`]) with the signed-in person's own token, so a
//! page can show and do exactly what that person's token could through the
//! API (the same permission table, the same audit log, the same compile
//! check on every write), and nothing a page does is impossible from the
//! API.
//!
//! - who is signed in, the cookie, CSRF and the login rate limit:
//!   [`session`]; signing in through an OpenID Connect provider: [`oidc`];
//! - templates and the response headers every page carries: [`render`]
//!   (`minijinja`, a maintained Jinja engine that escapes HTML by default,
//!   with the templates embedded in the binary); charts drawn as SVG on the
//!   server: [`chart`];
//! - the pages: [`dashboard`], [`services`] (with [`releases`] and the
//!   OpenAPI [`import`]), [`applications`],
//!   [`subscriptions`], [`logs`], [`people`] (teams, users, tokens, audit,
//!   settings), [`ai`], [`portal`].

mod ai;
mod api;
mod applications;
mod chart;
mod dashboard;
mod forms;
mod import;
mod logs;
mod oidc;
mod people;
mod portal;
mod releases;
mod render;
mod services;
mod session;
mod subscriptions;

use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

pub(crate) use oidc::Oidc;
pub(crate) use session::Conn;

/// What the console's handlers share.
pub(crate) struct Console {
    api: api::Api,
    pages: render::Pages,
    logins: session::LoginLimit,
    /// The admin API's state: signing in through a provider writes the
    /// user through it.
    admin: crate::serve::admin_api::Shared,
    /// Sign-in through an OpenID Connect provider, when set up.
    oidc: Option<Oidc>,
    /// The gateway's client listener, for the portal's samples and "try it"
    /// (`http://127.0.0.1:8080`).
    gateway: String,
}

type Shared = Arc<Console>;

/// The console's and the portal's routes, over `api` (the admin API's
/// router and its state). `gateway` is the client listener's base URL.
pub(crate) fn routes(
    api: Router,
    admin: crate::serve::admin_api::Shared,
    gateway: String,
    oidc: Option<Oidc>,
) -> Router {
    let console = Arc::new(Console {
        api: api::Api::new(api),
        pages: render::Pages::new(),
        logins: session::LoginLimit::new(),
        admin,
        oidc,
        gateway,
    });
    Router::new()
        .route("/console", get(dashboard::page))
        .route("/console/", get(dashboard::page))
        .route("/console/assets/console.css", get(render::stylesheet))
        .route("/console/login", get(session::login_page).post(session::login))
        .route("/console/logout", post(session::logout))
        .route("/console/oidc/start", get(oidc::start))
        .route("/console/oidc/callback", get(oidc::callback))
        .route("/console/services", get(services::list).post(services::create))
        .route("/console/services/{name}", get(services::show))
        .route("/console/services/{name}/edit", post(services::edit))
        .route("/console/services/{name}/import", post(import::import))
        .route("/console/services/{name}/releases", post(releases::create))
        .route("/console/services/{name}/releases/{release}", get(releases::show))
        .route(
            "/console/services/{name}/releases/{release}/publish",
            post(releases::publish),
        )
        .route(
            "/console/services/{name}/publications/{id}/{action}",
            post(releases::decide),
        )
        .route(
            "/console/applications",
            get(applications::list).post(applications::create),
        )
        .route("/console/applications/{name}", get(applications::show))
        .route("/console/applications/{name}/credentials", post(applications::add_key))
        .route(
            "/console/applications/{name}/credentials/{id}/revoke",
            post(applications::revoke_key),
        )
        .route("/console/applications/{name}/subscribe", post(applications::subscribe))
        .route("/console/subscriptions", get(subscriptions::list))
        .route("/console/subscriptions/{name}/{action}", post(subscriptions::decide))
        .route("/console/logs", get(logs::list))
        .route("/console/logs/{id}", get(logs::show))
        .route("/console/audit", get(people::audit))
        .route("/console/teams", get(people::teams).post(people::create_team))
        .route("/console/teams/{name}/members", post(people::add_member))
        .route("/console/users", get(people::users).post(people::create_user))
        .route("/console/settings", get(people::settings))
        .route("/console/ai", get(ai::page))
        .route("/portal", get(portal::catalogue))
        .route("/portal/", get(portal::catalogue))
        .route("/portal/services/{name}", get(portal::service))
        .route("/portal/services/{name}/subscribe", post(portal::subscribe))
        .route("/portal/services/{name}/try", post(portal::try_it))
        .fallback(render::not_found)
        .with_state(console)
}

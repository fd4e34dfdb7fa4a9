//! Pages from templates, and the headers every console response carries.
//!
//! The templates (`templates/*.html`) and the stylesheet are embedded in the
//! binary. `minijinja` escapes every value written into an `.html` template,
//! so a service named `<script>alert(1)</script>` is shown as text; the
//! Content-Security-Policy allows no script at all, styles only from the
//! console itself, and no framing.

use super::Shared;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::Environment;
use serde_json::Value;

/// The console's policy: no script, no inline style, no framing, forms
/// only to the console.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

const STYLESHEET: &str = include_str!("assets/console.css");

/// The templates, by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("error.html", include_str!("templates/error.html")),
    ("dashboard.html", include_str!("templates/dashboard.html")),
    ("services.html", include_str!("templates/services.html")),
    ("service.html", include_str!("templates/service.html")),
    ("release.html", include_str!("templates/release.html")),
    ("applications.html", include_str!("templates/applications.html")),
    ("application.html", include_str!("templates/application.html")),
    ("subscriptions.html", include_str!("templates/subscriptions.html")),
    ("logs.html", include_str!("templates/logs.html")),
    ("log.html", include_str!("templates/log.html")),
    ("audit.html", include_str!("templates/audit.html")),
    ("teams.html", include_str!("templates/teams.html")),
    ("users.html", include_str!("templates/users.html")),
    ("settings.html", include_str!("templates/settings.html")),
    ("ai.html", include_str!("templates/ai.html")),
    ("portal.html", include_str!("templates/portal.html")),
    ("portal_service.html", include_str!("templates/portal_service.html")),
];

/// A page, named for its template.
#[derive(Debug, Clone, Copy)]
pub(super) enum Page {
    Login,
    Error,
    Dashboard,
    Services,
    Service,
    Release,
    Applications,
    Application,
    Subscriptions,
    Logs,
    Log,
    Audit,
    Teams,
    Users,
    Settings,
    Ai,
    Portal,
    PortalService,
}

impl Page {
    fn template(self) -> &'static str {
        match self {
            Page::Login => "login.html",
            Page::Error => "error.html",
            Page::Dashboard => "dashboard.html",
            Page::Services => "services.html",
            Page::Service => "service.html",
            Page::Release => "release.html",
            Page::Applications => "applications.html",
            Page::Application => "application.html",
            Page::Subscriptions => "subscriptions.html",
            Page::Logs => "logs.html",
            Page::Log => "log.html",
            Page::Audit => "audit.html",
            Page::Teams => "teams.html",
            Page::Users => "users.html",
            Page::Settings => "settings.html",
            Page::Ai => "ai.html",
            Page::Portal => "portal.html",
            Page::PortalService => "portal_service.html",
        }
    }
}

/// The compiled templates.
pub(super) struct Pages(Environment<'static>);

impl Pages {
    pub(super) fn new() -> Pages {
        let mut env = Environment::new();
        // A field an API answer leaves out reads as empty, also through
        // `a.b.c`: the API omits defaults.
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        for (name, source) in TEMPLATES {
            if let Err(e) = env.add_template(name, source) {
                log::error!("console: template {name}: {e}");
            }
        }
        env.add_filter("pretty", |v: minijinja::Value| {
            serde_json::to_value(&v)
                .ok()
                .and_then(|j| serde_json::to_string_pretty(&j).ok())
                .unwrap_or_default()
        });
        env.add_filter("yaml", |v: minijinja::Value| {
            serde_json::to_value(&v)
                .ok()
                .and_then(|j| serde_yaml::to_string(&j).ok())
                .unwrap_or_default()
        });
        Pages(env)
    }

    /// The page's HTML, or the template's error.
    fn html(&self, page: Page, ctx: &Value) -> Result<String, minijinja::Error> {
        self.0.get_template(page.template())?.render(ctx)
    }
}

fn secure_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// `page` rendered with `ctx`, answered with `status`.
pub(super) fn page(c: &Shared, status: StatusCode, page: Page, ctx: Value) -> Response {
    let mut resp = match c.pages.html(page, &ctx) {
        Ok(html) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            html,
        )
            .into_response(),
        Err(e) => {
            log::error!("console: rendering {}: {e:#}", page.template());
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be drawn").into_response()
        }
    };
    secure_headers(&mut resp);
    resp
}

/// A 200 page.
pub(super) fn ok(c: &Shared, p: Page, ctx: Value) -> Response {
    page(c, StatusCode::OK, p, ctx)
}

/// A 303 to `to` (after a form, the browser GETs the page).
pub(super) fn redirect(to: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    secure_headers(&mut resp);
    resp
}

/// The stylesheet.
pub(super) async fn stylesheet() -> Response {
    let mut resp = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        )],
        STYLESHEET,
    )
        .into_response();
    secure_headers(&mut resp);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
    resp
}

/// Any other console or portal path.
pub(super) async fn not_found(axum::extract::State(c): axum::extract::State<Shared>) -> Response {
    let ctx = serde_json::json!({"title": "Not found", "message": "There is no such page.", "me": Value::Null});
    page(&c, StatusCode::NOT_FOUND, Page::Error, ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles_and_escapes() {
        let pages = Pages::new();
        for (name, _) in TEMPLATES {
            assert!(pages.0.get_template(name).is_ok(), "{name}");
        }
        let ctx = serde_json::json!({"title": "<script>alert(1)</script>", "message": "<b>x</b>", "me": null});
        let html = pages.html(Page::Error, &ctx).unwrap();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;"), "{html}");
        assert!(!html.contains("<b>x</b>"));
    }
}

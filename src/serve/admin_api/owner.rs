//! Which area of the permission table ([`super::access`]) a stored resource
//! is in, and which team owns it: a service and the routes naming it belong
//! to the service's team; a consumer with a team is that team's
//! application; a subscription belongs to both the application's team and
//! the service's; a service's releases and publications are the service's;
//! an upstream with a team belongs to that team's services;
//! everything else is the gateway's config.

use super::access::{Area, Op, Principal};
use crate::store::Resource;
use serde_json::Value;

fn field<'a>(body: &'a Value, key: &str) -> &'a str {
    body.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn team_of(body: &Value) -> Option<String> {
    body.get("team").and_then(Value::as_str).map(str::to_string)
}

/// The team of the stored resource `kind`/`name`.
fn stored_team(all: &[Resource], kind: &str, name: &str) -> Option<String> {
    all.iter()
        .find(|r| r.kind == kind && r.name == name)
        .and_then(|r| team_of(&r.body))
}

/// The teams on either side of a subscription: (application's, service's).
pub(crate) fn subscription_teams(body: &Value, all: &[Resource]) -> (Option<String>, Option<String>) {
    (
        stored_team(all, "consumer", field(body, "application")),
        stored_team(all, "service", field(body, "service")),
    )
}

/// The area and owning team of a resource of `kind` with `body`.
pub(crate) fn owner(kind: &str, name: &str, body: &Value, all: &[Resource]) -> (Area, Option<String>) {
    match kind {
        "service" => (Area::Service, team_of(body)),
        "route" => match body.get("service").and_then(Value::as_str) {
            Some(service) => (Area::Service, stored_team(all, "service", service)),
            None => (Area::Config, None),
        },
        "consumer" => match team_of(body) {
            Some(team) => (Area::Application, Some(team)),
            None => (Area::Config, None),
        },
        "upstream" => match team_of(body) {
            Some(team) => (Area::Service, Some(team)),
            None => (Area::Config, None),
        },
        // Written whole, a subscription can say "approved": the service's side decides.
        "subscription" => (Area::SubscriptionDecision, subscription_teams(body, all).1),
        "release" | "publication" => (Area::Service, stored_team(all, "service", field(body, "service"))),
        "team" => (Area::Team, Some(name.to_string())),
        "user" => (Area::User, None),
        "admin_token" => (Area::AdminToken, None),
        _ => (Area::Config, None),
    }
}

/// Whether `p` may read the resource.
pub(crate) fn may_read(p: &Principal, r: &Resource, all: &[Resource]) -> bool {
    if r.kind == "subscription" {
        let (app, service) = subscription_teams(&r.body, all);
        return p.may(Op::Read, Area::Subscription, app.as_deref())
            || p.may(Op::Read, Area::Subscription, service.as_deref());
    }
    let (area, team) = owner(&r.kind, &r.name, &r.body, all);
    p.may(Op::Read, area, team.as_deref())
}

/// Whether `p` may write `kind`/`name` from `before` to `after` (both sides
/// are checked: moving a service to another team needs both teams).
pub(crate) fn may_write(
    p: &Principal,
    kind: &str,
    name: &str,
    before: Option<&Value>,
    after: Option<&Value>,
    all: &[Resource],
) -> bool {
    [before, after].into_iter().flatten().all(|body| {
        let (area, team) = owner(kind, name, body, all);
        p.may(Op::Write, area, team.as_deref())
    })
}

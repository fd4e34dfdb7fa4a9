//! The `services:` and `subscriptions:` parts of the YAML schema: the
//! management plane's model (APIPark's, simplified). A service is a named set
//! of routes (each route names its `service`) owned by a team, with a
//! subscription mode; a subscription is an application (a consumer) asking
//! to call a service, with who asked, why, who decided and when. Compiled
//! into each route's subscription gate by [`crate::policy::auth::subscription`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Whether calling a service needs a subscription.
#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionMode {
    /// Anyone the route's policies let through.
    #[default]
    None,
    /// An application needs a subscription; asking approves it.
    Auto,
    /// An application needs a subscription a team member approved.
    Manual,
}

/// How a service's routes reach the data plane.
#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Publishing {
    /// Served as written.
    #[default]
    Direct,
    /// Store mode only: the published release is served; the routes and
    /// upstreams in the store are the service's working copy
    /// ([`crate::store::release`]).
    Releases,
}

/// A service: routes with one owner, one description and one subscription rule.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub name: String,
    /// The team that owns it (the admin API's permissions follow it).
    pub team: Option<String>,
    #[serde(default)]
    pub description: String,
    /// Whether callers need a subscription: `none`, `auto` or `manual`.
    #[serde(default)]
    pub subscription: SubscriptionMode,
    /// The service's OpenAPI document, shown in the developer portal.
    pub openapi: Option<serde_yaml::Value>,
    /// Free-form labels.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Call-log sampling and capture for the service's routes.
    pub call_log: Option<super::CallPolicyConfig>,
    /// `direct` (the default) or `releases`.
    #[serde(default)]
    pub publishing: Publishing,
    /// The release served (`publishing: releases`); set by publishing one.
    pub release: Option<String>,
    /// A publish waits for a service admin to accept it.
    #[serde(default)]
    pub publish_approval: bool,
    /// Deprecation, then 410 Gone, for every route of the service that has
    /// no `retire` of its own.
    pub(crate) retire: Option<super::RetireConfig>,
}

/// Where a subscription stands.
#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// Asked for, waiting for a decision.
    Pending,
    /// The application may call the service.
    #[default]
    Approved,
    /// Refused by the service's team.
    Rejected,
    /// Ended by either side.
    Cancelled,
}

/// An application's subscription to a service.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionConfig {
    /// The subscribing application: a consumer's name.
    pub application: String,
    /// The service subscribed to.
    pub service: String,
    #[serde(default)]
    pub status: SubscriptionStatus,
    /// Who asked, and why.
    pub requested_by: Option<String>,
    pub reason: Option<String>,
    /// When it was asked for (RFC 3339).
    pub requested_at: Option<String>,
    /// Who approved, rejected or cancelled it, when, and why.
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub decision_reason: Option<String>,
}

impl SubscriptionConfig {
    /// The name a subscription is stored under: `application:service`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.application, self.service)
    }
}

/// Unix seconds of an RFC 3339 time (`2027-01-31T00:00:00Z`).
pub(crate) fn unix_time(text: &str) -> Result<u64, String> {
    humantime::parse_rfc3339_weak(text.trim())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .ok_or_else(|| format!("{text:?} is not an RFC 3339 time like 2027-01-31T00:00:00Z"))
}

/// A name the admin API can put in a URL and a subscription's key.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// Whether a route's chain identifies the caller (the defaults count unless skipped).
fn identifies(route: &super::RouteConfig, defaults: &[super::PolicyConfig]) -> bool {
    use super::PolicyConfig as P;
    let defaults = if route.skip_default_policies { &[][..] } else { defaults };
    defaults.iter().chain(&route.policies).any(|p| {
        matches!(
            p,
            P::KeyAuth(_) | P::BasicAuth(_) | P::Jwt(_) | P::Oauth2Introspection(_)
        )
    })
}

/// Services, the routes' `service`, and subscriptions: names are unique and
/// references resolve.
pub(super) fn validate(cfg: &super::Config, issues: &mut super::Issues) {
    use std::collections::{HashMap, HashSet};
    let mut services: HashMap<&str, &ServiceConfig> = HashMap::new();
    for (i, s) in cfg.services.iter().enumerate() {
        if !plain_name(&s.name) {
            issues.add(
                format!("services[{i}].name"),
                "use 1 to 128 letters, digits, `.`, `-` or `_`",
            );
        }
        if services.contains_key(s.name.as_str()) {
            issues.add(
                format!("services[{i}].name"),
                format!("a second service named {:?}", s.name),
            );
        } else {
            services.insert(s.name.as_str(), s);
        }
    }
    for (i, r) in cfg.routes.iter().enumerate() {
        let Some(name) = &r.service else { continue };
        match services.get(name.as_str()) {
            None => issues.add(format!("routes[{i}].service"), format!("no service named {name:?}")),
            Some(s) if s.subscription != SubscriptionMode::None && !identifies(r, &cfg.default_policies) => issues.add(
                format!("routes[{i}].service"),
                format!(
                    "service {name:?} needs a subscription, so this route needs an auth policy \
                         (key_auth, basic_auth, jwt or oauth2_introspection) to know the application"
                ),
            ),
            Some(_) => {}
        }
    }
    let consumers: HashSet<&str> = cfg.consumers.iter().map(|c| c.name.as_str()).collect();
    let mut seen = HashSet::new();
    for (i, sub) in cfg.subscriptions.iter().enumerate() {
        let p = format!("subscriptions[{i}]");
        if !consumers.contains(sub.application.as_str()) {
            issues.add(
                format!("{p}.application"),
                format!("no consumer (application) named {:?}", sub.application),
            );
        } else if sub.application.contains(':') {
            issues.add(
                format!("{p}.application"),
                "a subscribing application's name has no `:`",
            );
        }
        if !services.contains_key(sub.service.as_str()) {
            issues.add(format!("{p}.service"), format!("no service named {:?}", sub.service));
        }
        if !seen.insert((sub.application.as_str(), sub.service.as_str())) {
            issues.add(
                p.clone(),
                format!("{:?} subscribes to {:?} twice", sub.application, sub.service),
            );
        }
        for (field, value) in [("requested_at", &sub.requested_at), ("decided_at", &sub.decided_at)] {
            if let Some(Err(e)) = value.as_deref().map(unix_time) {
                issues.add(format!("{p}.{field}"), e);
            }
        }
    }
}

/// What only store mode serves: `publishing: releases` and `release` (a
/// file-mode process serves its file as written). Not a rule of the config
/// itself, since `portico import` takes such a file into a store.
pub(crate) fn file_mode_issues(loaded: &super::LoadedConfig) -> Vec<super::ConfigIssue> {
    let mut issues = loaded.issues();
    for (i, s) in loaded.config.services.iter().enumerate() {
        if s.publishing == Publishing::Releases {
            issues.add(
                format!("services[{i}].publishing"),
                "releases need store mode (server.store): a file is served as written",
            );
        }
        if s.release.is_some() {
            issues.add(
                format!("services[{i}].release"),
                "releases need store mode (server.store): a release is set by publishing it",
            );
        }
    }
    issues.finish().err().map(|e| e.issues).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_or_say_why() {
        assert_eq!(unix_time("1970-01-02T00:00:00Z"), Ok(86_400));
        assert!(unix_time("tomorrow").unwrap_err().contains("RFC 3339"));
    }
}

//! `server.console`: the web console's sign-in through an OpenID Connect
//! provider (any: its settings come from the issuer's discovery document),
//! and how the provider's groups map to Portico's roles.
//!
//! ```yaml
//! server:
//!   console:
//!     oidc:
//!       issuer: https://login.example.com/realms/acme
//!       client_id: portico
//!       client_secret: {env: PORTICO_OIDC_SECRET}   # none: a public client (PKCE only)
//!       redirect_url: https://portico-admin.example.com/console/oidc/callback
//!       roles:
//!         - {group: platform, role: admin}
//!         - {group: shop-developers, team: shop, role: developer}
//! ```

use serde::Deserialize;

/// `server.console`.
#[derive(Debug, Deserialize, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsoleConfig {
    /// Sign-in through an OpenID Connect provider.
    pub oidc: Option<OidcConfig>,
}

/// An OpenID Connect provider for the console's sign-in: authorization code
/// with PKCE (S256), the ID token checked against the issuer's keys.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct OidcConfig {
    /// The issuer; its `/.well-known/openid-configuration` is read.
    pub issuer: String,
    pub client_id: String,
    /// The client's secret; none for a public client.
    pub client_secret: Option<super::SecretRef>,
    /// The callback registered with the provider: the admin listener's
    /// `/console/oidc/callback`.
    pub redirect_url: String,
    /// Scopes asked for; `openid` is always asked.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The sign-in button's label.
    #[serde(default = "default_label")]
    pub label: String,
    /// The claim naming the user (then `email`, then `sub`).
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// The claim listing the user's groups.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Groups to roles, in order. A user with no mapped group is refused.
    #[serde(default)]
    pub roles: Vec<GroupRole>,
}

/// One group's role: a system role (`admin`, `operator`, `auditor`), or a
/// team role (`team_admin`, `service_admin`, `consumer_admin`,
/// `developer`) in `team`.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct GroupRole {
    pub group: String,
    pub role: String,
    pub team: Option<String>,
}

/// The system roles and the team roles a group may map to.
pub(crate) const SYSTEM_ROLES: &[&str] = &["admin", "operator", "auditor"];
pub(crate) const TEAM_ROLES: &[&str] = &["team_admin", "service_admin", "consumer_admin", "developer"];

fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "profile".into(), "email".into()]
}
fn default_label() -> String {
    "OpenID Connect".into()
}
fn default_username_claim() -> String {
    "preferred_username".into()
}
fn default_groups_claim() -> String {
    "groups".into()
}

impl OidcConfig {
    /// The problems of these settings, as (path under `server.console.oidc`, message).
    pub(crate) fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (field, url) in [("issuer", &self.issuer), ("redirect_url", &self.redirect_url)] {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                out.push((field.to_string(), format!("{url:?} is not an http(s) URL")));
            }
        }
        if self.client_id.trim().is_empty() {
            out.push(("client_id".into(), "must not be empty".into()));
        }
        if !self.redirect_url.ends_with("/console/oidc/callback") {
            out.push(("redirect_url".into(), "must end with /console/oidc/callback".into()));
        }
        for (i, r) in self.roles.iter().enumerate() {
            let at = format!("roles[{i}]");
            match (
                SYSTEM_ROLES.contains(&r.role.as_str()),
                TEAM_ROLES.contains(&r.role.as_str()),
                &r.team,
            ) {
                (true, _, Some(_)) => out.push((at, format!("{} is a system role: remove `team`", r.role))),
                (_, true, None) => out.push((at, format!("{} is a team role: give its `team`", r.role))),
                (false, false, _) => out.push((
                    at,
                    format!(
                        "{:?} is not a role: use {} or {}",
                        r.role,
                        SYSTEM_ROLES.join(", "),
                        TEAM_ROLES.join(", ")
                    ),
                )),
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked() {
        let cfg: OidcConfig = serde_yaml::from_str(
            "issuer: ftp://x\nclient_id: ''\nredirect_url: http://a/cb\nroles:\n  - {group: g, role: admin, team: t}\n  - {group: g, role: developer}\n  - {group: g, role: boss}\n  - {group: g, role: developer, team: shop}\n",
        )
        .unwrap();
        let p: Vec<String> = cfg.problems().into_iter().map(|(a, b)| format!("{a}: {b}")).collect();
        assert_eq!(p.len(), 6, "{p:#?}");
        assert!(p[0].starts_with("issuer:"));
        assert!(p.iter().any(|m| m.starts_with("roles[2]: \"boss\" is not a role")));
        assert_eq!(cfg.scopes, ["openid", "profile", "email"]);
    }
}

//! Sign-in through an identity provider (the console's OpenID Connect
//! sign-in): the provider vouches for a user, and Portico keeps the user
//! and their roles in step with the provider's groups before issuing a
//! login session like `POST /admin/v1/login` does.
//!
//! - the user is written with the system role the groups give (or none);
//!   a local user with a password of the same name is never taken over;
//! - in every team the mapping names, the user's membership is made to
//!   match the groups: added, changed or removed (teams the mapping does
//!   not name are left alone; a team that does not exist is skipped);
//! - every write goes through [`super::write::commit`], audited as the
//!   provider (`oidc:<issuer>`), and only when something changed.

use super::access::Role;
use super::principal::{now, Member, TeamBody, UserBody};
use super::tokens::{issue, Grant};
use super::write::{commit, Make};
use super::{problem, store, store_problem, Shared};
use crate::store::Resource;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

/// How long a session from a provider lasts (as a password login).
const SESSION_SECS: u64 = 12 * 3600;

/// What the provider said about the person, mapped to roles.
#[derive(Debug)]
pub(crate) struct Federated {
    pub user: String,
    pub display_name: String,
    pub email: String,
    /// The system role the groups give.
    pub role: Option<Role>,
    /// The team roles the groups give.
    pub teams: Vec<(String, Role)>,
    /// Every team the mapping names (memberships there follow the groups).
    pub managed_teams: Vec<String>,
    /// Who writes: `oidc:<issuer>`.
    pub actor: String,
}

/// How much a team role may do, to keep the strongest of several.
fn rank(r: Role) -> u8 {
    match r {
        Role::TeamAdmin => 4,
        Role::ServiceAdmin => 3,
        Role::ConsumerAdmin => 2,
        _ => 1,
    }
}

/// The role `f` gives in `team`, if any (the strongest of several).
fn team_role(f: &Federated, team: &str) -> Option<Role> {
    f.teams
        .iter()
        .filter(|(t, _)| t == team)
        .map(|(_, r)| *r)
        .max_by_key(|r| rank(*r))
}

/// `members` with `user` given `role` (or removed when none).
fn members_with(members: &[Member], user: &str, role: Option<Role>) -> Vec<Member> {
    let mut out: Vec<Member> = members.iter().filter(|m| m.user != user).cloned().collect();
    if let Some(role) = role {
        out.push(Member {
            user: user.to_string(),
            role,
        });
    }
    out
}

async fn write(s: &Shared, actor: &str, kind: &str, name: &str, body: Value) -> Result<(), Response> {
    let make =
        move |_: Option<&Resource>, _: &[Resource]| -> Result<Option<Value>, Response> { Ok(Some(body.clone())) };
    let make: &Make = &make;
    commit(s, actor, kind, name, None, make).await.map(|_| ())
}

/// Brings the user and their team memberships in step with `f`, then
/// issues a session token: (the token, when it expires).
pub(crate) async fn sign_in(s: &Shared, f: &Federated) -> Result<(String, u64), Response> {
    let st = store(s).await.map_err(|r| *r)?;
    let all = st.all().await.map_err(|e| store_problem(&e))?;
    let current = all.iter().find(|r| r.kind == "user" && r.name == f.user);
    let current_user = current.and_then(|r| serde_json::from_value::<UserBody>(r.body.clone()).ok());
    if current_user.as_ref().is_some_and(|u| u.password_hash.is_some()) {
        return Err(problem(
            StatusCode::CONFLICT,
            "Conflict",
            &format!(
                "{:?} is a local user with a password: the provider cannot sign in as them",
                f.user
            ),
        ));
    }
    let mut wanted = json!({"display_name": f.display_name, "email": f.email});
    if let Some(role) = f.role {
        wanted["role"] = json!(role);
    }
    let wanted_user: Option<UserBody> = serde_json::from_value(wanted.clone()).ok();
    let same = match (&current_user, &wanted_user) {
        (Some(a), Some(b)) => a.display_name == b.display_name && a.email == b.email && a.role == b.role,
        _ => false,
    };
    if !same {
        write(s, &f.actor, "user", &f.user, wanted).await?;
    }
    for team in &f.managed_teams {
        let Some(r) = all.iter().find(|r| r.kind == "team" && &r.name == team) else {
            log::warn!("console sign-in: the role mapping names team {team:?}, which does not exist");
            continue;
        };
        let Ok(body) = serde_json::from_value::<TeamBody>(r.body.clone()) else {
            continue;
        };
        let members = members_with(&body.members, &f.user, team_role(f, team));
        let unchanged = members.len() == body.members.len()
            && members
                .iter()
                .all(|m| body.members.iter().any(|b| b.user == m.user && b.role == m.role));
        if !unchanged {
            let mut next = r.body.clone();
            next["members"] = serde_json::to_value(&members).unwrap_or(Value::Array(vec![]));
            write(s, &f.actor, "team", team, next).await?;
        }
    }
    let expires_at = now() + SESSION_SECS;
    let grant = Grant {
        role: None,
        team: None,
        user: Some(f.user.clone()),
        expires_at: Some(expires_at),
        description: format!("login session ({})", f.actor),
    };
    let (_, token, _) = issue(s, &f.actor, grant).await?;
    Ok((token, expires_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memberships_follow_the_strongest_mapped_role() {
        let f = Federated {
            user: "dana".into(),
            display_name: String::new(),
            email: String::new(),
            role: None,
            teams: vec![("shop".into(), Role::Developer), ("shop".into(), Role::ServiceAdmin)],
            managed_teams: vec!["shop".into(), "apps".into()],
            actor: "oidc:x".into(),
        };
        assert_eq!(team_role(&f, "shop"), Some(Role::ServiceAdmin));
        assert_eq!(team_role(&f, "apps"), None);
        let before = vec![
            Member {
                user: "dana".into(),
                role: Role::Developer,
            },
            Member {
                user: "bob".into(),
                role: Role::TeamAdmin,
            },
        ];
        let after = members_with(&before, "dana", team_role(&f, "shop"));
        assert_eq!(after.len(), 2);
        assert!(after.iter().any(|m| m.user == "dana" && m.role == Role::ServiceAdmin));
        let removed = members_with(&before, "dana", None);
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].user, "bob");
    }
}

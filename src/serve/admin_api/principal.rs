//! Authentication: the bearer token of a request named as a [`Principal`]
//! with its roles ([`super::token`] has the token formats). A token made
//! for a user carries that user's roles: its system role and the roles its
//! teams give it.

use super::access::{Principal, Role};
use super::token::{secret_matches, split_token};
use super::{problem, store, AdminState};
use crate::store::Store;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};

/// An `admin_token` resource: the secret's digest and what it may do.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoredToken {
    /// SHA-256 of the secret, hex.
    pub digest: String,
    /// The role it holds; a team role needs `team`.
    pub role: Option<Role>,
    pub team: Option<String>,
    /// A user whose roles it carries (instead of `role`).
    pub user: Option<String>,
    /// Unix seconds after which it is refused.
    pub expires_at: Option<u64>,
    #[serde(default)]
    pub description: String,
    pub created_by: String,
    pub created_at: u64,
}

/// A `user` resource.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserBody {
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub email: String,
    /// A system role (admin, operator, auditor), if any.
    pub role: Option<Role>,
    /// An argon2 hash for console login.
    pub password_hash: Option<String>,
}

/// A team member and the role the team gives them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Member {
    pub user: String,
    pub role: Role,
}

/// A `team` resource.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TeamBody {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub members: Vec<Member>,
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn unauthorized(detail: &str) -> Response {
    let mut resp = problem(StatusCode::UNAUTHORIZED, "Unauthorized", detail);
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"portico-admin\""),
    );
    resp
}

/// The roles `user` holds: its system role and its teams' roles.
pub(crate) async fn user_principal(st: &Store, user: &str, name: String) -> Result<Principal, Response> {
    let unavailable = |e: crate::store::StoreError| super::store_problem(&e);
    let Some(u) = st.get("user", user).await.map_err(unavailable)? else {
        return Err(unauthorized(&format!("user {user:?} no longer exists")));
    };
    let body: UserBody = serde_json::from_value(u.body).map_err(|_| unauthorized("the user is unreadable"))?;
    let mut teams = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = st.list("team", after.as_deref(), 1000).await.map_err(unavailable)?;
        for t in &page {
            let Ok(team) = serde_json::from_value::<TeamBody>(t.body.clone()) else {
                continue;
            };
            for m in team.members.iter().filter(|m| m.user == user && m.role.is_team_role()) {
                teams.push((t.name.clone(), m.role));
            }
        }
        if page.len() < 1000 {
            break;
        }
        after = page.last().map(|r| r.name.clone());
    }
    Ok(Principal {
        name,
        system: body.role.filter(|r| !r.is_team_role()),
        teams,
    })
}

/// Who sent the request, or the 401 to answer.
pub(crate) async fn authenticate(s: &AdminState, headers: &HeaderMap) -> Result<Principal, Response> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let hint = "send an admin token as `Authorization: Bearer <token>`";
    let Some(given) = given else {
        return Err(unauthorized(hint));
    };
    if s.token.matches(given) {
        return Ok(Principal {
            name: "admin".into(),
            system: Some(Role::Admin),
            teams: Vec::new(),
        });
    }
    let Some((id, secret)) = split_token(given) else {
        return Err(unauthorized(hint));
    };
    if s.store_url.is_none() {
        return Err(unauthorized(
            "in file mode the admin token in state_dir/admin-token is the only token",
        ));
    }
    let st = store(s).await.map_err(|r| *r)?;
    let stored = st
        .get("admin_token", id)
        .await
        .map_err(|e| super::store_problem(&e))?
        .and_then(|r| serde_json::from_value::<StoredToken>(r.body).ok());
    let Some(t) = stored.filter(|t| secret_matches(secret, &t.digest)) else {
        return Err(unauthorized("the token is not valid"));
    };
    if t.expires_at.is_some_and(|at| now() >= at) {
        return Err(unauthorized("the token has expired"));
    }
    let name = format!("token:{id}");
    match (t.role, t.team, t.user) {
        (_, _, Some(user)) => user_principal(st, &user, format!("{user} ({name})")).await,
        (Some(role), Some(team), None) if role.is_team_role() => Ok(Principal {
            name,
            system: None,
            teams: vec![(team, role)],
        }),
        (Some(role), None, None) if !role.is_team_role() => Ok(Principal {
            name,
            system: Some(role),
            teams: Vec::new(),
        }),
        _ => Err(unauthorized("the token names no valid role")),
    }
}

//! `acl`: allow or deny consumer groups on a route. Runs after an auth step;
//! a request nobody identified is refused with 401, an identified consumer
//! outside the rules with 403.

use crate::config::AclConfig;
use crate::error::GatewayError;
use crate::policy::{PolicyState, Rejection, RequestView, Step};

pub struct Acl {
    allow: Vec<String>,
    deny: Vec<String>,
}

impl Acl {
    pub fn new(c: &AclConfig) -> Result<Acl, String> {
        if c.allow.is_empty() && c.deny.is_empty() {
            return Err("give `allow` or `deny` groups".into());
        }
        Ok(Acl {
            allow: c.allow.clone(),
            deny: c.deny.clone(),
        })
    }

    pub fn check(&self, view: &RequestView, state: &PolicyState) -> Step {
        let Some(id) = &state.identity else {
            return Step::Reject(Rejection::new(
                GatewayError::Unauthorized,
                "this route requires an authenticated consumer",
            ));
        };
        let groups: &[String] = id
            .consumer
            .and_then(|i| view.consumers.get(i))
            .map_or(&[], |c| c.groups.as_slice());
        let denied = groups.iter().any(|g| self.deny.contains(g));
        let allowed = self.allow.is_empty() || groups.iter().any(|g| self.allow.contains(g));
        if denied || !allowed {
            return Step::Reject(Rejection::new(
                GatewayError::Forbidden,
                format!("consumer {:?} may not use this route", id.name),
            ));
        }
        Step::Continue
    }
}

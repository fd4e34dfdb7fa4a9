//! Who may do what through the admin API: the roles and the one permission
//! table. The README's "Roles" table is this table.
//!
//! System roles hold over everything: `admin` (all), `operator` (the
//! gateway's config and every team's services, applications and
//! subscriptions; reads people and teams), `auditor` (reads everything,
//! writes nothing). Team roles hold over one team's things: `team_admin`
//! (the team, its services and applications, both sides of subscriptions),
//! `service_admin` (the team's services and their routes, and deciding
//! subscriptions to them), `consumer_admin` (the team's applications and
//! their credentials, and asking for subscriptions), `developer` (reads the
//! team's services and applications, asks for subscriptions). Every role
//! reads every service (the catalog a developer subscribes from).

use serde::{Deserialize, Serialize};

/// A role, system-wide or within one team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Role {
    Admin,
    Operator,
    Auditor,
    TeamAdmin,
    ServiceAdmin,
    ConsumerAdmin,
    Developer,
}

impl Role {
    /// Whether the role holds over one team rather than everything.
    pub(crate) fn is_team_role(self) -> bool {
        !matches!(self, Role::Admin | Role::Operator | Role::Auditor)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Auditor => "auditor",
            Role::TeamAdmin => "team_admin",
            Role::ServiceAdmin => "service_admin",
            Role::ConsumerAdmin => "consumer_admin",
            Role::Developer => "developer",
        }
    }
}

/// What a request touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Area {
    /// Gateway-wide config: upstreams, routes outside services, consumers
    /// without a team, AI providers and models, default policies.
    Config,
    /// A service, the routes that name it, its releases and publishing them.
    Service,
    /// An application (a consumer with a team) and its credentials.
    Application,
    /// Asking for, or cancelling, an application's subscription.
    SubscriptionRequest,
    /// Approving or rejecting a subscription to a service.
    SubscriptionDecision,
    /// A subscription, read from either side.
    Subscription,
    Team,
    User,
    AdminToken,
    Audit,
    /// The call log and its analytics: the calls to a team's services and
    /// from its applications.
    CallLog,
}

/// Read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Read,
    Write,
}

/// The permission table: whether `role` may `op` in `area`. `own` says
/// whether the thing belongs to the role's team (always false for system
/// roles, which need no team).
pub(crate) fn allows(role: Role, op: Op, area: Area, own: bool) -> bool {
    use Area::*;
    use Role::*;
    let read = op == Op::Read;
    match role {
        Admin => true,
        Operator => match area {
            Config | Service | Application | Subscription | SubscriptionRequest | SubscriptionDecision => true,
            Team | User | Audit | CallLog => read,
            AdminToken => false,
        },
        Auditor => read,
        TeamAdmin => match area {
            Service if read => true,
            Service | Application | Subscription | SubscriptionRequest | SubscriptionDecision | Team => own,
            CallLog => own && read,
            Config | User | AdminToken | Audit => false,
        },
        ServiceAdmin => match area {
            Service if read => true,
            Service | SubscriptionDecision | Subscription => own,
            Team | CallLog => own && read,
            _ => false,
        },
        ConsumerAdmin => match area {
            Service => read,
            Application | SubscriptionRequest | Subscription => own,
            Team | CallLog => own && read,
            _ => false,
        },
        Developer => match area {
            Service => read,
            Application | Team | CallLog => own && read,
            SubscriptionRequest | Subscription => own,
            _ => false,
        },
    }
}

/// Who is calling: a name for the audit, and the roles held.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Principal {
    /// Written as the audit's actor.
    pub name: String,
    /// A system role, if any.
    pub system: Option<Role>,
    /// Team roles: (team, role).
    pub teams: Vec<(String, Role)>,
}

impl Principal {
    /// Whether the principal may `op` in `area` on something owned by
    /// `team` (None: owned by no team).
    pub(crate) fn may(&self, op: Op, area: Area, team: Option<&str>) -> bool {
        if self.system.is_some_and(|r| allows(r, op, area, false)) {
            return true;
        }
        self.teams
            .iter()
            .any(|(t, r)| allows(*r, op, area, team == Some(t.as_str())))
    }

    /// Whether the principal holds a system role that reads everything.
    pub(crate) fn sees_all(&self) -> bool {
        self.system.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole table, one row per role: for each area, what the role may
    /// do on its own team's things and on another team's (`rw`, `r`, `-`).
    #[test]
    fn the_table_is_the_documented_one() {
        use Area::*;
        let areas = [
            Config,
            Service,
            Application,
            Subscription,
            SubscriptionRequest,
            SubscriptionDecision,
            Team,
            User,
            AdminToken,
            Audit,
            CallLog,
        ];
        // (own, other) per area, in the order above.
        let expected: [(Role, [(&str, &str); 11]); 7] = [
            (Role::Admin, [("rw", "rw"); 11]),
            (
                Role::Operator,
                [
                    ("rw", "rw"),
                    ("rw", "rw"),
                    ("rw", "rw"),
                    ("rw", "rw"),
                    ("rw", "rw"),
                    ("rw", "rw"),
                    ("r", "r"),
                    ("r", "r"),
                    ("-", "-"),
                    ("r", "r"),
                    ("r", "r"),
                ],
            ),
            (Role::Auditor, [("r", "r"); 11]),
            (
                Role::TeamAdmin,
                [
                    ("-", "-"),
                    ("rw", "r"),
                    ("rw", "-"),
                    ("rw", "-"),
                    ("rw", "-"),
                    ("rw", "-"),
                    ("rw", "-"),
                    ("-", "-"),
                    ("-", "-"),
                    ("-", "-"),
                    ("r", "-"),
                ],
            ),
            (
                Role::ServiceAdmin,
                [
                    ("-", "-"),
                    ("rw", "r"),
                    ("-", "-"),
                    ("rw", "-"),
                    ("-", "-"),
                    ("rw", "-"),
                    ("r", "-"),
                    ("-", "-"),
                    ("-", "-"),
                    ("-", "-"),
                    ("r", "-"),
                ],
            ),
            (
                Role::ConsumerAdmin,
                [
                    ("-", "-"),
                    ("r", "r"),
                    ("rw", "-"),
                    ("rw", "-"),
                    ("rw", "-"),
                    ("-", "-"),
                    ("r", "-"),
                    ("-", "-"),
                    ("-", "-"),
                    ("-", "-"),
                    ("r", "-"),
                ],
            ),
            (
                Role::Developer,
                [
                    ("-", "-"),
                    ("r", "r"),
                    ("r", "-"),
                    ("rw", "-"),
                    ("rw", "-"),
                    ("-", "-"),
                    ("r", "-"),
                    ("-", "-"),
                    ("-", "-"),
                    ("-", "-"),
                    ("r", "-"),
                ],
            ),
        ];
        let cell = |role, area, own| match (allows(role, Op::Read, area, own), allows(role, Op::Write, area, own)) {
            (true, true) => "rw",
            (true, false) => "r",
            (false, false) => "-",
            (false, true) => "w",
        };
        for (role, row) in expected {
            for (area, (own, other)) in areas.iter().zip(row) {
                assert_eq!(cell(role, *area, true), own, "{role:?} on own {area:?}");
                assert_eq!(cell(role, *area, false), other, "{role:?} on other {area:?}");
            }
        }
    }

    #[test]
    fn a_principal_combines_its_roles() {
        let p = Principal {
            name: "ann".into(),
            system: None,
            teams: vec![("a".into(), Role::Developer), ("b".into(), Role::ServiceAdmin)],
        };
        assert!(p.may(Op::Read, Area::Application, Some("a")));
        assert!(!p.may(Op::Read, Area::Application, Some("b")));
        assert!(p.may(Op::Write, Area::SubscriptionDecision, Some("b")));
        assert!(!p.may(Op::Write, Area::SubscriptionDecision, Some("a")));
        assert!(!p.may(Op::Read, Area::Config, None));
    }
}

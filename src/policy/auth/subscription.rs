//! The subscription gate of a service's routes: once an auth step has named
//! the caller's application, a service with `subscription: auto|manual`
//! lets it through only with an approved subscription. Compiled at load into
//! one map per service from consumer index to status, shared by its routes;
//! a request does one integer lookup.
//! Refusals say why and name both sides: 403 `not_subscribed`, 403
//! `subscription_pending`, 401 when no application was identified.

use crate::config::{ServiceConfig, SubscriptionConfig, SubscriptionMode, SubscriptionStatus};
use crate::error::GatewayError;
use crate::policy::{PolicyState, Rejection, Step};
use std::collections::HashMap;

/// A service's subscription rule and its subscribers.
#[derive(Debug)]
pub struct ServiceGate {
    service: String,
    /// Applications by consumer index, and where their subscription stands.
    subscribers: HashMap<usize, SubscriptionStatus>,
}

impl ServiceGate {
    /// The gate of `service`; None when it needs no subscription. `index`
    /// gives a consumer's index by name (validation has checked that every
    /// subscribing application is one).
    pub fn new(
        service: &ServiceConfig,
        subscriptions: &[SubscriptionConfig],
        index: &HashMap<&str, usize>,
    ) -> Option<ServiceGate> {
        if service.subscription == SubscriptionMode::None {
            return None;
        }
        let subscribers = subscriptions
            .iter()
            .filter(|s| s.service == service.name)
            .filter_map(|s| index.get(s.application.as_str()).map(|i| (*i, s.status)))
            .collect();
        Some(ServiceGate {
            service: service.name.clone(),
            subscribers,
        })
    }

    /// The service's name.
    pub fn service(&self) -> &str {
        &self.service
    }

    pub fn check(&self, state: &PolicyState) -> Step {
        let s = &self.service;
        let Some(id) = &state.identity else {
            return Step::Reject(Rejection::new(
                GatewayError::Unauthorized,
                format!("service {s:?} needs a subscribed application's credential"),
            ));
        };
        let app = &id.name;
        let status = id.consumer.and_then(|i| self.subscribers.get(&i));
        let (error, message) = match status {
            Some(SubscriptionStatus::Approved) => return Step::Continue,
            Some(SubscriptionStatus::Pending) => (
                GatewayError::SubscriptionPending,
                format!("application {app:?}'s subscription to service {s:?} awaits approval"),
            ),
            Some(SubscriptionStatus::Rejected) => (
                GatewayError::NotSubscribed,
                format!("application {app:?}'s subscription to service {s:?} was rejected"),
            ),
            Some(SubscriptionStatus::Cancelled) => (
                GatewayError::NotSubscribed,
                format!("application {app:?}'s subscription to service {s:?} was cancelled"),
            ),
            None => (
                GatewayError::NotSubscribed,
                format!("application {app:?} is not subscribed to service {s:?}"),
            ),
        };
        Step::Reject(Rejection::new(error, message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Identity;

    fn service(mode: SubscriptionMode) -> ServiceConfig {
        ServiceConfig {
            name: "pay".into(),
            team: None,
            description: String::new(),
            subscription: mode,
            openapi: None,
            metadata: Default::default(),
            call_log: None,
            publishing: Default::default(),
            release: None,
            publish_approval: false,
            retire: None,
        }
    }

    fn sub(app: &str, status: SubscriptionStatus) -> SubscriptionConfig {
        SubscriptionConfig {
            application: app.into(),
            service: "pay".into(),
            status,
            requested_by: None,
            reason: None,
            requested_at: None,
            decided_by: None,
            decided_at: None,
            decision_reason: None,
        }
    }

    const APPS: [&str; 5] = ["ok", "wait", "no", "gone", "stranger"];

    fn as_app(name: &str) -> PolicyState {
        PolicyState {
            identity: Some(Identity {
                consumer: APPS.iter().position(|a| *a == name),
                name: name.into(),
                header: None,
                credential: None,
            }),
            ..Default::default()
        }
    }

    fn code(step: Step) -> Option<&'static str> {
        match step {
            Step::Reject(r) => Some(r.error.kind()),
            _ => None,
        }
    }

    #[test]
    fn each_state_has_its_answer() {
        let index: HashMap<&str, usize> = APPS.iter().enumerate().map(|(i, a)| (*a, i)).collect();
        assert!(ServiceGate::new(&service(SubscriptionMode::None), &[], &index).is_none());
        let subs = [
            sub("ok", SubscriptionStatus::Approved),
            sub("wait", SubscriptionStatus::Pending),
            sub("no", SubscriptionStatus::Rejected),
            sub("gone", SubscriptionStatus::Cancelled),
        ];
        let gate = ServiceGate::new(&service(SubscriptionMode::Manual), &subs, &index).unwrap();
        assert_eq!(code(gate.check(&as_app("ok"))), None);
        assert_eq!(code(gate.check(&as_app("wait"))), Some("subscription_pending"));
        for app in ["no", "gone", "stranger"] {
            assert_eq!(code(gate.check(&as_app(app))), Some("not_subscribed"));
        }
        assert_eq!(code(gate.check(&PolicyState::default())), Some("unauthorized"));
        // A token subject that names no consumer is no application.
        let mut subject = as_app("ok");
        if let Some(id) = subject.identity.as_mut() {
            id.consumer = None;
        }
        assert_eq!(code(gate.check(&subject)), Some("not_subscribed"));
    }
}

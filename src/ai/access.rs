//! Which models a caller may use: `ai.access` grants models to a consumer
//! or to a group of consumers, on top of a route's own `ai.models`. A caller
//! no entry names may use every model the route offers; a caller some entry
//! names may use only what its entries (its own and its groups') grant, and
//! gets 403 `model_not_allowed` naming any other model. `/v1/models` lists
//! only what the caller may use.
//!
//! A grant is an alias, a `provider/model`, or `provider/*` (every model of
//! that provider called by `provider/model`). Granting an alias does not
//! grant the models it routes to under their own names. Compiled at load
//! into one set per consumer name; a request looks its caller up once.

use crate::config::ai::AccessConfig;
use crate::config::ConsumerConfig;
use crate::config::Issues;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// What one caller may use.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Grant {
    /// Aliases and `provider/model` names.
    names: BTreeSet<String>,
    /// Providers all of whose models are granted (`provider/*`).
    providers: BTreeSet<String>,
}

impl Grant {
    pub(crate) fn allows(&self, model: &str) -> bool {
        self.names.contains(model)
            || model
                .split_once('/')
                .is_some_and(|(p, m)| !m.is_empty() && self.providers.contains(p))
    }

    fn add(&mut self, name: &str) {
        match name.strip_suffix("/*") {
            Some(provider) => self.providers.insert(provider.to_string()),
            None => self.names.insert(name.to_string()),
        };
    }
}

/// The compiled `ai.access`.
#[derive(Debug, Default)]
pub(crate) struct Access {
    by_consumer: HashMap<String, Arc<Grant>>,
}

impl Access {
    /// `known(name)`: whether a grant names something (an alias, a
    /// `provider/model` or `provider/*` of a configured provider).
    pub(crate) fn build(
        cfgs: &[AccessConfig],
        consumers: &[ConsumerConfig],
        known: &dyn Fn(&str) -> bool,
        issues: &mut Issues,
    ) -> Access {
        let mut by_name: BTreeMap<String, Grant> = BTreeMap::new();
        let mut by_group: BTreeMap<String, Grant> = BTreeMap::new();
        for (i, c) in cfgs.iter().enumerate() {
            let path = format!("ai.access[{i}]");
            let grant = match (&c.consumer, &c.group) {
                (Some(name), None) => by_name.entry(name.clone()).or_default(),
                (None, Some(group)) => by_group.entry(group.clone()).or_default(),
                _ => {
                    issues.add(path, "give either `consumer` or `group`");
                    continue;
                }
            };
            for (j, m) in c.models.iter().enumerate() {
                if !known(m) {
                    issues.add(
                        format!("{path}.models[{j}]"),
                        format!("{m:?} is neither a model alias, `provider/model` nor `provider/*` of a configured provider"),
                    );
                }
                grant.add(m);
            }
        }
        let mut by_consumer: HashMap<String, Grant> = by_name.into_iter().collect();
        for consumer in consumers {
            for g in &consumer.groups {
                if let Some(grant) = by_group.get(g) {
                    let mine = by_consumer.entry(consumer.name.clone()).or_default();
                    mine.names.extend(grant.names.iter().cloned());
                    mine.providers.extend(grant.providers.iter().cloned());
                }
            }
        }
        Access {
            by_consumer: by_consumer.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
        }
    }

    /// What `consumer` may use; None: no entry names it, so every model.
    pub(crate) fn grant(&self, consumer: &str) -> Option<&Grant> {
        self.by_consumer.get(consumer).map(|g| &**g)
    }
}

/// What one request may call: the route's list and the caller's grant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Allowed<'a> {
    /// The route's `ai.models`; empty: all.
    pub route: &'a [String],
    pub caller: Option<&'a Grant>,
}

impl Allowed<'_> {
    /// Every model: a prompt API's, which the operator chose when publishing it.
    pub(crate) const ANY: Allowed<'static> = Allowed {
        route: &[],
        caller: None,
    };

    /// Whether the route offers `model`.
    pub(crate) fn on_route(&self, model: &str) -> bool {
        self.route.is_empty() || self.route.iter().any(|m| m == model)
    }

    /// Whether the caller may use `model`.
    pub(crate) fn for_caller(&self, model: &str) -> bool {
        self.caller.is_none_or(|g| g.allows(model))
    }

    pub(crate) fn allows(&self, model: &str) -> bool {
        self.on_route(model) && self.for_caller(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumer(name: &str, groups: &[&str]) -> ConsumerConfig {
        serde_yaml::from_str(&format!("{{name: {name}, groups: [{}]}}", groups.join(", "))).unwrap()
    }

    #[test]
    fn grants_by_consumer_and_group() {
        let cfgs: Vec<AccessConfig> = serde_yaml::from_str(
            "[{consumer: ann, models: [smart]}, {group: research, models: [claude/*, fast]}, {consumer: sub-1, models: [fast]}]",
        )
        .unwrap();
        let consumers = [
            consumer("ann", &["research"]),
            consumer("bob", &[]),
            consumer("cy", &["research"]),
        ];
        let positions = crate::config::Positions::default();
        let mut issues = Issues::new("t", &positions);
        let access = Access::build(&cfgs, &consumers, &|_| true, &mut issues);
        assert!(issues.finish().is_ok());
        let ann = access.grant("ann").unwrap();
        assert!(ann.allows("smart") && ann.allows("fast") && ann.allows("claude/claude-sonnet-4"));
        assert!(!ann.allows("openai/gpt-4o") && !ann.allows("claude/") && !ann.allows("other"));
        let cy = access.grant("cy").unwrap();
        assert!(!cy.allows("smart") && cy.allows("fast"));
        assert!(access.grant("bob").is_none(), "no entry: every model");
        assert!(
            access.grant("sub-1").unwrap().allows("fast"),
            "a token subject that is no consumer"
        );
    }

    #[test]
    fn unknown_names_and_bad_entries_are_config_errors() {
        let cfgs: Vec<AccessConfig> =
            serde_yaml::from_str("[{consumer: a, group: g, models: []}, {consumer: a, models: [nope]}]").unwrap();
        let positions = crate::config::Positions::default();
        let mut issues = Issues::new("t", &positions);
        Access::build(&cfgs, &[], &|m| m != "nope", &mut issues);
        let err = issues.finish().unwrap_err().to_string();
        assert!(
            err.contains("ai.access[0]") && err.contains("ai.access[1].models[0]"),
            "{err}"
        );
    }
}

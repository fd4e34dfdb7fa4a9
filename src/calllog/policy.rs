//! A route's call-log policy, compiled at load from its `call_log` (or its
//! service's): which calls keep a raw record, and what is captured.
//!
//! Sampling is decided by the request id's hash, so it needs no state and
//! the same request is kept or not whoever asks. Errors, slow calls and AI
//! calls are always kept; the rollups count every call.

use super::capture::Capture;
use crate::config::{CallPolicyConfig, Issues};
use std::sync::Arc;

/// Sampling's resolution: `sample` is kept in 1/65536ths.
const SCALE: u32 = 1 << 16;

/// A route's compiled call-log policy.
#[derive(Debug, Clone)]
pub(crate) struct CallPolicy {
    /// Kept share of the calls that may be sampled out, in 1/65536ths.
    sample: u32,
    pub capture: Option<Arc<Capture>>,
}

impl Default for CallPolicy {
    fn default() -> Self {
        CallPolicy {
            sample: SCALE,
            capture: None,
        }
    }
}

impl CallPolicy {
    /// Compiles `cfg`, reporting problems under `path`.
    pub(crate) fn compile(cfg: Option<&CallPolicyConfig>, path: &str, issues: &mut Issues) -> CallPolicy {
        let Some(cfg) = cfg else {
            return CallPolicy::default();
        };
        let sample = match cfg.sample {
            Some(s) if (0.0..=1.0).contains(&s) => (s * f64::from(SCALE)).round() as u32,
            Some(_) => {
                issues.add(format!("{path}.sample"), "must be between 0 and 1");
                SCALE
            }
            None => SCALE,
        };
        let capture = cfg.capture.as_ref().and_then(|c| match Capture::compile(c) {
            Ok(c) => Some(Arc::new(c)),
            Err(e) => {
                issues.add(format!("{path}.capture"), e);
                None
            }
        });
        CallPolicy { sample, capture }
    }

    /// Whether a call keeps its raw record: always when `always` (an error,
    /// a slow call, an AI call), else by the request id's hash.
    pub(crate) fn keeps(&self, request_id: &str, always: bool) -> bool {
        if always || self.sample >= SCALE {
            return true;
        }
        // FNV-1a: request ids end in random characters, any decent mix will do.
        let mut h: u32 = 0x811c_9dc5;
        for b in request_id.bytes() {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        (h ^ (h >> 16)) % SCALE < self.sample
    }
}

/// What the call log needs of a route, resolved at load: names as shared
/// strings (a record clones a pointer, not the text) and the policy.
#[derive(Debug, Clone, Default)]
pub(crate) struct RouteCall {
    pub name: Arc<str>,
    pub service: Option<Arc<str>>,
    /// The team that owns the service.
    pub service_team: Option<Arc<str>>,
    pub policy: CallPolicy,
}

/// A service's part of its routes' [`RouteCall`], compiled once per service.
#[derive(Debug, Clone)]
pub(crate) struct ServiceCall {
    pub name: Arc<str>,
    pub team: Option<Arc<str>>,
    pub policy: CallPolicy,
}

/// Every service's [`ServiceCall`] by name.
pub(crate) fn services(
    list: &[crate::config::ServiceConfig],
    issues: &mut Issues,
) -> std::collections::HashMap<String, ServiceCall> {
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            let policy = CallPolicy::compile(s.call_log.as_ref(), &format!("services[{i}].call_log"), issues);
            (
                s.name.clone(),
                ServiceCall {
                    name: Arc::from(s.name.as_str()),
                    team: s.team.as_deref().map(Arc::from),
                    policy,
                },
            )
        })
        .collect()
}

impl RouteCall {
    /// A route's: its own `call_log` (compiled under `path`), else its
    /// service's, else the default (keep every call, capture nothing).
    pub(crate) fn new(
        name: &str,
        own: Option<&CallPolicyConfig>,
        path: &str,
        service: Option<&ServiceCall>,
        issues: &mut Issues,
    ) -> RouteCall {
        let policy = match (own, service) {
            (Some(cfg), _) => CallPolicy::compile(Some(cfg), path, issues),
            (None, Some(s)) => s.policy.clone(),
            (None, None) => CallPolicy::default(),
        };
        RouteCall {
            name: Arc::from(name),
            service: service.map(|s| s.name.clone()),
            service_team: service.and_then(|s| s.team.clone()),
            policy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_keeps_about_its_share_and_always_the_rest() {
        let positions = crate::config::Positions::default();
        let mut issues = Issues::new("t", &positions);
        let cfg = CallPolicyConfig {
            sample: Some(0.1),
            capture: None,
        };
        let p = CallPolicy::compile(Some(&cfg), "routes[0].call_log", &mut issues);
        let ids: Vec<String> = (0..20_000).map(|_| ulid::Ulid::new().to_string()).collect();
        let kept = ids.iter().filter(|id| p.keeps(id, false)).count();
        assert!((1_400..=2_600).contains(&kept), "{kept}");
        assert!(ids.iter().all(|id| p.keeps(id, true)));
        let same: Vec<bool> = ids.iter().map(|id| p.keeps(id, false)).collect();
        assert_eq!(same.iter().filter(|k| **k).count(), kept);
    }

    #[test]
    fn a_share_out_of_range_is_a_config_error() {
        let positions = crate::config::Positions::default();
        let mut issues = Issues::new("t", &positions);
        let cfg = CallPolicyConfig {
            sample: Some(1.5),
            capture: None,
        };
        CallPolicy::compile(Some(&cfg), "routes[0].call_log", &mut issues);
        let err = issues.finish().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("routes[0].call_log.sample"), "{err}");
    }
}

//! Prompt APIs as routes: each `prompt_apis` entry becomes a route named
//! `prompt:<name>`, and `GET /apis/openapi.json` describes them all.

use crate::config::{Issues, RouteConfig};
use std::sync::Arc;

/// Prompt APIs as routes (`prompt:<name>`), plus `GET /apis/openapi.json`
/// describing them. The index is the prompt API's, for messages.
pub(super) fn prompt_routes(
    cfg: &crate::config::Config,
    ai: Option<&crate::ai::registry::AiRegistry>,
    issues: &mut Issues,
) -> Vec<(usize, RouteConfig, Option<Arc<crate::ai::prompt::PromptApi>>)> {
    use crate::ai::prompt::PromptApi;
    let mut out = Vec::new();
    let mut apis = Vec::new();
    let route = |name: String, path: String, method: String| RouteConfig {
        name,
        service: None,
        hosts: Vec::new(),
        paths: vec![path],
        methods: vec![method],
        upstream: None,
        response: None,
        ai: None,
        mcp: None,
        strip_prefix: false,
        rewrite: None,
        retries: 0,
        timeouts: Default::default(),
        policies: Vec::new(),
        skip_default_policies: false,
        call_log: None,
        retire: None,
    };
    for (i, c) in cfg.prompt_apis.iter().enumerate() {
        let p = format!("prompt_apis[{i}]");
        let Some(ai) = ai else {
            issues.add(p, "prompt APIs need the top-level `ai:` section (providers and models)");
            continue;
        };
        if cfg.prompt_apis[..i].iter().any(|o| o.name == c.name) {
            issues.add(format!("{p}.name"), format!("duplicate prompt API name {:?}", c.name));
        }
        match PromptApi::compile(c) {
            Ok(api) => {
                if ai.resolve(api.model()).is_none_or(|t| t.is_empty()) {
                    issues.add(format!("{p}.model"), format!("model {:?} does not exist", c.model));
                }
                let mut r = route(format!("prompt:{}", c.name), api.path.clone(), api.method.to_string());
                r.policies = c.policies.clone();
                let api = Arc::new(api);
                apis.push(Arc::clone(&api));
                out.push((i, r, Some(api)));
            }
            Err((field, e)) => issues.add(format!("{p}.{field}"), e),
        }
    }
    if !apis.is_empty() {
        let doc = crate::ai::prompt::openapi(&apis.iter().map(|a| &**a).collect::<Vec<_>>());
        let mut r = route("prompt:openapi".into(), "/apis/openapi.json".into(), "GET".into());
        r.response = Some(crate::config::FixedResponseConfig {
            status: 200,
            body: doc.to_string(),
            content_type: "application/json".into(),
            headers: Default::default(),
        });
        out.push((cfg.prompt_apis.len(), r, None));
    }
    out
}

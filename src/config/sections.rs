//! Every parse error of a file, not only the first. serde stops at the first
//! error it meets; once it has, the file is read again as a YAML tree and
//! each section, and each element of a list or map section, is read on its
//! own, so a bad `routes[0].paths` does not hide a bad `routes[3].retries`
//! or a bad `upstreams.api.targets`. These later errors are located at the
//! element they are in (serde reports no position inside a tree); the
//! element that holds the first error is not read again.

use super::{ConfigIssue, PolicyConfig, Positions, RouteConfig, ServerConfig, UpstreamConfig};
use serde::de::DeserializeOwned;
use serde_yaml::Value;

/// The errors after the first (which is at `first_line`), by element.
pub(super) fn other_errors(text: &str, file: &str, positions: &Positions, first_line: usize) -> Vec<ConfigIssue> {
    let Ok(Value::Mapping(root)) = serde_yaml::from_str::<Value>(text) else {
        return Vec::new();
    };
    let mut elements: Vec<(String, Result<(), String>)> = Vec::new();
    for (key, value) in &root {
        let Some(section) = key.as_str() else { continue };
        match section {
            "server" => elements.push(("server".into(), check::<ServerConfig>(value))),
            "upstreams" => {
                if let Value::Mapping(m) = value {
                    for (name, up) in m {
                        let name = name.as_str().unwrap_or_default();
                        elements.push((format!("upstreams.{name}"), check::<UpstreamConfig>(up)));
                    }
                }
            }
            "routes" => each(value, "routes", &mut elements, check::<RouteConfig>),
            "default_policies" => each(value, "default_policies", &mut elements, check_policy),
            "consumers" => each(value, "consumers", &mut elements, check::<super::ConsumerConfig>),
            "prompt_apis" => each(value, "prompt_apis", &mut elements, check::<super::ai::PromptApiConfig>),
            "ai" => elements.push(("ai".into(), check::<super::ai::AiConfig>(value))),
            "services" => each(value, "services", &mut elements, check::<super::ServiceConfig>),
            "subscriptions" => each(
                value,
                "subscriptions",
                &mut elements,
                check::<super::SubscriptionConfig>,
            ),
            _ => {}
        }
    }
    let starts: Vec<(usize, &str)> = elements
        .iter()
        .filter_map(|(path, _)| positions.find(path).map(|(line, _)| (line, path.as_str())))
        .collect();
    // The element the first error is in: the last one starting at or before it.
    let holder = starts
        .iter()
        .filter(|(line, _)| *line <= first_line)
        .max_by_key(|(line, _)| *line)
        .map(|(_, path)| path.to_string());
    elements
        .into_iter()
        .filter_map(|(path, result)| {
            let message = result.err()?;
            if holder.as_deref() == Some(path.as_str()) {
                return None;
            }
            let (line, col) = positions.find(&path).unwrap_or((1, 1));
            Some(ConfigIssue {
                file: file.to_string(),
                line,
                col,
                path,
                message,
            })
        })
        .collect()
}

/// Each element of a list section.
fn each(
    value: &Value,
    section: &str,
    out: &mut Vec<(String, Result<(), String>)>,
    check: fn(&Value) -> Result<(), String>,
) {
    if let Value::Sequence(items) = value {
        for (i, item) in items.iter().enumerate() {
            out.push((format!("{section}[{i}]"), check(item)));
        }
    }
}

fn check<T: DeserializeOwned>(value: &Value) -> Result<(), String> {
    serde_yaml::from_value::<T>(value.clone())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn check_policy(value: &Value) -> Result<(), String> {
    serde_yaml::with::singleton_map_recursive::deserialize::<PolicyConfig, _>(value.clone())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

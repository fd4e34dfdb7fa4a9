//! What the upstream receives: the path after normalisation, strip_prefix or
//! rewrite, and the forwarding headers.

use crate::router::PathPattern;
use crate::runtime::Route;

/// The path sent upstream for `path` (already normalised) matched by pattern `pattern`.
pub fn upstream_path(route: &Route, pattern: usize, path: &str) -> Option<String> {
    let pat = route.patterns.get(pattern)?;
    if let Some(template) = &route.rewrite {
        let caps = pat.captures(path).unwrap_or_default();
        let mut out = template.clone();
        for (name, value) in caps {
            out = out.replace(&format!("{{{name}}}"), value);
        }
        return Some(out);
    }
    if route.strip_prefix {
        if let PathPattern::Prefix(prefix) = pat {
            let rest = path.strip_prefix(prefix.as_str()).unwrap_or(path);
            return Some(if rest.starts_with('/') {
                rest.to_string()
            } else {
                format!("/{rest}")
            });
        }
    }
    None
}

/// Appends `ip` to an existing X-Forwarded-For value.
pub fn forwarded_for(existing: Option<&[u8]>, ip: &str) -> String {
    match existing.and_then(|v| std::str::from_utf8(v).ok()) {
        Some(prev) if !prev.trim().is_empty() => format!("{prev}, {ip}"),
        _ => ip.to_string(),
    }
}

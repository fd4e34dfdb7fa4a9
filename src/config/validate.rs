//! Cross-field checks that serde cannot express: names are unique, references
//! resolve, numbers are in range. Checks that need to compile something (path
//! patterns, certificates, address resolution) happen in the snapshot compiler
//! and report through the same [`Issues`] collector.

use super::{Config, HashOn, Issues, RouteConfig, UpstreamConfig};
use std::collections::HashSet;
use std::net::SocketAddr;

pub(super) fn validate(cfg: &Config, issues: &mut Issues) {
    if cfg.server.listeners.is_empty() {
        issues.add("server.listeners", "at least one listener is required");
    }
    if cfg.server.threads == 0 {
        issues.add("server.threads", "must be at least 1");
    }
    if let Some(a) = &cfg.server.admin {
        if a.parse::<SocketAddr>().is_err() {
            issues.add(
                "server.admin",
                format!("invalid admin address {a:?}; use ip:port, e.g. 127.0.0.1:9901"),
            );
        }
    }
    if cfg.server.access_log.buffer == 0 {
        issues.add("server.access_log.buffer", "must be at least 1");
    }
    if cfg.server.access_log.path.trim().is_empty() {
        issues.add("server.access_log.path", "use stdout, off, or a file path");
    }
    if let Some(c) = &cfg.server.call_log {
        if c.buffer == 0 {
            issues.add("server.call_log.buffer", "must be at least 1");
        }
        let url_ok = |u: &str| {
            ["sqlite:", "postgres://", "postgresql://"]
                .iter()
                .any(|p| u.starts_with(p))
        };
        if let Some(u) = c.url.as_deref().filter(|u| !url_ok(u)) {
            let scheme = u.split("://").next().unwrap_or(u);
            issues.add(
                "server.call_log.url",
                format!("{scheme:?} is not a database Portico speaks: use sqlite://PATH or postgres://..."),
            );
        }
    }
    if let Some(o) = &cfg.server.console.oidc {
        for (at, message) in o.problems() {
            issues.add(format!("server.console.oidc.{at}"), message);
        }
        if cfg.server.store.is_none() {
            issues.add(
                "server.console.oidc",
                "the console runs in store mode: set server.store",
            );
        }
    }
    let keepalive = cfg.server.keepalive_timeout.0;
    if keepalive.subsec_nanos() != 0 || !(1..=3600).contains(&keepalive.as_secs()) {
        issues.add("server.keepalive_timeout", "must be whole seconds, from 1s to 1h");
    }
    for (name, size) in [
        ("server.client_read_buffer", cfg.server.client_read_buffer.0),
        (
            "server.client_write_buffer",
            cfg.server.client_write_buffer.map_or(0, |s| s.0),
        ),
    ] {
        if size > 1024 * 1024 {
            issues.add(name, "must be at most 1MiB: every client connection holds it");
        }
    }
    for (name, t) in [
        ("server.request_head_timeout", cfg.server.request_head_timeout.0),
        ("server.request_body_timeout", cfg.server.request_body_timeout.0),
    ] {
        if t.is_zero() || t.as_secs() > 3600 {
            issues.add(name, "must be more than 0 and at most 1h");
        }
    }
    let mhs = cfg.server.max_header_size.0;
    if !(1024..=1024 * 1024).contains(&mhs) {
        issues.add("server.max_header_size", "must be between 1KiB and 1MiB");
    }
    let mut seen = HashSet::new();
    for (i, l) in cfg.server.listeners.iter().enumerate() {
        let p = format!("server.listeners[{i}]");
        match l.address.parse::<SocketAddr>() {
            Ok(a) => {
                if !seen.insert(a) {
                    issues.add(format!("{p}.address"), format!("{a} is listed twice"));
                }
            }
            Err(_) => issues.add(
                format!("{p}.address"),
                format!("invalid listen address {:?}; use ip:port, e.g. 0.0.0.0:8080", l.address),
            ),
        }
        if let Some(tls) = &l.tls {
            if tls.certificates.is_empty() {
                issues.add(format!("{p}.tls.certificates"), "at least one certificate is required");
            }
            if l.h2c {
                issues.add(
                    format!("{p}.h2c"),
                    "h2c is for plain listeners; TLS listeners offer h2 by ALPN",
                );
            }
        }
    }
    for (name, up) in &cfg.upstreams {
        validate_upstream(name, up, issues);
    }
    let mut names = HashSet::new();
    for (i, r) in cfg.routes.iter().enumerate() {
        let p = format!("routes[{i}]");
        if r.name.trim().is_empty() {
            issues.add(format!("{p}.name"), "must not be empty");
        } else if !names.insert(r.name.as_str()) {
            issues.add(format!("{p}.name"), format!("duplicate route name {:?}", r.name));
        }
        validate_route(&p, r, cfg, issues);
    }
    super::service::validate(cfg, issues);
    super::retire::validate(cfg, issues);
}

fn validate_upstream(name: &str, up: &UpstreamConfig, issues: &mut Issues) {
    let p = format!("upstreams.{name}");
    if up.targets.is_empty() {
        issues.add(format!("{p}.targets"), "at least one target is required");
    }
    for (i, t) in up.targets.iter().enumerate() {
        if t.weight == 0 || t.weight > 1000 {
            issues.add(format!("{p}.targets[{i}].weight"), "must be between 1 and 1000");
        }
    }
    let needs_key = matches!(up.hash_on, HashOn::Header | HashOn::Cookie);
    if needs_key && up.hash_key.as_deref().is_none_or(|k| k.trim().is_empty()) {
        issues.add(
            format!("{p}.hash_on"),
            "hash_key is required when hash_on is header or cookie",
        );
    }
    if let Some(k) = &up.hash_key {
        if up.hash_on == HashOn::Header && http::HeaderName::from_bytes(k.as_bytes()).is_err() {
            issues.add(format!("{p}.hash_key"), format!("invalid header name {k:?}"));
        }
    }
    if let Some(h) = &up.host_header {
        if http::HeaderValue::from_str(h).is_err() || h.is_empty() {
            issues.add(format!("{p}.host_header"), format!("invalid host {h:?}"));
        }
    }
    if let Some(a) = &up.health_check.active {
        let hp = format!("{p}.health_check.active");
        if !a.path.starts_with('/') {
            issues.add(format!("{hp}.path"), "must start with /");
        }
        if a.expected_statuses.is_empty() {
            issues.add(format!("{hp}.expected_statuses"), "list at least one status");
        }
        for (i, s) in a.expected_statuses.iter().enumerate() {
            if !(100..=599).contains(s) {
                issues.add(
                    format!("{hp}.expected_statuses[{i}]"),
                    format!("{s} is not an HTTP status"),
                );
            }
        }
        if a.healthy_threshold == 0 {
            issues.add(format!("{hp}.healthy_threshold"), "must be at least 1");
        }
        if a.unhealthy_threshold == 0 {
            issues.add(format!("{hp}.unhealthy_threshold"), "must be at least 1");
        }
        if a.interval.0.is_zero() {
            issues.add(format!("{hp}.interval"), "must be greater than zero");
        }
        if a.timeout.0.is_zero() {
            issues.add(format!("{hp}.timeout"), "must be greater than zero");
        }
    }
}

fn validate_route(p: &str, r: &RouteConfig, cfg: &Config, issues: &mut Issues) {
    // An `mcp` route names its upstream too: the upstream is where its tools
    // send the operations, not a second action.
    let proxied = r.upstream.is_some() && r.mcp.is_none();
    let actions = [proxied, r.response.is_some(), r.ai.is_some(), r.mcp.is_some()];
    match actions.iter().filter(|a| **a).count() {
        0 => issues.add(
            p.to_string(),
            "a route needs an upstream, a fixed response, `ai` or `mcp`",
        ),
        1 => {}
        _ => {
            let field = if r.mcp.is_some() {
                "mcp"
            } else if r.response.is_some() {
                "response"
            } else {
                "ai"
            };
            issues.add(
                format!("{p}.{field}"),
                "a route has one of an upstream, a fixed response, `ai` or `mcp` (an `mcp` route names its upstream too)",
            );
        }
    }
    super::mcp::validate(p, r, cfg, issues);
    if let Some(u) = &r.upstream {
        if !cfg.upstreams.contains_key(u) {
            issues.add(format!("{p}.upstream"), format!("no upstream named {u:?}"));
        }
    }
    if r.ai.is_some() && cfg.ai.is_none() {
        issues.add(
            format!("{p}.ai"),
            "an `ai` route needs the top-level `ai:` section (providers and models)",
        );
    }
    if r.paths.is_empty() {
        issues.add(format!("{p}.paths"), "list at least one path (\"/*\" matches all)");
    }
    for (i, m) in r.methods.iter().enumerate() {
        let ok = !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase());
        if !ok || http::Method::from_bytes(m.as_bytes()).is_err() {
            issues.add(
                format!("{p}.methods[{i}]"),
                format!("invalid method {m:?}; use upper case, e.g. GET"),
            );
        }
    }
    for (i, h) in r.hosts.iter().enumerate() {
        let bare = h.strip_prefix("*.").unwrap_or(h);
        let ok = !bare.is_empty()
            && bare
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        if !ok {
            issues.add(
                format!("{p}.hosts[{i}]"),
                format!("invalid host {h:?}; use a name like api.example.com or *.example.com"),
            );
        }
    }
    if r.retries > 10 {
        issues.add(format!("{p}.retries"), "at most 10");
    }
    if let Some(rw) = &r.rewrite {
        if !rw.starts_with('/') {
            issues.add(format!("{p}.rewrite"), "must start with /");
        }
        if r.strip_prefix {
            issues.add(format!("{p}.strip_prefix"), "use either strip_prefix or rewrite");
        }
    }
    if let Some(resp) = &r.response {
        if !(100..=599).contains(&resp.status) {
            issues.add(
                format!("{p}.response.status"),
                format!("{} is not an HTTP status", resp.status),
            );
        }
    }
}

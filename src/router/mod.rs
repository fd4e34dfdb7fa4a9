//! Host + path + method -> route. Compiled once per config into lookup tables;
//! a request does one hash lookup per host class for exact paths, one per
//! path segment for prefix routes (so their number does not matter), and a
//! short scan of the template list.
//!
//! Precedence (most specific wins):
//! 1. host: an exact host beats a wildcard (`*.example.com`, longest suffix
//!    first), which beats a route with no `hosts`;
//! 2. path, within the chosen host class: exact beats a template
//!    (`/users/{id}`; more literal segments first), which beats a prefix
//!    (`/api/*`; longest first);
//! 3. for the same path, a route that lists the method beats one that accepts any;
//! 4. remaining ties go to the route written first.
//!
//! A path that matches but not with the request's method (in any host class)
//! gives 405 with the allowed methods; nothing matching gives 404.

pub(crate) mod path;

use http::Method;
// foldhash: these maps are built at load and only looked up on the request
// path, so a fast hash (a third of SipHash's instructions) is safe here.
use foldhash::HashMap;

/// One compiled path pattern.
#[derive(Debug, Clone)]
pub enum PathPattern {
    Exact(String),
    /// The prefix without its trailing `/*`; matches itself and anything below it.
    Prefix(String),
    Template(Vec<Segment>),
}

#[derive(Debug, Clone)]
pub enum Segment {
    Literal(String),
    Param(String),
}

impl PathPattern {
    /// Parses `/exact`, `/prefix/*` or `/users/{id}`.
    pub fn parse(s: &str) -> Result<PathPattern, String> {
        if !s.starts_with('/') {
            return Err(format!("path {s:?} must start with /"));
        }
        if let Some(prefix) = s.strip_suffix("/*") {
            if prefix.contains(['*', '{', '}']) {
                return Err(format!(
                    "path {s:?}: a prefix path cannot hold parameters or other wildcards"
                ));
            }
            return Ok(PathPattern::Prefix(prefix.to_string()));
        }
        if s.contains('*') {
            return Err(format!("path {s:?}: `*` is only allowed as a final `/*`"));
        }
        if !s.contains(['{', '}']) {
            return Ok(PathPattern::Exact(s.to_string()));
        }
        let mut segments = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        for seg in s[1..].split('/') {
            if let Some(name) = seg.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
                let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !valid {
                    return Err(format!("path {s:?}: invalid parameter name {name:?}"));
                }
                if names.contains(&name) {
                    return Err(format!("path {s:?}: parameter {{{name}}} appears twice"));
                }
                names.push(name);
                segments.push(Segment::Param(name.to_string()));
            } else if seg.contains(['{', '}']) {
                return Err(format!(
                    "path {s:?}: a parameter must be a whole segment, like /users/{{id}}"
                ));
            } else {
                segments.push(Segment::Literal(seg.to_string()));
            }
        }
        Ok(PathPattern::Template(segments))
    }

    /// Parameter names of a template, in order.
    pub fn params(&self) -> Vec<&str> {
        match self {
            PathPattern::Template(segs) => segs
                .iter()
                .filter_map(|s| match s {
                    Segment::Param(n) => Some(n.as_str()),
                    Segment::Literal(_) => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Matches a template and returns its `(name, value)` pairs.
    pub fn captures<'p>(&self, path: &'p str) -> Option<Vec<(&str, &'p str)>> {
        let PathPattern::Template(segs) = self else {
            return Some(Vec::new());
        };
        let rest = path.strip_prefix('/')?;
        let mut out = Vec::new();
        let mut parts = rest.split('/');
        for seg in segs {
            let part = parts.next()?;
            match seg {
                Segment::Literal(l) if l == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(_) if part.is_empty() => return None,
                Segment::Param(n) => out.push((n.as_str(), part)),
            }
        }
        parts.next().is_none().then_some(out)
    }

    /// Whether this pattern serves `path` (already normalised): the same
    /// rule the router's tables apply, for callers that hold one pattern.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathPattern::Exact(p) => p == path,
            PathPattern::Prefix(prefix) => path
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
            PathPattern::Template(segs) => PathPattern::template_matches(segs, path),
        }
    }

    fn template_matches(segs: &[Segment], path: &str) -> bool {
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        let mut parts = rest.split('/');
        for seg in segs {
            match (seg, parts.next()) {
                (Segment::Literal(l), Some(p)) if l == p => {}
                (Segment::Param(_), Some(p)) if !p.is_empty() => {}
                _ => return false,
            }
        }
        parts.next().is_none()
    }
}

/// The prefixes `prefix_matches` accepts for `path`, longest first: the path
/// itself, then at each `/` from the right the part before it with and
/// without that `/`, ending with "" (the prefix of `/*`).
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let slashes = path
        .bytes()
        .enumerate()
        .rev()
        .filter(|(_, b)| *b == b'/')
        .map(|(i, _)| i);
    std::iter::once(path).chain(slashes.flat_map(move |i| {
        // With the slash, unless that was already yielded: the whole path, or
        // the part before the next `/` when two slashes follow each other.
        let with = (i + 1 < path.len() && path.as_bytes()[i + 1] != b'/').then(|| &path[..=i]);
        with.into_iter().chain(std::iter::once(&path[..i]))
    }))
}

/// What a route registers: the route's index, its pattern's index and methods.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub route: usize,
    pub hosts: Vec<String>,
    pub patterns: Vec<PathPattern>,
    /// Empty: any method.
    pub methods: Vec<Method>,
}

#[derive(Debug, Clone)]
struct Entry {
    route: usize,
    pattern: usize,
    methods: Vec<Method>,
}

impl Entry {
    fn allows(&self, m: &Method) -> bool {
        self.methods.is_empty() || self.methods.contains(m)
    }
}

#[derive(Debug, Default)]
struct HostTable {
    exact: HashMap<String, Vec<Entry>>,
    templates: Vec<(Vec<Segment>, Entry)>,
    /// Prefix (without `/*`) -> entries. A lookup tries the path's own
    /// ancestors, longest first: a hash probe per path segment rather than a
    /// scan of every prefix route.
    prefixes: HashMap<String, Vec<Entry>>,
}

impl HostTable {
    fn add(&mut self, pattern: &PathPattern, entry: Entry) {
        match pattern {
            PathPattern::Exact(p) => self.exact.entry(p.clone()).or_default().push(entry),
            PathPattern::Template(s) => self.templates.push((s.clone(), entry)),
            PathPattern::Prefix(p) => self.prefixes.entry(p.clone()).or_default().push(entry),
        }
    }

    fn finish(&mut self) {
        // Stable sorts keep config order for ties; method-specific entries first.
        let specific_first = |e: &Entry| e.methods.is_empty();
        for list in self.exact.values_mut() {
            list.sort_by_key(specific_first);
        }
        self.templates.sort_by_key(|(s, e)| {
            let literals = s.iter().filter(|seg| matches!(seg, Segment::Literal(_))).count();
            (usize::MAX - literals, specific_first(e))
        });
        for list in self.prefixes.values_mut() {
            list.sort_by_key(specific_first);
        }
    }

    /// Walks candidates in precedence order; the first allowing `method` wins.
    /// Path-only matches add their methods to `allow`.
    fn find(&self, path: &str, method: &Method, allow: &mut Option<Vec<Method>>) -> Option<(usize, usize)> {
        let exact = self.exact.get(path).into_iter().flatten();
        let templates = self
            .templates
            .iter()
            .filter(|(s, _)| PathPattern::template_matches(s, path))
            .map(|(_, e)| e);
        let prefixes = ancestors(path).filter_map(|p| self.prefixes.get(p)).flatten();
        for e in exact.chain(templates).chain(prefixes) {
            if e.allows(method) {
                return Some((e.route, e.pattern));
            }
            let list = allow.get_or_insert_with(Vec::new);
            for m in &e.methods {
                if !list.contains(m) {
                    list.push(m.clone());
                }
            }
        }
        None
    }
}

/// The outcome of a lookup.
#[derive(Debug, PartialEq, Eq)]
pub enum RouteLookup {
    /// Route index and the index of the path pattern that matched.
    Found {
        route: usize,
        pattern: usize,
    },
    /// The path matched but not the method; `allow` lists what would.
    MethodNotAllowed {
        allow: Vec<Method>,
    },
    NotFound,
}

#[derive(Debug, Default)]
pub struct Router {
    exact_hosts: HashMap<String, HostTable>,
    /// Suffix including the leading dot (`.example.com`), longest first.
    wildcard_hosts: Vec<(String, HostTable)>,
    any_host: HostTable,
}

impl Router {
    pub fn new(specs: &[RouteSpec]) -> Router {
        let mut r = Router::default();
        for spec in specs {
            for (pi, pattern) in spec.patterns.iter().enumerate() {
                let entry = Entry {
                    route: spec.route,
                    pattern: pi,
                    methods: spec.methods.clone(),
                };
                if spec.hosts.is_empty() {
                    r.any_host.add(pattern, entry.clone());
                }
                for h in &spec.hosts {
                    let h = h.to_ascii_lowercase();
                    let table = if let Some(suffix) = h.strip_prefix('*') {
                        match r.wildcard_hosts.iter().position(|(s, _)| s == suffix) {
                            Some(i) => &mut r.wildcard_hosts[i].1,
                            None => {
                                r.wildcard_hosts.push((suffix.to_string(), HostTable::default()));
                                let last = r.wildcard_hosts.len() - 1;
                                &mut r.wildcard_hosts[last].1
                            }
                        }
                    } else {
                        r.exact_hosts.entry(h).or_default()
                    };
                    table.add(pattern, entry.clone());
                }
            }
        }
        r.wildcard_hosts.sort_by_key(|(s, _)| usize::MAX - s.len());
        r.exact_hosts.values_mut().for_each(HostTable::finish);
        r.wildcard_hosts.iter_mut().for_each(|(_, t)| t.finish());
        r.any_host.finish();
        r
    }

    /// `host` is the request's host without port, lower case; `path` is normalised.
    pub fn lookup(&self, host: &str, path: &str, method: &Method) -> RouteLookup {
        let mut allow = None;
        if let Some(t) = self.exact_hosts.get(host) {
            if let Some((route, pattern)) = t.find(path, method, &mut allow) {
                return RouteLookup::Found { route, pattern };
            }
        }
        for (suffix, t) in &self.wildcard_hosts {
            if host.len() > suffix.len() && host.ends_with(suffix.as_str()) {
                if let Some((route, pattern)) = t.find(path, method, &mut allow) {
                    return RouteLookup::Found { route, pattern };
                }
            }
        }
        if let Some((route, pattern)) = self.any_host.find(path, method, &mut allow) {
            return RouteLookup::Found { route, pattern };
        }
        match allow {
            Some(allow) => RouteLookup::MethodNotAllowed { allow },
            None => RouteLookup::NotFound,
        }
    }
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pattern_matches_as_the_tables_do() {
        let m = |pattern: &str, path: &str| PathPattern::parse(pattern).unwrap().matches(path);
        assert!(m("/orders/*", "/orders/7"));
        assert!(m("/orders/*", "/orders"));
        assert!(!m("/orders/*", "/ordersx"));
        assert!(m("/*", "/anything/at/all"));
        assert!(m("/pets/{id}", "/pets/3"));
        assert!(!m("/pets/{id}", "/pets/"));
        assert!(!m("/pets/{id}", "/pets/3/x"));
        assert!(m("/hello", "/hello"));
        assert!(!m("/hello", "/hello/"));
    }

    /// The oracle: `path` is `prefix` itself or lies below it.
    fn prefix_matches(prefix: &str, path: &str) -> bool {
        match path.strip_prefix(prefix) {
            Some(rest) => rest.is_empty() || rest.starts_with('/') || prefix.ends_with('/'),
            None => false,
        }
    }

    #[test]
    fn ancestors_are_exactly_the_matching_prefixes() {
        for path in ["/", "/a", "/a/", "/a/b/c", "//x", "/api/v1/users/", "x/y"] {
            let got: Vec<&str> = ancestors(path).collect();
            let mut want: Vec<&str> = (0..=path.len())
                .filter(|i| path.is_char_boundary(*i))
                .map(|i| &path[..i])
                .filter(|p| prefix_matches(p, path))
                .collect();
            want.sort_by_key(|p| std::cmp::Reverse(p.len()));
            want.dedup();
            assert_eq!(got, want, "{path}");
        }
    }

    fn spec(route: usize, hosts: &[&str], paths: &[&str], methods: &[&str]) -> RouteSpec {
        RouteSpec {
            route,
            hosts: hosts.iter().map(|s| s.to_string()).collect(),
            patterns: paths.iter().map(|p| PathPattern::parse(p).unwrap()).collect(),
            methods: methods
                .iter()
                .map(|m| Method::from_bytes(m.as_bytes()).unwrap())
                .collect(),
        }
    }

    fn found(r: &Router, host: &str, path: &str, m: &str) -> Option<usize> {
        match r.lookup(host, path, &Method::from_bytes(m.as_bytes()).unwrap()) {
            RouteLookup::Found { route, .. } => Some(route),
            _ => None,
        }
    }

    #[test]
    fn precedence() {
        let r = Router::new(&[
            spec(0, &[], &["/*"], &[]),
            spec(1, &[], &["/api/*"], &[]),
            spec(2, &[], &["/api/users/{id}"], &[]),
            spec(3, &[], &["/api/users/me"], &[]),
            spec(4, &["*.example.com"], &["/*"], &[]),
            spec(5, &["api.example.com"], &["/*"], &[]),
            spec(6, &[], &["/api/v2/*"], &["POST"]),
        ]);
        assert_eq!(found(&r, "x", "/", "GET"), Some(0));
        assert_eq!(found(&r, "x", "/api", "GET"), Some(1));
        assert_eq!(found(&r, "x", "/apix", "GET"), Some(0));
        assert_eq!(found(&r, "x", "/api/users/7", "GET"), Some(2));
        assert_eq!(found(&r, "x", "/api/users/me", "GET"), Some(3));
        assert_eq!(found(&r, "a.example.com", "/api", "GET"), Some(4));
        assert_eq!(found(&r, "example.com", "/api", "GET"), Some(1));
        assert_eq!(found(&r, "api.example.com", "/api", "GET"), Some(5));
        assert_eq!(found(&r, "x", "/api/v2/a", "POST"), Some(6));
        assert_eq!(found(&r, "x", "/api/v2/a", "GET"), Some(1));
    }

    #[test]
    fn method_not_allowed() {
        let r = Router::new(&[spec(0, &[], &["/a"], &["GET", "HEAD"]), spec(1, &[], &["/a"], &["PUT"])]);
        assert_eq!(
            r.lookup("h", "/a", &Method::DELETE),
            RouteLookup::MethodNotAllowed {
                allow: vec![Method::GET, Method::HEAD, Method::PUT]
            }
        );
        assert_eq!(r.lookup("h", "/b", &Method::GET), RouteLookup::NotFound);
    }

    #[test]
    fn bad_patterns() {
        assert!(PathPattern::parse("api").is_err());
        assert!(PathPattern::parse("/a/*/b").is_err());
        assert!(PathPattern::parse("/a/{x}{y}").is_err());
        assert!(PathPattern::parse("/a/{x}/{x}").is_err());
        assert!(PathPattern::parse("/a/x{y}").is_err());
    }

    #[test]
    fn captures() {
        let p = PathPattern::parse("/u/{id}/posts/{post}").unwrap();
        assert_eq!(p.captures("/u/7/posts/9"), Some(vec![("id", "7"), ("post", "9")]));
        assert_eq!(p.captures("/u/7/posts"), None);
    }
}

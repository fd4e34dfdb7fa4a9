//! Request path normalisation, done once per request before routing: the
//! router and the upstream both see the same normalised path, so a path trick
//! cannot match one route at the gateway and mean another upstream.
//!
//! Rules: repeated slashes collapse, `.` segments drop, `..` removes the
//! previous segment (never above the root), and a percent-encoded unreserved
//! character (RFC 3986 section 2.3) is decoded. Other escapes, `%2F` included,
//! stay encoded, so an encoded slash never becomes a path separator (and by
//! default a path holding one is refused, see `has_encoded_slash`).
//!
//! Two spellings that some servers read as another path are folded too, so a
//! route's policies cannot be skipped with them: path parameters
//! (`/admin;jsessionid=1` is `/admin` to Tomcat and Spring) are removed, and
//! trailing dots of a segment (`/admin.` is `/admin` to Windows servers) are
//! removed.

use std::borrow::Cow;

/// Normalises `path` (without the query). Returns the input unchanged, without
/// allocating, when it is already normal.
pub(crate) fn normalize(path: &str) -> Cow<'_, str> {
    if is_normal(path) {
        return Cow::Borrowed(path);
    }
    let decoded = decode_unreserved(path);
    let mut out: Vec<&str> = Vec::new();
    let trailing = decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    for seg in decoded.split('/') {
        match fold_segment(seg) {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut s = String::with_capacity(decoded.len() + 1);
    for seg in &out {
        s.push('/');
        s.push_str(seg);
    }
    if s.is_empty() || (trailing && !s.ends_with('/')) {
        s.push('/');
    }
    Cow::Owned(s)
}

fn is_normal(path: &str) -> bool {
    let b = path.as_bytes();
    if b.first() != Some(&b'/') || b.iter().any(|c| matches!(c, b'%' | b';')) {
        return false;
    }
    !path.contains("//") && !path.split('/').any(|s| s.ends_with('.'))
}

/// True when the path holds an encoded `/` or `\` (`%2F`, `%5C`, any case).
pub(crate) fn has_encoded_slash(path: &str) -> bool {
    path.as_bytes().windows(3).any(|w| {
        w[0] == b'%'
            && (w[1] == b'2' && w[2].eq_ignore_ascii_case(&b'f') || w[1] == b'5' && w[2].eq_ignore_ascii_case(&b'c'))
    })
}

/// A segment without its `;parameters` and trailing dots; `.` and `..` stay.
fn fold_segment(seg: &str) -> &str {
    let seg = seg.split(';').next().unwrap_or("");
    if seg == "." || seg == ".." {
        return seg;
    }
    seg.trim_end_matches('.')
}

fn decode_unreserved(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = String::with_capacity(b.len() + 1);
    if b.first() != Some(&b'/') {
        out.push('/');
    }
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok().map(|v| (h, v))) {
                Some((_, v)) if v.is_ascii_alphanumeric() || matches!(v, b'-' | b'.' | b'_' | b'~') => {
                    out.push(v as char);
                }
                Some((h, _)) => {
                    // Keep the escape, upper-cased, so equivalent spellings compare equal.
                    out.push('%');
                    out.push_str(&h.to_ascii_uppercase());
                }
                None => {
                    // A bare `%` is not valid in a path; escaping it keeps a decoded
                    // character from forming a new escape with it (`%%61` must not
                    // become `%a`, which a second decoding would read as one byte).
                    out.push_str("%25");
                    i += 1;
                    continue;
                }
            }
            i += 3;
            continue;
        }
        // The path is ASCII after parsing by the HTTP layer, but be safe with UTF-8.
        let ch_len = path[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&path[i..i + ch_len]);
        i += ch_len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn cases() {
        for (input, want) in [
            ("/a/b", "/a/b"),
            ("/", "/"),
            ("", "/"),
            ("//a///b", "/a/b"),
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/../../x", "/x"),
            ("/a/b/..", "/a/"),
            ("/%61dmin", "/admin"),
            ("/%2e%2e/admin", "/admin"),
            ("/public/..%2fadmin", "/public/..%2Fadmin"),
            ("/a%2fb", "/a%2Fb"),
            ("/a/", "/a/"),
            ("/a%", "/a%25"),
            ("/a%zz", "/a%25zz"),
            ("/%%61dmin", "/%25admin"),
            ("/a%6", "/a%256"),
            ("/admin;jsessionid=1", "/admin"),
            ("/admin;x/users", "/admin/users"),
            ("/admin.", "/admin"),
            ("/admin../x", "/admin/x"),
            ("/...", "/"),
            ("/a/;/b", "/a/b"),
            ("/%252e%252e/admin", "/%252e%252e/admin"),
        ] {
            assert_eq!(normalize(input), want, "input {input:?}");
        }
    }

    #[test]
    fn encoded_slashes() {
        use super::has_encoded_slash;
        assert!(has_encoded_slash("/a%2fb"));
        assert!(has_encoded_slash("/a%2Fb"));
        assert!(has_encoded_slash("/a%5cb"));
        assert!(!has_encoded_slash("/a%252fb"));
        assert!(!has_encoded_slash("/a/b"));
    }
}

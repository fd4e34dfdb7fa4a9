//! Request path normalisation, done once per request before routing: the
//! router and the upstream both see the same normalised path, so a path trick
//! cannot match one route at the gateway and mean another upstream.
//!
//! Rules: repeated slashes collapse, `.` segments drop, `..` removes the
//! previous segment (never above the root), and a percent-encoded unreserved
//! character (RFC 3986 section 2.3) is decoded. Other escapes, `%2F` included,
//! stay encoded, so an encoded slash never becomes a path separator.

use std::borrow::Cow;

/// Normalises `path` (without the query). Returns the input unchanged, without
/// allocating, when it is already normal.
pub fn normalize(path: &str) -> Cow<'_, str> {
    if is_normal(path) {
        return Cow::Borrowed(path);
    }
    let decoded = decode_unreserved(path);
    let mut out: Vec<&str> = Vec::new();
    let trailing = decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    for seg in decoded.split('/') {
        match seg {
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
    if b.first() != Some(&b'/') || b.contains(&b'%') {
        return false;
    }
    !path.contains("//") && !path.split('/').any(|s| s == "." || s == "..")
}

fn decode_unreserved(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = String::with_capacity(b.len() + 1);
    if b.first() != Some(&b'/') {
        out.push('/');
    }
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                if v.is_ascii_alphanumeric() || matches!(v, b'-' | b'.' | b'_' | b'~') {
                    out.push(v as char);
                } else {
                    // Keep the escape, upper-cased, so equivalent spellings compare equal.
                    out.push('%');
                    out.push_str(&path[i + 1..i + 3].to_ascii_uppercase());
                }
                i += 3;
                continue;
            }
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
            ("/a%", "/a%"),
            ("/a%zz", "/a%zz"),
        ] {
            assert_eq!(normalize(input), want, "input {input:?}");
        }
    }
}

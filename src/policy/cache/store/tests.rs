use super::*;
use crate::config::CacheConfig;
use crate::config::{ConfDuration, ConfSize};

const HOST: &str = "api.example.com";

fn req(method: &str, uri: &str, headers: &[(&str, &str)]) -> RequestHeader {
    let raw: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
    req_raw(method, uri, &raw)
}

fn req_raw(method: &str, uri: &str, headers: &[(&str, &[u8])]) -> RequestHeader {
    let mut r = RequestHeader::build(method, uri.as_bytes(), None).unwrap();
    for (k, v) in headers {
        r.append_header(k.to_string(), HeaderValue::from_bytes(v).unwrap())
            .unwrap();
    }
    r
}

fn get(uri: &str) -> RequestHeader {
    req("GET", uri, &[])
}

fn resp(status: u16, headers: &[(&str, &str)]) -> ResponseHeader {
    let mut r = ResponseHeader::build(status, None).unwrap();
    for (k, v) in headers {
        r.append_header(k.to_string(), *v).unwrap();
    }
    r
}

fn path_of(r: &RequestHeader) -> String {
    r.uri.path().to_string()
}

fn lookup(cache: &ResponseCache, r: &RequestHeader, consumer: Option<&str>, now: Instant) -> Lookup {
    cache.lookup_at(r, HOST, &path_of(r), consumer, now)
}

fn hit(cache: &ResponseCache, r: &RequestHeader, consumer: Option<&str>, now: Instant) -> Option<Arc<CachedResponse>> {
    match lookup(cache, r, consumer, now) {
        Lookup::Hit(h) => Some(h),
        _ => None,
    }
}

/// Runs a miss through begin/push/finish; returns whether `begin` accepted it.
fn store(
    cache: &ResponseCache,
    r: &RequestHeader,
    rs: &ResponseHeader,
    body: &[u8],
    consumer: Option<&str>,
    now: Instant,
) -> bool {
    let Lookup::Miss(miss) = lookup(cache, r, consumer, now) else {
        panic!("expected a miss");
    };
    match cache.begin_at(miss, r, rs, consumer, now) {
        Some(mut p) => {
            assert!(p.push(body));
            p.finish(cache);
            true
        }
        None => false,
    }
}

fn ok(headers: &[(&str, &str)]) -> ResponseHeader {
    resp(200, headers)
}

fn cache() -> ResponseCache {
    ResponseCache::new(&CacheConfig::default())
}

#[test]
fn is_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<ResponseCache>();
    check::<Arc<CachedResponse>>();
}

#[test]
fn config_defaults_and_unknown_fields() {
    let cfg: CacheConfig = serde_yaml::from_str("{}").unwrap();
    assert_eq!(cfg, CacheConfig::default());
    assert_eq!(cfg.ttl.0, Duration::from_secs(60));
    assert_eq!(cfg.max_size.0, 64 * 1024 * 1024);
    assert_eq!(cfg.max_entry_size.0, 1024 * 1024);
    assert_eq!(cfg.statuses, vec![200, 203, 204, 300, 301, 404, 410]);
    assert!(cfg.key_query);
    let cfg: CacheConfig = serde_yaml::from_str("ttl: 5s\nmax_ttl: 1m\nmax_size: 1MiB\nkey_query: false").unwrap();
    assert_eq!(cfg.max_ttl, Some(ConfDuration(Duration::from_secs(60))));
    assert_eq!(cfg.max_size.0, 1024 * 1024);
    assert!(serde_yaml::from_str::<CacheConfig>("tll: 5s").is_err());
}

#[test]
fn hit_after_store_with_filtered_headers() {
    let c = cache();
    let now = Instant::now();
    let r = get("/items/1");
    let rs = ok(&[
        ("content-type", "application/json"),
        ("content-length", "5"),
        ("connection", "close, x-hop"),
        ("x-hop", "1"),
        ("keep-alive", "timeout=5"),
        ("proxy-authenticate", "Basic"),
        ("x-request-id", "abc"),
        ("x-cache", "MISS"),
        ("etag", "\"v1\""),
    ]);
    assert!(store(&c, &r, &rs, b"hello", None, now));
    let h = hit(&c, &r, None, now + Duration::from_secs(3)).expect("hit");
    assert_eq!(h.status, 200);
    assert_eq!(&h.body[..], b"hello");
    assert_eq!(h.age_at(now + Duration::from_secs(3)), 3);
    let names: Vec<&str> = h.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["content-type", "etag"]);
    assert!(c.len_bytes() > 5);
    // Host is case-insensitive; a different host or path is a different key.
    assert!(matches!(
        c.lookup_at(&r, "API.example.com", "/items/1", None, now),
        Lookup::Hit(_)
    ));
    assert!(matches!(
        c.lookup_at(&r, "other.example.com", "/items/1", None, now),
        Lookup::Miss(_)
    ));
    assert!(matches!(c.lookup_at(&r, HOST, "/items/2", None, now), Lookup::Miss(_)));
}

#[test]
fn ttl_expiry_with_injected_clock() {
    let c = cache();
    let now = Instant::now();
    let r = get("/a");
    assert!(store(&c, &r, &ok(&[]), b"x", None, now));
    assert!(hit(&c, &r, None, now + Duration::from_secs(59)).is_some());
    assert!(hit(&c, &r, None, now + Duration::from_secs(60)).is_none());

    let r = get("/b");
    assert!(store(&c, &r, &ok(&[("cache-control", "max-age=10")]), b"x", None, now));
    assert!(hit(&c, &r, None, now + Duration::from_secs(9)).is_some());
    assert!(hit(&c, &r, None, now + Duration::from_secs(11)).is_none());
    // The expired entry is refreshed by the next miss.
    assert!(store(
        &c,
        &r,
        &ok(&[("cache-control", "max-age=10")]),
        b"y",
        None,
        now + Duration::from_secs(11)
    ));
    assert_eq!(
        &hit(&c, &r, None, now + Duration::from_secs(12)).unwrap().body[..],
        b"y"
    );
}

#[test]
fn max_ttl_caps_and_age_counts() {
    let cfg = CacheConfig {
        max_ttl: Some(ConfDuration(Duration::from_secs(5))),
        ..CacheConfig::default()
    };
    let c = ResponseCache::new(&cfg);
    let now = Instant::now();
    let r = get("/capped");
    assert!(store(
        &c,
        &r,
        &ok(&[("cache-control", "max-age=3600")]),
        b"x",
        None,
        now
    ));
    assert!(hit(&c, &r, None, now + Duration::from_secs(4)).is_some());
    assert!(hit(&c, &r, None, now + Duration::from_secs(5)).is_none());

    // An upstream Age eats into the lifetime and shows in age_secs.
    let c = cache();
    let r = get("/aged");
    assert!(store(
        &c,
        &r,
        &ok(&[("cache-control", "max-age=100"), ("age", "90")]),
        b"x",
        None,
        now
    ));
    let h = hit(&c, &r, None, now + Duration::from_secs(9)).unwrap();
    assert_eq!(h.age_at(now + Duration::from_secs(9)), 99);
    assert!(h.age_secs() >= 90);
    assert!(hit(&c, &r, None, now + Duration::from_secs(10)).is_none());
    assert!(!store(
        &c,
        &get("/too-old"),
        &ok(&[("cache-control", "max-age=10"), ("age", "10")]),
        b"",
        None,
        now
    ));
}

#[test]
fn s_maxage_beats_max_age_beats_expires() {
    let c = cache();
    let now = Instant::now();
    let r = get("/s");
    let rs = ok(&[
        ("cache-control", "max-age=10, s-maxage=100"),
        ("expires", "Thu, 01 Jan 1970 00:00:00 GMT"),
    ]);
    assert!(store(&c, &r, &rs, b"x", None, now));
    assert!(hit(&c, &r, None, now + Duration::from_secs(50)).is_some());
    assert!(hit(&c, &r, None, now + Duration::from_secs(100)).is_none());

    let r = get("/expires");
    let rs = ok(&[
        ("date", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ("expires", "Sun, 06 Nov 1994 08:50:07 GMT"),
    ]);
    assert!(store(&c, &r, &rs, b"x", None, now));
    assert!(hit(&c, &r, None, now + Duration::from_secs(29)).is_some());
    assert!(hit(&c, &r, None, now + Duration::from_secs(30)).is_none());

    // Invalid Expires means already expired; max-age=0 is not stored.
    assert!(!store(&c, &get("/e0"), &ok(&[("expires", "0")]), b"", None, now));
    assert!(!store(
        &c,
        &get("/m0"),
        &ok(&[("cache-control", "max-age=0")]),
        b"",
        None,
        now
    ));
    assert!(!store(
        &c,
        &get("/mx"),
        &ok(&[("cache-control", "max-age=soon")]),
        b"",
        None,
        now
    ));
}

#[test]
fn uncacheable_responses_not_stored() {
    let c = cache();
    let now = Instant::now();
    let cases: &[&[(&str, &str)]] = &[
        &[("cache-control", "no-store")],
        &[("cache-control", "public, No-Cache")],
        &[("cache-control", "no-cache=\"set-cookie, x\"")],
        &[("cache-control", "private")],
        &[("cache-control", "max-age=60"), ("cache-control", "private=\"x\"")],
        &[("set-cookie", "a=b")],
        &[("vary", "accept-encoding, *")],
        &[("vary", "bad name")],
    ];
    for (i, headers) in cases.iter().enumerate() {
        let r = get(&format!("/n{i}"));
        assert!(!store(&c, &r, &ok(headers), b"x", None, now), "case {i} stored");
        assert!(hit(&c, &r, None, now).is_none());
    }
    for status in [500, 206, 302] {
        assert!(
            !store(&c, &get("/status"), &resp(status, &[]), b"x", None, now),
            "{status}"
        );
    }
    // 206 and 304 are refused even when configured.
    let c = ResponseCache::new(&CacheConfig {
        statuses: vec![200, 206, 304],
        ..CacheConfig::default()
    });
    assert!(!store(&c, &get("/p"), &resp(206, &[]), b"x", None, now));
    assert!(!store(&c, &get("/p"), &resp(304, &[]), b"", None, now));
    assert_eq!(c.len_bytes(), 0);
}

#[test]
fn non_cacheable_requests_bypass() {
    let c = cache();
    let now = Instant::now();
    for r in [
        req("POST", "/a", &[]),
        req("GET", "/a", &[("cache-control", "no-store")]),
        req("GET", "/a", &[("range", "bytes=0-10")]),
    ] {
        assert!(matches!(lookup(&c, &r, None, now), Lookup::Bypass));
    }
}

#[test]
fn private_per_consumer_only() {
    let c = cache();
    let now = Instant::now();
    let r = get("/me");
    let rs = ok(&[("cache-control", "private, max-age=60")]);
    assert!(!store(&c, &r, &rs, b"anon", None, now));
    assert!(store(&c, &r, &rs, b"alice", Some("alice"), now));
    assert_eq!(&hit(&c, &r, Some("alice"), now).unwrap().body[..], b"alice");
    assert!(hit(&c, &r, Some("bob"), now).is_none());
    assert!(hit(&c, &r, None, now).is_none());
    assert!(store(&c, &r, &rs, b"bob", Some("bob"), now));
    assert_eq!(&hit(&c, &r, Some("bob"), now).unwrap().body[..], b"bob");
    assert_eq!(&hit(&c, &r, Some("alice"), now).unwrap().body[..], b"alice");
    assert!(hit(&c, &r, None, now).is_none());

    // A response to an Authorization request is kept per consumer unless public.
    let r = req("GET", "/auth", &[("authorization", "Bearer t")]);
    assert!(!store(&c, &r, &ok(&[]), b"x", None, now));
    assert!(store(&c, &r, &ok(&[]), b"carol", Some("carol"), now));
    assert!(hit(&c, &r, Some("dave"), now).is_none());
    assert!(store(&c, &r, &ok(&[("cache-control", "public")]), b"shared", None, now));
    assert_eq!(&hit(&c, &r, Some("dave"), now).unwrap().body[..], b"shared");
}

#[test]
fn vary_gives_distinct_entries() {
    let c = cache();
    let now = Instant::now();
    let rs = ok(&[("vary", "Accept-Encoding"), ("vary", "accept-encoding")]);
    let gzip = req("GET", "/v", &[("accept-encoding", "gzip")]);
    let br = req("GET", "/v", &[("Accept-Encoding", "br")]);
    let none = get("/v");
    assert!(store(&c, &gzip, &rs, b"gz", None, now));
    assert!(hit(&c, &br, None, now).is_none());
    assert!(hit(&c, &none, None, now).is_none());
    assert!(store(&c, &br, &rs, b"br", None, now));
    assert!(store(&c, &none, &rs, b"id", None, now));
    assert_eq!(&hit(&c, &gzip, None, now).unwrap().body[..], b"gz");
    assert_eq!(&hit(&c, &br, None, now).unwrap().body[..], b"br");
    assert_eq!(&hit(&c, &none, None, now).unwrap().body[..], b"id");
    // Values are trimmed.
    let padded = req("GET", "/v", &[("accept-encoding", "  gzip ")]);
    assert_eq!(&hit(&c, &padded, None, now).unwrap().body[..], b"gz");
    // Non-UTF-8 values are distinct keys, not a panic or a shared lossy key.
    let raw1 = req_raw("GET", "/v", &[("accept-encoding", b"\xff\xfe")]);
    let raw2 = req_raw("GET", "/v", &[("accept-encoding", b"\xff\xfd")]);
    assert!(store(&c, &raw1, &rs, b"raw1", None, now));
    assert!(hit(&c, &raw2, None, now).is_none());
    assert_eq!(&hit(&c, &raw1, None, now).unwrap().body[..], b"raw1");
}

#[test]
fn request_no_cache_misses_then_refreshes() {
    let c = cache();
    let now = Instant::now();
    let r = get("/fresh");
    assert!(store(&c, &r, &ok(&[]), b"v1", None, now));
    for reload in [
        req("GET", "/fresh", &[("cache-control", "no-cache")]),
        req("GET", "/fresh", &[("cache-control", "max-age=0")]),
        req("GET", "/fresh", &[("pragma", "no-cache")]),
    ] {
        assert!(matches!(lookup(&c, &reload, None, now), Lookup::Miss(_)));
    }
    let reload = req("GET", "/fresh", &[("cache-control", "no-cache")]);
    assert!(store(&c, &reload, &ok(&[]), b"v2", None, now));
    assert_eq!(&hit(&c, &r, None, now).unwrap().body[..], b"v2");
    // A request max-age rejects an entry older than it.
    let picky = req("GET", "/fresh", &[("cache-control", "max-age=5")]);
    assert!(hit(&c, &picky, None, now + Duration::from_secs(5)).is_some());
    assert!(hit(&c, &picky, None, now + Duration::from_secs(6)).is_none());
}

#[test]
fn head_hits_get_entry_but_head_miss_does_not_store() {
    let c = cache();
    let now = Instant::now();
    let head = req("HEAD", "/h", &[]);
    let Lookup::Miss(miss) = lookup(&c, &head, None, now) else {
        panic!("expected miss")
    };
    assert!(c.begin_at(miss, &head, &ok(&[]), None, now).is_none());
    assert!(hit(&c, &get("/h"), None, now).is_none());
    assert!(store(&c, &get("/h"), &ok(&[]), b"body", None, now));
    assert_eq!(&hit(&c, &head, None, now).unwrap().body[..], b"body");
}

#[test]
fn oversized_bodies_are_abandoned() {
    let c = ResponseCache::new(&CacheConfig {
        max_entry_size: ConfSize(10),
        ..CacheConfig::default()
    });
    let now = Instant::now();
    let r = get("/big");
    let Lookup::Miss(miss) = lookup(&c, &r, None, now) else {
        panic!("expected miss")
    };
    let mut p = c.begin_at(miss, &r, &ok(&[]), None, now).unwrap();
    assert!(p.push(b"0123456"));
    assert!(!p.push(b"789ab"));
    assert!(!p.push(b""));
    p.finish(&c);
    assert!(hit(&c, &r, None, now).is_none());
    assert_eq!(c.len_bytes(), 0);
    // A declared Content-Length over the limit is refused up front.
    let Lookup::Miss(miss) = lookup(&c, &r, None, now) else {
        panic!("expected miss")
    };
    assert!(c
        .begin_at(miss, &r, &ok(&[("content-length", "11")]), None, now)
        .is_none());
}

#[test]
fn truncated_body_not_stored() {
    let c = cache();
    let now = Instant::now();
    let r = get("/short");
    let Lookup::Miss(miss) = lookup(&c, &r, None, now) else {
        panic!("expected miss")
    };
    let mut p = c
        .begin_at(miss, &r, &ok(&[("content-length", "10")]), None, now)
        .unwrap();
    assert!(p.push(b"12345"));
    p.finish(&c);
    assert!(hit(&c, &r, None, now).is_none());
}

#[test]
fn memory_stays_bounded() {
    let max_size = 64 * 1024;
    let cfg = CacheConfig {
        max_size: ConfSize(max_size),
        max_entry_size: ConfSize(4096),
        ..CacheConfig::default()
    };
    let c = ResponseCache::new(&cfg);
    let now = Instant::now();
    let body = vec![b'x'; 1024];
    let mut stored = 0u64;
    let mut one_entry = 0;
    for i in 0.. {
        assert!(store(
            &c,
            &get(&format!("/m/{i}")),
            &ok(&[("content-type", "text/plain")]),
            &body,
            None,
            now
        ));
        one_entry = one_entry.max(body.len() as u64 + 512);
        stored += body.len() as u64;
        assert!(c.len_bytes() <= max_size + one_entry, "{} after {i}", c.len_bytes());
        if stored > 10 * max_size {
            break;
        }
    }
    assert!(
        c.len_bytes() > max_size / 2,
        "cache should still hold entries: {}",
        c.len_bytes()
    );
    // An entry larger than the whole cache is not stored at all.
    let cfg = CacheConfig {
        max_size: ConfSize(2048),
        ..CacheConfig::default()
    };
    let c = ResponseCache::new(&cfg);
    assert!(store(&c, &get("/huge"), &ok(&[]), &vec![b'x'; 4096], None, now));
    assert_eq!(c.len_bytes(), 0);
}

#[test]
fn query_in_key_unless_disabled() {
    let now = Instant::now();
    let c = cache();
    assert!(store(&c, &get("/q?x=1"), &ok(&[]), b"one", None, now));
    assert!(hit(&c, &get("/q?x=2"), None, now).is_none());
    assert!(hit(&c, &get("/q"), None, now).is_none());
    assert_eq!(&hit(&c, &get("/q?x=1"), None, now).unwrap().body[..], b"one");

    let c = ResponseCache::new(&CacheConfig {
        key_query: false,
        ..CacheConfig::default()
    });
    assert!(store(&c, &get("/q?x=1"), &ok(&[]), b"one", None, now));
    assert_eq!(&hit(&c, &get("/q?x=2"), None, now).unwrap().body[..], b"one");
}

#[test]
fn hash_collision_is_a_miss() {
    let c = cache();
    let now = Instant::now();
    assert!(store(&c, &get("/b"), &ok(&[]), b"b", None, now));
    let b_key = c.primary_key(&get("/b"), HOST, "/b");
    let a_key = c.primary_key(&get("/a"), HOST, "/a");
    // Simulate a collision: the slot found for /a holds /b's entry.
    let slot = c.store.get(&b_key).unwrap();
    c.store.put(a_key.clone(), slot, 1);
    assert!(matches!(lookup(&c, &get("/a"), None, now), Lookup::Miss(_)));
    assert!(hit(&c, &get("/b"), None, now).is_some());
    // Same for a variants record under the wrong key.
    let v = Variants {
        key: b_key.into_boxed_slice(),
        vary: vec![header::ACCEPT],
        private: false,
    };
    c.store.put(a_key, Slot::Variants(Arc::new(v)), 1);
    assert!(matches!(lookup(&c, &get("/a"), None, now), Lookup::Miss(_)));
}

#[test]
fn odd_header_values_do_not_panic() {
    let c = cache();
    let now = Instant::now();
    let r = req_raw(
        "GET",
        "/odd",
        &[("cache-control", b"\xff, max-age=\xfe, \"unterminated")],
    );
    let Lookup::Miss(miss) = lookup(&c, &r, None, now) else {
        panic!("expected miss")
    };
    let mut rs = ResponseHeader::build(200, None).unwrap();
    for (k, v) in [
        ("cache-control", &b"\xff\"a,b\",max-age=99999999999999999999999"[..]),
        ("vary", b"\xff"),
        ("expires", b"\xff"),
        ("age", b"\xff"),
        ("content-length", b"\xff"),
        ("connection", b"\xff"),
    ] {
        rs.append_header(k, HeaderValue::from_bytes(v).unwrap()).unwrap();
    }
    // The non-token Vary name makes it uncacheable; nothing panics on the way.
    assert!(c.begin_at(miss, &r, &rs, None, now).is_none());
    assert_eq!(delta_seconds(b"99999999999999999999999"), MAX_DELTA_SECONDS);
    let items: Vec<&[u8]> = ListItems(b" a, \"b,c\" ,,d=\"x\\\",y\"").collect();
    assert_eq!(items, [&b"a"[..], b"\"b,c\"", b"d=\"x\\\",y\""]);
}

//! The call log against a real SQLite file: what a batch writes, rollups
//! against raw counts, every log filter, team scoping, the analytics, the
//! usage export, and opening a new file from two sides at once; retention
//! in [`retention`].

mod retention;

use super::analytics::Slice;
use super::db::{CallDb, CallWriter};
use super::plan::finest_level;
use super::query::{LogFilter, Scope};
use super::retention::Retention;
use crate::telemetry::call::{AiFields, CallRecord, Captured};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// 2026-11-01T00:00:00Z.
const T0: i64 = 1_793_491_200_000;

/// A new SQLite file's URL, in a temp folder removed when its guard drops.
fn temp_db(name: &str) -> (tempfile::TempDir, String) {
    let dir = match tempfile::Builder::new()
        .prefix(&format!("portico-calllog-{name}-"))
        .tempdir()
    {
        Ok(d) => d,
        Err(e) => panic!("temp dir: {e}"),
    };
    let url = format!("sqlite://{}", dir.path().join("calls.db").display());
    (dir, url)
}

struct Rec {
    at_ms: i64,
    status: u16,
    service: Option<(&'static str, &'static str)>,
    app: Option<(&'static str, &'static str)>,
    ms: u64,
    ai: Option<(&'static str, &'static str, u64, u64, f64)>,
    keep: bool,
}

fn rec(at_ms: i64, status: u16) -> Rec {
    Rec {
        at_ms,
        status,
        service: Some(("pay", "payments")),
        app: Some(("shop-app", "shop")),
        ms: 5,
        ai: None,
        keep: true,
    }
}

impl Rec {
    fn build(self, n: usize) -> Arc<CallRecord> {
        Arc::new(CallRecord {
            time: UNIX_EPOCH + Duration::from_millis(u64::try_from(self.at_ms).unwrap_or(0)),
            request_id: format!("req-{n}"),
            client_ip: Some([10, 0, 0, 1].into()),
            method: if n.is_multiple_of(2) {
                http::Method::GET
            } else {
                http::Method::POST
            },
            host: "api.test".into(),
            path: format!("/pay/{}", if n.is_multiple_of(3) { "refunds" } else { "charges" }),
            route: Arc::from(if self.ai.is_some() { "llm" } else { "pay-route" }),
            service: self.service.map(|s| Arc::from(s.0)),
            service_team: self.service.map(|s| Arc::from(s.1)),
            consumer: self.app.map(|a| Arc::from(a.0)),
            team: self.app.map(|a| Arc::from(a.1)),
            credential: self.app.map(|_| Arc::from("key-1")),
            upstream: Some("pay-up".into()),
            target: Some("127.0.0.1:9".into()),
            status: self.status,
            bytes_in: 10,
            bytes_out: 100,
            duration: Duration::from_millis(self.ms),
            upstream_time: Some(Duration::from_millis(self.ms / 2)),
            retries: 0,
            error: (self.status >= 500).then_some("upstream_error"),
            ai: self.ai.map(|(provider, model, input, output, cost)| {
                Box::new(AiFields {
                    model: model.into(),
                    provider: provider.into(),
                    provider_model: format!("{model}-2025"),
                    prompt_tokens: input,
                    completion_tokens: output,
                    cached_tokens: 0,
                    cost_usd: cost,
                    usage_estimated: false,
                    unpriced: false,
                    attempts: 1,
                    cache: None,
                })
            }),
            mcp_tool: (n == 25).then(|| Arc::from("getPet")),
            capture: (n == 0).then(|| {
                Box::new(Captured {
                    request_headers: vec![("accept".into(), "*/*".into())],
                    request_body: Some("{}".into()),
                    ..Default::default()
                })
            }),
            keep: self.keep,
        })
    }
}

fn all(from: i64, to: i64) -> LogFilter {
    LogFilter {
        from_ms: Some(from),
        to_ms: Some(to),
        limit: 10_000,
        ..Default::default()
    }
}

/// A writer on a new SQLite file, and the readers' side of it; the file
/// goes with the guard.
async fn open(name: &str) -> (tempfile::TempDir, CallWriter, CallDb) {
    let (dir, url) = temp_db(name);
    let w = match CallWriter::open(&url).await {
        Ok(w) => w,
        Err(e) => panic!("{e}"),
    };
    let db = w.db.clone();
    (dir, w, db)
}

/// The usual mix: 40 calls over two minutes and two services, 4 of them
/// 5xx, 6 4xx, 5 AI calls; 10 sampled out.
fn mix() -> Vec<Arc<CallRecord>> {
    let mut out = Vec::new();
    for n in 0..40usize {
        let at = T0 + i64::try_from(n).unwrap_or(0) * 3_000;
        let status = match n {
            0..=3 => 503,
            4..=9 => 404,
            _ => 200,
        };
        let mut r = rec(at, status);
        if n % 4 == 1 {
            r.service = Some(("search", "search-team"));
            r.app = Some(("other-app", "others"));
        }
        if (10..15).contains(&n) {
            r.ai = Some(("openai", "gpt-4o", 100, 20, 0.001));
        }
        if n >= 30 {
            r.keep = false;
        }
        r.ms = if n == 20 { 1_500 } else { 5 };
        out.push(r.build(n));
    }
    out
}

#[tokio::test]
async fn a_batch_writes_kept_records_and_counts_every_call() {
    let (_dir, mut w, db) = open("batch").await;
    let batch = mix();
    let kept = w.write("t", &batch).await.unwrap_or_default();
    assert_eq!(kept, 30);
    let page = db.calls(&all(T0, T0 + 3_600_000), &Scope::All).await.unwrap();
    assert_eq!(page.items.len(), 30);
    assert!(page.next.is_none());
    // Newest first.
    assert!(page.items.windows(2).all(|w| w[0].time >= w[1].time));
    let one = db.call("req-0", &Scope::All).await.unwrap().unwrap();
    assert_eq!(one.status, 503);
    assert_eq!(one.credential.as_deref(), Some("key-1"));
    assert_eq!(one.detail.unwrap()["request_body"], "{}");
    let ai = db.call("req-10", &Scope::All).await.unwrap().unwrap();
    assert_eq!(
        (
            ai.provider.as_deref(),
            ai.model.as_deref(),
            ai.model_answered.as_deref()
        ),
        (Some("openai"), Some("gpt-4o"), Some("gpt-4o-2025"))
    );
    assert_eq!((ai.input_tokens, ai.output_tokens), (Some(100), Some(20)));
    let mcp = db.call("req-25", &Scope::All).await.unwrap().unwrap();
    assert_eq!((mcp.mcp_tool.as_deref(), one.mcp_tool), (Some("getPet"), None));

    // The rollups count all 40, at every level.
    let slice = Slice {
        from_ms: T0,
        to_ms: T0 + 3_600_000,
        ..Default::default()
    };
    for level in 0..3 {
        let s = db.summary(&slice, &Scope::All, level).await.unwrap();
        assert_eq!(s.figures.requests, 40, "level {level}");
        assert_eq!(
            (s.figures.status_5xx, s.figures.status_4xx, s.figures.status_2xx),
            (4, 6, 30)
        );
        assert_eq!(s.figures.errors, 4);
        assert_eq!((s.figures.input_tokens, s.figures.output_tokens), (500, 100));
        assert!((s.figures.cost_usd - 0.005).abs() < 1e-9);
        assert_eq!(s.figures.bytes_out, 4000);
        // One call in 40 took 1.5 s: the 99th percentile is in its bucket.
        let p99 = s.figures.p99_ms.unwrap_or_default();
        assert!((1000.0..=2500.0).contains(&p99), "{p99}");
        let p95 = s.figures.p95_ms.unwrap_or_default();
        assert!(p95 <= 5.0, "{p95}");
    }
    // Writing the same batch again adds to the same rows.
    w.write("t", &batch).await.unwrap();
    let s = db.summary(&slice, &Scope::All, 0).await.unwrap();
    assert_eq!(s.figures.requests, 80);
}

#[tokio::test]
async fn every_log_filter_narrows_to_its_rows() {
    let (_dir, mut w, db) = open("filters").await;
    w.write("t", &mix()).await.unwrap();
    let count = |f: LogFilter| {
        let db = db.clone();
        async move { db.calls(&f, &Scope::All).await.unwrap().items.len() }
    };
    let base = || all(T0, T0 + 3_600_000);
    assert_eq!(
        count(LogFilter {
            service: Some("search".into()),
            ..base()
        })
        .await,
        8
    );
    assert_eq!(
        count(LogFilter {
            application: Some("other-app".into()),
            ..base()
        })
        .await,
        8
    );
    assert_eq!(
        count(LogFilter {
            team: Some("others".into()),
            ..base()
        })
        .await,
        8
    );
    assert_eq!(
        count(LogFilter {
            team: Some("payments".into()),
            ..base()
        })
        .await,
        22
    );
    assert_eq!(
        count(LogFilter {
            route: Some("llm".into()),
            ..base()
        })
        .await,
        5
    );
    assert_eq!(
        count(LogFilter {
            mcp_tool: Some("getPet".into()),
            ..base()
        })
        .await,
        1
    );
    assert_eq!(
        count(LogFilter {
            status: Some(404),
            ..base()
        })
        .await,
        6
    );
    assert_eq!(
        count(LogFilter {
            class: Some(5),
            ..base()
        })
        .await,
        4
    );
    assert_eq!(
        count(LogFilter {
            class: Some(2),
            ..base()
        })
        .await,
        20
    );
    assert_eq!(
        count(LogFilter {
            error: Some("upstream_error".into()),
            ..base()
        })
        .await,
        4
    );
    assert_eq!(
        count(LogFilter {
            method: Some("POST".into()),
            ..base()
        })
        .await,
        15
    );
    assert_eq!(
        count(LogFilter {
            path_prefix: Some("/pay/ref".into()),
            ..base()
        })
        .await,
        10
    );
    assert_eq!(
        count(LogFilter {
            min_latency_ms: Some(1000),
            ..base()
        })
        .await,
        1
    );
    assert_eq!(
        count(LogFilter {
            provider: Some("openai".into()),
            ..base()
        })
        .await,
        5
    );
    assert_eq!(
        count(LogFilter {
            model: Some("gpt-4o".into()),
            ..base()
        })
        .await,
        5
    );
    assert_eq!(
        count(LogFilter {
            request_id: Some("req-7".into()),
            ..base()
        })
        .await,
        1
    );
    // A time range: the first minute holds calls 0..=19.
    assert_eq!(count(all(T0, T0 + 60_000)).await, 20);
    // Pages of 7 walk all 30 once each.
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = None;
    loop {
        let f = LogFilter {
            limit: 7,
            cursor: cursor.clone(),
            ..base()
        };
        let page = db.calls(&f, &Scope::All).await.unwrap();
        for r in &page.items {
            assert!(seen.insert(r.request_id.clone()), "{} twice", r.request_id);
        }
        match page.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    assert_eq!(seen.len(), 30);
    let bad = LogFilter {
        cursor: Some("nope".into()),
        ..base()
    };
    assert!(db.calls(&bad, &Scope::All).await.is_err());
}

#[tokio::test]
async fn a_team_sees_only_its_services_and_applications() {
    let (_dir, mut w, db) = open("scope").await;
    w.write("t", &mix()).await.unwrap();
    let f = all(T0, T0 + 3_600_000);
    let seen = |teams: &[&str]| Scope::Teams(teams.iter().map(|t| t.to_string()).collect());
    let others = db.calls(&f, &seen(&["others"])).await.unwrap();
    assert_eq!(others.items.len(), 8);
    assert!(others.items.iter().all(|r| r.team.as_deref() == Some("others")));
    assert_eq!(db.calls(&f, &seen(&["payments"])).await.unwrap().items.len(), 22);
    assert_eq!(db.calls(&f, &seen(&["nobody"])).await.unwrap().items.len(), 0);
    assert_eq!(db.calls(&f, &seen(&[])).await.unwrap().items.len(), 0);
    assert!(db.call("req-1", &seen(&["payments"])).await.unwrap().is_none());
    assert!(db.call("req-1", &seen(&["search-team"])).await.unwrap().is_some());
    let slice = Slice {
        from_ms: T0,
        to_ms: T0 + 3_600_000,
        ..Default::default()
    };
    let s = db.summary(&slice, &seen(&["others"]), 1).await.unwrap();
    assert_eq!(s.figures.requests, 10, "8 kept and 2 sampled out");
    let top = db
        .top(&slice, &seen(&["others"]), 1, "service", "requests", 10)
        .await
        .unwrap();
    assert_eq!(top.items.len(), 1);
}

#[tokio::test]
async fn top_series_and_usage_come_from_the_rollups() {
    let (_dir, mut w, db) = open("analytics").await;
    w.write("t", &mix()).await.unwrap();
    let slice = Slice {
        from_ms: T0,
        to_ms: T0 + 3_600_000,
        ..Default::default()
    };
    let top = db.top(&slice, &Scope::All, 0, "service", "requests", 10).await.unwrap();
    let names: Vec<_> = top.items.iter().map(|g| (g.name.clone(), g.figures.requests)).collect();
    assert_eq!(names, vec![(Some("pay".into()), 30), (Some("search".into()), 10)]);
    let by_cost = db.top(&slice, &Scope::All, 0, "model", "cost", 1).await.unwrap();
    assert_eq!(by_cost.items[0].name.as_deref(), Some("gpt-4o"));
    let by_errors = db
        .top(&slice, &Scope::All, 0, "application", "errors", 10)
        .await
        .unwrap();
    assert_eq!(by_errors.items[0].figures.errors, 3);
    assert!(db.top(&slice, &Scope::All, 0, "nope", "requests", 10).await.is_err());
    assert!(db.top(&slice, &Scope::All, 0, "service", "nope", 10).await.is_err());

    let series = db.series(&slice, &Scope::All, 0).await.unwrap();
    assert_eq!(series.step_seconds, 60);
    let counts: Vec<i64> = series.points.iter().map(|p| p.figures.requests).collect();
    assert_eq!(counts, vec![20, 20]);

    let usage = db.usage(&slice, &Scope::All, false, false).await.unwrap();
    let shop = usage
        .iter()
        .find(|u| u.application.as_deref() == Some("shop-app"))
        .unwrap();
    assert_eq!(shop.period, "2026-11-01");
    assert_eq!((shop.requests, shop.input_tokens), (30, 400));
    let monthly = db.usage(&slice, &Scope::All, true, true).await.unwrap();
    assert!(monthly.iter().all(|u| u.period == "2026-11" && u.application.is_none()));
    assert_eq!(monthly.iter().map(|u| u.requests).sum::<i64>(), 40);
}

/// The writer thread and the admin API's reader open a new file at the
/// same moment (a busy machine's first query): both open, every time.
/// Before opens were serialised and migrations took the write lock first,
/// about one in ten of these failed with "database is locked", and records
/// were dropped while the writer waited to try again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_and_a_reader_open_a_new_file_at_once() {
    for i in 0..30 {
        let (_dir, url) = temp_db(&format!("race{i}"));
        let (writer, reader) = tokio::join!(CallWriter::open(&url), CallDb::open(&url, 4));
        assert!(writer.is_ok(), "writer: {:?}", writer.err());
        assert!(reader.is_ok(), "reader: {:?}", reader.err());
    }
}

//! The call log over the admin API:
//!
//! - `GET /admin/v1/logs`: calls by filter, newest first, a page at a time
//!   (`cursor`), as JSON, NDJSON or CSV (`format`; the next page's cursor
//!   is then in the `X-Next-Cursor` header);
//! - `GET /admin/v1/logs/{request_id}`: one call with what was captured;
//! - `GET /admin/v1/analytics/{summary,timeseries,top,usage}`: from the
//!   rollups ([`crate::calllog::analytics`]); `usage` is the billing export
//!   (per application or team, per day or month, JSON or CSV).
//!
//! A system role reads every call; a team role the calls to its teams'
//! services and from its teams' applications (the permission table's
//! `CallLog` area).

use super::access::{allows, Area, Op, Principal};
use super::openapi::{BadRequest, Forbidden, NotFound, Unauthorized, Unavailable};
use super::principal::authenticate;
use super::{param, problem, store_problem, Shared};
use crate::calllog::analytics::{Series, Slice, Summary, Top, UsageRow};
use crate::calllog::db::CallDb;
use crate::calllog::plan::finest_level;
use crate::calllog::query::{parse_time, CallPage, CallRow, LogFilter, QueryError, Scope};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::collections::BTreeMap;

type Params = Query<BTreeMap<String, String>>;

/// What a principal may see of the call log, if anything.
fn scope(p: &Principal) -> Option<Scope> {
    if p.system.is_some_and(|r| allows(r, Op::Read, Area::CallLog, false)) {
        return Some(Scope::All);
    }
    let teams: Vec<String> = p
        .teams
        .iter()
        .filter(|(_, r)| allows(*r, Op::Read, Area::CallLog, true))
        .map(|(t, _)| t.clone())
        .collect();
    (!teams.is_empty()).then_some(Scope::Teams(teams))
}

/// The caller's scope and the database, or the refusal.
async fn open<'a>(s: &'a Shared, headers: &HeaderMap) -> Result<(Scope, &'a CallDb), Response> {
    let p = authenticate(s, headers).await?;
    let Some(scope) = scope(&p) else {
        return Err(problem(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "reading the call log needs a system role or a team role",
        ));
    };
    let Some(reader) = &s.calls else {
        return Err(problem(
            StatusCode::NOT_FOUND,
            "Not Found",
            "the call log is off (server.call_log.enabled)",
        ));
    };
    let db = reader.db().await.map_err(|e| store_problem(&e))?;
    Ok((scope, db))
}

fn bad(detail: &str) -> Response {
    problem(StatusCode::BAD_REQUEST, "Bad Request", detail)
}

fn failed(e: QueryError) -> Response {
    match e {
        QueryError::Invalid(m) => bad(&m),
        QueryError::Db(e) => store_problem(&e),
    }
}

fn time(q: &BTreeMap<String, String>, name: &str) -> Result<Option<i64>, Response> {
    q.get(name)
        .map(|v| parse_time(v))
        .transpose()
        .map_err(|e| bad(&format!("{name}: {e}")))
}

fn text(q: &BTreeMap<String, String>, name: &str) -> Option<String> {
    q.get(name).filter(|v| !v.is_empty()).cloned()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The output format asked for: `json` (default), `ndjson` or `csv`.
fn format(q: &BTreeMap<String, String>, allowed: &[&str]) -> Result<String, Response> {
    let f = q.get("format").map_or("json", |f| f.as_str());
    if allowed.contains(&f) {
        Ok(f.to_string())
    } else {
        Err(bad(&format!("format: one of {}", allowed.join(", "))))
    }
}

fn log_filter(q: &BTreeMap<String, String>) -> Result<LogFilter, Response> {
    let class = match q.get("class").map(|c| c.trim_end_matches("xx").parse::<u8>()) {
        None => None,
        Some(Ok(c)) if (1..=5).contains(&c) => Some(c),
        Some(_) => return Err(bad("class: one of 1xx, 2xx, 3xx, 4xx, 5xx")),
    };
    let limit = match param::<usize>(q, "limit")? {
        None => 100,
        Some(l) if (1..=10_000).contains(&l) => l,
        Some(_) => return Err(bad("limit must be from 1 to 10000")),
    };
    Ok(LogFilter {
        from_ms: time(q, "from")?,
        to_ms: time(q, "to")?,
        service: text(q, "service"),
        route: text(q, "route"),
        application: text(q, "application"),
        team: text(q, "team"),
        status: param(q, "status")?,
        class,
        error: text(q, "error"),
        method: text(q, "method"),
        path_prefix: text(q, "path_prefix"),
        min_latency_ms: param(q, "min_latency_ms")?,
        provider: text(q, "provider"),
        model: text(q, "model"),
        mcp_tool: text(q, "mcp_tool"),
        request_id: text(q, "request_id"),
        cursor: text(q, "cursor"),
        limit,
    })
}

fn typed(body: Vec<u8>, content_type: &'static str) -> Response {
    let mut resp = body.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// Rows as CSV, their fields' names the header (an empty list is an
/// empty body).
fn csv_body<T: serde::Serialize>(rows: &[T]) -> Result<Vec<u8>, Response> {
    let fail = |e: &dyn std::fmt::Display| {
        problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            &e.to_string(),
        )
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r).map_err(|e| fail(&e))?;
    }
    w.into_inner().map_err(|e| fail(&e))
}

fn page_response(page: CallPage, format: &str) -> Response {
    let next = page.next.clone();
    let mut resp = match format {
        "ndjson" => {
            let mut body = Vec::new();
            for row in &page.items {
                if serde_json::to_writer(&mut body, row).is_ok() {
                    body.push(b'\n');
                }
            }
            typed(body, "application/x-ndjson")
        }
        "csv" => match csv_body(&page.items) {
            Ok(body) => typed(body, "text/csv"),
            Err(r) => return r,
        },
        _ => return Json(page).into_response(),
    };
    if let Some(v) = next.and_then(|n| HeaderValue::from_str(&n).ok()) {
        resp.headers_mut().insert("x-next-cursor", v);
    }
    resp
}

/// Calls by filter, newest first.
#[utoipa::path(
    get,
    path = "/admin/v1/logs",
    tag = "calls",
    params(
        ("from" = Option<String>, Query, description = "Start (RFC 3339 or unix seconds), inclusive"),
        ("to" = Option<String>, Query, description = "End (RFC 3339 or unix seconds), exclusive"),
        ("service" = Option<String>, Query), ("route" = Option<String>, Query),
        ("application" = Option<String>, Query),
        ("team" = Option<String>, Query, description = "The application's or the service's team"),
        ("status" = Option<u16>, Query), ("class" = Option<String>, Query, description = "1xx to 5xx"),
        ("error" = Option<String>, Query, description = "An error name, such as `upstream_timeout`"),
        ("method" = Option<String>, Query), ("path_prefix" = Option<String>, Query),
        ("min_latency_ms" = Option<u64>, Query), ("provider" = Option<String>, Query),
        ("model" = Option<String>, Query, description = "The model asked for"),
        ("mcp_tool" = Option<String>, Query, description = "An MCP tool called (as recorded: comma-separated for a batch)"),
        ("request_id" = Option<String>, Query),
        ("cursor" = Option<String>, Query, description = "The `next` of the previous page"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 10000, description = "Default 100"),
        ("format" = Option<String>, Query, description = "json (default), ndjson or csv")
    ),
    responses(
        (status = 200, description = "A page of calls, newest first (JSON), or its rows as NDJSON or CSV",
         content((CallPage = "application/json"), (String = "application/x-ndjson"), (String = "text/csv")),
         headers(("X-Next-Cursor" = String, description = "NDJSON and CSV: the next page's cursor"))),
        BadRequest, Unauthorized, Forbidden, NotFound, Unavailable
    )
)]
pub(super) async fn logs(State(s): State<Shared>, headers: HeaderMap, Query(q): Params) -> Response {
    let (scope, db) = match open(&s, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let (filter, format) = match (log_filter(&q), format(&q, &["json", "ndjson", "csv"])) {
        (Ok(f), Ok(fmt)) => (f, fmt),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    match db.calls(&filter, &scope).await {
        Ok(page) => page_response(page, &format),
        Err(e) => failed(e),
    }
}

/// One call, with the headers and bodies its route captured.
#[utoipa::path(
    get,
    path = "/admin/v1/logs/{request_id}",
    tag = "calls",
    params(("request_id" = String, Path)),
    responses(
        (status = 200, description = "The call", body = CallRow),
        Unauthorized, Forbidden, NotFound, Unavailable
    )
)]
pub(super) async fn log(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let (scope, db) = match open(&s, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match db.call(&id, &scope).await {
        Ok(Some(row)) => Json(row).into_response(),
        Ok(None) => problem(
            StatusCode::NOT_FOUND,
            "Not Found",
            &format!("no call {id:?} in the log"),
        ),
        Err(e) => failed(e),
    }
}

/// The slice analytics read, from the query (default: the last 24 hours).
fn slice(q: &BTreeMap<String, String>) -> Result<Slice, Response> {
    let now = now_ms();
    let to = time(q, "to")?.unwrap_or(now);
    let from = time(q, "from")?.unwrap_or(to - 86_400_000);
    if from >= to {
        return Err(bad("from must be before to"));
    }
    Ok(Slice {
        from_ms: from,
        to_ms: to,
        service: text(q, "service"),
        route: text(q, "route"),
        application: text(q, "application"),
        team: text(q, "team"),
        provider: text(q, "provider"),
        model: text(q, "model"),
    })
}

/// An analytics request's scope, database, slice and the finest rollup
/// level it may read.
async fn analytics_open<'a>(
    s: &'a Shared,
    headers: &HeaderMap,
    q: &BTreeMap<String, String>,
) -> Result<(Scope, &'a CallDb, Slice, usize), Response> {
    let (scope, db) = open(s, headers).await?;
    let slice = slice(q)?;
    let retention = s
        .calls
        .as_ref()
        .map_or_else(|| (&crate::config::RetentionConfig::default()).into(), |c| c.retention);
    let level = finest_level(slice.from_ms, now_ms(), &retention);
    Ok((scope, db, slice, level))
}

/// Requests, success rate, status classes, latency percentiles, bytes,
/// tokens and cost over a range.
#[utoipa::path(
    get,
    path = "/admin/v1/analytics/summary",
    tag = "calls",
    params(AnalyticsParams),
    responses(
        (status = 200, description = "The summary", body = Summary),
        BadRequest, Unauthorized, Forbidden, NotFound, Unavailable
    )
)]
pub(super) async fn summary(State(s): State<Shared>, headers: HeaderMap, Query(q): Params) -> Response {
    let (scope, db, slice, level) = match analytics_open(&s, &headers, &q).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match db.summary(&slice, &scope, level).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => failed(e),
    }
}

/// The same figures over time, in a step chosen from the range.
#[utoipa::path(
    get,
    path = "/admin/v1/analytics/timeseries",
    tag = "calls",
    params(AnalyticsParams),
    responses(
        (status = 200, description = "The series", body = Series),
        BadRequest, Unauthorized, Forbidden, NotFound, Unavailable
    )
)]
pub(super) async fn timeseries(State(s): State<Shared>, headers: HeaderMap, Query(q): Params) -> Response {
    let (scope, db, slice, level) = match analytics_open(&s, &headers, &q).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match db.series(&slice, &scope, level).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => failed(e),
    }
}

/// The top services, routes, applications, teams, providers or models.
#[utoipa::path(
    get,
    path = "/admin/v1/analytics/top",
    tag = "calls",
    params(
        AnalyticsParams,
        ("by" = Option<String>, Query, description = "service (default), route, application, team, provider or model"),
        ("metric" = Option<String>, Query, description = "requests (default), errors, latency (p95), tokens or cost"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "Default 10")
    ),
    responses(
        (status = 200, description = "The top-N", body = Top),
        BadRequest, Unauthorized, Forbidden, NotFound, Unavailable
    )
)]
pub(super) async fn top(State(s): State<Shared>, headers: HeaderMap, Query(q): Params) -> Response {
    let (scope, db, slice, level) = match analytics_open(&s, &headers, &q).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let limit = match param::<usize>(&q, "limit") {
        Ok(None) => 10,
        Ok(Some(l)) if (1..=1000).contains(&l) => l,
        Ok(Some(_)) => return bad("limit must be from 1 to 1000"),
        Err(r) => return r,
    };
    let by = q.get("by").map_or("service", |b| b.as_str());
    let metric = q.get("metric").map_or("requests", |m| m.as_str());
    match db.top(&slice, &scope, level, by, metric, limit).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => failed(e),
    }
}

/// Requests, tokens and cost per application (or team) per day (or month):
/// the billing export.
#[utoipa::path(
    get,
    path = "/admin/v1/analytics/usage",
    tag = "calls",
    params(
        AnalyticsParams,
        ("group" = Option<String>, Query, description = "application (default) or team"),
        ("period" = Option<String>, Query, description = "day (default) or month, UTC"),
        ("format" = Option<String>, Query, description = "json (default) or csv")
    ),
    responses(
        (status = 200, description = "One row per period and application or team (JSON or CSV)",
         content((Vec<UsageRow> = "application/json"), (String = "text/csv"))),
        BadRequest, Unauthorized, Forbidden, NotFound, Unavailable
    )
)]
pub(super) async fn usage(State(s): State<Shared>, headers: HeaderMap, Query(q): Params) -> Response {
    let (scope, db, slice, _) = match analytics_open(&s, &headers, &q).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let by_team = match q.get("group").map(|g| g.as_str()) {
        None | Some("application") => false,
        Some("team") => true,
        Some(_) => return bad("group: application or team"),
    };
    let monthly = match q.get("period").map(|p| p.as_str()) {
        None | Some("day") => false,
        Some("month") => true,
        Some(_) => return bad("period: day or month"),
    };
    let format = match format(&q, &["json", "csv"]) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let rows = match db.usage(&slice, &scope, by_team, monthly).await {
        Ok(v) => v,
        Err(e) => return failed(e),
    };
    if format != "csv" {
        return Json(rows).into_response();
    }
    match csv_body(&rows) {
        Ok(body) => typed(body, "text/csv"),
        Err(r) => r,
    }
}

/// The range and narrowing every analytics query takes.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct AnalyticsParams {
    /// Start (RFC 3339 or unix seconds); default: 24 hours before `to`.
    from: Option<String>,
    /// End (RFC 3339 or unix seconds); default: now.
    to: Option<String>,
    service: Option<String>,
    route: Option<String>,
    application: Option<String>,
    /// The application's or the service's team.
    team: Option<String>,
    provider: Option<String>,
    model: Option<String>,
}

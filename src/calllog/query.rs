//! The log page: raw records by filter, newest first, a page at a time
//! (the cursor is the last row's time and id, so a page is one index range
//! scan whatever the table's size), and one call's detail by request id.
//!
//! A team-scoped reader sees the calls to its teams' services and from its
//! teams' applications ([`Scope`]).

use super::db::CallDb;
use crate::store::StoreError;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

/// Which calls a reader may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    All,
    /// Calls to these teams' services or from their applications.
    Teams(Vec<String>),
}

/// A value bound to a query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Int(i64),
    Text(String),
}

/// A `WHERE` clause being built, with its binds numbered in order.
#[derive(Debug, Default)]
pub(crate) struct Where {
    clauses: Vec<String>,
    pub(crate) args: Vec<Arg>,
}

impl Where {
    /// The next placeholder for `arg`.
    pub(crate) fn arg(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    /// Adds `clause`, in which `{}` is `arg`'s placeholder.
    pub(crate) fn add(&mut self, clause: &str, arg: Arg) {
        let p = self.arg(arg);
        self.clauses.push(clause.replace("{}", &p));
    }

    pub(crate) fn text(&mut self, column: &str, value: &Option<String>) {
        if let Some(v) = value {
            self.add(&format!("{column} = {{}}"), Arg::Text(v.clone()));
        }
    }

    /// Limits rows to what `scope` lets its reader see.
    pub(crate) fn scope(&mut self, scope: &Scope) {
        let Scope::Teams(teams) = scope else { return };
        if teams.is_empty() {
            self.clauses.push("1 = 0".into());
            return;
        }
        let list: Vec<String> = teams.iter().map(|t| self.arg(Arg::Text(t.clone()))).collect();
        let list = list.join(", ");
        self.clauses
            .push(format!("(service_team IN ({list}) OR team IN ({list}))"));
    }

    pub(crate) fn raw(&mut self, clause: String) {
        self.clauses.push(clause);
    }

    /// `WHERE ...`, or nothing.
    pub(crate) fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }

    pub(crate) fn bind<'q>(
        &self,
        mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        for a in &self.args {
            q = match a {
                Arg::Int(i) => q.bind(*i),
                Arg::Text(t) => q.bind(t.clone()),
            };
        }
        q
    }
}

/// Unix milliseconds from RFC 3339 or unix seconds.
pub(crate) fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs.saturating_mul(1000));
    }
    humantime::parse_rfc3339_weak(s)
        .map_err(|_| format!("{s:?} is neither RFC 3339 nor unix seconds"))
        .map(|t| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        })
}

/// RFC 3339 (milliseconds) of unix milliseconds.
pub(crate) fn format_ms(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

/// The log page's filters (all optional).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct LogFilter {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub service: Option<String>,
    pub route: Option<String>,
    pub application: Option<String>,
    pub team: Option<String>,
    pub status: Option<u16>,
    /// 1 to 5: `2xx` ...
    pub class: Option<u8>,
    pub error: Option<String>,
    pub method: Option<String>,
    pub path_prefix: Option<String>,
    pub min_latency_ms: Option<u64>,
    pub provider: Option<String>,
    pub model: Option<String>,
    /// An MCP tool called.
    pub mcp_tool: Option<String>,
    pub request_id: Option<String>,
    /// The previous page's `next`.
    pub cursor: Option<String>,
    pub limit: usize,
}

/// One call as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub(crate) struct CallRow {
    pub time: String,
    pub request_id: String,
    pub client_ip: Option<String>,
    pub method: String,
    pub host: String,
    pub path: String,
    pub route: String,
    pub service: Option<String>,
    pub service_team: Option<String>,
    pub application: Option<String>,
    pub team: Option<String>,
    pub credential: Option<String>,
    pub upstream: Option<String>,
    pub target: Option<String>,
    pub status: i64,
    pub error: Option<String>,
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub duration_ms: f64,
    pub upstream_ms: Option<f64>,
    pub retries: i64,
    pub provider: Option<String>,
    /// The model the client asked for.
    pub model: Option<String>,
    /// The provider's model that answered.
    pub model_answered: Option<String>,
    pub input_tokens: Option<i64>,
    pub cached_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cost_usd: Option<f64>,
    pub usage_estimated: Option<bool>,
    /// The MCP tools called (comma-separated when a batch called several).
    pub mcp_tool: Option<String>,
    /// Captured headers and bodies (the detail view only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
}

impl CallRow {
    fn from_row(r: &AnyRow, detail: bool) -> Result<CallRow, sqlx::Error> {
        let us = |v: i64| v as f64 / 1000.0;
        let upstream_us: Option<i64> = r.try_get("upstream_us")?;
        let estimated: Option<i64> = r.try_get("usage_estimated")?;
        let detail_text: Option<String> = if detail { r.try_get("detail")? } else { None };
        Ok(CallRow {
            time: format_ms(r.try_get("at_ms")?),
            request_id: r.try_get("request_id")?,
            client_ip: r.try_get("client_ip")?,
            method: r.try_get("method")?,
            host: r.try_get("host")?,
            path: r.try_get("path")?,
            route: r.try_get("route")?,
            service: r.try_get("service")?,
            service_team: r.try_get("service_team")?,
            application: r.try_get("application")?,
            team: r.try_get("team")?,
            credential: r.try_get("credential")?,
            upstream: r.try_get("upstream")?,
            target: r.try_get("target")?,
            status: r.try_get("status")?,
            error: r.try_get("error")?,
            bytes_in: r.try_get("bytes_in")?,
            bytes_out: r.try_get("bytes_out")?,
            duration_ms: us(r.try_get("duration_us")?),
            upstream_ms: upstream_us.map(us),
            retries: r.try_get("retries")?,
            provider: r.try_get("provider")?,
            model: r.try_get("model")?,
            model_answered: r.try_get("model_answered")?,
            input_tokens: r.try_get("input_tokens")?,
            cached_tokens: r.try_get("cached_tokens")?,
            output_tokens: r.try_get("output_tokens")?,
            cost_usd: r.try_get("cost_usd")?,
            usage_estimated: estimated.map(|e| e != 0),
            mcp_tool: r.try_get("mcp_tool")?,
            detail: detail_text.and_then(|t| serde_json::from_str(&t).ok()),
        })
    }
}

/// A page of calls, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CallPage {
    pub items: Vec<CallRow>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next: Option<String>,
}

const LIST_COLUMNS: &str = "id, at_ms, request_id, client_ip, method, host, path, route, service, service_team, \
    application, team, credential, upstream, target, status, error, bytes_in, bytes_out, duration_us, upstream_us, \
    retries, provider, model, model_answered, input_tokens, cached_tokens, output_tokens, cost_usd, usage_estimated, \
    mcp_tool";

fn parse_cursor(c: &str) -> Result<(i64, i64), String> {
    let (at, id) = c.split_once('.').ok_or("cursor: not one this API gave")?;
    match (at.parse(), id.parse()) {
        (Ok(at), Ok(id)) => Ok((at, id)),
        _ => Err("cursor: not one this API gave".into()),
    }
}

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum QueryError {
    /// The caller's input (a 400).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] StoreError),
}

impl From<sqlx::Error> for QueryError {
    fn from(e: sqlx::Error) -> Self {
        QueryError::Db(StoreError::Db(e))
    }
}

impl CallDb {
    /// A page of calls matching `f` that `scope` may see, newest first.
    pub(crate) async fn calls(&self, f: &LogFilter, scope: &Scope) -> Result<CallPage, QueryError> {
        let mut w = Where::default();
        if let Some(t) = f.from_ms {
            w.add("at_ms >= {}", Arg::Int(t));
        }
        if let Some(t) = f.to_ms {
            w.add("at_ms < {}", Arg::Int(t));
        }
        w.text("service", &f.service);
        w.text("route", &f.route);
        w.text("application", &f.application);
        w.text("method", &f.method);
        w.text("error", &f.error);
        w.text("provider", &f.provider);
        w.text("model", &f.model);
        w.text("mcp_tool", &f.mcp_tool);
        w.text("request_id", &f.request_id);
        if let Some(t) = &f.team {
            let p = w.arg(Arg::Text(t.clone()));
            w.raw(format!("(team = {p} OR service_team = {p})"));
        }
        if let Some(s) = f.status {
            w.add("status = {}", Arg::Int(i64::from(s)));
        }
        if let Some(c) = f.class {
            w.add("status >= {}", Arg::Int(i64::from(c) * 100));
            w.add("status < {}", Arg::Int(i64::from(c) * 100 + 100));
        }
        if let Some(ms) = f.min_latency_ms {
            w.add(
                "duration_us >= {}",
                Arg::Int(i64::try_from(ms.saturating_mul(1000)).unwrap_or(i64::MAX)),
            );
        }
        if let Some(prefix) = &f.path_prefix {
            let len = i64::try_from(prefix.chars().count()).unwrap_or(i64::MAX);
            let p = w.arg(Arg::Text(prefix.clone()));
            let l = w.arg(Arg::Int(len));
            w.raw(format!("substr(path, 1, {l}) = {p}"));
        }
        if let Some(c) = &f.cursor {
            let (at, id) = parse_cursor(c).map_err(QueryError::Invalid)?;
            let a = w.arg(Arg::Int(at));
            let i = w.arg(Arg::Int(id));
            w.raw(format!("at_ms <= {a} AND NOT (at_ms = {a} AND id >= {i})"));
        }
        w.scope(scope);
        let limit = f.limit.clamp(1, 10_000);
        let sql = format!(
            "SELECT {LIST_COLUMNS} FROM calls {} ORDER BY at_ms DESC, id DESC LIMIT {}",
            w.sql(),
            limit + 1
        );
        let rows = w
            .bind(sqlx::query(sqlx::AssertSqlSafe(sql)))
            .fetch_all(&self.pool)
            .await?;
        let mut items = Vec::with_capacity(rows.len().min(limit));
        let mut next = None;
        for (i, r) in rows.iter().enumerate() {
            if i == limit {
                let last = rows.get(i - 1);
                if let Some(last) = last {
                    let at: i64 = last.try_get("at_ms")?;
                    let id: i64 = last.try_get("id")?;
                    next = Some(format!("{at}.{id}"));
                }
                break;
            }
            items.push(CallRow::from_row(r, false)?);
        }
        Ok(CallPage { items, next })
    }

    /// One call by request id, with what was captured (the latest, should
    /// a client have sent the same id twice).
    pub(crate) async fn call(&self, request_id: &str, scope: &Scope) -> Result<Option<CallRow>, QueryError> {
        let mut w = Where::default();
        w.add("request_id = {}", Arg::Text(request_id.to_string()));
        w.scope(scope);
        let sql = format!(
            "SELECT {LIST_COLUMNS}, detail FROM calls {} ORDER BY id DESC LIMIT 1",
            w.sql()
        );
        let row = w
            .bind(sqlx::query(sqlx::AssertSqlSafe(sql)))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| CallRow::from_row(&r, true)).transpose()?)
    }
}

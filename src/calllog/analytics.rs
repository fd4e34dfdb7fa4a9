//! Analytics over the rollups, never the raw records: a summary, a time
//! series, top-N by a dimension, and usage per application or team per day
//! or month (the billing export).
//!
//! Which rollup tables and buckets a question reads is [`super::plan`]'s:
//! the narrowest projection, whole days in the middle of a range and finer
//! buckets at its edges. Percentiles come from the merged histograms
//! ([`super::rollup::percentile`]).

use super::db::CallDb;
use super::plan::{segments, series_step, Need};
use super::query::{format_ms, Arg, QueryError, Scope, Where};
use super::rollup::{percentile, Sums, BUCKETS, WIDTHS};
use super::schema::{rollup_table, SUMS};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::BTreeMap;

/// What analytics ask about: a time range and optional narrowing.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Slice {
    pub from_ms: i64,
    pub to_ms: i64,
    pub service: Option<String>,
    pub route: Option<String>,
    pub application: Option<String>,
    pub team: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
}

/// Sums of the histogram and counters, as SQL select items.
fn sum_columns() -> String {
    let sum = |c: &str| match c {
        "cost_usd" => "COALESCE(SUM(cost_usd), 0.0) AS cost_usd".to_string(),
        c => format!("CAST(COALESCE(SUM({c}), 0) AS BIGINT) AS {c}"),
    };
    let hist = (0..BUCKETS).map(|i| format!("h{i}"));
    SUMS.iter()
        .map(|c| sum(c))
        .chain(hist.map(|h| sum(&h)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn sums(r: &AnyRow) -> Result<Sums, sqlx::Error> {
    let mut s = Sums {
        requests: r.try_get("requests")?,
        errors: r.try_get("errors")?,
        bytes_in: r.try_get("bytes_in")?,
        bytes_out: r.try_get("bytes_out")?,
        duration_us: r.try_get("duration_us")?,
        input_tokens: r.try_get("input_tokens")?,
        cached_tokens: r.try_get("cached_tokens")?,
        output_tokens: r.try_get("output_tokens")?,
        cost_usd: r.try_get("cost_usd")?,
        hist: [0; BUCKETS],
    };
    for (i, h) in s.hist.iter_mut().enumerate() {
        *h = r.try_get(format!("h{i}").as_str())?;
    }
    Ok(s)
}

/// Requests by status class and the merged sums.
#[derive(Debug, Default, Clone)]
struct Totals {
    sums: Sums,
    classes: [i64; 6],
}

impl Totals {
    fn add(&mut self, class: i64, s: &Sums) {
        self.sums.merge(s);
        if let Some(c) = usize::try_from(class).ok().and_then(|c| self.classes.get_mut(c)) {
            *c += s.requests;
        }
    }
}

/// The figures of a slice (or of one point or one group of it).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub(crate) struct Figures {
    pub requests: i64,
    /// Share of requests answered 1xx to 3xx.
    pub success_rate: Option<f64>,
    pub status_2xx: i64,
    pub status_3xx: i64,
    pub status_4xx: i64,
    pub status_5xx: i64,
    /// 5xx and failures Portico named (timeouts, resets, clients gone).
    pub errors: i64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub avg_ms: Option<f64>,
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub input_tokens: i64,
    pub cached_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
}

impl From<&Totals> for Figures {
    fn from(t: &Totals) -> Figures {
        let s = &t.sums;
        let ok = t.classes[1] + t.classes[2] + t.classes[3];
        Figures {
            requests: s.requests,
            success_rate: (s.requests > 0).then(|| ok as f64 / s.requests as f64),
            status_2xx: t.classes[2],
            status_3xx: t.classes[3],
            status_4xx: t.classes[4],
            status_5xx: t.classes[5],
            errors: s.errors,
            p50_ms: percentile(&s.hist, 0.50),
            p95_ms: percentile(&s.hist, 0.95),
            p99_ms: percentile(&s.hist, 0.99),
            avg_ms: (s.requests > 0).then(|| s.duration_us as f64 / s.requests as f64 / 1000.0),
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            input_tokens: s.input_tokens,
            cached_tokens: s.cached_tokens,
            output_tokens: s.output_tokens,
            cost_usd: s.cost_usd,
        }
    }
}

/// A summary: the figures and what was read.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Summary {
    pub from: String,
    pub to: String,
    /// `minute`, `hour` or `day`: the rollups read.
    pub granularity: &'static str,
    #[serde(flatten)]
    pub figures: Figures,
}

/// One point of a time series.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Point {
    pub time: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// A time series.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Series {
    pub from: String,
    pub to: String,
    pub granularity: &'static str,
    pub step_seconds: i64,
    pub points: Vec<Point>,
}

/// One group of a top-N.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Group {
    /// The dimension's value (null: calls without one, such as unrouted).
    pub name: Option<String>,
    #[serde(flatten)]
    pub figures: Figures,
}

/// A top-N.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Top {
    pub from: String,
    pub to: String,
    pub granularity: &'static str,
    pub by: String,
    pub metric: String,
    pub items: Vec<Group>,
}

/// The dimensions a top-N groups by.
pub(crate) const TOP_BY: &[&str] = &["service", "route", "application", "team", "provider", "model"];
/// The metrics a top-N orders by.
pub(crate) const TOP_METRICS: &[&str] = &["requests", "errors", "latency", "tokens", "cost"];

/// One row of the usage (billing) export.
#[derive(Debug, Serialize, Clone, PartialEq, utoipa::ToSchema)]
pub(crate) struct UsageRow {
    /// `YYYY-MM-DD` or `YYYY-MM` (UTC).
    pub period: String,
    pub application: Option<String>,
    pub team: Option<String>,
    pub requests: i64,
    pub input_tokens: i64,
    pub cached_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
}

const LEVEL_NAMES: [&str; 3] = ["minute", "hour", "day"];

fn none_if_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

impl Slice {
    /// What the slice narrows by.
    fn filters(&self) -> [(&'static str, bool); 7] {
        [
            ("service", self.service.is_some()),
            ("route", self.route.is_some()),
            ("application", self.application.is_some()),
            ("team", self.team.is_some()),
            ("service_team", self.team.is_some()),
            ("provider", self.provider.is_some()),
            ("model", self.model.is_some()),
        ]
    }

    /// The slice's narrowing and `scope` over buckets `[lo, hi)`.
    fn bucket_where(&self, lo: i64, hi: i64, scope: &Scope) -> Where {
        let mut w = Where::default();
        w.add("bucket >= {}", Arg::Int(lo));
        w.add("bucket < {}", Arg::Int(hi));
        w.text("service", &self.service);
        w.text("route", &self.route);
        w.text("application", &self.application);
        w.text("provider", &self.provider);
        w.text("model", &self.model);
        if let Some(t) = &self.team {
            let p = w.arg(Arg::Text(t.clone()));
            w.raw(format!("(team = {p} OR service_team = {p})"));
        }
        w.scope(scope);
        w
    }

    /// The range in unix seconds, widened to whole seconds.
    fn seconds(&self) -> (i64, i64) {
        (self.from_ms.div_euclid(1000), (self.to_ms + 999).div_euclid(1000))
    }
}

/// Rows of a question: the grouping's value, the status class, the sums.
type Rows = Vec<(String, i64, Sums)>;

impl CallDb {
    /// `key`, the status class and every sum from `table` where `w`,
    /// grouped by `group`.
    async fn sums_by(&self, key: &str, table: &str, w: &Where, group: &str) -> Result<Vec<AnyRow>, QueryError> {
        let sql = format!(
            "SELECT {key}, status_class, {} FROM {table} {} GROUP BY {group}",
            sum_columns(),
            w.sql()
        );
        Ok(w.bind(sqlx::query(sqlx::AssertSqlSafe(sql)))
            .fetch_all(&self.pool)
            .await?)
    }

    /// Sums by `by` (none: one group) and status class over the slice, from
    /// the narrowest projection, cut as [`segments`] says.
    async fn rows(
        &self,
        s: &Slice,
        scope: &Scope,
        finest: usize,
        by: Option<&'static str>,
    ) -> Result<Rows, QueryError> {
        let projection = Need::of(&s.filters(), by, scope).projection();
        // PostgreSQL refuses a constant in GROUP BY.
        let (key, group) = match by {
            Some(b) => (b, format!("{b}, status_class")),
            None => ("''", "status_class".to_string()),
        };
        let (from, to) = s.seconds();
        let mut out = Vec::new();
        for (level, lo, hi) in segments(from, to, finest) {
            let w = s.bucket_where(lo, hi, scope);
            let rows = self
                .sums_by(&format!("{key} AS k"), &rollup_table(level, projection), &w, &group)
                .await?;
            for r in &rows {
                out.push((r.try_get("k")?, r.try_get("status_class")?, sums(r)?));
            }
        }
        Ok(out)
    }

    /// The range a question answers for: widened to `finest`'s buckets.
    fn answered_range(s: &Slice, finest: usize) -> (String, String) {
        let (from, to) = s.seconds();
        let w = WIDTHS.get(finest).copied().unwrap_or(60);
        let (from, to) = (from.div_euclid(w) * w, (to + w - 1).div_euclid(w) * w);
        (format_ms(from * 1000), format_ms(to * 1000))
    }

    /// The summary of a slice; `finest` is the finest level read.
    pub(crate) async fn summary(&self, s: &Slice, scope: &Scope, finest: usize) -> Result<Summary, QueryError> {
        let mut t = Totals::default();
        for (_, class, sums) in self.rows(s, scope, finest, None).await? {
            t.add(class, &sums);
        }
        let (from, to) = Self::answered_range(s, finest);
        Ok(Summary {
            from,
            to,
            granularity: LEVEL_NAMES[finest.min(2)],
            figures: (&t).into(),
        })
    }

    /// A time series of a slice, in a step chosen from its span.
    pub(crate) async fn series(&self, s: &Slice, scope: &Scope, finest: usize) -> Result<Series, QueryError> {
        let (from, to) = s.seconds();
        let (step, level) = series_step((to - from).max(1), finest);
        let (lo, hi) = (from.div_euclid(step) * step, (to + step - 1).div_euclid(step) * step);
        let projection = Need::of(&s.filters(), None, scope).projection();
        let w = s.bucket_where(lo, hi, scope);
        let t = format!("bucket - (bucket % {step}) AS t");
        let rows = self
            .sums_by(&t, &rollup_table(level, projection), &w, "t, status_class ORDER BY t")
            .await?;
        let mut by_time: BTreeMap<i64, Totals> = BTreeMap::new();
        for r in &rows {
            let t: i64 = r.try_get("t")?;
            by_time.entry(t).or_default().add(r.try_get("status_class")?, &sums(r)?);
        }
        Ok(Series {
            from: format_ms(lo * 1000),
            to: format_ms(hi * 1000),
            granularity: LEVEL_NAMES[level.min(2)],
            step_seconds: step,
            points: by_time
                .iter()
                .map(|(t, tot)| Point {
                    time: format_ms(t * 1000),
                    figures: tot.into(),
                })
                .collect(),
        })
    }

    /// The top `n` values of `by` in a slice, ordered by `metric`.
    pub(crate) async fn top(
        &self,
        s: &Slice,
        scope: &Scope,
        finest: usize,
        by: &str,
        metric: &str,
        n: usize,
    ) -> Result<Top, QueryError> {
        let Some(by) = TOP_BY.iter().copied().find(|b| *b == by) else {
            return Err(QueryError::Invalid(format!("by: one of {}", TOP_BY.join(", "))));
        };
        if !TOP_METRICS.contains(&metric) {
            return Err(QueryError::Invalid(format!(
                "metric: one of {}",
                TOP_METRICS.join(", ")
            )));
        }
        let mut groups: BTreeMap<String, Totals> = BTreeMap::new();
        for (name, class, sums) in self.rows(s, scope, finest, Some(by)).await? {
            groups.entry(name).or_default().add(class, &sums);
        }
        let mut items: Vec<Group> = groups
            .into_iter()
            .map(|(name, t)| Group {
                name: none_if_empty(name),
                figures: (&t).into(),
            })
            .collect();
        let key = |g: &Group| -> f64 {
            let f = &g.figures;
            match metric {
                "errors" => f.errors as f64,
                "latency" => f.p95_ms.unwrap_or(0.0),
                "tokens" => (f.input_tokens + f.output_tokens) as f64,
                "cost" => f.cost_usd,
                _ => f.requests as f64,
            }
        };
        items.sort_by(|a, b| key(b).total_cmp(&key(a)).then_with(|| a.name.cmp(&b.name)));
        items.truncate(n.clamp(1, 1000));
        let (from, to) = Self::answered_range(s, finest);
        Ok(Top {
            from,
            to,
            granularity: LEVEL_NAMES[finest.min(2)],
            by: by.to_string(),
            metric: metric.to_string(),
            items,
        })
    }

    /// Tokens and cost per application (and its team) or per team, per day
    /// or month, from the daily rollups.
    pub(crate) async fn usage(
        &self,
        s: &Slice,
        scope: &Scope,
        by_team: bool,
        monthly: bool,
    ) -> Result<Vec<UsageRow>, QueryError> {
        let (from, to) = s.seconds();
        let day = WIDTHS[2];
        let (lo, hi) = (from.div_euclid(day) * day, (to + day - 1).div_euclid(day) * day);
        let mut need = Need::of(&s.filters(), Some("team"), scope);
        if !by_team {
            need.dims.push("application");
        }
        let w = s.bucket_where(lo, hi, scope);
        let sql = format!(
            "SELECT bucket, application, team, CAST(SUM(requests) AS BIGINT) AS requests, \
             CAST(SUM(input_tokens) AS BIGINT) AS input_tokens, CAST(SUM(cached_tokens) AS BIGINT) AS cached_tokens, \
             CAST(SUM(output_tokens) AS BIGINT) AS output_tokens, COALESCE(SUM(cost_usd), 0.0) AS cost_usd \
             FROM {} {} GROUP BY bucket, application, team",
            rollup_table(2, need.projection()),
            w.sql()
        );
        let rows = w
            .bind(sqlx::query(sqlx::AssertSqlSafe(sql)))
            .fetch_all(&self.pool)
            .await?;
        let mut out: BTreeMap<(String, String, String), UsageRow> = BTreeMap::new();
        for r in &rows {
            let bucket: i64 = r.try_get("bucket")?;
            let day = format_ms(bucket * 1000);
            let period = day.get(..if monthly { 7 } else { 10 }).unwrap_or(&day).to_string();
            let team: String = r.try_get("team")?;
            let app: String = if by_team {
                String::new()
            } else {
                r.try_get("application")?
            };
            let row = out
                .entry((period.clone(), team.clone(), app.clone()))
                .or_insert_with(|| UsageRow {
                    period,
                    application: none_if_empty(app),
                    team: none_if_empty(team),
                    requests: 0,
                    input_tokens: 0,
                    cached_tokens: 0,
                    output_tokens: 0,
                    cost_usd: 0.0,
                });
            row.requests += r.try_get::<i64, _>("requests")?;
            row.input_tokens += r.try_get::<i64, _>("input_tokens")?;
            row.cached_tokens += r.try_get::<i64, _>("cached_tokens")?;
            row.output_tokens += r.try_get::<i64, _>("output_tokens")?;
            row.cost_usd += r.try_get::<f64, _>("cost_usd")?;
        }
        Ok(out.into_values().collect())
    }
}

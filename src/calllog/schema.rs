//! The call log's tables, one migration list for both backends, applied in
//! order at open and recorded in `calllog_schema`; embedded in the binary.
//!
//! - `calls`: one raw record per kept call, `at_ms` (unix milliseconds) its
//!   time; `mcp_tool` (added by the third migration) the MCP tools it called. Indexed by time, by request id, and by service and by
//!   application over time: the log page's filters start from one of them.
//! - `calls_minute`, `calls_hour`, `calls_day`: the rollups, one row per
//!   bucket (unix seconds of its start) and dimension set, with sums and a
//!   latency histogram in fixed buckets ([`super::rollup::BOUNDS_MS`]), so
//!   percentiles merge across rows.
//! - `call_batches`: the id and time of each batch written on PostgreSQL,
//!   in the batch's own transaction, kept a day ([`BATCH_IDS_KEPT_MS`]): a
//!   batch written again after its COMMIT's answer was lost finds its id
//!   and is not counted twice.
//! - `calls_<level>_<projection>` ([`PROJECTIONS`]): the same rollups
//!   keeping fewer dimensions (the others are `''`), so that a question
//!   about one dimension reads a row per value of it and bucket, not one
//!   per route, application, status class and model. Same columns as the
//!   full rollup, so one upsert and one query serve every table.
//!
//! Every integer is `BIGINT`, so both backends read back an `i64`.

use crate::store::Backend;

/// How long a written batch's id is kept: far longer than the writer holds a
/// batch to write it again.
pub(crate) const BATCH_IDS_KEPT_MS: i64 = 24 * 3600 * 1000;

/// The rollup tables keeping every dimension, finest first.
pub(crate) const ROLLUPS: [&str; 3] = ["calls_minute", "calls_hour", "calls_day"];

/// The rollups' projections, narrowest first: a table suffix and the
/// dimensions kept. The last is the full rollup (no suffix).
pub(crate) const PROJECTIONS: &[(&str, &[&str])] = &[
    ("total", &["status_class"]),
    ("service", &["service", "service_team", "status_class"]),
    ("application", &["application", "team", "status_class"]),
    ("model", &["provider", "model", "status_class"]),
    ("teams", &["service_team", "team", "status_class"]),
    ("route", &["service", "service_team", "route", "status_class"]),
    ("", DIMENSIONS),
];

/// The table of rollup `level` (0: minute) in `projection`.
pub(crate) fn rollup_table(level: usize, projection: usize) -> String {
    let base = ROLLUPS.get(level).copied().unwrap_or("calls_day");
    match PROJECTIONS.get(projection).map(|p| p.0) {
        Some(suffix) if !suffix.is_empty() => format!("{base}_{suffix}"),
        _ => base.to_string(),
    }
}

/// Every rollup table with its level.
pub(crate) fn rollup_tables() -> Vec<(usize, String)> {
    (0..ROLLUPS.len())
        .flat_map(|l| (0..PROJECTIONS.len()).map(move |p| (l, rollup_table(l, p))))
        .collect()
}

/// The raw table's columns, in insert order.
pub(crate) const CALL_COLUMNS: &[&str] = &[
    "at_ms",
    "request_id",
    "client_ip",
    "method",
    "host",
    "path",
    "route",
    "service",
    "service_team",
    "application",
    "team",
    "credential",
    "upstream",
    "target",
    "status",
    "error",
    "bytes_in",
    "bytes_out",
    "duration_us",
    "upstream_us",
    "retries",
    "provider",
    "model",
    "model_answered",
    "input_tokens",
    "cached_tokens",
    "output_tokens",
    "cost_usd",
    "usage_estimated",
    "detail",
    "mcp_tool",
];

/// A rollup's dimensions: its key with the bucket. `''` stands for none.
pub(crate) const DIMENSIONS: &[&str] = &[
    "service",
    "service_team",
    "route",
    "application",
    "team",
    "status_class",
    "provider",
    "model",
];

/// A rollup's sums, before the histogram's `h0..hN`.
pub(crate) const SUMS: &[&str] = &[
    "requests",
    "errors",
    "bytes_in",
    "bytes_out",
    "duration_us",
    "input_tokens",
    "cached_tokens",
    "output_tokens",
    "cost_usd",
];

fn calls_table(auto_id: &str) -> String {
    format!(
        "CREATE TABLE calls (
            id {auto_id},
            at_ms BIGINT NOT NULL,
            request_id TEXT NOT NULL,
            client_ip TEXT,
            method TEXT NOT NULL,
            host TEXT NOT NULL,
            path TEXT NOT NULL,
            route TEXT NOT NULL,
            service TEXT,
            service_team TEXT,
            application TEXT,
            team TEXT,
            credential TEXT,
            upstream TEXT,
            target TEXT,
            status BIGINT NOT NULL,
            error TEXT,
            bytes_in BIGINT NOT NULL,
            bytes_out BIGINT NOT NULL,
            duration_us BIGINT NOT NULL,
            upstream_us BIGINT,
            retries BIGINT NOT NULL,
            provider TEXT,
            model TEXT,
            model_answered TEXT,
            input_tokens BIGINT,
            cached_tokens BIGINT,
            output_tokens BIGINT,
            cost_usd DOUBLE PRECISION,
            usage_estimated BIGINT,
            detail TEXT
        );
        CREATE INDEX calls_at ON calls (at_ms);
        CREATE INDEX calls_request ON calls (request_id);
        CREATE INDEX calls_service ON calls (service, at_ms);
        CREATE INDEX calls_application ON calls (application, at_ms);"
    )
}

fn rollup_ddl(name: &str) -> String {
    let buckets: String = (0..super::rollup::BUCKETS)
        .map(|i| format!("h{i} BIGINT NOT NULL DEFAULT 0,\n"))
        .collect();
    format!(
        "CREATE TABLE {name} (
            bucket BIGINT NOT NULL,
            service TEXT NOT NULL,
            service_team TEXT NOT NULL,
            route TEXT NOT NULL,
            application TEXT NOT NULL,
            team TEXT NOT NULL,
            status_class BIGINT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            requests BIGINT NOT NULL,
            errors BIGINT NOT NULL,
            bytes_in BIGINT NOT NULL,
            bytes_out BIGINT NOT NULL,
            duration_us BIGINT NOT NULL,
            input_tokens BIGINT NOT NULL,
            cached_tokens BIGINT NOT NULL,
            output_tokens BIGINT NOT NULL,
            cost_usd DOUBLE PRECISION NOT NULL,
            {buckets}PRIMARY KEY (bucket, service, route, application, status_class, provider, model, service_team, team)
        );"
    )
}

/// The migrations for `backend`, in order.
pub(crate) fn migrations(backend: Backend) -> Vec<String> {
    let auto_id = match backend {
        Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
        Backend::Postgres => "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    };
    let mut first = calls_table(auto_id);
    for t in ROLLUPS {
        first.push('\n');
        first.push_str(&rollup_ddl(t));
    }
    let mut second = String::new();
    for (_, t) in rollup_tables().iter().filter(|(_, t)| !ROLLUPS.contains(&t.as_str())) {
        second.push_str(&rollup_ddl(t));
        second.push('\n');
    }
    // The MCP tools a call used (migration 3).
    let third = "ALTER TABLE calls ADD COLUMN mcp_tool TEXT;".to_string();
    // The batches written, by id (migration 4): PostgreSQL's writer asks it
    // whether a batch whose COMMIT got no answer was written after all.
    let fourth = "CREATE TABLE call_batches (id TEXT PRIMARY KEY, at_ms BIGINT NOT NULL);
        CREATE INDEX call_batches_at ON call_batches (at_ms);"
        .to_string();
    vec![first, second, third, fourth]
}

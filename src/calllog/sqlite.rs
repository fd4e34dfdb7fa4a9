//! The call log's writes on SQLite, through `rusqlite` (the maintained
//! synchronous binding, on the same bundled SQLite as `sqlx`): one prepared
//! insert and one prepared upsert per rollup level, executed row by row in
//! one transaction per batch. The writer thread is the only writer and has
//! nothing else to do, so a synchronous connection suits it; through
//! `sqlx`'s async driver the same batch cost two orders of magnitude more
//! (each statement crosses to a worker thread, and a multi-row statement's
//! thousands of `$n` parameters are bound by name).
//!
//! Everything else (the schema, retention, the queries) goes through
//! [`super::db::CallDb`].

use super::db::{insert_sql, upsert_sql};
use super::rollup::{Batch, Key, Sums};
use super::schema::rollup_tables;
use crate::telemetry::call::CallRecord;
use rusqlite::{params, Connection};
use std::sync::Arc;
use std::time::Duration;

/// The writer's connection.
pub(crate) struct SqliteWriter {
    conn: Connection,
    insert: String,
    /// Each rollup table's upsert.
    upserts: std::collections::HashMap<String, String>,
}

/// The file of a `sqlite:` URL.
pub(crate) fn path_of(url: &str) -> &str {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    rest.split('?').next().unwrap_or_default()
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl SqliteWriter {
    /// Opens the file of `url` (its schema already made by
    /// [`super::db::CallDb::open`]).
    pub(crate) fn open(url: &str) -> rusqlite::Result<SqliteWriter> {
        let conn = Connection::open(path_of(url))?;
        conn.busy_timeout(Duration::from_secs(5))?;
        // WAL is the file's mode already; NORMAL syncs at checkpoints, not
        // on every commit, which WAL keeps safe from corruption.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // The insert and every rollup table's upsert stay prepared.
        conn.set_prepared_statement_cache_capacity(64);
        let insert = insert_sql(1);
        Ok(SqliteWriter {
            conn,
            insert,
            upserts: rollup_tables()
                .into_iter()
                .map(|(_, t)| {
                    let sql = upsert_sql(&t, 1);
                    (t, sql)
                })
                .collect(),
        })
    }

    /// Writes a batch in one transaction; how many raw records were kept.
    pub(crate) fn write(&mut self, records: &[Arc<CallRecord>]) -> rusqlite::Result<usize> {
        let rollups = Batch::of(records);
        let tx = self.conn.transaction()?;
        let mut kept = 0;
        {
            let mut insert = tx.prepare_cached(&self.insert)?;
            for r in records.iter().filter(|r| r.keep) {
                insert_one(&mut insert, r)?;
                kept += 1;
            }
            for (table, rows) in &rollups.tables {
                let Some(sql) = self.upserts.get(table) else { continue };
                let mut upsert = tx.prepare_cached(sql)?;
                for (k, s) in rows {
                    upsert_one(&mut upsert, k, s)?;
                }
            }
        }
        tx.commit()?;
        Ok(kept)
    }
}

fn insert_one(stmt: &mut rusqlite::CachedStatement<'_>, r: &CallRecord) -> rusqlite::Result<()> {
    let ai = r.ai.as_deref();
    let detail = r.capture.as_deref().and_then(|c| serde_json::to_string(c).ok());
    stmt.execute(params![
        r.unix_ms(),
        r.request_id,
        r.client_ip.map(|ip| ip.to_string()),
        r.method.as_str(),
        r.host,
        r.path,
        &*r.route,
        r.service.as_deref(),
        r.service_team.as_deref(),
        r.consumer,
        r.team,
        r.credential.as_deref(),
        r.upstream,
        r.target,
        i64::from(r.status),
        r.error,
        int(r.bytes_in),
        int(r.bytes_out),
        micros(r.duration),
        r.upstream_time.map(micros),
        i64::from(r.retries),
        ai.map(|a| a.provider.as_str()),
        ai.map(|a| a.model.as_str()),
        ai.map(|a| a.provider_model.as_str()),
        ai.map(|a| int(a.prompt_tokens)),
        ai.map(|a| int(a.cached_tokens)),
        ai.map(|a| int(a.completion_tokens)),
        ai.map(|a| a.cost_usd),
        ai.map(|a| i64::from(a.usage_estimated)),
        detail,
        r.mcp_tool.as_deref(),
    ])?;
    Ok(())
}

fn upsert_one(stmt: &mut rusqlite::CachedStatement<'_>, k: &Key, s: &Sums) -> rusqlite::Result<()> {
    let [h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15] = s.hist;
    stmt.execute(params![
        k.bucket,
        k.service,
        k.service_team,
        k.route,
        k.application,
        k.team,
        k.status_class,
        k.provider,
        k.model,
        s.requests,
        s.errors,
        s.bytes_in,
        s.bytes_out,
        s.duration_us,
        s.input_tokens,
        s.cached_tokens,
        s.output_tokens,
        s.cost_usd,
        h0,
        h1,
        h2,
        h3,
        h4,
        h5,
        h6,
        h7,
        h8,
        h9,
        h10,
        h11,
        h12,
        h13,
        h14,
        h15,
    ])?;
    Ok(())
}

//! The call log's database: SQLite (its own file, apart from the config
//! store: the log is large and hot, the config small and precious) or
//! PostgreSQL, through the same `sqlx` code as the store for the schema,
//! retention and the queries ([`super::query`], [`super::analytics`]). The
//! writer thread appends batches through a [`CallWriter`]: on SQLite with
//! [`super::sqlite`], on PostgreSQL with [`CallDb::write`].
//!
//! A batch is one transaction: the kept records and the batch's rollups as
//! upserts that add to what each row holds. On PostgreSQL both are
//! multi-row statements (100 rows each), and the transaction first records
//! the batch's id in `call_batches`: when the connection is lost after
//! COMMIT was sent, the writer cannot know whether it was applied, and
//! writes the batch again ([`super::writer`]); an id already there means
//! it was, and the second write is rolled back instead of counting every
//! call twice. SQLite's writer has no such doubt: its COMMIT runs in the
//! process.

use super::rollup::{Batch, Key, Sums, BUCKETS};
use super::schema::{self, CALL_COLUMNS, DIMENSIONS, SUMS};
use crate::store::{connect, migrate, Backend, StoreError};
use crate::telemetry::call::CallRecord;
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyPool, Row};
use std::sync::Arc;

/// Rows per insert statement.
const INSERT_ROWS: usize = 100;
/// Rollup rows per upsert statement.
const UPSERT_ROWS: usize = 100;

/// The call log's database.
#[derive(Debug, Clone)]
pub(crate) struct CallDb {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
}

type Q<'a> = Query<'a, Any, AnyArguments>;

fn opt(s: Option<&str>) -> Option<String> {
    s.map(str::to_string)
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// `(` + `$n, ...` for `cols` columns from `first` + `)`.
fn placeholders(first: usize, cols: usize) -> String {
    let list: Vec<String> = (first..first + cols).map(|i| format!("${i}")).collect();
    format!("({})", list.join(", "))
}

fn values(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| placeholders(r * cols + 1, cols))
        .collect::<Vec<_>>()
        .join(", ")
}

fn bind_call<'a>(q: Q<'a>, r: &'a CallRecord) -> Q<'a> {
    let ai = r.ai.as_deref();
    let detail = r.capture.as_deref().and_then(|c| serde_json::to_string(c).ok());
    q.bind(r.unix_ms())
        .bind(r.request_id.as_str())
        .bind(r.client_ip.map(|ip| ip.to_string()))
        .bind(r.method.as_str())
        .bind(r.host.as_str())
        .bind(r.path.as_str())
        .bind(&*r.route)
        .bind(opt(r.service.as_deref()))
        .bind(opt(r.service_team.as_deref()))
        .bind(r.consumer.as_deref())
        .bind(r.team.as_deref())
        .bind(r.credential.as_deref())
        .bind(r.upstream.as_deref())
        .bind(r.target.as_deref())
        .bind(i64::from(r.status))
        .bind(r.error)
        .bind(int(r.bytes_in))
        .bind(int(r.bytes_out))
        .bind(micros(r.duration))
        .bind(r.upstream_time.map(micros))
        .bind(i64::from(r.retries))
        .bind(ai.map(|a| a.provider.as_str()))
        .bind(ai.map(|a| a.model.as_str()))
        .bind(ai.map(|a| a.provider_model.as_str()))
        .bind(ai.map(|a| int(a.prompt_tokens)))
        .bind(ai.map(|a| int(a.cached_tokens)))
        .bind(ai.map(|a| int(a.completion_tokens)))
        .bind(ai.map(|a| a.cost_usd))
        .bind(ai.map(|a| i64::from(a.usage_estimated)))
        .bind(detail)
        .bind(opt(r.mcp_tool.as_deref()))
}

fn bind_rollup<'a>(q: Q<'a>, k: &'a Key, s: &'a Sums) -> Q<'a> {
    let mut q = q
        .bind(k.bucket)
        .bind(k.service.as_str())
        .bind(k.service_team.as_str())
        .bind(k.route.as_str())
        .bind(k.application.as_str())
        .bind(k.team.as_str())
        .bind(k.status_class)
        .bind(k.provider.as_str())
        .bind(k.model.as_str())
        .bind(s.requests)
        .bind(s.errors)
        .bind(s.bytes_in)
        .bind(s.bytes_out)
        .bind(s.duration_us)
        .bind(s.input_tokens)
        .bind(s.cached_tokens)
        .bind(s.output_tokens)
        .bind(s.cost_usd);
    for h in s.hist {
        q = q.bind(h);
    }
    q
}

fn hist_columns() -> Vec<String> {
    (0..BUCKETS).map(|i| format!("h{i}")).collect()
}

/// The upsert of `rows` rollup rows into `table` (`$n` placeholders, which
/// both backends take).
pub(super) fn upsert_sql(table: &str, rows: usize) -> String {
    let hist = hist_columns();
    let mut cols: Vec<&str> = vec!["bucket"];
    cols.extend(DIMENSIONS);
    cols.extend(SUMS);
    cols.extend(hist.iter().map(String::as_str));
    let adds: Vec<String> = SUMS
        .iter()
        .copied()
        .chain(hist.iter().map(String::as_str))
        .map(|c| format!("{c} = {table}.{c} + excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO {table} ({}) VALUES {} ON CONFLICT (bucket, service, route, application, status_class, provider, model, service_team, team) DO UPDATE SET {}",
        cols.join(", "),
        values(rows, cols.len()),
        adds.join(", ")
    )
}

pub(super) fn insert_sql(rows: usize) -> String {
    format!(
        "INSERT INTO calls ({}) VALUES {}",
        CALL_COLUMNS.join(", "),
        values(rows, CALL_COLUMNS.len())
    )
}

impl CallDb {
    /// Opens (and for SQLite creates) the call log at `url` and brings its
    /// schema up to date. `readers`: connections for queries (SQLite).
    ///
    /// The writer thread and the admin API's reader open the same file, on
    /// a busy machine at the same moment. One open at a time in a process:
    /// two at once would both see a new file, both rewrite it and both
    /// migrate, and one of them would fail with "database is locked".
    pub(crate) async fn open(url: &str, readers: u32) -> Result<CallDb, StoreError> {
        static OPENING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _one_at_a_time = OPENING.lock().await;
        let (pool, backend) = connect(url, readers.max(1), readers.max(2)).await?;
        if backend == Backend::Sqlite {
            // Pages freed by retention go back to the file system through
            // `incremental_vacuum`. The mode takes effect on a new file
            // only, and on the connection that sets it: set it and rewrite
            // the (still empty) file on one connection, before any table.
            let mut conn = pool.acquire().await?;
            let tables: i64 = sqlx::query("SELECT COUNT(*) AS n FROM sqlite_master WHERE name = 'calls'")
                .fetch_one(&mut *conn)
                .await?
                .try_get("n")?;
            if tables == 0 {
                sqlx::query("PRAGMA auto_vacuum = INCREMENTAL")
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("VACUUM").execute(&mut *conn).await?;
            }
        }
        migrate(&pool, backend, "calllog_schema", &schema::migrations(backend)).await?;
        Ok(CallDb { pool, backend })
    }

    /// Writes batch `id` (PostgreSQL's way): its id, the kept records and
    /// every record's rollups, in one transaction. Returns how many raw
    /// records were written, or were already: a batch whose id is in
    /// `call_batches` was written before, and is not written again.
    pub(crate) async fn write(&self, id: &str, records: &[Arc<CallRecord>]) -> Result<usize, StoreError> {
        let kept: Vec<&CallRecord> = records.iter().filter(|r| r.keep).map(|r| &**r).collect();
        let rollups = Batch::of(records);
        let mut tx = self.pool.begin().await?;
        let new = sqlx::query("INSERT INTO call_batches (id, at_ms) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
            .bind(id)
            // When it was first written: its records may be older (held
            // while the database was down).
            .bind(super::writer::now_ms())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if new == 0 {
            tx.rollback().await?;
            log::info!("call log: batch {id} was written before its answer was lost; not written again");
            return Ok(kept.len());
        }
        let full = insert_sql(INSERT_ROWS);
        for chunk in kept.chunks(INSERT_ROWS) {
            let sql = if chunk.len() == INSERT_ROWS {
                full.clone()
            } else {
                insert_sql(chunk.len())
            };
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for r in chunk {
                q = bind_call(q, r);
            }
            q.execute(&mut *tx).await?;
        }
        for (table, rows) in &rollups.tables {
            let rows: Vec<(&Key, &Sums)> = rows.iter().collect();
            for chunk in rows.chunks(UPSERT_ROWS) {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(upsert_sql(table, chunk.len())));
                for (k, s) in chunk {
                    q = bind_rollup(q, k, s);
                }
                q.execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(kept.len())
    }
}

/// Why a batch was not written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// The writer's side of the database: SQLite through `rusqlite`
/// ([`super::sqlite`]), PostgreSQL through `sqlx` (multi-row inserts).
pub(crate) struct CallWriter {
    pub(crate) db: CallDb,
    sqlite: Option<super::sqlite::SqliteWriter>,
}

impl CallWriter {
    /// Opens the database at `url`, making its schema first.
    pub(crate) async fn open(url: &str) -> Result<CallWriter, WriteError> {
        let db = CallDb::open(url, 1).await?;
        let sqlite = match db.backend {
            Backend::Sqlite => Some(super::sqlite::SqliteWriter::open(url)?),
            Backend::Postgres => None,
        };
        Ok(CallWriter { db, sqlite })
    }

    /// Writes batch `id` in one transaction; how many raw records were kept.
    pub(crate) async fn write(&mut self, id: &str, records: &[Arc<CallRecord>]) -> Result<usize, WriteError> {
        match &mut self.sqlite {
            Some(w) => Ok(w.write(records)?),
            None => Ok(self.db.write(id, records).await?),
        }
    }
}

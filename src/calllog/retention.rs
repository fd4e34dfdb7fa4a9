//! Retention, enforced by the gateway: raw records older than `raw_age`, or
//! beyond `raw_size` (oldest first), whichever comes first; each rollup
//! level after its own age. The writer runs one [`CallDb::retain_step`]
//! between batches while there is work, so deletion goes in small
//! transactions that never hold writes or queries up for long. On SQLite the
//! freed pages go back to the file system (`auto_vacuum = INCREMENTAL`), so
//! the file does not grow without bound.
//!
//! Every step takes the time as an argument: the tests turn the clock.

use super::db::CallDb;
use super::rollup::WIDTHS;
use super::schema::{rollup_tables, BATCH_IDS_KEPT_MS};
use crate::config::RetentionConfig;
use crate::store::{Backend, StoreError};
use sqlx::Row;

/// Raw rows deleted per statement.
const DELETE_ROWS: i64 = 5000;
/// Rollup buckets deleted per statement, per level.
const DELETE_BUCKETS: i64 = 60;

/// Retention in the units the database holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retention {
    pub raw_age_ms: i64,
    pub raw_size: u64,
    /// Seconds each rollup level is kept, finest first.
    pub levels: [i64; 3],
    /// How often the writer looks for work.
    pub interval: std::time::Duration,
}

impl From<&RetentionConfig> for Retention {
    fn from(c: &RetentionConfig) -> Retention {
        let secs = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Retention {
            raw_age_ms: i64::try_from(c.raw_age.0.as_millis()).unwrap_or(i64::MAX),
            raw_size: c.raw_size.0,
            levels: [secs(c.minute.0), secs(c.hour.0), secs(c.day.0)],
            interval: c.interval.0,
        }
    }
}

/// What one step deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Swept {
    pub raw_by_age: u64,
    pub raw_by_size: u64,
    pub rollup_rows: u64,
    /// More is due: run another step soon.
    pub more: bool,
}

impl CallDb {
    /// Bytes the raw records take: SQLite's used pages (the whole file but
    /// its free pages), PostgreSQL's `calls` table with its indexes.
    pub(crate) async fn size(&self) -> Result<u64, StoreError> {
        let n: i64 = match self.backend {
            Backend::Sqlite => {
                let pages: i64 = sqlx::query("PRAGMA page_count")
                    .fetch_one(&self.pool)
                    .await?
                    .try_get(0)?;
                let free: i64 = sqlx::query("PRAGMA freelist_count")
                    .fetch_one(&self.pool)
                    .await?
                    .try_get(0)?;
                let size: i64 = sqlx::query("PRAGMA page_size")
                    .fetch_one(&self.pool)
                    .await?
                    .try_get(0)?;
                (pages - free) * size
            }
            Backend::Postgres => sqlx::query("SELECT pg_total_relation_size('calls') AS n")
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Rows to delete to bring `size` under `cap`: the excess over the
    /// average row's size (ids are dense enough to count rows by).
    async fn rows_over(&self, size: u64, cap: u64) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT MIN(id) AS lo, MAX(id) AS hi FROM calls")
            .fetch_one(&self.pool)
            .await?;
        let (lo, hi): (Option<i64>, Option<i64>) = (row.try_get("lo")?, row.try_get("hi")?);
        let rows = match (lo, hi) {
            (Some(lo), Some(hi)) => u64::try_from(hi - lo + 1).unwrap_or(1).max(1),
            _ => return Ok(0),
        };
        let per_row = (size / rows).max(1);
        Ok(i64::try_from((size - cap) / per_row + 1).unwrap_or(DELETE_ROWS))
    }

    async fn delete_raw(&self, condition: &str, bind: Option<i64>, most: i64) -> Result<u64, StoreError> {
        let most = most.clamp(1, DELETE_ROWS);
        let sql =
            format!("DELETE FROM calls WHERE id IN (SELECT id FROM calls {condition} ORDER BY at_ms LIMIT {most})");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(b) = bind {
            q = q.bind(b);
        }
        Ok(q.execute(&self.pool).await?.rows_affected())
    }

    /// One step of retention at `now_ms` (unix milliseconds).
    pub(crate) async fn retain_step(&self, r: &Retention, now_ms: i64) -> Result<Swept, StoreError> {
        let raw_by_age = self
            .delete_raw(
                "WHERE at_ms < $1",
                Some(now_ms.saturating_sub(r.raw_age_ms)),
                DELETE_ROWS,
            )
            .await?;
        let mut out = Swept {
            raw_by_age,
            ..Swept::default()
        };
        if out.raw_by_age == 0 {
            let size = self.size().await?;
            if size > r.raw_size {
                let rows = self.rows_over(size, r.raw_size).await?;
                out.raw_by_size = self.delete_raw("", None, rows).await?;
            }
        }
        let now = now_ms.div_euclid(1000);
        for (level, table) in rollup_tables() {
            let (Some(&keep), Some(&width)) = (r.levels.get(level), WIDTHS.get(level)) else {
                continue;
            };
            let cutoff = now.saturating_sub(keep);
            let oldest: Option<i64> = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT MIN(bucket) AS b FROM {table}")))
                .fetch_one(&self.pool)
                .await?
                .try_get("b")?;
            let Some(oldest) = oldest.filter(|&o| o < cutoff) else {
                continue;
            };
            let upto = cutoff.min(oldest.saturating_add(width.saturating_mul(DELETE_BUCKETS)));
            out.rollup_rows += sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE bucket < $1")))
                .bind(upto)
                .execute(&self.pool)
                .await?
                .rows_affected();
            out.more |= upto < cutoff;
        }
        // Written batches' ids (PostgreSQL's), past the time a batch is
        // held to be written again.
        sqlx::query("DELETE FROM call_batches WHERE at_ms < $1")
            .bind(now_ms.saturating_sub(BATCH_IDS_KEPT_MS))
            .execute(&self.pool)
            .await?;
        let raw = out.raw_by_age + out.raw_by_size;
        if raw > 0 && self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA incremental_vacuum").execute(&self.pool).await?;
        }
        out.more |= raw >= u64::try_from(DELETE_ROWS).unwrap_or(u64::MAX) || out.raw_by_size > 0;
        Ok(out)
    }
}

//! Opening a database, for the store and the call log alike: which backend
//! a URL names, the pool, the migrations, write transactions, and the URL
//! as logs and errors show it (without its password). The `url` crate (the
//! WHATWG parser behind `reqwest`) parses URLs, so the password is found
//! where a driver finds it: in the user-info part or in a `password` query
//! parameter.
//!
//! On SQLite a write transaction takes the write lock when it begins
//! (`BEGIN IMMEDIATE`). A deferred one reads first and fails at once with
//! `SQLITE_BUSY`, without waiting its busy timeout, when another connection
//! writes in between: with the store watcher, SIGHUP reloads, budget spend
//! and the admin API on one file, that would turn a busy moment into an
//! error.

use super::{Backend, StoreError};
use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyPool, Row, Transaction};
use std::time::Duration;

/// Which database `url` names.
pub(crate) fn backend_of(url: &str) -> Result<Backend, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else {
        Err(StoreError::Url(redacted(url)))
    }
}

/// `url` as logs and errors show it: as written when it holds no password,
/// else with the password replaced by `***`. A URL that does not parse
/// shows its scheme only.
pub(crate) fn redacted(text: &str) -> String {
    let Ok(mut url) = url::Url::parse(text) else {
        let scheme = text.split_once("://").map_or("", |(s, _)| s);
        return format!("{scheme}://(a URL that does not parse)");
    };
    let secret = |k: &str| k.eq_ignore_ascii_case("password");
    let in_query = url.query_pairs().any(|(k, _)| secret(&k));
    if url.password().is_none() && !in_query {
        return text.to_string();
    }
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    if in_query {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret(&k) { "***".into() } else { v.into_owned() };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

/// A pool on `url`: SQLite (its file and folder made on first use, in WAL
/// mode) with `sqlite_connections`, PostgreSQL with `pg_connections`.
pub(crate) async fn connect(
    url: &str,
    sqlite_connections: u32,
    pg_connections: u32,
) -> Result<(AnyPool, Backend), StoreError> {
    sqlx::any::install_default_drivers();
    let backend = backend_of(url)?;
    if backend == Backend::Sqlite {
        // The file is created on first use, and so is its folder.
        let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
        let path = std::path::Path::new(path.split('?').next().unwrap_or_default());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Db(sqlx::Error::Io(e)))?;
        }
    }
    let url = match backend {
        // Created on first use; WAL lets readers go on during a write.
        Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
        _ => url.to_string(),
    };
    let pool = AnyPoolOptions::new()
        .max_connections(if backend == Backend::Sqlite {
            sqlite_connections
        } else {
            pg_connections
        })
        .acquire_timeout(Duration::from_secs(10))
        .connect(&url)
        .await?;
    if backend == Backend::Sqlite {
        sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
    }
    Ok((pool, backend))
}

/// A write transaction: on SQLite it takes the write lock now (see the
/// module's doc), waiting the busy timeout for another writer.
pub(crate) async fn begin_write(pool: &AnyPool, backend: Backend) -> Result<Transaction<'static, Any>, sqlx::Error> {
    match backend {
        Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
        Backend::Postgres => pool.begin().await,
    }
}

/// How many migrations `table` records.
async fn migrated<'e, E: sqlx::Executor<'e, Database = Any>>(table: &str, on: E) -> Result<usize, StoreError> {
    let max = format!("SELECT MAX(version) AS v FROM {table}");
    let done: Option<i64> = sqlx::query(sqlx::AssertSqlSafe(max))
        .fetch_one(on)
        .await?
        .try_get("v")?;
    Ok(usize::try_from(done.unwrap_or(0)).unwrap_or(0))
}

/// Applies the migrations of `list` not yet recorded in `table`, in order,
/// in one write transaction. An up-to-date database is only read, so every
/// open (each reload opens the store) takes no write lock.
pub(crate) async fn migrate(pool: &AnyPool, backend: Backend, table: &str, list: &[String]) -> Result<(), StoreError> {
    let create = format!("CREATE TABLE IF NOT EXISTS {table} (version BIGINT NOT NULL)");
    sqlx::raw_sql(sqlx::AssertSqlSafe(create)).execute(pool).await?;
    if migrated(table, pool).await? >= list.len() {
        return Ok(());
    }
    let mut tx = begin_write(pool, backend).await?;
    // Again under the lock: another opener may have migrated meanwhile.
    let done = migrated(table, &mut *tx).await?;
    let insert = format!("INSERT INTO {table} (version) VALUES ($1)");
    for (i, sql) in list.iter().enumerate().skip(done) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.as_str()))
            .execute(&mut *tx)
            .await?;
        sqlx::query(sqlx::AssertSqlSafe(insert.as_str()))
            .bind(i64::try_from(i + 1).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_its_password() {
        assert_eq!(
            redacted("postgres://portico:s3cret@db:5432/calls"),
            "postgres://portico:***@db:5432/calls"
        );
        assert_eq!(
            redacted("postgres://db/calls?user=portico&password=s3cret&sslmode=require"),
            "postgres://db/calls?user=portico&password=***&sslmode=require"
        );
        assert_eq!(
            redacted("sqlite:///var/lib/portico/calls.db?mode=rwc"),
            "sqlite:///var/lib/portico/calls.db?mode=rwc"
        );
        assert_eq!(redacted("postgres://db/calls"), "postgres://db/calls");
        assert_eq!(redacted("http://x"), "http://x");
        assert_eq!(redacted("redis://:s3cret@cache:6379/0"), "redis://:***@cache:6379/0");
        let bad = redacted("mysql://root:s3cret@[db/x");
        assert!(!bad.contains("s3cret"), "{bad}");
    }

    #[test]
    fn an_unknown_database_is_refused_without_its_password() {
        let e = backend_of("mysql://root:s3cret@db/x").err().map(|e| e.to_string());
        let e = e.unwrap_or_default();
        assert!(e.contains("mysql://root:***@db/x"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
    }
}

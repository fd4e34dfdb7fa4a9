//! The store of store mode: every resource a config declares (routes,
//! upstreams, consumers, AI providers and models, prompt APIs, ...) as rows,
//! in SQLite (bundled, WAL, one file: zero setup) or PostgreSQL (several
//! nodes), through one code path: `sqlx`'s `Any` driver, the maintained
//! async SQL toolkit, so the two backends share every query. Queries use
//! `$1` placeholders, which both accept.
//!
//! Every write is one transaction that checks the resource's version (the
//! admin API's `If-Match`), writes it with the version bumped, bumps the
//! store's revision and appends an audit row; nothing is half-applied. The
//! data plane never reads the store on a request: a process compiles the
//! store's resources, as a declarative config ([`document`]), with the same
//! compiler as a YAML file; a service published through releases is served
//! from its published release ([`release`]).

mod connect;
pub mod document;
pub mod release;
mod schema;
pub mod secrets;
pub mod spend;

pub(crate) use connect::{begin_write, connect, migrate, redacted};

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or could not be reached.
    #[error("store: {0}")]
    Db(#[from] sqlx::Error),
    /// The store URL names no supported database (the URL shown without
    /// its password).
    #[error("store URL {0:?}: use sqlite://PATH or postgres://...")]
    Url(String),
    /// A write's `If-Match` version is not the stored one.
    #[error("{kind} {name:?} is at version {actual}, not {expected}: it changed since it was read")]
    Stale {
        /// The resource's kind.
        kind: String,
        /// The resource's name.
        name: String,
        /// The version the writer read.
        expected: i64,
        /// The version stored now (0: none).
        actual: i64,
    },
    /// No such resource.
    #[error("{kind} {name:?} does not exist")]
    NotFound {
        /// The resource's kind.
        kind: String,
        /// The resource's name.
        name: String,
    },
    /// The store's revision moved between reading it and writing: another
    /// writer (a node, the CLI) changed something the write was checked against.
    #[error("the store changed (revision {actual}, not {expected}) while this write was being checked; retry it")]
    Moved {
        /// The revision the write was checked against.
        expected: i64,
        /// The revision now.
        actual: i64,
    },
    /// A stored body does not parse (written by something else).
    #[error("{kind} {name:?}: the stored body is not JSON: {error}")]
    Corrupt {
        /// The resource's kind.
        kind: String,
        /// The resource's name.
        name: String,
        /// The parser's message.
        error: String,
    },
}

/// Which database the store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, one file (bundled: nothing to install).
    Sqlite,
    /// PostgreSQL, for several nodes.
    Postgres,
}

/// A resource to write: its kind, name and body.
pub type NewResource = (String, String, Value);

/// One stored resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// What it is: `route`, `upstream`, ... ([`document`]).
    pub kind: String,
    /// Its name, unique within its kind.
    pub name: String,
    /// The resource as the config file writes it.
    pub body: Value,
    /// Bumped by every write; the admin API's ETag.
    pub version: i64,
    /// Unix seconds of the last write.
    pub updated_at: i64,
    /// Order among its kind: a new resource goes last.
    pub position: i64,
}

/// One audit row: a write, who made it, and the body before and after.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Increasing; the cursor of [`Store::audit`].
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// Who wrote.
    pub actor: String,
    /// `put`, `delete` or `import`.
    pub action: String,
    /// The resource's kind (`config` for an import).
    pub kind: String,
    /// The resource's name (`*` for an import).
    pub name: String,
    /// The body before the write.
    pub before: Option<Value>,
    /// The body after the write.
    pub after: Option<Value>,
}

/// The store: a connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn resource(row: &AnyRow) -> Result<Resource, StoreError> {
    let kind: String = row.try_get("kind")?;
    let name: String = row.try_get("name")?;
    let text: String = row.try_get("body")?;
    let body = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
        kind: kind.clone(),
        name: name.clone(),
        error: e.to_string(),
    })?;
    Ok(Resource {
        kind,
        name,
        body,
        version: row.try_get("version")?,
        updated_at: row.try_get("updated_at")?,
        position: row.try_get("position")?,
    })
}

/// Err when the writer read another version (`if_match`) than `current`.
fn check_version(kind: &str, name: &str, if_match: Option<i64>, current: i64) -> Result<(), StoreError> {
    match if_match {
        Some(expected) if expected != current => Err(StoreError::Stale {
            kind: kind.into(),
            name: name.into(),
            expected,
            actual: current,
        }),
        _ => Ok(()),
    }
}

fn json_or_null(text: Option<String>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

impl Store {
    /// Opens (and for SQLite creates) the store at `url` and brings its
    /// schema up to date.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let (pool, backend) = connect(url, 1, 8).await?;
        let store = Store { pool, backend };
        migrate(&store.pool, backend, "portico_schema", &schema::migrations(backend)).await?;
        Ok(store)
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The store's revision: bumped by every write.
    pub async fn revision(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT rev FROM revision WHERE id = 1")
            .fetch_one(&self.pool)
            .await?
            .try_get("rev")?)
    }

    /// One resource, if it exists.
    pub async fn get(&self, kind: &str, name: &str) -> Result<Option<Resource>, StoreError> {
        let row = sqlx::query(
            "SELECT kind, name, body, version, updated_at, position FROM resources WHERE kind = $1 AND name = $2",
        )
        .bind(kind)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(resource).transpose()
    }

    /// Resources of `kind` by name, after `after` (a cursor), at most `limit`.
    pub async fn list(&self, kind: &str, after: Option<&str>, limit: i64) -> Result<Vec<Resource>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, name, body, version, updated_at, position FROM resources
             WHERE kind = $1 AND name > $2 ORDER BY name LIMIT $3",
        )
        .bind(kind)
        .bind(after.unwrap_or(""))
        .bind(limit.clamp(0, 1000))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(resource).collect()
    }

    /// Every resource, by kind and name.
    pub async fn all(&self) -> Result<Vec<Resource>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, name, body, version, updated_at, position FROM resources ORDER BY kind, position, name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(resource).collect()
    }

    /// Creates or replaces a resource. With `if_match`, only when the stored
    /// version is that one (0: only when it does not exist yet).
    pub async fn put(
        &self,
        kind: &str,
        name: &str,
        body: &Value,
        if_match: Option<i64>,
        actor: &str,
    ) -> Result<Resource, StoreError> {
        self.put_at(kind, name, body, if_match, actor, None).await
    }

    /// As [`Store::put`], and with `at_revision` only while the store is at
    /// that revision (what the write was compiled against).
    pub async fn put_at(
        &self,
        kind: &str,
        name: &str,
        body: &Value,
        if_match: Option<i64>,
        actor: &str,
        at_revision: Option<i64>,
    ) -> Result<Resource, StoreError> {
        let mut tx = begin_write(&self.pool, self.backend).await?;
        let before = sqlx::query("SELECT body, version, position FROM resources WHERE kind = $1 AND name = $2")
            .bind(kind)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let (before_body, current): (Option<String>, i64) = match &before {
            Some(row) => (Some(row.try_get("body")?), row.try_get("version")?),
            None => (None, 0),
        };
        let position: i64 = match &before {
            Some(row) => row.try_get("position")?,
            None => {
                let last: Option<i64> = sqlx::query("SELECT MAX(position) AS p FROM resources WHERE kind = $1")
                    .bind(kind)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("p")?;
                last.map_or(0, |p| p + 1)
            }
        };
        check_version(kind, name, if_match, current)?;
        let text = body.to_string();
        let at = now();
        let version = current + 1;
        let stale = || StoreError::Stale {
            kind: kind.into(),
            name: name.into(),
            expected: if_match.unwrap_or(current),
            actual: current + 1,
        };
        if before.is_some() {
            // Only if nobody wrote it since it was read (PostgreSQL runs
            // writers side by side; SQLite one at a time).
            let done = sqlx::query(
                "UPDATE resources SET body = $1, version = $2, updated_at = $3
                 WHERE kind = $4 AND name = $5 AND version = $6",
            )
            .bind(&text)
            .bind(version)
            .bind(at)
            .bind(kind)
            .bind(name)
            .bind(current)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Err(stale());
            }
        } else {
            sqlx::query(
                "INSERT INTO resources (kind, name, body, version, updated_at, position) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(kind)
            .bind(name)
            .bind(&text)
            .bind(version)
            .bind(at)
            .bind(position)
            .execute(&mut *tx)
            .await
            .map_err(|e| match e.as_database_error() {
                // Created by another writer since it was read.
                Some(d) if d.is_unique_violation() => stale(),
                _ => StoreError::Db(e),
            })?;
        }
        audit(&mut tx, at, actor, "put", kind, name, before_body, Some(text)).await?;
        bump(&mut tx, at_revision).await?;
        tx.commit().await?;
        Ok(Resource {
            kind: kind.into(),
            name: name.into(),
            body: body.clone(),
            version,
            updated_at: at,
            position,
        })
    }

    /// Deletes a resource; with `if_match`, only at that version.
    pub async fn delete(&self, kind: &str, name: &str, if_match: Option<i64>, actor: &str) -> Result<(), StoreError> {
        self.delete_at(kind, name, if_match, actor, None).await
    }

    /// As [`Store::delete`], and with `at_revision` only while the store is
    /// at that revision.
    pub async fn delete_at(
        &self,
        kind: &str,
        name: &str,
        if_match: Option<i64>,
        actor: &str,
        at_revision: Option<i64>,
    ) -> Result<(), StoreError> {
        let mut tx = begin_write(&self.pool, self.backend).await?;
        let Some(row) = sqlx::query("SELECT body, version FROM resources WHERE kind = $1 AND name = $2")
            .bind(kind)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Err(StoreError::NotFound {
                kind: kind.into(),
                name: name.into(),
            });
        };
        let current: i64 = row.try_get("version")?;
        check_version(kind, name, if_match, current)?;
        let done = sqlx::query("DELETE FROM resources WHERE kind = $1 AND name = $2 AND version = $3")
            .bind(kind)
            .bind(name)
            .bind(current)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Stale {
                kind: kind.into(),
                name: name.into(),
                expected: current,
                actual: current + 1,
            });
        }
        audit(
            &mut tx,
            now(),
            actor,
            "delete",
            kind,
            name,
            Some(row.try_get("body")?),
            None,
        )
        .await?;
        bump(&mut tx, at_revision).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces every resource of a config document's kinds with
    /// `resources` (an import), in one transaction; the management plane's
    /// own (teams, users, admin tokens) stay. Returns the new revision.
    pub async fn replace_all(&self, resources: &[NewResource], actor: &str) -> Result<i64, StoreError> {
        let mut tx = begin_write(&self.pool, self.backend).await?;
        for kind in document::KINDS {
            sqlx::query("DELETE FROM resources WHERE kind = $1")
                .bind(*kind)
                .execute(&mut *tx)
                .await?;
        }
        let at = now();
        for (position, (kind, name, body)) in resources.iter().enumerate() {
            let text = body.to_string();
            sqlx::query(
                "INSERT INTO resources (kind, name, body, version, updated_at, position) VALUES ($1, $2, $3, 1, $4, $5)",
            )
            .bind(kind)
            .bind(name)
            .bind(&text)
            .bind(at)
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        }
        let summary = serde_json::json!({"resources": resources.len()}).to_string();
        audit(&mut tx, at, actor, "import", "config", "*", None, Some(summary)).await?;
        let rev = bump(&mut tx, None).await?;
        tx.commit().await?;
        Ok(rev)
    }

    /// Audit rows after `after` (an id), oldest first, at most `limit`.
    pub async fn audit(&self, after: i64, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, kind, name, before_body, after_body FROM audit
             WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit.clamp(0, 1000))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    kind: r.try_get("kind")?,
                    name: r.try_get("name")?,
                    before: json_or_null(r.try_get("before_body")?),
                    after: json_or_null(r.try_get("after_body")?),
                })
            })
            .collect()
    }
}

#[allow(clippy::too_many_arguments)]
async fn audit(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    at: i64,
    actor: &str,
    action: &str,
    kind: &str,
    name: &str,
    before: Option<String>,
    after: Option<String>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit (at, actor, action, kind, name, before_body, after_body) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(at)
    .bind(actor)
    .bind(action)
    .bind(kind)
    .bind(name)
    .bind(before)
    .bind(after)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Bumps the revision (with `at`, only from that one); the new one.
async fn bump(tx: &mut sqlx::Transaction<'_, sqlx::Any>, at: Option<i64>) -> Result<i64, StoreError> {
    let done = match at {
        Some(rev) => {
            sqlx::query("UPDATE revision SET rev = rev + 1 WHERE id = 1 AND rev = $1")
                .bind(rev)
                .execute(&mut **tx)
                .await?
        }
        None => {
            sqlx::query("UPDATE revision SET rev = rev + 1 WHERE id = 1")
                .execute(&mut **tx)
                .await?
        }
    };
    let now: i64 = sqlx::query("SELECT rev FROM revision WHERE id = 1")
        .fetch_one(&mut **tx)
        .await?
        .try_get("rev")?;
    match at {
        Some(expected) if done.rows_affected() != 1 => Err(StoreError::Moved { expected, actual: now }),
        _ => Ok(now),
    }
}

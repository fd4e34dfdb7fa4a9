//! The store's tables, one migration list for both backends (they differ
//! only in how a key numbers itself), applied in order at open and recorded in `portico_schema`; embedded in the binary.
//!
//! - `resources`: every resource by kind and name, its body as JSON, a
//!   version bumped on every write (the admin API's ETag), and its position
//!   among its kind (routes tie-break by the order they were written);
//! - `revision`: one row, bumped by every write (what a node compiles);
//! - `audit`: every write, who, when, the body before and after;
//! - `spend`: each AI budget window's total, by budget and period
//!   ([`super::spend`]); written by the gateway, not by the admin API.

use super::Backend;

/// The migrations, in order; `{AUTO_ID}` is the backend's auto-numbered key.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE resources (
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        body TEXT NOT NULL,
        version BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        position BIGINT NOT NULL,
        PRIMARY KEY (kind, name)
    );
    CREATE TABLE revision (id INTEGER PRIMARY KEY CHECK (id = 1), rev BIGINT NOT NULL);
    INSERT INTO revision (id, rev) VALUES (1, 0);
    CREATE TABLE audit (
        id {AUTO_ID},
        at BIGINT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        before_body TEXT,
        after_body TEXT
    );",
    "CREATE TABLE spend (
        budget_key TEXT NOT NULL,
        period TEXT NOT NULL,
        window_index BIGINT NOT NULL,
        amount BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (budget_key, period)
    );",
];

/// The migrations for `backend`, in order.
pub(super) fn migrations(backend: Backend) -> Vec<String> {
    let auto_id = match backend {
        Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
        Backend::Postgres => "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    };
    MIGRATIONS.iter().map(|m| m.replace("{AUTO_ID}", auto_id)).collect()
}

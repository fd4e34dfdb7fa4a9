//! The store's tables, one migration list per backend, applied in order at
//! open and recorded in `portico_schema`; embedded in the binary.
//!
//! - `resources`: every resource by kind and name, its body as JSON, a
//!   version bumped on every write (the admin API's ETag), and its position
//!   among its kind (routes tie-break by the order they were written);
//! - `revision`: one row, bumped by every write (what a node compiles);
//! - `audit`: every write, who, when, the body before and after.

/// SQLite migrations, in order.
pub(super) const SQLITE: &[&str] = &["CREATE TABLE resources (
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
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at BIGINT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        before_body TEXT,
        after_body TEXT
    );"];

/// PostgreSQL migrations, in order.
pub(super) const POSTGRES: &[&str] = &["CREATE TABLE resources (
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
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at BIGINT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        before_body TEXT,
        after_body TEXT
    );"];

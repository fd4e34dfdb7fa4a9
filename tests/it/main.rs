//! Portico's integration tests, linked into one binary (Pingora is linked
//! once instead of once per file). Each module is one area; `support` starts
//! real upstreams and a real Portico process.

// Tests may unwrap: a panic there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod admin_openapi;
mod ai_gateway;
mod auth;
mod balancing;
mod bypass;
mod calllog;
mod calllog_modes;
mod config_check;
mod connections;
mod hardening;
mod health_retry;
mod management;
mod mcp;
mod operations;
mod protocol;
mod redis_limit;
mod releases;
mod routing;
mod secrets;
mod services;
mod smoke;
mod spend;
mod store;
mod tls;
mod tokens;
mod traffic;
mod upgrade;

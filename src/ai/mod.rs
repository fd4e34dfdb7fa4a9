//! The AI gateway: one OpenAI-compatible API (`/v1/chat/completions`,
//! `/v1/embeddings`, `/v1/models`) over OpenAI, Azure OpenAI, Anthropic,
//! Gemini and the OpenAI-compatible vendors, with fallback across targets and
//! keys, token usage and cost per consumer, budgets, and prompt templates
//! published as REST APIs.
//!
//! An AI route is answered by Portico itself in `request_filter` rather than
//! proxied by Pingora: the body has to be read and translated, the provider
//! and key are chosen per attempt, a 429 or 5xx from one provider moves on to
//! the next (Pingora retries only connection failures), and streamed answers
//! are translated event by event. Provider calls go through one pooled
//! `reqwest` client (hyper underneath, rustls).
//!
//! Files: `catalog` (vendor base URLs and auth styles), `registry` (the
//! compiled providers, models and keys; the YAML schema is
//! [`crate::config::ai`]), `wire` (OpenAI's, Anthropic's and Gemini's wire
//! formats and SSE), `dispatch` (attempts and fallback),
//! `handler` (the HTTP side), `usage` (prices, cost, budgets, metrics),
//! `prompt` (prompt APIs and their OpenAPI document).

pub(crate) mod catalog;
pub(crate) mod dispatch;
pub(crate) mod exchange;
pub(crate) mod handler;
pub(crate) mod prompt;
pub(crate) mod registry;
pub(crate) mod scrub;
pub(crate) mod usage;
pub(crate) mod wire;

pub(crate) use wire::{ProviderCall, TranslateError, Usage};

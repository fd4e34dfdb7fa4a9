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
//! Files: `access` (models granted per consumer and group), `cache` (the
//! exact-match AI response cache), `catalog` (vendor base URLs and auth styles), `registry` (the
//! compiled providers, models and keys; the YAML schema is
//! [`crate::config::ai`]), `wire` (OpenAI's, Anthropic's and Gemini's wire
//! formats and SSE), `endpoints` (the API's paths and the model list),
//! `dispatch` (attempts and fallback), `estimate` (usage a provider did not
//! report),
//! `handler` (the HTTP side), `call` (one call: cache, dispatch,
//! answer), `stream` (streamed answers, drained
//! when the client leaves), `price` (the price table and cost),
//! `budget` (budgets per consumer and model), `spend` (budget windows as
//! plain data, to keep across restarts), `usage` (admission by budget
//! and price, metrics),
//! `prompt` (prompt APIs and their OpenAPI document).

pub(crate) mod access;
pub(crate) mod budget;
pub(crate) mod cache;
pub(crate) mod call;
pub(crate) mod catalog;
pub(crate) mod dispatch;
pub(crate) mod endpoints;
pub(crate) mod estimate;
pub(crate) mod exchange;
pub(crate) mod handler;
pub(crate) mod inbound;
pub(crate) mod price;
pub(crate) mod prompt;
pub(crate) mod registry;
pub(crate) mod scrub;
pub(crate) mod spend;
pub(crate) mod stream;
pub(crate) mod surface;
pub(crate) mod usage;
pub(crate) mod wire;

pub(crate) use wire::{ProviderCall, TranslateError, Usage};

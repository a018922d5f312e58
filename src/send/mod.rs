//! The send stage: the worker pool, pacing (ceiling, adaptive, rate-limit headers), retries
//! (classify, then time), the HTTP client, tokens, and the nothing-connects check. Uses
//! `core`, `targets`, `settings`, `input` and `output`.

pub mod attempt;
pub mod auth;
pub mod gate;
pub mod guard;
pub mod http;
pub mod http_client;
pub mod lanes;
pub mod login;
pub mod oauth;
pub mod pace;
pub mod pacer;
pub mod pool;
pub mod reach;
pub mod retry;
pub mod schedule;
pub mod tenant_discovery;
pub mod tenant_tokens;
pub mod tenants;

//! The HTTP layer the SCIM 2.0 target client and the SCIM source share: the base URL check and
//! the HTTP client set-up, one exchange and how its failures read, and the one retry loop.
//!
//! - `retry_policy` is the one place that decides what is retried; `retrying` is the one loop
//!   that waits (`Retry-After`, else backoff) and tries again.
//! - No secret (token, password) reaches a message: error details pass through `redact`, and
//!   reqwest errors are described without their URL.
//! - Each side maps a `GaveUp` into its own error type (`TargetError`, `SourceError`).

mod client;
mod exchange;
mod retry;

pub use client::{base_url, http_client};
pub(crate) use exchange::{describe, exchange, redact, status_failure, Exchange};
pub(crate) use retry::retrying;
pub use retry::{parse_retry_after, retry_policy, Failure, GaveUp, Retry, RetryConfig};

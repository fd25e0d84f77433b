//! What is retried and how long to wait: `retry_policy` is the one place that decides.

use backon::{BackoffBuilder, ExponentialBuilder};
use std::fmt;
use std::time::{Duration, SystemTime};

/// Bounds of the retries of one request. The defaults are polite to a service provider that is
/// struggling; tests shrink them.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryConfig {
    /// The first backoff delay; later ones grow by `factor`, each with random jitter on top.
    pub min_delay: Duration,
    pub factor: f32,
    /// No single backoff delay is longer than this.
    pub max_delay: Duration,
    /// Retries after the first attempt, for every retried kind of failure together.
    pub max_retries: u32,
    /// A `Retry-After` longer than this is shortened to it.
    pub max_retry_after: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            min_delay: Duration::from_millis(200),
            factor: 2.0,
            max_delay: Duration::from_secs(20),
            max_retries: 6,
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryConfig {
    /// The backoff delays of one request: exponential with jitter, `max_retries` of them.
    pub(crate) fn backoff(&self) -> impl Iterator<Item = Duration> {
        ExponentialBuilder::new()
            .with_jitter()
            .with_min_delay(self.min_delay)
            .with_factor(self.factor)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries as usize)
            .build()
    }
}

/// Why [`retrying`] gave up on a request.
#[derive(Debug)]
pub enum GaveUp {
    /// A failure `retry_policy` does not retry.
    Final(Failure),
    /// The retries were used up; `last` is the last attempt's failure.
    Exhausted { attempts: u32, last: Failure },
}

/// Runs `attempt` until it succeeds, fails in a way [`retry_policy`] says is final, or the
/// retries are used up, waiting between attempts as the policy says (a `Retry-After` capped at
/// `max_retry_after`). `what` names the request in the log. The target client and the SCIM
/// source both send through it.
pub(crate) async fn retrying<T, F, Fut>(retry: &RetryConfig, what: &str, mut attempt: F) -> Result<T, GaveUp>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Failure>>,
{
    let mut backoff = retry.backoff();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let failure = match attempt().await {
            Ok(v) => return Ok(v),
            Err(f) => f,
        };
        let wait = match retry_policy(&failure) {
            Retry::No => return Err(GaveUp::Final(failure)),
            Retry::Backoff => backoff.next(),
            Retry::After(d) => backoff.next().map(|_| d.min(retry.max_retry_after)),
        };
        let Some(wait) = wait else {
            return Err(GaveUp::Exhausted { attempts, last: failure });
        };
        let wait_ms = wait.as_millis() as u64;
        tracing::debug!(what, attempt = attempts, wait_ms, error = %failure, "Retrying SCIM request.");
        tokio::time::sleep(wait).await;
    }
}

/// Why one attempt of a request failed, before it is decided whether to try again.
#[derive(Clone, Debug, PartialEq)]
pub enum Failure {
    /// The server answered with an error status. `message` is the server's `detail` (short,
    /// never the whole body); `retry_after` is its `Retry-After`, already read as a duration.
    Status { status: u16, message: String, retry_after: Option<Duration> },
    /// The exchange broke: no connection, a reset, a timeout, or an answer cut short. `sent` is
    /// false only when the request certainly never reached the server (the connection failed).
    Broken { message: String, sent: bool },
    /// A complete answer whose body is not the SCIM document it should be.
    Body { message: String },
    /// The TLS handshake failed (an untrusted certificate, most often): asking again gives the
    /// same answer, and nothing was sent.
    Tls { message: String },
}

impl Failure {
    /// Whether a POST that failed this way may have created the object all the same, so that
    /// it must be looked up before it is sent again.
    pub fn maybe_applied(&self) -> bool {
        match self {
            Failure::Status { status, .. } => *status == 408 || *status >= 500,
            Failure::Broken { sent, .. } => *sent,
            Failure::Body { .. } => true,
            Failure::Tls { .. } => false,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Status { status, message, .. } => write!(f, "HTTP {status}: {message}"),
            Failure::Broken { message, .. } => f.write_str(message),
            Failure::Body { message } => f.write_str(message),
            Failure::Tls { message } => write!(f, "TLS: {message}"),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Give up: the failure is final (401/403, other 4xx, an unreadable body).
    No,
    /// Wait as long as the server asked (`Retry-After`), then try again.
    After(Duration),
    /// Wait the next exponential backoff delay, then try again.
    Backoff,
}

/// The one place that decides what is retried.
///
/// - 429, and 503 with `Retry-After`: wait as asked; without the header, back off.
/// - 408, 500, 502, 503, 504, and broken exchanges (connect errors, resets, timeouts): back off.
/// - 401 and 403 never: a bad token does not get better by asking again.
/// - Every other status, answers whose body cannot be read, and failed TLS handshakes, never.
pub fn retry_policy(failure: &Failure) -> Retry {
    match failure {
        Failure::Status { status: 429 | 503, retry_after: Some(d), .. } => Retry::After(*d),
        Failure::Status { status: 408 | 429 | 500 | 502 | 503 | 504, .. } => Retry::Backoff,
        Failure::Status { .. } => Retry::No,
        Failure::Broken { .. } => Retry::Backoff,
        Failure::Body { .. } | Failure::Tls { .. } => Retry::No,
    }
}

/// Reads a `Retry-After` value (RFC 9110 §10.2.3): delta-seconds or an HTTP-date. A date in
/// the past means "now"; anything else unreadable is `None` (the caller backs off instead).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Absurdly long digit strings saturate rather than fail: they are capped later anyway.
        return Some(Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

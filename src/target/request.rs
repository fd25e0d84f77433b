//! One request to the target and what its failures become: the state every clone of a
//! `TargetClient` shares (HTTP client, base URL, token, rate limit, request counters), a request
//! sent once through the shared SCIM HTTP layer, and the retry loop's outcome as a `TargetError`.

use super::dialect::{Dialect, Live};
use super::{ClientOptions, TargetConfig, TargetError};
use crate::scim_http::{base_url, describe, exchange, http_client, retrying, status_failure};
use crate::scim_http::{Exchange, Failure, GaveUp, RetryConfig};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{HeaderValue, ACCEPT, CONTENT_TYPE, IF_MATCH};
use reqwest::{Method, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SCIM_JSON: &str = "application/scim+json";

/// Whether the caller needs the body of a successful answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Answer {
    /// A created resource, a list, the ServiceProviderConfig: unreadable is a failure.
    Needed,
    /// DELETE: 200 with a body and 204 without are alike, and the body is not read.
    Ignored,
    /// PATCH and PUT: the resource when the answer carries one that reads, to check the write
    /// took; no body, or one that does not read, is no failure (the status says it all).
    Optional,
}

/// A successful answer: its status, the resource's `ETag`, and the body as the caller asked.
pub(super) struct Reply {
    pub status: u16,
    pub etag: Option<String>,
    pub doc: Option<Value>,
}

/// Everything a `TargetClient` shares between its clones.
pub(super) struct Inner {
    http: reqwest::Client,
    /// The service provider's base URL, without a trailing slash (`…/scim/v2`).
    base: Url,
    token: SecretString,
    /// Where the token was read from, for the message of a 401.
    token_source: String,
    pub(super) dialect: Dialect,
    /// What this client learnt of the target while it ran (fallbacks, the server's config).
    pub(super) live: Live,
    retry: RetryConfig,
    limiter: Option<DefaultDirectRateLimiter>,
    requests: AtomicU64,
    writes: AtomicU64,
}

/// Where a token configured like this is read from, in the words of the config file.
fn default_token_source(cfg: &TargetConfig) -> String {
    match (&cfg.token_file, &cfg.token_env) {
        (Some(path), _) => format!("target.token_file {}", path.display()),
        (None, Some(var)) => format!("the environment variable {var} (target.token_env)"),
        (None, None) => "target.token_file".into(),
    }
}

impl Inner {
    pub(super) fn new(
        cfg: &TargetConfig,
        token: SecretString,
        opts: ClientOptions,
    ) -> Result<Inner, TargetError> {
        let config = |message: String| TargetError::Config { message };
        let url = cfg.url.as_deref().ok_or_else(|| {
            config(
                "target.url is not set: write the SCIM base URL of the target, \
                 e.g. https://app.ninjarmm.com/ws/scim/v2"
                    .into(),
            )
        })?;
        let base = base_url(url, "target.url").map_err(config)?;
        let http = http_client(cfg.timeout_secs, cfg.ca_file.as_deref(), "target.ca_file").map_err(config)?;
        let limiter = match cfg.rate_limit {
            None => None,
            Some(rate) => {
                let quota = (rate > 0.0 && rate.is_finite())
                    .then(|| Quota::with_period(Duration::from_secs_f64(1.0 / rate)))
                    .flatten()
                    .ok_or_else(|| config(format!("target.rate_limit {rate} is not a positive number")))?;
                Some(RateLimiter::direct(quota))
            }
        };
        Ok(Inner {
            http,
            base,
            token,
            token_source: opts.token_source.unwrap_or_else(|| default_token_source(cfg)),
            live: Live::new(&cfg.dialect),
            dialect: cfg.dialect.clone(),
            retry: opts.retry,
            limiter,
            requests: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        })
    }

    /// The dialect as this client speaks it now: the configured one, with what the run learnt.
    pub(super) fn dialect(&self) -> Dialect {
        self.live.apply(&self.dialect)
    }

    pub(super) fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub(super) fn writes_sent(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// `base/seg/seg`, each segment percent-encoded (ids come from the server).
    pub(super) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut().expect("checked in new: a base URL").pop_if_empty().extend(segments);
        url
    }

    /// Sends one request, once. Success is a 2xx with its parsed JSON body when the caller
    /// needs it, or `None` when there is none (204, or a 200 with an empty body).
    pub(super) async fn send_once(
        &self,
        method: Method,
        url: &Url,
        query: &[(&str, &str)],
        body: Option<&Value>,
        answer: Answer,
    ) -> Result<(u16, Option<Value>), Failure> {
        self.send(method, url, query, body, answer, None).await.map(|r| (r.status, r.doc))
    }

    /// [`Inner::send_once`] with an `If-Match` header, and the answer's `ETag`.
    pub(super) async fn send(
        &self,
        method: Method,
        url: &Url,
        query: &[(&str, &str)],
        body: Option<&Value>,
        answer: Answer,
        if_match: Option<&str>,
    ) -> Result<Reply, Failure> {
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
        let mut req = self
            .http
            .request(method.clone(), url.clone())
            .bearer_auth(self.token.expose_secret())
            .header(ACCEPT, HeaderValue::from_static("application/scim+json, application/json"));
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(tag) = if_match.and_then(|t| HeaderValue::from_str(t).ok()) {
            req = req.header(IF_MATCH, tag);
        }
        if let Some(body) = body {
            let bytes = serde_json::to_vec(body).expect("a JSON value serialises");
            req = req.header(CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON)).body(bytes);
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        if method != Method::GET {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        let started = Instant::now();
        let Exchange { status, retry_after, etag, body: bytes } = exchange(req).await.inspect_err(|f| {
            let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
            tracing::debug!(%method, path = url.path(), elapsed_ms, error = ?f, "SCIM request failed.");
        })?;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        tracing::debug!(%method, path = url.path(), status = status.as_u16(), elapsed_ms, "SCIM request.");
        if status.is_success() {
            let reply = |doc| Ok(Reply { status: status.as_u16(), etag, doc });
            match answer {
                // The status says it all; what arrived of the body does not matter.
                Answer::Ignored => return reply(None),
                Answer::Optional => {
                    let doc = bytes.ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok());
                    return reply(doc.filter(Value::is_object));
                }
                Answer::Needed => {}
            }
            let bytes = bytes.map_err(|e| Failure::Broken {
                message: format!("the answer ({status}) was cut short: {}", describe(&e)),
                sent: true,
            })?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return reply(None);
            }
            return match serde_json::from_slice::<Value>(&bytes) {
                Ok(doc) => reply(Some(doc)),
                Err(e) => Err(Failure::Body { message: format!("the answer ({status}) is not JSON: {e}") }),
            };
        }
        Err(status_failure(status, retry_after, bytes, self.token.expose_secret()))
    }

    /// [`retrying`] with this client's retry settings; what it gives up with becomes a
    /// `TargetError`.
    pub(super) async fn retrying<T, F, Fut>(&self, what: &str, attempt: F) -> Result<T, TargetError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        retrying(&self.retry, what, attempt).await.map_err(|gave_up| match gave_up {
            GaveUp::Final(failure) => self.final_error(failure),
            GaveUp::Exhausted { attempts, last } => {
                TargetError::Exhausted { attempts, last: last.to_string() }
            }
        })
    }

    /// The error a final (not retried) failure becomes.
    fn final_error(&self, failure: Failure) -> TargetError {
        match failure {
            Failure::Status { status: status @ (401 | 403), message, .. } => TargetError::Auth {
                status,
                message: format!(
                    "the target refused the bearer token ({status}: {message}): generate a new API token \
                     in the target's administration and write it to {}; nothing more is sent until the \
                     next run",
                    self.token_source
                ),
            },
            Failure::Status { status: 404, message, .. } => TargetError::NotFound { message },
            Failure::Status { status: 409, message, .. } => TargetError::Conflict { message },
            Failure::Status { status, message, .. } => TargetError::Rejected { status, message },
            Failure::Tls { message } => TargetError::Config {
                message: format!(
                    "TLS with the target failed: {message}: if its certificate is signed by a private CA, \
                     set target.ca_file to that CA's PEM certificate"
                ),
            },
            Failure::Broken { message, .. } | Failure::Body { message } => TargetError::Protocol { message },
        }
    }
}

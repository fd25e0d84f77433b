//! SCIM 2.0 source: reads `/Users` (scoped by `source.filter`) and `/Groups` from a service
//! provider, page by page, completely or not at all.
//!
//! - Pages by cursor (RFC 9865) when the ServiceProviderConfig announces `pagination.cursor`,
//!   else by `startIndex`/`count`; `source.page_size` resources a page (at most the server's
//!   `maxPageSize`).
//! - Every page passes the checks of `listing`: a short page, a `totalResults` that moves or
//!   disagrees with the resources returned, a resource seen twice abort the read.
//! - A page is retried per `scim_http::retry_policy`, like the target's requests
//!   (`source.max_retries`); a page that still fails, an answer that is not complete JSON, or a
//!   401/403 abort the read.
//! - Bearer token or basic auth (`secrets::load_source_auth`); neither is ever logged nor part
//!   of a message. Groups are read unfiltered: members outside the scope are not users.

mod listing;

pub use listing::{Listing, Paging};

use super::directory::SourceDirectory;
use super::{json, SourceConfig, SourceError};
use crate::scim_http::{base_url, describe, exchange, http_client, redact, retrying, status_failure};
use crate::scim_http::{Exchange, Failure, GaveUp, RetryConfig};
use crate::secrets::{self, SourceAuth};
use reqwest::header::{HeaderValue, ACCEPT};
use reqwest::Url;
use secrecy::ExposeSecret;
use serde_json::Value as Json;
use std::time::Instant;

/// Reads the SCIM source completely, or fails saying what went wrong.
pub async fn read(cfg: &SourceConfig) -> Result<SourceDirectory, SourceError> {
    let client = Client::new(cfg)?;
    let (paging, count) = client.paging(cfg.page_size).await?;
    let users = client.read_all("Users", cfg.filter.as_deref(), paging, count).await?;
    let groups = client.read_all("Groups", None, paging, count).await?;
    tracing::info!(
        users = users.len(),
        groups = groups.len(),
        paging = ?paging,
        page_size = count,
        "Read the SCIM source."
    );
    let mut resources = users;
    resources.extend(groups);
    json::from_resources(resources)
}

struct Client {
    http: reqwest::Client,
    /// The base URL without a trailing slash (`…/scim/v2`).
    base: Url,
    auth: SourceAuth,
    retry: RetryConfig,
}

impl Client {
    fn new(cfg: &SourceConfig) -> Result<Client, SourceError> {
        let setup = SourceError::Scim;
        let url = cfg.url.as_deref().ok_or_else(|| {
            setup("source.url is not set: write the SCIM base URL of the source, e.g. https://idp.example.com/scim/v2".into())
        })?;
        let base = base_url(url, "source.url").map_err(setup)?;
        let auth = secrets::load_source_auth(cfg).map_err(|e| setup(e.to_string()))?;
        let http = http_client(cfg.timeout_secs, cfg.ca_file.as_deref(), "source.ca_file").map_err(setup)?;
        let retry = RetryConfig { max_retries: cfg.max_retries, ..RetryConfig::default() };
        Ok(Client { http, base, auth, retry })
    }

    fn url(&self, endpoint: &str) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut().expect("checked in new: a base URL").pop_if_empty().push(endpoint);
        url
    }

    /// Cursor paging when the ServiceProviderConfig announces it, else index paging; the page
    /// size bounded by the server's `maxPageSize`.
    async fn paging(&self, page_size: u32) -> Result<(Paging, u32), SourceError> {
        let url = self.url("ServiceProviderConfig");
        let spc = match self.get(&url, &[]).await {
            Ok(doc) => doc,
            Err(GaveUp::Final(Failure::Status { status, .. })) if status != 401 && status != 403 => {
                tracing::debug!(status, "No ServiceProviderConfig; paging by index.");
                Json::Null
            }
            Err(e) => return Err(self.error(e, "the ServiceProviderConfig")),
        };
        let pagination = &spc["pagination"];
        let paging = if pagination["cursor"] == Json::Bool(true) { Paging::Cursor } else { Paging::Index };
        let max = pagination["maxPageSize"].as_u64().filter(|m| *m > 0).unwrap_or(u64::MAX);
        let count = u64::from(page_size).min(max) as u32;
        if count < page_size {
            tracing::info!(page_size, max_page_size = count, "The source pages at most maxPageSize.");
        }
        Ok((paging, count))
    }

    /// Every resource of `endpoint`, or the reason the listing cannot be trusted.
    async fn read_all(
        &self,
        endpoint: &str,
        filter: Option<&str>,
        paging: Paging,
        count: u32,
    ) -> Result<Vec<(super::Origin, Json)>, SourceError> {
        let url = self.url(endpoint);
        let mut listing = Listing::new(&format!("/{endpoint}"), url.as_str(), paging, count);
        while let Some(mut query) = listing.next_query() {
            if let Some(f) = filter {
                query.push(("filter", f.to_owned()));
            }
            let started = Instant::now();
            let page = self.get(&url, &query).await.map_err(|e| self.error(e, &listing.describe_next()))?;
            tracing::debug!(
                endpoint,
                page = listing.pages() + 1,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "Read a page of the source."
            );
            listing.accept(page)?;
        }
        listing.finish()
    }

    /// One GET with its retries.
    async fn get(&self, url: &Url, query: &[(&str, String)]) -> Result<Json, GaveUp> {
        retrying(&self.retry, "source page", || self.get_once(url, query)).await
    }

    async fn get_once(&self, url: &Url, query: &[(&str, String)]) -> Result<Json, Failure> {
        let mut req = self
            .http
            .get(url.clone())
            .header(ACCEPT, HeaderValue::from_static("application/scim+json, application/json"));
        if !query.is_empty() {
            req = req.query(query);
        }
        req = match &self.auth {
            SourceAuth::Bearer(t) => req.bearer_auth(t.secret.expose_secret()),
            SourceAuth::Basic { username, password } => {
                req.basic_auth(username, Some(password.secret.expose_secret()))
            }
        };
        let started = Instant::now();
        let Exchange { status, retry_after, body: bytes, .. } = exchange(req).await?;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        tracing::debug!(path = url.path(), status = status.as_u16(), elapsed_ms, "SCIM source request.");
        if status.is_success() {
            let bytes = bytes.map_err(|e| Failure::Broken {
                message: format!("the answer ({status}) was cut short: {}", describe(&e)),
                sent: true,
            })?;
            return serde_json::from_slice(&bytes).map_err(|e| Failure::Body {
                message: redact(self.secret(), &format!("the answer ({status}) is not complete JSON: {e}")),
            });
        }
        Err(status_failure(status, retry_after, bytes, self.secret()))
    }

    /// The error a failed GET of `what` becomes.
    fn error(&self, e: GaveUp, what: &str) -> SourceError {
        match e {
            GaveUp::Final(Failure::Status { status: status @ (401 | 403), message, .. }) => {
                SourceError::Auth(match &self.auth {
                    SourceAuth::Bearer(t) => format!(
                    "the SCIM source refused the bearer token ({status}: {message}) on {what}: renew the \
                     source token and write it to {}",
                    t.source
                ),
                    SourceAuth::Basic { username, password } => format!(
                    "the SCIM source refused basic auth as {username:?} ({status}: {message}) on {what}: \
                     check source.username and renew the password in {}",
                    password.source
                ),
                })
            }
            GaveUp::Exhausted { attempts, last } => SourceError::Incomplete(format!(
                "{what} failed after {attempts} attempts; last: {last}: the next run reads the source again"
            )),
            GaveUp::Final(f @ Failure::Body { .. }) => SourceError::Incomplete(format!("{what}: {f}")),
            GaveUp::Final(Failure::Tls { message }) => SourceError::Scim(format!(
                "TLS with the SCIM source failed on {what}: {message}: if its certificate is signed by a \
                 private CA, set source.ca_file to that CA's PEM certificate"
            )),
            GaveUp::Final(f @ Failure::Status { status: 404, .. }) => SourceError::Scim(format!(
                "{what}: {f}: check source.url (the SCIM base URL, e.g. https://idp.example.com/scim/v2)"
            )),
            GaveUp::Final(f @ Failure::Status { status: 400, .. }) => {
                SourceError::Scim(format!("{what}: {f}: check source.filter and source.page_size"))
            }
            GaveUp::Final(f) => SourceError::Incomplete(format!("{what}: {f}")),
        }
    }

    /// The token or password, to keep out of messages.
    fn secret(&self) -> &str {
        match &self.auth {
            SourceAuth::Bearer(t) => t.secret.expose_secret(),
            SourceAuth::Basic { password, .. } => password.secret.expose_secret(),
        }
    }
}

//! The SCIM 2.0 target client: users and groups on the service provider, in the dialect of
//! the configured profile (ninjaone, generic, entra-compat), with retries, a rate limit and
//! per-request timeouts.
//!
//! Guarantees:
//! - Every request is retried here, per `retry_policy`; callers see a final `TargetError`.
//! - A create that failed ambiguously (no answer, a 5xx, a created answer that cannot be read)
//!   is looked up by userName / displayName before it is sent again, so a flaky network does
//!   not create duplicates. A delete whose retry finds the object gone succeeded.
//! - The token is never logged and never part of an error message; request bodies are never
//!   logged.

pub mod body;
pub mod dialect;
mod discover;
mod probe;
mod request;
mod resource;
mod section;
#[cfg(test)]
mod tests;
mod write;

/// The retry bounds of `ClientOptions`; the SCIM source uses the same.
pub use crate::scim_http::RetryConfig;
pub use body::{NINJAONE_SCHEMA, USER_SCHEMA};
pub use dialect::Dialect;
pub use section::{RawTarget, TargetConfig};

use crate::model::{Attr, DesiredUser, Profile};
use crate::reconcile::Change;
use crate::scim_http::Failure;
use request::{Answer, Inner};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::Value;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Why a target operation failed, for the executor to branch on and `status` to show.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// 401/403: the run must stop; the message says to generate a new token and where it goes.
    #[error("{message}")]
    Auth { status: u16, message: String },
    #[error("conflict (409): {message}")]
    Conflict { message: String },
    #[error("not found in the target (404): {message}")]
    NotFound { message: String },
    /// Any other refusal; `message` is the server's `detail`, shortened.
    #[error("the target rejected the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    #[error("the target did not answer usefully after {attempts} attempts; last: {last}")]
    Exhausted { attempts: u32, last: String },
    #[error("unexpected answer from the target: {message}")]
    Protocol { message: String },
    /// The target answered a write with success, but the resource it answered with (or read
    /// back) does not carry the change.
    #[error("the target answered success, but the change did not take: {message}")]
    NotTaken { message: String },
    #[error("{message}")]
    Config { message: String },
}

impl TargetError {
    /// Whether the run must stop at once: 401/403 (SPEC §6), and a client that cannot work
    /// at all (no URL, an untrusted certificate), where every later request would fail alike.
    pub fn stops_run(&self) -> bool {
        matches!(self, TargetError::Auth { .. } | TargetError::Config { .. })
    }
}

/// A user as found in the target by `find_user`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetUser {
    pub id: String,
    pub user_name: String,
    pub active: bool,
    pub external_id: Option<String>,
}

/// Settings of a client that do not come from the config file.
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    pub retry: RetryConfig,
    /// Where the token was read from, named in the message of a 401 (default: from the config,
    /// e.g. `target.token_file /etc/scimsync/target.token`).
    pub token_source: Option<String>,
}

/// A client of one SCIM 2.0 service provider. Cheap to clone: clones share the connection
/// pool, the rate limit and the request counters, so requests can run concurrently.
#[derive(Clone)]
pub struct TargetClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for TargetClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TargetClient").field("profile", &self.inner.dialect.profile).finish_non_exhaustive()
    }
}

impl TargetClient {
    /// A client for `cfg.url` (which must be set) with the default retry bounds.
    pub fn new(cfg: &TargetConfig, token: SecretString) -> Result<Self, TargetError> {
        Self::with_options(cfg, token, ClientOptions::default())
    }

    pub fn with_options(
        cfg: &TargetConfig,
        token: SecretString,
        opts: ClientOptions,
    ) -> Result<Self, TargetError> {
        Ok(TargetClient { inner: Arc::new(Inner::new(cfg, token, opts)?) })
    }

    pub fn profile(&self) -> Profile {
        self.inner.dialect.profile
    }

    /// The update and member-removal forms in use now: the dialect's, or those the server's
    /// declarations and refusals moved this client to.
    pub fn forms_in_use(&self) -> (dialect::Update, dialect::Members) {
        (self.inner.live.update(), self.inner.live.members())
    }

    /// Requests actually sent, retries and look-ups included.
    pub fn requests_sent(&self) -> u64 {
        self.inner.requests_sent()
    }

    /// Requests other than GET actually sent.
    pub fn writes_sent(&self) -> u64 {
        self.inner.writes_sent()
    }

    /// `GET /ServiceProviderConfig`: what `scimsync check` shows to test the connection.
    pub async fn service_provider_config(&self) -> Result<Value, TargetError> {
        let url = self.inner.url(&["ServiceProviderConfig"]);
        let doc = self
            .inner
            .retrying("service provider config", || async {
                self.inner.send_once(Method::GET, &url, &[], None, Answer::Needed).await.map(|(_, doc)| doc)
            })
            .await?;
        doc.ok_or_else(|| TargetError::Protocol {
            message: "ServiceProviderConfig answered without a body".into(),
        })
    }

    /// The user whose userName is `user_name`, ignoring case (`filter=userName eq "…"`).
    pub async fn find_user(&self, user_name: &str) -> Result<Option<TargetUser>, TargetError> {
        self.inner.retrying("find user", || self.find_user_once(user_name)).await
    }

    async fn find_user_once(&self, user_name: &str) -> Result<Option<TargetUser>, Failure> {
        let doc = self.search("Users", &body::eq_filter("userName", user_name)).await?;
        body::pick_user(&doc, user_name).map_err(|message| Failure::Body { message })
    }

    /// The user an earlier create of `user` made, if the target has it: found by userName and
    /// proven by the `externalId` that create sent. A user of that name without it was there
    /// before: a conflict, which the adoption policy settles, never taken as scimsync's own.
    async fn created_user_once(&self, user: &DesiredUser) -> Result<Option<String>, Failure> {
        let Some(found) = self.find_user_once(user.user_name()).await? else { return Ok(None) };
        let sent = user.attrs.get(&Attr::ExternalId);
        if sent.is_some() && found.external_id.as_deref() == sent {
            return Ok(Some(found.id));
        }
        Err(Failure::Status {
            status: 409,
            message: format!(
                "a user named {:?} exists in the target without the externalId scimsync sends, \
                 so it is not one scimsync created",
                user.user_name()
            ),
            retry_after: None,
        })
    }

    /// The id of the user an unfinished create of `user` made, proven by its `externalId`;
    /// `None` when the target has no such user, or one scimsync cannot prove it made.
    pub async fn find_created_user(&self, user: &DesiredUser) -> Result<Option<String>, TargetError> {
        let found = self.inner.retrying("find user", || self.created_user_once(user)).await;
        match found {
            Err(TargetError::Conflict { .. }) => Ok(None),
            r => r,
        }
    }

    /// `POST /Users`; returns the new id.
    pub async fn create_user(&self, user: &DesiredUser) -> Result<String, TargetError> {
        self.warn_dropped_phones(user.attrs.keys());
        let doc = body::user_resource(&self.inner.dialect(), user);
        self.create("Users", &doc, || self.created_user_once(user)).await
    }

    /// One PATCH with the smallest operations that make `changes`; nothing is sent when no
    /// change applies to this profile.
    pub async fn update_user(&self, id: &str, changes: &[Change]) -> Result<(), TargetError> {
        self.warn_dropped_phones(changes.iter().filter_map(|c| match c {
            Change::Set { attr, .. } => Some(*attr),
            Change::Roles { .. } => None,
        }));
        self.change("Users", id, &body::update_ops(&self.inner.dialect(), changes)).await
    }

    pub async fn set_active(&self, id: &str, active: bool) -> Result<(), TargetError> {
        self.change("Users", id, &[body::active_op(active)]).await
    }

    /// Brings an existing account to the desired state in one PATCH: every attribute the user
    /// has, `active`, and the roles when there are any.
    pub async fn adopt_user(&self, id: &str, user: &DesiredUser) -> Result<(), TargetError> {
        self.warn_dropped_phones(user.attrs.keys());
        self.change("Users", id, &body::adopt_ops(&self.inner.dialect(), user)).await
    }

    pub async fn delete_user(&self, id: &str) -> Result<(), TargetError> {
        self.delete("Users", id).await
    }

    /// The id of the group named `display_name` (exactly, else ignoring case).
    pub async fn find_group(&self, display_name: &str) -> Result<Option<String>, TargetError> {
        self.inner.retrying("find group", || self.find_group_once(display_name)).await
    }

    async fn find_group_once(&self, display_name: &str) -> Result<Option<String>, Failure> {
        let doc = self.search("Groups", &body::eq_filter("displayName", display_name)).await?;
        body::pick_group(&doc, display_name).map_err(|message| Failure::Body { message })
    }

    /// `POST /Groups` without members; returns the new id.
    pub async fn create_group(&self, display_name: &str) -> Result<String, TargetError> {
        let doc = body::group_resource(&self.inner.dialect(), display_name);
        self.create("Groups", &doc, || self.find_group_once(display_name)).await
    }

    pub async fn rename_group(&self, id: &str, display_name: &str) -> Result<(), TargetError> {
        self.change("Groups", id, &[body::rename_op(display_name)]).await
    }

    /// Adds all of `member_ids` in one request (the planner chunks large memberships).
    pub async fn add_members(&self, id: &str, member_ids: &[String]) -> Result<(), TargetError> {
        if member_ids.is_empty() {
            return Ok(());
        }
        self.change_members_add(id, member_ids).await
    }

    /// Removes `member_ids` in one request, in the dialect's form (see `target.dialect.members`).
    pub async fn remove_members(&self, id: &str, member_ids: &[String]) -> Result<(), TargetError> {
        if member_ids.is_empty() {
            return Ok(());
        }
        self.change_members_remove(id, member_ids).await
    }

    pub async fn delete_group(&self, id: &str) -> Result<(), TargetError> {
        self.delete("Groups", id).await
    }

    fn warn_dropped_phones(&self, attrs: impl IntoIterator<Item = Attr>) {
        if self.profile() == Profile::NinjaOne && attrs.into_iter().any(Attr::is_phone) {
            tracing::warn!("Phone numbers are never sent to a ninjaone target; left out.");
        }
    }

    /// One attempt of `GET /{endpoint}?filter=…`: the list response.
    async fn search(&self, endpoint: &str, filter: &str) -> Result<Value, Failure> {
        if !self.inner.live.filter_supported() {
            return Err(Failure::Body {
                message: format!(
                    "the target declares no filter support (ServiceProviderConfig), so scimsync cannot \
                     look up {filter} in {endpoint}: check the target by hand"
                ),
            });
        }
        let url = self.inner.url(&[endpoint]);
        let (_, doc) =
            self.inner.send_once(Method::GET, &url, &[("filter", filter)], None, Answer::Needed).await?;
        doc.ok_or_else(|| Failure::Body {
            message: format!("the search of {endpoint} answered without a body"),
        })
    }

    /// `POST /{endpoint}`, never blindly sent twice: once an attempt may have created the
    /// object, every later attempt first runs `lookup` and returns what it finds.
    async fn create<L, LF>(&self, endpoint: &str, doc: &Value, lookup: L) -> Result<String, TargetError>
    where
        L: Fn() -> LF,
        LF: Future<Output = Result<Option<String>, Failure>>,
    {
        let url = self.inner.url(&[endpoint]);
        let ambiguous = AtomicBool::new(false);
        let (url, ambiguous, lookup) = (&url, &ambiguous, &lookup);
        let attempt = move || async move {
            if ambiguous.load(Ordering::Relaxed) {
                if let Some(id) = lookup().await? {
                    tracing::debug!(endpoint, "Found what an earlier, unanswered create made.");
                    return Ok(id);
                }
            }
            let outcome = match self.inner.send_once(Method::POST, url, &[], Some(doc), Answer::Needed).await
            {
                Ok((_, Some(created))) => body::resource_id(&created)
                    .ok_or_else(|| Failure::Body { message: "the created resource has no id".into() }),
                Ok((status, None)) => Err(Failure::Body {
                    message: format!("the create was answered {status} without the resource"),
                }),
                Err(f) => Err(f),
            };
            outcome.map_err(|f| {
                if !f.maybe_applied() {
                    return f;
                }
                ambiguous.store(true, Ordering::Relaxed);
                match f {
                    // Created, most likely, but the id is unknown: look it up on the next attempt.
                    Failure::Body { message } => Failure::Broken { message, sent: true },
                    f => f,
                }
            })
        };
        self.inner.retrying("create", attempt).await
    }

    /// `DELETE /{endpoint}/{id}`. A 404 after an attempt that may have deleted it is success.
    async fn delete(&self, endpoint: &str, id: &str) -> Result<(), TargetError> {
        let url = self.inner.url(&[endpoint, id]);
        let ambiguous = AtomicBool::new(false);
        let (url, ambiguous) = (&url, &ambiguous);
        let attempt = move || async move {
            match self.inner.send_once(Method::DELETE, url, &[], None, Answer::Ignored).await {
                Ok(_) => Ok(()),
                Err(Failure::Status { status: 404, .. }) if ambiguous.load(Ordering::Relaxed) => Ok(()),
                Err(f) => {
                    if f.maybe_applied() {
                        ambiguous.store(true, Ordering::Relaxed);
                    }
                    Err(f)
                }
            }
        };
        self.inner.retrying("delete", attempt).await
    }
}

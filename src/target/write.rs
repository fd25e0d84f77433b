//! How a change reaches a resource in the target's dialect: one PATCH, or a GET, the change made
//! on what was read, and a PUT back; the fallback from a refused PATCH form to the next one; and
//! the proof that a write took.

use super::body::{self, PatchOp};
use super::dialect::{Members, Update};
use super::request::Answer;
use super::{resource, TargetClient, TargetError};
use crate::scim_http::Failure;
use reqwest::Method;
use serde_json::Value;

/// How often a PUT whose `If-Match` the target refused (412: changed since it was read) is read
/// and sent again.
const PRECONDITION_ROUNDS: u32 = 3;

/// Whether a refusal says the target does not implement this form of request, so that another
/// form may work: 501 Not Implemented and 405 Method Not Allowed.
fn unsupported(e: &TargetError) -> Option<(u16, &str)> {
    match e {
        TargetError::Rejected { status: status @ (501 | 405), message } => Some((*status, message)),
        _ => None,
    }
}

impl TargetClient {
    /// Makes `ops` on a user or a group: as one PATCH, or by PUT where the dialect, the
    /// ServiceProviderConfig or an earlier refusal in this run says so. A PATCH refused as not
    /// implemented is sent again as PUT, and so is every later update of the run.
    pub(super) async fn change(&self, endpoint: &str, id: &str, ops: &[PatchOp]) -> Result<(), TargetError> {
        if ops.is_empty() {
            return Ok(());
        }
        if self.inner.live.update() == Update::Patch {
            let result = self.patch(endpoint, id, ops).await;
            let Some((status, message)) = result.as_ref().err().and_then(unsupported) else {
                return result;
            };
            if self.inner.live.put_updates() {
                tracing::warn!(
                    status,
                    endpoint,
                    "The target refused a PATCH ({status}: {message}); updates are sent as GET and PUT \
                     for the rest of this run. Set target.dialect.update = \"put\" to make it permanent."
                );
            }
        }
        self.put(endpoint, id, ops).await
    }

    /// Adds members: a PATCH with a value list, or a PUT of the group where member changes go
    /// by PUT (or the PATCH is refused as not implemented).
    pub(super) async fn change_members_add(
        &self,
        id: &str,
        member_ids: &[String],
    ) -> Result<(), TargetError> {
        let users = self.inner.url(&["Users"]).to_string();
        let op = body::add_members_op(&self.inner.dialect(), &users, member_ids);
        if self.inner.live.members() != Members::Put {
            let form = self.inner.live.members();
            let result = self.patch("Groups", id, std::slice::from_ref(&op)).await;
            let Some((status, message)) = result.as_ref().err().and_then(unsupported) else {
                return result;
            };
            self.members_refused(form, Members::Put, status, message);
        }
        self.put("Groups", id, &[op]).await
    }

    /// Removes members in the form in use, falling back from a filter path to a value list to a
    /// PUT of the group as the target refuses each (a value list refused as invalid, 400, counts
    /// too: scim2-server takes only the path, as RFC 7644 defines it).
    pub(super) async fn change_members_remove(
        &self,
        id: &str,
        member_ids: &[String],
    ) -> Result<(), TargetError> {
        loop {
            let form = self.inner.live.members();
            if form == Members::Put {
                let users = self.inner.url(&["Users"]).to_string();
                let gone = body::member_values(&self.inner.dialect(), &users, member_ids);
                let op = PatchOp { kind: body::OpKind::Remove, path: "members".into(), value: Some(gone) };
                return self.put("Groups", id, &[op]).await;
            }
            let result = self.patch("Groups", id, &body::remove_members_ops(form, member_ids)).await;
            let refused = match (&result, form) {
                (Err(e), _) if unsupported(e).is_some() => unsupported(e),
                (Err(TargetError::Rejected { status: 400, message }), Members::ValueList) => {
                    Some((400, message.as_str()))
                }
                _ => None,
            };
            let Some((status, message)) = refused else { return result };
            let next = if form == Members::Filter { Members::ValueList } else { Members::Put };
            self.members_refused(form, next, status, message);
        }
    }

    fn members_refused(&self, from: Members, to: Members, status: u16, message: &str) {
        if self.inner.live.degrade_members(from, to) {
            tracing::warn!(
                status,
                "The target refused a member change as {from} ({status}: {message}); members are \
                 changed as {to} for the rest of this run. Set target.dialect.members = \"{to}\" to \
                 make it permanent."
            );
        }
    }

    /// `PATCH /{endpoint}/{id}`; 200 with a body and 204 without are both success, and a body
    /// must show the operations took.
    async fn patch(&self, endpoint: &str, id: &str, ops: &[PatchOp]) -> Result<(), TargetError> {
        if ops.is_empty() {
            return Ok(());
        }
        let url = self.inner.url(&[endpoint, id]);
        let doc = body::patch_body(&self.inner.dialect(), ops);
        let answer = self
            .inner
            .retrying("patch", || async {
                let reply =
                    self.inner.send(Method::PATCH, &url, &[], Some(&doc), Answer::Optional, None).await?;
                Ok(reply.doc)
            })
            .await?;
        self.check_took(endpoint, id, answer, ops).await
    }

    /// GET the resource, make `ops` on it, PUT it back with `If-Match` when the target gave a
    /// version; attributes scimsync does not manage go back as they were read.
    async fn put(&self, endpoint: &str, id: &str, ops: &[PatchOp]) -> Result<(), TargetError> {
        let url = self.inner.url(&[endpoint, id]);
        let attempt = || async {
            let mut rounds = 0;
            loop {
                rounds += 1;
                let (etag, mut doc) = self.read_once(endpoint, id).await?;
                let meta_version = doc.pointer("/meta/version").and_then(Value::as_str).map(str::to_owned);
                let version = etag.or(meta_version);
                for op in ops {
                    resource::apply(&mut doc, op).map_err(|message| Failure::Body { message })?;
                }
                let body = resource::for_put(doc);
                let sent = self.inner.send(
                    Method::PUT,
                    &url,
                    &[],
                    Some(&body),
                    Answer::Optional,
                    version.as_deref(),
                );
                match sent.await {
                    Err(Failure::Status { status: 412, .. }) if rounds < PRECONDITION_ROUNDS => continue,
                    r => return r.map(|reply| reply.doc),
                }
            }
        };
        let answer = self.inner.retrying("put", attempt).await?;
        self.check_took(endpoint, id, answer, ops).await
    }

    /// One attempt of `GET /{endpoint}/{id}`: its `ETag` and the resource, which must be there.
    async fn read_once(&self, endpoint: &str, id: &str) -> Result<(Option<String>, Value), Failure> {
        let url = self.inner.url(&[endpoint, id]);
        let read = self.inner.send(Method::GET, &url, &[], None, Answer::Needed, None).await?;
        let doc = read.doc.ok_or_else(|| Failure::Body {
            message: format!("GET {endpoint}/{id} answered without the resource"),
        })?;
        Ok((read.etag, doc))
    }

    /// Whether the resource a write was answered with carries what `ops` made; where the
    /// answer has none, the resource is read back when `verify_writes` is set.
    async fn check_took(
        &self,
        endpoint: &str,
        id: &str,
        answer: Option<Value>,
        ops: &[PatchOp],
    ) -> Result<(), TargetError> {
        let doc = match answer {
            Some(doc) => doc,
            None if self.inner.dialect.verify_writes => {
                let read = || async { Ok(self.read_once(endpoint, id).await?.1) };
                self.inner.retrying("read back", read).await?
            }
            None => return Ok(()),
        };
        match resource::not_taken_all(&doc, ops) {
            None => Ok(()),
            Some(why) => Err(TargetError::NotTaken { message: why }),
        }
    }
}

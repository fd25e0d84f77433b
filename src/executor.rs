//! Plan → target, journaled, concurrent and rate-limited (by the client).
//!
//! Expected flow: operations run phase by phase ([`Op::phase`]); within a phase up to
//! `concurrency` requests are in flight, operations on the same object one after another. Each
//! operation is journaled (`pending`) before its request is sent; when the target confirms it,
//! the snapshot change, the journal's `done` mark and the audit entry are committed in one
//! transaction. Operations are journaled ahead of sending, [`JOURNAL_AHEAD`] per request slot
//! in one transaction, and answers are committed together with the next journal entries (or
//! when many have gathered, after [`COMMIT_EVERY`], or at the end of a phase): a durable commit
//! costs a disk flush, and one per operation would bound a sync to a few hundred operations a
//! second whatever the target, and cost a slow target's host more CPU than the requests.
//!
//! Guarantees: the snapshot advances only for confirmed operations; a crash at any point leaves
//! at most the journaled-ahead operations and the answers not yet committed `pending`, which
//! [`recover`] resolves before the next plan (an unfinished create by looking the object up); a
//! 401/403 stops the run at once: nothing new is sent, requests already in flight are awaited
//! and committed if they succeeded.
//!
//! Caveats: an unfinished update, membership change or delete is abandoned rather than
//! resolved; the next plan, made from the unchanged snapshot, sends it again (these requests
//! are idempotent).

use crate::model::{DesiredState, DesiredUser, SourceKey};
use crate::reconcile::plan::Op;
use crate::reconcile::Snapshot;
use crate::store::{Confirmed, Store, StoreError};
use crate::target::{TargetClient, TargetError};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// How many operations, per request slot, are journaled ahead of sending. Journaling costs a
/// durable transaction (a disk flush); when answers come one at a time, journaling each next
/// operation alone made a transaction per operation, which cost a target like scim2-server more
/// than the requests themselves. Journaled ahead, a round's sends need no transaction; what a
/// crash leaves `pending` grows by as much (never-sent creates are looked up once and abandoned).
const JOURNAL_AHEAD: usize = 8;

/// Answers wait at most this long for the next transaction.
const COMMIT_EVERY: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub struct ExecOptions {
    pub concurrency: usize,
    /// On 409 for a create: look the user up and adopt it (`target.adoption = "auto"`).
    pub adopt: bool,
    /// On 404 for an update of a managed user: create it again (`target.on_missing`).
    pub recreate_missing: bool,
    /// Set to stop dispatching (SIGTERM): operations in flight finish and are committed.
    pub stop: Arc<AtomicBool>,
    /// Seconds since the epoch, for journal and audit timestamps.
    pub clock: fn() -> i64,
}

/// One operation that did not go through, with the target's message.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    pub op: &'static str,
    pub key: String,
    pub name: String,
    pub message: String,
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub applied: u64,
    pub adopted: u64,
    pub failed: Vec<Failure>,
    /// Why the run stopped early (401/403), if it did.
    pub stopped: Option<String>,
    /// Operations not started because of a stop request or an auth failure.
    pub not_started: u64,
}

/// Target ids of managed objects, kept current as operations complete.
#[derive(Clone, Debug, Default)]
pub struct Ids {
    pub users: HashMap<SourceKey, String>,
    pub groups: HashMap<SourceKey, String>,
}

impl Ids {
    pub fn from_snapshot(s: &Snapshot) -> Ids {
        Ids {
            users: s.users.iter().map(|(k, u)| (k.clone(), u.target_id.clone())).collect(),
            groups: s.groups.iter().map(|(k, g)| (k.clone(), g.target_id.clone())).collect(),
        }
    }
}

/// What one request achieved.
enum Done {
    /// Confirmed; for creates, the new (or adopted) object's id.
    Applied {
        op: Op,
        target_id: Option<String>,
        adopted: bool,
    },
    Failed {
        op: Op,
        error: TargetError,
    },
}

/// An operation with the target ids it needs, ready to send.
struct Ready {
    op: Op,
    id: Option<String>,
    members: Vec<String>,
}

/// Resolves the ids an operation needs. Members without a target id (their create failed) are
/// left out of the operation, so the snapshot records only what was sent.
fn resolve(op: &Op, ids: &Ids) -> Result<Ready, String> {
    let user_id =
        |k: &SourceKey| ids.users.get(k).cloned().ok_or_else(|| format!("user {k} has no target id"));
    let group_id = |k: &SourceKey| {
        ids.groups.get(k).cloned().ok_or_else(|| format!("group {k} has no target id (its creation failed?)"))
    };
    Ok(match op {
        Op::CreateUser { .. } | Op::CreateGroup { .. } => Ready { op: op.clone(), id: None, members: vec![] },
        Op::UpdateUser { key, .. }
        | Op::ReactivateUser { key, .. }
        | Op::DeactivateUser { key, .. }
        | Op::DeleteUser { key, .. } => Ready { op: op.clone(), id: Some(user_id(key)?), members: vec![] },
        Op::RenameGroup { key, .. } | Op::DeleteGroup { key, .. } => {
            Ready { op: op.clone(), id: Some(group_id(key)?), members: vec![] }
        }
        Op::AddMembers { key, display_name, members } | Op::RemoveMembers { key, display_name, members } => {
            let id = group_id(key)?;
            let known: Vec<(SourceKey, String)> =
                members.iter().filter_map(|m| ids.users.get(m).map(|i| (m.clone(), i.clone()))).collect();
            let keys: Vec<SourceKey> = known.iter().map(|(k, _)| k.clone()).collect();
            let (key, display_name) = (key.clone(), display_name.clone());
            let op = if matches!(op, Op::AddMembers { .. }) {
                Op::AddMembers { key, display_name, members: keys }
            } else {
                Op::RemoveMembers { key, display_name, members: keys }
            };
            Ready { op, id: Some(id), members: known.into_iter().map(|(_, i)| i).collect() }
        }
    })
}

/// Sends one operation. Creates that meet a 409 adopt the existing object when allowed.
async fn send(
    client: TargetClient,
    ready: Ready,
    opts: ExecOptions,
    desired_user: Option<crate::model::DesiredUser>,
) -> Done {
    let Ready { op, id, members } = ready;
    let id = id.unwrap_or_default();
    let result: Result<(Option<String>, bool), TargetError> = match &op {
        Op::CreateUser { user } => match client.create_user(user).await {
            Ok(new) => Ok((Some(new), false)),
            Err(TargetError::Conflict { message }) if opts.adopt => match client
                .find_user(user.user_name())
                .await
            {
                Ok(Some(found)) => client.adopt_user(&found.id, user).await.map(|_| (Some(found.id), true)),
                Ok(None) => Err(TargetError::Conflict { message }),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        },
        Op::UpdateUser { changes, .. } | Op::ReactivateUser { changes, .. } => {
            let mut r = if changes.is_empty() { Ok(()) } else { client.update_user(&id, changes).await };
            if r.is_ok() && matches!(op, Op::ReactivateUser { .. }) {
                r = client.set_active(&id, true).await;
            }
            match (r, desired_user) {
                (Err(TargetError::NotFound { .. }), Some(user)) if opts.recreate_missing => {
                    // Deleted by hand in the target: create it again and record the new id.
                    let created = client.create_user(&user).await;
                    return match created {
                        Ok(new) => Done::Applied {
                            op: Op::CreateUser { user },
                            target_id: Some(new),
                            adopted: false,
                        },
                        Err(error) => Done::Failed { op, error },
                    };
                }
                (r, _) => r.map(|_| (None, false)),
            }
        }
        // Gone already is as good as deactivated or deleted.
        Op::DeactivateUser { .. } => ok_if_gone(client.set_active(&id, false).await),
        Op::DeleteUser { .. } => ok_if_gone(client.delete_user(&id).await),
        Op::CreateGroup { display_name, .. } => match client.create_group(display_name).await {
            Ok(new) => Ok((Some(new), false)),
            Err(TargetError::Conflict { message }) => match client.find_group(display_name).await {
                Ok(Some(found)) => Ok((Some(found), true)),
                Ok(None) => Err(TargetError::Conflict { message }),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        },
        Op::RenameGroup { to, .. } => client.rename_group(&id, to).await.map(|_| (None, false)),
        Op::AddMembers { .. } if members.is_empty() => Ok((None, false)),
        Op::AddMembers { .. } => client.add_members(&id, &members).await.map(|_| (None, false)),
        Op::RemoveMembers { .. } if members.is_empty() => Ok((None, false)),
        Op::RemoveMembers { .. } => ok_if_gone(client.remove_members(&id, &members).await),
        Op::DeleteGroup { .. } => ok_if_gone(client.delete_group(&id).await),
    };
    match result {
        Ok((target_id, adopted)) => Done::Applied { op, target_id, adopted },
        Err(error) => Done::Failed { op, error },
    }
}

fn ok_if_gone(r: Result<(), TargetError>) -> Result<(Option<String>, bool), TargetError> {
    match r {
        Ok(()) | Err(TargetError::NotFound { .. }) => Ok((None, false)),
        Err(e) => Err(e),
    }
}

/// Applies `ops` in order. Returns what happened; store errors abort (the journal keeps the rest).
pub async fn execute(
    store: &mut Store,
    client: &TargetClient,
    run_id: i64,
    ops: &[Op],
    desired: Option<&DesiredState>,
    ids: &mut Ids,
    opts: &ExecOptions,
) -> Result<Report, StoreError> {
    let clock = opts.clock;
    let slots = opts.concurrency.max(1);
    let ahead = slots * JOURNAL_AHEAD;
    let mut report = Report::default();
    let mut seq = 0i64;
    let mut start = 0;
    while start < ops.len() {
        let phase = ops[start].phase();
        let end = ops[start..].iter().position(|o| o.phase() != phase).map_or(ops.len(), |p| start + p);
        // Lanes: operations on the same object run one after another.
        let mut lanes: BTreeMap<&SourceKey, VecDeque<&Op>> = BTreeMap::new();
        let mut order = Vec::new();
        for op in &ops[start..end] {
            let lane = lanes.entry(op.key()).or_default();
            if lane.is_empty() {
                order.push(op.key());
            }
            lane.push_back(op);
        }
        let mut lanes: Vec<VecDeque<&Op>> =
            order.iter().map(|k| lanes.remove(k).unwrap_or_default()).collect();
        let mut busy = vec![false; lanes.len()];
        let mut in_flight: JoinSet<(usize, i64, Done)> = JoinSet::new();
        let mut next_lane = 0;
        // Journaled, not yet sent: (lane, journal id, operation, desired user).
        let mut queued: VecDeque<(usize, i64, Ready, Option<DesiredUser>)> = VecDeque::new();
        // Answers not yet committed: committed with the next operations' journal entries.
        let mut applied: Vec<(i64, Op, Option<String>, bool)> = Vec::new();
        let mut committed_at = Instant::now();
        loop {
            let stopping = report.stopped.is_some() || opts.stop.load(Ordering::SeqCst);
            // When the journaled operations cannot fill the free request slots, journal the next
            // ones, up to `ahead`, in one transaction (with the answers received so far).
            let mut batch = Vec::new();
            if !stopping && queued.len() < slots - in_flight.len() {
                while in_flight.len() + queued.len() + batch.len() < ahead {
                    let Some(lane) = (0..lanes.len())
                        .map(|i| (next_lane + i) % lanes.len())
                        .find(|&i| !busy[i] && !lanes[i].is_empty())
                    else {
                        break;
                    };
                    next_lane = (lane + 1) % lanes.len().max(1);
                    let op = lanes[lane].pop_front().expect("non-empty lane");
                    let ready = match resolve(op, ids) {
                        Ok(r) => r,
                        Err(message) => {
                            report.failed.push(failure(op, message));
                            continue;
                        }
                    };
                    seq += 1;
                    let want = match op {
                        Op::UpdateUser { key, .. } | Op::ReactivateUser { key, .. } => {
                            desired.and_then(|d| d.users.get(key).cloned())
                        }
                        _ => None,
                    };
                    busy[lane] = true;
                    batch.push((lane, seq, ready, want));
                }
            }
            // Answers are committed with new journal entries, and otherwise when many have
            // gathered, a second has passed, or nothing else is under way.
            let idle = in_flight.is_empty() && (queued.is_empty() || stopping);
            let commit = !batch.is_empty()
                || (!applied.is_empty()
                    && (idle || applied.len() >= ahead || committed_at.elapsed() >= COMMIT_EVERY));
            if commit {
                // One transaction: the answers' snapshot changes, then the new journal entries.
                let confirmed: Vec<Confirmed> = applied
                    .iter()
                    .map(|(journal_id, op, target_id, _)| Confirmed {
                        journal_id: Some(*journal_id),
                        op,
                        target_id: target_id.as_deref(),
                    })
                    .collect();
                let entries: Vec<(i64, &Op)> = batch.iter().map(|(_, seq, r, _)| (*seq, &r.op)).collect();
                let journal_ids = store.commit_and_journal(run_id, &confirmed, &entries, clock())?;
                committed_at = Instant::now();
                drop((confirmed, entries));
                for (_, op, target_id, adopted) in applied.drain(..) {
                    match &op {
                        Op::CreateUser { user } => {
                            ids.users.insert(user.key.clone(), target_id.unwrap_or_default());
                        }
                        Op::CreateGroup { key, .. } => {
                            ids.groups.insert(key.clone(), target_id.unwrap_or_default());
                        }
                        Op::DeleteUser { key, .. } => {
                            ids.users.remove(key);
                        }
                        Op::DeleteGroup { key, .. } => {
                            ids.groups.remove(key);
                        }
                        _ => {}
                    }
                    report.applied += 1;
                    report.adopted += u64::from(adopted);
                    tracing::info!(target: "scimsync::change", op = op.kind(), key = %op.key(), adopted, "Applied.");
                }
                queued.extend(
                    batch.into_iter().zip(journal_ids).map(|((lane, _, r, want), id)| (lane, id, r, want)),
                );
            }
            if stopping && !queued.is_empty() {
                // Journaled but never sent: nothing for recovery to look up.
                let ids: Vec<i64> = queued.iter().map(|(_, id, _, _)| *id).collect();
                store.journal_fail_many(&ids, "abandoned", "not sent: the run stopped", clock())?;
                report.not_started += queued.len() as u64;
                queued.clear();
            }
            while in_flight.len() < slots {
                let Some((lane, journal_id, ready, want)) = queued.pop_front() else { break };
                in_flight.spawn(send(client.clone(), ready, opts.clone(), want).map_lane(lane, journal_id));
            }
            let Some(joined) = in_flight.join_next().await else { break };
            // Everything else already answered is taken with it, for one transaction.
            let mut answered = vec![joined];
            while let Some(more) = in_flight.try_join_next() {
                answered.push(more);
            }
            for joined in answered {
                let (lane, journal_id, done) = joined.expect("request tasks do not panic");
                busy[lane] = false;
                match done {
                    Done::Applied { op, target_id, adopted } => {
                        applied.push((journal_id, op, target_id, adopted))
                    }
                    Done::Failed { op, error } => {
                        let message = error.to_string();
                        store.journal_fail(journal_id, "failed", &message, clock())?;
                        tracing::warn!(op = op.kind(), key = %op.key(), error = %message, "Operation failed.");
                        if error.stops_run() && report.stopped.is_none() {
                            report.stopped = Some(message.clone());
                        }
                        report.failed.push(failure(&op, message));
                    }
                }
            }
        }
        report.not_started += lanes.iter().map(|l| l.len() as u64).sum::<u64>();
        if report.stopped.is_some() || opts.stop.load(Ordering::SeqCst) {
            report.not_started += ops[end..].len() as u64;
            break;
        }
        start = end;
    }
    Ok(report)
}

fn failure(op: &Op, message: String) -> Failure {
    Failure { op: op.kind(), key: op.key().0.clone(), name: op.label().to_owned(), message }
}

/// Tags a request's result with its lane and journal entry.
trait MapLane: std::future::Future<Output = Done> + Sized {
    fn map_lane(self, lane: usize, journal_id: i64) -> impl std::future::Future<Output = (usize, i64, Done)> {
        async move { (lane, journal_id, self.await) }
    }
}
impl<F: std::future::Future<Output = Done>> MapLane for F {}

/// What recovery did with the journal entries a previous process left unfinished.
#[derive(Clone, Debug, Default)]
pub struct Recovery {
    /// Creates found in the target and committed.
    pub resolved: u64,
    /// Entries abandoned: the next plan sends them again.
    pub abandoned: u64,
}

/// Resolves unfinished journal entries before a new plan is made: an unfinished create is
/// looked up (by userName or displayName) and committed if the target has it; everything else
/// is abandoned, so the next plan — made from the snapshot, which did not advance — redoes it.
pub async fn recover(
    store: &mut Store,
    client: &TargetClient,
    run_id: i64,
    clock: fn() -> i64,
) -> Result<Result<Recovery, TargetError>, StoreError> {
    let mut out = Recovery::default();
    for (journal_id, op) in store.journal_pending()? {
        let found = match &op {
            Op::CreateUser { user } => client.find_user(user.user_name()).await.map(|u| u.map(|u| u.id)),
            Op::CreateGroup { display_name, .. } => client.find_group(display_name).await,
            _ => Ok(None),
        };
        match found {
            Ok(Some(id)) => {
                store.commit_op(run_id, Some(journal_id), &op, Some(&id), clock())?;
                out.resolved += 1;
            }
            Ok(None) => {
                store.journal_fail(
                    journal_id,
                    "abandoned",
                    "unfinished when the previous process stopped",
                    clock(),
                )?;
                out.abandoned += 1;
            }
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok(out))
}

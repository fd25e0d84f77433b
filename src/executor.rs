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

mod recover;
mod send;
mod tally;

pub use recover::{recover, RecoverError, Recovery};
pub use tally::{Counts, Tally, Voice};

use crate::clock::Clock;
use crate::model::SourceKey;
use crate::reconcile::plan::Op;
use crate::reconcile::Snapshot;
use crate::store::{Confirmed, Store, StoreError};
use crate::target::TargetClient;
use send::{Done, Ready};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// How many operations, per request slot, are journaled ahead of sending. Journaling costs a
/// durable transaction (a disk flush); journaling each next operation alone, as answers come one
/// at a time, would make a transaction per operation. Journaled ahead, a round's sends need no
/// transaction; what a crash leaves `pending` grows by as much (never-sent creates are looked up
/// once and abandoned).
const JOURNAL_AHEAD: usize = 8;

/// Answers wait at most this long for the next transaction.
const COMMIT_EVERY: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub struct ExecOptions {
    pub concurrency: usize,
    /// On 409 for a create: look the user up and adopt it (`target.adoption = "auto"`).
    pub adopt: bool,
    /// Set to stop dispatching (SIGTERM): operations in flight finish and are committed.
    pub stop: Arc<AtomicBool>,
    /// For journal and audit timestamps.
    pub clock: Clock,
}

/// One operation that did not go through, with the target's message.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    pub op: &'static str,
    pub key: String,
    pub name: String,
    pub message: String,
}

impl Failure {
    fn of(op: &Op, message: String) -> Failure {
        Failure { op: op.kind(), key: op.key().0.clone(), name: op.label().to_owned(), message }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Operations the target confirmed (committed to the snapshot).
    pub applied: u64,
    /// Of those, creates that adopted an existing object.
    pub adopted: u64,
    /// The confirmed operations by kind.
    pub confirmed: Counts,
    pub failed: Vec<Failure>,
    /// The failed operations by kind.
    pub failed_kinds: Counts,
    /// Why the run stopped early (401/403), if it did.
    pub stopped: Option<String>,
    /// Operations not started because of a stop request or an auth failure.
    pub not_started: u64,
}

impl Report {
    /// What the operations came to, by kind; `recovered`: creates an earlier process left
    /// unfinished that recovery found and recorded before this run's plan.
    pub fn tally(&self, recovered: u64) -> Tally {
        Tally {
            confirmed: self.confirmed.clone(),
            failed: self.failed_kinds.clone(),
            not_sent: self.not_started,
            recovered,
        }
    }
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

    /// Keeps the ids current after the target confirmed `op`.
    fn confirm(&mut self, op: &Op, target_id: Option<String>) {
        match op {
            Op::CreateUser { user } => {
                self.users.insert(user.key.clone(), target_id.unwrap_or_default());
            }
            Op::CreateGroup { key, .. } => {
                self.groups.insert(key.clone(), target_id.unwrap_or_default());
            }
            Op::DeleteUser { key, .. } => {
                self.users.remove(key);
            }
            Op::DeleteGroup { key, .. } => {
                self.groups.remove(key);
            }
            _ => {}
        }
    }
}

/// The operations of one phase, one lane per object: a lane's operations go one after another,
/// lanes are served in turn.
struct Lanes<'p> {
    lanes: Vec<VecDeque<&'p Op>>,
    /// Whether the lane has an operation journaled or in flight.
    busy: Vec<bool>,
    next: usize,
}

impl<'p> Lanes<'p> {
    fn new(ops: &'p [Op]) -> Lanes<'p> {
        let mut by_key: BTreeMap<&SourceKey, VecDeque<&Op>> = BTreeMap::new();
        let mut order = Vec::new();
        for op in ops {
            let lane = by_key.entry(op.key()).or_default();
            if lane.is_empty() {
                order.push(op.key());
            }
            lane.push_back(op);
        }
        let lanes: Vec<_> = order.iter().map(|k| by_key.remove(k).unwrap_or_default()).collect();
        Lanes { busy: vec![false; lanes.len()], lanes, next: 0 }
    }

    /// The next operation of the next lane that is not busy, marking that lane busy.
    fn take(&mut self) -> Option<(usize, &'p Op)> {
        let n = self.lanes.len();
        let lane =
            (0..n).map(|i| (self.next + i) % n).find(|&i| !self.busy[i] && !self.lanes[i].is_empty())?;
        self.next = (lane + 1) % n;
        self.busy[lane] = true;
        Some((lane, self.lanes[lane].pop_front()?))
    }

    fn free(&mut self, lane: usize) {
        self.busy[lane] = false;
    }

    fn remaining(&self) -> u64 {
        self.lanes.iter().map(|l| l.len() as u64).sum()
    }
}

/// Taken from a lane, to be journaled with the next transaction.
struct Next {
    lane: usize,
    seq: i64,
    ready: Ready,
}

/// Journaled, waiting for a request slot.
struct Queued {
    lane: usize,
    journal_id: i64,
    ready: Ready,
}

/// A request's result, tagged with its lane and journal entry.
struct Answer {
    lane: usize,
    journal_id: i64,
    done: Done,
}

/// Confirmed by the target, to be committed with the next transaction.
struct Answered {
    journal_id: i64,
    op: Op,
    target_id: Option<String>,
    adopted: bool,
}

/// One `execute` call: the store, the client and what has happened so far.
struct Executor<'a> {
    store: &'a mut Store,
    client: &'a TargetClient,
    run_id: i64,
    ids: &'a mut Ids,
    opts: &'a ExecOptions,
    report: Report,
    /// Requests in flight at most.
    slots: usize,
    /// Operations journaled or in flight at most.
    ahead: usize,
    /// Journal order of the operations taken so far.
    seq: i64,
}

/// Applies `ops` (a plan's, in plan order) phase by phase ([`Op::phase`]). Returns what
/// happened; a store error aborts (the journal keeps the rest).
pub async fn execute(
    store: &mut Store,
    client: &TargetClient,
    run_id: i64,
    ops: &[Op],
    ids: &mut Ids,
    opts: &ExecOptions,
) -> Result<Report, StoreError> {
    let slots = opts.concurrency.max(1);
    let mut ex = Executor {
        store,
        client,
        run_id,
        ids,
        opts,
        report: Report::default(),
        slots,
        ahead: slots * JOURNAL_AHEAD,
        seq: 0,
    };
    let mut rest = ops;
    while let Some(first) = rest.first() {
        let len = rest.iter().position(|o| o.phase() != first.phase()).unwrap_or(rest.len());
        let (phase, after) = rest.split_at(len);
        ex.phase(phase).await?;
        if ex.stopping() {
            ex.report.not_started += after.len() as u64;
            break;
        }
        rest = after;
    }
    Ok(ex.report)
}

impl Executor<'_> {
    fn stopping(&self) -> bool {
        self.report.stopped.is_some() || self.opts.stop.load(Ordering::SeqCst)
    }

    /// Runs one phase to its end: each round journals what the free request slots need (with
    /// the answers so far), sends, and waits for the next answers.
    async fn phase(&mut self, ops: &[Op]) -> Result<(), StoreError> {
        let mut lanes = Lanes::new(ops);
        let mut in_flight: JoinSet<Answer> = JoinSet::new();
        let mut queued: VecDeque<Queued> = VecDeque::new();
        let mut answered: Vec<Answered> = Vec::new();
        let mut committed_at = Instant::now();
        loop {
            let stopping = self.stopping();
            let next = match stopping || queued.len() >= self.slots - in_flight.len() {
                true => Vec::new(),
                false => self.take_next(&mut lanes, in_flight.len() + queued.len()),
            };
            // Answers are committed with new journal entries, and otherwise when many have
            // gathered, a second has passed, or nothing else is under way.
            let idle = in_flight.is_empty() && (queued.is_empty() || stopping);
            let due = idle || answered.len() >= self.ahead || committed_at.elapsed() >= COMMIT_EVERY;
            if !next.is_empty() || (!answered.is_empty() && due) {
                queued.extend(self.commit(&mut answered, next)?);
                committed_at = Instant::now();
            }
            if stopping && !queued.is_empty() {
                self.abandon(std::mem::take(&mut queued))?;
            }
            while in_flight.len() < self.slots {
                let Some(Queued { lane, journal_id, ready }) = queued.pop_front() else { break };
                let (client, adopt) = (self.client.clone(), self.opts.adopt);
                in_flight
                    .spawn(async move { Answer { lane, journal_id, done: ready.send(client, adopt).await } });
            }
            let Some(first) = in_flight.join_next().await else { break };
            // Everything else already answered is taken with it, for one transaction.
            let mut answers = vec![first];
            while let Some(more) = in_flight.try_join_next() {
                answers.push(more);
            }
            for answer in answers {
                let Answer { lane, journal_id, done } = answer.expect("request tasks do not panic");
                lanes.free(lane);
                match done {
                    Done::Applied { op, target_id, adopted } => {
                        answered.push(Answered { journal_id, op, target_id, adopted })
                    }
                    Done::Failed { op, error } => {
                        let message = error.to_string();
                        self.store.journal_fail(journal_id, "failed")?;
                        tracing::warn!(op = op.kind(), key = %op.key(), error = %message, "Operation failed.");
                        if error.stops_run() && self.report.stopped.is_none() {
                            self.report.stopped = Some(message.clone());
                        }
                        self.fail(&op, message);
                    }
                }
            }
        }
        self.report.not_started += lanes.remaining();
        Ok(())
    }

    /// Records an operation that did not go through.
    fn fail(&mut self, op: &Op, message: String) {
        self.report.failed_kinds.add(op, false);
        self.report.failed.push(Failure::of(op, message));
    }

    /// Takes operations from the lanes until `ahead` are journaled or in flight (`under_way`
    /// already are). An operation whose ids cannot be resolved fails here, unsent.
    fn take_next(&mut self, lanes: &mut Lanes<'_>, under_way: usize) -> Vec<Next> {
        let mut next = Vec::new();
        while under_way + next.len() < self.ahead {
            let Some((lane, op)) = lanes.take() else { break };
            match Ready::resolve(op, self.ids) {
                Ok(ready) => {
                    self.seq += 1;
                    next.push(Next { lane, seq: self.seq, ready });
                }
                Err(message) => {
                    lanes.free(lane);
                    self.fail(op, message);
                }
            }
        }
        next
    }

    /// One transaction: the answers' snapshot changes, then the journal entries of `next`, which
    /// come back queued for sending.
    fn commit(&mut self, answered: &mut Vec<Answered>, next: Vec<Next>) -> Result<Vec<Queued>, StoreError> {
        let confirmed: Vec<Confirmed> = answered
            .iter()
            .map(|a| Confirmed {
                journal_id: Some(a.journal_id),
                op: &a.op,
                target_id: a.target_id.as_deref(),
            })
            .collect();
        let entries: Vec<(i64, &Op)> = next.iter().map(|n| (n.seq, &n.ready.op)).collect();
        let journal_ids =
            self.store.commit_and_journal(self.run_id, &confirmed, &entries, (self.opts.clock)())?;
        drop((confirmed, entries));
        for Answered { op, target_id, adopted, .. } in answered.drain(..) {
            self.ids.confirm(&op, target_id);
            self.report.applied += 1;
            self.report.adopted += u64::from(adopted);
            self.report.confirmed.add(&op, adopted);
            tracing::info!(target: "scimsync::change", op = op.kind(), key = %op.key(), adopted, "Applied.");
        }
        let queued = next.into_iter().zip(journal_ids);
        Ok(queued.map(|(Next { lane, ready, .. }, journal_id)| Queued { lane, journal_id, ready }).collect())
    }

    /// Journaled but never sent (the run is stopping): nothing for recovery to look up.
    fn abandon(&mut self, queued: VecDeque<Queued>) -> Result<(), StoreError> {
        let ids: Vec<i64> = queued.iter().map(|q| q.journal_id).collect();
        // Not sent: the run stopped.
        self.store.journal_fail_many(&ids, "abandoned")?;
        self.report.not_started += queued.len() as u64;
        Ok(())
    }
}

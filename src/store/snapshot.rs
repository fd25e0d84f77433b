//! Loading the snapshot, and advancing it by confirmed operations, each with its journal and
//! audit rows in the same transaction.

use super::{codec, Result, Store, StoreError};
use crate::model::{Attr, Attrs, DesiredState, DesiredUser, SourceKey};
use crate::reconcile::plan::{Op, Plan};
use crate::reconcile::snapshot::{ManagedGroup, ManagedUser, Missing, Snapshot};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{params, OptionalExtension, Transaction};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc::{Receiver, SyncSender};

fn corrupt(what: String, e: serde_json::Error) -> StoreError {
    StoreError::Corrupt { what, message: e.to_string() }
}

/// The activity name the target's own log uses for an operation (SPEC §6).
pub fn activity(op: &Op, user_type: Option<&str>) -> String {
    let who = match user_type {
        Some("technician") => "Technician",
        Some(_) => "End User",
        None => "User",
    };
    match op {
        Op::CreateUser { .. } => format!("{who} Created"),
        Op::UpdateUser { .. } => format!("{who} Updated"),
        Op::ReactivateUser { .. } => format!("{who} Enabled"),
        Op::DeactivateUser { .. } => format!("{who} Disabled"),
        Op::DeleteUser { .. } => format!("{who} Deleted"),
        Op::CreateGroup { .. } => "User group Created".into(),
        Op::RenameGroup { .. } | Op::AddMembers { .. } | Op::RemoveMembers { .. } => {
            "User group Updated".into()
        }
        Op::DeleteGroup { .. } => "User group Deleted".into(),
    }
}

fn load_user(tx: &Transaction, key: &SourceKey) -> Result<Option<ManagedUser>> {
    let mut stmt = tx.prepare_cached(
        "SELECT target_id, attrs, active, roles, missing_since, missing_runs FROM users WHERE key = ?1",
    )?;
    let mut rows = stmt.query([&key.0])?;
    let Some(r) = rows.next()? else { return Ok(None) };
    Ok(Some(user_from_row(key, r.get(0)?, r.get_ref(1)?, r.get(2)?, r.get_ref(3)?, r.get(4)?, r.get(5)?)?))
}

/// A users row as a [`ManagedUser`]. `attrs` is in the compact form of [`codec`], or JSON text in
/// a row written before it.
fn user_from_row(
    key: &SourceKey,
    target_id: String,
    attrs: ValueRef<'_>,
    active: bool,
    roles: ValueRef<'_>,
    since: Option<i64>,
    runs: u32,
) -> Result<ManagedUser> {
    let attrs = stored_attrs(key, attrs)?;
    let roles = roles.as_str().map_err(rusqlite::Error::from)?;
    Ok(ManagedUser {
        target_id,
        attrs,
        active,
        roles: serde_json::from_str(roles).map_err(|e| corrupt(format!("users.roles of {key}"), e))?,
        missing: since.map(|since| Missing { since, runs }),
    })
}

/// `users.attrs` of the row with this key: the compact form of [`codec`], or JSON text in a row
/// written before it.
pub(super) fn stored_attrs(key: &SourceKey, attrs: ValueRef<'_>) -> Result<Attrs> {
    match attrs {
        ValueRef::Blob(b) => codec::decode_attrs(b, key)
            .map_err(|message| StoreError::Corrupt { what: format!("users.attrs of {key}"), message }),
        other => serde_json::from_str(other.as_str().map_err(rusqlite::Error::from)?)
            .map_err(|e| corrupt(format!("users.attrs of {key}"), e)),
    }
}

/// `audit.details` of an entry as the JSON of its operation: a created user is stored in the
/// compact form of [`codec`] (its key is the entry's `object_key`), every other operation as JSON.
pub(super) fn audit_details(key: &str, details: ValueRef<'_>) -> Result<serde_json::Value> {
    let what = || format!("audit.details of {key}");
    match details {
        ValueRef::Blob(b) => {
            let user = codec::decode_created(b, &SourceKey::from(key))
                .map_err(|message| StoreError::Corrupt { what: what(), message })?;
            Ok(serde_json::to_value(Op::CreateUser { user }).expect("op serialises"))
        }
        other => serde_json::from_str(other.as_str().map_err(rusqlite::Error::from)?)
            .map_err(|e| corrupt(what(), e)),
    }
}

fn save_user(tx: &Transaction, key: &SourceKey, u: &ManagedUser, now: i64) -> Result<()> {
    let mut attrs = Vec::with_capacity(256);
    codec::encode_attrs(&u.attrs, key, &mut attrs);
    tx.prepare_cached(
        "INSERT INTO users (key, target_id, attrs, active, roles, missing_since, missing_runs, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (key) DO UPDATE SET target_id = ?2, attrs = ?3, active = ?4, roles = ?5,
             missing_since = ?6, missing_runs = ?7, updated_at = ?8",
    )?
    .execute(params![
        key.0,
        u.target_id,
        attrs,
        u.active,
        serde_json::to_string(&u.roles).expect("roles serialise"),
        u.missing.map(|m| m.since),
        u.missing.map_or(0, |m| m.runs),
        now
    ])?;
    Ok(())
}

impl Store {
    /// Reads the whole snapshot.
    pub fn load_snapshot(&self) -> Result<Snapshot> {
        self.load_snapshot_sharing(None)
    }

    /// [`Store::load_snapshot`]; a managed user whose attribute values equal those of the
    /// desired user with the same key shares them, so that an unchanged directory's values are
    /// in memory once, not twice.
    pub fn load_snapshot_sharing(&self, desired: Option<&DesiredState>) -> Result<Snapshot> {
        // One read transaction: users, groups and memberships as of one moment, even while
        // another process (a `sync` beside a `plan`) commits.
        let read_tx = self.conn.unchecked_transaction()?;
        // Two threads: this one steps through the rows and parses them (SQLite's connection stays
        // on it), the other finds each row's desired user, shares equal values and fills the
        // map. Batches keep the hand-over cheap and the rows in flight few.
        let users = std::thread::scope(|scope| -> Result<_> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(SourceKey, ManagedUser)>>(4);
            let sharer = scope.spawn(move || share_and_build(rx, desired));
            let read = self.read_user_rows(&tx);
            drop(tx);
            // A panic there is a bug; it is passed on as it would be on one thread.
            let users = sharer.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            read.map(|()| users)
        })?;
        let mut stmt = self.conn.prepare("SELECT key, target_id, display_name FROM groups")?;
        let mut groups: BTreeMap<SourceKey, ManagedGroup> = stmt
            .query_map([], |r| {
                Ok((
                    SourceKey(r.get(0)?),
                    ManagedGroup { target_id: r.get(1)?, display_name: r.get(2)?, members: BTreeSet::new() },
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = self.conn.prepare("SELECT group_key, user_key FROM memberships")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            if let Some(g) = groups.get_mut(&SourceKey(r.get(0)?)) {
                g.members.insert(SourceKey(r.get(1)?));
            }
        }
        drop(rows);
        drop(stmt);
        read_tx.finish()?;
        Ok(Snapshot { users, groups })
    }

    /// Every users row, parsed, in batches; the values are decoded where SQLite holds them, not
    /// copied out first.
    fn read_user_rows(&self, tx: &SyncSender<Vec<(SourceKey, ManagedUser)>>) -> Result<()> {
        const BATCH: usize = 4096;
        let mut stmt = self
            .conn
            .prepare("SELECT key, target_id, attrs, active, roles, missing_since, missing_runs FROM users")?;
        let mut rows = stmt.query([])?;
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(r) = rows.next()? {
            let key = SourceKey(r.get(0)?);
            let user = user_from_row(
                &key,
                r.get(1)?,
                r.get_ref(2)?,
                r.get(3)?,
                r.get_ref(4)?,
                r.get(5)?,
                r.get(6)?,
            )?;
            batch.push((key, user));
            if batch.len() == BATCH {
                // The receiver only stops early when it panicked, which the caller passes on.
                let _ = tx.send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)));
            }
        }
        let _ = tx.send(batch);
        Ok(())
    }

    /// A counter bumped by every snapshot change: a saved plan is applied only if it is unchanged.
    pub fn snapshot_version(&self) -> Result<i64> {
        let v: String =
            self.conn.query_row("SELECT value FROM meta WHERE key = 'snapshot_version'", [], |r| r.get(0))?;
        Ok(v.parse().unwrap_or(0))
    }

    /// Advances the snapshot by one operation the target confirmed, marks its journal entry done
    /// and writes the audit log entry, all in one transaction.
    pub fn commit_op(
        &mut self,
        run_id: i64,
        journal_id: Option<i64>,
        op: &Op,
        target_id: Option<&str>,
        now: i64,
    ) -> Result<()> {
        self.commit_ops(run_id, &[Confirmed { journal_id, op, target_id }], now)
    }

    /// [`Store::commit_op`] for many confirmed operations in one transaction: each still gets
    /// its snapshot change, journal mark and audit entry, and either all of them are committed or
    /// none is. Used where operations are confirmed faster than one transaction per operation can
    /// be written (a first sync of a large directory).
    pub fn commit_ops(&mut self, run_id: i64, ops: &[Confirmed<'_>], now: i64) -> Result<()> {
        self.commit_and_journal(run_id, ops, &[], now).map(drop)
    }

    /// [`Store::commit_ops`] and [`Store::journal_begin_many`] in one transaction: the executor
    /// commits the answers it has and journals the operations it is about to send with one disk
    /// flush. The new journal entries are durable before the caller sends anything.
    pub fn commit_and_journal(
        &mut self,
        run_id: i64,
        confirmed: &[Confirmed<'_>],
        to_send: &[(i64, &Op)],
        now: i64,
    ) -> Result<Vec<i64>> {
        if confirmed.is_empty() && to_send.is_empty() {
            return Ok(Vec::new());
        }
        let tx = self.conn.transaction()?;
        let rebuild = confirmed.len() >= self.bulk_min && audit_rows(&tx)? < confirmed.len() as i64;
        if rebuild {
            tx.execute_batch("DROP INDEX IF EXISTS audit_name")?;
        }
        // The snapshot's rows are written in key order, the audit rows and journal marks in the
        // order the operations were confirmed; what each audit row says is read right after its
        // operation's change, as if it were committed alone.
        let mut facts = vec![(None, None); confirmed.len()];
        for i in write_order(confirmed) {
            let Confirmed { op, target_id, .. } = confirmed[i];
            let user_type = apply_op(&tx, op, target_id, now)?;
            facts[i] = (user_type, audited_target_id(&tx, op, target_id)?);
        }
        for (c, (user_type, stored_id)) in confirmed.iter().zip(facts) {
            audit_in(&tx, run_id, c, user_type.as_deref(), stored_id, now)?;
        }
        let journaled = confirmed.iter().filter(|c| c.journal_id.is_some()).map(|c| c.op.kind());
        super::prune::count_resolved(&tx, journaled, "done")?;
        if rebuild {
            tx.execute_batch(super::migrations::AUDIT_NAME_INDEX)?;
        }
        if !confirmed.is_empty() {
            tx.execute(
                "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'snapshot_version'",
                [],
            )?;
        }
        let ids = super::runs::journal_in(&tx, run_id, to_send, now)?;
        tx.commit()?;
        Ok(ids)
    }

    /// Records which managed users were seen and which are pending deprovisioning (grace period).
    pub fn record_presence(&mut self, plan: &Plan) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut clear = tx.prepare("UPDATE users SET missing_since = NULL, missing_runs = 0 WHERE key = ?1 AND missing_since IS NOT NULL")?;
            for key in &plan.present {
                clear.execute([&key.0])?;
            }
            let mut mark =
                tx.prepare("UPDATE users SET missing_since = ?2, missing_runs = ?3 WHERE key = ?1")?;
            for p in &plan.pending {
                mark.execute(params![p.key.0, p.missing_since, p.missing_runs])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// Collects the managed users into the snapshot's map; one whose values equal its desired user's
/// shares them (`Attrs` is never changed in place, so neither side sees the other change).
fn share_and_build(
    rows: Receiver<Vec<(SourceKey, ManagedUser)>>,
    desired: Option<&DesiredState>,
) -> BTreeMap<SourceKey, ManagedUser> {
    let index = desired.map(ByKey::new);
    // Inserted as the rows arrive, not collected and built in one go: the insertions overlap the
    // reading thread's work, and no vector of every row stands next to the map at the end.
    let mut users = BTreeMap::new();
    for batch in rows {
        for (key, mut user) in batch {
            if let Some(want) = index.as_ref().and_then(|d| d.find(&key)) {
                if want.attrs == user.attrs {
                    user.attrs = want.attrs.clone();
                }
            }
            users.insert(key, user);
        }
    }
    users
}

/// Finds desired users by key for snapshot rows, which come in the order they were inserted (a
/// sync commits round by round in plan order, by userName; key order holds only within a
/// commit). A lookup in the desired state's ordered map misses the cache at every step; this
/// open-addressing table (linear probing, twice as many slots as users, one pointer per slot)
/// goes from the slot straight to the user, as fast as a standard hash map keyed by the key's
/// text, in far less memory than that map while the snapshot loads (the run's peak).
struct ByKey<'a> {
    slots: Vec<Option<&'a DesiredUser>>,
    state: foldhash::fast::FixedState,
}

impl<'a> ByKey<'a> {
    fn new(desired: &'a DesiredState) -> Self {
        let size = (desired.users.len() * 2).next_power_of_two().max(16);
        let mut index = ByKey { slots: vec![None; size], state: Default::default() };
        for u in desired.users.values() {
            let mut slot = index.slot(&u.key);
            while index.slots[slot].is_some() {
                slot = (slot + 1) & (size - 1);
            }
            index.slots[slot] = Some(u);
        }
        index
    }

    fn slot(&self, key: &SourceKey) -> usize {
        use std::hash::BuildHasher as _;
        self.state.hash_one(key.0.as_str()) as usize & (self.slots.len() - 1)
    }

    fn find(&self, key: &SourceKey) -> Option<&'a DesiredUser> {
        let mut slot = self.slot(key);
        loop {
            let user = self.slots[slot]?;
            if user.key == *key {
                return Some(user);
            }
            slot = (slot + 1) & (self.slots.len() - 1);
        }
    }
}

/// One operation the target confirmed: its journal entry (if journaled) and, for creates, the
/// id the target gave the new object.
#[derive(Clone, Copy, Debug)]
pub struct Confirmed<'a> {
    pub journal_id: Option<i64>,
    pub op: &'a Op,
    pub target_id: Option<&'a str>,
}

/// The order in which a commit writes the snapshot: each run of consecutive user operations
/// sorted by key (stably), every group operation where it stands, so that no user operation moves
/// past a group operation. Keys are UUIDs and a plan orders creates by userName: written as they
/// come, each user lands on a random page of the key's B-tree and every large transaction
/// rewrites most of it; in key order the pages fill one after another.
fn write_order(ops: &[Confirmed<'_>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..ops.len()).collect();
    for run in order.chunk_by_mut(|&a, &b| ops[a].op.is_user_op() && ops[b].op.is_user_op()) {
        run.sort_by(|&a, &b| ops[a].op.key().cmp(ops[b].op.key()));
    }
    order
}

/// An upper bound on the audit log's rows (ids are never reused, and rows are never deleted but
/// by hand), found in the index's last page instead of by counting.
fn audit_rows(tx: &Transaction) -> Result<i64> {
    Ok(tx.query_row("SELECT coalesce(max(id), 0) FROM audit", [], |r| r.get(0))?)
}

/// The target id an audit row names: a group's from the snapshot (membership operations carry
/// none), otherwise the one the target confirmed.
fn audited_target_id(tx: &Transaction, op: &Op, target_id: Option<&str>) -> Result<Option<String>> {
    Ok(match op {
        Op::CreateGroup { key, .. }
        | Op::RenameGroup { key, .. }
        | Op::AddMembers { key, .. }
        | Op::RemoveMembers { key, .. } => tx
            .prepare_cached("SELECT target_id FROM groups WHERE key = ?1")?
            .query_row([&key.0], |r| r.get(0))
            .optional()?,
        _ => target_id.map(str::to_owned),
    })
}

/// The audit entry of one confirmed operation, and its journal entry resolved, whose snapshot change is made.
fn audit_in(
    tx: &Transaction,
    run_id: i64,
    c: &Confirmed<'_>,
    user_type: Option<&str>,
    stored_id: Option<String>,
    now: i64,
) -> Result<()> {
    let Confirmed { journal_id, op, .. } = *c;
    // A created user, most of a large first sync, in the compact form; every other operation as
    // the JSON a plan file holds ([`audit_details`] reads both).
    let details = match op {
        Op::CreateUser { user } => Value::Blob(codec::encode_created(user)),
        _ => Value::Text(serde_json::to_string(op).expect("op serialises")),
    };
    tx.prepare_cached(
        "INSERT INTO audit (run_id, at, activity, object_key, name, target_id, details) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![run_id, now, activity(op, user_type), op.key().0, op.label(), stored_id, details])?;
    if let Some(id) = journal_id {
        // Done is resolved: the audit row just written says what the entry would, so the entry
        // goes in the transaction that would have marked it (counted in `op_totals`).
        tx.prepare_cached("DELETE FROM journal WHERE id = ?1")?.execute([id])?;
    }
    Ok(())
}

/// Applies an operation to the snapshot rows as `Snapshot::apply` applies it to the in-memory
/// snapshot (property-tested in `tests/snapshot_store.rs`); returns the user's type for the audit
/// log.
fn apply_op(tx: &Transaction, op: &Op, target_id: Option<&str>, now: i64) -> Result<Option<String>> {
    let user_type = |u: &ManagedUser| u.attrs.get(&Attr::UserType).map(str::to_owned);
    match op {
        Op::CreateUser { user } => {
            let managed = ManagedUser {
                target_id: target_id.unwrap_or_default().to_owned(),
                attrs: user.attrs.clone(),
                active: user.active,
                roles: user.roles.clone(),
                missing: None,
            };
            save_user(tx, &user.key, &managed, now)?;
            Ok(user_type(&managed))
        }
        Op::UpdateUser { key, changes, .. } | Op::ReactivateUser { key, changes, .. } => {
            let Some(mut u) = load_user(tx, key)? else { return Ok(None) };
            u.apply_changes(changes);
            if matches!(op, Op::ReactivateUser { .. }) {
                u.active = true;
                u.missing = None;
            }
            save_user(tx, key, &u, now)?;
            Ok(user_type(&u))
        }
        Op::DeactivateUser { key, .. } => {
            let Some(mut u) = load_user(tx, key)? else { return Ok(None) };
            u.active = false;
            u.missing = None;
            save_user(tx, key, &u, now)?;
            Ok(user_type(&u))
        }
        Op::DeleteUser { key, .. } => {
            let u = load_user(tx, key)?;
            tx.execute("DELETE FROM users WHERE key = ?1", [&key.0])?;
            tx.execute("DELETE FROM memberships WHERE user_key = ?1", [&key.0])?;
            Ok(u.as_ref().and_then(user_type))
        }
        Op::CreateGroup { key, display_name } => {
            tx.execute(
                "INSERT INTO groups (key, target_id, display_name, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (key) DO UPDATE SET target_id = ?2, display_name = ?3, updated_at = ?4",
                params![key.0, target_id.unwrap_or_default(), display_name, now],
            )?;
            tx.execute("DELETE FROM memberships WHERE group_key = ?1", [&key.0])?;
            Ok(None)
        }
        Op::RenameGroup { key, to, .. } => {
            tx.execute(
                "UPDATE groups SET display_name = ?2, updated_at = ?3 WHERE key = ?1",
                params![key.0, to, now],
            )?;
            Ok(None)
        }
        Op::AddMembers { key, members, .. } => {
            let exists: bool =
                tx.query_row("SELECT EXISTS (SELECT 1 FROM groups WHERE key = ?1)", [&key.0], |r| r.get(0))?;
            if exists {
                let mut stmt = tx.prepare_cached(
                    "INSERT OR IGNORE INTO memberships (group_key, user_key) VALUES (?1, ?2)",
                )?;
                for m in members {
                    stmt.execute([&key.0, &m.0])?;
                }
            }
            Ok(None)
        }
        Op::RemoveMembers { key, members, .. } => {
            let mut stmt =
                tx.prepare_cached("DELETE FROM memberships WHERE group_key = ?1 AND user_key = ?2")?;
            for m in members {
                stmt.execute([&key.0, &m.0])?;
            }
            Ok(None)
        }
        Op::DeleteGroup { key, .. } => {
            tx.execute("DELETE FROM memberships WHERE group_key = ?1", [&key.0])?;
            tx.execute("DELETE FROM groups WHERE key = ?1", [&key.0])?;
            Ok(None)
        }
    }
}

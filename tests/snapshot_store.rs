//! The state database against the in-memory snapshot: whatever confirmed operations reach the
//! store — one by one (`Store::commit_op`), in batches (`Store::commit_ops`, which writes runs of
//! user operations in key order) or the executor's way (`Store::commit_and_journal`) — the
//! snapshot it loads afterwards is the one `Snapshot::apply` gives; and `Store::record_presence`
//! sets and clears the missing marks a plan names. Checked after every commit, over operations
//! planned round by round against the snapshot and over arbitrary ones.

use proptest::prelude::*;
use scimsync::model::{Attr, DesiredGroup, DesiredUser, SourceKey};
use scimsync::reconcile::plan::{Change, Op, Pending, Plan, Reason};
use scimsync::reconcile::policy::{Deprovision, Grace, Policy};
use scimsync::reconcile::snapshot::Missing;
use scimsync::reconcile::{self, Snapshot};
use scimsync::store::{Confirmed, RunKind, Store};
use std::collections::BTreeSet;
use tempfile::TempDir;

fn user_key(i: u8) -> SourceKey {
    SourceKey(format!("user-{i}"))
}

fn group_key(i: u8) -> SourceKey {
    SourceKey(format!("group-{i}"))
}

/// How one round's operations reach the store.
#[derive(Clone, Debug)]
enum Commit {
    /// `commit_op`: a transaction per operation.
    OneByOne,
    /// `commit_ops`, in batches of these sizes (repeated to the end).
    Batches(Vec<usize>),
    /// `commit_and_journal` as the executor calls it: every call commits one batch and journals
    /// the next.
    Journaled(Vec<usize>),
}

/// A state database in a temporary directory and the in-memory snapshot it must equal.
struct Both {
    store: Store,
    model: Snapshot,
    run: i64,
    /// Numbers the target ids and journal sequence numbers.
    counter: i64,
    now: i64,
    _dir: TempDir,
}

impl Both {
    fn new() -> Both {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("state.db")).unwrap();
        let run = store.begin_run(RunKind::Sync, 0).unwrap();
        Both { store, model: Snapshot::default(), run, counter: 0, now: 0, _dir: dir }
    }

    /// A target id per operation: creates keep theirs, the others must ignore it.
    fn target_ids(&mut self, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                self.counter += 1;
                format!("t{}", self.counter)
            })
            .collect()
    }

    fn check(&self, after: &str) -> Result<(), TestCaseError> {
        let stored = self.store.load_snapshot().unwrap();
        prop_assert_eq!(&stored, &self.model, "after {}", after);
        Ok(())
    }

    fn commit(&mut self, ops: &[Op], how: &Commit) -> Result<(), TestCaseError> {
        if ops.is_empty() {
            return Ok(());
        }
        let ids = self.target_ids(ops.len());
        let confirmed: Vec<Confirmed> = ops
            .iter()
            .zip(&ids)
            .map(|(op, id)| Confirmed { journal_id: None, op, target_id: Some(id.as_str()) })
            .collect();
        match how {
            Commit::OneByOne => {
                for c in &confirmed {
                    self.store.commit_op(self.run, None, c.op, c.target_id, self.now).unwrap();
                    self.model.apply(c.op, c.target_id);
                    self.check(&format!("commit_op of {:?}", c.op))?;
                }
            }
            Commit::Batches(sizes) => {
                for batch in split(&confirmed, sizes) {
                    self.store.commit_ops(self.run, batch, self.now).unwrap();
                    for c in batch {
                        self.model.apply(c.op, c.target_id);
                    }
                    self.check(&format!("commit_ops of {batch:?}"))?;
                }
            }
            Commit::Journaled(sizes) => self.commit_journaled(&confirmed, sizes)?,
        }
        Ok(())
    }

    fn commit_journaled(&mut self, confirmed: &[Confirmed], sizes: &[usize]) -> Result<(), TestCaseError> {
        let batches = split(confirmed, sizes);
        let mut sends: Vec<Vec<(i64, &Op)>> = Vec::new();
        for batch in &batches {
            let seq = self.counter;
            self.counter += batch.len() as i64;
            sends.push(batch.iter().zip(seq..).map(|(c, seq)| (seq, c.op)).collect());
        }
        let mut journal = self.store.commit_and_journal(self.run, &[], &sends[0], self.now).unwrap();
        prop_assert_eq!(journal.len(), batches[0].len());
        for (i, batch) in batches.iter().enumerate() {
            let answered: Vec<Confirmed> =
                batch.iter().zip(&journal).map(|(c, id)| Confirmed { journal_id: Some(*id), ..*c }).collect();
            let next = sends.get(i + 1).map_or(&[][..], Vec::as_slice);
            journal = self.store.commit_and_journal(self.run, &answered, next, self.now).unwrap();
            prop_assert_eq!(journal.len(), next.len());
            for c in *batch {
                self.model.apply(c.op, c.target_id);
            }
            self.check(&format!("commit_and_journal of {batch:?}"))?;
        }
        prop_assert_eq!(self.store.journal_pending().unwrap(), vec![]);
        // Each entry went in the transaction that resolved it.
        prop_assert_eq!(self.store.journal_counts().unwrap(), vec![]);
        Ok(())
    }

    fn record_presence(&mut self, plan: &Plan) -> Result<(), TestCaseError> {
        self.store.record_presence(plan).unwrap();
        record_presence(&mut self.model, plan);
        self.check(&format!("record_presence of {:?} and {:?}", plan.present, plan.pending))
    }
}

/// What `Store::record_presence` does to the snapshot: a present user loses its missing mark, a
/// pending one gets the plan's.
fn record_presence(snapshot: &mut Snapshot, plan: &Plan) {
    for key in &plan.present {
        if let Some(u) = snapshot.users.get_mut(key) {
            u.missing = None;
        }
    }
    for p in &plan.pending {
        if let Some(u) = snapshot.users.get_mut(&p.key) {
            u.missing = Some(Missing { since: p.missing_since, runs: p.missing_runs });
        }
    }
}

/// `items` cut into consecutive batches of `sizes` (repeated; none empty).
fn split<'a, T>(items: &'a [T], sizes: &[usize]) -> Vec<&'a [T]> {
    let mut out = Vec::new();
    let mut rest = items;
    for size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (batch, tail) = rest.split_at((*size).clamp(1, rest.len()));
        out.push(batch);
        rest = tail;
    }
    out
}

fn commit_strategy() -> impl Strategy<Value = Commit> {
    let sizes = || proptest::collection::vec(1usize..6, 1..4);
    prop_oneof![
        Just(Commit::OneByOne),
        sizes().prop_map(Commit::Batches),
        sizes().prop_map(Commit::Journaled),
    ]
}

fn roles() -> impl Strategy<Value = BTreeSet<String>> {
    proptest::collection::btree_set(prop_oneof!["Admin", "Help", "NOC"].prop_map(String::from), 0..3)
}

prop_compose! {
    fn desired_user()(
        k in 0u8..8,
        name in 0u8..10,
        given in 0u8..3,
        title in proptest::option::of(0u8..3),
        user_type in proptest::option::of(prop_oneof!["technician", "endUser"]),
        active in proptest::bool::weighted(0.8),
        roles in roles(),
    ) -> DesiredUser {
        DesiredUser::builder(user_key(k), &format!("User{name}@x"))
            .origin(format!("src:{k}"))
            .attr(Attr::GivenName, format!("g{given}"))
            .attrs(title.map(|t| (Attr::Title, format!("t{t}"))))
            .attrs(user_type.map(|t| (Attr::UserType, t)))
            .active(active)
            .roles(roles)
            .build()
    }
}

/// One run: a desired state, how the policy deprovisions, and how its plan is committed.
#[derive(Clone, Debug)]
struct Round {
    users: Vec<DesiredUser>,
    groups: Vec<DesiredGroup>,
    grace_runs: u32,
    delete_technicians: bool,
    /// Planned as a read in doubt (`Policy::unconfirmed`): missing users are only marked.
    in_doubt: bool,
    chunk: usize,
    commit: Commit,
}

prop_compose! {
    fn round()(
        users in proptest::collection::vec(desired_user(), 0..10),
        groups in proptest::collection::btree_map(
            0u8..4,
            (0u8..3, proptest::collection::btree_set((0u8..8).prop_map(user_key), 0..6)),
            0..4,
        ),
        grace_runs in 0u32..3,
        delete_technicians in any::<bool>(),
        in_doubt in proptest::bool::weighted(0.15),
        chunk in 1usize..4,
        commit in commit_strategy(),
    ) -> Round {
        let groups = groups
            .into_iter()
            .map(|(g, (name, members))| DesiredGroup {
                key: group_key(g),
                origin: format!("src:g{g}"),
                display_name: format!("G{name}"),
                members,
            })
            .collect();
        Round { users, groups, grace_runs, delete_technicians, in_doubt, chunk, commit }
    }
}

fn changes() -> impl Strategy<Value = Vec<Change>> {
    let attr = proptest::sample::select(&[Attr::GivenName, Attr::Title, Attr::UserType, Attr::WorkEmail][..]);
    let change = prop_oneof![
        (attr, proptest::option::of(prop_oneof!["", "a", "technician"].prop_map(String::from)))
            .prop_map(|(attr, after)| Change::Set { attr, before: None, after }),
        roles().prop_map(|r| Change::Roles { before: vec![], after: r.into_iter().collect() }),
    ];
    proptest::collection::vec(change, 0..3)
}

/// Any operation on a few keys, whatever the snapshot holds: updates of unknown users, members
/// of unknown groups or naming unknown users, creates of existing objects.
fn any_op() -> impl Strategy<Value = Op> {
    // Fewer users than a plan's rounds have: operations on the same user meet more often.
    let user = || (0u8..5).prop_map(user_key);
    let group = || (0u8..3).prop_map(group_key);
    let members = || proptest::collection::vec((0u8..6).prop_map(user_key), 0..4);
    let name = || (0u8..3).prop_map(|n| format!("G{n}"));
    let user_name = String::from("u@x");
    prop_oneof![
        (desired_user(), user()).prop_map(|(user, key)| Op::CreateUser { user: DesiredUser { key, ..user } }),
        (user(), changes()).prop_map({
            let user_name = user_name.clone();
            move |(key, changes)| Op::UpdateUser {
                key,
                user_name: user_name.clone(),
                changes,
                recreate: None,
            }
        }),
        (user(), changes()).prop_map({
            let user_name = user_name.clone();
            move |(key, changes)| Op::ReactivateUser {
                key,
                user_name: user_name.clone(),
                changes,
                recreate: None,
            }
        }),
        user().prop_map({
            let user_name = user_name.clone();
            move |key| Op::DeactivateUser { key, user_name: user_name.clone(), reason: Reason::Missing }
        }),
        user().prop_map(move |key| Op::DeleteUser {
            key,
            user_name: user_name.clone(),
            reason: Reason::Missing
        }),
        (group(), name()).prop_map(|(key, display_name)| Op::CreateGroup { key, display_name }),
        (group(), name()).prop_map(|(key, to)| Op::RenameGroup { key, from: String::new(), to }),
        (group(), members()).prop_map(|(key, members)| Op::AddMembers {
            key,
            display_name: "G".into(),
            members
        }),
        (group(), members()).prop_map(|(key, members)| Op::RemoveMembers {
            key,
            display_name: "G".into(),
            members
        }),
        group().prop_map(|key| Op::DeleteGroup { key, display_name: "G".into() }),
    ]
}

/// A plan's presence alone: users seen (their marks cleared) and users pending (marked).
fn presence() -> impl Strategy<Value = Plan> {
    let pending = (0u8..5, 0i64..5, 1u32..4).prop_map(|(k, since, runs)| Pending {
        key: user_key(k),
        user_name: "u@x".into(),
        missing_since: since * 3600,
        missing_runs: runs,
    });
    (
        proptest::collection::btree_set((0u8..5).prop_map(user_key), 0..3),
        proptest::collection::vec(pending, 0..4),
    )
        .prop_map(|(present, pending)| Plan { present, pending, ..Plan::default() })
}

/// A step of the arbitrary sequences.
#[derive(Clone, Debug)]
enum Step {
    Ops(Vec<Op>, Commit),
    Presence(Plan),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (proptest::collection::vec(any_op(), 1..12), commit_strategy())
            .prop_map(|(ops, commit)| Step::Ops(ops, commit)),
        1 => presence().prop_map(Step::Presence),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_store_applies_planned_operations_as_the_snapshot_does(
        rounds in proptest::collection::vec(round(), 1..5),
    ) {
        let mut both = Both::new();
        for (i, r) in rounds.into_iter().enumerate() {
            both.now = i as i64 * 3600;
            let mut policy = Policy {
                approved: true,
                membership_chunk: r.chunk,
                grace: Grace { runs: r.grace_runs, hours: 0 },
                unconfirmed: r.in_doubt.then(|| "in doubt".to_owned()),
                now: both.now,
                ..Policy::default()
            };
            if r.delete_technicians {
                policy.deprovision.insert("technician".into(), Deprovision::Delete);
            }
            let desired = reconcile::desired::build(r.users, r.groups, vec![], vec![], 0);
            let plan = reconcile::plan(&desired, &both.model, &policy);
            both.commit(&plan.ops, &r.commit)?;
            both.record_presence(&plan)?;
        }
    }

    #[test]
    fn the_store_applies_any_operations_as_the_snapshot_does(steps in proptest::collection::vec(step(), 1..8)) {
        let mut both = Both::new();
        for (i, step) in steps.into_iter().enumerate() {
            both.now = i as i64;
            match step {
                Step::Ops(ops, commit) => both.commit(&ops, &commit)?,
                Step::Presence(plan) => both.record_presence(&plan)?,
            }
        }
    }
}

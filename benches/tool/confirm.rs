//! Every operation of a plan confirmed as a target would confirm it, with made-up ids: how the
//! benchmarks bring a snapshot up to date without a target (`scimsync-bench fill`, `parts.rs`).

use scimsync::reconcile::{Op, Plan};
use scimsync::store::Confirmed;

/// The id a target would give each create (`{prefix}-{index}`); none for other operations.
pub fn fake_ids(plan: &Plan, prefix: &str) -> Vec<Option<String>> {
    let created = |op: &Op| matches!(op, Op::CreateUser { .. } | Op::CreateGroup { .. });
    plan.ops.iter().enumerate().map(|(i, op)| created(op).then(|| format!("{prefix}-{i}"))).collect()
}

/// The plan's operations as confirmed, with the ids of [`fake_ids`] and no journal entries.
pub fn confirmed<'a>(plan: &'a Plan, ids: &'a [Option<String>]) -> Vec<Confirmed<'a>> {
    plan.ops
        .iter()
        .zip(ids)
        .map(|(op, id)| Confirmed { journal_id: None, op, target_id: id.as_deref() })
        .collect()
}

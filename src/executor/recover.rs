//! Before a new plan: what a previous process left unfinished in the journal.

use crate::clock::Clock;
use crate::reconcile::plan::Op;
use crate::store::{Store, StoreError};
use crate::target::{TargetClient, TargetError};

/// What recovery did with the journal entries a previous process left unfinished.
#[derive(Clone, Debug, Default)]
pub struct Recovery {
    /// Creates found in the target and committed.
    pub resolved: u64,
    /// Entries abandoned: the next plan sends them again.
    pub abandoned: u64,
}

/// Why recovery could not finish: the state database failed, or the target could not answer a
/// lookup (the entries not yet resolved stay `pending` for the next run).
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("resolving unfinished operations")]
    Target(#[source] TargetError),
}

/// Resolves unfinished journal entries before a new plan is made: an unfinished create is
/// looked up (by userName, proven by its externalId; or by displayName) and committed if the
/// target has it; everything else
/// is abandoned, so the next plan — made from the snapshot, which did not advance — redoes it.
pub async fn recover(
    store: &mut Store,
    client: &TargetClient,
    run_id: i64,
    clock: Clock,
) -> Result<Recovery, RecoverError> {
    let mut out = Recovery::default();
    for (journal_id, op) in store.journal_pending()? {
        let found = match &op {
            Op::CreateUser { user } => client.find_created_user(user).await,
            Op::CreateGroup { display_name, .. } => client.find_group(display_name).await,
            _ => Ok(None),
        };
        match found.map_err(RecoverError::Target)? {
            Some(id) => {
                store.commit_op(run_id, Some(journal_id), &op, Some(&id), clock())?;
                out.resolved += 1;
            }
            None => {
                // Unfinished when the previous process stopped.
                store.journal_fail(journal_id, "abandoned")?;
                out.abandoned += 1;
            }
        }
    }
    Ok(out)
}

//! One operation on the target: the target ids it needs, and the requests that carry it out.

use super::Ids;
use crate::model::SourceKey;
use crate::reconcile::plan::Op;
use crate::target::{TargetClient, TargetError};

/// An operation with the target ids it needs, ready to send.
pub(super) struct Ready {
    pub op: Op,
    /// The target id of the object (none for a create).
    id: Option<String>,
    /// The target ids of the members a membership change names.
    members: Vec<String>,
}

/// What one request achieved.
pub(super) enum Done {
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

impl Ready {
    /// Resolves the ids an operation needs. Members without a target id (their create failed)
    /// are left out of the operation, so the snapshot records only what was sent.
    pub fn resolve(op: &Op, ids: &Ids) -> Result<Ready, String> {
        let user_id =
            |k: &SourceKey| ids.users.get(k).cloned().ok_or_else(|| format!("user {k} has no target id"));
        let group_id = |k: &SourceKey| {
            ids.groups
                .get(k)
                .cloned()
                .ok_or_else(|| format!("group {k} has no target id (its creation failed?)"))
        };
        let ready = |id| Ready { op: op.clone(), id, members: vec![] };
        Ok(match op {
            Op::CreateUser { .. } | Op::CreateGroup { .. } => ready(None),
            Op::UpdateUser { key, .. }
            | Op::ReactivateUser { key, .. }
            | Op::DeactivateUser { key, .. }
            | Op::DeleteUser { key, .. } => ready(Some(user_id(key)?)),
            Op::RenameGroup { key, .. } | Op::DeleteGroup { key, .. } => ready(Some(group_id(key)?)),
            Op::AddMembers { key, display_name, members }
            | Op::RemoveMembers { key, display_name, members } => {
                let id = group_id(key)?;
                let (keys, member_ids): (Vec<SourceKey>, Vec<String>) =
                    members.iter().filter_map(|m| Some((m.clone(), ids.users.get(m)?.clone()))).unzip();
                let (key, display_name) = (key.clone(), display_name.clone());
                let op = if matches!(op, Op::AddMembers { .. }) {
                    Op::AddMembers { key, display_name, members: keys }
                } else {
                    Op::RemoveMembers { key, display_name, members: keys }
                };
                Ready { op, id: Some(id), members: member_ids }
            }
        })
    }

    /// Sends the operation. A create that meets a 409 adopts the existing object when `adopt`
    /// allows; an update whose user is gone is created again when the operation carries the user
    /// to create.
    pub async fn send(self, client: TargetClient, adopt: bool) -> Done {
        let Ready { op, id, members } = self;
        let id = id.unwrap_or_default();
        let result = match &op {
            Op::CreateUser { user } => match client.create_user(user).await {
                Ok(new) => Ok((Some(new), false)),
                Err(TargetError::Conflict { message }) if adopt => {
                    match client.find_user(user.user_name()).await {
                        Ok(Some(found)) => {
                            client.adopt_user(&found.id, user).await.map(|_| (Some(found.id), true))
                        }
                        Ok(None) => Err(TargetError::Conflict { message }),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            },
            Op::UpdateUser { changes, recreate, .. } | Op::ReactivateUser { changes, recreate, .. } => {
                let mut r = if changes.is_empty() { Ok(()) } else { client.update_user(&id, changes).await };
                if r.is_ok() && matches!(op, Op::ReactivateUser { .. }) {
                    r = client.set_active(&id, true).await;
                }
                match (r, recreate) {
                    (Err(TargetError::NotFound { .. }), Some(user)) => {
                        // Deleted by hand in the target: create it again and record the new id.
                        let user = (**user).clone();
                        return match client.create_user(&user).await {
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
            Op::AddMembers { .. } | Op::RemoveMembers { .. } if members.is_empty() => Ok((None, false)),
            Op::AddMembers { .. } => client.add_members(&id, &members).await.map(|_| (None, false)),
            Op::RemoveMembers { .. } => ok_if_gone(client.remove_members(&id, &members).await),
            Op::DeleteGroup { .. } => ok_if_gone(client.delete_group(&id).await),
        };
        match result {
            Ok((target_id, adopted)) => Done::Applied { op, target_id, adopted },
            Err(error) => Done::Failed { op, error },
        }
    }
}

fn ok_if_gone(r: Result<(), TargetError>) -> Result<(Option<String>, bool), TargetError> {
    match r {
        Ok(()) | Err(TargetError::NotFound { .. }) => Ok((None, false)),
        Err(e) => Err(e),
    }
}

//! `scimsync check --write-probe`: one disposable user and group, each update and membership
//! form tried on them in turn, both deleted again, and the `[target.dialect]` that worked.
//!
//! Every step goes through the same client code a run uses, with the dialect set for that step,
//! so what works here is what a run sends. The client's own fallbacks (a PATCH answered 501 sent
//! again as PUT, member removal from filter to value list to PUT) show in the forms it ends with.

use crate::config::Config;
use crate::model::{Attr, DesiredUser, SourceKey};
use crate::reconcile::Change;
use crate::run;
use crate::target::dialect::{Booleans, Members, OpCase, Update};
use crate::target::{Dialect, TargetClient, TargetError};

/// What the probe found: the dialect that worked, a line per step, and what it could not do.
pub struct Probe {
    pub dialect: Dialect,
    pub steps: Vec<String>,
    /// Objects the probe made and could not delete, for the administrator to remove.
    pub left: Vec<String>,
}

/// A client of the configured target speaking `dialect`.
fn client(config: &Config, dialect: &Dialect) -> anyhow::Result<TargetClient> {
    let mut config = config.clone();
    config.target.dialect = dialect.clone();
    run::connect(&config, Default::default())
}

fn probe_user(nonce: &str) -> DesiredUser {
    let name = format!("scimsync-probe-{nonce}@invalid.example");
    DesiredUser::builder(SourceKey(format!("scimsync-probe-{nonce}")), &name)
        .attr(Attr::GivenName, "Probe")
        .attr(Attr::FamilyName, "Scimsync")
        .attr(Attr::DisplayName, "scimsync probe")
        .attr(Attr::WorkEmail, &name)
        .attr(Attr::ExternalId, format!("scimsync-probe-{nonce}"))
        .build()
}

fn set(attr: Attr, before: &str, after: &str) -> Change {
    Change::Set { attr, before: Some(before.into()), after: Some(after.into()) }
}

/// Whether a refusal may be the form's fault (400 invalid, 501, 405), so another form is worth a
/// try; anything else (401, a broken connection) ends the probe.
fn form_refused(e: &TargetError) -> bool {
    matches!(e, TargetError::Rejected { status: 400 | 405 | 422 | 501, .. } | TargetError::NotTaken { .. })
}

/// Tries `variants` of the dialect in order with `step`; the first that works is kept.
async fn first_that_works<F, Fut, T>(
    config: &Config,
    variants: Vec<Dialect>,
    what: &str,
    steps: &mut Vec<String>,
    step: F,
) -> anyhow::Result<(Dialect, T)>
where
    F: Fn(TargetClient) -> Fut,
    Fut: std::future::Future<Output = Result<T, TargetError>>,
{
    let mut last = None;
    for d in variants {
        let c = client(config, &d)?;
        match step(c.clone()).await {
            Ok(t) => {
                let (update, members) = c.forms_in_use();
                let d = Dialect { update, members, ..d };
                return Ok((d, t));
            }
            Err(e) if form_refused(&e) => {
                steps.push(format!("{what}: refused ({e}); trying another form"));
                last = Some(e);
            }
            Err(e) => return Err(anyhow::Error::new(e).context(format!("write probe: {what}"))),
        }
    }
    let e = last.map_or_else(|| "no form to try".to_owned(), |e| e.to_string());
    anyhow::bail!("write probe: {what}: every form was refused; last: {e}")
}

/// Runs the probe against the configured target. The objects it makes are deleted at the end,
/// whatever happened in between.
pub async fn probe(config: &Config, nonce: &str) -> anyhow::Result<Probe> {
    let mut steps = Vec::new();
    let mut left = Vec::new();
    let user = probe_user(nonce);
    let base = Dialect { update: Update::Patch, members: Members::Filter, ..config.target.dialect.clone() };
    let creates = vec![
        base.clone(),
        Dialect { name_formatted: true, ..base.clone() },
        Dialect { name_formatted: true, multi_valued_type: false, ..base.clone() },
    ];
    let (d, user_id) = first_that_works(config, creates, "create a user", &mut steps, |c| {
        let user = user.clone();
        async move { c.create_user(&user).await }
    })
    .await?;
    steps.push(format!(
        "create a user: works (name_formatted = {}, multi_valued_type = {})",
        d.name_formatted, d.multi_valued_type
    ));
    let result = exercise(config, d, &user_id, nonce, &mut steps, &mut left).await;
    let c = client(config, &config.target.dialect)?;
    if let Err(e) = c.delete_user(&user_id).await {
        steps.push(format!("delete the probe user: {e}"));
        left.push(format!("user {} (id {user_id})", user.user_name()));
    }
    let dialect = result?;
    Ok(Probe { dialect, steps, left })
}

/// The updates, the deactivation and the group with its members, on the probe user.
async fn exercise(
    config: &Config,
    d: Dialect,
    user_id: &str,
    nonce: &str,
    steps: &mut Vec<String>,
    left: &mut Vec<String>,
) -> anyhow::Result<Dialect> {
    // Attributes every SCIM server keeps (some drop `title` silently), the work email by the
    // typed path scimsync writes.
    let email = format!("scimsync-probe-{nonce}@invalid.example");
    let changes = [
        set(Attr::GivenName, "Probe", "Probe 2"),
        set(Attr::FamilyName, "Scimsync", "Scimsync 2"),
        set(Attr::WorkEmail, &email, &format!("renamed-{email}")),
    ];
    let updates = vec![
        d.clone(),
        Dialect { op_case: OpCase::Capitalized, ..d.clone() },
        Dialect { update: Update::Put, ..d.clone() },
    ];
    let (d, ()) = first_that_works(config, updates, "update a user", steps, |c| {
        let changes = changes.clone();
        async move { c.update_user(user_id, &changes).await }
    })
    .await?;
    steps.push(format!("update a user: works (update = \"{}\", op_case = \"{}\")", d.update, d.op_case));
    let booleans = vec![d.clone(), Dialect { booleans: Booleans::String, ..d.clone() }];
    let (d, ()) = first_that_works(config, booleans, "deactivate a user", steps, |c| async move {
        c.set_active(user_id, false).await
    })
    .await?;
    steps.push(format!("deactivate a user: works (booleans = \"{}\")", d.booleans));

    let name = format!("scimsync-probe-{nonce}");
    let creates = vec![d.clone(), Dialect { members_on_create: true, ..d.clone() }];
    let (d, group_id) = first_that_works(config, creates, "create a group", steps, |c| {
        let name = name.clone();
        async move { c.create_group(&name).await }
    })
    .await?;
    steps.push(format!("create a group: works (members_on_create = {})", d.members_on_create));
    let result = members(config, d, &group_id, user_id, steps).await;
    let c = client(config, &config.target.dialect)?;
    if let Err(e) = c.delete_group(&group_id).await {
        steps.push(format!("delete the probe group: {e}"));
        left.push(format!("group {name} (id {group_id})"));
    }
    result
}

/// Adds the probe user to the probe group and removes it again, in the forms the target takes.
async fn members(
    config: &Config,
    d: Dialect,
    group_id: &str,
    user_id: &str,
    steps: &mut Vec<String>,
) -> anyhow::Result<Dialect> {
    let ids = &[user_id.to_owned()];
    let adds = vec![d.clone(), Dialect { member_ref: true, ..d.clone() }];
    let (d, ()) = first_that_works(config, adds, "add a member", steps, |c| async move {
        c.add_members(group_id, ids).await
    })
    .await?;
    steps.push(format!("add a member: works (member_ref = {})", d.member_ref));
    let (d, ()) = first_that_works(config, vec![d], "remove a member", steps, |c| async move {
        c.remove_members(group_id, ids).await
    })
    .await?;
    steps.push(format!("remove a member: works (members = \"{}\")", d.members));
    Ok(d)
}

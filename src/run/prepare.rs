//! Read → map → load the snapshot → plan: everything a run computes before it writes anything.
//! A source error produces no plan.

use crate::config::Config;
use crate::model::{DesiredState, SourceKey};
use crate::reconcile::{self, plan::Op, render::Names, Plan, Policy, Snapshot};
use crate::source;
use crate::store::Store;
use anyhow::Context as _;

/// Everything a run computed before applying anything.
pub struct Prepared {
    pub desired: DesiredState,
    pub snapshot: Snapshot,
    pub plan: Plan,
}

impl Prepared {
    /// Key → userName for reports (desired names first, then the snapshot's), for the members
    /// the plan's membership changes name (every other operation carries its own name).
    pub fn names(&self) -> Names<'_> {
        let ops = self.plan.ops.iter().chain(&self.plan.held).chain(&self.plan.deferred);
        let keys = ops.flat_map(|op| match op {
            Op::AddMembers { members, .. } | Op::RemoveMembers { members, .. } => members.as_slice(),
            _ => &[],
        });
        let name = |k: &SourceKey| {
            let desired = self.desired.users.get(k).map(|u| u.user_name());
            desired.or_else(|| self.snapshot.users.get(k).map(|u| u.user_name()))
        };
        keys.filter_map(|k| Some((k, name(k)?))).collect()
    }
}

/// Reads and maps the source: the desired state, or the reason the source cannot be trusted.
pub async fn read_desired(config: &Config) -> anyhow::Result<DesiredState> {
    let t = std::time::Instant::now();
    let wanted = config.mapping.source_attributes();
    let dir = source::read_for(&config.source, wanted.as_ref())
        .await
        .context("reading the source failed; nothing was planned or applied")?;
    tracing::info!(
        ms = t.elapsed().as_millis() as u64,
        records = dir.records_read,
        users = dir.users.len(),
        groups = dir.groups.len(),
        "Read the source: {}.",
        dir.summary()
    );
    let desired = config.mapping.map_directory(dir);
    tracing::debug!(ms = t.elapsed().as_millis() as u64, "Mapped the source.");
    Ok(desired)
}

/// Reads, maps and plans against the stored snapshot under `policy` (the config's, with the
/// run's time and whatever the run's mode changes).
pub async fn prepare(config: &Config, store: &Store, policy: &Policy) -> anyhow::Result<Prepared> {
    let t = std::time::Instant::now();
    let desired = read_desired(config).await?;
    let read_ms = t.elapsed().as_millis();
    // What building the desired state freed goes back before the snapshot's map is filled on
    // another thread, which would otherwise take fresh pages and raise the run's peak.
    crate::parts::return_freed_memory();
    let snapshot = store.load_snapshot_sharing(Some(&desired)).context("loading the snapshot")?;
    let load_ms = t.elapsed().as_millis() - read_ms;
    let plan = reconcile::plan(&desired, &snapshot, policy);
    let plan_ms = t.elapsed().as_millis() - read_ms - load_ms;
    tracing::debug!(read_ms, load_ms, plan_ms, ops = plan.ops.len(), "Planned.");
    Ok(Prepared { desired, snapshot, plan })
}

//! One run up to the plan, shared by `plan`, `sync` and the daemon: read the source completely,
//! map it, load the snapshot and plan. Fails closed: a source error produces no plan.

use crate::config::Config;
use crate::model::DesiredState;
use crate::reconcile::{self, render::Names, Plan, Snapshot};
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
    /// Key → userName for reports (desired names first, then the snapshot's).
    pub fn names(&self) -> Names {
        let mut names: Names =
            self.snapshot.users.iter().map(|(k, u)| (k.clone(), u.user_name().to_owned())).collect();
        for (k, u) in &self.desired.users {
            names.insert(k.clone(), u.user_name().to_owned());
        }
        names
    }
}

/// Reads and maps the source: the desired state, or the reason the source cannot be trusted.
pub async fn read_desired(config: &Config) -> anyhow::Result<DesiredState> {
    let dir = source::read(&config.source)
        .await
        .context("reading the source failed; nothing was planned or applied")?;
    tracing::info!(
        records = dir.records_read,
        users = dir.users.len(),
        groups = dir.groups.len(),
        "Read the source."
    );
    Ok(config.mapping.map_directory(dir))
}

/// Reads, maps and plans against the stored snapshot.
pub async fn prepare(config: &Config, store: &Store, now: i64) -> anyhow::Result<Prepared> {
    let desired = read_desired(config).await?;
    let snapshot = store.load_snapshot().context("loading the snapshot")?;
    let mut policy = config.policy.clone();
    policy.now = now;
    let plan = reconcile::plan(&desired, &snapshot, &policy);
    Ok(Prepared { desired, snapshot, plan })
}

/// A runtime for the commands that are not async themselves (`plan`, `check`, `preview`).
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

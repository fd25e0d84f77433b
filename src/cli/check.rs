//! `scimsync check`: the config (every problem at once), the source read, and the target.

use super::{load_config, runtime};
use crate::clock::now;
use crate::run::{self, TokenExpiry};
use anyhow::Context as _;
use std::path::Path;
use std::process::ExitCode;

pub(super) fn check(path: &Path, offline: bool) -> anyhow::Result<ExitCode> {
    let config = load_config(path)?;
    println!("config {} is valid", path.display());
    for w in &config.warnings {
        println!("warning: {w}");
    }
    if offline {
        return Ok(ExitCode::SUCCESS);
    }
    let rt = runtime()?;
    let desired = rt.block_on(run::read_desired(&config))?;
    println!(
        "source: {} records read, {} users and {} groups mapped, {} skipped, {} warnings",
        desired.records_read,
        desired.users.len(),
        desired.groups.len(),
        desired.skipped.len(),
        desired.warnings.len()
    );
    println!("source read: {}", desired.read_summary);
    if let Some(expiry) = TokenExpiry::of(&config.target, now()) {
        expiry.warn();
        println!("token: {} days left", expiry.days_left);
    }
    let client = run::connect(&config, Default::default())?;
    rt.block_on(async {
        let spc =
            client.service_provider_config().await.context("reading the target's ServiceProviderConfig")?;
        let patch = spc["patch"]["supported"].as_bool().unwrap_or(false);
        let filter = spc["filter"]["supported"].as_bool().unwrap_or(false);
        println!("target: ServiceProviderConfig read (patch: {patch}, filter: {filter})");
        client.find_user("scimsync-connectivity-check@invalid").await.context(
            "a filtered user lookup failed: scimsync needs `filter=userName eq` for adoption and recovery",
        )?;
        println!("target: filtered user lookup works; credentials accepted");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

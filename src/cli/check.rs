//! `scimsync check`: the config (every problem at once), the source read, and the target: what
//! it declares, what its read paths actually do (`judge.rs`), and the dialect settings that
//! follow (`dialect.rs`). It writes nothing to the target.

mod dialect;
mod judge;
mod ldap;
mod write_probe;

use super::{load_config, runtime};
use crate::clock::now;
use crate::run::{self, TokenExpiry};
use crate::target::body::eq_filter;
use crate::target::{TargetClient, TargetError};
use anyhow::Context as _;
use judge::{Answers, Level, Read};
use serde_json::Value;
use std::path::Path;
use std::process::ExitCode;

pub(super) fn check(path: &Path, offline: bool, probe: bool) -> anyhow::Result<ExitCode> {
    let config = load_config(path)?;
    println!("config {} is valid", path.display());
    for w in &config.warnings {
        println!("warning: {w}");
    }
    if offline {
        return Ok(ExitCode::SUCCESS);
    }
    let rt = runtime()?;
    ldap::report(&rt, &config)?;
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
    if config.source.ldap.is_some() {
        ldap::first_users(&desired);
    }
    if let Some(expiry) = TokenExpiry::of(&config.target, now()) {
        expiry.warn();
        println!("token: {} days left", expiry.days_left);
    }
    let client = run::connect(&config, Default::default())?;
    let answers = rt.block_on(read_target(&client))?;
    let findings = judge::judge(&answers);
    for f in &findings.findings {
        match f.level {
            Level::Info => println!("target: {}", f.text),
            Level::Warning => println!("warning: {}", f.text),
            Level::Fatal => {}
        }
    }
    print!(
        "\nrecommended dialect settings, from what the server declares and serves \
         (`scimsync check --write-probe` settles the undecided ones):\n{}",
        dialect::render(&findings.dialect)
    );
    let fatal: Vec<&str> = findings.fatal().map(|f| f.text.as_str()).collect();
    if !fatal.is_empty() {
        anyhow::bail!("scimsync cannot work with this target: {}", fatal.join("; "));
    }
    if probe {
        write_probe(&rt, &config)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `--notify`: a test message through every configured channel, and what each came to.
pub(super) fn notify(path: &Path) -> anyhow::Result<ExitCode> {
    let config = load_config(path)?;
    println!("config {} is valid", path.display());
    if config.notify.is_empty() {
        anyhow::bail!("[notify] names no channel: set notify.webhook_url or notify.smtp_url (see config/scimsync.example.toml)");
    }
    // Counted like any notification, in a state database that exists (none is created here).
    let mut store =
        config.state_path.exists().then(|| crate::store::Store::open(&config.state_path).ok()).flatten();
    let results = runtime()?.block_on(crate::notify::test(&config.notify, store.as_mut()));
    let mut failed = 0;
    for (channel, result) in &results {
        match result {
            Ok(()) => println!("notify {}: ok", channel.as_str()),
            Err(e) => {
                failed += 1;
                println!("notify {}: FAILED: {e}", channel.as_str());
            }
        }
    }
    if failed > 0 {
        eprintln!("error: {failed} of {} notification channel(s) failed", results.len());
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// `--write-probe`: what each write form did, and the dialect that worked.
fn write_probe(rt: &tokio::runtime::Runtime, config: &crate::config::Config) -> anyhow::Result<()> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let nonce = format!("{:x}{:x}", nanos.as_nanos(), std::process::id());
    println!("\nwrite probe: a disposable user and group scimsync-probe-{nonce}, deleted at the end");
    let result = rt.block_on(write_probe::probe(config, &nonce));
    let probe = result?;
    for step in &probe.steps {
        println!("write probe: {step}");
    }
    for object in &probe.left {
        println!("warning: the write probe could not delete {object}: remove it by hand");
    }
    print!("\nthe dialect that worked in the write probe:\n{}", probe.dialect.to_toml());
    Ok(())
}

/// Reads what `check` judges: the declarations, then the list reads scimsync relies on. A
/// refused token or an unreadable ServiceProviderConfig ends the check; any other answer is
/// kept for the judgement.
async fn read_target(client: &TargetClient) -> anyhow::Result<Answers> {
    let spc = client.service_provider_config().await.context("reading the target's ServiceProviderConfig")?;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let absent = format!("scimsync-check-{:x}-{:x}@invalid", nanos.as_nanos(), std::process::id());
    let user_filter = eq_filter("userName", &absent);
    let group_filter = eq_filter("displayName", &absent);
    let page = [("startIndex", "1"), ("count", "1")];
    Ok(Answers {
        schemas: read(client.probe("Schemas", &[]).await)?,
        resource_types: read(client.probe("ResourceTypes", &[]).await)?,
        user_page: read(client.probe("Users", &page).await)?,
        user_filter: read(client.probe("Users", &[("filter", &user_filter)]).await)?,
        group_page: read(client.probe("Groups", &page).await)?,
        group_filter: read(client.probe("Groups", &[("filter", &group_filter)]).await)?,
        absent,
        spc,
    })
}

/// One probe's answer as the judgement takes it; a refused token (or a client that cannot work
/// at all) is an error.
fn read(answer: Result<Option<Value>, TargetError>) -> anyhow::Result<Read> {
    Ok(match answer {
        Ok(doc) => Read::Answered(doc.unwrap_or(Value::Null)),
        Err(e) if e.stops_run() => return Err(e.into()),
        Err(TargetError::NotFound { message }) => Read::Refused { status: 404, message },
        Err(TargetError::Conflict { message }) => Read::Refused { status: 409, message },
        Err(TargetError::Rejected { status, message }) => Read::Refused { status, message },
        Err(e) => Read::Failed(e.to_string()),
    })
}

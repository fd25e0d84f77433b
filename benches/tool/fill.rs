//! `scimsync-bench fill` — for benchmarks only, never for a real deployment: plans the configured
//! source against the state database and commits every planned operation to the snapshot as if a
//! target had confirmed it (creates get fake ids `bench-N`). It sends nothing anywhere. It brings a
//! snapshot up to date so that `plan` and `sync` can be measured against it, and it times the
//! snapshot write of a first sync (`Store::commit_ops`): by default every operation in one
//! transaction, with `--batch N` N operations per transaction.
//!
//! ```text
//! scimsync-bench fill --config benches/bench.toml [--batch 10000]
//! ```
//! Prints one line: `prepare_s=… commit_s=… commit_cpu_s=… written_mb=… ops=…`: the commit's wall
//! and CPU time (this process's, from `/proc/self/stat`) and the bytes it had written to storage
//! (`/proc/self/io`), the WAL and its checkpoint included.

use super::confirm;
use anyhow::Context as _;
use scimsync::clock::now;
use scimsync::store::{RunKind, RunOutcome, Store};
use std::path::PathBuf;
use std::time::Instant;

pub fn main(mut args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let mut config_path = None;
    let mut batch = usize::MAX;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" => config_path = args.next().map(PathBuf::from),
            "--batch" => batch = args.next().context("--batch needs a number")?.parse()?,
            other => anyhow::bail!(
                "unknown argument {other:?}; usage: scimsync-bench fill --config FILE [--batch N]"
            ),
        }
    }
    let config_path = config_path.context("usage: scimsync-bench fill --config FILE [--batch N]")?;
    let config = scimsync::config::load(&config_path)?;
    let mut store = Store::open(&config.state_path)?;
    let now = now();
    let run_id = store.begin_run(RunKind::Sync, now)?;
    let t0 = Instant::now();
    let mut policy = config.policy.clone();
    policy.now = now;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let prepared = runtime.block_on(scimsync::run::prepare(&config, &store, &policy))?;
    let prepare_s = t0.elapsed().as_secs_f64();
    let plan = &prepared.plan;
    let ids = confirm::fake_ids(plan, &format!("bench-{run_id}"));
    let (cpu0, written0) = (cpu_seconds(), written_bytes());
    let t1 = Instant::now();
    let confirmed = confirm::confirmed(plan, &ids);
    for chunk in confirmed.chunks(batch.max(1)) {
        store.commit_ops(run_id, chunk, now)?;
    }
    store.record_presence(plan)?;
    let commit_s = t1.elapsed().as_secs_f64();
    let commit_cpu_s = cpu_seconds() - cpu0;
    let written_mb = (written_bytes() - written0) as f64 / 1e6;
    store.finish_run(run_id, RunOutcome::Ok, Some(plan), None, scimsync::clock::now())?;
    println!(
        "prepare_s={prepare_s:.3} commit_s={commit_s:.3} commit_cpu_s={commit_cpu_s:.3} \
         written_mb={written_mb:.0} ops={}",
        plan.ops.len()
    );
    Ok(())
}

/// User and system CPU time of this process so far (`/proc/self/stat`, clock ticks of 1/100 s:
/// Linux's `USER_HZ` on every architecture it runs on); 0 where `/proc` is not there.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after.split_whitespace().skip(11).take(2).filter_map(|f| f.parse::<u64>().ok()).sum();
    ticks as f64 / 100.0
}

/// Bytes this process caused to be written to storage so far (`/proc/self/io`), 0 where unknown.
fn written_bytes() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines().find_map(|l| l.strip_prefix("write_bytes: ")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

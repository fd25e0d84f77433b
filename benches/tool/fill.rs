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
//! Prints one line: `prepare_s=… commit_s=… ops=…`.

use super::confirm;
use anyhow::Context as _;
use scimsync::pipeline;
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
    let now = pipeline::now();
    let run_id = store.begin_run(RunKind::Sync, now)?;
    let t0 = Instant::now();
    let prepared = pipeline::runtime()?.block_on(pipeline::prepare(&config, &store, now))?;
    let prepare_s = t0.elapsed().as_secs_f64();
    let plan = &prepared.plan;
    let ids = confirm::fake_ids(plan, &format!("bench-{run_id}"));
    let t1 = Instant::now();
    let confirmed = confirm::confirmed(plan, &ids);
    for chunk in confirmed.chunks(batch.max(1)) {
        store.commit_ops(run_id, chunk, now)?;
    }
    store.record_presence(plan)?;
    let commit_s = t1.elapsed().as_secs_f64();
    store.finish_run(run_id, RunOutcome::Ok, Some(plan), None, pipeline::now())?;
    println!("prepare_s={prepare_s:.3} commit_s={commit_s:.3} ops={}", plan.ops.len());
    Ok(())
}

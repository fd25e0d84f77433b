//! Command line: clap definitions and one function per command. Exit codes: 0 success, 1 error,
//! 2 changes present (`plan --detailed-exitcode`), 3 run held by the safety threshold.

mod check;
mod generate;

use crate::clock::now;
use crate::config::{self, Config};
use crate::reconcile::render;
use crate::run::{self, Run, TokenExpiry};
use crate::source;
use crate::store::Store;
use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "scimsync", version, about = "Directory sync: LDIF/CSV/JSON/SCIM source → SCIM 2.0 target")]
pub struct Cli {
    /// The config file.
    #[arg(long, global = true, default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Dry run: read, map and plan; print what a sync would do. Writes nothing but the run record.
    Plan {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Write the report to FILE instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Exit 2 when the plan has changes.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Indent the JSON for people (it is compact by default, for machines).
        #[arg(long)]
        pretty: bool,
    },
    /// Print the mapped values of named source users (userName, key, DN or uid).
    Preview {
        #[arg(required = true)]
        users: Vec<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Validate the config (every problem at once) and read the source.
    Check {
        /// Validate the config only; read nothing.
        #[arg(long)]
        offline: bool,
        /// Also create one disposable user and group in the target, try each update and
        /// membership form on them, delete them, and print the dialect that worked.
        #[arg(long, conflicts_with = "offline")]
        write_probe: bool,
        /// Send a test message through every channel of `[notify]` instead, and say what each
        /// came to (exit 1 if any failed).
        #[arg(long, conflicts_with_all = ["offline", "write_probe"])]
        notify: bool,
    },
    /// Last runs, held operations and token expiry.
    Status {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// One run that applies the plan to the target.
    Sync,
    /// The daemon: runs on the schedule and when the source file changes, until SIGTERM.
    Run,
    /// Apply a plan saved with `plan --format json --out FILE`, if the source and the snapshot
    /// have not changed since.
    Apply { planfile: PathBuf },
    /// Release the deprovisioning a run held, by applying it now.
    Approve { run: i64 },
    /// The audit log of applied changes.
    History {
        /// Only entries about this userName or group name.
        #[arg(long)]
        user: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Copy the state database to FILE, consistently, even while the daemon runs.
    Backup {
        file: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Print the completion script for SHELL (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the manual pages, scimsync.1 and one per command, into DIR (for packaging).
    #[command(hide = true)]
    Man { dir: PathBuf },
}

/// Runs the parsed command; the exit code on success, an error (exit 1) otherwise.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Plan { format, out, detailed_exitcode, pretty } => plan(
            &load_config(&cli.config)?,
            PlanOutput { format, out: out.as_deref(), pretty },
            detailed_exitcode,
        ),
        Command::Preview { users, format } => preview(&load_config(&cli.config)?, &users, format),
        Command::Check { offline, write_probe, notify } => match notify {
            true => check::notify(&cli.config),
            false => check::check(&cli.config, offline, write_probe),
        },
        Command::Status { format } => status(&load_config(&cli.config)?, format),
        Command::Backup { file, force } => backup(&load_config(&cli.config)?, &file, force),
        Command::Sync => apply_run(&load_config(&cli.config)?, run::Mode::Sync),
        Command::Run => crate::daemon::run(&cli.config, load_config(&cli.config)?),
        Command::Apply { planfile } => {
            let text = std::fs::read_to_string(&planfile)
                .with_context(|| format!("cannot read the plan file {}", planfile.display()))?;
            let saved: run::SavedPlan = serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not a saved plan: write one with `scimsync plan --format json --out FILE`",
                    planfile.display()
                )
            })?;
            apply_run(&load_config(&cli.config)?, run::Mode::Apply(Box::new(saved)))
        }
        Command::Approve { run } => apply_run(&load_config(&cli.config)?, run::Mode::Approve(run)),
        Command::History { user, limit, format } => {
            history(&load_config(&cli.config)?, user.as_deref(), limit, format)
        }
        Command::Completions { shell } => generate::completions(shell),
        Command::Man { dir } => generate::man_pages(&dir),
    }
}

fn load_config(path: &Path) -> anyhow::Result<Config> {
    let config = config::load(path)?;
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    Ok(config)
}

fn open_store(config: &Config) -> anyhow::Result<Store> {
    Store::open(&config.state_path).context("opening the state database")
}

fn emit(text: &str, out: Option<&Path>) -> anyhow::Result<()> {
    emit_with(out, |w| w.write_all(text.as_bytes()))
}

/// Writes a report to `out` or stdout as `write` makes it, through a buffer: a first plan of a
/// million users is gigabytes of JSON, more than half a gigabyte of text.
fn emit_with(
    out: Option<&Path>,
    write: impl FnOnce(&mut std::io::BufWriter<&mut dyn Write>) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let buffered = |w: &mut dyn Write| -> std::io::Result<()> {
        let mut w = std::io::BufWriter::with_capacity(1 << 16, w);
        write(&mut w)?;
        w.flush()
    };
    match out {
        Some(path) => std::fs::File::create(path)
            .and_then(|mut file| buffered(&mut file))
            .with_context(|| format!("cannot write {}", path.display())),
        None => Ok(buffered(&mut std::io::stdout().lock())?),
    }
}

/// `doc` as JSON and a newline, written as it is serialised: compact, or indented as `{value:#}`
/// prints it.
fn emit_json(doc: &impl serde::Serialize, out: Option<&Path>, pretty: bool) -> anyhow::Result<()> {
    emit_with(out, |w| {
        match pretty {
            true => serde_json::to_writer_pretty(&mut *w, doc)?,
            false => serde_json::to_writer(&mut *w, doc)?,
        }
        w.write_all(b"\n")
    })
}

/// Where and how `plan` writes its report.
struct PlanOutput<'a> {
    format: Format,
    out: Option<&'a Path>,
    pretty: bool,
}

/// The text report of a plan, written as it is made.
fn emit_text(
    plan: &crate::reconcile::Plan,
    names: &render::Names<'_>,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    /// `fmt::Write` onto an `io::Write`, keeping the I/O error that `fmt::Error` cannot carry.
    struct Adapter<W> {
        inner: W,
        error: Option<std::io::Error>,
    }
    impl<W: Write> std::fmt::Write for Adapter<W> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.inner.write_all(s.as_bytes()).map_err(|e| {
                self.error = Some(e);
                std::fmt::Error
            })
        }
    }
    emit_with(out, |w| {
        let mut adapter = Adapter { inner: w, error: None };
        crate::report::write_text(&mut adapter, plan, names)
            .map_err(|_| adapter.error.take().unwrap_or_else(|| std::io::Error::other("formatting failed")))
    })
}

fn plan(config: &Config, output: PlanOutput<'_>, detailed: bool) -> anyhow::Result<ExitCode> {
    let PlanOutput { format, out, pretty } = output;
    let dry_run = runtime()?.block_on(Run::new(config, now).plan())?;
    let plan = &dry_run.prepared.plan;
    let names = dry_run.prepared.names();
    match format {
        Format::Text => emit_text(plan, &names, out)?,
        Format::Json => {
            let t = std::time::Instant::now();
            let fingerprint = dry_run.fingerprint()?;
            tracing::debug!(ms = t.elapsed().as_millis() as u64, "Fingerprinted the desired state.");
            match pretty {
                true => emit_json(&render::JsonDocument { plan, names: &names, fingerprint }, out, true)?,
                false => emit_with(out, |w| crate::report::write_json(w, plan, &names, &fingerprint))?,
            }
        }
        Format::Markdown => emit(&render::markdown(plan, &names), out)?,
    }
    let code = if plan.is_held() {
        ExitCode::from(3)
    } else if detailed && !plan.is_empty() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    };
    drop(names);
    let prepared = dry_run.finish()?;
    crate::parts::leave_to_exit(prepared);
    Ok(code)
}

/// The runtime of a command: one thread, on which the executor and its requests share the
/// thread, so an answer is followed by the next request without a wake-up across threads.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")
}

fn preview(config: &Config, wanted: &[String], format: Format) -> anyhow::Result<ExitCode> {
    let dir = runtime()?.block_on(source::read(&config.source)).context("reading the source failed")?;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    let desired = config.mapping.map_directory(dir.clone());
    for w in wanted {
        let hit = dir.users.iter().find(|u| {
            u.key.0.eq_ignore_ascii_case(w)
                || u.record.dn.eq_ignore_ascii_case(w)
                || u.record.first_text("uid").is_some_and(|v| v.eq_ignore_ascii_case(w))
                || u.record.has_value_ci("userName", w)
                || desired.users.get(&u.key).is_some_and(|d| d.user_name().eq_ignore_ascii_case(w))
                || config.source.directory.user_name_attributes.iter().any(|a| u.record.has_value_ci(a, w))
        });
        match hit {
            None => missing.push(w.clone()),
            Some(su) => {
                let mapped = desired.users.get(&su.key);
                let skip = desired.skipped.iter().find(|s| s.key.as_ref() == Some(&su.key));
                found.push(serde_json::json!({
                    "query": w,
                    "key": su.key.0,
                    "origin": su.record.origin.to_string(),
                    "groups": su.groups,
                    "source_active": su.active,
                    "mapped": mapped.map(|m| serde_json::json!({
                        "attributes": m.attrs.iter().map(|(a, v)| (a.name().to_owned(), serde_json::Value::from(v))).collect::<serde_json::Map<_, _>>(),
                        "active": m.active,
                        "roles": m.roles.iter().filter(|r| !config.policy.protected_roles.contains(*r)).collect::<Vec<_>>(),
                        "refused_roles": m.roles.iter().filter(|r| config.policy.protected_roles.contains(*r)).collect::<Vec<_>>(),
                    })),
                    "skipped": skip.map(|s| s.reason.clone()),
                }));
            }
        }
    }
    let text = match format {
        Format::Json => format!("{:#}\n", serde_json::json!({"users": found, "not_found": missing})),
        Format::Text | Format::Markdown => preview_text(&found),
    };
    emit(&text, None)?;
    for m in &missing {
        eprintln!(
            "error: {m}: no such user in the source (searched userName, key, DN and uid); check the spelling"
        );
    }
    Ok(if missing.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn preview_text(found: &[serde_json::Value]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for f in found {
        let _ = writeln!(
            out,
            "{} ({}; key {})",
            f["query"].as_str().unwrap_or(""),
            f["origin"].as_str().unwrap_or(""),
            f["key"].as_str().unwrap_or("")
        );
        let groups: Vec<&str> =
            f["groups"].as_array().into_iter().flatten().filter_map(|g| g.as_str()).collect();
        let _ = writeln!(out, "    {:<38} {groups:?}", "source groups");
        match (&f["mapped"], &f["skipped"]) {
            (serde_json::Value::Object(m), _) => {
                for (k, v) in m["attributes"].as_object().into_iter().flatten() {
                    let _ = writeln!(out, "    {k:<38} {v}");
                }
                let _ = writeln!(out, "    {:<38} {}", "active", m["active"]);
                let _ = writeln!(out, "    {:<38} {}", "roles", m["roles"]);
                if m["refused_roles"].as_array().is_some_and(|r| !r.is_empty()) {
                    let _ = writeln!(
                        out,
                        "    {:<38} {} (protected: never assigned)",
                        "refused roles", m["refused_roles"]
                    );
                }
            }
            (_, serde_json::Value::String(reason)) => {
                let _ = writeln!(out, "    not provisioned: {reason}");
            }
            _ => {}
        }
    }
    out
}

fn apply_run(config: &Config, mode: run::Mode) -> anyhow::Result<ExitCode> {
    let _lock = crate::store::InstanceLock::acquire(&config.state_path)?;
    let opts = run::Options { mode, ..Default::default() };
    let outcome = runtime()?.block_on(Run::new(config, now).apply(opts))?;
    crate::store::prune_between_runs(&config.state_path, config.retention, now());
    let r = &outcome.report;
    // What the target confirmed and what failed, by kind: never the plan's counts.
    println!("run {}: {}; {} held", outcome.run_id, outcome.tally().line(), outcome.plan.held.len());
    for f in r.failed.iter().take(20) {
        eprintln!("failed: {} {}: {}", f.op, f.name, f.message);
    }
    if let Some(reason) = &r.stopped {
        anyhow::bail!("the run stopped: {reason}");
    }
    if !r.failed.is_empty() {
        anyhow::bail!(
            "{} operation(s) failed; they are retried by the next run (see `scimsync status`)",
            r.failed.len()
        );
    }
    if let Some(reason) = &outcome.plan.defer_reason {
        eprintln!(
            "{} removals deferred, {} missing user(s) only marked: {reason}",
            outcome.plan.deferred.len(),
            outcome.plan.pending.len()
        );
    }
    if let Some(reason) = &outcome.plan.hold_reason {
        eprintln!("held: {reason}");
        eprintln!("to release: scimsync approve {}", outcome.run_id);
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}

/// `backup FILE`: no instance lock, so that it works beside the daemon.
fn backup(config: &Config, file: &Path, force: bool) -> anyhow::Result<ExitCode> {
    let b = crate::store::backup::backup(&config.state_path, file, force)?;
    println!(
        "backed up {} to {} ({:.1} MiB, snapshot version {}) in {:.1} s",
        config.state_path.display(),
        file.display(),
        b.bytes as f64 / 1048576.0,
        b.snapshot_version,
        b.took.as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

fn history(config: &Config, user: Option<&str>, limit: u32, format: Format) -> anyhow::Result<ExitCode> {
    let store = open_store(config)?;
    let entries = store.audit(user, limit)?;
    let text = if format == Format::Json {
        format!("{:#}\n", serde_json::json!({ "entries": entries }))
    } else {
        use std::fmt::Write as _;
        let mut out = String::new();
        for e in &entries {
            let when =
                chrono::DateTime::from_timestamp(e.at, 0).map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string());
            let _ = writeln!(
                out,
                "{} run #{:<5} {:<22} {}",
                when.unwrap_or_default(),
                e.run_id,
                e.activity,
                e.name
            );
        }
        if entries.is_empty() {
            out.push_str("no applied changes recorded\n");
        }
        out
    };
    emit(&text, None)?;
    Ok(ExitCode::SUCCESS)
}

/// A run record's counts for `status`: for an applying run, what the target confirmed and what
/// failed, as its summary line said it; for a dry run (and records from before the confirmed
/// counts were kept), the plan's counts, marked as planned.
fn run_counts(summary: &serde_json::Value) -> Option<String> {
    let held = summary["held"].as_u64().unwrap_or(0);
    if let Some(applied) = summary.get("applied") {
        let tally: crate::executor::Tally = serde_json::from_value(applied.clone()).ok()?;
        return Some(format!("{}; {held} held", tally.line()));
    }
    let counts: Vec<String> = summary
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| v.as_u64().unwrap_or(0) > 0)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    (!counts.is_empty()).then(|| format!("planned: {}", counts.join(" ")))
}

fn status(config: &Config, format: Format) -> anyhow::Result<ExitCode> {
    let store = open_store(config)?;
    let runs = store.recent_runs(10)?;
    let held = store.held_ops(None)?;
    let totals = store.stats()?;
    let expiry = TokenExpiry::of(&config.target, now());
    let quarantine = store.quarantine()?.filter(|q| q.active(now()));
    let pending = store.pending_deprovision()?;
    if format == Format::Json {
        let v = serde_json::json!({
            "runs": runs,
            "totals": totals,
            "held": held.iter().map(|h| serde_json::json!({"run": h.run_id, "op": h.op.kind(), "key": h.op.key().0, "name": h.op.label()})).collect::<Vec<_>>(),
            "token_days_left": expiry.map(|e| e.days_left),
            "quarantine": quarantine,
            "pending_deprovision": pending.iter().map(|(n, since, runs)| serde_json::json!({"userName": n, "missing_since": since, "missing_runs": runs})).collect::<Vec<_>>(),
            "state": config.state_path,
        });
        emit(&format!("{v:#}\n"), None)?;
        return Ok(ExitCode::SUCCESS);
    }
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "state: {}", config.state_path.display());
    if let Some(e) = expiry {
        let _ = writeln!(out, "token: {} days left{}", e.days_left, e.note());
    }
    if let Some(q) = &quarantine {
        let _ = writeln!(out, "QUARANTINED: {}", q.message());
    }
    let _ = writeln!(out, "\nlast runs:");
    if runs.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    for r in &runs {
        let when = chrono::DateTime::from_timestamp(r.started_at, 0)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string());
        let _ = writeln!(out, "  #{} {} {} {}", r.id, r.kind, when.unwrap_or_default(), r.outcome);
        if let Some(line) = r.summary.as_ref().and_then(run_counts) {
            let _ = writeln!(out, "      {line}");
        }
        if let Some(e) = &r.error {
            let _ = writeln!(out, "      error: {}", e.lines().next().unwrap_or(""));
        }
    }
    if !pending.is_empty() {
        let _ = writeln!(
            out,
            "\nwithin the grace period (deprovisioned once missing long enough): {}",
            pending.len()
        );
        for (name, _, runs) in &pending {
            let _ = writeln!(out, "  {name} (missing for {runs} run(s))");
        }
    }
    let ops: Vec<String> =
        totals.operations.iter().map(|c| format!("{} {}={}", c.kind, c.outcome, c.count)).collect();
    if !ops.is_empty() {
        let _ = writeln!(out, "\noperations journaled: {}", ops.join(", "));
    }
    let _ = writeln!(out, "\nheld operations: {}", held.len());
    for h in &held {
        let _ = writeln!(out, "  run #{}: {} {}", h.run_id, h.op.kind(), h.op.label());
    }
    emit(&out, None)?;
    Ok(ExitCode::SUCCESS)
}

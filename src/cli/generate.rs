//! `completions` and `man`: shell completion scripts and manual pages made from the clap
//! definitions, so they name every command and option the binary has and nothing else.

use super::Cli;
use anyhow::Context as _;
use clap::CommandFactory as _;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// The completion script for `shell`, on stdout.
pub(super) fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "scimsync", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script).and_then(|()| out.flush()).context("cannot write the completion script")?;
    Ok(ExitCode::SUCCESS)
}

/// `scimsync.1` and `scimsync-COMMAND.1` for each command but the hidden ones, in `dir`.
pub(super) fn man_pages(dir: &Path) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(dir)
        .and_then(|()| clap_mangen::generate_to(Cli::command(), dir))
        .with_context(|| format!("cannot write the manual pages into {}", dir.display()))?;
    Ok(ExitCode::SUCCESS)
}

//! The `scimsync` binary: parse the command line, start logging, run one command, map errors to
//! exit codes.

use clap::Parser;
use scimsync::cli::{self, Cli, LogFormat};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

// A run allocates and frees millions of small strings; mimalloc does that faster than glibc's
// malloc, whose consolidation passes took a large share of a big plan (benches/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

//! `scimsync-bench`: helpers for the benchmarks (benches/README.md), never for a deployment.
//!
//! ```text
//! scimsync-bench fill --config FILE [--batch N]   commit a plan to the snapshot without a target
//! scimsync-bench parse FILE                       time the LDIF reader alone over a file
//! scimsync-bench loopback --port PORT             a stand-in HTTP server for measurement only
//! ```

mod confirm;
mod fill;
mod loopback;

use std::time::Instant;

// The same allocator as the scimsync binary, so that `fill` measures what a sync would.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("fill") => fill::main(args),
        Some("parse") => parse(args.next()),
        Some("loopback") => Ok(loopback::main(args)?),
        _ => anyhow::bail!("usage: scimsync-bench fill|parse|loopback … (see benches/README.md)"),
    }
}

/// Reads every entry of an LDIF file with scimsync's reader, keeping every attribute, and prints
/// `entries=… bytes=… secs=… mb_per_s=…`.
fn parse(path: Option<String>) -> anyhow::Result<()> {
    use scimsync::source::ldif::{LdifReader, UrlPolicy};
    let path = path.ok_or_else(|| anyhow::anyhow!("usage: scimsync-bench parse FILE"))?;
    let bytes = std::fs::metadata(&path)?.len();
    let t = Instant::now();
    let file = std::io::BufReader::with_capacity(256 * 1024, std::fs::File::open(&path)?);
    let mut entries = 0u64;
    for record in LdifReader::new(file, path.clone(), UrlPolicy::default()) {
        std::hint::black_box(record?);
        entries += 1;
    }
    let secs = t.elapsed().as_secs_f64();
    println!("entries={entries} bytes={bytes} secs={secs:.3} mb_per_s={:.1}", bytes as f64 / 1e6 / secs);
    Ok(())
}

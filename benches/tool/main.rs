//! `scimsync-bench`: helpers for the benchmarks (benches/README.md), never for a deployment.
//!
//! ```text
//! scimsync-bench fill --config FILE [--batch N]   commit a plan to the snapshot without a target
//! scimsync-bench parse FILE [--parts]             time the LDIF reader alone over a file
//! scimsync-bench loopback --port PORT             a stand-in HTTP server for measurement only
//! scimsync-bench read-source CONFIG [--searches]  time the configured source's read alone
//! scimsync-bench retention --dir DIR --users N     the state database over a simulated year
//! ```

mod confirm;
mod fill;
mod loopback;
mod retention;

use std::time::Instant;

// The same allocator as the scimsync binary, so that `fill` measures what a sync would.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("fill") => fill::main(args),
        Some("parse") => parse(args),
        Some("loopback") => Ok(loopback::main(args)?),
        Some("read-source") => read_source(args),
        Some("retention") => retention::main(args),
        _ => anyhow::bail!(
            "usage: scimsync-bench fill|parse|loopback|read-source|retention … (see benches/README.md)"
        ),
    }
}

/// Reads every entry of an LDIF file with scimsync's reader, keeping every attribute and
/// touching every name and value it hands out, and prints
/// `entries=… values=… value_bytes=… bytes=… secs=… mb_per_s=…`. With `--parts`, the file is
/// read in parts on several threads, as `scimsync` reads a large export.
fn parse(mut args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    use scimsync::source::ldif::{LdifError, LdifReader, UrlPolicy};
    use scimsync::source::{ldif::parts as ldif_parts, ValueRef};
    use std::hint::black_box;
    use std::io::Read;

    /// Entries, values and value bytes handed out by one reader.
    fn read_all(mut reader: LdifReader<impl Read>) -> Result<[u64; 3], LdifError> {
        let mut counts = [0u64; 3];
        while let Some(entry) = reader.next_entry()? {
            counts[0] += 1;
            counts[2] += black_box(entry.dn()).len() as u64;
            for (name, value) in entry.attrs() {
                black_box(name);
                counts[1] += 1;
                counts[2] += match black_box(value) {
                    ValueRef::Text(text) => text.len(),
                    ValueRef::Binary(bytes) => bytes.len(),
                } as u64;
            }
        }
        Ok(counts)
    }

    let usage = || anyhow::anyhow!("usage: scimsync-bench parse FILE [--parts]");
    let path = args.next().ok_or_else(usage)?;
    let in_parts = match args.next().as_deref() {
        None => false,
        Some("--parts") => true,
        Some(_) => return Err(usage()),
    };
    let bytes = std::fs::metadata(&path)?.len();
    let t = Instant::now();
    let file = std::fs::File::open(&path)?;
    let counts = if in_parts {
        let parts = ldif_parts::in_parts(&file, &path, &UrlPolicy::default(), read_all)?;
        let mut sum = [0u64; 3];
        for part in parts {
            sum.iter_mut().zip(part?).for_each(|(s, n)| *s += n);
        }
        sum
    } else {
        read_all(LdifReader::new(file, path.clone(), UrlPolicy::default()))?
    };
    let secs = t.elapsed().as_secs_f64();
    let [entries, values, value_bytes] = counts;
    println!(
        "entries={entries} values={values} value_bytes={value_bytes} bytes={bytes} secs={secs:.3} mb_per_s={:.1}",
        bytes as f64 / 1e6 / secs
    );
    Ok(())
}

/// Reads the configured source as a run does (`source::read_for` with the attributes the mapping
/// reads), on a single-threaded runtime, and prints
/// `records=… users=… groups=… skipped=… secs=… records_per_s=…`: for a live LDAP source, the
/// search, the paging and the directory interpretation without mapping or planning. With
/// `--searches` (LDAP only) it reads nothing and prints the `ldapsearch` command lines of the
/// same searches instead, one per line, as `scimsync check` shows them.
fn read_source(mut args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let usage = || anyhow::anyhow!("usage: scimsync-bench read-source CONFIG [--searches]");
    let path = args.next().ok_or_else(usage)?;
    let searches = match args.next().as_deref() {
        None => false,
        Some("--searches") => true,
        Some(_) => return Err(usage()),
    };
    let config = scimsync::config::load(std::path::Path::new(&path))?;
    let wanted = config.mapping.source_attributes();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    if searches {
        use scimsync::source::ldap;
        let found = runtime.block_on(ldap::inspect(&config.source))?;
        for line in ldap::ldapsearch_commands(&config.source, &found.dse, wanted.as_ref()) {
            println!("{line}");
        }
        return Ok(());
    }
    let t = Instant::now();
    let dir = runtime.block_on(scimsync::source::read_for(&config.source, wanted.as_ref()))?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "records={} users={} groups={} skipped={} secs={secs:.3} records_per_s={:.0}",
        dir.records_read,
        dir.users.len(),
        dir.groups.len(),
        dir.skipped.len(),
        dir.records_read as f64 / secs
    );
    Ok(())
}

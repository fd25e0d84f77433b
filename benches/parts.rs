//! Benchmarks of the parts of a run, over a generated directory (benches/gen): the LDIF reader
//! (every attribute borrowed or as owned records, and only those the bench mapping reads),
//! directory interpretation, mapping, loading the snapshot and planning with no change.
//! `cargo bench --bench parts`; the user count comes from `SCIMSYNC_BENCH_USERS` (default 10,000).

#[path = "tool/confirm.rs"]
mod confirm;
#[path = "gen/directory.rs"]
#[allow(dead_code)]
mod directory;

use divan::counter::{BytesCount, ItemsCount};
use divan::{black_box, Bencher};
use scimsync::config::Config;
use scimsync::model::DesiredState;
use scimsync::reconcile::{self, Snapshot};
use scimsync::source::directory::{join_parts, DnHasher, PartBuilder, SourceDirectory};
use scimsync::source::ldif::{LdifReader, UrlPolicy};
use scimsync::source::{SourceKind, ValueRef};
use scimsync::store::{RunKind, Store};
use std::collections::HashSet;
use std::sync::LazyLock;

fn main() {
    divan::main();
}

fn users() -> u64 {
    std::env::var("SCIMSYNC_BENCH_USERS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000)
}

/// The generated export and the bench config, shared by every benchmark.
struct Fixture {
    ldif: Vec<u8>,
    config: Config,
    wanted: Option<HashSet<String>>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let mut ldif = Vec::new();
    directory::Directory::generate(7, users(), 200).write_ldif(&mut ldif).expect("write to memory");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/bench.toml");
    let mut config = scimsync::config::load(&path).expect("benches/bench.toml loads");
    assert_eq!(config.source.kind, SourceKind::Ldif);
    config.policy.now = 1_700_000_000;
    let wanted = config.mapping.source_attributes();
    Fixture { ldif, config, wanted }
});

/// Reads and interprets the export as `scimsync` does: each entry borrowed from the reader while
/// the directory takes what it keeps of it.
fn read(fx: &Fixture) -> SourceDirectory {
    let mut reader = LdifReader::new(&fx.ldif[..], "bench.ldif", UrlPolicy::default());
    let mut keep: HashSet<String> =
        scimsync::source::directory::needed_attributes(&fx.config.source.directory).collect();
    if let Some(w) = &fx.wanted {
        keep.extend(w.iter().cloned());
        reader = reader.keep_only(keep);
    }
    let hasher = DnHasher::default();
    let mut part = PartBuilder::new(&fx.config.source.directory, fx.wanted.as_ref(), &hasher);
    while let Some(entry) = reader.next_entry().expect("parses") {
        part.add(&entry);
    }
    join_parts(vec![part.finish()], hasher)
}

/// Every entry of the export through the borrowing API, every name and value touched.
fn touch_every_value(mut reader: LdifReader<&[u8]>) -> usize {
    let mut bytes = 0;
    while let Some(entry) = reader.next_entry().expect("parses") {
        bytes += black_box(entry.dn()).len();
        for (name, value) in entry.attrs() {
            black_box(name);
            bytes += match black_box(value) {
                ValueRef::Text(text) => text.len(),
                ValueRef::Binary(b) => b.len(),
            };
        }
    }
    bytes
}

fn desired(fx: &Fixture) -> DesiredState {
    fx.config.mapping.map_directory(read(fx))
}

/// The snapshot after the first sync: the desired state applied with fake target ids.
fn snapshot_store(fx: &Fixture) -> (Store, DesiredState) {
    let desired = desired(fx);
    let plan = reconcile::plan(&desired, &Snapshot::default(), &fx.config.policy);
    let mut store = Store::in_memory().expect("in-memory store");
    let run = store.begin_run(RunKind::Sync, 0).expect("run");
    let ids = confirm::fake_ids(&plan, "id");
    store.commit_ops(run, &confirm::confirmed(&plan, &ids), 0).expect("commit");
    (store, desired)
}

#[divan::bench(sample_count = 10)]
fn ldif_parse_every_attribute(b: Bencher) {
    let fx = &*FIXTURE;
    b.counter(BytesCount::of_slice(&fx.ldif))
        .bench(|| touch_every_value(LdifReader::new(&fx.ldif[..], "bench.ldif", UrlPolicy::default())));
}

#[divan::bench(sample_count = 10)]
fn ldif_parse_mapped_attributes(b: Bencher) {
    let fx = &*FIXTURE;
    let mut keep: HashSet<String> =
        scimsync::source::directory::needed_attributes(&fx.config.source.directory).collect();
    keep.extend(fx.wanted.iter().flatten().cloned());
    b.counter(BytesCount::of_slice(&fx.ldif)).bench(|| {
        let reader =
            LdifReader::new(&fx.ldif[..], "bench.ldif", UrlPolicy::default()).keep_only(keep.clone());
        touch_every_value(reader)
    });
}

/// Owned records, as the `Iterator` gives them: every value copied.
#[divan::bench(sample_count = 10)]
fn ldif_records_every_attribute(b: Bencher) {
    let fx = &*FIXTURE;
    b.counter(BytesCount::of_slice(&fx.ldif)).bench(|| {
        let reader = LdifReader::new(&fx.ldif[..], "bench.ldif", UrlPolicy::default());
        reader.fold(0usize, |n, r| {
            black_box(r.expect("parses"));
            n + 1
        })
    });
}

#[divan::bench(sample_count = 10)]
fn read_and_interpret(b: Bencher) {
    let fx = &*FIXTURE;
    b.counter(ItemsCount::new(users())).bench(|| read(fx));
}

#[divan::bench(sample_count = 10)]
fn map_directory(b: Bencher) {
    let fx = &*FIXTURE;
    b.counter(ItemsCount::new(users()))
        .with_inputs(|| read(fx))
        .bench_values(|dir| fx.config.mapping.map_directory(dir));
}

#[divan::bench(sample_count = 10)]
fn load_snapshot(b: Bencher) {
    let fx = &*FIXTURE;
    let (store, _) = snapshot_store(fx);
    b.counter(ItemsCount::new(users())).bench_local(|| store.load_snapshot().expect("loads"));
}

#[divan::bench(sample_count = 10)]
fn plan_no_change(b: Bencher) {
    let fx = &*FIXTURE;
    let (store, desired) = snapshot_store(fx);
    let snapshot = store.load_snapshot().expect("loads");
    b.counter(ItemsCount::new(users())).bench(|| {
        let plan = reconcile::plan(&desired, &snapshot, &fx.config.policy);
        assert!(plan.is_empty());
        plan
    });
}

//! The pure core cannot do I/O, and this test shows it: `src/reconcile.rs` and
//! `src/reconcile/` name no I/O crate,
//! no filesystem or network module and no clock.

#[test]
fn reconcile_imports_no_io_and_reads_no_clock() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let forbidden =
        ["tokio", "reqwest", "rusqlite", "std::fs", "std::net", "std::time", "SystemTime", "chrono", "rand"];
    let mut checked = 0;
    let modules = std::fs::read_dir(src.join("reconcile")).unwrap().map(|e| e.unwrap().path());
    for path in std::iter::once(src.join("reconcile.rs")).chain(modules) {
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for f in forbidden {
                assert!(
                    !code.contains(f),
                    "{}:{}: the pure core mentions {f}: {line}",
                    path.display(),
                    n + 1
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 7, "expected the reconcile modules, found {checked}");
}

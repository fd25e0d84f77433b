//! The Debian package (Cargo.toml's `[package.metadata.deb]`), made by cargo-deb from this test
//! build's binary with the manual pages and completions of `scripts/deb-assets.sh`, then taken
//! apart with dpkg-deb: every file where Debian and systemd expect it and nothing else, the
//! config a conffile, no service enabled or started, the manual pages and completions readable,
//! the packaged units verified (running the packaged binary) and rated 2.0 or better.
//!
//! Built from the debug binary (`--profile dev`): a release build would double the suite's build
//! time for a package whose layout does not depend on the profile.

use crate::support::repo_root;
use crate::systemd_unit::{assert_verifies, exposure, unit_copy};
use clap::CommandFactory as _;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Builds the package into `out`; its path.
fn build_package(out: &Path) -> PathBuf {
    let root = repo_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let version = Command::new(&cargo).args(["deb", "--version"]).output();
    assert!(
        version.is_ok_and(|v| v.status.success()),
        "cargo-deb is missing: run scripts/test.sh, which installs the pinned version"
    );
    run(Command::new("bash").arg(root.join("scripts/deb-assets.sh")).arg(env!("CARGO_BIN_EXE_scimsync")));
    run(Command::new(&cargo)
        .args(["deb", "--no-build", "--profile", "dev", "--fast", "--output"])
        .arg(out)
        .current_dir(&root));
    let debs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "one package expected in {}: {debs:?}", out.display());
    // The line tables go to a package of their own.
    let dbgsym = std::fs::read_dir(out).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap());
    let dbgsym: Vec<String> =
        dbgsym.filter(|n| n.starts_with("scimsync-dbgsym_") && n.ends_with(".ddeb")).collect();
    assert_eq!(dbgsym.len(), 1, "no scimsync-dbgsym package in {}", out.display());
    debs.into_iter().next().unwrap()
}

/// Every file of the extracted tree (relative, with its mode), directories left out.
fn files(root: &Path) -> BTreeMap<String, u32> {
    let mut found = BTreeMap::new();
    let mut todo = vec![root.to_owned()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                todo.push(path);
            } else {
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                found.insert(rel, meta.permissions().mode() & 0o7777);
            }
        }
    }
    found
}

/// The manual pages there must be: one for scimsync and one per command `--help` lists.
fn man_pages() -> Vec<String> {
    let cmd = scimsync::cli::Cli::command();
    let commands =
        cmd.get_subcommands().filter(|c| !c.is_hide_set()).map(|c| format!("scimsync-{}", c.get_name()));
    std::iter::once("scimsync".to_owned()).chain(commands).collect()
}

fn gunzip(path: &Path) -> String {
    run(Command::new("gzip").arg("-dc").arg(path))
}

#[test]
fn the_package_puts_every_file_where_debian_and_systemd_expect_it() {
    let scratch = tempfile::tempdir().unwrap();
    let deb = build_package(&scratch.path().join("out"));

    // The control file: name, section, dependencies found by dpkg-shlibdeps.
    let field = |name: &str| run(Command::new("dpkg-deb").arg("-f").arg(&deb).arg(name)).trim().to_owned();
    assert_eq!(field("Package"), "scimsync");
    assert_eq!(field("Version"), format!("{}-1", env!("CARGO_PKG_VERSION")));
    assert_eq!(field("Section"), "admin");
    assert!(field("Depends").contains("libc6"), "Depends: {}", field("Depends"));
    assert!(field("Depends").contains("ca-certificates"), "Depends: {}", field("Depends"));
    let info = run(Command::new("dpkg-deb").arg("-I").arg(&deb));
    assert!(info.contains(" conffiles") && info.contains(" postinst"), "{info}");

    // The maintainer scripts: the config is a conffile; the units are known to systemd but
    // neither enabled nor started at install.
    let control = scratch.path().join("DEBIAN");
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
    let conffiles = std::fs::read_to_string(control.join("conffiles")).unwrap();
    assert_eq!(conffiles.lines().collect::<Vec<_>>(), ["/etc/scimsync/scimsync.toml"]);
    let postinst = std::fs::read_to_string(control.join("postinst")).unwrap();
    let lines: Vec<&str> = postinst.lines().map(str::trim).collect();
    assert!(
        lines.contains(&"deb-systemd-helper update-state scimsync.service >/dev/null || true"),
        "{postinst}"
    );
    for (i, line) in lines.iter().enumerate() {
        // Enabled again only if it was enabled before (an upgrade); started never, restarted
        // on upgrade only if it runs.
        if line.starts_with("deb-systemd-helper enable") {
            assert!(
                lines[i - 2..i].iter().any(|l| l.contains("was-enabled scimsync.service")),
                "enabled at install:\n{postinst}"
            );
        }
        if line.contains("deb-systemd-invoke") {
            assert!(line.contains("try-restart") && lines[i - 1] == "if [ -n \"$2\" ]; then", "{postinst}");
        }
    }
    assert!(lines.contains(&"systemctl try-restart 'scimsync@*.service' >/dev/null || true"), "{postinst}");
    let prerm = std::fs::read_to_string(control.join("prerm")).unwrap();
    assert!(prerm.contains("deb-systemd-invoke stop scimsync.service"), "{prerm}");
    assert!(prerm.contains("systemctl stop 'scimsync@*.service'"), "{prerm}");
    for script in ["postinst", "prerm", "postrm"] {
        run(Command::new("sh").arg("-n").arg(control.join(script)));
    }

    // Every file, with its mode; nothing else.
    let root = scratch.path().join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    let mut expected: BTreeMap<String, u32> = [
        ("usr/bin/scimsync", 0o755),
        ("etc/scimsync/scimsync.toml", 0o644),
        ("usr/lib/systemd/system/scimsync.service", 0o644),
        ("usr/lib/systemd/system/scimsync@.service", 0o644),
        ("usr/share/doc/scimsync/README.md", 0o644),
        ("usr/share/doc/scimsync/copyright", 0o644),
        ("usr/share/doc/scimsync/examples/scimsync.example.toml", 0o644),
        ("usr/share/bash-completion/completions/scimsync", 0o644),
        ("usr/share/zsh/vendor-completions/_scimsync", 0o644),
        ("usr/share/fish/vendor_completions.d/scimsync.fish", 0o644),
    ]
    .into_iter()
    .map(|(p, m)| (p.to_owned(), m))
    .collect();
    for page in man_pages() {
        expected.insert(format!("usr/share/man/man1/{page}.1.gz"), 0o644);
    }
    assert_eq!(files(&root), expected);

    // The packaged files are the checkout's.
    let same = |packaged: &str, source: &str| {
        let a = std::fs::read(root.join(packaged)).unwrap();
        assert!(a == std::fs::read(repo_root().join(source)).unwrap(), "{packaged} is not {source}");
    };
    same("etc/scimsync/scimsync.toml", "config/scimsync.example.toml");
    same("usr/lib/systemd/system/scimsync.service", "systemd/scimsync.service");
    same("usr/lib/systemd/system/scimsync@.service", "systemd/scimsync@.service");
    let copyright = std::fs::read_to_string(root.join("usr/share/doc/scimsync/copyright")).unwrap();
    assert!(copyright.contains("Apache-2.0"), "{copyright}");

    // The binary runs, stripped.
    let binary = root.join("usr/bin/scimsync");
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    assert!(
        size(&binary) < size(Path::new(env!("CARGO_BIN_EXE_scimsync"))),
        "the packaged binary is not stripped"
    );
    let sections = run(Command::new("objdump").arg("-h").arg(&binary));
    assert!(!sections.contains(".debug_line"), "the packaged binary keeps its line tables:\n{sections}");
    let version = run(Command::new(&binary).arg("--version"));
    assert_eq!(version.trim(), format!("scimsync {}", env!("CARGO_PKG_VERSION")));

    // Manual pages: gzipped roff, titled, and formatted by man where it is installed.
    for page in man_pages() {
        let path = root.join(format!("usr/share/man/man1/{page}.1.gz"));
        let text = gunzip(&path);
        assert!(text.contains(&format!(".TH {page} 1")), "{page}: no .TH line:\n{text}");
        if Path::new("/usr/bin/man").exists() {
            let shown =
                run(Command::new("man").arg("-l").arg(&path).env("MANPAGER", "cat").env("MANWIDTH", "80"));
            assert!(shown.contains("SYNOPSIS") && shown.contains(&page), "man -l {page}:\n{shown}");
        }
    }

    // Completions: non-empty, and bash can parse its script.
    let completion = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let bash = completion("usr/share/bash-completion/completions/scimsync");
    assert!(bash.contains("complete -F _scimsync"), "{bash}");
    run(Command::new("bash").arg("-n").arg(root.join("usr/share/bash-completion/completions/scimsync")));
    assert!(completion("usr/share/zsh/vendor-completions/_scimsync").starts_with("#compdef scimsync"));
    assert!(completion("usr/share/fish/vendor_completions.d/scimsync.fish").contains("complete -c scimsync"));

    // The units as packaged: verified with the packaged binary as their command, rated <= 2.0.
    for name in ["scimsync.service", "scimsync@.service"] {
        let text = std::fs::read_to_string(root.join("usr/lib/systemd/system").join(name)).unwrap();
        let unit = unit_copy(name, &text, &binary);
        assert_verifies(&unit);
        let score = exposure(&unit);
        assert!(score <= 2.0, "{}: exposure {score} > 2.0", unit.name);
    }
}

//! Helpers shared by the integration tests: real LDIF exports made by a throwaway OpenLDAP slapd.
// Each test binary that declares `mod support;` uses only part of this module.
#![allow(dead_code)]

pub mod django_scim;
pub mod fault_proxy;
pub mod proxy;
pub mod scim_server;
pub mod scimmy;
pub mod site;
pub mod slapd_live;

use scimsync::source::ldif::{LdifReader, UrlPolicy};
use scimsync::source::Record;
use std::env;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

/// The checkout's root (where `Cargo.toml` and `scripts/` are).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `scimsync` binary with no `SCIMSYNC_…` variables inherited from the caller's environment
/// (they would override the config under test).
pub fn scimsync_command() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_scimsync"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SCIMSYNC_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// A single-threaded runtime with I/O and timers, for the tests that drive async code (the
/// target's raw view, a SCIM source) from a plain `#[test]`.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A file under `tests/data/`.
pub fn test_data(rel: &str) -> PathBuf {
    repo_root().join("tests/data").join(rel)
}

/// The slapd binary: `$SLAPD_BIN`, else `slapd` on `PATH`, else `/usr/sbin/slapd`.
///
/// Panics when there is none: a test that needs slapd must fail, not pass without running.
pub fn require_slapd() -> PathBuf {
    if let Some(bin) = env::var_os("SLAPD_BIN").filter(|b| !b.is_empty()) {
        let bin = PathBuf::from(bin);
        assert!(bin.is_file(), "SLAPD_BIN={} does not exist", bin.display());
        return bin;
    }
    let on_path = env::var_os("PATH")
        .map(|p| env::split_paths(&p).map(|d| d.join("slapd")).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain(["/usr/sbin/slapd", "/usr/local/sbin/slapd"].map(PathBuf::from))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "slapd not found (PATH, /usr/sbin/slapd): run scripts/test.sh, which installs \
                 Debian's slapd and ldap-utils, or install them with apt"
            )
        })
}

/// The three exports `scripts/slapd-export.sh` made of one input, in a temporary directory that
/// is removed when this is dropped.
pub struct SlapdExport {
    dir: TempDir,
}

impl SlapdExport {
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `slapcat`: all attributes, operational ones included, folded at 78 columns.
    pub fn slapcat(&self) -> PathBuf {
        self.dir().join("slapcat.ldif")
    }

    /// `ldapsearch -LLL '*' entryUUID`: no comments except the paged-results cookie line.
    pub fn ldapsearch(&self) -> PathBuf {
        self.dir().join("ldapsearch.ldif")
    }

    /// `ldapsearch '*' entryUUID` without `-LLL`: `#` comments and the `search:`/`result:`
    /// trailer.
    pub fn ldapsearch_commented(&self) -> PathBuf {
        self.dir().join("ldapsearch-commented.ldif")
    }

    /// `(name, path)` of every export.
    pub fn all(&self) -> [(&'static str, PathBuf); 3] {
        [
            ("slapcat", self.slapcat()),
            ("ldapsearch -LLL", self.ldapsearch()),
            ("ldapsearch (commented)", self.ldapsearch_commented()),
        ]
    }
}

/// Loads `input` into a throwaway slapd and exports it three ways (see `scripts/slapd-export.sh`).
/// The slapd is stopped again before this returns. Takes well under a second.
pub fn slapd_export(input: &Path) -> SlapdExport {
    let slapd = require_slapd();
    let dir = tempfile::Builder::new()
        .prefix("scimsync-slapd-")
        .tempdir()
        .expect("create a temporary directory for the slapd export");
    let script = repo_root().join("scripts/slapd-export.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(&script).arg(dir.path()).arg(input);
    if env::var_os("SLAPD_BIN").is_none() {
        cmd.env("SLAPD_BIN", &slapd);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} {} {} failed ({}):\n{}{}",
        script.display(),
        dir.path().display(),
        input.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let export = SlapdExport { dir };
    for (name, path) in export.all() {
        assert!(path.is_file(), "the {name} export {} is missing", path.display());
    }
    export
}

/// Every record of an LDIF file, read with scimsync's own reader; panics with the reader's
/// `path:line` error.
pub fn read_ldif(path: &Path) -> Vec<Record> {
    let file = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    LdifReader::new(BufReader::new(file), path.display().to_string(), UrlPolicy::default())
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

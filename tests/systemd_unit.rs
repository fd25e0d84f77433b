//! `systemd/scimsync.service`: `systemd-analyze verify` accepts it and
//! `systemd-analyze security --offline=true` rates its exposure 2.0 or better.

use std::path::{Path, PathBuf};
use std::process::Command;

fn unit_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/scimsync.service");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn systemd_analyze() -> PathBuf {
    ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("systemd-analyze not found: run scripts/test.sh, which installs Debian's systemd package")
        })
}

/// A copy of the unit in a temporary directory, with `/usr/bin/scimsync` pointing at the
/// binary under test (verify checks that every command exists and is executable).
fn unit_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scimsync.service");
    std::fs::write(&path, unit_text().replace("/usr/bin/scimsync", env!("CARGO_BIN_EXE_scimsync"))).unwrap();
    (dir, path)
}

#[test]
fn the_unit_has_what_the_daemon_needs() {
    let text = unit_text();
    for line in [
        "Type=notify",
        "ExecStartPre=/usr/bin/scimsync --config /etc/scimsync/scimsync.toml check --offline",
        "ExecStart=/usr/bin/scimsync --config /etc/scimsync/scimsync.toml --log-format json run",
        "DynamicUser=yes",
        "StateDirectory=scimsync",
        "LoadCredential=target.token:/etc/scimsync/target.token",
        "ProtectSystem=strict",
        "Restart=on-failure",
        "RestartSec=30",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} missing from the unit");
    }
    assert!(text.lines().any(|l| l.starts_with("WatchdogSec=")), "WatchdogSec missing");
    // The commands it runs exist in this binary.
    for args in [&["check", "--help"][..], &["run", "--help"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_scimsync"))
            .args(["--config", "/etc/scimsync/scimsync.toml", "--log-format", "json"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "scimsync {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    let (_dir, unit) = unit_copy();
    let out = Command::new(systemd_analyze()).args(["verify", "--man=no"]).arg(&unit).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "systemd-analyze verify:\n{stderr}");
}

#[test]
fn systemd_analyze_security_rates_the_exposure_at_most_2() {
    let (_dir, unit) = unit_copy();
    let out = Command::new(systemd_analyze())
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line =
        stdout.lines().find(|l| l.contains("Overall exposure level for scimsync.service:")).unwrap_or_else(
            || panic!("no overall exposure in:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr)),
        );
    let score: f64 = line
        .rsplit(':')
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the score in {line:?}"));
    assert!(score <= 2.0, "exposure {score} > 2.0:\n{stdout}");
}

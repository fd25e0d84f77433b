//! `systemd/scimsync.service` and the template `systemd/scimsync@.service`: `systemd-analyze
//! verify` accepts them and `systemd-analyze security --offline=true` rates their exposure 2.0 or
//! better; the template differs from the unit only in its instance's config, token and state.

use std::path::{Path, PathBuf};
use std::process::Command;

fn unit_text(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub(crate) fn systemd_analyze() -> PathBuf {
    ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("systemd-analyze not found: run scripts/test.sh, which installs Debian's systemd package")
        })
}

/// A unit written into a temporary directory, as systemd-analyze is to read it.
pub(crate) struct UnitCopy {
    _dir: tempfile::TempDir,
    /// The unit's path; for the template, that of its instance `acme`.
    pub path: PathBuf,
    /// The name `security` rates it under (`scimsync@acme.service` for the template).
    pub name: String,
}

/// `text` as the unit `name`, with `/usr/bin/scimsync` pointing at `binary` (verify checks that
/// every command exists and is executable).
pub(crate) fn unit_copy(name: &str, text: &str, binary: &Path) -> UnitCopy {
    let dir = tempfile::tempdir().unwrap();
    let text = text.replace("/usr/bin/scimsync", &binary.display().to_string());
    std::fs::write(dir.path().join(name), text).unwrap();
    let name = name.replace("@.", "@acme.");
    UnitCopy { path: dir.path().join(&name), _dir: dir, name }
}

/// `systemd-analyze verify` passes the unit with nothing to say.
pub(crate) fn assert_verifies(unit: &UnitCopy) {
    let out = Command::new(systemd_analyze()).args(["verify", "--man=no"]).arg(&unit.path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify {}:\n{stderr}",
        unit.name
    );
}

/// The overall exposure `systemd-analyze security --offline=true` gives the unit.
pub(crate) fn exposure(unit: &UnitCopy) -> f64 {
    let out = Command::new(systemd_analyze())
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit.path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let wanted = format!("Overall exposure level for {}:", unit.name);
    let line = stdout
        .lines()
        .find(|l| l.contains(&wanted))
        .unwrap_or_else(|| panic!("no {wanted:?} in:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    line.rsplit(':')
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the score in {line:?}"))
}

fn copy_of(name: &str) -> UnitCopy {
    unit_copy(name, &unit_text(name), Path::new(env!("CARGO_BIN_EXE_scimsync")))
}

#[test]
fn the_unit_has_what_the_daemon_needs() {
    let text = unit_text("scimsync.service");
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

/// The template is the unit with the instance's own config, token and state directory: the same
/// commands, restart policy and sandbox, line for line.
#[test]
fn the_template_is_the_unit_with_an_instance_of_its_own() {
    let template = unit_text("scimsync@.service");
    for line in [
        "ExecStartPre=/usr/bin/scimsync --config /etc/scimsync/%i.toml check --offline",
        "ExecStart=/usr/bin/scimsync --config /etc/scimsync/%i.toml --log-format json run",
        "LoadCredential=target.token:/etc/scimsync/%i.token",
        "StateDirectory=scimsync-%i",
    ] {
        assert!(template.lines().any(|l| l == line), "{line:?} missing from the template");
    }
    let settings = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("Description="))
            .map(str::to_owned)
            .collect()
    };
    let as_plain = template
        .replace("/etc/scimsync/%i.toml", "/etc/scimsync/scimsync.toml")
        .replace("/etc/scimsync/%i.token", "/etc/scimsync/target.token")
        .replace("StateDirectory=scimsync-%i", "StateDirectory=scimsync");
    let settings_as_plain = settings(&as_plain);
    assert_eq!(settings_as_plain, settings(&unit_text("scimsync.service")));
    assert!(
        settings_as_plain.iter().all(|l| !l.contains("%i")),
        "the template names its instance elsewhere too:\n{template}"
    );
}

#[test]
fn systemd_analyze_verify_accepts_the_unit_and_an_instance_of_the_template() {
    for name in ["scimsync.service", "scimsync@.service"] {
        assert_verifies(&copy_of(name));
    }
}

#[test]
fn systemd_analyze_security_rates_the_exposure_at_most_2() {
    for name in ["scimsync.service", "scimsync@.service"] {
        let unit = copy_of(name);
        let score = exposure(&unit);
        assert!(score <= 2.0, "{}: exposure {score} > 2.0", unit.name);
    }
}

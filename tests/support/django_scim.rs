//! A third, independent SCIM 2.0 server for the tests: django-scim2 (PyPI, pinned in
//! `tests/support/django_scim/requirements.txt`) in a minimal Django project
//! (`tests/support/django_scim/server.py`), with an in-memory SQLite database.
//!
//! It implements only part of RFC 7644, as many real services do; `SCIM-SERVERS.md` beside this
//! file lists what it does, request by request. In short: PATCH `replace` works for `userName`,
//! `name.givenName`, `name.familyName`, `active` (a JSON boolean only) and `emails`; every other
//! path, every user `add`/`remove`, a group rename and `remove` of `members[value eq "…"]` answer
//! 501 (some with an empty `detail`); members are removed only as a value list; a group filter
//! matches nothing; unknown attributes (title, phone numbers, extensions) are dropped silently.

use super::fault_proxy::spawn_listening;
use std::env;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{SystemTime, UNIX_EPOCH};

/// The Python of django-scim2's venv: `$DJANGO_SCIM_PYTHON`, else
/// `tests/support/django_scim/.venv/bin/python` in the checkout.
///
/// Panics when there is none: a test that needs the server must fail, not pass without it.
pub fn require_django_scim_python() -> PathBuf {
    if let Some(bin) = env::var_os("DJANGO_SCIM_PYTHON").filter(|b| !b.is_empty()) {
        let bin = PathBuf::from(bin);
        assert!(bin.is_file(), "DJANGO_SCIM_PYTHON={} does not exist: run scripts/test.sh", bin.display());
        return bin;
    }
    let bin = super::repo_root().join("tests/support/django_scim/.venv/bin/python");
    assert!(
        bin.is_file(),
        "{} not found: run scripts/test.sh, which installs django-scim2 as \
         tests/support/django_scim/requirements.txt pins it (or set DJANGO_SCIM_PYTHON)",
        bin.display()
    );
    bin
}

/// A running `server.py`, killed when this is dropped.
pub struct DjangoScim {
    /// `http://127.0.0.1:PORT/scim/v2`, no trailing slash.
    pub base_url: String,
    /// The bearer token it accepts (any other gets 401).
    pub token: String,
    port: u16,
    child: Child,
}

impl DjangoScim {
    /// Starts a server with an empty database and a fresh token on a free loopback port.
    pub fn start() -> DjangoScim {
        let python = require_django_scim_python();
        let script = super::repo_root().join("tests/support/django_scim/server.py");
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let token = format!("django-scim-test-{}-{nanos:x}", std::process::id());
        let mut cmd = Command::new(python);
        cmd.arg(script).args(["--port", "0"]).env("DJANGO_SCIM_TOKEN", &token);
        let (child, port) =
            spawn_listening(cmd, "the django-scim2 SCIM server (tests/support/django_scim/server.py)");
        DjangoScim { base_url: format!("http://127.0.0.1:{port}/scim/v2"), token, port, child }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`, without the `/scim/v2` prefix: what a fault proxy forwards to.
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Plain HTTP access with the token, to look at or prepare the server's state.
    pub fn raw(&self) -> super::scim_server::Raw {
        super::scim_server::Raw::new(&self.base_url, &self.token)
    }
}

impl Drop for DjangoScim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

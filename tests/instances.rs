//! Many directories on one host, as `scimsync@NAME` runs them: two `scimsync run` daemons side
//! by side against two tenants of the real scim2-server, each on a config of its own with no
//! `state.path` and no token file — the state in its `$STATE_DIRECTORY`, the token from its
//! `$CREDENTIALS_DIRECTORY`, as systemd hands them over — and a metrics port of its own.

use crate::daemon::{directory, free_port, http_get, site, users, Daemon, YEARLY};
use crate::support::site::{person, Site};
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// One instance: its site (config, source, tenant) and what systemd would give it.
struct Instance {
    site: Site,
    state_dir: PathBuf,
    credentials: PathBuf,
    port: u16,
}

impl Instance {
    /// An instance whose source holds `people`; its config, like `/etc/scimsync/NAME.toml`,
    /// names neither a state path nor a token file.
    fn new(people: &[(&str, u32)]) -> Instance {
        let port = free_port();
        let site = site(YEARLY, "", &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"));
        let text = std::fs::read_to_string(&site.config).unwrap();
        let text: String = text
            .lines()
            .filter(|l| {
                !l.starts_with("token_file = ")
                    && *l != "[state]"
                    && !(l.starts_with("path = ") && l.ends_with("state.db\""))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(!text.contains("state.db") && !text.contains("token"), "{text}");
        std::fs::write(&site.config, text).unwrap();
        let state_dir = site.dir.path().join("state");
        std::fs::create_dir(&state_dir).unwrap();
        let credentials = site.dir.path().join("credentials");
        std::fs::create_dir(&credentials).unwrap();
        let token = credentials.join("target.token");
        std::fs::write(&token, &site.token).unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o400)).unwrap();
        site.write_source(&directory(people));
        Instance { site, state_dir, credentials, port }
    }

    fn env(&self) -> [(&'static str, &str); 2] {
        [
            ("STATE_DIRECTORY", self.state_dir.to_str().unwrap()),
            ("CREDENTIALS_DIRECTORY", self.credentials.to_str().unwrap()),
        ]
    }

    fn start(&self) -> Daemon {
        Daemon::start(&self.site, &self.env())
    }

    /// The userNames in the instance's state database.
    fn managed(&self) -> BTreeSet<String> {
        let store = scimsync::store::Store::open(&self.state_dir.join("state.db")).unwrap();
        store.load_snapshot().unwrap().users.values().map(|u| u.user_name().to_owned()).collect()
    }

    /// The userNames in the instance's tenant.
    fn in_target(&self) -> BTreeSet<String> {
        users(&self.site).into_keys().collect()
    }
}

fn names(people: &[&str]) -> BTreeSet<String> {
    people.iter().map(|p| format!("{p}@example.com")).collect()
}

#[test]
fn two_instances_run_side_by_side_each_on_its_own_state_token_and_port() {
    let acme = Instance::new(&[("ann", 1), ("ben", 2)]);
    let globex = Instance::new(&[("cat", 3), ("dan", 4), ("eve", 5)]);
    let mut acme_daemon = acme.start();
    let mut globex_daemon = globex.start();
    acme_daemon.wait_for("Run finished.", 1, 60);
    globex_daemon.wait_for("Run finished.", 1, 60);

    // Each applied its own source to its own tenant and recorded only its own users, in the
    // state directory systemd gave it.
    assert_eq!(acme.in_target(), names(&["ann", "ben"]));
    assert_eq!(globex.in_target(), names(&["cat", "dan", "eve"]));
    assert_eq!(acme.managed(), names(&["ann", "ben"]));
    assert_eq!(globex.managed(), names(&["cat", "dan", "eve"]));

    // Each holds the lock of its own state database, and serves its own metrics.
    for (instance, daemon) in [(&acme, &acme_daemon), (&globex, &globex_daemon)] {
        let lock = std::fs::read_to_string(instance.state_dir.join("state.db.lock")).unwrap();
        assert_eq!(lock.trim(), daemon.pid().to_string());
        let (code, body) = http_get(instance.port, "/healthz");
        assert_eq!(code, 200, "{body}");
        assert!(body.starts_with("ok: run #1 finished ok"), "{body}");
    }
    let (_, acme_metrics) = http_get(acme.port, "/metrics");
    assert!(acme_metrics.contains("scimsync_source_records_read 2"), "{acme_metrics}");
    let (_, globex_metrics) = http_get(globex.port, "/metrics");
    assert!(globex_metrics.contains("scimsync_source_records_read 3"), "{globex_metrics}");

    // A third process on acme's config is refused by acme's lock, naming acme's daemon...
    let third = acme.site.command(&["sync"]).envs(acme.env()).output().unwrap();
    let stderr = String::from_utf8_lossy(&third.stderr);
    assert_eq!(third.status.code(), Some(1), "{stderr}");
    let lock = acme.state_dir.join("state.db.lock");
    let want = format!("another scimsync (pid {}) holds the lock on {}", acme_daemon.pid(), lock.display());
    assert!(stderr.contains(&want), "{stderr}");

    // ...while globex goes on: a new person in its export reaches its tenant only.
    let mut more = directory(&[("cat", 3), ("dan", 4), ("eve", 5)]);
    more.push_str(&person("fay", "Given", "Sn6", 6, &[]));
    globex.site.write_source(&more);
    globex_daemon.wait_for("Run finished.", 2, 60);
    assert_eq!(globex.in_target(), names(&["cat", "dan", "eve", "fay"]));
    assert_eq!(globex.managed(), names(&["cat", "dan", "eve", "fay"]));
    assert_eq!(acme.in_target(), names(&["ann", "ben"]));
    assert_eq!(acme_daemon.messages("Run finished.").len(), 1, "{}", acme_daemon.text());

    for daemon in [&mut acme_daemon, &mut globex_daemon] {
        daemon.signal(libc::SIGTERM);
        assert_eq!(daemon.wait_exit(30).code(), Some(0), "{}", daemon.text());
    }
}

//! The live LDAP source in real runs: the `scimsync` binary reading a real slapd
//! (`support::slapd_live`) and writing to a real SCIM server (scim2-server). A read that breaks
//! off changes nothing, the daemon runs when the directory's change marker moves (and falls back
//! to its schedule when there is none), and a refused bind names the account, not the password.

use crate::cli_support::toml_path;
use crate::daemon::{users, wait_until, Daemon, YEARLY};
use crate::support::scim_server::ScimServer;
use crate::support::site::Site;
use crate::support::slapd_live::{write_directory, LiveSlapd, LiveSlapdOptions};
use rusqlite::types::Value as SqlValue;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// A slapd over `write_directory(users)` (no groups); the input's directory goes with it.
fn slapd(users: usize, opts: LiveSlapdOptions) -> (TempDir, LiveSlapd) {
    let input_dir = tempfile::tempdir().unwrap();
    let input = input_dir.path().join("directory.ldif");
    write_directory(&input, users, 0);
    let slapd = LiveSlapd::start(&input, opts);
    (input_dir, slapd)
}

/// The `[source]` body reading `slapd` as its service account (the default filters), plus
/// `extra` keys.
fn ldap_source(slapd: &LiveSlapd, password_file: &str, extra: &str) -> String {
    format!(
        "kind = \"ldap\"\nurl = \"{}\"\nbind_dn = \"{}\"\npassword_file = {password_file}\nbase_dn = \"{}\"\n{extra}",
        slapd.url(),
        slapd.bind_dn(),
        slapd.base_dn(),
    )
}

/// Every row of the snapshot tables, in key order.
fn snapshot_rows(db: &Path) -> Vec<(&'static str, Vec<Vec<SqlValue>>)> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("open {}: {e}", db.display()));
    [
        ("users", "SELECT * FROM users ORDER BY key"),
        ("groups", "SELECT * FROM groups ORDER BY key"),
        ("memberships", "SELECT * FROM memberships ORDER BY group_key, user_key"),
    ]
    .into_iter()
    .map(|(table, sql)| {
        let mut stmt = conn.prepare(sql).unwrap();
        let columns = stmt.column_count();
        let rows = stmt
            .query_map([], |r| (0..columns).map(|i| r.get::<_, SqlValue>(i)).collect::<Result<Vec<_>, _>>())
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        (table, rows)
    })
    .collect()
}

/// How many searches slapd has answered in `log` (`-d stats`: one `SEARCH RESULT` per page).
fn search_results(log: &str) -> usize {
    log.lines().filter(|l| l.contains("SEARCH RESULT")).count()
}

#[test]
fn slapd_killed_in_the_middle_of_a_read_fails_the_run_and_changes_nothing() {
    const USERS: usize = 5_000;
    const PAGE: usize = 2;
    // A plain search stops at 100 entries: only paging reads the directory.
    let (_input, mut slapd) = slapd(USERS, LiveSlapdOptions { size_limit: Some(100), ..Default::default() });
    let site = Site::new(ScimServer::shared(), "concurrency = 8", "");
    let pw = toml_path(&slapd.password_file());
    site.set_source(&ldap_source(
        &slapd,
        &pw,
        &format!("page_size = {PAGE}\nmax_retries = 1\ntimeout_secs = 5\nconnect_timeout_secs = 2\n"),
    ));

    let started = Instant::now();
    site.sync_ok();
    eprintln!("the first sync of {USERS} users took {:?}", started.elapsed());
    let before_users = users(&site);
    assert_eq!(before_users.len(), USERS);
    assert!(before_users.values().all(|u| u["active"] == true));
    let db = site.dir.path().join("state.db");
    let before_rows = snapshot_rows(&db);
    assert_eq!(before_rows[0].1.len(), USERS, "the snapshot holds every user");

    // The second sync, killed in the middle of its read.
    let log_start = slapd.stats().len();
    let out_path = site.dir.path().join("second.out");
    let err_path = site.dir.path().join("second.err");
    let read_started = Instant::now();
    let mut child = site
        .command(&["sync"])
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .stdin(Stdio::null())
        .spawn()
        .expect("start scimsync sync");
    let pages_at_kill = wait_until("the paged search under way", 60, || {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sync ended before slapd was killed:\n{}",
            std::fs::read_to_string(&err_path).unwrap_or_default()
        );
        let n = search_results(&slapd.stats()[log_start..]);
        (n >= 5).then_some(n)
    });
    // SAFETY: kill(2) on the slapd child of this test, not yet reaped.
    assert_eq!(unsafe { libc::kill(slapd.pid() as libc::pid_t, libc::SIGSTOP) }, 0);
    let killed_after = read_started.elapsed();
    let log_at_kill = slapd.stats();
    slapd.kill();
    let pages_total = search_results(&log_at_kill[log_start..]);
    assert!(
        pages_total < USERS / PAGE,
        "slapd was stopped after {pages_total} pages: the read of {} pages was nearly over",
        USERS / PAGE
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the sync did not end within 60 s of the kill");
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap();
    let stdout = std::fs::read_to_string(&out_path).unwrap();
    eprintln!(
        "slapd stopped {killed_after:?} into the read, after {pages_at_kill}..{pages_total} pages; \
         the sync exited {status}"
    );
    assert!(!status.success(), "the sync succeeded:\n{stdout}\n{stderr}");
    assert!(
        stderr.contains("reading the source failed; nothing was planned or applied"),
        "{status}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );

    let after_users = users(&site);
    assert_eq!(after_users.len(), USERS, "users on the target");
    let inactive: Vec<&String> =
        after_users.iter().filter(|(_, u)| u["active"] != true).map(|(n, _)| n).collect();
    assert!(inactive.is_empty(), "deactivated after a failed read: {inactive:?}");
    let after_rows = snapshot_rows(&db);
    for ((table, before), (_, after)) in before_rows.iter().zip(&after_rows) {
        assert!(before == after, "the {table} table changed ({} rows -> {})", before.len(), after.len());
    }
}

#[test]
fn the_change_marker_triggers_a_run_within_seconds() {
    let (_input, slapd) = slapd(3, LiveSlapdOptions { syncprov: true, ..Default::default() });
    let site = crate::daemon::site(YEARLY, "", "");
    let pw = toml_path(&slapd.password_file());
    site.set_source(&ldap_source(&slapd, &pw, "change_poll_secs = 1\n"));
    let mut d = Daemon::start(&site, &[]);
    let first = d.wait_for("Run finished.", 1, 30);
    assert_eq!(first["trigger"], "startup", "{first}");
    assert_eq!(first["outcome"], "ok", "{first}");
    assert_eq!(users(&site).len(), 3);

    let added = Instant::now();
    slapd.modify(
        "dn: uid=newcomer,ou=people,dc=example,dc=com\nchangetype: add\nobjectClass: inetOrgPerson\n\
         uid: newcomer\ncn: New Comer\nsn: Comer\ngivenName: New\nmail: newcomer@example.com\n",
    );
    let second = d.wait_for("Run finished.", 2, 10);
    assert_eq!(second["trigger"], "source_changed", "{}", d.text());
    assert_eq!(second["outcome"], "ok", "{second}");
    wait_until("the new user on the target", 10u64.saturating_sub(added.elapsed().as_secs()), || {
        users(&site).contains_key("newcomer@example.com").then_some(())
    });
    eprintln!("the new entry reached the target {:?} after the add", added.elapsed());
    assert!(added.elapsed() < Duration::from_secs(10));
    assert_eq!(d.messages("The directory changed: a run is requested.").len(), 1, "{}", d.text());

    // Nothing changes: no more runs over several poll intervals.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(d.messages("Run starting.").len(), 2, "{}", d.text());
    assert_eq!(d.messages("Run finished.").len(), 2, "{}", d.text());

    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(30).code(), Some(0), "{}", d.text());
}

#[test]
fn a_directory_without_a_change_marker_falls_back_to_the_schedule_with_one_warning() {
    let (_input, slapd) = slapd(3, LiveSlapdOptions::default());
    let site = crate::daemon::site(YEARLY, "", "");
    let pw = toml_path(&slapd.password_file());
    site.set_source(&ldap_source(&slapd, &pw, "change_poll_secs = 1\n"));
    let mut d = Daemon::start(&site, &[]);
    let first = d.wait_for("Run finished.", 1, 30);
    assert_eq!(first["outcome"], "ok", "{first}");

    // Several poll intervals, with a change the daemon cannot see without a marker.
    slapd.modify("dn: uid=user1,ou=people,dc=example,dc=com\nchangetype: modify\nreplace: sn\nsn: Changed\n");
    std::thread::sleep(Duration::from_secs(5));
    let warnings: Vec<String> = d
        .text()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["level"] == "WARN")
        .filter_map(|e| e["fields"]["message"].as_str().map(str::to_owned))
        .filter(|m| m.contains("change marker"))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}\n{}", d.text());
    assert!(
        warnings[0].contains("keeps no change marker") && warnings[0].contains("syncprov"),
        "{}",
        warnings[0]
    );
    assert_eq!(d.messages("Run starting.").len(), 1, "only the start-up run:\n{}", d.text());
    assert_eq!(d.messages("The directory changed: a run is requested.").len(), 0);

    // Still running: it takes SIGTERM as an idle daemon does.
    assert!(d.messages("Stopped.").is_empty(), "{}", d.text());
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(30).code(), Some(0), "{}", d.text());
    let stopping = d.wait_for("Stopping: finishing the operations in flight.", 1, 1);
    assert_eq!(stopping["running"], false, "{stopping}");
}

#[test]
fn a_wrong_password_fails_the_read_naming_the_bind() {
    const WRONG: &str = "Wr0ng-Pa55-b7e1c9";
    let (_input, slapd) = slapd(3, LiveSlapdOptions::default());
    let site = Site::new(ScimServer::shared(), "", "");
    let pw = site.write_secret("wrong.pw", WRONG);
    site.set_source(&ldap_source(&slapd, &pw, "max_retries = 2\n"));
    let run = site.scimsync(&["sync"]);
    assert_ne!(run.code, Some(0), "{run}");
    assert!(run.code.is_some(), "killed by a signal: {run}");
    let out = format!("{}\n{}", run.stdout, run.stderr);
    assert!(out.contains("reading the source failed; nothing was planned or applied"), "{run}");
    assert!(out.contains("invalidCredentials") || out.contains("49"), "{run}");
    assert!(out.contains(slapd.bind_dn()), "the bind DN is named: {run}");
    assert!(!out.contains(WRONG), "the password is in the output: {run}");
    assert!(users(&site).is_empty(), "nothing was applied");
    // An authentication failure is not tried again.
    let binds = slapd
        .stats()
        .lines()
        .filter(|l| l.contains("BIND dn=\"cn=scimsync") && l.contains("method=128"))
        .count();
    assert_eq!(binds, 1, "{}", slapd.stats());
}

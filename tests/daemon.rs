//! `scimsync run` as a real process against a real SCIM server (scim2-server, one tenant per
//! test): schedule and file watch, SIGHUP reloads, SIGTERM mid-run, the instance lock,
//! `/healthz` and `/metrics`, and the systemd notifications.

use crate::support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use support::rt;
use support::scim_server::ScimServer;
use support::site::{person, Site};

/// Every second: the tests do not wait for a schedule.
const EVERY_SECOND: &str = "* * * * * *";
/// Once a year: only the start-up run and file changes trigger runs.
pub(crate) const YEARLY: &str = "0 0 0 1 1 *";

pub(crate) fn directory(people: &[(&str, u32)]) -> String {
    people.iter().map(|(uid, n)| person(uid, "Given", &format!("Sn{n}"), *n, &[])).collect()
}

pub(crate) fn site(cron: &str, target_extra: &str, more: &str) -> Site {
    let extra = format!("[schedule]\ncron = \"{cron}\"\nwatch = true\n\n{more}");
    Site::new(ScimServer::shared(), target_extra, &extra)
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub(crate) fn wait_until<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out after {secs} s waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A `scimsync --log-format json run` process; killed if a test ends without stopping it.
pub(crate) struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    pub(crate) fn start(site: &Site, env: &[(&str, &str)]) -> Daemon {
        let n = std::fs::read_dir(site.dir.path()).unwrap().count();
        let log = site.dir.path().join(format!("daemon-{n}.log"));
        let mut cmd = site.command(&["--log-format", "json", "run"]);
        // Never notify a service manager the test itself may run under.
        for var in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
            cmd.env_remove(var);
        }
        cmd.envs(env.iter().copied()).stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap());
        Daemon { child: cmd.spawn().expect("start scimsync run"), log }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log lines, parsed.
    fn events(&self) -> Vec<Value> {
        self.text().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    pub(crate) fn messages(&self, message: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["fields"]["message"] == message)
            .map(|e| e["fields"].clone())
            .collect()
    }

    /// Waits until `message` has been logged `n` times; returns the fields of the n-th.
    pub(crate) fn wait_for(&self, message: &str, n: usize, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let found = self.messages(message);
            if found.len() >= n {
                return found[n - 1].clone();
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {secs} s waiting for {message:?} #{n}; log:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.pid() as i32, sig) }, 0, "kill -{sig}");
    }

    pub(crate) fn wait_exit(&mut self, secs: u64) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "scimsync run did not exit within {secs} s; log:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Every user of the tenant by userName (paged: the server caps a page at 1000).
pub(crate) fn users(site: &Site) -> BTreeMap<String, Value> {
    let all = rt().block_on(site.raw().all_users());
    all.into_iter().map(|u| (u["userName"].as_str().unwrap().to_owned(), u)).collect()
}

/// `GET path` on the metrics endpoint: (status, body).
pub(crate) fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to metrics.listen");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

fn status_json(site: &Site) -> Value {
    let run = site.scimsync(&["status", "--format", "json"]);
    assert_eq!(run.code, Some(0), "{run}");
    serde_json::from_str(&run.stdout).unwrap()
}

/// Runs never overlap: "Run starting." and "Run finished."/"Run failed." alternate.
fn assert_runs_alternate(d: &Daemon) {
    let mut running = false;
    for e in d.events() {
        match e["fields"]["message"].as_str() {
            Some("Run starting.") => {
                assert!(!running, "a run started while another was going:\n{}", d.text());
                running = true;
            }
            Some("Run finished." | "Run failed.") => running = false,
            _ => {}
        }
    }
}

#[test]
fn a_replaced_export_reaches_the_target_within_seconds() {
    let site = site(EVERY_SECOND, "", "");
    site.write_source(&directory(&[("ann", 1), ("ben", 2)]));
    let mut d = Daemon::start(&site, &[]);
    wait_until("the first users", 30, || (users(&site).len() == 2).then_some(()));

    let mut text = person("ann", "Given", "Renamed", 1, &[]);
    text.push_str(&directory(&[("ben", 2), ("cat", 3)]));
    let replaced = Instant::now();
    site.write_source(&text);
    wait_until("the new export in the target", 10, || {
        let all = users(&site);
        (all.contains_key("cat@example.com") && all["ann@example.com"]["name"]["familyName"] == "Renamed")
            .then_some(())
    });
    eprintln!("the change reached the target {:?} after the rename", replaced.elapsed());
    // Every applied change is logged inside its run's span.
    let applied: Vec<Value> =
        d.events().into_iter().filter(|e| e["fields"]["message"] == "Applied.").collect();
    assert!(!applied.is_empty());
    assert!(applied.iter().all(|e| e["span"]["name"] == "run" && e["span"]["run"].is_i64()), "{applied:?}");
    assert_runs_alternate(&d);

    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(30).code(), Some(0), "{}", d.text());
}

#[test]
fn a_file_change_triggers_one_run_without_waiting_for_the_schedule() {
    let site = site(YEARLY, "", "");
    site.write_source(&directory(&[("ann", 1)]));
    let mut d = Daemon::start(&site, &[]);
    let first = d.wait_for("Run finished.", 1, 30);
    assert_eq!(first["trigger"], "startup");

    // A burst of rewrites (in place and by rename) within the debounce: one run.
    for i in 0..5u32 {
        let people: Vec<(String, u32)> = (0..=i).map(|n| (format!("p{n}"), 10 + n)).collect();
        let refs: Vec<(&str, u32)> = people.iter().map(|(u, n)| (u.as_str(), *n)).collect();
        let text = directory(&refs);
        if i % 2 == 0 {
            site.write_source(&text);
        } else {
            std::fs::write(&site.source, text).unwrap();
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    let second = d.wait_for("Run finished.", 2, 15);
    assert_eq!(second["trigger"], "source_changed", "{}", d.text());
    assert_eq!(second["outcome"], "ok", "{second}");
    let all = users(&site);
    assert!((0..5).all(|n| all.contains_key(&format!("p{n}@example.com"))), "{all:#?}");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(d.messages("Run finished.").len(), 2, "one run for the burst:\n{}", d.text());

    d.signal(libc::SIGINT);
    assert_eq!(d.wait_exit(30).code(), Some(0), "{}", d.text());
}

#[test]
fn sighup_with_a_broken_config_keeps_the_old_one_and_a_good_one_is_taken() {
    let site = site(EVERY_SECOND, "", "");
    site.write_source(&directory(&[("ann", 1)]));
    let mut d = Daemon::start(&site, &[]);
    d.wait_for("Run finished.", 1, 30);
    let good = std::fs::read_to_string(&site.config).unwrap();

    std::fs::write(&site.config, format!("{good}\n[surprise]\nkey = 1\n")).unwrap();
    d.signal(libc::SIGHUP);
    let kept = d.wait_for("Kept the previous config: the new one is not usable.", 1, 10);
    let error = kept["error"].as_str().unwrap();
    assert!(error.contains("surprise") && error.contains("unknown section"), "{kept}");
    // Still running on the old config: a new export is applied.
    let runs = d.messages("Run finished.").len();
    site.write_source(&directory(&[("ann", 1), ("ben", 2)]));
    wait_until("ben in the target", 15, || users(&site).contains_key("ben@example.com").then_some(()));
    d.wait_for("Run finished.", runs + 1, 10);

    // A good config is taken: here a yearly schedule.
    std::fs::write(&site.config, good.replace(EVERY_SECOND, YEARLY)).unwrap();
    d.signal(libc::SIGHUP);
    let reloaded = d.wait_for("Reloaded the config.", 1, 10);
    assert_eq!(reloaded["cron"], YEARLY);
    assert!(d.messages("Kept the previous config: the new one is not usable.").len() == 1);

    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(30).code(), Some(0), "{}", d.text());
}

#[test]
fn sigterm_during_a_large_run_commits_what_was_sent_and_exits_0() {
    const USERS: u32 = 3_000;
    let site = site(YEARLY, "concurrency = 8", "");
    let people: Vec<(String, u32)> = (0..USERS).map(|i| (format!("u{i:05}"), i)).collect();
    let refs: Vec<(&str, u32)> = people.iter().map(|(u, n)| (u.as_str(), *n)).collect();
    site.write_source(&directory(&refs));
    let mut d = Daemon::start(&site, &[]);
    d.wait_for("Applied.", 200, 60);
    d.signal(libc::SIGTERM);
    let status = d.wait_exit(60);
    assert_eq!(status.code(), Some(0), "{}", d.text());
    let stopping = d.wait_for("Stopping: finishing the operations in flight.", 1, 1);
    assert_eq!(stopping["running"], true, "the signal came during the run");
    let applied = d.messages("Applied.").len();
    assert!(applied < USERS as usize, "the run stopped early ({applied} applied)");

    let db = site.dir.path().join("state.db");
    {
        let store = scimsync::store::Store::open(&db).unwrap();
        assert_eq!(store.integrity_check().unwrap(), "ok");
        assert!(store.journal_pending().unwrap().is_empty(), "operations in flight were committed");
    }
    let runs = status_json(&site)["runs"].clone();
    assert_eq!(runs[0]["outcome"], "interrupted", "{runs:#}");
    assert_eq!(users(&site).len(), applied, "the target has exactly what was committed");

    // The next run converges.
    site.sync_ok();
    let store = scimsync::store::Store::open(&db).unwrap();
    assert!(store.journal_pending().unwrap().is_empty());
    assert_eq!(store.integrity_check().unwrap(), "ok");
    assert_eq!(users(&site).len(), USERS as usize);
    let plan = site.scimsync(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, Some(0), "{plan}");
}

#[test]
fn a_second_instance_on_the_same_state_is_refused_naming_the_holder() {
    let site = site(YEARLY, "", "");
    site.write_source(&directory(&[("ann", 1)]));
    let mut d = Daemon::start(&site, &[]);
    d.wait_for("Started.", 1, 30);
    let lock = site.dir.path().join("state.db.lock");
    let want = format!("another scimsync (pid {}) holds the lock on {}", d.pid(), lock.display());
    for args in [&["run"][..], &["sync"][..]] {
        let second = site.scimsync(args);
        assert_eq!(second.code, Some(1), "{second}");
        assert!(second.stderr.contains(&want), "{args:?}: {second}");
    }
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(30).code(), Some(0), "{}", d.text());
    // Free again once the daemon is gone.
    site.sync_ok();
}

/// `name{labels} value` lines of a metrics text.
pub(crate) fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_agree_with_status_and_healthz_follows_the_last_run() {
    let port = free_port();
    let more = format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n");
    let site = site(YEARLY, "token_expires = \"2099-12-31\"", &more);
    site.write_source(&directory(&[("ann", 1), ("ben", 2), ("cat", 3)]));
    let d = Daemon::start(&site, &[]);
    d.wait_for("Started.", 1, 30);
    let (code, body) = http_get(port, "/healthz");
    if d.messages("Run finished.").is_empty() {
        assert_eq!((code, body.trim()), (503, "no run has finished yet"));
    }
    d.wait_for("Run finished.", 1, 30);
    let (code, body) = http_get(port, "/healthz");
    assert_eq!(code, 200, "{body}");
    assert!(body.starts_with("ok: run #1 finished ok"), "{body}");

    let check = |site: &Site| {
        let (code, text) = http_get(port, "/metrics");
        assert_eq!(code, 200, "{text}");
        let status = status_json(site);
        let totals = &status["totals"];
        for c in totals["runs"].as_array().unwrap() {
            let series = format!(
                "scimsync_runs_total{{kind=\"{}\",outcome=\"{}\"}}",
                c["kind"].as_str().unwrap(),
                c["outcome"].as_str().unwrap()
            );
            assert_eq!(metric(&text, &series), c["count"].as_f64(), "{series}\n{text}");
        }
        let runs = text.lines().filter(|l| l.starts_with("scimsync_runs_total{")).count();
        assert_eq!(runs, totals["runs"].as_array().unwrap().len(), "{text}");
        for c in totals["operations"].as_array().unwrap() {
            let series = format!(
                "scimsync_operations_total{{kind=\"{}\",outcome=\"{}\"}}",
                c["kind"].as_str().unwrap(),
                c["outcome"].as_str().unwrap()
            );
            assert_eq!(metric(&text, &series), c["count"].as_f64(), "{series}\n{text}");
        }
        assert_eq!(
            metric(&text, "scimsync_held_operations"),
            Some(status["held"].as_array().unwrap().len() as f64)
        );
        assert_eq!(metric(&text, "scimsync_token_days_left"), status["token_days_left"].as_f64());
        assert_eq!(metric(&text, "scimsync_last_success_timestamp_seconds"), totals["last_success"].as_f64());
        text
    };
    let text = check(&site);
    assert_eq!(metric(&text, "scimsync_runs_total{kind=\"sync\",outcome=\"ok\"}"), Some(1.0), "{text}");
    assert_eq!(metric(&text, "scimsync_operations_total{kind=\"create_user\",outcome=\"done\"}"), Some(3.0));
    assert_eq!(metric(&text, "scimsync_source_records_read"), Some(3.0), "{text}");

    // A source that cannot be read: the run fails, /healthz says so, the totals still agree.
    site.write_source("dn: uid=x,dc=example,dc=com\nchangetype: modify\nreplace: mail\n\n");
    d.wait_for("Run failed.", 1, 15);
    let (code, body) = http_get(port, "/healthz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("failed") && body.contains("reading the source failed"), "{body}");
    let text = check(&site);
    assert_eq!(metric(&text, "scimsync_runs_total{kind=\"sync\",outcome=\"failed\"}"), Some(1.0), "{text}");
    assert_eq!(http_get(port, "/nothing").0, 404);
}

#[test]
fn systemd_hears_ready_status_watchdog_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let site = site(YEARLY, "", "");
    site.write_source(&directory(&[("ann", 1), ("ben", 2)]));
    let socket_path = site.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let socket_env = socket_path.to_str().unwrap().to_owned();
    let mut d = Daemon::start(&site, &[("NOTIFY_SOCKET", &socket_env), ("WATCHDOG_USEC", "400000")]);
    let mut heard: Vec<String> = Vec::new();
    let mut buf = [0u8; 4096];
    let mut listen = |heard: &mut Vec<String>, until: &dyn Fn(&[String]) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !until(heard) {
            assert!(Instant::now() < deadline, "heard only {heard:?}");
            if let Ok(n) = socket.recv(&mut buf) {
                heard.extend(String::from_utf8_lossy(&buf[..n]).lines().map(str::to_owned));
            }
        }
    };
    listen(&mut heard, &|h| {
        h.iter().any(|l| l == "READY=1")
            && h.iter().any(|l| l.starts_with("STATUS=last run ") && l.ends_with(": 2 users created"))
            && h.iter().filter(|l| *l == "WATCHDOG=1").count() >= 3
    });
    let ready = heard.iter().position(|l| l == "READY=1").unwrap();
    let status = heard.iter().position(|l| l.starts_with("STATUS=last run ")).unwrap();
    assert!(ready < status, "READY before the first run's status: {heard:?}");
    d.signal(libc::SIGTERM);
    listen(&mut heard, &|h| h.iter().any(|l| l == "STOPPING=1"));
    assert_eq!(d.wait_exit(30).code(), Some(0), "{}", d.text());
}

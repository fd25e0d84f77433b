//! Notifications (`[notify]`) end to end, as real processes against a real SCIM server
//! (scim2-server): a webhook receiver started here on loopback (a small HTTP server recording
//! what it is sent), and a real SMTP server (aiosmtpd, saving to a maildir). Each state is told
//! once; failing to notify never fails a run and is counted on `/metrics`.

use crate::daemon::{free_port, http_get, metric, Daemon};
use crate::support;

use serde_json::Value;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::scim_server::ScimServer;
use support::site::{person, Site};

/// The webhook's secret, in its path as Slack puts it: never in a log or a message.
const HOOK_SECRET: &str = "T000/B000/hook-s3cret";
const WRONG_TOKEN: &str = "wr0ng-t0ken-for-notify";

/// A webhook receiver on loopback: records each JSON body and answers `status`.
struct Receiver {
    port: u16,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    fn start(status: u16) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Some(body) = answer(stream, status) {
                    kept.lock().unwrap().push(body);
                }
            }
        });
        Receiver { port, bodies }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/services/{HOOK_SECRET}", self.port)
    }

    fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }

    fn events(&self) -> Vec<String> {
        self.bodies().iter().map(|b| b["event"].as_str().unwrap_or("?").to_owned()).collect()
    }
}

/// Reads one request (its body by Content-Length), answers `status`; the body as JSON.
fn answer(stream: TcpStream, status: u16) -> Option<Value> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    assert!(line.starts_with("POST /services/"), "the webhook was sent {line:?}");
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let mut stream = stream;
    let _ = write!(stream, "HTTP/1.1 {status} Answer\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    serde_json::from_slice(&body).ok()
}

/// The Python with aiosmtpd: `$AIOSMTPD_PYTHON`, else the checkout's `.venv/bin/python`.
fn aiosmtpd_python() -> PathBuf {
    let python = std::env::var_os("AIOSMTPD_PYTHON")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| support::repo_root().join(".venv/bin/python"));
    let ok = Command::new(&python).args(["-c", "import aiosmtpd"]).output().is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{} cannot import aiosmtpd: run scripts/test.sh, which installs the pinned aiosmtpd into .venv/ (or set AIOSMTPD_PYTHON)",
        python.display()
    );
    python
}

/// aiosmtpd on loopback, saving every mail to a maildir.
struct SmtpServer {
    child: Child,
    port: u16,
    maildir: tempfile::TempDir,
}

impl SmtpServer {
    fn start() -> SmtpServer {
        SmtpServer::start_with(&[])
    }

    /// With aiosmtpd's TLS options (`--tlscert`/`--tlskey` for STARTTLS, required by it;
    /// `--smtpscert`/`--smtpskey` for TLS from the first byte).
    fn start_with(tls: &[&str]) -> SmtpServer {
        SmtpServer::spawn(|port, mail| {
            let mut cmd = Command::new(aiosmtpd_python());
            cmd.args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
                .args(tls)
                .args(["-c", "aiosmtpd.handlers.Mailbox"])
                .arg(mail);
            cmd
        })
    }

    /// aiosmtpd with STARTTLS (the test certificate) and SMTP AUTH required, accepting only
    /// `user` / `password` (`tests/support/smtp_auth.py`).
    fn start_auth(user: &str, password: &str) -> SmtpServer {
        let tls = |name: &str| support::test_data(&format!("tls/{name}"));
        SmtpServer::spawn(|port, mail| {
            let mut cmd = Command::new(aiosmtpd_python());
            cmd.arg(support::repo_root().join("tests/support/smtp_auth.py"))
                .arg(port.to_string())
                .arg(mail)
                .args([tls("server.pem"), tls("server.key")])
                .args([user, password])
                .stdin(Stdio::piped());
            cmd
        })
    }

    /// Runs the server `command(port, maildir)` makes on a free port and waits until it listens.
    fn spawn(command: impl FnOnce(u16, PathBuf) -> Command) -> SmtpServer {
        let maildir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = command(port, maildir.path().join("mail"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not listen on {port} within 20 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        SmtpServer { child, port, maildir }
    }

    /// The mails received, as text.
    fn mails(&self) -> Vec<String> {
        let new = self.maildir.path().join("mail/new");
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(new).into_iter().flatten().flatten().map(|e| e.path()).collect();
        files.sort();
        files.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn people(range: std::ops::Range<u32>) -> String {
    range.map(|i| person(&format!("p{i:02}"), "Given", &format!("Sn{i}"), i, &[])).collect()
}

/// A site whose daemon runs every second and takes a file change at once.
fn site(target_extra: &str, notify: &str) -> Site {
    let extra = format!(
        "[schedule]\ncron = \"* * * * * *\"\nwatch = false\nsettle_seconds = 0\n\n[notify]\n{notify}\n"
    );
    Site::new(ScimServer::shared(), target_extra, &extra)
}

fn no_secret_in(bodies: &[Value], site: &Site) {
    for b in bodies {
        let text = b.to_string();
        for secret in [site.token.as_str(), WRONG_TOKEN, HOOK_SECRET] {
            assert!(!text.contains(secret), "{secret:?} in a notification: {text}");
        }
    }
}

fn config_path(site: &Site) -> String {
    std::fs::canonicalize(&site.config).unwrap().display().to_string()
}

#[test]
fn a_held_run_is_told_once_with_the_approve_command() {
    let hook = Receiver::start(200);
    let site = site("", &format!("webhook_url = {:?}", hook.url()));
    site.write_source(&people(0..30));
    site.sync_ok();
    assert_eq!(hook.events(), Vec::<String>::new(), "a good first run tells nothing");
    // 15 of 30 leave: more than the threshold, so the daemon's runs hold them.
    site.write_source(&people(0..15));
    let mut d = Daemon::start(&site, &[]);
    let first = d.wait_for("Run finished.", 1, 60);
    assert_eq!(first["outcome"], "held", "{}", d.text());
    let run = first["run"].as_i64().unwrap();
    let bodies = hook.bodies();
    assert_eq!(hook.events(), ["held"], "told within the held run: {bodies:?}");
    let held = &bodies[0];
    assert_eq!(held["run_id"], run);
    assert_eq!(held["held"], 15);
    let command = format!("scimsync approve {run} --config {}", config_path(&site));
    assert_eq!(held["approve_command"], command.as_str());
    let text = held["text"].as_str().unwrap();
    assert!(text.contains("held 15 deprovisioning") && text.contains(&command), "{text}");
    assert!(held["names"].as_array().unwrap().len() <= 3, "{held}");
    // The same hold, planned again by the next runs, is not news.
    d.wait_for("Run finished.", 3, 60);
    assert_eq!(hook.events(), ["held"], "{:?}", hook.bodies());
    no_secret_in(&hook.bodies(), &site);
    assert!(!d.text().contains(HOOK_SECRET), "the webhook's path was logged:\n{}", d.text());
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(30).code(), Some(0), "{}", d.text());
}

#[test]
fn a_failure_and_a_quarantine_are_told_once_then_the_recovery() {
    let hook = Receiver::start(200);
    let site = site("", &format!("webhook_url = {:?}", hook.url()));
    site.write_source(&people(0..3));
    site.sync_ok();
    // The source cannot be read, twice: told once.
    let export = std::fs::read_to_string(&site.source).unwrap();
    std::fs::remove_file(&site.source).unwrap();
    for _ in 0..2 {
        assert_eq!(site.scimsync(&["sync"]).code, Some(1));
    }
    assert_eq!(hook.events(), ["failed"]);
    assert_eq!(hook.bodies()[0]["reason"], "source");
    site.write_source(&export);
    site.sync_ok();
    assert_eq!(hook.events(), ["failed", "recovered"]);
    // The target refuses the token: the failure, then the quarantine, each once.
    site.write_source(&people(0..4));
    std::fs::write(site.dir.path().join("target.token"), format!("{WRONG_TOKEN}\n")).unwrap();
    for _ in 0..3 {
        assert_eq!(site.scimsync(&["sync"]).code, Some(1));
    }
    assert_eq!(hook.events(), ["failed", "recovered", "failed", "quarantine_entered"], "{:?}", hook.bodies());
    let bodies = hook.bodies();
    assert_eq!(bodies[2]["reason"], "refused");
    assert!(bodies[2]["text"].as_str().unwrap().contains("401/403"), "{}", bodies[2]);
    assert!(bodies[3]["text"].as_str().unwrap().contains("renew the token"), "{}", bodies[3]);
    // Fixed and approved: the first good run says so, with the quarantine lifted.
    std::fs::write(site.dir.path().join("target.token"), format!("{}\n", site.token)).unwrap();
    let status: Value = serde_json::from_str(&site.scimsync(&["status", "--format", "json"]).stdout).unwrap();
    let run_id = status["runs"][0]["id"].to_string();
    let approve = site.scimsync(&["approve", &run_id]);
    assert_eq!(approve.code, Some(0), "{approve}");
    let bodies = hook.bodies();
    assert_eq!(
        hook.events(),
        ["failed", "recovered", "failed", "quarantine_entered", "recovered"],
        "{bodies:?}"
    );
    assert_eq!(bodies[4]["quarantine_lifted"], true);
    site.sync_ok();
    assert_eq!(hook.bodies().len(), 5, "a good run after a good run tells nothing");
    no_secret_in(&hook.bodies(), &site);
}

/// `token_expires` as `YYYY-MM-DD`, `days` from today.
fn expires_in(days: i64) -> String {
    let date = chrono::Utc::now().date_naive() + chrono::Duration::days(days);
    format!("token_expires = \"{}\"", date.format("%Y-%m-%d"))
}

#[test]
fn a_token_expiring_in_20_days_is_told_once() {
    let hook = Receiver::start(200);
    let site = site(&expires_in(20), &format!("webhook_url = {:?}", hook.url()));
    site.write_source(&people(0..2));
    site.sync_ok();
    site.sync_ok();
    let bodies = hook.bodies();
    assert_eq!(hook.events(), ["token_expiry"], "{bodies:?}");
    assert_eq!(bodies[0]["stage"], "within_30_days");
    let days = bodies[0]["days_left"].as_i64().unwrap();
    assert!((19..=20).contains(&days), "{}", bodies[0]);
    assert!(bodies[0]["text"].as_str().unwrap().contains("plan its renewal"), "{}", bodies[0]);
    no_secret_in(&bodies, &site);
}

#[test]
fn a_webhook_answering_500_fails_no_run_and_is_counted_on_metrics() {
    let hook = Receiver::start(500);
    let port = free_port();
    let notify = format!("webhook_url = {:?}\n\n[metrics]\nlisten = \"127.0.0.1:{port}\"", hook.url());
    let site = site(&expires_in(5), &notify);
    site.write_source(&people(0..2));
    let mut d = Daemon::start(&site, &[]);
    let first = d.wait_for("Run finished.", 1, 60);
    assert_eq!(first["outcome"], "ok", "{}", d.text());
    assert_eq!(hook.events(), ["token_expiry"], "the webhook was tried");
    assert_eq!(crate::daemon::users(&site).len(), 2, "the run did its work");
    let (_, text) = http_get(port, "/metrics");
    assert_eq!(
        metric(&text, "scimsync_notifications_failed_total{channel=\"webhook\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(metric(&text, "scimsync_notifications_sent_total{channel=\"webhook\"}"), Some(0.0), "{text}");
    let warned = d.messages("Cannot notify.");
    assert_eq!(warned.len(), 1, "{}", d.text());
    assert!(warned[0]["error"].as_str().unwrap().contains("500"), "{}", warned[0]);
    assert!(!d.text().contains(HOOK_SECRET), "the webhook's path was logged:\n{}", d.text());
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(30).code(), Some(0), "{}", d.text());
}

#[test]
fn a_webhook_that_is_down_delays_no_run_beyond_its_timeout() {
    let dead = free_port();
    let notify =
        format!("webhook_url = \"http://127.0.0.1:{dead}/services/{HOOK_SECRET}\"\ntimeout_secs = 2");
    let site = site(&expires_in(5), &notify);
    site.write_source(&people(0..2));
    let started = Instant::now();
    let run = site.sync_ok();
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    assert!(run.stderr.contains("Cannot notify.") && !run.stderr.contains(HOOK_SECRET), "{run}");
}

#[test]
fn mail_reaches_a_real_smtp_server_with_sender_recipients_and_subject() {
    let smtp = SmtpServer::start();
    let notify = format!(
        "smtp_url = \"smtp://127.0.0.1:{}\"\nemail_from = \"scimsync@example.com\"\nemail_to = [\"idm-admins@example.com\", \"oncall@example.com\"]",
        smtp.port
    );
    let site = site("", &notify);
    site.write_source(&people(0..2));
    site.sync_ok();
    std::fs::remove_file(&site.source).unwrap();
    assert_eq!(site.scimsync(&["sync"]).code, Some(1));
    assert_eq!(site.scimsync(&["sync"]).code, Some(1));
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    let header = |name: &str| {
        mail.lines().find_map(|l| l.strip_prefix(&format!("{name}: "))).unwrap_or_default().to_owned()
    };
    assert_eq!(header("From"), "scimsync@example.com", "{mail}");
    assert_eq!(header("To"), "idm-admins@example.com, oncall@example.com", "{mail}");
    assert!(header("Subject").contains("run failed: the source could not be read"), "{mail}");
    assert!(mail.contains("nothing was planned or applied"), "{mail}");
    assert!(!mail.contains(&site.token), "{mail}");
}

#[test]
fn mail_goes_over_starttls_or_implicit_tls_trusting_smtp_ca_file() {
    let tls = |name: &str| support::test_data(&format!("tls/{name}")).display().to_string();
    let (cert, key) = (tls("server.pem"), tls("server.key"));
    let starttls = SmtpServer::start_with(&["--tlscert", &cert, "--tlskey", &key]);
    let implicit = SmtpServer::start_with(&["--smtpscert", &cert, "--smtpskey", &key]);
    for (server, url) in [
        (&starttls, format!("smtp://127.0.0.1:{}", starttls.port)),
        (&implicit, format!("smtps://127.0.0.1:{}", implicit.port)),
    ] {
        let mail = format!(
            "smtp_url = {url:?}\nemail_from = \"scimsync@example.com\"\nemail_to = [\"idm-admins@example.com\"]\ntimeout_secs = 5"
        );
        // The server's certificate is not trusted without its CA: no mail, and the check says so.
        let untrusted = site("", &mail);
        let run = untrusted.scimsync(&["check", "--notify"]);
        assert_eq!(run.code, Some(1), "{url}: {run}");
        assert!(run.stdout.contains("notify email: FAILED"), "{url}: {run}");
        assert!(server.mails().is_empty(), "{url}: mail sent over an untrusted connection");
        let trusted = site("", &format!("{mail}\nsmtp_ca_file = {:?}", tls("ca.pem")));
        let run = trusted.scimsync(&["check", "--notify"]);
        assert_eq!(run.code, Some(0), "{url}: {run}");
        assert!(run.stdout.contains("notify email: ok"), "{url}: {run}");
        let mails = server.mails();
        assert_eq!(mails.len(), 1, "{url}: {mails:?}");
        assert!(
            mails[0].contains("Subject: scimsync on ") && mails[0].contains("test message"),
            "{}",
            mails[0]
        );
    }
}

#[test]
fn mail_logs_in_with_the_password_after_starttls() {
    let smtp = SmtpServer::start_auth("scimsync", "mail-pass-7f3a");
    let ca = support::test_data("tls/ca.pem").display().to_string();
    let config = |secret: &str| {
        let notify = format!(
            "smtp_url = \"smtp://127.0.0.1:{}\"\nsmtp_username = \"scimsync\"\nsmtp_ca_file = {ca:?}\n\
             email_from = \"scimsync@example.com\"\nemail_to = [\"idm-admins@example.com\"]\ntimeout_secs = 5",
            smtp.port
        );
        let site = site("", &notify);
        let password = site.write_secret("smtp.password", secret);
        let text = std::fs::read_to_string(&site.config).unwrap();
        let text = text.replace("[notify]\n", &format!("[notify]\nsmtp_password_file = {password}\n"));
        std::fs::write(&site.config, text).unwrap();
        site
    };
    // A wrong password: refused by the server, said by the check, the password never shown.
    let wrong = config("not-the-password");
    let run = wrong.scimsync(&["check", "--notify"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("notify email: FAILED") && run.stdout.contains("(535)"), "{run}");
    assert!(!run.stdout.contains("not-the-password") && !run.stderr.contains("not-the-password"), "{run}");
    assert!(smtp.mails().is_empty(), "a mail was taken without a login");
    // The right one: logged in, the test message delivered.
    let right = config("mail-pass-7f3a");
    let run = right.scimsync(&["check", "--notify"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("notify email: ok"), "{run}");
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].contains("test message") && !mails[0].contains("mail-pass-7f3a"), "{}", mails[0]);
}

#[test]
fn check_notify_sends_a_test_message_and_names_the_dead_channel() {
    let hook = Receiver::start(200);
    let dead = free_port();
    let notify = format!(
        "webhook_url = {:?}\nsmtp_url = \"smtp://127.0.0.1:{dead}\"\nemail_from = \"scimsync@example.com\"\nemail_to = [\"idm-admins@example.com\"]\ntimeout_secs = 3",
        hook.url()
    );
    let site = site("", &notify);
    let run = site.scimsync(&["check", "--notify"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("notify webhook: ok"), "{run}");
    assert!(run.stdout.contains("notify email: FAILED: cannot send mail through 127.0.0.1"), "{run}");
    assert_eq!(hook.events(), ["test"]);
    assert!(!run.stdout.contains(HOOK_SECRET) && !run.stderr.contains(HOOK_SECRET), "{run}");
    // With only the working channel, it succeeds.
    let ok =
        Site::with_url(&site.base, &site.token, "", &format!("[notify]\nwebhook_url = {:?}\n", hook.url()));
    let run = ok.scimsync(&["check", "--notify"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(hook.events(), ["test", "test"]);
}

/// The example config's `[notify]` keys, uncommented, are a valid config.
#[test]
fn the_example_notify_section_uncommented_is_valid() {
    let example = std::fs::read_to_string(support::repo_root().join("config/scimsync.example.toml")).unwrap();
    let start = example.find("# [notify]\n").expect("a commented [notify] section in the example");
    let end = start + example[start..].find("\n####").unwrap();
    let block: String = example[start..end]
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest) if rest == "[notify]" || is_key_line(rest) => format!("{rest}\n"),
            _ => format!("{l}\n"),
        })
        .collect();
    assert!(block.contains("\nwebhook_url = ") && block.contains("\nsmtp_url = "), "{block}");
    let text = format!("{}{block}{}", &example[..start], &example[end..]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("scimsync.toml");
    std::fs::write(&config, text).unwrap();
    let out = support::scimsync_command()
        .arg("--config")
        .arg(&config)
        .args(["check", "--offline"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Whether a commented line is a `key = value` line.
fn is_key_line(line: &str) -> bool {
    line.split_once(" = ")
        .is_some_and(|(k, _)| !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
}

/// What to tell is decided without I/O (`src/notify/state.rs`), so its unit tests cover it all.
#[test]
fn the_decision_what_to_tell_does_no_io() {
    let path = support::repo_root().join("src/notify/state.rs");
    let text = std::fs::read_to_string(&path).unwrap();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for f in
            ["tokio", "reqwest", "lettre", "rusqlite", "Store", "std::fs", "std::net", "std::time", "chrono"]
        {
            assert!(!code.contains(f), "{}:{}: mentions {f}: {line}", path.display(), n + 1);
        }
    }
}

//! The live LDAP source (`kind = "ldap"`) against a real slapd (`support::slapd_live`): the plan
//! of a live read is the plan of the same directory's slapcat export; paging past the size
//! limit; ldaps and StartTLS with the test's CA and a wrong CA refused; SASL EXTERNAL with a
//! client certificate; a 3,000-member group read whole; a limit that paging cannot pass fails
//! the read.

use crate::cli_support::{self, plan_json, run, toml_path, without_origins, Output};
use crate::support::slapd_live::{write_directory, LiveSlapd, LiveSlapdOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The demo directory without its `version: 1` line (slapadd 2.5 refuses it).
fn demo_input(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(cli_support::repo_root().join("config/demo/directory.ldif")).unwrap();
    let path = dir.join("demo.ldif");
    std::fs::write(&path, text.replacen("version: 1\n", "", 1)).unwrap();
    path
}

/// `[source]` reading `slapd` live at `url`, bound as its service account, with `extra` keys.
fn ldap_source(slapd: &LiveSlapd, url: &str, extra: &str) -> String {
    format!(
        "[source]\nkind = \"ldap\"\nurl = \"{url}\"\nbind_dn = \"{}\"\npassword_file = {}\nbase_dn = \"{}\"\ntimeout_secs = 20\n{extra}\n",
        slapd.bind_dn(),
        toml_path(&slapd.password_file()),
        slapd.base_dn(),
    )
}

/// The demo config (its mapping, roles and policy) with `source` as its `[source]` section and
/// its state in `dir`; written to `dir/NAME.toml`.
fn demo_with_source(dir: &Path, name: &str, source: &str) -> PathBuf {
    let demo = std::fs::read_to_string(cli_support::demo_config(dir)).unwrap();
    let start = demo.find("[source]").unwrap();
    let end = start + demo[start..].find("[target]").unwrap();
    let text = format!("{}{source}\n{}", &demo[..start], &demo[end..])
        .replace(&toml_path(&dir.join("state.db")), &toml_path(&dir.join(format!("{name}.db"))));
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// A minimal config: `source`, default mapping, the state in `dir`.
fn minimal_with_source(dir: &Path, name: &str, source: &str) -> PathBuf {
    let text = format!("{source}\n[state]\npath = {}\n", toml_path(&dir.join(format!("{name}.db"))));
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// What must be the same between two plans of one directory: the operations (keys, values,
/// members), what is held and deferred, what is skipped and why, the warnings and the counts.
fn comparable(plan: &Value) -> Value {
    let keep = ["plan", "skipped", "warnings", "summary", "operations"];
    without_origins(&Value::Object(
        keep.iter().map(|k| (k.to_string(), plan.get(*k).cloned().unwrap_or(Value::Null))).collect(),
    ))
}

fn ops_of<'a>(plan: &'a Value, op: &str) -> Vec<&'a Value> {
    plan["plan"]["ops"].as_array().unwrap().iter().filter(|o| o["op"] == op).collect()
}

fn failed(out: &Output) -> &str {
    assert_ne!(out.code, Some(0), "the run should have failed:\n{out}");
    assert!(out.stderr.contains("nothing was planned"), "{out}");
    &out.stderr
}

#[test]
fn a_live_read_plans_exactly_what_the_slapcat_export_of_the_directory_plans() {
    let dir = tempfile::tempdir().unwrap();
    // The size limit is below the directory's 45 entries: only paging reads it whole.
    let opts = LiveSlapdOptions { size_limit: Some(10), ..Default::default() };
    let slapd = LiveSlapd::start(&demo_input(dir.path()), opts);
    let live = demo_with_source(dir.path(), "live", &ldap_source(&slapd, &slapd.url(), "page_size = 7"));
    let export = dir.path().join("slapcat.ldif");
    slapd.slapcat(&export);
    let file = demo_with_source(
        dir.path(),
        "file",
        &format!("[source]\nkind = \"ldif\"\npath = {}\n", toml_path(&export)),
    );

    let (live, file) = (plan_json(&live), plan_json(&file));
    assert_eq!(comparable(&live), comparable(&file));
    // And the plan is the demo's: every person, the nested groups flattened.
    assert_eq!(live["summary"]["create_user"], 35, "{:#}", live["summary"]);
    assert_eq!(live["summary"]["create_group"], 6, "{:#}", live["summary"]);
    let staff = ops_of(&live, "add_members").into_iter().find(|o| o["display_name"] == "staff").unwrap();
    assert_eq!(staff["members"].as_array().unwrap().len(), 21);
    // slapd answered in pages of 7.
    let pages = slapd.stats().matches("SEARCH RESULT").count();
    assert!(pages >= 45 / 7, "slapd logged {pages} search results:\n{}", slapd.stats());
}

#[test]
fn ldaps_and_starttls_trust_the_configured_ca_and_refuse_any_other() {
    let dir = tempfile::tempdir().unwrap();
    let slapd =
        LiveSlapd::start(&demo_input(dir.path()), LiveSlapdOptions { tls: true, ..Default::default() });
    let ca = format!("ca_file = {}", toml_path(&slapd.ca_file()));
    let other = format!("ca_file = {}", toml_path(&slapd.other_ca_file()));
    let plain = plan_json(&demo_with_source(dir.path(), "plain", &ldap_source(&slapd, &slapd.url(), "")));
    for (name, url, extra) in [
        ("ldaps", slapd.ldaps_url(), ca.clone()),
        ("starttls", slapd.url(), format!("{ca}\nstarttls = true")),
    ] {
        let tls = plan_json(&demo_with_source(dir.path(), name, &ldap_source(&slapd, &url, &extra)));
        assert_eq!(comparable(&tls), comparable(&plain), "{name}");
    }
    for (name, url, extra) in [
        ("ldaps-other-ca", slapd.ldaps_url(), other.clone()),
        ("starttls-other-ca", slapd.url(), format!("{other}\nstarttls = true")),
    ] {
        let out = run(&demo_with_source(dir.path(), name, &ldap_source(&slapd, &url, &extra)), &["plan"]);
        let err = failed(&out);
        assert!(err.contains("certificate") || err.contains("UnknownIssuer"), "{name}: {out}");
        assert!(err.contains("source.ca_file"), "{name}: the message says what to check: {out}");
    }
}

#[test]
fn sasl_external_binds_with_the_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let slapd =
        LiveSlapd::start(&demo_input(dir.path()), LiveSlapdOptions { tls: true, ..Default::default() });
    let (cert, key) = slapd.client_cert();
    let source = format!(
        "[source]\nkind = \"ldap\"\nurl = \"{}\"\nca_file = {}\nsasl_mechanism = \"EXTERNAL\"\nclient_cert_file = {}\nclient_key_file = {}\nbase_dn = \"{}\"\n",
        slapd.ldaps_url(),
        toml_path(&slapd.ca_file()),
        toml_path(&cert),
        toml_path(&key),
        slapd.base_dn()
    );
    let external = plan_json(&demo_with_source(dir.path(), "external", &source));
    let simple = plan_json(&demo_with_source(dir.path(), "simple", &ldap_source(&slapd, &slapd.url(), "")));
    assert_eq!(comparable(&external), comparable(&simple));
    let binds = slapd.stats();
    assert!(binds.contains("BIND dn=\"cn=scimsync,dc=example,dc=com\" mech=EXTERNAL"), "{binds}");
}

#[test]
fn a_group_of_3000_members_is_read_whole_in_pages() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.ldif");
    write_directory(&input, 3_000, 3_000);
    let slapd = LiveSlapd::start(&input, LiveSlapdOptions { size_limit: Some(100), ..Default::default() });
    let config =
        minimal_with_source(dir.path(), "big", &ldap_source(&slapd, &slapd.url(), "page_size = 250"));
    let plan = plan_json(&config);
    assert_eq!(plan["summary"]["create_user"], 3_000);
    // One group, its members sent in several requests.
    let big = ops_of(&plan, "add_members");
    assert!(big.iter().all(|o| o["display_name"] == "big"), "{big:?}");
    let mut members: Vec<&str> =
        big.iter().flat_map(|o| o["members"].as_array().unwrap()).map(|m| m.as_str().unwrap()).collect();
    members.sort_unstable();
    members.dedup();
    assert_eq!(members.len(), 3_000);
}

#[test]
fn a_limit_paging_cannot_pass_fails_the_read_in_the_servers_words() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("people.ldif");
    write_directory(&input, 300, 0);
    let opts = LiveSlapdOptions { size_limit: Some(50), paged_total: Some(120), ..Default::default() };
    let slapd = LiveSlapd::start(&input, opts);
    let config =
        minimal_with_source(dir.path(), "limited", &ldap_source(&slapd, &slapd.url(), "page_size = 40"));
    let out = run(&config, &["plan"]);
    let err = failed(&out);
    assert!(err.contains("sizeLimitExceeded"), "{out}");
    assert!(err.contains("raise it for scimsync's account"), "{out}");
    // No state was written from the partial read: a plan after the limit is lifted starts clean.
    assert!(!out.stdout.contains("create_user"), "{out}");
}

#[test]
fn a_wrong_password_is_refused_naming_the_bind_and_never_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = LiveSlapd::start(&demo_input(dir.path()), LiveSlapdOptions::default());
    let wrong = dir.path().join("wrong.password");
    std::fs::write(&wrong, "not-the-Reader-secret\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    let source =
        ldap_source(&slapd, &slapd.url(), "").replace(&toml_path(&slapd.password_file()), &toml_path(&wrong));
    let out = run(&minimal_with_source(dir.path(), "wrong", &source), &["plan"]);
    let err = failed(&out);
    assert!(err.contains("invalidCredentials") && err.contains(slapd.bind_dn()), "{out}");
    assert!(
        !out.stderr.contains("not-the-Reader-secret") && !out.stdout.contains("not-the-Reader-secret"),
        "{out}"
    );
}

#[test]
fn check_shows_the_server_the_marker_the_first_users_and_the_ldapsearch_commands() {
    use crate::support::{scim_server::ScimServer, site::Site};
    let dir = tempfile::tempdir().unwrap();
    let opts = LiveSlapdOptions { syncprov: true, ..Default::default() };
    let slapd = LiveSlapd::start(&demo_input(dir.path()), opts);
    let site = Site::new(ScimServer::shared(), "", "");
    site.set_source(&ldap_source(&slapd, &slapd.url(), "page_size = 50\nchange_poll_secs = 5").replacen(
        "[source]\n",
        "",
        1,
    ));
    let out = site.scimsync(&["check"]);
    assert_eq!(out.code, Some(0), "{out}");
    let text = &out.stdout;
    for line in [
        format!("ldap: bound to {} as cn=scimsync,dc=example,dc=com, no TLS", slapd.url()),
        "ldap: the server is OpenLDAP".to_owned(),
        "ldap: naming contexts: dc=example,dc=com".to_owned(),
        "ldap: paged results (RFC 2696) announced: the directory is read in pages of 50".to_owned(),
        "(polled every 5 s)".to_owned(),
        "first users as mapped:".to_owned(),
        "  alovelace@example.com (active; key 0f97bd01-7928-5d9c-be18-865eae75f759)".to_owned(),
    ] {
        assert!(text.contains(&line), "missing {line:?} in:\n{out}");
    }
    assert!(text.contains("ldap: change marker csn "), "{out}");
    assert!(!text.contains("reader-secret"), "the password is never shown:\n{out}");
    // The commands printed are runnable as they are and find what scimsync read.
    let commands: Vec<&str> =
        text.lines().filter(|l| l.trim_start().starts_with("ldapsearch ")).map(str::trim).collect();
    assert_eq!(commands.len(), 2, "{out}");
    let mut entries = 0;
    for c in &commands {
        assert!(c.contains(&format!("-y '{}'", slapd.password_file().display())), "{c}");
        let run = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{c} -LLL"))
            .env("LDAPNOINIT", "1")
            .output()
            .unwrap();
        assert!(run.status.success(), "{c}: {}", String::from_utf8_lossy(&run.stderr));
        entries += String::from_utf8_lossy(&run.stdout).matches("\ndn: ").count() + 1;
    }
    assert_eq!(
        entries,
        36 + 6,
        "36 people (one without a mail) and 6 groups, not the service account:\n{out}"
    );
}

//! The live slapd of `support::slapd_live` does what the live-source tests rely on, checked with
//! the OpenLDAP command-line tools: size limits that paging gets past, a contextCSN that moves,
//! ldaps:// with the test CA only, SASL EXTERNAL with the client certificate, and kill().

use crate::support::slapd_live::{ldap_tool, ldapsearch_bin, write_directory, LiveSlapd, LiveSlapdOptions};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};
use tempfile::TempDir;

fn start(users: usize, opts: LiveSlapdOptions) -> (TempDir, LiveSlapd) {
    let input_dir = tempfile::tempdir().unwrap();
    let input = input_dir.path().join("directory.ldif");
    write_directory(&input, users, users.min(5));
    let slapd = LiveSlapd::start(&input, opts);
    (input_dir, slapd)
}

/// A client tool that reads no ldap.conf or ~/.ldaprc.
fn tool(name: &str) -> Command {
    let mut cmd = Command::new(if name == "ldapsearch" { ldapsearch_bin() } else { ldap_tool(name) });
    cmd.env("LDAPNOINIT", "1");
    cmd
}

/// A client tool that takes its TLS settings from LDAPTLS_* (LDAPNOINIT would ignore them):
/// certificates must verify against `ca`. HOME is the slapd's directory, so no ~/.ldaprc is read.
fn tls_tool(name: &str, slapd: &LiveSlapd, ca: &Path) -> Command {
    let mut cmd = tool(name);
    cmd.env_remove("LDAPNOINIT")
        .env("HOME", slapd.dir())
        .env("LDAPTLS_REQCERT", "demand")
        .env("LDAPTLS_CACERT", ca)
        .env_remove("LDAPTLS_CERT")
        .env_remove("LDAPTLS_KEY");
    cmd
}

fn dn_count(out: &Output) -> usize {
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.starts_with("dn: ")).count()
}

fn show(out: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn slapd_live_size_limit_stops_plain_search_but_not_paged() {
    let (_input, slapd) = start(30, LiveSlapdOptions { size_limit: Some(10), ..Default::default() });
    let search = |extra: &[&str]| {
        tool("ldapsearch")
            .args(["-x", "-H", &slapd.url(), "-D", slapd.bind_dn(), "-y"])
            .arg(slapd.password_file())
            .args(["-b", slapd.base_dn(), "-LLL"])
            .args(extra)
            .args(["(objectClass=*)", "1.1"])
            .output()
            .unwrap()
    };
    // base, ou=people, ou=groups, 30 users, cn=big, the service account.
    let all = 35;

    let plain = search(&[]);
    assert_eq!(plain.status.code(), Some(4), "{}", show(&plain));
    assert!(String::from_utf8_lossy(&plain.stderr).contains("Size limit exceeded"), "{}", show(&plain));
    assert_eq!(dn_count(&plain), 10, "{}", show(&plain));

    for page in ["pr=7/noprompt", "pr=100/noprompt"] {
        let paged = search(&["-E", page]);
        assert!(paged.status.success(), "{page}: {}", show(&paged));
        assert_eq!(dn_count(&paged), all, "{page}: {}", show(&paged));
    }

    let root = tool("ldapsearch")
        .args(["-x", "-H", &slapd.url(), "-D", "cn=admin,dc=example,dc=com", "-w", "secret"])
        .args(["-b", slapd.base_dn(), "-LLL", "(objectClass=*)", "1.1"])
        .output()
        .unwrap();
    assert!(root.status.success(), "the rootdn has no size limit: {}", show(&root));
    assert_eq!(dn_count(&root), all);

    let pw = std::fs::metadata(slapd.password_file()).unwrap();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&pw.permissions()) & 0o777, 0o600);
    assert_eq!(std::fs::read(slapd.password_file()).unwrap(), b"reader-secret");
}

#[test]
fn slapd_live_syncprov_context_csn_moves_on_modify() {
    let (_input, slapd) = start(3, LiveSlapdOptions { syncprov: true, ..Default::default() });
    let csn = || {
        let out = tool("ldapsearch")
            .args(["-x", "-H", &slapd.url(), "-b", slapd.base_dn(), "-s", "base", "-LLL", "contextCSN"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", show(&out));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix("contextCSN: "))
            .unwrap_or_else(|| panic!("no contextCSN on the suffix: {text}\n{}", slapd.stats()))
            .to_owned()
    };
    let before = csn();
    slapd.modify("dn: uid=user1,ou=people,dc=example,dc=com\nchangetype: modify\nreplace: sn\nsn: Changed\n");
    let after = csn();
    assert!(after > before, "contextCSN {before} -> {after}");

    let out = slapd.dir().join("export.ldif");
    slapd.slapcat(&out);
    let export = std::fs::read_to_string(&out).unwrap();
    assert!(export.contains("sn: Changed"), "{export}");
    assert!(export.contains("dn: cn=scimsync,dc=example,dc=com"), "{export}");
}

#[test]
fn slapd_live_tls_trusts_only_its_ca_and_maps_the_client_cert() {
    let (_input, slapd) = start(2, LiveSlapdOptions { tls: true, ..Default::default() });
    let base = |cmd: &mut Command| {
        cmd.args(["-x", "-b", slapd.base_dn(), "-s", "base", "-LLL", "1.1"]).output().unwrap()
    };

    let ok = base(tls_tool("ldapsearch", &slapd, &slapd.ca_file()).args(["-H", &slapd.ldaps_url()]));
    assert!(ok.status.success(), "ldaps with the CA: {}\n{}", show(&ok), slapd.stats());
    assert_eq!(dn_count(&ok), 1);

    let bad = base(tls_tool("ldapsearch", &slapd, &slapd.other_ca_file()).args(["-H", &slapd.ldaps_url()]));
    assert!(!bad.status.success(), "ldaps with another CA must fail: {}", show(&bad));

    let start_tls = base(tls_tool("ldapsearch", &slapd, &slapd.ca_file()).args(["-ZZ", "-H", &slapd.url()]));
    assert!(start_tls.status.success(), "StartTLS: {}", show(&start_tls));

    let (cert, key) = slapd.client_cert();
    let whoami = tls_tool("ldapwhoami", &slapd, &slapd.ca_file())
        .env("LDAPTLS_CERT", &cert)
        .env("LDAPTLS_KEY", &key)
        .args(["-Q", "-Y", "EXTERNAL", "-H", &slapd.ldaps_url()])
        .output()
        .unwrap();
    assert!(whoami.status.success(), "{}\n{}", show(&whoami), slapd.stats());
    assert_eq!(String::from_utf8_lossy(&whoami.stdout).trim(), "dn:cn=scimsync,dc=example,dc=com");
}

#[test]
fn slapd_live_kill_closes_the_port_and_drop_removes_the_directory() {
    let (_input, mut slapd) = start(1, LiveSlapdOptions::default());
    let addr = slapd.url().strip_prefix("ldap://").unwrap().to_owned();
    TcpStream::connect(&addr).expect("slapd listens");
    let pid = slapd.pid() as libc::pid_t;
    slapd.kill();
    // SAFETY: signal 0 only checks that the (reaped) process is gone.
    assert_ne!(unsafe { libc::kill(pid, 0) }, 0, "slapd {pid} still exists");
    let refused = TcpStream::connect(&addr).expect_err("the port must refuse after kill()");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);

    let (_input, slapd) = start(1, LiveSlapdOptions::default());
    let (dir, pid) = (slapd.dir().to_path_buf(), slapd.pid() as libc::pid_t);
    drop(slapd);
    assert!(!dir.exists(), "{} is left behind", dir.display());
    // SAFETY: as above.
    assert_ne!(unsafe { libc::kill(pid, 0) }, 0, "slapd {pid} still runs after drop");
}

//! A real, long-running OpenLDAP slapd for the tests of a live LDAP source.
//!
//! The configuration follows `scripts/slapd-export.sh` (schema directory detection, `modulepath`,
//! an mdb database in a temporary directory, a random loopback port tried again when taken,
//! readiness checked with `ldapsearch`). On top of it: a service account that reads everything
//! and is subject to size limits (the rootdn never is), optionally TLS with a CA made here (ldaps://
//! plus StartTLS, client certificates for SASL EXTERNAL) and the syncprov overlay (a contextCSN on
//! the suffix entry that moves on every write).
//!
//! Programs come from `SLAPD_BIN`, `SLAPADD_BIN`, `SLAPCAT_BIN`, `LDAPSEARCH_BIN` and
//! `LDAPMODIFY_BIN` when set; otherwise `ldapmodify` (and the other client tools) are looked for
//! beside `ldapsearch`, then on `PATH`, then in the sbin directories. Certificates are made with
//! the `openssl` command (`OPENSSL_BIN` when set).

use super::require_slapd;
use std::env;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::net::TcpListener;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};
use tempfile::TempDir;

const SUFFIX: &str = "dc=example,dc=com";
const ROOTDN: &str = "cn=admin,dc=example,dc=com";
const ROOTPW: &str = "secret";
const BIND_DN: &str = "cn=scimsync,dc=example,dc=com";
const BIND_PW: &str = "reader-secret";

/// What the slapd offers besides plain LDAP on loopback.
#[derive(Clone, Debug, Default)]
pub struct LiveSlapdOptions {
    /// Also listen on ldaps:// and allow StartTLS on ldap://, with a server certificate signed by
    /// a CA made for this slapd ([`LiveSlapd::ca_file`]); client certificates signed by that CA
    /// are accepted (not required) and bind with SASL EXTERNAL as their subject DN.
    pub tls: bool,
    /// A non-paged search by anyone but the rootdn stops after this many entries ("Size limit
    /// exceeded", rc 4); a paged search (RFC 2696) still reads everything.
    pub size_limit: Option<u32>,
    /// With `size_limit`: a paged search stops after this many entries in all (`size.prtotal`)
    /// instead of reading everything.
    pub paged_total: Option<u32>,
    /// `overlay syncprov`: the suffix entry carries a contextCSN that moves on every write.
    pub syncprov: bool,
    /// More schema files to include, after core, cosine, inetorgperson and nis.
    pub extra_schema: Vec<PathBuf>,
}

/// A running slapd over a copy of an LDIF file. Dropping it stops slapd (SIGTERM, SIGKILL after
/// 5 s) and removes its directory.
pub struct LiveSlapd {
    dir: TempDir,
    child: Option<Child>,
    pid: u32,
    port: u16,
    tls_port: Option<u16>,
    conf: PathBuf,
    log: PathBuf,
    slapcat_bin: PathBuf,
    ldapmodify_bin: PathBuf,
}

/// `$VAR` if set (it must exist), else `name` beside `near` (a program's path), else on `PATH`,
/// else in the sbin directories; panics when there is none.
fn find_prog(var: &str, name: &str, near: Option<&Path>) -> PathBuf {
    if let Some(bin) = env::var_os(var).filter(|b| !b.is_empty()) {
        let bin = PathBuf::from(bin);
        assert!(bin.is_file(), "{var}={} does not exist", bin.display());
        return bin;
    }
    let beside = near.and_then(Path::parent).map(|d| d.join(name));
    let on_path = env::var_os("PATH")
        .map(|p| env::split_paths(&p).map(|d| d.join(name)).collect::<Vec<_>>())
        .unwrap_or_default();
    beside
        .into_iter()
        .chain(on_path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/bin"].map(|d| Path::new(d).join(name)))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "'{name}' not found ({var}, PATH, /usr/sbin): run scripts/test.sh, which installs \
                 Debian's slapd and ldap-utils, or install them with apt"
            )
        })
}

/// `ldapsearch`: `$LDAPSEARCH_BIN`, else on `PATH` or in /usr/bin.
pub fn ldapsearch_bin() -> PathBuf {
    find_prog("LDAPSEARCH_BIN", "ldapsearch", None)
}

/// An OpenLDAP client tool (`ldapwhoami`, `ldapmodify`, ...): beside `ldapsearch`, else on
/// `PATH`.
pub fn ldap_tool(name: &str) -> PathBuf {
    find_prog(&format!("{}_BIN", name.to_uppercase()), name, Some(&ldapsearch_bin()))
}

fn first_dir(dirs: &[&str]) -> Option<PathBuf> {
    dirs.iter().map(PathBuf::from).find(|d| d.is_dir())
}

/// Runs `cmd`, panicking with its output when it cannot start or fails.
fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {what} ({cmd:?}): {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {cmd:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The names libldap may check a certificate against for `ldaps://localhost`: it replaces
/// "localhost" with the machine's own name before the hostname check.
fn own_host_names() -> Vec<String> {
    let mut names = Vec::new();
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        names.push(String::from_utf8_lossy(&buf[..end]).into_owned());
    }
    if let Ok(out) = Command::new("hostname").arg("-f").stderr(Stdio::null()).output() {
        if out.status.success() {
            names.push(String::from_utf8_lossy(&out.stdout).trim().to_owned());
        }
    }
    names.retain(|n| {
        !n.is_empty()
            && n != "localhost"
            && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    });
    names.dedup();
    names
}

/// Makes the CAs and certificates in `dir` with the openssl command (EC P-256: quick).
fn make_certs(dir: &Path) {
    let openssl = find_prog("OPENSSL_BIN", "openssl", None);
    let key_args = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    for (name, cn) in [("ca", "scimsync test CA"), ("other-ca", "scimsync unrelated test CA")] {
        run(
            Command::new(&openssl)
                .current_dir(dir)
                .args(["req", "-x509"])
                .args(key_args)
                .args(["-keyout", &format!("{name}.key"), "-out", &format!("{name}.pem")])
                .args(["-days", "30", "-subj", &format!("/CN={cn}")]),
            &format!("openssl req ({name})"),
        );
    }
    let mut san = String::from("DNS:localhost,IP:127.0.0.1");
    for name in own_host_names() {
        write!(san, ",DNS:{name}").unwrap();
    }
    let leaves = [
        ("server", "/CN=localhost", format!("subjectAltName={san}\nextendedKeyUsage=serverAuth\n")),
        // The subject in X.509 order: slapd reads it as cn=scimsync,dc=example,dc=com.
        ("client", "/DC=com/DC=example/CN=scimsync", "extendedKeyUsage=clientAuth\n".to_owned()),
    ];
    for (name, subj, ext) in leaves {
        let ext_file = dir.join(format!("{name}.ext"));
        fs::write(&ext_file, format!("basicConstraints=CA:FALSE\n{ext}")).unwrap();
        run(
            Command::new(&openssl).current_dir(dir).arg("req").args(key_args).args([
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                subj,
            ]),
            &format!("openssl req ({name})"),
        );
        run(
            Command::new(&openssl)
                .current_dir(dir)
                .args(["x509", "-req", "-in", &format!("{name}.csr"), "-CA", "ca.pem", "-CAkey", "ca.key"])
                .args(["-CAcreateserial", "-days", "30", "-out", &format!("{name}.pem"), "-extfile"])
                .arg(&ext_file),
            &format!("openssl x509 ({name})"),
        );
    }
}

fn slapd_conf(work: &Path, opts: &LiveSlapdOptions) -> String {
    let schema_dir =
        first_dir(&["/etc/ldap/schema", "/etc/openldap/schema", "/usr/local/etc/openldap/schema"]).expect(
            "OpenLDAP schema directory not found (looked for /etc/ldap/schema, /etc/openldap/schema)",
        );
    let mut conf = String::new();
    for s in ["core", "cosine", "inetorgperson", "nis"] {
        let file = schema_dir.join(format!("{s}.schema"));
        assert!(file.is_file(), "schema file {} is missing", file.display());
        writeln!(conf, "include {}", file.display()).unwrap();
    }
    for file in &opts.extra_schema {
        assert!(file.is_file(), "extra schema file {} is missing", file.display());
        writeln!(conf, "include {}", file.display()).unwrap();
    }
    let w = work.display();
    writeln!(conf, "pidfile {w}/slapd.pid\nargsfile {w}/slapd.args").unwrap();
    // Debian builds the backends and overlays as loadable modules; other builds may link them in.
    let module_dir =
        first_dir(&["/usr/lib/ldap", "/usr/lib64/openldap", "/usr/lib/openldap", "/usr/libexec/openldap"]);
    let has_module = |m: &str| {
        module_dir
            .as_ref()
            .is_some_and(|d| d.join(format!("{m}.la")).exists() || d.join(format!("{m}.so")).exists())
    };
    let load: Vec<&str> = ["back_mdb", "syncprov"]
        .into_iter()
        .filter(|m| (*m != "syncprov" || opts.syncprov) && has_module(m))
        .collect();
    if !load.is_empty() {
        writeln!(conf, "modulepath {}", module_dir.as_ref().unwrap().display()).unwrap();
        for m in load {
            writeln!(conf, "moduleload {m}").unwrap();
        }
    }
    if opts.tls {
        // "allow": a client certificate is checked when sent, and its subject is the identity
        // that SASL EXTERNAL binds as.
        writeln!(
            conf,
            "TLSCACertificateFile {w}/ca.pem\nTLSCertificateFile {w}/server.pem\n\
             TLSCertificateKeyFile {w}/server.key\nTLSVerifyClient allow"
        )
        .unwrap();
    }
    writeln!(
        conf,
        "database mdb\nmaxsize 1073741824\nsuffix \"{SUFFIX}\"\nrootdn \"{ROOTDN}\"\nrootpw {ROOTPW}\n\
         directory {w}/db\nindex objectClass eq"
    )
    .unwrap();
    writeln!(conf, "access to attrs=userPassword by self write by anonymous auth by * none").unwrap();
    writeln!(conf, "access to * by * read").unwrap();
    if let Some(n) = opts.size_limit {
        // Everyone but the rootdn (which no limit applies to): a plain search stops after n
        // entries, a paged one may read any number of pages of any size.
        let total = opts.paged_total.map_or("unlimited".to_owned(), |t| t.to_string());
        writeln!(conf, "limits * size.soft={n} size.hard={n} size.prtotal={total}").unwrap();
    }
    if opts.syncprov {
        writeln!(conf, "index entryCSN,entryUUID eq\noverlay syncprov").unwrap();
    }
    conf
}

/// A port that was free a moment ago (slapd is started again on another when it is taken by then).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind a loopback port").port()
}

fn read_log(log: &Path) -> String {
    fs::read_to_string(log).unwrap_or_else(|e| format!("(cannot read {}: {e})", log.display()))
}

/// Waits up to 10 s for slapd to answer a root DSE search on `url`; false when it exited instead.
fn wait_ready(child: &mut Child, ldapsearch: &Path, url: &str, log: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        let ok = Command::new(ldapsearch)
            .env("LDAPNOINIT", "1")
            .args(["-x", "-H", url, "-b", "", "-s", "base", "-LLL", "1.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return true;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("slapd on {url} did not answer within 10 s:\n{}", read_log(log));
        }
        sleep(Duration::from_millis(50));
    }
}

impl LiveSlapd {
    /// Loads `input` and a service account (`cn=scimsync,dc=example,dc=com`, "reader-secret")
    /// into a new mdb database and starts slapd on it. Panics with slapd's log when it fails.
    pub fn start(input: &Path, opts: LiveSlapdOptions) -> LiveSlapd {
        let slapd = require_slapd();
        let slapadd = find_prog("SLAPADD_BIN", "slapadd", Some(&slapd));
        let slapcat_bin = find_prog("SLAPCAT_BIN", "slapcat", Some(&slapd));
        let ldapsearch_bin = ldapsearch_bin();
        let ldapmodify_bin = find_prog("LDAPMODIFY_BIN", "ldapmodify", Some(&ldapsearch_bin));

        let dir = tempfile::Builder::new()
            .prefix("scimsync-live-slapd-")
            .tempdir()
            .expect("create a temporary directory for slapd");
        let work = dir.path().to_path_buf();
        fs::create_dir(work.join("db")).unwrap();
        if opts.tls {
            make_certs(&work);
        }
        let conf = work.join("slapd.conf");
        fs::write(&conf, slapd_conf(&work, &opts)).unwrap();
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(work.join("password"))
            .and_then(|mut f| f.write_all(BIND_PW.as_bytes()))
            .expect("write the password file");

        // Offline load of the input and the service account, as one LDIF.
        let mut ldif =
            fs::read(input).unwrap_or_else(|e| panic!("read the input LDIF {}: {e}", input.display()));
        ldif.extend_from_slice(
            format!(
                "\n\ndn: {BIND_DN}\nobjectClass: applicationProcess\nobjectClass: simpleSecurityObject\n\
                 cn: scimsync\nuserPassword: {BIND_PW}\n"
            )
            .as_bytes(),
        );
        let load = work.join("load.ldif");
        fs::write(&load, ldif).unwrap();
        let mut cmd = Command::new(&slapadd);
        cmd.env("LDAPNOINIT", "1").arg("-f").arg(&conf).arg("-l").arg(&load);
        if opts.syncprov {
            // Writes the contextCSN at once (else syncprov makes it at the first write).
            cmd.arg("-w");
        }
        run(&mut cmd, &format!("slapadd of {}", input.display()));

        let log = work.join("slapd.log");
        for attempt in 1..=10 {
            let port = free_port();
            let tls_port = opts.tls.then(free_port);
            let mut listen = format!("ldap://127.0.0.1:{port}/");
            if let Some(p) = tls_port {
                write!(listen, " ldaps://127.0.0.1:{p}/").unwrap();
            }
            let log_file = File::create(&log).unwrap();
            // "-d stats": in the foreground (the child is slapd itself), logging connections,
            // operations and results besides start, stop and errors.
            let mut child = Command::new(&slapd)
                .env("LDAPNOINIT", "1")
                .arg("-f")
                .arg(&conf)
                .args(["-h", &listen, "-d", "stats"])
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().unwrap())
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", slapd.display()));
            let url = format!("ldap://127.0.0.1:{port}");
            if wait_ready(&mut child, &ldapsearch_bin, &url, &log) {
                return LiveSlapd {
                    pid: child.id(),
                    dir,
                    child: Some(child),
                    port,
                    tls_port,
                    conf,
                    log,
                    slapcat_bin,
                    ldapmodify_bin,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            let text = read_log(&log);
            assert!(
                text.contains("Address already in use"),
                "slapd failed to start (attempt {attempt}, {listen}):\n{text}"
            );
        }
        panic!("no free loopback port found for slapd after 10 attempts");
    }

    /// `ldap://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    fn tls_only(&self, what: &str) -> u16 {
        self.tls_port.unwrap_or_else(|| panic!("{what} needs LiveSlapdOptions {{ tls: true, .. }}"))
    }

    /// `ldaps://localhost:PORT2`. The server certificate names localhost, 127.0.0.1 and the
    /// machine's own host name (libldap checks that one for "localhost").
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://localhost:{}", self.tls_only("ldaps_url"))
    }

    /// PEM of the CA that signed the server and client certificates.
    pub fn ca_file(&self) -> PathBuf {
        self.tls_only("ca_file");
        self.dir.path().join("ca.pem")
    }

    /// PEM of another CA, which signed nothing here.
    pub fn other_ca_file(&self) -> PathBuf {
        self.tls_only("other_ca_file");
        self.dir.path().join("other-ca.pem")
    }

    /// (certificate PEM, key PEM) of a client certificate signed by [`Self::ca_file`] whose
    /// subject is cn=scimsync,dc=example,dc=com: SASL EXTERNAL binds as the service account.
    pub fn client_cert(&self) -> (PathBuf, PathBuf) {
        self.tls_only("client_cert");
        (self.dir.path().join("client.pem"), self.dir.path().join("client.key"))
    }

    /// `dc=example,dc=com`
    pub fn base_dn(&self) -> &str {
        SUFFIX
    }

    /// The service account, `cn=scimsync,dc=example,dc=com`: reads everything, subject to
    /// `size_limit`.
    pub fn bind_dn(&self) -> &str {
        BIND_DN
    }

    /// A file holding the service account's password (no trailing newline), mode 0600.
    pub fn password_file(&self) -> PathBuf {
        self.dir.path().join("password")
    }

    /// slapd's temporary directory (configuration, database, certificates, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// SIGKILL now, and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `ldapmodify -x` as the rootdn; panics with its output on failure.
    pub fn modify(&self, ldif: &str) {
        let mut child = Command::new(&self.ldapmodify_bin)
            .env("LDAPNOINIT", "1")
            .args(["-x", "-H", &self.url(), "-D", ROOTDN, "-w", ROOTPW])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.ldapmodify_bin.display()));
        child.stdin.take().unwrap().write_all(ldif.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ldapmodify failed ({}):\n{}{}\ninput:\n{ldif}\nslapd log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.stats()
        );
    }

    /// `slapcat -f <conf> -l out` of the database (mdb allows it while slapd runs).
    pub fn slapcat(&self, out: &Path) {
        run(
            Command::new(&self.slapcat_bin)
                .env("LDAPNOINIT", "1")
                .arg("-f")
                .arg(&self.conf)
                .arg("-l")
                .arg(out),
            "slapcat",
        );
    }

    /// slapd's log so far (`-d stats`: connections, operations, results, errors).
    pub fn stats(&self) -> String {
        read_log(&self.log)
    }
}

impl Drop for LiveSlapd {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if let Ok(None) = child.try_wait() {
            // SAFETY: plain kill(2) on our own, not yet reaped child.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if !matches!(child.try_wait(), Ok(None)) {
                    break;
                }
                sleep(Duration::from_millis(20));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        // The TempDir field removes the directory.
    }
}

/// Writes an LDIF (base dc=example,dc=com, ou=people, ou=groups) with `users` inetOrgPerson
/// entries uid=user{i} (cn, sn, mail user{i}@example.com, givenName) and, when
/// `group_members > 0`, one groupOfNames cn=big,ou=groups with the first `group_members` users
/// as `member`.
pub fn write_directory(path: &Path, users: usize, group_members: usize) {
    assert!(group_members <= users, "{group_members} group members of {users} users");
    let mut out = String::with_capacity(200 * users + 60 * group_members + 400);
    out.push_str(
        "dn: dc=example,dc=com\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
         dn: ou=people,dc=example,dc=com\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,dc=example,dc=com\nobjectClass: organizationalUnit\nou: groups\n\n",
    );
    for i in 0..users {
        writeln!(
            out,
            "dn: uid=user{i},ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: user{i}\n\
             cn: User {i}\nsn: {i}\ngivenName: User\nmail: user{i}@example.com\n"
        )
        .unwrap();
    }
    if group_members > 0 {
        out.push_str("dn: cn=big,ou=groups,dc=example,dc=com\nobjectClass: groupOfNames\ncn: big\n");
        for i in 0..group_members {
            writeln!(out, "member: uid=user{i},ou=people,dc=example,dc=com").unwrap();
        }
        out.push('\n');
    }
    fs::write(path, out).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

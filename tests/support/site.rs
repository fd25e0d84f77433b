//! One scimsync installation for a test: a temp directory with a source LDIF, a token file
//! (mode 0600), a state database and a config pointing at a fresh scim2-server tenant.

use super::scim_server::{Raw, ScimServer};
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

pub struct Site {
    pub dir: TempDir,
    pub base: String,
    pub token: String,
    pub config: PathBuf,
    pub source: PathBuf,
}

/// What a scimsync process printed.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {:?}\n--- stdout\n{}\n--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

fn toml_str(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

impl Site {
    /// A site on a new tenant of `server`; `target_extra` goes into `[target]`, `extra` after it.
    pub fn new(server: &ScimServer, target_extra: &str, extra: &str) -> Site {
        let (base, token) = server.tenant();
        Site::with_url(&base, &token, target_extra, extra)
    }

    /// A site whose target is `url` (a proxy in front of a tenant, say).
    pub fn with_url(url: &str, token: &str, target_extra: &str, extra: &str) -> Site {
        let dir = tempfile::tempdir().expect("tempdir");
        let token_file = dir.path().join("target.token");
        std::fs::write(&token_file, format!("{token}\n")).unwrap();
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let source = dir.path().join("people.ldif");
        let config = dir.path().join("scimsync.toml");
        let text = format!(
            "[source]\nkind = \"ldif\"\npath = {}\n\n[target]\nurl = \"{url}\"\ntoken_file = {}\ntimeout_secs = 10\n{target_extra}\n\n[state]\npath = {}\n\n{extra}\n",
            toml_str(&source),
            toml_str(&token_file),
            toml_str(&dir.path().join("state.db")),
        );
        std::fs::write(&config, text).unwrap();
        Site { dir, base: url.to_owned(), token: token.to_owned(), config, source }
    }

    /// Replaces the body of the `[source]` section (a SCIM source instead of the LDIF file, say).
    pub fn set_source(&self, section: &str) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let start = text.find("[source]\n").expect("a [source] section") + "[source]\n".len();
        let end = text.find("\n[target]").expect("a [target] section");
        let text = format!("{}{}\n{}", &text[..start], section.trim_end(), &text[end..]);
        std::fs::write(&self.config, text).unwrap();
    }

    /// Writes a secret file (mode 0600) in the site's directory; returns its path as a TOML string.
    pub fn write_secret(&self, name: &str, value: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, format!("{value}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        toml_str(&path)
    }

    /// Replaces the source export atomically (write, then rename), as export jobs do.
    pub fn write_source(&self, ldif: &str) {
        let tmp = self.dir.path().join("people.ldif.tmp");
        std::fs::write(&tmp, ldif).unwrap();
        std::fs::rename(&tmp, &self.source).unwrap();
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = super::scimsync_command();
        cmd.arg("--config").arg(&self.config).args(args);
        cmd.env("RUST_LOG", "scimsync=debug");
        cmd
    }

    pub fn scimsync(&self, args: &[&str]) -> Run {
        let out = self.command(args).output().expect("run scimsync");
        let run = Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert!(
            !run.stdout.contains(&self.token) && !run.stderr.contains(&self.token),
            "the token appears in scimsync's output:\n{run}"
        );
        run
    }

    /// `sync`, which must succeed.
    pub fn sync_ok(&self) -> Run {
        let run = self.scimsync(&["sync"]);
        assert_eq!(run.code, Some(0), "sync failed:\n{run}");
        run
    }

    pub fn raw(&self) -> Raw {
        Raw::new(&self.base, &self.token)
    }
}

/// An inetOrgPerson entry.
pub fn person(uid: &str, given: &str, sn: &str, uuid: u32, extra: &[(&str, &str)]) -> String {
    let mut s = format!(
        "dn: uid={uid},ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {given} {sn}\ngivenName: {given}\nsn: {sn}\nmail: {uid}@example.com\nentryUUID: 00000000-0000-0000-0000-{uuid:012}\n"
    );
    for (k, v) in extra {
        let _ = writeln!(s, "{k}: {v}");
    }
    s.push('\n');
    s
}

/// A groupOfNames entry naming people by uid.
pub fn group(cn: &str, uuid: u32, uids: &[&str]) -> String {
    let mut s = format!(
        "dn: cn={cn},ou=groups,dc=example,dc=com\nobjectClass: groupOfNames\ncn: {cn}\nentryUUID: 00000000-0000-0000-0001-{uuid:012}\n"
    );
    for u in uids {
        let _ = writeln!(s, "member: uid={u},ou=people,dc=example,dc=com");
    }
    s.push('\n');
    s
}

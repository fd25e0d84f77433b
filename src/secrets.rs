//! Secrets: the target's bearer token and the SCIM source's token or password, read from a
//! file, systemd's `$CREDENTIALS_DIRECTORY`, or the environment; a file readable by group or
//! others is refused; never logged.

use crate::source::SourceConfig;
use crate::target::TargetConfig;
use secrecy::SecretString;
use std::path::{Path, PathBuf};

/// The credential name used with systemd's `LoadCredential=`.
pub const CREDENTIAL_NAME: &str = "target.token";
/// The environment variable read when no file is configured.
pub const TOKEN_ENV: &str = "SCIMSYNC_TOKEN";
/// The systemd credential names of the SCIM source's bearer token and basic-auth password.
pub const SOURCE_TOKEN_CREDENTIAL: &str = "source.token";
pub const SOURCE_PASSWORD_CREDENTIAL: &str = "source.password";
/// The systemd credential name of the SMTP password (`[notify]`).
pub const SMTP_PASSWORD_CREDENTIAL: &str = "notify.smtp_password";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read the {what} from {path} (check {key})")]
    Read {
        what: &'static str,
        key: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the {what} file {path} is readable by group or others (mode {mode:o}): run `chmod 600 {path}` (or use systemd's LoadCredential=)")]
    TooOpen { what: &'static str, path: PathBuf, mode: u32 },
    #[error("the {what} read from {from} is empty: {hint}")]
    Empty { what: &'static str, from: String, hint: &'static str },
    #[error("no {what}: {hint}")]
    Missing { what: &'static str, hint: String },
}

/// A secret and where it came from (for messages that say where to put a new one).
pub struct Token {
    pub secret: SecretString,
    pub source: String,
}

/// Where one secret may be found, in the order it is looked for.
struct Lookup<'a> {
    /// "target token", "source token", "source password".
    what: &'static str,
    /// The config key of the file (`target.token_file`).
    file_key: &'static str,
    file: Option<&'a Path>,
    /// The systemd credential name (`target.token`).
    credential: &'static str,
    /// Environment variables, first found wins.
    env: Vec<(&'a str, String)>,
    /// What to do when the value is empty.
    empty_hint: &'static str,
}

fn read_file(what: &'static str, key: &'static str, path: &Path) -> Result<String, SecretError> {
    let read_err = |e| SecretError::Read { what, key, path: path.to_owned(), source: e };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(read_err)?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretError::TooOpen { what, path: path.to_owned(), mode });
        }
    }
    std::fs::read_to_string(path).map_err(read_err)
}

impl Lookup<'_> {
    fn checked(&self, text: String, source: String) -> Result<Token, SecretError> {
        let token = text.trim().to_owned();
        if token.is_empty() {
            return Err(SecretError::Empty { what: self.what, from: source, hint: self.empty_hint });
        }
        Ok(Token { secret: SecretString::from(token), source })
    }

    /// `$CREDENTIALS_DIRECTORY/<credential>` (systemd passed it: under `DynamicUser=` the
    /// service cannot read a root-only file), then the configured file, then the variables;
    /// `None` when none is configured or present.
    fn find(&self) -> Option<Result<Token, SecretError>> {
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
            let path = Path::new(&dir).join(self.credential);
            if path.exists() {
                // systemd makes credentials readable by the service only; no mode check needed.
                let source = format!("the systemd credential {} ({})", self.credential, path.display());
                let text = std::fs::read_to_string(&path).map_err(|e| SecretError::Read {
                    what: self.what,
                    key: self.file_key,
                    path: path.clone(),
                    source: e,
                });
                return Some(text.and_then(|t| self.checked(t, source)));
            }
        }
        if let Some(path) = self.file.filter(|p| p.exists()) {
            let source = format!("{} {}", self.file_key, path.display());
            return Some(read_file(self.what, self.file_key, path).and_then(|t| self.checked(t, source)));
        }
        for (var, described) in &self.env {
            if let Ok(v) = std::env::var(var) {
                return Some(self.checked(v, described.clone()));
            }
        }
        let path = self.file?;
        let vars: Vec<&str> = self.env.iter().map(|(v, _)| *v).collect();
        Some(Err(SecretError::Missing {
            what: self.what,
            hint: format!(
                "{} {} does not exist: write it there, pass it with systemd's LoadCredential={}:PATH{}",
                self.file_key,
                path.display(),
                self.credential,
                if vars.is_empty() { String::new() } else { format!(", or set {}", vars.join(" or ")) }
            ),
        }))
    }
}

/// Reads the target token: systemd's `$CREDENTIALS_DIRECTORY/target.token` when the service
/// manager passed one (under `DynamicUser=` the service cannot read a root-only token file),
/// then `target.token_file`, then the variable named by `target.token_env`, then `SCIMSYNC_TOKEN`.
pub fn load_token(cfg: &TargetConfig) -> Result<Token, SecretError> {
    let env = cfg.token_env.iter().map(String::as_str).chain([TOKEN_ENV]);
    let lookup = Lookup {
        what: "target token",
        file_key: "target.token_file",
        file: cfg.token_file.as_deref(),
        credential: CREDENTIAL_NAME,
        env: env.map(|v| (v, format!("the environment variable {v}"))).collect(),
        empty_hint: "write the bearer token generated in the target's admin console there",
    };
    lookup.find().unwrap_or_else(|| {
        Err(SecretError::Missing {
            what: "target token",
            hint: format!(
                "set target.token_file, pass it with systemd's LoadCredential={CREDENTIAL_NAME}:PATH, or set {TOKEN_ENV}"
            ),
        })
    })
}

/// How the SCIM source is authenticated.
pub enum SourceAuth {
    Bearer(Token),
    /// `username` and the password, with where the password came from.
    Basic {
        username: String,
        password: Token,
    },
}

impl SourceAuth {
    /// Where the secret came from, for the message of a 401.
    pub fn source(&self) -> &str {
        match self {
            SourceAuth::Bearer(t) => &t.source,
            SourceAuth::Basic { password, .. } => &password.source,
        }
    }
}

/// Reads the SCIM source's credentials: basic auth when `source.username` is set (the password
/// from `source.password_file`, `$CREDENTIALS_DIRECTORY/source.password` or the variable named
/// by `source.password_env`), else a bearer token (`source.token_file`,
/// `$CREDENTIALS_DIRECTORY/source.token`, the variable named by `source.token_env`).
pub fn load_source_auth(cfg: &SourceConfig) -> Result<SourceAuth, SecretError> {
    fn env<'a>(var: &'a Option<String>, key: &str) -> Vec<(&'a str, String)> {
        var.iter().map(|v| (v.as_str(), format!("the environment variable {v} ({key})"))).collect()
    }
    if let Some(username) = &cfg.username {
        let lookup = Lookup {
            what: "source password",
            file_key: "source.password_file",
            file: cfg.password_file.as_deref(),
            credential: SOURCE_PASSWORD_CREDENTIAL,
            env: env(&cfg.password_env, "source.password_env"),
            empty_hint: "write the password of source.username there",
        };
        let password = lookup.find().unwrap_or_else(|| {
            Err(SecretError::Missing {
                what: "source password",
                hint: format!(
                    "source.username is set: set source.password_file, pass it with systemd's \
                     LoadCredential={SOURCE_PASSWORD_CREDENTIAL}:PATH, or name a variable in source.password_env"
                ),
            })
        })?;
        return Ok(SourceAuth::Basic { username: username.clone(), password });
    }
    let lookup = Lookup {
        what: "source token",
        file_key: "source.token_file",
        file: cfg.token_file.as_deref(),
        credential: SOURCE_TOKEN_CREDENTIAL,
        env: env(&cfg.token_env, "source.token_env"),
        empty_hint: "write the bearer token the source's administration issued there",
    };
    let token = lookup.find().unwrap_or_else(|| {
        Err(SecretError::Missing {
            what: "source token",
            hint: format!(
                "set source.token_file, pass it with systemd's LoadCredential={SOURCE_TOKEN_CREDENTIAL}:PATH, \
                 name a variable in source.token_env, or use basic auth (source.username + source.password_file)"
            ),
        })
    })?;
    Ok(SourceAuth::Bearer(token))
}

/// Reads the password of an LDAP source's simple bind: `$CREDENTIALS_DIRECTORY/source.password`,
/// `source.password_file`, or the variable named by `source.password_env`.
pub fn load_ldap_password(cfg: &SourceConfig) -> Result<Token, SecretError> {
    let keys = PasswordKeys {
        what: "LDAP bind password",
        file_key: "source.password_file",
        env_key: "source.password_env",
        user_key: "source.bind_dn",
        credential: SOURCE_PASSWORD_CREDENTIAL,
        empty_hint: "write the password of source.bind_dn there",
    };
    keys.load(cfg.password_file.as_deref(), cfg.password_env.iter().map(String::as_str))
}

/// Reads the SMTP password of `[notify]`: `$CREDENTIALS_DIRECTORY/notify.smtp_password`,
/// `notify.smtp_password_file`, or the variable named by `notify.smtp_password_env`.
pub fn load_smtp_password(file: Option<&Path>, env: Option<&str>) -> Result<Token, SecretError> {
    let keys = PasswordKeys {
        what: "SMTP password",
        file_key: "notify.smtp_password_file",
        env_key: "notify.smtp_password_env",
        user_key: "notify.smtp_username",
        credential: SMTP_PASSWORD_CREDENTIAL,
        empty_hint: "write the password of notify.smtp_username there",
    };
    keys.load(file, env)
}

/// Where a password that goes with a user name (`user_key`) is looked for: the systemd
/// credential, the file of `file_key`, the variable `env_key` names.
struct PasswordKeys {
    what: &'static str,
    file_key: &'static str,
    env_key: &'static str,
    user_key: &'static str,
    credential: &'static str,
    empty_hint: &'static str,
}

impl PasswordKeys {
    fn load<'a>(
        &self,
        file: Option<&'a Path>,
        env: impl IntoIterator<Item = &'a str>,
    ) -> Result<Token, SecretError> {
        let lookup = Lookup {
            what: self.what,
            file_key: self.file_key,
            file,
            credential: self.credential,
            env: env
                .into_iter()
                .map(|v| (v, format!("the environment variable {v} ({})", self.env_key)))
                .collect(),
            empty_hint: self.empty_hint,
        };
        lookup.find().unwrap_or_else(|| {
            Err(SecretError::Missing {
                what: self.what,
                hint: format!(
                    "{} is set: set {}, pass it with systemd's LoadCredential={}:PATH, or name a variable in {}",
                    self.user_key, self.file_key, self.credential, self.env_key
                ),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::os::unix::fs::PermissionsExt;

    fn cfg(path: &Path) -> TargetConfig {
        TargetConfig {
            url: None,
            profile: crate::model::Profile::NinjaOne,
            token_file: Some(path.to_owned()),
            token_env: None,
            token_expires: None,
            ca_file: None,
            concurrency: 4,
            rate_limit: None,
            timeout_secs: 30,
            adopt: true,
            recreate_missing: false,
            dialect: crate::target::Dialect::preset(crate::model::Profile::NinjaOne),
        }
    }

    #[test]
    fn a_private_file_is_read_and_an_open_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, "s3cret-token\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_token(&cfg(&path)).err().expect("refused");
        let msg = err.to_string();
        assert!(msg.contains("chmod 600") && !msg.contains("s3cret"), "{msg}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let t = load_token(&cfg(&path)).expect("read");
        assert_eq!(t.secret.expose_secret(), "s3cret-token");
        assert!(t.source.contains("target.token_file"));
    }

    #[test]
    fn the_smtp_password_comes_from_its_file_or_variable_and_its_absence_says_where_to_put_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("smtp.password");
        let msg = load_smtp_password(Some(&path), None).err().expect("missing").to_string();
        assert!(
            msg.contains("notify.smtp_password_file") && msg.contains("LoadCredential=notify.smtp_password"),
            "{msg}"
        );
        std::fs::write(&path, "m4il\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(load_smtp_password(Some(&path), None).unwrap().secret.expose_secret(), "m4il");
        // A variable of this test's own: tests share the process environment.
        std::env::set_var("SCIMSYNC_TEST_SMTP_PASSWORD_5F2A", "from-env");
        let token = load_smtp_password(None, Some("SCIMSYNC_TEST_SMTP_PASSWORD_5F2A")).unwrap();
        assert_eq!(token.secret.expose_secret(), "from-env");
        assert!(token.source.contains("notify.smtp_password_env"), "{}", token.source);
    }

    #[test]
    fn an_empty_token_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, "  \n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(load_token(&cfg(&path)), Err(SecretError::Empty { .. })));
    }

    #[test]
    fn the_source_reads_a_password_for_basic_auth_or_a_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        std::fs::write(&path, "pa55word\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let raw = crate::config::RawConfig {
            source: crate::source::RawSource {
                kind: Some("scim".into()),
                url: Some("https://idp.example.com/scim/v2".into()),
                username: Some("sync".into()),
                password_file: Some(path.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        let mut cfg = crate::config::validate(raw, dir.path()).expect("valid").source;
        let msg = load_source_auth(&cfg).err().expect("refused").to_string();
        assert!(msg.contains("source password file") && msg.contains("chmod 600"), "{msg}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        match load_source_auth(&cfg).expect("read") {
            SourceAuth::Basic { username, password } => {
                assert_eq!(username, "sync");
                assert_eq!(password.secret.expose_secret(), "pa55word");
                assert!(password.source.contains("source.password_file"), "{}", password.source);
            }
            SourceAuth::Bearer(_) => panic!("basic auth expected"),
        }
        cfg.username = None;
        cfg.password_file = None;
        cfg.token_file = Some(dir.path().join("missing"));
        let msg = load_source_auth(&cfg).err().expect("no token").to_string();
        assert!(msg.contains("source token") && msg.contains("source.token_file"), "{msg}");
    }
}

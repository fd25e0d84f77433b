//! The target's bearer token: read from `target.token_file`, systemd's `$CREDENTIALS_DIRECTORY`,
//! or the environment; refused when readable by group or others; never logged.

use crate::config::TargetConfig;
use secrecy::SecretString;
use std::path::{Path, PathBuf};

/// The credential name used with systemd's `LoadCredential=`.
pub const CREDENTIAL_NAME: &str = "target.token";
/// The environment variable read when no file is configured.
pub const TOKEN_ENV: &str = "SCIMSYNC_TOKEN";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read the target token from {path} (check target.token_file)")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the token file {path} is readable by group or others (mode {mode:o}): run `chmod 600 {path}` (or use systemd's LoadCredential=)")]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("the token read from {0} is empty: write the bearer token generated in the target's admin console there")]
    Empty(String),
    #[error("no target token: set target.token_file, pass it with systemd's LoadCredential={CREDENTIAL_NAME}:PATH, or set {TOKEN_ENV}")]
    Missing,
}

/// A token and where it came from (for messages that say where to put a new one).
pub struct Token {
    pub secret: SecretString,
    pub source: String,
}

fn read_file(path: &Path) -> Result<String, SecretError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta =
            std::fs::metadata(path).map_err(|e| SecretError::Read { path: path.to_owned(), source: e })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretError::TooOpen { path: path.to_owned(), mode });
        }
    }
    std::fs::read_to_string(path).map_err(|e| SecretError::Read { path: path.to_owned(), source: e })
}

fn checked(text: String, source: String) -> Result<Token, SecretError> {
    let token = text.trim().to_owned();
    if token.is_empty() {
        return Err(SecretError::Empty(source));
    }
    Ok(Token { secret: SecretString::from(token), source })
}

/// Reads the token: systemd's `$CREDENTIALS_DIRECTORY/target.token` when the service manager
/// passed one (under `DynamicUser=` the service cannot read a root-only `target.token_file`),
/// then `target.token_file`, then the variable named by `target.token_env`, then
/// `SCIMSYNC_TOKEN`.
pub fn load_token(cfg: &TargetConfig) -> Result<Token, SecretError> {
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        let path = Path::new(&dir).join(CREDENTIAL_NAME);
        if path.exists() {
            // systemd makes credentials readable by the service only; no mode check needed.
            let text = std::fs::read_to_string(&path)
                .map_err(|e| SecretError::Read { path: path.clone(), source: e })?;
            return checked(text, format!("the systemd credential {CREDENTIAL_NAME} ({})", path.display()));
        }
    }
    if let Some(path) = &cfg.token_file {
        return checked(read_file(path)?, format!("target.token_file {}", path.display()));
    }
    for var in cfg.token_env.iter().map(String::as_str).chain([TOKEN_ENV]) {
        if let Ok(v) = std::env::var(var) {
            return checked(v, format!("the environment variable {var}"));
        }
    }
    Err(SecretError::Missing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::os::unix::fs::PermissionsExt;

    fn cfg(path: &Path) -> TargetConfig {
        TargetConfig {
            url: None,
            profile: crate::config::Profile::NinjaOne,
            token_file: Some(path.to_owned()),
            token_env: None,
            token_expires: None,
            ca_file: None,
            concurrency: 4,
            rate_limit: None,
            timeout_secs: 30,
            adopt: true,
            recreate_missing: false,
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
    fn an_empty_token_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, "  \n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(load_token(&cfg(&path)), Err(SecretError::Empty(_))));
    }
}

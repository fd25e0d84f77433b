//! What every component validates its config section with: the error collector (each problem
//! under its dotted key), relative path resolution and URL checks. A leaf: it imports no
//! component, so a component owns its section without depending on `config`.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key (`target.url`), empty for the file as a whole.
    pub key: String,
    pub message: String,
}

/// Every problem found in a config, reported together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub fn one(key: &str, message: impl Into<String>) -> Self {
        ConfigErrors(vec![ConfigError { key: key.to_owned(), message: message.into() }])
    }
    pub fn push(&mut self, key: &str, message: impl Into<String>) {
        self.0.push(ConfigError { key: key.to_owned(), message: message.into() });
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "invalid config ({n} problem{}):", if n == 1 { "" } else { "s" })?;
        for e in &self.0 {
            if e.key.is_empty() {
                write!(f, "\n  {}", e.message)?;
            } else {
                write!(f, "\n  {}: {}", e.key, e.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A configured path, relative to `base` (the config file's directory) unless absolute.
pub fn resolve(base: &Path, p: PathBuf) -> PathBuf {
    if p.is_absolute() {
        p
    } else {
        base.join(p)
    }
}

/// Whether a URL's host is loopback (plain `http` is allowed only there).
pub fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_port = rest.split('/').next().unwrap_or("");
    let host = if let Some(stripped) = host_port.strip_prefix('[') {
        stripped.split(']').next().unwrap_or("")
    } else {
        host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// An endpoint a token travels to: https, or plain http to a loopback host.
pub fn check_url(errors: &mut ConfigErrors, key: &str, url: &str) {
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        errors.push(key, format!("{url:?} is not an http(s) URL"));
    } else if lower.starts_with("http://") && !is_loopback_url(url) {
        errors.push(
            key,
            "plain http is allowed only for loopback hosts: use https (the token would travel in clear)",
        );
    }
}

//! The `[source]` section: as written (`RawSource`), and validated (`SourceConfig`).

use super::directory::DirectoryRules;
use super::ldap::LdapSettings;
use crate::section::{check_url, resolve, ConfigErrors};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, Deserialize)]
pub struct RawSource {
    pub kind: Option<String>,
    pub path: Option<PathBuf>,
    /// Directory `:<` file URLs in LDIF may point into; absent = URL values refused.
    pub allow_url_dir: Option<PathBuf>,
    /// SCIM source: the endpoint, its credentials (bearer token, or basic auth), paging.
    pub url: Option<String>,
    pub token_file: Option<PathBuf>,
    pub token_env: Option<String>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    pub page_size: Option<u32>,
    pub filter: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub timeout_secs: Option<u64>,
    pub max_retries: Option<u32>,
    /// Directory interpretation (LDIF, LDAP).
    pub group_classes: Option<Vec<String>>,
    pub member_attributes: Option<Vec<String>>,
    pub user_name_attributes: Option<Vec<String>>,
    pub key_attributes: Option<Vec<String>>,
    pub group_name_attribute: Option<String>,
    pub include_contacts: Option<bool>,
    /// CSV: the column listing a user's groups, and its separator.
    pub groups_column: Option<String>,
    pub groups_separator: Option<String>,
    pub delimiter: Option<String>,
    /// LDAP source (`kind = "ldap"`): `url`, `ca_file`, `password_file`, `password_env`,
    /// `page_size`, `timeout_secs` and `max_retries` above, and these.
    pub starttls: Option<bool>,
    pub bind_dn: Option<String>,
    pub base_dn: Option<String>,
    pub user_filter: Option<String>,
    pub group_filter: Option<String>,
    pub sasl_mechanism: Option<String>,
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    pub allow_plain_bind: Option<bool>,
    pub connect_timeout_secs: Option<u64>,
    pub change_poll_secs: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    Ldif,
    Csv,
    Json,
    Scim,
    Ldap,
}

#[derive(Clone, Debug)]
pub struct SourceConfig {
    pub kind: SourceKind,
    pub path: Option<PathBuf>,
    pub allow_url_dir: Option<PathBuf>,
    pub url: Option<String>,
    pub token_file: Option<PathBuf>,
    pub token_env: Option<String>,
    /// Basic auth instead of a bearer token when set.
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    pub page_size: u32,
    pub filter: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub timeout_secs: u64,
    /// Retries of one page request after the first attempt.
    pub max_retries: u32,
    pub directory: DirectoryRules,
    pub groups_column: String,
    pub groups_separator: String,
    pub delimiter: u8,
    /// Set for `kind = "ldap"`.
    pub ldap: Option<LdapSettings>,
}

impl RawSource {
    /// Validates the section, pushing every problem to `errors`; a value that is wrong is
    /// replaced by its default, so that the sections that depend on this one are checked too.
    /// `base` resolves relative paths (the config file's directory).
    pub fn validate(self, base: &Path, errors: &mut ConfigErrors) -> SourceConfig {
        let s = self;
        let kind = s.kind(errors);
        let path = s.path.clone().map(|p| resolve(base, p));
        match kind {
            SourceKind::Scim => match &s.url {
                None => errors.push("source.url", "required for kind = \"scim\""),
                Some(u) => check_url(errors, "source.url", u),
            },
            SourceKind::Ldap => {}
            _ if path.is_none() => {
                errors.push("source.path", "required for file sources: the export to read")
            }
            _ => {}
        }
        if kind == SourceKind::Scim {
            s.check_auth(errors);
        }
        let page_size = s.page_size.unwrap_or(500);
        if page_size == 0 || page_size > 10_000 {
            errors.push("source.page_size", "must be between 1 and 10000");
        }
        let max_retries = s.max_retries.unwrap_or(6);
        if max_retries > 20 {
            errors.push("source.max_retries", "must be between 0 and 20");
        }
        let directory = DirectoryRules::from_section(&s, errors);
        let ldap =
            (kind == SourceKind::Ldap).then(|| LdapSettings::from_section(&s, base, &directory, errors));
        let delimiter = match s.delimiter.as_deref() {
            None => b',',
            Some(d) if d.len() == 1 => d.as_bytes()[0],
            Some("\\t") | Some("tab") => b'\t',
            Some(_) => {
                errors.push("source.delimiter", "must be a single ASCII character (or \"tab\")");
                b','
            }
        };
        SourceConfig {
            kind,
            path,
            allow_url_dir: s.allow_url_dir.map(|p| resolve(base, p)),
            url: s.url,
            token_file: s.token_file.map(|p| resolve(base, p)),
            token_env: s.token_env,
            username: s.username,
            password_file: s.password_file.map(|p| resolve(base, p)),
            password_env: s.password_env,
            page_size,
            filter: s.filter.filter(|f| !f.trim().is_empty()),
            ca_file: s.ca_file.map(|p| resolve(base, p)),
            timeout_secs: s.timeout_secs.unwrap_or(30),
            max_retries,
            directory,
            groups_column: s.groups_column.unwrap_or_else(|| "groups".into()),
            groups_separator: s.groups_separator.unwrap_or_else(|| ";".into()),
            delimiter,
            ldap,
        }
    }

    fn kind(&self, errors: &mut ConfigErrors) -> SourceKind {
        match self.kind.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("ldif") | None => SourceKind::Ldif,
            Some("csv") => SourceKind::Csv,
            Some("json") => SourceKind::Json,
            Some("scim") => SourceKind::Scim,
            Some("ldap") => SourceKind::Ldap,
            Some(other) => {
                errors.push(
                    "source.kind",
                    format!("unknown source kind {other:?}: use ldif, csv, json, scim or ldap"),
                );
                SourceKind::Ldif
            }
        }
    }

    /// A SCIM source authenticates with a bearer token or with basic auth, not both.
    fn check_auth(&self, errors: &mut ConfigErrors) {
        let s = self;
        let bearer = s.token_file.is_some() || s.token_env.is_some();
        let password = s.password_file.is_some() || s.password_env.is_some();
        match &s.username {
            Some(_) if bearer => errors.push(
                "source.username",
                "basic auth (source.username) and a bearer token (source.token_file / source.token_env) \
                 are both set: keep one",
            ),
            Some(u) if u.is_empty() || u.contains(':') => {
                errors.push("source.username", "must be a non-empty user name without ':' (basic auth)")
            }
            None if password => errors.push(
                "source.username",
                "source.password_file / source.password_env need source.username (basic auth)",
            ),
            _ => {}
        }
        if s.password_file.is_some() && s.password_env.is_some() {
            errors.push("source.password_env", "source.password_file is set too: keep one");
        }
        if s.token_file.is_some() && s.token_env.is_some() {
            errors.push("source.token_env", "source.token_file is set too: keep one");
        }
    }
}

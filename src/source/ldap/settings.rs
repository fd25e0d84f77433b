//! The `[source]` keys of `kind = "ldap"`, validated into [`LdapSettings`].

use crate::section::{is_loopback_url, resolve, ConfigErrors};
use crate::source::directory::DirectoryRules;
use crate::source::RawSource;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How the connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `ldaps://`: TLS from the first byte.
    Ldaps,
    /// `ldap://` upgraded by the StartTLS extended operation before the bind.
    StartTls,
    /// `ldap://` in clear.
    Plain,
}

/// How scimsync authenticates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bind {
    /// No `bind_dn`: an anonymous read (many directories hide entries from it).
    Anonymous,
    /// A simple bind as `bind_dn`, the password from `password_file`, the systemd credential
    /// `source.password` or `password_env`.
    Simple { dn: String },
    /// SASL EXTERNAL: the identity is the client certificate presented over TLS.
    External,
    /// SASL GSSAPI: the identity is the Kerberos principal whose ticket is in the credential
    /// cache (`KRB5CCNAME`, or got from the keytab of `KRB5_CLIENT_KTNAME`); the server's is
    /// `ldap/HOST`, HOST as the URL names it. Only with the `gssapi` feature.
    Gssapi,
}

/// What a live LDAP read connects to, how, and what it searches.
#[derive(Clone, Debug)]
pub struct LdapSettings {
    pub url: String,
    pub transport: Transport,
    /// The only CAs trusted for the server's certificate; the system's roots otherwise.
    pub ca_file: Option<PathBuf>,
    /// A client certificate and its key (PEM), presented in the TLS handshake.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    pub bind: Bind,
    pub base_dn: String,
    /// As configured; `None`: [`LdapSettings::filters`] gives the default for the server.
    pub user_filter: Option<String>,
    pub group_filter: Option<String>,
    pub page_size: u32,
    pub connect_timeout: Duration,
    /// How long to wait for each answer (an entry, the end of a page) before the read fails.
    pub timeout: Duration,
    /// Whole reads tried again after a failure of the connection (a paged search's cookie does
    /// not survive its connection, so a read starts over).
    pub max_retries: u32,
    /// How often the daemon reads the directory's change marker; `None`: never.
    pub change_poll: Option<Duration>,
}

impl LdapSettings {
    /// The `ldap://host:port` part of the URL, for messages and origins.
    pub fn server(&self) -> &str {
        let rest = self.url.split_once("://").map_or(self.url.as_str(), |(_, r)| r);
        let end = rest.find('/').unwrap_or(rest.len());
        &self.url[..self.url.len() - rest.len() + end]
    }

    /// The host name as the URL gives it (what the server's certificate must name, and the
    /// HOST of its Kerberos service principal `ldap/HOST`).
    pub fn host(&self) -> &str {
        host_of(&self.url)
    }

    /// Validates the LDAP keys of `[source]`, pushing every problem to `errors`.
    pub(crate) fn from_section(
        s: &RawSource,
        base: &Path,
        rules: &DirectoryRules,
        errors: &mut ConfigErrors,
    ) -> LdapSettings {
        let url = s.url.clone().unwrap_or_default();
        let lower = url.to_ascii_lowercase();
        let starttls = s.starttls.unwrap_or(false);
        let transport = if lower.starts_with("ldaps://") {
            if starttls {
                errors.push("source.starttls", "ldaps:// is TLS already: remove starttls or use ldap://");
            }
            Transport::Ldaps
        } else if lower.starts_with("ldap://") {
            if starttls {
                Transport::StartTls
            } else {
                Transport::Plain
            }
        } else {
            if s.url.is_none() {
                errors
                    .push("source.url", "required for kind = \"ldap\": ldaps://HOST:636 or ldap://HOST:389");
            } else {
                errors.push("source.url", format!("{url:?} is not an ldap:// or ldaps:// URL"));
            }
            Transport::Ldaps
        };
        let bind = match (s.sasl_mechanism.as_deref().map(str::to_ascii_uppercase).as_deref(), &s.bind_dn) {
            (Some("EXTERNAL"), _) => {
                if transport == Transport::Plain {
                    errors.push(
                        "source.sasl_mechanism",
                        "EXTERNAL authenticates with a client certificate: use ldaps:// or starttls = true",
                    );
                }
                if s.client_cert_file.is_none() || s.client_key_file.is_none() {
                    errors.push(
                        "source.client_cert_file",
                        "sasl_mechanism = \"EXTERNAL\" needs client_cert_file and client_key_file",
                    );
                }
                Bind::External
            }
            (Some("GSSAPI"), _) if cfg!(feature = "gssapi") => {
                // Kerberos names the server by the host name of its service principal:
                // an address finds no ticket.
                let host = host_of(&url);
                if host.parse::<std::net::IpAddr>().is_ok() {
                    errors.push(
                        "source.url",
                        format!(
                            "GSSAPI (Kerberos) asks for a ticket to ldap/HOST with the URL's host: \
                             name the server by the host name of its service principal, not {host}"
                        ),
                    );
                }
                if s.bind_dn.is_some() {
                    errors.push(
                        "source.bind_dn",
                        "with sasl_mechanism = \"GSSAPI\" scimsync binds as its Kerberos principal: remove bind_dn",
                    );
                }
                Bind::Gssapi
            }
            (Some("GSSAPI"), _) => {
                errors.push(
                    "source.sasl_mechanism",
                    "GSSAPI (Kerberos) is not built into this scimsync: bind with a password or a client certificate (EXTERNAL), \
                     or build scimsync with `cargo build --features gssapi` (needs the MIT Kerberos development files)",
                );
                Bind::Anonymous
            }
            (Some(other), _) => {
                let known = if cfg!(feature = "gssapi") { "EXTERNAL or GSSAPI" } else { "EXTERNAL" };
                errors
                    .push("source.sasl_mechanism", format!("unknown SASL mechanism {other:?}: use {known}"));
                Bind::Anonymous
            }
            (None, Some(dn)) if dn.trim().is_empty() => {
                errors.push("source.bind_dn", "must not be empty (leave it out for an anonymous read)");
                Bind::Anonymous
            }
            (None, Some(dn)) => Bind::Simple { dn: dn.clone() },
            (None, None) => Bind::Anonymous,
        };
        if s.username.is_some() {
            errors.push("source.username", "an LDAP source binds as source.bind_dn");
        }
        if matches!(bind, Bind::Simple { .. })
            && transport == Transport::Plain
            && !is_loopback_url(&url)
            && !s.allow_plain_bind.unwrap_or(false)
        {
            errors.push(
                "source.url",
                "a simple bind over plain ldap:// would send the password in clear to a host that is not \
                 this machine: use ldaps://, set starttls = true, or set allow_plain_bind = true if the \
                 network is trusted",
            );
        }
        let client_cert = match (&s.client_cert_file, &s.client_key_file) {
            (Some(c), Some(k)) => Some((resolve(base, c.clone()), resolve(base, k.clone()))),
            (None, None) => None,
            _ => {
                errors.push("source.client_key_file", "client_cert_file and client_key_file go together");
                None
            }
        };
        let base_dn = s.base_dn.clone().unwrap_or_default();
        if base_dn.trim().is_empty() {
            errors.push(
                "source.base_dn",
                "required for kind = \"ldap\": the subtree to read (DC=corp,DC=example)",
            );
        }
        let _ = rules;
        let (user_filter, group_filter) = (s.user_filter.clone(), s.group_filter.clone());
        for (key, f) in [("source.user_filter", &user_filter), ("source.group_filter", &group_filter)] {
            let Some(f) = f else { continue };
            if ldap3::parse_filter(f).is_err() {
                errors.push(key, format!("{f:?} is not an LDAP filter (RFC 4515): check its parentheses"));
            }
        }
        let secs = |v: Option<u64>, d: u64, key: &str, errors: &mut ConfigErrors| {
            let v = v.unwrap_or(d);
            if v == 0 || v > 3600 {
                errors.push(key, "must be between 1 and 3600 seconds");
            }
            Duration::from_secs(v.clamp(1, 3600))
        };
        let connect_timeout = secs(s.connect_timeout_secs, 10, "source.connect_timeout_secs", errors);
        let timeout = secs(s.timeout_secs, 60, "source.timeout_secs", errors);
        let change_poll = match s.change_poll_secs {
            None | Some(0) => None,
            Some(v) if v > 3600 => {
                errors.push("source.change_poll_secs", "must be between 1 and 3600 seconds (0: off)");
                None
            }
            Some(v) => Some(Duration::from_secs(v)),
        };
        LdapSettings {
            url,
            transport,
            ca_file: s.ca_file.clone().map(|p| resolve(base, p)),
            client_cert,
            bind,
            base_dn,
            user_filter,
            group_filter,
            page_size: s.page_size.unwrap_or(500),
            connect_timeout,
            timeout,
            max_retries: s.max_retries.unwrap_or(2),
            change_poll,
        }
    }
}

/// The host of an LDAP URL, without port or the brackets of an IPv6 address.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_port = rest.split('/').next().unwrap_or("");
    match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.rsplit_once(':').map_or(host_port, |(h, _)| h),
    }
}

impl LdapSettings {
    /// The user and group filters: as configured, else what the directory rules read as users
    /// and groups, so that a live read gives the interpretation the same entries a full export
    /// does. On AD the user filter also leaves computers out at the server; elsewhere it cannot
    /// name the class (OpenLDAP takes a filter on an unknown class as undefined, and its
    /// negation too), and the interpretation counts and drops any computer.
    pub fn filters(&self, rules: &DirectoryRules, active_directory: bool) -> (String, String) {
        let user = self.user_filter.clone().unwrap_or_else(|| default_user_filter(rules, active_directory));
        let group = self.group_filter.clone().unwrap_or_else(|| default_group_filter(rules));
        (user, group)
    }
}

/// Every entry the directory rules would read as a user: the person classes and entries with a
/// user name (on AD, never computers).
fn default_user_filter(rules: &DirectoryRules, active_directory: bool) -> String {
    let classes = ["person", "organizationalPerson", "inetOrgPerson", "user", "posixAccount", "account"];
    let mut any: String = classes.iter().map(|c| format!("(objectClass={c})")).collect();
    any.extend(rules.user_name_attributes.iter().map(|a| format!("({a}=*)")));
    if active_directory {
        format!("(&(|{any})(!(objectClass=computer)))")
    } else {
        format!("(|{any})")
    }
}

/// The directory rules' group classes.
fn default_group_filter(rules: &DirectoryRules) -> String {
    let any: String = rules.group_classes.iter().map(|c| format!("(objectClass={c})")).collect();
    format!("(|{any})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(raw: RawSource) -> (LdapSettings, ConfigErrors) {
        let mut errors = ConfigErrors::default();
        let s = LdapSettings::from_section(
            &raw,
            Path::new("/etc/scimsync"),
            &DirectoryRules::default(),
            &mut errors,
        );
        (s, errors)
    }

    fn raw(url: &str) -> RawSource {
        RawSource {
            kind: Some("ldap".into()),
            url: Some(url.into()),
            base_dn: Some("dc=example,dc=com".into()),
            bind_dn: Some("cn=reader,dc=example,dc=com".into()),
            ..RawSource::default()
        }
    }

    fn keys(errors: &ConfigErrors) -> Vec<&str> {
        errors.0.iter().map(|e| e.key.as_str()).collect()
    }

    #[test]
    fn a_simple_bind_in_clear_to_another_host_is_refused_unless_allowed() {
        let (_, errors) = settings(raw("ldap://dc1.corp.example"));
        assert_eq!(keys(&errors), ["source.url"]);
        assert!(errors.0[0].message.contains("in clear"), "{}", errors.0[0].message);
        let (_, errors) =
            settings(RawSource { allow_plain_bind: Some(true), ..raw("ldap://dc1.corp.example") });
        assert!(errors.is_empty());
        let (s, errors) = settings(RawSource { starttls: Some(true), ..raw("ldap://dc1.corp.example") });
        assert!(errors.is_empty());
        assert_eq!(s.transport, Transport::StartTls);
        let (s, errors) = settings(raw("ldap://127.0.0.1:3890"));
        assert!(errors.is_empty());
        assert_eq!(
            (s.transport, s.host(), s.server()),
            (Transport::Plain, "127.0.0.1", "ldap://127.0.0.1:3890")
        );
    }

    #[test]
    fn filters_are_checked_and_default_to_the_directory_rules() {
        let (s, errors) = settings(raw("ldaps://dc1:636/"));
        assert!(errors.is_empty(), "{errors:?}");
        let rules = DirectoryRules::default();
        let (user, group) = s.filters(&rules, true);
        assert!(user.contains("(!(objectClass=computer))") && user.contains("(mail=*)"), "{user}");
        assert!(
            group.contains("(objectClass=groupOfNames)") && group.contains("(objectClass=group)"),
            "{group}"
        );
        let (user, _) = s.filters(&rules, false);
        assert!(!user.contains("computer") && user.starts_with("(|"), "{user}");
        for f in [s.filters(&rules, true), s.filters(&rules, false)] {
            assert!(ldap3::parse_filter(&f.0).is_ok() && ldap3::parse_filter(&f.1).is_ok(), "{f:?}");
        }
        assert_eq!(s.server(), "ldaps://dc1:636");
        let (_, errors) =
            settings(RawSource { user_filter: Some("(&(objectClass=user)".into()), ..raw("ldaps://dc1") });
        assert_eq!(keys(&errors), ["source.user_filter"]);
    }

    #[test]
    fn external_needs_tls_and_a_client_certificate() {
        let (_, errors) =
            settings(RawSource { sasl_mechanism: Some("external".into()), ..raw("ldap://dc1") });
        assert_eq!(keys(&errors), ["source.sasl_mechanism", "source.client_cert_file"]);
        let (s, errors) = settings(RawSource {
            sasl_mechanism: Some("EXTERNAL".into()),
            client_cert_file: Some("client.pem".into()),
            client_key_file: Some("client.key".into()),
            ..raw("ldaps://dc1")
        });
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(s.bind, Bind::External);
        assert_eq!(s.client_cert.unwrap().0, Path::new("/etc/scimsync/client.pem"));
    }

    fn gssapi(url: &str) -> RawSource {
        RawSource { sasl_mechanism: Some("gssapi".into()), bind_dn: None, ..raw(url) }
    }

    #[cfg(not(feature = "gssapi"))]
    #[test]
    fn gssapi_is_refused_with_how_to_build_it_in() {
        let (_, errors) = settings(gssapi("ldap://dc1.corp.example"));
        assert_eq!(keys(&errors), ["source.sasl_mechanism"]);
        let message = &errors.0[0].message;
        assert!(
            message.contains("not built into") && message.contains("cargo build --features gssapi"),
            "{message}"
        );
    }

    #[cfg(feature = "gssapi")]
    #[test]
    fn gssapi_is_accepted_over_any_transport_with_a_host_name() {
        for url in ["ldap://dc1.corp.example", "ldaps://dc1.corp.example:636"] {
            let (s, errors) = settings(gssapi(url));
            assert!(errors.is_empty(), "{url}: {errors:?}");
            assert_eq!((&s.bind, s.host()), (&Bind::Gssapi, "dc1.corp.example"));
        }
        let (_, errors) = settings(gssapi("ldap://192.0.2.10:389"));
        assert_eq!(keys(&errors), ["source.url"]);
        assert!(errors.0[0].message.contains("ldap/HOST"), "{}", errors.0[0].message);
        let (_, errors) = settings(RawSource { bind_dn: Some("cn=reader".into()), ..gssapi("ldap://dc1") });
        assert_eq!(keys(&errors), ["source.bind_dn"]);
    }
}

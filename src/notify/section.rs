//! The `[notify]` section: where scimsync tells people what needs them (a webhook, mail), each
//! channel optional, every problem reported at once under its key.

use crate::section::{check_url, is_loopback_url, resolve, ConfigErrors};
use lettre::message::Mailbox;
use reqwest::Url;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Clone, Debug, Default, Deserialize)]
pub struct RawNotify {
    pub webhook_url: Option<String>,
    pub smtp_url: Option<String>,
    pub smtp_username: Option<String>,
    pub smtp_password_file: Option<PathBuf>,
    pub smtp_password_env: Option<String>,
    pub smtp_ca_file: Option<PathBuf>,
    /// Send mail without TLS to a host that is not loopback: an explicit opt-in.
    pub smtp_plain: Option<bool>,
    pub email_from: Option<String>,
    pub email_to: Option<Vec<String>>,
    pub timeout_secs: Option<u64>,
}

/// `[notify]` validated.
#[derive(Clone, Debug)]
pub struct NotifyConfig {
    pub webhook: Option<Webhook>,
    pub email: Option<Email>,
    /// The most one channel may take to send one message.
    pub timeout: Duration,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig { webhook: None, email: None, timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS) }
    }
}

const DEFAULT_TIMEOUT_SECS: u64 = 10;

impl NotifyConfig {
    pub fn is_empty(&self) -> bool {
        self.webhook.is_none() && self.email.is_none()
    }
}

/// A webhook URL. Its path and query may carry a secret (Slack's do), so it is shown only as
/// scheme, host and port.
#[derive(Clone)]
pub struct Webhook {
    pub url: Url,
}

impl Webhook {
    /// The URL with its path and query hidden, for logs and messages.
    pub fn shown(&self) -> String {
        let port = self.url.port().map(|p| format!(":{p}")).unwrap_or_default();
        format!("{}://{}{port}/…", self.url.scheme(), self.url.host_str().unwrap_or(""))
    }
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Webhook({})", self.shown())
    }
}

/// How mail reaches the SMTP server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// `smtps://`: TLS from the first byte.
    Implicit,
    /// `smtp://` to any host: STARTTLS, or no mail.
    Required,
    /// `smtp://` to a loopback host: STARTTLS when the server offers it.
    Opportunistic,
    /// `smtp_plain = true`: no TLS.
    Plain,
}

#[derive(Clone, Debug)]
pub struct Email {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
}

fn mailbox(errors: &mut ConfigErrors, key: &str, text: &str) -> Option<Mailbox> {
    match text.parse::<Mailbox>() {
        Ok(m) => Some(m),
        Err(e) => {
            errors.push(key, format!("{text:?} is not a mail address ({e}): write name@example.com"));
            None
        }
    }
}

impl RawNotify {
    /// Validates the section; `base` resolves relative paths (the config file's directory).
    pub fn validate(self, base: &Path, errors: &mut ConfigErrors) -> NotifyConfig {
        let timeout_secs = self.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
        if !(1..=60).contains(&timeout_secs) {
            errors.push(
                "notify.timeout_secs",
                "must be between 1 and 60: a notification never holds a run up for long",
            );
        }
        let webhook = self.webhook_url.as_deref().and_then(|url| webhook(errors, url));
        let email = self.email(base, errors);
        NotifyConfig { webhook, email, timeout: Duration::from_secs(timeout_secs.clamp(1, 60)) }
    }

    fn email(&self, base: &Path, errors: &mut ConfigErrors) -> Option<Email> {
        let Some(url) = &self.smtp_url else {
            for (key, set) in [
                ("notify.email_from", self.email_from.is_some()),
                ("notify.email_to", self.email_to.is_some()),
                ("notify.smtp_username", self.smtp_username.is_some()),
                ("notify.smtp_password_file", self.smtp_password_file.is_some()),
                ("notify.smtp_password_env", self.smtp_password_env.is_some()),
                ("notify.smtp_ca_file", self.smtp_ca_file.is_some()),
                ("notify.smtp_plain", self.smtp_plain.is_some()),
            ] {
                if set {
                    errors.push(
                        key,
                        "needs notify.smtp_url: set the mail server, e.g. \"smtps://mail.example.com:465\"",
                    );
                }
            }
            return None;
        };
        let server = smtp_server(errors, url, self.smtp_plain.unwrap_or(false));
        let from = match &self.email_from {
            Some(f) => mailbox(errors, "notify.email_from", f),
            None => {
                errors.push(
                    "notify.email_from",
                    "is required with notify.smtp_url: write the sender, e.g. \"scimsync@example.com\"",
                );
                None
            }
        };
        let to: Option<Vec<Mailbox>> = match &self.email_to {
            Some(list) if !list.is_empty() => {
                // Every address is checked before any bad one makes the list unusable.
                let parsed: Vec<Option<Mailbox>> = list
                    .iter()
                    .enumerate()
                    .map(|(i, t)| mailbox(errors, &format!("notify.email_to[{i}]"), t))
                    .collect();
                parsed.into_iter().collect()
            }
            _ => {
                errors.push("notify.email_to", "is required with notify.smtp_url: list the recipients, e.g. [\"idm-admins@example.com\"]");
                None
            }
        };
        if self.smtp_username.is_none()
            && (self.smtp_password_file.is_some() || self.smtp_password_env.is_some())
        {
            errors.push(
                "notify.smtp_username",
                "is required when a password is configured: name the SMTP user",
            );
        }
        let (host, port, tls) = server?;
        Some(Email {
            host,
            port,
            tls,
            username: self.smtp_username.clone(),
            password_file: self.smtp_password_file.clone().map(|p| resolve(base, p)),
            password_env: self.smtp_password_env.clone(),
            ca_file: self.smtp_ca_file.clone().map(|p| resolve(base, p)),
            from: from?,
            to: to?,
        })
    }
}

fn webhook(errors: &mut ConfigErrors, url: &str) -> Option<Webhook> {
    let key = "notify.webhook_url";
    let before = errors.0.len();
    check_url(errors, key, url);
    if errors.0.len() > before {
        // check_url quotes the URL: keep its secret out of the message. And what travels here
        // is the URL's secret and the messages, not the token.
        for e in &mut errors.0[before..] {
            e.message = e
                .message
                .replace(url, "the URL")
                .replace("the token would travel", "the URL's secret and the messages would travel");
        }
        return None;
    }
    match Url::parse(url) {
        Ok(u) if u.host_str().is_some() => Some(Webhook { url: u }),
        _ => {
            errors.push(key, "is not a URL: write https://HOST/PATH as the chat service gives it");
            None
        }
    }
}

/// `smtps://HOST[:PORT]` or `smtp://HOST[:PORT]`: the host, port and how TLS is used.
fn smtp_server(errors: &mut ConfigErrors, url: &str, plain: bool) -> Option<(String, u16, SmtpTls)> {
    let key = "notify.smtp_url";
    let parsed = match Url::parse(url) {
        Ok(u) => u,
        Err(e) => {
            errors.push(key, format!("is not a URL ({e}): write smtps://HOST:465 or smtp://HOST:587"));
            return None;
        }
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        errors.push(
            key,
            "must not carry credentials: set notify.smtp_username and put the password in notify.smtp_password_file (or systemd's LoadCredential=notify.smtp_password:PATH)",
        );
        return None;
    }
    let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) else {
        errors.push(key, "names no host: write smtps://HOST:465");
        return None;
    };
    if !matches!(parsed.path(), "" | "/") || parsed.query().is_some() {
        errors.push(
            key,
            "takes no path or query: write smtps://HOST:465 or smtp://HOST:587 (see notify.smtp_plain)",
        );
        return None;
    }
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let (tls, default_port) = match parsed.scheme() {
        "smtps" if plain => {
            errors.push("notify.smtp_plain", "applies to smtp:// only: smtps:// always uses TLS");
            return None;
        }
        "smtps" => (SmtpTls::Implicit, 465),
        "smtp" if plain => (SmtpTls::Plain, 25),
        "smtp" if is_loopback_url(url) => (SmtpTls::Opportunistic, 25),
        "smtp" => (SmtpTls::Required, 587),
        other => {
            errors.push(key, format!("scheme {other:?} is not smtps or smtp: write smtps://HOST:465 (implicit TLS) or smtp://HOST:587 (STARTTLS)"));
            return None;
        }
    };
    Some((host, parsed.port().unwrap_or(default_port), tls))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(raw: RawNotify) -> Result<NotifyConfig, ConfigErrors> {
        let mut errors = ConfigErrors::default();
        let config = raw.validate(Path::new("/etc/scimsync"), &mut errors);
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors)
        }
    }

    #[test]
    fn both_channels_are_optional_and_read_when_set() {
        let none = validate(RawNotify::default()).unwrap();
        assert!(none.is_empty() && none.timeout == Duration::from_secs(10));
        let both = validate(RawNotify {
            webhook_url: Some("https://hooks.example.com/services/T0/B0/s3cret".into()),
            smtp_url: Some("smtps://mail.example.com".into()),
            smtp_username: Some("scimsync".into()),
            smtp_password_file: Some("smtp.password".into()),
            email_from: Some("scimsync <scimsync@example.com>".into()),
            email_to: Some(vec!["idm-admins@example.com".into()]),
            ..RawNotify::default()
        })
        .unwrap();
        let hook = both.webhook.unwrap();
        assert_eq!(hook.shown(), "https://hooks.example.com/…");
        assert!(!format!("{hook:?}").contains("s3cret"));
        let email = both.email.unwrap();
        assert_eq!(
            (email.host.as_str(), email.port, email.tls),
            ("mail.example.com", 465, SmtpTls::Implicit)
        );
        assert_eq!(email.password_file.unwrap(), Path::new("/etc/scimsync/smtp.password"));
        let starttls = |url: &str, plain| {
            let raw = RawNotify {
                smtp_url: Some(url.into()),
                smtp_plain: plain,
                email_from: Some("a@example.com".into()),
                email_to: Some(vec!["b@example.com".into()]),
                ..RawNotify::default()
            };
            let email = validate(raw).unwrap().email.unwrap();
            (email.port, email.tls)
        };
        assert_eq!(starttls("smtp://mail.example.com", None), (587, SmtpTls::Required));
        assert_eq!(starttls("smtp://127.0.0.1:2525", None), (2525, SmtpTls::Opportunistic));
        assert_eq!(starttls("smtp://relay.example.com:25", Some(true)), (25, SmtpTls::Plain));
    }

    #[test]
    fn every_problem_is_reported_at_once_without_the_webhook_secret() {
        let errors = validate(RawNotify {
            webhook_url: Some("http://hooks.example.com/services/s3cret".into()),
            smtp_url: Some("smtps://user:pw@mail.example.com".into()),
            smtp_password_file: Some("p".into()),
            email_from: Some("not an address".into()),
            timeout_secs: Some(0),
            ..RawNotify::default()
        })
        .unwrap_err();
        let text = errors.to_string();
        for key in [
            "notify.timeout_secs",
            "notify.webhook_url",
            "notify.smtp_url",
            "notify.email_from",
            "notify.email_to",
            "notify.smtp_username",
        ] {
            assert!(errors.0.iter().any(|e| e.key == key), "{key} missing from {text}");
        }
        assert!(!text.contains("s3cret") && !text.contains("pw@"), "{text}");
        let orphan =
            validate(RawNotify { email_to: Some(vec!["a@example.com".into()]), ..RawNotify::default() });
        assert!(orphan.unwrap_err().to_string().contains("needs notify.smtp_url"));
        let scheme = validate(RawNotify {
            smtp_url: Some("https://mail.example.com".into()),
            email_from: Some("a@example.com".into()),
            email_to: Some(vec!["b@example.com".into()]),
            ..RawNotify::default()
        });
        assert!(scheme.unwrap_err().to_string().contains("is not smtps or smtp"));
        let bad_to = validate(RawNotify {
            smtp_url: Some("smtps://mail.example.com".into()),
            email_from: Some("a@example.com".into()),
            email_to: Some(vec!["b@example.com".into(), "no address".into(), "also bad".into()]),
            ..RawNotify::default()
        })
        .unwrap_err();
        let keys: Vec<&str> = bad_to.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["notify.email_to[1]", "notify.email_to[2]"]);
    }
}

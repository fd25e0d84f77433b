//! The channels a message goes through: a webhook (JSON POST, by the project's reqwest with
//! rustls) and mail (lettre over SMTP with rustls). Each send is bounded by `notify.timeout_secs`
//! and its error is a sentence that never carries the webhook's path, the token or a password.

use super::message::Message;
use super::section::{Email, NotifyConfig, SmtpTls, Webhook};
use crate::secrets;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};
use secrecy::ExposeSecret as _;
use std::time::Duration;

/// A way to reach people.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Webhook,
    Email,
}

impl Channel {
    pub const ALL: [Channel; 2] = [Channel::Webhook, Channel::Email];

    /// The `channel` label on `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Webhook => "webhook",
            Channel::Email => "email",
        }
    }
}

/// Sends `message` through every configured channel at once; what each came to.
pub async fn send_all(config: &NotifyConfig, message: &Message) -> Vec<(Channel, Result<(), String>)> {
    let timeout = config.timeout;
    let webhook = async {
        match &config.webhook {
            Some(w) => Some((Channel::Webhook, bounded(timeout, post(w, message, timeout)).await)),
            None => None,
        }
    };
    let email = async {
        match &config.email {
            Some(e) => Some((Channel::Email, bounded(timeout, mail(e, message, timeout)).await)),
            None => None,
        }
    };
    let (w, e) = tokio::join!(webhook, email);
    w.into_iter().chain(e).collect()
}

async fn bounded(
    timeout: Duration,
    send: impl std::future::Future<Output = Result<(), String>>,
) -> Result<(), String> {
    match tokio::time::timeout(timeout, send).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {} s (notify.timeout_secs)", timeout.as_secs())),
    }
}

/// POSTs the message's JSON; any status but 2xx is a failure.
async fn post(hook: &Webhook, message: &Message, timeout: Duration) -> Result<(), String> {
    let client = crate::scim_http::http_client(timeout.as_secs(), None, "notify.webhook_url")?;
    let answer = client
        .post(hook.url.clone())
        .json(&message.webhook_body())
        .send()
        .await
        // reqwest names the URL in its errors: the path may be the webhook's secret.
        .map_err(|e| {
            format!("cannot reach the webhook {}: {}", hook.shown(), error_chain(&e.without_url()))
        })?;
    let status = answer.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("the webhook {} answered {status}", hook.shown()))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Sends the message as a plain-text mail to every `email_to`.
async fn mail(email: &Email, message: &Message, timeout: Duration) -> Result<(), String> {
    let server = format!("{}:{}", email.host, email.port);
    let mut builder = lettre::Message::builder().from(email.from.clone()).subject(message.subject.clone());
    for to in &email.to {
        builder = builder.to(to.clone());
    }
    let mail = builder
        .header(ContentType::TEXT_PLAIN)
        .body(format!("{}\n", message.text))
        .map_err(|e| format!("cannot build the mail: {e}"))?;
    let transport = transport(email, timeout)?;
    transport.send(mail).await.map_err(|e| format!("cannot send mail through {server}: {e}"))?;
    Ok(())
}

fn transport(email: &Email, timeout: Duration) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let params = || -> Result<TlsParameters, String> {
        let mut params = TlsParameters::builder(email.host.clone());
        if let Some(ca) = &email.ca_file {
            let pem = std::fs::read(ca).map_err(|e| format!("notify.smtp_ca_file {}: {e}", ca.display()))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| format!("notify.smtp_ca_file {}: not a PEM certificate: {e}", ca.display()))?;
            params = params.add_root_certificate(cert);
        }
        params.build_rustls().map_err(|e| format!("cannot set up TLS for {}: {e}", email.host))
    };
    let tls = match email.tls {
        SmtpTls::Implicit => Tls::Wrapper(params()?),
        SmtpTls::Required => Tls::Required(params()?),
        SmtpTls::Opportunistic => Tls::Opportunistic(params()?),
        SmtpTls::Plain => Tls::None,
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(email.host.as_str())
        .port(email.port)
        .tls(tls)
        .timeout(Some(timeout));
    if let Some(user) = &email.username {
        let password =
            secrets::load_smtp_password(email.password_file.as_deref(), email.password_env.as_deref())
                .map_err(|e| e.to_string())?;
        builder =
            builder.credentials(Credentials::new(user.clone(), password.secret.expose_secret().to_owned()));
    }
    Ok(builder.build())
}

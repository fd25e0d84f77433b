//! The target as a run meets it: the client built from the config and its token, and how near
//! the token is to expiring.

use crate::config::Config;
use crate::secrets;
use crate::target::TargetConfig;
use crate::target::{ClientOptions, TargetClient};
use anyhow::bail;

/// Builds the target client from the config and the token.
pub fn connect(config: &Config, mut opts: ClientOptions) -> anyhow::Result<TargetClient> {
    if config.target.url.is_none() {
        bail!("target.url is not set: add the SCIM endpoint of the target to the config");
    }
    let token = secrets::load_token(&config.target)?;
    opts.token_source.get_or_insert(token.source);
    Ok(TargetClient::with_options(&config.target, token.secret, opts)?)
}

/// How near the target token is to its expiry (`target.token_expires`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenExpiry {
    /// Whole days left; negative once it expired.
    pub days_left: i64,
}

impl TokenExpiry {
    /// `None` when the config does not say when the token expires.
    pub fn of(target: &TargetConfig, now: i64) -> Option<TokenExpiry> {
        let expires = target.token_expires?;
        Some(TokenExpiry { days_left: (expires - now).div_euclid(86_400) })
    }

    /// Logs a warning 30 and 7 days before the expiry, an error after it.
    pub fn warn(self) {
        let days_left = self.days_left;
        match days_left {
            d if d < 0 => tracing::error!(days_left, "The target token has expired: generate a new one in the target's admin console and write it to the token file."),
            0..=7 => tracing::warn!(days_left, "The target token expires within 7 days: generate a new one now."),
            8..=30 => tracing::warn!(days_left, "The target token expires within 30 days: plan its renewal."),
            _ => {}
        }
    }

    /// What `status` adds after the days left.
    pub fn note(self) -> &'static str {
        match self.days_left {
            d if d < 0 => " — EXPIRED: generate a new token and write it to target.token_file",
            0..=7 => " — renew it now",
            8..=30 => " — renew it soon",
            _ => "",
        }
    }
}

//! Configuration: figment layers (TOML file, then `SCIMSYNC_…` environment) → `RawConfig` →
//! validated `Config`. Validation is pure and reports every problem at once, each with its key.

mod raw;
mod validate;

pub use raw::*;
pub use validate::{
    is_loopback_url, validate, Config, ConfigError, ConfigErrors, DirectoryRules, Profile, SourceConfig,
    SourceKind, TargetConfig,
};

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use std::path::Path;

/// The default config location.
pub const DEFAULT_PATH: &str = "/etc/scimsync/scimsync.toml";

/// Reads the layers into a raw config. Unknown keys and type errors are reported together,
/// each with its key and where it came from.
pub fn load_raw(path: &Path) -> Result<RawConfig, ConfigErrors> {
    if !path.exists() {
        return Err(ConfigErrors::one(
            "",
            format!(
                "config file {} not found: pass --config PATH or create it from config/scimsync.example.toml",
                path.display()
            ),
        ));
    }
    let figment = Figment::new().merge(Toml::file(path)).merge(Env::prefixed("SCIMSYNC_").split("__"));
    from_figment(&figment, &path.display().to_string())
}

/// Deserialises a figment into a raw config, collecting unknown keys instead of stopping at the
/// first one.
pub fn from_figment(figment: &Figment, origin: &str) -> Result<RawConfig, ConfigErrors> {
    let value: figment::value::Value = figment
        .extract()
        .map_err(|e| ConfigErrors::one("", format!("{origin}: {}", e.to_string().to_lowercase())))?;
    let mut unknown = Vec::new();
    let mut track = |p: serde_ignored::Path<'_>| unknown.push(p.to_string());
    let de = serde_ignored::Deserializer::new(&value, &mut track);
    let result: Result<RawConfig, _> = serde_path_to_error::deserialize(de);
    let mut errors = ConfigErrors::default();
    for key in unknown {
        let source = match figment.find_metadata(&key) {
            Some(m) => match &m.source {
                Some(figment::Source::File(p)) => format!(" (in {})", p.display()),
                _ if m.name.contains("environment") => {
                    format!(
                        " (from the environment variable SCIMSYNC_{})",
                        key.to_uppercase().replace('.', "__")
                    )
                }
                _ => format!(" (from {})", m.name),
            },
            None => String::new(),
        };
        errors.push(
            &key,
            format!(
                "unknown key{source}: remove it or check its spelling against config/scimsync.example.toml"
            ),
        );
    }
    match result {
        Ok(raw) if errors.is_empty() => Ok(raw),
        Ok(_) => Err(errors),
        Err(e) => {
            let key = e.path().to_string();
            errors.push(&key, e.into_inner().to_string());
            Err(errors)
        }
    }
}

/// Loads and validates, reporting every problem at once.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let raw = load_raw(path)?;
    let base = path.parent().unwrap_or(Path::new("."));
    validate(raw, base)
}

#[cfg(test)]
mod tests;

//! The HTTP set-up the SCIM target and the SCIM source share: the base URL check and the client.

use reqwest::Url;
use std::path::Path;
use std::time::Duration;

/// A SCIM base URL from config key `key`: http or https, without a trailing slash, query or
/// fragment. The error names the key and the value.
pub fn base_url(url: &str, key: &str) -> Result<Url, String> {
    let mut base = Url::parse(url.trim_end_matches('/')).map_err(|e| format!("{key} {url:?}: {e}"))?;
    if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
        return Err(format!("{key} {url:?} is not an http(s) URL"));
    }
    base.set_query(None);
    base.set_fragment(None);
    Ok(base)
}

/// The HTTP client: scimsync's user agent, the request timeout (connecting gets at most 10 s of
/// it) and, from `ca_file` (config key `ca_key`), certificates trusted in addition to the
/// platform's roots.
pub fn http_client(
    timeout_secs: u64,
    ca_file: Option<&Path>,
    ca_key: &str,
) -> Result<reqwest::Client, String> {
    // reqwest is built without a default crypto provider; ring is the one compiled in.
    // Installing fails harmlessly when a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("scimsync/", env!("CARGO_PKG_VERSION")))
        .timeout(Duration::from_secs(timeout_secs.max(1)))
        .connect_timeout(Duration::from_secs(timeout_secs.clamp(1, 10)));
    if let Some(ca) = ca_file {
        let pem = std::fs::read(ca).map_err(|e| format!("{ca_key} {}: {e}", ca.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("{ca_key} {}: not a PEM certificate: {e}", ca.display()))?;
        if certs.is_empty() {
            return Err(format!("{ca_key} {}: no PEM certificate in it", ca.display()));
        }
        builder = builder.tls_certs_merge(certs);
    }
    builder.build().map_err(|e| {
        // reqwest says only "builder error"; the cause is in its sources.
        let mut said = format!("cannot set up the HTTP client: {e}");
        let mut next = std::error::Error::source(&e);
        while let Some(cause) = next {
            said.push_str(&format!(": {cause}"));
            next = cause.source();
        }
        if ca_file.is_none() {
            said.push_str(
                " (the platform's CA certificates are read from /etc/ssl/certs: on Debian, install \
                 ca-certificates; or name the target's CA in ",
            );
            said.push_str(ca_key);
            said.push(')');
        }
        said
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked_and_trimmed() {
        let u = base_url("https://idp.example/scim/v2/", "source.url").unwrap();
        assert_eq!(u.as_str(), "https://idp.example/scim/v2");
        let u = base_url("https://idp.example/scim/v2?x=1#f", "source.url").unwrap();
        assert_eq!(u.as_str(), "https://idp.example/scim/v2");
        let err = base_url("ftp://idp.example/scim", "target.url").unwrap_err();
        assert!(err.starts_with("target.url \"ftp://idp.example/scim\""), "{err}");
        assert!(base_url("not a url", "target.url").unwrap_err().starts_with("target.url"));
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused_by_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("ca.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let err = http_client(30, Some(&empty), "source.ca_file").unwrap_err();
        assert!(err.starts_with("source.ca_file") && err.contains("no PEM certificate"), "{err}");
        let missing = http_client(30, Some(&dir.path().join("absent.pem")), "target.ca_file").unwrap_err();
        assert!(missing.starts_with("target.ca_file"), "{missing}");
    }
}

//! The metrics endpoint's web config (`metrics.web_config_file`), in the format Prometheus
//! exporters share (exporter-toolkit's `web-config.yml`): TLS with an optional verified client
//! certificate, basic auth against bcrypt hashes, extra response headers. Read and checked when
//! the config is loaded (at start and on SIGHUP), so a reload swaps it in with the config.
//!
//! Keys of the format that scimsync does not implement (`cipher_suites`, `curve_preferences`,
//! `client_allowed_sans`, `rate_limit`) are refused by name rather than silently ignored.

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::de::IgnoredAny;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use subtle::ConstantTimeEq as _;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<RawHttp>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
    rate_limit: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    client_ca_file: Option<PathBuf>,
    min_version: Option<String>,
    max_version: Option<String>,
    prefer_server_cipher_suites: Option<bool>,
    client_allowed_sans: Option<IgnoredAny>,
    cipher_suites: Option<IgnoredAny>,
    curve_preferences: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    /// Accepted for compatibility: the endpoint speaks HTTP/1.1 only.
    #[allow(dead_code)]
    http2: Option<bool>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// The response headers exporter-toolkit lets a web config set.
const HEADERS: [&str; 5] = [
    "Content-Security-Policy",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "X-XSS-Protection",
    "Strict-Transport-Security",
];

/// One `basic_auth_users` entry.
struct User {
    hash: String,
    /// SHA-256 of the last password that verified against `hash`: a scrape then costs a hash
    /// and a constant-time comparison instead of a bcrypt run (tens of milliseconds by design).
    verified: Mutex<Option<[u8; 32]>>,
}

/// A web config, read and checked.
pub struct WebConfig {
    pub path: PathBuf,
    tls: Option<Arc<rustls::ServerConfig>>,
    /// `client_auth_type: RequireAndVerifyClientCert`: the TLS handshake authenticates.
    client_certs_required: bool,
    users: BTreeMap<String, User>,
    headers: Vec<(&'static str, String)>,
}

impl std::fmt::Debug for WebConfig {
    /// Names what is configured, never a hash.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("path", &self.path)
            .field("tls", &self.tls.is_some())
            .field("client_certs_required", &self.client_certs_required)
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("headers", &self.headers)
            .finish()
    }
}

/// What a basic-auth check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// No basic auth is configured, or the password matched one verified before.
    Allowed,
    Denied,
    /// The password must be verified with bcrypt: call [`WebConfig::verify`] (slow, blocking).
    Verify,
}

impl WebConfig {
    /// Reads and checks `path`; relative paths inside it are resolved from its directory.
    /// Every problem is returned, each a sentence naming its key.
    pub fn load(path: &Path) -> Result<WebConfig, Vec<String>> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| vec![format!("cannot read {}: {e}", path.display())])?;
        let raw: RawWebConfig = if text.trim().is_empty() {
            RawWebConfig::default()
        } else {
            serde_saphyr::from_str_with_options(&text, serde_saphyr::options! { with_snippet: false }).map_err(|e| {
                vec![format!(
                    "{}: {e} (the keys are those of Prometheus' exporter-toolkit web config: tls_server_config, http_server_config, basic_auth_users)",
                    path.display()
                )]
            })?
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let mut problems = Vec::new();
        if raw.rate_limit.is_some() {
            problems.push("rate_limit is not supported by scimsync: remove it".to_owned());
        }
        let (tls, client_certs_required) = match raw.tls_server_config {
            Some(t) => match tls_config(t, base, &mut problems) {
                Some((config, required)) => (Some(Arc::new(config)), required),
                None => (None, false),
            },
            None => (None, false),
        };
        let mut users = BTreeMap::new();
        for (name, hash) in raw.basic_auth_users {
            if let Err(e) = hash.parse::<bcrypt::HashParts>() {
                problems.push(format!(
                    "basic_auth_users.{name} is not a bcrypt hash ({e}): write the output of `htpasswd -nBC 10 \"\" | tr -d ':\\n'`"
                ));
            }
            users.insert(name, User { hash, verified: Mutex::new(None) });
        }
        let mut headers = Vec::new();
        for (name, value) in raw.http_server_config.map(|h| h.headers).unwrap_or_default() {
            match HEADERS.iter().find(|h| h.eq_ignore_ascii_case(&name)) {
                Some(h) if hyper::header::HeaderValue::from_str(&value).is_err() => problems.push(format!(
                    "http_server_config.headers.{h}: {value:?} cannot be sent in a header (control characters)"
                )),
                Some(h) if !value.is_empty() => headers.push((*h, value)),
                Some(_) => {}
                None => problems.push(format!(
                    "http_server_config.headers.{name} is not one of the headers a web config may set ({})",
                    HEADERS.join(", ")
                )),
            }
        }
        if !problems.is_empty() {
            return Err(problems.into_iter().map(|p| format!("{}: {p}", path.display())).collect());
        }
        Ok(WebConfig { path: path.to_owned(), tls, client_certs_required, users, headers })
    }

    /// The TLS server config, when `tls_server_config` is set.
    pub fn tls(&self) -> Option<&Arc<rustls::ServerConfig>> {
        self.tls.as_ref()
    }

    /// Whether every request must authenticate (basic auth, or a verified client certificate).
    pub fn authenticates(&self) -> bool {
        !self.users.is_empty() || self.client_certs_required
    }

    /// Headers added to every response.
    pub fn headers(&self) -> &[(&'static str, String)] {
        &self.headers
    }

    /// The quick part of checking a request's `Authorization` header.
    pub fn check(&self, authorization: Option<&str>) -> Check {
        if self.users.is_empty() {
            return Check::Allowed;
        }
        let Some((user, password)) = authorization.and_then(basic_credentials) else {
            return Check::Denied;
        };
        let Some(entry) = self.users.get(&user) else { return Check::Verify };
        let digest = digest(&user, &password);
        let known = *entry.verified.lock().unwrap_or_else(|e| e.into_inner());
        match known {
            Some(known) if bool::from(known.ct_eq(&digest)) => Check::Allowed,
            _ => Check::Verify,
        }
    }

    /// Verifies basic credentials with bcrypt (slow by design: call from a blocking thread) and
    /// remembers a password that verified. An unknown user costs the same as a wrong password.
    pub fn verify(&self, authorization: Option<&str>) -> bool {
        let Some((user, password)) = authorization.and_then(basic_credentials) else { return false };
        let (entry, known) = match self.users.get(&user) {
            Some(entry) => (entry, true),
            None => match self.users.values().next() {
                Some(any) => (any, false),
                None => return true,
            },
        };
        let ok = bcrypt::verify(&password, &entry.hash).unwrap_or(false) && known;
        if ok {
            *entry.verified.lock().unwrap_or_else(|e| e.into_inner()) = Some(digest(&user, &password));
        }
        ok
    }
}

fn digest(user: &str, password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(user.as_bytes());
    h.update([0]);
    h.update(password.as_bytes());
    h.finalize().into()
}

/// `Basic base64(user:password)` → (user, password).
fn basic_credentials(header: &str) -> Option<(String, String)> {
    use base64::Engine as _;
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// PEM from the inline key or the file key (relative to `base`), exactly one of them.
fn pem(
    inline: Option<String>,
    file: Option<PathBuf>,
    name: &str,
    base: &Path,
) -> Result<Option<Vec<u8>>, String> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(format!("tls_server_config has both {name} and {name}_file: keep one")),
        (Some(text), None) => Ok(Some(text.into_bytes())),
        (None, Some(file)) => {
            let file = crate::section::resolve(base, file);
            std::fs::read(&file)
                .map(Some)
                .map_err(|e| format!("tls_server_config.{name}_file: cannot read {}: {e}", file.display()))
        }
        (None, None) => Ok(None),
    }
}

fn version(
    key: &str,
    v: Option<String>,
    default: &'static rustls::SupportedProtocolVersion,
) -> Result<&'static rustls::SupportedProtocolVersion, String> {
    match v.as_deref() {
        None => Ok(default),
        Some("TLS12") => Ok(&rustls::version::TLS12),
        Some("TLS13") => Ok(&rustls::version::TLS13),
        Some(other) => {
            Err(format!("tls_server_config.{key}: {other:?} is not supported: write TLS12 or TLS13"))
        }
    }
}

/// Builds the rustls server config (ring); returns it and whether client certificates are required.
fn tls_config(t: RawTls, base: &Path, problems: &mut Vec<String>) -> Option<(rustls::ServerConfig, bool)> {
    for (key, set) in [
        ("client_allowed_sans", t.client_allowed_sans.is_some()),
        ("cipher_suites", t.cipher_suites.is_some()),
        ("curve_preferences", t.curve_preferences.is_some()),
    ] {
        if set {
            problems.push(format!(
                "tls_server_config.{key} is not supported by scimsync (rustls chooses safe defaults): remove it"
            ));
        }
    }
    let start = problems.len();
    let mut take = |r: Result<Option<Vec<u8>>, String>| {
        r.unwrap_or_else(|e| {
            problems.push(e);
            None
        })
    };
    let cert = take(pem(t.cert, t.cert_file, "cert", base));
    let key = take(pem(t.key, t.key_file, "key", base));
    let client_ca = take(pem(t.client_ca, t.client_ca_file, "client_ca", base));
    let (Some(cert), Some(key)) = (cert, key) else {
        if problems.len() == start {
            problems.push("tls_server_config needs cert_file and key_file (PEM)".to_owned());
        }
        return None;
    };
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&cert).filter_map(Result::ok).collect();
    if chain.is_empty() {
        problems.push("tls_server_config.cert_file holds no PEM certificate".to_owned());
    }
    let key = match PrivateKeyDer::from_pem_slice(&key) {
        Ok(k) => Some(k),
        Err(e) => {
            problems.push(format!("tls_server_config.key_file holds no PEM private key ({e})"));
            None
        }
    };
    let min = version("min_version", t.min_version, &rustls::version::TLS12);
    let max = version("max_version", t.max_version, &rustls::version::TLS13);
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = match (min, max) {
        (Ok(min), Ok(max)) => {
            let all = [&rustls::version::TLS12, &rustls::version::TLS13];
            let rank = |v: &rustls::SupportedProtocolVersion| u16::from(v.version);
            let v: Vec<_> =
                all.into_iter().filter(|v| rank(v) >= rank(min) && rank(v) <= rank(max)).collect();
            if v.is_empty() {
                problems.push("tls_server_config.min_version is above max_version".to_owned());
            }
            v
        }
        (a, b) => {
            problems.extend(a.err().into_iter().chain(b.err()));
            Vec::new()
        }
    };
    let auth = t.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let (verify, required) = match auth {
        "NoClientCert" => (false, false),
        "VerifyClientCertIfGiven" => (true, false),
        "RequireAndVerifyClientCert" => (true, true),
        "RequestClientCert" | "RequireAnyClientCert" => {
            problems.push(format!(
                "tls_server_config.client_auth_type: {auth} does not verify the certificate, so it authenticates no one: write RequireAndVerifyClientCert (with client_ca_file)"
            ));
            return None;
        }
        other => {
            problems.push(format!(
                "tls_server_config.client_auth_type: {other:?} is not one of NoClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"
            ));
            return None;
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = match (verify, client_ca) {
        (false, _) => None,
        (true, None) => {
            problems.push(format!("tls_server_config.client_auth_type: {auth} needs client_ca_file"));
            return None;
        }
        (true, Some(ca)) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(&ca).filter_map(Result::ok) {
                if let Err(e) = roots.add(c) {
                    problems.push(format!("tls_server_config.client_ca_file: {e}"));
                }
            }
            let builder = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            );
            let builder = if required { builder } else { builder.allow_unauthenticated() };
            match builder.build() {
                Ok(v) => Some(v),
                Err(e) => {
                    problems.push(format!("tls_server_config.client_ca_file: {e}"));
                    return None;
                }
            }
        }
    };
    let key = key?;
    if versions.is_empty() || chain.is_empty() {
        return None;
    }
    let builder =
        match rustls::ServerConfig::builder_with_provider(provider).with_protocol_versions(&versions) {
            Ok(b) => b,
            Err(e) => {
                problems.push(format!("tls_server_config: {e}"));
                return None;
            }
        };
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    match builder.with_single_cert(chain, key) {
        Ok(mut config) => {
            config.ignore_client_order = t.prefer_server_cipher_suites.unwrap_or(true);
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some((config, required))
        }
        Err(e) => {
            problems.push(format!("tls_server_config: the certificate and key do not go together ({e})"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Result<WebConfig, Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.yml");
        std::fs::write(&path, yaml).unwrap();
        WebConfig::load(&path)
    }

    #[test]
    fn unknown_and_unsupported_keys_are_named() {
        let e = load("tls_server_config:\n  cert_fil: x\n").unwrap_err().join("\n");
        assert!(e.contains("cert_fil"), "{e}");
        let e = load("basic_auth_user:\n  a: b\n").unwrap_err().join("\n");
        assert!(e.contains("basic_auth_user"), "{e}");
        let e = load("rate_limit:\n  burst: 3\n").unwrap_err().join("\n");
        assert!(e.contains("rate_limit is not supported"), "{e}");
        let e = load("basic_auth_users:\n  prometheus: plain\n").unwrap_err().join("\n");
        assert!(e.contains("basic_auth_users.prometheus is not a bcrypt hash"), "{e}");
        let e =
            load("tls_server_config:\n  cert_file: nope.pem\n  key_file: nope.key\n").unwrap_err().join("\n");
        assert!(e.contains("cert_file: cannot read") && e.contains("nope.pem"), "{e}");
    }

    #[test]
    fn a_verified_password_is_remembered_and_a_wrong_one_denied() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let web = load(&format!("basic_auth_users:\n  prometheus: '{hash}'\n")).unwrap();
        assert!(web.authenticates() && web.tls().is_none());
        let header = |user: &str, pw: &str| {
            use base64::Engine as _;
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}")))
        };
        let good = header("prometheus", "s3cret");
        assert_eq!(web.check(None), Check::Denied);
        assert_eq!(web.check(Some("Bearer x")), Check::Denied);
        assert_eq!(web.check(Some(&good)), Check::Verify);
        assert!(web.verify(Some(&good)));
        assert_eq!(web.check(Some(&good)), Check::Allowed);
        let wrong = header("prometheus", "guess");
        assert_eq!(web.check(Some(&wrong)), Check::Verify);
        assert!(!web.verify(Some(&wrong)));
        assert!(!web.verify(Some(&header("nobody", "s3cret"))));
        assert!(!format!("{web:?}").contains(&hash), "Debug shows no hash");
    }

    #[test]
    fn tls_keys_are_checked() {
        let dir = env!("CARGO_MANIFEST_DIR");
        let tls = format!("tls_server_config:\n  cert_file: {dir}/tests/data/tls/server.pem\n  key_file: {dir}/tests/data/tls/server.key\n");
        let web = load(&format!("{tls}  min_version: TLS13\n")).unwrap();
        assert!(web.tls().is_some() && !web.authenticates());
        let e = load(&format!("{tls}  min_version: TLS11\n")).unwrap_err().join("\n");
        assert!(e.contains("min_version: \"TLS11\" is not supported: write TLS12 or TLS13"), "{e}");
        let e = load(&format!("{tls}  min_version: TLS13\n  max_version: TLS12\n")).unwrap_err().join("\n");
        assert!(e.contains("min_version is above max_version"), "{e}");
        let e = load(&format!("{tls}  client_auth_type: RequireAnyClientCert\n")).unwrap_err().join("\n");
        assert!(e.contains("RequireAnyClientCert does not verify"), "{e}");
        let e =
            load(&format!("{tls}  client_auth_type: RequireAndVerifyClientCert\n")).unwrap_err().join("\n");
        assert!(e.contains("needs client_ca_file"), "{e}");
        let e = load(&format!("{tls}  cert: inline\n")).unwrap_err().join("\n");
        assert!(e.contains("both cert and cert_file"), "{e}");
        let e = load(&format!("{tls}  cipher_suites: [TLS_AES_128_GCM_SHA256]\n")).unwrap_err().join("\n");
        assert!(e.contains("cipher_suites is not supported"), "{e}");
        let e = load("http_server_config:\n  headers:\n    X-Powered-By: me\n").unwrap_err().join("\n");
        assert!(e.contains("X-Powered-By is not one of the headers"), "{e}");
    }

    #[test]
    fn htpasswd_hashes_verify() {
        // `htpasswd -nbBC 10 prometheus 'change me'` (the $2y$ variant), as in contrib/web-config.yml.
        let hash = "$2y$10$lONIqvlTsENGr5zESZCygeC29HXMwx5bjN27JZ/fMhcvCGr0br8oa";
        let web = load(&format!("basic_auth_users:\n  prometheus: {hash}\n")).unwrap();
        use base64::Engine as _;
        let header =
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("prometheus:change me"));
        assert!(web.verify(Some(&header)));
    }

    #[test]
    fn an_empty_file_authenticates_nothing() {
        let web = load("").unwrap();
        assert!(!web.authenticates() && web.tls().is_none());
        assert_eq!(web.check(None), Check::Allowed);
    }
}

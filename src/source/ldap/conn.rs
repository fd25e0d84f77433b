//! One connection to the directory: TLS by rustls (the CA file, or the system's roots; a client
//! certificate for SASL EXTERNAL), the bind, and searches whose every page and answer must come
//! within the timeout. Nothing here logs the password.

use super::entry;
use super::settings::{Bind, LdapSettings, Transport};
use crate::secrets::Token;
use crate::source::{Origin, Record};
use ldap3::controls::RawControl;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, LdapResult, Scope};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use secrecy::ExposeSecret;
use std::sync::Arc;

/// The OID of the paged-results control (RFC 2696).
pub const PAGED_RESULTS: &str = "1.2.840.113556.1.4.319";

/// Why a step of a read failed, in the server's words and with what to do.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    /// The connection failed (refused, reset, timed out, server busy): a new read may work.
    pub transient: bool,
    /// The server refused the credentials.
    pub auth: bool,
    /// The LDAP result code, when the server gave one (0 otherwise).
    pub rc: u32,
}

impl Failure {
    fn fatal(message: String) -> Failure {
        Failure { message, transient: false, auth: false, rc: 0 }
    }

    /// An error of the client library: the connection's, mostly.
    fn of(what: &str, server: &str, e: LdapError) -> Failure {
        // tokio-rustls hands a refused handshake over as an I/O error of kind InvalidData.
        let tls = matches!(&e, LdapError::Io { source } if source.kind() == std::io::ErrorKind::InvalidData)
            || matches!(e, LdapError::Rustls { .. });
        let transient = !tls
            && matches!(
                e,
                LdapError::Io { .. }
                    | LdapError::Timeout { .. }
                    | LdapError::EndOfStream
                    | LdapError::ResultRecv { .. }
                    | LdapError::OpSend { .. }
                    | LdapError::IdScrubSend { .. }
            );
        let hint = match e {
            _ if tls => {
                "the TLS handshake failed: check that source.ca_file holds the CA that signed the server's \
                 certificate and that the URL's host is a name the certificate holds"
            }
            LdapError::Timeout { .. } => "the server did not answer in time (source.timeout_secs)",
            LdapError::EndOfStream | LdapError::ResultRecv { .. } | LdapError::OpSend { .. } => {
                "the connection was closed before the answer was complete"
            }
            _ => "check source.url and that the server is up",
        };
        Failure { message: format!("{what} {server} failed: {e}: {hint}"), transient, auth: false, rc: 0 }
    }

    /// A result code other than success (RFC 4511 §4.1.9).
    pub fn result(what: &str, server: &str, res: &LdapResult) -> Failure {
        let hint = match res.rc {
            3 => "the server's time limit was reached: raise it for scimsync's account or narrow source.base_dn and the filters",
            4 => "the server's size limit was reached: raise it for scimsync's account (paged reads need size.prtotal on OpenLDAP, MaxPageSize on AD)",
            10 => "the base is held by another server (a referral): point source.url at the server that holds source.base_dn",
            11 => "an administrative limit was reached: raise it for scimsync's account",
            12 => "the server refused a control scimsync needs (paged results)",
            32 => "source.base_dn does not exist on this server",
            49 => "the bind DN or password is wrong (source.bind_dn, source.password_file)",
            50 => "scimsync's account may not read this: grant it read access",
            51 | 52 => "the server is busy or unavailable: it is tried again",
            53 => "the server refused the operation (a simple bind may need TLS: use ldaps:// or starttls)",
            _ => "see the server's log",
        };
        let refs = if res.refs.is_empty() {
            String::new()
        } else {
            format!(" (referral to {})", res.refs.join(", "))
        };
        let text = if res.text.is_empty() { String::new() } else { format!(": {}", res.text.trim()) };
        Failure {
            message: format!(
                "{what} on {server} failed with result {} ({}){text}{refs}: {hint}",
                res.rc,
                rc_name(res.rc)
            ),
            transient: matches!(res.rc, 51 | 52),
            auth: matches!(res.rc, 48 | 49),
            rc: res.rc,
        }
    }
}

fn rc_name(rc: u32) -> &'static str {
    match rc {
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        10 => "referral",
        11 => "adminLimitExceeded",
        12 => "unavailableCriticalExtension",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        80 => "other",
        _ => "see RFC 4511",
    }
}

/// The SASL GSSAPI bind: a ticket for `ldap/HOST` from the credential cache. Kerberos
/// protects a connection in clear itself; over TLS it authenticates only, bound to the channel.
#[cfg(feature = "gssapi")]
async fn gssapi_bind(ldap: &mut Ldap, s: &LdapSettings, server: &str) -> Result<LdapResult, Failure> {
    // The GSS-API library reads the credential cache and asks the KDC with blocking calls;
    // there is one bind per read.
    ldap.with_timeout(s.timeout).sasl_gssapi_bind(s.host()).await.map_err(|e| match e {
        LdapError::GssapiOperationError(why) => Failure::fatal(format!(
            "the Kerberos (GSSAPI) bind on {server} failed: {why}: scimsync needs a ticket in its \
             credential cache (kinit, KRB5CCNAME) or a client keytab (KRB5_CLIENT_KTNAME), and the \
             KDC must know the service principal ldap/{}",
            s.host()
        )),
        e => Failure::of("the bind on", server, e),
    })
}

#[cfg(not(feature = "gssapi"))]
async fn gssapi_bind(_: &mut Ldap, _: &LdapSettings, server: &str) -> Result<LdapResult, Failure> {
    Err(Failure::fatal(format!(
        "the Kerberos (GSSAPI) bind on {server} is not built into this scimsync: build it with `cargo build --features gssapi`"
    )))
}

/// A bound connection.
pub struct Session {
    pub ldap: Ldap,
    pub server: String,
    pub timeout: std::time::Duration,
}

/// The TLS settings: only the CAs of `source.ca_file` when set, else the system's roots; the
/// client certificate when one is configured.
fn tls_config(s: &LdapSettings) -> Result<Arc<rustls::ClientConfig>, Failure> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    match &s.ca_file {
        Some(path) => {
            let bad = |e: &dyn std::fmt::Display| {
                Failure::fatal(format!(
                    "source.ca_file {}: {e}: give a PEM file of the directory's CA",
                    path.display()
                ))
            };
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))? {
                roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
            }
            if roots.is_empty() {
                return Err(bad(&"no PEM certificate in it"));
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::fatal(format!("TLS setup failed: {e}")))?
        .with_root_certificates(roots);
    let config = match &s.client_cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let bad = |path: &std::path::Path, e: &dyn std::fmt::Display| {
                Failure::fatal(format!(
                    "source.client_cert_file / client_key_file {}: {e}: give the PEM certificate and its unencrypted key",
                    path.display()
                ))
            };
            let certs = CertificateDer::pem_file_iter(cert)
                .map_err(|e| bad(cert, &e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(cert, &e))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, &e))?;
            builder.with_client_auth_cert(certs, key).map_err(|e| bad(cert, &e))?
        }
    };
    Ok(Arc::new(config))
}

impl Session {
    /// Connects (within `connect_timeout`, StartTLS included) and binds.
    pub async fn open(s: &LdapSettings, password: Option<&Token>) -> Result<Session, Failure> {
        let server = s.server().to_owned();
        let mut conn = LdapConnSettings::new()
            .set_conn_timeout(s.connect_timeout)
            .set_starttls(s.transport == Transport::StartTls);
        if s.transport != Transport::Plain {
            conn = conn.set_config(tls_config(s)?);
        }
        let connect = LdapConnAsync::with_settings(conn, &s.url);
        let (driver, mut ldap) = match tokio::time::timeout(s.connect_timeout, connect).await {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => return Err(Failure::of("connecting to", &server, e)),
            Err(_) => {
                return Err(Failure {
                    message: format!(
                        "connecting to {server} took longer than {} s (source.connect_timeout_secs): check the host, the port and the firewall",
                        s.connect_timeout.as_secs()
                    ),
                    transient: true,
                    auth: false,
                    rc: 0,
                })
            }
        };
        tokio::spawn(async move {
            if let Err(e) = driver.drive().await {
                tracing::debug!(error = %e, "The LDAP connection ended.");
            }
        });
        let res = match &s.bind {
            Bind::Anonymous => None,
            Bind::Simple { dn } => {
                let pw = password.ok_or_else(|| Failure::fatal("no password for source.bind_dn".into()))?;
                Some(ldap.with_timeout(s.timeout).simple_bind(dn, pw.secret.expose_secret()).await)
            }
            Bind::External => Some(ldap.with_timeout(s.timeout).sasl_external_bind().await),
            Bind::Gssapi => Some(Ok(gssapi_bind(&mut ldap, s, &server).await?)),
        };
        match res {
            None => {}
            Some(Err(e)) => return Err(Failure::of("the bind on", &server, e)),
            Some(Ok(r)) if r.rc != 0 => {
                let mut f = Failure::result("the bind", &server, &r);
                match (&s.bind, f.auth) {
                    (Bind::Simple { dn }, true) => {
                        let from = password.map_or("", |p| p.source.as_str());
                        f.message = format!("{} (bound as {dn}, the password from {from})", f.message);
                    }
                    (Bind::Gssapi, true) => {
                        f.message = format!(
                            "{} (a Kerberos bind: the server refused the principal of the ticket; \
                             map it to an entry that may read, e.g. olcAuthzRegexp on OpenLDAP)",
                            f.message
                        );
                    }
                    _ => {}
                }
                return Err(f);
            }
            Some(Ok(_)) => {}
        }
        Ok(Session { ldap, server, timeout: s.timeout })
    }

    /// A base-scope read of one entry; `None` when it does not exist or cannot be read.
    pub async fn read_entry(&mut self, dn: &str, attrs: &[&str]) -> Result<Option<Record>, Failure> {
        let origin = Origin::from(format!("{}/{dn}", self.server));
        let found = self
            .ldap
            .with_timeout(self.timeout)
            .search(dn, Scope::Base, "(objectClass=*)", attrs.to_vec())
            .await
            .map_err(|e| Failure::of(&format!("reading {dn:?} on"), &self.server, e))?;
        if found.1.rc == 32 || found.1.rc == 50 {
            return Ok(None);
        }
        if found.1.rc != 0 {
            return Err(Failure::result(&format!("reading {dn:?}"), &self.server, &found.1));
        }
        for re in found.0 {
            if re.is_ref() || re.is_intermediate() {
                continue;
            }
            let r = entry::record(re.0, origin.clone()).map_err(|m| {
                Failure::fatal(format!("{}: a malformed entry for {dn:?}: {}", self.server, m.0))
            })?;
            return Ok(Some(r));
        }
        Ok(None)
    }

    /// One subtree search, page by page when `page_size` is set (RFC 2696, the control marked
    /// critical: a server that cannot page refuses rather than answering in part). Each entry
    /// goes to `each`; search references are not followed: their URLs go to `references` (the
    /// same reference met by two searches is one). Any result but success, on any page, fails
    /// the search.
    pub async fn search(
        &mut self,
        base: &str,
        filter: &str,
        attrs: &[String],
        page_size: Option<u32>,
        references: &mut std::collections::BTreeSet<Vec<u8>>,
        mut each: impl FnMut(Record) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        // Every entry of a search shares its origin, the LDAP URL of the base: the entry's DN is in
        // its record, and a million users do not each hold a copy of it twice.
        let origin = Origin::from(format!("{}/{base}", self.server));
        let what = format!("the search {filter} under {base:?}");
        let on = format!("{what} on");
        let mut cookie: Vec<u8> = Vec::new();
        loop {
            if let Some(size) = page_size {
                let mut control: RawControl =
                    ldap3::controls::PagedResults { size: size as i32, cookie: std::mem::take(&mut cookie) }
                        .into();
                control.crit = true;
                self.ldap.with_controls(vec![control]);
            }
            let mut stream = self
                .ldap
                .with_timeout(self.timeout)
                .streaming_search(base, Scope::Subtree, filter, attrs.to_vec())
                .await
                .map_err(|e| Failure::of(&on, &self.server, e))?;
            loop {
                let next = stream.next().await.map_err(|e| Failure::of(&on, &self.server, e))?;
                let Some(re) = next else { break };
                if re.is_ref() {
                    // The URLs as sent (a malformed reference still counts, as itself).
                    let urls =
                        re.0.clone()
                            .expect_constructed()
                            .map(|c| c.into_iter().filter_map(|t| t.expect_primitive()).collect::<Vec<_>>());
                    references.insert(urls.map(|u| u.concat()).unwrap_or_default());
                } else if !re.is_intermediate() {
                    let r = entry::record(re.0, origin.clone()).map_err(|m| {
                        Failure::fatal(format!("{what} on {}: a malformed entry: {}", self.server, m.0))
                    })?;
                    each(r)?;
                }
            }
            let res = stream.finish().await;
            if res.rc != 0 {
                return Err(Failure::result(&what, &self.server, &res));
            }
            if page_size.is_none() {
                return Ok(());
            }
            match paged_cookie(&res) {
                Ok(next) if next.is_empty() => return Ok(()),
                Ok(next) => cookie = next,
                Err(m) => return Err(Failure::fatal(format!("{what} on {}: {m}", self.server))),
            }
        }
    }
}

/// The cookie of the paged-results control in a page's result: empty after the last page, and
/// when the server sent no control (it then answered in one result, successfully). A control
/// that cannot be read fails the search: taking it for the last page could end a read early.
fn paged_cookie(res: &LdapResult) -> Result<Vec<u8>, &'static str> {
    use ldap3::asn1::parse_tag;
    let Some(ctrl) = res.ctrls.iter().find(|c| c.1.ctype == PAGED_RESULTS) else {
        return Ok(Vec::new());
    };
    let cookie = || {
        let (_, tag) = parse_tag(ctrl.1.val.as_deref()?).ok()?;
        let mut parts = tag.expect_constructed()?.into_iter();
        let _estimate = parts.next()?;
        parts.next()?.expect_primitive()
    };
    cookie().ok_or("the server's paged-results control cannot be read: nothing was planned")
}

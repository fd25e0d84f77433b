//! The root DSE (what the server is and offers), and the directory's change marker: a value that
//! moves whenever the directory is written, read cheaply so that the daemon reads the whole
//! directory only after it moved.
//!
//! - Active Directory: `highestCommittedUSN` on the root DSE, with the `invocationID` of the
//!   DC's NTDS Settings object (a restored DC restarts its USNs under a new invocation id).
//! - 389-ds / FreeIPA: `lastusn` on the root DSE (the USN plug-in).
//! - OpenLDAP: `contextCSN` on the suffix entry (kept by the syncprov overlay).

use super::conn::{Failure, Session, PAGED_RESULTS};
use super::settings::LdapSettings;
use crate::secrets::Token;
use crate::source::{Record, Value};

/// What kind of server answered, from its root DSE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    ActiveDirectory,
    OpenLdap,
    Ds389,
    Other,
}

/// The root DSE as read.
#[derive(Clone, Debug)]
pub struct RootDse {
    pub record: Record,
    pub kind: ServerKind,
}

const DSE_ATTRIBUTES: &[&str] = &[
    "objectClass",
    "namingContexts",
    "defaultNamingContext",
    "supportedControl",
    "supportedExtension",
    "supportedSASLMechanisms",
    "supportedLDAPVersion",
    "supportedCapabilities",
    "vendorName",
    "vendorVersion",
    "dsServiceName",
    "highestCommittedUSN",
    "lastusn",
    "forestFunctionality",
    "dnsHostName",
];

impl RootDse {
    pub async fn read(session: &mut Session) -> Result<RootDse, Failure> {
        let record = session.read_entry("", DSE_ATTRIBUTES).await?.unwrap_or_else(|| Record {
            origin: "root DSE".into(),
            dn: String::new(),
            attrs: Vec::new(),
        });
        let has = |a: &str, v: &str| record.has_value_ci(a, v);
        let vendor = record.first_text("vendorname").unwrap_or("").to_ascii_lowercase();
        let kind = if record.first_text("forestfunctionality").is_some()
            || has("supportedcapabilities", "1.2.840.113556.1.4.800")
        {
            ServerKind::ActiveDirectory
        } else if vendor.contains("389") || vendor.contains("red hat") || vendor.contains("fedora") {
            ServerKind::Ds389
        } else if has("objectclass", "OpenLDAProotDSE") || vendor.contains("openldap") {
            ServerKind::OpenLdap
        } else {
            ServerKind::Other
        };
        Ok(RootDse { record, kind })
    }

    /// The text values of a root DSE attribute.
    pub fn texts(&self, name: &str) -> Vec<&str> {
        self.record.values(name).filter_map(Value::as_text).collect()
    }

    /// Whether the server says it can page; `true` when the root DSE lists no controls at all
    /// (not readable by this account): the critical control then settles it.
    pub fn announces_paging(&self) -> bool {
        let controls = self.texts("supportedcontrol");
        controls.is_empty() || controls.contains(&PAGED_RESULTS)
    }

    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            ServerKind::ActiveDirectory => "Active Directory",
            ServerKind::OpenLdap => "OpenLDAP",
            ServerKind::Ds389 => "389 Directory Server",
            ServerKind::Other => "an LDAP server",
        }
    }

    /// The naming context that holds `base` (the longest one `base` ends with).
    pub fn naming_context_of(&self, base: &str) -> Option<String> {
        let base = crate::source::directory::normalize_dn(base);
        self.texts("namingcontexts")
            .into_iter()
            .filter(|nc| {
                let nc = crate::source::directory::normalize_dn(nc);
                !nc.is_empty() && (base == nc || base.ends_with(&format!(",{nc}")))
            })
            .max_by_key(|nc| nc.len())
            .map(str::to_owned)
    }
}

/// Reads the change marker: `Ok(None)` when the server keeps none scimsync knows (the daemon
/// then runs on its schedule alone).
pub async fn change_marker(s: &LdapSettings, password: Option<&Token>) -> Result<Option<String>, String> {
    let mut session = Session::open(s, password).await.map_err(|f| f.message)?;
    let marker = read_marker(&mut session, s).await.map_err(|f| f.message);
    let _ = session.ldap.unbind().await;
    marker
}

pub(super) async fn read_marker(session: &mut Session, s: &LdapSettings) -> Result<Option<String>, Failure> {
    let dse = RootDse::read(session).await?;
    if let Some(usn) = dse.record.first_text("highestcommittedusn") {
        let invocation = match dse.record.first_text("dsservicename") {
            Some(ntds) => {
                let ntds = ntds.to_owned();
                let settings = session.read_entry(&ntds, &["invocationId"]).await?;
                settings.and_then(|r| r.values("invocationid").next().map(hex)).unwrap_or_default()
            }
            None => String::new(),
        };
        return Ok(Some(format!("ad {invocation} {usn}")));
    }
    let lastusn: Vec<String> = dse
        .record
        .attrs
        .iter()
        .filter(|(n, _)| crate::source::attr_base(n) == "lastusn")
        .map(|(n, v)| format!("{n}={}", hex(v)))
        .collect();
    if !lastusn.is_empty() {
        return Ok(Some(format!("389 {}", lastusn.join(" "))));
    }
    let suffix = dse.naming_context_of(&s.base_dn).unwrap_or_else(|| s.base_dn.clone());
    let Some(entry) = session.read_entry(&suffix, &["contextCSN"]).await? else { return Ok(None) };
    let mut csns: Vec<&str> = entry.values("contextcsn").filter_map(Value::as_text).collect();
    if csns.is_empty() {
        return Ok(None);
    }
    csns.sort_unstable();
    Ok(Some(format!("csn {}", csns.join(" "))))
}

fn hex(v: &Value) -> String {
    match v {
        Value::Text(t) => t.clone(),
        Value::Binary(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
    }
}

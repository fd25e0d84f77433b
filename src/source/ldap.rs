//! The live LDAP source (`kind = "ldap"`): OpenLDAP, 389-ds/FreeIPA and Active Directory read
//! directly, completely or not at all.
//!
//! - One subtree search for users and one for groups, paged (RFC 2696, the control critical)
//!   when the root DSE announces paging; each asks only for the attributes the directory rules
//!   and the mapping read. Any result but success on any page (a size, time or admin limit, a
//!   referral for the base), a dropped connection or a timeout fails the read; a read that
//!   failed on its connection starts over (a paged search's cookie dies with its connection),
//!   up to `source.max_retries` times.
//! - Attributes AD sends in ranges (`member;range=0-1499`) are fetched to their last part.
//! - The entries go through the directory interpretation LDIF entries go through
//!   ([`directory::PartBuilder`]): one meaning for a live read and an export of it.

mod conn;
mod entry;
mod marker;
mod settings;

pub use conn::Failure;
pub use marker::{change_marker, RootDse, ServerKind};
pub use settings::{Bind, LdapSettings, Transport};

use super::directory::{self, DnHasher, SourceDirectory};
use super::{Kept, Record, SourceConfig, SourceError};
use crate::secrets::{self, Token};
use conn::Session;
use std::collections::HashSet;
use std::hash::BuildHasher;

/// Reads the directory whole, or fails; nothing is planned from a partial read.
pub async fn read(cfg: &SourceConfig, kept: Option<Kept<'_>>) -> Result<SourceDirectory, SourceError> {
    let s = settings_of(cfg)?;
    let password = password(cfg, s)?;
    let attrs = requested_attributes(cfg, kept);
    let mut attempt = 0;
    loop {
        match read_once(cfg, s, password.as_ref(), &attrs, kept).await {
            Ok(dir) => return Ok(dir),
            Err(f) if f.transient && attempt < s.max_retries => {
                attempt += 1;
                tracing::warn!(attempt, "The LDAP read failed; it starts over: {}", f.message);
                tokio::time::sleep(std::time::Duration::from_secs(1 << attempt.min(5))).await;
            }
            Err(f) => return Err(failure(f, attempt)),
        }
    }
}

pub(crate) fn settings_of(cfg: &SourceConfig) -> Result<&LdapSettings, SourceError> {
    cfg.ldap.as_ref().ok_or_else(|| SourceError::Unsupported("source.kind is not \"ldap\"".into()))
}

/// The bind password, when the bind needs one.
pub(crate) fn password(cfg: &SourceConfig, s: &LdapSettings) -> Result<Option<Token>, SourceError> {
    match s.bind {
        Bind::Simple { .. } => {
            secrets::load_ldap_password(cfg).map(Some).map_err(|e| SourceError::Auth(e.to_string()))
        }
        _ => Ok(None),
    }
}

fn failure(f: Failure, retries: u32) -> SourceError {
    let tried = if retries > 0 { format!(" (after {} more tries)", retries) } else { String::new() };
    let message = format!("{}{tried}; nothing was read", f.message);
    if f.auth {
        SourceError::Auth(message)
    } else {
        SourceError::Ldap(message)
    }
}

/// What `check` shows of the directory: the root DSE, and the change marker or why there is
/// none.
pub struct Inspection {
    pub dse: RootDse,
    pub marker: Result<Option<String>, String>,
}

/// Connects, binds and reads the root DSE and the change marker.
pub async fn inspect(cfg: &SourceConfig) -> Result<Inspection, SourceError> {
    let s = settings_of(cfg)?;
    let password = password(cfg, s)?;
    let mut session = Session::open(s, password.as_ref()).await.map_err(|f| failure(f, 0))?;
    let dse = RootDse::read(&mut session).await.map_err(|f| failure(f, 0))?;
    let marker = marker::read_marker(&mut session, s).await.map_err(|f| f.message);
    let _ = session.ldap.unbind().await;
    Ok(Inspection { dse, marker })
}

/// The searches a read makes as `ldapsearch` command lines, for an administrator to run them
/// alike: the password is never shown (`-y` names its file, `-W` asks for it).
pub fn ldapsearch_commands(
    cfg: &SourceConfig,
    dse: &RootDse,
    wanted: Option<&HashSet<String>>,
) -> Vec<String> {
    let Some(s) = cfg.ldap.as_ref() else { return Vec::new() };
    let by_reader: Option<HashSet<String>> = wanted.map(|w| {
        let mut keep: HashSet<String> = directory::needed_attributes(&cfg.directory).collect();
        keep.extend(w.iter().cloned());
        keep
    });
    let kept = by_reader.as_ref().map(|k| Kept { by_reader: k, by_user: k });
    let attrs = requested_attributes(cfg, kept);
    let q = |v: &str| format!("'{}'", v.replace('\'', "'\\''"));
    let mut env = Vec::new();
    if let Some(ca) = &s.ca_file {
        env.push(format!("LDAPTLS_CACERT={}", q(&ca.display().to_string())));
    }
    if let Some((cert, key)) = &s.client_cert {
        env.push(format!(
            "LDAPTLS_CERT={} LDAPTLS_KEY={}",
            q(&cert.display().to_string()),
            q(&key.display().to_string())
        ));
    }
    let mut head = env;
    head.push(format!("ldapsearch -H {}", q(&s.url)));
    if s.transport == Transport::StartTls {
        head.push("-ZZ".into());
    }
    match &s.bind {
        Bind::Anonymous => head.push("-x".into()),
        Bind::Simple { dn } => {
            head.push(format!("-x -D {}", q(dn)));
            head.push(match &cfg.password_file {
                Some(f) => format!("-y {}", q(&f.display().to_string())),
                None => "-W".into(),
            });
        }
        Bind::External => head.push("-Y EXTERNAL".into()),
        Bind::Gssapi => head.push("-Y GSSAPI".into()),
    }
    head.push(format!("-b {} -s sub", q(&s.base_dn)));
    if dse.announces_paging() {
        head.push(format!("-E pr={}/noprompt", s.page_size));
    }
    let head = head.join(" ");
    let (users, groups) = s.filters(&cfg.directory, dse.kind == ServerKind::ActiveDirectory);
    let group_attrs = group_attributes(cfg, dse, &attrs);
    [(users, &attrs), (groups, &group_attrs)]
        .into_iter()
        .map(|(filter, attrs)| {
            let attrs: Vec<String> = attrs.iter().map(|a| if a == "*" { q(a) } else { a.clone() }).collect();
            format!("{head} {} {}", q(&filter), attrs.join(" "))
        })
        .collect()
}

/// What each search asks for: the attributes the directory rules and the mapping read, or all
/// user attributes (`*`) and the rules' operational ones when the mapping may read any.
pub fn requested_attributes(cfg: &SourceConfig, kept: Option<Kept<'_>>) -> Vec<String> {
    let mut attrs: Vec<String> = match kept {
        Some(k) => k.by_reader.iter().cloned().collect(),
        None => std::iter::once("*".to_owned()).chain(directory::needed_attributes(&cfg.directory)).collect(),
    };
    attrs.sort();
    attrs.dedup();
    attrs
}

/// What the group search asks for: on Active Directory, the member attributes by range from
/// the first value (`member;range=0-1499`, AD's own part size), so that every group's members
/// are read the one way whatever the server's `MaxValRange`.
pub fn group_attributes(cfg: &SourceConfig, dse: &RootDse, attrs: &[String]) -> Vec<String> {
    let member = |a: &str| cfg.directory.member_attributes.iter().any(|m| m.eq_ignore_ascii_case(a));
    attrs
        .iter()
        .map(|a| match dse.kind {
            ServerKind::ActiveDirectory if member(a) => format!("{a};range=0-{}", AD_RANGE - 1),
            _ => a.clone(),
        })
        .collect()
}

/// The values AD sends of an attribute at a time by default (`MaxValRange`).
const AD_RANGE: u64 = 1500;

/// A DN's identity for the check that the group search does not give an entry the user search
/// gave: 128 bits of two fixed-seed hashes of the normalised DN.
fn dn_id(dn: &str) -> u128 {
    let n = directory::normalize_dn(dn);
    let a = foldhash::fast::FixedState::with_seed(0x5c1d_5e7a_u64).hash_one(&n);
    let b = foldhash::fast::FixedState::with_seed(0x0dd_ba11_u64).hash_one(&n);
    (u128::from(a) << 64) | u128::from(b)
}

async fn read_once(
    cfg: &SourceConfig,
    s: &LdapSettings,
    password: Option<&Token>,
    attrs: &[String],
    kept: Option<Kept<'_>>,
) -> Result<SourceDirectory, Failure> {
    let mut session = Session::open(s, password).await?;
    let dse = RootDse::read(&mut session).await?;
    let paged = dse.announces_paging();
    let hasher = DnHasher::default();
    let mut part = directory::PartBuilder::new(&cfg.directory, kept.map(|k| k.by_user), &hasher);
    let mut seen: HashSet<u128> = HashSet::new();
    let mut ranged: Vec<(Record, Vec<(String, u64)>)> = Vec::new();
    let mut references = std::collections::BTreeSet::new();
    let group_attrs = group_attributes(cfg, &dse, attrs);
    let (users, groups) = s.filters(&cfg.directory, dse.kind == ServerKind::ActiveDirectory);
    for (filter, attrs) in [(&users, attrs), (&groups, &group_attrs[..])] {
        let found = session
            .search(&s.base_dn, filter, attrs, paged.then_some(s.page_size), &mut references, |mut r| {
                if seen.insert(dn_id(&r.dn)) {
                    let more = entry::join_ranges(&mut r);
                    if more.is_empty() {
                        part.add(&r);
                    } else {
                        ranged.push((r, more));
                    }
                }
                Ok(())
            })
            .await;
        found.map_err(|mut f| {
            if !paged && f.rc == 4 {
                f.message = format!(
                    "{}: the server does not announce paged results (RFC 2696), so scimsync cannot read more \
                     entries than its size limit and refuses to read part of the directory",
                    f.message
                );
            }
            f
        })?;
    }
    for (mut r, more) in ranged {
        fetch_ranges(&mut session, &mut r, more).await?;
        part.add(&r);
    }
    let _ = session.ldap.unbind().await;
    part.ended(references.len() as u64, false);
    Ok(directory::join_parts(vec![part.finish()], hasher))
}

/// Reads the rest of each ranged attribute of `r` (AD sends at most `MaxValRange` values of an
/// attribute at a time: `member;range=1500-2999`, …, `member;range=4500-*`).
async fn fetch_ranges(
    session: &mut Session,
    r: &mut Record,
    more: Vec<(String, u64)>,
) -> Result<(), Failure> {
    for (base, mut low) in more {
        loop {
            let want = format!("{base};range={low}-*");
            let got = session.read_entry(&r.dn, &[want.as_str()]).await?.ok_or_else(|| Failure {
                message: format!(
                    "{}: the group {:?} went away while its {base} values were read",
                    session.server, r.dn
                ),
                transient: true,
                auth: false,
                rc: 0,
            })?;
            let mut next = None;
            let mut answered = false;
            for (desc, value) in got.attrs {
                let Some(part) = entry::range(&desc) else { continue };
                if !part.base.eq_ignore_ascii_case(&base) {
                    continue;
                }
                if part.low != low {
                    return Err(ranged_failure(session, r, &base, low, &desc));
                }
                answered = true;
                next = part.high.map(|h| h + 1);
                r.attrs.push((base.clone(), value));
            }
            match next {
                None if answered => break,
                Some(n) if answered && n > low => low = n,
                _ => return Err(ranged_failure(session, r, &base, low, &want)),
            }
        }
    }
    Ok(())
}

fn ranged_failure(session: &Session, r: &Record, base: &str, low: u64, got: &str) -> Failure {
    Failure {
        message: format!(
            "{}: reading {base} of {:?} from value {low} on, the server answered {got:?}: the group's members \
             cannot be read whole, so nothing was planned",
            session.server, r.dn
        ),
        transient: false,
        auth: false,
        rc: 0,
    }
}

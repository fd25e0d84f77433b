//! `scimsync check` for an LDAP source: the bind, what the root DSE says (server, naming
//! contexts, paging), the change marker, the first users as mapped, and the `ldapsearch`
//! command lines that make the same searches.

use crate::config::Config;
use crate::model::DesiredState;
use crate::source::ldap::{self, Bind, Transport};

/// Prints what the directory says of itself; fails when it cannot be bound to.
pub(super) fn report(rt: &tokio::runtime::Runtime, config: &Config) -> anyhow::Result<()> {
    let Some(s) = &config.source.ldap else { return Ok(()) };
    let found = rt.block_on(ldap::inspect(&config.source))?;
    let dse = &found.dse;
    let transport = match s.transport {
        Transport::Ldaps => "TLS (ldaps)",
        Transport::StartTls => "TLS (StartTLS)",
        Transport::Plain => "no TLS",
    };
    let bound = match &s.bind {
        Bind::Anonymous => "anonymously".to_owned(),
        Bind::Simple { dn } => format!("as {dn}"),
        Bind::External => "by client certificate (SASL EXTERNAL)".to_owned(),
        Bind::Gssapi => "by Kerberos (SASL GSSAPI)".to_owned(),
    };
    println!("ldap: bound to {} {bound}, {transport}", s.server());
    let vendor = [dse.record.first_text("vendorname"), dse.record.first_text("vendorversion")];
    let vendor: Vec<&str> = vendor.into_iter().flatten().collect();
    let vendor = if vendor.is_empty() { String::new() } else { format!(" ({})", vendor.join(" ")) };
    println!("ldap: the server is {}{vendor}", dse.kind_name());
    println!("ldap: naming contexts: {}", dse.texts("namingcontexts").join("; "));
    if dse.naming_context_of(&s.base_dn).is_none() && !dse.texts("namingcontexts").is_empty() {
        println!("warning: source.base_dn {:?} is under none of the server's naming contexts", s.base_dn);
    }
    if dse.announces_paging() {
        println!(
            "ldap: paged results (RFC 2696) announced: the directory is read in pages of {}",
            s.page_size
        );
    } else {
        println!(
            "warning: the server does not announce paged results (RFC 2696): scimsync reads without paging \
             and refuses a directory larger than the server's size limit rather than read part of it"
        );
    }
    match (&found.marker, s.change_poll) {
        (Ok(Some(m)), Some(every)) => {
            println!("ldap: change marker {m} (polled every {} s)", every.as_secs())
        }
        (Ok(Some(m)), None) => {
            println!("ldap: change marker {m} (set source.change_poll_secs to run when it moves)")
        }
        (Ok(None), _) => println!(
            "ldap: no change marker (OpenLDAP: the syncprov overlay keeps contextCSN; 389-ds: the USN \
             plug-in): the daemon runs on its schedule"
        ),
        (Err(e), _) => println!("warning: the change marker cannot be read: {e}"),
    }
    let wanted = config.mapping.source_attributes();
    println!("ldap: the same searches with ldapsearch:");
    for line in ldap::ldapsearch_commands(&config.source, dse, wanted.as_ref()) {
        println!("  {line}");
    }
    Ok(())
}

/// The first five users as mapped: what the target would receive.
pub(super) fn first_users(desired: &DesiredState) {
    if desired.users.is_empty() {
        return;
    }
    println!("first users as mapped:");
    for user in desired.users.values().take(5) {
        let attrs: Vec<String> = user.attrs.iter().map(|(a, v)| format!("{}={v:?}", a.name())).collect();
        let state = if user.active { "active" } else { "inactive" };
        println!("  {} ({state}; key {}): {}", user.user_name(), user.key.0, attrs.join(", "));
    }
}

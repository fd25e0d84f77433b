//! The whole pure pipeline on arbitrary LDIF: the records read before any error → directory
//! interpretation → mapping (the default one, and one with CEL rules and group assignments) →
//! plan against an empty snapshot → rendered reports.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use scimsync::config::Config;
use scimsync::source::directory::interpret;
use scimsync::source::ldif::{LdifReader, UrlPolicy};
use std::sync::OnceLock;

const MAPPED: &str = r#"
[source]
kind = "ldif"
path = "fuzz.ldif"

[target]
profile = "ninjaone"

[mapping]
active = '!has(user.nsaccountlock) || user.nsaccountlock != "true"'

[mapping.user]
userType = { value = "endUser" }
organizationId = { expr = '''has(user.o) && user.o == "Globex" ? "202" : "All"''' }

[[mapping.group_assignments]]
group = "technicians"
set = { userType = "technician" }

[[mapping.roles]]
group = "helpdesk"
role = "Help Desk"
user_type = "technician"
"#;

fn configs() -> &'static [Config; 2] {
    static CONFIGS: OnceLock<[Config; 2]> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        [common::config("[source]\nkind = \"ldif\"\npath = \"fuzz.ldif\"\n"), common::config(MAPPED)]
    })
}

fuzz_target!(|data: &[u8]| {
    let records: Vec<_> =
        LdifReader::new(data, "fuzz.ldif", UrlPolicy::default()).map_while(Result::ok).collect();
    for config in configs() {
        let dir = interpret(records.clone(), &config.source.directory);
        common::plan_and_render(config, dir);
    }
});

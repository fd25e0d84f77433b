//! The `[target.dialect]` settings `check` recommends: only what the declarations and the
//! schemas justify. What shows only in a write (which member removal form the server takes,
//! string booleans, the op-name case) is left undecided, for `check --write-probe`.

use super::judge::SchemaFacts;
use serde_json::Value;

/// One dialect key and what `check` recommends for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    pub key: &'static str,
    /// The TOML value; `None` when reading cannot decide it.
    pub value: Option<String>,
    /// Why: what the server declared or served, or what would decide it.
    pub why: String,
}

fn set(key: &'static str, value: impl ToString, why: impl Into<String>) -> Setting {
    Setting { key, value: Some(value.to_string()), why: why.into() }
}

fn undecided(key: &'static str, why: impl Into<String>) -> Setting {
    Setting { key, value: None, why: why.into() }
}

/// The settings, in the order of the `[target.dialect]` keys.
pub fn advise(spc: &Value, schemas: Option<&SchemaFacts>) -> Vec<Setting> {
    let patch = spc["patch"]["supported"].as_bool();
    let write = "shows only in a write";
    let mut out = vec![
        match patch {
            Some(true) => set("update", "\"patch\"", "patch.supported: true"),
            Some(false) => set("update", "\"put\"", "patch.supported: false"),
            None => {
                undecided("update", format!("patch support is not declared; whether PATCH works {write}"))
            }
        },
        match patch {
            Some(false) => {
                set("members", "\"put\"", "patch.supported: false: members change with the group's PUT")
            }
            _ => undecided(
                "members",
                format!("which member removal form the server takes (filter path or value list) {write}"),
            ),
        },
        undecided("booleans", format!("whether booleans must be sent as strings {write}")),
        undecided("op_case", format!("whether op names must be capitalized {write}")),
    ];
    out.extend(from_schemas(schemas));
    out.push(match spc["etag"]["supported"].as_bool() {
        Some(true) => {
            set("verify_writes", true, "etag.supported: true: a read-back shows whether a write took")
        }
        _ => undecided("verify_writes", format!("whether PATCH answers carry the resource {write}")),
    });
    out
}

/// The settings the User and Group schemas decide.
fn from_schemas(schemas: Option<&SchemaFacts>) -> Vec<Setting> {
    let keys = ["name_formatted", "multi_valued_type", "members_on_create", "member_ref"];
    let Some(f) = schemas else {
        return keys.into_iter().map(|k| undecided(k, "/Schemas was not read")).collect();
    };
    let name_formatted = match (f.user, f.name_formatted) {
        (false, _) => undecided("name_formatted", "no User schema served"),
        (true, Some(true)) => set("name_formatted", true, "the User schema marks name.formatted required"),
        (true, Some(false)) => set("name_formatted", false, "name.formatted is optional in the User schema"),
        (true, None) => set("name_formatted", false, "the User schema has no name.formatted"),
    };
    let multi_valued_type = match (f.emails_type, f.phones_type) {
        (Some(false), _) | (_, Some(false)) => set(
            "multi_valued_type",
            false,
            "emails or phoneNumbers has no type sub-attribute in the User schema",
        ),
        (Some(true), _) | (_, Some(true)) => {
            set("multi_valued_type", true, "the User schema has type inside emails and phoneNumbers")
        }
        (None, None) => undecided("multi_valued_type", "the User schema has neither emails nor phoneNumbers"),
    };
    let members_on_create = match (f.group, f.members_required) {
        (true, Some(true)) => set("members_on_create", true, "the Group schema marks members required"),
        (true, Some(false)) => set("members_on_create", false, "members is optional in the Group schema"),
        _ => undecided("members_on_create", "the Group schema says nothing of members"),
    };
    let member_ref = match (f.group, f.member_ref) {
        (true, Some(true)) => set("member_ref", true, "the Group schema marks members.$ref required"),
        (true, Some(false)) => set("member_ref", false, "members.$ref is optional in the Group schema"),
        (true, None) => set("member_ref", false, "the Group schema has no members.$ref"),
        (false, _) => undecided("member_ref", "no Group schema served"),
    };
    vec![name_formatted, multi_valued_type, members_on_create, member_ref]
}

/// The advice as a TOML block to paste into the config: decided keys as settings, undecided
/// ones as comments, each with its reason.
pub fn render(settings: &[Setting]) -> String {
    let mut out = String::from("[target.dialect]\n");
    for s in settings {
        let line = match &s.value {
            Some(v) => format!("{} = {v}", s.key),
            None => format!("# {}: undecided", s.key),
        };
        out.push_str(&format!("{line:<28} # {}\n", s.why));
    }
    out
}

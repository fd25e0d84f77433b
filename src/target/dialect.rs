//! How one target speaks SCIM: the dialect settings, the profiles' presets of them, and the
//! `[target.dialect]` section that overrides a preset key by key.
//!
//! RFC 7644 leaves room, and real services use it: some take no PATCH (Okta's client updates
//! with PUT), some remove members only as a value list (Entra ID), some want booleans as
//! strings, `name.formatted`, `members: []` on a group create, or no `type` inside `emails`.

use crate::model::Profile;
use crate::section::ConfigErrors;
use serde::Deserialize;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// How a user or group is changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update {
    /// `PATCH` with the smallest operations (RFC 7644 §3.5.2).
    Patch,
    /// `GET` the resource, change only the managed attributes, `PUT` it back (with `If-Match`
    /// where the server gives an ETag).
    Put,
}

/// How members are removed from a group (members are always added as a value list).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Members {
    /// One `remove` per member with the path `members[value eq "ID"]` (RFC 7644 §3.5.2.2).
    Filter,
    /// One `remove` with the path `members` and the members as a value list (Entra ID).
    ValueList,
    /// `GET` the group, change its member list, `PUT` it back.
    Put,
}

/// How boolean values (`active`) are written in PATCH operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Booleans {
    Json,
    /// `"True"` / `"False"`, as Entra ID's older requests.
    String,
}

/// How PATCH operation names are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpCase {
    /// `add`, `replace`, `remove` (RFC 7644).
    Lower,
    /// `Add`, `Replace`, `Remove` (Entra ID).
    Capitalized,
}

/// Everything about a target's SCIM that is a choice rather than the standard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dialect {
    pub profile: Profile,
    pub update: Update,
    pub members: Members,
    pub booleans: Booleans,
    pub op_case: OpCase,
    /// Sends `name.formatted` ("Given Family") with the name parts.
    pub name_formatted: bool,
    /// Writes `type` (and `primary` for the work email) inside `emails` and `phoneNumbers`
    /// entries. Without it, an entry is the value alone and each attribute holds one entry.
    pub multi_valued_type: bool,
    /// `"members": []` in the body of a group create.
    pub members_on_create: bool,
    /// `$ref` (the member's URI) beside `value` in members.
    pub member_ref: bool,
    /// Reads a resource back after a write whose answer carries no body, to prove it took.
    pub verify_writes: bool,
    /// Whether the config chose `update` and `members` itself; the ServiceProviderConfig
    /// then does not change them.
    pub update_chosen: bool,
    pub members_chosen: bool,
    /// Whether the config chose `name_formatted` and `multi_valued_type`; the target's `/Schemas`
    /// then does not change them.
    pub name_formatted_chosen: bool,
    pub multi_valued_type_chosen: bool,
}

impl Dialect {
    /// A profile's preset.
    pub fn preset(profile: Profile) -> Dialect {
        let base = Dialect {
            profile,
            update: Update::Patch,
            members: Members::Filter,
            booleans: Booleans::Json,
            op_case: OpCase::Lower,
            name_formatted: false,
            multi_valued_type: true,
            members_on_create: false,
            member_ref: false,
            verify_writes: false,
            update_chosen: false,
            members_chosen: false,
            name_formatted_chosen: false,
            multi_valued_type_chosen: false,
        };
        match profile {
            Profile::NinjaOne | Profile::Generic => base,
            // What Entra ID's provisioning service documents sending: capitalised operation
            // names, JSON booleans, members removed as a value list, `name.formatted` on create.
            Profile::EntraCompat => Dialect {
                op_case: OpCase::Capitalized,
                members: Members::ValueList,
                name_formatted: true,
                ..base
            },
        }
    }

    /// The settings as `[target.dialect]` would write them, for `check` and the logs.
    pub fn to_toml(&self) -> String {
        format!(
            "[target.dialect]\nupdate = \"{}\"\nmembers = \"{}\"\nbooleans = \"{}\"\nop_case = \"{}\"\n\
             name_formatted = {}\nmulti_valued_type = {}\nmembers_on_create = {}\nmember_ref = {}\n\
             verify_writes = {}\n",
            self.update,
            self.members,
            self.booleans,
            self.op_case,
            self.name_formatted,
            self.multi_valued_type,
            self.members_on_create,
            self.member_ref,
            self.verify_writes
        )
    }
}

impl fmt::Display for Update {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Update::Patch => "patch",
            Update::Put => "put",
        })
    }
}

impl fmt::Display for Members {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Members::Filter => "filter",
            Members::ValueList => "value-list",
            Members::Put => "put",
        })
    }
}

impl fmt::Display for Booleans {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Booleans::Json => "json",
            Booleans::String => "string",
        })
    }
}

impl fmt::Display for OpCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpCase::Lower => "lower",
            OpCase::Capitalized => "capitalized",
        })
    }
}

/// `[target.dialect]` as written: every key optional, each overriding the profile's preset.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RawDialect {
    pub update: Option<String>,
    pub members: Option<String>,
    pub booleans: Option<String>,
    pub op_case: Option<String>,
    pub name_formatted: Option<bool>,
    pub multi_valued_type: Option<bool>,
    pub members_on_create: Option<bool>,
    pub member_ref: Option<bool>,
    pub verify_writes: Option<bool>,
}

/// One of `choices` (case-insensitively), or an error naming the key and the choices.
fn choose<T: Copy>(
    errors: &mut ConfigErrors,
    key: &str,
    value: Option<&str>,
    choices: &[(&str, T)],
) -> Option<T> {
    let value = value?;
    let found = choices.iter().find(|(name, _)| name.eq_ignore_ascii_case(value.trim()));
    if found.is_none() {
        let names: Vec<String> = choices.iter().map(|(n, _)| format!("\"{n}\"")).collect();
        errors.push(&format!("target.dialect.{key}"), format!("{value:?}: use {}", names.join(" or ")));
    }
    found.map(|(_, t)| *t)
}

impl RawDialect {
    /// The profile's preset with this section's settings over it.
    pub fn validate(&self, profile: Profile, errors: &mut ConfigErrors) -> Dialect {
        let mut d = Dialect::preset(profile);
        let update = [("patch", Update::Patch), ("put", Update::Put)];
        if let Some(u) = choose(errors, "update", self.update.as_deref(), &update) {
            d.update = u;
            d.update_chosen = true;
        }
        let members =
            [("filter", Members::Filter), ("value-list", Members::ValueList), ("put", Members::Put)];
        if let Some(m) = choose(errors, "members", self.members.as_deref(), &members) {
            d.members = m;
            d.members_chosen = true;
        }
        let booleans = [("json", Booleans::Json), ("string", Booleans::String)];
        d.booleans = choose(errors, "booleans", self.booleans.as_deref(), &booleans).unwrap_or(d.booleans);
        let case = [("lower", OpCase::Lower), ("capitalized", OpCase::Capitalized)];
        d.op_case = choose(errors, "op_case", self.op_case.as_deref(), &case).unwrap_or(d.op_case);
        d.name_formatted = self.name_formatted.unwrap_or(d.name_formatted);
        d.name_formatted_chosen = self.name_formatted.is_some();
        d.multi_valued_type = self.multi_valued_type.unwrap_or(d.multi_valued_type);
        d.multi_valued_type_chosen = self.multi_valued_type.is_some();
        d.members_on_create = self.members_on_create.unwrap_or(d.members_on_create);
        d.member_ref = self.member_ref.unwrap_or(d.member_ref);
        d.verify_writes = self.verify_writes.unwrap_or(d.verify_writes);
        d
    }
}

/// What a client learnt of its target while it ran, over its dialect: the ServiceProviderConfig
/// read at the start of a run, and the forms the target refused (501, 405), which are not sent
/// again for the rest of the run.
pub(crate) struct Live {
    put_updates: AtomicBool,
    name_formatted: AtomicBool,
    multi_valued_type: AtomicBool,
    /// The member-removal form in use: 0 filter, 1 value list, 2 PUT of the group.
    members: AtomicU8,
    no_filter: AtomicBool,
}

fn members_code(m: Members) -> u8 {
    match m {
        Members::Filter => 0,
        Members::ValueList => 1,
        Members::Put => 2,
    }
}

impl Live {
    pub fn new(d: &Dialect) -> Live {
        Live {
            put_updates: AtomicBool::new(d.update == Update::Put),
            name_formatted: AtomicBool::new(d.name_formatted),
            multi_valued_type: AtomicBool::new(d.multi_valued_type),
            members: AtomicU8::new(members_code(d.members)),
            no_filter: AtomicBool::new(false),
        }
    }

    /// `d` as this run speaks it now.
    pub fn apply(&self, d: &Dialect) -> Dialect {
        Dialect {
            update: self.update(),
            members: self.members(),
            name_formatted: self.name_formatted.load(Ordering::Relaxed),
            multi_valued_type: self.multi_valued_type.load(Ordering::Relaxed),
            ..d.clone()
        }
    }

    /// What the target's `/Schemas` says of the create body; true when it changed something.
    pub fn set_body(&self, name_formatted: bool, multi_valued_type: bool) -> bool {
        let a = self.name_formatted.swap(name_formatted, Ordering::Relaxed) != name_formatted;
        let b = self.multi_valued_type.swap(multi_valued_type, Ordering::Relaxed) != multi_valued_type;
        a || b
    }

    pub fn update(&self) -> Update {
        if self.put_updates.load(Ordering::Relaxed) {
            Update::Put
        } else {
            Update::Patch
        }
    }

    /// Switches updates to PUT; true for the one caller that switched them.
    pub fn put_updates(&self) -> bool {
        !self.put_updates.swap(true, Ordering::Relaxed)
    }

    pub fn members(&self) -> Members {
        match self.members.load(Ordering::Relaxed) {
            0 => Members::Filter,
            1 => Members::ValueList,
            _ => Members::Put,
        }
    }

    /// Moves member removal from `from` to `to`, unless another request moved it already;
    /// true for the one caller that moved it.
    pub fn degrade_members(&self, from: Members, to: Members) -> bool {
        let (from, to) = (members_code(from), members_code(to));
        self.members.compare_exchange(from, to, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }

    pub fn filter_supported(&self) -> bool {
        !self.no_filter.load(Ordering::Relaxed)
    }

    pub fn set_no_filter(&self) {
        self.no_filter.store(true, Ordering::Relaxed);
    }
}

//! SCIM documents scimsync sends and reads, per target profile: user resources, PATCH
//! operations, filters, list responses. Pure functions over `serde_json::Value`.

use super::dialect::{Booleans, Dialect, Members, OpCase};
use super::TargetUser;
use crate::model::{Attr, DesiredUser, Profile};
use crate::reconcile::Change;
use serde_json::{json, Map, Value};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const NINJAONE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:ninjaone:2.0:User";

/// Where an attribute lives in a SCIM User, for one profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// A single-valued core attribute or sub-attribute: `title`, `name.givenName`.
    Core(&'static str),
    /// The `value` of the entry of a multi-valued attribute with a given `type`:
    /// `emails[type eq "work"].value`.
    Typed { attr: &'static str, kind: &'static str, primary: bool },
    /// An attribute of the ninjaone extension.
    Extension(&'static str),
    /// Any other attribute path the mapping names: `name.formatted`,
    /// `addresses[type eq "work"].locality`, `urn:…:enterprise:2.0:User:department`.
    Custom(&'static str),
    /// Not sent under this profile.
    Dropped,
}

fn place(d: &Dialect, attr: Attr) -> Place {
    let ninja = d.profile == Profile::NinjaOne;
    match attr {
        Attr::UserName => Place::Core("userName"),
        Attr::GivenName => Place::Core("name.givenName"),
        Attr::FamilyName => Place::Core("name.familyName"),
        Attr::DisplayName => Place::Core("displayName"),
        Attr::Title => Place::Core("title"),
        Attr::ExternalId => Place::Core("externalId"),
        Attr::WorkEmail => Place::Typed { attr: "emails", kind: "work", primary: true },
        // ninjaone: phone numbers are never sent, whatever the mapping says (SPEC §4).
        Attr::WorkPhone | Attr::MobilePhone if ninja => Place::Dropped,
        Attr::WorkPhone => Place::Typed { attr: "phoneNumbers", kind: "work", primary: false },
        // Without `type`, phoneNumbers holds one entry: the work number.
        Attr::MobilePhone if !d.multi_valued_type => Place::Dropped,
        Attr::MobilePhone => Place::Typed { attr: "phoneNumbers", kind: "mobile", primary: false },
        Attr::UserType if ninja => Place::Extension("userType"),
        Attr::UserType => Place::Core("userType"),
        Attr::OrganizationId if ninja => Place::Extension("organizationId"),
        Attr::OrganizationId => Place::Dropped,
        custom => Place::Custom(custom.name()),
    }
}

fn typed_entry(d: &Dialect, value: &str, kind: &str, primary: bool) -> Value {
    if !d.multi_valued_type {
        return json!({ "value": value });
    }
    let mut entry = json!({ "value": value, "type": kind });
    if primary {
        entry["primary"] = Value::Bool(true);
    }
    entry
}

fn roles_value(roles: impl IntoIterator<Item = impl AsRef<str>>) -> Value {
    Value::Array(roles.into_iter().map(|r| json!({ "value": r.as_ref() })).collect())
}

/// `name.formatted` as Entra ID writes it: the given and family names, else the display name.
fn formatted_name(user: &DesiredUser) -> Option<String> {
    let parts: Vec<&str> = [Attr::GivenName, Attr::FamilyName]
        .iter()
        .filter_map(|a| user.attrs.get(a))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    match parts.is_empty() {
        false => Some(parts.join(" ")),
        true => user.attrs.get(&Attr::DisplayName).map(str::to_owned),
    }
}

/// The body of `POST /Users`.
pub fn user_resource(d: &Dialect, user: &DesiredUser) -> Value {
    let mut doc = Map::new();
    let mut name = Map::new();
    let mut extension = Map::new();
    let mut typed: Vec<(&str, Value)> = Vec::new();
    let mut custom = Vec::new();
    for (attr, value) in &user.attrs {
        match place(d, attr) {
            Place::Core(path) => match path.split_once('.') {
                Some((_, sub)) => {
                    name.insert(sub.to_owned(), value.into());
                }
                None => {
                    doc.insert(path.to_owned(), value.into());
                }
            },
            Place::Typed { attr, kind, primary } => typed.push((attr, typed_entry(d, value, kind, primary))),
            Place::Extension(a) => {
                extension.insert(a.to_owned(), value.into());
            }
            Place::Custom(path) => custom.push(PatchOp::replace(path, value.into())),
            Place::Dropped => {}
        }
    }
    if d.name_formatted && !name.contains_key("formatted") {
        if let Some(formatted) = formatted_name(user) {
            name.insert("formatted".into(), formatted.into());
        }
    }
    if !name.is_empty() {
        doc.insert("name".into(), Value::Object(name));
    }
    for (attr, entry) in typed {
        match doc.entry(attr).or_insert_with(|| Value::Array(Vec::new())) {
            Value::Array(entries) => entries.push(entry),
            _ => unreachable!("typed attributes are arrays"),
        }
    }
    doc.insert("active".into(), Value::Bool(user.active));
    if !user.roles.is_empty() {
        doc.insert("roles".into(), roles_value(&user.roles));
    }
    let mut schemas = vec![Value::from(USER_SCHEMA)];
    if !extension.is_empty() {
        schemas.push(NINJAONE_SCHEMA.into());
        doc.insert(NINJAONE_SCHEMA.into(), Value::Object(extension));
    }
    doc.insert("schemas".into(), Value::Array(schemas));
    let mut doc = Value::Object(doc);
    for op in &custom {
        // The paths were checked when the config was read; one that still cannot be written is
        // left out rather than sent wrong.
        if let Err(e) = super::resource::apply(&mut doc, op) {
            tracing::warn!(path = %op.path, "Not sent: {e}.");
        }
    }
    doc
}

/// The body of `POST /Groups`: without members (they are added once their users exist), or with
/// `members: []` where the dialect asks for it.
pub fn group_resource(d: &Dialect, display_name: &str) -> Value {
    let mut doc = json!({ "schemas": [GROUP_SCHEMA], "displayName": display_name });
    if d.members_on_create {
        doc["members"] = json!([]);
    }
    doc
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Add,
    Replace,
    Remove,
}

/// One PATCH operation, before it is written in a profile's dialect.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchOp {
    pub kind: OpKind,
    pub path: String,
    pub value: Option<Value>,
}

impl PatchOp {
    fn new(kind: OpKind, path: impl Into<String>, value: Option<Value>) -> Self {
        PatchOp { kind, path: path.into(), value }
    }
    pub fn replace(path: impl Into<String>, value: Value) -> Self {
        PatchOp::new(OpKind::Replace, path, Some(value))
    }
    pub fn add(path: impl Into<String>, value: Value) -> Self {
        PatchOp::new(OpKind::Add, path, Some(value))
    }
    pub fn remove(path: impl Into<String>) -> Self {
        PatchOp::new(OpKind::Remove, path, None)
    }
}

fn extension_path(attr: &str) -> String {
    format!("{NINJAONE_SCHEMA}:{attr}")
}

fn filter_path(attr: &str, kind: &str) -> String {
    format!("{attr}[type eq \"{kind}\"]")
}

/// Operations that set one attribute. `known_present` says whether the target is known to
/// have a value already. A value filter (`emails[type eq "work"].value`) matching nothing is
/// an error (RFC 7644 §3.5.2.3, `noTarget`), so a typed value not known to be there is set by
/// removing any entry of its type (a remove that matches nothing is no error) and adding the
/// whole entry: safe to send twice, whatever the target holds.
fn set_ops(d: &Dialect, attr: Attr, value: Option<&str>, known_present: bool) -> Vec<PatchOp> {
    match (place(d, attr), value) {
        (Place::Dropped, _) => Vec::new(),
        (Place::Core(path), Some(v)) => vec![PatchOp::replace(path, v.into())],
        (Place::Core(path), None) => vec![PatchOp::remove(path)],
        (Place::Extension(a), Some(v)) => vec![PatchOp::replace(extension_path(a), v.into())],
        (Place::Extension(a), None) => vec![PatchOp::remove(extension_path(a))],
        // Without `type`, the attribute holds this one entry.
        (Place::Typed { attr, .. }, Some(v)) if !d.multi_valued_type => {
            vec![PatchOp::replace(attr, json!([{ "value": v }]))]
        }
        (Place::Typed { attr, .. }, None) if !d.multi_valued_type => vec![PatchOp::remove(attr)],
        (Place::Typed { attr, kind, .. }, Some(v)) if known_present => {
            vec![PatchOp::replace(format!("{}.value", filter_path(attr, kind)), v.into())]
        }
        (Place::Typed { attr, kind, primary }, Some(v)) => vec![
            PatchOp::remove(filter_path(attr, kind)),
            PatchOp::add(attr, Value::Array(vec![typed_entry(d, v, kind, primary)])),
        ],
        // The whole entry goes: removing only `.value` would leave `{type, primary}` behind.
        (Place::Typed { attr, kind, .. }, None) => vec![PatchOp::remove(filter_path(attr, kind))],
        (Place::Custom(path), Some(v)) => custom_set_ops(path, v, known_present),
        (Place::Custom(path), None) => vec![PatchOp::remove(path)],
    }
}

/// Sets a custom path. A path into a typed entry (`addresses[type eq "work"].locality`) not
/// known to be there is added as a new entry of that type: a value filter that matches nothing
/// is an error (`noTarget`).
fn custom_set_ops(path: &str, value: &str, known_present: bool) -> Vec<PatchOp> {
    let typed = path.split_once('[').and_then(|(attr, rest)| {
        let (filter, sub) = rest.split_once("].")?;
        let (key, wanted) = filter.split_once(" eq ")?;
        let wanted: String = serde_json::from_str(wanted.trim()).ok()?;
        Some((attr, key.trim(), wanted, sub))
    });
    match typed {
        Some((attr, key, wanted, sub)) if !known_present && !attr.contains(':') => {
            vec![PatchOp::add(attr, json!([{ key: wanted, sub: value }]))]
        }
        _ => vec![PatchOp::replace(path, value.into())],
    }
}

/// The operations of one update: each change becomes the smallest operation that makes it.
pub fn update_ops(d: &Dialect, changes: &[Change]) -> Vec<PatchOp> {
    let mut ops = Vec::new();
    for change in changes {
        match change {
            Change::Set { attr, before, after } => {
                ops.extend(set_ops(d, *attr, after.as_deref(), before.is_some()));
            }
            Change::Roles { after, .. } if after.is_empty() => ops.push(PatchOp::remove("roles")),
            Change::Roles { after, .. } => ops.push(PatchOp::replace("roles", roles_value(after))),
        }
    }
    ops
}

/// The operations that bring an existing account, whose current values are unknown, to the
/// desired state: every attribute the user has is set, `active` is set, and roles are replaced
/// when there are any. Attributes the user lacks are left as they are: scimsync does not know
/// whether they are mapped at all, and roles may be managed in the target.
pub fn adopt_ops(d: &Dialect, user: &DesiredUser) -> Vec<PatchOp> {
    let mut ops = Vec::new();
    for (attr, value) in &user.attrs {
        ops.extend(set_ops(d, attr, Some(value), false));
    }
    ops.push(active_op(user.active));
    if !user.roles.is_empty() {
        ops.push(PatchOp::replace("roles", roles_value(&user.roles)));
    }
    ops
}

pub fn active_op(active: bool) -> PatchOp {
    PatchOp::replace("active", Value::Bool(active))
}

pub fn rename_op(display_name: &str) -> PatchOp {
    PatchOp::replace("displayName", display_name.into())
}

/// Members as a value list; with `member_ref`, each carries its URI (`users` is the URL of the
/// target's `/Users`).
pub fn member_values(d: &Dialect, users: &str, member_ids: &[String]) -> Value {
    let entry = |id: &String| match d.member_ref {
        true => json!({ "value": id, "$ref": format!("{users}/{id}") }),
        false => json!({ "value": id }),
    };
    Value::Array(member_ids.iter().map(entry).collect())
}

pub fn add_members_op(d: &Dialect, users: &str, member_ids: &[String]) -> PatchOp {
    PatchOp::add("members", member_values(d, users, member_ids))
}

/// The removal of members in the form `form`: one `remove` per member with a value filter
/// (RFC 7644 §3.5.2.2; scim2-server refuses a value list), or one with the members as a value
/// list (Entra ID). A PUT of the group is no PATCH operation: `Members::Put` gives none.
pub fn remove_members_ops(form: Members, member_ids: &[String]) -> Vec<PatchOp> {
    match form {
        Members::Filter => member_ids
            .iter()
            .map(|id| PatchOp::remove(format!("members[value eq \"{}\"]", escape_filter_value(id))))
            .collect(),
        Members::ValueList => {
            let values = member_ids.iter().map(|id| json!({ "value": id })).collect();
            vec![PatchOp::new(OpKind::Remove, "members", Some(Value::Array(values)))]
        }
        Members::Put => Vec::new(),
    }
}

/// A `PatchOp` request body in the dialect: the operation names' case, booleans as JSON or as
/// strings (`"False"`).
pub fn patch_body(d: &Dialect, ops: &[PatchOp]) -> Value {
    let capitalized = d.op_case == OpCase::Capitalized;
    let operations: Vec<Value> = ops
        .iter()
        .map(|op| {
            let name = match (op.kind, capitalized) {
                (OpKind::Add, false) => "add",
                (OpKind::Replace, false) => "replace",
                (OpKind::Remove, false) => "remove",
                (OpKind::Add, true) => "Add",
                (OpKind::Replace, true) => "Replace",
                (OpKind::Remove, true) => "Remove",
            };
            let mut o = json!({ "op": name, "path": op.path });
            match &op.value {
                Some(Value::Bool(b)) if d.booleans == Booleans::String => {
                    o["value"] = (if *b { "True" } else { "False" }).into()
                }
                Some(v) => o["value"] = v.clone(),
                None => {}
            }
            o
        })
        .collect();
    json!({ "schemas": [PATCH_SCHEMA], "Operations": operations })
}

/// Escapes a value for a double-quoted string in a SCIM filter (a JSON string, RFC 7644
/// §3.4.2.2): backslashes and quotes, and control characters.
pub fn escape_filter_value(value: &str) -> String {
    let quoted = Value::from(value).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

pub fn eq_filter(attr: &str, value: &str) -> String {
    format!("{attr} eq \"{}\"", escape_filter_value(value))
}

/// The `id` of a resource the server returned.
pub fn resource_id(doc: &Value) -> Option<String> {
    doc.get("id").and_then(Value::as_str).filter(|id| !id.is_empty()).map(str::to_owned)
}

fn resources(list: &Value) -> Result<&[Value], String> {
    match list.get("Resources") {
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err("the list response's Resources is not an array".into()),
        None => match list.get("totalResults").and_then(Value::as_u64) {
            Some(0) => Ok(&[]),
            Some(n) => Err(format!("the list response announces {n} results but has no Resources")),
            None => Err("the answer is not a SCIM list response (no totalResults)".into()),
        },
    }
}

/// Picks the resource whose `key` equals `wanted`: exactly if one does, else ignoring case.
/// Resources that do not match are ignored, so a server that ignores the filter and lists
/// everything cannot make scimsync take the wrong object.
fn pick<'a>(list: &'a Value, key: &str, wanted: &str) -> Result<Option<&'a Value>, String> {
    let items = resources(list)?;
    let value = |r: &'a Value| r.get(key).and_then(Value::as_str);
    let exact = items.iter().find(|r| value(r) == Some(wanted));
    Ok(exact.or_else(|| {
        items.iter().find(|r| value(r).is_some_and(|v| v.to_lowercase() == wanted.to_lowercase()))
    }))
}

/// The user named `user_name` (case-insensitively) in the answer to a `userName eq` filter.
pub fn pick_user(list: &Value, user_name: &str) -> Result<Option<TargetUser>, String> {
    let Some(r) = pick(list, "userName", user_name)? else { return Ok(None) };
    let id = resource_id(r).ok_or("a listed user has no id")?;
    let active = match r.get("active") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        // Entra-style string booleans.
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
        Some(other) => return Err(format!("a listed user has active = {other}, not a boolean")),
    };
    Ok(Some(TargetUser {
        id,
        user_name: r.get("userName").and_then(Value::as_str).unwrap_or(user_name).to_owned(),
        active,
        external_id: r.get("externalId").and_then(Value::as_str).map(str::to_owned),
    }))
}

/// The id of the group named `display_name` (exactly, else case-insensitively).
pub fn pick_group(list: &Value, display_name: &str) -> Result<Option<String>, String> {
    match pick(list, "displayName", display_name)? {
        None => Ok(None),
        Some(r) => resource_id(r).map(Some).ok_or_else(|| "a listed group has no id".into()),
    }
}

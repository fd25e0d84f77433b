//! JSON source: a SCIM `ListResponse` document or JSON Lines of SCIM resources. The SCIM
//! resource → record conversion is shared with the SCIM endpoint source.

use super::directory::{flatten, MemberRef, RawGroup, SourceDirectory, SourceUser};
use super::{Names, Origin, Record, SourceError, UserRecord, Value};
use crate::model::{Skip, SourceKey};
use serde_json::Value as Json;
use std::collections::{BTreeSet, HashMap};
use std::io::Read;

const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:group";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:listresponse";

/// Reads a JSON export completely, or fails naming `path:line`.
pub fn read(input: impl Read, path: &str) -> Result<SourceDirectory, SourceError> {
    let mut resources = Vec::new();
    let stream = serde_json::Deserializer::from_reader(std::io::BufReader::new(input)).into_iter::<Json>();
    let mut list_seen = false;
    for (i, item) in stream.enumerate() {
        let value = item.map_err(|e| SourceError::Parse {
            path: path.to_owned(),
            line: e.line() as u64,
            message: format!(
                "invalid JSON: {e}; the file must be a SCIM ListResponse or one resource per line"
            ),
        })?;
        if is_list_response(&value) {
            if i > 0 || list_seen {
                return Err(parse_err(path, 0, "a ListResponse must be the only document in the file"));
            }
            list_seen = true;
            let list = value.get("Resources").and_then(Json::as_array).cloned().unwrap_or_default();
            if let Some(total) = value.get("totalResults").and_then(Json::as_u64) {
                if total != list.len() as u64 {
                    return Err(SourceError::Incomplete(format!(
                        "{path}: totalResults is {total} but the document holds {} resources; re-export it completely",
                        list.len()
                    )));
                }
            }
            for (j, r) in list.into_iter().enumerate() {
                resources.push((Origin { path: format!("{path}#/Resources/{j}").into(), line: 0 }, r));
            }
        } else if list_seen {
            return Err(parse_err(path, 0, "a ListResponse must be the only document in the file"));
        } else {
            resources.push((Origin { path: path.into(), line: i as u64 + 1 }, value));
        }
    }
    from_resources(resources)
}

fn parse_err(path: &str, line: u64, message: &str) -> SourceError {
    SourceError::Parse { path: path.to_owned(), line, message: message.to_owned() }
}

fn is_list_response(v: &Json) -> bool {
    v.get("Resources").is_some() || schemas(v).any(|s| s == LIST_SCHEMA)
}

fn schemas(v: &Json) -> impl Iterator<Item = String> + '_ {
    v.get("schemas")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
        .map(str::to_lowercase)
}

fn is_group(v: &Json) -> bool {
    schemas(v).any(|s| s == GROUP_SCHEMA) || (v.get("members").is_some() && v.get("userName").is_none())
}

/// Flattens a SCIM resource into record attributes: `name.givenname`, `emails.work`,
/// `emails.primary`, `urn:…:user:department`, multi-valued where the resource is.
pub fn flatten_resource(v: &Json) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    if let Json::Object(map) = v {
        for (k, val) in map {
            add_value(&mut out, &k.to_lowercase(), val);
        }
    }
    out
}

fn scalar(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Bool(b) => Some(b.to_string()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn add_value(out: &mut Vec<(String, Value)>, key: &str, v: &Json) {
    match v {
        Json::Object(map) => {
            // Extension schemas are keyed by URN: their attributes join with ':'.
            let sep = if key.starts_with("urn:") { ':' } else { '.' };
            for (k, val) in map {
                add_value(out, &format!("{key}{sep}{}", k.to_lowercase()), val);
            }
        }
        Json::Array(items) => {
            for item in items {
                match item {
                    Json::Object(o) => {
                        let value = o.get("value").and_then(scalar);
                        if let Some(val) = &value {
                            if let Some(t) = o.get("type").and_then(Json::as_str) {
                                out.push((format!("{key}.{}", t.to_lowercase()), Value::Text(val.clone())));
                            }
                            if o.get("primary").and_then(Json::as_bool) == Some(true) {
                                out.push((format!("{key}.primary"), Value::Text(val.clone())));
                            }
                        }
                        for (k, val) in o {
                            if let Some(s) = scalar(val) {
                                out.push((format!("{key}.{}", k.to_lowercase()), Value::Text(s)));
                            }
                        }
                    }
                    other => {
                        if let Some(s) = scalar(other) {
                            out.push((key.to_owned(), Value::Text(s)));
                        }
                    }
                }
            }
        }
        other => {
            if let Some(s) = scalar(other) {
                out.push((key.to_owned(), Value::Text(s)));
            }
        }
    }
}

/// Interprets SCIM resources as users and groups; members are resolved by resource `id`.
pub fn from_resources(resources: Vec<(Origin, Json)>) -> Result<SourceDirectory, SourceError> {
    let mut dir = SourceDirectory { records_read: resources.len() as u64, ..Default::default() };
    let mut raw_groups = Vec::new();
    let mut user_ids = HashMap::new();
    let mut names = Names::default();
    for (origin, v) in resources {
        if !v.is_object() {
            return Err(SourceError::Parse {
                path: origin.path.to_string(),
                line: origin.line,
                message: "expected a SCIM resource (a JSON object)".into(),
            });
        }
        let text = |k: &str| v.get(k).and_then(Json::as_str).map(str::trim).filter(|s| !s.is_empty());
        let id = text("id").map(str::to_owned);
        if is_group(&v) {
            let name = text("displayName").map(str::to_owned);
            let Some(name) = name else {
                dir.skipped.push(Skip {
                    origin: origin.to_string(),
                    key: None,
                    reason: "group without displayName".into(),
                });
                continue;
            };
            let key = id
                .clone()
                .or_else(|| text("externalId").map(str::to_owned))
                .unwrap_or_else(|| format!("group:{}", name.to_lowercase()));
            let members = v
                .get("members")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
                .filter_map(|m| m.get("value").and_then(Json::as_str))
                .map(|s| MemberRef::Id(s.to_owned()))
                .collect();
            raw_groups.push(RawGroup {
                key: SourceKey(key.clone()),
                id: id.unwrap_or(key),
                origin: origin.to_string(),
                name,
                members,
            });
            continue;
        }
        let key = id
            .clone()
            .or_else(|| text("externalId").map(str::to_owned))
            .or_else(|| text("userName").map(str::to_lowercase));
        let Some(key) = key else {
            dir.skipped.push(Skip {
                origin: origin.to_string(),
                key: None,
                reason: "resource has no id, externalId or userName".into(),
            });
            continue;
        };
        let active =
            !v.get("active").is_some_and(|a| a == &Json::Bool(false) || a == "false" || a == "False");
        user_ids.insert(id.clone().unwrap_or_else(|| key.clone()), dir.users.len());
        let record = Record { origin, dn: id.unwrap_or_default(), attrs: flatten_resource(&v) };
        let record = UserRecord::keep(record, None, &mut names);
        dir.users.push(SourceUser { key: SourceKey(key), record, active, groups: BTreeSet::new() });
    }
    flatten(&mut dir, raw_groups, &user_ids, &HashMap::new());
    Ok(dir)
}

//! PATCH operations worked on a resource scimsync holds: to change a resource it read before it
//! PUTs it back (a target that takes no PATCH), and to prove that a resource a target answered
//! with carries what was sent (a write that took).
//!
//! Only the paths scimsync writes are understood (RFC 7644 §3.10 attrPath with at most one
//! `[sub eq "value"]` filter): `title`, `name.givenName`, `emails[type eq "work"].value`,
//! `members[value eq "ID"]`, `urn:…:User:department`. Attribute names match case-insensitively,
//! as SCIM's do.

use super::body::{OpKind, PatchOp, USER_SCHEMA};
use serde_json::{Map, Value};

/// A parsed attribute path.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Path<'a> {
    /// The extension schema the attribute belongs to; `None` for the core schema.
    schema: Option<&'a str>,
    attr: &'a str,
    /// `[sub eq "value"]` on a multi-valued attribute.
    filter: Option<(&'a str, String)>,
    sub: Option<&'a str>,
}

fn parse(path: &str) -> Result<Path<'_>, String> {
    let bad = || format!("cannot work on the path {path:?}");
    // A schema URN ends at the last ':' before any filter or sub-attribute.
    let head_end = path.find('[').unwrap_or(path.len());
    let (schema, rest) = match path[..head_end].rfind(':') {
        Some(i) if path.to_ascii_lowercase().starts_with("urn:") => (Some(&path[..i]), &path[i + 1..]),
        _ => (None, path),
    };
    let schema = schema.filter(|s| !s.eq_ignore_ascii_case(USER_SCHEMA));
    let (attr, filter, after) = match rest.split_once('[') {
        Some((attr, f)) => {
            let (inner, after) = f.split_once(']').ok_or_else(bad)?;
            let (sub, value) = inner.split_once(" eq ").ok_or_else(bad)?;
            let value: String = serde_json::from_str(value.trim()).map_err(|_| bad())?;
            (attr, Some((sub.trim(), value)), after)
        }
        None => match rest.split_once('.') {
            Some((attr, _)) => (attr, None, &rest[attr.len()..]),
            None => (rest, None, ""),
        },
    };
    let sub = match after {
        "" => None,
        s => Some(s.strip_prefix('.').filter(|s| !s.is_empty()).ok_or_else(bad)?),
    };
    if attr.is_empty() {
        return Err(bad());
    }
    Ok(Path { schema, attr, filter, sub })
}

/// The key `name` has in `map`, ignoring case.
fn key_in(map: &Map<String, Value>, name: &str) -> Option<String> {
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

fn get<'v>(map: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    map.get(name).or_else(|| key_in(map, name).and_then(|k| map.get(&k)))
}

/// `map[name]`, created as `init` when absent, under the key the map already uses.
fn entry<'v>(map: &'v mut Map<String, Value>, name: &str, init: Value) -> &'v mut Value {
    let key = key_in(map, name).unwrap_or_else(|| name.to_owned());
    map.entry(key).or_insert(init)
}

fn remove(map: &mut Map<String, Value>, name: &str) {
    if let Some(k) = key_in(map, name) {
        map.remove(&k);
    }
}

/// Whether a multi-valued entry matches `[sub eq "value"]`: member ids exactly, anything else
/// ignoring case (SCIM strings are case-insensitive unless caseExact).
fn matches(entry: &Value, (sub, value): &(&str, String)) -> bool {
    let Some(have) = entry.as_object().and_then(|e| get(e, sub)).and_then(Value::as_str) else {
        return false;
    };
    if sub.eq_ignore_ascii_case("value") {
        have == value
    } else {
        have.eq_ignore_ascii_case(value)
    }
}

/// The entries `[sub eq "value"]` selects. A target that keeps no `type` (or whatever the filter
/// names) in any entry cannot be asked by it: its primary entry, else its first, stands for the
/// one the filter means.
fn hits(list: &[Value], filter: &(&str, String)) -> Vec<usize> {
    let untyped = !list.iter().any(|e| e.as_object().is_some_and(|o| get(o, filter.0).is_some()));
    if !untyped {
        return (0..list.len()).filter(|&i| matches(&list[i], filter)).collect();
    }
    let primary =
        list.iter().position(|e| e.as_object().and_then(|o| get(o, "primary")) == Some(&Value::Bool(true)));
    primary.or((!list.is_empty()).then_some(0)).into_iter().collect()
}

/// The object holding the path's attribute: the resource, or its extension's object.
fn holder<'v>(doc: &'v mut Map<String, Value>, path: &Path) -> Result<&'v mut Map<String, Value>, String> {
    let Some(schema) = path.schema else { return Ok(doc) };
    if let Value::Array(schemas) = entry(doc, "schemas", Value::Array(vec![])) {
        if !schemas.iter().any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(schema))) {
            schemas.push(schema.into());
        }
    }
    entry(doc, schema, Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| format!("the resource's {schema} is not an object"))
}

fn value_of(entry: &Value) -> Option<&Value> {
    entry.as_object().and_then(|e| get(e, "value"))
}

/// Applies one operation to `doc`, as a service provider would.
pub fn apply(doc: &mut Value, op: &PatchOp) -> Result<(), String> {
    let path = parse(&op.path)?;
    let doc = doc.as_object_mut().ok_or("the resource is not a JSON object")?;
    let map = holder(doc, &path)?;
    match (&path.filter, path.sub, op.kind) {
        (None, None, OpKind::Remove) => match &op.value {
            // A value list: remove those entries only.
            Some(Value::Array(gone)) => {
                if let Some(Value::Array(have)) = key_in(map, path.attr).and_then(|k| map.get_mut(&k)) {
                    have.retain(|e| {
                        !gone.iter().any(|g| value_of(g).is_some() && value_of(g) == value_of(e))
                    });
                }
            }
            _ => remove(map, path.attr),
        },
        (None, None, kind) => {
            let value = op.value.clone().unwrap_or(Value::Null);
            match (entry(map, path.attr, Value::Null), value) {
                (Value::Array(have), Value::Array(new)) if kind == OpKind::Add => {
                    for e in new {
                        if !have.iter().any(|h| value_of(h).is_some() && value_of(h) == value_of(&e)) {
                            have.push(e);
                        }
                    }
                }
                (slot, value) => *slot = value,
            }
        }
        (None, Some(sub), kind) => {
            let parent = entry(map, path.attr, Value::Object(Map::new()));
            let parent = parent.as_object_mut().ok_or_else(|| format!("{} is not an object", path.attr))?;
            match kind {
                OpKind::Remove => remove(parent, sub),
                _ => *entry(parent, sub, Value::Null) = op.value.clone().unwrap_or(Value::Null),
            }
        }
        (Some(filter), sub, kind) => {
            let list = entry(map, path.attr, Value::Array(vec![]));
            let Value::Array(list) = list else { return Err(format!("{} is not multi-valued", path.attr)) };
            let hits = hits(list, filter);
            match (sub, kind) {
                (None, OpKind::Remove) => {
                    for &i in hits.iter().rev() {
                        list.remove(i);
                    }
                }
                (Some(sub), OpKind::Remove) => {
                    for &i in &hits {
                        if let Some(o) = list[i].as_object_mut() {
                            remove(o, sub);
                        }
                    }
                }
                (Some(sub), _) => {
                    let value = op.value.clone().unwrap_or(Value::Null);
                    let objects: Vec<usize> = hits.into_iter().filter(|&i| list[i].is_object()).collect();
                    for &i in &objects {
                        let o = list[i].as_object_mut().expect("checked: an object");
                        *entry(o, sub, Value::Null) = value.clone();
                    }
                    if objects.is_empty() {
                        let mut new = Map::new();
                        new.insert(filter.0.to_owned(), filter.1.clone().into());
                        new.insert(sub.to_owned(), value);
                        list.push(Value::Object(new));
                    }
                }
                (None, _) => return Err(format!("cannot {:?} the entries {}", kind, op.path)),
            }
        }
    }
    Ok(())
}

/// Whether two values say the same, as a server may echo them: strings ignoring case and
/// surrounding space, booleans also as `"True"` / `"False"`.
fn same(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::String(h), Value::String(w)) => h.trim().eq_ignore_ascii_case(w.trim()),
        (Value::String(s), Value::Bool(b)) | (Value::Bool(b), Value::String(s)) => {
            s.eq_ignore_ascii_case(if *b { "true" } else { "false" })
        }
        (h, w) => h == w,
    }
}

fn absent(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::String(s)) => s.is_empty(),
        Some(_) => false,
    }
}

/// Why `doc`, a resource the target answered a write with, does not carry what `op` made;
/// `None` when it does, or when the target left the attribute out of its answer where that
/// proves nothing (multi-valued attributes such as `members` are often not returned).
pub fn not_taken(doc: &Value, op: &PatchOp) -> Option<String> {
    let path = parse(&op.path).ok()?;
    let root = doc.as_object()?;
    let map = match path.schema {
        None => root,
        Some(s) => match get(root, s).and_then(Value::as_object) {
            Some(m) => m,
            None if op.kind == OpKind::Remove => return None,
            None => return Some(format!("{} is missing from the answer", op.path)),
        },
    };
    let have = get(map, path.attr);
    let shown = |v: Option<&Value>| v.map_or("nothing".to_owned(), Value::to_string);
    let wrong = |v: Option<&Value>| Some(format!("{} is {} in the answer", op.path, shown(v)));
    match (&path.filter, path.sub, op.kind) {
        (None, None, OpKind::Remove) => match (&op.value, have) {
            (Some(Value::Array(gone)), Some(Value::Array(list))) => {
                let left = gone.iter().find(|g| list.iter().any(|e| value_of(e) == value_of(g)));
                left.map(|g| format!("{} still holds {}", op.path, shown(value_of(g))))
            }
            (Some(_), _) => None,
            (None, v) if absent(v) => None,
            (None, v) => wrong(v),
        },
        (None, None, kind) => match (op.value.as_ref()?, have) {
            (Value::Array(_), None) => None,
            (Value::Array(want), Some(Value::Array(list))) => {
                let missing = want.iter().find(|w| !list.iter().any(|e| value_of(e) == value_of(w)));
                let extra = kind == OpKind::Replace
                    && list.iter().any(|e| !want.iter().any(|w| value_of(e) == value_of(w)));
                (missing.is_some() || extra).then(|| format!("{} differs in the answer", op.path))
            }
            (want, Some(h)) if same(h, want) => None,
            (_, v) => wrong(v),
        },
        (None, Some(sub), kind) => {
            let v = have.and_then(Value::as_object).and_then(|o| get(o, sub));
            match (kind, op.value.as_ref()) {
                (OpKind::Remove, _) if absent(v) => None,
                (OpKind::Remove, _) => wrong(v),
                (_, Some(want)) if v.is_some_and(|h| same(h, want)) => None,
                _ => wrong(v),
            }
        }
        (Some(filter), sub, kind) => {
            let list = match have {
                Some(Value::Array(l)) => l.as_slice(),
                _ => &[],
            };
            let hits: Vec<&Value> = hits(list, filter).into_iter().map(|i| &list[i]).collect();
            match (sub, kind, op.value.as_ref()) {
                (None, OpKind::Remove, _) if hits.is_empty() => None,
                (Some(sub), OpKind::Remove, _)
                    if hits.iter().all(|e| absent(e.as_object().and_then(|o| get(o, sub)))) =>
                {
                    None
                }
                (Some(sub), _, Some(want))
                    if hits
                        .iter()
                        .any(|e| e.as_object().and_then(|o| get(o, sub)).is_some_and(|h| same(h, want))) =>
                {
                    None
                }
                _ => Some(format!("{} is not as sent: the answer has {}", op.path, shown(have))),
            }
        }
    }
}

/// The first of `ops` whose effect `doc` does not show. An operation a later one on the same
/// attribute undoes in part (the `remove` of a typed email before the `add` of the new entry)
/// is judged by the later one alone.
pub fn not_taken_all(doc: &Value, ops: &[PatchOp]) -> Option<String> {
    let top = |op: &PatchOp| {
        parse(&op.path).ok().map(|p| (p.schema.map(str::to_ascii_lowercase), p.attr.to_ascii_lowercase()))
    };
    ops.iter().enumerate().find_map(|(i, op)| {
        let superseded = ops[i + 1..].iter().any(|later| later.kind != op.kind && top(later) == top(op));
        if superseded {
            None
        } else {
            not_taken(doc, op)
        }
    })
}

/// The body of a PUT: the resource as read, changed, without what only the server writes.
pub fn for_put(mut doc: Value) -> Value {
    if let Some(map) = doc.as_object_mut() {
        remove(map, "meta");
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "schemas": [USER_SCHEMA], "id": "1", "userName": "ada@x", "title": "Eng",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"value": "ada@x", "type": "work", "primary": true}, {"value": "a@home", "type": "home"}],
            "nickName": "kept", "meta": {"version": "W/\"1\""}
        })
    }

    #[test]
    fn parses_the_paths_scimsync_writes() {
        let p = parse(r#"emails[type eq "work"].value"#).unwrap();
        assert_eq!((p.attr, p.filter, p.sub), ("emails", Some(("type", "work".into())), Some("value")));
        let p = parse("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value").unwrap();
        assert_eq!(p.schema, Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"));
        assert_eq!((p.attr, p.sub), ("manager", Some("value")));
        let p = parse("urn:ietf:params:scim:schemas:core:2.0:User:name.givenName").unwrap();
        assert_eq!((p.schema, p.attr, p.sub), (None, "name", Some("givenName")));
        assert!(parse(r#"members[value eq "x"#).is_err());
        assert!(parse("name.").is_err());
    }

    #[test]
    fn changes_only_what_the_operations_name() {
        let mut doc = user();
        let ops = [
            PatchOp::replace("title", "Principal".into()),
            PatchOp::replace(r#"emails[type eq "work"].value"#, "ada@new".into()),
            PatchOp::remove("name.familyName"),
            PatchOp::replace("urn:x:ext:User:department", "R&D".into()),
            PatchOp::replace("active", false.into()),
        ];
        for op in &ops {
            apply(&mut doc, op).unwrap();
        }
        assert_eq!(doc["title"], "Principal");
        assert_eq!(doc["emails"][0]["value"], "ada@new");
        assert_eq!(doc["emails"][1], json!({"value": "a@home", "type": "home"}), "other entries kept");
        assert_eq!(doc["name"], json!({"givenName": "Ada"}));
        assert_eq!(doc["nickName"], "kept", "attributes scimsync does not manage are kept");
        assert_eq!(doc["urn:x:ext:User"]["department"], "R&D");
        assert!(doc["schemas"].as_array().unwrap().contains(&json!("urn:x:ext:User")));
        for op in &ops {
            assert_eq!(not_taken(&doc, op), None, "{op:?}");
        }
        assert_eq!(for_put(doc).get("meta"), None);
    }

    #[test]
    fn members_by_value_list_and_by_filter() {
        let mut g =
            json!({"displayName": "Ops", "members": [{"value": "a"}, {"value": "b"}, {"value": "c"}]});
        apply(&mut g, &PatchOp::add("members", json!([{"value": "c"}, {"value": "d"}]))).unwrap();
        apply(&mut g, &PatchOp::remove(r#"members[value eq "a"]"#)).unwrap();
        let list =
            PatchOp { kind: OpKind::Remove, path: "members".into(), value: Some(json!([{"value": "b"}])) };
        apply(&mut g, &list).unwrap();
        assert_eq!(g["members"], json!([{"value": "c"}, {"value": "d"}]));
        assert_eq!(not_taken(&g, &list), None);
        let stale = json!({"members": [{"value": "b"}]});
        assert!(not_taken(&stale, &list).unwrap().contains("still holds"));
    }

    #[test]
    fn an_answer_that_did_not_change_is_caught() {
        let before = user();
        let cases = [
            PatchOp::replace("title", "Principal".into()),
            PatchOp::replace(r#"emails[type eq "work"].value"#, "ada@new".into()),
            PatchOp::remove("title"),
            PatchOp::remove(r#"emails[type eq "home"]"#),
            PatchOp::replace("active", false.into()),
            PatchOp::replace("name.givenName", "Augusta".into()),
        ];
        for op in &cases {
            assert!(not_taken(&before, op).is_some(), "{op:?}");
        }
        // Echoed differently, but the same.
        let echoed = json!({"title": " eng ", "active": "False"});
        assert_eq!(not_taken(&echoed, &PatchOp::replace("title", "Eng".into())), None);
        assert_eq!(not_taken(&echoed, &PatchOp::replace("active", false.into())), None);
        // A target that drops `type` is judged by the values alone.
        let untyped = json!({"emails": [{"value": "ada@new"}]});
        let email = PatchOp::replace(r#"emails[type eq "work"].value"#, "ada@new".into());
        assert_eq!(not_taken(&untyped, &email), None);
        assert!(not_taken(&json!({"emails": [{"value": "old@x"}]}), &email).is_some());
        let mut read = json!({"emails": [{"value": "b@x"}, {"value": "old@x", "primary": true}]});
        apply(&mut read, &email).unwrap();
        assert_eq!(
            read["emails"],
            json!([{"value": "b@x"}, {"value": "ada@new", "primary": true}]),
            "the primary one"
        );
        // Members the answer leaves out prove nothing either way.
        assert_eq!(
            not_taken(&json!({"displayName": "Ops"}), &PatchOp::add("members", json!([{"value": "a"}]))),
            None
        );
    }
}

//! What `check` makes of the target's answers, without I/O: what the server declares, what its
//! read paths actually did, where the two disagree, and the dialect settings that follow.
//!
//! Only what the answers prove is said: a filtered lookup "works" only when the server had
//! users and answered none of them for a name no one has; a server that answered users that do
//! not match ignores filters, whatever its ServiceProviderConfig declares.

use super::dialect::{self, Setting};
use serde_json::Value;

/// The User and Group schema ids of RFC 7643.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// What one read answered.
#[derive(Clone, Debug, PartialEq)]
pub enum Read {
    /// A 2xx answer and its JSON body (`Null` when it had none).
    Answered(Value),
    /// Refused with this status (404, 405, 501: not served) and the server's detail.
    Refused { status: u16, message: String },
    /// No usable answer (the retries used up, a body that is not JSON, …).
    Failed(String),
}

/// Everything `check` read from the target.
#[derive(Clone, Debug)]
pub struct Answers {
    /// `GET /ServiceProviderConfig`.
    pub spc: Value,
    /// `GET /Schemas`.
    pub schemas: Read,
    /// `GET /ResourceTypes`.
    pub resource_types: Read,
    /// The userName and displayName looked up: one no object has.
    pub absent: String,
    /// `GET /Users?filter=userName eq "<absent>"`.
    pub user_filter: Read,
    /// `GET /Groups?filter=displayName eq "<absent>"`.
    pub group_filter: Read,
    /// `GET /Users?startIndex=1&count=1`.
    pub user_page: Read,
    /// `GET /Groups?startIndex=1&count=1`.
    pub group_page: Read,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// What the server declares or did, as expected.
    Info,
    /// A contradiction or a missing feature scimsync works around, with what it means.
    Warning,
    /// scimsync cannot work with this target.
    Fatal,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    pub text: String,
}

/// The judgement: findings in the order they are printed, and the dialect advice.
#[derive(Clone, Debug)]
pub struct Findings {
    pub findings: Vec<Finding>,
    pub dialect: Vec<Setting>,
}

impl Findings {
    fn say(&mut self, level: Level, text: String) {
        self.findings.push(Finding { level, text });
    }

    pub fn fatal(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.level == Level::Fatal)
    }
}

/// Judges the answers: declarations first, then each read path, then the advice.
pub fn judge(a: &Answers) -> Findings {
    let mut out = Findings { findings: Vec::new(), dialect: Vec::new() };
    out.say(Level::Info, declared(&a.spc));
    let schemas = schemas(&mut out, &a.schemas);
    resource_types(&mut out, &a.resource_types);
    let filter = a.spc["filter"]["supported"].as_bool();
    let users = Path { noun: "user", endpoint: "Users", attr: "userName" };
    let groups = Path { noun: "group", endpoint: "Groups", attr: "displayName" };
    let user_count = page(&mut out, &users, &a.user_page);
    lookup(&mut out, &users, filter, &a.absent, &a.user_filter, user_count);
    let group_count = page(&mut out, &groups, &a.group_page);
    lookup(&mut out, &groups, filter, &a.absent, &a.group_filter, group_count);
    out.dialect = dialect::advise(&a.spc, schemas.as_ref());
    out
}

/// `enabled`, `not supported` or `not declared` for one `{"supported": …}` feature, with the
/// numbers it declares.
fn feature(spc: &Value, name: &str, numbers: &[&str]) -> String {
    let f = &spc[name];
    let mut s = match f["supported"].as_bool() {
        Some(true) => "supported".to_owned(),
        Some(false) => "not supported".to_owned(),
        None => "not declared".to_owned(),
    };
    for n in numbers {
        if let Some(v) = f[*n].as_u64() {
            s.push_str(&format!(", {n} {v}"));
        }
    }
    s
}

/// The ServiceProviderConfig's declarations, one per line.
fn declared(spc: &Value) -> String {
    let pagination = match &spc["pagination"] {
        Value::Object(p) => {
            let yes = |k: &str| p.get(k).and_then(Value::as_bool).map(|b| if b { "yes" } else { "no" });
            let mut s = format!(
                "cursor {}, index {}",
                yes("cursor").unwrap_or("not declared"),
                yes("index").unwrap_or("not declared")
            );
            for k in ["defaultPaginationMethod", "defaultPageSize", "maxPageSize", "cursorTimeout"] {
                if let Some(v) = p.get(k).filter(|v| !v.is_null()) {
                    s.push_str(&format!(", {k} {}", v.as_str().map_or_else(|| v.to_string(), str::to_owned)));
                }
            }
            s
        }
        _ => "not declared (index paging, RFC 7644 §3.4.2.4)".to_owned(),
    };
    let schemes: Vec<String> = spc["authenticationSchemes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| match (s["name"].as_str(), s["type"].as_str()) {
            (Some(name), Some(kind)) => format!("{name} ({kind})"),
            (Some(name), None) => name.to_owned(),
            (None, Some(kind)) => kind.to_owned(),
            (None, None) => "(unnamed)".to_owned(),
        })
        .collect();
    let lines = [
        ("patch", feature(spc, "patch", &[])),
        ("bulk", feature(spc, "bulk", &["maxOperations", "maxPayloadSize"])),
        ("filter", feature(spc, "filter", &["maxResults"])),
        ("changePassword", feature(spc, "changePassword", &[])),
        ("sort", feature(spc, "sort", &[])),
        ("etag", feature(spc, "etag", &[])),
        ("pagination", pagination),
        (
            "authenticationSchemes",
            if schemes.is_empty() { "none declared".to_owned() } else { schemes.join(", ") },
        ),
    ];
    let mut text = "ServiceProviderConfig read; the server declares:".to_owned();
    for (name, value) in lines {
        text.push_str(&format!("\n  {name:<22} {value}"));
    }
    text
}

/// The resources of a list response (or of a bare array, which some servers answer), and its
/// `totalResults`.
fn list(doc: &Value) -> Option<(&[Value], Option<u64>)> {
    match doc {
        Value::Array(items) => Some((items, None)),
        Value::Object(o) => {
            let total = o.get("totalResults").and_then(Value::as_u64);
            match o.get("Resources") {
                Some(Value::Array(items)) => Some((items, total)),
                None if total.is_some() => Some((&[], total)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Whether a refusal means "not served" rather than a fault.
fn not_served(status: u16) -> bool {
    matches!(status, 404 | 405 | 501)
}

/// What the User and Group schemas say about the attributes the dialect settings concern.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchemaFacts {
    /// `name.formatted`: `Some(required)` when the User schema has it.
    pub name_formatted: Option<bool>,
    /// Whether `emails` / `phoneNumbers` have a `type` sub-attribute (`None`: no such attribute).
    pub emails_type: Option<bool>,
    pub phones_type: Option<bool>,
    /// Whether the Group schema is served, and its `members` attribute is required.
    pub members_required: Option<bool>,
    /// `members.$ref`: `Some(required)` when the Group schema has it.
    pub member_ref: Option<bool>,
    /// Whether each schema was found.
    pub user: bool,
    pub group: bool,
}

fn named(v: &Value, name: &str) -> bool {
    v["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name))
}

fn attribute<'a>(schema: &'a Value, name: &str) -> Option<&'a Value> {
    schema["attributes"].as_array()?.iter().find(|a| named(a, name))
}

fn sub<'a>(attr: &'a Value, name: &str) -> Option<&'a Value> {
    attr["subAttributes"].as_array()?.iter().find(|s| named(s, name))
}

fn required(attr: &Value) -> bool {
    attr["required"].as_bool().unwrap_or(false)
}

fn facts(list: &[Value]) -> SchemaFacts {
    let by_id = |id: &str| list.iter().find(|s| s["id"].as_str() == Some(id));
    let mut f = SchemaFacts::default();
    if let Some(user) = by_id(USER_SCHEMA) {
        f.user = true;
        f.name_formatted = attribute(user, "name").and_then(|n| sub(n, "formatted")).map(required);
        f.emails_type = attribute(user, "emails").map(|e| sub(e, "type").is_some());
        f.phones_type = attribute(user, "phoneNumbers").map(|p| sub(p, "type").is_some());
    }
    if let Some(group) = by_id(GROUP_SCHEMA) {
        f.group = true;
        let members = attribute(group, "members");
        f.members_required = members.map(required);
        f.member_ref = members.and_then(|m| sub(m, "$ref")).map(required);
    }
    f
}

/// `/Schemas`: the ids served and what the User and Group schemas say; `None` when not read.
fn schemas(out: &mut Findings, read: &Read) -> Option<SchemaFacts> {
    let items = match read {
        Read::Answered(doc) => match list(doc) {
            Some((items, _)) => items,
            None => {
                out.say(Level::Warning, "/Schemas answered something that is not a list of schemas".into());
                return None;
            }
        },
        Read::Refused { status, .. } if not_served(*status) => {
            out.say(Level::Info, format!("/Schemas is not served ({status})"));
            return None;
        }
        Read::Refused { status, message } => {
            out.say(Level::Info, format!("/Schemas could not be read ({status}: {message})"));
            return None;
        }
        Read::Failed(message) => {
            out.say(Level::Info, format!("/Schemas could not be read: {message}"));
            return None;
        }
    };
    let ids: Vec<&str> = items.iter().filter_map(|s| s["id"].as_str()).collect();
    let f = facts(items);
    let present = |p: Option<bool>, what: &str| match p {
        Some(true) => format!("{what} present"),
        Some(false) => format!("no {what}"),
        None => String::new(),
    };
    let mut text = format!("/Schemas serves {}: {}", ids.len(), ids.join(", "));
    if f.user {
        let formatted = match f.name_formatted {
            Some(true) => "name.formatted required".to_owned(),
            Some(false) => "name.formatted optional".to_owned(),
            None => "no name.formatted".to_owned(),
        };
        let parts: Vec<String> =
            [formatted, present(f.emails_type, "emails.type"), present(f.phones_type, "phoneNumbers.type")]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect();
        text.push_str(&format!("\n  User schema: {}", parts.join(", ")));
    } else {
        text.push_str(&format!("\n  no User schema ({USER_SCHEMA}) among them"));
    }
    if f.group {
        let members = match f.members_required {
            Some(true) => "members required",
            Some(false) => "members optional",
            None => "no members attribute",
        };
        let member_ref = match f.member_ref {
            Some(true) => "members.$ref required",
            Some(false) => "members.$ref optional",
            None => "no members.$ref",
        };
        text.push_str(&format!("\n  Group schema: {members}, {member_ref}"));
    }
    out.say(Level::Info, text);
    Some(f)
}

/// `/ResourceTypes`: the endpoints and the extension schemas each serves.
fn resource_types(out: &mut Findings, read: &Read) {
    let doc = match read {
        Read::Answered(doc) => doc,
        Read::Refused { status, .. } if not_served(*status) => {
            out.say(Level::Info, format!("/ResourceTypes is not served ({status})"));
            return;
        }
        Read::Refused { status, message } => {
            return out.say(Level::Info, format!("/ResourceTypes could not be read ({status}: {message})"));
        }
        Read::Failed(message) => {
            return out.say(Level::Info, format!("/ResourceTypes could not be read: {message}"));
        }
    };
    let Some((items, _)) = list(doc) else {
        return out.say(Level::Warning, "/ResourceTypes answered something that is not a list".into());
    };
    let types: Vec<String> = items
        .iter()
        .map(|t| {
            let name = t["name"].as_str().or(t["id"].as_str()).unwrap_or("(unnamed)");
            let endpoint = t["endpoint"].as_str().unwrap_or("?");
            let extensions: Vec<String> = t["schemaExtensions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| {
                    let schema = e["schema"].as_str()?;
                    Some(format!("{schema} ({})", if required(e) { "required" } else { "optional" }))
                })
                .collect();
            match extensions.is_empty() {
                true => format!("{name} at {endpoint}, no extensions"),
                false => format!("{name} at {endpoint}, extensions {}", extensions.join(", ")),
            }
        })
        .collect();
    out.say(Level::Info, format!("/ResourceTypes: {}", types.join("; ")));
}

/// One resource type's read paths.
struct Path {
    noun: &'static str,
    endpoint: &'static str,
    attr: &'static str,
}

impl Path {
    fn plural(&self, n: u64) -> String {
        format!("{n} {}{}", self.noun, if n == 1 { "" } else { "s" })
    }
}

/// `GET /{endpoint}?startIndex=1&count=1`: whether the list endpoint answers, honours `count`
/// and says `totalResults`. Returns how many objects the target has, when it said. Without a
/// user list scimsync cannot look a user up at all: fatal.
fn page(out: &mut Findings, path: &Path, read: &Read) -> Option<u64> {
    let request = format!("GET /{}?startIndex=1&count=1", path.endpoint);
    let level = if path.endpoint == "Users" { Level::Fatal } else { Level::Warning };
    let why = match path.endpoint {
        "Users" => "scimsync looks users up to adopt them and to recover unanswered creates",
        _ => "scimsync looks groups up to adopt them and to recover unanswered creates",
    };
    let doc = match read {
        Read::Answered(doc) => doc,
        Read::Refused { status, message } => {
            out.say(level, format!("{request} was refused ({status}: {message}): {why}"));
            return None;
        }
        Read::Failed(message) => {
            out.say(level, format!("{request} failed: {message}: {why}"));
            return None;
        }
    };
    let Some((items, total)) = list(doc) else {
        out.say(level, format!("{request} answered something that is not a SCIM list response: {why}"));
        return None;
    };
    let credentials = if path.endpoint == "Users" { " (credentials accepted)" } else { "" };
    let answered = items.len() as u64;
    let text = match total {
        Some(0) => format!(
            "{request}{credentials}: no {}s yet, so whether count is honoured cannot be told",
            path.noun
        ),
        Some(t) if answered <= 1 => {
            format!("{request}{credentials}: {answered} of {}: count honoured, totalResults present", path.plural(t))
        }
        Some(t) => format!(
            "{request}{credentials}: {answered} of {} for count=1: count is not honoured (scimsync does not page the target; other clients may care)",
            path.plural(t)
        ),
        None => format!(
            "{request}{credentials}: {} with no totalResults (RFC 7644 §3.4.2 requires it){}",
            path.plural(answered),
            if answered > 1 { "; count is not honoured" } else { "" }
        ),
    };
    out.say(Level::Info, text);
    total.or(Some(answered).filter(|n| *n > 0))
}

/// `GET /{endpoint}?filter={attr} eq "<absent>"`: honoured only if it answers no object while
/// the target has some (`count`). Objects that do not match mean the filter was ignored.
fn lookup(
    out: &mut Findings,
    path: &Path,
    declared: Option<bool>,
    absent: &str,
    read: &Read,
    count: Option<u64>,
) {
    let request = format!("GET /{}?filter={} eq \"{absent}\"", path.endpoint, path.attr);
    let relies = format!(
        "adoption after a 409 and recovery after an unanswered create look {}s up by {} this way",
        path.noun, path.attr
    );
    let declaration = match declared {
        Some(true) => " although its ServiceProviderConfig declares filter.supported: true",
        Some(false) => " (its ServiceProviderConfig declares filter.supported: false)",
        None => " (its ServiceProviderConfig declares nothing about filters)",
    };
    let doc = match read {
        Read::Answered(doc) => doc,
        Read::Refused { status, message } => {
            let text = format!("{request} was refused ({status}: {message}){declaration}: {relies}, and cannot find an existing {}", path.noun);
            return out.say(Level::Warning, text);
        }
        Read::Failed(message) => {
            let text = format!("{request} failed: {message}{declaration}: {relies}");
            return out.say(Level::Warning, text);
        }
    };
    let Some((items, total)) = list(doc) else {
        let text =
            format!("{request} answered something that is not a SCIM list response{declaration}: {relies}");
        return out.say(Level::Warning, text);
    };
    let matches = |r: &&Value| r[path.attr].as_str().is_some_and(|v| v.eq_ignore_ascii_case(absent));
    let unmatched = items.iter().filter(|r| !matches(r)).count() as u64;
    let total = total.unwrap_or(items.len() as u64);
    if unmatched > 0 || (items.is_empty() && total > 0) {
        let contradiction = match declared {
            Some(true) => ", contradicting its ServiceProviderConfig (filter.supported: true)",
            Some(false) => ", as its ServiceProviderConfig declares (filter.supported: false)",
            None => "",
        };
        let what = match unmatched {
            0 => format!("announced {total} results (with no resources) for a name no {} has", path.noun),
            n => format!(
                "answered {} that {} not match (totalResults {total})",
                path.plural(n),
                if n == 1 { "does" } else { "do" }
            ),
        };
        let text = format!(
            "the server ignores filters: {request} {what}{contradiction}; {relies}, so they then rely on the listing: a {} is found only on the first page of this unfiltered answer ({} of {total})",
            path.noun,
            items.len()
        );
        return out.say(Level::Warning, text);
    }
    let noun = path.noun;
    match count {
        Some(n) if n > 0 => {
            let note = match declared {
                Some(false) => " although its ServiceProviderConfig declares filter.supported: false",
                _ => "",
            };
            out.say(Level::Info, format!("filtered {noun} lookup works: {request} answered 0 of the target's {}{note}", path.plural(n)));
        }
        Some(_) => out.say(
            Level::Info,
            format!("{request} answered no {noun}, but the target has no {noun}s yet, so whether it filters cannot be told: run check again once it has some"),
        ),
        None => out.say(
            Level::Info,
            format!("{request} answered no {noun}; how many {noun}s the target has is unknown, so whether it filters cannot be told"),
        ),
    }
}

#[cfg(test)]
mod tests;

//! The judgement on recorded answers: scim2-server's, and the ones a server that ignores
//! filters, refuses PATCH or demands `name.formatted` gives.

use super::*;
use serde_json::json;

const ABSENT: &str = "scimsync-check-1@invalid";

/// scim2-server's ServiceProviderConfig, as it answers it.
fn spc(patch: bool, filter: bool) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": patch},
        "bulk": {"supported": true, "maxOperations": 1000, "maxPayloadSize": 1048576},
        "filter": {"supported": filter, "maxResults": 1000},
        "changePassword": {"supported": true},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "authenticationSchemes": [{"type": "oauthbearertoken", "name": "bearer_token"}]
    })
}

fn users(names: &[&str]) -> Read {
    let resources: Vec<Value> =
        names.iter().enumerate().map(|(i, n)| json!({"id": format!("u{i}"), "userName": n})).collect();
    Read::Answered(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": names.len(), "startIndex": 1, "itemsPerPage": names.len(), "Resources": resources
    }))
}

fn groups(names: &[&str]) -> Read {
    let resources: Vec<Value> =
        names.iter().enumerate().map(|(i, n)| json!({"id": format!("g{i}"), "displayName": n})).collect();
    Read::Answered(json!({"totalResults": names.len(), "Resources": resources}))
}

fn schema_list(user_attrs: Value, group_attrs: Value) -> Read {
    Read::Answered(json!({
        "totalResults": 2,
        "Resources": [
            {"id": USER_SCHEMA, "attributes": user_attrs},
            {"id": GROUP_SCHEMA, "attributes": group_attrs},
        ]
    }))
}

/// A server with two users and a group that honours filters and serves the RFC's schemas.
fn honest() -> Answers {
    Answers {
        spc: spc(true, true),
        schemas: schema_list(
            json!([
                {"name": "userName", "required": true},
                {"name": "name", "subAttributes": [{"name": "formatted", "required": false}]},
                {"name": "emails", "subAttributes": [{"name": "value"}, {"name": "type"}]},
                {"name": "phoneNumbers", "subAttributes": [{"name": "value"}, {"name": "type"}]},
            ]),
            json!([{"name": "members", "subAttributes": [{"name": "value"}, {"name": "$ref"}]}]),
        ),
        resource_types: Read::Answered(json!({"totalResults": 1, "Resources": [{
            "name": "User", "endpoint": "/Users", "schema": USER_SCHEMA,
            "schemaExtensions": [{"schema": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "required": false}]
        }]})),
        absent: ABSENT.into(),
        user_filter: users(&[]),
        group_filter: groups(&[]),
        user_page: Read::Answered(json!({"totalResults": 2, "Resources": [{"id": "u0", "userName": "a@x"}]})),
        group_page: groups(&["staff"]),
    }
}

fn texts(f: &Findings, level: Level) -> Vec<&str> {
    f.findings.iter().filter(|x| x.level == level).map(|x| x.text.as_str()).collect()
}

fn setting<'a>(f: &'a Findings, key: &str) -> Option<&'a str> {
    f.dialect.iter().find(|s| s.key == key).and_then(|s| s.value.as_deref())
}

#[test]
fn a_server_that_declares_no_filter_and_lists_everyone_is_warned_about_and_never_works() {
    let mut a = honest();
    a.spc = spc(true, false);
    a.user_filter = users(&["a@x", "b@x"]);
    a.group_filter = groups(&["staff"]);
    let f = judge(&a);
    let warnings = texts(&f, Level::Warning);
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(
        warnings[0].starts_with("the server ignores filters: GET /Users?filter=userName eq"),
        "{warnings:#?}"
    );
    assert!(warnings[0].contains("answered 2 users that do not match"), "{}", warnings[0]);
    assert!(warnings[0].contains("as its ServiceProviderConfig declares (filter.supported: false)"));
    assert!(warnings[0].contains("rely on the listing"), "{}", warnings[0]);
    assert!(warnings[1].contains("answered 1 group that does not match"), "{}", warnings[1]);
    assert!(f.findings.iter().all(|x| !x.text.contains("works")), "{:#?}", f.findings);
    assert_eq!(f.fatal().count(), 0, "a warning, not a reason to stop");
}

#[test]
fn a_filter_ignored_against_its_declaration_is_called_a_contradiction() {
    let mut a = honest();
    a.user_filter = users(&["a@x", "b@x"]);
    let f = judge(&a);
    let warnings = texts(&f, Level::Warning);
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains("contradicting its ServiceProviderConfig (filter.supported: true)"));
    assert!(texts(&f, Level::Info).iter().any(|t| t.starts_with("filtered group lookup works")));
    assert!(!texts(&f, Level::Info).iter().any(|t| t.starts_with("filtered user lookup works")));
}

#[test]
fn an_honoured_filter_works_and_an_empty_target_cannot_tell() {
    let f = judge(&honest());
    assert!(texts(&f, Level::Warning).is_empty(), "{:#?}", f.findings);
    let info = texts(&f, Level::Info);
    assert!(info
        .iter()
        .any(|t| t.starts_with("filtered user lookup works") && t.contains("0 of the target's 2 users")));
    let mut empty = honest();
    empty.user_page = users(&[]);
    empty.group_page = groups(&[]);
    let f = judge(&empty);
    assert!(f.findings.iter().all(|x| !x.text.contains("works")), "{:#?}", f.findings);
    assert!(texts(&f, Level::Info).iter().any(|t| t.contains("the target has no users yet")));
}

#[test]
fn a_refused_filter_is_a_warning_and_no_user_list_is_fatal() {
    let mut a = honest();
    a.user_filter = Read::Refused { status: 400, message: "invalidFilter".into() };
    let f = judge(&a);
    let warnings = texts(&f, Level::Warning);
    assert!(warnings[0].contains(
        "was refused (400: invalidFilter) although its ServiceProviderConfig declares filter.supported: true"
    ));
    assert_eq!(f.fatal().count(), 0);
    a.user_page = Read::Refused { status: 404, message: "no such endpoint".into() };
    let f = judge(&a);
    let fatal: Vec<_> = f.fatal().collect();
    assert_eq!(fatal.len(), 1);
    assert!(fatal[0].text.starts_with("GET /Users?startIndex=1&count=1 was refused (404"), "{fatal:?}");
}

#[test]
fn unserved_schemas_are_reported_not_errors_and_leave_the_schema_settings_undecided() {
    let mut a = honest();
    a.schemas = Read::Refused { status: 501, message: "Not Implemented".into() };
    a.resource_types = Read::Refused { status: 404, message: String::new() };
    let f = judge(&a);
    let info = texts(&f, Level::Info);
    assert!(
        info.contains(&"/Schemas is not served (501)")
            && info.contains(&"/ResourceTypes is not served (404)")
    );
    assert!(texts(&f, Level::Warning).is_empty());
    for key in ["name_formatted", "multi_valued_type", "members_on_create", "member_ref"] {
        assert_eq!(setting(&f, key), None, "{key}");
    }
}

#[test]
fn the_advice_follows_the_declarations_and_the_schemas() {
    let f = judge(&honest());
    assert_eq!(setting(&f, "update"), Some("\"patch\""));
    assert_eq!(setting(&f, "members"), None, "needs a write to tell");
    assert_eq!(setting(&f, "name_formatted"), Some("false"));
    assert_eq!(setting(&f, "multi_valued_type"), Some("true"));
    assert_eq!(setting(&f, "member_ref"), Some("false"));
    assert_eq!(setting(&f, "verify_writes"), Some("true"), "etag declared");
    let mut strict = honest();
    strict.spc = spc(false, true);
    strict.spc["etag"]["supported"] = json!(false);
    strict.schemas = schema_list(
        json!([
            {"name": "name", "required": true, "subAttributes": [{"name": "formatted", "required": true}]},
            {"name": "emails", "subAttributes": [{"name": "value"}]},
        ]),
        json!([{"name": "members", "required": true, "subAttributes": [{"name": "value"}, {"name": "$ref", "required": true}]}]),
    );
    let f = judge(&strict);
    assert_eq!(setting(&f, "update"), Some("\"put\""));
    assert_eq!(setting(&f, "members"), Some("\"put\""));
    assert_eq!(setting(&f, "name_formatted"), Some("true"));
    assert_eq!(setting(&f, "multi_valued_type"), Some("false"));
    assert_eq!(setting(&f, "members_on_create"), Some("true"));
    assert_eq!(setting(&f, "member_ref"), Some("true"));
    assert_eq!(setting(&f, "verify_writes"), None);
    let block = super::dialect::render(&f.dialect);
    assert!(block.starts_with("[target.dialect]\nupdate = \"put\""), "{block}");
    assert!(block.contains("\n# booleans: undecided"), "{block}");
}

#[test]
fn the_declarations_are_listed_with_their_numbers() {
    let mut a = honest();
    a.spc["pagination"] = json!({"cursor": true, "index": false, "maxPageSize": 500});
    let f = judge(&a);
    let declared = f.findings[0].text.as_str();
    for line in [
        "\n  bulk                   supported, maxOperations 1000, maxPayloadSize 1048576",
        "\n  filter                 supported, maxResults 1000",
        "\n  pagination             cursor yes, index no, maxPageSize 500",
        "\n  authenticationSchemes  bearer_token (oauthbearertoken)",
    ] {
        assert!(declared.contains(line), "{declared}");
    }
}

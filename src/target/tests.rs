//! Unit tests of the target client without a server: retry policy, `Retry-After`, and the exact
//! JSON each profile sends.

use super::body::*;
use super::dialect::{Booleans, Dialect, Members};
use crate::model::{Attr, DesiredUser, Profile};
use crate::reconcile::Change;
use crate::scim_http::*;
use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn d(profile: Profile) -> Dialect {
    Dialect::preset(profile)
}

fn status(status: u16, retry_after: Option<u64>) -> Failure {
    Failure::Status { status, message: "x".into(), retry_after: retry_after.map(Duration::from_secs) }
}

#[test]
fn retry_policy_decides_by_status_and_kind() {
    assert_eq!(retry_policy(&status(429, Some(7))), Retry::After(Duration::from_secs(7)));
    assert_eq!(retry_policy(&status(429, None)), Retry::Backoff);
    assert_eq!(retry_policy(&status(503, Some(3))), Retry::After(Duration::from_secs(3)));
    for s in [408, 500, 502, 503, 504] {
        assert_eq!(retry_policy(&status(s, None)), Retry::Backoff, "{s}");
    }
    // A Retry-After on a status that is not retried changes nothing.
    for s in [400, 401, 403, 404, 409, 412, 422, 501] {
        assert_eq!(retry_policy(&status(s, Some(1))), Retry::No, "{s}");
    }
    let reset = Failure::Broken { message: "connection reset".into(), sent: true };
    let refused = Failure::Broken { message: "connection refused".into(), sent: false };
    assert_eq!(retry_policy(&reset), Retry::Backoff);
    assert_eq!(retry_policy(&refused), Retry::Backoff);
    assert_eq!(retry_policy(&Failure::Body { message: "not JSON".into() }), Retry::No);
    assert_eq!(retry_policy(&Failure::Tls { message: "UnknownIssuer".into() }), Retry::No);
}

#[test]
fn only_failures_after_sending_may_have_created_something() {
    assert!(status(500, None).maybe_applied());
    assert!(status(504, None).maybe_applied());
    assert!(status(408, None).maybe_applied());
    assert!(!status(429, None).maybe_applied());
    assert!(!status(409, None).maybe_applied());
    assert!(!status(401, None).maybe_applied());
    assert!(Failure::Broken { message: "timed out".into(), sent: true }.maybe_applied());
    assert!(!Failure::Broken { message: "cannot connect".into(), sent: false }.maybe_applied());
    assert!(Failure::Body { message: "cut".into() }.maybe_applied());
    assert!(!Failure::Tls { message: "UnknownIssuer".into() }.maybe_applied());
}

#[test]
fn retry_after_reads_seconds_and_http_dates() {
    // 2015-10-21T07:28:00Z, the example of RFC 9110.
    let now = UNIX_EPOCH + Duration::from_secs(1_445_412_480);
    assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
    assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
    assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), Some(Duration::from_secs(30)));
    // Obsolete forms HTTP-date allows.
    assert_eq!(parse_retry_after("Wednesday, 21-Oct-15 07:29:00 GMT", now), Some(Duration::from_secs(60)));
    assert_eq!(parse_retry_after("Wed Oct 21 07:28:05 2015", now), Some(Duration::from_secs(5)));
    // A date in the past: go now.
    assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), Some(Duration::ZERO));
    assert_eq!(parse_retry_after("99999999999999999999999", now), Some(Duration::from_secs(u64::MAX)));
    for bad in ["", "-1", "1.5", "soon", "Wed, 32 Oct 2015 07:28:00 GMT"] {
        assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
    }
    assert!(parse_retry_after(&httpdate::fmt_http_date(SystemTime::now()), SystemTime::now()).is_some());
}

#[test]
fn backoff_is_bounded_and_grows() {
    let cfg = RetryConfig {
        min_delay: Duration::from_millis(100),
        factor: 2.0,
        max_delay: Duration::from_millis(500),
        max_retries: 5,
        max_retry_after: Duration::from_secs(1),
    };
    let delays: Vec<Duration> = cfg.backoff().collect();
    assert_eq!(delays.len(), 5);
    // Jitter adds up to the delay itself on top of 100, 200, 400, 500, 500 ms.
    for (d, base) in delays.iter().zip([100u64, 200, 400, 500, 500]) {
        let base = Duration::from_millis(base);
        assert!(*d >= base && *d <= base * 2, "{d:?} outside [{base:?}, {:?}]", base * 2);
    }
    assert_eq!(RetryConfig::default().backoff().count(), 6);
}

fn full_user() -> DesiredUser {
    DesiredUser::builder("k1", "ada@example.com")
        .attr(Attr::GivenName, "Ada")
        .attr(Attr::FamilyName, "Lovelace")
        .attr(Attr::DisplayName, "Ada Lovelace")
        .attr(Attr::Title, "Engineer")
        .attr(Attr::WorkEmail, "ada@example.com")
        .attr(Attr::WorkPhone, "+1 555 0100")
        .attr(Attr::MobilePhone, "+1 555 0199")
        .attr(Attr::ExternalId, "k1")
        .attr(Attr::UserType, "technician")
        .attr(Attr::OrganizationId, "All")
        .role("Helpdesk")
        .build()
}

#[test]
fn ninjaone_create_puts_user_type_and_organization_in_the_extension_and_drops_phones() {
    assert_eq!(
        user_resource(&d(Profile::NinjaOne), &full_user()),
        json!({
            "schemas": [USER_SCHEMA, NINJAONE_SCHEMA],
            "userName": "ada@example.com",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "displayName": "Ada Lovelace",
            "title": "Engineer",
            "emails": [{"value": "ada@example.com", "type": "work", "primary": true}],
            "externalId": "k1",
            "active": true,
            "roles": [{"value": "Helpdesk"}],
            NINJAONE_SCHEMA: {"userType": "technician", "organizationId": "All"},
        })
    );
}

#[test]
fn generic_create_puts_user_type_in_the_core_and_sends_phones() {
    let expected = json!({
        "schemas": [USER_SCHEMA],
        "userName": "ada@example.com",
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "displayName": "Ada Lovelace",
        "title": "Engineer",
        "emails": [{"value": "ada@example.com", "type": "work", "primary": true}],
        "phoneNumbers": [{"value": "+1 555 0100", "type": "work"}, {"value": "+1 555 0199", "type": "mobile"}],
        "externalId": "k1",
        "userType": "technician",
        "active": true,
        "roles": [{"value": "Helpdesk"}],
    });
    assert_eq!(user_resource(&d(Profile::Generic), &full_user()), expected);
    // Entra ID sends booleans as JSON booleans when it creates users, and name.formatted.
    let mut entra = expected.clone();
    entra["name"]["formatted"] = "Ada Lovelace".into();
    assert_eq!(user_resource(&d(Profile::EntraCompat), &full_user()), entra);
}

#[test]
fn dialect_settings_shape_the_create() {
    let strict = Dialect { multi_valued_type: false, name_formatted: true, ..d(Profile::Generic) };
    let doc = user_resource(&strict, &full_user());
    assert_eq!(doc["emails"], json!([{"value": "ada@example.com"}]), "no type, no primary");
    assert_eq!(doc["phoneNumbers"], json!([{"value": "+1 555 0100"}]), "one entry: the work number");
    assert_eq!(doc["name"]["formatted"], "Ada Lovelace");
    let u = DesiredUser::builder("k1", "bob@example.com").attr(Attr::DisplayName, "Bob B.").build();
    assert_eq!(user_resource(&strict, &u)["name"], json!({"formatted": "Bob B."}));
    let ops = update_ops(&strict, &[set(Attr::WorkEmail, Some("a@x"), Some("b@x"))]);
    assert_eq!(
        patch_body(&strict, &ops)["Operations"],
        json!([{"op": "replace", "path": "emails", "value": [{"value": "b@x"}]}])
    );
    let with = Dialect { members_on_create: true, ..d(Profile::Generic) };
    assert_eq!(group_resource(&with, "Ops")["members"], json!([]));
}

#[test]
fn minimal_create_has_no_empty_objects() {
    let u = DesiredUser::builder("k1", "bob@example.com").active(false).build();
    let expected = json!({"schemas": [USER_SCHEMA], "userName": "bob@example.com", "active": false});
    assert_eq!(user_resource(&d(Profile::NinjaOne), &u), expected);
}

fn set(attr: Attr, before: Option<&str>, after: Option<&str>) -> Change {
    Change::Set { attr, before: before.map(Into::into), after: after.map(Into::into) }
}

fn changes() -> Vec<Change> {
    vec![
        set(Attr::GivenName, Some("Ada"), Some("Augusta")),
        set(Attr::Title, Some("Engineer"), None),
        set(Attr::WorkEmail, Some("ada@example.com"), Some("ada@example.org")),
        set(Attr::UserType, Some("endUser"), Some("technician")),
        set(Attr::OrganizationId, Some("All"), Some("42")),
        set(Attr::MobilePhone, None, Some("+1 555 0199")),
        Change::Roles { before: vec!["A".into()], after: vec!["A".into(), "B".into()] },
    ]
}

#[test]
fn ninjaone_update_is_minimal_and_uses_extension_paths() {
    let ops = update_ops(&d(Profile::NinjaOne), &changes());
    assert_eq!(
        patch_body(&d(Profile::NinjaOne), &ops),
        json!({
            "schemas": [PATCH_SCHEMA],
            "Operations": [
                {"op": "replace", "path": "name.givenName", "value": "Augusta"},
                {"op": "remove", "path": "title"},
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "ada@example.org"},
                {"op": "replace", "path": format!("{NINJAONE_SCHEMA}:userType"), "value": "technician"},
                {"op": "replace", "path": format!("{NINJAONE_SCHEMA}:organizationId"), "value": "42"},
                {"op": "replace", "path": "roles", "value": [{"value": "A"}, {"value": "B"}]},
            ]
        })
    );
}

#[test]
fn generic_update_uses_core_user_type_and_never_sends_organization() {
    let ops = update_ops(&d(Profile::Generic), &changes());
    assert_eq!(
        patch_body(&d(Profile::Generic), &ops),
        json!({
            "schemas": [PATCH_SCHEMA],
            "Operations": [
                {"op": "replace", "path": "name.givenName", "value": "Augusta"},
                {"op": "remove", "path": "title"},
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "ada@example.org"},
                {"op": "replace", "path": "userType", "value": "technician"},
                {"op": "remove", "path": "phoneNumbers[type eq \"mobile\"]"},
                {"op": "add", "path": "phoneNumbers", "value": [{"value": "+1 555 0199", "type": "mobile"}]},
                {"op": "replace", "path": "roles", "value": [{"value": "A"}, {"value": "B"}]},
            ]
        })
    );
}

#[test]
fn entra_compat_capitalises_ops_and_booleans_follow_the_dialect() {
    let mut ops = update_ops(&d(Profile::EntraCompat), &[set(Attr::Title, Some("a"), None)]);
    ops.push(active_op(false));
    ops.push(active_op(true));
    ops.extend(update_ops(&d(Profile::EntraCompat), &[set(Attr::WorkEmail, None, Some("x@example.com"))]));
    let strings = Dialect { booleans: Booleans::String, ..d(Profile::EntraCompat) };
    assert_eq!(
        patch_body(&strings, &ops),
        json!({
            "schemas": [PATCH_SCHEMA],
            "Operations": [
                {"op": "Remove", "path": "title"},
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "Replace", "path": "active", "value": "True"},
                {"op": "Remove", "path": "emails[type eq \"work\"]"},
                {"op": "Add", "path": "emails", "value": [{"value": "x@example.com", "type": "work", "primary": true}]},
            ]
        })
    );
    assert_eq!(
        patch_body(&d(Profile::NinjaOne), &[active_op(false)]),
        json!({"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "path": "active", "value": false}]})
    );
    // What Entra ID documents sending today: a JSON boolean.
    assert_eq!(
        patch_body(&d(Profile::EntraCompat), &[active_op(false)])["Operations"],
        json!([{"op": "Replace", "path": "active", "value": false}])
    );
}

#[test]
fn removed_values_and_roles() {
    let ops = update_ops(
        &d(Profile::NinjaOne),
        &[
            set(Attr::WorkEmail, Some("a@example.com"), None),
            set(Attr::UserType, Some("technician"), None),
            set(Attr::WorkPhone, Some("1"), None),
            Change::Roles { before: vec!["A".into()], after: vec![] },
        ],
    );
    assert_eq!(
        patch_body(&d(Profile::NinjaOne), &ops)["Operations"],
        json!([
            {"op": "remove", "path": "emails[type eq \"work\"]"},
            {"op": "remove", "path": format!("{NINJAONE_SCHEMA}:userType")},
            {"op": "remove", "path": "roles"},
        ])
    );
    // A change that does not apply to the profile sends nothing.
    assert!(update_ops(&d(Profile::NinjaOne), &[set(Attr::MobilePhone, None, Some("1"))]).is_empty());
    assert!(update_ops(&d(Profile::Generic), &[set(Attr::OrganizationId, None, Some("1"))]).is_empty());
}

#[test]
fn adoption_sets_everything_without_knowing_the_target() {
    let u = DesiredUser::builder("k1", "ada@example.com")
        .attr(Attr::FamilyName, "Lovelace")
        .attr(Attr::WorkEmail, "ada@example.com")
        .attr(Attr::UserType, "endUser")
        .attr(Attr::OrganizationId, "All")
        .role("R")
        .build();
    assert_eq!(
        patch_body(&d(Profile::NinjaOne), &adopt_ops(&d(Profile::NinjaOne), &u))["Operations"],
        json!([
            {"op": "replace", "path": "userName", "value": "ada@example.com"},
            {"op": "replace", "path": "name.familyName", "value": "Lovelace"},
            {"op": "remove", "path": "emails[type eq \"work\"]"},
            {"op": "add", "path": "emails", "value": [{"value": "ada@example.com", "type": "work", "primary": true}]},
            {"op": "replace", "path": format!("{NINJAONE_SCHEMA}:userType"), "value": "endUser"},
            {"op": "replace", "path": format!("{NINJAONE_SCHEMA}:organizationId"), "value": "All"},
            {"op": "replace", "path": "active", "value": true},
            {"op": "replace", "path": "roles", "value": [{"value": "R"}]},
        ])
    );
}

#[test]
fn group_bodies() {
    let g = d(Profile::Generic);
    assert_eq!(group_resource(&g, "Ops"), json!({"schemas": [GROUP_SCHEMA], "displayName": "Ops"}));
    let ids = vec!["u1".to_string(), "u\"2".to_string()];
    assert_eq!(
        patch_body(&g, &[add_members_op(&g, "https://t/Users", &ids)])["Operations"],
        json!([{"op": "add", "path": "members", "value": [{"value": "u1"}, {"value": "u\"2"}]}])
    );
    let with_ref = Dialect { member_ref: true, ..d(Profile::Generic) };
    assert_eq!(
        add_members_op(&with_ref, "https://t/Users", &ids[..1]).value.unwrap(),
        json!([{"value": "u1", "$ref": "https://t/Users/u1"}])
    );
    assert_eq!(
        patch_body(&d(Profile::EntraCompat), &remove_members_ops(Members::ValueList, &ids))["Operations"],
        json!([{"op": "Remove", "path": "members", "value": [{"value": "u1"}, {"value": "u\"2"}]}])
    );
    assert!(remove_members_ops(Members::Put, &ids).is_empty());
    assert_eq!(
        patch_body(&g, &remove_members_ops(Members::Filter, &ids))["Operations"],
        json!([
            {"op": "remove", "path": "members[value eq \"u1\"]"},
            {"op": "remove", "path": "members[value eq \"u\\\"2\"]"},
        ])
    );
    assert_eq!(
        patch_body(&d(Profile::EntraCompat), &[rename_op("New")])["Operations"],
        json!([{"op": "Replace", "path": "displayName", "value": "New"}])
    );
}

#[test]
fn filter_values_are_escaped() {
    assert_eq!(eq_filter("userName", "a@example.com"), r#"userName eq "a@example.com""#);
    assert_eq!(eq_filter("userName", r#"o"re\illy"#), r#"userName eq "o\"re\\illy""#);
    assert_eq!(eq_filter("displayName", "tab\there"), r#"displayName eq "tab\there""#);
    assert_eq!(eq_filter("displayName", "Zoë"), r#"displayName eq "Zoë""#);
}

#[test]
fn picking_from_list_responses() {
    let list = json!({
        "totalResults": 3,
        "Resources": [
            {"id": "1", "userName": "someone@example.com"},
            {"id": "2", "userName": "Ada@Example.com", "active": false, "externalId": "k1"},
            {"id": "3", "userName": "ada@example.com", "active": "True"},
        ]
    });
    let exact = pick_user(&list, "ada@example.com").unwrap().unwrap();
    assert_eq!((exact.id.as_str(), exact.active, exact.external_id), ("3", true, None));
    let folded = pick_user(&list, "ADA@example.com").unwrap().unwrap();
    assert_eq!((folded.id.as_str(), folded.active, folded.external_id.as_deref()), ("2", false, Some("k1")));
    // A server that ignores the filter cannot make us pick someone else.
    assert_eq!(pick_user(&list, "nobody@example.com").unwrap(), None);
    assert_eq!(pick_user(&json!({"totalResults": 0}), "a").unwrap(), None);
    assert!(pick_user(&json!({"totalResults": 2}), "a").is_err());
    assert!(pick_user(&json!({"detail": "?"}), "a").is_err());
    assert!(pick_user(&json!({"totalResults": 1, "Resources": [{"userName": "a"}]}), "a").is_err());

    let groups = json!({"totalResults": 2, "Resources": [{"id": "g1", "displayName": "ops"}, {"id": "g2", "displayName": "Ops"}]});
    assert_eq!(pick_group(&groups, "Ops").unwrap().as_deref(), Some("g2"));
    assert_eq!(pick_group(&groups, "OPS").unwrap().as_deref(), Some("g1"));
    assert_eq!(pick_group(&groups, "Dev").unwrap(), None);
}

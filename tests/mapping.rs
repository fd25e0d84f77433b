//! Mapping rules: value / from / expr, group assignments, group → role rules and the ninjaone
//! profile rules (userType validation and default, organizationId default, no phone numbers,
//! email-formatted userName).

use scimsync::mapping::{Mapping, RawMapping};
use scimsync::model::{Attr, DesiredState, Profile};
use scimsync::source::directory::{interpret, SourceDirectory};
use scimsync::source::ldif::{LdifReader, UrlPolicy};
use scimsync::source::SourceKind;

const DIRECTORY: &str = "\
dn: uid=tech,ou=p,dc=x
objectClass: inetOrgPerson
uid: tech
mail: tech@x.com
givenName: Tina
sn: Tech
telephoneNumber: +1 555 0100
o: Globex
entryUUID: 11111111-1111-1111-1111-111111111111

dn: uid=end,ou=p,dc=x
objectClass: inetOrgPerson
uid: end
mail: end@x.com
sn: User
mobile: +1 555 0101
entryUUID: 22222222-2222-2222-2222-222222222222

dn: uid=odd,ou=p,dc=x
objectClass: inetOrgPerson
uid: odd
mail: odd@x.com
employeeType: Technician

dn: uid=nomail,ou=p,dc=x
objectClass: inetOrgPerson
uid: nomail
userPrincipalName: not-an-email

dn: cn=helpdesk,ou=g,dc=x
objectClass: groupOfNames
cn: helpdesk
member: uid=tech,ou=p,dc=x

dn: cn=technicians,ou=g,dc=x
objectClass: groupOfNames
cn: technicians
member: cn=helpdesk,ou=g,dc=x

dn: cn=admins,ou=g,dc=x
objectClass: groupOfNames
cn: admins
member: uid=tech,ou=p,dc=x
member: uid=end,ou=p,dc=x

dn: cn=portal,ou=g,dc=x
objectClass: posixGroup
cn: portal
memberUid: end
memberUid: tech
";

fn directory() -> SourceDirectory {
    let reader = LdifReader::new(DIRECTORY.as_bytes(), "t.ldif", UrlPolicy::default());
    let records = reader.collect::<Result<Vec<_>, _>>().expect("parses");
    interpret(records, &Default::default())
}

fn map(toml: &str, profile: Profile) -> DesiredState {
    let raw: RawMapping = toml::from_str(toml).expect("mapping toml");
    let (mapping, _) =
        Mapping::compile(&raw, profile, SourceKind::Ldif, &["technician".into(), "endUser".into()])
            .expect("compiles");
    mapping.map_directory(directory())
}

fn user<'a>(d: &'a DesiredState, name: &str) -> &'a scimsync::model::DesiredUser {
    d.users.values().find(|u| u.user_name() == name).unwrap_or_else(|| panic!("{name} not mapped: {d:#?}"))
}

const RULES: &str = r#"
[user]
userType = { expr = 'has(user.employeetype) ? user.employeetype : null' }
organizationId = { expr = 'has(user.o) && user.o == "Globex" ? "202" : null' }
mobile = { from = "mobile" }

[[group_assignments]]
group = "technicians"
set = { userType = "technician" }

[[roles]]
group = "helpdesk"
role = "Help Desk"
user_type = "technician"

[[roles]]
group = "portal"
role = "Portal User"
user_type = "endUser"
"#;

#[test]
fn ninjaone_user_type_is_validated_and_defaults_to_end_user() {
    let d = map(RULES, Profile::NinjaOne);
    assert_eq!(
        user(&d, "tech@x.com").attrs.get(&Attr::UserType).unwrap(),
        "technician",
        "nested group assignment"
    );
    assert_eq!(user(&d, "end@x.com").attrs.get(&Attr::UserType).unwrap(), "endUser");
    // "Technician" is not exactly "technician": created as endUser, with a warning naming the record.
    assert_eq!(user(&d, "odd@x.com").attrs.get(&Attr::UserType).unwrap(), "endUser");
    assert!(
        d.warnings.iter().any(|w| w.contains("t.ldif:") && w.contains("\"Technician\"")),
        "{:?}",
        d.warnings
    );
    assert!(d.warnings.iter().any(|w| w.contains("1 user(s) have no userType")), "{:?}", d.warnings);
}

#[test]
fn ninjaone_organization_defaults_to_all_and_phones_are_never_sent() {
    let d = map(RULES, Profile::NinjaOne);
    assert_eq!(user(&d, "tech@x.com").attrs.get(&Attr::OrganizationId).unwrap(), "202");
    assert_eq!(user(&d, "end@x.com").attrs.get(&Attr::OrganizationId).unwrap(), "All");
    for u in d.users.values() {
        assert!(!u.attrs.keys().any(|a| a.is_phone()), "{u:?}");
    }
    // The generic profile sends phones and adds no ninjaone defaults.
    let g = map(RULES, Profile::Generic);
    assert_eq!(user(&g, "end@x.com").attrs.get(&Attr::MobilePhone), Some("+1 555 0101"));
    assert!(!user(&g, "end@x.com").attrs.contains_key(&Attr::OrganizationId));
}

#[test]
fn roles_follow_group_rules_per_user_type() {
    let d = map(RULES, Profile::NinjaOne);
    let roles = |n: &str| user(&d, n).roles.iter().cloned().collect::<Vec<_>>();
    assert_eq!(roles("tech@x.com"), ["Help Desk"], "the endUser role is not for technicians");
    assert_eq!(roles("end@x.com"), ["Portal User"]);
}

#[test]
fn ninjaone_needs_an_email_user_name_and_says_why_not() {
    let d = map("", Profile::NinjaOne);
    let skip = d.skipped.iter().find(|s| s.origin == "t.ldif:25").expect("nomail skipped");
    assert!(skip.reason.contains("not an email address"), "{}", skip.reason);
    assert!(skip.key.is_some(), "a skipped user keeps its key so it is never deprovisioned");
    // Under generic any userName will do.
    let g = map("", Profile::Generic);
    assert!(g.users.values().any(|u| u.user_name() == "not-an-email"));
}

#[test]
fn value_from_and_expr_rules_and_defaults() {
    let d = map(
        r#"
        [user]
        title = { value = "Staff" }
        "name.givenName" = { from = ["givenName", "uid"] }
        displayName = { expr = 'user.mail.split("@")[0].upperAscii() + " (" + string(size(groups)) + ")"' }
        "#,
        Profile::NinjaOne,
    );
    let end = user(&d, "end@x.com");
    assert_eq!(end.attrs.get(&Attr::Title).unwrap(), "Staff");
    assert_eq!(end.attrs.get(&Attr::GivenName).unwrap(), "end", "falls back to the second `from` attribute");
    assert_eq!(end.attrs.get(&Attr::FamilyName).unwrap(), "User", "default rule sn");
    assert_eq!(end.attrs.get(&Attr::DisplayName).unwrap(), "END (2)");
    assert_eq!(end.attrs.get(&Attr::ExternalId).unwrap(), "22222222-2222-2222-2222-222222222222");
    assert_eq!(end.attrs.get(&Attr::WorkEmail).unwrap(), "end@x.com");
}

#[test]
fn an_expression_that_fails_for_one_user_skips_only_that_user() {
    let d = map(r#"user.title = { expr = 'user.givenname + "!"' }"#, Profile::NinjaOne);
    assert!(d.users.values().any(|u| u.user_name() == "tech@x.com"));
    let skip = d.skipped.iter().find(|s| s.origin == "t.ldif:11").expect("end has no givenName");
    assert!(skip.reason.starts_with("title:"), "{}", skip.reason);
}

#[test]
fn bad_rules_are_config_errors_with_keys() {
    let raw: RawMapping = toml::from_str(
        r#"
        [user]
        title = { value = "x", from = "y" }
        "no such" = { value = "x" }
        displayName = { expr = "1 +" }
        [[roles]]
        group = "g"
        "#,
    )
    .unwrap();
    let err = Mapping::compile(&raw, Profile::NinjaOne, SourceKind::Ldif, &[]).expect_err("errors");
    let keys: Vec<&str> = err.0.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        ["mapping.user.displayName", "mapping.user.\"no such\"", "mapping.user.title", "mapping.roles[0]"]
    );
}

const DEPARTMENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department";

/// Any attribute path of the target's schemas can be mapped, by every kind of rule and by group
/// assignments; the user carries it under its path.
#[test]
fn any_target_attribute_path_is_mapped() {
    let d = map(
        &r#"
        [user]
        "name.formatted" = { expr = '(has(user.givenname) ? user.givenname + " " : "") + user.sn' }
        "DEPARTMENT" = { value = "Operations" }
        'addresses[type eq "work"].locality' = { from = ["l", "o"] }
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value" = { from = "manager" }
        nickName = { from = "uid" }

        [[group_assignments]]
        group = "helpdesk"
        set = { "DEPARTMENT" = "Help desk", "emails[type eq \"home\"].value" = "help@x.com" }
        "#
        .replace("DEPARTMENT", DEPARTMENT),
        Profile::Generic,
    );
    let path = |p: &str| Attr::parse(p).unwrap();
    let tech = user(&d, "tech@x.com");
    assert_eq!(tech.attrs.get(&path("name.formatted")), Some("Tina Tech"));
    assert_eq!(tech.attrs.get(&path(DEPARTMENT)), Some("Help desk"), "the group assignment wins");
    assert_eq!(tech.attrs.get(&path("emails[type eq \"home\"].value")), Some("help@x.com"));
    assert_eq!(tech.attrs.get(&path("addresses[type eq \"work\"].locality")), Some("Globex"));
    assert_eq!(tech.attrs.get(&path("nickName")), Some("tech"));
    assert!(!tech
        .attrs
        .contains_key(&path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value")));
    let end = user(&d, "end@x.com");
    assert_eq!(end.attrs.get(&path("name.formatted")), Some("User"));
    assert_eq!(end.attrs.get(&path(DEPARTMENT)), Some("Operations"));
    assert!(!end.attrs.contains_key(&path("addresses[type eq \"work\"].locality")), "no l, no o");
    // Built-ins first, then the custom attributes by name: the order reports and plans show.
    let names: Vec<&str> = tech.attrs.keys().map(|a| a.name()).collect();
    assert_eq!(
        names,
        [
            "userName",
            "name.givenName",
            "name.familyName",
            "emails[type eq \"work\"].value",
            "phoneNumbers[type eq \"work\"].value",
            "externalId",
            "addresses[type eq \"work\"].locality",
            "emails[type eq \"home\"].value",
            "name.formatted",
            "nickName",
            DEPARTMENT,
        ]
    );
}

fn compile_errors(toml: &str, profile: Profile) -> Vec<String> {
    let raw: RawMapping = toml::from_str(toml).expect("mapping toml");
    let err = Mapping::compile(&raw, profile, SourceKind::Ldif, &[]).expect_err("refused");
    err.0.iter().map(|e| format!("{}: {}", e.key, e.message)).collect()
}

/// What is not an attribute path is refused under its key, saying what a path looks like; two
/// keys for one attribute are refused too.
#[test]
fn a_key_that_is_no_attribute_path_is_a_config_error() {
    let errors = compile_errors(
        r#"
        [user]
        "emails[type eq home].value" = { value = "x" }
        nickName = { value = "a" }
        NickName = { value = "b" }
        [[group_assignments]]
        group = "g"
        set = { "department!" = "x" }
        "#,
        Profile::Generic,
    );
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors[0].starts_with("mapping.user.\"emails[type eq home].value\": unknown target attribute"),
        "{errors:#?}"
    );
    assert!(errors[0].contains("name.formatted") && errors[0].contains("[type eq \"work\"]"), "{errors:#?}");
    assert!(
        errors[1].starts_with(
            "mapping.user.nickName: names the same target attribute (NickName) as mapping.user.NickName"
        ),
        "{errors:#?}"
    );
    assert!(
        errors[2].starts_with("mapping.group_assignments[0].set.\"department!\": unknown target attribute"),
        "{errors:#?}"
    );
    let errors = compile_errors(
        "[user]
active = { value = \"true\" }
",
        Profile::Generic,
    );
    assert!(
        errors[0].starts_with("mapping.user.active:") && errors[0].contains("mapping.active"),
        "{errors:#?}"
    );
}

/// ninjaone takes no phone number: a phone path beyond the built-in ones is a config error
/// naming its key (the built-in phone rules stay ignored with a warning, as they always were).
#[test]
fn phone_paths_are_config_errors_under_ninjaone() {
    let rules = r#"
        [user]
        'phoneNumbers[type eq "home"].value' = { from = "homePhone" }
        mobile = { from = "mobile" }
        [[group_assignments]]
        group = "g"
        set = { "urn:ietf:params:scim:schemas:core:2.0:User:phoneNumbers[type eq \"fax\"].value" = "1" }
        "#;
    let errors = compile_errors(rules, Profile::NinjaOne);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].starts_with("mapping.user.\"phoneNumbers[type eq \\\"home\\\"].value\": phone numbers are never sent to a ninjaone target"),
        "{errors:#?}"
    );
    assert!(errors[1].starts_with("mapping.group_assignments[0].set.\"urn:"), "{errors:#?}");
    assert!(errors.iter().all(|e| e.contains("target.profile = \"ninjaone\"")), "{errors:#?}");
    // The generic profile sends them.
    let raw: RawMapping = toml::from_str(rules).unwrap();
    let (_, warnings) = Mapping::compile(&raw, Profile::Generic, SourceKind::Ldif, &[]).expect("compiles");
    assert!(warnings.is_empty(), "{warnings:?}");
    let raw: RawMapping = toml::from_str(
        "[user]
mobile = { from = \"mobile\" }
",
    )
    .unwrap();
    let (_, warnings) = Mapping::compile(&raw, Profile::NinjaOne, SourceKind::Ldif, &[]).expect("compiles");
    assert!(warnings[0].contains("mapping.user.mobile: phone numbers are never sent"), "{warnings:?}");
}

#[test]
fn expressions_are_bounded_before_parsing() {
    let deep = format!("{}1{}", "(".repeat(200), ")".repeat(200));
    let long = format!("'{}'", "x".repeat(10_000));
    let raw: RawMapping = toml::from_str(&format!(
        "[user]\ntitle = {{ expr = {deep:?} }}\ndisplayName = {{ expr = {long:?} }}\n"
    ))
    .unwrap();
    let err = Mapping::compile(&raw, Profile::NinjaOne, SourceKind::Ldif, &[]).expect_err("refused");
    let text: Vec<String> = err.0.iter().map(|e| format!("{}: {}", e.key, e.message)).collect();
    assert!(
        text.iter().any(|t| t.starts_with("mapping.user.title") && t.contains("nests deeper")),
        "{text:?}"
    );
    assert!(
        text.iter().any(|t| t.starts_with("mapping.user.displayName") && t.contains("bytes long")),
        "{text:?}"
    );
    // A reasonable nesting still compiles: '(' inside strings does not count.
    let ok: RawMapping =
        toml::from_str("[user]\ntitle = { expr = '((((user.sn + \"((((((((\"))))' }\n").unwrap();
    assert!(Mapping::compile(&ok, Profile::NinjaOne, SourceKind::Ldif, &[]).is_ok());
}

/// SCIM sources (a JSON export or a SCIM endpoint) map SCIM attributes: the defaults read the
/// core schema and the ninjaone extension, and `from` reaches enterprise and custom extension
/// attributes by their full name (case-insensitive, as SCIM attribute names are).
#[test]
fn scim_sources_map_core_enterprise_and_custom_extension_attributes() {
    let doc = r#"{"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 2,
      "Resources": [
        {"id": "u1", "userName": "ada@x.com", "name": {"givenName": "Ada", "familyName": "Lovelace"},
         "emails": [{"value": "ada@x.com", "type": "work", "primary": true}],
         "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Engineering", "costCenter": "4711"},
         "urn:ietf:params:scim:schemas:extension:ninjaone:2.0:User": {"userType": "technician", "organizationId": "202"},
         "urn:example:params:scim:schemas:extension:acme:2.0:User": {"badge": "A-7"}},
        {"id": "u2", "userName": "bob@x.com", "active": false}
      ]}"#;
    // Record attribute names are lowercase: `user[...]` in expressions uses them so.
    let badge = "'urn:example:params:scim:schemas:extension:acme:2.0:user:badge'";
    let raw: RawMapping = toml::from_str(
        &r#"
        [user]
        title = { from = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department" }
        displayName = { expr = '''BADGE in user ? "badge " + user[BADGE] : "no badge"''' }
        "#
        .replace("BADGE", badge),
    )
    .unwrap();
    let (mapping, _) =
        Mapping::compile(&raw, Profile::NinjaOne, SourceKind::Scim, &["technician".into(), "endUser".into()])
            .expect("compiles");
    let dir = scimsync::source::json::read(doc.as_bytes(), "users.json").expect("reads");
    let d = mapping.map_directory(dir);
    let ada = user(&d, "ada@x.com");
    assert_eq!(ada.attrs.get(&Attr::Title).unwrap(), "Engineering");
    assert_eq!(ada.attrs.get(&Attr::DisplayName).unwrap(), "badge A-7");
    assert_eq!(ada.attrs.get(&Attr::GivenName).unwrap(), "Ada");
    assert_eq!(ada.attrs.get(&Attr::WorkEmail).unwrap(), "ada@x.com");
    assert_eq!(ada.attrs.get(&Attr::UserType).unwrap(), "technician");
    assert_eq!(ada.attrs.get(&Attr::OrganizationId).unwrap(), "202");
    assert_eq!(ada.attrs.get(&Attr::ExternalId).unwrap(), "u1", "the source key is the resource id");
    let bob = user(&d, "bob@x.com");
    assert_eq!(bob.attrs.get(&Attr::DisplayName).unwrap(), "no badge");
    assert!(!bob.active, "active=false in the source");
}

/// The mapping names the source attributes it reads; reading only those (and what the directory
/// rules need) gives the same desired state as reading everything.
#[test]
fn reading_only_the_attributes_the_mapping_reads_changes_nothing() {
    use scimsync::source::directory::interpret_keeping;
    let dynamic = "[user]\ntitle = { expr = 'user.exists(k, k == \"o\") ? \"has o\" : \"none\"' }\n";
    let indexed = "[user]\ntitle = { expr = 'size(values[\"o\"]) > 0 ? user[\"o\"] : \"none\"' }\n";
    for (rules, expected) in [
        (RULES, Some(&["employeetype", "o", "mobile", "mail", "sn", "givenname"][..])),
        (indexed, Some(&["o", "mail"][..])),
        (dynamic, None),
    ] {
        let raw: RawMapping = toml::from_str(rules).expect("mapping toml");
        let (mapping, _) = Mapping::compile(&raw, Profile::Generic, SourceKind::Ldif, &[]).expect("compiles");
        let wanted = mapping.source_attributes();
        match (expected, &wanted) {
            (None, None) => {}
            (Some(names), Some(w)) => {
                for n in names {
                    assert!(w.contains(*n), "{n} missing from {w:?} for {rules}");
                }
                assert!(!w.contains("uid") && !w.contains("objectclass"), "{w:?}");
            }
            _ => panic!("source_attributes() = {wanted:?} for {rules}"),
        }
        let reader = LdifReader::new(DIRECTORY.as_bytes(), "t.ldif", UrlPolicy::default());
        let records = reader.map(|r| r.expect("parses"));
        let kept = interpret_keeping(records, &Default::default(), wanted.as_ref());
        assert_eq!(mapping.map_directory(kept), mapping.map_directory(directory()), "{rules}");
    }
}

#[test]
fn mapping_in_parts_gives_the_same_desired_state() {
    // Users that map, fail an expression, lack a userName, share a key or a userName (in another
    // case) with a user in another part, and carry warnings: the joined parts keep source order.
    let mut ldif = String::new();
    for i in 0..40 {
        let mail = match i {
            7 => "nomail".to_owned(),
            31 => "User3@x.com".to_owned(),
            _ => format!("user{i}@x.com"),
        };
        let uuid = if i == 35 { 2 } else { i };
        let kind = ["technician", "endUser", "robot", "x"][i % 4];
        ldif += &format!(
            "dn: uid=u{i},ou=p,dc=x\nobjectClass: inetOrgPerson\nuid: u{i}\nmail: {mail}\nemployeeType: {kind}\n\
             entryUUID: 00000000-0000-0000-0000-{uuid:012}\n\n"
        );
    }
    ldif += "dn: cn=helpdesk,ou=g,dc=x\nobjectClass: groupOfNames\ncn: helpdesk\nmember: uid=u1,ou=p,dc=x\nmember: uid=u38,ou=p,dc=x\n";
    let dir = || {
        let reader = LdifReader::new(ldif.as_bytes(), "t.ldif", UrlPolicy::default());
        interpret(reader.collect::<Result<Vec<_>, _>>().expect("parses"), &Default::default())
    };
    let raw: RawMapping = toml::from_str(
        r#"
        [user]
        userType = { expr = 'user.employeetype == "x" ? user.nothing : user.employeetype' }
        [[roles]]
        group = "helpdesk"
        role = "Help Desk"
        "#,
    )
    .expect("mapping toml");
    let (mapping, _) =
        Mapping::compile(&raw, Profile::NinjaOne, SourceKind::Ldif, &["technician".into(), "endUser".into()])
            .expect("compiles");
    let one = mapping.map_directory_in_parts(dir(), 1);
    assert!(!one.skipped.is_empty() && !one.warnings.is_empty() && one.users.len() > 20, "{one:#?}");
    let one = format!("{one:?}");
    for parts in [2, 3, 7, 40, 100] {
        assert_eq!(format!("{:?}", mapping.map_directory_in_parts(dir(), parts)), one, "{parts} parts");
    }
}

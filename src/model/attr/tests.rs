use super::*;

const ENTERPRISE_DEPARTMENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department";

#[test]
fn built_ins_keep_their_names_and_spellings() {
    for a in Attr::BUILTINS {
        assert!(a.is_builtin());
        assert_eq!(Attr::parse(a.name()), Ok(a));
        assert_eq!(Attr::from_name(a.name()), Ok(a));
        assert_eq!(Attr::parse(&a.name().to_uppercase()), Ok(a), "{a}");
    }
    assert_eq!(Attr::parse(" email "), Ok(Attr::WorkEmail));
    assert_eq!(Attr::parse("givenName"), Ok(Attr::GivenName));
    assert_eq!(Attr::parse("mobile"), Ok(Attr::MobilePhone));
    // The aliases are config spellings; a stored name is a path.
    assert_ne!(Attr::from_name("mail"), Ok(Attr::WorkEmail));
    // Another spelling of a built-in path is the built-in.
    assert_eq!(Attr::parse("Emails[ Type  EQ \"work\" ].value"), Ok(Attr::WorkEmail));
    assert_eq!(Attr::parse("urn:ietf:params:scim:schemas:core:2.0:User:userName"), Ok(Attr::UserName));
    assert_eq!(format!("{:?}", Attr::Title), "Title");
    assert!(Attr::WorkPhone.is_phone() && Attr::MobilePhone.is_phone() && !Attr::Title.is_phone());
}

#[test]
fn any_attribute_path_is_an_attribute() {
    let paths = [
        "nickName",
        "name.formatted",
        "name.middleName",
        ENTERPRISE_DEPARTMENT,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        "addresses[type eq \"work\"].locality",
        "emails[type eq \"home\"].value",
        "urn:example:params:scim:schemas:extension:acme:1.0:User:badge-number_2",
    ];
    for path in paths {
        let a = Attr::parse(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(!a.is_builtin(), "{path}");
        assert_eq!(a.name(), path);
        assert_eq!(Attr::parse(path), Ok(a), "the same path is the same attribute");
        assert_eq!(Attr::from_name(a.name()), Ok(a));
        assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(path).unwrap());
        assert_eq!(serde_json::from_str::<Attr>(&serde_json::to_string(path).unwrap()).unwrap(), a);
        assert!(!a.is_phone(), "{path}");
        assert_eq!(format!("{a:?}"), format!("Attr({path:?})"));
    }
}

#[test]
fn spellings_of_one_path_are_one_attribute() {
    let a = Attr::parse("preferredLanguage").unwrap();
    assert_eq!(Attr::parse("PreferredLanguage"), Ok(a));
    assert_eq!(Attr::parse("urn:ietf:params:scim:schemas:core:2.0:User:preferredLanguage"), Ok(a));
    assert_eq!(a.name(), "preferredLanguage", "spelled as first seen");
    let d = Attr::parse("URN:IETF:params:scim:schemas:extension:ENTERPRISE:2.0:user:division").unwrap();
    assert_eq!(d.name(), "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:division");
    let home = Attr::parse("ims[type eq \"home\"].value").unwrap();
    assert_eq!(Attr::parse("ims[ TYPE eq  \"home\"  ].value"), Ok(home));
}

#[test]
fn phone_numbers_are_phones_in_any_path() {
    for path in [
        "phoneNumbers[type eq \"home\"].value",
        "phonenumbers[type eq \"fax\"].display",
        "phoneNumbers.value",
        "phoneNumbers",
        "urn:ietf:params:scim:schemas:core:2.0:User:phoneNumbers[type eq \"other\"].value",
    ] {
        let a = Attr::parse(path).unwrap();
        assert!(a.is_phone() && !a.is_builtin(), "{path}");
    }
    assert!(!Attr::parse("phoneNumbersVerified").unwrap().is_phone());
}

#[test]
fn what_is_not_a_path_is_refused_with_what_one_looks_like() {
    for bad in [
        "",
        "shoe size",
        "9lives",
        "name.",
        ".name",
        "name..formatted",
        "name.given.name",
        "emails[type eq \"home\"]",
        "emails[value eq \"x\"].value",
        "emails[type co \"home\"].value",
        "emails[type eq home].value",
        "emails[type eq \"\"].value",
        "emails[type eq \"home\"].value.x",
        "emails[type eq \"home\"",
        "emails[type eq \"a\"][type eq \"b\"].value",
        "enterprise:department",
        "urn::department",
        "urn:ietf:department",
        "nick name",
        "nickName!",
        "ü",
    ] {
        let err = Attr::parse(bad).expect_err(bad);
        assert!(err.contains("is not a SCIM attribute path"), "{bad}: {err}");
        assert!(err.contains("name.formatted"), "{bad}: {err}");
        let json = serde_json::to_string(bad).unwrap();
        assert!(serde_json::from_str::<Attr>(&json).is_err(), "{bad}");
    }
    assert!(Attr::parse(&"a".repeat(MAX_PATH_LEN + 1)).is_err());
}

#[test]
fn what_scimsync_or_the_server_sets_is_refused() {
    for (path, says) in [
        ("active", "mapping.active"),
        ("roles[type eq \"x\"].value", "mapping.roles"),
        ("groups.value", "source's groups"),
        ("meta.created", "server"),
        ("ID", "server"),
        ("urn:ietf:params:scim:schemas:core:2.0:User:schemas", "server"),
    ] {
        let err = Attr::parse(path).expect_err(path);
        assert!(err.contains(says), "{path}: {err}");
    }
    // An extension may have attributes of those names.
    assert!(Attr::parse("urn:example:ext:1.0:User:active").is_ok());
}

#[test]
fn built_ins_come_first_then_custom_attributes_by_name() {
    // Interned in an order that is not the order of their names.
    let names =
        ["zoneInfo", "Locale", "addresses[type eq \"work\"].region", ENTERPRISE_DEPARTMENT, "nickName"];
    let mut attrs: Vec<Attr> = names.iter().map(|n| Attr::parse(n).unwrap()).collect();
    attrs.extend([Attr::OrganizationId, Attr::UserName, Attr::Title]);
    attrs.sort();
    let sorted: Vec<&str> = attrs.iter().map(|a| a.name()).collect();
    assert_eq!(
        sorted,
        [
            "userName",
            "title",
            "organizationId",
            "addresses[type eq \"work\"].region",
            "Locale",
            "nickName",
            ENTERPRISE_DEPARTMENT,
            "zoneInfo",
        ]
    );
}

use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn custom(path: &str) -> Attr {
    Attr::parse(path).unwrap_or_else(|e| panic!("{e}"))
}

/// Built-ins and custom attributes, the custom ones interned in an order that is not theirs.
fn pool() -> Vec<Attr> {
    let mut pool = Attr::BUILTINS.to_vec();
    pool.extend(
        [
            "nickName",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            "addresses[type eq \"work\"].locality",
            "name.formatted",
            "emails[type eq \"home\"].value",
        ]
        .map(custom),
    );
    pool
}

/// Checks `attrs` against the map it stands for: every read and the JSON form.
fn same(attrs: &Attrs, map: &BTreeMap<Attr, String>) {
    let want: Vec<(Attr, &str)> = map.iter().map(|(a, v)| (*a, v.as_str())).collect();
    assert_eq!(attrs.iter().collect::<Vec<_>>(), want);
    assert_eq!(attrs.keys().collect::<Vec<_>>(), map.keys().copied().collect::<Vec<_>>());
    assert_eq!((attrs.len(), attrs.is_empty()), (map.len(), map.is_empty()));
    for a in pool() {
        assert_eq!(attrs.get(&a), map.get(&a).map(String::as_str), "{a}");
        assert_eq!(attrs.contains_key(&a), map.contains_key(&a), "{a}");
    }
    let json = serde_json::to_string(attrs).unwrap();
    assert_eq!(json, serde_json::to_string(map).unwrap());
    assert_eq!(&serde_json::from_str::<Attrs>(&json).unwrap(), attrs);
    let rebuilt: Attrs = map.iter().map(|(a, v)| (*a, v.as_str())).collect();
    assert_eq!(&rebuilt, attrs, "equal maps are equal values");
}

#[test]
fn behaves_as_the_ordered_map_it_replaces() {
    let mut map = BTreeMap::new();
    let mut attrs = Attrs::new();
    let [nick, department, locality, formatted] = [
        "nickName",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        "addresses[type eq \"work\"].locality",
        "name.formatted",
    ]
    .map(custom);
    // Inserts, replacements (longer, shorter, empty) and removals, in an order that moves
    // values in front of and behind each other, built-in and custom.
    let steps: &[(Attr, Option<&str>)] = &[
        (Attr::Title, Some("Engineer")),
        (department, Some("R&D")),
        (Attr::UserName, Some("ada@example.org")),
        (Attr::OrganizationId, Some("7")),
        (nick, Some("")),
        (Attr::Title, Some("Principal engineer")),
        (locality, Some("Zürich")),
        (Attr::GivenName, Some("")),
        (department, Some("Research and development")),
        (Attr::UserName, None),
        (formatted, Some("Ada Lovelace")),
        (Attr::WorkPhone, Some("+49 30 1234")),
        (nick, None),
        (Attr::Title, Some("É")),
        (department, Some("")),
        (Attr::GivenName, None),
        (locality, None),
        (Attr::ExternalId, Some("x")),
        (Attr::DisplayName, None),
        (formatted, None),
        (department, None),
    ];
    for (attr, value) in steps {
        match value {
            Some(v) => {
                map.insert(*attr, v.to_string());
                attrs.insert(*attr, v);
            }
            None => {
                map.remove(attr);
                attrs.remove(attr);
            }
        }
        same(&attrs, &map);
    }
}

proptest! {
    #[test]
    fn any_edits_behave_as_the_ordered_map(
        steps in prop::collection::vec((0usize..16, prop::option::of("[a-zé ]{0,6}"), any::<bool>()), 0..40)
    ) {
        let pool = pool();
        let (mut map, mut attrs) = (BTreeMap::new(), Attrs::new());
        for (i, value, retain) in steps {
            let a = pool[i % pool.len()];
            match (value, retain) {
                (Some(v), _) => {
                    map.insert(a, v.clone());
                    attrs.insert(a, &v);
                }
                (None, false) => {
                    map.remove(&a);
                    attrs.remove(&a);
                }
                // Keep what is not this attribute and not empty.
                (None, true) => {
                    map.retain(|k, v| *k != a && !v.is_empty());
                    attrs.retain(|k, v| k != a && !v.is_empty());
                }
            }
            same(&attrs, &map);
        }
    }
}

#[test]
fn clones_share_their_values_until_one_changes() {
    let a = Attrs::from([(Attr::UserName, "a@x"), (Attr::Title, "T"), (custom("nickName"), "A")]);
    let mut b = a.clone();
    assert!(Arc::ptr_eq(&a.text, &b.text));
    b.insert(Attr::Title, "U");
    assert_eq!((a.get(&Attr::Title), b.get(&Attr::Title)), (Some("T"), Some("U")));
    assert_eq!(b.get(&custom("nickName")), Some("A"));
}

#[test]
fn an_absent_attribute_differs_from_an_empty_one() {
    let empty = Attrs::from([(Attr::Title, "")]);
    assert_ne!(empty, Attrs::new());
    assert_eq!(empty.get(&Attr::Title), Some(""));
    assert_eq!(Attrs::new().get(&Attr::Title), None);
    let nick = custom("nickName");
    assert_ne!(Attrs::from([(nick, "")]), Attrs::new());
    assert_eq!(Attrs::from([(nick, "")]).get(&nick), Some(""));
}

#[test]
fn reads_what_the_state_database_holds() {
    let json = r#"{"userName":"a\u00e9@x","title":"T","organizationId":"All"}"#;
    let attrs: Attrs = serde_json::from_str(json).unwrap();
    assert_eq!(attrs.get(&Attr::UserName), Some("aé@x"));
    assert_eq!(
        serde_json::to_string(&attrs).unwrap(),
        r#"{"userName":"aé@x","title":"T","organizationId":"All"}"#
    );
    // A custom attribute a later mapping stored, whatever the order of the keys.
    let json = r#"{"shoeSize":"9","urn:example:ext:1.0:User:team":"Ops","userName":"u"}"#;
    let attrs: Attrs = serde_json::from_str(json).unwrap();
    assert_eq!(attrs.get(&custom("shoeSize")), Some("9"));
    assert_eq!(
        serde_json::to_string(&attrs).unwrap(),
        r#"{"userName":"u","shoeSize":"9","urn:example:ext:1.0:User:team":"Ops"}"#
    );
    let err = serde_json::from_str::<Attrs>(r#"{"shoe size":"9"}"#).unwrap_err().to_string();
    assert!(err.contains("shoe size"), "{err}");
    assert!(serde_json::from_str::<Attrs>(r#"{"title":9}"#).is_err());
    assert!(serde_json::from_str::<Attrs>(r#"{"nickName":9}"#).is_err());
}

#[test]
fn retain_and_later_duplicates() {
    let nick = custom("nickName");
    let mut attrs: Attrs =
        [(Attr::WorkPhone, "1"), (Attr::Title, "a"), (nick, "x"), (Attr::Title, "b"), (nick, "y")]
            .into_iter()
            .collect();
    assert_eq!((attrs.get(&Attr::Title), attrs.get(&nick)), (Some("b"), Some("y")));
    attrs.retain(|a, _| !a.is_phone());
    assert_eq!(attrs.keys().collect::<Vec<_>>(), [Attr::Title, nick]);
    let phone = custom("phoneNumbers[type eq \"home\"].value");
    attrs.insert(phone, "2");
    attrs.retain(|a, _| !a.is_phone());
    assert_eq!(attrs.keys().collect::<Vec<_>>(), [Attr::Title, nick]);
}

/// Every desired and every managed user holds one: custom attributes must not make it larger.
#[test]
fn stays_as_small_as_before_custom_attributes() {
    assert_eq!(std::mem::size_of::<Attrs>(), 64);
    let plain = Attrs::from([(Attr::UserName, "ada@example.org"), (Attr::Title, "Engineer")]);
    assert_eq!(plain.text.len(), "ada@example.orgEngineer".len(), "no custom index without custom values");
}

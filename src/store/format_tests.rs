//! How users and audit entries are stored: the compact form of `codec`, and rows written before
//! it (schema version 3, JSON) read as they were and rewritten in the compact form.

use super::tests::commit_all as commit;
use super::*;
use crate::model::{Attr, DesiredUser, SourceKey};
use crate::reconcile::plan::Change;
use crate::reconcile::Op;
use rusqlite::params;

fn rich_user(key: &str) -> DesiredUser {
    DesiredUser::builder(key, "zoë.ångström@example.com")
        .origin("/srv/export/people.ldif:4711")
        .attr(Attr::WorkEmail, "zoë.ångström@example.com")
        .attr(Attr::DisplayName, "Zoë Ångström")
        .attr(Attr::ExternalId, key)
        .attr(Attr::UserType, "technician")
        .attr(Attr::OrganizationId, "101")
        .roles(["Help desk", "NOC"])
        .build()
}

fn text(store: &Store, sql: &str) -> String {
    store.conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn a_created_user_is_stored_compactly_and_read_back_as_its_operation() {
    let mut store = Store::in_memory().unwrap();
    let create = Op::CreateUser { user: rich_user("6f1c9a2e-0000-4000-8000-000000000001") };
    let group = Op::CreateGroup { key: SourceKey::from("g"), display_name: "NOC".into() };
    commit(&mut store, &[create.clone(), group.clone()]);

    assert_eq!(text(&store, "SELECT typeof(attrs) FROM users"), "blob");
    let (kind, stored): (String, i64) = store
        .conn
        .query_row(
            "SELECT typeof(details), length(details) FROM audit WHERE activity = 'Technician Created'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(kind, "blob");
    let json = serde_json::to_string(&create).unwrap().len() as i64;
    assert!(stored * 2 < json, "{stored} bytes stored for {json} bytes of JSON");

    let entries = store.audit(None, 10).unwrap();
    assert_eq!(entries[1].details, serde_json::to_value(&create).unwrap());
    assert_eq!(entries[0].details, serde_json::to_value(&group).unwrap());
    let snapshot = store.load_snapshot().unwrap();
    let managed = &snapshot.users[&SourceKey::from("6f1c9a2e-0000-4000-8000-000000000001")];
    let Op::CreateUser { user } = &create else { unreachable!() };
    assert_eq!((&managed.attrs, &managed.roles, managed.active), (&user.attrs, &user.roles, true));
}

#[test]
fn rows_written_before_the_compact_form_are_read_and_rewritten_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let create = Op::CreateUser { user: rich_user("k1") };
    {
        // A database as schema version 3 left it, with a user and its audit entry in JSON.
        let conn = rusqlite::Connection::open(&path).unwrap();
        for sql in &migrations::MIGRATIONS[..3] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 3).unwrap();
        let Op::CreateUser { user } = &create else { unreachable!() };
        conn.execute(
            "INSERT INTO users (key, target_id, user_name, attrs, active, roles, missing_since, missing_runs, updated_at)
             VALUES ('k1', 't-1', ?1, ?2, 1, ?3, 100, 2, 0)",
            params![
                user.user_name(),
                serde_json::to_string(&user.attrs).unwrap(),
                serde_json::to_string(&user.roles).unwrap()
            ],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO audit (run_id, at, activity, object_key, name, target_id, details)
             VALUES (1, 0, 'Technician Created', 'k1', ?1, 't-1', ?2)",
            params![user.user_name(), serde_json::to_string(&create).unwrap()],
        )
        .unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    assert_eq!(text(&store, "SELECT typeof(attrs) FROM users"), "text");
    let columns = text(&store, "SELECT group_concat(name) FROM pragma_table_info('users')");
    assert!(!columns.contains("user_name"), "{columns}");

    let Op::CreateUser { user } = &create else { unreachable!() };
    let before = store.load_snapshot().unwrap().users[&SourceKey::from("k1")].clone();
    assert_eq!((&before.attrs, &before.roles, before.target_id.as_str()), (&user.attrs, &user.roles, "t-1"));
    assert_eq!(before.missing.map(|m| (m.since, m.runs)), Some((100, 2)));
    assert_eq!(store.pending_deprovision().unwrap(), [(user.user_name().to_owned(), 100, 2)]);
    assert_eq!(store.audit(None, 10).unwrap()[0].details, serde_json::to_value(&create).unwrap());

    // Written again, the row takes the compact form and keeps everything else.
    let change = Change::Set { attr: Attr::Title, before: None, after: Some("Engineer".into()) };
    let update = Op::UpdateUser {
        key: SourceKey::from("k1"),
        user_name: user.user_name().into(),
        changes: vec![change],
        recreate: None,
    };
    commit(&mut store, std::slice::from_ref(&update));
    assert_eq!(text(&store, "SELECT typeof(attrs) FROM users"), "blob");
    let after = store.load_snapshot().unwrap().users[&SourceKey::from("k1")].clone();
    let mut expected = before.clone();
    expected.apply_changes(match &update {
        Op::UpdateUser { changes, .. } => changes,
        _ => unreachable!(),
    });
    assert_eq!(after, expected);
    assert_eq!(after.attrs.get(&Attr::Title), Some("Engineer"));
    assert_eq!(store.audit(None, 10).unwrap()[0].details, serde_json::to_value(&update).unwrap());
    assert_eq!(store.integrity_check().unwrap(), "ok");
}

#[test]
fn a_damaged_row_is_reported_with_its_key() {
    let mut store = Store::in_memory().unwrap();
    commit(&mut store, &[Op::CreateUser { user: rich_user("k1") }]);
    store.conn.execute("UPDATE users SET attrs = x'0102'", []).unwrap();
    let err = store.load_snapshot().unwrap_err().to_string();
    assert!(err.contains("users.attrs of k1"), "{err}");
    store.conn.execute("UPDATE audit SET details = x'01'", []).unwrap();
    let err = store.audit(None, 10).unwrap_err().to_string();
    assert!(err.contains("audit.details of k1"), "{err}");
}

#[test]
fn custom_attributes_are_stored_and_read_back_with_the_user() {
    let mut store = Store::in_memory().unwrap();
    let path = |p: &str| Attr::parse(p).unwrap();
    let user = DesiredUser::builder("k1", "ada@example.com")
        .attr(path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"), "R&D")
        .attr(path("addresses[type eq \"work\"].locality"), "Zürich")
        .attr(path("name.formatted"), "Ada Lovelace")
        .attr(Attr::Title, "Engineer")
        .build();
    let create = Op::CreateUser { user: user.clone() };
    commit(&mut store, std::slice::from_ref(&create));
    assert_eq!(text(&store, "SELECT typeof(attrs) FROM users"), "blob");
    let managed = store.load_snapshot().unwrap().users[&SourceKey::from("k1")].clone();
    assert_eq!(managed.attrs, user.attrs);
    assert_eq!(store.audit(None, 10).unwrap()[0].details, serde_json::to_value(&create).unwrap());

    // A custom attribute changed and another removed, as an update's changes say.
    let changes = vec![
        Change::Set {
            attr: path("name.formatted"),
            before: Some("Ada Lovelace".into()),
            after: Some("Ada King".into()),
        },
        Change::Set {
            attr: path("addresses[type eq \"work\"].locality"),
            before: Some("Zürich".into()),
            after: None,
        },
    ];
    let update = Op::UpdateUser {
        key: SourceKey::from("k1"),
        user_name: user.user_name().into(),
        changes,
        recreate: None,
    };
    commit(&mut store, std::slice::from_ref(&update));
    let after = store.load_snapshot().unwrap().users[&SourceKey::from("k1")].clone();
    assert_eq!(after.attrs.get(&path("name.formatted")), Some("Ada King"));
    assert!(!after.attrs.contains_key(&path("addresses[type eq \"work\"].locality")));
    assert_eq!(after.attrs.len(), 4);
}

#[test]
fn base64_guid_keys_are_rewritten_as_guid_strings_by_schema_5() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let (b64, guid) = ("/xmWb4aLEdC0LQDAT8lk/w==", "6f9619ff-8b86-d011-b42d-00c04fc964ff");
    let (group_b64, group_guid) = ("AAECAwQFBgcICQoLDA0ODw==", "03020100-0504-0706-0809-0a0b0c0d0e0f");
    {
        let mut store = Store::open(&path).unwrap();
        let user = rich_user(b64);
        let ops = [
            Op::CreateUser { user: user.clone() },
            Op::CreateUser { user: rich_user("entryuuid-kept") },
            Op::CreateGroup { key: SourceKey::from(group_b64), display_name: "big".into() },
            Op::AddMembers {
                key: SourceKey::from(group_b64),
                display_name: "big".into(),
                members: vec![SourceKey::from(b64)],
            },
        ];
        commit(&mut store, &ops);
        // As schema version 4 left it (without the tables of migration 6).
        store
            .conn
            .execute_batch(
                "DROP TABLE op_totals; DROP TABLE run_totals; DROP INDEX runs_kind; DROP INDEX held_run;",
            )
            .unwrap();
        store.conn.pragma_update(None, "user_version", 4).unwrap();
    }
    let store = Store::open(&path).unwrap();
    let snapshot = store.load_snapshot().unwrap();
    let keys: Vec<&str> = snapshot.users.keys().map(|k| k.0.as_str()).collect();
    assert_eq!(keys, [guid, "entryuuid-kept"]);
    let group = &snapshot.groups[&SourceKey::from(group_guid)];
    assert_eq!(group.members.iter().map(|k| k.0.as_str()).collect::<Vec<_>>(), [guid]);
    assert_eq!(text(&store, "SELECT count(*) || '' FROM audit WHERE object_key LIKE '%=='"), "0");
    assert_eq!(
        text(
            &store,
            "SELECT count(*) || '' FROM audit WHERE object_key = '{guid}'".replace("{guid}", guid).as_str()
        ),
        "1"
    );
    assert_eq!(store.integrity_check().unwrap(), "ok");
}

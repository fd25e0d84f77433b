//! The SCIM target client against a real service provider (python-scim's scim2-server): what it
//! stores, per profile, and how the server's refusals come back as errors.

use crate::support;

use scimsync::model::{Attr, DesiredUser, Profile, SourceKey};
use scimsync::reconcile::Change;
use scimsync::target::{TargetClient, TargetError, NINJAONE_SCHEMA};
use secrecy::SecretString;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::scim_server::{target_config, Raw, ScimServer};

/// A client and a raw view of a fresh tenant.
fn tenant(profile: Profile) -> (TargetClient, Raw) {
    let (url, token) = ScimServer::shared().tenant();
    let client = TargetClient::new(&target_config(&url, profile), SecretString::from(token.clone()))
        .expect("client for scim2-server");
    (client, Raw::new(&url, &token))
}

/// A user with a userName alone.
fn named(name: &str) -> DesiredUser {
    DesiredUser::builder(SourceKey(format!("key-{name}")), name).build()
}

fn ada() -> DesiredUser {
    DesiredUser::builder("key-ada@example.com", "ada@example.com")
        .attr(Attr::GivenName, "Ada")
        .attr(Attr::FamilyName, "Lovelace")
        .attr(Attr::DisplayName, "Ada Lovelace")
        .attr(Attr::Title, "Engineer")
        .attr(Attr::WorkEmail, "ada@example.com")
        .attr(Attr::MobilePhone, "+1 555 0199")
        .attr(Attr::ExternalId, "uuid-ada")
        .attr(Attr::UserType, "technician")
        .attr(Attr::OrganizationId, "All")
        .role("Helpdesk")
        .build()
}

fn set(attr: Attr, before: Option<&str>, after: Option<&str>) -> Change {
    Change::Set { attr, before: before.map(Into::into), after: after.map(Into::into) }
}

/// The stored user without `meta` (which changes on every write).
async fn stored(raw: &Raw, id: &str) -> Value {
    let mut doc = raw.resource(&format!("/Users/{id}")).await;
    doc.as_object_mut().unwrap().remove("meta");
    doc
}

#[tokio::test]
async fn ninjaone_user_lifecycle() {
    let (client, raw) = tenant(Profile::NinjaOne);
    let id = client.create_user(&ada()).await.unwrap();
    assert_eq!((client.requests_sent(), client.writes_sent()), (1, 1));
    // Phone numbers are never sent to a ninjaone target.
    assert_eq!(
        stored(&raw, &id).await,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", NINJAONE_SCHEMA],
            "id": id,
            "userName": "ada@example.com",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "displayName": "Ada Lovelace",
            "title": "Engineer",
            "emails": [{"value": "ada@example.com", "type": "work", "primary": true}],
            "externalId": "uuid-ada",
            "active": true,
            "roles": [{"value": "Helpdesk"}],
            NINJAONE_SCHEMA: {"userType": "technician", "organizationId": "All"},
        })
    );

    let found = client.find_user("ADA@Example.COM").await.unwrap().expect("found ignoring case");
    assert_eq!((found.id.as_str(), found.user_name.as_str()), (id.as_str(), "ada@example.com"));
    assert!(found.active);
    assert_eq!(found.external_id.as_deref(), Some("uuid-ada"));
    assert_eq!(client.find_user("nobody@example.com").await.unwrap(), None);

    // One minimal PATCH: only the changed attribute moves.
    let before = stored(&raw, &id).await;
    let writes = client.writes_sent();
    client.update_user(&id, &[set(Attr::GivenName, Some("Ada"), Some("Augusta"))]).await.unwrap();
    assert_eq!(client.writes_sent(), writes + 1);
    let mut expected = before.clone();
    expected["name"]["givenName"] = "Augusta".into();
    assert_eq!(stored(&raw, &id).await, expected);

    // Removing an attribute; changing the work email and the extension.
    client
        .update_user(
            &id,
            &[
                set(Attr::Title, Some("Engineer"), None),
                set(Attr::WorkEmail, Some("ada@example.com"), Some("ada@example.org")),
                set(Attr::UserType, Some("technician"), Some("endUser")),
                set(Attr::OrganizationId, Some("All"), Some("42")),
            ],
        )
        .await
        .unwrap();
    let doc = stored(&raw, &id).await;
    assert_eq!(doc.get("title"), None);
    assert_eq!(doc["emails"], json!([{"value": "ada@example.org", "type": "work", "primary": true}]));
    assert_eq!(doc[NINJAONE_SCHEMA], json!({"userType": "endUser", "organizationId": "42"}));
    assert_eq!(doc["name"], json!({"givenName": "Augusta", "familyName": "Lovelace"}));

    // Nothing to change: nothing is sent.
    let writes = client.writes_sent();
    client.update_user(&id, &[]).await.unwrap();
    client.update_user(&id, &[set(Attr::WorkPhone, None, Some("+1 555 0100"))]).await.unwrap();
    assert_eq!(client.writes_sent(), writes);

    client.set_active(&id, false).await.unwrap();
    assert_eq!(stored(&raw, &id).await["active"], json!(false));
    assert!(!client.find_user("ada@example.com").await.unwrap().unwrap().active);
    client.set_active(&id, true).await.unwrap();
    assert_eq!(stored(&raw, &id).await["active"], json!(true));

    let roles = |b: &[&str], a: &[&str]| Change::Roles {
        before: b.iter().map(|s| s.to_string()).collect(),
        after: a.iter().map(|s| s.to_string()).collect(),
    };
    client.update_user(&id, &[roles(&["Helpdesk"], &["Helpdesk", "Reports"])]).await.unwrap();
    assert_eq!(stored(&raw, &id).await["roles"], json!([{"value": "Helpdesk"}, {"value": "Reports"}]));
    client.update_user(&id, &[roles(&["Helpdesk", "Reports"], &[])]).await.unwrap();
    assert_eq!(stored(&raw, &id).await.get("roles"), None);

    client.delete_user(&id).await.unwrap();
    assert_eq!(raw.get(&format!("/Users/{id}")).await.0, 404);
    assert_eq!(client.find_user("ada@example.com").await.unwrap(), None);
    let err = client.delete_user(&id).await.unwrap_err();
    assert!(matches!(err, TargetError::NotFound { .. }), "{err:?}");
    let err = client.set_active(&id, false).await.unwrap_err();
    assert!(matches!(err, TargetError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("not found"), "{err}");
}

#[tokio::test]
async fn adoption_brings_an_existing_account_to_the_desired_state() {
    let (client, raw) = tenant(Profile::NinjaOne);
    let (status, existing) = raw
        .post(
            "/Users",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", NINJAONE_SCHEMA],
                "userName": "Ada@Example.com",
                "name": {"givenName": "A.", "formatted": "A. Lovelace"},
                "title": "Intern",
                "active": false,
                "emails": [
                    {"value": "old@example.com", "type": "work", "primary": true},
                    {"value": "ada@home.example", "type": "home"}
                ],
                NINJAONE_SCHEMA: {"userType": "endUser", "organizationId": "7"},
            }),
        )
        .await;
    assert_eq!(status, 201, "{existing}");
    let found = client.find_user("ada@example.com").await.unwrap().expect("existing account");
    assert!(!found.active);

    let writes = client.writes_sent();
    client.adopt_user(&found.id, &ada()).await.unwrap();
    assert_eq!(client.writes_sent(), writes + 1, "one PATCH");
    let doc = stored(&raw, &found.id).await;
    assert_eq!(doc["userName"], "ada@example.com");
    assert_eq!(
        doc["name"],
        json!({"givenName": "Ada", "familyName": "Lovelace", "formatted": "A. Lovelace"})
    );
    assert_eq!(doc["title"], "Engineer");
    assert_eq!(doc["displayName"], "Ada Lovelace");
    assert_eq!(doc["externalId"], "uuid-ada");
    assert_eq!(doc["active"], json!(true));
    assert_eq!(doc["roles"], json!([{"value": "Helpdesk"}]));
    assert_eq!(doc[NINJAONE_SCHEMA], json!({"userType": "technician", "organizationId": "All"}));
    // The work address is replaced; the home one, which scimsync does not manage, stays.
    assert_eq!(
        doc["emails"],
        json!([
            {"value": "ada@home.example", "type": "home"},
            {"value": "ada@example.com", "type": "work", "primary": true}
        ])
    );

    // Adopting again is harmless: nothing moves.
    client.adopt_user(&found.id, &ada()).await.unwrap();
    assert_eq!(stored(&raw, &found.id).await, doc);
}

#[tokio::test]
async fn a_user_name_taken_in_another_case_is_a_conflict() {
    let (client, raw) = tenant(Profile::NinjaOne);
    client.create_user(&named("bob@example.com")).await.unwrap();
    let requests = client.requests_sent();
    let err = client.create_user(&named("BOB@example.com")).await.unwrap_err();
    assert!(matches!(err, TargetError::Conflict { .. }), "{err:?}");
    assert!(err.to_string().contains("uniqueness"), "the server's detail is kept: {err}");
    assert_eq!(client.requests_sent(), requests + 1, "a 409 is not retried");
    assert_eq!(raw.count("Users", r#"userName eq "bob@example.com""#).await, 1);
}

#[tokio::test]
async fn user_names_with_quotes_and_backslashes_are_found() {
    let (client, _raw) = tenant(Profile::Generic);
    let name = r#"o"re\illy@example.com"#;
    let id = client.create_user(&named(name)).await.unwrap();
    let found = client.find_user(&name.to_uppercase()).await.unwrap().expect("found");
    assert_eq!((found.id, found.user_name.as_str()), (id, name));
    assert_eq!(client.find_user(r#"o"re\\illy@example.com"#).await.unwrap(), None);
}

#[tokio::test]
async fn groups_lifecycle_with_chunked_members() {
    let (client, raw) = tenant(Profile::NinjaOne);
    let gid = client.create_group("Helpdesk Team").await.unwrap();
    assert_eq!(client.find_group("helpdesk team").await.unwrap().as_deref(), Some(gid.as_str()));
    assert_eq!(client.find_group("Nobody").await.unwrap(), None);

    client.rename_group(&gid, "Service Desk").await.unwrap();
    assert_eq!(raw.resource(&format!("/Groups/{gid}")).await["displayName"], "Service Desk");
    assert_eq!(client.find_group("Helpdesk Team").await.unwrap(), None);
    assert_eq!(client.find_group("Service Desk").await.unwrap().as_deref(), Some(gid.as_str()));

    let mut ids = Vec::new();
    for i in 0..250 {
        let u = named(&format!("member{i:03}@example.com"));
        ids.push(client.create_user(&u).await.unwrap());
    }
    let writes = client.writes_sent();
    for chunk in ids.chunks(100) {
        client.add_members(&gid, chunk).await.unwrap();
    }
    assert_eq!(client.writes_sent(), writes + 3);
    let members = |doc: &Value| -> Vec<String> {
        let mut m: Vec<String> = doc["members"]
            .as_array()
            .map(|a| a.iter().map(|m| m["value"].as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        m.sort();
        m
    };
    let mut all = ids.clone();
    all.sort();
    assert_eq!(members(&raw.resource(&format!("/Groups/{gid}")).await), all);
    // Adding members already there changes nothing.
    client.add_members(&gid, &ids[..2]).await.unwrap();
    assert_eq!(members(&raw.resource(&format!("/Groups/{gid}")).await).len(), 250);

    let writes = client.writes_sent();
    client.remove_members(&gid, &ids[10..13]).await.unwrap();
    assert_eq!(client.writes_sent(), writes + 1, "one PATCH for all three");
    let left = members(&raw.resource(&format!("/Groups/{gid}")).await);
    assert_eq!(left.len(), 247);
    assert!(ids[10..13].iter().all(|id| !left.contains(id)));
    client.remove_members(&gid, &[]).await.unwrap();
    assert_eq!(client.writes_sent(), writes + 1, "nothing to remove: nothing sent");

    client.delete_group(&gid).await.unwrap();
    assert_eq!(client.find_group("Service Desk").await.unwrap(), None);
    let err = client.delete_group(&gid).await.unwrap_err();
    assert!(matches!(err, TargetError::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn generic_profile_sends_core_user_type_and_phones() {
    let (client, raw) = tenant(Profile::Generic);
    let id = client.create_user(&ada()).await.unwrap();
    let doc = stored(&raw, &id).await;
    assert_eq!(doc["userType"], "technician");
    assert_eq!(doc["schemas"], json!(["urn:ietf:params:scim:schemas:core:2.0:User"]));
    assert_eq!(doc.get(NINJAONE_SCHEMA), None);
    assert!(!doc.to_string().contains("organizationId"), "{doc}");
    assert_eq!(doc["phoneNumbers"], json!([{"value": "+1 555 0199", "type": "mobile"}]));

    client.update_user(&id, &[set(Attr::UserType, Some("technician"), Some("endUser"))]).await.unwrap();
    assert_eq!(stored(&raw, &id).await["userType"], "endUser");
    // A first value of a typed attribute is added as a whole entry (a value filter that
    // matches nothing would be refused with noTarget).
    client.update_user(&id, &[set(Attr::WorkPhone, None, Some("+1 555 0100"))]).await.unwrap();
    client
        .update_user(&id, &[set(Attr::MobilePhone, Some("+1 555 0199"), Some("+1 555 0198"))])
        .await
        .unwrap();
    assert_eq!(
        stored(&raw, &id).await["phoneNumbers"],
        json!([{"value": "+1 555 0198", "type": "mobile"}, {"value": "+1 555 0100", "type": "work"}])
    );
    client.update_user(&id, &[set(Attr::MobilePhone, Some("+1 555 0198"), None)]).await.unwrap();
    assert_eq!(stored(&raw, &id).await["phoneNumbers"], json!([{"value": "+1 555 0100", "type": "work"}]));
}

#[tokio::test]
async fn entra_compat_dialect_is_accepted() {
    let (client, raw) = tenant(Profile::EntraCompat);
    let id = client.create_user(&ada()).await.unwrap();
    client.set_active(&id, false).await.unwrap();
    assert_eq!(stored(&raw, &id).await["active"], json!(false));
    client
        .update_user(
            &id,
            &[
                set(Attr::Title, Some("Engineer"), None),
                set(Attr::FamilyName, Some("Lovelace"), Some("King")),
            ],
        )
        .await
        .unwrap();
    client.adopt_user(&id, &ada()).await.unwrap();
    let doc = stored(&raw, &id).await;
    assert_eq!((doc["active"].clone(), doc["title"].clone()), (json!(true), json!("Engineer")));
    assert_eq!(doc["name"]["familyName"], "Lovelace");
    let gid = client.create_group("Entra Group").await.unwrap();
    client.add_members(&gid, std::slice::from_ref(&id)).await.unwrap();
    client.remove_members(&gid, std::slice::from_ref(&id)).await.unwrap();
    client.rename_group(&gid, "Renamed").await.unwrap();
    let group = raw.resource(&format!("/Groups/{gid}")).await;
    assert_eq!(group["displayName"], "Renamed");
    assert!(group.get("members").is_none_or(|m| m == &json!([])), "{group}");
}

#[tokio::test]
async fn a_wrong_token_is_an_auth_error_that_says_what_to_do() {
    let (url, _) = ScimServer::shared().tenant();
    let wrong = "wrong-token-5f3a9c";
    let client =
        TargetClient::new(&target_config(&url, Profile::NinjaOne), SecretString::from(wrong)).unwrap();
    let err = client.find_user("ada@example.com").await.unwrap_err();
    let TargetError::Auth { status, ref message } = err else { panic!("not an auth error: {err:?}") };
    assert_eq!(status, 401);
    assert!(err.stops_run());
    let text = err.to_string();
    assert_eq!(&text, message);
    assert!(text.contains("generate a new API token"), "{text}");
    assert!(text.contains("target.token_file /etc/scimsync/target.token"), "{text}");
    assert!(!text.contains(wrong) && !format!("{err:?}").contains(wrong), "{text}");
    assert_eq!(client.requests_sent(), 1, "a 401 is not retried");
    let err = client.create_user(&ada()).await.unwrap_err();
    assert!(err.stops_run(), "{err:?}");
    assert_eq!(client.requests_sent(), 2);
}

#[tokio::test]
async fn service_provider_config_and_config_errors() {
    let (client, _raw) = tenant(Profile::Generic);
    let spc = client.service_provider_config().await.unwrap();
    assert_eq!(spc["patch"]["supported"], json!(true));

    let mut cfg = target_config("http://127.0.0.1:1/v2", Profile::Generic);
    cfg.url = None;
    let err = TargetClient::new(&cfg, SecretString::from("t")).unwrap_err();
    assert!(matches!(err, TargetError::Config { .. }) && err.to_string().contains("target.url"), "{err}");
    cfg.url = Some("http://127.0.0.1:1/v2".into());
    cfg.ca_file = Some("/nonexistent/ca.pem".into());
    let err = TargetClient::new(&cfg, SecretString::from("t")).unwrap_err();
    assert!(err.to_string().contains("target.ca_file /nonexistent/ca.pem"), "{err}");
}

#[tokio::test]
async fn the_rate_limit_spaces_requests() {
    let (url, token) = ScimServer::shared().tenant();
    let mut cfg = target_config(&url, Profile::NinjaOne);
    cfg.rate_limit = Some(10.0);
    let client = TargetClient::new(&cfg, SecretString::from(token)).unwrap();
    let started = Instant::now();
    for _ in 0..6 {
        client.find_user("ada@example.com").await.unwrap();
    }
    // The first goes at once, each later one 100 ms after the one before.
    assert!(started.elapsed() >= Duration::from_millis(480), "{:?}", started.elapsed());
}

#[tokio::test]
async fn clones_share_counters_and_run_concurrently() {
    let (client, raw) = tenant(Profile::NinjaOne);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.create_user(&named(&format!("c{i}@example.com"))).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(client.writes_sent(), 8);
    assert_eq!(raw.count("Users", r#"userName sw "c""#).await, 8);
}

//! The dialect settings against both real servers: updates and member changes by GET + PUT keep
//! what scimsync does not manage, the create body follows `name_formatted`,
//! `multi_valued_type` and `members_on_create`, and any schema attribute a mapping names
//! (extension, sub-attribute, typed entry) is created and updated.

use crate::support;

use scimsync::model::{Attr, DesiredUser, Profile};
use scimsync::reconcile::Change;
use scimsync::target::dialect::{Members, Update};
use scimsync::target::{Dialect, TargetClient};
use secrecy::SecretString;
use serde_json::{json, Value};
use support::scim_server::{target_config, Raw, ScimServer};
use support::scimmy::Scimmy;

fn client(url: &str, token: &str, dialect: Dialect) -> TargetClient {
    let mut cfg = target_config(url, dialect.profile);
    cfg.dialect = dialect;
    TargetClient::new(&cfg, SecretString::from(token.to_owned())).expect("client")
}

fn put_dialect() -> Dialect {
    Dialect { update: Update::Put, members: Members::Put, ..Dialect::preset(Profile::Generic) }
}

fn grace() -> DesiredUser {
    DesiredUser::builder("key-grace", "grace@example.com")
        .attr(Attr::GivenName, "Grace")
        .attr(Attr::FamilyName, "Hopper")
        .attr(Attr::Title, "Rear Admiral")
        .attr(Attr::WorkEmail, "grace@example.com")
        .attr(Attr::ExternalId, "uuid-grace")
        .build()
}

fn set(attr: Attr, before: Option<&str>, after: Option<&str>) -> Change {
    Change::Set { attr, before: before.map(Into::into), after: after.map(Into::into) }
}

fn member_ids(group: &Value) -> Vec<&str> {
    let mut ids: Vec<&str> = group["members"]
        .as_array()
        .map(|m| m.iter().filter_map(|e| e["value"].as_str()).collect())
        .unwrap_or_default();
    ids.sort();
    ids
}

/// A user's and a group's life by PUT alone; `get` reads a resource as stored, `plant` sets an
/// attribute scimsync does not manage behind its back.
async fn lifecycle_by_put<G, GF, P, PF>(client: &TargetClient, get: G, plant: P)
where
    G: Fn(String) -> GF,
    GF: std::future::Future<Output = Value>,
    P: Fn(String) -> PF,
    PF: std::future::Future<Output = ()>,
{
    let id = client.create_user(&grace()).await.unwrap();
    plant(format!("/Users/{id}")).await;
    let writes = client.writes_sent();
    let changes = [
        set(Attr::Title, Some("Rear Admiral"), None),
        set(Attr::WorkEmail, Some("grace@example.com"), Some("grace@navy.example")),
        set(Attr::GivenName, Some("Grace"), Some("Amazing Grace")),
    ];
    client.update_user(&id, &changes).await.unwrap();
    client.set_active(&id, false).await.unwrap();
    assert_eq!(client.writes_sent(), writes + 2, "one PUT per change, no PATCH");
    let doc = get(format!("/Users/{id}")).await;
    assert_eq!(doc["nickName"], "Amazing", "an attribute scimsync does not manage is kept: {doc}");
    assert!(doc.get("title").is_none_or(Value::is_null), "{doc}");
    assert_eq!(doc["name"]["givenName"], "Amazing Grace");
    assert_eq!(doc["name"]["familyName"], "Hopper");
    assert_eq!(doc["emails"][0]["value"], "grace@navy.example");
    assert_eq!(doc["active"], json!(false));

    let other = client.create_user(&DesiredUser::builder("key-b", "b@example.com").build()).await.unwrap();
    let gid = client.create_group("Navy").await.unwrap();
    client.add_members(&gid, &[id.clone(), other.clone()]).await.unwrap();
    client.remove_members(&gid, std::slice::from_ref(&id)).await.unwrap();
    client.rename_group(&gid, "US Navy").await.unwrap();
    let group = get(format!("/Groups/{gid}")).await;
    assert_eq!(group["displayName"], "US Navy");
    assert_eq!(member_ids(&group), [other.as_str()], "{group}");
}

#[tokio::test]
async fn updates_and_members_by_put_keep_what_scimsync_does_not_manage_on_scim2_server() {
    let (url, token) = ScimServer::shared().tenant();
    let raw = Raw::new(&url, &token);
    let client = client(&url, &token, put_dialect());
    let get = |path: String| {
        let raw = &raw;
        async move { raw.resource(&path).await }
    };
    let plant = |path: String| {
        let raw = &raw;
        async move {
            let op = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "nickName", "value": "Amazing"}]});
            let (status, doc) = raw.patch(&path, &op).await;
            assert!(matches!(status, 200 | 204), "{status}: {doc}");
        }
    };
    lifecycle_by_put(&client, get, plant).await;
}

#[tokio::test]
async fn updates_and_members_by_put_keep_what_scimsync_does_not_manage_on_scimmy() {
    let scimmy = Scimmy::start();
    let http = scimmy.client();
    let client = client(&scimmy.base_url, &scimmy.token, put_dialect());
    let get = |path: String| {
        let (http, url) = (&http, scimmy.url(&path));
        async move { http.get(url).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let plant = |path: String| {
        let (http, url) = (&http, scimmy.url(&path));
        async move {
            let op = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "nickName", "value": "Amazing"}]});
            let resp = http.patch(url).json(&op).send().await.unwrap();
            assert!(resp.status().is_success(), "{}", resp.status());
        }
    };
    lifecycle_by_put(&client, get, plant).await;
}

#[tokio::test]
async fn the_create_follows_the_dialect() {
    let (url, token) = ScimServer::shared().tenant();
    let raw = Raw::new(&url, &token);
    let strict = Dialect {
        name_formatted: true,
        multi_valued_type: false,
        members_on_create: true,
        ..Dialect::preset(Profile::Generic)
    };
    let client = client(&url, &token, strict);
    let id = client.create_user(&grace()).await.unwrap();
    let doc = raw.resource(&format!("/Users/{id}")).await;
    assert_eq!(doc["name"]["formatted"], "Grace Hopper");
    assert_eq!(doc["emails"], json!([{"value": "grace@example.com"}]), "no type, no primary");
    client
        .update_user(&id, &[set(Attr::WorkEmail, Some("grace@example.com"), Some("g@example.com"))])
        .await
        .unwrap();
    let doc = raw.resource(&format!("/Users/{id}")).await;
    assert_eq!(doc["emails"], json!([{"value": "g@example.com"}]));
    let gid = client.create_group("Strict").await.unwrap();
    let group = raw.resource(&format!("/Groups/{gid}")).await;
    assert!(group.get("members").is_none_or(|m| m == &json!([])), "{group}");
}

#[tokio::test]
async fn any_schema_attribute_is_created_and_updated() {
    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let (url, token) = ScimServer::shared().tenant();
    let raw = Raw::new(&url, &token);
    let generic = client(&url, &token, Dialect::preset(Profile::Generic));
    let attr = |path: &str| Attr::parse(path).unwrap();
    let department = attr(&format!("{ENTERPRISE}:department"));
    let locality = attr(r#"addresses[type eq "work"].locality"#);
    let formatted = attr("name.formatted");
    let user = DesiredUser::builder("key-k", "katherine@example.com")
        .attr(Attr::GivenName, "Katherine")
        .attr(formatted, "Katherine Johnson")
        .attr(department, "Flight Research")
        .attr(locality, "Hampton")
        .build();
    let id = generic.create_user(&user).await.unwrap();
    let doc = raw.resource(&format!("/Users/{id}")).await;
    assert_eq!(doc["name"], json!({"givenName": "Katherine", "formatted": "Katherine Johnson"}));
    assert_eq!(doc[ENTERPRISE]["department"], "Flight Research", "{doc}");
    assert_eq!(doc["addresses"][0]["type"], "work");
    assert_eq!(doc["addresses"][0]["locality"], "Hampton");
    assert!(doc["schemas"].as_array().unwrap().contains(&json!(ENTERPRISE)), "{doc}");

    let changes = [
        set(department, Some("Flight Research"), Some("Analysis")),
        set(locality, Some("Hampton"), Some("Newport News")),
        set(formatted, Some("Katherine Johnson"), None),
    ];
    generic.update_user(&id, &changes).await.unwrap();
    let doc = raw.resource(&format!("/Users/{id}")).await;
    assert_eq!(doc[ENTERPRISE]["department"], "Analysis");
    assert_eq!(doc["addresses"][0]["locality"], "Newport News");
    assert!(doc["name"].get("formatted").is_none(), "{doc}");
    // The same by PUT.
    let put = client(&url, &token, put_dialect());
    put.update_user(&id, &[set(department, Some("Analysis"), Some("Computing"))]).await.unwrap();
    let doc = raw.resource(&format!("/Users/{id}")).await;
    assert_eq!(doc[ENTERPRISE]["department"], "Computing");
    assert_eq!(doc["addresses"][0]["locality"], "Newport News", "kept by the PUT");
}

//! The second SCIM server (`tests/support/scimmy/server.js`) starts, takes the ninjaone
//! extension, finds users by `userName eq`, refuses a duplicate userName with 409 and checks
//! its bearer token; behind the fault proxy, a create whose answer is lost still happened.

use crate::support;

use serde_json::{json, Value};
use support::fault_proxy::FaultProxy;
use support::scimmy::Scimmy;

const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const NINJAONE: &str = "urn:ietf:params:scim:schemas:extension:ninjaone:2.0:User";

fn user(user_name: &str) -> Value {
    json!({
        "schemas": [CORE_USER, NINJAONE],
        "userName": user_name,
        "active": true,
        "emails": [{"value": format!("{user_name}@example.com"), "type": "work", "primary": true}],
        NINJAONE: {"userType": "technician", "organizationId": "All"},
    })
}

async fn find(client: &reqwest::Client, scimmy: &Scimmy, user_name: &str) -> Value {
    let filter = format!("userName eq \"{user_name}\"");
    let resp = client.get(scimmy.url("/Users")).query(&[("filter", filter)]).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn creates_finds_by_user_name_and_refuses_a_duplicate() {
    let scimmy = Scimmy::start();
    let client = scimmy.client();

    let resp = client.post(scimmy.url("/Users")).json(&user("alice")).send().await.unwrap();
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    let id = created["id"].as_str().expect("an id").to_string();
    assert_eq!(created[NINJAONE], json!({"userType": "technician", "organizationId": "All"}));
    assert_eq!(created["meta"]["location"], scimmy.url(&format!("/Users/{id}")));

    let list = find(&client, &scimmy, "alice").await;
    assert_eq!(list["totalResults"], 1, "{list}");
    assert_eq!(list["Resources"][0]["id"], id.as_str());
    assert_eq!(list["Resources"][0][NINJAONE]["userType"], "technician");
    // scimmy's `eq` is case-sensitive (RFC 7643 says userName is not case-exact).
    assert_eq!(find(&client, &scimmy, "ALICE").await["totalResults"], 0);

    let resp = client.post(scimmy.url("/Users")).json(&user("alice")).send().await.unwrap();
    assert_eq!(resp.status(), 409);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["scimType"], "uniqueness", "{err}");

    let resp = reqwest::Client::new().get(scimmy.url("/Users")).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn a_create_whose_answer_was_reset_away_happened_on_the_server() {
    let scimmy = Scimmy::start();
    let client = scimmy.client();
    // Seed 1 resets its first request after forwarding it (see the proxy's log assertion).
    let proxy =
        FaultProxy::start(&scimmy.origin(), &["--reset", "1", "--seed", "1", "--only-methods", "POST"]);
    let through_proxy = proxy.url("/scim/v2/Users");

    let mut lost = None;
    for i in 0..10 {
        let user_name = format!("bob{i}");
        let err = client.post(&through_proxy).json(&user(&user_name)).send().await.unwrap_err();
        assert!(!err.is_status(), "{err}");
        let entry = proxy.log().pop().unwrap();
        if entry["fault"] == "reset_after" {
            assert_eq!(entry["status"], 201, "scimmy created it");
            lost = Some(user_name);
            break;
        }
        assert_eq!(entry["fault"], "reset_before");
    }
    let user_name = lost.expect("a reset after forwarding within 10 requests");
    assert_eq!(find(&client, &scimmy, &user_name).await["totalResults"], 1);
    // The retry a naive client would send is refused: the create already happened.
    let resp = client.post(scimmy.url("/Users")).json(&user(&user_name)).send().await.unwrap();
    assert_eq!(resp.status(), 409);
}

//! The initial-provision scenario against a second, independent SCIM implementation (scimmy on
//! express), to show the client is not tuned to one server.

use crate::support;

use serde_json::Value;
use std::collections::BTreeMap;
use support::scimmy::Scimmy;
use support::site::Site;

const NINJA: &str = "urn:ietf:params:scim:schemas:extension:ninjaone:2.0:User";

#[test]
fn initial_provision_from_a_slapd_export_against_scimmy() {
    let scimmy = Scimmy::start();
    let export = support::slapd_export(&support::test_data("slapd/directory.ldif"));
    let mapping = r#"
[[mapping.group_assignments]]
group = "technicians"
set = { userType = "technician" }
"#;
    let site = Site::with_url(&scimmy.base_url, &scimmy.token, "", mapping);
    site.write_source(&std::fs::read_to_string(export.slapcat()).unwrap());
    let plan: Value = serde_json::from_str(&site.scimsync(&["plan", "--format", "json"]).stdout).unwrap();
    let run = site.sync_ok();
    assert!(run.stdout.contains(" 0 failed"), "{run}");

    let rt = support::rt();
    rt.block_on(async {
        let client = scimmy.client();
        let get = |path: &str| {
            let req = client.get(scimmy.url(path));
            async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
        };
        let users: BTreeMap<String, Value> = get("/Users?count=1000").await["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| (u["userName"].as_str().unwrap().to_owned(), u.clone()))
            .collect();
        assert_eq!(users.len() as u64, plan["summary"]["create_user"].as_u64().unwrap());
        assert_eq!(users["jmueller@example.com"][NINJA]["userType"], "technician");
        assert_eq!(users["bjones@example.com"][NINJA]["userType"], "endUser");
        assert_eq!(users["jmueller@example.com"]["name"]["givenName"], "Jürgen");
        let groups = get("/Groups?count=100").await;
        let groups = groups["Resources"].as_array().unwrap();
        assert_eq!(groups.len() as u64, plan["summary"]["create_group"].as_u64().unwrap());
        let tech = groups.iter().find(|g| g["displayName"] == "technicians").unwrap();
        assert_eq!(tech["members"].as_array().unwrap().len(), 6);
    });
    let again = site.sync_ok();
    assert!(again.stdout.contains(": target confirmed 0 of 0 operations; 0 failed"), "{again}");
}

//! `scimsync check` against real servers: it prints what the server declares and serves, tries
//! the read paths scimsync needs, says "works" only where an answer proved it, and recommends
//! the dialect settings the declarations justify. (The judgement of a server that ignores
//! filters and lists everyone, which no server here does, is unit-tested on recorded answers
//! in `src/cli/check/judge/tests.rs`.)

use crate::support;

use serde_json::json;
use support::rt;
use support::scim_server::{Raw, ScimServer};
use support::scimmy::Scimmy;
use support::site::{person, Site};

/// A user and a group in the target, so that a filtered lookup that answers none proves the
/// filter was honoured.
async fn populate(raw: &Raw) {
    let user =
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "zed@example.com"});
    let (status, doc) = raw.post("/Users", &user).await;
    assert_eq!(status, 201, "{doc}");
    let group =
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "existing"});
    let (status, doc) = raw.post("/Groups", &group).await;
    assert_eq!(status, 201, "{doc}");
}

fn check(site: &Site) -> support::site::Run {
    site.write_source(&person("ann", "Ann", "Lee", 1, &[]));
    let run = site.scimsync(&["check"]);
    assert_eq!(run.code, Some(0), "{run}");
    run
}

fn assert_lines(out: &str, lines: &[&str]) {
    for line in lines {
        assert!(out.lines().any(|l| l == *line), "no line {line:?} in:\n{out}");
    }
}

#[test]
fn check_prints_what_scim2_server_declares_and_proves_its_filters() {
    let site = Site::new(ScimServer::shared(), "", "");
    rt().block_on(populate(&site.raw()));
    let run = check(&site);
    assert_lines(
        &run.stdout,
        &[
            "target: ServiceProviderConfig read; the server declares:",
            "  patch                  supported",
            "  bulk                   supported, maxOperations 1000, maxPayloadSize 1048576",
            "  filter                 supported, maxResults 1000",
            "  changePassword         supported",
            "  sort                   supported",
            "  etag                   supported",
            "  pagination             not declared (index paging, RFC 7644 §3.4.2.4)",
            "  authenticationSchemes  bearer_token (oauthbearertoken)",
            "  User schema: name.formatted optional, emails.type present, phoneNumbers.type present",
            "  Group schema: members optional, members.$ref optional",
            "target: GET /Users?startIndex=1&count=1 (credentials accepted): 1 of 1 user: count honoured, totalResults present",
            "[target.dialect]",
            "update = \"patch\"             # patch.supported: true",
            "name_formatted = false       # name.formatted is optional in the User schema",
            "verify_writes = true         # etag.supported: true: a read-back shows whether a write took",
        ],
    );
    assert!(run.stdout.contains("target: /Schemas serves 4: urn:ietf:params:scim:schemas:core:2.0:User, "));
    assert!(run.stdout.contains(
        "target: /ResourceTypes: User at /Users, extensions urn:ietf:params:scim:schemas:extension:enterprise:2.0:User (optional), "
    ));
    for what in [
        "user lookup works: GET /Users?filter=userName eq ",
        "group lookup works: GET /Groups?filter=displayName eq ",
    ] {
        assert!(run.stdout.contains(&format!("target: filtered {what}")), "{run}");
    }
    assert!(!run.stdout.contains("warning:"), "{run}");
}

#[test]
fn check_prints_what_scimmy_declares() {
    let scimmy = Scimmy::start();
    let site = Site::with_url(&scimmy.base_url, &scimmy.token, "", "");
    let raw = Raw::new(&scimmy.base_url, &scimmy.token);
    rt().block_on(populate(&raw));
    let run = check(&site);
    assert_lines(
        &run.stdout,
        &[
            "  filter                 supported, maxResults 200",
            "  changePassword         not supported",
            "  etag                   not supported",
            "  authenticationSchemes  OAuth Bearer Token (oauthbearertoken)",
            "target: /Schemas serves 3: urn:ietf:params:scim:schemas:core:2.0:User, urn:ietf:params:scim:schemas:core:2.0:Group, urn:ietf:params:scim:schemas:extension:ninjaone:2.0:User",
            "# verify_writes: undecided   # whether PATCH answers carry the resource shows only in a write",
        ],
    );
    assert!(run.stdout.contains("target: filtered user lookup works: "), "{run}");
}

#[test]
fn on_an_empty_target_check_does_not_claim_the_filter_works() {
    let site = Site::new(ScimServer::shared(), "", "");
    let run = check(&site);
    assert!(!run.stdout.contains("works"), "{run}");
    assert!(
        run.stdout.contains("the target has no users yet, so whether it filters cannot be told"),
        "{run}"
    );
    assert!(run.stdout.contains("(credentials accepted)"), "{run}");
}

#[test]
fn check_advises_put_where_patch_is_not_declared_and_warns_that_filters_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spc = dir.path().join("spc.json");
    let doc = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": false},
        "bulk": {"supported": false},
        "filter": {"supported": false},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": false},
        "pagination": {"cursor": true, "index": true, "defaultPaginationMethod": "index", "maxPageSize": 1000},
    });
    std::fs::write(&spc, doc.to_string()).unwrap();
    let server = ScimServer::start_with(&["--service-provider-config".as_ref(), spc.as_os_str()]);
    let site = Site::new(&server, "", "");
    rt().block_on(populate(&site.raw()));
    let run = check(&site);
    assert_lines(
        &run.stdout,
        &[
            "  patch                  not supported",
            "  filter                 not supported",
            "  pagination             cursor yes, index yes, defaultPaginationMethod index, maxPageSize 1000",
            "update = \"put\"               # patch.supported: false",
            "members = \"put\"              # patch.supported: false: members change with the group's PUT",
        ],
    );
    // scim2-server keeps its declaration: with filter.supported false it refuses filters (501).
    assert!(
        run.stdout.contains(
            "was refused (501: Filtering is not supported) (its ServiceProviderConfig declares \
             filter.supported: false): adoption after a 409 and recovery after an unanswered create \
             look users up by userName this way, and cannot find an existing user"
        ),
        "{run}"
    );
    assert!(!run.stdout.contains("works"), "{run}");
}

/// The `[target.dialect]` block `check --write-probe` ends with, as `(key, value)` lines.
fn probed(out: &str) -> Vec<&str> {
    let start = out.find("the dialect that worked in the write probe:").expect(out);
    out[start..].lines().skip(2).filter(|l| l.contains(" = ")).collect()
}

#[test]
fn the_write_probe_finds_the_rfc_forms_on_scim2_server_and_leaves_nothing() {
    let site = Site::new(ScimServer::shared(), "profile = \"generic\"", "");
    rt().block_on(populate(&site.raw()));
    site.write_source(&person("ann", "Ann", "Lee", 1, &[]));
    let run = site.scimsync(&["check", "--write-probe"]);
    assert_eq!(run.code, Some(0), "{run}");
    let dialect = probed(&run.stdout);
    for want in ["update = \"patch\"", "members = \"filter\"", "booleans = \"json\"", "op_case = \"lower\""] {
        assert!(dialect.contains(&want), "{want} not in {dialect:?}\n{run}");
    }
    assert!(!run.stdout.contains("could not delete"), "{run}");
    rt().block_on(async {
        let raw = site.raw();
        assert_eq!(raw.count("Users", "userName sw \"scimsync-probe-\"").await, 0, "the probe user is gone");
        assert_eq!(
            raw.count("Groups", "displayName sw \"scimsync-probe-\"").await,
            0,
            "the probe group is gone"
        );
        assert_eq!(raw.count("Users", "userName eq \"zed@example.com\"").await, 1, "others untouched");
    });
}

#[test]
fn the_write_probe_finds_put_and_value_list_on_django_scim2() {
    let server = support::django_scim::DjangoScim::start();
    let site =
        Site::with_url(&format!("{}/scim/v2", server.origin()), &server.token, "profile = \"generic\"", "");
    site.write_source(&person("ann", "Ann", "Lee", 1, &[]));
    let run = site.scimsync(&["check", "--write-probe"]);
    assert_eq!(run.code, Some(0), "{run}");
    let dialect = probed(&run.stdout);
    for want in ["update = \"put\"", "members = \"value-list\"", "booleans = \"json\""] {
        assert!(dialect.contains(&want), "{want} not in {dialect:?}\n{run}");
    }
    assert!(run.stdout.contains("write probe: update a user: works (update = \"put\""), "{run}");
}

//! A stand-in SCIM source (an in-test HTTP server on 127.0.0.1:0), used only to produce the broken paging a real server does not give; the target is a real scim2-server tenant.
//!
//! The stand-in serves 150 users with basic auth, healthy at first. Once a sync has made them
//! managed, it breaks: a `totalResults` that disagrees with the resources, a page that keeps
//! failing with 500, an id returned twice, a total that moves between pages, a cut JSON body,
//! a refused password. Each time `scimsync sync` must exit 1 with the reason, deactivate
//! nothing in the target, and record the run as failed.

use crate::support;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use support::rt;
use support::scim_server::ScimServer;
use support::site::Site;

const USERS: usize = 150;
const PAGE: usize = 50;
const PASSWORD: &str = "stand-in-pa55word";
/// `Basic base64("sync:stand-in-pa55word")`.
const AUTHORIZATION: &str = "Basic c3luYzpzdGFuZC1pbi1wYTU1d29yZA==";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    /// `totalResults` is 10 lower than the resources the pages hold.
    TotalTooLow,
    /// The third page (startIndex 101) answers 500, every time.
    Page3Fails,
    /// The second page starts one resource early, so it repeats the first page's last id.
    DuplicateId,
    /// From the second page on, `totalResults` is one higher.
    TotalMoves,
    /// The second page's body stops halfway (a complete HTTP answer, incomplete JSON).
    CutJson,
}

#[derive(Default)]
struct State {
    fault: Option<Fault>,
    /// The query of every `/Users` request, in order.
    user_queries: Vec<String>,
}

struct StandIn {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl StandIn {
    fn start() -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the stand-in");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State { fault: Some(Fault::None), ..Default::default() }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        StandIn { port, state }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v2", self.port)
    }

    fn break_with(&self, fault: Fault) {
        let mut s = self.state.lock().unwrap();
        s.fault = Some(fault);
        s.user_queries.clear();
    }

    fn user_queries(&self) -> Vec<String> {
        self.state.lock().unwrap().user_queries.clone()
    }
}

fn user(i: usize) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": format!("src-{i:04}"),
        "userName": format!("standin{i:03}@example.com"),
        "name": {"givenName": "Stand", "familyName": format!("In{i}")},
        "emails": [{"value": format!("standin{i:03}@example.com"), "type": "work", "primary": true}],
        "active": true,
    })
}

fn list(total: usize, start: usize, items: Vec<Value>) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": items.len(),
        "Resources": items,
    })
}

/// The answer to one GET: status and body.
fn answer(path: &str, query: &str, authorization: Option<&str>, state: &Mutex<State>) -> (u16, String) {
    if authorization != Some(AUTHORIZATION) {
        return (401, json!({"status": "401", "detail": "bad credentials"}).to_string());
    }
    let param = |name: &str| {
        query.split('&').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse::<usize>().ok())
    };
    let fault = {
        let mut s = state.lock().unwrap();
        if path == "/v2/Users" {
            s.user_queries.push(query.to_owned());
        }
        s.fault.unwrap_or(Fault::None)
    };
    match path {
        "/v2/ServiceProviderConfig" => {
            let spc = json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
                "patch": {"supported": false},
                "filter": {"supported": true, "maxResults": 1000},
                "pagination": {"index": true, "cursor": false},
            });
            (200, spc.to_string())
        }
        "/v2/Users" => {
            let start = param("startIndex").unwrap_or(1).max(1);
            let count = param("count").unwrap_or(PAGE);
            let first = match fault {
                Fault::DuplicateId if start == PAGE + 1 => start - 2,
                _ => start - 1,
            };
            let items: Vec<Value> = (first..(first + count).min(USERS)).map(user).collect();
            let total = match fault {
                Fault::TotalTooLow => USERS - 10,
                Fault::TotalMoves if start > 1 => USERS + 1,
                _ => USERS,
            };
            match fault {
                Fault::Page3Fails if start > 2 * PAGE => {
                    (500, json!({"status": "500", "detail": "the directory backend timed out"}).to_string())
                }
                Fault::CutJson if start == PAGE + 1 => {
                    let body = list(total, start, items).to_string();
                    (200, body[..body.len() / 2].to_owned())
                }
                _ => (200, list(total, start, items).to_string()),
            }
        }
        "/v2/Groups" => {
            let members: Vec<Value> = (0..10).map(|i| json!({"value": format!("src-{i:04}")})).collect();
            let group = json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "id": "grp-1",
                "displayName": "stand-ins",
                "members": members,
            });
            (200, list(1, 1, vec![group]).to_string())
        }
        _ => (404, json!({"status": "404", "detail": "no such endpoint"}).to_string()),
    }
}

/// One request per connection: read the head, answer, close.
fn serve(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut authorization = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                authorization = Some(value.trim().to_owned());
            }
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let (status, body) = answer(path, query, authorization.as_deref(), state);
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    let mut stream = stream;
    let _ = stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(body.as_bytes()));
}

/// The target's users that are active.
fn active_in_target(site: &Site) -> usize {
    rt().block_on(async {
        let (status, doc) = site.raw().get("/Users?count=1000").await;
        assert_eq!(status, 200, "{doc}");
        doc["Resources"].as_array().into_iter().flatten().filter(|u| u["active"] == true).count()
    })
}

/// A site reading the stand-in, synced once while it is healthy: 150 managed users.
fn managed_site(standin: &StandIn) -> Site {
    let site = Site::new(ScimServer::shared(), "", "");
    let password = site.write_secret("source.password", PASSWORD);
    site.set_source(&format!(
        "kind = \"scim\"\nurl = \"{}\"\nusername = \"sync\"\npassword_file = {password}\n\
         page_size = {PAGE}\nmax_retries = 1\n",
        standin.url()
    ));
    let run = site.sync_ok();
    assert!(run.stdout.contains(&format!("({USERS} users created")), "{run}");
    assert_eq!(active_in_target(&site), USERS);
    site
}

/// Breaks the stand-in with `fault`: `sync` (and `plan`) must fail saying `reason`, and the
/// target and the snapshot must stay as they were.
fn sync_fails_and_changes_nothing(fault: Fault, reason: &str) -> StandIn {
    let standin = StandIn::start();
    let site = managed_site(&standin);
    standin.break_with(fault);
    let run = site.scimsync(&["sync"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("reading the source failed; nothing was planned or applied"), "{run}");
    assert!(run.stderr.contains(reason), "the reason {reason:?} is missing:\n{run}");
    assert!(!run.stderr.contains(PASSWORD), "{run}");
    assert_eq!(active_in_target(&site), USERS, "nothing may be deactivated: {run}");

    let status = site.scimsync(&["status", "--format", "json"]);
    let runs = serde_json::from_str::<Value>(&status.stdout).unwrap()["runs"].clone();
    assert_eq!(runs[0]["outcome"], "failed", "{status}");
    assert!(runs[0]["error"].as_str().unwrap_or("").contains(reason), "{status}");

    let plan = site.scimsync(&["plan"]);
    assert_eq!(plan.code, Some(1), "{plan}");
    assert!(plan.stderr.contains(reason), "{plan}");
    standin
}

#[test]
fn a_total_that_disagrees_with_the_resources_aborts_the_run() {
    sync_fails_and_changes_nothing(
        Fault::TotalTooLow,
        "/Users says totalResults 140 but returned 150 resources",
    );
}

#[test]
fn a_page_that_keeps_failing_aborts_the_run_after_its_retries() {
    let standin = sync_fails_and_changes_nothing(
        Fault::Page3Fails,
        "/Users page 3 (startIndex 101) failed after 2 attempts; last: HTTP 500: the directory backend timed out",
    );
    // Per run: pages 1 and 2, then page 3 tried twice (source.max_retries = 1); sync, then plan.
    let page3 = standin.user_queries().iter().filter(|q| q.contains("startIndex=101")).count();
    assert_eq!(page3, 4, "{:?}", standin.user_queries());
}

#[test]
fn an_id_seen_twice_aborts_the_run() {
    sync_fails_and_changes_nothing(
        Fault::DuplicateId,
        "/Users returned the resource src-0049 twice (pages 1 and 2)",
    );
}

#[test]
fn a_total_that_moves_during_the_read_aborts_the_run() {
    sync_fails_and_changes_nothing(Fault::TotalMoves, "totalResults of /Users moved from 150 to 151");
}

#[test]
fn a_cut_body_aborts_the_run() {
    sync_fails_and_changes_nothing(
        Fault::CutJson,
        "/Users page 2 (startIndex 51): the answer (200 OK) is not complete JSON",
    );
}

#[test]
fn a_refused_password_stops_the_run_and_says_where_it_is_read_from() {
    let standin = StandIn::start();
    let site = managed_site(&standin);
    site.write_secret("source.password", "an-old-password");
    let run = site.scimsync(&["sync"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr.contains("the SCIM source refused basic auth as \"sync\" (401: bad credentials)"),
        "{run}"
    );
    assert!(run.stderr.contains("renew the password in source.password_file"), "{run}");
    assert!(!run.stderr.contains("an-old-password"), "{run}");
    assert_eq!(active_in_target(&site), USERS);
}

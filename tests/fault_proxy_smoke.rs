//! The fault proxy (`tests/support/fault_proxy.py`) does what the tests that use it rely on:
//! each fault, at rate 1, happens as described, keep-alive connections are served, the seed makes
//! the faults repeatable and the log tells what happened. The upstream is Python's `http.server`
//! serving a directory, plus an echo for POST that remembers what reached it; the modes that
//! imitate a server implementing less of RFC 7644 (501 on some PATCH paths, writes that change
//! nothing, a duplicate answered 500) are proved in front of a real scim2-server tenant.

use crate::support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};
use support::fault_proxy::{spawn_listening, FaultProxy};
use support::scim_server::{Raw, ScimServer};
use tempfile::TempDir;

/// `http.server` serving `argv[1]`; POST/PATCH answer 201 with a JSON echo of the request and
/// are remembered; `GET /_received` lists the remembered bodies.
const UPSTREAM: &str = r#"
import http.server, json, sys, threading
received, lock = [], threading.Lock()
class H(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        with lock:
            received.append(body)
        self.reply(201, {"method": self.command, "path": self.path, "body": body,
                         "authorization": self.headers.get("Authorization")})
    do_PATCH = do_POST
    def do_GET(self):
        if self.path == "/_received":
            with lock:
                return self.reply(200, list(received))
        super().do_GET()
    def reply(self, status, value):
        out = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: H(*a, directory=sys.argv[1]))
print("LISTENING", server.server_address[1], flush=True)
server.serve_forever()
"#;

const HELLO_LEN: usize = 1000;

struct Upstream {
    url: String,
    child: std::process::Child,
    _dir: TempDir,
}

impl Upstream {
    fn start() -> Upstream {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::write(dir.path().join("hello.txt"), "h".repeat(HELLO_LEN)).expect("write hello.txt");
        let mut cmd = Command::new("python3");
        cmd.arg("-c").arg(UPSTREAM).arg(dir.path());
        let (child, port) = spawn_listening(cmd, "the test upstream (python3 http.server)");
        Upstream { url: format!("http://127.0.0.1:{port}"), child, _dir: dir }
    }

    /// The bodies of the POST/PATCH requests that reached the upstream.
    fn received(&self) -> Vec<String> {
        let port = self.url.rsplit(':').next().unwrap().parse().unwrap();
        let resp = Conn::open(port).get("/_received").expect("GET /_received from the upstream");
        serde_json::from_slice(&resp.body).expect("a JSON list")
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Whether the body was as long as its Content-Length.
    complete: bool,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One client connection, speaking HTTP/1.1 by hand so every byte (or reset) is visible.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    fn open(port: u16) -> Conn {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the proxy");
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Conn { reader: BufReader::new(stream.try_clone().unwrap()), writer: stream }
    }

    fn get(&mut self, path: &str) -> io::Result<Resp> {
        self.request("GET", path, &[], None)
    }

    fn post(&mut self, path: &str, body: &str) -> io::Result<Resp> {
        self.request("POST", path, &[], Some(body))
    }

    fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> io::Result<Resp> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (name, value) in headers {
            req += &format!("{name}: {value}\r\n");
        }
        if let Some(body) = body {
            req += &format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len());
        }
        req += "\r\n";
        req += body.unwrap_or("");
        self.writer.write_all(req.as_bytes())?;

        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(ErrorKind::UnexpectedEof, "closed before a status line"));
        }
        let status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("an HTTP status line");
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (name, value) = l.split_once(':').expect("a header line");
            headers.push((name.to_string(), value.trim().to_string()));
        }
        let mut resp = Resp { status, headers, body: Vec::new(), complete: true };
        let len: u64 = resp.header("Content-Length").map_or(0, |v| v.parse().unwrap());
        (&mut self.reader).take(len).read_to_end(&mut resp.body)?;
        resp.complete = resp.body.len() as u64 == len;
        Ok(resp)
    }
}

fn faults(log: &[Value]) -> Vec<&str> {
    log.iter().map(|e| e["fault"].as_str().unwrap()).collect()
}

#[test]
fn forwards_requests_on_a_kept_alive_connection_and_keeps_the_token_out_of_the_log() {
    let up = Upstream::start();
    let proxy = FaultProxy::start(&up.url, &[]);
    let mut conn = Conn::open(proxy.port());

    let hello = conn.get("/hello.txt").unwrap();
    assert_eq!((hello.status, hello.body.len(), hello.complete), (200, HELLO_LEN, true));
    let auth = [("Authorization", "Bearer very-secret-token")];
    let echo = conn.request("POST", "/scim/v2/Users?x=1", &auth, Some(r#"{"userName":"a"}"#)).unwrap();
    assert_eq!(echo.status, 201);
    let echo: Value = serde_json::from_slice(&echo.body).unwrap();
    assert_eq!(echo["path"], "/scim/v2/Users?x=1");
    assert_eq!(echo["body"], r#"{"userName":"a"}"#);
    assert_eq!(echo["authorization"], "Bearer very-secret-token", "the proxy forwards the token");
    assert_eq!(conn.get("/hello.txt").unwrap().status, 200);

    let log = proxy.log();
    assert_eq!(faults(&log), ["none"; 3]);
    assert!(log.iter().all(|e| e["conn"] == log[0]["conn"]), "one client connection: {log:?}");
    assert_eq!(log[1]["method"], "POST");
    assert_eq!((log[1]["path"].as_str(), log[1]["query"].as_str()), (Some("/scim/v2/Users"), Some("x=1")));
    assert_eq!(log[1]["status"], 201);
    let text = std::fs::read_to_string(proxy.log_path()).unwrap();
    assert!(!text.contains("very-secret-token"), "the token is in the log:\n{text}");
    assert!(!text.to_ascii_lowercase().contains("authorization"), "{text}");
}

#[test]
fn answers_429_with_retry_after_alternately_in_seconds_and_as_a_date() {
    let up = Upstream::start();
    let proxy = FaultProxy::start(&up.url, &["--rate429", "1", "--retry-after", "2"]);
    let mut conn = Conn::open(proxy.port());
    let mut values = Vec::new();
    for i in 0..4 {
        let resp = conn.post("/scim/v2/Users", &format!("{{\"n\":{i}}}")).unwrap();
        assert_eq!(resp.status, 429);
        values.push(resp.header("Retry-After").expect("a Retry-After header").to_string());
    }
    assert_eq!((values[0].as_str(), values[2].as_str()), ("2", "2"));
    for date in [&values[1], &values[3]] {
        let at = httpdate::parse_http_date(date).unwrap_or_else(|e| panic!("{date:?} is no HTTP-date: {e}"));
        let ahead = at.duration_since(SystemTime::now()).expect("the date is in the future");
        assert!(ahead <= Duration::from_secs(3), "{date} is {ahead:?} ahead");
    }
    assert!(up.received().is_empty(), "a 429 is not forwarded");

    let log = proxy.log();
    assert_eq!(faults(&log), ["429"; 4]);
    assert_eq!(log[0]["retry_after"], "2");
    assert_eq!(log[0]["retry_after_s"], 2.0);
    assert!(log[0]["since_429"].is_null());
    assert_eq!(log[1]["retry_after"].as_str(), Some(values[1].as_str()));
    let wait = log[1]["retry_after_s"].as_f64().unwrap();
    assert!((2.0..=3.0).contains(&wait), "an HTTP-date asks for 2-3 s, not {wait}");
    let since = log[1]["since_429"].as_f64().unwrap();
    let between = log[1]["time"].as_f64().unwrap() - log[0]["time"].as_f64().unwrap();
    assert!((since - between).abs() < 1e-3, "since_429 {since} vs {between}");
    assert_eq!(log[1]["prev_retry_after_s"], 2.0);
    assert!(log[1]["since_429_same"].is_null(), "the bodies differ, so the requests do");
}

#[test]
fn answers_500_502_and_503_without_forwarding() {
    let up = Upstream::start();
    let proxy = FaultProxy::start(&up.url, &["--rate5xx", "1", "--seed", "3"]);
    let mut conn = Conn::open(proxy.port());
    let mut statuses = BTreeSet::new();
    let mut with_retry_after = 0;
    for i in 0..30 {
        let resp = conn.post("/scim/v2/Users", &format!("{{\"n\":{i}}}")).unwrap();
        statuses.insert(resp.status);
        if resp.header("Retry-After").is_some() {
            assert_eq!(resp.status, 503, "only a 503 carries Retry-After");
            with_retry_after += 1;
        }
        let body: Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(body["status"], resp.status.to_string(), "a SCIM error body");
    }
    assert_eq!(statuses, BTreeSet::from([500, 502, 503]));
    assert!(with_retry_after > 0, "some 503s carry Retry-After");
    assert!(up.received().is_empty());
    assert_eq!(faults(&proxy.log()), ["5xx"; 30]);
}

#[test]
fn resets_connections_before_and_after_forwarding() {
    let up = Upstream::start();
    let proxy = FaultProxy::start(&up.url, &["--reset", "1", "--seed", "1"]);
    for i in 0..20 {
        // A reset connection is dead: each request needs a new one.
        let err = Conn::open(proxy.port()).post("/scim/v2/Users", &format!("n={i}")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "request {i}: {err}");
    }
    let log = proxy.log();
    let mut after = BTreeSet::new();
    for (i, entry) in log.iter().enumerate() {
        match entry["fault"].as_str().unwrap() {
            "reset_before" => assert!(entry["status"].is_null()),
            "reset_after" => {
                assert_eq!(entry["status"], 201, "the upstream's answer, never sent");
                assert_eq!(entry["sent_bytes"], 0);
                after.insert(i);
            }
            other => panic!("request {i}: fault {other}"),
        }
    }
    assert!(!after.is_empty() && after.len() < 20, "both kinds happen: {:?}", faults(&log));
    // Requests are sequential, so log order is request order.
    let expected: BTreeSet<String> = after.iter().map(|i| format!("n={i}")).collect();
    let received: BTreeSet<String> = up.received().into_iter().collect();
    assert_eq!(received, expected, "exactly the requests reset after forwarding reached the upstream");
}

#[test]
fn stalls_then_answers_normally() {
    let up = Upstream::start();
    let proxy = FaultProxy::start(&up.url, &["--stall", "1", "--stall-seconds", "1"]);
    let mut conn = Conn::open(proxy.port());
    let start = Instant::now();
    let resp = conn.get("/hello.txt").unwrap();
    let took = start.elapsed();
    assert_eq!((resp.status, resp.body.len(), resp.complete), (200, HELLO_LEN, true));
    assert!(took >= Duration::from_secs(1), "answered after {took:?}");
    assert_eq!(conn.get("/hello.txt").unwrap().status, 200, "the connection is still usable");
    assert_eq!(faults(&proxy.log()), ["stall"; 2]);
}

#[test]
fn truncates_bodies_to_half_their_content_length_and_closes() {
    let up = Upstream::start();
    let proxy = FaultProxy::start(&up.url, &["--truncate", "1"]);
    let mut conn = Conn::open(proxy.port());
    let resp = conn.get("/hello.txt").unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("Content-Length"), Some("1000"));
    assert_eq!((resp.body.len(), resp.complete), (HELLO_LEN / 2, false));
    let log = proxy.log();
    assert_eq!(faults(&log), ["truncate"]);
    assert_eq!((log[0]["body_bytes"].as_u64(), log[0]["sent_bytes"].as_u64()), (Some(1000), Some(500)));
}

#[test]
fn only_methods_limits_the_faults_to_those_methods() {
    let up = Upstream::start();
    let proxy = FaultProxy::start(&up.url, &["--rate429", "1", "--only-methods", "POST,PATCH"]);
    let mut conn = Conn::open(proxy.port());
    assert_eq!(conn.get("/hello.txt").unwrap().status, 200);
    assert_eq!(conn.post("/scim/v2/Users", "{}").unwrap().status, 429);
    assert_eq!(conn.request("PATCH", "/scim/v2/Users/1", &[], Some("{}")).unwrap().status, 429);
    assert_eq!(conn.get("/hello.txt").unwrap().status, 200);
    assert_eq!(faults(&proxy.log()), ["none", "429", "429", "none"]);
}

#[test]
fn answers_401_to_everything_after_n_forwarded_requests() {
    let up = Upstream::start();
    let proxy = FaultProxy::start(&up.url, &["--fail-auth-after", "2"]);
    let mut conn = Conn::open(proxy.port());
    let statuses: Vec<u16> = (0..4).map(|_| conn.get("/hello.txt").unwrap().status).collect();
    assert_eq!(statuses, [200, 200, 401, 401]);
    let resp = conn.post("/scim/v2/Users", "{}").unwrap();
    assert_eq!(resp.status, 401);
    assert!(resp.header("WWW-Authenticate").is_some_and(|v| v.starts_with("Bearer")));
    assert!(up.received().is_empty());
    assert_eq!(faults(&proxy.log()), ["none", "none", "auth", "auth", "auth"]);
}

#[test]
fn the_same_seed_gives_the_same_faults() {
    let up = Upstream::start();
    let args = ["--seed", "42", "--rate429", "0.3", "--rate5xx", "0.3"];
    let run = || {
        let proxy = FaultProxy::start(&up.url, &args);
        let mut conn = Conn::open(proxy.port());
        let statuses: Vec<u16> = (0..20).map(|_| conn.get("/hello.txt").unwrap().status).collect();
        (statuses, faults(&proxy.log()).into_iter().map(str::to_owned).collect::<Vec<_>>())
    };
    let (first, first_faults) = run();
    assert_eq!(run(), (first.clone(), first_faults.clone()));
    let kinds: BTreeSet<&str> = first_faults.iter().map(String::as_str).collect();
    assert_eq!(kinds, BTreeSet::from(["429", "5xx", "none"]), "{first:?}");
}

#[tokio::test]
async fn reqwest_keeps_its_connection_alive_through_the_proxy() {
    let up = Upstream::start();
    let proxy = FaultProxy::start(&up.url, &[]);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    for _ in 0..5 {
        let resp = client.get(proxy.url("/hello.txt")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.bytes().await.unwrap().len(), HELLO_LEN);
    }
    let log = proxy.log();
    assert_eq!(log.len(), 5);
    assert!(log.iter().all(|e| e["conn"] == log[0]["conn"]), "reqwest reused one connection: {log:?}");
}

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// A fresh scim2-server tenant and a proxy in front of it started with `args`: `(direct access,
/// access through the proxy, the proxy)`.
fn scim_behind_proxy(args: &[&str]) -> (Raw, Raw, FaultProxy) {
    let (base, token) = ScimServer::shared().tenant();
    let proxy = FaultProxy::start(&base, args);
    (Raw::new(&base, &token), Raw::new(&proxy.base_url(), &token), proxy)
}

fn patch_op(ops: Value) -> Value {
    serde_json::json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops })
}

/// Creates a user (directly on the upstream) with a title; returns its id.
async fn create_user(raw: &Raw, user_name: &str) -> String {
    let body = serde_json::json!({ "schemas": [USER], "userName": user_name, "title": "Engineer" });
    let (status, doc) = raw.post("/Users", &body).await;
    assert_eq!(status, 201, "{doc}");
    doc["id"].as_str().unwrap().to_owned()
}

/// Creates a group with `members` (directly on the upstream); returns its id.
async fn create_group(raw: &Raw, name: &str, members: &[&str]) -> String {
    let members: Vec<Value> = members.iter().map(|id| serde_json::json!({ "value": id })).collect();
    let body = serde_json::json!({ "schemas": [GROUP], "displayName": name, "members": members });
    let (status, doc) = raw.post("/Groups", &body).await;
    assert_eq!(status, 201, "{doc}");
    doc["id"].as_str().unwrap().to_owned()
}

fn member_values(group: &Value) -> BTreeSet<String> {
    group["members"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["value"].as_str().unwrap().to_owned())
        .collect()
}

/// `(status, body)` of `method url` with a JSON body and the token (what `Raw` has no method for).
async fn send(method: reqwest::Method, url: &str, token: &str, body: &Value) -> (u16, Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let resp = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(token)
        .header("content-type", "application/scim+json")
        .header("if-match", "W/\"stale\"")
        .body(body.to_string())
        .send()
        .await
        .expect("a request through the proxy");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn empty_501() -> Value {
    serde_json::json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "501", "detail": "" })
}

#[test]
fn reject_patch_answers_501_to_matching_paths_and_forwards_the_rest() {
    let (direct, proxied, proxy) =
        scim_behind_proxy(&["--reject-patch", r"^title$", "--reject-patch", "remove-members-filter"]);
    support::rt().block_on(async {
        let ann = create_user(&direct, "ann").await;
        let ben = create_user(&direct, "ben").await;
        let staff = create_group(&direct, "staff", &[&ann, &ben]).await;
        let user = format!("/Users/{ann}");
        let group = format!("/Groups/{staff}");

        // One matching operation among others rejects the whole request.
        let title = patch_op(serde_json::json!([
            { "op": "replace", "path": "name.givenName", "value": "Ann" },
            { "op": "replace", "path": "title", "value": "Boss" },
        ]));
        assert_eq!(proxied.patch(&user, &title).await, (501, empty_501()));
        let given =
            patch_op(serde_json::json!([{ "op": "replace", "path": "name.givenName", "value": "Ann" }]));
        // scim2-server answers a PATCH 204.
        assert_eq!(proxied.patch(&user, &given).await.0, 204, "a path that does not match is forwarded");
        let now = direct.resource(&user).await;
        assert_eq!(
            (now["title"].as_str(), now["name"]["givenName"].as_str()),
            (Some("Engineer"), Some("Ann"))
        );

        let by_filter =
            patch_op(serde_json::json!([{ "op": "Remove", "path": format!("members[value eq \"{ben}\"]") }]));
        assert_eq!(proxied.patch(&group, &by_filter).await, (501, empty_501()));
        assert_eq!(member_values(&direct.resource(&group).await), BTreeSet::from([ann.clone(), ben.clone()]));
        // An `add` of members is no removal by filter: forwarded.
        let add =
            patch_op(serde_json::json!([{ "op": "add", "path": "members", "value": [{ "value": ben }] }]));
        assert_eq!(proxied.patch(&group, &add).await.0, 204);
    });
    let log = proxy.log();
    assert_eq!(faults(&log), ["reject_patch", "none", "reject_patch", "none"]);
    assert_eq!(log[0]["status"], 501);
}

#[test]
fn reject_patch_all_answers_501_to_every_patch_only() {
    let (direct, proxied, proxy) = scim_behind_proxy(&["--reject-patch-all"]);
    support::rt().block_on(async {
        let body = serde_json::json!({ "schemas": [USER], "userName": "cat", "active": true });
        let (status, doc) = proxied.post("/Users", &body).await;
        assert_eq!(status, 201, "a POST is forwarded: {doc}");
        let user = format!("/Users/{}", doc["id"].as_str().unwrap());
        let op = patch_op(serde_json::json!([{ "op": "replace", "path": "active", "value": false }]));
        assert_eq!(proxied.patch(&user, &op).await, (501, empty_501()));
        assert_eq!(proxied.get(&user).await.0, 200);
        assert_eq!(direct.resource(&user).await["active"], true, "the PATCH was not forwarded");
    });
    assert_eq!(faults(&proxy.log()), ["none", "reject_patch", "none"]);
}

#[test]
fn noop_writes_answer_the_unchanged_resource_without_forwarding_the_write() {
    let (direct, proxied, proxy) = scim_behind_proxy(&["--noop-writes-matching", r"^/Users/"]);
    let token = ScimServer::shared().token().to_owned();
    support::rt().block_on(async {
        let ann = create_user(&direct, "ann").await;
        let user = format!("/Users/{ann}");
        let op = patch_op(serde_json::json!([{ "op": "replace", "path": "title", "value": "Boss" }]));
        let (status, doc) = proxied.patch(&user, &op).await;
        assert_eq!(
            (status, doc["id"].as_str(), doc["title"].as_str()),
            (200, Some(ann.as_str()), Some("Engineer"))
        );
        // A PUT (with a stale If-Match, which the GET sent instead leaves out).
        let put = serde_json::json!({ "schemas": [USER], "userName": "ann", "title": "Chief" });
        let (status, doc) = send(reqwest::Method::PUT, &proxy.url(&user), &token, &put).await;
        assert_eq!((status, doc["title"].as_str()), (200, Some("Engineer")), "{doc}");
        assert_eq!(direct.resource(&user).await["title"], "Engineer", "neither write reached the upstream");

        // A path that does not match is written.
        let staff = create_group(&direct, "staff", &[]).await;
        let rename =
            patch_op(serde_json::json!([{ "op": "replace", "path": "displayName", "value": "all" }]));
        assert_eq!(proxied.patch(&format!("/Groups/{staff}"), &rename).await.0, 204);
        assert_eq!(direct.resource(&format!("/Groups/{staff}")).await["displayName"], "all");
    });
    let log = proxy.log();
    assert_eq!(faults(&log), ["noop_write", "noop_write", "none"]);
    assert_eq!((log[0]["method"].as_str(), log[0]["upstream_status"].as_u64()), (Some("PATCH"), Some(200)));
    assert_eq!(log[1]["method"], "PUT");
}

#[test]
fn conflict_as_500_turns_a_duplicate_into_an_internal_error() {
    let (direct, proxied, proxy) = scim_behind_proxy(&["--conflict-as-500"]);
    support::rt().block_on(async {
        let body = serde_json::json!({ "schemas": [USER], "userName": "dora" });
        assert_eq!(proxied.post("/Users", &body).await.0, 201);
        let (status, doc) = proxied.post("/Users", &body).await;
        assert_eq!((status, doc["status"].as_str()), (500, Some("500")), "{doc}");
        assert_eq!(direct.count("Users", "userName eq \"dora\"").await, 1);
        // Other errors pass unchanged.
        let (status, _) = proxied.post("/Users", &serde_json::json!({ "schemas": [USER] })).await;
        assert_eq!(status, 400);
    });
    let log = proxy.log();
    assert_eq!(faults(&log), ["none", "conflict_as_500", "none"]);
    assert_eq!((log[1]["status"].as_u64(), log[1]["upstream_status"].as_u64()), (Some(500), Some(409)));
}

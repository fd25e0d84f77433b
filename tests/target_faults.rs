//! The target client's retries, against scim2-server behind a fault-injecting proxy: the
//! faults a real server does not produce on demand (429 with `Retry-After`, 5xx, answers lost
//! or cut after the server acted, slow answers). The server still does the real work.

use crate::support;

use scimsync::model::{Attr, DesiredUser, Profile};
use scimsync::target::{ClientOptions, RetryConfig, TargetClient, TargetError};
use secrecy::SecretString;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use support::scim_server::{target_config, Raw, ScimServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does with one request (one connection: every answer closes it).
#[derive(Clone, Debug)]
enum Fault {
    /// Forward it and pass the answer back.
    Pass,
    /// Answer this without forwarding: status, extra headers, JSON body.
    Answer(u16, Vec<(&'static str, String)>, Value),
    /// Forward it, then close the connection without answering.
    DropAfterForward,
    /// Forward it, then pass back the head and half of the body, and close.
    CutBody,
    /// Forward it, wait, then answer (the client has given up by then).
    Delay(Duration),
}

fn error(status: u16, headers: Vec<(&'static str, String)>) -> Fault {
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": status.to_string(),
        "detail": "injected",
    });
    Fault::Answer(status, headers, body)
}

struct Proxy {
    addr: SocketAddr,
    faults: Arc<Mutex<VecDeque<Fault>>>,
    /// `METHOD /path` of every request seen, in order.
    seen: Arc<Mutex<Vec<String>>>,
    /// The head (request line and headers) of every request seen.
    heads: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    async fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy {
            addr: listener.local_addr().unwrap(),
            faults: Arc::default(),
            seen: Arc::default(),
            heads: Arc::default(),
        };
        let (faults, seen, heads) = (proxy.faults.clone(), proxy.seen.clone(), proxy.heads.clone());
        tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else { return };
                let (faults, seen, heads) = (faults.clone(), seen.clone(), heads.clone());
                tokio::spawn(async move {
                    let _ = serve(conn, upstream, &faults, &seen, &heads).await;
                });
            }
        });
        proxy
    }

    /// Faults for the next requests, in order; requests after them pass.
    fn then(&self, faults: impl IntoIterator<Item = Fault>) {
        self.faults.lock().unwrap().extend(faults);
    }

    fn seen(&self) -> Vec<String> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

async fn read_request(conn: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse::<usize>().unwrap_or(0));
            if buf.len() >= end + 4 + length {
                return Ok(buf);
            }
        }
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn serve(
    mut conn: TcpStream,
    upstream: u16,
    faults: &Mutex<VecDeque<Fault>>,
    seen: &Mutex<Vec<String>>,
    heads: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let request = read_request(&mut conn).await?;
    let head_end = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(request.len());
    heads.lock().unwrap().push(String::from_utf8_lossy(&request[..head_end]).into_owned());
    let line = String::from_utf8_lossy(&request).lines().next().unwrap_or("").to_owned();
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    // Drop the tenant prefix: `/t123-4/v2/Users/ID` → `/Users/ID`.
    let path = path.splitn(4, '/').nth(3).map_or(path.to_owned(), |p| format!("/{p}"));
    seen.lock().unwrap().push(format!("{method} {path}"));
    let fault = faults.lock().unwrap().pop_front().unwrap_or(Fault::Pass);
    if let Fault::Answer(status, headers, body) = &fault {
        let body = body.to_string();
        let mut head = format!(
            "HTTP/1.1 {status} Injected\r\nContent-Type: application/scim+json\r\n\
             Content-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        conn.write_all(format!("{head}\r\n{body}").as_bytes()).await?;
        return conn.shutdown().await;
    }
    let mut up = TcpStream::connect(("127.0.0.1", upstream)).await?;
    up.write_all(&request).await?;
    let mut response = Vec::new();
    // scim2-server speaks HTTP/1.0: the answer ends when it closes the connection.
    up.read_to_end(&mut response).await?;
    match fault {
        Fault::DropAfterForward => Ok(()),
        Fault::CutBody => {
            let end = response.windows(4).position(|w| w == b"\r\n\r\n").map_or(0, |p| p + 4);
            let cut = end + (response.len() - end) / 2;
            conn.write_all(&response[..cut]).await?;
            conn.shutdown().await
        }
        Fault::Delay(d) => {
            tokio::time::sleep(d).await;
            let _ = conn.write_all(&response).await;
            Ok(())
        }
        Fault::Pass | Fault::Answer(..) => {
            conn.write_all(&response).await?;
            conn.shutdown().await
        }
    }
}

fn fast_retries() -> RetryConfig {
    RetryConfig {
        min_delay: Duration::from_millis(10),
        factor: 2.0,
        max_delay: Duration::from_millis(50),
        max_retries: 4,
        max_retry_after: Duration::from_secs(5),
    }
}

/// A client that talks to a fresh tenant through a new proxy, and a raw view of the tenant.
async fn setup(timeout_secs: u64) -> (TargetClient, Proxy, Raw) {
    setup_with(timeout_secs, fast_retries()).await
}

async fn setup_with(timeout_secs: u64, retry: RetryConfig) -> (TargetClient, Proxy, Raw) {
    let server = ScimServer::shared();
    let (url, token) = server.tenant();
    let proxy = Proxy::start(server.port()).await;
    let proxied = url.replace(&format!(":{}/", server.port()), &format!(":{}/", proxy.addr.port()));
    let mut cfg = target_config(&proxied, Profile::NinjaOne);
    cfg.timeout_secs = timeout_secs;
    let opts = ClientOptions { retry, token_source: None };
    let client = TargetClient::with_options(&cfg, SecretString::from(token.clone()), opts).unwrap();
    (client, proxy, Raw::new(&url, &token))
}

/// A user with the externalId that proves, after an ambiguous create, that the user found is
/// the one the create made.
fn user(name: &str) -> DesiredUser {
    DesiredUser::builder(name, name).attr(Attr::UserType, "endUser").attr(Attr::ExternalId, name).build()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn retry_after_in_seconds_is_honoured() {
    let (client, proxy, _) = setup(10).await;
    proxy.then([error(429, vec![("Retry-After", "1".into())])]);
    let started = Instant::now();
    assert_eq!(client.find_user("a@example.com").await.unwrap(), None);
    assert!(started.elapsed() >= Duration::from_millis(950), "{:?}", started.elapsed());
    assert_eq!(client.requests_sent(), 2);
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured() {
    let (client, proxy, _) = setup(10).await;
    let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
    proxy.then([error(429, vec![("Retry-After", at)])]);
    let started = Instant::now();
    client.find_user("a@example.com").await.unwrap();
    // The date has whole seconds: the wait is between one and two seconds.
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900) && waited < Duration::from_secs(4), "{waited:?}");
    assert_eq!(client.requests_sent(), 2);
}

#[tokio::test]
async fn a_long_retry_after_is_capped_and_a_missing_one_backs_off() {
    let retry = RetryConfig { max_retry_after: Duration::from_millis(200), ..fast_retries() };
    let (client, proxy, _) = setup_with(10, retry).await;
    proxy.then([error(429, vec![("Retry-After", "3600".into())]), error(429, vec![])]);
    let started = Instant::now();
    client.find_group("Ops").await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert_eq!(client.requests_sent(), 3);
}

#[tokio::test]
async fn server_errors_back_off_then_succeed() {
    let (client, proxy, _) = setup(10).await;
    proxy.then([error(503, vec![]), error(502, vec![]), error(500, vec![])]);
    assert_eq!(client.find_user("a@example.com").await.unwrap(), None);
    assert_eq!(client.requests_sent(), 4);
}

#[tokio::test]
async fn retries_are_bounded() {
    let (client, proxy, _) = setup(10).await;
    proxy.then(std::iter::repeat_n(error(500, vec![]), 10));
    let err = client.find_user("a@example.com").await.unwrap_err();
    let TargetError::Exhausted { attempts, ref last } = err else { panic!("{err:?}") };
    assert_eq!(attempts, 5, "one attempt and max_retries = 4 retries");
    assert!(last.contains("500") && last.contains("injected"), "{last}");
    assert_eq!(client.requests_sent(), 5);
}

#[tokio::test]
async fn an_unreachable_target_is_exhausted() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cfg = target_config(&format!("http://127.0.0.1:{port}/v2"), Profile::NinjaOne);
    let opts = ClientOptions { retry: fast_retries(), token_source: None };
    let client = TargetClient::with_options(&cfg, SecretString::from("t"), opts).unwrap();
    let err = client.create_user(&user("a@example.com")).await.unwrap_err();
    assert!(matches!(err, TargetError::Exhausted { attempts: 5, .. }), "{err:?}");
    assert!(err.to_string().contains("cannot connect"), "{err}");
    // Nothing reached a server, so no attempt looked the user up.
    assert_eq!(client.requests_sent(), 5);
}

#[tokio::test]
async fn an_unanswered_create_is_looked_up_not_sent_again() {
    let (client, proxy, raw) = setup(10).await;
    proxy.then([Fault::DropAfterForward]);
    let id = client.create_user(&user("lost@example.com")).await.unwrap();
    assert_eq!(proxy.seen(), strings(&["POST /Users", "GET /Users"]));
    assert_eq!(raw.count("Users", r#"userName eq "lost@example.com""#).await, 1);
    assert_eq!(raw.resource(&format!("/Users/{id}")).await["userName"], "lost@example.com");
}

#[tokio::test]
async fn a_created_answer_cut_short_is_looked_up() {
    let (client, proxy, raw) = setup(10).await;
    proxy.then([Fault::CutBody]);
    let id = client.create_user(&user("cut@example.com")).await.unwrap();
    assert_eq!(proxy.seen(), strings(&["POST /Users", "GET /Users"]));
    assert_eq!(raw.count("Users", r#"userName eq "cut@example.com""#).await, 1);
    assert_eq!(raw.resource(&format!("/Users/{id}")).await["userName"], "cut@example.com");

    proxy.then([Fault::CutBody]);
    let gid = client.create_group("Cut Group").await.unwrap();
    assert_eq!(proxy.seen(), strings(&["POST /Groups", "GET /Groups"]));
    assert_eq!(raw.count("Groups", r#"displayName eq "Cut Group""#).await, 1);
    assert_eq!(raw.resource(&format!("/Groups/{gid}")).await["displayName"], "Cut Group");
}

#[tokio::test]
async fn a_create_that_timed_out_is_looked_up() {
    let (client, proxy, raw) = setup(1).await;
    proxy.then([Fault::Delay(Duration::from_millis(1500))]);
    let id = client.create_user(&user("slow@example.com")).await.unwrap();
    assert_eq!(proxy.seen(), strings(&["POST /Users", "GET /Users"]));
    assert_eq!(raw.count("Users", r#"userName eq "slow@example.com""#).await, 1);
    assert_eq!(raw.resource(&format!("/Users/{id}")).await["userName"], "slow@example.com");
}

#[tokio::test]
async fn a_create_that_was_not_made_is_sent_again_after_the_lookup() {
    let (client, proxy, raw) = setup(10).await;
    // The 503 comes from the proxy: the server never saw the first POST.
    proxy.then([error(503, vec![])]);
    client.create_user(&user("again@example.com")).await.unwrap();
    assert_eq!(proxy.seen(), strings(&["POST /Users", "GET /Users", "POST /Users"]));
    assert_eq!(raw.count("Users", r#"userName eq "again@example.com""#).await, 1);
    // A refusal that certainly did nothing is not looked up: 429 is retried as it is.
    proxy.then([error(429, vec![])]);
    client.create_group("Again").await.unwrap();
    assert_eq!(proxy.seen(), strings(&["POST /Groups", "POST /Groups"]));
}

#[tokio::test]
async fn a_delete_whose_answer_was_lost_succeeded() {
    let (client, proxy, raw) = setup(10).await;
    let id = client.create_user(&user("gone@example.com")).await.unwrap();
    proxy.seen();
    proxy.then([Fault::DropAfterForward]);
    client.delete_user(&id).await.unwrap();
    assert_eq!(proxy.seen(), strings(&[&format!("DELETE /Users/{id}"), &format!("DELETE /Users/{id}")]));
    assert_eq!(raw.get(&format!("/Users/{id}")).await.0, 404);
}

#[tokio::test]
async fn a_lost_patch_answer_is_sent_again() {
    let (client, proxy, raw) = setup(10).await;
    let id = client.create_user(&user("patch@example.com")).await.unwrap();
    proxy.then([Fault::DropAfterForward, Fault::CutBody]);
    client.set_active(&id, false).await.unwrap();
    assert_eq!(raw.resource(&format!("/Users/{id}")).await["active"], json!(false));
    // The second PATCH was answered 204 and then cut: the status is all that counts.
    assert_eq!(client.requests_sent(), 3);
}

#[tokio::test]
async fn patch_and_post_answered_200_with_a_body_are_success() {
    let (client, proxy, _) = setup(10).await;
    proxy.then([Fault::Answer(200, vec![], json!({"id": "from-200", "userName": "x@example.com"}))]);
    assert_eq!(client.create_user(&user("x@example.com")).await.unwrap(), "from-200");
    proxy.then([Fault::Answer(200, vec![], json!({"id": "from-200", "active": false}))]);
    client.set_active("from-200", false).await.unwrap();
}

#[tokio::test]
async fn refusals_keep_a_short_detail_and_never_the_token() {
    let token = ScimServer::shared().token().to_owned();
    let (client, proxy, _) = setup(10).await;
    let detail = format!("bad value; you sent Authorization: Bearer {token}; {}", "x".repeat(1000));
    proxy.then([Fault::Answer(
        400,
        vec![],
        json!({"status": "400", "scimType": "invalidValue", "detail": detail}),
    )]);
    let err = client.create_user(&user("bad@example.com")).await.unwrap_err();
    let TargetError::Rejected { status: 400, ref message } = err else { panic!("{err:?}") };
    assert!(message.starts_with("bad value; you sent Authorization: Bearer [redacted]"), "{message}");
    assert!(message.ends_with("(scimType invalidValue)"), "{message}");
    assert!(message.chars().count() < 260, "{}", message.len());
    assert_eq!(client.requests_sent(), 1, "a 400 is not retried");

    proxy.then([error(403, vec![])]);
    let err = client.find_group("Ops").await.unwrap_err();
    assert!(matches!(err, TargetError::Auth { status: 403, .. }) && err.stops_run(), "{err:?}");
    assert_eq!(client.requests_sent(), 2, "a 403 is not retried");
}

#[tokio::test]
async fn requests_carry_the_user_agent_the_token_and_the_scim_media_type() {
    let (client, proxy, _) = setup(10).await;
    client.create_user(&user("head@example.com")).await.unwrap();
    client.find_user("head@example.com").await.unwrap();
    let heads: Vec<String> = proxy.heads.lock().unwrap().iter().map(|h| h.to_ascii_lowercase()).collect();
    let token = ScimServer::shared().token().to_ascii_lowercase();
    assert_eq!(heads.len(), 2);
    for head in &heads {
        assert!(
            head.contains(&format!("\r\nuser-agent: scimsync/{}\r\n", env!("CARGO_PKG_VERSION"))),
            "{head}"
        );
        assert!(head.contains(&format!("\r\nauthorization: bearer {token}")), "{head}");
        assert!(head.contains("\r\naccept: application/scim+json"), "{head}");
    }
    assert!(heads[0].starts_with("post ") && heads[0].contains("\r\ncontent-type: application/scim+json"));
    assert!(
        heads[1].starts_with("get ") && heads[1].contains("filter=username+eq+%22head%40example.com%22"),
        "{}",
        heads[1]
    );
}

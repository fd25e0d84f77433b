//! A real SCIM 2.0 service provider for the tests: python-scim's `scim2-server` (pinned in
//! `scripts/test.sh`), one process per test binary, one tenant (an isolated store) per test.

use super::repo_root;
use std::env;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tempfile::TempDir;

/// The scim2-server program: `$SCIM2_SERVER_BIN`, else `.venv/bin/scim2-server` in the checkout.
///
/// Panics when there is none: a test that needs the server must fail, not pass without it.
pub fn require_scim2_server() -> PathBuf {
    if let Some(bin) = env::var_os("SCIM2_SERVER_BIN").filter(|b| !b.is_empty()) {
        let bin = PathBuf::from(bin);
        assert!(bin.is_file(), "SCIM2_SERVER_BIN={} does not exist: run scripts/test.sh", bin.display());
        return bin;
    }
    let bin = repo_root().join(".venv/bin/scim2-server");
    assert!(
        bin.is_file(),
        "{} not found: run scripts/test.sh, which installs the pinned scim2-server into .venv/ \
         (or set SCIM2_SERVER_BIN)",
        bin.display()
    );
    bin
}

/// A running `scim2-server --dynamic-tenants` on a free loopback port.
///
/// The server runs under a small `sh` that stops it when its stdin closes: when this is
/// dropped, and also when the test process dies without dropping it (a static, a panic
/// elsewhere, a kill), because the kernel closes the pipe then.
pub struct ScimServer {
    child: Child,
    stdin: Option<ChildStdin>,
    port: u16,
    token: String,
    log: PathBuf,
    tenants: AtomicU32,
    _dir: TempDir,
}

/// Runs "$@" in the background and stops it when stdin reaches end of file; exits with the
/// server's status if the server stops first (so a failed start is seen at once). Background
/// jobs of a non-interactive shell read /dev/null, so the pipe is kept as fd 3 for `cat`.
pub(crate) const WRAPPER: &str = r#"exec 3<&0
"$@" </dev/null 3<&- & pid=$!
( cat <&3 >/dev/null; kill "$pid" 2>/dev/null ) &
exec 3<&-
wait "$pid""#;

impl ScimServer {
    /// The server shared by all tests of this test binary, started on first use.
    pub fn shared() -> &'static ScimServer {
        static SHARED: OnceLock<ScimServer> = OnceLock::new();
        SHARED.get_or_init(ScimServer::start)
    }

    /// Starts a server of its own (stopped on drop). Takes about half a second.
    pub fn start() -> ScimServer {
        ScimServer::start_with(&[])
    }

    /// Starts a server of its own with more command-line arguments (`--service-provider-config
    /// FILE`, say).
    pub fn start_with(extra: &[&std::ffi::OsStr]) -> ScimServer {
        let bin = require_scim2_server();
        let mut last_error = String::new();
        // A free port can be taken by someone else before the server binds it: try a few.
        for _ in 0..3 {
            match ScimServer::try_start(&bin, extra) {
                Ok(server) => return server,
                Err(e) => last_error = e,
            }
        }
        panic!("scim2-server did not start: {last_error}");
    }

    fn try_start(bin: &PathBuf, extra: &[&std::ffi::OsStr]) -> Result<ScimServer, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
        let token = format!("test-token-{}-{nanos:x}", std::process::id());
        let dir = tempfile::Builder::new().prefix("scimsync-scim2-").tempdir().map_err(|e| e.to_string())?;
        let log = dir.path().join("server.log");
        let log_file = File::create(&log).map_err(|e| e.to_string())?;
        let data = repo_root().join("tests/data/scim");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WRAPPER)
            .arg("scim2-server-wrapper")
            .arg(bin)
            .args(["--hostname", "127.0.0.1", "--port", &port.to_string(), "--bearer-token", &token])
            .arg("--schema")
            .arg(data.join("schemas.json"))
            .arg("--resource-type")
            .arg(data.join("resource-types.json"))
            .arg("--dynamic-tenants")
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot run sh for {}: {e}", bin.display()))?;
        let stdin = child.stdin.take();
        let mut server = ScimServer { child, stdin, port, token, log, tenants: AtomicU32::new(0), _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if server.ready() {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("it exited ({status}):\n{}", server.log_tail()));
            }
            if Instant::now() > deadline {
                return Err(format!("no answer on port {port} after 20 s:\n{}", server.log_tail()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether `GET /ready/v2/ServiceProviderConfig` answers 200.
    fn ready(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let request = format!(
            "GET /ready/v2/ServiceProviderConfig HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\
             Authorization: Bearer {}\r\n\r\n",
            self.port, self.token
        );
        let mut answer = String::new();
        stream.write_all(request.as_bytes()).is_ok()
            && stream.read_to_string(&mut answer).is_ok()
            && answer.split_whitespace().nth(1) == Some("200")
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// `http://127.0.0.1:PORT`
    pub fn root(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// A fresh, empty tenant: `(base URL http://127.0.0.1:PORT/<tenant>/v2, bearer token)`.
    pub fn tenant(&self) -> (String, String) {
        let n = self.tenants.fetch_add(1, Ordering::Relaxed);
        (format!("{}/t{}-{n}/v2", self.root(), std::process::id()), self.token.clone())
    }
}

impl Drop for ScimServer {
    fn drop(&mut self) {
        stop_wrapped(&mut self.child, self.stdin.take());
    }
}

/// Stops a program started under [`WRAPPER`]: end of file on the wrapper's stdin stops it; then
/// the wrapper is reaped (killed after 5 s).
pub(crate) fn stop_wrapped(child: &mut Child, stdin: Option<ChildStdin>) {
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A target config for `url` as these tests use it: a short timeout, no rate limit, and a
/// token file that error messages can name.
pub fn target_config(url: &str, profile: scimsync::model::Profile) -> scimsync::target::TargetConfig {
    scimsync::target::TargetConfig {
        url: Some(url.to_owned()),
        profile,
        token_file: Some("/etc/scimsync/target.token".into()),
        token_env: None,
        token_expires: None,
        ca_file: None,
        concurrency: 4,
        rate_limit: None,
        timeout_secs: 10,
        adopt: true,
        recreate_missing: false,
        dialect: scimsync::target::Dialect::preset(profile),
    }
}

/// Plain HTTP access to a tenant, to check what the client stored without using the client.
pub struct Raw {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Raw {
    pub fn new(base: &str, token: &str) -> Raw {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Raw { http: reqwest::Client::new(), base: base.to_owned(), token: token.to_owned() }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
        let resp = req.bearer_auth(&self.token).send().await.expect("request to scim2-server");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("scim2-server's answer");
        let doc = if text.trim().is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        (status, doc)
    }

    /// Every user of the tenant, paged (the server caps a page at 1000).
    pub async fn all_users(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        loop {
            let (status, doc) = self.get(&format!("/Users?startIndex={}&count=1000", out.len() + 1)).await;
            assert_eq!(status, 200, "{doc}");
            let page = doc["Resources"].as_array().cloned().unwrap_or_default();
            if page.is_empty() {
                return out;
            }
            out.extend(page);
        }
    }

    /// `GET base/path` (`path` starts with `/`).
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.send(self.http.get(format!("{}{path}", self.base))).await
    }

    pub async fn post(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let req =
            self.http.post(format!("{}{path}", self.base)).header("content-type", "application/scim+json");
        self.send(req.body(body.to_string())).await
    }

    pub async fn patch(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let req =
            self.http.patch(format!("{}{path}", self.base)).header("content-type", "application/scim+json");
        self.send(req.body(body.to_string())).await
    }

    /// A resource that must exist.
    pub async fn resource(&self, path: &str) -> serde_json::Value {
        let (status, doc) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {doc}");
        doc
    }

    /// How many resources of `endpoint` match `filter`.
    pub async fn count(&self, endpoint: &str, filter: &str) -> u64 {
        let req = self.http.get(format!("{}/{endpoint}", self.base)).query(&[("filter", filter)]);
        let (status, doc) = self.send(req).await;
        assert_eq!(status, 200, "search {endpoint} {filter}: {doc}");
        doc["totalResults"].as_u64().expect("totalResults")
    }
}

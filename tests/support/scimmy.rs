//! A second, independent SCIM 2.0 server for the tests: scimmy + scimmy-routers on express 4
//! (`tests/support/scimmy/server.js`), in memory, with the ninjaone User extension.
//!
//! Where it differs from scim2-server (useful: the client must not be tuned to one server):
//! - `userName eq` and userName uniqueness are case-sensitive (`--caseless-usernames` makes
//!   uniqueness caseless while `eq` stays case-sensitive);
//! - filters on extension attributes (`urn:...:ninjaone:2.0:User:userType eq "x"`) match nothing;
//! - PATCH answers 200 with the resource, or 204 with no body when nothing changed;
//! - PATCH `add` of a member already in a group adds it a second time;
//! - PATCH `remove` with `"path":"members"` and a value list removes just those members;
//! - `"op":"Replace"` is accepted, but a boolean sent as a string (`"True"`) is a 400;
//! - unknown attributes, also inside the extension, are dropped silently (201);
//! - 201 carries no `Location` header; there are no ETag headers and If-Match is ignored;
//! - a list answers 20 resources unless `count` says otherwise, and a filter scans every user
//!   (about 9 ms a lookup at 2,000 users): for correctness tests, not for scale.

use super::fault_proxy::spawn_listening;
use std::process::{Child, Command};
use std::time::{SystemTime, UNIX_EPOCH};

/// A running `server.js`, killed when this is dropped.
pub struct Scimmy {
    /// `http://127.0.0.1:PORT/scim/v2`, no trailing slash.
    pub base_url: String,
    /// The bearer token it accepts (any other gets 401).
    pub token: String,
    port: u16,
    child: Child,
}

impl Scimmy {
    /// Starts a server with a fresh token on a free loopback port.
    pub fn start() -> Scimmy {
        Scimmy::start_with(&[])
    }

    /// Like [`Scimmy::start`], with extra `server.js` options (`--caseless-usernames`).
    pub fn start_with(args: &[&str]) -> Scimmy {
        let dir = super::repo_root().join("tests/support/scimmy");
        assert!(
            dir.join("node_modules").is_dir(),
            "{}/node_modules is missing: run scripts/test.sh, which installs scimmy's packages \
             (npm ci --prefix tests/support/scimmy)",
            dir.display()
        );
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let token = format!("scimmy-test-{}-{nanos:x}", std::process::id());
        let mut cmd = Command::new("node");
        cmd.arg(dir.join("server.js")).args(["--port", "0"]).args(args).env("SCIMMY_TOKEN", &token);
        let (child, port) =
            spawn_listening(cmd, "the scimmy SCIM server (node tests/support/scimmy/server.js)");
        Scimmy { base_url: format!("http://127.0.0.1:{port}/scim/v2"), token, port, child }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`, without the `/scim/v2` prefix: what a fault proxy forwards to.
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `base_url` joined with `path` (`"/Users"` or `"Users"`).
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base_url, path.trim_start_matches('/'))
    }

    /// A reqwest client that sends `Authorization: Bearer <token>` on every request, for tests
    /// that look at or prepare the server's state.
    pub fn client(&self) -> reqwest::Client {
        // reqwest is built with `rustls-no-provider`: a process needs a provider installed once.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut auth = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", self.token))
            .expect("the token is a valid header value");
        auth.set_sensitive(true);
        let headers = reqwest::header::HeaderMap::from_iter([(reqwest::header::AUTHORIZATION, auth)]);
        reqwest::Client::builder().default_headers(headers).build().expect("build a reqwest client")
    }
}

impl Drop for Scimmy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

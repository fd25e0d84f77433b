//! Behind an HTTP proxy: with `HTTPS_PROXY` set, every request to an https target goes through
//! the proxy as a `CONNECT` tunnel, and `NO_PROXY` keeps an on-prem SCIM source direct. The
//! proxy is tinyproxy, the target the real scim2-server behind stunnel's TLS, all on loopback.

use crate::support;

use serde_json::json;
use support::proxy::{free_port, stunnel, tinyproxy, Daemon};
use support::scim_server::{Raw, ScimServer};
use support::site::{person, Run, Site};
use support::{rt, test_data};

/// The proxy variables in both spellings, so the caller's own environment plays no part.
const PROXY_VARS: [&str; 8] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// A site whose target is a fresh tenant of the shared scim2-server reached over TLS through
/// `tls` (stunnel in front of the server), trusting the test CA. Returns the site and the
/// tenant's plain-HTTP base for checking what arrived.
fn tls_site(tls: &Daemon) -> (Site, String) {
    let (plain, token) = ScimServer::shared().tenant();
    let tenant_path = plain.split_once("127.0.0.1:").unwrap().1.split_once('/').unwrap().1;
    let url = format!("https://127.0.0.1:{}/{tenant_path}", tls.port);
    let ca = format!("ca_file = {:?}", test_data("tls/ca.pem").display().to_string());
    let site = Site::with_url(&url, &token, &ca, "");
    site.write_source(&format!(
        "{}{}{}",
        person("ada", "Ada", "Lovelace", 1, &[]),
        person("alan", "Alan", "Turing", 2, &[]),
        person("grace", "Grace", "Hopper", 3, &[])
    ));
    (site, plain)
}

/// `scimsync sync` with only the given proxy variables set.
fn sync_with(site: &Site, env: &[(&str, String)]) -> Run {
    let mut cmd = site.command(&["sync"]);
    for var in PROXY_VARS {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run scimsync");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn user_names(base: &str, token: &str) -> Vec<String> {
    rt().block_on(async {
        let (status, doc) = Raw::new(base, token).get("/Users?count=100").await;
        assert_eq!(status, 200, "{doc}");
        let mut names: Vec<String> = doc["Resources"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|u| u["userName"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    })
}

/// Adds a user to a SCIM source tenant.
fn add_source_user(base: &str, token: &str, user_name: &str) {
    rt().block_on(async {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": user_name,
            "name": {"givenName": "Given", "familyName": "Family"},
            "emails": [{"value": user_name, "type": "work", "primary": true}],
            "active": true,
        });
        let (status, doc) = Raw::new(base, token).post("/Users", &body).await;
        assert_eq!(status, 201, "{doc}");
    });
}

/// The request lines tinyproxy logged (`CONNECT 127.0.0.1:PORT HTTP/1.1`, `GET http://… HTTP/1.1`).
fn requests(proxy: &Daemon) -> Vec<String> {
    proxy
        .log()
        .lines()
        .filter_map(|l| l.split_once("): ").filter(|_| l.contains("Request (")).map(|(_, r)| r.to_owned()))
        .collect()
}

#[test]
fn an_https_target_is_reached_through_the_proxy_by_connect() {
    let server = ScimServer::shared();
    let tls = stunnel(server.port());
    let proxy = tinyproxy();
    let (site, plain) = tls_site(&tls);

    let run = sync_with(&site, &[("HTTPS_PROXY", format!("http://127.0.0.1:{}", proxy.port))]);
    assert_eq!(run.code, Some(0), "sync through the proxy failed:\n{run}");
    let expected = ["ada@example.com", "alan@example.com", "grace@example.com"];
    assert_eq!(user_names(&plain, &site.token), expected);

    let tunnel = format!("CONNECT 127.0.0.1:{} HTTP/1.1", tls.port);
    let seen = requests(&proxy);
    assert!(
        !seen.is_empty() && seen.iter().all(|r| *r == tunnel),
        "the proxy saw {seen:?}, expected only {tunnel:?}"
    );
    // The proxy only tunnels: it never sees the bearer token (it travels inside TLS).
    assert!(!proxy.log().contains(&site.token), "the token reached the proxy's log");
}

#[test]
fn no_proxy_keeps_an_on_prem_scim_source_direct() {
    let server = ScimServer::shared();
    let tls = stunnel(server.port());
    let proxy = tinyproxy();
    let (site, plain) = tls_site(&tls);

    // The on-prem source: another tenant of the same server, named `localhost` so that NO_PROXY
    // can tell it from the target (both are on 127.0.0.1 here).
    let (src_base, src_token) = server.tenant();
    for name in ["kim@example.com", "lee@example.com"] {
        add_source_user(&src_base, &src_token, name);
    }
    let src_url = src_base.replace("127.0.0.1", "localhost");
    let token = site.write_secret("source.token", &src_token);
    site.set_source(&format!("kind = \"scim\"\nurl = \"{src_url}\"\ntoken_file = {token}\n"));

    let proxy_url = format!("http://127.0.0.1:{}", proxy.port);
    let both = [("HTTP_PROXY", proxy_url.clone()), ("HTTPS_PROXY", proxy_url.clone())];

    // Without NO_PROXY the plain-HTTP source goes through the proxy too (which shows the proxy
    // would see it): the proxy logs its absolute URLs.
    let run = sync_with(&site, &both);
    assert_eq!(run.code, Some(0), "{run}");
    let source_seen =
        |proxy: &Daemon| requests(proxy).iter().filter(|r| r.contains("http://localhost:")).count();
    assert!(source_seen(&proxy) > 0, "the source's requests did not reach the proxy: {:?}", requests(&proxy));
    assert_eq!(user_names(&plain, &site.token), ["kim@example.com", "lee@example.com"]);

    // With NO_PROXY=localhost the source is read directly; the target still goes by CONNECT
    // (a new source user makes the run write to it).
    add_source_user(&src_base, &src_token, "max@example.com");
    let fresh = tinyproxy();
    let proxy_url = format!("http://127.0.0.1:{}", fresh.port);
    let env = [
        ("HTTP_PROXY", proxy_url.clone()),
        ("HTTPS_PROXY", proxy_url),
        ("NO_PROXY", "localhost,.corp.example".to_owned()),
    ];
    let run = sync_with(&site, &env);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(source_seen(&fresh), 0, "NO_PROXY did not keep the source direct: {:?}", requests(&fresh));
    let tunnel = format!("CONNECT 127.0.0.1:{} HTTP/1.1", tls.port);
    assert!(
        requests(&fresh).contains(&tunnel),
        "the target was not reached through the proxy: {:?}",
        requests(&fresh)
    );
    assert_eq!(user_names(&plain, &site.token), ["kim@example.com", "lee@example.com", "max@example.com"]);
}

#[test]
fn a_proxy_that_is_down_fails_the_read_with_a_message_naming_it() {
    let server = ScimServer::shared();
    let (target, token) = server.tenant();
    let site = Site::with_url(&target, &token, "", "");
    let (src_base, src_token) = server.tenant();
    add_source_user(&src_base, &src_token, "kim@example.com");
    let secret = site.write_secret("source.token", &src_token);
    site.set_source(&format!(
        "kind = \"scim\"\nurl = \"{src_base}\"\ntoken_file = {secret}\nmax_retries = 0\n"
    ));

    let dead = format!("http://ops:hunter2@127.0.0.1:{}", free_port());
    let run = sync_with(&site, &[("HTTP_PROXY", dead)]);
    assert_eq!(run.code, Some(1), "a read through a dead proxy must fail:\n{run}");
    assert!(
        run.stderr.contains("via the proxy http://127.0.0.1:"),
        "the error does not name the proxy:\n{run}"
    );
    assert!(run.stderr.contains("from HTTP_PROXY"), "the error does not name the variable:\n{run}");
    assert!(!run.stderr.contains("hunter2"), "the proxy's password was shown:\n{run}");
    // The same read without the proxy works: the failure was the proxy's.
    let run = sync_with(&site, &[]);
    assert_eq!(run.code, Some(0), "{run}");
}

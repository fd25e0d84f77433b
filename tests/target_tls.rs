//! TLS to the target and to a SCIM source: a certificate the platform does not trust is refused
//! (and not retried) unless `target.ca_file` / `source.ca_file` names the certificate that vouches
//! for it. The server is a minimal rustls responder: scim2-server speaks plain HTTP only.

use crate::support;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use scimsync::model::Profile;
use scimsync::target::{ClientOptions, RetryConfig, TargetClient, TargetError};
use secrecy::SecretString;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use support::scim_server::target_config;
use support::test_data;

const SPC: &str = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],"patch":{"supported":true}}"#;
const USERS: &str = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":1,"startIndex":1,"itemsPerPage":1,"Resources":[{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"u1","userName":"ada@example.com","active":true}]}"#;
const NO_GROUPS: &str = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":0,"startIndex":1,"itemsPerPage":0,"Resources":[]}"#;

/// Serves over TLS with `cert`/`key` (files in tests/data/tls) on a thread, for as long as the
/// test process lives: one user at `/Users`, no groups at `/Groups`, `ServiceProviderConfig`
/// anywhere else. Returns the base URL.
fn tls_server(cert: &str, key: &str) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let chain =
        vec![CertificateDer::from_pem_file(test_data(&format!("tls/{cert}"))).expect("test certificate")];
    let key = PrivateKeyDer::from_pem_file(test_data(&format!("tls/{key}"))).expect("test key");
    let config = Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config"),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { return };
            let config = config.clone();
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                // A client that refuses the certificate ends the handshake here with an error.
                while !head.ends_with(b"\r\n\r\n") {
                    match tls.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let line = String::from_utf8_lossy(&head);
                let path = line.split_whitespace().nth(1).unwrap_or("");
                let body = if path.contains("/Users") {
                    USERS
                } else if path.contains("/Groups") {
                    NO_GROUPS
                } else {
                    SPC
                };
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes());
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    format!("https://127.0.0.1:{port}/scim/v2")
}

fn client(url: &str, ca_file: Option<PathBuf>) -> TargetClient {
    let mut cfg = target_config(url, Profile::Generic);
    cfg.ca_file = ca_file;
    let retry =
        RetryConfig { min_delay: Duration::from_millis(10), max_retries: 2, ..RetryConfig::default() };
    TargetClient::with_options(&cfg, SecretString::from("t"), ClientOptions { retry, token_source: None })
        .unwrap()
}

#[tokio::test]
async fn a_private_ca_is_refused_without_ca_file_and_trusted_with_it() {
    let url = tls_server("server.pem", "server.key");

    let untrusting = client(&url, None);
    let err = untrusting.service_provider_config().await.unwrap_err();
    assert!(matches!(err, TargetError::Config { .. }) && err.stops_run(), "{err:?}");
    assert!(err.to_string().contains("target.ca_file"), "{err}");
    assert_eq!(untrusting.requests_sent(), 1, "a refused certificate is not retried");

    let trusting = client(&url, Some(test_data("tls/ca.pem")));
    let spc = trusting.service_provider_config().await.unwrap();
    assert_eq!(spc["patch"]["supported"], true);
}

#[tokio::test]
async fn a_self_signed_certificate_is_refused_unless_it_is_the_ca_file() {
    let url = tls_server("self-signed.pem", "self-signed.key");
    let err = client(&url, None).service_provider_config().await.unwrap_err();
    assert!(matches!(err, TargetError::Config { .. }), "{err:?}");
    // The certificate itself, given as ca_file, vouches for itself.
    let spc = client(&url, Some(test_data("tls/self-signed.pem"))).service_provider_config().await.unwrap();
    assert_eq!(spc["patch"]["supported"], true);
    // A certificate signed by another CA does not vouch for it either.
    let err = client(&url, Some(test_data("tls/ca.pem"))).service_provider_config().await.unwrap_err();
    assert!(matches!(err, TargetError::Config { .. }), "{err:?}");
}

#[test]
fn a_ca_file_that_is_not_pem_is_a_config_error() {
    let not_pem = test_data("tls/README.md");
    let mut cfg = target_config("https://127.0.0.1:1/v2", Profile::Generic);
    cfg.ca_file = Some(not_pem.clone());
    let err = TargetClient::new(&cfg, SecretString::from("t")).unwrap_err();
    assert!(matches!(err, TargetError::Config { .. }), "{err:?}");
    assert!(err.to_string().contains(&format!("target.ca_file {}", not_pem.display())), "{err}");
}

/// A SCIM source behind `url`, trusting `ca_file` besides the platform's roots.
fn scim_source(url: &str, ca_file: Option<PathBuf>) -> scimsync::source::SourceConfig {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca_file.map(|p| format!("ca_file = {:?}\n", p.display().to_string())).unwrap_or_default();
    let text = format!(
        "[source]\nkind = \"scim\"\nurl = \"{url}\"\ntoken_env = \"TLS_TEST_TOKEN\"\nmax_retries = 1\n{ca}\
         [target]\nurl = \"http://127.0.0.1:1/scim/v2\"\ntoken_env = \"TLS_TEST_TOKEN\"\n\
         [state]\npath = \"state.db\"\n"
    );
    let path = dir.path().join("scimsync.toml");
    std::fs::write(&path, text).unwrap();
    std::env::set_var("TLS_TEST_TOKEN", "t");
    scimsync::config::load(&path).unwrap_or_else(|e| panic!("{e}")).source
}

#[tokio::test]
async fn a_scim_source_behind_a_self_signed_certificate_needs_source_ca_file() {
    let url = tls_server("self-signed.pem", "self-signed.key");
    let err = scimsync::source::read(&scim_source(&url, None)).await.unwrap_err().to_string();
    assert!(err.contains("TLS") && err.contains("source.ca_file"), "{err}");

    let dir =
        scimsync::source::read(&scim_source(&url, Some(test_data("tls/self-signed.pem")))).await.unwrap();
    assert_eq!(dir.users.len(), 1);
    assert_eq!(dir.users[0].record.first_text("userName"), Some("ada@example.com"));

    let wrong = scim_source(&url, Some(test_data("tls/ca.pem")));
    let err = scimsync::source::read(&wrong).await.unwrap_err().to_string();
    assert!(err.contains("source.ca_file"), "another CA does not vouch for it: {err}");
}

/// A host without the platform's CA certificates (a minimal Debian without ca-certificates) gets
/// a message that says what is missing and what to install, not reqwest's "builder error".
#[test]
fn no_platform_certificates_is_said_with_what_to_install() {
    let site = support::site::Site::with_url("https://127.0.0.1:1/scim/v2", "token", "", "");
    site.write_source(&support::site::person("ada", "Ada", "Lovelace", 1, &[]));
    let empty = tempfile::tempdir().unwrap();
    let out = site
        .command(&["sync"])
        .env("SSL_CERT_FILE", empty.path().join("none.pem"))
        .env("SSL_CERT_DIR", empty.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("No CA certificates were loaded from the system"), "{stderr}");
    assert!(stderr.contains("install ca-certificates") && stderr.contains("target.ca_file"), "{stderr}");
}

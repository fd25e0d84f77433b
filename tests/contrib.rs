//! `contrib/`: the Grafana dashboard and the Prometheus alerts name only metrics a real daemon
//! exports (after a sync against scim2-server), and their PromQL parses (`promtool`); the
//! metrics endpoint carries no user data; served with a web config, it wants TLS and the right
//! basic-auth password on every path, and re-reads the web config on SIGHUP; a listen address
//! other hosts can reach is refused without TLS and authentication.

use crate::daemon::{site, users, Daemon, YEARLY};
use crate::support::{repo_root, test_data};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// An answer: status (0 when no HTTP answer came), head, body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

fn request(path: &str, auth: Option<(&str, &str)>) -> String {
    use base64::Engine as _;
    let auth = auth.map_or(String::new(), |(u, p)| {
        format!(
            "Authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    });
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n")
}

fn parse(bytes: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = match head.strip_prefix("HTTP/1.1 ") {
        Some(rest) => rest.get(..3).and_then(|s| s.parse().ok()).unwrap_or(0),
        None => 0,
    };
    Answer { status, head: head.to_owned(), body: body.to_owned() }
}

/// Plain HTTP.
fn get_plain(port: u16, path: &str, auth: Option<(&str, &str)>) -> Answer {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to metrics.listen");
    stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let _ = stream.write_all(request(path, auth).as_bytes());
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    parse(&answer)
}

/// HTTPS, trusting only `ca` (PEM).
fn get_tls(port: u16, ca: &Path, path: &str, auth: Option<(&str, &str)>) -> Answer {
    get_tls_as(port, ca, None, path, auth)
}

/// HTTPS, trusting only `ca`, with a client certificate and key (PEM files) when given.
fn get_tls_as(
    port: u16,
    ca: &Path,
    client: Option<(&Path, &Path)>,
    path: &str,
    auth: Option<(&str, &str)>,
) -> Answer {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(ca).expect("test CA")).unwrap();
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => config
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_file(cert).unwrap()],
                rustls::pki_types::PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap(),
        None => config.with_no_client_auth(),
    };
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect to metrics.listen");
    tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    // A refused handshake shows as no answer (status 0).
    let _ = tls.write_all(request(path, auth).as_bytes());
    let mut answer = Vec::new();
    // A server closing without close_notify ends the read with an error after the answer.
    let _ = tls.read_to_end(&mut answer);
    parse(&answer)
}

/// The `scimsync_…` names a PromQL expression reads.
fn metric_names(expr: &str, into: &mut BTreeSet<String>) {
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(at) = expr[i..].find("scimsync_") {
        let start = i + at;
        let boundary = start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let end = expr[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(expr.len(), |n| start + n);
        if boundary {
            into.insert(expr[start..end].to_owned());
        }
        i = end;
    }
}

/// Every PromQL expression of the dashboard's panels.
fn dashboard_exprs() -> Vec<String> {
    let path = repo_root().join("contrib/grafana/scimsync-dashboard.json");
    let dash: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(dash["__inputs"][0]["name"], "DS_PROMETHEUS", "the dashboard asks for its data source");
    let mut exprs = Vec::new();
    for panel in dash["panels"].as_array().expect("panels") {
        assert_eq!(panel["datasource"]["uid"], "${DS_PROMETHEUS}", "{}", panel["title"]);
        for t in panel["targets"].as_array().expect("targets") {
            exprs.push(t["expr"].as_str().expect("expr").to_owned());
        }
    }
    assert!(exprs.len() >= 8, "{exprs:?}");
    exprs
}

#[derive(serde::Deserialize)]
struct Rules {
    groups: Vec<Group>,
}
#[derive(serde::Deserialize)]
struct Group {
    rules: Vec<Rule>,
}
#[derive(serde::Deserialize)]
struct Rule {
    expr: String,
}

fn alert_exprs() -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join("contrib/prometheus/scimsync-alerts.yml")).unwrap();
    let rules: Rules = serde_saphyr::from_str(&text).expect("alert rules");
    rules.groups.into_iter().flat_map(|g| g.rules).map(|r| r.expr).collect()
}

fn promtool() -> PathBuf {
    let bin =
        std::env::var_os("PROMTOOL_BIN").map(PathBuf::from).unwrap_or_else(|| "/usr/bin/promtool".into());
    assert!(
        bin.is_file(),
        "promtool not found at {}: set PROMTOOL_BIN or install Debian's prometheus package (scripts/test.sh does)",
        bin.display()
    );
    bin
}

#[test]
fn the_dashboards_promql_parses() {
    // Grafana's variables as Prometheus would see them once Grafana has filled them in.
    let rules: String = dashboard_exprs()
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let e = e.replace("$__interval", "5m").replace("$__range", "1h").replace("$instance", ".*");
            format!("      - record: dashboard_expr_{i}\n        expr: {e:?}\n")
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboard.rules.yml");
    std::fs::write(&file, format!("groups:\n  - name: dashboard\n    rules:\n{rules}")).unwrap();
    let out = Command::new(promtool()).args(["check", "rules"]).arg(&file).output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn dashboard_and_alerts_read_only_exported_metrics_and_no_user_data_is_served() {
    let port = free_port();
    let more = format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n");
    let site = site(YEARLY, "token_expires = \"2099-12-31\"", &more);
    site.write_source(&std::fs::read_to_string(repo_root().join("config/demo/directory.ldif")).unwrap());
    let d = Daemon::start(&site, &[]);
    let done = d.wait_for("Run finished.", 1, 60);
    assert_eq!(done["outcome"], "ok", "{}", d.text());
    let metrics = get_plain(port, "/metrics", None);
    assert_eq!(metrics.status, 200, "{}", metrics.body);
    let exported: BTreeSet<&str> = metrics
        .body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let mut named = BTreeSet::new();
    for e in dashboard_exprs().iter().chain(&alert_exprs()) {
        metric_names(e, &mut named);
    }
    assert!(named.len() >= 8, "{named:?}");
    // Prometheus stores a counter's samples under the OpenMetrics name, with `_total`.
    let missing: Vec<_> = named.iter().filter(|n| !exported.contains(n.as_str())).collect();
    assert!(missing.is_empty(), "named but not exported: {missing:?}\n{}", metrics.body);
    for counter in ["scimsync_runs_total", "scimsync_operations_total"] {
        assert!(named.contains(counter), "{counter} is read by the dashboard or the alerts");
    }

    // No user data: none of the synced userNames, nor their source ids, in either answer.
    let health = get_plain(port, "/healthz", None);
    assert_eq!(health.status, 200, "{}", health.body);
    let names = users(&site);
    assert!(names.len() >= 10, "{names:?}");
    let ldif = std::fs::read_to_string(&site.source).unwrap();
    let uids: Vec<&str> = ldif.lines().filter_map(|l| l.strip_prefix("uid: ")).collect();
    assert!(!uids.is_empty());
    for text in [&metrics.body, &health.body] {
        for name in names.keys().map(String::as_str).chain(uids.iter().copied()) {
            assert!(!text.contains(name), "{name:?} appears in\n{text}");
        }
    }
}

/// A bcrypt hash (the lowest cost: the tests need no strength).
fn hash(password: &str) -> String {
    bcrypt::hash(password, 4).unwrap()
}

fn write_web_config(dir: &Path, user: &str, password: &str) -> PathBuf {
    let path = dir.join("web-config.yml");
    let (cert, key) = (test_data("tls/server.pem"), test_data("tls/server.key"));
    std::fs::write(
        &path,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  min_version: TLS12\nbasic_auth_users:\n  {user}: '{}'\nhttp_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n",
            cert.display(),
            key.display(),
            hash(password)
        ),
    )
    .unwrap();
    path
}

#[test]
fn tls_and_basic_auth_guard_every_path_and_follow_a_reload() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let web = write_web_config(dir.path(), "prometheus", "right horse");
    let more = format!(
        "[metrics]\nlisten = \"127.0.0.1:{port}\"\nweb_config_file = {:?}\n",
        web.display().to_string()
    );
    let site = site(YEARLY, "", &more);
    site.write_source(&crate::daemon::directory(&[("ann", 1), ("ben", 2)]));
    let d = Daemon::start(&site, &[]);
    d.wait_for("Run finished.", 1, 60);
    let ca = test_data("tls/ca.pem");

    let ok = get_tls(port, &ca, "/metrics", Some(("prometheus", "right horse")));
    assert_eq!(ok.status, 200, "{}\n{}", ok.head, ok.body);
    assert!(ok.body.contains("scimsync_runs_total{kind=\"sync\",outcome=\"ok\"} 1"), "{}", ok.body);
    assert!(ok.head.to_ascii_lowercase().contains("x-content-type-options: nosniff"), "{}", ok.head);
    // Remembered: the second scrape with the same password is served as well.
    assert_eq!(get_tls(port, &ca, "/metrics", Some(("prometheus", "right horse"))).status, 200);
    assert_eq!(get_tls(port, &ca, "/healthz", Some(("prometheus", "right horse"))).status, 200);

    for (path, auth) in [
        ("/metrics", Some(("prometheus", "wrong horse"))),
        ("/metrics", Some(("grafana", "right horse"))),
        ("/metrics", None),
        ("/healthz", None),
        ("/nothing", None),
    ] {
        let a = get_tls(port, &ca, path, auth);
        assert_eq!(a.status, 401, "{path} {auth:?}: {}\n{}", a.head, a.body);
        assert!(a.head.lines().any(|l| l.eq_ignore_ascii_case("www-authenticate: Basic")), "{}", a.head);
        assert!(!a.body.contains("scimsync_"), "{}", a.body);
    }
    // Plain HTTP gets no answer: the server waits for a TLS handshake and drops the connection.
    let plain = get_plain(port, "/metrics", Some(("prometheus", "right horse")));
    assert_eq!(plain.status, 0, "{}\n{}", plain.head, plain.body);

    // A new password takes effect on SIGHUP, for the next connection.
    write_web_config(dir.path(), "prometheus", "new horse");
    d.signal(libc::SIGHUP);
    d.wait_for("Reloaded the config.", 1, 30);
    assert_eq!(get_tls(port, &ca, "/metrics", Some(("prometheus", "right horse"))).status, 401);
    assert_eq!(get_tls(port, &ca, "/metrics", Some(("prometheus", "new horse"))).status, 200);
}

#[test]
fn a_listen_address_other_hosts_reach_needs_tls_and_authentication() {
    let site = site(YEARLY, "", "[metrics]\nlisten = \"0.0.0.0:9464\"\n");
    site.write_source(&crate::daemon::directory(&[("ann", 1)]));
    let run = site.scimsync(&["check", "--offline"]);
    assert_ne!(run.code, Some(0), "{run}");
    assert!(
        run.stderr.contains("metrics.listen: 0.0.0.0:9464 is not a loopback address")
            && run.stderr.contains("metrics.web_config_file"),
        "{run}"
    );

    // A web config with basic auth but no TLS is not enough either.
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(&web, format!("basic_auth_users:\n  prometheus: '{}'\n", hash("pw"))).unwrap();
    let text = std::fs::read_to_string(&site.config).unwrap();
    let text = text.replace(
        "listen = \"0.0.0.0:9464\"",
        &format!("listen = \"0.0.0.0:9464\"\nweb_config_file = {:?}", web.display().to_string()),
    );
    std::fs::write(&site.config, &text).unwrap();
    let run = site.scimsync(&["check", "--offline"]);
    assert_ne!(run.code, Some(0), "{run}");
    assert!(
        run.stderr.contains("metrics.web_config_file:") && run.stderr.contains("must enable TLS"),
        "{run}"
    );

    // Unknown keys in the web config are named.
    std::fs::write(&web, "basic_auth_user:\n  prometheus: x\n").unwrap();
    let run = site.scimsync(&["check", "--offline"]);
    assert!(run.stderr.contains("basic_auth_user"), "{run}");

    // With TLS and basic auth the address is accepted.
    write_web_config(dir.path(), "prometheus", "pw");
    let text =
        text.replace(&web.display().to_string(), &dir.path().join("web-config.yml").display().to_string());
    std::fs::write(&site.config, text).unwrap();
    let run = site.scimsync(&["check", "--offline"]);
    assert!(run.code == Some(0) && !run.stderr.contains("metrics."), "{run}");
}

/// Runs the openssl command (`OPENSSL_BIN` when set) in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let bin = std::env::var_os("OPENSSL_BIN").unwrap_or_else(|| "openssl".into());
    let out = Command::new(bin).current_dir(dir).args(args).output().expect("run openssl (set OPENSSL_BIN)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_verified_client_certificate_authenticates_without_a_password() {
    // A client CA and a certificate it signed (EC P-256), made here.
    let dir = tempfile::tempdir().unwrap();
    let key_args = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    let mut ca = vec!["req", "-x509"];
    ca.extend(key_args);
    ca.extend([
        "-keyout",
        "client-ca.key",
        "-out",
        "client-ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=test client CA",
    ]);
    openssl(dir.path(), &ca);
    let mut csr = vec!["req"];
    csr.extend(key_args);
    csr.extend(["-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=prometheus"]);
    openssl(dir.path(), &csr);
    std::fs::write(dir.path().join("client.ext"), "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
        .unwrap();
    openssl(
        dir.path(),
        &[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "client-ca.pem",
            "-CAkey",
            "client-ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "client.ext",
            "-out",
            "client.pem",
        ],
    );
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: client-ca.pem\n",
            test_data("tls/server.pem").display(),
            test_data("tls/server.key").display()
        ),
    )
    .unwrap();
    let port = free_port();
    let more = format!(
        "[metrics]\nlisten = \"127.0.0.1:{port}\"\nweb_config_file = {:?}\n",
        web.display().to_string()
    );
    let site = site(YEARLY, "", &more);
    site.write_source(&crate::daemon::directory(&[("ann", 1)]));
    // Verified client certificates are enough for an address other hosts reach, too.
    let reachable =
        std::fs::read_to_string(&site.config).unwrap().replace(&format!("127.0.0.1:{port}"), "0.0.0.0:9464");
    let other = site.dir.path().join("other.toml");
    std::fs::write(&other, reachable).unwrap();
    let out = crate::support::scimsync_command()
        .arg("--config")
        .arg(&other)
        .args(["check", "--offline"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !stderr.contains("metrics."), "{stderr}");

    let d = Daemon::start(&site, &[]);
    d.wait_for("Run finished.", 1, 60);
    let ca = test_data("tls/ca.pem");
    let (cert, key) = (dir.path().join("client.pem"), dir.path().join("client.key"));
    let ok = get_tls_as(port, &ca, Some((&cert, &key)), "/metrics", None);
    assert_eq!(ok.status, 200, "{}\n{}", ok.head, ok.body);
    assert!(ok.body.contains("scimsync_runs_total"), "{}", ok.body);
    // Without a certificate, or with one the client CA did not sign: no answer.
    assert_eq!(get_tls(port, &ca, "/metrics", None).status, 0);
    let (stranger, stranger_key) = (test_data("tls/self-signed.pem"), test_data("tls/self-signed.key"));
    assert_eq!(get_tls_as(port, &ca, Some((&stranger, &stranger_key)), "/metrics", None).status, 0);
}

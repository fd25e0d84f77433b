//! Real network parts between scimsync and its peers: tinyproxy, a forward HTTP proxy that
//! tunnels `CONNECT`, and stunnel, which puts TLS in front of the plain-HTTP scim2-server. Both
//! from Debian (installed by `scripts/test.sh`), one process each per test, on loopback.

use super::repo_root;
use super::scim_server::{stop_wrapped, WRAPPER};
use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// `$VAR`, else the first of `paths` that exists. Panics when there is none: a test that needs
/// the program must fail, not pass without it.
fn require(var: &str, paths: &[&str]) -> PathBuf {
    if let Some(bin) = std::env::var_os(var).filter(|b| !b.is_empty()) {
        return PathBuf::from(bin);
    }
    paths.iter().map(PathBuf::from).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("{} not found: run scripts/test.sh, which installs it from apt (or set {var})", paths[0])
    })
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// A program running until this is dropped (or the test process dies: its stdin closes then),
/// writing its log to a file.
pub struct Daemon {
    child: Child,
    stdin: Option<ChildStdin>,
    pub port: u16,
    log: PathBuf,
    dir: TempDir,
}

impl Daemon {
    /// Runs `bin args` (whose config `write_config(dir, port)` wrote), and waits until `port`
    /// accepts connections.
    fn start(bin: &Path, name: &str, config: impl Fn(&Path, u16) -> Vec<String>) -> Daemon {
        let mut last = String::new();
        for _ in 0..3 {
            let dir = tempfile::Builder::new().prefix(&format!("scimsync-{name}-")).tempdir().unwrap();
            let port = free_port();
            let args = config(dir.path(), port);
            let log = dir.path().join(format!("{name}.log"));
            let out = std::fs::File::create(dir.path().join(format!("{name}.out"))).unwrap();
            let mut child = Command::new("sh")
                .arg("-c")
                .arg(WRAPPER)
                .arg(format!("{name}-wrapper"))
                .arg(bin)
                .args(&args)
                .stdin(Stdio::piped())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
            let stdin = child.stdin.take();
            let mut daemon = Daemon { child, stdin, port, log, dir };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return daemon;
                }
                if let Ok(Some(status)) = daemon.child.try_wait() {
                    last = format!("{name} exited ({status}): {}", daemon.output());
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if last.is_empty() {
                last = format!("{name} did not listen on port {port} within 10 s: {}", daemon.output());
            }
        }
        panic!("{last}");
    }

    fn output(&self) -> String {
        let name = self.log.file_stem().unwrap().to_string_lossy().into_owned();
        std::fs::read_to_string(self.dir.path().join(format!("{name}.out"))).unwrap_or_default()
    }

    /// What the program logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        stop_wrapped(&mut self.child, self.stdin.take());
    }
}

/// tinyproxy on a free loopback port, logging every request line (`CONNECT host:port`, or the
/// absolute URL of a plain-HTTP request) to its log.
pub fn tinyproxy() -> Daemon {
    let bin = require("TINYPROXY_BIN", &["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"]);
    Daemon::start(&bin, "tinyproxy", |dir, port| {
        let conf = dir.join("tinyproxy.conf");
        let mut f = std::fs::File::create(&conf).unwrap();
        // No ConnectPort line: CONNECT to any port (the test's TLS front has a random one).
        write!(
            f,
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogFile \"{}\"\nLogLevel Info\nMaxClients 50\nAllow 127.0.0.1\n",
            dir.join("tinyproxy.log").display()
        )
        .unwrap();
        vec!["-d".into(), "-c".into(), conf.display().to_string()]
    })
}

/// stunnel on a free loopback port, serving TLS with `tests/data/tls/server.pem` (signed by
/// `tests/data/tls/ca.pem`, valid for 127.0.0.1 and localhost) and passing the plain bytes on to
/// `127.0.0.1:backend`.
pub fn stunnel(backend: u16) -> Daemon {
    let bin = require("STUNNEL_BIN", &["/usr/bin/stunnel4", "/usr/bin/stunnel"]);
    let tls = repo_root().join("tests/data/tls");
    Daemon::start(&bin, "stunnel", |dir, port| {
        let conf = dir.join("stunnel.conf");
        let mut f = std::fs::File::create(&conf).unwrap();
        write!(
            f,
            "foreground = yes\npid =\noutput = {}\n[scim]\naccept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{backend}\ncert = {}\nkey = {}\n",
            dir.join("stunnel.log").display(),
            tls.join("server.pem").display(),
            tls.join("server.key").display()
        )
        .unwrap();
        vec![conf.display().to_string()]
    })
}

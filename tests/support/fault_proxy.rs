//! A fault-injecting HTTP proxy in front of a real server (`tests/support/fault_proxy.py`): the
//! 429s, 5xx answers, connection resets, stalls and truncated bodies a real SCIM server cannot be
//! made to produce, and the behaviour of servers that implement less of RFC 7644 on demand
//! (`--reject-patch REGEX` / `remove-members-filter` / `--reject-patch-all`: 501 to a PATCH;
//! `--noop-writes-matching REGEX`: a PATCH or PUT answered with the unchanged resource;
//! `--conflict-as-500`: a duplicate answered 500). What each fault does and what its JSON-lines
//! log holds is described at the top of the Python file.

use serde_json::Value;
use std::fs;
use std::io::{BufRead, BufReader, ErrorKind};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;
use tempfile::TempDir;

/// How long a helper process may take to print its port.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `fault_proxy.py`, killed when this is dropped.
pub struct FaultProxy {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: TempDir,
}

impl FaultProxy {
    /// Starts the proxy on a free loopback port, forwarding to `upstream` (`http://HOST:PORT`,
    /// optionally with a path prefix). `args` are the proxy's own options, such as
    /// `["--seed", "7", "--rate429", "0.05", "--reset", "0.03"]`; `--log` is supplied by this
    /// helper (see [`FaultProxy::log`]).
    pub fn start(upstream: &str, args: &[&str]) -> FaultProxy {
        let dir = tempfile::Builder::new()
            .prefix("scimsync-fault-proxy-")
            .tempdir()
            .expect("create a temporary directory for the fault proxy's log");
        let log = dir.path().join("requests.jsonl");
        let script = super::repo_root().join("tests/support/fault_proxy.py");
        let mut cmd = Command::new("python3");
        cmd.arg(&script).arg("--upstream").arg(upstream).arg("--log").arg(&log).args(args);
        let (child, port) = spawn_listening(cmd, "the fault proxy (python3 tests/support/fault_proxy.py)");
        FaultProxy { child, port, log, _dir: dir }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The proxy's URL for `path_suffix` (`"/scim/v2"`, `"scim/v2/Users"` or `""`).
    pub fn url(&self, path_suffix: &str) -> String {
        match path_suffix {
            "" => self.base_url(),
            s if s.starts_with('/') => format!("{}{s}", self.base_url()),
            s => format!("{}/{s}", self.base_url()),
        }
    }

    /// Every request the proxy has answered (or reset) so far, in the order they finished; one
    /// JSON object each. An entry is written before its answer is sent, so a request whose
    /// answer the client has seen is always there.
    pub fn log(&self) -> Vec<Value> {
        let text = match fs::read_to_string(&self.log) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => return Vec::new(),
            Err(e) => panic!("read the fault proxy's log {}: {e}", self.log.display()),
        };
        text.split_inclusive('\n')
            .filter(|line| line.ends_with('\n')) // a line still being written
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("fault proxy log line {line:?} is not JSON: {e}"))
            })
            .collect()
    }

    /// The JSON-lines log file itself.
    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `cmd` with its stdout piped and waits for it to print `LISTENING <port>` (what both
/// `fault_proxy.py` and `scimmy/server.js` print once they accept connections). Its stderr goes
/// to the test's. Panics, naming `what`, when it cannot be started, exits first, or takes longer
/// than 20 s.
pub fn spawn_listening(mut cmd: Command, what: &str) -> (Child, u16) {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd.spawn().unwrap_or_else(|e| {
        panic!("cannot start {what}: {program}: {e} (scripts/test.sh installs what the tests need)")
    });
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next();
        let _ = tx.send(first.map(|l| l.unwrap_or_default()));
        // Keep draining, so anything printed later can never block the child on a full pipe.
        for _ in lines {}
    });
    let first = match rx.recv_timeout(STARTUP_TIMEOUT) {
        Ok(line) => line,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} printed no `LISTENING <port>` line within {STARTUP_TIMEOUT:?}");
        }
    };
    let port =
        first.as_deref().and_then(|l| l.strip_prefix("LISTENING ")).and_then(|p| p.trim().parse().ok());
    match port {
        Some(port) => (child, port),
        None => {
            let _ = child.kill();
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            panic!(
                "{what} did not start: expected `LISTENING <port>` on stdout, got {first:?} \
                 (exit: {status}; its stderr is above)"
            );
        }
    }
}

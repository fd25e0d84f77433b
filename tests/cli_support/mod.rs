//! Helpers for the tests that run the `scimsync` binary: a command with a clean environment,
//! temporary configs (the demo's, or a minimal one) and JSON plan output.
// Each test binary that declares `mod cli_support;` uses only part of this module.
#![allow(dead_code)]

use assert_cmd::Command;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

pub use crate::support::repo_root;

/// The `scimsync` binary, with no `SCIMSYNC_…` variables inherited from the caller's
/// environment (they would override the config under test) and default logging.
pub fn scimsync() -> Command {
    let mut cmd = Command::from_std(crate::support::scimsync_command());
    cmd.env_remove("RUST_LOG");
    cmd
}

/// A TOML basic string holding `path`.
pub fn toml_path(path: &Path) -> String {
    let s = path.to_str().expect("test paths are UTF-8");
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `config/demo.toml` with its source pointing at `config/demo/directory.ldif` by absolute path
/// and its state database in `dir`; written to `dir/demo.toml`.
pub fn demo_config(dir: &Path) -> PathBuf {
    let root = repo_root();
    let text = std::fs::read_to_string(root.join("config/demo.toml")).expect("read config/demo.toml");
    let source_line = "path = \"demo/directory.ldif\"";
    let state_line = "path = \"../target/demo/state.db\"";
    assert!(text.contains(source_line), "config/demo.toml no longer has `{source_line}`");
    assert!(text.contains(state_line), "config/demo.toml no longer has `{state_line}`");
    let text = text
        .replace(source_line, &format!("path = {}", toml_path(&root.join("config/demo/directory.ldif"))))
        .replace(state_line, &format!("path = {}", toml_path(&dir.join("state.db"))));
    let path = dir.join("demo.toml");
    std::fs::write(&path, text).expect("write the demo config");
    path
}

/// A temporary directory holding the demo config; the config's path.
pub fn demo() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = demo_config(dir.path());
    (dir, config)
}

/// A minimal LDIF config: `source`, the state database in `dir`, and `profile` when given (else
/// the default, ninjaone). Written to `dir/<name>.toml`.
pub fn minimal_config(dir: &Path, name: &str, source: &Path, profile: Option<&str>) -> PathBuf {
    let mut text = format!(
        "[source]\nkind = \"ldif\"\npath = {}\n\n[state]\npath = {}\n",
        toml_path(source),
        toml_path(&dir.join(format!("{name}.db")))
    );
    if let Some(p) = profile {
        text.push_str(&format!("\n[target]\nprofile = \"{p}\"\n"));
    }
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).expect("write the config");
    path
}

/// The process's output as text.
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr)
        })
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {:?}\n--- stdout\n{}\n--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// Runs `scimsync --config CONFIG ARGS…` to completion.
pub fn run(config: &Path, args: &[&str]) -> Output {
    run_cmd(scimsync().arg("--config").arg(config).args(args))
}

pub fn run_cmd(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run scimsync");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `scimsync plan --format json` under `config`, which must succeed.
pub fn plan_json(config: &Path) -> serde_json::Value {
    let out = run(config, &["plan", "--format", "json"]);
    assert_eq!(out.code, Some(0), "{out}");
    out.json()
}

/// `v` without any `origin` field: two reads of one directory (a live entry, an export's line)
/// name different places for the same record.
pub fn without_origins(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => Value::Object(
            m.iter().filter(|(k, _)| *k != "origin").map(|(k, v)| (k.clone(), without_origins(v))).collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_origins).collect()),
        other => other.clone(),
    }
}

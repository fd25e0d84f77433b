//! `scimsync plan` end to end on the demo directory: the three formats, `--out`, the exit codes,
//! a source that cannot be read, and the `SCIMSYNC_…` environment layer of the config.

use crate::cli_support;

use cli_support::{demo, minimal_config, repo_root, run, run_cmd, scimsync};
use serde_json::Value;

/// The demo directory against an empty snapshot (config/demo/directory.ldif).
const DEMO_SUMMARY: &str = "Plan: 35 users to create, 0 to update, 0 to reactivate, 0 to deactivate, \
     0 to delete; 6 groups to create, 0 to update, 0 to delete; 0 held, 1 skipped, 1 warnings.";

#[test]
fn text_plan_of_the_demo() {
    let (_dir, config) = demo();
    let out = run(&config, &["plan"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("Plan: 35 users to create"), "{out}");
    assert!(out.stdout.contains(DEMO_SUMMARY), "{out}");
    assert!(out.stdout.contains("+ user alovelace@example.com"), "{out}");
    assert!(out.stdout.contains("+ group \"technicians\""), "{out}");
    // The text format is the explicit default.
    let explicit = run(&config, &["plan", "--format", "text"]);
    assert_eq!(explicit.code, Some(0), "{explicit}");
    assert_eq!(explicit.stdout, out.stdout, "plan is not deterministic, or --format text is not the default");
}

#[test]
fn json_plan_of_the_demo() {
    let (_dir, config) = demo();
    let out = run(&config, &["plan", "--format", "json"]);
    assert_eq!(out.code, Some(0), "{out}");
    let plan = out.json();
    let summary = plan["summary"].as_object().unwrap_or_else(|| panic!("no summary object: {out}"));
    let expected = [
        ("create_user", 35),
        ("update_user", 0),
        ("deactivate_user", 0),
        ("reactivate_user", 0),
        ("delete_user", 0),
        ("create_group", 6),
        ("update_group", 0),
        ("delete_group", 0),
        ("held", 0),
        ("skipped", 1),
        ("warnings", 1),
    ];
    for (key, n) in expected {
        assert_eq!(summary.get(key).and_then(Value::as_u64), Some(n), "summary.{key} in {summary:?}");
    }

    let ops = plan["operations"].as_array().expect("operations is an array");
    assert!(!ops.is_empty());
    for op in ops {
        assert!(op["op"].is_string(), "operation without `op`: {op}");
        assert!(op["key"].as_str().is_some_and(|k| !k.is_empty()), "operation without `key`: {op}");
        assert!(
            op["userName"].is_string() || op["displayName"].is_string(),
            "operation with neither userName nor displayName: {op}"
        );
    }
    let count = |kind: &str| ops.iter().filter(|o| o["op"] == kind).count();
    assert_eq!(count("create_user"), 35);
    assert_eq!(count("create_group"), 6);
    assert_eq!(plan["held"].as_array().map(Vec::len), Some(0), "held: {}", plan["held"]);

    // A create carries its attributes as changes with no `before`.
    let ada = ops
        .iter()
        .find(|o| o["op"] == "create_user" && o["userName"] == "alovelace@example.com")
        .expect("a create_user for alovelace@example.com");
    let changes = ada["changes"].as_array().expect("changes");
    let after = |attr: &str| {
        changes
            .iter()
            .find(|c| c["attribute"] == attr)
            .unwrap_or_else(|| panic!("no change of {attr} in {ada}"))["after"]
            .clone()
    };
    assert_eq!(after("userType"), "technician");
    assert_eq!(after("organizationId"), "101");
    assert!(changes.iter().all(|c| c["before"].is_null()), "{ada}");

    // Users come before the memberships that name them.
    let first_membership = ops.iter().position(|o| o["op"] == "add_members");
    let last_create = ops.iter().rposition(|o| o["op"] == "create_user");
    if let (Some(m), Some(c)) = (first_membership, last_create) {
        assert!(c < m, "a membership operation (#{m}) comes before a user create (#{c})");
    }
}

#[test]
fn markdown_plan_of_the_demo() {
    let (_dir, config) = demo();
    let out = run(&config, &["plan", "--format", "markdown"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("| change | count |\n|---|---:|\n"), "{out}");
    assert!(out.stdout.contains("| users to create | 35 |"), "{out}");
    assert!(out.stdout.contains("| groups to create | 6 |"), "{out}");
    assert!(out.stdout.contains("| skipped | 1 |"), "{out}");
}

#[test]
fn out_writes_the_file_and_prints_nothing() {
    let (dir, config) = demo();
    for format in ["text", "json", "markdown"] {
        let file = dir.path().join(format!("plan.{format}"));
        let out = run(&config, &["plan", "--format", format, "--out", file.to_str().unwrap()]);
        assert_eq!(out.code, Some(0), "{format}: {out}");
        assert_eq!(out.stdout, "", "{format}: --out must print nothing on stdout");
        let written = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        // The same report as on stdout: plans are deterministic.
        let printed = run(&config, &["plan", "--format", format]);
        assert_eq!(written, printed.stdout, "{format}: --out file differs from stdout");
    }
}

#[test]
fn detailed_exitcode_is_2_with_changes_and_0_without_the_flag() {
    let (_dir, config) = demo();
    let out = run(&config, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stdout.contains("Plan: 35 users to create"), "the plan is still printed: {out}");
    let out = run(&config, &["plan", "--format", "json", "--detailed-exitcode"]);
    assert_eq!(out.code, Some(2), "{out}");
    let out = run(&config, &["plan"]);
    assert_eq!(out.code, Some(0), "{out}");
}

#[test]
fn missing_source_file_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-export.ldif");
    let config = minimal_config(dir.path(), "missing", &missing, None);
    for format in ["text", "json"] {
        let out = run(&config, &["plan", "--format", format, "--detailed-exitcode"]);
        assert_eq!(out.code, Some(1), "{out}");
        assert_eq!(out.stdout, "", "nothing is planned from a source that cannot be read: {out}");
        assert!(out.stderr.starts_with("error: reading the source failed"), "{out}");
        assert!(out.stderr.contains(&missing.display().to_string()), "the message names the path: {out}");
        assert!(out.stderr.contains("source.path"), "the message says which key to fix: {out}");
    }
}

/// The OS error of a source that cannot be opened is said once, not twice (the `{:#}` chain
/// repeats a cause that the message already prints).
#[test]
fn missing_source_message_states_the_os_error_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-export.ldif");
    let config = minimal_config(dir.path(), "missing", &missing, None);
    let out = run(&config, &["plan"]);
    assert_eq!(out.code, Some(1), "{out}");
    // ENOENT, "No such file or directory (os error 2)".
    let said = out.stderr.matches("(os error 2)").count();
    assert_eq!(said, 1, "the OS error appears {said} times:\n{}", out.stderr);
}

#[test]
fn a_failed_plan_is_recorded_as_a_failed_run() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("gone.ldif");
    let config = minimal_config(dir.path(), "failed", &missing, None);
    assert_eq!(run(&config, &["plan"]).code, Some(1));
    let out = run(&config, &["status", "--format", "json"]);
    assert_eq!(out.code, Some(0), "{out}");
    let status = out.json();
    let runs = status["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1, "{status:#}");
    let run = &runs[0];
    assert_eq!(run["kind"], "plan", "{run}");
    assert_eq!(run["outcome"], "failed", "{run}");
    assert!(run["error"].as_str().is_some_and(|e| e.contains("gone.ldif")), "the run records why: {run}");
    assert!(run["summary"].is_null(), "a failed run has no plan summary: {run}");
}

#[test]
fn env_overrides_source_path() {
    let (_dir, config) = demo();
    let other = repo_root().join("tests/data/slapd/directory.ldif");
    let out = run_cmd(
        scimsync().env("SCIMSYNC_SOURCE__PATH", &other).args(["--config"]).arg(&config).args(["plan"]),
    );
    assert_eq!(out.code, Some(0), "{out}");
    // tests/data/slapd/directory.ldif: 14 people, 5 groups (the demo has 35 users and 6 groups).
    assert!(out.stdout.contains("Plan: 14 users to create"), "{out}");
    assert!(out.stdout.contains("5 groups to create"), "{out}");
    assert!(out.stdout.contains("+ user jmueller@example.com"), "{out}");
    assert!(!out.stdout.contains("alovelace@example.com"), "the demo directory was read: {out}");

    // An override to a file that does not exist fails naming that file, not the config's.
    let gone = repo_root().join("tests/data/slapd/no-such.ldif");
    let out = run_cmd(
        scimsync().env("SCIMSYNC_SOURCE__PATH", &gone).args(["--config"]).arg(&config).args(["plan"]),
    );
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("no-such.ldif"), "{out}");
}

//! `scimsync check`: config validation reports every problem at once, each with its key (SPEC §9:
//! "Unknown keys are errors, and validation reports every problem at once with its key").

use crate::cli_support;

use cli_support::{demo, minimal_config, repo_root, run, run_cmd, scimsync, toml_path};
use std::path::{Path, PathBuf};

/// Writes `text` to `dir/name`, with an empty `x.ldif` beside it for `source.path`.
fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    std::fs::write(dir.join("x.ldif"), "").unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Whether stderr reports a problem under `key` (one `  key: message` line per problem). A key
/// may also be written with its last part quoted, as TOML allows (`mapping.user."title"`).
fn names_key(stderr: &str, key: &str) -> bool {
    let quoted = match key.rsplit_once('.') {
        Some((head, last)) => format!("{head}.\"{last}\""),
        None => format!("\"{key}\""),
    };
    stderr.lines().any(|l| {
        let l = l.trim_start();
        l.starts_with(&format!("{key}:")) || l.starts_with(&format!("{quoted}:"))
    })
}

fn missing_keys<'a>(stderr: &str, keys: &[&'a str]) -> Vec<&'a str> {
    keys.iter().copied().filter(|k| !names_key(stderr, k)).collect()
}

/// One config with six problems of three kinds: an unknown key (found while deserialising), a
/// value of the right type that validation refuses, and a CEL expression that does not compile.
const SIX_PROBLEMS: &str = r#"
[source]
kind = "nosuch"
path = "x.ldif"

[target]
urll = "https://example.com/scim"
url = "http://example.com/scim"

[schedule]
cron = "* *"

[policy]
membership_chunk = 0

[mapping.user]
title = { expr = "user.(" }
"#;

const SIX_KEYS: [&str; 6] = [
    "target.urll",
    "target.url",
    "schedule.cron",
    "policy.membership_chunk",
    "mapping.user.title",
    "source.kind",
];

#[test]
fn check_offline_reports_every_problem_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "bad.toml", SIX_PROBLEMS);
    let out = run(&config, &["check", "--offline"]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.starts_with("error: invalid config"), "{out}");
    let missing = missing_keys(&out.stderr, &SIX_KEYS);
    assert!(missing.is_empty(), "problems not reported: {missing:?}\n{out}");
    assert!(out.stderr.contains("(6 problems)"), "{out}");
}

/// The same problems without the unknown key: validation itself collects everything.
#[test]
fn validation_problems_are_reported_together() {
    let dir = tempfile::tempdir().unwrap();
    let text = SIX_PROBLEMS.replace("urll = \"https://example.com/scim\"\n", "");
    let config = write_config(dir.path(), "bad.toml", &text);
    let out = run(&config, &["check", "--offline"]);
    assert_eq!(out.code, Some(1), "{out}");
    let keys = &SIX_KEYS[1..];
    let missing = missing_keys(&out.stderr, keys);
    assert!(missing.is_empty(), "problems not reported: {missing:?}\n{out}");
    assert!(out.stderr.contains("(5 problems)"), "{out}");
    assert!(out.stderr.contains("plain http is allowed only for loopback hosts"), "{out}");
    assert!(out.stderr.contains("invalid CEL expression"), "{out}");
}

#[test]
fn unknown_keys_in_every_section_are_all_reported() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
colour = "blue"
[source]
path = "x.ldif"
pth = "y.ldif"
[target]
profil = "generic"
[state]
paht = "s.db"
[mapping]
users = {}
"#;
    let config = write_config(dir.path(), "unknown.toml", text);
    let out = run(&config, &["check", "--offline"]);
    assert_eq!(out.code, Some(1), "{out}");
    let keys = ["colour", "source.pth", "target.profil", "state.paht", "mapping.users"];
    let missing = missing_keys(&out.stderr, &keys);
    assert!(missing.is_empty(), "unknown keys not reported: {missing:?}\n{out}");
    assert!(out.stderr.contains("unknown key"), "{out}");
}

/// A value of the wrong type stops deserialisation; the unknown keys after it and every
/// validation problem must still be reported.
#[test]
fn a_type_error_does_not_hide_other_problems() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
[source]
kind = "nosuch"
path = "x.ldif"

[target]
concurrency = "many"
urll = "https://example.com/scim"

[schedule]
cron = "* *"
"#;
    let config = write_config(dir.path(), "typed.toml", text);
    let out = run(&config, &["check", "--offline"]);
    assert_eq!(out.code, Some(1), "{out}");
    let keys = ["target.concurrency", "target.urll", "source.kind", "schedule.cron"];
    let missing = missing_keys(&out.stderr, &keys);
    assert!(missing.is_empty(), "problems not reported: {missing:?}\n{out}");
}

#[test]
fn unknown_key_from_the_environment_names_its_origin() {
    let (_dir, config) = demo();
    let out = run_cmd(
        scimsync()
            .env("SCIMSYNC_TARGET__URLL", "https://x")
            .arg("--config")
            .arg(&config)
            .args(["check", "--offline"]),
    );
    assert_eq!(out.code, Some(1), "{out}");
    assert!(names_key(&out.stderr, "target.urll"), "{out}");
    assert!(out.stderr.contains("SCIMSYNC_"), "the message says the key came from the environment: {out}");
}

#[test]
fn valid_configs_pass_check_offline() {
    let (_dir, config) = demo();
    let out = run(&config, &["check", "--offline"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("is valid"), "{out}");

    // Only the contract keys of SPEC §9, every other setting defaulted.
    let dir = tempfile::tempdir().unwrap();
    let source = repo_root().join("config/demo/directory.ldif");
    let text = format!(
        "[source]\nkind = \"ldif\"\npath = {}\n\n[target]\nurl = \"https://app.ninjarmm.com/ws/scim/v2\"\n\
         profile = \"ninjaone\"\ntoken_file = \"target.token\"\n\n[state]\npath = {}\n\n\
         [schedule]\ncron = \"0 */15 * * * *\"\nwatch = true\n\n[metrics]\nlisten = \"127.0.0.1:9464\"\n",
        toml_path(&source),
        toml_path(&dir.path().join("state.db"))
    );
    let config = write_config(dir.path(), "contract.toml", &text);
    let out = run(&config, &["check", "--offline"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.stderr, "", "{out}");
}

#[test]
fn check_without_offline_reads_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let config = minimal_config(
        dir.path(),
        "online",
        &repo_root().join("config/demo/directory.ldif"),
        Some("generic"),
    );
    // The source is read; with no target configured the connection test cannot pass.
    let out = run(&config, &["check"]);
    assert!(out.stdout.contains("35 users and 6 groups mapped"), "{out}");
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("target.url is not set"), "{out}");

    let config = minimal_config(dir.path(), "gone", &dir.path().join("gone.ldif"), None);
    assert_eq!(run(&config, &["check", "--offline"]).code, Some(0), "--offline reads nothing");
    let out = run(&config, &["check"]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("gone.ldif"), "{out}");
}

#[test]
fn missing_config_file_says_to_pass_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("nowhere.toml");
    for args in
        [&["check", "--offline"][..], &["check"], &["plan"], &["status"], &["preview", "x@example.com"]]
    {
        let out = run(&config, args);
        assert_eq!(out.code, Some(1), "{args:?}: {out}");
        assert!(out.stderr.starts_with("error: "), "{args:?}: {out}");
        assert!(out.stderr.contains("nowhere.toml"), "{args:?}: the message names the file: {out}");
        assert!(out.stderr.contains("--config"), "{args:?}: the message says to pass --config: {out}");
    }
}

/// Error messages point administrators at `config/scimsync.example.toml`, and SPEC §9 wants a
/// fully commented example in `config/`: it must exist and be a valid config.
#[test]
fn the_example_config_the_messages_point_to_exists_and_is_valid() {
    let example = repo_root().join("config/scimsync.example.toml");
    assert!(example.is_file(), "{} is missing (error messages tell users to read it)", example.display());
    let out = run(&example, &["check", "--offline"]);
    assert_eq!(out.code, Some(0), "{out}");
}

/// ninjaone takes no phone number: a phone path the mapping names is a config error under its
/// key, beside any other problem of the mapping's keys.
#[test]
fn a_phone_path_under_ninjaone_is_a_config_error_naming_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
[source]
path = "x.ldif"
[target]
profile = "ninjaone"
[mapping.user]
'phoneNumbers[type eq "home"].value' = { from = "homePhone" }
"name formatted" = { from = "cn" }
"name.formatted" = { from = "cn" }
"#;
    let config = write_config(dir.path(), "phone.toml", text);
    let out = run(&config, &["check", "--offline"]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("(2 problems)"), "{out}");
    let line =
        |key: &str| out.stderr.lines().map(str::trim_start).find(|l| l.starts_with(key)).map(str::to_owned);
    let phone =
        line(r#"mapping.user."phoneNumbers[type eq \"home\"].value": "#).unwrap_or_else(|| panic!("{out}"));
    assert!(phone.contains("never sent to a ninjaone target"), "{out}");
    let bad = line(r#"mapping.user."name formatted": "#).unwrap_or_else(|| panic!("{out}"));
    assert!(bad.contains("is not a SCIM attribute path") && bad.contains("name.formatted"), "{out}");
}

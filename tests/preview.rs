//! `scimsync preview USER...`: the mapped values of named source users on the demo config
//! (group assignments, the CEL organizationId rule, group → role rules).

use crate::cli_support;

use cli_support::{demo, run};

/// The value column of the line `    NAME    VALUE` in the text preview.
fn field<'a>(stdout: &'a str, name: &str) -> Option<&'a str> {
    stdout
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(name).filter(|r| r.starts_with(' ')).map(str::trim))
}

#[test]
fn preview_shows_the_mapped_technician() {
    let (_dir, config) = demo();
    let out = run(&config, &["preview", "alovelace@example.com"]);
    assert_eq!(out.code, Some(0), "{out}");
    // Set by the group assignment of `technicians`.
    assert_eq!(field(&out.stdout, "userType"), Some("\"technician\""), "{out}");
    // From the CEL rule: o = Acme → "101".
    assert_eq!(field(&out.stdout, "organizationId"), Some("\"101\""), "{out}");
    assert_eq!(field(&out.stdout, "userName"), Some("\"alovelace@example.com\""), "{out}");
    let roles = field(&out.stdout, "roles").unwrap_or_else(|| panic!("no roles line: {out}"));
    assert!(roles.contains("\"Help Desk\""), "{out}");
    assert!(out.stdout.contains("technicians"), "the source groups are shown: {out}");
}

#[test]
fn preview_json_has_the_same_values() {
    let (_dir, config) = demo();
    let out = run(&config, &["preview", "alovelace@example.com", "--format", "json"]);
    assert_eq!(out.code, Some(0), "{out}");
    let v = out.json();
    let user = &v["users"][0];
    let attrs = &user["mapped"]["attributes"];
    assert_eq!(attrs["userType"], "technician", "{v:#}");
    assert_eq!(attrs["organizationId"], "101", "{v:#}");
    assert!(user["mapped"]["roles"].as_array().is_some_and(|r| r.iter().any(|x| x == "Help Desk")), "{v:#}");
    assert_eq!(v["not_found"].as_array().map(Vec::len), Some(0), "{v:#}");
}

#[test]
fn preview_of_an_unknown_user_fails() {
    let (_dir, config) = demo();
    let out = run(&config, &["preview", "nosuch@example.com"]);
    assert_eq!(out.code, Some(1), "{out}");
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(said.contains("nosuch@example.com"), "{out}");
    assert!(said.contains("no such user"), "{out}");

    // A known and an unknown user: the known one is shown, the run still fails.
    let out = run(&config, &["preview", "alovelace@example.com", "nosuch@example.com"]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stdout.contains("alovelace@example.com"), "{out}");
}

/// SPEC §7: exit 1 is an error whose message goes to stderr.
#[test]
fn preview_of_an_unknown_user_says_so_on_stderr() {
    let (_dir, config) = demo();
    let out = run(&config, &["preview", "nosuch@example.com"]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("no such user"), "{out}");
}

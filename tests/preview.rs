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

const CUSTOM_LDIF: &str = "\
dn: uid=ada,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: ada
cn: Ada Lovelace
givenName: Ada
sn: Lovelace
mail: ada@example.com
departmentNumber: R&D
l: London
entryUUID: 6f1c9a2e-0000-4000-8000-000000000001
";

const DEPARTMENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department";
const LOCALITY: &str = "addresses[type eq \"work\"].locality";

/// A generic-profile config mapping three attributes that are not built in: a core
/// sub-attribute, an enterprise extension attribute and a sub-attribute of a typed entry.
fn custom_config(dir: &std::path::Path) -> std::path::PathBuf {
    let source = dir.join("people.ldif");
    std::fs::write(&source, CUSTOM_LDIF).unwrap();
    let config = cli_support::minimal_config(dir, "custom", &source, Some("generic"));
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[mapping.user]\n\"name.formatted\" = {{ from = \"cn\" }}\n\"{DEPARTMENT}\" = {{ from = \"departmentNumber\" }}\n'{LOCALITY}' = {{ from = \"l\" }}\n"
    ));
    std::fs::write(&config, text).unwrap();
    config
}

/// `preview` and `plan` show custom attributes as they show the built-in ones: under their
/// path, after the built-ins, in the text and in the JSON.
#[test]
fn custom_attributes_are_previewed_and_planned_like_built_in_ones() {
    let dir = tempfile::tempdir().unwrap();
    let config = custom_config(dir.path());

    let out = run(&config, &["preview", "ada@example.com"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(field(&out.stdout, "name.formatted"), Some("\"Ada Lovelace\""), "{out}");
    assert_eq!(field(&out.stdout, DEPARTMENT), Some("\"R&D\""), "{out}");
    assert_eq!(field(&out.stdout, LOCALITY), Some("\"London\""), "{out}");
    assert_eq!(field(&out.stdout, "name.givenName"), Some("\"Ada\""), "{out}");
    let out = run(&config, &["preview", "ada@example.com", "--format", "json"]);
    assert_eq!(out.code, Some(0), "{out}");
    let attrs = &out.json()["users"][0]["mapped"]["attributes"];
    assert_eq!(attrs[DEPARTMENT], "R&D", "{attrs:#}");
    assert_eq!(attrs[LOCALITY], "London", "{attrs:#}");

    let out = run(&config, &["plan"]);
    assert_eq!(out.code, Some(0), "{out}");
    let lines: Vec<&str> = out.stdout.lines().map(str::trim).collect();
    let at = |prefix: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line: {out}"))
    };
    assert_eq!(lines[at(LOCALITY)], format!("{LOCALITY} \"London\""), "{out}");
    assert_eq!(lines[at(DEPARTMENT)], format!("{DEPARTMENT} \"R&D\""), "{out}");
    assert!(lines[at("name.formatted")].ends_with(" \"Ada Lovelace\""), "{out}");
    // Built-ins first, then the custom attributes by name.
    assert!(at("externalId") < at(LOCALITY), "{out}");
    assert!(at(LOCALITY) < at("name.formatted") && at("name.formatted") < at(DEPARTMENT), "{out}");

    let out = run(&config, &["plan", "--format", "json"]);
    assert_eq!(out.code, Some(0), "{out}");
    let doc = out.json();
    let create = &doc["operations"][0];
    assert_eq!(create["op"], "create_user", "{doc:#}");
    let after = |attr: &str| {
        create["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["attribute"] == attr)
            .map(|c| c["after"].clone())
    };
    assert_eq!(after(DEPARTMENT), Some("R&D".into()), "{create:#}");
    assert_eq!(after("name.formatted"), Some("Ada Lovelace".into()), "{create:#}");
    // The plan as saved for `apply` carries them under their paths too.
    assert_eq!(doc["plan"]["ops"][0]["user"]["attrs"][LOCALITY], "London", "{doc:#}");
}

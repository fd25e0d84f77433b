//! `scimsync plan --format json` over real LDIF exports (the shared corpus beside the checkout
//! when present, else the copies in `tests/data/ldif/`, plus fresh slapd exports): the plan's
//! counts must equal what this test counts itself from the entries.
//!
//! The test reads records with scimsync's LDIF reader but decides on its own, from SPEC §2 and
//! §5, which entries are users and groups:
//! - groups: entries with objectClass groupOfNames, groupOfUniqueNames, posixGroup or group;
//! - users: every other entry with a userName, the first non-empty `mail`, else
//!   `userPrincipalName`; under the ninjaone profile the userName must also be an email address;
//! - users sharing a userName case-insensitively are all left out (and reported as skipped).

use crate::cli_support;
use crate::support;

use cli_support::{minimal_config, repo_root, run, Output};
use scimsync::source::{Record, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use support::{read_ldif, slapd_export, test_data};

const GROUP_CLASSES: [&str; 4] = ["groupofnames", "groupofuniquenames", "posixgroup", "group"];

/// Text values of an attribute, its name compared case-insensitively and options dropped.
fn texts<'a>(r: &'a Record, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    r.attrs.iter().filter_map(move |(desc, v)| {
        let base = desc.split(';').next().unwrap_or(desc);
        match v {
            Value::Text(t) if base.eq_ignore_ascii_case(name) => Some(t.as_str()),
            _ => None,
        }
    })
}

fn is_group(r: &Record) -> bool {
    texts(r, "objectClass").any(|c| GROUP_CLASSES.contains(&c.trim().to_lowercase().as_str()))
}

fn user_name(r: &Record) -> Option<String> {
    ["mail", "userPrincipalName"]
        .iter()
        .find_map(|a| texts(r, a).map(str::trim).find(|v| !v.is_empty()))
        .map(str::to_owned)
}

/// `local@domain`, both parts non-empty, no white space.
fn is_email(s: &str) -> bool {
    let Some(at) = s.find('@') else { return false };
    at > 0 && at + 1 < s.len() && !s.chars().any(char::is_whitespace)
}

/// What a plan of a file against an empty snapshot must contain.
#[derive(Debug, PartialEq, Eq)]
struct Expected {
    create_user: u64,
    create_group: u64,
    /// Users left out for sharing a userName, plus (ninjaone) userNames that are no email.
    at_least_skipped: u64,
}

fn expected(records: &[Record], ninjaone: bool) -> Expected {
    let groups = records.iter().filter(|r| is_group(r)).count() as u64;
    let mut names = Vec::new();
    let mut not_email = 0;
    for r in records.iter().filter(|r| !is_group(r)) {
        match user_name(r) {
            Some(n) if ninjaone && !is_email(&n) => not_email += 1,
            Some(n) => names.push(n.to_lowercase()),
            None => {}
        }
    }
    let mut count: HashMap<&str, u64> = HashMap::new();
    for n in &names {
        *count.entry(n).or_default() += 1;
    }
    let unique = count.values().filter(|&&c| c == 1).count() as u64;
    let duplicated: u64 = count.values().filter(|&&c| c > 1).sum();
    Expected { create_user: unique, create_group: groups, at_least_skipped: duplicated + not_email }
}

/// The LDIF files to plan: the shared corpus (`../shared/ldif-corpus/**`) when it is there,
/// else the copies in `tests/data/ldif/`. The newer files (copied to `tests/data/ldif-more/`)
/// have expectations of their own, file by file, in `corpus_expectations.rs`.
fn corpus() -> Vec<PathBuf> {
    let shared = repo_root().join("../shared/ldif-corpus");
    let dir = if shared.is_dir() { shared } else { test_data("ldif") };
    let mut files = Vec::new();
    collect_ldif(&dir, &mut files);
    let more = test_data("ldif-more");
    files.retain(|f| f.strip_prefix(&dir).map_or(true, |rel| !more.join(rel).is_file()));
    files.sort();
    assert!(files.len() >= 4, "too few LDIF files in {}: {files:?}", dir.display());
    files
}

fn collect_ldif(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_ldif(&path, out);
        } else if path.extension().is_some_and(|e| e == "ldif") {
            out.push(path);
        }
    }
}

fn is_change_file(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("test-modify"))
}

/// Plans `file` under `profile` (None: the default, ninjaone) and compares the summary with
/// the independent count; a description of every mismatch.
fn check_file(tmp: &Path, file: &Path, profile: Option<&str>) -> Vec<String> {
    let label = format!("{} [{}]", file.display(), profile.unwrap_or("default"));
    let name = format!("{}-{}", file.file_stem().unwrap().to_string_lossy(), profile.unwrap_or("default"));
    let config = minimal_config(tmp, &name, file, profile);
    let out = run(&config, &["plan", "--format", "json"]);
    if out.code != Some(0) {
        return vec![format!("{label}: plan failed:\n{out}")];
    }
    let ninjaone = matches!(profile, None | Some("ninjaone"));
    let want = expected(&read_ldif(file), ninjaone);
    let plan = out.json();
    let summary = &plan["summary"];
    let get = |k: &str| summary[k].as_u64().unwrap_or_else(|| panic!("{label}: summary.{k} in {summary}"));
    let mut problems = Vec::new();
    if get("create_user") != want.create_user {
        problems.push(format!("{label}: create_user {} != {} counted", get("create_user"), want.create_user));
    }
    if get("create_group") != want.create_group {
        problems.push(format!(
            "{label}: create_group {} != {} counted",
            get("create_group"),
            want.create_group
        ));
    }
    if get("skipped") < want.at_least_skipped {
        problems.push(format!("{label}: skipped {} < {} counted", get("skipped"), want.at_least_skipped));
    }
    for k in ["held", "update_user", "deactivate_user", "reactivate_user", "delete_user", "delete_group"] {
        if get(k) != 0 {
            problems.push(format!("{label}: {k} = {} against an empty snapshot", get(k)));
        }
    }
    let ops = plan["operations"].as_array().map_or(0, Vec::len) as u64;
    if ops < want.create_user + want.create_group {
        problems.push(format!("{label}: {ops} operations for {want:?}"));
    }
    problems
}

fn check_corpus(profile: Option<&str>) {
    let tmp = tempfile::tempdir().unwrap();
    let mut problems = Vec::new();
    let mut planned = 0;
    for file in corpus().iter().filter(|f| !is_change_file(f)) {
        problems.extend(check_file(tmp.path(), file, profile));
        planned += 1;
    }
    assert!(planned >= 3, "only {planned} files planned");
    assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn corpus_plans_match_independent_counts_generic() {
    check_corpus(Some("generic"));
}

#[test]
fn corpus_plans_match_independent_counts_ninjaone_default() {
    check_corpus(None);
}

#[test]
fn change_records_are_refused_naming_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = corpus().into_iter().filter(|f| is_change_file(f)).collect();
    assert!(!files.is_empty(), "no test-modify.ldif in the corpus");
    for file in files {
        for profile in [Some("generic"), None] {
            let config = minimal_config(tmp.path(), "modify", &file, profile);
            let out: Output = run(&config, &["plan", "--format", "json"]);
            assert_eq!(out.code, Some(1), "{}: {out}", file.display());
            assert_eq!(out.stdout, "", "{out}");
            assert!(out.stderr.starts_with("error: "), "{out}");
            assert!(
                out.stderr.contains("changetype") || out.stderr.contains("change record"),
                "the message says what is wrong: {out}"
            );
            assert!(out.stderr.contains("test-modify.ldif:"), "the message names file:line: {out}");
        }
    }
}

/// The counting above, checked on a directory whose contents are known by hand.
#[test]
fn the_independent_count_of_the_test_directory() {
    let records = read_ldif(&test_data("slapd/directory.ldif"));
    let want = Expected { create_user: 14, create_group: 5, at_least_skipped: 0 };
    assert_eq!(expected(&records, false), want);
    assert_eq!(expected(&records, true), want);
}

#[test]
fn slapd_exports_plan_like_the_independent_count() {
    let export = slapd_export(&test_data("slapd/directory.ldif"));
    let tmp = tempfile::tempdir().unwrap();
    let mut problems = Vec::new();
    for (_, path) in export.all() {
        assert_eq!(
            expected(&read_ldif(&path), true),
            Expected { create_user: 14, create_group: 5, at_least_skipped: 0 },
            "{}",
            path.display()
        );
        for profile in [Some("generic"), None] {
            problems.extend(check_file(tmp.path(), &path, profile));
        }
    }
    assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
}

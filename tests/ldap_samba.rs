//! The live LDAP source (`kind = "ldap"`) against a real Active Directory: a Samba AD DC run by
//! `scripts/samba-ad.sh` with 1,600 users, a disabled user, a 1,600-member group (more than
//! AD's 1,500 values per range), nested groups and a computer.
//!
//! Samba listens on fixed ports (389, 636), so every check is in the one test below: at most one
//! Samba runs, and it is stopped whatever happens. Samba needs root (the ports, its database's
//! ownership); the test fails, rather than passes, without it.

use crate::cli_support::{plan_json, repo_root, run, toml_path, without_origins, Output};
use crate::support::slapd_live::{ldap_tool, ldapsearch_bin};
use base64::Engine as _;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

const USERS: usize = 1600;

/// A running Samba AD DC; stopped (`samba-ad.sh stop DIR`) when dropped, also when the test
/// panics or the start failed half-way.
struct Samba {
    dir: tempfile::TempDir,
    env: HashMap<String, String>,
}

fn script() -> PathBuf {
    repo_root().join("scripts/samba-ad.sh")
}

impl Samba {
    fn start() -> Samba {
        let mut samba = Samba { dir: tempfile::tempdir().expect("temporary directory"), env: HashMap::new() };
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(samba.dir.path())
            .output()
            .expect("run scripts/samba-ad.sh");
        assert!(
            out.status.success(),
            "scripts/samba-ad.sh start failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let env = std::fs::read_to_string(samba.dir.path().join("env")).expect("samba-ad.sh writes DIR/env");
        for line in env.lines() {
            let (k, v) = line.split_once('=').unwrap_or_else(|| panic!("bad line in DIR/env: {line}"));
            samba.env.insert(k.to_owned(), v.trim_matches('\'').to_owned());
        }
        samba
    }

    fn get(&self, key: &str) -> &str {
        self.env.get(key).unwrap_or_else(|| panic!("DIR/env has no {key}: {:?}", self.env))
    }
}

impl Drop for Samba {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(script()).arg("stop").arg(self.dir.path()).status();
    }
}

/// `ldapsearch -x` bound as the administrator, reading no ldap.conf: LDIF without line wrapping.
fn ldapsearch(samba: &Samba, args: &[&str]) -> String {
    let out = Command::new(ldapsearch_bin())
        .env("LDAPNOINIT", "1")
        .args(["-LLL", "-o", "ldif-wrap=no", "-x", "-H", samba.get("URL"), "-D", samba.get("BIND_DN")])
        .args(["-w", samba.get("PASSWORD")])
        .args(args)
        .output()
        .expect("run ldapsearch");
    assert!(
        out.status.success(),
        "ldapsearch {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("ldapsearch prints UTF-8")
}

/// The LDIF records of `ldif` as (DN, [(attribute, value as printed)]).
fn records(ldif: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for line in ldif.lines() {
        if let Some(dn) = line.strip_prefix("dn: ") {
            out.push((dn.to_owned(), Vec::new()));
        } else if let (Some((k, v)), Some(last)) = (line.split_once(':'), out.last_mut()) {
            if !line.starts_with('#') {
                last.1.push((k.to_owned(), v.trim_start_matches(':').trim().to_owned()));
            }
        }
    }
    out
}

/// The canonical GUID string of a base64 objectGUID: what scimsync keys an AD entry by.
fn guid(base64: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD.decode(base64).expect("objectGUID is base64");
    let bytes: [u8; 16] = bytes.try_into().expect("objectGUID has 16 bytes");
    uuid::Uuid::from_bytes_le(bytes).hyphenated().to_string()
}

/// sAMAccountName → canonical objectGUID of every user and computer entry, as ldapsearch reads it.
fn guids(samba: &Samba) -> BTreeMap<String, String> {
    let ldif = ldapsearch(
        samba,
        &[
            "-E",
            "pr=500/noprompt",
            "-b",
            samba.get("BASE_DN"),
            "(objectClass=user)",
            "sAMAccountName",
            "objectGUID",
        ],
    );
    let mut map = BTreeMap::new();
    for (dn, attrs) in records(&ldif) {
        let get =
            |name: &str| attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
        let (Some(sam), Some(g)) = (get("sAMAccountName"), get("objectGUID")) else {
            panic!("{dn} lacks sAMAccountName or objectGUID: {attrs:?}")
        };
        map.insert(sam, guid(&g));
    }
    map
}

fn write_config(dir: &Path, name: &str, source: &str) -> PathBuf {
    let text = format!("{source}\n[state]\npath = {}\n", toml_path(&dir.join(format!("{name}.db"))));
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// `[source]` reading the DC at `url` as the administrator, with `extra` keys.
fn ldap_source(samba: &Samba, password_file: &Path, url: &str, extra: &str) -> String {
    format!(
        "[source]\nkind = \"ldap\"\nurl = \"{url}\"\nbind_dn = \"{}\"\npassword_file = {}\nbase_dn = \"{}\"\n\
         timeout_secs = 30\n{extra}\n",
        samba.get("BIND_DN"),
        toml_path(password_file),
        samba.get("BASE_DN"),
    )
}

/// What two plans of one directory must share: operations, held operations and skipped
/// records, without the origins (a live entry and an export line name different places). The
/// skipped records are in key order: a plan orders them by origin, which is the export's line
/// for an LDIF source but the same server and filter for every entry of a live read.
fn comparable(plan: &Value) -> Value {
    let mut skipped = without_origins(&plan["skipped"]).as_array().expect("skipped").clone();
    skipped.sort_by_key(|s| s.to_string());
    without_origins(&serde_json::json!({
        "ops": plan["plan"]["ops"],
        "held": plan["plan"]["held"],
        "skipped": skipped,
    }))
}

/// Panics with the first place where `a` and `b` differ (the plans are too big to print whole).
fn assert_same(a: &Value, b: &Value, what: &str) {
    fn first_difference(a: &Value, b: &Value, at: String) -> Option<String> {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                keys.into_iter().find_map(|k| {
                    let null = Value::Null;
                    first_difference(
                        x.get(k).unwrap_or(&null),
                        y.get(k).unwrap_or(&null),
                        format!("{at}.{k}"),
                    )
                })
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
                .iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (x, y))| first_difference(x, y, format!("{at}[{i}]"))),
            (Value::Array(x), Value::Array(y)) => {
                Some(format!("{at}: {} items against {}", x.len(), y.len()))
            }
            _ if a == b => None,
            _ => Some(format!("{at}: {a} against {b}")),
        }
    }
    if let Some(d) = first_difference(a, b, String::new()) {
        panic!("{what}: {d}\n(skipped: {:#} against {:#})", a["skipped"], b["skipped"]);
    }
}

fn ops<'a>(plan: &'a Value, op: &str) -> impl Iterator<Item = &'a Value> + 'a {
    let op = op.to_owned();
    plan["plan"]["ops"].as_array().expect("plan.ops").iter().filter(move |o| o["op"] == op.as_str())
}

/// The members a plan adds to the group named `name` (its add_members operations may be split).
fn members(plan: &Value, name: &str) -> Vec<String> {
    ops(plan, "add_members")
        .filter(|o| o["display_name"] == name)
        .flat_map(|o| o["members"].as_array().expect("members").iter())
        .map(|m| m.as_str().expect("member key").to_owned())
        .collect()
}

fn check_output(config: &Path) -> Output {
    // There is no target in the config: check reports the source, then fails on target.url.
    let out = run(config, &["check"]);
    assert!(out.stdout.contains("source read: "), "{out}");
    out
}

fn change_marker(out: &Output) -> String {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix("ldap: change marker "))
        .unwrap_or_else(|| panic!("check prints no change marker:\n{out}"))
        .split(" (")
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn ldap_samba_ad_dc_is_read_whole_and_as_its_export() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    assert!(
        root,
        "this test runs a Samba AD DC (scripts/samba-ad.sh), which needs root: it binds the fixed \
         ports 389 and 636; run the test suite as root"
    );
    let samba = Samba::start();
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, samba.get("PASSWORD")).unwrap();
    std::fs::set_permissions(&password_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let ids = guids(&samba);
    let id =
        |sam: &str| ids.get(sam).unwrap_or_else(|| panic!("no user {sam} in {} users", ids.len())).clone();
    let user_ids: BTreeSet<String> = (1..=USERS).map(|i| id(&format!("user{i:04}"))).collect();
    assert_eq!(user_ids.len(), USERS, "objectGUIDs are distinct");

    let live_config =
        write_config(dir.path(), "live", &ldap_source(&samba, &password_file, samba.get("URL"), ""));
    let live = plan_json(&live_config);

    // 1. The 1,600 users are created, active, under their mail address.
    let created: Vec<&Value> = ops(&live, "create_user").collect();
    let names: BTreeSet<&str> =
        created.iter().map(|o| o["user"]["attrs"]["userName"].as_str().unwrap()).collect();
    let want: BTreeSet<String> = (1..=USERS).map(|i| format!("user{i:04}@scimsync.test")).collect();
    assert_eq!(names, want.iter().map(String::as_str).collect(), "{:#}", live["summary"]);
    assert_eq!(created.len(), USERS, "{:#}", live["summary"]);
    assert!(created.iter().all(|o| o["user"]["active"] == true));
    let skipped = live["skipped"].as_array().unwrap();
    let skip_of = |key: &str| skipped.iter().find(|s| s["key"] == key);
    // `disabled` (userAccountControl 546: bit 0x2) is read as a user, inactive; an inactive user
    // that was never provisioned is not created, so against an empty state it is skipped.
    let disabled =
        skip_of(&id("disabled")).unwrap_or_else(|| panic!("`disabled` is not skipped: {skipped:#?}"));
    assert_eq!(
        disabled["reason"], "disabled@scimsync.test is inactive in the source and was never provisioned",
        "{disabled:#}"
    );
    // Administrator, Guest and krbtgt are users of the user filter but have neither mail nor
    // userPrincipalName, so the default mapping (ninjaone: userName is an email) skips them.
    for sam in ["Administrator", "Guest", "krbtgt"] {
        let s = skip_of(&id(sam)).unwrap_or_else(|| panic!("{sam} is not skipped: {skipped:#?}"));
        assert!(s["reason"].as_str().unwrap().starts_with("no userName"), "{sam}: {s:#}");
    }
    assert_eq!(skipped.len(), 4, "{skipped:#?}");
    // WS01 and the DC's own account are computers: never a user, never skipped as one.
    let text = live.to_string();
    for sam in ["WS01$", "DC1$"] {
        assert!(!text.contains(&id(sam)), "computer {sam} appears in the plan");
    }
    assert!(!text.to_ascii_lowercase().contains("ws01"), "WS01 appears in the plan");

    // 4. Each user's key (and externalId) is the canonical string of its objectGUID.
    for o in &created {
        let user = &o["user"];
        let name = user["attrs"]["userName"].as_str().unwrap();
        let sam = name.strip_suffix("@scimsync.test").unwrap();
        assert_eq!(user["key"], id(sam).as_str(), "{name}");
        assert_eq!(user["attrs"]["externalId"], id(sam).as_str(), "{name}");
    }

    // 2. `big` gets all 1,600 members, though AD sends at most 1,500 values per range...
    let big = members(&live, "big");
    assert_eq!(big.len(), USERS, "members of big");
    assert_eq!(big.iter().cloned().collect::<BTreeSet<_>>(), user_ids);
    // ...as Samba does when asked for the first range, as scimsync asks on AD.
    let whole = ldapsearch(
        &samba,
        &["-b", &format!("CN=big,OU=People,{}", samba.get("BASE_DN")), "-s", "base", "(objectClass=*)"],
    );
    // (Unasked, Samba sends all values at once: only the range scimsync asks for splits them.)
    assert_eq!(whole.lines().filter(|l| l.starts_with("member: ")).count(), USERS, "big unranged");
    let first = ldapsearch(
        &samba,
        &[
            "-b",
            &format!("CN=big,OU=People,{}", samba.get("BASE_DN")),
            "-s",
            "base",
            "(objectClass=*)",
            "member;range=0-1499",
        ],
    );
    let ranged: Vec<&str> = first.lines().filter(|l| l.starts_with("member;")).collect();
    assert_eq!(ranged.len(), 1500, "the first range of big");
    assert!(ranged.iter().all(|l| l.starts_with("member;range=0-1499: ")), "{:?}", &ranged[..3]);

    // 3. Nested groups are flattened: outer = user0001 + inner's user0002, user0003. `disabled`
    // (in inner) is left out of both: it is not created, so there is no member to add.
    let set = |v: Vec<String>| v.into_iter().collect::<BTreeSet<_>>();
    let inner = set(members(&live, "inner"));
    assert_eq!(inner, [id("user0002"), id("user0003")].into_iter().collect());
    let outer = set(members(&live, "outer"));
    assert_eq!(outer, [id("user0001"), id("user0002"), id("user0003")].into_iter().collect());

    // 6. The same directory exported with ldapsearch plans the same.
    let export = dir.path().join("export.ldif");
    let ldif = ldapsearch(
        &samba,
        &["-E", "pr=500/noprompt", "-b", samba.get("BASE_DN"), "(objectClass=*)", "*", "objectGUID"],
    );
    std::fs::write(&export, ldif).unwrap();
    let file_config = write_config(
        dir.path(),
        "file",
        &format!("[source]\nkind = \"ldif\"\npath = {}\n", toml_path(&export)),
    );
    assert_same(
        &comparable(&plan_json(&file_config)),
        &comparable(&live),
        "the export's plan differs from the live read's",
    );

    // 7. ldaps and StartTLS with the DC's CA read the same.
    let ca = format!("ca_file = {}", toml_path(Path::new(samba.get("CA_CERT"))));
    let ldaps =
        write_config(dir.path(), "ldaps", &ldap_source(&samba, &password_file, samba.get("LDAPS_URL"), &ca));
    assert_same(&comparable(&plan_json(&ldaps)), &comparable(&live), "ldaps");
    let starttls = write_config(
        dir.path(),
        "starttls",
        &ldap_source(&samba, &password_file, samba.get("URL"), &format!("starttls = true\n{ca}")),
    );
    assert_same(&comparable(&plan_json(&starttls)), &comparable(&live), "StartTLS");

    // 8. check shows AD's change marker (invocationId and highestCommittedUSN), and it moves
    // when the directory is written.
    let before = check_output(&live_config);
    let marker = change_marker(&before);
    let parts: Vec<&str> = marker.split(' ').collect();
    assert!(
        parts.len() == 3
            && parts[0] == "ad"
            && parts[1].len() == 32
            && parts[1].bytes().all(|b| b.is_ascii_hexdigit())
            && parts[2].parse::<u64>().is_ok(),
        "marker {marker:?}"
    );
    let change = dir.path().join("change.ldif");
    let ldif = format!(
        "dn: CN=user0001,OU=People,{}\nchangetype: modify\nreplace: displayName\ndisplayName: Renamed 0001\n",
        samba.get("BASE_DN")
    );
    std::fs::write(&change, ldif).unwrap();
    let modify = Command::new(ldap_tool("ldapmodify"))
        .env("LDAPNOINIT", "1")
        .args(["-x", "-H", samba.get("URL"), "-D", samba.get("BIND_DN"), "-w", samba.get("PASSWORD"), "-f"])
        .arg(&change)
        .output()
        .expect("run ldapmodify");
    assert!(modify.status.success(), "ldapmodify: {}", String::from_utf8_lossy(&modify.stderr));
    let after = change_marker(&check_output(&live_config));
    let usn = |m: &str| m.rsplit(' ').next().unwrap().parse::<u64>().unwrap();
    assert!(
        after.rsplit_once(' ').unwrap().0 == marker.rsplit_once(' ').unwrap().0 && usn(&after) > usn(&marker),
        "{marker} -> {after}"
    );

    // 5. The read summary counts the search references Samba returns for a subtree search of
    // the domain (CN=Configuration, DC=DomainDnsZones, DC=ForestDnsZones) as not followed: the
    // same three, whichever of scimsync's two searches (users, then groups) met them, as one
    // ldapsearch of the whole domain (the export above) meets three.
    let summary = before.stdout.lines().find_map(|l| l.strip_prefix("source read: ")).unwrap().to_owned();
    assert!(summary.contains(", 3 search references not followed"), "source read: {summary}");
}

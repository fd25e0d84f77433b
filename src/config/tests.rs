//! Config loading and validation, with `figment::Jail` for files and environment.

// `Jail`'s closures return figment's own (large) error type.
#![allow(clippy::result_large_err)]

use super::*;
use crate::source::SourceKind;
use figment::Jail;

fn load_in(jail: &Jail, text: &str) -> Result<Config, ConfigErrors> {
    jail.create_file("scimsync.toml", text).expect("write config");
    load(&jail.directory().join("scimsync.toml"))
}

fn keys(e: &ConfigErrors) -> Vec<&str> {
    e.0.iter().map(|e| e.key.as_str()).collect()
}

#[test]
fn the_contract_keys_alone_work_with_defaults() {
    Jail::expect_with(|jail| {
        let c = load_in(
            jail,
            r#"
            [source]
            kind = "ldif"
            path = "people.ldif"
            [target]
            url = "https://app.ninjarmm.com/ws/scim/v2"
            profile = "ninjaone"
            token_file = "target.token"
            [state]
            path = "state.db"
            [schedule]
            cron = "0 */15 * * * *"
            watch = true
            [metrics]
            listen = "127.0.0.1:9464"
            "#,
        )
        .expect("valid");
        assert_eq!(c.source.path.as_deref(), Some(jail.directory().join("people.ldif").as_path()));
        assert_eq!(c.policy.threshold.max_users, 500);
        assert_eq!(c.policy.membership_chunk, 100);
        assert_eq!(c.target.concurrency, 4);
        assert!(c.target.adopt);
        Ok(())
    });
}

#[test]
fn every_problem_is_reported_at_once_with_its_key() {
    Jail::expect_with(|jail| {
        let e = load_in(
            jail,
            r#"
            [source]
            kind = "nosuch"
            [target]
            url = "http://example.com/scim"
            profile = "okta"
            token_expires = "next year"
            [schedule]
            cron = "* *"
            [metrics]
            listen = "0.0.0.0:9464"
            [mapping.user]
            title = { expr = "user.(" }
            "no such" = { value = "x" }
            [policy]
            membership_chunk = 0
            default_deprovision = "shred"
            "#,
        )
        .expect_err("invalid");
        let k = keys(&e);
        for want in [
            "source.kind",
            "source.path",
            "target.url",
            "target.profile",
            "target.token_expires",
            "schedule.cron",
            "metrics.listen",
            "mapping.user.title",
            "mapping.user.\"no such\"",
            "policy.membership_chunk",
            "policy.default_deprovision",
        ] {
            assert!(k.contains(&want), "{want} missing from {k:?}");
        }
        Ok(())
    });
}

#[test]
fn unknown_keys_are_all_reported_with_where_they_came_from() {
    Jail::expect_with(|jail| {
        jail.set_env("SCIMSYNC_TARGET__TOKNE_FILE", "/x");
        let e = load_in(jail, "[source]\npaht = \"x\"\n[state]\npath = \"s.db\"\ndir = \"y\"\n")
            .expect_err("unknown");
        let k = keys(&e);
        assert!(
            k.contains(&"source.paht") && k.contains(&"state.dir") && k.contains(&"target.tokne_file"),
            "{k:?}"
        );
        let text = e.to_string();
        assert!(text.contains("scimsync.toml") && text.contains("SCIMSYNC_TARGET__TOKNE_FILE"), "{text}");
        Ok(())
    });
}

#[test]
fn environment_overrides_the_file() {
    Jail::expect_with(|jail| {
        jail.set_env("SCIMSYNC_SOURCE__PATH", "/srv/other.ldif");
        jail.set_env("SCIMSYNC_TARGET__CONCURRENCY", "8");
        let c = load_in(jail, "[source]\npath = \"people.ldif\"\n").expect("valid");
        assert_eq!(c.source.path.as_deref(), Some(std::path::Path::new("/srv/other.ldif")));
        assert_eq!(c.target.concurrency, 8);
        Ok(())
    });
}

#[test]
fn loopback_http_is_allowed_and_token_expiry_is_six_months_after_issue() {
    Jail::expect_with(|jail| {
        let c = load_in(
            jail,
            "[source]\npath = \"p.ldif\"\n[target]\nurl = \"http://127.0.0.1:8080/scim/v2\"\ntoken_issued = \"2026-01-31\"\n",
        )
        .expect("valid");
        let expires = chrono::DateTime::from_timestamp(c.target.token_expires.unwrap(), 0).unwrap();
        assert_eq!(expires.format("%Y-%m-%d").to_string(), "2026-07-31");
        Ok(())
    });
}

#[test]
fn phone_rules_under_ninjaone_are_warned_about() {
    Jail::expect_with(|jail| {
        let c =
            load_in(jail, "[source]\npath = \"p.ldif\"\n[mapping.user]\nmobile = { from = \"mobile\" }\n")
                .expect("valid");
        assert!(c.warnings.iter().any(|w| w.contains("phone numbers are never sent")), "{:?}", c.warnings);
        Ok(())
    });
}

#[test]
fn a_scim_source_takes_a_bearer_token_or_basic_auth_not_both() {
    Jail::expect_with(|jail| {
        let c = load_in(
            jail,
            "[source]\nkind = \"scim\"\nurl = \"https://idp.example.com/scim/v2\"\nusername = \"sync\"\n\
             password_file = \"source.password\"\npage_size = 100\nfilter = 'active eq true'\nmax_retries = 2\n",
        )
        .expect("valid");
        assert_eq!(c.source.kind, SourceKind::Scim);
        assert_eq!(c.source.username.as_deref(), Some("sync"));
        assert_eq!(c.source.password_file, Some(jail.directory().join("source.password")));
        assert_eq!((c.source.page_size, c.source.max_retries, c.source.timeout_secs), (100, 2, 30));
        assert_eq!(c.source.filter.as_deref(), Some("active eq true"));

        let e = load_in(
            jail,
            "[source]\nkind = \"scim\"\nurl = \"http://idp.example.com/scim/v2\"\nusername = \"sync\"\n\
             token_file = \"t\"\ntoken_env = \"T\"\nmax_retries = 99\n",
        )
        .expect_err("invalid");
        assert_eq!(keys(&e), ["source.url", "source.username", "source.token_env", "source.max_retries"]);
        let e = load_in(jail, "[source]\nkind = \"scim\"\npassword_env = \"P\"\n").expect_err("invalid");
        assert_eq!(keys(&e), ["source.url", "source.username"]);
        Ok(())
    });
}

#[test]
fn dialect_keys_override_the_profile_preset_and_bad_ones_are_named() {
    use crate::target::dialect::{Booleans, Members, OpCase, Update};
    Jail::expect_with(|jail| {
        let base = "[source]\nkind = \"ldif\"\npath = \"p.ldif\"\n[state]\npath = \"s.db\"\n";
        let c = load_in(jail, &format!("{base}[target]\nprofile = \"entra-compat\"\n")).expect("valid");
        let d = &c.target.dialect;
        assert_eq!(
            (d.op_case, d.members, d.booleans),
            (OpCase::Capitalized, Members::ValueList, Booleans::Json)
        );
        assert!(d.name_formatted && !d.update_chosen);
        let c = load_in(
            jail,
            &format!(
                "{base}[target]\nprofile = \"generic\"\n[target.dialect]\nupdate = \"PUT\"\n\
                 booleans = \"string\"\nmulti_valued_type = false\nmembers_on_create = true\n"
            ),
        )
        .expect("valid");
        let d = &c.target.dialect;
        assert_eq!((d.update, d.booleans, d.members), (Update::Put, Booleans::String, Members::Filter));
        assert!(d.update_chosen && !d.members_chosen && !d.multi_valued_type && d.members_on_create);
        let e = load_in(
            jail,
            &format!("{base}[target.dialect]\nupdate = \"post\"\nmembers = \"list\"\nop_case = \"UPPER\"\nnosuch = 1\n"),
        )
        .expect_err("invalid");
        let k = keys(&e);
        for want in ["target.dialect.update", "target.dialect.members", "target.dialect.op_case"] {
            assert!(k.contains(&want), "{want} missing from {k:?}");
        }
        let text = e.to_string();
        assert!(text.contains("\"post\": use \"patch\" or \"put\""), "{text}");
        assert!(text.contains("target.dialect.nosuch"), "unknown keys are named: {text}");
        Ok(())
    });
}

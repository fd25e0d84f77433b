//! The integration tests, one binary: each file below is a module, so the suite links once
//! (the per-file binaries of a default layout cost a link and ~100 MB of disk each).
//! `cargo nextest run` still runs every test in a process of its own.

mod cli_support;
mod support;

mod bad_sources;
mod cli_check;
mod cli_completions;
mod cli_config;
mod cli_plan;
mod contrib;
mod corpus_expectations;
mod corpus_plan;
mod crash;
mod daemon;
mod daemon_in_place;
mod debian_package;
mod fault_proxy_smoke;
mod instances;
mod ldap_runs;
mod ldap_samba;
mod ldap_source;
mod ldif_corpus;
mod ldif_directory;
mod ldif_props;
mod mapping;
mod membership_requests;
mod notify;
mod planner;
mod planner_props;
mod preview;
mod proxy;
mod purity;
mod regression;
mod run_layer;
mod scim_source;
mod scim_source_faults;
mod scimmy_smoke;
mod slapd_directory;
mod slapd_exports;
mod slapd_live;
mod snapshot_store;
mod state_db;
mod state_restore;
mod sync_dialects;
mod sync_django_scim;
mod sync_e2e;
mod sync_faults;
mod sync_scimmy;
mod systemd_unit;
mod target_client;
mod target_dialects;
mod target_faults;
mod target_tls;

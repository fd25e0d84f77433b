//! scimsync: a pull-based directory reconciler. Data flows source → mapping → plan → apply → snapshot.

pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod executor;
pub mod mapping;
pub mod model;
pub mod notify;
pub mod parts;
pub mod quarantine;
pub mod reconcile;
pub mod report;
pub mod run;
pub mod scim_http;
pub mod secrets;
pub mod section;
pub mod source;
pub mod store;
pub mod target;
pub mod web_config;

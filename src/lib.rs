//! scimsync: a pull-based directory reconciler. Data flows source → mapping → plan → apply → snapshot.

pub mod config;
pub mod mapping;
pub mod model;
pub mod reconcile;
pub mod source;
pub mod store;

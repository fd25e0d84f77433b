//! scimsync: a pull-based directory reconciler. Data flows source → mapping → plan → apply → snapshot.

pub mod source;

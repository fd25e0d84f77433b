//! What the target client reads from a SCIM server: resource ids, users and groups picked from a
//! list response, `Retry-After` values, plus the SCIM resource → record flattening of the JSON
//! source. The input is any JSON document.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scimsync::source::json::flatten_resource;
use scimsync::target::body::{eq_filter, pick_group, pick_user, resource_id};
use scimsync::scim_http::parse_retry_after;
use serde_json::Value;
use std::time::{Duration, SystemTime};

/// Names to look up: fixed ones, and the names the document itself lists, as written and in
/// another case (the exact and the case-insensitive matches).
fn wanted(doc: &Value, key: &str) -> Vec<String> {
    let mut names = vec!["alice@example.com".to_owned(), String::new()];
    if let Some(items) = doc.get("Resources").and_then(Value::as_array) {
        for name in items.iter().take(4).filter_map(|r| r.get(key)?.as_str()) {
            names.push(name.to_owned());
            names.push(name.to_uppercase());
            names.push(name.to_lowercase());
        }
    }
    names
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let _ = parse_retry_after(text, now);
        let _ = eq_filter("userName", text);
    }
    let Ok(doc) = serde_json::from_slice::<Value>(data) else { return };
    let _ = resource_id(&doc);
    for name in wanted(&doc, "userName") {
        if let Ok(Some(user)) = pick_user(&doc, &name) {
            assert!(!user.id.is_empty(), "a picked user has an empty id");
        }
    }
    for name in wanted(&doc, "displayName") {
        if let Ok(Some(id)) = pick_group(&doc, &name) {
            assert!(!id.is_empty(), "a picked group has an empty id");
        }
    }
    let _ = flatten_resource(&doc);
    if let Some(items) = doc.get("Resources").and_then(Value::as_array) {
        for item in items {
            let _ = resource_id(item);
            let _ = flatten_resource(item);
        }
    }
});

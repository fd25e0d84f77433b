//! One HTTP exchange with a SCIM service provider, and how its failures read: the answer or a
//! `Failure` (TLS, broken), a `Failure` from an error status with the server's `detail`, reqwest
//! errors in a few words, and secrets kept out of every message.

use super::retry::{parse_retry_after, Failure};
use reqwest::header::{ETAG, RETRY_AFTER};
use serde_json::Value;
use std::time::SystemTime;

/// How much of a server's error `detail` goes into an error message.
const DETAIL_MAX_CHARS: usize = 200;

/// Never let a secret (a token, a password) into a message, whatever the server echoes.
pub(crate) fn redact(secret: &str, message: &str) -> String {
    if secret.len() >= 4 && message.contains(secret) {
        message.replace(secret, "[redacted]")
    } else {
        message.to_owned()
    }
}

/// The failure an error status is: the server's `detail` when the body holds a SCIM error (else
/// the status's reason), with `secret` redacted, and its `Retry-After`.
pub(crate) fn status_failure(
    status: reqwest::StatusCode,
    retry_after: Option<std::time::Duration>,
    body: Result<bytes::Bytes, reqwest::Error>,
    secret: &str,
) -> Failure {
    let reason = status.canonical_reason().unwrap_or("no detail");
    let message = body
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .as_ref()
        .and_then(|doc| error_detail(doc, reason))
        .unwrap_or_else(|| reason.to_owned());
    Failure::Status { status: status.as_u16(), message: redact(secret, &message), retry_after }
}

/// A SCIM error's `detail` (with its `scimType`), shortened; an empty or missing `detail` beside
/// a `scimType` is the HTTP `reason`, so a message never says nothing.
fn error_detail(doc: &Value, reason: &str) -> Option<String> {
    let detail = doc.get("detail").and_then(Value::as_str).map(str::trim).filter(|d| !d.is_empty());
    let scim_type = doc.get("scimType").and_then(Value::as_str).filter(|t| !t.is_empty());
    let detail = match (detail, scim_type) {
        (Some(d), _) => truncate(d, DETAIL_MAX_CHARS),
        (None, Some(_)) => reason.to_owned(),
        (None, None) => return None,
    };
    Some(match scim_type {
        Some(t) => format!("{detail} (scimType {t})"),
        None => detail,
    })
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// What came back for one request: the status, a `Retry-After` delay, and the body as far as it
/// arrived.
pub(crate) struct Exchange {
    pub status: reqwest::StatusCode,
    pub retry_after: Option<std::time::Duration>,
    /// The resource's version (`ETag`), for an `If-Match` on the next write.
    pub etag: Option<String>,
    pub body: Result<bytes::Bytes, reqwest::Error>,
}

/// Sends a request and reads its answer. No answer at all is a `Failure`: TLS, or broken (with
/// whether the request may have reached the server).
pub(crate) async fn exchange(req: reqwest::RequestBuilder) -> Result<Exchange, Failure> {
    let resp = match req.send().await {
        Ok(resp) => resp,
        Err(e) => {
            if let Some(tls) = tls_error(&e) {
                return Err(Failure::Tls { message: tls.to_string() });
            }
            return Err(Failure::Broken { message: describe(&e), sent: !e.is_connect() });
        }
    };
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let etag = resp.headers().get(ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned);
    Ok(Exchange { status, retry_after, etag, body: resp.bytes().await })
}

/// The TLS error inside a failed request, if that is what failed. rustls's error travels
/// inside (nested) `io::Error`s, whose `source()` skips what they wrap, hence `get_ref`.
fn tls_error(e: &reqwest::Error) -> Option<&rustls::Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        next = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// A reqwest error in a few words, without the URL (it carries the filter, hence userNames).
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let mut root: &dyn std::error::Error = e;
    while let Some(next) = root.source() {
        root = next;
    }
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "error reading the answer"
    } else {
        "request failed"
    };
    let root = root.to_string();
    let mut said = if root.is_empty() { kind.to_owned() } else { format!("{kind}: {root}") };
    if let Some(proxy) = e.url().and_then(|u| proxy_for(u, |k| std::env::var(k).ok())) {
        said.push_str(&format!(" ({proxy}; NO_PROXY lists the hosts reached directly)"));
    }
    said
}

/// The proxy a request to `url` is sent through as the environment names it (reqwest reads the
/// same variables), its credentials left out: `via the proxy http://proxy:3128 from HTTPS_PROXY`.
/// None when no variable names one; a host that `NO_PROXY` excludes is still named, since only
/// reqwest decides that, and the message says where to look.
fn proxy_for(url: &reqwest::Url, var: impl Fn(&str) -> Option<String>) -> Option<String> {
    let names: &[&str] = match url.scheme() {
        "https" => &["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"],
        _ => &["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"],
    };
    let (name, value) = names.iter().find_map(|n| var(n).filter(|v| !v.is_empty()).map(|v| (*n, v)))?;
    let shown = match reqwest::Url::parse(&value) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.as_str().trim_end_matches('/').to_owned()
        }
        Err(_) => "(not a URL)".to_owned(),
    };
    Some(format!("via the proxy {shown} from {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_is_named_without_its_credentials() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
        };
        let https = reqwest::Url::parse("https://acme.rmmservice.com/scim/v2/Users").unwrap();
        let http = reqwest::Url::parse("http://idp.corp.example/scim/v2").unwrap();
        let vars =
            env(&[("https_proxy", "http://ops:secret@proxy.corp:3128/"), ("HTTP_PROXY", "http://p2:8080")]);
        assert_eq!(proxy_for(&https, vars).unwrap(), "via the proxy http://proxy.corp:3128 from https_proxy");
        assert_eq!(proxy_for(&http, vars).unwrap(), "via the proxy http://p2:8080 from HTTP_PROXY");
        assert_eq!(
            proxy_for(&https, env(&[("ALL_PROXY", "socks5://s:1080")])).unwrap(),
            "via the proxy socks5://s:1080 from ALL_PROXY"
        );
        assert_eq!(proxy_for(&https, env(&[("HTTP_PROXY", "http://p2:8080"), ("HTTPS_PROXY", "")])), None);
    }

    #[test]
    fn truncate_counts_characters_not_bytes() {
        assert_eq!(truncate("ééé", 2), "éé…");
        assert_eq!(truncate("abc", 3), "abc");
    }

    #[test]
    fn error_detail_reads_scim_errors() {
        let doc = serde_json::json!({"status": "409", "scimType": "uniqueness", "detail": "taken"});
        assert_eq!(error_detail(&doc, "Conflict").as_deref(), Some("taken (scimType uniqueness)"));
        let long = "x".repeat(1000);
        let detail = error_detail(&serde_json::json!({ "detail": long }), "Bad Request").unwrap();
        assert_eq!(detail.chars().count(), DETAIL_MAX_CHARS + 1);
        assert_eq!(error_detail(&serde_json::json!({"message": "no"}), "Bad Request"), None);
        let empty = serde_json::json!({"detail": " ", "scimType": "invalidPath"});
        assert_eq!(
            error_detail(&empty, "Not Implemented").as_deref(),
            Some("Not Implemented (scimType invalidPath)")
        );
    }

    #[test]
    fn an_empty_detail_gives_the_http_reason() {
        let body = Ok(bytes::Bytes::from_static(br#"{"schemas":[],"status":"501","detail":""}"#));
        let failure = status_failure(reqwest::StatusCode::NOT_IMPLEMENTED, None, body, "secret");
        match failure {
            Failure::Status { status, message, .. } => {
                assert_eq!((status, message.as_str()), (501, "Not Implemented"))
            }
            other => panic!("{other:?}"),
        }
    }
}

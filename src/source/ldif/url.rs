//! `:<` URL values: which `file://` URLs a [`UrlPolicy`] allows, and reading the file.

use super::UrlPolicy;
use std::io;
use std::path::PathBuf;

pub(super) enum UrlError {
    /// The policy does not allow the URL; the text says why and what to change.
    Refused(String),
    /// The URL is allowed but its file cannot be read.
    Unreadable(io::Error),
}

/// The bytes of the file a `:<` value names, when `policy` allows it: only `file://` URLs of a
/// local path whose canonical form (symbolic links resolved) lies inside `policy.allowed_dir`.
pub(super) fn read(policy: &UrlPolicy, url: &str) -> Result<Vec<u8>, UrlError> {
    let Some(dir) = &policy.allowed_dir else {
        return Err(UrlError::Refused(
            "URL values are off by default; to allow them set source.allow_url_dir to the \
             directory that holds the referenced files"
                .into(),
        ));
    };
    let Some(file) = file_url_path(url) else {
        return Err(UrlError::Refused(
            "only file:// URLs of a local absolute path (file:///dir/file) are supported; inline \
             the value instead"
                .into(),
        ));
    };
    let dir = dir.canonicalize().map_err(|e| {
        UrlError::Refused(format!(
            "source.allow_url_dir {} cannot be resolved ({e}); point it at an existing directory",
            dir.display()
        ))
    })?;
    let file = file.canonicalize().map_err(UrlError::Unreadable)?;
    if !file.starts_with(&dir) {
        return Err(UrlError::Refused(format!(
            "{} is outside source.allow_url_dir ({}); move the file there or change \
             source.allow_url_dir",
            file.display(),
            dir.display()
        )));
    }
    std::fs::read(&file).map_err(UrlError::Unreadable)
}

/// The local path of a `file:///path` or `file://localhost/path` URL, percent-decoded.
fn file_url_path(url: &str) -> Option<PathBuf> {
    let scheme = url.get(..7)?;
    if !scheme.eq_ignore_ascii_case("file://") {
        return None;
    }
    let rest = &url[7..];
    let path = if rest.starts_with('/') { rest } else { rest.strip_prefix("localhost")? };
    if !path.starts_with('/') {
        return None;
    }
    let mut bytes = Vec::with_capacity(path.len());
    let mut iter = path.bytes();
    while let Some(b) = iter.next() {
        if b == b'%' {
            let hex = [iter.next()?, iter.next()?];
            let hex = std::str::from_utf8(&hex).ok()?;
            if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                return None;
            }
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
        } else {
            bytes.push(b);
        }
    }
    Some(PathBuf::from(String::from_utf8(bytes).ok()?))
}

#[cfg(test)]
mod tests {
    use super::file_url_path;
    use std::path::PathBuf;

    #[test]
    fn file_urls() {
        assert_eq!(file_url_path("file:///a/b%20c"), Some(PathBuf::from("/a/b c")));
        assert_eq!(file_url_path("FILE://localhost/a"), Some(PathBuf::from("/a")));
        assert_eq!(file_url_path("file://host/a"), None);
        assert_eq!(file_url_path("file://a"), None);
        assert_eq!(file_url_path("file:///a%2"), None);
        assert_eq!(file_url_path("file:///a%+1"), None);
        assert_eq!(file_url_path("file:///a%FF"), None);
        assert_eq!(file_url_path("http://x/a"), None);
        assert_eq!(file_url_path("file:"), None);
    }
}

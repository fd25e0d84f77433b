//! Streaming RFC 2849 LDIF reader over `BufRead` (content records only).
//!
//! The reader keeps one reused line buffer and unfolds continuation lines into it as it goes, so
//! memory stays bounded by the longest logical line whatever the size of the file. It accepts the
//! content exports of slapcat, `ldapsearch` (with or without its comments and result trailer),
//! 389-ds and Active Directory `ldifde`, and rejects change records.
//!
//! Any error is fatal for the whole input: after it the reader yields nothing more, because a
//! source is read completely or not at all.

use super::{Origin, Record, Value};
use base64::Engine as _;
use std::collections::HashSet;
use std::io::{self, BufRead};
use std::path::PathBuf;

#[cfg(test)]
mod tests;
mod url;

/// Where `:<` URL values may be read from. `None` refuses every URL value.
#[derive(Clone, Debug, Default)]
pub struct UrlPolicy {
    pub allowed_dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum LdifError {
    #[error("{path}:{line}: {message}")]
    Syntax { path: String, line: u64, message: String },
    /// The input holds change records (ldapmodify input) instead of entries.
    #[error(
        "{path}:{line}: \"changetype: {changetype}\" makes this a change-record (ldapmodify) file, \
         not a content export; export the directory with slapcat or ldapsearch instead"
    )]
    ChangeRecord { path: String, line: u64, changetype: String },
    /// A `:<` URL value that the [`UrlPolicy`] does not allow.
    #[error("{path}:{line}: {message}")]
    UrlRefused { path: String, line: u64, message: String },
    #[error("{path}: read failed")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl LdifError {
    /// The line the error is about, when it is about one.
    pub fn line(&self) -> Option<u64> {
        match self {
            LdifError::Syntax { line, .. }
            | LdifError::ChangeRecord { line, .. }
            | LdifError::UrlRefused { line, .. } => Some(*line),
            LdifError::Io { .. } => None,
        }
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Physical lines of the input, unfolded into logical lines.
struct Lines<R> {
    reader: R,
    /// Physical lines consumed so far.
    lineno: u64,
}

impl<R: BufRead> Lines<R> {
    /// Reads the next logical line into `buf`: one physical line plus its continuation lines
    /// (lines starting with one space, which is dropped), without line ends. Returns the number of
    /// its first physical line, or `None` at the end of the input. A blank line, or a line that
    /// itself starts with a space, is never continued: the caller reports the stray continuation.
    fn read_logical(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<u64>> {
        buf.clear();
        if !self.read_physical(buf)? {
            return Ok(None);
        }
        let start = self.lineno;
        if start == 1 && buf.starts_with(BOM) {
            buf.drain(..BOM.len());
        }
        if matches!(buf.first(), None | Some(b' ')) {
            return Ok(Some(start));
        }
        while self.peek()? == Some(b' ') {
            self.reader.consume(1);
            self.read_physical(buf)?;
        }
        Ok(Some(start))
    }

    /// Appends one physical line without its `\n` or `\r\n` to `buf`; false at the end of input.
    fn read_physical(&mut self, buf: &mut Vec<u8>) -> io::Result<bool> {
        let before = buf.len();
        // `BufRead::read_until`, with the SIMD `memchr` instead of the standard library's
        // word-at-a-time search (a quarter of the reader's time went to finding line ends).
        let mut read_any = false;
        loop {
            let available = match self.reader.fill_buf() {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                break;
            }
            read_any = true;
            let (taken, done) = match memchr::memchr(b'\n', available) {
                Some(end) => (end + 1, true),
                None => (available.len(), false),
            };
            buf.extend_from_slice(&available[..taken]);
            self.reader.consume(taken);
            if done {
                break;
            }
        }
        if !read_any {
            return Ok(false);
        }
        self.lineno += 1;
        if buf.last() == Some(&b'\n') {
            buf.pop();
            if buf.len() > before && buf.last() == Some(&b'\r') {
                buf.pop();
            }
        }
        Ok(true)
    }

    fn peek(&mut self) -> io::Result<Option<u8>> {
        loop {
            match self.reader.fill_buf() {
                Ok(bytes) => return Ok(bytes.first().copied()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// What a logical line is, once comments are skipped.
enum Line {
    End,
    Blank,
    /// An `attribute: value` line (or junk) held in the buffer, starting on this line number.
    Content(u64),
}

/// How a value is written after the attribute description.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `attr: value`
    Plain,
    /// `attr:: base64`
    Base64,
    /// `attr:< url`
    Url,
}

/// A content line split into its parts: `buf[..colon]` is the attribute description and
/// `buf[value..]` the value as written (leading spaces skipped).
#[derive(Clone, Copy)]
struct Spec {
    colon: usize,
    kind: Kind,
    value: usize,
}

/// Attribute names in an ldapsearch result trailer (`search: 2`, `result: 0 Success`, …).
const TRAILER: [&[u8]; 4] = [b"search", b"result", b"control", b"pagedresults"];

pub struct LdifReader<R> {
    lines: Lines<R>,
    /// Shared with every record's origin.
    path: std::sync::Arc<str>,
    policy: UrlPolicy,
    /// The current logical line, reused for every line.
    buf: Vec<u8>,
    /// Whether a `version:` line or an entry was seen; `version:` may only come first.
    started: bool,
    /// Set at the end of input and after any error.
    done: bool,
    /// The attributes of the entry being read; moved out into an exactly sized vector at its end.
    scratch: Vec<(String, Value)>,
    /// `(as written, lowercased, kept)` of the n-th attribute description of the entries read so
    /// far: exports repeat the same attributes in the same order, so most lines hit and skip
    /// checking, lowercasing and looking up the description.
    names: Vec<(Vec<u8>, String, bool)>,
    /// Attribute types (lowercased, without options) to keep in records; `None` keeps all.
    keep: Option<HashSet<String>>,
    /// Scratch space for checking base64 values that are not kept.
    decoded: Vec<u8>,
}

impl<R: BufRead> LdifReader<R> {
    pub fn new(reader: R, path: impl Into<std::sync::Arc<str>>, policy: UrlPolicy) -> Self {
        Self {
            lines: Lines { reader, lineno: 0 },
            path: path.into(),
            policy,
            buf: Vec::with_capacity(256),
            started: false,
            done: false,
            scratch: Vec::new(),
            names: Vec::new(),
            keep: None,
            decoded: Vec::new(),
        }
    }

    /// Reads a stretch of a file that starts after `lines` lines and after at least one entry
    /// (a part of a large export read on its own thread): line numbers go on from there, and
    /// a `version:` line is refused as it would be after an entry.
    pub fn continuing_after(mut self, lines: u64) -> Self {
        self.lines.lineno = lines;
        self.started = true;
        self
    }

    /// Keeps only these attribute types (lowercased names without options) in the records. The
    /// values of the others are still checked (UTF-8, base64), so an export that is broken
    /// anywhere is refused as before, but they are neither decoded into nor kept in memory.
    pub fn keep_only(mut self, attributes: HashSet<String>) -> Self {
        self.keep = Some(attributes);
        self.names.clear();
        self
    }

    /// The next entry, `Ok(None)` at the end of the input. After an error, always `Ok(None)`.
    pub fn next_record(&mut self) -> Result<Option<Record>, LdifError> {
        if self.done {
            return Ok(None);
        }
        let result = self.read_record();
        if !matches!(result, Ok(Some(_))) {
            self.done = true;
        }
        result
    }

    fn read_record(&mut self) -> Result<Option<Record>, LdifError> {
        // Find the `dn:` line, passing over blank lines, the version line and ldapsearch trailers.
        let (start, spec) = loop {
            let line = match self.next_line()? {
                Line::End => return Ok(None),
                Line::Blank => continue,
                Line::Content(line) => line,
            };
            let spec = self.split(line)?;
            let name = &self.buf[..spec.colon];
            if name.eq_ignore_ascii_case(b"dn") {
                break (line, spec);
            } else if !self.started && name.eq_ignore_ascii_case(b"version") {
                self.check_version(line, spec)?;
                self.started = true;
            } else if is_trailer(name) {
                self.skip_trailer(line, spec)?;
            } else {
                let name = show(name);
                return Err(self.syntax(
                    line,
                    format!(
                        "entry starts with \"{name}:\" instead of \"dn:\"; every entry must begin \
                         with its dn line (is a blank line misplaced, or a dn line missing?)"
                    ),
                ));
            }
        };
        self.started = true;
        if spec.kind == Kind::Url {
            return Err(
                self.syntax(start, "a dn cannot be a URL (\"dn:<\"); write it as text or base64".into())
            );
        }
        let dn = match self.value(start, spec)? {
            Value::Text(dn) => dn,
            Value::Binary(_) => {
                return Err(self.syntax(
                    start,
                    "the base64 dn does not decode to UTF-8 text; re-export the directory or fix \
                     the dn"
                        .into(),
                ))
            }
        };
        let mut attrs = std::mem::take(&mut self.scratch);
        attrs.clear();
        // The position of the line in the entry, for the description cache.
        let mut index = 0;
        loop {
            let line = match self.next_line()? {
                Line::End | Line::Blank => break,
                Line::Content(line) => line,
            };
            if self.buf[0] == b'-' {
                return Err(self.syntax(
                    line,
                    "a line starting with \"-\" belongs to a change record (ldapmodify input), \
                     not a content export; export the directory with slapcat or ldapsearch instead"
                        .into(),
                ));
            }
            let spec = self.split(line)?;
            let name = &self.buf[..spec.colon];
            if name.eq_ignore_ascii_case(b"dn") {
                return Err(self.syntax(
                    line,
                    format!(
                        "a second dn line inside the entry that starts on line {start}; separate \
                         entries with a blank line"
                    ),
                ));
            }
            if name.eq_ignore_ascii_case(b"changetype") {
                // `ldifde` writes every exported entry as `changetype: add`: that is a whole
                // entry, so it is accepted right after the dn. Anything else is a change record.
                let changetype = match self.value(line, spec)? {
                    Value::Text(t) => t.trim().to_owned(),
                    Value::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
                };
                if index == 0 && changetype.eq_ignore_ascii_case("add") {
                    continue;
                }
                return Err(LdifError::ChangeRecord { path: self.path.to_string(), line, changetype });
            }
            let (name, keep) = self.description(index, line, spec)?;
            index += 1;
            if keep {
                attrs.push((name, self.value(line, spec)?));
            } else {
                self.check_value(line, spec)?;
            }
        }
        // An exactly sized vector for the record; the scratch one keeps its capacity for the next.
        let mut exact = Vec::with_capacity(attrs.len());
        exact.append(&mut attrs);
        self.scratch = attrs;
        let record = Record { origin: Origin { path: self.path.clone(), line: start }, dn, attrs: exact };
        Ok(Some(record))
    }

    /// The lowercased attribute description of the line in the buffer, the `index`-th of its
    /// entry, checked for validity, and whether records keep it. The name is empty when they
    /// do not.
    fn description(&mut self, index: usize, line: u64, spec: Spec) -> Result<(String, bool), LdifError> {
        let raw = &self.buf[..spec.colon];
        // The same position in the previous entries first, then any position: an optional
        // attribute (a mobile number, a description) shifts the ones after it.
        let hit = match self.names.get(index) {
            Some(entry) if entry.0.as_slice() == raw => Some(entry),
            _ => self.names.iter().find(|entry| entry.0.as_slice() == raw),
        };
        if let Some((_, lower, keep)) = hit {
            return Ok(if *keep { (lower.clone(), true) } else { (String::new(), false) });
        }
        let lower = match std::str::from_utf8(raw) {
            Ok(name) if is_description(raw) => name.to_ascii_lowercase(),
            _ => {
                return Err(self.syntax(
                    line,
                    format!(
                        "invalid attribute description \"{}\"; it must be a name of letters, \
                         digits and hyphens (or an OID), optionally followed by options like \
                         \";binary\"",
                        show(raw)
                    ),
                ))
            }
        };
        let keep = self.keep.as_ref().is_none_or(|k| k.contains(super::attr_base(&lower)));
        let entry = (raw.to_vec(), lower.clone(), keep);
        match self.names.get_mut(index) {
            Some(slot) => *slot = entry,
            None if index < 256 => self.names.push(entry),
            None => {}
        }
        Ok((lower, keep))
    }

    /// Checks the value of the content line in the buffer as [`Self::value`] does, without
    /// keeping it.
    fn check_value(&mut self, line: u64, spec: Spec) -> Result<(), LdifError> {
        match spec.kind {
            Kind::Plain => {
                let raw = &self.buf[spec.value..];
                if std::str::from_utf8(raw).is_ok() && memchr::memchr(0, raw).is_none() {
                    return Ok(());
                }
            }
            Kind::Base64 => {
                let encoded = self.buf[spec.value..].trim_ascii_end();
                self.decoded.clear();
                if base64::engine::general_purpose::STANDARD.decode_vec(encoded, &mut self.decoded).is_ok() {
                    return Ok(());
                }
            }
            Kind::Url => {}
        }
        // Invalid (or a URL): the full decoding reports it with its message.
        self.value(line, spec).map(drop)
    }

    /// The next logical line that is not a comment.
    fn next_line(&mut self) -> Result<Line, LdifError> {
        loop {
            let line = match self.lines.read_logical(&mut self.buf) {
                Ok(Some(line)) => line,
                Ok(None) => return Ok(Line::End),
                Err(source) => return Err(LdifError::Io { path: self.path.to_string(), source }),
            };
            match self.buf.first() {
                None => return Ok(Line::Blank),
                Some(b'#') => continue,
                Some(b' ') => {
                    return Err(self.syntax(
                        line,
                        "line starts with a space, so it continues the line before, but there is \
                         none (it starts the file or follows a blank line); remove the space or \
                         the blank line"
                            .into(),
                    ))
                }
                Some(0xFF | 0xFE) if line == 1 => {
                    return Err(self.syntax(
                        line,
                        "the file is UTF-16 (ldifde -u writes it so); convert it to UTF-8 (iconv \
                         -f UTF-16 -t UTF-8) or export without -u"
                            .into(),
                    ))
                }
                Some(_) => return Ok(Line::Content(line)),
            }
        }
    }

    /// Splits the content line in the buffer at its colon (the caller checks the description).
    fn split(&self, line: u64) -> Result<Spec, LdifError> {
        let buf = &self.buf;
        let Some(colon) = memchr::memchr(b':', buf) else {
            return Err(self.syntax(
                line,
                format!(
                    "line \"{}\" has no colon; every line must be \"attribute: value\", a \
                     comment starting with \"#\" or a continuation starting with one space",
                    show(buf)
                ),
            ));
        };
        let (kind, mut value) = match buf.get(colon + 1) {
            Some(b':') => (Kind::Base64, colon + 2),
            Some(b'<') => (Kind::Url, colon + 2),
            _ => (Kind::Plain, colon + 1),
        };
        while buf.get(value) == Some(&b' ') {
            value += 1;
        }
        Ok(Spec { colon, kind, value })
    }

    /// Decodes the value of the content line in the buffer.
    fn value(&self, line: u64, spec: Spec) -> Result<Value, LdifError> {
        let raw = &self.buf[spec.value..];
        let name = || show(&self.buf[..spec.colon]);
        match spec.kind {
            Kind::Plain => {
                let text = std::str::from_utf8(raw).map_err(|e| {
                    self.syntax(
                        line,
                        format!(
                            "value of \"{}\" is not valid UTF-8 (bad byte at offset {} of the \
                             value); convert the file to UTF-8 or write the value in base64 with \
                             \"::\"",
                            name(),
                            e.valid_up_to()
                        ),
                    )
                })?;
                if let Some(at) = memchr::memchr(0, raw) {
                    return Err(self.syntax(
                        line,
                        format!(
                            "value of \"{}\" holds a NUL byte (at offset {at} of the value); \
                             write such values in base64 with \"::\" or fix the value",
                            name()
                        ),
                    ));
                }
                Ok(Value::Text(text.to_owned()))
            }
            Kind::Base64 => {
                let encoded = raw.trim_ascii_end();
                let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).map_err(|e| {
                    self.syntax(
                        line,
                        format!(
                            "invalid base64 in value of \"{}\": {}; re-export the directory or \
                             fix the value",
                            name(),
                            e.to_string().trim_end_matches('.').to_lowercase()
                        ),
                    )
                })?;
                Ok(bytes_value(bytes))
            }
            Kind::Url => self.url_value(line, &name(), raw),
        }
    }

    /// Reads a `:<` URL value if the policy allows it.
    fn url_value(&self, line: u64, name: &str, raw: &[u8]) -> Result<Value, LdifError> {
        let url = String::from_utf8_lossy(raw);
        let url = url.trim_end();
        match url::read(&self.policy, url) {
            Ok(bytes) => Ok(bytes_value(bytes)),
            Err(url::UrlError::Refused(why)) => Err(LdifError::UrlRefused {
                path: self.path.to_string(),
                line,
                message: format!("the value of \"{name}\" is the URL {url}, which is refused: {why}"),
            }),
            Err(url::UrlError::Unreadable(e)) => Err(self.syntax(
                line,
                format!("cannot read {url} for the value of \"{name}\": {e}; fix the URL or the file"),
            )),
        }
    }

    fn check_version(&self, line: u64, spec: Spec) -> Result<(), LdifError> {
        match self.value(line, spec)? {
            Value::Text(v) if v.trim() == "1" => Ok(()),
            _ => Err(self.syntax(
                line,
                format!(
                    "unsupported LDIF version \"{}\"; only \"version: 1\" (RFC 2849) exists, \
                     so fix or remove the line",
                    show(&self.buf[spec.value..])
                ),
            )),
        }
    }

    /// Skips an ldapsearch result trailer (`search:`, `result:`, `control:`, `pagedresults:`
    /// lines), whose first line is in the buffer. A result other than 0 means the search stopped
    /// early, so the export is incomplete.
    fn skip_trailer(&mut self, mut line: u64, mut spec: Spec) -> Result<(), LdifError> {
        loop {
            let name = &self.buf[..spec.colon];
            if !is_trailer(name) {
                return Err(self.syntax(
                    line,
                    format!(
                        "unexpected \"{}:\" in an ldapsearch result trailer (search:/result: \
                         lines); every entry must begin with its dn line",
                        show(name)
                    ),
                ));
            }
            if name.eq_ignore_ascii_case(b"result") {
                let result = match self.value(line, spec)? {
                    Value::Text(t) => t,
                    Value::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
                };
                if result.split_whitespace().next() != Some("0") {
                    return Err(self.syntax(
                        line,
                        format!(
                            "ldapsearch reported \"result: {result}\", so the export is \
                             incomplete; re-run the export with paged results (-E pr=1000/\
                             noprompt) or higher size and time limits"
                        ),
                    ));
                }
            }
            line = match self.next_line()? {
                Line::End | Line::Blank => return Ok(()),
                Line::Content(line) => line,
            };
            spec = self.split(line)?;
        }
    }

    fn syntax(&self, line: u64, message: String) -> LdifError {
        LdifError::Syntax { path: self.path.to_string(), line, message }
    }
}

impl<R: BufRead> Iterator for LdifReader<R> {
    type Item = Result<Record, LdifError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

/// UTF-8 bytes become text, anything else stays binary.
fn bytes_value(bytes: Vec<u8>) -> Value {
    match String::from_utf8(bytes) {
        Ok(text) => Value::Text(text),
        Err(e) => Value::Binary(e.into_bytes()),
    }
}

/// An attribute description: a name (letters, digits, `-`, `_`) or a numeric OID, then
/// `;option`s. `_` is not RFC 4512 but some schemas use it.
fn is_description(desc: &[u8]) -> bool {
    let mut parts = desc.split(|&b| b == b';');
    let name = parts.next().unwrap_or_default();
    let name_ok = match name.first() {
        Some(b) if b.is_ascii_alphabetic() => name.iter().all(|&b| is_key_char(b)),
        Some(b) if b.is_ascii_digit() => name.iter().all(|&b| b.is_ascii_digit() || b == b'.'),
        _ => false,
    };
    name_ok && parts.all(|opt| !opt.is_empty() && opt.iter().all(|&b| is_key_char(b)))
}

fn is_key_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn is_trailer(name: &[u8]) -> bool {
    TRAILER.iter().any(|t| name.eq_ignore_ascii_case(t))
}

/// A line or name for an error message: lossy UTF-8, cut at 60 characters.
fn show(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

//! Streaming RFC 2849 LDIF reader (content records only).
//!
//! The reader reads the input in large blocks into one buffer and parses each entry where it
//! lies, handing out its values borrowed from the buffer ([`LdifReader::next_entry`]): a plain
//! value on one line is neither copied nor allocated; folded, base64 and URL values are decoded
//! into reused space. Memory stays bounded by the buffer and the longest entry whatever the size
//! of the file. Owned [`Record`]s ([`LdifReader::next_record`], the `Iterator`) are made from
//! the borrowed entries. It accepts the content exports of slapcat, `ldapsearch` (with or
//! without its comments and result trailer), 389-ds and Active Directory `ldifde`, and rejects
//! change records.
//!
//! Any error is fatal for the whole input: after it the reader yields nothing more, because a
//! source is read completely or not at all.

#[cfg(test)]
use super::Origin;
use super::{Record, Value};
use input::Input;
use parse::{Parser, Step};
use std::collections::HashSet;
use std::io::{self, Read};
use std::path::PathBuf;

mod entry;
mod input;
mod lines;
mod names;
mod parse;
pub mod parts;
#[cfg(test)]
mod tests;
mod url;

pub use entry::Entry;

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
        source: io::Error,
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

/// Attribute names in an ldapsearch result trailer (`search: 2`, `result: 0 Success`, …).
const TRAILER: [&[u8]; 4] = [b"search", b"result", b"control", b"pagedresults"];

pub struct LdifReader<R> {
    input: Input<R>,
    parser: Parser,
    /// Physical lines consumed so far.
    lineno: u64,
    /// Whether a `version:` line or an entry was seen; `version:` may only come first.
    started: bool,
    /// Set at the end of input and after any error.
    done: bool,
    /// Whether a byte order mark may still come: nothing is read yet, at the start of a file.
    bom: bool,
    /// Search references passed over (`ref:` records), which are not followed.
    references: u64,
    /// Whether the last paragraph read was an entry (not comments, a trailer or a reference).
    entry_last: bool,
}

/// An entry found and consumed: where its paragraph started in the buffer, and the reader's
/// state before it, to parse it again value by value.
struct Found {
    start: usize,
    before: u64,
    started: bool,
    checked: bool,
}

impl<R: Read> LdifReader<R> {
    pub fn new(reader: R, path: impl Into<std::sync::Arc<str>>, policy: UrlPolicy) -> Self {
        Self {
            input: Input::new(reader, input::BUFFER_BYTES),
            parser: Parser::new(path.into(), policy),
            lineno: 0,
            started: false,
            done: false,
            bom: true,
            references: 0,
            entry_last: false,
        }
    }

    /// Reads a stretch of a file that starts after `lines` lines and after at least one entry
    /// (a part of a large export read on its own thread): line numbers go on from there, and
    /// a `version:` line is refused as it would be after an entry.
    pub fn continuing_after(mut self, lines: u64) -> Self {
        self.lineno = lines;
        self.started = true;
        self.bom = lines == 0;
        self
    }

    /// Keeps only these attribute types (lowercased names without options) in the entries. The
    /// values of the others are still checked (UTF-8, base64), so an export that is broken
    /// anywhere is refused as before, but they are neither decoded nor handed out.
    pub fn keep_only(mut self, attributes: HashSet<String>) -> Self {
        self.parser.keep = Some(attributes);
        self.parser.names.clear();
        self
    }

    /// The size of the read buffer to start with (1 MiB by default); it grows for an entry
    /// longer than it. Tests use tiny ones, so that lines and entries cross refills.
    pub fn with_buffer_size(mut self, bytes: usize) -> Self {
        self.input.set_capacity(bytes);
        self
    }

    /// The next entry, borrowed from the reader until the next call; `Ok(None)` at the end of
    /// the input. After an error, always `Ok(None)`.
    pub fn next_entry(&mut self) -> Result<Option<Entry<'_>>, LdifError> {
        if self.done {
            return Ok(None);
        }
        let found = match self.advance() {
            Ok(Some(found)) => found,
            other => {
                self.done = true;
                return other.map(|_| None);
            }
        };
        if !found.checked {
            let (from, to) = self.parser.entry.text;
            let text = self.input.bytes(found.start + from, found.start + to);
            if let (Ok(text), None) = (std::str::from_utf8(text), memchr::memchr(0, text)) {
                return Ok(Some(Entry::new(&self.parser, text)));
            }
            // A value is not UTF-8 or holds a NUL byte (or only a comment does): parse the
            // entry again, checking and copying each value, for the error or the values.
            let window = self.input.bytes(found.start, self.input.end());
            let eof = self.input.at_eof();
            match self.parser.paragraph(window, eof, found.before, found.started, true) {
                Ok(Step::Entry { .. }) => {}
                Ok(_) => {
                    self.done = true;
                    let message = "the entry reads differently the second time".to_owned();
                    return Err(self.parser.syntax(found.before + 1, message));
                }
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            }
        }
        Ok(Some(Entry::new(&self.parser, "")))
    }

    /// Search references passed over so far (`ref:` records of `ldapsearch`): they point to
    /// other servers and are not followed.
    pub fn references(&self) -> u64 {
        self.references
    }

    /// Whether the input ends inside an entry without a line break: that last entry may be cut
    /// off. Meaningful once the reader returned `Ok(None)`.
    pub fn ends_without_line_break(&self) -> bool {
        self.entry_last && self.input.ends_without_line_break()
    }

    /// The next entry as an owned record, `Ok(None)` at the end of the input. After an error,
    /// always `Ok(None)`.
    pub fn next_record(&mut self) -> Result<Option<Record>, LdifError> {
        Ok(self.next_entry()?.map(|entry| entry.to_record()))
    }

    /// Parses and consumes paragraphs up to the next entry, reading more as needed.
    fn advance(&mut self) -> Result<Option<Found>, LdifError> {
        loop {
            if self.bom {
                if self.input.window().len() < BOM.len() && !self.input.at_eof() {
                    self.refill()?;
                    continue;
                }
                if self.input.window().starts_with(BOM) {
                    self.input.consume(BOM.len());
                }
                self.bom = false;
            }
            let window = self.input.window();
            let eof = self.input.at_eof();
            let (before, started) = (self.lineno, self.started);
            let (step, checked) = match self.parser.paragraph(window, eof, before, started, false) {
                Ok(step) => (step, false),
                // An unchecked value may hold an earlier error: find the first.
                Err(_) => (self.parser.paragraph(window, eof, before, started, true)?, true),
            };
            match step {
                Step::More => self.refill()?,
                Step::End => return Ok(None),
                Step::Skipped { consumed, lines, started } => {
                    self.input.consume(consumed);
                    self.lineno += lines;
                    self.started = started;
                    self.entry_last = false;
                }
                Step::Reference { consumed, lines, started } => {
                    self.input.consume(consumed);
                    self.lineno += lines;
                    self.started = started;
                    self.references += 1;
                    self.entry_last = false;
                }
                Step::Entry { consumed, lines } => {
                    let start = self.input.position();
                    self.input.consume(consumed);
                    self.lineno += lines;
                    self.started = true;
                    self.entry_last = true;
                    return Ok(Some(Found { start, before, started, checked }));
                }
            }
        }
    }

    fn refill(&mut self) -> Result<(), LdifError> {
        self.input.refill().map_err(|source| LdifError::Io { path: self.parser.path.to_string(), source })
    }
}

impl<R: Read> Iterator for LdifReader<R> {
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

//! One paragraph of LDIF (its lines up to a blank line) parsed where it lies in the read buffer:
//! the blank lines before it, then comments, the version line, an ldapsearch result trailer, or
//! an entry. The values of an entry are located, not copied: a plain value on one line is where
//! it lies in the buffer; only folded, base64 and URL values are decoded, into reused space.
//!
//! Parsing a paragraph changes nothing the next paragraph depends on until the caller commits
//! its outcome, so a paragraph can be parsed again: when the window ends inside it (after more
//! is read), and to find the first error in line order (see [`Parser::paragraph`]).

use super::entry::{Attr, Loc};
use super::lines::{Cursor, Head, Line, Next};
use super::names::Names;
use super::{is_description, is_trailer, show, url, LdifError, UrlPolicy};
use crate::source::Value;
use base64::Engine as _;
use std::collections::HashSet;
use std::sync::Arc;

/// Standard base64, padded or not: Samba's ldb and some hand-written files leave the padding
/// out, and the value is the same either way.
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// The entry parsed last.
pub(super) struct Parsed {
    /// The number of its dn line.
    pub(super) line: u64,
    /// Where its text, from its dn line to its end, is in the window it was parsed from.
    pub(super) text: (usize, usize),
    pub(super) dn: Loc,
    pub(super) attrs: Vec<Attr>,
    pub(super) decoded: String,
    pub(super) binary: Vec<u8>,
}

/// What parsing from the start of the window gave.
pub(super) enum Step {
    /// The window ends inside the paragraph: read more and parse it again.
    More,
    /// The input ends.
    End,
    /// `consumed` bytes holding `lines` lines were passed over: blank lines, or a paragraph
    /// without an entry (comments, the version line, an ldapsearch trailer).
    Skipped { consumed: usize, lines: u64, started: bool },
    /// Like `Skipped`, for a search reference (`ref:` lines that `ldapsearch` prints for a
    /// referral to another server, as Active Directory does at a domain's root).
    Reference { consumed: usize, lines: u64, started: bool },
    /// An entry, in [`Parser::entry`].
    Entry { consumed: usize, lines: u64 },
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

/// A content line split into its parts: `text[..colon]` is the attribute description and
/// `text[value..]` the value as written (leading spaces skipped).
#[derive(Clone, Copy)]
struct Spec {
    colon: usize,
    kind: Kind,
    value: usize,
}

pub(super) struct Parser {
    /// Shared with every record's origin.
    pub(super) path: Arc<str>,
    policy: UrlPolicy,
    /// Attribute types (lowercased, without options) to keep; `None` keeps all.
    pub(super) keep: Option<HashSet<String>>,
    pub(super) names: Names,
    pub(super) entry: Parsed,
    /// The current logical line when it is folded.
    unfolded: Vec<u8>,
    /// Base64 values being decoded.
    decoding: Vec<u8>,
    dn_head: Option<Head>,
}

impl Parser {
    pub(super) fn new(path: Arc<str>, policy: UrlPolicy) -> Self {
        Parser {
            path,
            policy,
            keep: None,
            names: Names::default(),
            entry: Parsed {
                line: 0,
                text: (0, 0),
                dn: Loc::Decoded(0, 0),
                attrs: Vec::new(),
                decoded: String::new(),
                binary: Vec::new(),
            },
            unfolded: Vec::new(),
            decoding: Vec::new(),
            dn_head: Head::new(b"dn"),
        }
    }

    /// Parses from the start of `window` (the start of a line, after `before` lines) to the end
    /// of the first paragraph. `started`: a version line or an entry came before.
    ///
    /// Unless `checked`, a plain value on one line is neither checked for UTF-8 nor for NUL
    /// bytes: the caller checks the entry's whole text at once, and parses it again `checked`
    /// when that fails (or when this fails: an unchecked value may hold an earlier error). A
    /// `checked` parse copies every value, so that the entry's text is not needed.
    pub(super) fn paragraph(
        &mut self,
        window: &[u8],
        eof: bool,
        before: u64,
        started: bool,
        checked: bool,
    ) -> Result<Step, LdifError> {
        let mut unfolded = std::mem::take(&mut self.unfolded);
        let step = self.paragraph_in(&mut Cursor::new(window, eof, before), &mut unfolded, started, checked);
        self.unfolded = unfolded;
        step
    }

    // Long for a reason: the reader's per-paragraph state machine (version line, comments,
    // change records, the dn), each state sharing the cursor and the unfolding buffer.
    fn paragraph_in(
        &mut self,
        cur: &mut Cursor<'_>,
        unfolded: &mut Vec<u8>,
        mut started: bool,
        checked: bool,
    ) -> Result<Step, LdifError> {
        // Most paragraphs are an entry that starts right away with a plain dn.
        if !checked {
            if let Some((from, to)) = cur.plain_value(b"dn", self.dn_head.as_ref()) {
                self.begin_entry();
                self.entry.dn = Loc::Text(from, to);
                return self.entry_lines(cur, unfolded, 0, cur.first_number(), checked);
            }
        }
        // Blank lines, then the first line of the paragraph.
        let (mut at, mut line) = loop {
            let at = cur.at;
            match cur.next(unfolded) {
                Next::More | Next::End if at > 0 => {
                    return Ok(Step::Skipped { consumed: at, lines: cur.lines, started })
                }
                Next::More => return Ok(Step::More),
                Next::End => return Ok(Step::End),
                Next::Line(line) if line.text.is_empty() => {}
                Next::Line(line) => break (at, line),
            }
        };
        // Find the `dn:` line, passing over comments, the version line and ldapsearch trailers.
        let spec = loop {
            if let Some(spec) = self.content(&line)? {
                let name = &line.text[..spec.colon];
                if name.eq_ignore_ascii_case(b"dn") {
                    break spec;
                } else if !started && name.eq_ignore_ascii_case(b"version") {
                    self.check_version(&line, spec)?;
                    started = true;
                } else if is_trailer(name) {
                    self.trailer_line(&line, spec)?;
                    return self.skip_trailer(cur, unfolded, started);
                } else if name.eq_ignore_ascii_case(b"ref") {
                    return self.skip_reference(cur, unfolded, started);
                } else {
                    let name = show(name);
                    return Err(self.syntax(
                        line.number,
                        format!(
                            "entry starts with \"{name}:\" instead of \"dn:\"; every entry must begin \
                             with its dn line (is a blank line misplaced, or a dn line missing?)"
                        ),
                    ));
                }
            }
            at = cur.at;
            line = match cur.next(unfolded) {
                Next::More => return Ok(Step::More),
                Next::End => return Ok(Step::Skipped { consumed: cur.at, lines: cur.lines, started }),
                Next::Line(line) if line.text.is_empty() => {
                    return Ok(Step::Skipped { consumed: cur.at, lines: cur.lines, started })
                }
                Next::Line(line) => line,
            };
        };
        let start = line.number;
        self.begin_entry();
        if spec.kind == Kind::Url {
            return Err(
                self.syntax(start, "a dn cannot be a URL (\"dn:<\"); write it as text or base64".into())
            );
        }
        self.entry.dn = match self.push_value(&line, spec, at, checked)? {
            Loc::Binary(..) => {
                return Err(self.syntax(
                    start,
                    "the base64 dn does not decode to UTF-8 text; re-export the directory or fix \
                     the dn"
                        .into(),
                ))
            }
            text => text,
        };
        self.entry_lines(cur, unfolded, at, start, checked)
    }

    /// Parses the lines of an entry after its dn line, which starts at `at` in the window and
    /// is line `start`.
    // Long for a reason: the loop every line of every entry goes through; its states (plain,
    // folded, base64, URL value) share the cursor and the interned names, which a split would
    // pass along on every line.
    fn entry_lines(
        &mut self,
        cur: &mut Cursor<'_>,
        unfolded: &mut Vec<u8>,
        at: usize,
        start: u64,
        checked: bool,
    ) -> Result<Step, LdifError> {
        // The position of the line in the entry and the description before it, for the cache.
        let (mut index, mut prev) = (0, u32::MAX);
        let end = loop {
            if !checked {
                // The description at this position in the entries before, the one that followed
                // the description before last time, or one seen elsewhere.
                let mut found = self.names.expected(index).and_then(|(id, name)| {
                    cur.plain_value(&name.raw, name.head.as_ref()).map(|value| (id, name.keep, value))
                });
                if found.is_none() {
                    found = self.names.after(prev).and_then(|(id, name)| {
                        cur.plain_value(&name.raw, name.head.as_ref()).map(|value| (id, name.keep, value))
                    });
                    if let Some((id, ..)) = found {
                        self.names.remember(index, id);
                    } else if let Some(raw) = cur.description() {
                        if let Some((id, keep)) = self.names.find(index, raw) {
                            found = cur.plain_value(raw, None).map(|value| (id, keep, value));
                        }
                    }
                }
                if let Some((name, keep, (from, to))) = found {
                    self.names.follows(prev, name);
                    prev = name;
                    index += 1;
                    if keep {
                        self.entry.attrs.push(Attr { name, value: Loc::Text(from - at, to - at) });
                    }
                    continue;
                }
            }
            let line_at = cur.at;
            let line = match cur.next(unfolded) {
                Next::More => return Ok(Step::More),
                Next::End => break cur.at,
                Next::Line(line) if line.text.is_empty() => break line_at,
                Next::Line(line) => line,
            };
            match line.text[0] {
                b'#' => continue,
                b'-' => {
                    return Err(self.syntax(
                        line.number,
                        "a line starting with \"-\" belongs to a change record (ldapmodify input), \
                         not a content export; export the directory with slapcat or ldapsearch \
                         instead"
                            .into(),
                    ))
                }
                _ => {}
            }
            let spec = self.split(&line)?;
            let name = &line.text[..spec.colon];
            // Descriptions seen before are neither `dn` nor `changetype`: those never get there.
            let (name, keep) = match self.names.find(index, name) {
                Some(found) => found,
                None => {
                    if name.eq_ignore_ascii_case(b"dn") {
                        return Err(self.syntax(
                            line.number,
                            format!(
                                "a second dn line inside the entry that starts on line {start}; \
                                 separate entries with a blank line"
                            ),
                        ));
                    }
                    if name.eq_ignore_ascii_case(b"changetype") {
                        // `ldifde` writes every exported entry as `changetype: add`: that is a
                        // whole entry, so it is accepted right after the dn. Anything else is a
                        // change record.
                        let changetype = match self.value_of(&line, spec)? {
                            Value::Text(t) => t.trim().to_owned(),
                            Value::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
                        };
                        if index == 0 && changetype.eq_ignore_ascii_case("add") {
                            continue;
                        }
                        let (path, line) = (self.path.to_string(), line.number);
                        return Err(LdifError::ChangeRecord { path, line, changetype });
                    }
                    self.describe(index, &line, spec)?
                }
            };
            self.names.follows(prev, name);
            prev = name;
            index += 1;
            if keep {
                let value = self.push_value(&line, spec, at, checked)?;
                self.entry.attrs.push(Attr { name, value });
            } else {
                self.check_value(&line, spec, checked)?;
            }
        };
        self.entry.line = start;
        self.entry.text = (at, end);
        Ok(Step::Entry { consumed: cur.at, lines: cur.lines })
    }

    fn begin_entry(&mut self) {
        let entry = &mut self.entry;
        entry.attrs.clear();
        entry.decoded.clear();
        entry.binary.clear();
        self.names.trim();
    }

    /// Passes over the rest of an ldapsearch result trailer (`search:`, `result:`, `control:`,
    /// `pagedresults:` lines).
    fn skip_trailer(
        &self,
        cur: &mut Cursor<'_>,
        unfolded: &mut Vec<u8>,
        started: bool,
    ) -> Result<Step, LdifError> {
        let more = self.skip_rest(cur, unfolded, |line, spec| self.trailer_line(line, spec))?;
        Ok(if more { Step::More } else { Step::Skipped { consumed: cur.at, lines: cur.lines, started } })
    }

    /// Passes over the rest of a search reference: more `ref:` lines and comments, up to a
    /// blank line. References are not followed: what they point to is another server's.
    fn skip_reference(
        &self,
        cur: &mut Cursor<'_>,
        unfolded: &mut Vec<u8>,
        started: bool,
    ) -> Result<Step, LdifError> {
        let more = self.skip_rest(cur, unfolded, |line, spec| {
            if line.text[..spec.colon].eq_ignore_ascii_case(b"ref") {
                return Ok(());
            }
            Err(self.syntax(
                line.number,
                format!(
                    "\"{}:\" inside a search reference (ref: lines); a search reference holds only \
                     ref: lines, and an entry must begin with its dn line after a blank line",
                    show(&line.text[..spec.colon])
                ),
            ))
        })?;
        Ok(if more { Step::More } else { Step::Reference { consumed: cur.at, lines: cur.lines, started } })
    }

    /// Passes over the lines of a paragraph up to a blank line or the end, checking each content
    /// line with `check` (comments pass). `Ok(true)` when the window ends first: read more.
    fn skip_rest(
        &self,
        cur: &mut Cursor<'_>,
        unfolded: &mut Vec<u8>,
        check: impl Fn(&Line<'_>, Spec) -> Result<(), LdifError>,
    ) -> Result<bool, LdifError> {
        loop {
            match cur.next(unfolded) {
                Next::More => return Ok(true),
                Next::End => return Ok(false),
                Next::Line(line) if line.text.is_empty() => return Ok(false),
                Next::Line(line) if line.text[0] == b'#' => {}
                Next::Line(line) => check(&line, self.split(&line)?)?,
            }
        }
    }

    /// Checks a line of an ldapsearch result trailer. A result other than 0 means the search
    /// stopped early, so the export is incomplete.
    fn trailer_line(&self, line: &Line<'_>, spec: Spec) -> Result<(), LdifError> {
        let name = &line.text[..spec.colon];
        if !is_trailer(name) {
            return Err(self.syntax(
                line.number,
                format!(
                    "unexpected \"{}:\" in an ldapsearch result trailer (search:/result: \
                     lines); every entry must begin with its dn line",
                    show(name)
                ),
            ));
        }
        if name.eq_ignore_ascii_case(b"result") {
            let result = match self.value_of(line, spec)? {
                Value::Text(t) => t,
                Value::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
            };
            if result.split_whitespace().next() != Some("0") {
                return Err(self.syntax(
                    line.number,
                    format!(
                        "ldapsearch reported \"result: {result}\", so the export is \
                         incomplete; re-run the export with paged results (-E pr=1000/\
                         noprompt) or higher size and time limits"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The parts of a line that is not blank, `None` for a comment.
    fn content(&self, line: &Line<'_>) -> Result<Option<Spec>, LdifError> {
        match line.text.first() {
            Some(b'#') => Ok(None),
            Some(b' ') => Err(self.syntax(
                line.number,
                "line starts with a space, so it continues the line before, but there is none (it \
                 starts the file or follows a blank line); remove the space or the blank line"
                    .into(),
            )),
            Some(0xFF | 0xFE) if line.number == 1 => Err(self.syntax(
                line.number,
                "the file is UTF-16 (ldifde -u writes it so); convert it to UTF-8 (iconv -f UTF-16 \
                 -t UTF-8) or export without -u"
                    .into(),
            )),
            _ => self.split(line).map(Some),
        }
    }

    /// Splits a content line at its colon (the caller checks the description).
    fn split(&self, line: &Line<'_>) -> Result<Spec, LdifError> {
        let text = line.text;
        let Some(colon) = memchr::memchr(b':', text) else {
            return Err(self.syntax(
                line.number,
                format!(
                    "line \"{}\" has no colon; every line must be \"attribute: value\", a \
                     comment starting with \"#\" or a continuation starting with one space",
                    show(text)
                ),
            ));
        };
        let (kind, mut value) = match text.get(colon + 1) {
            Some(b':') => (Kind::Base64, colon + 2),
            Some(b'<') => (Kind::Url, colon + 2),
            _ => (Kind::Plain, colon + 1),
        };
        while text.get(value) == Some(&b' ') {
            value += 1;
        }
        Ok(Spec { colon, kind, value: value.min(text.len()) })
    }

    /// The description of a line not in the cache, checked, lowercased and remembered as the
    /// `index`-th of its entry; whether entries keep it.
    fn describe(&mut self, index: usize, line: &Line<'_>, spec: Spec) -> Result<(u32, bool), LdifError> {
        let raw = &line.text[..spec.colon];
        let lower = match std::str::from_utf8(raw) {
            Ok(name) if is_description(raw) => name.to_ascii_lowercase(),
            _ => {
                return Err(self.syntax(
                    line.number,
                    format!(
                        "invalid attribute description \"{}\"; it must be a name of letters, \
                         digits and hyphens (or an OID), optionally followed by options like \
                         \";binary\"",
                        show(raw)
                    ),
                ))
            }
        };
        let keep = self.keep.as_ref().is_none_or(|k| k.contains(crate::source::attr_base(&lower)));
        Ok((self.names.insert(index, raw, lower, keep), keep))
    }

    /// Locates or decodes the value of a content line of the entry whose text starts at `base`
    /// in the window.
    fn push_value(
        &mut self,
        line: &Line<'_>,
        spec: Spec,
        base: usize,
        checked: bool,
    ) -> Result<Loc, LdifError> {
        match (spec.kind, line.start) {
            (Kind::Plain, Some(start)) if !checked => {
                let from = start + spec.value - base;
                Ok(Loc::Text(from, from + line.text.len() - spec.value))
            }
            (Kind::Plain, _) => {
                let text = self.plain(line, spec)?;
                let entry = &mut self.entry;
                let from = entry.decoded.len();
                entry.decoded.push_str(text);
                Ok(Loc::Decoded(from, entry.decoded.len()))
            }
            (Kind::Base64, _) => {
                self.decoding.clear();
                let encoded = line.text[spec.value..].trim_ascii_end();
                if let Err(e) = BASE64.decode_vec(encoded, &mut self.decoding) {
                    return Err(self.bad_base64(line, spec, e));
                }
                let entry = &mut self.entry;
                Ok(match std::str::from_utf8(&self.decoding) {
                    Ok(text) => {
                        let from = entry.decoded.len();
                        entry.decoded.push_str(text);
                        Loc::Decoded(from, entry.decoded.len())
                    }
                    Err(_) => {
                        let from = entry.binary.len();
                        entry.binary.extend_from_slice(&self.decoding);
                        Loc::Binary(from, entry.binary.len())
                    }
                })
            }
            (Kind::Url, _) => {
                let value = self.value_of(line, spec)?;
                let entry = &mut self.entry;
                Ok(match value {
                    Value::Text(text) => {
                        let from = entry.decoded.len();
                        entry.decoded.push_str(&text);
                        Loc::Decoded(from, entry.decoded.len())
                    }
                    Value::Binary(bytes) => {
                        let from = entry.binary.len();
                        entry.binary.extend_from_slice(&bytes);
                        Loc::Binary(from, entry.binary.len())
                    }
                })
            }
        }
    }

    /// Checks the value of a content line as [`Self::push_value`] does, without keeping it.
    fn check_value(&mut self, line: &Line<'_>, spec: Spec, checked: bool) -> Result<(), LdifError> {
        match spec.kind {
            // Unchecked, the entry's whole text is checked instead; unfolding keeps the bytes.
            Kind::Plain if !checked => Ok(()),
            Kind::Plain => self.plain(line, spec).map(drop),
            Kind::Base64 => {
                self.decoding.clear();
                let encoded = line.text[spec.value..].trim_ascii_end();
                match BASE64.decode_vec(encoded, &mut self.decoding) {
                    Ok(()) => Ok(()),
                    Err(e) => Err(self.bad_base64(line, spec, e)),
                }
            }
            Kind::Url => self.value_of(line, spec).map(drop),
        }
    }

    /// A plain value, checked to be UTF-8 without NUL bytes.
    fn plain<'l>(&self, line: &Line<'l>, spec: Spec) -> Result<&'l str, LdifError> {
        let raw = &line.text[spec.value..];
        let name = || show(&line.text[..spec.colon]);
        let text = std::str::from_utf8(raw).map_err(|e| {
            self.syntax(
                line.number,
                format!(
                    "value of \"{}\" is not valid UTF-8 (bad byte at offset {} of the value); \
                     convert the file to UTF-8 or write the value in base64 with \"::\"",
                    name(),
                    e.valid_up_to()
                ),
            )
        })?;
        if let Some(at) = memchr::memchr(0, raw) {
            return Err(self.syntax(
                line.number,
                format!(
                    "value of \"{}\" holds a NUL byte (at offset {at} of the value); write such \
                     values in base64 with \"::\" or fix the value",
                    name()
                ),
            ));
        }
        Ok(text)
    }

    fn bad_base64(&self, line: &Line<'_>, spec: Spec, e: base64::DecodeError) -> LdifError {
        self.syntax(
            line.number,
            format!(
                "invalid base64 in value of \"{}\": {}; re-export the directory or fix the value",
                show(&line.text[..spec.colon]),
                e.to_string().trim_end_matches('.').to_lowercase()
            ),
        )
    }

    /// The value of a content line, decoded and owned (for the few lines read as such).
    fn value_of(&self, line: &Line<'_>, spec: Spec) -> Result<Value, LdifError> {
        let raw = &line.text[spec.value..];
        match spec.kind {
            Kind::Plain => self.plain(line, spec).map(|text| Value::Text(text.to_owned())),
            Kind::Base64 => match BASE64.decode(raw.trim_ascii_end()) {
                Ok(bytes) => Ok(super::bytes_value(bytes)),
                Err(e) => Err(self.bad_base64(line, spec, e)),
            },
            Kind::Url => self.url_value(line.number, &show(&line.text[..spec.colon]), raw),
        }
    }

    /// Reads a `:<` URL value if the policy allows it.
    fn url_value(&self, line: u64, name: &str, raw: &[u8]) -> Result<Value, LdifError> {
        let url = String::from_utf8_lossy(raw);
        let url = url.trim_end();
        match url::read(&self.policy, url) {
            Ok(bytes) => Ok(super::bytes_value(bytes)),
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

    fn check_version(&self, line: &Line<'_>, spec: Spec) -> Result<(), LdifError> {
        match self.value_of(line, spec)? {
            Value::Text(v) if v.trim() == "1" => Ok(()),
            _ => Err(self.syntax(
                line.number,
                format!(
                    "unsupported LDIF version \"{}\"; only \"version: 1\" (RFC 2849) exists, \
                     so fix or remove the line",
                    show(&line.text[spec.value..])
                ),
            )),
        }
    }

    pub(super) fn syntax(&self, line: u64, message: String) -> LdifError {
        LdifError::Syntax { path: self.path.to_string(), line, message }
    }
}

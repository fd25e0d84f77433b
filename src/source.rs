//! Sources: each reads a whole export into records, or fails; nothing is planned from a partial read.

pub mod csv;
pub mod directory;
pub mod json;
pub mod ldap;
pub mod ldif;
pub mod scim;
mod section;
mod user_record;

pub use section::{RawSource, SourceConfig, SourceKind};
pub use user_record::{Names, UserRecord};

use directory::SourceDirectory;
use std::collections::HashSet;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

/// Why a source read failed. A failed read aborts the run before planning.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot open source {path} (check source.path and the file's permissions)")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Ldif(#[from] ldif::LdifError),
    #[error("{}: {message}", Origin { path: path.as_str().into(), line: *line })]
    Parse { path: String, line: u64, message: String },
    #[error("incomplete source: {0}")]
    Incomplete(String),
    /// The SCIM source refused the credentials (401/403).
    #[error("{0}")]
    Auth(String),
    /// The SCIM source cannot be read at all (no URL, TLS, a wrong URL or filter).
    #[error("{0}")]
    Scim(String),
    #[error("{0}")]
    Unsupported(String),
    /// The LDAP source failed: the server's words and what to do.
    #[error("{0}")]
    Ldap(String),
    /// A file source was written to while it was read.
    #[error("{0}")]
    Changed(String),
}

fn open(path: &Path) -> Result<BufReader<File>, SourceError> {
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    Ok(BufReader::with_capacity(256 * 1024, file))
}

/// What tells whether a file was written to while it was read: its device and inode, length,
/// and modification and status-change times, all from the open file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(file: &File) -> std::io::Result<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let m = file.metadata()?;
        Ok(Stamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

/// An export opened to be read whole: refused when empty. The stamp taken when it was opened is
/// compared with the file's after the read ([`OpenExport::check_unchanged`]).
struct OpenExport {
    file: File,
    stamp: Stamp,
    path: std::path::PathBuf,
}

impl OpenExport {
    fn open(path: &Path) -> Result<OpenExport, SourceError> {
        let open_err = |e| io_error(path, e);
        let file = File::open(path).map_err(open_err)?;
        let stamp = Stamp::of(&file).map_err(open_err)?;
        if stamp.len == 0 {
            return Err(SourceError::Incomplete(format!(
                "{} is empty: an empty export is refused; check the export job",
                path.display()
            )));
        }
        Ok(OpenExport { file, stamp, path: path.to_owned() })
    }

    /// Fails when the file was written to while it was read (an export job writing it in place,
    /// a slow paged `ldapsearch` still appending): what was read may be a part of it. A new file
    /// renamed into place meanwhile is no change to the one read, which was complete.
    fn check_unchanged(&self) -> Result<(), SourceError> {
        let now = Stamp::of(&self.file).map_err(|e| io_error(&self.path, e))?;
        if now == self.stamp {
            return Ok(());
        }
        let grew = match now.len.cmp(&self.stamp.len) {
            std::cmp::Ordering::Greater => format!("grew from {} to {} bytes", self.stamp.len, now.len),
            std::cmp::Ordering::Less => format!("shrank from {} to {} bytes", self.stamp.len, now.len),
            std::cmp::Ordering::Equal => "was rewritten".to_owned(),
        };
        Err(SourceError::Changed(format!(
            "{} {grew} while it was read, so an export job is probably still writing it: nothing was planned; the daemon reads it again once it is quiet. Have the export job write a temporary file and rename it into place",
            self.path.display()
        )))
    }

    /// Whether the file's last byte is not a line break (read by position from the open file).
    fn ends_without_line_break(&self) -> Result<bool, SourceError> {
        use std::os::unix::fs::FileExt;
        let mut last = [0u8; 1];
        self.file.read_exact_at(&mut last, self.stamp.len - 1).map_err(|e| io_error(&self.path, e))?;
        Ok(last[0] != b'\n')
    }

    /// Another handle on the open file, to read it through.
    fn handle(&self) -> Result<File, SourceError> {
        self.file.try_clone().map_err(|e| io_error(&self.path, e))
    }
}

fn io_error(path: &Path, source: std::io::Error) -> SourceError {
    SourceError::Open { path: path.display().to_string(), source }
}

/// Reads the configured source completely, or fails: nothing is planned from a partial read.
/// File sources are read on the calling thread; the SCIM source over the network.
pub async fn read(cfg: &SourceConfig) -> Result<SourceDirectory, SourceError> {
    read_for(cfg, None).await
}

/// What a read keeps of each LDIF entry when the mapping names the attributes it reads: the
/// reader drops every other attribute as it parses, so that a large export never sits in memory
/// whole (the mapping may read any attribute when it does not name them: then all are kept).
#[derive(Clone, Copy, Debug)]
pub struct Kept<'a> {
    /// What the directory rules (keys, classes, members) and the mapping read: the reader keeps
    /// these of every entry.
    pub by_reader: &'a HashSet<String>,
    /// What the mapping reads: a user's record keeps these once the user is classified and keyed.
    pub by_user: &'a HashSet<String>,
}

/// [`read`], keeping in each user record only the attributes in `wanted` (lowercased types
/// without options; the directory rules read theirs before they are dropped); `None` keeps
/// every attribute. The mapping names what it reads
/// ([`crate::mapping::Mapping::source_attributes`]): a million-user export then does not sit
/// in memory whole.
pub async fn read_for(
    cfg: &SourceConfig,
    wanted: Option<&HashSet<String>>,
) -> Result<SourceDirectory, SourceError> {
    let keep: Option<HashSet<String>> = wanted.map(|w| {
        let mut keep: HashSet<String> = directory::needed_attributes(&cfg.directory).collect();
        keep.extend(w.iter().cloned());
        keep
    });
    let path = cfg.path.as_deref().unwrap_or(Path::new(""));
    let name = match cfg.kind {
        SourceKind::Scim => format!("the SCIM source {}", cfg.url.as_deref().unwrap_or("")),
        SourceKind::Ldap => format!("the directory {}", cfg.url.as_deref().unwrap_or("")),
        _ => path.display().to_string(),
    };
    let kept = keep.as_ref().zip(wanted).map(|(by_reader, by_user)| Kept { by_reader, by_user });
    let mut dir = match cfg.kind {
        SourceKind::Ldif => {
            let export = OpenExport::open(path)?;
            let dir = ldif::parts::read(export.handle()?, path, &name, cfg, kept)?;
            export.check_unchanged()?;
            dir
        }
        SourceKind::Csv => {
            let export = OpenExport::open(path)?;
            let mut dir = csv::read(BufReader::with_capacity(256 * 1024, export.handle()?), &name, cfg)?;
            export.check_unchanged()?;
            // A last row without a line break may be cut off, as an LDIF entry may.
            if export.ends_without_line_break()? {
                dir.cut_off = dir.users.last().map(|u| directory::CutOff {
                    origin: u.record.origin.to_string(),
                    key: Some(u.key.clone()),
                });
            }
            dir
        }
        SourceKind::Json => json::read(open(path)?, &name)?,
        SourceKind::Scim => scim::read(cfg).await?,
        SourceKind::Ldap => ldap::read(cfg, kept).await?,
    };
    if dir.records_read == 0 {
        return Err(SourceError::Incomplete(format!(
            "{name} holds no records: an empty source is refused; check the export job or the source's scope"
        )));
    }
    if let (Some(wanted), SourceKind::Csv | SourceKind::Json) = (wanted, cfg.kind) {
        for u in &mut dir.users {
            u.record.retain(|n| wanted.contains(attr_base(n)));
        }
    }
    Ok(dir)
}

/// One attribute value as a source gives it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    /// Valid UTF-8 text (LDIF plain or base64 values that decode to UTF-8, CSV cells, JSON strings).
    Text(String),
    /// Bytes that are not UTF-8 (base64 LDIF values such as certificates or `objectGUID`).
    Binary(Vec<u8>),
}

impl Value {
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            Value::Binary(_) => None,
        }
    }

    #[inline]
    pub fn borrowed(&self) -> ValueRef<'_> {
        match self {
            Value::Text(s) => ValueRef::Text(s),
            Value::Binary(b) => ValueRef::Binary(b),
        }
    }
}

/// A [`Value`] borrowed: from a [`Record`], or from the LDIF reader's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueRef<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

impl<'a> ValueRef<'a> {
    #[inline]
    pub fn as_text(self) -> Option<&'a str> {
        match self {
            ValueRef::Text(s) => Some(s),
            ValueRef::Binary(_) => None,
        }
    }

    pub fn to_value(self) -> Value {
        match self {
            ValueRef::Text(s) => Value::Text(s.to_owned()),
            ValueRef::Binary(b) => Value::Binary(b.to_owned()),
        }
    }
}

/// What directory interpretation reads of an entry: an owned [`Record`], or an LDIF entry
/// borrowed from the reader ([`ldif::Entry`]), which a million-user read goes through without
/// copying the values it does not keep.
pub trait SourceEntry {
    fn dn(&self) -> &str;
    fn origin(&self) -> Origin;
    /// `(lowercased attribute description, value)` in source order.
    fn attributes(&self) -> impl Iterator<Item = (&str, ValueRef<'_>)>;

    /// All values of an attribute (name compared case-insensitively, options ignored).
    #[inline]
    fn values_of<'s>(&'s self, name: &'s str) -> impl Iterator<Item = ValueRef<'s>> {
        self.attributes().filter(move |(n, _)| is_type(n, name)).map(|(_, v)| v)
    }

    /// The first text value of an attribute.
    #[inline]
    fn text_of<'s>(&'s self, name: &'s str) -> Option<&'s str> {
        self.values_of(name).find_map(ValueRef::as_text)
    }
}

impl SourceEntry for Record {
    fn dn(&self) -> &str {
        &self.dn
    }

    fn origin(&self) -> Origin {
        self.origin.clone()
    }

    fn attributes(&self) -> impl Iterator<Item = (&str, ValueRef<'_>)> {
        self.attrs.iter().map(|(n, v)| (n.as_str(), v.borrowed()))
    }
}

pub use crate::model::Origin;

/// A source record: an LDIF entry, a CSV row or a SCIM resource, with attribute names folded to
/// lowercase (attribute names are case-insensitive in LDAP and SCIM alike).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub origin: Origin,
    /// The DN for LDIF, the resource `id` for SCIM, the row's id column for CSV.
    pub dn: String,
    /// `(lowercased attribute description, value)` in file order; options such as `;binary` kept
    /// in the name after the base name.
    pub attrs: Vec<(String, Value)>,
}

impl Record {
    /// All values of an attribute (name compared case-insensitively, options ignored).
    pub fn values<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a Value> + use<'a, 'n> {
        self.attrs.iter().filter(move |(n, _)| is_type(n, name)).map(|(_, v)| v)
    }

    /// The first text value of an attribute.
    pub fn first_text(&self, name: &str) -> Option<&str> {
        self.values(name).find_map(Value::as_text)
    }

    pub fn has_value_ci(&self, name: &str, wanted: &str) -> bool {
        self.values(name).filter_map(Value::as_text).any(|v| v.eq_ignore_ascii_case(wanted))
    }
}

/// Whether the description `desc` (`cn;lang-de`) is of the attribute type `name` (`CN`):
/// [`attr_base`] and a case-insensitive comparison, without searching the whole description.
#[inline]
fn is_type(desc: &str, name: &str) -> bool {
    let (d, n) = (desc.as_bytes(), name.as_bytes());
    d.len() >= n.len() && d[..n.len()].eq_ignore_ascii_case(n) && d.get(n.len()).is_none_or(|&b| b == b';')
}

/// The attribute type without options: `usercertificate;binary` → `usercertificate`.
pub fn attr_base(desc: &str) -> &str {
    desc.split(';').next().unwrap_or(desc)
}

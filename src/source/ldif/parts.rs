//! A large LDIF export read in parts, one thread each: the file is cut at blank lines (which
//! always end an entry), each part is parsed and interpreted on its own with its line numbers
//! going on from the parts before it, and the parts are joined in file order. The result, and
//! the first error in file order, are those of reading the file in one go.

use crate::source::directory::{self, DnHasher, Part, SourceDirectory};
use crate::source::{ldif, Kept, SourceConfig, SourceError};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// A part smaller than this is not worth a thread of its own.
const MIN_PART_BYTES: u64 = 32 << 20;
/// Reading is CPU-bound; beyond this many threads the join and the memory traffic dominate.
const MAX_PARTS: usize = 4;

/// Reads and interprets the export `file` (opened from `path`, checked to end with a line
/// break). The parts all read this one open file by position: they read the same file even if an
/// export job renames a new one into place meanwhile.
pub fn read(
    file: File,
    path: &Path,
    name: &str,
    cfg: &SourceConfig,
    kept: Option<Kept<'_>>,
) -> Result<SourceDirectory, SourceError> {
    read_with(file, path, name, cfg, kept, MIN_PART_BYTES, crate::parts::threads(MAX_PARTS))
}

/// [`read`] in at most `threads` parts of at least `min_part` bytes.
fn read_with(
    file: File,
    path: &Path,
    name: &str,
    cfg: &SourceConfig,
    kept: Option<Kept<'_>>,
    min_part: u64,
    threads: usize,
) -> Result<SourceDirectory, SourceError> {
    let open_err = |e| SourceError::Open { path: path.display().to_string(), source: e };
    let hasher = DnHasher::default();
    let policy = ldif::UrlPolicy { allowed_dir: cfg.allow_url_dir.clone() };
    let read_part = |reader: ldif::LdifReader<At<'_>>| -> Result<Part, SourceError> {
        let mut reader = match kept {
            Some(kept) => reader.keep_only(kept.by_reader.clone()),
            None => reader,
        };
        // Each entry is borrowed from the reader's buffer while it is interpreted: only what
        // the directory keeps of it is copied.
        let mut part = directory::PartBuilder::new(&cfg.directory, kept.map(|k| k.by_user), &hasher);
        while let Some(entry) = reader.next_entry()? {
            part.add(&entry);
        }
        part.ended(reader.references(), reader.ends_without_line_break());
        Ok(part.finish())
    };
    let parts = in_parts_with(&file, name, &policy, min_part, threads, read_part).map_err(open_err)?;
    // The first error in file order is the one reading the file in one go would have met.
    let parts = parts.into_iter().collect::<Result<Vec<Part>, SourceError>>()?;
    Ok(directory::join_parts(parts, hasher))
}

/// Reads the LDIF export `file` in parts as [`read`] does (one per core, up to four, each at
/// least 32 MiB), giving each part's reader to `each` on the part's own thread; the results in
/// file order. Each reader numbers its lines as in the whole file.
pub fn in_parts<'f, T: Send>(
    file: &'f File,
    name: &str,
    policy: &ldif::UrlPolicy,
    each: impl Fn(ldif::LdifReader<At<'f>>) -> T + Sync,
) -> std::io::Result<Vec<T>> {
    in_parts_with(file, name, policy, MIN_PART_BYTES, crate::parts::threads(MAX_PARTS), each)
}

/// [`in_parts`] in at most `threads` parts of at least `min_part` bytes.
fn in_parts_with<'f, T: Send>(
    file: &'f File,
    name: &str,
    policy: &ldif::UrlPolicy,
    min_part: u64,
    threads: usize,
    each: impl Fn(ldif::LdifReader<At<'f>>) -> T + Sync,
) -> std::io::Result<Vec<T>> {
    let len = file.metadata()?.len();
    let wanted_parts = usize::try_from(len / min_part.max(1)).unwrap_or(usize::MAX).clamp(1, threads.max(1));
    let starts = if wanted_parts > 1 { cut_points(file, len, wanted_parts)? } else { vec![0] };
    let ranges: Vec<(u64, u64)> =
        starts.iter().zip(starts.iter().skip(1).chain([&len])).map(|(&a, &b)| (a, b)).collect();
    // The line breaks in each part but the last, counted on the parts' own threads, give each
    // part the number of the line before it: every byte is counted once.
    let counted = crate::parts::map_on_threads(ranges[..ranges.len() - 1].to_vec(), |(start, end)| {
        count_lines(file, start, end)
    });
    let counted = counted.into_iter().collect::<std::io::Result<Vec<u64>>>()?;
    let lines_before = std::iter::once(0).chain(counted.into_iter().scan(0, |sum, n| {
        *sum += n;
        Some(*sum)
    }));
    let read_part = |((start, end), lines): ((u64, u64), u64)| {
        // The reader reads in large blocks of its own: no `BufReader` copy in between.
        let mut reader = ldif::LdifReader::new(At { file, pos: start, end }, name, policy.clone());
        if start > 0 {
            reader = reader.continuing_after(lines);
        }
        each(reader)
    };
    Ok(crate::parts::map_on_threads(ranges.into_iter().zip(lines_before).collect(), read_part))
}

/// Where to cut the file into about `parts` parts: the start of the line after a blank line at
/// or after each even share of the file. Parts without such a line are not cut.
fn cut_points(file: &File, len: u64, parts: usize) -> std::io::Result<Vec<u64>> {
    let mut starts = vec![0];
    for i in 1..parts {
        let from = len / parts as u64 * i as u64;
        match next_entry_start(file, from.max(*starts.last().unwrap_or(&0)), len)? {
            Some(at) if at < len && at > *starts.last().unwrap_or(&0) => starts.push(at),
            _ => break,
        }
    }
    Ok(starts)
}

/// The offset just after the first blank line (`\n\n` or `\n\r\n`) that starts at or after
/// `from`, if any before `len`.
fn next_entry_start(file: &File, from: u64, len: u64) -> std::io::Result<Option<u64>> {
    // A byte before `from` is read too, so that a blank line right at `from` is found.
    let mut at = from.saturating_sub(1);
    let mut window = vec![0u8; 1 << 20];
    // The last two bytes of the previous window, so that a blank line across windows is found.
    let mut carry: Vec<u8> = Vec::new();
    while at < len {
        let n = file.read_at(&mut window, at)?;
        if n == 0 {
            break;
        }
        let mut bytes = std::mem::take(&mut carry);
        let base = at - bytes.len() as u64;
        bytes.extend_from_slice(&window[..n]);
        for i in 0..bytes.len() {
            if bytes[i] != b'\n' {
                continue;
            }
            let next = match bytes.get(i + 1) {
                Some(b'\r') => i + 2,
                Some(_) => i + 1,
                None => break,
            };
            match bytes.get(next) {
                Some(b'\n') => return Ok(Some(base + next as u64 + 1)),
                Some(_) => {}
                None => break,
            }
        }
        carry = bytes[bytes.len().saturating_sub(2)..].to_vec();
        at += n as u64;
    }
    Ok(None)
}

/// The number of line breaks in the bytes `start..end` of the file.
fn count_lines(file: &File, start: u64, end: u64) -> std::io::Result<u64> {
    let mut input = At { file, pos: start, end };
    let mut buf = vec![0u8; 1 << 20];
    let mut lines = 0u64;
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            return Ok(lines);
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
}

/// The bytes `pos..end` of a file, read by position: threads share one open file without
/// sharing a file offset.
pub struct At<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = usize::try_from(self.end.saturating_sub(self.pos)).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    /// An LDIF source with the default directory rules, as the demo config has it.
    fn demo_source(path: &Path) -> SourceConfig {
        let raw = crate::source::RawSource {
            kind: Some("ldif".into()),
            path: Some(path.to_owned()),
            ..Default::default()
        };
        let mut errors = crate::section::ConfigErrors::default();
        let cfg = raw.validate(Path::new("/"), &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        cfg
    }

    /// An export that exercises what crosses part boundaries: nested groups and memberUid
    /// groups naming users in other parts, a DN given twice (the later entry wins), a uid given
    /// twice (the first user answers), folded lines, CRLF line ends and comments.
    fn export(users: usize) -> String {
        let mut out = String::from("version: 1\n\n");
        for i in 0..users {
            let end = if i % 7 == 0 { "\r\n" } else { "\n" };
            let uid = if i == users - 1 { "u1".to_owned() } else { format!("u{i}") };
            let dn =
                if i == users - 2 { "uid=u3,ou=p,dc=x".to_owned() } else { format!("uid=u{i},ou=p,dc=x") };
            out += &format!("# user {i}{end}dn: {dn}{end}objectClass: inetOrgPerson{end}uid: {uid}{end}");
            out += &format!(
                "mail: u{i}@x.example{end}description: a long line that is folded{end}  here{end}{end}"
            );
        }
        let members = |from: usize, step: usize| {
            (from..users).step_by(step).map(|i| format!("member: uid=u{i},ou=p,dc=x\n")).collect::<String>()
        };
        out += &format!("dn: cn=inner,ou=g,dc=x\nobjectClass: groupOfNames\ncn: inner\n{}\n", members(1, 5));
        out += &format!(
            "dn: cn=outer,ou=g,dc=x\nobjectClass: groupOfNames\ncn: outer\nmember: cn=inner,ou=g,dc=x\n{}\n",
            members(2, 9)
        );
        out += "dn: cn=posix,ou=g,dc=x\nobjectClass: posixGroup\ncn: posix\nmemberUid: u1\nmemberUid: u3\n\n";
        out
    }

    fn read_in(path: &Path, threads: usize) -> Result<String, String> {
        let cfg = demo_source(path);
        let keep: std::collections::HashSet<String> =
            ["mail", "uid", "objectclass", "member", "memberuid", "cn"].map(String::from).into();
        let file = File::open(path).expect("opens");
        let kept = Kept { by_reader: &keep, by_user: &keep };
        read_with(file, path, "export.ldif", &cfg, Some(kept), 1, threads)
            .map(|d| format!("{d:?}"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_file_read_in_parts_gives_the_directory_read_in_one_go() {
        let f = file(&export(300));
        let whole = read_in(f.path(), 1).expect("the export reads");
        assert!(whole.contains("\"outer\""), "{}", &whole[..200]);
        for threads in 2..=5 {
            assert_eq!(read_in(f.path(), threads).expect("reads in parts"), whole, "{threads} parts");
        }
        let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/slapd/directory.ldif");
        let whole = read_in(&bundled, 1).expect("reads");
        assert_eq!(read_in(&bundled, 3).expect("reads in parts"), whole);
    }

    #[test]
    fn the_first_error_in_file_order_is_reported_with_its_line() {
        let mut text = export(200);
        let late = text.len() * 3 / 4;
        let at = late + text[late..].find("\ndn: ").expect("an entry") + 1;
        text.insert_str(at, "dn: uid=broken\nmail:: not base64!\n\n");
        let line = text[..at].matches('\n').count() + 2;
        let f = file(&text);
        let whole = read_in(f.path(), 1).expect_err("the export is broken");
        assert!(whole.contains(&format!("export.ldif:{line}:")), "{whole}");
        for threads in 2..=4 {
            assert_eq!(read_in(f.path(), threads).expect_err("broken"), whole, "{threads} parts");
        }
    }

    #[test]
    fn cuts_fall_after_blank_lines_only() {
        let text = "dn: a\ncn: x\n\ndn: b\ncn: y\n y\n\r\ndn: c\n\ndn: d\n";
        let f = file(text);
        let handle = File::open(f.path()).unwrap();
        let len = text.len() as u64;
        let starts: Vec<u64> =
            (0..len).filter_map(|from| next_entry_start(&handle, from, len).unwrap()).collect();
        for s in &starts {
            let rest = &text[*s as usize..];
            assert!(rest.starts_with("dn: "), "cut at {s} starts {rest:?}");
        }
        // Every entry after the first is a possible start; nothing after the last blank line is.
        let mut distinct = starts.clone();
        distinct.dedup();
        assert_eq!(distinct.len(), 3);
        assert_eq!(next_entry_start(&handle, len - 3, len).unwrap(), None);
    }

    #[test]
    fn lines_are_counted_within_a_range() {
        let f = file("a\nb\n\nc\n");
        let handle = File::open(f.path()).unwrap();
        assert_eq!(count_lines(&handle, 0, 0).unwrap(), 0);
        assert_eq!(count_lines(&handle, 0, 4).unwrap(), 2);
        assert_eq!(count_lines(&handle, 0, 7).unwrap(), 4);
        assert_eq!(count_lines(&handle, 4, 7).unwrap(), 2);
        assert_eq!(count_lines(&handle, 5, 6).unwrap(), 0);
    }
}

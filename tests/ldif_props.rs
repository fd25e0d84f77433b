//! Property tests of the LDIF reader: no input makes it panic or loop, and written entries read back
//! equal (any text or binary value, folded lines, comments, CRLF, base64).

use base64::Engine as _;
use proptest::prelude::*;
use scimsync::source::ldif::{LdifError, LdifReader, UrlPolicy};
use scimsync::source::{Origin, Record, Value};
use std::io::BufReader;

/// Reads everything, checking that the reader ends (at most one entry per line, plus one) and
/// stays ended after an error.
fn read_bounded(input: &[u8], capacity: usize) -> Result<Vec<Record>, LdifError> {
    let lines = input.iter().filter(|&&b| b == b'\n').count() + 1;
    let mut reader =
        LdifReader::new(BufReader::with_capacity(capacity, input), "p.ldif", UrlPolicy::default());
    let mut records = Vec::new();
    for _ in 0..=lines {
        match reader.next_record() {
            Ok(Some(record)) => records.push(record),
            Ok(None) => return Ok(records),
            Err(e) => {
                assert!(e.to_string().starts_with("p.ldif"), "error without its path: {e}");
                assert!(reader.next_record().unwrap().is_none(), "reader goes on after {e}");
                return Err(e);
            }
        }
    }
    panic!("more entries than lines: the reader does not terminate");
}

/// Byte soup built from LDIF's own pieces, so the interesting paths are reached often.
fn ldif_like() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"dn:".to_vec()),
        Just(b"dn: cn=a".to_vec()),
        Just(b"cn".to_vec()),
        Just(b":".to_vec()),
        Just(b"::".to_vec()),
        Just(b":<".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n\n".to_vec()),
        Just(b"#".to_vec()),
        Just(b"-".to_vec()),
        Just(b";binary".to_vec()),
        Just(b"changetype: add".to_vec()),
        Just(b"changetype: modify".to_vec()),
        Just(b"version: 1".to_vec()),
        Just(b"search: 2\nresult: 0 Success".to_vec()),
        Just(b"file:///tmp/x".to_vec()),
        Just(b"w4Q=".to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        Just(vec![0]),
        Just(vec![0xFF]),
        "[a-zA-Z0-9+/= ]{1,8}".prop_map(String::into_bytes),
        any::<u8>().prop_map(|b| vec![b]),
    ];
    prop::collection::vec(token, 0..64).prop_map(|parts| parts.concat())
}

/// One entry to write: a DN and attributes with the value as the reader should return it.
#[derive(Clone, Debug)]
struct Entry {
    dn: String,
    attrs: Vec<(String, Value)>,
    comment: Option<String>,
}

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z][a-zA-Z0-9-]{0,8}(;[a-zA-Z0-9-]{1,6})?"
        .prop_filter("reserved", |n| !n.eq_ignore_ascii_case("dn") && !n.eq_ignore_ascii_case("changetype"))
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<String>().prop_map(Value::Text),
        "[ -~]{0,90}".prop_map(Value::Text),
        "[a-zäöüßÇé山田 ]{0,40}".prop_map(Value::Text),
        prop::collection::vec(any::<u8>(), 0..120).prop_map(|b| match String::from_utf8(b) {
            Ok(text) => Value::Text(text),
            Err(e) => Value::Binary(e.into_bytes()),
        }),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        prop_oneof!["[ -~]{0,100}", any::<String>(), "(cn|uid|ou)=[a-zA-Zé ]{1,20},dc=example,dc=com"],
        prop::collection::vec((name(), value()), 0..8),
        prop::option::of("[^\r\n]{0,100}"),
    )
        .prop_map(|(dn, attrs, comment)| Entry { dn, attrs, comment })
}

/// How to write the file.
#[derive(Clone, Debug)]
struct Style {
    crlf: bool,
    version: bool,
    bom: bool,
    final_newline: bool,
    /// Base64 even where a plain value would do.
    always_base64: bool,
    blank_lines: usize,
    capacity: usize,
}

fn style() -> impl Strategy<Value = Style> {
    (any::<[bool; 5]>(), 1..4usize, prop_oneof![1..16usize, Just(8192)]).prop_map(
        |(b, blank_lines, capacity)| Style {
            crlf: b[0],
            version: b[1],
            bom: b[2],
            final_newline: b[3],
            always_base64: b[4],
            blank_lines,
            capacity,
        },
    )
}

/// A writer of LDIF as exporters write it: folded at 76 columns, base64 where needed.
struct Writer<'s> {
    out: Vec<u8>,
    line: u64,
    style: &'s Style,
}

impl Writer<'_> {
    fn eol(&mut self) {
        self.out.extend_from_slice(if self.style.crlf { b"\r\n" } else { b"\n" });
        self.line += 1;
    }

    /// Writes one logical line folded at 76 bytes (possibly inside a UTF-8 character).
    fn folded(&mut self, line: &[u8]) {
        let (first, mut rest) = line.split_at(line.len().min(76));
        self.out.extend_from_slice(first);
        while !rest.is_empty() {
            self.eol();
            let (chunk, tail) = rest.split_at(rest.len().min(75));
            self.out.push(b' ');
            self.out.extend_from_slice(chunk);
            rest = tail;
        }
        self.eol();
    }

    fn attr(&mut self, name: &str, value: &[u8]) {
        let safe = !self.style.always_base64
            && std::str::from_utf8(value).is_ok()
            && !value.iter().any(|&b| matches!(b, 0 | b'\n' | b'\r'))
            && !matches!(value.first(), Some(b' ' | b':' | b'<'));
        let mut line = name.as_bytes().to_vec();
        if safe {
            line.extend_from_slice(b": ");
            line.extend_from_slice(value);
        } else {
            line.extend_from_slice(b":: ");
            line.extend_from_slice(base64::engine::general_purpose::STANDARD.encode(value).as_bytes());
        }
        self.folded(&line);
    }
}

fn write(entries: &[Entry], style: &Style) -> (Vec<u8>, Vec<Record>) {
    let mut w = Writer { out: Vec::new(), line: 1, style };
    let mut expected = Vec::new();
    if style.bom {
        w.out.extend_from_slice(b"\xEF\xBB\xBF");
    }
    if style.version {
        w.folded(b"version: 1");
    }
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 || style.version {
            for _ in 0..style.blank_lines {
                w.eol();
            }
        }
        if let Some(comment) = &entry.comment {
            w.folded(format!("# {comment}").as_bytes());
        }
        let line = w.line;
        w.attr("dn", entry.dn.as_bytes());
        for (i, (name, value)) in entry.attrs.iter().enumerate() {
            if i == 1 {
                if let Some(comment) = &entry.comment {
                    w.folded(format!("#{comment}").as_bytes());
                }
            }
            let bytes = match value {
                Value::Text(t) => t.as_bytes(),
                Value::Binary(b) => b,
            };
            w.attr(name, bytes);
        }
        let attrs = entry.attrs.iter().map(|(n, v)| (n.to_ascii_lowercase(), v.clone())).collect();
        expected.push(Record { origin: Origin { path: "p.ldif".into(), line }, dn: entry.dn.clone(), attrs });
    }
    if !style.final_newline {
        while matches!(w.out.last(), Some(b'\n' | b'\r')) {
            w.out.pop();
        }
    }
    (w.out, expected)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..512), capacity in 1..64usize) {
        let _ = read_bounded(&input, capacity);
    }

    #[test]
    fn ldif_like_bytes_never_panic(input in ldif_like(), capacity in prop_oneof![1..8usize, Just(8192)]) {
        let _ = read_bounded(&input, capacity);
    }

    #[test]
    fn mutated_ldif_never_panics(
        entries in prop::collection::vec(entry(), 1..4),
        style in style(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0..4u8, any::<u8>()), 1..8),
    ) {
        let (mut input, _) = write(&entries, &style);
        for (at, op, byte) in edits {
            let at = at.index(input.len() + 1);
            match op {
                0 => input.insert(at, byte),
                1 => input.insert(at, [b'\n', b' ', b':', b'#'][usize::from(byte % 4)]),
                2 if at < input.len() => { input.remove(at); }
                _ if at < input.len() => input[at] = byte,
                _ => input.push(byte),
            }
        }
        let _ = read_bounded(&input, style.capacity);
    }

    #[test]
    fn written_entries_read_back_equal(entries in prop::collection::vec(entry(), 0..6), style in style()) {
        let (input, expected) = write(&entries, &style);
        match read_bounded(&input, style.capacity) {
            Ok(records) => prop_assert_eq!(records, expected),
            Err(e) => prop_assert!(false, "{e}\n{}", String::from_utf8_lossy(&input)),
        }
    }
}

/// Gives at most `step` bytes per read, as a pipe may.
struct Trickle<'a> {
    bytes: &'a [u8],
    step: usize,
}

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.bytes.len());
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

/// Everything the reader gives through the borrowing API, made owned, up to the first error.
fn read_borrowed(mut reader: LdifReader<impl std::io::Read>) -> Vec<Result<Record, String>> {
    let mut out = Vec::new();
    loop {
        match reader.next_entry() {
            Ok(Some(entry)) => out.push(Ok(entry.to_record())),
            Ok(None) => return out,
            Err(e) => {
                out.push(Err(e.to_string()));
                return out;
            }
        }
    }
}

fn read_owned(input: &[u8]) -> Vec<Result<Record, String>> {
    let reader = LdifReader::new(input, "p.ldif", UrlPolicy::default());
    let mut out = Vec::new();
    for item in reader {
        let failed = item.is_err();
        out.push(item.map_err(|e| e.to_string()));
        if failed {
            break;
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Lines, folds, base64 values and entries across refills of a small read buffer, read a
    /// few bytes at a time: the same records, the same first error and line.
    #[test]
    fn small_read_buffers_give_the_same_result(
        input in prop_oneof![ldif_like(), (prop::collection::vec(entry(), 0..4), style()).prop_map(|(e, s)| write(&e, &s).0)],
        size in 1..48usize,
        step in prop_oneof![Just(1usize), 1..16usize, Just(usize::MAX)],
    ) {
        let owned = read_owned(&input);
        let reader = LdifReader::new(Trickle { bytes: &input, step }, "p.ldif", UrlPolicy::default())
            .with_buffer_size(size);
        prop_assert_eq!(read_borrowed(reader), owned);
    }
}

/// Every file of the shared corpus and of tests/data/ldif reads the same through the borrowing
/// API, with a tiny and the default read buffer, as through the owned one.
#[test]
fn borrowed_and_owned_entries_agree_over_the_corpus() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [root.join("tests/data/ldif"), root.join("../shared/ldif-corpus")] {
        let mut stack = vec![dir];
        while let Some(dir) = stack.pop() {
            let Ok(listing) = std::fs::read_dir(&dir) else { continue };
            for item in listing.flatten() {
                let path = item.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "ldif") {
                    files.push(path);
                }
            }
        }
    }
    assert!(!files.is_empty());
    for path in files {
        let bytes = std::fs::read(&path).expect("reads");
        let owned = read_owned(&bytes);
        for size in [7, 4096, 1 << 20] {
            let reader = LdifReader::new(&bytes[..], "p.ldif", UrlPolicy::default()).with_buffer_size(size);
            assert_eq!(read_borrowed(reader), owned, "{} with a buffer of {size}", path.display());
        }
    }
}

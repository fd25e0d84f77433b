//! Unit tests of the LDIF reader: one per feature of RFC 2849 and per exporter quirk.

use super::*;
use expect_test::{expect, Expect};
use std::io::{BufReader, Read};

fn read_all(input: &[u8], policy: UrlPolicy) -> Result<Vec<Record>, LdifError> {
    // A tiny buffer puts line ends and continuation spaces on buffer boundaries.
    for capacity in [1, 3, 8192] {
        let reader = LdifReader::new(BufReader::with_capacity(capacity, input), "t.ldif", policy.clone());
        let small: Result<Vec<Record>, LdifError> = reader.collect();
        if capacity == 8192 {
            return small;
        }
        let big = LdifReader::new(input, "t.ldif", policy.clone()).collect::<Result<Vec<_>, _>>();
        assert_eq!(format!("{small:?}"), format!("{big:?}"), "result depends on buffer size");
    }
    unreachable!()
}

fn parse(input: &str) -> Vec<Record> {
    match read_all(input.as_bytes(), UrlPolicy::default()) {
        Ok(records) => records,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn error(input: &[u8]) -> LdifError {
    error_with(input, UrlPolicy::default())
}

fn error_with(input: &[u8], policy: UrlPolicy) -> LdifError {
    match read_all(input, policy) {
        Ok(records) => panic!("expected an error, got {records:?}"),
        Err(e) => e,
    }
}

fn check_error(input: &str, expected: Expect) {
    expected.assert_eq(&error(input.as_bytes()).to_string());
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn attrs(record: &Record) -> Vec<(&str, &Value)> {
    record.attrs.iter().map(|(n, v)| (n.as_str(), v)).collect()
}

#[test]
fn reads_entries_with_lowercased_names_and_options() {
    let records = parse(
        "dn: cn=A,dc=example,dc=com\nobjectClass: person\nCN: A\nuserCertificate;Binary:: AP8=\n\n\
         dn: cn=B,dc=example,dc=com\ncn;lang-de: Bé\n",
    );
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].dn, "cn=A,dc=example,dc=com");
    assert_eq!(records[0].origin, Origin { path: "t.ldif".into(), line: 1 });
    assert_eq!(
        attrs(&records[0]),
        [
            ("objectclass", &text("person")),
            ("cn", &text("A")),
            ("usercertificate;binary", &Value::Binary(vec![0, 0xFF])),
        ]
    );
    assert_eq!(records[1].origin.line, 6);
    assert_eq!(attrs(&records[1]), [("cn;lang-de", &text("Bé"))]);
    assert_eq!(records[1].first_text("CN"), Some("Bé"));
}

#[test]
fn unfolds_continuation_lines() {
    let records = parse(
        "dn: cn=Barbara Jensen,ou=Information Technology Division,ou=People,dc=example,\n dc=com\n\
         description: one\n  two\n three\nsn:: IEpl\n bnNlbiA=\n",
    );
    assert_eq!(
        records[0].dn,
        "cn=Barbara Jensen,ou=Information Technology Division,ou=People,dc=example,dc=com"
    );
    assert_eq!(records[0].first_text("description"), Some("one twothree"));
    assert_eq!(records[0].first_text("sn"), Some(" Jensen "));
}

#[test]
fn folding_may_split_a_utf8_character() {
    let bytes = "dn: o=Ändrè\no: Ändrè\n".as_bytes();
    let split = bytes.iter().position(|&b| b == 0xC3).unwrap();
    let mut folded = bytes[..split + 1].to_vec();
    folded.extend_from_slice(b"\n ");
    folded.extend_from_slice(&bytes[split + 1..]);
    let records = read_all(&folded, UrlPolicy::default()).unwrap();
    assert_eq!(records[0].dn, "o=Ändrè");
    assert_eq!(records[0].first_text("o"), Some("Ändrè"));
}

#[test]
fn skips_comments_and_their_continuations() {
    let records = parse(
        "#LEAD COMMENT\n# folded\n continued comment\ndn: cn=A\n#EMBEDDED COMMENT\n cn: not an attribute\n\
         cn: A\n# trailing\n\n# between\n\ndn: cn=B\n",
    );
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].origin.line, 4);
    assert_eq!(attrs(&records[0]), [("cn", &text("A"))]);
    assert_eq!(records[1].origin.line, 12);
}

#[test]
fn base64_values_become_text_or_binary() {
    let records = parse("dn:: Y249w4Q=\ncn::   w4Q=\nphoto:: /9j/\ndescription::\nempty:: \n");
    assert_eq!(records[0].dn, "cn=Ä");
    assert_eq!(
        attrs(&records[0]),
        [
            ("cn", &text("Ä")),
            ("photo", &Value::Binary(vec![0xFF, 0xD8, 0xFF])),
            ("description", &text("")),
            ("empty", &text("")),
        ]
    );
}

#[test]
fn reads_crlf_files() {
    let records =
        parse("version: 1\r\n\r\ndn: cn=A\r\ncn: A\r\ndescription: x\r\n y\r\n\r\n\r\ndn: cn=B\r\n");
    assert_eq!(records.len(), 2);
    assert_eq!(attrs(&records[0]), [("cn", &text("A")), ("description", &text("xy"))]);
    assert_eq!(records[1].origin.line, 9);
}

#[test]
fn empty_values_and_spaces() {
    let records = parse("dn: cn=A\ncreatorsName:\nmember: \ncn:   padded  \n");
    assert_eq!(
        attrs(&records[0]),
        [("creatorsname", &text("")), ("member", &text("")), ("cn", &text("padded  "))]
    );
}

#[test]
fn raw_utf8_values() {
    let records = parse("dn: o=Çéliné Ändrè\no: Çéliné Ändrè\ncn: 山田\n");
    assert_eq!(records[0].dn, "o=Çéliné Ändrè");
    assert_eq!(records[0].first_text("cn"), Some("山田"));
}

#[test]
fn blank_lines_and_missing_final_newline() {
    assert!(parse("").is_empty());
    assert!(parse("\n\n# only a comment\n\n").is_empty());
    let records = parse("\n\n\ndn: cn=A\n\n\n\n\ndn: cn=B\ncn: B");
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].origin.line, 4);
    assert_eq!(records[1].first_text("cn"), Some("B"));
}

#[test]
fn version_line() {
    let records = parse("# comment\nversion: 1\ndn: cn=A\nversion: 3\n");
    assert_eq!(attrs(&records[0]), [("version", &text("3"))]);
    check_error(
        "version: 2\n\ndn: cn=A\n",
        expect![[
            r##"t.ldif:1: unsupported LDIF version "2"; only "version: 1" (RFC 2849) exists, so fix or remove the line"##
        ]],
    );
    check_error(
        "dn: cn=A\n\nversion: 1\n",
        expect![[
            r##"t.ldif:3: entry starts with "version:" instead of "dn:"; every entry must begin with its dn line (is a blank line misplaced, or a dn line missing?)"##
        ]],
    );
}

#[test]
fn byte_order_mark_is_skipped() {
    let records = parse("\u{FEFF}version: 1\n\ndn: cn=A\n");
    assert_eq!(records[0].dn, "cn=A");
    let records = parse("\u{FEFF}dn: cn=A\n");
    assert_eq!(records[0].origin.line, 1);
    let utf16: Vec<u8> = [0xFF, 0xFE].into_iter().chain(b"d\0n\0:\0".iter().copied()).collect();
    assert!(error(&utf16).to_string().starts_with("t.ldif:1: the file is UTF-16"));
}

#[test]
fn root_dse_has_an_empty_dn() {
    let records = parse("dn:\nobjectClass: top\n\ndn: \nnamingContexts: dc=example,dc=com\n");
    assert_eq!(records[0].dn, "");
    assert_eq!(records[1].dn, "");
}

#[test]
fn ldapsearch_trailers_are_skipped() {
    let input = "# extended LDIF\n#\n# LDAPv3\n\n# a, example.com\ndn: cn=a,dc=example,dc=com\ncn: a\n\n\
                 # search result\nsearch: 2\nresult: 0 Success\ncontrol: 1.2.840.113556.1.4.319 false MAUCAQAEAA==\n\
                 pagedresults: cookie=\n\n# b\ndn: cn=b,dc=example,dc=com\n\n# search result\nsearch: 3\n\
                 result: 0 Success\n\n# numResponses: 3\n# numEntries: 2\n";
    let records = parse(input);
    assert_eq!(
        records.iter().map(|r| r.dn.as_str()).collect::<Vec<_>>(),
        ["cn=a,dc=example,dc=com", "cn=b,dc=example,dc=com"]
    );
}

#[test]
fn incomplete_ldapsearch_result_is_an_error() {
    check_error(
        "dn: cn=a\n\nsearch: 2\nresult: 4 Size limit exceeded\n",
        expect![[
            r##"t.ldif:4: ldapsearch reported "result: 4 Size limit exceeded", so the export is incomplete; re-run the export with paged results (-E pr=1000/noprompt) or higher size and time limits"##
        ]],
    );
    check_error(
        "search: 2\nresult: 0 Success\ncn: x\n",
        expect![[
            r##"t.ldif:3: unexpected "cn:" in an ldapsearch result trailer (search:/result: lines); every entry must begin with its dn line"##
        ]],
    );
}

#[test]
fn change_records_are_rejected() {
    let input = "version: 1\n\n# LEADING COMMENT\n\ndn: cn=James,dc=example,dc=com\n# EMBEDDED COMMENT\n\
                 changetype: modify\nadd: drink\ndrink: Pils\n-\n";
    let err = error(input.as_bytes());
    assert!(matches!(&err, LdifError::ChangeRecord { line: 7, changetype, .. } if changetype == "modify"));
    expect![[r##"t.ldif:7: "changetype: modify" makes this a change-record (ldapmodify) file, not a content export; export the directory with slapcat or ldapsearch instead"##]]
        .assert_eq(&err.to_string());
    assert_eq!(error(b"dn: cn=A\ncn: A\nchangetype: add\n").line(), Some(3));
    check_error(
        "dn: cn=A\ncn: A\n-\n",
        expect![[
            r##"t.ldif:3: a line starting with "-" belongs to a change record (ldapmodify input), not a content export; export the directory with slapcat or ldapsearch instead"##
        ]],
    );
}

#[test]
fn ldifde_export_is_read() {
    // ldifde writes every entry as `changetype: add`, with CRLF line ends and binary GUIDs.
    let input = "\r\ndn: CN=John Smith,OU=Users,DC=contoso,DC=com\r\nchangetype: add\r\nobjectClass: top\r\n\
                 objectClass: user\r\ncn: John Smith\r\nobjectGUID:: 2s0kU8OdTUuKe8fWa0AtNQ==\r\n\
                 userAccountControl: 514\r\nuserPrincipalName: jsmith@contoso.com\r\n\r\n";
    let records = parse(input);
    assert_eq!(records[0].origin.line, 2);
    assert_eq!(records[0].first_text("userAccountControl"), Some("514"));
    assert!(matches!(records[0].values("objectguid").next(), Some(Value::Binary(b)) if b.len() == 16));
    assert!(records[0].values("changetype").next().is_none());
}

#[test]
fn syntax_errors_name_their_line() {
    check_error(
        "dn: cn=A\ncn: A\njust some text\n",
        expect![[
            r##"t.ldif:3: line "just some text" has no colon; every line must be "attribute: value", a comment starting with "#" or a continuation starting with one space"##
        ]],
    );
    check_error(
        " dn: cn=A\n",
        expect![[
            r##"t.ldif:1: line starts with a space, so it continues the line before, but there is none (it starts the file or follows a blank line); remove the space or the blank line"##
        ]],
    );
    assert_eq!(error(b"dn: cn=A\n\n continued\n").line(), Some(3));
    check_error(
        "dn: cn=A\ncn: A\ndescription: a\n long\ncn:: a=b=\n",
        expect![[
            r##"t.ldif:5: invalid base64 in value of "cn": invalid symbol 61, offset 1; re-export the directory or fix the value"##
        ]],
    );
    check_error(
        "dn: cn=A\nfirst name: A\n",
        expect![[
            r##"t.ldif:2: invalid attribute description "first name"; it must be a name of letters, digits and hyphens (or an OID), optionally followed by options like ";binary""##
        ]],
    );
    check_error(
        "dn: cn=A\ncn: A\ndn: cn=B\n",
        expect![[
            r##"t.ldif:3: a second dn line inside the entry that starts on line 1; separate entries with a blank line"##
        ]],
    );
    check_error(
        "# c\ncn: A\n",
        expect![[
            r##"t.ldif:2: entry starts with "cn:" instead of "dn:"; every entry must begin with its dn line (is a blank line misplaced, or a dn line missing?)"##
        ]],
    );
    assert_eq!(error(b"dn: cn=A\ncn;: x\n").line(), Some(2));
    assert_eq!(error(b"dn: cn=A\n:x\n").line(), Some(2));
    assert_eq!(error(b"dn:: /9j/\n").line(), Some(1));
    assert_eq!(error(b"dn:< file:///etc/passwd\n").line(), Some(1));
}

#[test]
fn oid_attribute_names_are_accepted() {
    let records = parse("dn: cn=A\n2.5.4.3: A\nx-custom_attr;x-opt: y\n");
    assert_eq!(attrs(&records[0]), [("2.5.4.3", &text("A")), ("x-custom_attr;x-opt", &text("y"))]);
}

#[test]
fn invalid_utf8_and_nul_are_errors() {
    expect![[r##"t.ldif:2: value of "cn" is not valid UTF-8 (bad byte at offset 4 of the value); convert the file to UTF-8 or write the value in base64 with "::""##]]
        .assert_eq(&error(b"dn: cn=A\ncn: Andr\xE8\n").to_string());
    expect![[r##"t.ldif:2: value of "cn" holds a NUL byte (at offset 1 of the value); write such values in base64 with "::" or fix the value"##]]
        .assert_eq(&error(b"dn: cn=A\ncn: a\0b\n").to_string());
    assert_eq!(error(b"dn: cn=\xFF\n").line(), Some(1));
}

#[test]
fn reader_stops_after_an_error() {
    let input = b"dn: cn=A\n\ndn: cn=B\ncn:: !!\n\ndn: cn=C\n";
    let mut reader = LdifReader::new(&input[..], "t.ldif", UrlPolicy::default());
    assert_eq!(reader.next_record().unwrap().unwrap().dn, "cn=A");
    assert_eq!(reader.next_record().unwrap_err().line(), Some(4));
    assert!(reader.next_record().unwrap().is_none());
    assert!(reader.next().is_none());
}

#[test]
fn read_failures_are_io_errors() {
    struct Failing(bool);
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if std::mem::replace(&mut self.0, true) {
                return Err(io::Error::other("disk on fire"));
            }
            let data = b"dn: cn=A\ncn: A";
            buf[..data.len()].copy_from_slice(data);
            Ok(data.len())
        }
    }
    let mut reader = LdifReader::new(BufReader::new(Failing(false)), "t.ldif", UrlPolicy::default());
    let err = reader.next_record().unwrap_err();
    assert_eq!(err.to_string(), "t.ldif: read failed");
    assert_eq!(std::error::Error::source(&err).map(|e| e.to_string()).as_deref(), Some("disk on fire"));
    assert!(reader.next().is_none());
}

#[test]
fn url_values_are_refused_without_policy() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("photo.jpg");
    std::fs::write(&file, [0xFF, 0xD8]).unwrap();
    let input = format!("dn: cn=A\njpegPhoto:< file://{}\n", file.display());
    let err = error(input.as_bytes());
    assert!(matches!(err, LdifError::UrlRefused { line: 2, .. }));
    let message = err.to_string();
    assert!(message.contains("set source.allow_url_dir"), "{message}");
}

#[test]
fn url_values_inside_the_allowed_dir_are_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("photo one.jpg"), [0xFF, 0xD8]).unwrap();
    std::fs::write(dir.path().join("note.txt"), "hello").unwrap();
    let base = dir.path().display();
    let input = format!(
        "dn: cn=A\njpegPhoto:< file://{base}/photo%20one.jpg\ndescription:<file://localhost{base}/note.txt\n"
    );
    let policy = UrlPolicy { allowed_dir: Some(dir.path().into()) };
    let records = read_all(input.as_bytes(), policy).unwrap();
    assert_eq!(
        attrs(&records[0]),
        [("jpegphoto", &Value::Binary(vec![0xFF, 0xD8])), ("description", &text("hello"))]
    );
}

#[test]
fn url_values_outside_the_allowed_dir_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let allowed = root.path().join("allowed");
    std::fs::create_dir(&allowed).unwrap();
    let secret = root.path().join("secret");
    std::fs::write(&secret, "s").unwrap();
    let policy = UrlPolicy { allowed_dir: Some(allowed.clone()) };
    let outside = [
        format!("file://{}", secret.display()),
        format!("file://{}/../secret", allowed.display()),
        "http://example.com/x".to_string(),
        "file://otherhost/etc/passwd".to_string(),
    ];
    #[cfg(unix)]
    let outside = {
        std::os::unix::fs::symlink(&secret, allowed.join("link")).unwrap();
        let mut all = outside.to_vec();
        all.push(format!("file://{}/link", allowed.display()));
        all
    };
    for url in outside {
        let input = format!("dn: cn=A\n\ndn: cn=B\nfoo:< {url}\n");
        let err = error_with(input.as_bytes(), policy.clone());
        assert!(matches!(err, LdifError::UrlRefused { line: 4, .. }), "{url}: {err}");
    }
    let missing = format!("dn: cn=A\nfoo:< file://{}/missing\n", allowed.display());
    let err = error_with(missing.as_bytes(), policy);
    assert!(matches!(err, LdifError::Syntax { line: 2, .. }), "{err}");
    assert!(err.to_string().contains("cannot read"), "{err}");
}

#[test]
fn attribute_names_vary_between_entries() {
    let records =
        parse("dn: cn=A\nCN: A\nmail: a\n\ndn: cn=B\nmail: b\nCn: B\n\ndn: cn=C\ncN: C\nMAIL;x-o: c\n");
    let names: Vec<Vec<&str>> =
        records.iter().map(|r| r.attrs.iter().map(|(n, _)| n.as_str()).collect()).collect();
    assert_eq!(names, [["cn", "mail"], ["mail", "cn"], ["cn", "mail;x-o"]]);
    assert_eq!(error(b"dn: cn=A\ncn: A\n\ndn: cn=B\nc n: B\n").line(), Some(5));
}

#[test]
fn keep_only_drops_other_attributes_but_still_checks_them() {
    let input = "dn: uid=a,dc=x\nobjectClass: person\nmail: a@x\ndescription:: w6k=\ncn;lang-de: A\n\n";
    let keep: std::collections::HashSet<String> = ["mail", "cn"].map(String::from).into();
    let records: Vec<_> = LdifReader::new(input.as_bytes(), "t.ldif", UrlPolicy::default())
        .keep_only(keep.clone())
        .collect::<Result<_, _>>()
        .expect("parses");
    let names: Vec<&str> = records[0].attrs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["mail", "cn;lang-de"]);
    // A broken value is refused even in an attribute that is not kept.
    let broken = "dn: uid=a,dc=x\nmail: a@x\ndescription:: !!notbase64\n\n";
    let err = LdifReader::new(broken.as_bytes(), "t.ldif", UrlPolicy::default())
        .keep_only(keep)
        .collect::<Result<Vec<_>, _>>()
        .expect_err("invalid base64 is refused");
    assert!(err.to_string().contains("t.ldif:3: invalid base64 in value of \"description\""), "{err}");
}

/// Gives at most `step` bytes per read, as a pipe may.
struct Trickle<'a> {
    bytes: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.bytes.len());
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

/// Reads `input` with read buffers from one byte up (so that every line, fold, base64 value
/// and entry crosses a refill, and entries are longer than the buffer) and through reads of a
/// few bytes; every way must give what the default buffer gives, records and error alike.
fn read_through_small_buffers(input: &[u8]) -> Result<Vec<Record>, LdifError> {
    let whole = LdifReader::new(input, "t.ldif", UrlPolicy::default()).collect::<Result<Vec<_>, _>>();
    for size in [1, 2, 3, 5, 8, 13, 21, 64, 200] {
        for step in [1, 7, usize::MAX] {
            let trickle = Trickle { bytes: input, step };
            let reader = LdifReader::new(trickle, "t.ldif", UrlPolicy::default()).with_buffer_size(size);
            let small = reader.collect::<Result<Vec<_>, _>>();
            assert_eq!(format!("{small:?}"), format!("{whole:?}"), "buffer of {size} bytes, reads of {step}");
        }
    }
    whole
}

#[test]
fn entries_longer_than_the_read_buffer_are_read_whole() {
    let mut input = String::from("version: 1\n\n");
    for i in 0..40 {
        input += &format!("dn: uid=u{i},dc=x\nobjectClass: person\n");
        for j in 0..(i % 7) * 30 {
            input += &format!("description: value {j} of entry {i}\n");
        }
        input += "\n";
    }
    let records = read_through_small_buffers(input.as_bytes()).expect("parses");
    assert_eq!(records.len(), 40);
    assert_eq!(records[6].values("description").count(), 180);
    let big = LdifReader::new(input.as_bytes(), "t.ldif", UrlPolicy::default()).with_buffer_size(64);
    assert_eq!(big.count(), 40);
}

#[test]
fn folds_base64_crlf_and_bom_across_refills() {
    let input = "\u{FEFF}version: 1\r\n\r\n# a comment\r\n  continued\r\ndn: cn=Barbara Jensen,ou=Information \
                 Technology Division,\r\n ou=People,dc=example,dc=com\r\ndescription: one\r\n  two\r\n three\r\n\
                 sn:: IEpl\r\n bnNlbiA=\r\nphoto:: /9j/\r\ncn: A\r\n\r\n\r\ndn:: Y249w4Q=\r\ncn: \u{e9}\r\n \u{e9}";
    let records = read_through_small_buffers(input.as_bytes()).expect("parses");
    assert_eq!(records[0].origin.line, 5);
    assert_eq!(
        records[0].dn,
        "cn=Barbara Jensen,ou=Information Technology Division,ou=People,dc=example,dc=com"
    );
    assert_eq!(
        attrs(&records[0]),
        [
            ("description", &text("one twothree")),
            ("sn", &text(" Jensen ")),
            ("photo", &Value::Binary(vec![0xFF, 0xD8, 0xFF])),
            ("cn", &text("A")),
        ]
    );
    assert_eq!((records[1].dn.as_str(), records[1].origin.line), ("cn=Ä", 16));
    assert_eq!(records[1].first_text("cn"), Some("éé"));
}

#[test]
fn errors_and_their_lines_do_not_depend_on_the_read_buffer() {
    let inputs: [&[u8]; 9] = [
        b"dn: cn=A\n\ndn: cn=B\ncn: a\n b\nmail:: !!\n",
        b"dn: cn=A\ncn: Andr\xE8\nmail:: !!\n",
        b"dn: cn=A\ncn: ok\ncn: a\0b\n",
        b"dn: cn=A\n# \xFF comments may hold anything\ncn: A\xC3\n \xA9\n",
        b"dn: cn=A\ncn: A\ndn: cn=B\n",
        b"dn: cn=A\ncn: A\nchangetype: modify\n",
        b"dn: cn=a\n\nsearch: 2\nresult: 4 Size limit exceeded\n",
        b"\xEF\xBB\xBF dn: cn=A\n",
        b"dn: cn=A\ncn: A\n\r",
    ];
    let mut outcomes = Vec::new();
    for input in inputs {
        outcomes.push(match read_through_small_buffers(input) {
            Ok(records) => format!("{} records", records.len()),
            Err(e) => e.to_string().chars().take(40).collect(),
        });
    }
    expect![[r#"
        [
            "t.ldif:6: invalid base64 in value of \"ma",
            "t.ldif:2: value of \"cn\" is not valid UTF",
            "t.ldif:3: value of \"cn\" holds a NUL byte",
            "1 records",
            "t.ldif:3: a second dn line inside the en",
            "t.ldif:3: \"changetype: modify\" makes thi",
            "t.ldif:4: ldapsearch reported \"result: 4",
            "t.ldif:1: line starts with a space, so i",
            "t.ldif:3: line \"\r\" has no colon; every l",
        ]
    "#]]
    .assert_debug_eq(&outcomes);
}

#[test]
fn borrowed_entries_are_the_records() {
    let input = "dn: uid=a,dc=x\nobjectClass: person\nCN: A\nphoto:: AP8=\ndescription: x\n y\n\n\
                 dn: uid=b,dc=x\ncn: B\n";
    let records = parse(input);
    let mut reader = LdifReader::new(input.as_bytes(), "t.ldif", UrlPolicy::default()).with_buffer_size(4);
    let mut entries = Vec::new();
    while let Some(entry) = reader.next_entry().expect("parses") {
        assert_eq!(entry.attrs().len(), entry.to_record().attrs.len());
        entries.push(entry.to_record());
    }
    assert_eq!(entries, records);
    assert_eq!(records[0].first_text("cn"), Some("A"));
}

//! Search result entries as [`Record`]s, read from their BER without a panic on any input
//! (`ldap3::SearchEntry::construct` panics on a malformed entry), and the range option of an
//! attribute AD sends in parts (`member;range=0-1499`).

use crate::source::{Origin, Record, Value};
use ldap3::asn1::StructureTag;

/// An entry whose BER does not have the shape of a SearchResultEntry (RFC 4511 §4.5.2).
#[derive(Debug)]
pub struct Malformed(pub &'static str);

/// A SearchResultEntry: its DN and `(lowercased attribute description, value)` in the order the
/// server sent them. A value is text when it is UTF-8, else binary: what the LDIF reader makes
/// of the same value in an export.
pub fn record(tag: StructureTag, origin: Origin) -> Result<Record, Malformed> {
    let mut parts = tag.expect_constructed().ok_or(Malformed("the entry is not a sequence"))?.into_iter();
    let dn = parts.next().and_then(StructureTag::expect_primitive).ok_or(Malformed("the entry has no DN"))?;
    let dn = String::from_utf8(dn).map_err(|_| Malformed("the entry's DN is not UTF-8"))?;
    let list = parts
        .next()
        .and_then(StructureTag::expect_constructed)
        .ok_or(Malformed("the entry has no attribute list"))?;
    let mut attrs = Vec::new();
    for attr in list {
        let mut a = attr.expect_constructed().ok_or(Malformed("an attribute is not a sequence"))?.into_iter();
        let ty =
            a.next().and_then(StructureTag::expect_primitive).ok_or(Malformed("an attribute has no type"))?;
        let mut ty = String::from_utf8(ty).map_err(|_| Malformed("an attribute type is not UTF-8"))?;
        ty.make_ascii_lowercase();
        let values = a
            .next()
            .and_then(StructureTag::expect_constructed)
            .ok_or(Malformed("an attribute has no values"))?;
        for v in values {
            let bytes = v.expect_primitive().ok_or(Malformed("a value is not an octet string"))?;
            let value = match String::from_utf8(bytes) {
                Ok(text) => Value::Text(text),
                Err(e) => Value::Binary(e.into_bytes()),
            };
            attrs.push((ty.clone(), value));
        }
    }
    Ok(Record { origin, dn, attrs })
}

/// The part of a ranged attribute an answer holds: `member;range=0-1499` is `member`, values
/// 0 to 1499, more to come; `member;range=1500-*` is the last part.
#[derive(Debug, PartialEq, Eq)]
pub struct Range<'a> {
    /// The description without the range option (`member`, `member;x-opt`).
    pub base: String,
    pub low: u64,
    /// `None` for `*`: the last part.
    pub high: Option<u64>,
    /// The description as sent.
    pub desc: &'a str,
}

/// The range option of `desc`, if it has one.
pub fn range(desc: &str) -> Option<Range<'_>> {
    let mut base = String::new();
    let mut found = None;
    for (i, opt) in desc.split(';').enumerate() {
        match opt.to_ascii_lowercase().strip_prefix("range=") {
            Some(r) if i > 0 => {
                let (low, high) = r.split_once('-')?;
                let high = if high == "*" { None } else { Some(high.parse().ok()?) };
                found = Some((low.parse().ok()?, high));
            }
            _ => {
                if i > 0 {
                    base.push(';');
                }
                base.push_str(opt);
            }
        }
    }
    let (low, high) = found?;
    Some(Range { base, low, high, desc })
}

/// Strips the range option from `record`'s descriptions (the values are those of the base
/// attribute) and names the parts still to fetch: `(base description, first index)`.
pub fn join_ranges(record: &mut Record) -> Vec<(String, u64)> {
    let mut more = Vec::new();
    for (desc, _) in record.attrs.iter_mut() {
        if let Some(r) = range(desc) {
            if let Some(high) = r.high {
                if !more.iter().any(|(b, _)| *b == r.base) {
                    more.push((r.base.clone(), high + 1));
                }
            }
            *desc = r.base;
        }
    }
    more
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldap3::asn1::{ASNTag, OctetString, Sequence, Set, Tag};

    fn octets(b: &[u8]) -> Tag {
        Tag::OctetString(OctetString { inner: b.to_vec(), ..Default::default() })
    }

    fn entry(dn: &[u8], attrs: &[(&str, &[&[u8]])]) -> StructureTag {
        let attrs = attrs
            .iter()
            .map(|(t, vs)| {
                Tag::Sequence(Sequence {
                    inner: vec![
                        octets(t.as_bytes()),
                        Tag::Set(Set { inner: vs.iter().map(|v| octets(v)).collect(), ..Default::default() }),
                    ],
                    ..Default::default()
                })
            })
            .collect();
        Tag::Sequence(Sequence {
            inner: vec![octets(dn), Tag::Sequence(Sequence { inner: attrs, ..Default::default() })],
            ..Default::default()
        })
        .into_structure()
    }

    #[test]
    fn values_are_text_when_utf8_and_binary_otherwise() {
        let guid: &[u8] = &[0x8f, 0x3a, 0x2b, 0xc0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0xff];
        let tag = entry(b"CN=Zo\xc3\xab,DC=corp", &[("objectGUID", &[guid]), ("CN", &[b"Zo\xc3\xab"])]);
        let r = record(tag, Origin::from("ldap://dc1")).unwrap();
        assert_eq!(r.dn, "CN=Zoë,DC=corp");
        assert_eq!(
            r.attrs,
            vec![
                ("objectguid".to_owned(), Value::Binary(guid.to_vec())),
                ("cn".to_owned(), Value::Text("Zoë".into())),
            ]
        );
    }

    #[test]
    fn a_malformed_entry_is_an_error_not_a_panic() {
        let prim = octets(b"x").into_structure();
        assert_eq!(record(prim, Origin::from("x")).unwrap_err().0, "the entry is not a sequence");
        let bad_dn = entry(b"\xff", &[]);
        assert!(record(bad_dn, Origin::from("x")).is_err());
        let no_attrs =
            Tag::Sequence(Sequence { inner: vec![octets(b"cn=a")], ..Default::default() }).into_structure();
        assert_eq!(record(no_attrs, Origin::from("x")).unwrap_err().0, "the entry has no attribute list");
    }

    #[test]
    fn ranges_are_read_from_the_description() {
        let r = range("member;range=0-1499").unwrap();
        assert_eq!((r.base.as_str(), r.low, r.high), ("member", 0, Some(1499)));
        let r = range("member;x-opt;Range=1500-*").unwrap();
        assert_eq!((r.base.as_str(), r.low, r.high), ("member;x-opt", 1500, None));
        assert!(range("member").is_none());
        assert!(range("member;range=a-b").is_none());
        assert!(range("range=0-1").is_none());
    }

    #[test]
    fn joined_ranges_name_what_is_still_to_fetch() {
        let mut r = Record {
            origin: Origin::from("x"),
            dn: "cn=big".into(),
            attrs: vec![
                ("member;range=0-1499".into(), Value::Text("cn=a".into())),
                ("member;range=0-1499".into(), Value::Text("cn=b".into())),
                ("cn".into(), Value::Text("big".into())),
            ],
        };
        assert_eq!(join_ranges(&mut r), vec![("member".to_owned(), 1500)]);
        assert!(r.attrs.iter().take(2).all(|(d, _)| d == "member"));
        let mut done = Record { attrs: vec![("member;range=0-*".into(), Value::Text("cn=a".into()))], ..r };
        assert!(join_ranges(&mut done).is_empty());
        assert_eq!(done.attrs[0].0, "member");
    }
}

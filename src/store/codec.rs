//! The compact binary form of a user's attribute values in the state database (`users.attrs`)
//! and of a created user in the audit log (`audit.details` of a user create).
//!
//! JSON with SCIM attribute names would be most of a users row and of an audit row, and a first
//! sync writes every byte twice (the WAL, then the checkpoint). Here each value is an attribute
//! code and a length; a value equal to the row's key (`externalId` usually is) or
//! to an earlier attribute's value (the work email usually repeats `userName`) is a reference.
//!
//! ```text
//! attrs   := FORMAT n (attr count)ⁿ        FORMAT = 1; n, the number of values, a varint
//! attr    := code                          a built-in attribute, code ≥ 1
//!          | 0 name                        a custom attribute: its path as varint length, UTF-8
//! count   := varint: 0 = the row's key; 1 = the value of the built-in attribute whose code
//!            follows (an earlier one); c ≥ 2 = c − 2 bytes of UTF-8 follow
//! created := FORMAT origin active roles attrs
//! origin  := varint length, UTF-8 (`path:line`)
//! active  := 0 | 1
//! roles   := varint count, then each as varint length, UTF-8
//! ```
//!
//! Varints are LEB128 (7 bits a byte, low bits first). The codes are part of the format: a new
//! built-in attribute gets a new code, no code is ever reused. A custom attribute (any other
//! SCIM path the mapping names) is stored by its path, so what a row holds does not depend on
//! which attributes the process has seen; it comes after the built-ins (`Attr` order) and is
//! never referred to. Rows written before the format (JSON text) are still read; they take this
//! form when next written.

use crate::model::{Attr, Attrs, DesiredUser, SourceKey};
use std::collections::BTreeSet;

const FORMAT: u8 = 1;

/// The code that says a custom attribute's path follows.
const CUSTOM: u8 = 0;

/// The stored code of each attribute. Append only.
const CODES: [(Attr, u8); 11] = [
    (Attr::UserName, 1),
    (Attr::GivenName, 2),
    (Attr::FamilyName, 3),
    (Attr::DisplayName, 4),
    (Attr::Title, 5),
    (Attr::WorkEmail, 6),
    (Attr::WorkPhone, 7),
    (Attr::MobilePhone, 8),
    (Attr::ExternalId, 9),
    (Attr::UserType, 10),
    (Attr::OrganizationId, 11),
];

/// A built-in attribute's code; `CUSTOM` for any other.
fn code(attr: Attr) -> u8 {
    CODES.iter().find(|(a, _)| *a == attr).map_or(CUSTOM, |(_, c)| *c)
}

fn attr(code: u8) -> Option<Attr> {
    CODES.iter().find(|(_, c)| *c == code).map(|(a, _)| *a)
}

/// `attrs` in the compact form, `key` being the row's key.
pub fn encode_attrs(attrs: &Attrs, key: &SourceKey, out: &mut Vec<u8>) {
    out.push(FORMAT);
    varint(attrs.len() as u64, out);
    let mut earlier: Vec<(u8, &str)> = Vec::with_capacity(attrs.len());
    for (a, value) in attrs {
        let c = code(a);
        out.push(c);
        if c == CUSTOM {
            bytes(a.name().as_bytes(), out);
        }
        if value == key.0 && !value.is_empty() {
            varint(0, out);
        } else if let Some((same, _)) = earlier.iter().find(|(_, v)| *v == value && !v.is_empty()) {
            varint(1, out);
            out.push(*same);
        } else {
            varint(value.len() as u64 + 2, out);
            out.extend_from_slice(value.as_bytes());
        }
        if c != CUSTOM {
            earlier.push((c, value));
        }
    }
}

/// Reads what [`encode_attrs`] wrote for the row with this key; the error says what is wrong.
pub fn decode_attrs(bytes: &[u8], key: &SourceKey) -> Result<Attrs, String> {
    let mut r = Reader { bytes, at: 0 };
    r.format()?;
    let attrs = r.attrs(key)?;
    r.end()?;
    Ok(attrs)
}

/// A created user for the audit log: everything of the [`DesiredUser`] but its key, which the
/// audit row holds in `object_key`.
pub fn encode_created(user: &DesiredUser) -> Vec<u8> {
    let origin = user.origin.to_string();
    let mut out = Vec::with_capacity(origin.len() + user.attrs.len() * 24 + 16);
    out.push(FORMAT);
    bytes(origin.as_bytes(), &mut out);
    out.push(u8::from(user.active));
    varint(user.roles.len() as u64, &mut out);
    for role in &user.roles {
        bytes(role.as_bytes(), &mut out);
    }
    encode_attrs(&user.attrs, &user.key, &mut out);
    out
}

/// Reads what [`encode_created`] wrote for the user with this key.
pub fn decode_created(bytes: &[u8], key: &SourceKey) -> Result<DesiredUser, String> {
    let mut r = Reader { bytes, at: 0 };
    r.format()?;
    let origin = r.text("origin")?;
    let active = match r.byte("active")? {
        0 => false,
        1 => true,
        other => return Err(format!("active flag {other} at byte {}", r.at - 1)),
    };
    let count = r.varint("role count")?;
    let mut roles = BTreeSet::new();
    for _ in 0..count {
        roles.insert(r.text("role")?.to_owned());
    }
    r.format()?;
    let attrs = r.attrs(key)?;
    r.end()?;
    Ok(DesiredUser { key: key.clone(), origin: origin.into(), attrs, active, roles })
}

fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn bytes(b: &[u8], out: &mut Vec<u8>) {
    varint(b.len() as u64, out);
    out.extend_from_slice(b);
}

/// A cursor over stored bytes; every read is bounds-checked and says where it failed.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self, what: &str) -> Result<u8, String> {
        let b = *self.bytes.get(self.at).ok_or_else(|| format!("ends before the {what}"))?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self, what: &str) -> Result<u64, String> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte(what)?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(format!("{what} at byte {} is not a valid number", self.at))
    }

    fn take(&mut self, len: u64, what: &str) -> Result<&'a str, String> {
        let start = self.at;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| start.checked_add(len))
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| format!("the {what} at byte {start} runs past the end"))?;
        self.at = end;
        std::str::from_utf8(&self.bytes[start..end])
            .map_err(|_| format!("the {what} at byte {start} is not UTF-8"))
    }

    fn text(&mut self, what: &str) -> Result<&'a str, String> {
        let len = self.varint(what)?;
        self.take(len, what)
    }

    fn format(&mut self) -> Result<(), String> {
        match self.byte("format byte")? {
            FORMAT => Ok(()),
            other => Err(format!(
                "format {other} at byte {}, this scimsync reads format {FORMAT} (written by a newer version?)",
                self.at - 1
            )),
        }
    }

    fn attrs(&mut self, key: &SourceKey) -> Result<Attrs, String> {
        let n = self.varint("number of values")?;
        let mut values: Vec<(Attr, &str)> = Vec::new();
        for _ in 0..n {
            let c = self.byte("attribute code")?;
            let a = match c {
                CUSTOM => {
                    let at = self.at;
                    let name = self.text("attribute path")?;
                    Attr::from_name(name).map_err(|e| format!("the attribute at byte {at}: {e}"))?
                }
                c => attr(c).ok_or_else(|| format!("unknown attribute code {c} at byte {}", self.at - 1))?,
            };
            let value = match self.varint("value length")? {
                0 => key.0.as_str(),
                1 => {
                    let same = self.byte("attribute reference")?;
                    let a = attr(same);
                    values
                        .iter()
                        .find(|(v, _)| Some(*v) == a)
                        .map(|(_, value)| *value)
                        .ok_or_else(|| format!("reference to attribute code {same} not set before it"))?
                }
                n => self.take(n - 2, "value")?,
            };
            values.push((a, value));
        }
        Ok(values.into_iter().collect())
    }

    fn end(&self) -> Result<(), String> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(format!("{} bytes left over", self.bytes.len() - self.at))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DesiredUserBuilder;

    fn key() -> SourceKey {
        SourceKey::from("6f1c9a2e-0000-4000-8000-000000000001")
    }

    fn user(user_name: &str) -> DesiredUserBuilder {
        DesiredUser::builder(key(), user_name).origin("/srv/export/people.ldif:120")
    }

    #[test]
    fn every_attribute_has_its_own_code() {
        assert_eq!(CODES.len(), Attr::BUILTINS.len());
        for a in Attr::BUILTINS {
            let c = code(a);
            assert_ne!(c, 0, "{a} has no code");
            assert_eq!(attr(c), Some(a));
        }
    }

    #[test]
    fn attrs_come_back_as_they_went_in() {
        let k = key();
        let cases = [
            Attrs::new(),
            Attrs::from([(Attr::UserName, "ada@example.com")]),
            Attrs::from([
                (Attr::UserName, "zoë.ångström@example.com"),
                (Attr::WorkEmail, "zoë.ångström@example.com"),
                (Attr::ExternalId, k.0.as_str()),
                (Attr::DisplayName, "Zoë Ångström 張"),
                (Attr::Title, ""),
                (Attr::GivenName, ""),
                (Attr::OrganizationId, "101"),
            ]),
            Attrs::from([(Attr::Title, "x".repeat(300).as_str()), (Attr::UserName, "u")]),
        ];
        for attrs in cases {
            let mut out = Vec::new();
            encode_attrs(&attrs, &k, &mut out);
            assert_eq!(decode_attrs(&out, &k).unwrap(), attrs, "{out:?}");
        }
    }

    /// Rows as the format has always written them read the same.
    #[test]
    fn rows_of_built_in_attributes_read_as_they_always_did() {
        let k = key();
        // userName "ada", title "Engineer", work email = userName, externalId = the key.
        let mut stored = vec![1, 4, 1, 5, b'a', b'd', b'a', 5, 10];
        stored.extend_from_slice(b"Engineer");
        stored.extend_from_slice(&[6, 1, 1, 9, 0]);
        let want = Attrs::from([
            (Attr::UserName, "ada"),
            (Attr::Title, "Engineer"),
            (Attr::WorkEmail, "ada"),
            (Attr::ExternalId, k.0.as_str()),
        ]);
        assert_eq!(decode_attrs(&stored, &k).unwrap(), want);
        let mut again = Vec::new();
        encode_attrs(&want, &k, &mut again);
        assert_eq!(again, stored, "and are written as before");
    }

    #[test]
    fn custom_attributes_are_stored_by_path() {
        let k = key();
        let department = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department";
        let locality = "addresses[type eq \"work\"].locality";
        let attrs = Attrs::from([
            (Attr::UserName, "ada@example.com"),
            (Attr::parse(locality).unwrap(), "Zürich"),
            (Attr::parse(department).unwrap(), "R&D"),
            (Attr::parse("nickName").unwrap(), "ada@example.com"),
            (Attr::parse("name.formatted").unwrap(), ""),
            (Attr::parse("employeeNumber").unwrap(), k.0.as_str()),
        ]);
        let mut out = Vec::new();
        encode_attrs(&attrs, &k, &mut out);
        assert_eq!(decode_attrs(&out, &k).unwrap(), attrs);
        // Format, count, userName; then in `Attr` order, each custom one as 0 and its path.
        let mut want = vec![1, 6, 1, 17];
        want.extend_from_slice(b"ada@example.com");
        for (path, value) in [
            (locality, &[2 + 7][..]),
            ("employeeNumber", &[0]),
            ("name.formatted", &[2]),
            ("nickName", &[1, 1]),
            (department, &[5]),
        ] {
            want.push(0);
            want.push(path.len() as u8);
            want.extend_from_slice(path.as_bytes());
            want.extend_from_slice(value);
            if path == locality {
                want.extend_from_slice("Zürich".as_bytes());
            }
            if path == department {
                want.extend_from_slice(b"R&D");
            }
        }
        assert_eq!(out, want);
        // A custom attribute is never referred to: its code says nothing of which it was.
        assert!(decode_attrs(&[1, 2, 0, 1, b'a', 3, b'x', 4, 1, 0], &k).unwrap_err().contains("code 0"));
        let err = decode_attrs(&[1, 1, 0, 3, b'a', b' ', b'b', 2], &k).unwrap_err();
        assert!(err.contains("at byte 3") && err.contains("\"a b\" is not a SCIM attribute path"), "{err}");
    }

    #[test]
    fn repeated_values_are_stored_once() {
        let k = key();
        let email = "ada.lovelace@example.com";
        let attrs = Attrs::from([
            (Attr::UserName, email),
            (Attr::WorkEmail, email),
            (Attr::ExternalId, k.0.as_str()),
        ]);
        let mut out = Vec::new();
        encode_attrs(&attrs, &k, &mut out);
        // Format, count, userName (code, length, bytes), work email (code, 1, code), externalId
        // (code, 0).
        assert_eq!(out.len(), 2 + 2 + email.len() + 3 + 2, "{out:?}");
        // The key is the reader's: another key gives another externalId, as the row would have.
        let other = SourceKey::from("other");
        assert_eq!(decode_attrs(&out, &other).unwrap().get(&Attr::ExternalId), Some("other"));
    }

    #[test]
    fn a_created_user_comes_back_whole() {
        let u =
            user("ada@example.com").attr(Attr::UserType, "technician").roles(["Help desk", "NOC"]).build();
        let stored = encode_created(&u);
        assert_eq!(decode_created(&stored, &u.key).unwrap(), u);
        let inactive = user("b").active(false).build();
        assert_eq!(decode_created(&encode_created(&inactive), &inactive.key).unwrap(), inactive);
    }

    #[test]
    fn damaged_bytes_are_an_error_never_a_panic() {
        let u = user("ada@example.com").attr(Attr::Title, "Engineer").role("r").build();
        let stored = encode_created(&u);
        // Every truncation and every single-byte change either fails or decodes to some user.
        for len in 0..stored.len() {
            assert!(decode_created(&stored[..len], &u.key).is_err(), "truncated to {len}");
        }
        for i in 0..stored.len() {
            for b in [0u8, 1, 2, 0x7f, 0x80, 0xff] {
                let mut bad = stored.clone();
                bad[i] = b;
                let _ = decode_created(&bad, &u.key);
                let _ = decode_attrs(&bad, &u.key);
            }
        }
        assert!(decode_attrs(&[2, 1, 1, 3, b'a'], &u.key).unwrap_err().contains("format 2"));
        assert!(decode_attrs(&[1, 2, 1, 3, b'a', 6, 1, 5], &u.key).unwrap_err().contains("code 5"));
        assert!(decode_attrs(&[1, 1, 99, 2], &u.key).unwrap_err().contains("unknown attribute code 99"));
        assert!(decode_attrs(&[1, 1, 1, 0xff, 0xff, 0xff], &u.key).is_err());
        assert!(decode_attrs(&[1, 1, 1, 3, b'a', 0], &u.key).unwrap_err().contains("1 bytes left over"));
    }
}

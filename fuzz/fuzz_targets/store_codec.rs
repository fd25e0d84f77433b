//! The state database's compact binary form (`store::codec`): a user's values (`users.attrs`) and
//! a created user's audit details (`audit.details`).
//!
//! Two uses of the input:
//! - as stored bytes, read with two keys (a UUID and the empty key) as values and as a created
//!   user: a read never panics (an error is fine), and whatever reads is written again and must
//!   read back equal, its second writing being the same bytes as its first;
//! - as the choices that build a user (values of built-in and custom attributes taken from the
//!   key, from earlier values or new, roles, origin, active flag): written, it must read back
//!   equal.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Unstructured};
use libfuzzer_sys::fuzz_target;
use scimsync::model::{Attr, Attrs, DesiredUser, Origin, SourceKey};
use scimsync::store::codec::{decode_attrs, decode_created, encode_attrs, encode_created};
use std::collections::BTreeSet;
use std::sync::OnceLock;

const KEY: &str = "6f1c9a2e-0000-4000-8000-000000000001";

fn attrs_bytes(attrs: &Attrs, key: &SourceKey) -> Vec<u8> {
    let mut out = Vec::new();
    encode_attrs(attrs, key, &mut out);
    out
}

/// Writes `attrs` and reads it back with the same key.
fn attrs_round_trip(attrs: &Attrs, key: &SourceKey) {
    let stored = attrs_bytes(attrs, key);
    match decode_attrs(&stored, key) {
        Ok(back) => {
            assert_eq!(&back, attrs, "values changed through {stored:?} (key {key:?})");
            assert_eq!(attrs_bytes(&back, key), stored, "values written twice differ");
        }
        Err(e) => panic!("values written as {stored:?} do not read back (key {key:?}): {e}"),
    }
}

/// Writes `user` and reads it back with its key. The origin is stored as its text, so it is
/// compared as text (`Origin { path: "a:1", line: 0 }` reads back as `a` line 1, both `a:1`).
fn created_round_trip(user: &DesiredUser) {
    let stored = encode_created(user);
    let back = match decode_created(&stored, &user.key) {
        Ok(back) => back,
        Err(e) => panic!("created user written as {stored:?} does not read back: {e}"),
    };
    assert_eq!(back.origin.to_string(), user.origin.to_string(), "origin changed");
    assert_eq!(back.key, user.key);
    assert_eq!(back.attrs, user.attrs, "values changed through {stored:?}");
    assert_eq!(back.active, user.active);
    assert_eq!(back.roles, user.roles);
    assert_eq!(encode_created(&back), stored, "created user written twice differs");
}

/// The built-in attributes and a few custom ones, interned before any input is read (stored
/// inputs may intern others, up to the limit).
fn attributes() -> &'static [Attr] {
    static ATTRS: OnceLock<Vec<Attr>> = OnceLock::new();
    ATTRS.get_or_init(|| {
        let custom = [
            "nickName",
            "name.formatted",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            "addresses[type eq \"work\"].locality",
        ];
        let custom = custom.map(|p| Attr::parse(p).expect("a valid path"));
        Attr::BUILTINS.into_iter().chain(custom).collect()
    })
}

/// A user built from the input: every value is absent, the key, an earlier value (a reference in
/// the stored form) or new text.
fn build(u: &mut Unstructured) -> arbitrary::Result<DesiredUser> {
    let key: String = u.arbitrary()?;
    let mut pool: Vec<String> = vec![key.clone(), String::new()];
    let mut values: Vec<(Attr, String)> = Vec::new();
    for &attr in attributes() {
        match u.int_in_range(0u8..=3)? {
            0 => {}
            1 => {
                let i = u.choose_index(pool.len())?;
                values.push((attr, pool[i].clone()));
            }
            _ => {
                let v: String = u.arbitrary()?;
                pool.push(v.clone());
                values.push((attr, v));
            }
        }
    }
    let origin = if u.arbitrary()? {
        Origin::from(u.arbitrary::<&str>()?)
    } else {
        Origin { path: u.arbitrary::<&str>()?.into(), line: u.arbitrary()? }
    };
    let roles: BTreeSet<String> = u.arbitrary()?;
    Ok(DesiredUser {
        key: SourceKey(key),
        origin,
        attrs: values.into_iter().collect(),
        active: u.arbitrary()?,
        roles,
    })
}

fuzz_target!(|data: &[u8]| {
    attributes();
    // The input as stored bytes.
    for key in [SourceKey::from(KEY), SourceKey::from("")] {
        if let Ok(attrs) = decode_attrs(data, &key) {
            attrs_round_trip(&attrs, &key);
        }
        if let Ok(user) = decode_created(data, &key) {
            assert_eq!(user.key, key);
            // The origin read is the one its text gives, so it comes back whole.
            assert_eq!(Origin::from(user.origin.to_string().as_str()), user.origin);
            created_round_trip(&user);
            assert_eq!(decode_created(&encode_created(&user), &key).as_ref(), Ok(&user));
        }
    }

    // The input as the choices of a user.
    if let Ok(user) = build(&mut Unstructured::new(data)) {
        attrs_round_trip(&user.attrs, &user.key);
        created_round_trip(&user);
        // Written with one key, read with another: an error or some values, never a panic.
        let stored = attrs_bytes(&user.attrs, &user.key);
        let _ = decode_attrs(&stored, &SourceKey::from(KEY));
    }
});

//! A plan's reports written fast: the long lists (operations) are rendered in batches on every
//! core and written in order. `plan --format json` compactly, the document
//! [`render::JsonDocument`] serialises, key for key; `plan` as text, the report of
//! [`render::write_text`]. The lists are most of a large first plan's report, so they are what
//! is spread over the cores.

use crate::model::{DesiredUser, SourceKey};
use crate::parts;
use crate::reconcile::plan::{Op, Plan};
use crate::reconcile::render::{self, Names};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use std::io::{self, Write};

/// A user create as [`render::op_json`] reports it, serialised without building a JSON value
/// first (keys in the same alphabetical order): creates are most of a first plan.
struct CreateReport<'a>(&'a DesiredUser);

impl Serialize for CreateReport<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let user = self.0;
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("changes", &CreateChanges(user))?;
        m.serialize_entry("key", &user.key.0)?;
        m.serialize_entry("op", "create_user")?;
        m.serialize_entry("userName", user.user_name())?;
        m.end()
    }
}

struct CreateChanges<'a>(&'a DesiredUser);

impl Serialize for CreateChanges<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let user = self.0;
        let mut seq = s.serialize_seq(None)?;
        for (attr, value) in &user.attrs {
            seq.serialize_element(&SetFromNothing { after: value, attribute: attr.name(), before: None })?;
        }
        if !user.roles.is_empty() {
            seq.serialize_element(&SetFromNothing { after: &user.roles, attribute: "roles", before: None })?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct SetFromNothing<'a, T: Serialize> {
    after: T,
    attribute: &'a str,
    before: Option<()>,
}

#[derive(Serialize)]
struct GroupReport<'a> {
    #[serde(rename = "displayName")]
    display_name: &'a str,
    key: &'a str,
    members: MembersReport<'a>,
    op: &'a str,
}

struct MembersReport<'a> {
    members: &'a [SourceKey],
    names: &'a Names<'a>,
}

impl Serialize for MembersReport<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Member<'a> {
            key: &'a str,
            #[serde(rename = "userName")]
            user_name: &'a str,
        }
        let mut seq = s.serialize_seq(Some(self.members.len()))?;
        for k in self.members {
            let user_name = self.names.get(k).copied().unwrap_or(k.0.as_str());
            seq.serialize_element(&Member { key: &k.0, user_name })?;
        }
        seq.end()
    }
}

/// Items rendered at a time by one thread: few enough that the chunks waiting to be written stay
/// a few megabytes.
const CHUNK: usize = 4096;
const MAX_THREADS: usize = 4;

/// Writes the text report of `plan`, its operations rendered on every core.
pub fn write_text<W: std::fmt::Write>(out: &mut W, plan: &Plan, names: &Names<'_>) -> std::fmt::Result {
    render::write_text_with(out, plan, names, |out, ops| {
        let render = |chunk: &[Op]| {
            let mut buf = String::new();
            chunk.iter().try_for_each(|op| render::text_op(&mut buf, op, names, "  ")).map(|()| buf)
        };
        parts::render_in_order(ops, CHUNK, parts::threads(MAX_THREADS), render, |buf| out.write_str(&buf?))
    })
}

/// Writes the compact JSON document of `plan` and a newline.
pub fn write_json(
    w: &mut impl Write,
    plan: &Plan,
    names: &Names<'_>,
    fingerprint: &impl Serialize,
) -> io::Result<()> {
    let report = |buf: &mut Vec<u8>, op: &Op| match op {
        Op::CreateUser { user } => serde_json::to_writer(buf, &CreateReport(user)),
        Op::AddMembers { key, display_name, members } | Op::RemoveMembers { key, display_name, members } => {
            let members = MembersReport { members, names };
            let report = GroupReport { display_name, key: &key.0, members, op: op.kind() };
            serde_json::to_writer(buf, &report)
        }
        _ => serde_json::to_writer(buf, &render::op_json(op, names)),
    };
    let raw = |buf: &mut Vec<u8>, op: &Op| serde_json::to_writer(buf, op);
    w.write_all(b"{\"defer_reason\":")?;
    serde_json::to_writer(&mut *w, &plan.defer_reason)?;
    w.write_all(b",\"deferred\":")?;
    array(w, &plan.deferred, report)?;
    w.write_all(b",\"fingerprint\":")?;
    serde_json::to_writer(&mut *w, fingerprint)?;
    w.write_all(b",\"held\":")?;
    array(w, &plan.held, report)?;
    w.write_all(b",\"hold_reason\":")?;
    serde_json::to_writer(&mut *w, &plan.hold_reason)?;
    w.write_all(b",\"operations\":")?;
    array(w, &plan.ops, report)?;
    w.write_all(b",\"pending\":")?;
    serde_json::to_writer(&mut *w, &plan.pending)?;
    w.write_all(b",\"plan\":{\"defer_reason\":")?;
    serde_json::to_writer(&mut *w, &plan.defer_reason)?;
    w.write_all(b",\"deferred\":")?;
    array(w, &plan.deferred, raw)?;
    w.write_all(b",\"held\":")?;
    array(w, &plan.held, raw)?;
    w.write_all(b",\"hold_reason\":")?;
    serde_json::to_writer(&mut *w, &plan.hold_reason)?;
    w.write_all(b",\"ops\":")?;
    array(w, &plan.ops, raw)?;
    w.write_all(b",\"pending\":")?;
    serde_json::to_writer(&mut *w, &plan.pending)?;
    w.write_all(b",\"skipped\":")?;
    serde_json::to_writer(&mut *w, &plan.skipped)?;
    w.write_all(b",\"warnings\":")?;
    serde_json::to_writer(&mut *w, &plan.warnings)?;
    w.write_all(b"},\"skipped\":")?;
    serde_json::to_writer(&mut *w, &plan.skipped)?;
    w.write_all(b",\"summary\":")?;
    serde_json::to_writer(&mut *w, &plan.summary())?;
    w.write_all(b",\"warnings\":")?;
    serde_json::to_writer(&mut *w, &plan.warnings)?;
    w.write_all(b"}\n")
}

/// A JSON array of `items`, each serialised by `each`; batches of [`CHUNK`] items are serialised
/// on as many threads as there are cores and written in their order.
fn array<T: Sync>(
    w: &mut impl Write,
    items: &[T],
    each: impl Fn(&mut Vec<u8>, &T) -> serde_json::Result<()> + Sync,
) -> io::Result<()> {
    w.write_all(b"[")?;
    let render = |chunk: &[T]| {
        let mut buf = Vec::new();
        for (i, item) in chunk.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            each(&mut buf, item)?;
        }
        Ok::<_, serde_json::Error>(buf)
    };
    let mut first = true;
    parts::render_in_order(items, CHUNK, parts::threads(MAX_THREADS), render, |buf| {
        if !std::mem::take(&mut first) {
            w.write_all(b",")?;
        }
        w.write_all(&buf?)
    })?;
    w.write_all(b"]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_across_batches_are_whole_and_in_order() {
        for n in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK * MAX_THREADS + 7] {
            let items: Vec<usize> = (0..n).collect();
            let mut out = Vec::new();
            array(&mut out, &items, |buf, i| serde_json::to_writer(buf, i)).unwrap();
            let back: Vec<usize> = serde_json::from_slice(&out).unwrap();
            assert_eq!(back, items, "{n} items");
        }
    }
}

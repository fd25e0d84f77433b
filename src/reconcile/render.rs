//! Renders a plan as text (like `terraform plan`), JSON (the `summary` contract) or Markdown.

use super::plan::{Change, Op, Plan, Reason};
use crate::model::SourceKey;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{json, Value};
use std::fmt::{self, Write};

/// Names the members of groups in reports: source key → userName, borrowed from the desired
/// state and the snapshot. A hash map of borrowed names: a large first plan names most users and
/// only looks them up, so neither owned names nor an order are worth their memory and time.
pub type Names<'a> = std::collections::HashMap<&'a SourceKey, &'a str, foldhash::fast::RandomState>;

fn name<'a>(names: &'a Names<'_>, key: &'a SourceKey) -> &'a str {
    names.get(key).copied().unwrap_or(&key.0)
}

fn show(v: &Option<String>) -> String {
    v.as_ref().map_or_else(|| "(none)".to_owned(), |v| format!("{v:?}"))
}

fn reason_text(r: Reason) -> &'static str {
    match r {
        Reason::Missing => "missing from the source",
        Reason::InactiveInSource => "inactive in the source",
    }
}

fn change_json(c: &Change) -> Value {
    match c {
        Change::Set { attr, before, after } => {
            json!({"attribute": attr.name(), "before": before, "after": after})
        }
        Change::Roles { before, after } => json!({"attribute": "roles", "before": before, "after": after}),
    }
}

/// One operation as a JSON object: `op`, `key`, `userName` or `displayName`, changes.
pub fn op_json(op: &Op, names: &Names<'_>) -> Value {
    let mut o = json!({"op": op.kind(), "key": op.key().0});
    let m = o.as_object_mut().expect("object");
    if op.is_user_op() {
        m.insert("userName".into(), op.label().into());
    } else {
        m.insert("displayName".into(), op.label().into());
    }
    match op {
        Op::CreateUser { user } => {
            let mut changes: Vec<Value> = user
                .attrs
                .iter()
                .map(|(a, v)| json!({"attribute": a.name(), "before": null, "after": v}))
                .collect();
            if !user.roles.is_empty() {
                changes.push(json!({"attribute": "roles", "before": null, "after": user.roles}));
            }
            m.insert("changes".into(), changes.into());
        }
        Op::UpdateUser { changes, .. } | Op::ReactivateUser { changes, .. } => {
            let mut list: Vec<Value> = changes.iter().map(change_json).collect();
            if matches!(op, Op::ReactivateUser { .. }) {
                list.insert(0, json!({"attribute": "active", "before": false, "after": true}));
            }
            m.insert("changes".into(), list.into());
        }
        Op::DeactivateUser { reason, .. } => {
            m.insert("reason".into(), json!(reason));
            m.insert("changes".into(), json!([{"attribute": "active", "before": true, "after": false}]));
        }
        Op::DeleteUser { reason, .. } => {
            m.insert("reason".into(), json!(reason));
        }
        Op::RenameGroup { from, to, .. } => {
            m.insert("changes".into(), json!([{"attribute": "displayName", "before": from, "after": to}]));
        }
        Op::AddMembers { members, .. } | Op::RemoveMembers { members, .. } => {
            let list: Vec<Value> =
                members.iter().map(|k| json!({"key": k.0, "userName": name(names, k)})).collect();
            m.insert("members".into(), list.into());
        }
        Op::CreateGroup { .. } | Op::DeleteGroup { .. } => {}
    }
    o
}

/// The `plan --format json` document, written as it is serialised: the same JSON as
/// [`json`] with `fingerprint` and the plan itself (`plan`) added, keys in the same (alphabetical)
/// order, but with one operation's JSON at a time in memory. Built whole, a first plan of a
/// million users took gigabytes of JSON values.
pub struct JsonDocument<'a, F> {
    pub plan: &'a Plan,
    pub names: &'a Names<'a>,
    pub fingerprint: F,
}

impl<F: Serialize> Serialize for JsonDocument<'_, F> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (plan, names) = (self.plan, self.names);
        let report = |op: &Op| op_json(op, names);
        let mut m = serializer.serialize_map(Some(11))?;
        m.serialize_entry("defer_reason", &plan.defer_reason)?;
        m.serialize_entry("deferred", &Each(&plan.deferred, report))?;
        m.serialize_entry("fingerprint", &self.fingerprint)?;
        m.serialize_entry("held", &Each(&plan.held, report))?;
        m.serialize_entry("hold_reason", &plan.hold_reason)?;
        m.serialize_entry("operations", &Each(&plan.ops, report))?;
        m.serialize_entry("pending", &plan.pending)?;
        m.serialize_entry("plan", &PlanJson(plan))?;
        m.serialize_entry("skipped", &plan.skipped)?;
        m.serialize_entry("summary", &as_value(&plan.summary()))?;
        m.serialize_entry("warnings", &plan.warnings)?;
        m.end()
    }
}

/// A plan as `serde_json::to_value(plan)` gives it, its own keys in alphabetical order, each
/// operation serialised as it is (its keys in declaration order: going through a
/// `serde_json::Value` per operation to sort them cost a first plan of 200,000 users a second).
struct PlanJson<'a>(&'a Plan);

impl Serialize for PlanJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let plan = self.0;
        let mut m = serializer.serialize_map(Some(8))?;
        m.serialize_entry("defer_reason", &plan.defer_reason)?;
        m.serialize_entry("deferred", &plan.deferred)?;
        m.serialize_entry("held", &plan.held)?;
        m.serialize_entry("hold_reason", &plan.hold_reason)?;
        m.serialize_entry("ops", &plan.ops)?;
        m.serialize_entry("pending", &plan.pending)?;
        m.serialize_entry("skipped", &plan.skipped)?;
        m.serialize_entry("warnings", &plan.warnings)?;
        m.end()
    }
}

/// A JSON array of `items`, each made a JSON value only when its turn comes.
struct Each<'a, T, F>(&'a [T], F);

impl<T, F: Fn(&T) -> Value> Serialize for Each<'_, T, F> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for item in self.0 {
            seq.serialize_element(&(self.1)(item))?;
        }
        seq.end()
    }
}

/// A value as `serde_json::Value` prints it: object keys in alphabetical order. A plan's own types
/// always serialise.
fn as_value<T: Serialize>(item: &T) -> Value {
    serde_json::to_value(item).expect("plan types serialise to JSON")
}

pub fn json(plan: &Plan, names: &Names<'_>) -> Value {
    json!({
        "summary": plan.summary(),
        "operations": plan.ops.iter().map(|op| op_json(op, names)).collect::<Vec<_>>(),
        "held": plan.held.iter().map(|op| op_json(op, names)).collect::<Vec<_>>(),
        "hold_reason": plan.hold_reason,
        "deferred": plan.deferred.iter().map(|op| op_json(op, names)).collect::<Vec<_>>(),
        "defer_reason": plan.defer_reason,
        "pending": plan.pending,
        "skipped": plan.skipped,
        "warnings": plan.warnings,
    })
}

pub fn text_op(out: &mut impl Write, op: &Op, names: &Names<'_>, indent: &str) -> fmt::Result {
    let label = op.label();
    match op {
        Op::CreateUser { user } => {
            writeln!(out, "{indent}+ user {label}")?;
            for (a, v) in &user.attrs {
                writeln!(out, "{indent}    {:<30} {v:?}", a.name())?;
            }
            if !user.roles.is_empty() {
                let roles: Vec<_> = user.roles.iter().collect();
                writeln!(out, "{indent}    {:<30} {roles:?}", "roles")?;
            }
            Ok(())
        }
        Op::UpdateUser { changes, .. } | Op::ReactivateUser { changes, .. } => {
            let what = if matches!(op, Op::ReactivateUser { .. }) { " (reactivate)" } else { "" };
            writeln!(out, "{indent}~ user {label}{what}")?;
            if !what.is_empty() {
                writeln!(out, "{indent}    {:<30} false → true", "active")?;
            }
            for c in changes {
                match c {
                    Change::Set { attr, before, after } => {
                        writeln!(out, "{indent}    {:<30} {} → {}", attr.name(), show(before), show(after))?
                    }
                    Change::Roles { before, after } => {
                        writeln!(out, "{indent}    {:<30} {before:?} → {after:?}", "roles")?
                    }
                }
            }
            Ok(())
        }
        Op::DeactivateUser { reason, .. } => {
            writeln!(out, "{indent}- user {label} (deactivate: {})", reason_text(*reason))
        }
        Op::DeleteUser { reason, .. } => {
            writeln!(out, "{indent}- user {label} (delete: {})", reason_text(*reason))
        }
        Op::CreateGroup { .. } => writeln!(out, "{indent}+ group {label:?}"),
        Op::RenameGroup { from, to, .. } => writeln!(out, "{indent}~ group {from:?} → {to:?}"),
        Op::AddMembers { members, .. } | Op::RemoveMembers { members, .. } => {
            let sign = if matches!(op, Op::AddMembers { .. }) { '+' } else { '-' };
            writeln!(out, "{indent}~ group {label:?}: {sign} {} member(s)", members.len())?;
            for k in members {
                writeln!(out, "{indent}    {sign} {}", name(names, k))?;
            }
            Ok(())
        }
        Op::DeleteGroup { .. } => {
            writeln!(out, "{indent}- group {label:?} (delete: missing from the source)")
        }
    }
}

fn summary_line(plan: &Plan) -> String {
    let s = plan.summary();
    let deferred = match s.deferred {
        0 => String::new(),
        n => format!(" ({n} removals deferred)"),
    };
    format!(
        "Plan: {} users to create, {} to update, {} to reactivate, {} to deactivate, {} to delete; {} groups to create, {} to update, {} to delete; {} held, {} skipped, {} warnings.{deferred}",
        s.create_user,
        s.update_user,
        s.reactivate_user,
        s.deactivate_user,
        s.delete_user,
        s.create_group,
        s.update_group,
        s.delete_group,
        s.held,
        s.skipped,
        s.warnings
    )
}

pub fn text(plan: &Plan, names: &Names<'_>) -> String {
    let mut out = String::new();
    write_text(&mut out, plan, names).expect("writing to a string cannot fail");
    out
}

/// [`text`], written to `out` as it is made: the report of a first plan of a million users is
/// more than half a gigabyte.
pub fn write_text<W: Write>(out: &mut W, plan: &Plan, names: &Names<'_>) -> fmt::Result {
    write_text_with(out, plan, names, |out, ops| ops.iter().try_for_each(|op| text_op(out, op, names, "  ")))
}

/// [`write_text`], with the operations (the bulk of a large plan) written by `write_ops`, each
/// as [`text_op`] writes it with an indent of two spaces.
pub fn write_text_with<W: Write>(
    out: &mut W,
    plan: &Plan,
    names: &Names<'_>,
    write_ops: impl FnOnce(&mut W, &[Op]) -> fmt::Result,
) -> fmt::Result {
    if plan.ops.is_empty() {
        out.write_str("No changes. The target matches the source.\n")?;
    } else {
        out.write_str("scimsync will perform the following actions:\n\n")?;
        write_ops(out, &plan.ops)?;
    }
    if let Some(reason) = &plan.hold_reason {
        writeln!(out, "\nHeld by the safety threshold: {reason}")?;
        for op in &plan.held {
            text_op(out, op, names, "  ")?;
        }
    }
    if let Some(reason) = &plan.defer_reason {
        writeln!(out, "\nRemovals deferred to a later read: {reason}")?;
        for op in &plan.deferred {
            text_op(out, op, names, "  ")?;
        }
    }
    if !plan.pending.is_empty() {
        out.write_str(match plan.defer_reason {
            Some(_) => "\nMissing from this read (deprovisioned only once a read in no doubt confirms):\n",
            None => "\nWithin the grace period (deprovisioned once missing long enough):\n",
        })?;
        for p in &plan.pending {
            writeln!(out, "  . user {} (missing for {} run(s))", p.user_name, p.missing_runs)?;
        }
    }
    if !plan.skipped.is_empty() {
        out.write_str("\nSkipped:\n")?;
        for s in &plan.skipped {
            writeln!(out, "  ! {}: {}", s.origin, s.reason)?;
        }
    }
    if !plan.warnings.is_empty() {
        out.write_str("\nWarnings:\n")?;
        for w in &plan.warnings {
            writeln!(out, "  ! {w}")?;
        }
    }
    writeln!(out, "\n{}", summary_line(plan))
}

pub fn markdown(plan: &Plan, names: &Names<'_>) -> String {
    let s = plan.summary();
    let mut out = String::from("# scimsync plan\n\n| change | count |\n|---|---:|\n");
    let rows = [
        ("users to create", s.create_user),
        ("users to update", s.update_user),
        ("users to reactivate", s.reactivate_user),
        ("users to deactivate", s.deactivate_user),
        ("users to delete", s.delete_user),
        ("groups to create", s.create_group),
        ("groups to update", s.update_group),
        ("groups to delete", s.delete_group),
        ("held", s.held),
        ("skipped", s.skipped),
        ("warnings", s.warnings),
    ];
    for (what, n) in rows {
        let _ = writeln!(out, "| {what} | {n} |");
    }
    let mut section = |title: &str, body: String| {
        if !body.is_empty() {
            let _ = write!(out, "\n## {title}\n\n```diff\n{body}```\n");
        }
    };
    let mut ops = String::new();
    for op in &plan.ops {
        let _ = text_op(&mut ops, op, names, "");
    }
    section("Operations", ops);
    let mut held = String::new();
    for op in &plan.held {
        let _ = text_op(&mut held, op, names, "");
    }
    section("Held", held);
    let mut deferred = String::new();
    for op in &plan.deferred {
        let _ = text_op(&mut deferred, op, names, "");
    }
    section("Deferred", deferred);
    if let Some(r) = &plan.hold_reason {
        let _ = writeln!(out, "\n> **Held:** {r}");
    }
    if let Some(r) = &plan.defer_reason {
        let _ = writeln!(out, "\n> **Removals deferred:** {r}");
    }
    let mut notes = String::new();
    for sk in &plan.skipped {
        let _ = writeln!(notes, "- skipped `{}`: {}", sk.origin, sk.reason);
    }
    for w in &plan.warnings {
        let _ = writeln!(notes, "- warning: {w}");
    }
    if !notes.is_empty() {
        let _ = write!(out, "\n## Notes\n\n{notes}");
    }
    out
}

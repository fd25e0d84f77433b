//! Mapping: source user → desired user through `value` / `from` / `expr` (CEL) rules, group
//! assignments, group → role rules and the target profile's rules (SPEC §3, §4).

mod section;
pub use section::{FromAttrs, RawAssignment, RawMapping, RawRoleRule, RawRule};

use crate::model::{Attr, Attrs, DesiredGroup, DesiredState, DesiredUser, Profile, Skip};
use crate::reconcile::desired;
use crate::source::directory::{SourceDirectory, SourceUser};
use cel::{Context, Env, Program};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// The ninjaone user type every user falls back to.
pub const END_USER: &str = "endUser";

#[derive(Clone, Debug)]
enum Rule {
    Value(String),
    /// Source attributes, the first with a value that is not blank wins; `$key` and `$dn` name the source key and DN.
    From(Vec<String>),
    Expr {
        source: String,
        program: Arc<Program>,
    },
}

#[derive(Clone, Debug)]
struct Assignment {
    group: String,
    set: Vec<(Attr, String)>,
}

#[derive(Clone, Debug)]
struct RoleRule {
    group: String,
    role: String,
    user_type: Option<String>,
}

/// Below this many users per thread, a directory is mapped on the calling thread alone.
const PARALLEL_MAP_MIN: usize = 20_000;
/// Mapping is CPU-bound and each thread holds a share of the output: more threads than this
/// gain little.
const MAX_MAP_THREADS: usize = 4;

/// What mapping one part of the users gave.
#[derive(Default)]
struct Mapped {
    users: Vec<DesiredUser>,
    skipped: Vec<Skip>,
    warnings: Vec<String>,
    no_type: u64,
}

/// A compiled mapping: CEL programs are compiled once, at config load.
#[derive(Clone)]
pub struct Mapping {
    env: Arc<Env>,
    rules: BTreeMap<Attr, Rule>,
    assignments: Vec<Assignment>,
    roles: Vec<RoleRule>,
    active: Option<(String, Arc<Program>)>,
    profile: Profile,
    user_types: Vec<String>,
    /// What the expressions read, to build each user's expression scope with only that.
    reads: Reads,
}

/// What the compiled expressions read from a user's scope.
#[derive(Clone, Debug, Default)]
struct Reads {
    /// Scope variables named anywhere (`user`, `values`, `groups`, `dn`, `key`).
    variables: BTreeSet<String>,
    /// Attributes read through `user.NAME`, `has(user.NAME)` or `user["NAME"]` (likewise
    /// `values`); `None` when an expression uses those maps any other way, so every attribute
    /// must be there.
    attributes: Option<BTreeSet<String>>,
}

impl Mapping {
    /// The source attributes (lowercased) the rules read, for [`crate::source::read_for`];
    /// `None` when an expression may read any attribute.
    pub fn source_attributes(&self) -> Option<HashSet<String>> {
        let mut out: HashSet<String> = self.reads.attributes.as_ref()?.iter().cloned().collect();
        for rule in self.rules.values() {
            if let Rule::From(names) = rule {
                out.extend(names.iter().filter(|n| !n.starts_with('$')).map(|n| n.to_ascii_lowercase()));
            }
        }
        Some(out)
    }

    /// Maps a whole source read into the desired state. A large directory is mapped in parts on
    /// as many threads as the machine offers (each user is mapped alone, so the parts are
    /// independent); the parts are joined in source order, so the result is the same however
    /// many threads there are.
    pub fn map_directory(&self, dir: SourceDirectory) -> DesiredState {
        let threads = crate::parts::threads(MAX_MAP_THREADS);
        let parts = if dir.users.len() >= PARALLEL_MAP_MIN * 2 { threads } else { 1 };
        self.map_directory_in_parts(dir, parts)
    }

    /// [`Mapping::map_directory`] in `parts` parts, one thread each (tests check that the number
    /// of parts changes nothing).
    pub fn map_directory_in_parts(&self, dir: SourceDirectory, parts: usize) -> DesiredState {
        let read_summary = dir.summary();
        let mut users = dir.users;
        let part_len = users.len().div_ceil(parts.max(1)).max(1);
        let mut chunks = Vec::with_capacity(parts);
        while users.len() > part_len {
            chunks.push(users.split_off(users.len() - part_len));
        }
        chunks.push(users);
        chunks.reverse();
        let mapped = crate::parts::map_on_threads(chunks, |c| self.map_part(c));
        let mut all = Mapped { warnings: dir.warnings, ..Mapped::default() };
        all.users.reserve_exact(mapped.iter().map(|m| m.users.len()).sum());
        let mut skipped = dir.skipped;
        for m in mapped {
            all.users.extend(m.users);
            skipped.extend(m.skipped);
            all.warnings.extend(m.warnings);
            all.no_type += m.no_type;
        }
        if all.no_type > 0 && self.profile == Profile::NinjaOne {
            all.warnings.push(format!(
                "{} user(s) have no userType: created as {END_USER:?}; map userType or add a group assignment",
                all.no_type
            ));
        }
        let groups = dir
            .groups
            .into_iter()
            .map(|g| DesiredGroup { key: g.key, origin: g.origin, display_name: g.name, members: g.members })
            .collect();
        let mut desired = desired::build(all.users, groups, skipped, all.warnings, dir.records_read);
        desired.cut_off = dir.cut_off;
        desired.read_summary = read_summary;
        desired
    }

    /// Maps one part of the users. Each source user is freed once mapped: the source and the
    /// desired state are never both whole in memory.
    fn map_part(&self, part: Vec<SourceUser>) -> Mapped {
        let root = Context::with_env(self.env.clone());
        let mut out = Mapped { users: Vec::with_capacity(part.len()), ..Mapped::default() };
        for su in part {
            let su = &su;
            match self.map_user(&root, su, &mut out.warnings, &mut out.no_type) {
                Ok(u) => out.users.push(u),
                Err(reason) => out.skipped.push(Skip {
                    origin: su.record.origin.to_string(),
                    key: Some(su.key.clone()),
                    reason,
                }),
            }
        }
        // Sorted here, on this part's thread: the state is built from keys in order, and sorting
        // the joined parts then only merges them.
        out.users.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// Maps one user; `Err(reason)` leaves it out of this run (and protects it from
    /// deprovisioning).
    pub fn map_user(
        &self,
        root: &Context<'_, 'static>,
        su: &SourceUser,
        warnings: &mut Vec<String>,
        no_type: &mut u64,
    ) -> Result<DesiredUser, String> {
        let origin = su.record.origin.clone();
        let mut scope = None;
        let mut values = Values::default();
        for (attr, rule) in &self.rules {
            let value = match rule {
                Rule::Value(v) => Some(v.clone()),
                Rule::From(names) => names.iter().find_map(|n| lookup(su, n)),
                Rule::Expr { source, program } => {
                    let ctx = scope.get_or_insert_with(|| user_scope(root, su, &self.reads));
                    eval_string(program, ctx).map_err(|e| format!("{}: {e} (in {source:?})", attr.name()))?
                }
            };
            if let Some(v) = value.filter(|v| !v.trim().is_empty()) {
                *values.slot(*attr) = Some(v.trim().to_owned());
            }
        }
        if let Some(a) =
            self.assignments.iter().find(|a| su.groups.iter().any(|g| g.eq_ignore_ascii_case(&a.group)))
        {
            for (attr, v) in &a.set {
                *values.slot(*attr) = Some(v.clone());
            }
        }
        let Some(user_name) = values.slot(Attr::UserName).clone() else {
            return Err(match self.rules.get(&Attr::UserName) {
                Some(Rule::From(names)) => {
                    format!("no userName: none of {} has a value ({})", names.join(", "), found_in(su, names))
                }
                Some(Rule::Expr { source, .. }) => {
                    format!("no userName: the userName rule {source:?} gave nothing")
                }
                _ => "no userName: the userName rule gave nothing".into(),
            });
        };
        let mut active = su.active;
        if let Some((source, program)) = &self.active {
            let ctx = scope.get_or_insert_with(|| user_scope(root, su, &self.reads));
            match program.execute(ctx) {
                Ok(cel::Value::Bool(b)) => active &= b,
                Ok(other) => {
                    return Err(format!("mapping.active must give a bool, gave {other:?} (in {source:?})"))
                }
                Err(e) => return Err(format!("mapping.active: {e} (in {source:?})")),
            }
        }
        if self.profile == Profile::NinjaOne {
            if !looks_like_email(&user_name) {
                return Err(format!(
                    "userName {user_name:?} is not an email address, which a ninjaone target requires"
                ));
            }
            *values.slot(Attr::WorkPhone) = None;
            *values.slot(Attr::MobilePhone) = None;
            let user_type = values.slot(Attr::UserType);
            match user_type {
                None => *no_type += 1,
                Some(t) if self.user_types.contains(t) => {}
                Some(t) => {
                    warnings.push(format!(
                        "{origin}: userType {t:?} is not one of {:?}: created as {END_USER:?}",
                        self.user_types
                    ));
                }
            }
            if !user_type.as_ref().is_some_and(|t| self.user_types.contains(t)) {
                *user_type = Some(END_USER.to_owned());
            }
            values.slot(Attr::OrganizationId).get_or_insert_with(|| "All".to_owned());
        }
        let user_type = values.slot(Attr::UserType).clone();
        let attrs = values.into_attrs();
        let roles = self
            .roles
            .iter()
            .filter(|r| su.groups.iter().any(|g| g.eq_ignore_ascii_case(&r.group)))
            .filter(|r| r.user_type.is_none() || r.user_type == user_type)
            .map(|r| r.role.clone())
            .collect::<BTreeSet<_>>();
        Ok(DesiredUser { key: su.key.clone(), origin, attrs, active, roles })
    }
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping")
            .field("rules", &self.rules)
            .field("assignments", &self.assignments)
            .field("roles", &self.roles)
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// One user's values while it is mapped: a slot per built-in attribute, then the custom
/// attributes its rules set (none allocated for a mapping without them).
#[derive(Default)]
struct Values {
    builtin: [Option<String>; Attr::BUILTINS.len()],
    custom: Vec<(Attr, Option<String>)>,
}

impl Values {
    fn slot(&mut self, attr: Attr) -> &mut Option<String> {
        if let Some(i) = attr.builtin_index() {
            return &mut self.builtin[i];
        }
        let k = match self.custom.iter().position(|(a, _)| *a == attr) {
            Some(k) => k,
            None => {
                self.custom.push((attr, None));
                self.custom.len() - 1
            }
        };
        &mut self.custom[k].1
    }

    fn into_attrs(self) -> Attrs {
        let builtin = Attr::BUILTINS.into_iter().zip(self.builtin);
        builtin.chain(self.custom).filter_map(|(a, v)| Some((a, v?))).collect()
    }
}

fn lookup(su: &SourceUser, name: &str) -> Option<String> {
    match name {
        "$key" => Some(su.key.0.clone()),
        "$dn" => Some(su.record.dn.clone()),
        // The first value that is not blank: an empty `mail:` does not hide the next source.
        _ => su.record.values(name).find(|v| !v.trim().is_empty()).map(str::to_owned),
    }
}

/// What the sources of a `from` rule held for a user, for a skip reason: `mail: empty,
/// userPrincipalName: absent`.
fn found_in(su: &SourceUser, names: &[String]) -> String {
    let found: Vec<String> = names
        .iter()
        .map(|n| match su.record.values(n).next() {
            None => format!("{n}: absent"),
            Some(_) => format!("{n}: empty"),
        })
        .collect();
    found.join(", ")
}

fn looks_like_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => !local.is_empty() && !domain.is_empty() && !s.contains(char::is_whitespace),
        None => false,
    }
}

/// The variables an expression sees: `user` (attribute → first text value, names lowercased),
/// `values` (attribute → all text values), `groups` (group names), `dn`, `key`. Only the
/// variables and attributes the expressions read are built: converting values into CEL is most
/// of an expression's cost.
fn user_scope<'a>(root: &'a Context<'_, 'static>, su: &SourceUser, reads: &Reads) -> Context<'a, 'static> {
    let wants = |v: &str| reads.variables.contains(v);
    let read = |name: &str| reads.attributes.as_ref().is_none_or(|a| a.contains(name));
    let mut ctx = root.new_inner_scope();
    if wants("user") || wants("values") {
        let mut first: HashMap<String, String> = HashMap::new();
        let mut all: HashMap<String, Vec<String>> = HashMap::new();
        for (name, t) in su.record.iter() {
            if !read(name) {
                continue;
            }
            first.entry(name.to_owned()).or_insert_with(|| t.to_owned());
            if wants("values") {
                all.entry(name.to_owned()).or_default().push(t.to_owned());
            }
        }
        if wants("user") {
            ctx.add_variable_from_value("user", first);
        }
        if wants("values") {
            ctx.add_variable_from_value("values", all);
        }
    }
    if wants("groups") {
        ctx.add_variable_from_value("groups", su.groups.iter().cloned().collect::<Vec<_>>());
    }
    if wants("dn") {
        ctx.add_variable_from_value("dn", su.record.dn.clone());
    }
    if wants("key") {
        ctx.add_variable_from_value("key", su.key.0.clone());
    }
    ctx
}

fn eval_string(program: &Program, ctx: &Context) -> Result<Option<String>, String> {
    match program.execute(ctx) {
        Ok(cel::Value::String(s)) => Ok(Some(s.to_string())),
        Ok(cel::Value::Null) => Ok(None),
        Ok(cel::Value::Bool(b)) => Ok(Some(b.to_string())),
        Ok(cel::Value::Int(i)) => Ok(Some(i.to_string())),
        Ok(cel::Value::UInt(i)) => Ok(Some(i.to_string())),
        Ok(other) => Err(format!("the expression gave {other:?}, not a string")),
        Err(e) => Err(e.to_string()),
    }
}

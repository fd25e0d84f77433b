//! Mapping: source user → desired user through `value` / `from` / `expr` (CEL) rules, group
//! assignments, group → role rules and the target profile's rules (SPEC §3, §4).

use crate::config::{RawMapping, RawRule};
use crate::model::{Attr, Attrs, DesiredGroup, DesiredState, DesiredUser, Profile, Skip};
use crate::reconcile::desired;
use crate::section::ConfigErrors;
use crate::source::directory::{SourceDirectory, SourceUser};
use crate::source::SourceKind;
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

impl Reads {
    fn add(&mut self, program: &Program) {
        for v in program.references().variables() {
            self.variables.insert(v.to_owned());
        }
        if let Some(attrs) = &mut self.attributes {
            if !attribute_reads(program.expression(), attrs) {
                self.attributes = None;
            }
        }
    }
}

/// Collects the attributes an expression reads from `user` or `values`; false when it uses one of
/// them in a way that can reach any attribute (`user[name]`, `user.all(...)`, `size(user)`, …).
fn attribute_reads(e: &cel::common::ast::IdedExpr, out: &mut BTreeSet<String>) -> bool {
    use cel::common::ast::{EntryExpr, Expr, LiteralValue};
    let is_map = |e: &Expr| matches!(e, Expr::Ident(n) if n == "user" || n == "values");
    match &e.expr {
        Expr::Ident(n) => !(n == "user" || n == "values"),
        Expr::Select(sel) if is_map(&sel.operand.expr) => {
            out.insert(sel.field.to_ascii_lowercase());
            true
        }
        Expr::Select(sel) => attribute_reads(&sel.operand, out),
        Expr::Call(call) => {
            if call.func_name == "_[_]"
                && call.target.is_none()
                && call.args.len() == 2
                && is_map(&call.args[0].expr)
            {
                if let Expr::Literal(LiteralValue::String(name)) = &call.args[1].expr {
                    out.insert(name.to_ascii_lowercase());
                    return true;
                }
            }
            call.target.as_deref().is_none_or(|t| attribute_reads(t, out))
                && call.args.iter().all(|a| attribute_reads(a, out))
        }
        Expr::Comprehension(c) => [&c.iter_range, &c.accu_init, &c.loop_cond, &c.loop_step, &c.result]
            .into_iter()
            .all(|x| attribute_reads(x, out)),
        Expr::List(l) => l.elements.iter().all(|x| attribute_reads(x, out)),
        Expr::Map(m) => m.entries.iter().all(|entry| match &entry.expr {
            EntryExpr::MapEntry(me) => attribute_reads(&me.key, out) && attribute_reads(&me.value, out),
            EntryExpr::StructField(f) => attribute_reads(&f.value, out),
        }),
        Expr::Struct(st) => st.entries.iter().all(|entry| match &entry.expr {
            EntryExpr::MapEntry(me) => attribute_reads(&me.key, out) && attribute_reads(&me.value, out),
            EntryExpr::StructField(f) => attribute_reads(&f.value, out),
        }),
        Expr::Literal(_) | Expr::Unspecified => true,
    }
}

fn defaults(kind: SourceKind) -> Vec<(Attr, &'static [&'static str])> {
    match kind {
        SourceKind::Ldif => vec![
            (Attr::UserName, &["mail", "userPrincipalName"][..]),
            (Attr::GivenName, &["givenName"]),
            (Attr::FamilyName, &["sn"]),
            (Attr::DisplayName, &["displayName", "cn"]),
            (Attr::Title, &["title"]),
            (Attr::WorkEmail, &["mail"]),
            (Attr::WorkPhone, &["telephoneNumber"]),
            (Attr::MobilePhone, &["mobile"]),
            (Attr::ExternalId, &["$key"]),
        ],
        SourceKind::Csv => vec![
            (Attr::UserName, &["userName", "email", "mail"][..]),
            (Attr::GivenName, &["givenName", "firstName", "first_name"]),
            (Attr::FamilyName, &["familyName", "sn", "lastName", "last_name"]),
            (Attr::DisplayName, &["displayName"]),
            (Attr::Title, &["title"]),
            (Attr::WorkEmail, &["email", "mail"]),
            (Attr::WorkPhone, &["phone", "telephoneNumber"]),
            (Attr::MobilePhone, &["mobile"]),
            (Attr::ExternalId, &["$key"]),
            (Attr::UserType, &["userType"]),
            (Attr::OrganizationId, &["organizationId"]),
        ],
        SourceKind::Json | SourceKind::Scim => vec![
            (Attr::UserName, &["userName"][..]),
            (Attr::GivenName, &["name.givenName"]),
            (Attr::FamilyName, &["name.familyName"]),
            (Attr::DisplayName, &["displayName"]),
            (Attr::Title, &["title"]),
            (Attr::WorkEmail, &["emails.work", "emails.primary", "emails.value"]),
            (Attr::WorkPhone, &["phoneNumbers.work"]),
            (Attr::MobilePhone, &["phoneNumbers.mobile"]),
            (Attr::ExternalId, &["$key"]),
            (
                Attr::UserType,
                &["urn:ietf:params:scim:schemas:extension:ninjaone:2.0:user:usertype", "userType"],
            ),
            (
                Attr::OrganizationId,
                &["urn:ietf:params:scim:schemas:extension:ninjaone:2.0:user:organizationid"],
            ),
        ],
    }
}

fn new_env() -> Arc<Env> {
    let mut env = Env::stdlib();
    env.add_extension(cel::extensions::strings).expect("the strings extension registers once");
    Arc::new(env)
}

/// Bounds on an expression's source, checked before the CEL parser sees it: CEL itself always
/// terminates, but a very long or deeply nested expression could exhaust the parser's stack.
const MAX_EXPR_LEN: usize = 4096;
const MAX_EXPR_DEPTH: usize = 32;

fn nesting_depth(source: &str) -> usize {
    let (mut depth, mut max, mut quote) = (0usize, 0usize, None);
    let mut chars = source.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(_), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(' | '[' | '{') => {
                depth += 1;
                max = max.max(depth);
            }
            (None, ')' | ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fn compile_expr(env: &Env, key: &str, source: &str, errors: &mut ConfigErrors) -> Option<Arc<Program>> {
    if source.len() > MAX_EXPR_LEN {
        errors.push(
            key,
            format!(
                "the expression is {} bytes long; the limit is {MAX_EXPR_LEN}: simplify it",
                source.len()
            ),
        );
        return None;
    }
    if nesting_depth(source) > MAX_EXPR_DEPTH {
        errors.push(key, format!("the expression nests deeper than {MAX_EXPR_DEPTH} levels: simplify it"));
        return None;
    }
    match env.compile(source) {
        Ok(p) => Some(Arc::new(p)),
        Err(e) => {
            errors.push(key, format!("invalid CEL expression: {}", e.to_string().trim()));
            None
        }
    }
}

impl Mapping {
    /// Compiles the mapping section; returns warnings (for example phone rules under ninjaone).
    pub fn compile(
        raw: &RawMapping,
        profile: Profile,
        kind: SourceKind,
        user_types: &[String],
    ) -> Result<(Mapping, Vec<String>), ConfigErrors> {
        let env = new_env();
        let mut errors = ConfigErrors::default();
        let mut warnings = Vec::new();
        let mut rules: BTreeMap<Attr, Rule> = defaults(kind)
            .into_iter()
            .map(|(a, from)| (a, Rule::From(from.iter().map(|s| s.to_string()).collect())))
            .collect();
        for (name, rule) in &raw.user {
            let key = if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                format!("mapping.user.{name}")
            } else {
                format!("mapping.user.{name:?}")
            };
            let Some(attr) = Attr::parse(name) else {
                let known: Vec<_> = Attr::ALL.iter().map(|a| a.name()).collect();
                errors.push(&key, format!("unknown target attribute: use one of {}", known.join(", ")));
                continue;
            };
            if let Some(r) = compile_rule(&env, &key, rule, &mut errors) {
                rules.insert(attr, r);
            }
            if profile == Profile::NinjaOne && attr.is_phone() {
                warnings.push(format!(
                    "{key}: phone numbers are never sent to a ninjaone target; this rule is ignored"
                ));
            }
        }
        let mut assignments = Vec::new();
        for (i, a) in raw.group_assignments.iter().enumerate() {
            let key = format!("mapping.group_assignments[{i}]");
            let Some(group) = a.group.clone() else {
                errors.push(
                    &format!("{key}.group"),
                    "required: the source group whose members get these values",
                );
                continue;
            };
            let mut set = Vec::new();
            for (name, v) in &a.set {
                match Attr::parse(name) {
                    Some(attr) => set.push((attr, v.clone())),
                    None => errors.push(&format!("{key}.set.{name}"), "unknown target attribute"),
                }
            }
            assignments.push(Assignment { group, set });
        }
        let mut roles = Vec::new();
        for (i, r) in raw.roles.iter().enumerate() {
            let key = format!("mapping.roles[{i}]");
            match (&r.group, &r.role) {
                (Some(g), Some(role)) => {
                    if let Some(t) = &r.user_type {
                        if profile == Profile::NinjaOne && !user_types.contains(t) {
                            errors.push(
                                &format!("{key}.user_type"),
                                format!("{t:?} is not one of {user_types:?}"),
                            );
                        }
                    }
                    roles.push(RoleRule {
                        group: g.clone(),
                        role: role.clone(),
                        user_type: r.user_type.clone(),
                    })
                }
                _ => errors.push(&key, "needs both `group` and `role`"),
            }
        }
        let active = raw
            .active
            .as_ref()
            .and_then(|src| compile_expr(&env, "mapping.active", src, &mut errors).map(|p| (src.clone(), p)));
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut reads = Reads { attributes: Some(BTreeSet::new()), ..Reads::default() };
        for rule in rules.values() {
            if let Rule::Expr { program, .. } = rule {
                reads.add(program);
            }
        }
        if let Some((_, program)) = &active {
            reads.add(program);
        }
        let mapping = Mapping {
            env,
            rules,
            assignments,
            roles,
            active,
            profile,
            user_types: user_types.to_vec(),
            reads,
        };
        Ok((mapping, warnings))
    }

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
        let mut values: [Option<String>; Attr::ALL.len()] = Default::default();
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
                values[*attr as usize] = Some(v.trim().to_owned());
            }
        }
        if let Some(a) =
            self.assignments.iter().find(|a| su.groups.iter().any(|g| g.eq_ignore_ascii_case(&a.group)))
        {
            for (attr, v) in &a.set {
                values[*attr as usize] = Some(v.clone());
            }
        }
        let Some(user_name) = values[Attr::UserName as usize].clone() else {
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
            values[Attr::WorkPhone as usize] = None;
            values[Attr::MobilePhone as usize] = None;
            let user_type = &mut values[Attr::UserType as usize];
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
            values[Attr::OrganizationId as usize].get_or_insert_with(|| "All".to_owned());
        }
        let user_type = values[Attr::UserType as usize].clone();
        let attrs: Attrs = Attr::ALL.into_iter().zip(values).filter_map(|(a, v)| Some((a, v?))).collect();
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

fn compile_rule(env: &Env, key: &str, rule: &RawRule, errors: &mut ConfigErrors) -> Option<Rule> {
    let given = [rule.value.is_some(), rule.from.is_some(), rule.expr.is_some()];
    if given.iter().filter(|g| **g).count() != 1 {
        errors.push(key, "give exactly one of `value`, `from` or `expr`");
        return None;
    }
    if let Some(v) = &rule.value {
        return Some(Rule::Value(v.clone()));
    }
    if let Some(f) = &rule.from {
        let names = f.names();
        if names.is_empty() || names.iter().any(|n| n.trim().is_empty()) {
            errors.push(key, "`from` needs attribute names");
            return None;
        }
        return Some(Rule::From(names));
    }
    let source = rule.expr.clone().unwrap_or_default();
    compile_expr(env, key, &source, errors).map(|program| Rule::Expr { source, program })
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

//! The `[mapping]` section: as written (`RawMapping`), and compiled into a [`Mapping`] — each
//! rule checked, each CEL expression compiled once, with what the expressions read.

use super::{Assignment, Mapping, Reads, RoleRule, Rule};
use crate::model::{Attr, Profile};
use crate::section::ConfigErrors;
use crate::source::SourceKind;
use cel::{Env, Program};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// One attribute rule: exactly one of `value`, `from`, `expr`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RawRule {
    pub value: Option<String>,
    pub from: Option<FromAttrs>,
    pub expr: Option<String>,
}

/// `from = "mail"` or `from = ["mail", "userPrincipalName"]` (first present wins).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum FromAttrs {
    One(String),
    Many(Vec<String>),
}

impl FromAttrs {
    pub fn names(&self) -> Vec<String> {
        match self {
            FromAttrs::One(s) => vec![s.clone()],
            FromAttrs::Many(v) => v.clone(),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct RawMapping {
    /// Target attribute (`userName`, `name.givenName`, `userType`, …) → rule. Replaces the default
    /// rule of that attribute; the others keep their defaults.
    #[serde(default)]
    pub user: BTreeMap<String, RawRule>,
    /// Members of a source group get fixed values.
    #[serde(default)]
    pub group_assignments: Vec<RawAssignment>,
    /// Group → role rules.
    #[serde(default)]
    pub roles: Vec<RawRoleRule>,
    /// Users whose mapped `active` is false are deprovisioned: a CEL expression over the user.
    pub active: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct RawAssignment {
    pub group: Option<String>,
    #[serde(default)]
    pub set: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct RawRoleRule {
    pub group: Option<String>,
    pub role: Option<String>,
    pub user_type: Option<String>,
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
        SourceKind::Ldif | SourceKind::Ldap => vec![
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
        let mut named: BTreeMap<Attr, String> = BTreeMap::new();
        for (name, rule) in &raw.user {
            let key = config_key("mapping.user", name);
            let Some(attr) = target_attr(&key, name, profile, &mut named, &mut errors) else {
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
        let assignments = compile_assignments(&raw.group_assignments, profile, &mut errors);
        let roles = compile_roles(&raw.roles, profile, user_types, &mut errors);
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
}

/// `mapping.group_assignments`: members of a source group get fixed values.
fn compile_assignments(
    raw: &[RawAssignment],
    profile: Profile,
    errors: &mut ConfigErrors,
) -> Vec<Assignment> {
    let mut assignments = Vec::new();
    for (i, a) in raw.iter().enumerate() {
        let key = format!("mapping.group_assignments[{i}]");
        let Some(group) = a.group.clone() else {
            errors.push(&format!("{key}.group"), "required: the source group whose members get these values");
            continue;
        };
        let mut set = Vec::new();
        let mut named = BTreeMap::new();
        for (name, v) in &a.set {
            let key = config_key(&format!("{key}.set"), name);
            if let Some(attr) = target_attr(&key, name, profile, &mut named, errors) {
                set.push((attr, v.clone()));
            }
        }
        assignments.push(Assignment { group, set });
    }
    assignments
}

/// `section.name`, the name quoted as TOML writes it when it is not a bare key.
fn config_key(section: &str, name: &str) -> String {
    if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        format!("{section}.{name}")
    } else {
        format!("{section}.{name:?}")
    }
}

/// The target attribute a mapping key names, or `None` with the problem recorded under `key`:
/// not a SCIM attribute path, the same attribute as another key of the table (`named`), or a
/// phone number not among the built-in ones under ninjaone (which takes none; the built-in
/// phone rules of older configs are ignored with a warning).
fn target_attr(
    key: &str,
    name: &str,
    profile: Profile,
    named: &mut BTreeMap<Attr, String>,
    errors: &mut ConfigErrors,
) -> Option<Attr> {
    let attr = match Attr::parse(name) {
        Ok(attr) => attr,
        Err(e) => {
            errors.push(key, format!("unknown target attribute: {e}"));
            return None;
        }
    };
    if let Some(other) = named.get(&attr) {
        errors.push(key, format!("names the same target attribute ({attr}) as {other}: keep one of them"));
        return None;
    }
    named.insert(attr, key.to_owned());
    if profile == Profile::NinjaOne && attr.is_phone() && !attr.is_builtin() {
        errors.push(
            key,
            "phone numbers are never sent to a ninjaone target (target.profile = \"ninjaone\"): remove this rule",
        );
        return None;
    }
    Some(attr)
}

/// `mapping.roles`: group → role rules; under ninjaone a rule's user type must be one the
/// target accepts.
fn compile_roles(
    raw: &[RawRoleRule],
    profile: Profile,
    user_types: &[String],
    errors: &mut ConfigErrors,
) -> Vec<RoleRule> {
    let mut roles = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let key = format!("mapping.roles[{i}]");
        match (&r.group, &r.role) {
            (Some(g), Some(role)) => {
                if let Some(t) = &r.user_type {
                    if profile == Profile::NinjaOne && !user_types.contains(t) {
                        errors
                            .push(&format!("{key}.user_type"), format!("{t:?} is not one of {user_types:?}"));
                    }
                }
                roles.push(RoleRule { group: g.clone(), role: role.clone(), user_type: r.user_type.clone() })
            }
            _ => errors.push(&key, "needs both `group` and `role`"),
        }
    }
    roles
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

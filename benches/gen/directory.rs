//! A synthetic directory for benchmarks and scale tests: users and groups derived from a seed,
//! written as LDIF (slapcat-like: folded lines, base64 non-ASCII values, operational
//! attributes), CSV or JSON Lines of SCIM resources; and a changed copy of the same directory.
//!
//! Everything is a function of the seed, so two runs with the same arguments write the same
//! bytes. Per-user attributes are hashed from (seed, user index), so a change to one user never
//! moves another's values.

use std::collections::HashSet;
use std::io::{self, Write};

/// SplitMix64: small, fast and good enough for test data.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A hash of (seed, index, field) for per-user attributes.
fn h(seed: u64, index: u64, field: u64) -> u64 {
    mix(mix(seed ^ mix(index.wrapping_add(0x1234_5678))) ^ field.wrapping_mul(0xA24B_AED4_963E_E407))
}

const FIRST: [&str; 40] = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Ken",
    "Dennis",
    "Margaret",
    "Frances",
    "Donald",
    "Leslie",
    "Radia",
    "Niklaus",
    "Tony",
    "Edith",
    "Hedy",
    "Katherine",
    "Dorothy",
    "Claude",
    "John",
];
const LAST: [&str; 40] = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
];
/// Non-ASCII names with the ASCII spelling used in uid and mail.
const FIRST_INTL: [(&str, &str); 16] = [
    ("Jürgen", "juergen"),
    ("Zoë", "zoe"),
    ("José", "jose"),
    ("Åsa", "asa"),
    ("Łukasz", "lukasz"),
    ("Søren", "soren"),
    ("François", "francois"),
    ("Björn", "bjorn"),
    ("Ólafur", "olafur"),
    ("Dağhan", "daghan"),
    ("Иван", "ivan"),
    ("Ελένη", "eleni"),
    ("李", "li"),
    ("美咲", "misaki"),
    ("Nguyễn", "nguyen"),
    ("Renée", "renee"),
];
const LAST_INTL: [(&str, &str); 16] = [
    ("Müller", "mueller"),
    ("Núñez", "nunez"),
    ("Øvergård", "overgard"),
    ("Wójcik", "wojcik"),
    ("Šimková", "simkova"),
    ("Großmann", "grossmann"),
    ("Çelik", "celik"),
    ("Dvořák", "dvorak"),
    ("Petrović", "petrovic"),
    ("Иванов", "ivanov"),
    ("Παπαδόπουλος", "papadopoulos"),
    ("王", "wang"),
    ("佐藤", "sato"),
    ("Trần", "tran"),
    ("Lefèvre", "lefevre"),
    ("Håkansson", "hakansson"),
];
const TITLES: [&str; 12] = [
    "Engineer",
    "Senior Engineer",
    "Accountant",
    "Sales Representative",
    "Support Analyst",
    "Project Manager",
    "Designer",
    "Office Manager",
    "Field Technician",
    "Director of Operations",
    "Recruiter",
    "Data Scientist",
];
/// Organizations with their share of users (in percent) and mail domain.
const ORGS: [(&str, u64, &str); 5] = [
    ("Acme", 40, "acme.example"),
    ("Globex", 25, "globex.example"),
    ("Initech", 15, "initech.example"),
    ("Umbrella", 12, "umbrella.example"),
    ("Hooli", 8, "hooli.example"),
];
/// Named groups the bench mapping refers to (roles, assignments), created first.
pub const NAMED_GROUPS: [&str; 4] = ["helpdesk", "noc", "portal-users", "contractors"];
pub const SUFFIX: &str = "dc=example,dc=com";

/// One user as generated; every attribute follows from (seed, index, revision).
#[derive(Clone, Debug)]
pub struct User {
    pub index: u64,
    /// Bumped by an attribute edit.
    pub rev: u32,
    pub removed: bool,
}

#[derive(Clone, Debug)]
pub struct Group {
    pub index: u64,
    pub name: String,
    /// Member users by index into `Directory::users`.
    pub users: Vec<u32>,
    /// Nested member groups by index into `Directory::groups`.
    pub groups: Vec<u32>,
}

#[derive(Clone, Debug)]
pub struct Directory {
    pub seed: u64,
    /// Write slapcat's operational attributes (creatorsName, entryCSN, …) too; otherwise only
    /// `entryUUID`, as `ldapsearch -LLL '*' entryUUID` exports it.
    pub operational: bool,
    pub users: Vec<User>,
    pub groups: Vec<Group>,
}

/// The attributes of one user, computed on demand.
pub struct UserAttrs {
    pub uid: String,
    pub given: &'static str,
    pub sn: &'static str,
    pub org: usize,
    pub technician: bool,
    pub title: &'static str,
    pub phone: String,
    pub mobile: Option<String>,
    pub uuid: String,
    pub description: Option<String>,
}

impl Directory {
    /// `users` users and `groups` groups (at least the named ones, none for 0), sizes from 2 to 10,000
    /// (log-uniform, capped at the number of users), about 5% of groups nesting another.
    pub fn generate(seed: u64, users: u64, groups: u64) -> Directory {
        let users: Vec<User> = (0..users).map(|index| User { index, rev: 0, removed: false }).collect();
        let n = users.len() as u64;
        let mut rng = Rng::new(seed.wrapping_add(1));
        let mut out = Directory { seed, operational: false, users, groups: Vec::new() };
        let total = if groups == 0 { 0 } else { groups.max(NAMED_GROUPS.len() as u64) };
        for g in 0..total {
            let name = match NAMED_GROUPS.get(g as usize) {
                Some(n) => (*n).to_owned(),
                None => format!("grp-{g:05}"),
            };
            let size = if n < 2 {
                n
            } else {
                let max = 10_000f64.min(n as f64);
                ((2f64.ln() + rng.unit() * (max.ln() - 2f64.ln())).exp() as u64).clamp(2, n)
            };
            let members = sample(&mut rng, n, size);
            out.groups.push(Group { index: g, name, users: members, groups: Vec::new() });
        }
        // Nesting: about 5% of groups (at least one when there are enough) hold a later group.
        let nesting = if total >= 8 { (total / 20).max(1) } else { 0 };
        for _ in 0..nesting {
            let outer = rng.below(total - 1);
            let inner = outer + 1 + rng.below(total - outer - 1);
            let g = &mut out.groups[outer as usize];
            if !g.groups.contains(&(inner as u32)) {
                g.groups.push(inner as u32);
            }
        }
        out
    }

    /// The changed copy: `pct`% of users get an attribute edit, `pct/2`% are removed, `pct/2`%
    /// are added (each joining one group), and `pct/10`% of users move from one group to another.
    pub fn change(&mut self, pct: f64) {
        let n = self.users.len() as u64;
        if n == 0 {
            return;
        }
        let mut rng = Rng::new(self.seed.wrapping_add(2));
        let count = |share: f64| ((n as f64 * share / 100.0).round() as u64).max(1);
        for _ in 0..count(pct) {
            self.users[rng.below(n) as usize].rev += 1;
        }
        let mut removed = HashSet::new();
        for _ in 0..count(pct / 2.0) {
            let i = rng.below(n) as usize;
            self.users[i].removed = true;
            removed.insert(i as u32);
        }
        for g in &mut self.groups {
            g.users.retain(|u| !removed.contains(u));
        }
        let groups = self.groups.len() as u64;
        for k in 0..count(pct / 2.0) {
            let index = n + k;
            self.users.push(User { index, rev: 0, removed: false });
            if groups > 0 {
                let g = rng.below(groups) as usize;
                self.groups[g].users.push((self.users.len() - 1) as u32);
            }
        }
        if groups >= 2 {
            for _ in 0..count(pct / 10.0) {
                let from = rng.below(groups) as usize;
                if self.groups[from].users.len() <= 2 {
                    continue;
                }
                let at = rng.below(self.groups[from].users.len() as u64) as usize;
                let user = self.groups[from].users.swap_remove(at);
                let to = (from + 1 + rng.below(groups - 1) as usize) % groups as usize;
                if !self.groups[to].users.contains(&user) {
                    self.groups[to].users.push(user);
                }
            }
        }
    }

    pub fn attrs(&self, u: &User) -> UserAttrs {
        let (seed, i) = (self.seed, u.index);
        let intl = h(seed, i, 1).is_multiple_of(10);
        let (given, sn, given_ascii, sn_ascii) = if intl {
            let f = FIRST_INTL[(h(seed, i, 2) % 16) as usize];
            let l = LAST_INTL[(h(seed, i, 3) % 16) as usize];
            (f.0, l.0, f.1.to_owned(), l.1.to_owned())
        } else {
            let f = FIRST[(h(seed, i, 2) % 40) as usize];
            let l = LAST[(h(seed, i, 3) % 40) as usize];
            (f, l, f.to_ascii_lowercase(), l.to_ascii_lowercase())
        };
        let mut pick = h(seed, i, 4) % 100;
        let org = ORGS
            .iter()
            .position(|(_, share, _)| {
                let hit = pick < *share;
                pick = pick.saturating_sub(*share);
                hit
            })
            .unwrap_or(0);
        let technician = h(seed, i, 5) % 100 < 3;
        let rev = u.rev as u64;
        let title = TITLES[((h(seed, i, 6) + rev) % TITLES.len() as u64) as usize];
        let phone = format!("+1 555 {:03} {:04}", h(seed, i, 7) % 1000, (h(seed, i, 8) + rev * 7) % 10_000);
        let mobile =
            h(seed, i, 9).is_multiple_of(2).then(|| format!("+1 555 {:07}", h(seed, i, 10) % 10_000_000));
        let x = h(seed, i, 11);
        let y = h(seed, i, 12);
        let uuid = format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            x >> 32,
            (x >> 16) & 0xffff,
            x & 0xfff,
            0x8000 | (y >> 48) & 0x3fff,
            y & 0xffff_ffff_ffff
        );
        let description = h(seed, i, 13).is_multiple_of(5).then(|| {
            format!(
                "{} at {}, building {}, floor {}; joined in {}; reports to the {} team lead; \
                 badge {:08}",
                title,
                ORGS[org].0,
                h(seed, i, 14) % 40,
                h(seed, i, 15) % 12,
                2000 + h(seed, i, 16) % 25,
                TITLES[(h(seed, i, 17) % 12) as usize],
                h(seed, i, 18) % 100_000_000
            )
        });
        UserAttrs {
            uid: format!("{given_ascii}.{sn_ascii}{i}"),
            given,
            sn,
            org,
            technician,
            title,
            phone,
            mobile,
            uuid,
            description,
        }
    }

    pub fn user_dn(&self, a: &UserAttrs) -> String {
        format!("uid={},ou=people,o={},{SUFFIX}", a.uid, ORGS[a.org].0.to_ascii_lowercase())
    }

    pub fn mail(a: &UserAttrs) -> String {
        format!("{}@{}", a.uid, ORGS[a.org].2)
    }

    pub fn group_dn(g: &Group) -> String {
        format!("cn={},ou=groups,{SUFFIX}", g.name)
    }

    pub fn group_uuid(&self, g: &Group) -> String {
        let x = h(self.seed, g.index, 101);
        format!("{:08x}-0000-4000-8000-{:012x}", x >> 32, x & 0xffff_ffff_ffff)
    }

    /// Live users (not removed).
    pub fn live_users(&self) -> impl Iterator<Item = &User> {
        self.users.iter().filter(|u| !u.removed)
    }

    /// The groups each user belongs to, nested groups flattened (for CSV).
    fn user_groups(&self) -> Vec<Vec<u32>> {
        let mut out = vec![Vec::new(); self.users.len()];
        for (gi, _) in self.groups.iter().enumerate() {
            let mut seen = HashSet::new();
            let mut stack = vec![gi as u32];
            let mut members = HashSet::new();
            while let Some(g) = stack.pop() {
                if !seen.insert(g) {
                    continue;
                }
                members.extend(self.groups[g as usize].users.iter().copied());
                stack.extend(self.groups[g as usize].groups.iter().copied());
            }
            let mut members: Vec<u32> = members.into_iter().collect();
            members.sort_unstable();
            for u in members {
                out[u as usize].push(gi as u32);
            }
        }
        out
    }

    pub fn write_ldif(&self, w: &mut impl Write) -> io::Result<()> {
        let mut line = String::new();
        fn entry(w: &mut impl Write, line: &mut String, attrs: &[(&str, &str)]) -> io::Result<()> {
            for (name, value) in attrs {
                write_attr(w, line, name, value)?;
            }
            w.write_all(b"\n")
        }
        let ts = "20240115093000Z";
        let csn = "20240115093000.000000Z#000000#000#000000";
        let admin = format!("cn=admin,{SUFFIX}");
        let ops = |uuid: &str| -> [(&'static str, String); 6] {
            [
                ("entryUUID", uuid.to_owned()),
                ("creatorsName", admin.clone()),
                ("createTimestamp", ts.to_owned()),
                ("entryCSN", csn.to_owned()),
                ("modifiersName", admin.clone()),
                ("modifyTimestamp", ts.to_owned()),
            ]
        };
        if !self.operational {
            w.write_all(b"version: 1\n\n")?;
        }
        entry(
            w,
            &mut line,
            &[("dn", SUFFIX), ("objectClass", "top"), ("objectClass", "domain"), ("dc", "example")],
        )?;
        for (org, _, _) in ORGS {
            let dn = format!("o={},{SUFFIX}", org.to_ascii_lowercase());
            entry(w, &mut line, &[("dn", &dn), ("objectClass", "organization"), ("o", org)])?;
            let dn = format!("ou=people,{dn}");
            entry(w, &mut line, &[("dn", &dn), ("objectClass", "organizationalUnit"), ("ou", "people")])?;
        }
        let groups_dn = format!("ou=groups,{SUFFIX}");
        entry(w, &mut line, &[("dn", &groups_dn), ("objectClass", "organizationalUnit"), ("ou", "groups")])?;
        let mut attrs: Vec<(&str, String)> = Vec::with_capacity(32);
        for u in self.live_users() {
            let a = self.attrs(u);
            attrs.clear();
            let cn = format!("{} {}", a.given, a.sn);
            attrs.push(("dn", self.user_dn(&a)));
            for oc in ["top", "person", "organizationalPerson", "inetOrgPerson"] {
                attrs.push(("objectClass", oc.to_owned()));
            }
            attrs.push(("uid", a.uid.clone()));
            attrs.push(("cn", cn.clone()));
            attrs.push(("sn", a.sn.to_owned()));
            attrs.push(("givenName", a.given.to_owned()));
            attrs.push(("displayName", cn));
            attrs.push(("mail", Self::mail(&a)));
            attrs.push(("title", a.title.to_owned()));
            attrs.push(("o", ORGS[a.org].0.to_owned()));
            attrs.push(("employeeType", if a.technician { "technician" } else { "staff" }.to_owned()));
            attrs.push(("telephoneNumber", a.phone.clone()));
            if let Some(m) = &a.mobile {
                attrs.push(("mobile", m.clone()));
            }
            if let Some(d) = &a.description {
                attrs.push(("description", d.clone()));
            }
            if self.operational {
                attrs.push(("structuralObjectClass", "inetOrgPerson".to_owned()));
                attrs.extend(ops(&a.uuid));
            } else {
                attrs.push(("entryUUID", a.uuid.clone()));
            }
            for (name, value) in &attrs {
                write_attr(w, &mut line, name, value)?;
            }
            w.write_all(b"\n")?;
        }
        for g in &self.groups {
            attrs.clear();
            attrs.push(("dn", Self::group_dn(g)));
            attrs.push(("objectClass", "top".to_owned()));
            attrs.push(("objectClass", "groupOfNames".to_owned()));
            attrs.push(("cn", g.name.clone()));
            attrs.push(("description", format!("Group {} ({} direct members)", g.name, g.users.len())));
            for &m in &g.users {
                let a = self.attrs(&self.users[m as usize]);
                attrs.push(("member", self.user_dn(&a)));
            }
            for &m in &g.groups {
                attrs.push(("member", Self::group_dn(&self.groups[m as usize])));
            }
            if self.operational {
                attrs.push(("structuralObjectClass", "groupOfNames".to_owned()));
                attrs.extend(ops(&self.group_uuid(g)));
            } else {
                attrs.push(("entryUUID", self.group_uuid(g)));
            }
            for (name, value) in &attrs {
                write_attr(w, &mut line, name, value)?;
            }
            w.write_all(b"\n")?;
        }
        Ok(())
    }

    pub fn write_csv(&self, w: &mut impl Write) -> io::Result<()> {
        let groups = self.user_groups();
        writeln!(
            w,
            "id,userName,givenName,familyName,displayName,title,email,phone,mobile,employeeType,o,groups"
        )?;
        for (i, u) in self.users.iter().enumerate() {
            if u.removed {
                continue;
            }
            let a = self.attrs(u);
            let names: Vec<&str> = groups[i].iter().map(|&g| self.groups[g as usize].name.as_str()).collect();
            let mail = Self::mail(&a);
            writeln!(
                w,
                "{},{},{},{},{} {},{},{},{},{},{},{},{}",
                a.uuid,
                mail,
                a.given,
                a.sn,
                a.given,
                a.sn,
                a.title,
                mail,
                a.phone,
                a.mobile.as_deref().unwrap_or(""),
                if a.technician { "technician" } else { "staff" },
                ORGS[a.org].0,
                names.join(";")
            )?;
        }
        Ok(())
    }

    /// JSON Lines: one SCIM User or Group per line; groups name members by resource id.
    pub fn write_json(&self, w: &mut impl Write) -> io::Result<()> {
        for u in self.live_users() {
            let a = self.attrs(u);
            let mail = Self::mail(&a);
            let mut phones = vec![serde_json::json!({"value": a.phone, "type": "work"})];
            if let Some(m) = &a.mobile {
                phones.push(serde_json::json!({"value": m, "type": "mobile"}));
            }
            let doc = serde_json::json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "id": a.uuid,
                "userName": mail,
                "name": {"givenName": a.given, "familyName": a.sn},
                "displayName": format!("{} {}", a.given, a.sn),
                "title": a.title,
                "emails": [{"value": mail, "type": "work", "primary": true}],
                "phoneNumbers": phones,
                "active": true,
                "employeeType": if a.technician { "technician" } else { "staff" },
                "o": ORGS[a.org].0,
            });
            serde_json::to_writer(&mut *w, &doc)?;
            w.write_all(b"\n")?;
        }
        for g in &self.groups {
            let mut members: Vec<serde_json::Value> = g
                .users
                .iter()
                .map(|&m| serde_json::json!({"value": self.attrs(&self.users[m as usize]).uuid}))
                .collect();
            members.extend(
                g.groups
                    .iter()
                    .map(|&m| serde_json::json!({"value": self.group_uuid(&self.groups[m as usize])})),
            );
            let doc = serde_json::json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "id": self.group_uuid(g),
                "displayName": g.name,
                "members": members,
            });
            serde_json::to_writer(&mut *w, &doc)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    }
}

/// `size` distinct indices below `n`, in the order drawn.
fn sample(rng: &mut Rng, n: u64, size: u64) -> Vec<u32> {
    let mut seen = HashSet::with_capacity(size as usize);
    let mut out = Vec::with_capacity(size as usize);
    while (out.len() as u64) < size {
        let i = rng.below(n) as u32;
        if seen.insert(i) {
            out.push(i);
        }
    }
    out
}

/// Writes `name: value` (or `name:: base64` when the value is not safe as plain text), folded at
/// 76 columns like slapcat.
fn write_attr(w: &mut (impl Write + ?Sized), line: &mut String, name: &str, value: &str) -> io::Result<()> {
    use base64::Engine as _;
    line.clear();
    line.push_str(name);
    let safe = value.bytes().all(|b| (0x20..0x7f).contains(&b))
        && !value.starts_with([' ', ':', '<'])
        && !value.ends_with(' ');
    if safe {
        line.push_str(": ");
        line.push_str(value);
    } else {
        line.push_str(":: ");
        base64::engine::general_purpose::STANDARD.encode_string(value, line);
    }
    let bytes = line.as_bytes();
    const WIDTH: usize = 76;
    if bytes.len() <= WIDTH {
        w.write_all(bytes)?;
        return w.write_all(b"\n");
    }
    w.write_all(&bytes[..WIDTH])?;
    w.write_all(b"\n")?;
    for chunk in bytes[WIDTH..].chunks(WIDTH - 1) {
        w.write_all(b" ")?;
        w.write_all(chunk)?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

//! How directory entries are read as users and groups: the defaults, and the `[source]` keys
//! that replace them.

use crate::section::ConfigErrors;
use crate::source::RawSource;

/// How directory entries are read as users and groups (SPEC §2 defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryRules {
    pub group_classes: Vec<String>,
    pub member_attributes: Vec<String>,
    pub user_name_attributes: Vec<String>,
    pub key_attributes: Vec<String>,
    pub group_name_attribute: String,
    /// Whether AD `contact` objects (address-book entries with a mail) are read as users.
    pub include_contacts: bool,
}

impl Default for DirectoryRules {
    fn default() -> Self {
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect();
        DirectoryRules {
            group_classes: v(&["groupOfNames", "groupOfUniqueNames", "posixGroup", "group"]),
            member_attributes: v(&["member", "uniqueMember", "memberUid"]),
            user_name_attributes: v(&["mail", "userPrincipalName"]),
            key_attributes: v(&["entryUUID", "nsUniqueId", "objectGUID"]),
            group_name_attribute: "cn".into(),
            include_contacts: false,
        }
    }
}

impl DirectoryRules {
    /// The defaults with what `[source]` sets instead; an empty list is a problem.
    pub(crate) fn from_section(s: &RawSource, errors: &mut ConfigErrors) -> DirectoryRules {
        let mut directory = DirectoryRules::default();
        macro_rules! set_list {
            ($field:ident, $key:literal) => {
                if let Some(v) = &s.$field {
                    if v.is_empty() {
                        errors.push($key, "must not be empty");
                    }
                    directory.$field = v.clone();
                }
            };
        }
        set_list!(group_classes, "source.group_classes");
        set_list!(member_attributes, "source.member_attributes");
        set_list!(user_name_attributes, "source.user_name_attributes");
        set_list!(key_attributes, "source.key_attributes");
        if let Some(g) = &s.group_name_attribute {
            directory.group_name_attribute = g.clone();
        }
        directory.include_contacts = s.include_contacts.unwrap_or(false);
        directory
    }
}

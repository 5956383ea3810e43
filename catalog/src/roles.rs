//! Roles, users and privileges, as PostgreSQL models them: a user is a role that may log in; a
//! role may be a member of other roles and holds their privileges; privileges are granted on
//! relations (tables and views) and schemas to roles or to `PUBLIC`.
//!
//! This module only stores and answers questions about them; the engine enforces them.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{CatalogState, Error, ObjectKind, Result};

/// The pseudo-role every role belongs to (`GRANT ... TO PUBLIC`).
pub const PUBLIC_ROLE: &str = "public";

/// The schema of Kura's audit trail: written by the engine only (see [`crate::Catalog::commit_system`]),
/// read by auditors and operators whatever the grants say.
pub const AUDIT_SCHEMA: &str = "audit";

/// A role or user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleEntry {
    /// Role name (already normalised by the engine).
    pub name: String,
    /// Whether the role may log in (a user).
    #[serde(default)]
    pub login: bool,
    /// Superusers pass every privilege check. Not inherited through membership.
    #[serde(default)]
    pub superuser: bool,
    /// Operators work in the identity zone: they read identity columns and see persons who
    /// opted out. Unlike `superuser`, inherited by the role's members.
    #[serde(default)]
    pub operator: bool,
    /// Auditors read the audit trail (schema `audit`) and nothing else by that right. Inherited
    /// by the role's members.
    #[serde(default)]
    pub auditor: bool,
    /// SCRAM-SHA-256 verifier in PostgreSQL's format
    /// (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`), never the password.
    #[serde(default)]
    pub password: Option<String>,
    /// Roles this role is a member of.
    #[serde(default)]
    pub member_of: BTreeSet<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl RoleEntry {
    /// A new role created now, without login, password or memberships.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            login: false,
            superuser: false,
            operator: false,
            auditor: false,
            password: None,
            member_of: BTreeSet::new(),
            created_at: Utc::now(),
        }
    }
}

/// A privilege on a relation or a schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Privilege {
    /// Read rows of a table or view.
    Select,
    /// Add rows (INSERT, COPY FROM).
    Insert,
    /// Change rows.
    Update,
    /// Remove rows.
    Delete,
    /// Empty a table.
    Truncate,
    /// Look up objects in a schema (recorded for compatibility).
    Usage,
    /// Create objects in a schema.
    Create,
}

impl Privilege {
    /// What `ALL [PRIVILEGES]` means on a relation.
    pub const ON_RELATIONS: [Privilege; 5] =
        [Privilege::Select, Privilege::Insert, Privilege::Update, Privilege::Delete, Privilege::Truncate];
    /// What `ALL [PRIVILEGES]` means on a schema.
    pub const ON_SCHEMAS: [Privilege; 2] = [Privilege::Usage, Privilege::Create];

    /// Parses a privilege keyword (case-insensitive).
    pub fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_uppercase().as_str() {
            "SELECT" => Self::Select,
            "INSERT" => Self::Insert,
            "UPDATE" => Self::Update,
            "DELETE" => Self::Delete,
            "TRUNCATE" => Self::Truncate,
            "USAGE" => Self::Usage,
            "CREATE" => Self::Create,
            _ => return None,
        })
    }

    /// Whether the privilege applies to relations (as opposed to schemas).
    pub fn applies_to_relations(self) -> bool {
        Self::ON_RELATIONS.contains(&self)
    }
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Select => "SELECT",
            Self::Insert => "INSERT",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
            Self::Truncate => "TRUNCATE",
            Self::Usage => "USAGE",
            Self::Create => "CREATE",
        })
    }
}

/// What a privilege is granted on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum GrantObject {
    /// A table or a view.
    Relation {
        /// Its schema.
        schema: String,
        /// Its name.
        name: String,
    },
    /// A schema.
    Schema {
        /// Its name.
        name: String,
    },
}

impl GrantObject {
    /// The schema the object is in (or is).
    pub fn schema(&self) -> &str {
        match self {
            Self::Relation { schema, .. } => schema,
            Self::Schema { name } => name,
        }
    }
}

impl fmt::Display for GrantObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Relation { schema, name } => write!(f, "{schema}.{name}"),
            Self::Schema { name } => write!(f, "schema {name}"),
        }
    }
}

/// One privilege held by one role on one object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Grant {
    /// The role holding it (or [`PUBLIC_ROLE`]).
    pub grantee: String,
    /// The privilege.
    pub privilege: Privilege,
    /// The object.
    pub object: GrantObject,
}

impl CatalogState {
    /// A role by name.
    pub fn role(&self, name: &str) -> Result<&RoleEntry> {
        self.roles.get(name).ok_or_else(|| Error::NotFound { kind: ObjectKind::Role, name: name.into() })
    }

    /// Mutable access to a role by name.
    pub fn role_mut(&mut self, name: &str) -> Result<&mut RoleEntry> {
        self.roles.get_mut(name).ok_or_else(|| Error::NotFound { kind: ObjectKind::Role, name: name.into() })
    }

    /// Adds a role. With `if_not_exists`, an existing role is not an error.
    pub fn create_role(&mut self, entry: RoleEntry, if_not_exists: bool) -> Result<()> {
        if entry.name == PUBLIC_ROLE || entry.name.starts_with("pg_") {
            return Err(Error::Invalid(format!("role name \"{}\" is reserved", entry.name)));
        }
        if self.roles.contains_key(&entry.name) {
            return if if_not_exists {
                Ok(())
            } else {
                Err(Error::AlreadyExists { kind: ObjectKind::Role, name: entry.name })
            };
        }
        for parent in &entry.member_of {
            self.role(parent)?;
        }
        self.roles.insert(entry.name.clone(), entry);
        Ok(())
    }

    /// Removes a role with its grants and memberships. The last superuser that can log in cannot
    /// be dropped, so the warehouse never locks its operators out.
    pub fn drop_role(&mut self, name: &str) -> Result<RoleEntry> {
        let entry = self.role(name)?.clone();
        if entry.superuser && entry.login {
            let others = self.roles.values().filter(|r| r.superuser && r.login && r.name != name).count();
            if others == 0 {
                return Err(Error::Invalid(format!(
                    "cannot drop role \"{name}\": it is the last superuser that can log in"
                )));
            }
        }
        let owned: Vec<&str> = self.policies.values().filter(|p| p.owner == name).map(|p| p.name.as_str()).collect();
        if !owned.is_empty() {
            return Err(Error::Invalid(format!(
                "cannot drop role \"{name}\": it owns policies {}; drop or replace them first",
                owned.join(", ")
            )));
        }
        self.roles.remove(name);
        for role in self.roles.values_mut() {
            role.member_of.remove(name);
        }
        self.grants.retain(|g| g.grantee != name);
        Ok(entry)
    }

    /// Makes `member` a member of `role`.
    pub fn grant_role(&mut self, role: &str, member: &str) -> Result<()> {
        self.role(role)?;
        self.role(member)?;
        if role == member || self.effective_roles(role).contains(member) {
            return Err(Error::Invalid(format!(
                "role \"{member}\" cannot be a member of \"{role}\": memberships would form a cycle"
            )));
        }
        self.role_mut(member)?.member_of.insert(role.to_string());
        Ok(())
    }

    /// Ends `member`'s membership in `role` (no error if it was not a member).
    pub fn revoke_role(&mut self, role: &str, member: &str) -> Result<()> {
        self.role(role)?;
        self.role_mut(member)?.member_of.remove(role);
        Ok(())
    }

    /// Records a grant after checking that the grantee and the object exist.
    pub fn grant(&mut self, grant: Grant) -> Result<()> {
        if grant.grantee != PUBLIC_ROLE {
            self.role(&grant.grantee)?;
        }
        match &grant.object {
            GrantObject::Relation { schema, name } => {
                let s = self.schema(schema)?;
                if !s.tables.contains_key(name) && !s.views.contains_key(name) {
                    return Err(Error::NotFound { kind: ObjectKind::Relation, name: format!("{schema}.{name}") });
                }
            }
            GrantObject::Schema { name } => {
                self.schema(name)?;
            }
        }
        self.grants.insert(grant);
        Ok(())
    }

    /// Removes a grant (no error if it was not held).
    pub fn revoke(&mut self, grant: &Grant) -> Result<()> {
        if grant.grantee != PUBLIC_ROLE {
            self.role(&grant.grantee)?;
        }
        self.grants.remove(grant);
        Ok(())
    }

    pub(crate) fn forget_relation_grants(&mut self, schema: &str, name: &str) {
        self.grants.retain(|g| {
            !matches!(&g.object, GrantObject::Relation { schema: s, name: n } if s == schema && n == name)
        });
    }

    /// `user` and every role it belongs to, directly or through other roles, plus `PUBLIC`.
    pub fn effective_roles(&self, user: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::from([PUBLIC_ROLE.to_string()]);
        let mut stack = vec![user.to_string()];
        while let Some(name) = stack.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            if let Some(role) = self.roles.get(&name) {
                stack.extend(role.member_of.iter().cloned());
            }
        }
        seen
    }

    /// Whether `user` is a superuser.
    pub fn is_superuser(&self, user: &str) -> bool {
        self.roles.get(user).is_some_and(|r| r.superuser)
    }

    /// Whether `user` works in the identity zone: a superuser, or (a member of) an operator role.
    pub fn is_operator(&self, user: &str) -> bool {
        self.is_superuser(user) || self.effective_roles(user).iter().any(|r| self.roles.get(r).is_some_and(|e| e.operator))
    }

    /// Whether `user` may read the audit trail: a superuser, an operator, or (a member of) an
    /// auditor role.
    pub fn is_auditor(&self, user: &str) -> bool {
        self.is_operator(user) || self.effective_roles(user).iter().any(|r| self.roles.get(r).is_some_and(|e| e.auditor))
    }

    fn relation_owner(&self, schema: &str, name: &str) -> Option<&str> {
        let s = self.schemas.get(schema)?;
        s.tables.get(name).map(|t| t.owner.as_str()).or_else(|| s.views.get(name).map(|v| v.owner.as_str()))
    }

    /// Whether `user` holds `privilege` on the relation `schema.name`: as a superuser, as (a member
    /// of) its owner, or through a grant to one of its roles or to `PUBLIC`.
    ///
    /// The audit trail (schema [`AUDIT_SCHEMA`]) ignores grants and ownership: auditors and
    /// operators may read it, nobody may write it.
    pub fn has_relation_privilege(&self, user: &str, privilege: Privilege, schema: &str, name: &str) -> bool {
        if schema == AUDIT_SCHEMA {
            return privilege == Privilege::Select && self.is_auditor(user);
        }
        if self.is_superuser(user) {
            return true;
        }
        let roles = self.effective_roles(user);
        if self.relation_owner(schema, name).is_some_and(|o| !o.is_empty() && roles.contains(o)) {
            return true;
        }
        self.grants.iter().any(|g| {
            g.privilege == privilege
                && roles.contains(&g.grantee)
                && matches!(&g.object, GrantObject::Relation { schema: s, name: n } if s == schema && n == name)
        })
    }

    /// Whether `user` holds any privilege on `schema.name` (whether it may see it in listings).
    pub fn can_see_relation(&self, user: &str, schema: &str, name: &str) -> bool {
        Privilege::ON_RELATIONS.iter().any(|p| self.has_relation_privilege(user, *p, schema, name))
    }

    /// Whether `user` holds `privilege` on a schema.
    pub fn has_schema_privilege(&self, user: &str, privilege: Privilege, schema: &str) -> bool {
        if schema == AUDIT_SCHEMA {
            return privilege == Privilege::Usage && self.is_auditor(user);
        }
        if self.is_superuser(user) {
            return true;
        }
        let roles = self.effective_roles(user);
        self.grants.iter().any(|g| {
            g.privilege == privilege
                && roles.contains(&g.grantee)
                && matches!(&g.object, GrantObject::Schema { name } if name == schema)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SchemaEntry, TableEntry};

    fn state() -> CatalogState {
        let mut s = CatalogState::default();
        s.create_schema(SchemaEntry::new("claims"), false).unwrap();
        s.create_table("claims", TableEntry::new("medical", vec![])).unwrap();
        s.create_table("claims", TableEntry::new("dental", vec![])).unwrap();
        let mut admin = RoleEntry::new("kura");
        admin.superuser = true;
        admin.login = true;
        s.create_role(admin, false).unwrap();
        s.create_role(RoleEntry::new("analyst"), false).unwrap();
        let mut alice = RoleEntry::new("alice");
        alice.login = true;
        s.create_role(alice, false).unwrap();
        s
    }

    fn select_on(grantee: &str, name: &str) -> Grant {
        Grant {
            grantee: grantee.into(),
            privilege: Privilege::Select,
            object: GrantObject::Relation { schema: "claims".into(), name: name.into() },
        }
    }

    #[test]
    fn privileges_flow_through_role_membership_only() {
        let mut s = state();
        s.grant(select_on("analyst", "medical")).unwrap();
        assert!(!s.has_relation_privilege("alice", Privilege::Select, "claims", "medical"));
        s.grant_role("analyst", "alice").unwrap();
        assert!(s.has_relation_privilege("alice", Privilege::Select, "claims", "medical"));
        assert!(!s.has_relation_privilege("alice", Privilege::Insert, "claims", "medical"));
        assert!(!s.has_relation_privilege("alice", Privilege::Select, "claims", "dental"));
        assert!(s.can_see_relation("alice", "claims", "medical"));
        assert!(!s.can_see_relation("alice", "claims", "dental"));
        assert!(s.has_relation_privilege("kura", Privilege::Delete, "claims", "dental"));
        // An unknown user holds nothing, even though it is not in the catalog.
        assert!(!s.has_relation_privilege("mallory", Privilege::Select, "claims", "medical"));
        s.revoke_role("analyst", "alice").unwrap();
        assert!(!s.has_relation_privilege("alice", Privilege::Select, "claims", "medical"));
    }

    #[test]
    fn grants_to_public_reach_everyone_and_vanish_with_the_table() {
        let mut s = state();
        s.grant(select_on(PUBLIC_ROLE, "dental")).unwrap();
        assert!(s.has_relation_privilege("alice", Privilege::Select, "claims", "dental"));
        s.drop_table("claims", "dental").unwrap();
        s.create_table("claims", TableEntry::new("dental", vec![])).unwrap();
        // A new table of the same name does not inherit the old one's grants.
        assert!(!s.has_relation_privilege("alice", Privilege::Select, "claims", "dental"));
    }

    #[test]
    fn membership_cycles_unknown_objects_and_the_last_superuser_are_refused() {
        let mut s = state();
        s.grant_role("analyst", "alice").unwrap();
        assert!(s.grant_role("alice", "analyst").is_err());
        assert!(s.grant_role("alice", "alice").is_err());
        assert!(matches!(s.grant(select_on("analyst", "nope")), Err(Error::NotFound { .. })));
        assert!(matches!(s.grant(select_on("nobody", "medical")), Err(Error::NotFound { .. })));
        assert!(s.drop_role("kura").is_err());
        assert!(s.create_role(RoleEntry::new("public"), false).is_err());
        s.grant(select_on("analyst", "medical")).unwrap();
        s.drop_role("analyst").unwrap();
        assert!(s.grants.is_empty());
        assert!(s.role("alice").unwrap().member_of.is_empty());
    }
}

//! Policy definitions and where they are attached. Policies are stored here and enforced by the
//! engine (`kura-engine`'s `policy` module); this module only keeps them consistent:
//! - a policy name is unique in the warehouse, whatever its kind;
//! - a policy attached to a table cannot be dropped or replaced by one of another kind (detach it
//!   first), so a table never refers to a missing policy;
//! - dropping a table or a column's attachment never leaves a dangling reference.
//!
//! A policy is a small SQL function: parameters bound to columns of the table it is attached to,
//! and a body expression that may also use the querying user's identity (`current_user`,
//! `is_member('role')`) and, for row filters, subqueries over other tables (read with the
//! policy owner's rights).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{CatalogState, Error, ObjectKind, Result};

/// What a policy does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    /// A column is shown through the body's value (`CREATE MASKING POLICY`).
    Masking,
    /// Rows are visible only where the body is true (`CREATE ROW ACCESS POLICY`).
    RowAccess,
    /// The column may be used at all only where the body is true (`CREATE PROJECTION POLICY`).
    Projection,
    /// Results must be aggregated over groups of at least the body's value of distinct entities
    /// (`CREATE AGGREGATION POLICY`).
    Aggregation,
}

impl PolicyKind {
    /// The SQL words naming the kind (`ROW ACCESS`).
    pub fn sql(self) -> &'static str {
        match self {
            Self::Masking => "MASKING",
            Self::RowAccess => "ROW ACCESS",
            Self::Projection => "PROJECTION",
            Self::Aggregation => "AGGREGATION",
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Masking => "masking policy",
            Self::RowAccess => "row access policy",
            Self::Projection => "projection policy",
            Self::Aggregation => "aggregation policy",
        })
    }
}

/// A parameter of a policy: a name the body uses and its SQL type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyParam {
    /// Name used in the body (normalised).
    pub name: String,
    /// SQL type as written (`DATE`, `TEXT`).
    pub sql_type: String,
}

/// A policy definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyEntry {
    /// Name, unique in the warehouse.
    pub name: String,
    /// Kind.
    pub kind: PolicyKind,
    /// Parameters, bound to columns where the policy is attached.
    #[serde(default)]
    pub params: Vec<PolicyParam>,
    /// SQL type of the body's value.
    pub returns: String,
    /// The body: one SQL expression, as written.
    pub body: String,
    /// Who created it; subqueries in the body read tables with this role's rights.
    pub owner: String,
    /// When it was created or last replaced.
    pub created_at: DateTime<Utc>,
    /// Free text for reviewers (`COMMENT '...'`).
    #[serde(default)]
    pub comment: String,
}

/// A row access policy attached to a table, with the columns bound to its parameters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RowFilterAttachment {
    /// The policy.
    pub policy: String,
    /// Columns passed to its parameters, in order.
    pub columns: Vec<String>,
}

/// A masking policy on one column; `using` lists the columns passed to its parameters (the
/// masked column first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskAttachment {
    /// The policy.
    pub policy: String,
    /// Columns passed to its parameters, in order; the first is the masked column.
    pub using: Vec<String>,
}

/// An aggregation policy on a table: groups are counted in distinct values of `entity_key`
/// (a person's research ID), not in rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggregationAttachment {
    /// The policy.
    pub policy: String,
    /// The columns identifying one entity (person). Empty: rows are counted.
    #[serde(default)]
    pub entity_key: Vec<String>,
}

/// Policies attached to one table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TablePolicies {
    /// Masks by column.
    #[serde(default)]
    pub masks: BTreeMap<String, MaskAttachment>,
    /// Row filters; a row is visible when every one of them is true.
    #[serde(default)]
    pub row_filters: Vec<RowFilterAttachment>,
    /// Projection policies by column.
    #[serde(default)]
    pub projections: BTreeMap<String, String>,
    /// The aggregation policy, if any.
    #[serde(default)]
    pub aggregation: Option<AggregationAttachment>,
}

impl TablePolicies {
    /// Whether no policy is attached.
    pub fn is_empty(&self) -> bool {
        self.masks.is_empty() && self.row_filters.is_empty() && self.projections.is_empty() && self.aggregation.is_none()
    }

    /// Names of the attached policies.
    pub fn policy_names(&self) -> impl Iterator<Item = &str> {
        self.masks
            .values()
            .map(|m| m.policy.as_str())
            .chain(self.row_filters.iter().map(|r| r.policy.as_str()))
            .chain(self.projections.values().map(String::as_str))
            .chain(self.aggregation.iter().map(|a| a.policy.as_str()))
    }
}

/// A change to the policies of one table (`ALTER TABLE ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyAttachment {
    /// `ALTER COLUMN c SET MASKING POLICY p [USING (c, ...)]`.
    SetMask {
        /// The masked column.
        column: String,
        /// The attachment.
        mask: MaskAttachment,
    },
    /// `ALTER COLUMN c UNSET MASKING POLICY`.
    UnsetMask {
        /// The column.
        column: String,
    },
    /// `ADD ROW ACCESS POLICY p ON (c, ...)`.
    AddRowFilter(RowFilterAttachment),
    /// `DROP ROW ACCESS POLICY p`.
    DropRowFilter {
        /// The policy.
        policy: String,
    },
    /// `ALTER COLUMN c SET PROJECTION POLICY p`.
    SetProjection {
        /// The column.
        column: String,
        /// The policy.
        policy: String,
    },
    /// `ALTER COLUMN c UNSET PROJECTION POLICY`.
    UnsetProjection {
        /// The column.
        column: String,
    },
    /// `SET AGGREGATION POLICY p [ENTITY KEY (c)]`.
    SetAggregation(AggregationAttachment),
    /// `UNSET AGGREGATION POLICY`.
    UnsetAggregation,
}

impl CatalogState {
    /// A policy by name.
    pub fn policy(&self, name: &str) -> Result<&PolicyEntry> {
        self.policies.get(name).ok_or_else(|| Error::NotFound { kind: ObjectKind::Policy, name: name.into() })
    }

    /// Tables (`schema.name`) a policy is attached to.
    pub fn policy_uses(&self, name: &str) -> Vec<String> {
        let mut uses = Vec::new();
        for (s, schema) in &self.schemas {
            for (t, table) in &schema.tables {
                if table.policies.policy_names().any(|p| p == name) {
                    uses.push(format!("{s}.{t}"));
                }
            }
        }
        uses
    }

    /// Adds a policy; with `or_replace` an existing policy of the same kind is replaced (its
    /// attachments then use the new body).
    pub fn create_policy(&mut self, entry: PolicyEntry, or_replace: bool) -> Result<()> {
        if let Some(old) = self.policies.get(&entry.name) {
            if !or_replace {
                return Err(Error::AlreadyExists { kind: ObjectKind::Policy, name: entry.name });
            }
            if old.kind != entry.kind {
                return Err(Error::Invalid(format!(
                    "\"{}\" is a {}, not a {}; drop it first",
                    entry.name, old.kind, entry.kind
                )));
            }
            if old.params.len() != entry.params.len() && !self.policy_uses(&entry.name).is_empty() {
                return Err(Error::Invalid(format!(
                    "{} \"{}\" is attached with {} column(s); a replacement must take as many parameters",
                    old.kind,
                    entry.name,
                    old.params.len()
                )));
            }
        }
        self.policies.insert(entry.name.clone(), entry);
        Ok(())
    }

    /// Removes a policy; an attached policy is refused with the tables it is attached to.
    pub fn drop_policy(&mut self, name: &str) -> Result<PolicyEntry> {
        let entry = self.policy(name)?.clone();
        let uses = self.policy_uses(name);
        if !uses.is_empty() {
            return Err(Error::Invalid(format!(
                "cannot drop {} \"{name}\": it is attached to {}; detach it first",
                entry.kind,
                uses.join(", ")
            )));
        }
        self.policies.remove(name);
        Ok(entry)
    }

    fn expect_policy(&self, name: &str, kind: PolicyKind, columns: usize) -> Result<()> {
        let p = self.policy(name)?;
        if p.kind != kind {
            return Err(Error::Invalid(format!("\"{name}\" is a {}, not a {kind}", p.kind)));
        }
        if p.params.len() != columns {
            return Err(Error::Invalid(format!(
                "{kind} \"{name}\" takes {} parameter(s) but {columns} column(s) were given",
                p.params.len()
            )));
        }
        Ok(())
    }

    /// Changes the policies attached to table `schema.name`. Column names and types are checked
    /// by the engine, which knows the table's schema.
    pub fn attach_policy(&mut self, schema: &str, name: &str, change: PolicyAttachment) -> Result<()> {
        let not_set = |what: &str| Error::Invalid(format!("{what} is not set on {schema}.{name}"));
        match &change {
            PolicyAttachment::SetMask { mask, .. } => {
                self.expect_policy(&mask.policy, PolicyKind::Masking, mask.using.len())?
            }
            PolicyAttachment::AddRowFilter(rf) => self.expect_policy(&rf.policy, PolicyKind::RowAccess, rf.columns.len())?,
            PolicyAttachment::SetProjection { policy, .. } => self.expect_policy(policy, PolicyKind::Projection, 0)?,
            PolicyAttachment::SetAggregation(a) => self.expect_policy(&a.policy, PolicyKind::Aggregation, 0)?,
            _ => {}
        }
        let table = self
            .schemas
            .get_mut(schema)
            .and_then(|s| s.tables.get_mut(name))
            .ok_or_else(|| Error::NotFound { kind: ObjectKind::Table, name: format!("{schema}.{name}") })?;
        let policies = &mut table.policies;
        match change {
            PolicyAttachment::SetMask { column, mask } => {
                policies.masks.insert(column, mask);
            }
            PolicyAttachment::UnsetMask { column } => {
                policies.masks.remove(&column).ok_or_else(|| not_set(&format!("a masking policy on column \"{column}\"")))?;
            }
            PolicyAttachment::AddRowFilter(rf) => {
                if policies.row_filters.iter().any(|r| r.policy == rf.policy) {
                    return Err(Error::Invalid(format!(
                        "row access policy \"{}\" is already attached to {schema}.{name}",
                        rf.policy
                    )));
                }
                policies.row_filters.push(rf);
            }
            PolicyAttachment::DropRowFilter { policy } => {
                let before = policies.row_filters.len();
                policies.row_filters.retain(|r| r.policy != policy);
                if policies.row_filters.len() == before {
                    return Err(not_set(&format!("row access policy \"{policy}\"")));
                }
            }
            PolicyAttachment::SetProjection { column, policy } => {
                policies.projections.insert(column, policy);
            }
            PolicyAttachment::UnsetProjection { column } => {
                policies
                    .projections
                    .remove(&column)
                    .ok_or_else(|| not_set(&format!("a projection policy on column \"{column}\"")))?;
            }
            PolicyAttachment::SetAggregation(a) => policies.aggregation = Some(a),
            PolicyAttachment::UnsetAggregation => {
                policies.aggregation.take().ok_or_else(|| not_set("an aggregation policy"))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SchemaEntry, TableEntry};

    fn policy(name: &str, kind: PolicyKind, params: usize) -> PolicyEntry {
        PolicyEntry {
            name: name.into(),
            kind,
            params: (0..params).map(|i| PolicyParam { name: format!("p{i}"), sql_type: "TEXT".into() }).collect(),
            returns: "TEXT".into(),
            body: "p0".into(),
            owner: "kura".into(),
            created_at: Utc::now(),
            comment: String::new(),
        }
    }

    fn state() -> CatalogState {
        let mut s = CatalogState::default();
        s.create_schema(SchemaEntry::new("c"), false).unwrap();
        s.create_table("c", TableEntry::new("t", vec![])).unwrap();
        s
    }

    #[test]
    fn attached_policies_cannot_be_dropped_or_change_kind() {
        let mut s = state();
        s.create_policy(policy("m", PolicyKind::Masking, 1), false).unwrap();
        let mask = MaskAttachment { policy: "m".into(), using: vec!["a".into()] };
        s.attach_policy("c", "t", PolicyAttachment::SetMask { column: "a".into(), mask }).unwrap();
        let err = s.drop_policy("m").unwrap_err().to_string();
        assert!(err.contains("attached to c.t"), "{err}");
        assert!(s.create_policy(policy("m", PolicyKind::RowAccess, 1), true).is_err());
        assert!(s.create_policy(policy("m", PolicyKind::Masking, 2), true).is_err());
        s.create_policy(policy("m", PolicyKind::Masking, 1), true).unwrap();
        s.attach_policy("c", "t", PolicyAttachment::UnsetMask { column: "a".into() }).unwrap();
        s.drop_policy("m").unwrap();
        assert!(s.policies.is_empty());
    }

    #[test]
    fn attachments_check_kind_arity_and_duplicates() {
        let mut s = state();
        s.create_policy(policy("rf", PolicyKind::RowAccess, 1), false).unwrap();
        let rf = RowFilterAttachment { policy: "rf".into(), columns: vec!["a".into(), "b".into()] };
        assert!(s.attach_policy("c", "t", PolicyAttachment::AddRowFilter(rf)).is_err());
        let rf = RowFilterAttachment { policy: "rf".into(), columns: vec!["a".into()] };
        s.attach_policy("c", "t", PolicyAttachment::AddRowFilter(rf.clone())).unwrap();
        assert!(s.attach_policy("c", "t", PolicyAttachment::AddRowFilter(rf)).is_err());
        let mask = MaskAttachment { policy: "rf".into(), using: vec!["a".into()] };
        assert!(s.attach_policy("c", "t", PolicyAttachment::SetMask { column: "a".into(), mask }).is_err());
        assert!(s.attach_policy("c", "t", PolicyAttachment::UnsetAggregation).is_err());
        assert_eq!(s.policy_uses("rf"), vec!["c.t".to_string()]);
        // Dropping the table takes its attachments with it.
        s.drop_table("c", "t").unwrap();
        s.drop_policy("rf").unwrap();
    }
}

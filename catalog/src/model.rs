//! The catalog's content. Every field that later issues add must be `#[serde(default)]` so that
//! older commits stay readable.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Error, ObjectKind, Result};

/// The whole catalog at one version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CatalogState {
    /// Schemas by name; each holds its tables and views.
    #[serde(default)]
    pub schemas: BTreeMap<String, SchemaEntry>,
    /// Roles and users by name.
    #[serde(default)]
    pub roles: BTreeMap<String, crate::RoleEntry>,
    /// Privileges granted on tables, views and schemas.
    #[serde(default)]
    pub grants: BTreeSet<crate::Grant>,
    /// Policy definitions by name (attachments live on each table).
    #[serde(default)]
    pub policies: BTreeMap<String, crate::PolicyEntry>,
    /// Sources declared for research-ID linkage, by name.
    #[serde(default)]
    pub linkage_sources: BTreeMap<String, crate::LinkageSourceEntry>,
}

/// A schema (namespace) and the relations in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaEntry {
    /// Schema name (already normalised by the engine).
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Tables by name.
    #[serde(default)]
    pub tables: BTreeMap<String, TableEntry>,
    /// Views by name.
    #[serde(default)]
    pub views: BTreeMap<String, ViewEntry>,
}

impl SchemaEntry {
    /// A new, empty schema created now.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), created_at: Utc::now(), tables: BTreeMap::new(), views: BTreeMap::new() }
    }

    fn relation_count(&self) -> usize {
        self.tables.len() + self.views.len()
    }
}

/// A table: a name bound to one Delta table directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableEntry {
    /// Stable identity; the directory is named after it, so a dropped and re-created table never
    /// shares files with its predecessor.
    pub id: Uuid,
    /// Table name.
    pub name: String,
    /// Delta table directory relative to the warehouse prefix (`tables/<id>`).
    pub location: String,
    /// Partition columns, in order.
    #[serde(default)]
    pub partition_columns: Vec<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// The role that created it; it holds every privilege on it. Empty for tables made before
    /// roles existed (only superusers reach those unless granted).
    #[serde(default)]
    pub owner: String,
    /// Policies attached to it.
    #[serde(default, skip_serializing_if = "crate::TablePolicies::is_empty")]
    pub policies: crate::TablePolicies,
    /// For a linked table: how it is made from its base table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked: Option<crate::LinkedTable>,
}

impl TableEntry {
    /// A new table entry with a fresh id and directory.
    pub fn new(name: impl Into<String>, partition_columns: Vec<String>) -> Self {
        let id = Uuid::now_v7();
        Self {
            id,
            name: name.into(),
            location: format!("tables/{id}"),
            partition_columns,
            created_at: Utc::now(),
            owner: String::new(),
            policies: Default::default(),
            linked: None,
        }
    }
}

/// A view: a stored query, planned anew on each use with its owner's rights on the relations it
/// reads (as in PostgreSQL), so granting a view does not grant its tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewEntry {
    /// View name.
    pub name: String,
    /// The defining query, as SQL text.
    pub sql: String,
    /// Column names, when the definition renames them (`CREATE VIEW v (a, b) AS ...`).
    #[serde(default)]
    pub columns: Vec<String>,
    /// When it was created or last replaced.
    pub created_at: DateTime<Utc>,
    /// The role that created it; the view reads its tables with this role's rights.
    #[serde(default)]
    pub owner: String,
}

impl CatalogState {
    /// A schema by name.
    pub fn schema(&self, name: &str) -> Result<&SchemaEntry> {
        self.schemas.get(name).ok_or_else(|| Error::NotFound { kind: ObjectKind::Schema, name: name.into() })
    }

    fn schema_mut(&mut self, name: &str) -> Result<&mut SchemaEntry> {
        self.schemas.get_mut(name).ok_or_else(|| Error::NotFound { kind: ObjectKind::Schema, name: name.into() })
    }

    /// A table by schema and name.
    pub fn table(&self, schema: &str, name: &str) -> Result<&TableEntry> {
        self.schema(schema)?
            .tables
            .get(name)
            .ok_or_else(|| Error::NotFound { kind: ObjectKind::Table, name: format!("{schema}.{name}") })
    }

    /// A view by schema and name.
    pub fn view(&self, schema: &str, name: &str) -> Result<&ViewEntry> {
        self.schema(schema)?
            .views
            .get(name)
            .ok_or_else(|| Error::NotFound { kind: ObjectKind::View, name: format!("{schema}.{name}") })
    }

    /// Adds a schema. With `if_not_exists`, an existing schema is not an error.
    pub fn create_schema(&mut self, entry: SchemaEntry, if_not_exists: bool) -> Result<()> {
        if self.schemas.contains_key(&entry.name) {
            return if if_not_exists {
                Ok(())
            } else {
                Err(Error::AlreadyExists { kind: ObjectKind::Schema, name: entry.name })
            };
        }
        self.schemas.insert(entry.name.clone(), entry);
        Ok(())
    }

    /// Removes a schema; with `cascade` it may hold relations, whose entries are returned so the
    /// caller can remove their data.
    pub fn drop_schema(&mut self, name: &str, cascade: bool) -> Result<Vec<TableEntry>> {
        let schema = self.schema(name)?;
        if !cascade && schema.relation_count() > 0 {
            return Err(Error::SchemaNotEmpty { name: name.into(), count: schema.relation_count() });
        }
        let removed = self.schemas.remove(name).expect("checked above");
        self.grants.retain(|g| g.object.schema() != name);
        Ok(removed.tables.into_values().collect())
    }

    fn ensure_name_free(&self, schema: &str, name: &str) -> Result<()> {
        let s = self.schema(schema)?;
        if s.tables.contains_key(name) || s.views.contains_key(name) {
            return Err(Error::AlreadyExists { kind: ObjectKind::Relation, name: format!("{schema}.{name}") });
        }
        Ok(())
    }

    /// Adds a table to a schema.
    pub fn create_table(&mut self, schema: &str, entry: TableEntry) -> Result<()> {
        self.ensure_name_free(schema, &entry.name)?;
        self.schema_mut(schema)?.tables.insert(entry.name.clone(), entry);
        Ok(())
    }

    /// Removes a table and returns its entry (so its files can be removed).
    pub fn drop_table(&mut self, schema: &str, name: &str) -> Result<TableEntry> {
        let entry = self
            .schema_mut(schema)?
            .tables
            .remove(name)
            .ok_or_else(|| Error::NotFound { kind: ObjectKind::Table, name: format!("{schema}.{name}") })?;
        self.forget_relation_grants(schema, name);
        Ok(entry)
    }

    /// Adds a view, or replaces an existing view with `or_replace`.
    pub fn create_view(&mut self, schema: &str, entry: ViewEntry, or_replace: bool) -> Result<()> {
        let exists_as_view = self.schema(schema)?.views.contains_key(&entry.name);
        if !(or_replace && exists_as_view) {
            self.ensure_name_free(schema, &entry.name)?;
        }
        self.schema_mut(schema)?.views.insert(entry.name.clone(), entry);
        Ok(())
    }

    /// Removes a view.
    pub fn drop_view(&mut self, schema: &str, name: &str) -> Result<ViewEntry> {
        let entry = self
            .schema_mut(schema)?
            .views
            .remove(name)
            .ok_or_else(|| Error::NotFound { kind: ObjectKind::View, name: format!("{schema}.{name}") })?;
        self.forget_relation_grants(schema, name);
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_views_share_a_namespace() {
        let mut s = CatalogState::default();
        s.create_schema(SchemaEntry::new("public"), false).unwrap();
        s.create_table("public", TableEntry::new("t", vec![])).unwrap();
        let v = ViewEntry {
            name: "t".into(),
            sql: "SELECT 1".into(),
            columns: vec![],
            created_at: Utc::now(),
            owner: String::new(),
        };
        assert!(matches!(s.create_view("public", v, true), Err(Error::AlreadyExists { .. })));
        assert!(matches!(
            s.create_table("public", TableEntry::new("t", vec![])),
            Err(Error::AlreadyExists { .. })
        ));
        assert!(matches!(s.drop_schema("public", false), Err(Error::SchemaNotEmpty { count: 1, .. })));
        assert_eq!(s.drop_schema("public", true).unwrap().len(), 1);
    }
}

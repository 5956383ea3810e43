//! Object names as PostgreSQL resolves them: unquoted identifiers fold to lower case, quoted ones
//! keep their case, and an unqualified name lives in the session's current schema.

use datafusion::sql::sqlparser::ast::{Ident, ObjectName, ObjectNamePart};

use crate::{Error, Result};

/// The schema a warehouse starts with and unqualified names resolve to.
pub const DEFAULT_SCHEMA: &str = "public";
/// The DataFusion catalog name under which the warehouse is mounted.
pub const CATALOG_NAME: &str = "kura";

tokio::task_local! {
    /// The schema unqualified names resolve to while a statement runs (`SET search_path`).
    pub(crate) static CURRENT_SCHEMA: String;
}

/// The schema unqualified names resolve to now.
pub(crate) fn current_schema() -> String {
    CURRENT_SCHEMA.try_with(|s| s.clone()).unwrap_or_else(|_| DEFAULT_SCHEMA.to_string())
}

/// A schema-qualified relation name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QualifiedName {
    /// Schema.
    pub schema: String,
    /// Table or view.
    pub name: String,
}

impl QualifiedName {
    /// `"schema"."name"`, for SQL text Kura writes itself.
    pub(crate) fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }
}

impl std::fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// Folds an identifier as PostgreSQL does.
pub fn normalize_ident(ident: &Ident) -> String {
    if ident.quote_style.is_some() { ident.value.clone() } else { ident.value.to_lowercase() }
}

pub(crate) fn parts(name: &ObjectName) -> Result<Vec<String>> {
    name.0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => Ok(normalize_ident(i)),
            other => Err(Error::Unsupported(format!("name part {other}"))),
        })
        .collect()
}

/// Resolves `name`, `schema.name` or `kura.schema.name`.
pub fn qualified(name: &ObjectName) -> Result<QualifiedName> {
    let p = parts(name)?;
    match p.as_slice() {
        [n] => Ok(QualifiedName { schema: current_schema(), name: n.clone() }),
        [s, n] => Ok(QualifiedName { schema: s.clone(), name: n.clone() }),
        [c, s, n] if c == CATALOG_NAME => Ok(QualifiedName { schema: s.clone(), name: n.clone() }),
        [c, _, _] => Err(Error::UndefinedObject(format!("database \"{c}\" does not exist"))),
        _ => Err(Error::Invalid(format!("improper qualified name (too many dotted names): {name}"))),
    }
}

/// Resolves a schema name (`s` or `kura.s`).
pub fn schema_name(name: &ObjectName) -> Result<String> {
    let p = parts(name)?;
    match p.as_slice() {
        [s] => Ok(s.clone()),
        [c, s] if c == CATALOG_NAME => Ok(s.clone()),
        _ => Err(Error::Invalid(format!("improper schema name: {name}"))),
    }
}

/// `ident` as a double-quoted SQL identifier.
pub(crate) fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// `value` as a single-quoted SQL string literal.
pub(crate) fn sql_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Checks that a new object's name is one Kura can store and resolve.
pub fn validate_new_name(kind: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 63 {
        return Err(Error::Invalid(format!("{kind} name must have 1 to 63 characters")));
    }
    // SECURITY: '@' marks time-travel references (`t@v3`) inside the engine; a table named like
    // one could shadow another table's history.
    if name.contains('@') || name.contains('/') || name.chars().any(char::is_control) {
        return Err(Error::Invalid(format!("{kind} name \"{name}\" may not contain '@', '/' or control characters")));
    }
    Ok(())
}

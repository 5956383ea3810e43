//! Statements that may change a warehouse are refused, before they start, when the warehouse has
//! been moved elsewhere (`kura migrate --cutover` set its read-only flag).
//!
//! The storage layer refuses every object write of such a warehouse anyway (fail closed); this
//! check makes the refusal clean and early: one clear error (SQLSTATE 25006, as PostgreSQL's
//! `read_only_sql_transaction`) naming the new location, instead of a write failing half-way.
//! Reads go on: only statements known to be reads skip the check.

use datafusion::sql::sqlparser::ast::Statement;

use crate::{Error, Result, Session, StatementKind};

/// Whether a statement is known not to write to the warehouse.
fn is_read(kind: &StatementKind) -> bool {
    use crate::linkage::LinkageStatement as L;
    use crate::policy::PolicyStatement as P;
    match kind {
        StatementKind::Sql(stmt) => matches!(
            **stmt,
            Statement::Query(_)
                | Statement::Explain { .. }
                | Statement::ExplainTable { .. }
                | Statement::Set(_)
                | Statement::ShowVariable { .. }
                | Statement::ShowVariables { .. }
                | Statement::ShowTables { .. }
                | Statement::ShowColumns { .. }
                | Statement::ShowFunctions { .. }
                | Statement::ShowCreate { .. }
                | Statement::ShowSchemas { .. }
                | Statement::ShowDatabases { .. }
                | Statement::ShowViews { .. }
                | Statement::StartTransaction { .. }
                | Statement::Commit { .. }
                | Statement::Rollback { .. }
                | Statement::Prepare { .. }
                | Statement::Execute { .. }
                | Statement::Deallocate { .. }
        ),
        StatementKind::Copy(copy) => copy.to,
        StatementKind::Policy(policy) => matches!(**policy, P::Show { .. } | P::ShowKeys),
        StatementKind::Linkage(linkage) => matches!(**linkage, L::ShowSources | L::ShowLinked),
        StatementKind::ExplainPrivacy(_) => true,
        StatementKind::Access(_)
        | StatementKind::Extract(_)
        | StatementKind::Provide(_)
        | StatementKind::Erase(_)
        | StatementKind::Optimize(_) => false,
    }
}

/// Refuses `kind` if it may write and the warehouse is read-only.
pub(crate) async fn check(session: &Session, kind: &StatementKind) -> Result<()> {
    if is_read(kind) {
        return Ok(());
    }
    let warehouse = session.engine().warehouse();
    if let Some(flag) = warehouse.read_only().await? {
        let refused = kura_storage::ReadOnlyError { warehouse: warehouse.url(), flag };
        return Err(Error::Reported { sqlstate: "25006", message: refused.to_string() });
    }
    Ok(())
}

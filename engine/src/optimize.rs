//! `OPTIMIZE`: rewriting a table's files for faster reads, without changing its rows.
//!
//! ```sql
//! OPTIMIZE claims.medical_claims;                                   -- compact small files
//! OPTIMIZE claims.medical_claims ZORDER BY (insured_number, service_month);
//! OPTIMIZE checkup.results ORDER BY (fiscal_year, checkup_date);   -- keep it sorted
//! ```
//!
//! - Plain `OPTIMIZE` bin-packs files smaller than the target size (128 MiB) into larger ones, per
//!   partition (delta-rs's compaction); `ZORDER BY` rewrites each partition's files ordered along
//!   a Z-order curve of the columns, so file and row-group statistics prune on any of them;
//!   `ORDER BY` rewrites the whole table sorted by the columns (a clustered layout: statistics
//!   prune ranges of the first column, and equal values sit together).
//! - Each is one Delta commit that removes the old files and adds the new: readers see the old
//!   layout or the new, with the same rows. Older versions stay readable (time travel) until
//!   `VACUUM ALL` removes their files.
//! - The rows are read as stored, never through a policy: a rewrite through a row filter or a mask
//!   would lose or change data. Only the table's owner or a superuser may run it, and, as for any
//!   write, not a user the table's policies restrict.

use std::sync::Arc;

use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::{LogicalPlanBuilder, col};
use datafusion::sql::sqlparser::ast::ObjectName;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;
use kura_storage::TableVersionSpec;

use crate::names::qualified;
use crate::policy::parse::{expect_word, parse_word, word};
use crate::session::{Session, StatementOutput};
use crate::{Error, Result};

/// Target size of compacted files.
const TARGET_FILE_SIZE: u64 = 128 << 20;

/// How `OPTIMIZE` rewrites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptimizeMode {
    /// Bin-pack small files.
    Compact,
    /// Z-order by the columns.
    ZOrder(Vec<String>),
    /// Sort the whole table by the columns.
    OrderBy(Vec<String>),
}

/// `OPTIMIZE table [ZORDER BY (cols) | ORDER BY (cols)]`.
#[derive(Debug, Clone)]
pub struct OptimizeStatement {
    /// The table.
    pub table: ObjectName,
    /// What to do.
    pub mode: OptimizeMode,
}

pub(crate) fn at_optimize(parser: &Parser<'_>) -> bool {
    word(parser, 0).as_deref() == Some("OPTIMIZE")
}

fn columns(parser: &mut Parser<'_>) -> Result<Vec<String>, ParserError> {
    let parenthesised = parser.consume_token(&Token::LParen);
    let mut out = Vec::new();
    loop {
        out.push(crate::names::normalize_ident(&parser.parse_identifier()?));
        if !parser.consume_token(&Token::Comma) {
            break;
        }
    }
    if parenthesised {
        parser.expect_token(&Token::RParen)?;
    }
    Ok(out)
}

pub(crate) fn parse(parser: &mut Parser<'_>) -> Result<OptimizeStatement, ParserError> {
    expect_word(parser, "OPTIMIZE")?;
    let table = parser.parse_object_name(false)?;
    let mode = if parse_word(parser, "ZORDER") {
        expect_word(parser, "BY")?;
        OptimizeMode::ZOrder(columns(parser)?)
    } else if parse_word(parser, "ORDER") {
        expect_word(parser, "BY")?;
        OptimizeMode::OrderBy(columns(parser)?)
    } else {
        OptimizeMode::Compact
    };
    Ok(OptimizeStatement { table, mode })
}

/// Runs `OPTIMIZE`; the command tag counts the files written.
pub(crate) async fn execute(session: &Session, stmt: OptimizeStatement) -> Result<StatementOutput> {
    let qn = qualified(&stmt.table)?;
    let snapshot = session.snapshot();
    let entry = snapshot.state.table(&qn.schema, &qn.name).map_err(Error::catalog)?.clone();
    session.require_owner(&qn.schema, &qn.name, &entry.owner)?;
    // The writable checks every write makes (read-only warehouse, the audit schema).
    crate::dml::target_entry(session, &qn).await?;
    let table = session.engine.warehouse().open_table(&entry.location, &TableVersionSpec::Latest).await?;
    let schema = table.snapshot()?.snapshot().arrow_schema();
    let wanted = match &stmt.mode {
        OptimizeMode::Compact => &vec![],
        OptimizeMode::ZOrder(c) | OptimizeMode::OrderBy(c) => c,
    };
    for c in wanted {
        if schema.field_with_name(c).is_err() {
            return Err(Error::UndefinedObject(format!("column \"{c}\" of relation \"{qn}\" does not exist")));
        }
    }
    let started = std::time::Instant::now();
    let files_before = table.snapshot()?.log_data().num_files();
    tracing::debug!(table = %qn, files_before, "OPTIMIZE starts");
    let written = match stmt.mode {
        OptimizeMode::Compact | OptimizeMode::ZOrder(_) => {
            let kind = match stmt.mode {
                OptimizeMode::ZOrder(c) => deltalake::operations::optimize::OptimizeType::ZOrder(c),
                _ => deltalake::operations::optimize::OptimizeType::Compact,
            };
            let (table, metrics) = table
                .optimize()
                .with_type(kind)
                .with_target_size(std::num::NonZeroU64::new(TARGET_FILE_SIZE).expect("non-zero"))
                .with_session_state(Arc::new(session.ctx.state()))
                .await?;
            crate::dml::after_write(&table).await;
            metrics.num_files_added
        }
        OptimizeMode::OrderBy(columns) => {
            // The rows as stored (no policy: see the module's documentation), sorted.
            let provider = table.table_provider().await?;
            let plan = LogicalPlanBuilder::scan(qn.name.clone(), provider_as_source(provider), None)?
                .sort(columns.iter().map(|c| col(datafusion::common::Column::new_unqualified(c)).sort(true, false)))?
                .build()?;
            // The commit removes exactly the files of the version read: rows appended meanwhile
            // stay; a concurrent delete of those files makes it fail rather than undo the delete.
            crate::dml::overwrite_from_plan(session, &qn, plan).await?;
            let table = session.engine.warehouse().open_table(&entry.location, &TableVersionSpec::Latest).await?;
            table.snapshot()?.log_data().num_files() as u64
        }
    };
    tracing::info!(table = %qn, files_written = written, ms = started.elapsed().as_millis() as u64, "OPTIMIZE");
    Ok(StatementOutput::Command { tag: format!("OPTIMIZE {written}"), rows: Some(written) })
}

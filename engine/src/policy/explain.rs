//! `EXPLAIN PRIVACY [FOR USER name] {query | CREATE EXTRACT ...}`: the record a review committee
//! reads. It states, for the querying user (or, for a superuser, the user named), which tables the
//! result reads and which policies apply to each (columns masked and by which policy, rows
//! filtered, columns denied, the aggregation threshold), whether the query is allowed, and:
//! - for a query: with figures where they cannot tell anything the user could not learn by
//!   running it: rows returned, or, for an aggregate-only user and only to a superuser, groups
//!   formed, of at least k and below k, and the smallest group of at least k (k reached). These
//!   figures do not run the differencing check (explaining is not releasing), which may
//!   suppress more when the user runs the query;
//! - for an extract: the anonymisation report (k and l reached, rows suppressed, the level of
//!   each quasi-identifier, information loss), computed without writing anything.
//!
//! SECURITY: policy bodies are shown to superusers only (as `SHOW POLICIES`). Figures about
//! suppressed groups are never shown to an aggregate-only user: "one group was suppressed" for a
//! narrow WHERE is an existence test on one person.

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::arrow::array::Array;
use datafusion::functions_aggregate::expr_fn::{count, min, sum};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, lit, when};
use datafusion::sql::sqlparser::ast::Query;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use futures::TryStreamExt;

use super::parse::{expect_word, parse_word, word};
use super::table::{Applied, PolicedTable};
use crate::extract::{ExtractStatement, report_lines, text_result};
use crate::names::normalize_ident;
use crate::session::{Session, StatementOutput};
use crate::{Error, Result};

/// What `EXPLAIN PRIVACY` explains.
#[derive(Debug, Clone)]
pub enum PrivacyTarget {
    /// A query.
    Query(Box<Query>),
    /// A `CREATE EXTRACT`, run as a dry run.
    Extract(Box<ExtractStatement>),
}

/// A parsed `EXPLAIN PRIVACY`.
#[derive(Debug, Clone)]
pub struct ExplainPrivacy {
    /// `FOR USER name`: explain as that user (superusers only).
    pub user: Option<String>,
    /// The query or extract.
    pub target: PrivacyTarget,
}

/// Whether the parser is at `EXPLAIN PRIVACY`.
pub(crate) fn at_explain_privacy(parser: &Parser<'_>) -> bool {
    word(parser, 0).as_deref() == Some("EXPLAIN") && word(parser, 1).as_deref() == Some("PRIVACY")
}

pub(crate) fn parse(parser: &mut Parser<'_>) -> Result<ExplainPrivacy, ParserError> {
    expect_word(parser, "EXPLAIN")?;
    expect_word(parser, "PRIVACY")?;
    let user = if parse_word(parser, "FOR") {
        expect_word(parser, "USER")?;
        Some(normalize_ident(&parser.parse_identifier()?))
    } else {
        None
    };
    let target = if crate::extract::at_extract(parser) {
        PrivacyTarget::Extract(Box::new(crate::extract::parse(parser)?))
    } else {
        PrivacyTarget::Query(parser.parse_query()?)
    };
    Ok(ExplainPrivacy { user, target })
}

pub(crate) async fn execute(session: &Session, stmt: ExplainPrivacy) -> Result<StatementOutput> {
    let caller_is_superuser = !session.enforced || session.snapshot().state.is_superuser(&session.user);
    let other;
    let target = match &stmt.user {
        Some(user) => {
            session.require_superuser("explain privacy for another user")?;
            other = session.engine.login_session(user).await?;
            // Quoted: the schema name as it is, not folded to lower case again.
            other.set_search_path(&format!("\"{}\"", session.current_schema()))?;
            other.pin_catalog().await?;
            &other
        }
        None => session,
    };
    let mut lines = vec![("user".to_string(), describe_user(target))];
    let planned = match &stmt.target {
        PrivacyTarget::Query(q) => crate::copy::source_plan(target, crate::parser::CopySource::Query(q.clone())).await,
        PrivacyTarget::Extract(e) => crate::extract::plan(target, e).await,
    };
    let plan = match planned {
        Ok(plan) => plan,
        Err(e) => {
            lines.push(("result".into(), format!("refused: {e}")));
            return text_result(lines);
        }
    };
    let aggregate_only = policy_lines(target, &plan, caller_is_superuser, &mut lines);
    match &stmt.target {
        PrivacyTarget::Extract(extract) => match crate::extract::anonymise(target, extract, plan).await {
            Ok(done) => {
                lines.push(("result".into(), "allowed (dry run: nothing written)".into()));
                lines.extend(report_lines(extract, &done.report));
            }
            Err(e) => lines.push(("result".into(), format!("refused: {e}"))),
        },
        PrivacyTarget::Query(_) if aggregate_only => {
            lines.push(("result".into(), "allowed: aggregates only, small groups suppressed".into()));
            if caller_is_superuser {
                group_figures(target, &plan, &mut lines).await?;
            }
        }
        PrivacyTarget::Query(_) => {
            lines.push(("result".into(), "allowed".into()));
            let rows = LogicalPlanBuilder::from(plan).aggregate(Vec::<Expr>::new(), vec![count(lit(1))])?.build()?;
            let n = single_i64(target, rows).await?;
            lines.push(("rows returned".into(), n.first().copied().flatten().unwrap_or(0).to_string()));
        }
    }
    text_result(lines)
}

fn describe_user(session: &Session) -> String {
    let snapshot = session.snapshot();
    let state = &snapshot.state;
    if !session.enforced {
        return format!("{} (embedded session: no policies apply)", session.user);
    }
    let mut roles: Vec<String> = state.effective_roles(&session.user).into_iter().filter(|r| *r != session.user && r != "public").collect();
    roles.sort();
    let superuser = if state.is_superuser(&session.user) { ", superuser" } else { "" };
    if roles.is_empty() {
        format!("{}{superuser}", session.user)
    } else {
        format!("{} (member of {}{superuser})", session.user, roles.join(", "))
    }
}

/// One line per table the plan reads and per policy applied to it; true when a table restricts
/// the user to aggregates.
fn policy_lines(session: &Session, plan: &LogicalPlan, bodies: bool, lines: &mut Vec<(String, String)>) -> bool {
    let snapshot = session.snapshot();
    let body = |policy: &str| -> String {
        if !bodies {
            return String::new();
        }
        snapshot.state.policy(policy).map(|p| format!(": {}", p.body.trim())).unwrap_or_default()
    };
    let mut aggregate_only = false;
    let mut seen = std::collections::BTreeSet::new();
    super::for_each_scan(plan, &mut |scan, provider| {
        let Some(policed) = provider.downcast_ref::<PolicedTable>() else {
            let name = scan.table_name.to_string();
            if !name.starts_with("information_schema") && !name.starts_with("pg_catalog") && seen.insert(name.clone()) {
                lines.push((format!("reads {name}"), "no policy applies to this user".into()));
            }
            return;
        };
        if !seen.insert(policed.label.clone()) {
            return;
        }
        let item = format!("reads {}", policed.label);
        for applied in &policed.applied {
            let text = match applied {
                Applied::Masked { column, policy } => format!("column {column} masked by {policy}{}", body(policy)),
                Applied::Filtered { policy } => format!("rows filtered by {policy}{}", body(policy)),
                Applied::Denied { column, policy } => format!("column {column} hidden by {policy}"),
                Applied::Aggregated { policy, k, entity_key } => {
                    aggregate_only = true;
                    let entity = entity_key.first().map(|c| format!("distinct {c}")).unwrap_or_else(|| "rows".into());
                    format!("aggregates only, each group at least {k} {entity} (policy {policy}); smaller groups suppressed")
                }
            };
            lines.push((item.clone(), text));
        }
    });
    aggregate_only
}

/// For each group-size check in the plan: groups formed, released and suppressed, and the
/// smallest released group.
async fn group_figures(session: &Session, plan: &LogicalPlan, lines: &mut Vec<(String, String)>) -> Result<()> {
    let mut checks = Vec::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::Filter(filter) = node
            && filter.predicate.column_refs().iter().any(|c| c.name.starts_with("__kura_entities_"))
        {
            checks.push(filter.clone());
        }
        Ok(TreeNodeRecursion::Continue)
    });
    for (i, filter) in checks.into_iter().enumerate() {
        let predicate = super::aggregate::without_side_effects(filter.predicate.clone())?;
        let entities: Vec<Expr> = filter
            .input
            .schema()
            .columns()
            .into_iter()
            .filter(|c| c.name.starts_with("__kura_entities_"))
            .map(Expr::Column)
            .collect();
        let mut aggregates = vec![count(lit(1)), sum(when(predicate.clone(), lit(1i64)).otherwise(lit(0i64))?)];
        for entity in entities {
            aggregates.push(min(when(predicate.clone(), entity).end()?));
        }
        let figures = LogicalPlanBuilder::from(std::sync::Arc::unwrap_or_clone(filter.input))
            .aggregate(Vec::<Expr>::new(), aggregates)?
            .build()?;
        let values = single_i64(session, figures).await?;
        let (formed, released) = (values[0].unwrap_or(0), values[1].unwrap_or(0));
        let label = if i == 0 { String::new() } else { format!(" (aggregate {})", i + 1) };
        lines.push((format!("groups formed{label}"), formed.to_string()));
        lines.push((format!("groups of at least k{label}"), released.to_string()));
        lines.push((format!("groups below k{label}"), (formed - released).to_string()));
        // k reached: the fewest entities of any protected table in any released group.
        let smallest = values.iter().skip(2).flatten().min();
        if values.len() > 2 {
            lines.push((format!("k reached{label}"), smallest.map(|k| k.to_string()).unwrap_or_else(|| "-".into())));
        }
    }
    Ok(())
}

/// Runs a one-row plan and reads its columns as integers.
async fn single_i64(session: &Session, plan: LogicalPlan) -> Result<Vec<Option<i64>>> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;
    let stream = session.stream_plan(plan).await?;
    let batches: Vec<datafusion::arrow::array::RecordBatch> =
        stream.try_collect().await.map_err(Error::from_datafusion)?;
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else { return Ok(vec![]) };
    batch
        .columns()
        .iter()
        .map(|c| {
            let c = datafusion::arrow::compute::cast(c, &datafusion::arrow::datatypes::DataType::Int64)
                .map_err(|e| Error::from_datafusion(e.into()))?;
            let c = c.as_primitive::<Int64Type>();
            Ok(if c.is_null(0) { None } else { Some(c.value(0)) })
        })
        .collect()
}

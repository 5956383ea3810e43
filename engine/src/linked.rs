//! Linked tables: the identity zone's source tables as analysts see them, with each row's
//! research ID in place of the identity columns.
//!
//! ```sql
//! CREATE LINKED TABLE research.checkups FROM checkup.results
//!   LINKAGE SOURCE checkup KEY CAST(checkup_id AS TEXT)
//!   [KEEP (sex)] [EXCLUDE (address)] [ORDER BY checkup_date];
//! REFRESH LINKED TABLE research.checkups;
//! SHOW LINKED TABLES;
//! ```
//!
//! A linked table is an ordinary Delta table (grants, policies, time travel and `DROP TABLE` work
//! on it as on any table) whose rows are rewritten, in one commit, by every `LINK` and by
//! `REFRESH LINKED TABLE`: `research_id` first, then the base table's columns that carry no
//! identity, sorted by `research_id` (so a person's rows sit together in the files and the
//! files' statistics prune lookups by person) and then by the `ORDER BY` columns. A row whose key
//! has no research ID yet keeps a NULL `research_id` until the next linkage. Rows of persons who
//! refused, and rows without a research ID, go to files of their own ([`crate::refusals`]), so
//! that readers bound by refusals skip them instead of filtering every row.
//!
//! Which columns are identity is not left to the author: Kura traces every column of the linkage
//! source's query back to the base table's columns ([`lineage`]). Columns that feed a direct
//! identifier (names, insured symbol and number, personal suffix, hashed IDs, the source key)
//! never leave the zone; columns that feed a quasi-identifier (birth date, sex, postal code,
//! insurer number) are held back too unless `KEEP` names them; `EXCLUDE` holds back more.
//!
//! SECURITY: the column set is fixed when the table is created and checked again on every
//! refresh against the source's current query, so redefining the source to read another
//! identity column stops the refresh instead of exposing it.

use std::collections::{BTreeMap, BTreeSet};

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, ObjectName};
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;
use kura_catalog::LinkedTable;

use crate::names::{QualifiedName, normalize_ident, qualified, quote_ident, sql_literal};
use crate::parser::CopySource;
use crate::policy::parse::{expect_word, parse_word};
use crate::session::{Session, StatementOutput};
use crate::{Error, Result};

/// A base table's column, as (schema, table, column).
pub(crate) type BaseColumn = (String, String, String);

/// Source columns that identify a person directly: never copied out of the zone.
pub(crate) const DIRECT: &[&str] = &["source_key", "name_kana", "name_kanji", "insured_symbol", "insured_number", "insured_suffix", "id1", "id2"];
/// Source columns that identify in combination: held back unless `KEEP` names them.
const QUASI: &[&str] = &["birth_date", "sex", "postal_code", "insurer_number"];

/// `CREATE LINKED TABLE`.
#[derive(Debug, Clone)]
pub struct CreateLinked {
    /// The linked table.
    pub name: ObjectName,
    /// Its base table in the identity zone.
    pub base: ObjectName,
    /// The linkage source.
    pub source: String,
    /// The row's key in that source.
    pub key: SqlExpr,
    /// Quasi-identifying columns to copy anyway.
    pub keep: Vec<String>,
    /// More columns to hold back.
    pub exclude: Vec<String>,
    /// Sort columns after `research_id`.
    pub order_by: Vec<String>,
}

fn column_list(parser: &mut Parser<'_>) -> Result<Vec<String>, ParserError> {
    parser.expect_token(&Token::LParen)?;
    let cols = parser.parse_comma_separated(|p| p.parse_identifier().map(|i| normalize_ident(&i)))?;
    parser.expect_token(&Token::RParen)?;
    Ok(cols)
}

/// Parses `CREATE LINKED TABLE ...` after `CREATE LINKED TABLE`.
pub(crate) fn parse_create(parser: &mut Parser<'_>) -> Result<CreateLinked, ParserError> {
    let name = parser.parse_object_name(false)?;
    expect_word(parser, "FROM")?;
    let base = parser.parse_object_name(false)?;
    expect_word(parser, "LINKAGE")?;
    expect_word(parser, "SOURCE")?;
    let source = normalize_ident(&parser.parse_identifier()?);
    expect_word(parser, "KEY")?;
    let key = parser.parse_expr()?;
    let (mut keep, mut exclude, mut order_by) = (vec![], vec![], vec![]);
    loop {
        if parse_word(parser, "KEEP") {
            keep.extend(column_list(parser)?);
        } else if parse_word(parser, "EXCLUDE") {
            exclude.extend(column_list(parser)?);
        } else if parse_word(parser, "ORDER") {
            expect_word(parser, "BY")?;
            order_by = parser.parse_comma_separated(|p| p.parse_identifier().map(|i| normalize_ident(&i)))?;
        } else {
            break;
        }
    }
    Ok(CreateLinked { name, base, source, key, keep, exclude, order_by })
}

/// The base-table columns each output column of `plan` is computed from. Nodes it cannot see
/// through count as reading every column of every table below them, so the answer may hold
/// too many columns, never too few.
pub(crate) fn lineage(plan: &LogicalPlan, default_schema: &str) -> Result<Vec<BTreeSet<BaseColumn>>> {
    (0..plan.schema().fields().len()).map(|i| column_lineage(plan, i, default_schema)).collect()
}

fn column_lineage(plan: &LogicalPlan, i: usize, default_schema: &str) -> Result<BTreeSet<BaseColumn>> {
    let of_exprs = |exprs: &[&Expr], input: &LogicalPlan| -> Result<BTreeSet<BaseColumn>> {
        let mut out = BTreeSet::new();
        for e in exprs {
            for c in e.column_refs() {
                let j = input.schema().index_of_column(c).map_err(Error::from_datafusion)?;
                out.extend(column_lineage(input, j, default_schema)?);
            }
            out.extend(subquery_columns(e, default_schema)?);
        }
        Ok(out)
    };
    match plan {
        LogicalPlan::TableScan(scan) => {
            let Some((schema, table)) = crate::access::scanned_relation(&scan.table_name, default_schema) else {
                return Ok(BTreeSet::new());
            };
            let column = scan.projected_schema.field(i).name().clone();
            Ok(BTreeSet::from([(schema, table, column)]))
        }
        LogicalPlan::Projection(p) => of_exprs(&[&p.expr[i]], &p.input),
        LogicalPlan::Aggregate(a) if a.group_expr.len() == a.group_expr_len().map_err(Error::from_datafusion)? => {
            let g = a.group_expr.len();
            let e = if i < g { &a.group_expr[i] } else { &a.aggr_expr[i - g] };
            of_exprs(&[e], &a.input)
        }
        LogicalPlan::Window(w) => {
            let n = w.input.schema().fields().len();
            if i < n { column_lineage(&w.input, i, default_schema) } else { of_exprs(&[&w.window_expr[i - n]], &w.input) }
        }
        LogicalPlan::Union(u) => {
            let mut out = BTreeSet::new();
            for input in &u.inputs {
                out.extend(column_lineage(input, i, default_schema)?);
            }
            Ok(out)
        }
        LogicalPlan::Join(j) => {
            use datafusion::common::JoinType::*;
            let n = j.left.schema().fields().len();
            match j.join_type {
                Inner | Left | Right | Full if i < n => column_lineage(&j.left, i, default_schema),
                Inner | Left | Right | Full => column_lineage(&j.right, i - n, default_schema),
                LeftSemi | LeftAnti => column_lineage(&j.left, i, default_schema),
                RightSemi | RightAnti => column_lineage(&j.right, i, default_schema),
                _ => all_columns(plan, default_schema),
            }
        }
        LogicalPlan::Filter(_)
        | LogicalPlan::Sort(_)
        | LogicalPlan::Limit(_)
        | LogicalPlan::SubqueryAlias(_)
        | LogicalPlan::Repartition(_)
        | LogicalPlan::Distinct(datafusion::logical_expr::Distinct::All(_)) => {
            let inputs = plan.inputs();
            column_lineage(inputs[0], i, default_schema)
        }
        _ => all_columns(plan, default_schema),
    }
}

/// The identity zone of a linkage source's query: base columns that feed a direct identifier and
/// no quasi-identifier (an insurer number inside a composite key identifies an insurer, not a
/// person, and is read like any other quasi-identifier).
pub(crate) fn zone_columns(plan: &LogicalPlan, default_schema: &str) -> Result<Vec<kura_catalog::IdentityColumn>> {
    let mut direct: BTreeMap<BaseColumn, BTreeSet<String>> = BTreeMap::new();
    let mut quasi: BTreeSet<BaseColumn> = BTreeSet::new();
    for (field, cols) in plan.schema().fields().iter().zip(lineage(plan, default_schema)?) {
        let out = field.name().as_str();
        if DIRECT.contains(&out) {
            for c in cols {
                direct.entry(c).or_default().insert(out.to_string());
            }
        } else if QUASI.contains(&out) {
            quasi.extend(cols);
        }
    }
    Ok(direct
        .into_iter()
        .filter(|(c, _)| !quasi.contains(c))
        .map(|((schema, table, column), feeds)| kura_catalog::IdentityColumn {
            schema,
            table,
            column,
            feeds: feeds.into_iter().collect::<Vec<_>>().join(", "),
        })
        .collect())
}

/// Refuses a user who is not an operator a table of the identity zone unless every identity
/// column of it is masked or removed for them, or they may only aggregate it.
pub(crate) fn check_zone(
    state: &kura_catalog::CatalogState,
    user: &str,
    schema: &str,
    table: &str,
    policed: Option<&crate::policy::table::PolicedTable>,
) -> Result<()> {
    let columns = state.identity_columns(schema, table);
    if columns.is_empty() || state.is_operator(user) {
        return Ok(());
    }
    use crate::policy::table::Applied;
    let applied: &[Applied] = policed.map_or(&[], |p| p.applied.as_slice());
    if applied.iter().any(|a| matches!(a, Applied::Aggregated { .. })) {
        return Ok(());
    }
    for (source, c) in columns {
        let covered = applied.iter().any(|a| match a {
            Applied::Masked { column, .. } | Applied::Denied { column, .. } => *column == c.column,
            _ => false,
        });
        if !covered {
            return Err(Error::PermissionDenied(format!(
                "permission denied: column \"{}\" of {schema}.{table} is in the identity zone (it feeds {} of linkage source \"{source}\"); \
                 only operators read it: mask or deny it for other roles, or give them a linked table",
                c.column, c.feeds
            )));
        }
    }
    Ok(())
}

/// Every column of every table that subqueries inside `expr` read.
fn subquery_columns(expr: &Expr, default_schema: &str) -> Result<BTreeSet<BaseColumn>> {
    let mut out = BTreeSet::new();
    let mut failed = None;
    expr.apply(|e| {
        let sub = match e {
            Expr::ScalarSubquery(s) => Some(&s.subquery),
            Expr::Exists(x) => Some(&x.subquery.subquery),
            Expr::InSubquery(x) => Some(&x.subquery.subquery),
            _ => None,
        };
        if let Some(sub) = sub {
            match all_columns(sub, default_schema) {
                Ok(c) => out.extend(c),
                Err(err) => failed = Some(err),
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map_err(Error::from_datafusion)?;
    failed.map_or(Ok(out), Err)
}

/// Every column of every table `plan` reads.
fn all_columns(plan: &LogicalPlan, default_schema: &str) -> Result<BTreeSet<BaseColumn>> {
    let mut out = BTreeSet::new();
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            if let Some((s, t)) = crate::access::scanned_relation(&scan.table_name, default_schema) {
                let schema = scan.source.schema();
                out.extend(schema.fields().iter().map(|f| (s.clone(), t.clone(), f.name().clone())));
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map_err(Error::from_datafusion)?;
    Ok(out)
}

/// What a source's query makes of one base table's columns: each identity column of the base
/// with the source columns it feeds.
struct Identity {
    /// Base column -> direct identifiers it feeds.
    direct: BTreeMap<String, BTreeSet<String>>,
    /// Base column -> quasi-identifiers it feeds.
    quasi: BTreeMap<String, BTreeSet<String>>,
}

impl Identity {
    /// Why base column `c` stays in the zone, if it does: the identity columns it feeds (direct
    /// ones always, quasi-identifiers unless kept), or `source_key` for a column of the key.
    fn reason(&self, c: &str, key_cols: &BTreeSet<String>, keep: &[String]) -> Option<String> {
        let joined = |f: &BTreeSet<String>| f.iter().cloned().collect::<Vec<_>>().join(", ");
        if let Some(f) = self.direct.get(c) {
            Some(joined(f))
        } else if key_cols.contains(c) {
            Some("source_key".to_string())
        } else {
            self.quasi.get(c).filter(|_| !keep.iter().any(|k| k == c)).map(joined)
        }
    }
}

fn base_of(l: &LinkedTable) -> QualifiedName {
    QualifiedName { schema: l.base_schema.clone(), name: l.base_table.clone() }
}

/// The identity columns of `base` for `source`: those its query computes identity from; for a
/// table of the same system that the query does not read (a hospital's diagnoses beside its
/// patients), columns named like an identity column of a table it does read; and columns named
/// after one (`birth_date_era`, `name_kana_old`). Other columns that identify someone must be
/// named in `EXCLUDE`.
async fn identity_of(session: &Session, source: &str, base: &QualifiedName) -> Result<Identity> {
    let snapshot = session.snapshot();
    let entry = snapshot.state.linkage_source(source).map_err(Error::catalog)?;
    let query = crate::parser::parse_query(&entry.query)?;
    let plan = crate::copy::source_plan(session, CopySource::Query(query)).await?;
    let default_schema = session.current_schema();
    let lineage = lineage(&plan, &default_schema)?;
    let base_columns: BTreeSet<String> = crate::ddl::table_schema(session, base)
        .await?
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut id = Identity { direct: BTreeMap::new(), quasi: BTreeMap::new() };
    for (field, cols) in plan.schema().fields().iter().zip(lineage) {
        let out = field.name().as_str();
        let target = if DIRECT.contains(&out) {
            &mut id.direct
        } else if QUASI.contains(&out) {
            &mut id.quasi
        } else {
            continue;
        };
        for (_, _, c) in cols {
            // The column itself, and columns named after it in any table (`birth_date_era`
            // beside `birth_date`): another rendering of the same identity.
            let prefix = format!("{c}_");
            for b in &base_columns {
                if *b == c || b.starts_with(&prefix) {
                    target.entry(b.clone()).or_default().insert(out.to_string());
                }
            }
        }
    }
    Ok(id)
}

/// Columns a key expression reads.
async fn key_columns(session: &Session, base: &QualifiedName, key: &str) -> Result<BTreeSet<String>> {
    let probe = format!("SELECT CAST({key} AS TEXT) FROM {} LIMIT 0", base.quoted());
    let query = crate::parser::parse_query(&probe)?;
    let plan = crate::copy::source_plan(session, CopySource::Query(query))
        .await
        .map_err(|e| Error::Invalid(format!("the KEY expression does not apply to {base}: {e}")))?;
    let cols = lineage(&plan, &session.current_schema())?.into_iter().flatten();
    Ok(cols.filter(|(s, t, _)| *s == base.schema && *t == base.name).map(|c| c.2).collect())
}


/// Decides a linked table's columns from its base and source.
async fn define(session: &Session, stmt: &CreateLinked, base: &QualifiedName) -> Result<LinkedTable> {
    let snapshot = session.snapshot();
    snapshot.state.linkage_source(&stmt.source).map_err(Error::catalog)?;
    snapshot.state.table(&base.schema, &base.name).map_err(|_| {
        Error::UndefinedObject(format!("base table {base} does not exist (a linked table is made from a table, not a view)"))
    })?;
    let base_columns: Vec<String> =
        crate::ddl::table_schema(session, base).await?.fields().iter().map(|f| f.name().clone()).collect();
    let identity = identity_of(session, &stmt.source, base).await?;
    let key = stmt.key.to_string();
    let key_cols = key_columns(session, base, &key).await?;
    for c in stmt.keep.iter().chain(&stmt.exclude).chain(&stmt.order_by) {
        if c != "research_id" && !base_columns.contains(c) {
            return Err(Error::UndefinedObject(format!("column \"{c}\" of {base} does not exist")));
        }
    }
    for c in &stmt.keep {
        if let Some(feeds) = identity.direct.get(c) {
            return Err(Error::PermissionDenied(format!(
                "column \"{c}\" of {base} feeds {} of linkage source \"{}\", a direct identifier; it stays in the identity zone",
                feeds.iter().cloned().collect::<Vec<_>>().join(", "),
                stmt.source
            )));
        }
        if key_cols.contains(c) {
            return Err(Error::PermissionDenied(format!(
                "column \"{c}\" of {base} is part of the source key; it stays in the identity zone"
            )));
        }
    }
    if base_columns.iter().any(|c| c == "research_id") {
        return Err(Error::Invalid(format!("{base} already has a column named research_id")));
    }
    let mut withheld = Vec::new();
    let mut columns = Vec::new();
    for c in &base_columns {
        let why = identity.reason(c, &key_cols, &stmt.keep).or_else(|| stmt.exclude.contains(c).then(|| "excluded".to_string()));
        match why {
            Some(w) => withheld.push((c.clone(), w)),
            None => columns.push(c.clone()),
        }
    }
    for c in &stmt.order_by {
        if c != "research_id" && !columns.contains(c) {
            return Err(Error::Invalid(format!("ORDER BY column \"{c}\" is held back in the identity zone")));
        }
    }
    Ok(LinkedTable {
        base_schema: base.schema.clone(),
        base_table: base.name.clone(),
        source: stmt.source.clone(),
        key,
        columns,
        keep: stmt.keep.clone(),
        withheld,
        order_by: stmt.order_by.iter().filter(|c| *c != "research_id").cloned().collect(),
    })
}

/// The query that makes a linked table's rows, with [`crate::refusals::HELD_COLUMN`] last, as of
/// version `registry` of the opt-out registry.
fn rows_query(l: &LinkedTable, registry: u64) -> String {
    let cols: String = l.columns.iter().map(|c| format!(", b.{}", quote_ident(c))).collect();
    let order: String = l.order_by.iter().map(|c| format!(", b.{}", quote_ident(c))).collect();
    let (held_join, held) = crate::refusals::held_join("r.research_id", registry);
    format!(
        "SELECT r.research_id{cols}, {held} FROM (SELECT CAST({key} AS TEXT) AS __kura_link_key, * FROM {base}) b \
         LEFT JOIN linkage.research_ids r ON r.source = {source} AND r.source_key = b.__kura_link_key \
         {held_join} \
         ORDER BY r.research_id NULLS LAST{order}",
        key = l.key,
        base = base_of(l).quoted(),
        source = sql_literal(&l.source),
    )
}

/// The opt-out registry's stamp and version.
async fn registry(session: &Session) -> Result<(String, u64)> {
    crate::refusals::registry(session.engine.warehouse(), &session.engine.catalog().cached())
        .await?
        .ok_or_else(|| Error::Invalid("the linkage tables are missing; run LINK first".into()))
}

/// Writes a linked table's rows from its base and the current research IDs, in one commit, with
/// the rows of persons who refused in files of their own ([`crate::refusals`]).
async fn write_rows(session: &Session, qn: &QualifiedName, linked: &LinkedTable) -> Result<u64> {
    // The checks of any write: a writable warehouse, a table this user may write.
    let location = crate::dml::target_entry(session, qn).await?.location;
    let (stamp, version) = registry(session).await?;
    let query = crate::parser::parse_query(&rows_query(linked, version))?;
    let plan = crate::copy::source_plan(session, CopySource::Query(query)).await?;
    crate::refusals::rewrite(session, &location, qn, plan, &stamp).await
}

/// `CREATE LINKED TABLE`: defines the table, creates it and fills it from the current research IDs.
pub(crate) async fn create(session: &Session, stmt: CreateLinked) -> Result<StatementOutput> {
    let qn = qualified(&stmt.name)?;
    let base = qualified(&stmt.base)?;
    crate::names::validate_new_name("table", &qn.name)?;
    if crate::ddl::relation_exists(session, &qn)? {
        return Err(Error::DuplicateObject(format!("relation \"{qn}\" already exists")));
    }
    if qn == base {
        return Err(Error::Invalid("a linked table cannot replace its base table; give it another name".into()));
    }
    let linked = define(session, &stmt, &base).await?;
    crate::linkage::ensure_tables(session).await?;
    // Before the first LINK the linkage tables are new: plan with them.
    session.pin_catalog().await?;
    // The table is created empty, with the columns its rows will have, then filled.
    let (_, version) = registry(session).await?;
    let query = crate::parser::parse_query(&format!("SELECT * FROM ({}) LIMIT 0", rows_query(&linked, version)))?;
    let plan = crate::copy::source_plan(session, CopySource::Query(query)).await?;
    let columns: Vec<_> = plan.schema().columns().into_iter().filter(|c| c.name != crate::refusals::HELD_COLUMN).map(datafusion::logical_expr::col).collect();
    let plan = datafusion::logical_expr::LogicalPlanBuilder::from(plan).project(columns)?.build()?;
    let withheld = linked.withheld.len();
    crate::ddl::create_table_from_plan(session, &qn, plan, Some(linked.clone())).await?;
    let rows = write_rows(session, &qn, &linked).await?;
    tracing::info!(table = %qn, base = %base, rows, withheld, "linked table created");
    Ok(StatementOutput::counted("SELECT", rows))
}

/// Rewrites a linked table from its base and the current research IDs, in one commit, after
/// checking that its columns still carry no identity.
pub(crate) async fn refresh(session: &Session, qn: &QualifiedName) -> Result<u64> {
    let snapshot = session.snapshot();
    let entry = snapshot.state.table(&qn.schema, &qn.name).map_err(Error::catalog)?;
    let Some(linked) = entry.linked.clone() else {
        return Err(Error::Invalid(format!("{qn} is not a linked table")));
    };
    let base = base_of(&linked);
    let identity = identity_of(session, &linked.source, &base).await?;
    let key_cols = key_columns(session, &base, &linked.key).await?;
    for c in &linked.columns {
        // SECURITY: the source may have been redefined to read more identity columns since.
        if let Some(feeds) = identity.reason(c, &key_cols, &linked.keep) {
            return Err(Error::PermissionDenied(format!(
                "linked table {qn} is not refreshed: its column \"{c}\" now feeds {feeds} of linkage source \"{}\"; drop and recreate the linked table",
                linked.source
            )));
        }
    }
    write_rows(session, qn, &linked).await
}

/// `SHOW LINKED TABLES`, with whether each table's files are laid out for the current refusals
/// (read without the opt-out filter) or not until its next rewrite.
pub(crate) async fn show(session: &Session) -> Result<StatementOutput> {
    let snapshot = session.snapshot();
    let warehouse = session.engine.warehouse();
    let stamp = crate::refusals::registry(warehouse, &snapshot).await?.map(|(s, _)| s);
    let mut rows = Vec::new();
    for (s, t, l) in snapshot.state.linked_tables() {
        let entry = snapshot.state.table(s, t).map_err(Error::catalog)?;
        let table = warehouse.open_table(&entry.location, &kura_storage::TableVersionSpec::Latest).await?;
        let layout = match (crate::scan::DeltaFileIndex::of(&entry.location, &table), &stamp) {
            (Some(index), Some(stamp)) => crate::refusals::describe(index.refusal_tags(), stamp),
            _ => crate::refusals::Layout::Unknown,
        };
        rows.push(vec![
            format!("{s}.{t}"),
            format!("{}.{}", l.base_schema, l.base_table),
            l.source.clone(),
            l.key.clone(),
            l.withheld.iter().map(|(c, w)| format!("{c} ({w})")).collect::<Vec<_>>().join(", "),
            layout.to_string(),
        ]);
    }
    crate::constant::text_rows(&SHOW_COLUMNS, rows)
}

pub(crate) const SHOW_COLUMNS: [&str; 6] = ["name", "base_table", "linkage_source", "key", "withheld_columns", "refusal_layout"];

//! Erasure: removing a person's data, or rows past their retention date, physically.
//!
//! ```sql
//! ERASE PERSON 1042 [, 2077 ...] [RETAIN 0 HOURS];       -- by research ID
//! ERASE SOURCE hospital [RETAIN 0 HOURS];                  -- all a source brought in
//! ERASE FROM claims.medical_claims WHERE service_month < DATE '2016-04-01' [RETAIN 24 HOURS];
//! VACUUM ALL [RETAIN 168 HOURS];                           -- later, when the window has passed
//! ```
//!
//! `ERASE PERSON` deletes, in one statement, the person's rows from every linked table, from
//! each linked table's base table (by the linkage key), from the tables the linkage sources read
//! (by the source's key expression, through `UNION ALL` branches too), from the other tables of
//! a source's schema that carry its plain key column (a register's events by atena number), and
//! from the linkage state (research IDs, ID history, review
//! pairs and decisions, the consent registry). It then checks that no linkage source and no
//! linked table still yields the person (a computed key it could not invert is an error naming
//! the source, so nothing is left behind silently). Every table it changed is then vacuumed: data
//! files that no longer hold live rows and are older than the retention window the operator
//! states (`RETAIN n HOURS`, default 168) are deleted, and the Delta log before a fresh
//! checkpoint is deleted with them, so that older table versions (time travel) stop returning the
//! rows. With a window above zero, `VACUUM ALL` run after it finishes the job. `audit.erasures`
//! records each erasure: who, when, what, which tables and how many rows.
//!
//! Tables that relate to the person only through another table (a claim's diagnoses, by claim
//! ID) are the operator's to name with `ERASE FROM ... WHERE`. The audit schema is never
//! touched: its records hold no identity values (statement texts are redacted).

use std::collections::{BTreeMap, BTreeSet};

use datafusion::arrow::array::Array;
use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, ObjectName};
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;
use kura_storage::TableVersionSpec;

use crate::names::{QualifiedName, sql_literal};
use crate::policy::parse::{expect_word, parse_word, word};
use crate::session::{Session, StatementOutput};
use crate::{Error, Result};

/// Default retention window (hours) for files an erasure leaves behind: Delta's own default.
const DEFAULT_RETAIN_HOURS: u64 = 168;

/// `ERASE ...` and `VACUUM ALL`.
#[derive(Debug, Clone)]
pub enum EraseStatement {
    /// `ERASE PERSON id [, ...] [RETAIN n HOURS]`.
    Person {
        /// Research IDs.
        ids: Vec<i64>,
        /// Retention window in hours.
        retain_hours: u64,
    },
    /// `ERASE SOURCE name [RETAIN n HOURS]`: everything one linkage source brought in.
    Source {
        /// The linkage source.
        name: String,
        /// Retention window in hours.
        retain_hours: u64,
    },
    /// `ERASE FROM table WHERE predicate [RETAIN n HOURS]`.
    Rows {
        /// The table.
        table: ObjectName,
        /// Which rows.
        predicate: Box<SqlExpr>,
        /// Retention window in hours.
        retain_hours: u64,
    },
    /// `VACUUM ALL [RETAIN n HOURS]`: every table, with the window given.
    VacuumAll {
        /// Retention window in hours.
        retain_hours: u64,
    },
}

pub(crate) fn at_erase(parser: &Parser<'_>) -> bool {
    matches!(word(parser, 0).as_deref(), Some("ERASE")) || (word(parser, 0).as_deref() == Some("VACUUM") && word(parser, 1).as_deref() == Some("ALL"))
}

fn retain(parser: &mut Parser<'_>) -> Result<u64, ParserError> {
    if !parse_word(parser, "RETAIN") {
        return Ok(DEFAULT_RETAIN_HOURS);
    }
    let n = match parser.next_token().token {
        Token::Number(n, _) => n.parse::<u64>().map_err(|_| ParserError::ParserError(format!("RETAIN takes whole hours, not {n}")))?,
        other => return Err(ParserError::ParserError(format!("expected a number of hours after RETAIN, found {other}"))),
    };
    expect_word(parser, "HOURS")?;
    Ok(n)
}

pub(crate) fn parse(parser: &mut Parser<'_>) -> Result<EraseStatement, ParserError> {
    if parse_word(parser, "VACUUM") {
        expect_word(parser, "ALL")?;
        return Ok(EraseStatement::VacuumAll { retain_hours: retain(parser)? });
    }
    expect_word(parser, "ERASE")?;
    if parse_word(parser, "PERSON") {
        let mut ids = Vec::new();
        loop {
            match parser.next_token().token {
                Token::Number(n, _) => ids.push(n.parse().map_err(|_| ParserError::ParserError(format!("{n} is not a research ID")))?),
                other => return Err(ParserError::ParserError(format!("expected a research ID, found {other}"))),
            }
            if !parser.consume_token(&Token::Comma) {
                break;
            }
        }
        return Ok(EraseStatement::Person { ids, retain_hours: retain(parser)? });
    }
    if parse_word(parser, "SOURCE") {
        let name = crate::names::normalize_ident(&parser.parse_identifier()?);
        return Ok(EraseStatement::Source { name, retain_hours: retain(parser)? });
    }
    expect_word(parser, "FROM")?;
    let table = parser.parse_object_name(false)?;
    expect_word(parser, "WHERE")?;
    let predicate = Box::new(parser.parse_expr()?);
    Ok(EraseStatement::Rows { table, predicate, retain_hours: retain(parser)? })
}

/// Runs an erasure (see the module's documentation).
pub(crate) async fn execute(session: &Session, stmt: EraseStatement) -> Result<StatementOutput> {
    if session.is_enforced() && !session.snapshot().state.is_operator(session.user()) {
        return Err(Error::PermissionDenied("permission denied: only operators erase data".into()));
    }
    let mut keys = BTreeMap::new();
    let mut linkage_state = Vec::new();
    let (what, deletes, retain_hours) = match &stmt {
        EraseStatement::Person { ids, retain_hours } => {
            let (deletes, state, k) = person_deletes(session, ids).await?;
            keys = k;
            linkage_state = state;
            (format!("persons {}", join(ids)), deletes, *retain_hours)
        }
        EraseStatement::Source { name, retain_hours } => {
            let (deletes, state) = source_deletes(session, name)?;
            linkage_state = state;
            (format!("source {name}"), deletes, *retain_hours)
        }
        EraseStatement::Rows { table, predicate, retain_hours } => {
            let qn = crate::names::qualified(table)?;
            crate::audit::refuse_write(&qn)?;
            (format!("rows of {qn}"), vec![(qn, predicate.to_string())], *retain_hours)
        }
        EraseStatement::VacuumAll { retain_hours } => {
            let tables: Vec<QualifiedName> = session
                .snapshot()
                .state
                .schemas
                .iter()
                .filter(|(s, _)| s.as_str() != kura_catalog::AUDIT_SCHEMA)
                .flat_map(|(s, e)| e.tables.keys().map(|t| QualifiedName { schema: s.clone(), name: t.clone() }))
                .collect();
            let files = vacuum(session, &tables, *retain_hours).await?;
            return Ok(StatementOutput::Command { tag: format!("VACUUM {files}"), rows: Some(files) });
        }
    };
    let internal = session.internal();
    let mut rows = 0u64;
    let mut touched: BTreeMap<String, u64> = BTreeMap::new();
    let mut delete = async |list: &[(QualifiedName, String)]| -> Result<()> {
        for (qn, predicate) in list {
            let out = internal.execute_all(&format!("DELETE FROM {} WHERE {predicate}", qn.quoted())).await?;
            let n: u64 = out
                .into_iter()
                .filter_map(|(_, o)| match o {
                    StatementOutput::Command { rows, .. } => rows,
                    _ => None,
                })
                .sum();
            rows += n;
            *touched.entry(qn.to_string()).or_default() += n;
        }
        Ok(())
    };
    delete(&deletes).await?;
    if let EraseStatement::Person { ids, .. } = &stmt {
        // The linkage state goes last: if something is left, ERASE PERSON can run again.
        check_nothing_left(session, ids, &keys).await?;
    }
    delete(&linkage_state).await?;
    let tables: Vec<QualifiedName> =
        deletes.iter().chain(&linkage_state).map(|(q, _)| q.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let files = vacuum(session, &tables, retain_hours).await?;
    crate::audit::record_erasure(session, &what, &touched, rows, retain_hours, files).await?;
    tracing::info!(what, rows, files, "erased");
    Ok(StatementOutput::Command { tag: format!("ERASE {rows}"), rows: Some(rows) })
}

fn join(ids: &[i64]) -> String {
    ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

fn in_list(values: &BTreeSet<String>) -> String {
    values.iter().map(|v| sql_literal(v)).collect::<Vec<_>>().join(", ")
}

/// The DELETEs that remove persons `ids`: (table, predicate).
type Keys = BTreeMap<String, BTreeSet<String>>;

type Deletes = Vec<(QualifiedName, String)>;

/// The DELETEs that remove persons `ids` (table, predicate) from the data and from the linkage
/// state, and their source keys by source.
async fn person_deletes(session: &Session, ids: &[i64]) -> Result<(Deletes, Deletes, Keys)> {
    if ids.is_empty() {
        return Err(Error::Invalid("ERASE PERSON needs at least one research ID".into()));
    }
    let snapshot = session.snapshot();
    let state = &snapshot.state;
    let id_list = join(ids);
    // The persons' source keys, by source.
    let mut keys: Keys = BTreeMap::new();
    if state.table("linkage", "research_ids").is_ok() {
        let batches = session
            .internal()
            .query(&format!("SELECT source, source_key FROM linkage.research_ids WHERE research_id IN ({id_list})"))
            .await?;
        for b in &batches {
            let (s, k) = (crate::linkage::strings(b, 0)?, crate::linkage::strings(b, 1)?);
            for i in 0..b.num_rows() {
                keys.entry(s.value(i).to_string()).or_default().insert(k.value(i).to_string());
            }
        }
    }
    if keys.is_empty() {
        return Err(Error::UndefinedObject(format!("no research ID {id_list} in linkage.research_ids")));
    }
    let qn = |s: &str, t: &str| QualifiedName { schema: s.into(), name: t.into() };
    let mut out = Vec::new();
    let mut bases = BTreeSet::new();
    for (schema, entry) in &state.schemas {
        for (name, table) in &entry.tables {
            let Some(l) = &table.linked else { continue };
            out.push((qn(schema, name), format!("research_id IN ({id_list})")));
            if let Some(k) = keys.get(&l.source) {
                out.push((qn(&l.base_schema, &l.base_table), format!("CAST(({}) AS TEXT) IN ({})", l.key, in_list(k))));
                bases.insert((l.base_schema.clone(), l.base_table.clone()));
            }
        }
    }
    for (name, source) in &state.linkage_sources {
        let Some(k) = keys.get(name) else { continue };
        // The source's key expression, over each table it reads, finds the rows there.
        for (table, key) in source_key_tables(&source.query) {
            if !bases.contains(&(table.schema.clone(), table.name.clone())) {
                out.push((table.clone(), format!("CAST(({key}) AS TEXT) IN ({})", in_list(k))));
            }
            // A plain key column (an atena number) keys the person's rows in the other tables of
            // its schema too (the register's events).
            let column = key.trim_matches(|c| c == '(' || c == ')');
            if !column.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let Some(schema) = state.schemas.get(&table.schema) else { continue };
            for other in schema.tables.keys().filter(|t| **t != table.name) {
                let other = qn(&table.schema, other);
                let has = crate::ddl::table_schema(session, &other).await.is_ok_and(|s| s.field_with_name(column).is_ok());
                if has && !out.iter().any(|(q, _)| *q == other) {
                    out.push((other, format!("CAST({column} AS TEXT) IN ({})", in_list(k))));
                }
            }
        }
    }
    let pairs = |l: &str, r: &str| {
        keys.iter()
            .map(|(s, k)| format!("({l} = {} AND {r} IN ({}))", sql_literal(s), in_list(k)))
            .collect::<Vec<_>>()
            .join(" OR ")
    };
    // Tables that name persons as the linkage does, by (source, source_key).
    for (schema, entry) in &state.schemas {
        if schema == "linkage" || schema == kura_catalog::AUDIT_SCHEMA {
            continue;
        }
        for name in entry.tables.keys() {
            let table = qn(schema, name);
            let by_key = crate::ddl::table_schema(session, &table)
                .await
                .is_ok_and(|s| s.field_with_name("source").is_ok() && s.field_with_name("source_key").is_ok());
            if by_key && !out.iter().any(|(q, _)| *q == table) {
                out.push((table, pairs("source", "source_key")));
            }
        }
    }
    let mut linkage_state = Vec::new();
    let linkage: [(&str, String); 7] = [
        ("research_ids", format!("research_id IN ({id_list})")),
        ("id_history", format!("research_id IN ({id_list}) OR other_research_id IN ({id_list})")),
        ("optout_ids", format!("research_id IN ({id_list})")),
        ("optouts", pairs("source", "source_key")),
        ("optout_keys", pairs("source", "source_key")),
        ("review", format!("{} OR {}", pairs("left_source", "left_key"), pairs("right_source", "right_key"))),
        ("decisions", format!("{} OR {}", pairs("left_source", "left_key"), pairs("right_source", "right_key"))),
    ];
    for (table, predicate) in linkage {
        if state.table("linkage", table).is_ok() {
            linkage_state.push((qn("linkage", table), predicate));
        }
    }
    Ok((out, linkage_state, keys))
}

/// Where a linkage source's keys come from: for each table it reads, the source_key expression
/// over that table's columns. Understood: `SELECT <key> AS source_key ... FROM t [WHERE ...]
/// [GROUP BY ...]`, and the same over a derived table that is a `UNION ALL` of such selects whose
/// columns are plain columns (aliases allowed). Anything else yields nothing, and the check after
/// the deletes names the source.
fn source_key_tables(query: &str) -> Vec<(QualifiedName, String)> {
    use datafusion::sql::sqlparser::ast::{SelectItem, SetExpr, SetOperator, SetQuantifier, Statement, TableFactor};
    let Ok(mut stmts) = crate::parser::parse_sql(query) else { return vec![] };
    let Some(crate::parser::StatementKind::Sql(stmt)) = stmts.pop().map(|s| s.kind) else { return vec![] };
    let Statement::Query(q) = *stmt else { return vec![] };
    let SetExpr::Select(select) = q.body.as_ref() else { return vec![] };
    let [from] = select.from.as_slice() else { return vec![] };
    if !from.joins.is_empty() {
        return vec![];
    }
    let Some(key) = select.projection.iter().find_map(|item| match item {
        SelectItem::ExprWithAlias { expr, alias } if alias.value.eq_ignore_ascii_case("source_key") => Some(expr.clone()),
        SelectItem::UnnamedExpr(e @ SqlExpr::Identifier(i)) if i.value.eq_ignore_ascii_case("source_key") => Some(e.clone()),
        _ => None,
    }) else {
        return vec![];
    };
    match &from.relation {
        TableFactor::Table { name, alias: None, args: None, .. } => {
            crate::names::qualified(name).map(|t| vec![(t, key.to_string())]).unwrap_or_default()
        }
        TableFactor::Derived { subquery, .. } => {
            fn branches<'a>(body: &'a SetExpr, out: &mut Vec<&'a datafusion::sql::sqlparser::ast::Select>) -> bool {
                match body {
                    SetExpr::Select(s) => {
                        out.push(s);
                        true
                    }
                    SetExpr::SetOperation { op: SetOperator::Union, set_quantifier: SetQuantifier::All, left, right } => {
                        branches(left, out) && branches(right, out)
                    }
                    _ => false,
                }
            }
            let mut selects = Vec::new();
            if !branches(&subquery.body, &mut selects) {
                return vec![];
            }
            let mut out = Vec::new();
            for branch in selects {
                let [f] = branch.from.as_slice() else { return vec![] };
                let TableFactor::Table { name, alias: None, args: None, .. } = &f.relation else { return vec![] };
                let Ok(table) = crate::names::qualified(name) else { return vec![] };
                // Output column -> the branch's expression for it.
                let mut columns = std::collections::HashMap::new();
                for item in &branch.projection {
                    match item {
                        SelectItem::UnnamedExpr(SqlExpr::Identifier(i)) => {
                            columns.insert(i.value.to_lowercase(), SqlExpr::Identifier(i.clone()));
                        }
                        SelectItem::ExprWithAlias { expr, alias } => {
                            columns.insert(alias.value.to_lowercase(), expr.clone());
                        }
                        _ => {}
                    }
                }
                let mut k = key.clone();
                let mut unknown = false;
                let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(&mut k, |e: &mut SqlExpr| {
                    let name = match e {
                        SqlExpr::Identifier(i) => Some(i.value.to_lowercase()),
                        SqlExpr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.to_lowercase()),
                        _ => None,
                    };
                    if let Some(n) = name {
                        match columns.get(&n) {
                            Some(x) => *e = SqlExpr::Nested(Box::new(x.clone())),
                            None => unknown = true,
                        }
                    }
                    std::ops::ControlFlow::<()>::Continue(())
                });
                if unknown {
                    return vec![];
                }
                out.push((table, k.to_string()));
            }
            out
        }
        _ => vec![],
    }
}

/// The DELETEs that remove everything linkage source `name` brought in: every row of the tables
/// it reads and of the linked tables made with it (and their bases), and its keys in the linkage
/// state. The source's definition stays (DROP LINKAGE SOURCE removes it).
fn source_deletes(session: &Session, name: &str) -> Result<(Deletes, Deletes)> {
    let snapshot = session.snapshot();
    let state = &snapshot.state;
    let source = state.linkage_source(name).map_err(Error::catalog)?;
    let qn = |s: &str, t: &str| QualifiedName { schema: s.into(), name: t.into() };
    let mut out: Deletes = Vec::new();
    let mut add = |q: QualifiedName| {
        if !out.iter().any(|(x, _)| *x == q) {
            out.push((q, "true".to_string()));
        }
    };
    for (schema, entry) in &state.schemas {
        for (t, table) in &entry.tables {
            if let Some(l) = table.linked.as_ref().filter(|l| l.source == name) {
                add(qn(schema, t));
                add(qn(&l.base_schema, &l.base_table));
            }
        }
    }
    let tables = source_key_tables(&source.query);
    if tables.is_empty() {
        return Err(Error::Invalid(format!(
            "linkage source \"{name}\" reads its tables in a way ERASE SOURCE cannot follow (joins or computed tables); erase them with ERASE FROM"
        )));
    }
    for (t, _) in tables {
        add(t);
    }
    let s = sql_literal(name);
    let mut linkage = Vec::new();
    for (table, predicate) in [
        ("research_ids", format!("source = {s}")),
        ("optouts", format!("source = {s}")),
        ("optout_keys", format!("source = {s}")),
        ("review", format!("left_source = {s} OR right_source = {s}")),
        ("decisions", format!("left_source = {s} OR right_source = {s}")),
    ] {
        if state.table("linkage", table).is_ok() {
            linkage.push((qn("linkage", table), predicate));
        }
    }
    Ok((out, linkage))
}

/// Fails, naming where, if any linkage source or linked table still yields persons `ids`.
async fn check_nothing_left(session: &Session, ids: &[i64], keys: &Keys) -> Result<()> {
    let snapshot = session.engine.catalog().refresh().await?;
    let internal = session.internal();
    let id_list = join(ids);
    for (name, source) in &snapshot.state.linkage_sources {
        let Some(k) = keys.get(name) else { continue };
        let q = format!("SELECT count(*) FROM ({}) q WHERE CAST(q.source_key AS TEXT) IN ({})", source.query, in_list(k));
        if count(&internal, &q).await? > 0 {
            return Err(Error::Invalid(format!(
                "erasure incomplete: linkage source \"{name}\" still finds the persons (its key is computed from several columns of a table without a linked table); \
                 erase those rows with ERASE FROM ... WHERE, then ERASE PERSON again"
            )));
        }
    }
    for (schema, entry) in &snapshot.state.schemas {
        for (name, table) in &entry.tables {
            if table.linked.is_some() {
                let q = format!("SELECT count(*) FROM {}.{} WHERE research_id IN ({id_list})", crate::names::quote_ident(schema), crate::names::quote_ident(name));
                if count(&internal, &q).await? > 0 {
                    return Err(Error::Invalid(format!("erasure incomplete: {schema}.{name} still holds rows of the persons")));
                }
            }
        }
    }
    Ok(())
}

async fn count(session: &Session, sql: &str) -> Result<i64> {
    let batches = session.query(sql).await?;
    let b = batches.first().ok_or_else(|| Error::Invalid("count returned nothing".into()))?;
    let c = crate::linkage::ints(b, 0)?;
    Ok(if c.is_valid(0) { c.value(0) } else { 0 })
}

/// Vacuums `tables` with the retention window: deletes data files without live rows older than
/// the window, then (with a window of zero) the Delta log before a fresh checkpoint. Returns the
/// number of files deleted.
async fn vacuum(session: &Session, tables: &[QualifiedName], retain_hours: u64) -> Result<u64> {
    let snapshot = session.engine.catalog().refresh().await?;
    let mut deleted = 0u64;
    for qn in tables {
        let Ok(entry) = snapshot.state.table(&qn.schema, &qn.name) else { continue };
        let table = session.engine.warehouse().open_table(&entry.location, &TableVersionSpec::Latest).await?;
        let (table, metrics) = table
            .vacuum()
            .with_retention_period(chrono::Duration::hours(retain_hours as i64))
            .with_enforce_retention_duration(false)
            .with_mode(deltalake::operations::vacuum::VacuumMode::Full)
            .await?;
        deleted += metrics.files_deleted.len() as u64;
        if retain_hours == 0 {
            // Older versions must not come back through the log: a checkpoint of the current
            // version, then every log file before it.
            let mut table = table;
            table.load().await?;
            deltalake::checkpoints::create_checkpoint(&table, None).await?;
            let version = table.version().unwrap_or(0);
            let cutoff = chrono::Utc::now().timestamp_millis() + 1;
            deleted += deltalake::checkpoints::cleanup_expired_logs_for(version, table.log_store().as_ref(), cutoff, None).await? as u64;
        }
    }
    Ok(deleted)
}

//! k-anonymous extracts (匿名加工医療情報, anonymised medical information, as a provision needs
//! it): a query's result generalised and suppressed by `kura_kanon` until every combination of
//! quasi-identifier values stands for at least k rows, written as a table and optionally as
//! Parquet or CSV files with a report, and `EXPLAIN PRIVACY` of the same statement as a dry run.
//!
//! ```sql
//! CREATE EXTRACT [IF NOT EXISTS] name
//!   QUASI IDENTIFIERS (age AGE (5, 10) TOP 90, birth_date DATE, postal_code POSTAL,
//!                      icd10 TRUNCATE (3, 1), sex EXACT)
//!   K 10 [L 2 ON diagnosis] [MAX SUPPRESSION 5 PERCENT | MAX SUPPRESSION 0.05]
//!   [TO 'directory' [FORMAT PARQUET | CSV]]
//!   AS query
//! ```
//!
//! SECURITY: the query runs as the session user, through that user's policies and aggregation
//! rules like any other query; the extract never reads more than its author may.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::sql::sqlparser::ast::{ObjectName, Query};
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;
use futures::TryStreamExt;
use kura_kanon::{ExtractSpec, Hierarchy, QuasiIdentifier, Report};

use crate::names::{normalize_ident, qualified};
use crate::policy::parse::{expect_word, parse_word, word};
use crate::session::{Session, StatementOutput};
use crate::{Error, Result};

/// A parsed `CREATE EXTRACT`.
#[derive(Debug, Clone)]
pub struct ExtractStatement {
    /// The table to create.
    pub name: ObjectName,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
    /// Quasi-identifiers and how each generalises.
    pub quasi_identifiers: Vec<(String, Generalisation)>,
    /// Minimum rows per combination of quasi-identifier values.
    pub k: usize,
    /// Optional distinct l-diversity: (sensitive column, l).
    pub l_diversity: Option<(String, usize)>,
    /// Fraction of rows that may be suppressed, in [0, 1].
    pub max_suppression: f64,
    /// Files to write besides the table: (directory, format).
    pub files: Option<(String, FileFormat)>,
    /// The rows to anonymise.
    pub query: Box<Query>,
}

/// How a quasi-identifier generalises (the hierarchies of `kura_kanon`).
#[derive(Debug, Clone, PartialEq)]
pub enum Generalisation {
    /// `AGE (5, 10) [TOP 90]`: exact age, 5-year bands, 10-year bands, `*`.
    Age {
        /// Band widths, finest first.
        widths: Vec<u32>,
        /// Top-coding threshold.
        top: Option<u32>,
    },
    /// `DATE`: day, month, year, `*`.
    Date,
    /// `POSTAL`: 7 digits, 3-digit zone, prefecture, `*`.
    Postal,
    /// `TRUNCATE (3, 1)`: the code, its first 3 characters, its first character, `*`.
    Truncate(Vec<usize>),
    /// `EXACT`: the value or `*`.
    Exact,
}

/// Format of an extract's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Apache Parquet (zstd).
    Parquet,
    /// CSV with a header line, UTF-8.
    Csv,
}

/// Whether the parser is at `CREATE EXTRACT`.
pub(crate) fn at_extract(parser: &Parser<'_>) -> bool {
    word(parser, 0).as_deref() == Some("CREATE") && word(parser, 1).as_deref() == Some("EXTRACT")
}

fn number(parser: &mut Parser<'_>, what: &str) -> Result<f64, ParserError> {
    let token = parser.next_token();
    match &token.token {
        Token::Number(n, _) => n.parse().map_err(|_| ParserError::ParserError(format!("{what} must be a number, found {n}"))),
        other => Err(ParserError::ParserError(format!("expected {what} (a number), found {other}"))),
    }
}

fn whole(parser: &mut Parser<'_>, what: &str) -> Result<u64, ParserError> {
    let n = number(parser, what)?;
    if n.fract() != 0.0 || n < 0.0 || n > u32::MAX as f64 {
        return Err(ParserError::ParserError(format!("{what} must be a whole number, found {n}")));
    }
    Ok(n as u64)
}

fn numbers(parser: &mut Parser<'_>, what: &str) -> Result<Vec<u64>, ParserError> {
    parser.expect_token(&Token::LParen)?;
    let mut out = vec![whole(parser, what)?];
    while parser.consume_token(&Token::Comma) {
        out.push(whole(parser, what)?);
    }
    parser.expect_token(&Token::RParen)?;
    Ok(out)
}

fn generalisation(parser: &mut Parser<'_>, column: &str) -> Result<Generalisation, ParserError> {
    let kind = word(parser, 0);
    parser.next_token();
    Ok(match kind.as_deref() {
        Some("AGE") => {
            let widths = numbers(parser, "an age band width")?.into_iter().map(|w| w as u32).collect();
            let top = if parse_word(parser, "TOP") { Some(whole(parser, "the top-coding age")? as u32) } else { None };
            Generalisation::Age { widths, top }
        }
        Some("DATE") => Generalisation::Date,
        Some("POSTAL") => Generalisation::Postal,
        Some("TRUNCATE") => Generalisation::Truncate(numbers(parser, "a code length")?.into_iter().map(|n| n as usize).collect()),
        Some("EXACT") => Generalisation::Exact,
        _ => {
            return Err(ParserError::ParserError(format!(
                "expected how \"{column}\" generalises: AGE (widths) [TOP n], DATE, POSTAL, TRUNCATE (lengths) or EXACT"
            )));
        }
    })
}

/// Parses `CREATE EXTRACT ...` (the parser is at CREATE).
pub(crate) fn parse(parser: &mut Parser<'_>) -> Result<ExtractStatement, ParserError> {
    expect_word(parser, "CREATE")?;
    expect_word(parser, "EXTRACT")?;
    let if_not_exists = if parse_word(parser, "IF") {
        expect_word(parser, "NOT")?;
        expect_word(parser, "EXISTS")?;
        true
    } else {
        false
    };
    let name = parser.parse_object_name(false)?;
    let mut quasi_identifiers = Vec::new();
    let mut k = None;
    let mut l_diversity = None;
    let mut max_suppression = 0.0;
    let mut files = None;
    loop {
        match word(parser, 0).as_deref() {
            Some("QUASI") => {
                parser.next_token();
                expect_word(parser, "IDENTIFIERS")?;
                parser.expect_token(&Token::LParen)?;
                loop {
                    let column = normalize_ident(&parser.parse_identifier()?);
                    let g = generalisation(parser, &column)?;
                    quasi_identifiers.push((column, g));
                    if !parser.consume_token(&Token::Comma) {
                        break;
                    }
                }
                parser.expect_token(&Token::RParen)?;
            }
            Some("K") => {
                parser.next_token();
                k = Some(whole(parser, "k")? as usize);
            }
            Some("L") => {
                parser.next_token();
                let l = whole(parser, "l")? as usize;
                expect_word(parser, "ON")?;
                l_diversity = Some((normalize_ident(&parser.parse_identifier()?), l));
            }
            Some("MAX") => {
                parser.next_token();
                expect_word(parser, "SUPPRESSION")?;
                let n = number(parser, "the suppression limit")?;
                max_suppression = if parse_word(parser, "PERCENT") { n / 100.0 } else { n };
            }
            Some("TO") => {
                parser.next_token();
                let dir = parser.parse_literal_string()?;
                let format = if parse_word(parser, "FORMAT") {
                    let format = match word(parser, 0).as_deref() {
                        Some("PARQUET") => FileFormat::Parquet,
                        Some("CSV") => FileFormat::Csv,
                        _ => return parser.expected("PARQUET or CSV", parser.peek_token()),
                    };
                    parser.next_token();
                    format
                } else {
                    FileFormat::Parquet
                };
                files = Some((dir, format));
            }
            Some("AS") => {
                parser.next_token();
                break;
            }
            _ => return parser.expected("QUASI IDENTIFIERS, K, L, MAX SUPPRESSION, TO or AS", parser.peek_token()),
        }
    }
    let query = parser.parse_query()?;
    if quasi_identifiers.is_empty() {
        return Err(ParserError::ParserError("CREATE EXTRACT needs QUASI IDENTIFIERS (column hierarchy, ...)".into()));
    }
    let Some(k) = k else {
        return Err(ParserError::ParserError("CREATE EXTRACT needs K n (the minimum rows per combination)".into()));
    };
    Ok(ExtractStatement { name, if_not_exists, quasi_identifiers, k, l_diversity, max_suppression, files, query })
}

impl Generalisation {
    fn hierarchy(&self) -> Hierarchy {
        match self {
            Generalisation::Age { widths, top } => Hierarchy::Age { widths: widths.clone(), top: *top },
            Generalisation::Date => Hierarchy::Date,
            Generalisation::Postal => Hierarchy::Postal,
            Generalisation::Truncate(lengths) => Hierarchy::Truncate { lengths: lengths.clone() },
            Generalisation::Exact => Hierarchy::Custom { levels: vec![] },
        }
    }

    /// What level `level` of this hierarchy shows, for the report.
    fn describe(&self, level: usize) -> String {
        let max = self.hierarchy().max_level();
        if level >= max {
            return "* (every value merged)".into();
        }
        match (self, level) {
            (Generalisation::Age { .. }, 0) => "exact age".into(),
            (Generalisation::Age { widths, top }, l) => {
                let top = top.map(|t| format!(", {t}+ top-coded")).unwrap_or_default();
                format!("{}-year bands{top}", widths[l - 1])
            }
            (Generalisation::Date, l) => ["day", "month", "year"][l].into(),
            (Generalisation::Postal, l) => ["7 digits", "3-digit zone", "prefecture"][l].into(),
            (Generalisation::Truncate(_), 0) => "full code".into(),
            (Generalisation::Truncate(lengths), l) => format!("first {} characters", lengths[l - 1]),
            (Generalisation::Exact, _) => "value".into(),
        }
    }
}

impl ExtractStatement {
    fn spec(&self) -> ExtractSpec {
        let qis = self.quasi_identifiers.iter().map(|(c, g)| QuasiIdentifier::new(c.clone(), g.hierarchy())).collect();
        let spec = ExtractSpec::new(qis, self.k).with_max_suppression(self.max_suppression);
        match &self.l_diversity {
            Some((column, l)) => spec.with_l_diversity(column.clone(), *l),
            None => spec,
        }
    }
}

/// The anonymised rows of an extract and what was done to them.
pub(crate) struct Anonymised {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    pub(crate) report: Report,
}

/// The extract's query as the session user may run it (policies applied, privileges checked).
pub(crate) async fn plan(session: &Session, stmt: &ExtractStatement) -> Result<datafusion::logical_expr::LogicalPlan> {
    crate::copy::source_plan(session, crate::parser::CopySource::Query(stmt.query.clone())).await
}

/// Runs `plan` (from [`plan`]) and anonymises its result.
pub(crate) async fn anonymise(
    session: &Session,
    stmt: &ExtractStatement,
    plan: datafusion::logical_expr::LogicalPlan,
) -> Result<Anonymised> {
    let spec = stmt.spec();
    let stream = session.stream_plan(plan).await?;
    let schema = stream.schema();
    let batches: Vec<RecordBatch> = stream.try_collect().await.map_err(Error::from_datafusion)?;
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    tracing::info!(rows, k = stmt.k, "anonymising an extract");
    let (schema, batches, report) = tokio::task::spawn_blocking(move || kura_kanon::anonymize(schema, &batches, &spec))
        .await
        .map_err(|e| Error::Invalid(format!("the anonymisation task failed: {e}")))?
        .map_err(|e| Error::Invalid(format!("cannot make the extract {}-anonymous: {e}", stmt.k)))?;
    Ok(Anonymised { schema, batches, report })
}

/// `CREATE EXTRACT`: the table, the files, and the report as the statement's result.
pub(crate) async fn execute(session: &Session, stmt: ExtractStatement) -> Result<StatementOutput> {
    let qn = qualified(&stmt.name)?;
    crate::names::validate_new_name("table", &qn.name)?;
    session.require_create_in(&qn.schema)?;
    if crate::ddl::relation_exists(session, &qn)? {
        if stmt.if_not_exists {
            return Ok(StatementOutput::command("CREATE EXTRACT"));
        }
        return Err(Error::DuplicateObject(format!("relation \"{qn}\" already exists")));
    }
    if stmt.files.is_some() {
        // SECURITY: files are the server's; as for COPY TO a file, only superusers write them.
        session.require_superuser("write extract files on the server")?;
    }
    let extract = anonymise(session, &stmt, plan(session, &stmt).await?).await?;
    let mut written = Vec::new();
    if let Some((dir, format)) = &stmt.files {
        written = write_files(session, &stmt, &qn.name, dir, *format, &extract).await?;
    }
    let rows = crate::ddl::create_table_from_batches(session, &qn, extract.schema.clone(), extract.batches.clone()).await?;
    debug_assert_eq!(rows as usize, extract.report.rows_out);
    tracing::info!(table = %qn, rows, k_reached = extract.report.k_reached, "extract created");
    let mut lines = report_lines(&stmt, &extract.report);
    lines.insert(0, ("table".into(), qn.to_string()));
    for file in written {
        lines.push(("file".into(), file));
    }
    text_result(lines)
}

/// The report as (item, value) lines, for the statement's result and `EXPLAIN PRIVACY`.
pub(crate) fn report_lines(stmt: &ExtractStatement, report: &Report) -> Vec<(String, String)> {
    let mut lines = vec![
        ("k requested".to_string(), report.k_requested.to_string()),
        ("k reached".to_string(), report.k_reached.to_string()),
    ];
    if let (Some(l), Some(reached)) = (report.l_requested, report.l_reached) {
        let column = stmt.l_diversity.as_ref().map(|(c, _)| c.as_str()).unwrap_or_default();
        lines.push(("l requested".into(), format!("{l} on {column}")));
        lines.push(("l reached".into(), reached.to_string()));
    }
    lines.push(("rows in".into(), report.rows_in.to_string()));
    lines.push(("rows out".into(), report.rows_out.to_string()));
    let share = if report.rows_in == 0 { 0.0 } else { 100.0 * report.rows_suppressed as f64 / report.rows_in as f64 };
    lines.push(("rows suppressed".into(), format!("{} ({share:.2}%)", report.rows_suppressed)));
    for (applied, (_, g)) in report.levels.iter().zip(&stmt.quasi_identifiers) {
        lines.push((
            format!("generalised {}", applied.column),
            format!("level {} of {}: {}", applied.level, applied.max_level, g.describe(applied.level)),
        ));
    }
    lines.push(("information loss".into(), format!("{:.4}", report.information_loss)));
    lines.push(("discernibility".into(), report.discernibility.to_string()));
    lines.push(("lattice nodes evaluated".into(), format!("{} of {}", report.nodes_evaluated, report.lattice_size)));
    lines
}

/// The columns of `CREATE EXTRACT`'s and `EXPLAIN PRIVACY`'s results (text, as [`text_result`]).
const REPORT_COLUMNS: [&str; 2] = ["item", "value"];

/// The schema of [`text_result`], for describing the statements before they run.
pub(crate) fn report_schema() -> SchemaRef {
    Arc::new(Schema::new(REPORT_COLUMNS.map(|n| Field::new(n, DataType::Utf8, false)).to_vec()))
}

/// A two-column text result (`item`, `value`).
pub(crate) fn text_result(lines: Vec<(String, String)>) -> Result<StatementOutput> {
    crate::constant::text_rows(&REPORT_COLUMNS, lines.into_iter().map(|(item, value)| vec![item, value]).collect())
}

/// Writes `<dir>/<name>.parquet|csv` and `<dir>/<name>.report.json`; returns their paths as
/// given (relative to the session's base directory when relative).
async fn write_files(
    session: &Session,
    stmt: &ExtractStatement,
    name: &str,
    dir: &str,
    format: FileFormat,
    extract: &Anonymised,
) -> Result<Vec<String>> {
    let full_dir = session.resolve_path(dir);
    std::fs::create_dir_all(&full_dir).map_err(|e| Error::File { path: dir.to_string(), source: e })?;
    let ext = match format {
        FileFormat::Parquet => "parquet",
        FileFormat::Csv => "csv",
    };
    let data = format!("{}/{name}.{ext}", dir.trim_end_matches('/'));
    let mut options = vec![("format".to_string(), ext.to_string())];
    if format == FileFormat::Csv {
        options.push(("header".into(), "true".into()));
    }
    let options = crate::copy::CopyOptions::parse(&options, true)?;
    let stream = crate::constant::replay(extract.batches.clone(), extract.schema.clone())?;
    crate::copy::write_stream(session, stream, &data, &options).await?;
    let report = format!("{}/{name}.report.json", dir.trim_end_matches('/'));
    let json = report_json(stmt, &extract.report, &data);
    let text = serde_json::to_string_pretty(&json).expect("a JSON value serialises");
    let full = session.resolve_path(&report);
    std::fs::write(&full, text + "\n").map_err(|e| Error::File { path: report.clone(), source: e })?;
    Ok(vec![data, report])
}

fn report_json(stmt: &ExtractStatement, report: &Report, data: &str) -> serde_json::Value {
    let levels: Vec<serde_json::Value> = report
        .levels
        .iter()
        .zip(&stmt.quasi_identifiers)
        .map(|(a, (_, g))| {
            serde_json::json!({
                "column": a.column, "level": a.level, "max_level": a.max_level, "shows": g.describe(a.level),
            })
        })
        .collect();
    serde_json::json!({
        "file": data,
        "query": stmt.query.to_string(),
        "k_requested": report.k_requested,
        "k_reached": report.k_reached,
        "l_requested": report.l_requested,
        "l_reached": report.l_reached,
        "l_column": stmt.l_diversity.as_ref().map(|(c, _)| c),
        "max_suppression": stmt.max_suppression,
        "rows_in": report.rows_in,
        "rows_out": report.rows_out,
        "rows_suppressed": report.rows_suppressed,
        "levels": levels,
        "information_loss": report.information_loss,
        "discernibility": report.discernibility,
        "created": chrono::Utc::now().to_rfc3339(),
    })
}

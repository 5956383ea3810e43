//! Provisions (提供): an export approved by the review committee for one recipient, made by one
//! statement that writes the files, their manifest, and the record of whom they touch.
//!
//! ```sql
//! PROVIDE (SELECT research_id, sex, hba1c FROM research.checkups WHERE fiscal_year = 2024)
//!   TO 'Example University, Dept. of Public Health' APPROVAL 'IRB-2026-017' AS PSEUDONYMISED
//!   INTO '/exports/irb-2026-017' FORMAT PARQUET;
//! PROVIDE (SELECT sex, count(*) FROM research.checkups GROUP BY sex)
//!   TO 'City of Example' APPROVAL 'IRB-2026-018' AS ANONYMISED INTO '/exports/irb-2026-018'
//!   FORMAT CSV PERSONS (SELECT research_id FROM research.checkups);
//! ```
//!
//! Rules:
//! - Only operators (and embedded sessions) provide; the query runs with their rights, but
//!   refusals (OPT OUT) bind it whoever runs it: an opted-out person is in no provision made after
//!   the refusal.
//! - No column of the result may be a direct identifier (names, insured numbers, source keys and
//!   the identity columns of the linkage sources).
//! - Kura must know whom the provision touches: the result's `research_id` column, or the
//!   `PERSONS (query)` cohort. An ANONYMISED provision's files never carry `research_id`: Kura
//!   keeps it for the record and drops it from what it writes.
//! - The destination folder must be new or empty (a provision never overwrites); it receives
//!   `data.parquet` or `data.csv` and `manifest.json` (approval, recipient, kind, query, and each
//!   file's bytes, rows and SHA-256). `audit.provisions` records the provision with the manifest's
//!   own SHA-256, `audit.provision_persons` its research IDs.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::sql::sqlparser::ast::{ObjectName, Query, Statement};
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;
use futures::StreamExt;
use parking_lot::Mutex;

use crate::policy::parse::{expect_word, word};
use crate::session::{Session, StatementOutput};
use crate::{Error, Result};

/// What a provision reads.
#[derive(Debug, Clone)]
pub enum ProvideSource {
    /// `PROVIDE (query)`.
    Query(Box<Query>),
    /// `PROVIDE table` (an extract, typically).
    Table(ObjectName),
}

/// The kind of data provided, as the law names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisionKind {
    /// 匿名加工医療情報: no research ID leaves Kura.
    Anonymised,
    /// 仮名加工医療情報: rows keyed by research ID.
    Pseudonymised,
}

impl ProvisionKind {
    fn name(self) -> &'static str {
        match self {
            Self::Anonymised => "anonymised",
            Self::Pseudonymised => "pseudonymised",
        }
    }
}

/// `PROVIDE ... TO ... APPROVAL ... AS ... INTO ... [FORMAT ...] [PERSONS (...)]`.
#[derive(Debug, Clone)]
pub struct ProvideStatement {
    /// The query or table provided.
    pub source: ProvideSource,
    /// Who receives it.
    pub recipient: String,
    /// The review committee's approval ID.
    pub approval: String,
    /// Anonymised or pseudonymised.
    pub kind: ProvisionKind,
    /// The destination folder (on the server).
    pub into: String,
    /// `true` for CSV, `false` for Parquet (the default).
    pub csv: bool,
    /// The persons the provision touches, when its result has no `research_id`.
    pub persons: Option<Box<Query>>,
}

pub(crate) fn at_provide(parser: &Parser<'_>) -> bool {
    word(parser, 0).as_deref() == Some("PROVIDE")
}

fn string(parser: &mut Parser<'_>, what: &str) -> Result<String, ParserError> {
    parser.parse_literal_string().map_err(|_| ParserError::ParserError(format!("expected {what} as a quoted string")))
}

pub(crate) fn parse(parser: &mut Parser<'_>) -> Result<ProvideStatement, ParserError> {
    expect_word(parser, "PROVIDE")?;
    let source = if parser.consume_token(&Token::LParen) {
        let q = parser.parse_query()?;
        parser.expect_token(&Token::RParen)?;
        ProvideSource::Query(q)
    } else {
        ProvideSource::Table(parser.parse_object_name(false)?)
    };
    let (mut recipient, mut approval, mut kind, mut into, mut csv, mut persons) = (None, None, None, None, false, None);
    loop {
        match word(parser, 0).as_deref() {
            Some("TO") => {
                parser.next_token();
                recipient = Some(string(parser, "the recipient")?);
            }
            Some("APPROVAL") => {
                parser.next_token();
                approval = Some(string(parser, "the approval ID")?);
            }
            Some("AS") => {
                parser.next_token();
                kind = Some(match word(parser, 0).as_deref() {
                    Some("ANONYMISED" | "ANONYMIZED") => ProvisionKind::Anonymised,
                    Some("PSEUDONYMISED" | "PSEUDONYMIZED") => ProvisionKind::Pseudonymised,
                    _ => return parser.expected("ANONYMISED or PSEUDONYMISED", parser.peek_token()),
                });
                parser.next_token();
            }
            Some("INTO") => {
                parser.next_token();
                into = Some(string(parser, "the destination folder")?);
            }
            Some("FORMAT") => {
                parser.next_token();
                csv = match word(parser, 0).as_deref() {
                    Some("CSV") => true,
                    Some("PARQUET") => false,
                    _ => return parser.expected("PARQUET or CSV", parser.peek_token()),
                };
                parser.next_token();
            }
            Some("PERSONS") => {
                parser.next_token();
                parser.expect_token(&Token::LParen)?;
                persons = Some(parser.parse_query()?);
                parser.expect_token(&Token::RParen)?;
            }
            _ => break,
        }
    }
    let missing = |what: &str| ParserError::ParserError(format!("PROVIDE needs {what}"));
    Ok(ProvideStatement {
        source,
        recipient: recipient.ok_or_else(|| missing("TO 'recipient'"))?,
        approval: approval.ok_or_else(|| missing("APPROVAL 'approval ID'"))?,
        kind: kind.ok_or_else(|| missing("AS ANONYMISED or AS PSEUDONYMISED"))?,
        into: into.ok_or_else(|| missing("INTO 'folder'"))?,
        csv,
        persons,
    })
}

/// Runs a provision (see the module's documentation).
pub(crate) async fn execute(session: &Session, stmt: ProvideStatement, text: &str) -> Result<StatementOutput> {
    if session.is_enforced() && !session.snapshot().state.is_operator(session.user()) {
        return Err(Error::PermissionDenied("permission denied: only operators make provisions".into()));
    }
    if !session.engine.audits() {
        return Err(Error::Invalid("a provision must be recorded: run it where the audit trail is on (kura sql, kura serve)".into()));
    }
    let dir = session.resolve_path(&stmt.into);
    if std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(Error::Invalid(format!("{} already holds files; a provision never overwrites, choose a new folder", stmt.into)));
    }
    let id = format!("P{}-{}", chrono::Utc::now().format("%Y%m%d"), &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let query = match stmt.source.clone() {
        ProvideSource::Query(q) => q,
        ProvideSource::Table(name) => {
            let qn = crate::names::qualified(&name)?;
            match crate::parser::parse_sql(&format!("SELECT * FROM {}", qn.quoted()))?.remove(0).kind {
                crate::parser::StatementKind::Sql(s) => match *s {
                    Statement::Query(q) => q,
                    _ => unreachable!("a SELECT"),
                },
                _ => unreachable!("a SELECT"),
            }
        }
    };
    let file_name = if stmt.csv { "data.csv" } else { "data.parquet" };
    let file = dir.join(file_name);
    let ids = Arc::new(Mutex::new(BTreeSet::<i64>::new()));
    // Refusals bind the provision whoever runs it.
    let rows = crate::policy::plan::REFUSALS_FOR_ALL
        .scope(true, async {
            let plan = session.police_plan(session.plan(Statement::Query(query)).await?)?;
            let direct = direct_identifiers(session);
            if let Some(f) = plan.schema().fields().iter().find(|f| direct.contains(&f.name().to_lowercase())) {
                return Err(Error::PermissionDenied(format!(
                    "a provision never carries direct identifiers, and \"{}\" is one; leave it out",
                    f.name()
                )));
            }
            let rid = plan.schema().fields().iter().position(|f| f.name() == "research_id");
            if rid.is_none() && stmt.persons.is_none() {
                return Err(Error::Invalid(
                    "a provision must say whom it touches: include research_id in its result or add PERSONS (query of research IDs)".into(),
                ));
            }
            let stream = session.stream_plan(plan).await?;
            let strip = rid.filter(|_| stmt.kind == ProvisionKind::Anonymised);
            let stream = collect_ids(stream, rid, strip, ids.clone())?;
            std::fs::create_dir_all(&dir).map_err(|e| Error::File { path: stmt.into.clone(), source: e })?;
            let format = if stmt.csv { "csv" } else { "parquet" };
            let mut options = vec![("format".to_string(), format.to_string())];
            if stmt.csv {
                options.push(("header".into(), "true".into()));
            }
            let options = crate::copy::CopyOptions::parse(&options, true)?;
            let rows = crate::copy::write_stream(session, stream, &file.to_string_lossy(), &options).await?;
            if let Some(persons) = &stmt.persons {
                let plan = session.police_plan(session.plan(Statement::Query(persons.clone())).await?)?;
                let stream = session.stream_plan(plan).await?;
                let mut stream = collect_ids(stream, Some(0), None, ids.clone())?;
                while let Some(b) = stream.next().await {
                    b.map_err(Error::from_datafusion)?;
                }
            }
            Ok(rows)
        })
        .await?;
    let checksum = crate::audit::file_digest(&file).map_err(|e| Error::File { path: file_name.into(), source: e })?;
    let bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    let ids = std::mem::take(&mut *ids.lock());
    let manifest = serde_json::json!({
        "provision_id": id,
        "approval_id": stmt.approval,
        "recipient": stmt.recipient,
        "kind": stmt.kind.name(),
        "query": text,
        "created_at": chrono::Utc::now().to_rfc3339(),
        "created_by": session.user(),
        "persons": ids.len(),
        "files": [{"name": file_name, "bytes": bytes, "rows": rows, "sha256": checksum.trim_start_matches("sha256:")}],
    });
    let body = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Invalid(e.to_string()))?;
    let manifest_path = dir.join("manifest.json");
    std::fs::write(&manifest_path, &body).map_err(|e| Error::File { path: "manifest.json".into(), source: e })?;
    let manifest_sha = crate::audit::file_digest(&manifest_path).map_err(|e| Error::File { path: "manifest.json".into(), source: e })?;
    crate::audit::record_provision(
        session,
        crate::audit::Provision {
            id: id.clone(),
            approval: stmt.approval.clone(),
            recipient: stmt.recipient.clone(),
            kind: stmt.kind.name().into(),
            destination: dir.to_string_lossy().into_owned(),
            files: vec![file_name.into()],
            checksums: vec![checksum],
            rows,
            manifest_sha256: manifest_sha,
        },
        &ids,
    )
    .await?;
    tracing::info!(provision = %id, rows, persons = ids.len(), "provision written");
    Ok(StatementOutput::Command { tag: format!("PROVIDE {rows}"), rows: Some(rows) })
}

/// Lower-case names no provision may carry.
fn direct_identifiers(session: &Session) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = crate::linked::DIRECT.iter().map(|s| s.to_string()).collect();
    for source in session.snapshot().state.linkage_sources.values() {
        names.extend(source.identity.iter().map(|c| c.column.to_lowercase()));
    }
    names
}

/// Passes `stream` on, adding column `rid` (research IDs) of each batch to `ids` and dropping
/// column `strip` from what it passes on.
fn collect_ids(
    stream: datafusion::physical_plan::SendableRecordBatchStream,
    rid: Option<usize>,
    strip: Option<usize>,
    ids: Arc<Mutex<BTreeSet<i64>>>,
) -> Result<datafusion::physical_plan::SendableRecordBatchStream> {
    let schema = stream.schema();
    let out_schema = match strip {
        Some(i) => {
            let mut fields: Vec<_> = schema.fields().iter().cloned().collect();
            fields.remove(i);
            Arc::new(datafusion::arrow::datatypes::Schema::new(fields))
        }
        None => schema.clone(),
    };
    let target = out_schema.clone();
    let mapped = stream.map(move |batch| {
        let batch = batch?;
        if let Some(i) = rid {
            let col = datafusion::arrow::compute::cast(batch.column(i), &DataType::Int64)?;
            let col = col.as_primitive::<Int64Type>();
            let mut set = ids.lock();
            set.extend((0..col.len()).filter(|r| col.is_valid(*r)).map(|r| col.value(r)));
        }
        match strip {
            Some(i) => {
                let mut columns = batch.columns().to_vec();
                columns.remove(i);
                Ok(RecordBatch::try_new(target.clone(), columns)?)
            }
            None => Ok(batch),
        }
    });
    Ok(Box::pin(RecordBatchStreamAdapter::new(out_schema, mapped)))
}

/// Checks a provision's folder against its manifest (each file's size and SHA-256) and, with an
/// engine, the manifest itself against the warehouse's record of the provision. Returns the
/// problems found (empty: it verifies) and the provision's ID.
pub async fn verify_provision(dir: &std::path::Path, engine: Option<&crate::Engine>) -> Result<(String, Vec<String>)> {
    let manifest_path = dir.join("manifest.json");
    let body = std::fs::read(&manifest_path).map_err(|e| Error::File { path: manifest_path.display().to_string(), source: e })?;
    let manifest: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| Error::Invalid(format!("manifest.json is not a provision manifest: {e}")))?;
    let id = manifest["provision_id"].as_str().unwrap_or_default().to_string();
    let mut problems = Vec::new();
    for f in manifest["files"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let name = f["name"].as_str().unwrap_or_default();
        if name.contains('/') || name.contains("..") {
            problems.push(format!("the manifest names a file outside the folder: {name}"));
            continue;
        }
        let path = dir.join(name);
        match crate::audit::file_digest(&path) {
            Err(e) => problems.push(format!("{name}: {e}")),
            Ok(sum) if sum.trim_start_matches("sha256:") != f["sha256"].as_str().unwrap_or_default() => {
                problems.push(format!("{name}: its SHA-256 differs from the manifest's (the file was changed)"))
            }
            Ok(_) => {}
        }
    }
    if let Some(engine) = engine {
        let sum = crate::audit::file_digest(&manifest_path).map_err(|e| Error::File { path: "manifest.json".into(), source: e })?;
        match crate::audit::provision_manifest_sha(engine, &id).await? {
            None => problems.push(format!("the warehouse has no record of provision {id}")),
            Some(recorded) if recorded != sum => {
                problems.push(format!("manifest.json differs from the one recorded for provision {id} (it was changed)"))
            }
            Some(_) => {}
        }
    }
    Ok((id, problems))
}
